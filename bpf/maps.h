/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Every map of the datapath. All are pinned by name, so a restarted or
 * upgraded agent (and the CLI) finds the very same maps. */
#ifndef PC_BPF_MAPS_H
#define PC_BPF_MAPS_H

/* pc_guard_stats: the egress guard's counters, created here too, so that
 * they exist (and status shows them) wherever the datapath is loaded. */
#include "guard_maps.h"

/* Active slot and mode, one __u32 per entry (enum pc_state_key). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_STATE_COUNT);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_state SEC(".maps");

/* Cut epochs (struct pc_cuts): one value. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pc_cuts);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_cuts SEC(".maps");

/* Defaults, flags and per-mode rule masks of each policy slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_SLOTS);
	__type(key, __u32);
	__type(value, struct pc_settings);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_settings SEC(".maps");

/* Remote IPv4 prefix -> rules whose CIDR covers it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PC_MAX_ADDR4);
	__type(key, struct pc_addr4_key);
	__type(value, struct pc_addr_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_addr4 SEC(".maps");

/* Remote IPv6 prefix -> rules whose CIDR covers it. */
struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, PC_MAX_ADDR6);
	__type(key, struct pc_addr6_key);
	__type(value, struct pc_addr_val);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_addr6 SEC(".maps");

/* (slot, direction, protocol class, destination port) -> matching rules. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_PORT_ENTRIES);
	__type(key, __u32);
	__type(value, struct pc_ruleset);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ports SEC(".maps");

/* Allowed connections the host opened (an egress packet created them),
 * written by both programs, so replies get back. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PC_MAX_FLOWS);
	__type(key, struct pc_flow_key);
	__type(value, struct pc_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_flows SEC(".maps");

/* Allowed connections the far end opened. A table of their own: what an
 * outsider sends can evict only flows an outsider opened, never the host's. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PC_MAX_FLOWS);
	__type(key, struct pc_flow_key);
	__type(value, struct pc_flow);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_flows_peer SEC(".maps");

/* Entries each flow table created and deleted (enum pc_flow_stat), so
 * userspace can tell what the LRU evicted; PC_FS_MAX entries, room to grow. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_FS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_flow_stats SEC(".maps");

/* Verdict of each first fragment, for the fragments that follow it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PC_MAX_FRAGS);
	__type(key, struct pc_frag_key);
	__type(value, struct pc_frag);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_frags SEC(".maps");

/* Packets and bytes per (direction, reason). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_DIR_COUNT * PC_REASON_COUNT);
	__type(key, __u32);
	__type(value, struct pc_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_reason_stats SEC(".maps");

/* Packets and bytes per (slot, rule) that decided a verdict. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_SLOTS * PC_MAX_RULES);
	__type(key, __u32);
	__type(value, struct pc_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_rule_stats SEC(".maps");

/* Rule names and summaries for the CLI; never read by the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_SLOTS * PC_MAX_RULES);
	__type(key, __u32);
	__type(value, struct pc_rule_meta);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_rule_meta SEC(".maps");

#include "maps_backstop.h"
#include "mgmt_if.h"

/* Dead-man switch: last heartbeat, timeout, action (enum pc_deadman_key). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_DM_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_deadman SEC(".maps");

/* Event counts the agent's anomaly triggers sample (enum pc_event). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_EV_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_events SEC(".maps");

/* What the host itself initiated, for the anomaly signals (enum
 * pc_host_event); PC_HE_MAX entries, so adding one keeps the pin's size. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_HE_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_host_events SEC(".maps");

/* The agent's last mode transitions; never read by the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_MAX_TRANSITIONS);
	__type(key, __u32);
	__type(value, struct pc_transition);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_transitions SEC(".maps");

/* The agent's counters (accepted/refused messages...); never read here. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_AGENT_STATS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_agent_stats SEC(".maps");

/* Sampled drops for `portcullis monitor` (struct pc_drop_event). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, PC_DROP_RING_BYTES);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_drops SEC(".maps");

/* Token bucket limiting drop samples, per CPU. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pc_drop_budget);
} pc_drop_budget SEC(".maps");

#endif /* PC_BPF_MAPS_H */

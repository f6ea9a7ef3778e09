/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one definition of everything the BPF datapath and userspace share:
 * limits, enums, map names and the layout of every map key and value.
 * Only fixed-width types; both sides include this after their own type
 * headers (vmlinux.h in BPF, <linux/types.h> in userspace).
 */
#ifndef PORTCULLIS_H
#define PORTCULLIS_H

/* Limits */
#define PC_MAX_RULES		128	/* rules per policy, management entries included */
#define PC_RULE_WORDS		(PC_MAX_RULES / 64)
#define PC_SLOTS		2	/* policy slots: active one + the one being built */
#define PC_MAX_IFACES		16
#define PC_NAME_LEN		32
#define PC_IFNAME_LEN		16
#define PC_MAX_ADDR4		2200000	/* LPM entries, both slots: 1M CIDRs per policy + headroom */
#define PC_MAX_ADDR6		1100000
#define PC_MAX_FLOWS		262144
#define PC_MAX_FRAGS		16384
#define PC_MAX_VLAN_DEPTH	2
#define PC_MAX_EXTHDRS		6
#define PC_FLOW_IDLE_TCP_NS	(3600ULL * 1000000000ULL)	/* idle flows expire */
#define PC_FLOW_IDLE_NS		(120ULL * 1000000000ULL)	/* UDP, ICMP, other */
/* TCP flows by state (PC_FLOW_S_*): a SYN nobody answered, a closing one. */
#define PC_FLOW_IDLE_SYN_NS	(5ULL * 1000000000ULL)
#define PC_FLOW_IDLE_FIN_NS	(60ULL * 1000000000ULL)
#define PC_FLOW_IDLE_RST_NS	(10ULL * 1000000000ULL)
/* The largest ICMP error related to a flow, IP header on (RFC 1812: 576;
 * RFC 4443: the IPv6 minimum MTU): all an error needs to quote. */
#define PC_ICMP_ERR_MAX4	576
#define PC_ICMP_ERR_MAX6	1280

/* Map names: the pins under the pin dir carry exactly these names. */
#define PC_MAP_STATE		"pc_state"
#define PC_MAP_SETTINGS		"pc_settings"
#define PC_MAP_ADDR4		"pc_addr4"
#define PC_MAP_ADDR6		"pc_addr6"
#define PC_MAP_PORTS		"pc_ports"
#define PC_MAP_FLOWS		"pc_flows"	/* flows the host opened */
#define PC_MAP_FLOWS_PEER	"pc_flows_peer"	/* flows the far end opened */
#define PC_MAP_FRAGS		"pc_frags"
#define PC_MAP_REASON_STATS	"pc_reason_stats"
#define PC_MAP_RULE_STATS	"pc_rule_stats"
#define PC_MAP_RULE_META	"pc_rule_meta"
#define PC_MAP_IFACES		"pc_ifaces"
#define PC_MAP_DEADMAN		"pc_deadman"
#define PC_MAP_EVENTS		"pc_events"
#define PC_MAP_TRANSITIONS	"pc_transitions"
#define PC_MAP_AGENT_STATS	"pc_agent_stats"
#define PC_MAP_DROPS		"pc_drops"
#define PC_MAP_CUTS		"pc_cuts"
#define PC_MAP_GUARD_STATS	"pc_guard_stats"
#define PC_MAP_BACKSTOP_STATS	"pc_backstop_stats"
#define PC_MAP_HOST_EVENTS	"pc_host_events"
#define PC_MAP_MGMT_IF		"pc_mgmt_if"
#define PC_MAP_CTL_CONF		"pc_ctl_conf"
#define PC_MAP_CTL_STATS	"pc_ctl_stats"
#define PC_MAP_FLOW_STATS	"pc_flow_stats"
#define PC_MAP_CTL_SOURCES	"pc_ctl_sources"
#define PC_MAP_CTL_GLOBAL	"pc_ctl_global"
#define PC_DEFAULT_PIN_DIR	"/sys/fs/bpf/portcullis"

/* Host modes, in escalation order. */
enum pc_mode {
	PC_MODE_NORMAL = 0,
	PC_MODE_LOCKDOWN = 1,
	PC_MODE_QUARANTINE = 2,
	PC_MODE_COUNT,
};

enum pc_dir {
	PC_DIR_INGRESS = 0,
	PC_DIR_EGRESS = 1,
	PC_DIR_COUNT,
};

/* Zero is deny, so an all-zero (never written) value fails secure. */
enum pc_action {
	PC_ACT_DENY = 0,
	PC_ACT_ALLOW = 1,
};

/* Why a packet got its verdict; counted per direction. */
enum pc_reason {
	PC_R_PASS_RULE = 0,	/* an allow rule of the current mode */
	PC_R_PASS_MGMT,		/* management allowlist */
	PC_R_PASS_DEFAULT,	/* normal-mode default allow */
	PC_R_PASS_FLOW,		/* reply of an allowed flow */
	PC_R_PASS_RELATED,	/* ICMP error about an allowed flow */
	PC_R_PASS_FRAG,		/* non-first fragment of a passed packet */
	PC_R_PASS_ARP,
	PC_R_PASS_ND,		/* IPv6 neighbour discovery */
	PC_R_PASS_AUDIT,	/* would have dropped; audit mode passed it */
	PC_R_DROP_DEFAULT,	/* normal-mode default deny */
	PC_R_DROP_DENY,		/* explicit deny rule */
	PC_R_DROP_LOCKDOWN,	/* nothing allows it in lockdown */
	PC_R_DROP_QUARANTINE,	/* nothing allows it in quarantine */
	PC_R_DROP_MALFORMED,	/* truncated or malformed frame */
	PC_R_DROP_FRAGMENT,	/* non-first fragment we cannot vouch for */
	PC_R_DROP_L2,		/* not IP (and not allowed ARP) */
	PC_R_DROP_NOPOLICY,	/* programs attached but no policy loaded */
	PC_R_DROP_DEADMAN,	/* heartbeats stale: the kernel's own lockdown */
	PC_REASON_COUNT,
};

#define PC_REASON_IS_DROP(r)	((r) >= PC_R_DROP_DEFAULT)

/* pc_state indices: one __u32 each, so every update is a single word. */
enum pc_state_key {
	PC_STATE_ACTIVE_SLOT = 0,	/* which settings/rule slot is live */
	PC_STATE_MODE = 1,		/* enum pc_mode; unknown values act as quarantine */
	PC_STATE_COUNT,
};

/*
 * Kernel dead-man switch, pc_deadman indices (one __u64 each). The agent
 * writes the CLOCK_BOOTTIME of the last verified heartbeat; when it is
 * older than the timeout the datapath itself enforces the action mode,
 * with no userspace in the loop.
 */
enum pc_deadman_key {
	PC_DM_LAST_HB_NS = 0,	/* bpf_ktime_get_boot_ns() time base */
	PC_DM_TIMEOUT_NS = 1,	/* 0: switch off */
	PC_DM_ACTION = 2,	/* enum pc_mode to enforce when stale */
	PC_DM_COUNT,
};

/*
 * Cut epochs, pc_cuts' one value: how many times the host has entered each
 * strict mode. A flow records the epochs it was last vouched under; one
 * that lived through a lockdown or quarantine since is re-decided under
 * that mode at its next packet and cut for good if the mode would have
 * dropped it, even if no packet of it came by meanwhile. Whoever writes the
 * mode word bumps the epoch first (pc_mode_write); the datapath bumps it
 * itself when the dead-man switch trips (dm_trip: the heartbeat stamp of
 * the trip it has counted).
 */
struct pc_cuts {
	__u64 epoch[PC_MODE_COUNT];	/* [PC_MODE_NORMAL] unused */
	__u64 dm_trip;
};

/* pc_events indices: per-CPU __u64 counts the agent samples. */
enum pc_event {
	PC_EV_FLOW_NEW_INGRESS = 0,	/* flows opened by an ingress packet */
	PC_EV_FLOW_NEW_EGRESS = 1,	/* ... by an egress packet */
	PC_EV_DROP_SAMPLED = 2,		/* drops written to pc_drops */
	PC_EV_DROP_UNSAMPLED = 3,	/* drops over the sampling budget */
	PC_EV_DROP_RING_FULL = 4,	/* drops the ring had no room for */
	PC_EV_COUNT,
};

/*
 * pc_host_events indices: per-CPU __u64 counts of what the host itself
 * initiated, the anomaly signals no outsider can drive by sending packets.
 * A map of its own, sized with room to grow (PC_HE_MAX), because a pinned
 * map cannot change size under a live upgrade (libbpf refuses to reuse it).
 */
enum pc_host_event {
	/* Egress packets denied (drop_deny_rule, drop_default) that open an
	 * exchange the host started: a TCP SYN without ACK, an echo request,
	 * any other first fragment or unfragmented packet that no flow opened
	 * by the far end answers. Never a reply to inbound traffic. */
	PC_HE_EGRESS_DENIED = 0,
	PC_HE_COUNT,
};

#define PC_HE_MAX	16	/* pc_host_events' max_entries */

/*
 * pc_flow_stats: per-CPU __u64 counts per flow table, keyed
 * PC_FS_KEY(table, kind), table the enum pc_dir of the opener it is for
 * (PC_DIR_EGRESS pc_flows, PC_DIR_INGRESS pc_flows_peer). The kernel's
 * LRU evicts silently; what it evicted is derived as entries created minus
 * entries deleted minus entries live (pc_flow_evictions). PC_FS_MAX
 * entries, so adding a kind keeps the pin's size.
 */
enum pc_flow_stat {
	PC_FS_INSERTED = 0,	/* entries created: a BPF_NOEXIST update that
				 * succeeded (or the agent's seed, see README) */
	PC_FS_DELETED = 1,	/* entries deleted (a delete that succeeded) */
	PC_FS_KINDS,
};

#define PC_FS_MAX	16	/* pc_flow_stats' max_entries */
#define PC_FS_KEY(table, kind)	((table) * PC_FS_KINDS + (kind))

/*
 * The egress guard (bpf/guard.bpf.c): a cgroup setsockopt program that
 * keeps sockets of the enforced network namespace from being set up to
 * send past tc_egress. pc_guard_stats indices, per-CPU __u64 counts of
 * what it refused.
 */
enum pc_guard_refusal {
	PC_G_QDISC_BYPASS = 0,	/* setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS) */
	PC_G_XDP_SETUP = 1,	/* setsockopt(SOL_XDP, ...): umem and rings of AF_XDP */
	PC_G_COUNT,
};

/* The guard's link is pinned in the pin dir under this name. */
#define PC_GUARD_LINK		"link_guard_setsockopt"

/* What moved the mode (pc_transition.trigger). */
enum pc_trigger {
	PC_TRIG_START = 0,		/* agent start: restored or configured */
	PC_TRIG_HEARTBEAT_LOSS,
	PC_TRIG_HEARTBEAT_RESTORED,	/* heartbeat-loss lockdown lifted itself */
	PC_TRIG_DEADMAN,		/* kernel switch tripped while the agent was away */
	PC_TRIG_COMMAND,		/* signed controller command */
	PC_TRIG_ANOMALY,
	PC_TRIG_BREAK_GLASS,		/* local root operator */
	PC_TRIG_EXTERNAL,		/* pinned map written behind the agent's back */
	PC_TRIG_FLEET,			/* signed desired state from etcd */
	PC_TRIG_FLEET_RELEASE,		/* a host released by name in etcd */
	PC_TRIG_COUNT,
};

#define PC_MAX_TRANSITIONS	16
#define PC_AGENT_STATS_MAX	256

/* pc_transitions value: the last transitions, ring indexed by seq. */
struct pc_transition {
	__u64 seq;		/* 0: unused; else increasing from 1 */
	__u64 wall_ms;		/* Unix ms when enforced */
	__u64 tts_ns;		/* time to secure: detection to maps */
	__u8 from;		/* enum pc_mode */
	__u8 to;
	__u8 trigger;		/* enum pc_trigger */
	__u8 pad[5];
	char detail[64];
};

/*
 * Drop monitor: the datapath samples dropped packets into the pc_drops
 * ring buffer, at most PC_DROP_SAMPLE_RATE a second per CPU (a token
 * bucket of PC_DROP_SAMPLE_BURST), so a flood costs the host a bounded
 * amount of work and the reader a bounded amount of data.
 */
#define PC_DROP_RING_BYTES	(256 * 1024)
#define PC_DROP_SAMPLE_RATE	2000
#define PC_DROP_SAMPLE_BURST	200

struct pc_drop_event {
	__u64 ts_ns;		/* bpf_ktime_get_boot_ns() */
	__u32 ifindex;
	__u32 len;		/* bytes of the frame */
	__u16 rule;		/* slot-relative, or PC_RULE_NONE */
	__u8 reason;		/* enum pc_reason */
	__u8 dir;		/* enum pc_dir */
	__u8 family;		/* 4, 6, or 0 (not IP / unparsed) */
	__u8 proto;
	__u8 mode;		/* enforced mode (dead-man included) */
	__u8 slot;		/* policy slot the rule index belongs to */
	__u16 sport;		/* network order */
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Per-CPU token bucket for drop samples. */
struct pc_drop_budget {
	__u64 last_ns;
	__u64 tokens;
};

/* Protocol classes used as the port-trie key. */
enum pc_proto_class {
	PC_PC_OTHER = 0,	/* any IP protocol without a class of its own */
	PC_PC_TCP = 6,
	PC_PC_UDP = 17,
	PC_PC_ICMP = 1,
	PC_PC_ICMPV6 = 58,
	PC_PC_NOPORT = 255,	/* non-first fragment: address-only rules */
};

/* pc_settings flags */
#define PC_F_AUDIT	(1U << 0)	/* normal mode: count would-be drops, pass */
#define PC_F_ALLOW_ARP	(1U << 1)
#define PC_F_ALLOW_ND	(1U << 2)
#define PC_F_MGMT_BOUND	(1U << 3)	/* some management entry is bound to interfaces (pc_mgmt_if) */

/* A set of rule indices; bit i = rule i. Lower index wins ties. */
struct pc_ruleset {
	__u64 bits[PC_RULE_WORDS];
};

/* pc_settings value, one per slot. */
struct pc_settings {
	__u32 generation;		/* 0 = slot empty: drop, reason NOPOLICY */
	__u8 default_action[PC_DIR_COUNT];	/* normal mode, enum pc_action */
	__u8 flags;
	__u8 nrules;
	struct pc_ruleset mgmt;			/* pass in every mode */
	struct pc_ruleset deny[PC_MODE_COUNT];
	struct pc_ruleset allow[PC_MODE_COUNT];
};

/*
 * pc_mgmt_if: management entries bound to interfaces. Per slot, ifindex 0
 * holds the set of bound entries, each other ifindex the bound entries
 * that match there. An entry in no ifindex 0 set matches on any interface
 * (address only); one in it matches only where its ifindex set says.
 */
#define PC_MGMT_IF_MAX		(PC_SLOTS * (PC_MAX_IFACES + 1) * 2)

struct pc_mgmt_if_key {
	__u32 slot;
	__u32 ifindex;		/* 0: the set of bound entries */
};

/*
 * The controller port's budget (bpf/ctl_limit.h): datagrams to it that the
 * policy passes as management are admitted by a bucket per interface they
 * arrive on; the rest by a bucket per (interface, source) and then one
 * shared by all of them. Forged sources can neither flood the agent's one
 * thread nor use up the real controller's share from another link, and a
 * controller's own burst (a replay flood on its link) is not cut to a
 * per-source trickle that would starve its heartbeats. The agent writes
 * the port.
 */
#define PC_CTL_SRC_RATE		50	/* datagrams/s per source (other) */
#define PC_CTL_SRC_BURST	100
#define PC_CTL_GLOBAL_RATE	2000	/* datagrams/s per class bucket */
#define PC_CTL_GLOBAL_BURST	4000
#define PC_CTL_SOURCES		65536	/* sources tracked (LRU) */
#define PC_CTL_CLASS_MAX	64	/* class buckets: other + management per interface */

/*
 * Grown from 8 bytes (port, pad) in this release, before any shipped:
 * nbound > 0 binds the port to the interfaces in ifindex[] (a datagram to
 * it arriving elsewhere is dropped, PC_CS_WRONG_IFACE_*); an entry 0 is a
 * named interface missing now, which matches nowhere, so a bound port
 * never falls back to "any interface" while its links are away.
 */
#define PC_CTL_IFACES		PC_MAX_IFACES

struct pc_ctl_conf {
	__u32 port;		/* host order; 0: no controller, no limit */
	__u32 nbound;		/* interfaces named; 0: any interface */
	__u32 ifindex[PC_CTL_IFACES];	/* 0: named but missing now */
};

enum pc_ctl_class {
	PC_CC_MGMT = 0,		/* passed as management (pass_management) */
	PC_CC_OTHER = 1,	/* passed by any other rule or default */
	PC_CC_COUNT,
};

/* pc_ctl_stats indices, per-CPU __u64 counts. */
enum pc_ctl_stat {
	PC_CS_ADMITTED_MGMT = 0,
	PC_CS_ADMITTED_OTHER,
	PC_CS_SOURCE_LIMITED,	/* other: its source's bucket was empty */
	PC_CS_MGMT_LIMITED,	/* its interface's management bucket was empty */
	PC_CS_OTHER_LIMITED,	/* the shared other bucket was empty */
	PC_CS_WRONG_IFACE_MGMT,	/* arrived on an interface the port is not bound to */
	PC_CS_WRONG_IFACE_OTHER,
	PC_CS_COUNT,
};

#define PC_CS_MAX	16	/* pc_ctl_stats' max_entries: room to grow */

struct pc_ctl_src_key {
	__u32 ifindex;
	__u8 family;
	__u8 pad[3];
	__u8 addr[16];
};

/* pc_ctl_global key: (PC_CC_OTHER, 0), or (PC_CC_MGMT, ifindex). */
struct pc_ctl_class_key {
	__u32 cls;
	__u32 ifindex;
};

/* Token bucket: tokens in units of 1e-9 datagram, refilled per ns. */
struct pc_tbucket {
	__u64 last_ns;
	__u64 tokens;
};

/* LPM keys carry the slot first, so both policies live side by side. */
struct pc_addr4_key {
	__u32 prefixlen;	/* 32 + CIDR length */
	__u32 slot;
	__u8 addr[4];
};

struct pc_addr6_key {
	__u32 prefixlen;	/* 32 + CIDR length */
	__u32 slot;
	__u8 addr[16];
};

/* Rules whose CIDR covers the prefix, for each direction. */
struct pc_addr_val {
	struct pc_ruleset dir[PC_DIR_COUNT];
};

/*
 * pc_ports: a flat array of rule sets indexed by (slot, direction,
 * protocol class, destination port) -- one direct index, no search. TCP
 * and UDP have an entry per port; the other classes one entry each.
 */
#define PC_PORT_SPAN		(2 * 65536 + 4)	/* entries per (slot, dir) */
#define PC_PORT_ENTRIES		(PC_SLOTS * PC_DIR_COUNT * PC_PORT_SPAN)

/* Offset of (class, host-order port) inside one (slot, dir) block. */
static inline __u32 pc_port_offset(__u8 pclass, __u16 port)
{
	switch (pclass) {
	case PC_PC_TCP: return port;
	case PC_PC_UDP: return 65536 + port;
	case PC_PC_ICMP: return 131072;
	case PC_PC_ICMPV6: return 131073;
	case PC_PC_NOPORT: return 131075;
	default: return 131074;	/* PC_PC_OTHER */
	}
}

static inline __u32 pc_port_index(__u32 slot, __u32 dir, __u8 pclass,
				  __u16 port)
{
	return ((slot & 1) * PC_DIR_COUNT + (dir & 1)) * PC_PORT_SPAN +
	       pc_port_offset(pclass, port);
}

/* Flow table key: seen from the host (local/remote), same both ways. */
struct pc_flow_key {
	__u8 family;		/* 4 or 6 */
	__u8 proto;
	__u16 lport;		/* network order; ICMP echo: the echo id */
	__u16 rport;
	__u16 pad;		/* ICMP echo: who asked, 1 us / 2 the peer; else 0 */
	__u8 laddr[16];
	__u8 raddr[16];
};

struct pc_flow {
	__u64 created_ns;	/* bpf_ktime_get_coarse_ns(): CLOCK_MONOTONIC_COARSE */
	__u64 last_ns;		/* refreshed at most once a second */
	__u32 generation;	/* policy generation that last vouched for it */
	__u8 mode;		/* mode in which it was last vouched for */
	__u8 dir;		/* PC_FLOW_DIR: direction of the packet that
				 * opened it; PC_FLOW_S_MASK: TCP state */
	__u8 cut_lockdown;	/* low bytes of the cut epochs it was last */
	__u8 cut_quarantine;	/* vouched under (struct pc_cuts) */
};

/*
 * pc_flow.dir's spare bits hold a TCP flow's state, so the value (and the
 * pins) keep their size. Zero is established: what every flow of a
 * datapath older than the states is, and what non-TCP flows stay.
 */
#define PC_FLOW_DIR		0x01
#define PC_FLOW_S_MASK		0x30
#define PC_FLOW_S_EST		0x00	/* handshake answered: 1 h idle */
#define PC_FLOW_S_SYN		0x10	/* embryonic: a SYN only, 5 s */
#define PC_FLOW_S_FIN		0x20	/* a FIN seen: 60 s */
#define PC_FLOW_S_RST		0x30	/* a RST seen: 10 s */

struct pc_frag_key {
	__u8 family;
	__u8 proto;
	__u8 dir;
	__u8 pad;
	__u32 id;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct pc_frag {
	__u8 pass;
	__u8 reason;
	__u16 rule;
	__u32 generation;	/* a pass holds only under the same */
	__u8 mode;		/* generation and mode */
	__u8 pad[3];
};

/* Per-CPU counters for pc_reason_stats and pc_rule_stats. */
struct pc_counter {
	__u64 packets;
	__u64 bytes;
};

#define PC_RULE_NONE		0xffff
#define PC_REASON_KEY(dir, reason)	((dir) * PC_REASON_COUNT + (reason))
#define PC_RULE_KEY(slot, rule)		((slot) * PC_MAX_RULES + (rule))

/* pc_rule_meta value: what the CLI shows; the datapath never reads it. */
struct pc_rule_meta {
	char name[PC_NAME_LEN];
	__u8 used;
	__u8 action;		/* enum pc_action */
	__u8 dirs;		/* bit per enum pc_dir */
	__u8 modes;		/* bit per enum pc_mode */
	__u8 proto;		/* 0 = any */
	__u8 mgmt;
	__u16 nports;		/* port ranges; 0 = any */
	__u32 ncidrs;		/* 0 = any address */
	__u16 port_lo;		/* first range, host order */
	__u16 port_hi;
	char cidr[48];		/* first CIDR, text */
};

/* XDP attach modes */
enum pc_xdp_mode {
	PC_XDP_AUTO = 0,
	PC_XDP_NATIVE = 1,
	PC_XDP_GENERIC = 2,
};

/* pc_ifaces value: where the programs are attached. */
struct pc_iface {
	__u32 ifindex;		/* 0 = unused entry */
	__u8 xdp_mode;		/* enum pc_xdp_mode actually in use */
	__u8 tc_attached;
	__u8 clsact_created;	/* we created clsact, so detach removes it */
	__u8 pad;
	__u64 netns_ino;	/* namespace the ifindex belongs to */
	char name[PC_IFNAME_LEN];
};

#define PC_TC_HANDLE	0x50c	/* our egress filter: handle and priority */
#define PC_TC_PRIO	1

#endif /* PORTCULLIS_H */

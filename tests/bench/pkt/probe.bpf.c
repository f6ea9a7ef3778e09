// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where xdp_ingress spends its time: programs built from the datapath's
 * own helpers (the headers under bpf/, included as they are), run by bench_pkt
 * on the same maps as a loaded policy (bpf_map__reuse_fd), so each costs what
 * that piece costs inside xdp_ingress.
 *
 * stage_*: the allow path of pc_decide() cut after each stage, each
 * stage including the ones before it; op_*: one operation alone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "portcullis.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "flow.h"

/* A verdict that depends on the work, so clang cannot drop the work. */
#define KEEP(x) ((x) ? XDP_PASS : XDP_DROP)

static __always_inline __u32 state_get(__u32 key)
{
	__u32 *v = bpf_map_lookup_elem(&pc_state, &key);

	return v ? *v : 0;
}

/* Only the dead-man switch's "off" branch: no timeout is set here. */
static __always_inline __u32 deadman_off(void)
{
	__u32 k = PC_DM_TIMEOUT_NS;
	__u64 *timeout = bpf_map_lookup_elem(&pc_deadman, &k);

	return !timeout || !*timeout ? PC_MODE_NORMAL : PC_MODE_LOCKDOWN;
}

SEC("xdp")
int stage_parse(struct xdp_md *ctx)
{
	struct pc_pkt pkt = {};
	int res;

	res = parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			   &pkt);
	return KEEP(res == PARSE_IP && pkt.dport);
}

SEC("xdp")
int stage_settings(struct xdp_md *ctx)
{
	struct pc_pkt pkt = {};
	struct pc_settings *s;
	__u32 slot, mode;
	int res;

	res = parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			   &pkt);
	slot = state_get(PC_STATE_ACTIVE_SLOT) & 1;
	mode = mode_sane(state_get(PC_STATE_MODE));
	mode |= deadman_off();
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	return KEEP(res == PARSE_IP && s && s->generation && !mode);
}

static __always_inline struct pc_verdict rules_of(__u32 slot,
						  const struct pc_pkt *pkt)
{
	struct pc_query q = {
	    .slot = slot,
	    .mode = PC_MODE_NORMAL,
	    .dir = PC_DIR_INGRESS,
	    .family = pkt->family,
	    .pclass = proto_class(pkt->family, pkt->proto),
	    .port = pkt->dport,
	};

	__builtin_memcpy(q.raddr, pkt->saddr, 16);
	return verdict_unpack(pc_rules_verdict(&q));
}

SEC("xdp")
int stage_rules(struct xdp_md *ctx)
{
	struct pc_pkt pkt = {};
	struct pc_settings *s;
	struct pc_verdict v;
	__u32 slot;
	int res;

	res = parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			   &pkt);
	slot = state_get(PC_STATE_ACTIVE_SLOT) & 1;
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	if (res != PARSE_IP || !s || deadman_off())
		return XDP_DROP;
	v = rules_of(slot, &pkt);
	return KEEP(v.pass);
}

SEC("xdp")
int stage_flow(struct xdp_md *ctx)
{
	struct pc_pkt pkt = {};
	struct pc_settings *s;
	struct pc_flow_key fk;
	struct pc_verdict v;
	__u32 slot;
	int res;

	res = parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			   &pkt);
	slot = state_get(PC_STATE_ACTIVE_SLOT) & 1;
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	if (res != PARSE_IP || !s || deadman_off())
		return XDP_DROP;
	v = rules_of(slot, &pkt);
	if (v.pass && flow_opens(&pkt)) {
		flow_key_build(&fk, pkt.family, pkt.proto, PC_DIR_INGRESS,
			       pkt.saddr, pkt.daddr, pkt.sport, pkt.dport,
			       pkt.icmp_type);
		flow_open(&fk, PC_DIR_INGRESS,
			  pkt.proto == IPPROTO_TCP_ ? pkt.tcp_flags : 0, slot,
			  s->generation, PC_MODE_NORMAL, flow_creates(&pkt));
	}
	return KEEP(v.pass);
}

/* One LPM lookup of the frame's IPv4 source in pc_addr4. */
SEC("xdp")
int op_lpm4(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	struct pc_addr4_key k = {.prefixlen = 32 + 32};

	if (data + 34 > (void *)(long)ctx->data_end)
		return XDP_DROP;
	k.slot = state_get(PC_STATE_ACTIVE_SLOT) & 1;
	__builtin_memcpy(k.addr, data + 26, 4);
	return KEEP(bpf_map_lookup_elem(&pc_addr4, &k));
}

/* One pc_ports array index of (ingress, TCP, the frame's destination port). */
SEC("xdp")
int op_ports(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	__u16 port;
	__u32 idx;

	if (data + 38 > (void *)(long)ctx->data_end)
		return XDP_DROP;
	__builtin_memcpy(&port, data + 36, 2);
	idx = pc_port_index(state_get(PC_STATE_ACTIVE_SLOT) & 1, PC_DIR_INGRESS,
			    PC_PC_TCP, bpf_ntohs(port));
	return KEEP(bpf_map_lookup_elem(&pc_ports, &idx));
}

/* One flow-table lookup (LRU hash, 40-byte key) for the parsed frame: the
 * allow frame's flow, one the far end opened, so in pc_flows_peer. */
SEC("xdp")
int op_flow(struct xdp_md *ctx)
{
	struct pc_pkt pkt = {};
	struct pc_flow_key fk;

	if (parse_packet((void *)(long)ctx->data, (void *)(long)ctx->data_end,
			 &pkt) != PARSE_IP)
		return XDP_DROP;
	flow_key_build(&fk, pkt.family, pkt.proto, PC_DIR_INGRESS, pkt.saddr,
		       pkt.daddr, pkt.sport, pkt.dport, pkt.icmp_type);
	return KEEP(bpf_map_lookup_elem(&pc_flows_peer, &fk));
}

SEC("xdp")
int op_ktime(struct xdp_md *ctx) { return KEEP(bpf_ktime_get_boot_ns()); }

/* One per-CPU counter bump, as count() does twice per packet. */
SEC("xdp")
int op_counter(struct xdp_md *ctx)
{
	__u32 key = PC_REASON_KEY(PC_DIR_INGRESS, PC_R_PASS_RULE);
	struct pc_counter *c = bpf_map_lookup_elem(&pc_reason_stats, &key);

	if (!c)
		return XDP_DROP;
	c->packets++;
	c->bytes += 54;
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

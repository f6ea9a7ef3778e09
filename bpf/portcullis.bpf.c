// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Portcullis datapath: XDP on ingress, TC clsact on egress, one set of
 * pinned maps. Both entry points are thin wrappers over pc_process().
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "portcullis.h"
#include "maps.h"
#include "parse.h"
#include "policy.h"
#include "flow.h"
#include "ctl_limit.h"

#define TC_ACT_OK	0
#define TC_ACT_SHOT	2

/* Bytes of an skb we make linear for the parser: deepest headers we walk
 * (2 VLAN tags, IPv6 + 6 extension headers, ICMP error quoting IPv6). */
#define PC_TC_PULL_LEN	256

static __always_inline void count(__u32 slot, __u8 dir, struct pc_verdict v,
				  __u64 bytes)
{
	struct pc_counter *c;
	__u32 key = PC_REASON_KEY(dir & 1, v.reason);

	if (v.reason >= PC_REASON_COUNT)
		return;
	c = bpf_map_lookup_elem(&pc_reason_stats, &key);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
	if (v.rule >= PC_MAX_RULES)
		return;
	key = PC_RULE_KEY(slot & 1, v.rule);
	c = bpf_map_lookup_elem(&pc_rule_stats, &key);
	if (c) {
		c->packets++;
		c->bytes += bytes;
	}
}

static __always_inline __u32 state_get(__u32 key)
{
	__u32 *v = bpf_map_lookup_elem(&pc_state, &key);

	return v ? *v : 0;
}

/*
 * The kernel dead-man switch: the mode to enforce because heartbeats went
 * stale, or PC_MODE_NORMAL. Signed arithmetic, so a heartbeat time ahead
 * of now (it cannot be: same clock) would still not trip it forever.
 */
static __always_inline __u32 deadman_mode(void)
{
	__u32 k = PC_DM_TIMEOUT_NS;
	__u64 *timeout, *last, *action;

	timeout = bpf_map_lookup_elem(&pc_deadman, &k);
	if (!timeout || !*timeout)
		return PC_MODE_NORMAL;
	k = PC_DM_LAST_HB_NS;
	last = bpf_map_lookup_elem(&pc_deadman, &k);
	if (!last)
		return PC_MODE_QUARANTINE;
	if ((__s64)(bpf_ktime_get_boot_ns() - *last) <= (__s64)*timeout)
		return PC_MODE_NORMAL;
	k = PC_DM_ACTION;
	action = bpf_map_lookup_elem(&pc_deadman, &k);
	/* Never weaker than lockdown once tripped. */
	if (!action || *action < PC_MODE_LOCKDOWN)
		return PC_MODE_LOCKDOWN;
	return mode_sane(*action);
}

static __always_inline struct pc_verdict
rules_verdict(__u32 slot, __u32 mode, __u8 dir, const struct pc_pkt *pkt,
	      __u8 pclass, __u32 ifindex)
{
	struct pc_query q = {
		.slot = slot, .mode = mode, .dir = dir, .family = pkt->family,
		.pclass = pclass, .port = pkt->dport, .ifindex = ifindex,
	};

	__builtin_memcpy(q.raddr, dir == PC_DIR_INGRESS ? pkt->saddr :
			 pkt->daddr, 16);
	return verdict_unpack(pc_rules_verdict(&q));
}

static __always_inline void event_inc(__u32 ev)
{
	__u64 *cnt = bpf_map_lookup_elem(&pc_events, &ev);

	if (cnt)
		(*cnt)++;
}

/* The anomaly signal egress_denied: a denied packet the host initiated.
 * Called before audit mode passes it, as the reason counters count it. */
static __always_inline void count_host_denied(const struct pc_pkt *pkt,
					      __u32 dir, struct pc_verdict v)
{
	__u32 ev = PC_HE_EGRESS_DENIED;
	__u64 *cnt;

	if (dir != PC_DIR_EGRESS || (v.reason != PC_R_DROP_DENY &&
				     v.reason != PC_R_DROP_DEFAULT))
		return;
	if (!flow_host_initiated(pkt))
		return;
	cnt = bpf_map_lookup_elem(&pc_host_events, &ev);
	if (cnt)
		(*cnt)++;
}

/* A token from this CPU's bucket, refilled at PC_DROP_SAMPLE_RATE/s. */
static __always_inline bool drop_budget_take(__u64 now)
{
	struct pc_drop_budget *b;
	__u32 zero = 0;
	__u64 add;

	b = bpf_map_lookup_elem(&pc_drop_budget, &zero);
	if (!b)
		return false;
	add = (now - b->last_ns) * PC_DROP_SAMPLE_RATE / 1000000000ULL;
	if (add) {
		b->tokens += add;
		if (b->tokens > PC_DROP_SAMPLE_BURST)
			b->tokens = PC_DROP_SAMPLE_BURST;
		b->last_ns = now;
	}
	if (!b->tokens)
		return false;
	b->tokens--;
	return true;
}

/* Sample a drop into the ring for `portcullis monitor`, within budget. */
static __always_inline void drop_sample(const struct pc_pkt *pkt,
					struct pc_verdict v, __u32 dir,
					__u32 bytes, __u32 ifindex, __u32 mode,
					__u32 slot)
{
	struct pc_drop_event *e;

	/* The budget needs tick precision only; the sample an exact time. */
	if (!drop_budget_take(bpf_ktime_get_coarse_ns())) {
		event_inc(PC_EV_DROP_UNSAMPLED);
		return;
	}
	e = bpf_ringbuf_reserve(&pc_drops, sizeof(*e), 0);
	if (!e) {
		event_inc(PC_EV_DROP_RING_FULL);
		return;
	}
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->ifindex = ifindex;
	e->len = bytes;
	e->rule = v.rule;
	e->reason = v.reason;
	e->dir = dir;
	e->family = pkt->family;
	e->proto = pkt->proto;
	e->mode = mode;
	e->slot = slot;
	e->sport = pkt->sport;
	e->dport = pkt->dport;
	__builtin_memcpy(e->saddr, pkt->saddr, 16);
	__builtin_memcpy(e->daddr, pkt->daddr, 16);
	bpf_ringbuf_submit(e, 0);
	event_inc(PC_EV_DROP_SAMPLED);
}

/* Non-first fragments carry no ports: follow their first fragment. */
static __always_inline struct pc_verdict
decide_later_fragment(__u32 slot, const struct pc_settings *s, __u32 mode,
		      const struct pc_pkt *pkt, __u8 dir, __u32 ifindex)
{
	struct pc_verdict v = { .rule = PC_RULE_NONE };
	struct pc_frag_key fk;
	struct pc_frag *fv;

	frag_key_build(&fk, pkt, dir);
	fv = bpf_map_lookup_elem(&pc_frags, &fk);
	if (fv && (!fv->pass || (fv->generation == s->generation &&
				 fv->mode == mode))) {
		v.pass = fv->pass;
		v.reason = fv->pass ? PC_R_PASS_FRAG : fv->reason;
		/* A rule index means something only in its own generation. */
		v.rule = fv->generation == s->generation ? fv->rule : PC_RULE_NONE;
		return v;
	}
	if (mode != PC_MODE_NORMAL) {
		v.reason = PC_R_DROP_FRAGMENT;
		return v;
	}
	/* Unknown first fragment: only rules that ignore ports can speak. */
	v = rules_verdict(slot, mode, dir, pkt, PC_PC_NOPORT, ifindex);
	if (v.reason == VERDICT_MISS)
		v = default_verdict(s, mode, dir);
	return v;
}

/* Rules first, then the flow table, then the mode's default. */
static __always_inline struct pc_verdict
decide_ip(__u32 slot, const struct pc_settings *s, __u32 mode,
	  const struct pc_pkt *pkt, __u8 dir, __u32 bytes, __u32 ifindex)
{
	struct pc_verdict v;

	v = rules_verdict(slot, mode, dir, pkt,
			  proto_class(pkt->family, pkt->proto), ifindex);
	if (v.reason != VERDICT_MISS)
		return v;
	if (flow_reply(slot, mode, pkt, dir))
		return (struct pc_verdict){ 1, PC_R_PASS_FLOW, PC_RULE_NONE };
	if (flow_related(slot, mode, pkt, dir, bytes))
		return (struct pc_verdict){ 1, PC_R_PASS_RELATED, PC_RULE_NONE };
	return default_verdict(s, mode, dir);
}

static __always_inline int is_nd(const struct pc_pkt *pkt)
{
	/* RS, RA, NS, NA, redirect; RFC 4861 demands hop limit 255. */
	return pkt->family == 6 && pkt->proto == IPPROTO_ICMPV6_ &&
	       pkt->frag == FRAG_NONE && pkt->icmp_type >= 133 &&
	       pkt->icmp_type <= 137 && pkt->hop_limit == 255;
}

/* Remember an IP packet's verdict where later packets will need it. */
static __always_inline void remember(const struct pc_pkt *pkt, __u8 dir,
				     struct pc_verdict v, __u32 slot,
				     __u32 generation, __u32 mode)
{
	if (v.pass && v.reason != PC_R_PASS_FLOW &&
	    v.reason != PC_R_PASS_RELATED && flow_opens(pkt)) {
		struct pc_flow_key fk;

		flow_key_build(&fk, pkt->family, pkt->proto, dir, pkt->saddr,
			       pkt->daddr, pkt->sport, pkt->dport, pkt->icmp_type);
		flow_open(&fk, dir,
			  pkt->proto == IPPROTO_TCP_ ? pkt->tcp_flags : 0,
			  slot, generation, mode, flow_creates(pkt));
	}
	if (pkt->frag == FRAG_FIRST) {
		struct pc_frag fv = {
			.pass = v.pass, .reason = v.reason, .rule = v.rule,
			.generation = generation, .mode = mode,
		};
		struct pc_frag_key fk;

		frag_key_build(&fk, pkt, dir);
		bpf_map_update_elem(&pc_frags, &fk, &fv, BPF_ANY);
	}
}

/*
 * A dead-man trip enters a strict mode with no agent to bump its cut epoch
 * (struct pc_cuts): the datapath does, once per trip -- the stale heartbeat's
 * stamp names the trip. Two CPUs racing may bump twice: still a new epoch.
 */
static __always_inline void deadman_cut(__u32 dm)
{
	__u32 k = PC_DM_LAST_HB_NS;
	__u64 *last = bpf_map_lookup_elem(&pc_deadman, &k);
	struct pc_cuts *c = cuts_get();
	__u64 trip = (last ? *last : 0) + 1;

	if (!c || c->dm_trip == trip)
		return;
	c->dm_trip = trip;
	if (dm == PC_MODE_LOCKDOWN)
		__sync_fetch_and_add(&c->epoch[PC_MODE_LOCKDOWN], 1);
	else
		__sync_fetch_and_add(&c->epoch[PC_MODE_QUARANTINE], 1);
}

/*
 * The verdict for a parsed frame, counted. Global so the verifier checks
 * it once rather than once per parser path. parse_res: enum parse_result.
 */
__noinline int pc_decide(const struct pc_pkt *pkt, __u32 parse_res, __u32 dir,
			 __u32 bytes, __u32 ifindex)
{
	struct pc_verdict v = { .rule = PC_RULE_NONE };
	struct pc_settings *s;
	__u32 slot, mode, dm;
	bool deadman = false;

	if (!pkt)	/* global-function pointers may be NULL to the verifier */
		return 0;
	dir &= 1;
	slot = state_get(PC_STATE_ACTIVE_SLOT) & 1;
	mode = mode_sane(state_get(PC_STATE_MODE));
	dm = deadman_mode();
	if (dm > mode) {
		deadman_cut(dm);
		mode = dm;
		deadman = true;
	}
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	if (!s || !s->generation) {
		v.reason = PC_R_DROP_NOPOLICY;
		goto out;
	}

	if (parse_res == PARSE_ARP) {
		v.pass = !!(s->flags & PC_F_ALLOW_ARP);
		v.reason = v.pass ? PC_R_PASS_ARP : PC_R_DROP_L2;
	} else if (parse_res == PARSE_NONIP) {
		v.reason = PC_R_DROP_L2;
	} else if (parse_res != PARSE_IP) {
		/* Whatever the parser could not vouch for is dropped. */
		v.reason = PC_R_DROP_MALFORMED;
	} else if (is_nd(pkt) && (s->flags & PC_F_ALLOW_ND)) {
		v.pass = 1;
		v.reason = PC_R_PASS_ND;
	} else if (pkt->frag == FRAG_LATER) {
		v = decide_later_fragment(slot, s, mode, pkt, dir, ifindex);
	} else {
		v = decide_ip(slot, s, mode, pkt, dir, bytes, ifindex);
		remember(pkt, dir, v, slot, s->generation, mode);
	}

	/* The dead-man switch's drops are told apart from a chosen mode's. */
	if (deadman && (v.reason == PC_R_DROP_LOCKDOWN ||
			v.reason == PC_R_DROP_QUARANTINE))
		v.reason = PC_R_DROP_DEADMAN;

	/* Only IP packets get these two reasons: pkt is parsed. */
	count_host_denied(pkt, dir, v);

	/* Audit (normal mode only): count the would-be drop, then pass. */
	if (!v.pass && mode == PC_MODE_NORMAL && (s->flags & PC_F_AUDIT) &&
	    (v.reason == PC_R_DROP_DEFAULT || v.reason == PC_R_DROP_DENY)) {
		count(slot, dir, v, bytes);
		v = (struct pc_verdict){ 1, PC_R_PASS_AUDIT, PC_RULE_NONE };
	}

	/* The controller port's budget: what it refuses is counted in
	 * pc_ctl_stats alone (the reasons say what the policy decided). */
	if (v.pass && dir == PC_DIR_INGRESS && parse_res == PARSE_IP &&
	    !ctl_admit(pkt, v.reason == PC_R_PASS_MGMT, ifindex))
		return 0;
out:
	count(slot, dir, v, bytes);
	if (!v.pass)
		drop_sample(pkt, v, dir, bytes, ifindex, mode, slot);
	return v.pass;
}

static __always_inline int pc_process(void *data, void *data_end, __u32 bytes,
				      __u8 dir, __u32 ifindex)
{
	struct pc_pkt pkt = {};
	int res;

	res = parse_packet(data, data_end, &pkt);
	return pc_decide(&pkt, res, dir, bytes, ifindex);
}

SEC("xdp")
int xdp_ingress(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	return pc_process(data, data_end, data_end - data, PC_DIR_INGRESS,
			  ctx->ingress_ifindex) ? XDP_PASS : XDP_DROP;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
	__u32 len = skb->len;
	__u32 pull = len < PC_TC_PULL_LEN ? len : PC_TC_PULL_LEN;
	void *data, *data_end;

	/* Best effort: if the pull fails the parser sees a short frame and
	 * drops it as malformed, never passes it unseen. */
	if ((void *)(long)skb->data + pull > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, pull);
	/* Keep clang from folding the two reads of skb->data into one ctx
	 * pointer arithmetic the verifier refuses. */
	asm volatile("" ::: "memory");
	data = (void *)(long)skb->data;
	data_end = (void *)(long)skb->data_end;
	return pc_process(data, data_end, len, PC_DIR_EGRESS, skb->ifindex) ?
		       TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

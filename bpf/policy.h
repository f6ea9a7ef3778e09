/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Rule classification without per-rule loops: one LPM lookup on the remote
 * address and one array index on (direction, protocol, destination port)
 * each return the set of rules that field matches; their intersection is
 * the set of matching rules. Userspace precomputes the sets (see
 * user/compile.c), so the cost per packet is nearly the same for 1 or
 * 1,000,000 CIDRs.
 */
#ifndef PC_BPF_POLICY_H
#define PC_BPF_POLICY_H

/* No rule decided: go on to flows, then the mode's default. */
#define VERDICT_MISS	0xff

struct pc_verdict {
	__u8 pass;
	__u8 reason;		/* enum pc_reason, or VERDICT_MISS */
	__u16 rule;		/* slot-relative rule index or PC_RULE_NONE */
};

/* A mode we do not know is the most secure one we do. An explicit
 * compare, not a modulo, so the verifier can bound array indexes by it. */
static __always_inline __u32 mode_sane(__u32 mode)
{
	return mode < PC_MODE_COUNT ? mode : PC_MODE_QUARANTINE;
}

/* Index of the lowest set bit; x must be non-zero. */
static __always_inline __u16 lowest_bit(__u64 x)
{
	__u16 n = 0;

	if (!(x & 0xffffffffULL)) { n += 32; x >>= 32; }
	if (!(x & 0xffffULL)) { n += 16; x >>= 16; }
	if (!(x & 0xffULL)) { n += 8; x >>= 8; }
	if (!(x & 0xfULL)) { n += 4; x >>= 4; }
	if (!(x & 0x3ULL)) { n += 2; x >>= 2; }
	if (!(x & 0x1ULL))
		n += 1;
	return n;
}

/* Lowest rule index present in both sets, or PC_RULE_NONE. */
static __always_inline __u16 first_common(const struct pc_ruleset *a,
					  const struct pc_ruleset *b)
{
#pragma unroll
	for (int w = 0; w < PC_RULE_WORDS; w++) {
		__u64 x = a->bits[w] & b->bits[w];

		if (x)
			return w * 64 + lowest_bit(x);
	}
	return PC_RULE_NONE;
}

static __always_inline __u8 proto_class(__u8 family, __u8 proto)
{
	if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_)
		return proto;
	if (family == 4 && proto == IPPROTO_ICMP_)
		return PC_PC_ICMP;
	if (family == 6 && proto == IPPROTO_ICMPV6_)
		return PC_PC_ICMPV6;
	return PC_PC_OTHER;
}

/* Rules matching (direction, remote address, class, destination port). */
static __always_inline void classify(__u32 slot, __u8 dir, __u8 family,
				     const __u8 *raddr, __u8 pclass,
				     __u16 port, struct pc_ruleset *out)
{
	struct pc_addr_val *av = NULL;
	struct pc_ruleset *pv;
	__u32 pidx;

	__builtin_memset(out, 0, sizeof(*out));
	if (family == 4) {
		struct pc_addr4_key k4 = { .prefixlen = 32 + 32, .slot = slot };

		__builtin_memcpy(k4.addr, raddr, 4);
		av = bpf_map_lookup_elem(&pc_addr4, &k4);
	} else {
		struct pc_addr6_key k6 = { .prefixlen = 32 + 128, .slot = slot };

		__builtin_memcpy(k6.addr, raddr, 16);
		av = bpf_map_lookup_elem(&pc_addr6, &k6);
	}
	if (!av)
		return;
	/* A direct array index (the verifier inlines the lookup); ports
	 * carry no meaning outside TCP and UDP, whose classes ignore them. */
	pidx = pc_port_index(slot, dir, pclass, bpf_ntohs(port));
	pv = bpf_map_lookup_elem(&pc_ports, &pidx);
	if (!pv)
		return;
#pragma unroll
	for (int w = 0; w < PC_RULE_WORDS; w++)
		out->bits[w] = av->dir[dir & 1].bits[w] & pv->bits[w];
}

/* Management (those that hold on this interface) first, then deny, then
 * allow rules of the current mode. */
static __always_inline struct pc_verdict
decide_rules(const struct pc_settings *s, const struct pc_ruleset *mgmt,
	     __u32 mode, const struct pc_ruleset *matched)
{
	struct pc_verdict v = { .reason = VERDICT_MISS, .rule = PC_RULE_NONE };
	__u16 r;

	r = first_common(matched, mgmt);
	if (r != PC_RULE_NONE)
		return (struct pc_verdict){ 1, PC_R_PASS_MGMT, r };
	r = first_common(matched, &s->deny[mode]);
	if (r != PC_RULE_NONE)
		return (struct pc_verdict){ 0, PC_R_DROP_DENY, r };
	r = first_common(matched, &s->allow[mode]);
	if (r != PC_RULE_NONE)
		return (struct pc_verdict){ 1, PC_R_PASS_RULE, r };
	return v;
}

static __always_inline struct pc_verdict
default_verdict(const struct pc_settings *s, __u32 mode, __u8 dir)
{
	struct pc_verdict v = { .rule = PC_RULE_NONE };

	if (mode == PC_MODE_NORMAL) {
		v.pass = s->default_action[dir & 1] == PC_ACT_ALLOW;
		v.reason = v.pass ? PC_R_PASS_DEFAULT : PC_R_DROP_DEFAULT;
	} else {
		v.reason = mode == PC_MODE_LOCKDOWN ? PC_R_DROP_LOCKDOWN :
						      PC_R_DROP_QUARANTINE;
	}
	return v;
}

/* One policy question: what do the rules say about this tuple? */
/* Small: it lives on the stack of the deepest call chain (512 bytes). */
struct pc_query {
	__u8 slot;
	__u8 mode;
	__u8 dir;
	__u8 family;
	__u8 pclass;
	__u8 pad;
	__u16 port;		/* destination port, network order */
	__u32 ifindex;		/* where the packet arrives or leaves */
	__u8 raddr[16];
};

/* Verdicts cross global-function boundaries packed in one scalar. */
static __always_inline int verdict_pack(struct pc_verdict v)
{
	return v.pass | (v.reason << 8) | ((__u32)v.rule << 16);
}

static __always_inline struct pc_verdict verdict_unpack(int x)
{
	struct pc_verdict v = {
		.pass = x & 1,
		.reason = (x >> 8) & 0xff,
		.rule = ((__u32)x >> 16) & 0xffff,
	};
	return v;
}

/*
 * The rules' verdict, or VERDICT_MISS. A global function: the verifier
 * checks it once, not once per parser path that reaches it.
 */
__noinline int pc_rules_verdict(const struct pc_query *q)
{
	struct pc_verdict miss = { .reason = VERDICT_MISS, .rule = PC_RULE_NONE };
	struct pc_ruleset matched, mgmt;
	struct pc_settings *s;
	__u32 slot;

	if (!q)
		return verdict_pack(miss);
	slot = q->slot & 1;
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	if (!s)
		return verdict_pack(miss);
	classify(slot, q->dir, q->family, q->raddr, q->pclass, q->port, &matched);
	mgmt_on_iface(slot, q->ifindex, s, &mgmt);
	return verdict_pack(decide_rules(s, &mgmt, mode_sane(q->mode), &matched));
}

#endif /* PC_BPF_POLICY_H */

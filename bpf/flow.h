/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Stateful return traffic. A packet the policy passes opens (or refreshes)
 * a flow; a packet in the other direction that the rules do not pass gets
 * through only if its flow is still vouched for: the policy generation and
 * mode are the ones that last allowed it, or the opening direction still
 * passes when re-decided under the current policy and mode. So a lockdown,
 * a quarantine or a reload cuts exactly the flows it no longer allows.
 * A cut is for good: a flow that lived through a strict mode is re-decided
 * under it (the cut epochs, struct pc_cuts), and only a SYN opens a TCP
 * flow, so a connection that was cut cannot resume mid-stream.
 *
 * Two tables by who opened the flow: pc_flows for the host's (an egress
 * packet created them), pc_flows_peer for the far end's. Both are LRU, and
 * only packets from outside fill the second, so a flood of them evicts
 * only flows an outsider opened, never the host's idle connections. TCP
 * flows carry a state (PC_FLOW_S_*) that sets how long they live idle.
 */
#ifndef PC_BPF_FLOW_H
#define PC_BPF_FLOW_H

/*
 * Flow ages only need tick precision; the coarse clock costs a fraction of
 * an exact read on every allowed packet (CLOCK_MONOTONIC_COARSE: the agent
 * reads created_ns with the same clock).
 */
static __always_inline __u64 flow_clock(void)
{
	return bpf_ktime_get_coarse_ns();
}

/*
 * Echo flows are keyed by who asked (pad: 1 this host, 2 the peer), so a
 * request never finds the flow of a request the other way, and no other
 * ICMP (pad 0) ever finds an echo flow -- whatever the echo id, 0 too.
 */
static __always_inline __u16 echo_asker(__u8 family, __u8 proto, __u8 type,
					__u8 dir)
{
	bool request;

	if (!(family == 4 && proto == IPPROTO_ICMP_) &&
	    !(family == 6 && proto == IPPROTO_ICMPV6_))
		return 0;
	if (!is_icmp_echo(family, type))
		return 0;
	request = is_icmp_echo_request(family, type);
	return request == (dir == PC_DIR_EGRESS) ? 1 : 2;
}

static __always_inline void flow_key_build(struct pc_flow_key *k, __u8 family,
					   __u8 proto, __u8 dir,
					   const __u8 *saddr, const __u8 *daddr,
					   __u16 sport, __u16 dport, __u8 icmp_type)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = family;
	k->proto = proto;
	k->pad = echo_asker(family, proto, icmp_type, dir);
	if (dir == PC_DIR_EGRESS) {
		k->lport = sport;
		k->rport = dport;
		__builtin_memcpy(k->laddr, saddr, 16);
		__builtin_memcpy(k->raddr, daddr, 16);
	} else {
		k->lport = dport;
		k->rport = sport;
		__builtin_memcpy(k->laddr, daddr, 16);
		__builtin_memcpy(k->raddr, saddr, 16);
	}
}

#define PC_TCP_FIN 0x01
#define PC_TCP_SYN 0x02
#define PC_TCP_RST 0x04
#define PC_TCP_ACK 0x10

static __always_inline __u8 flow_dir(const struct pc_flow *f)
{
	return f->dir & PC_FLOW_DIR;
}

static __always_inline __u8 flow_state(const struct pc_flow *f)
{
	return f->dir & PC_FLOW_S_MASK;
}

static __always_inline int flow_idle(const struct pc_flow_key *k,
				     const struct pc_flow *f, __u64 now)
{
	__u64 idle = PC_FLOW_IDLE_NS;

	if (k->proto == IPPROTO_TCP_) {
		switch (flow_state(f)) {
		case PC_FLOW_S_SYN: idle = PC_FLOW_IDLE_SYN_NS; break;
		case PC_FLOW_S_FIN: idle = PC_FLOW_IDLE_FIN_NS; break;
		case PC_FLOW_S_RST: idle = PC_FLOW_IDLE_RST_NS; break;
		default: idle = PC_FLOW_IDLE_TCP_NS; break;
		}
	}
	return now - f->last_ns > idle;
}

/*
 * The state a TCP segment moves its flow to. opener_side: it went the way
 * the flow's first SYN did; an answer the other way with ACK completes the
 * handshake. A FIN or RST from the far end ends only a flow the far end
 * opened: one forged at the host's own flows must not cut them short. A
 * closing flow still lives while packets come (its idle time restarts).
 */
static __always_inline __u8 tcp_state_next(__u8 state, __u8 flags,
					   bool opener_side, __u8 dir,
					   __u8 opener)
{
	bool trusted = dir == PC_DIR_EGRESS || opener == PC_DIR_INGRESS;

	if (flags & PC_TCP_RST)
		return trusted ? PC_FLOW_S_RST : state;
	if (flags & PC_TCP_FIN)
		return trusted && state != PC_FLOW_S_RST ? PC_FLOW_S_FIN : state;
	if (state == PC_FLOW_S_SYN && !opener_side && (flags & PC_TCP_ACK))
		return PC_FLOW_S_EST;
	return state;
}

/*
 * The table of flows opener opened: PC_DIR_EGRESS the host, PC_DIR_INGRESS
 * the far end. A datapath older than the split kept both in pc_flows, so a
 * live upgrade finds the far end's there too until they age out; the
 * direction bit tells them apart.
 */
static __always_inline struct pc_flow *flow_lookup(const struct pc_flow_key *k,
						   __u8 opener)
{
	struct pc_flow *f;

	if (opener == PC_DIR_INGRESS) {
		f = bpf_map_lookup_elem(&pc_flows_peer, k);
		if (f)
			return f;
	}
	f = bpf_map_lookup_elem(&pc_flows, k);
	return f && flow_dir(f) == opener ? f : NULL;
}

/*
 * The flows under k: *own the one dir opened, *rev the one the other way
 * opened. A live own flow is all a packet needs, so the other table is
 * looked up only without one: one lookup on a flow's usual packets.
 */
static __always_inline void flow_find_both(const struct pc_flow_key *k,
					   __u8 dir, __u64 now,
					   struct pc_flow **own,
					   struct pc_flow **rev)
{
	struct pc_flow *h = NULL, *p = NULL;

	if (dir == PC_DIR_INGRESS) {
		p = bpf_map_lookup_elem(&pc_flows_peer, k);
		if (!p || flow_idle(k, p, now))
			h = bpf_map_lookup_elem(&pc_flows, k);
	} else {
		h = bpf_map_lookup_elem(&pc_flows, k);
		if (!h || flow_dir(h) != PC_DIR_EGRESS || flow_idle(k, h, now))
			p = bpf_map_lookup_elem(&pc_flows_peer, k);
	}
	if (h && flow_dir(h) != PC_DIR_EGRESS) {
		if (!p)
			p = h;	/* an older datapath's, as in flow_lookup */
		h = NULL;
	}
	*own = dir == PC_DIR_EGRESS ? h : p;
	*rev = dir == PC_DIR_EGRESS ? p : h;
}

/* One more entry created or deleted in table (enum pc_flow_stat). */
static __always_inline void flow_count(__u8 table, __u32 kind)
{
	__u32 key = PC_FS_KEY(table & 1, kind);
	__u64 *c = bpf_map_lookup_elem(&pc_flow_stats, &key);

	if (c)
		(*c)++;
}

/*
 * Write nf under k into map; 1 if that created the entry. Only a
 * BPF_NOEXIST update that succeeds creates one, so every entry created is
 * counted, however the updates of other CPUs interleave. was: the caller
 * found it there, so a refresh costs one update; a guess a race (or an
 * older datapath's entry in the other table) may prove wrong, then the
 * other flag follows. Both failing (a race each time) stores nothing:
 * the flow is not refreshed, which can only drop its replies.
 */
static __always_inline int flow_put(void *map, const struct pc_flow_key *k,
				    const struct pc_flow *nf, bool was)
{
	if (was && !bpf_map_update_elem(map, k, nf, BPF_EXIST))
		return 0;
	if (!bpf_map_update_elem(map, k, nf, BPF_NOEXIST))
		return 1;
	if (!was)
		bpf_map_update_elem(map, k, nf, BPF_EXIST);
	return 0;
}

static __always_inline void flow_store(const struct pc_flow_key *k,
				       __u8 opener, const struct pc_flow *nf,
				       bool was)
{
	if (opener == PC_DIR_INGRESS) {
		if (flow_put(&pc_flows_peer, k, nf, was))
			flow_count(PC_DIR_INGRESS, PC_FS_INSERTED);
	} else if (flow_put(&pc_flows, k, nf, was)) {
		flow_count(PC_DIR_EGRESS, PC_FS_INSERTED);
	}
}

static __always_inline void flow_delete(const struct pc_flow_key *k,
					__u8 opener)
{
	if (opener == PC_DIR_INGRESS) {
		if (!bpf_map_delete_elem(&pc_flows_peer, k))
			flow_count(PC_DIR_INGRESS, PC_FS_DELETED);
		/* An older datapath's entry of it, if any. */
		if (!flow_lookup(k, PC_DIR_INGRESS))
			return;
	}
	if (!bpf_map_delete_elem(&pc_flows, k))
		flow_count(PC_DIR_EGRESS, PC_FS_DELETED);
}

/* A packet of a live flow: its TCP state moved, its idle time restarts
 * (written once a second at most, or when the state moves). */
static __always_inline void flow_touch(const struct pc_flow_key *k,
				       struct pc_flow *f, __u8 tcp_flags,
				       __u8 dir, __u64 now)
{
	__u8 st = flow_state(f), nst = st;

	if (k->proto == IPPROTO_TCP_)
		nst = tcp_state_next(st, tcp_flags, flow_dir(f) == dir, dir,
				     flow_dir(f));
	if (nst != st)
		f->dir = flow_dir(f) | nst;
	if (nst != st || now - f->last_ns >= 1000000000ULL)
		f->last_ns = now;
}

/* Only connection-like traffic opens flows: not ICMP errors or replies. */
static __always_inline int flow_opens(const struct pc_pkt *pkt)
{
	if (pkt->frag == FRAG_LATER)
		return 0;
	if (pkt->proto == IPPROTO_ICMP_ && pkt->family == 4)
		return pkt->icmp_type == 8;
	if (pkt->proto == IPPROTO_ICMPV6_ && pkt->family == 6)
		return pkt->icmp_type == 128;
	return 1;
}

/* A new TCP flow only from a connection's first SYN: a mid-stream segment
 * (a cut connection's retransmission) refreshes a flow, never creates one. */
static __always_inline int flow_creates(const struct pc_pkt *pkt)
{
	if (pkt->proto == IPPROTO_TCP_)
		return (pkt->tcp_flags & (PC_TCP_SYN | PC_TCP_ACK)) == PC_TCP_SYN;
	return 1;
}

/*
 * Did the host itself start the exchange this egress packet belongs to? A
 * packet that would create a flow (flow_opens, flow_creates): for TCP a SYN
 * without ACK, for ICMP an echo request -- flags and type say who asked, so
 * no lookup -- and for UDP and the rest any packet but a reply, i.e. one
 * with no flow the far end opened (a flow keeps its opener's direction).
 * What an outsider sends can make the host answer, never initiate.
 */
static __always_inline int flow_host_initiated(const struct pc_pkt *pkt)
{
	struct pc_flow_key k;

	if (!flow_opens(pkt) || !flow_creates(pkt))
		return 0;
	if (pkt->proto == IPPROTO_TCP_ ||
	    (pkt->family == 4 && pkt->proto == IPPROTO_ICMP_) ||
	    (pkt->family == 6 && pkt->proto == IPPROTO_ICMPV6_))
		return 1;
	flow_key_build(&k, pkt->family, pkt->proto, PC_DIR_EGRESS, pkt->saddr,
		       pkt->daddr, pkt->sport, pkt->dport, pkt->icmp_type);
	return !flow_lookup(&k, PC_DIR_INGRESS);
}

static __always_inline struct pc_cuts *cuts_get(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&pc_cuts, &zero);
}

/* Vouched for since the last lockdown and quarantine began? */
static __always_inline int flow_cuts_seen(const struct pc_flow *f,
					  const struct pc_cuts *c)
{
	return c && f->cut_lockdown == (__u8)c->epoch[PC_MODE_LOCKDOWN] &&
	       f->cut_quarantine == (__u8)c->epoch[PC_MODE_QUARANTINE];
}

__noinline int pc_flow_vouch(const struct pc_flow_key *k, __u32 slot,
			     __u32 mode, __u32 opener);

/*
 * A packet the rules passed, going dir: the flow it opens or refreshes.
 * create: it may start one (for TCP only a SYN). tcp_flags: 0 if not TCP.
 */
static __always_inline void flow_open(const struct pc_flow_key *k, __u8 dir,
				      __u8 tcp_flags, __u32 slot,
				      __u32 generation, __u32 mode, int create)
{
	struct pc_cuts *c = cuts_get();
	__u64 now = flow_clock();
	struct pc_flow nf = {};
	struct pc_flow *f, *rev;
	bool fresh;
	__u8 st;

	flow_find_both(k, dir, now, &f, &rev);
	fresh = !f || flow_idle(k, f, now);
	/* A reply the rules passed on its own: it must not re-vouch for,
	 * nor turn around, the flow its opener is judged by. */
	if (fresh && rev && !flow_idle(k, rev, now)) {
		flow_touch(k, rev, tcp_flags, dir, now);
		return;
	}
	/* Lived through a strict mode that cut it: gone for good. */
	if (f && !fresh && !flow_cuts_seen(f, c) &&
	    !pc_flow_vouch(k, slot, mode, dir)) {
		f = NULL;
		fresh = true;
	}
	/* A SYN on a closing flow's ports starts a new connection. */
	if (f && !fresh && create && k->proto == IPPROTO_TCP_ &&
	    flow_state(f) >= PC_FLOW_S_FIN)
		fresh = true;
	if (fresh && !create)
		return;
	if (fresh)
		st = k->proto == IPPROTO_TCP_ ? PC_FLOW_S_SYN : PC_FLOW_S_EST;
	else if (k->proto == IPPROTO_TCP_)
		st = tcp_state_next(flow_state(f), tcp_flags, true, dir, dir);
	else
		st = flow_state(f);
	/* Avoid a map write per packet: refresh once a second at most. */
	if (f && !fresh && st == flow_state(f) && f->generation == generation &&
	    f->mode == mode && flow_cuts_seen(f, c) &&
	    now - f->last_ns < 1000000000ULL)
		return;
	if (fresh) {
		__u32 ev = dir == PC_DIR_EGRESS ? PC_EV_FLOW_NEW_EGRESS :
						  PC_EV_FLOW_NEW_INGRESS;
		__u64 *cnt = bpf_map_lookup_elem(&pc_events, &ev);

		if (cnt)
			(*cnt)++;
	}
	nf.created_ns = f && !fresh ? f->created_ns : now;
	nf.last_ns = now;
	nf.generation = generation;
	nf.mode = mode;
	nf.dir = dir | st;
	if (c) {
		nf.cut_lockdown = c->epoch[PC_MODE_LOCKDOWN];
		nf.cut_quarantine = c->epoch[PC_MODE_QUARANTINE];
	}
	flow_store(k, dir, &nf, f != NULL);
}

/* Would the packet that opened this flow pass now, under mode? */
static __always_inline int flow_opener_passes(const struct pc_flow_key *k,
					      const struct pc_flow *f,
					      const struct pc_settings *s,
					      __u32 slot, __u32 mode)
{
	struct pc_query q = {};
	struct pc_verdict v;

	q.slot = slot;
	q.mode = mode;
	q.dir = flow_dir(f);
	q.family = k->family;
	q.pclass = proto_class(k->family, k->proto);
	q.port = q.dir == PC_DIR_EGRESS ? k->rport : k->lport;
	/* The flow table keeps no interface: bound management entries are
	 * judged by address here, so entering lockdown keeps the operator's
	 * sessions they admitted (README "Limits and known gaps"). */
	q.ifindex = PC_IFINDEX_ANY;
	__builtin_memcpy(q.raddr, k->raddr, 16);
	v = verdict_unpack(pc_rules_verdict(&q));
	if (v.reason == VERDICT_MISS)
		v = default_verdict(s, mode, q.dir);
	return v.pass;
}

/* Is this flow still allowed under the current policy and mode, and was it
 * under every strict mode entered since it was last vouched for? Cuts it
 * if not. opener: the table it is in (flow_lookup). Global, so the
 * verifier checks it once. */
__noinline int pc_flow_vouch(const struct pc_flow_key *k, __u32 slot,
			     __u32 mode, __u32 opener)
{
	__u64 now = flow_clock();
	struct pc_settings *s;
	struct pc_cuts *c;
	struct pc_flow *f;

	if (!k)
		return 0;
	slot &= 1;
	mode = mode_sane(mode);
	opener &= 1;
	s = bpf_map_lookup_elem(&pc_settings, &slot);
	f = flow_lookup(k, opener);
	c = cuts_get();
	if (!s || !f || !c)
		return 0;
	if (flow_idle(k, f, now))
		goto cut;
	if (!flow_cuts_seen(f, c)) {
		if (f->cut_quarantine != (__u8)c->epoch[PC_MODE_QUARANTINE] &&
		    !flow_opener_passes(k, f, s, slot, PC_MODE_QUARANTINE))
			goto cut;
		if (f->cut_lockdown != (__u8)c->epoch[PC_MODE_LOCKDOWN] &&
		    !flow_opener_passes(k, f, s, slot, PC_MODE_LOCKDOWN))
			goto cut;
		f->cut_lockdown = c->epoch[PC_MODE_LOCKDOWN];
		f->cut_quarantine = c->epoch[PC_MODE_QUARANTINE];
	}
	if (f->generation != s->generation || f->mode != mode) {
		/* Re-decide the packet that opened the flow, as of now. */
		if (!flow_opener_passes(k, f, s, slot, mode))
			goto cut;
		f->generation = s->generation;
		f->mode = mode;
	}
	if (now - f->last_ns >= 1000000000ULL)
		f->last_ns = now;
	return 1;
cut:
	flow_delete(k, opener);
	return 0;
}

/* A reply: a flow opened the other way exists and is vouched for. */
static __always_inline int flow_reply(__u32 slot, __u32 mode,
				      const struct pc_pkt *pkt, __u8 dir)
{
	struct pc_flow_key k;
	struct pc_flow *f;

	if (pkt->frag == FRAG_LATER)
		return 0;
	flow_key_build(&k, pkt->family, pkt->proto, dir, pkt->saddr,
		       pkt->daddr, pkt->sport, pkt->dport, pkt->icmp_type);
	f = flow_lookup(&k, !dir);
	if (!f || !pc_flow_vouch(&k, slot, mode, !dir))
		return 0;
	/* Vouched for, so still there: its state moves with the reply. */
	flow_touch(&k, f, pkt->proto == IPPROTO_TCP_ ? pkt->tcp_flags : 0, dir,
		   flow_clock());
	return 1;
}

static __always_inline int addr_eq(const __u8 *a, const __u8 *b)
{
	const __u32 *x = (const void *)a, *y = (const void *)b;

	return !((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]));
}

/*
 * An ICMP error quoting a packet of a vouched-for flow. The quoted packet
 * went the other way, so its source is the error's destination. The error
 * must come from the flow's far end -- or, only inbound and only in normal
 * mode, from a router on the path -- be unfragmented and no longer than an
 * error needs: otherwise quoting a management flow would carry anything to
 * anyone in quarantine. bytes: the frame's length, L2 included.
 */
static __always_inline int flow_related(__u32 slot, __u32 mode,
					const struct pc_pkt *pkt, __u8 dir,
					__u32 bytes)
{
	const struct pc_inner *in = &pkt->inner;
	__u32 max = pkt->family == 4 ? PC_ICMP_ERR_MAX4 : PC_ICMP_ERR_MAX6;
	struct pc_flow_key k;

	if (!in->ok || pkt->frag != FRAG_NONE || bytes > max + pkt->l3_off)
		return 0;
	if (!addr_eq(pkt->daddr, in->saddr))
		return 0;
	if (!addr_eq(pkt->saddr, in->daddr) &&
	    (dir != PC_DIR_INGRESS || mode != PC_MODE_NORMAL))
		return 0;
	flow_key_build(&k, pkt->family, in->proto, !dir, in->saddr, in->daddr,
		       in->sport, in->dport, in->icmp_type);
	/* The quoted packet may be of either side's flow. */
	return pc_flow_vouch(&k, slot, mode, PC_DIR_EGRESS) ||
	       pc_flow_vouch(&k, slot, mode, PC_DIR_INGRESS);
}

static __always_inline void frag_key_build(struct pc_frag_key *k,
					   const struct pc_pkt *pkt, __u8 dir)
{
	__builtin_memset(k, 0, sizeof(*k));
	k->family = pkt->family;
	k->proto = pkt->frag_nh;
	k->dir = dir;
	k->id = pkt->frag_id;
	__builtin_memcpy(k->saddr, pkt->saddr, 16);
	__builtin_memcpy(k->daddr, pkt->daddr, 16);
}

#endif /* PC_BPF_FLOW_H */

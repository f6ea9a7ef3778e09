// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The reference datapath, from README "Semantics", "Modes" and "Datapath".
 * Written for obviousness, not speed: frames are read with byte offsets,
 * the rules are asked through the linear scan of user/model.c, flows and
 * fragments live in plain hash tables. Nothing here is shared with bpf/.
 */
#include <stdlib.h>
#include <string.h>
#include "ref.h"
#include "model.h"

/* From the README: what the parser walks before it gives up. */
#define REF_MAX_TAGS		2	/* VLAN tags, 802.1Q or 802.1ad */
#define REF_MAX_EXT		6	/* IPv6 extension headers */

#define ETH_HLEN_		14
#define ETHERTYPE_IP		0x0800
#define ETHERTYPE_IPV6		0x86dd
#define ETHERTYPE_ARP		0x0806
#define ETHERTYPE_QINQ		0x88a8
#define ETHERTYPE_VLAN		0x8100

#define P_HOPOPTS		0
#define P_ICMP			1
#define P_TCP			6
#define P_UDP			17
#define P_ROUTING		43
#define P_FRAGMENT		44
#define P_AH			51
#define P_ICMPV6		58
#define P_DSTOPTS		60

/* A protocol no rule can name, so user/model.c's scan keeps exactly the
 * address-only rules (proto any, no ports): how a later fragment whose
 * head we never saw is judged in normal mode. */
#define P_ADDR_ONLY		255

static __u16 rd16(const __u8 *p)
{
	return (__u16)(p[0] << 8 | p[1]);
}

static __u32 rd32(const __u8 *p)
{
	return (__u32)p[0] << 24 | (__u32)p[1] << 16 | (__u32)p[2] << 8 | p[3];
}

/* ---- parsing ---- */

static bool is_ext(__u8 nh)
{
	return nh == P_HOPOPTS || nh == P_ROUTING || nh == P_DSTOPTS ||
	       nh == P_FRAGMENT || nh == P_AH;
}

static bool family_icmp(__u8 family, __u8 proto)
{
	return (family == 4 && proto == P_ICMP) ||
	       (family == 6 && proto == P_ICMPV6);
}

static enum ref_echo echo_kind(__u8 family, __u8 type)
{
	if (type == (family == 4 ? 8 : 128))
		return REF_ECHO_REQUEST;
	if (type == (family == 4 ? 0 : 129))
		return REF_ECHO_REPLY;
	return REF_ECHO_NONE;
}

static bool icmp_is_error(__u8 family, __u8 type)
{
	if (family == 4)
		return type == 3 || type == 11 || type == 12;
	return type >= 1 && type <= 4;
}

/* IPv4 header at off; sets *l4. False: malformed. */
static bool parse4(const __u8 *f, size_t len, size_t off, struct ref_pkt *p,
		   size_t *l4)
{
	size_t hlen;
	__u16 fo;

	if (off + 20 > len || f[off] >> 4 != 4)
		return false;
	hlen = (f[off] & 0xf) * 4u;
	if (hlen < 20 || off + hlen > len || rd16(f + off + 2) < hlen)
		return false;
	p->family = 4;
	p->hop = f[off + 8];
	p->proto = f[off + 9];
	memcpy(p->src, f + off + 12, 4);
	memcpy(p->dst, f + off + 16, 4);
	fo = rd16(f + off + 6);
	if (fo & 0x1fff)
		p->frag = REF_TAIL;
	else if (fo & 0x2000)
		p->frag = REF_HEAD;
	p->frag_proto = p->proto;
	p->frag_id = rd16(f + off + 4);
	*l4 = off + hlen;
	return true;
}

/* IPv6 header and its extension chain at off; sets *l4. */
static bool parse6(const __u8 *f, size_t len, size_t off, struct ref_pkt *p,
		   size_t *l4)
{
	size_t pos = off + 40, hlen;
	int count = 0;
	__u8 nh, next;

	if (off + 40 > len || f[off] >> 4 != 6)
		return false;
	p->family = 6;
	p->hop = f[off + 7];
	nh = f[off + 6];
	memcpy(p->src, f + off + 8, 16);
	memcpy(p->dst, f + off + 24, 16);
	while (is_ext(nh)) {
		if (count++ == REF_MAX_EXT)
			return false;	/* deeper than we walk */
		if (nh == P_FRAGMENT) {
			__u16 fo;

			if (pos + 8 > len)
				return false;
			next = f[pos];
			fo = rd16(f + pos + 2);
			p->frag_proto = next;
			p->frag_id = rd32(f + pos + 4);
			if (fo & 0xfff8)
				p->frag = REF_TAIL;
			else if (fo & 1)
				p->frag = REF_HEAD;
			hlen = 8;
		} else {
			if (pos + 2 > len)
				return false;
			next = f[pos];
			hlen = nh == P_AH ? (f[pos + 1] + 2) * 4u :
					    (f[pos + 1] + 1) * 8u;
		}
		pos += hlen;
		if (pos > len)
			return false;
		nh = next;
		if (p->frag == REF_TAIL)
			break;	/* no transport header follows */
	}
	p->proto = nh;
	*l4 = pos;
	return true;
}

/* The packet an ICMP error quotes, at q; q->ok stays false if unusable. */
static void parse_quote(const __u8 *f, size_t len, size_t q, __u8 family,
			struct ref_quote *out)
{
	size_t t;

	memset(out, 0, sizeof(*out));
	if (family == 4) {
		size_t hlen;

		if (q + 20 > len || f[q] >> 4 != 4)
			return;
		hlen = (f[q] & 0xf) * 4u;
		if (hlen < 20 || q + hlen > len)
			return;
		out->proto = f[q + 9];
		memcpy(out->src, f + q + 12, 4);
		memcpy(out->dst, f + q + 16, 4);
		t = q + hlen;
	} else {
		if (q + 40 > len || f[q] >> 4 != 6)
			return;
		/* Its extension headers are not walked (README: known gap). */
		out->proto = f[q + 6];
		memcpy(out->src, f + q + 8, 16);
		memcpy(out->dst, f + q + 24, 16);
		t = q + 40;
	}
	if (out->proto == P_TCP || out->proto == P_UDP) {
		if (t + 4 > len)
			return;
		out->sport = rd16(f + t);
		out->dport = rd16(f + t + 2);
	} else if (family_icmp(family, out->proto)) {
		if (t + 8 > len)
			return;
		out->echo = echo_kind(family, f[t]);
		if (out->echo != REF_ECHO_NONE)
			out->echo_id = rd16(f + t + 4);
	}
	out->ok = true;
}

/* Transport header at l4 of a packet that has one. False: cut short. */
static bool parse_l4(const __u8 *f, size_t len, size_t l4, struct ref_pkt *p)
{
	if (p->proto == P_TCP || p->proto == P_UDP) {
		if (l4 + (p->proto == P_TCP ? 20 : 8) > len)
			return false;
		p->sport = rd16(f + l4);
		p->dport = rd16(f + l4 + 2);
		if (p->proto == P_TCP)
			p->tcp_flags = f[l4 + 13];
		return true;
	}
	if (!family_icmp(p->family, p->proto))
		return true;	/* no ports to read */
	if (l4 + 8 > len)
		return false;
	p->icmp = true;
	p->icmp_type = f[l4];
	p->echo = echo_kind(p->family, p->icmp_type);
	if (p->echo != REF_ECHO_NONE)
		p->echo_id = rd16(f + l4 + 4);
	if (icmp_is_error(p->family, p->icmp_type)) {
		p->icmp_error = true;
		parse_quote(f, len, l4 + 8, p->family, &p->quote);
	}
	return true;
}

void ref_parse(const __u8 *f, size_t len, struct ref_pkt *p)
{
	size_t off = ETH_HLEN_, l4 = 0;
	int tags = 0;
	__u16 type;
	bool ok;

	memset(p, 0, sizeof(*p));
	p->kind = REF_K_MALFORMED;
	if (len < ETH_HLEN_)
		return;
	type = rd16(f + 12);
	while (type == ETHERTYPE_VLAN || type == ETHERTYPE_QINQ) {
		if (tags++ == REF_MAX_TAGS || off + 4 > len)
			return;
		type = rd16(f + off + 2);
		off += 4;
	}
	if (type == ETHERTYPE_ARP) {
		p->kind = REF_K_ARP;
		return;
	}
	if (type == ETHERTYPE_IP)
		ok = parse4(f, len, off, p, &l4);
	else if (type == ETHERTYPE_IPV6)
		ok = parse6(f, len, off, p, &l4);
	else {
		p->kind = REF_K_NONIP;
		return;
	}
	if (!ok)
		return;
	p->l3_len = len - off;
	/* A head too short for its ports is malformed like any cut packet. */
	if (p->frag != REF_TAIL && !parse_l4(f, len, l4, p))
		return;
	p->kind = REF_K_IP;
}

/* ---- tables ---- */

static size_t slot_size(const struct ref_tab *t);

static int tab_init(struct ref_tab *t, size_t ksize, size_t vsize)
{
	memset(t, 0, sizeof(*t));
	t->ksize = ksize;
	t->vsize = vsize;
	t->cap = 1024;
	t->slots = calloc(t->cap, slot_size(t));
	return t->slots ? 0 : -1;
}

/* A slot: state byte, key, value, each 8-aligned so values are too. */
#define ALIGN8(x)	(((x) + 7) & ~(size_t)7)

static size_t slot_size(const struct ref_tab *t)
{
	return 8 + ALIGN8(t->ksize) + ALIGN8(t->vsize);
}

static __u8 *slot_at(const struct ref_tab *t, size_t i)
{
	return t->slots + i * slot_size(t);
}

static __u8 *slot_key(const struct ref_tab *t, __u8 *s)
{
	return s + 8;
}

static __u8 *slot_val(const struct ref_tab *t, __u8 *s)
{
	return s + 8 + ALIGN8(t->ksize);
}

static size_t key_hash(const void *k, size_t n)
{
	const __u8 *b = k;
	size_t h = 14695981039346656037ULL;

	while (n--)
		h = (h ^ *b++) * 1099511628211ULL;
	return h;
}

/* Slot states: 0 empty, 1 live, 2 deleted. */
static void *tab_find(const struct ref_tab *t, const void *key)
{
	size_t i = key_hash(key, t->ksize) & (t->cap - 1);

	for (;; i = (i + 1) & (t->cap - 1)) {
		__u8 *s = slot_at(t, i);

		if (!s[0])
			return NULL;
		if (s[0] == 1 && !memcmp(slot_key(t, s), key, t->ksize))
			return slot_val(t, s);
	}
}

static void tab_grow(struct ref_tab *t);

/* Insert or overwrite. */
static void tab_put(struct ref_tab *t, const void *key, const void *val)
{
	void *v = tab_find(t, key);
	size_t i;

	if (v) {
		memcpy(v, val, t->vsize);
		return;
	}
	if ((t->used + 1) * 2 > t->cap)
		tab_grow(t);
	for (i = key_hash(key, t->ksize) & (t->cap - 1);;
	     i = (i + 1) & (t->cap - 1)) {
		__u8 *s = slot_at(t, i);

		if (s[0] == 1)
			continue;
		if (!s[0])
			t->used++;
		s[0] = 1;
		memcpy(slot_key(t, s), key, t->ksize);
		memcpy(slot_val(t, s), val, t->vsize);
		t->live++;
		return;
	}
}

static void tab_grow(struct ref_tab *t)
{
	struct ref_tab old = *t;
	size_t cap = t->live * 4 > 1024 ? t->live * 4 : 1024;

	while (cap & (cap - 1))
		cap &= cap - 1;
	cap *= 2;
	t->slots = calloc(cap, slot_size(t));
	if (!t->slots)
		abort();
	t->cap = cap;
	t->used = t->live = 0;
	for (size_t i = 0; i < old.cap; i++) {
		__u8 *s = slot_at(&old, i);

		if (s[0] == 1)
			tab_put(t, slot_key(&old, s), slot_val(&old, s));
	}
	free(old.slots);
}

static void tab_del(struct ref_tab *t, const void *key)
{
	__u8 *v = tab_find(t, key);

	if (v) {
		v[-(long)(8 + ALIGN8(t->ksize))] = 2;	/* the slot's state */
		t->live--;
	}
}

static void tab_clear(struct ref_tab *t)
{
	memset(t->slots, 0, t->cap * slot_size(t));
	t->used = t->live = 0;
}

int ref_init(struct ref *m)
{
	memset(m, 0, sizeof(*m));
	if (tab_init(&m->flows, sizeof(struct ref_flow_key),
		     sizeof(struct ref_flow_val)) ||
	    tab_init(&m->frags, sizeof(struct ref_frag_key),
		     sizeof(struct ref_frag_val))) {
		ref_free(m);
		return -1;
	}
	return 0;
}

void ref_free(struct ref *m)
{
	free(m->flows.slots);
	free(m->frags.slots);
	memset(m, 0, sizeof(*m));
}

void ref_reset(struct ref *m)
{
	tab_clear(&m->flows);
	tab_clear(&m->frags);
}

void ref_set_policy(struct ref *m, const struct pc_policy *p, __u32 gen)
{
	m->pol = p;
	m->gen = gen;
}

static __u32 mode_of(__u32 word)
{
	return word < PC_MODE_COUNT ? word : PC_MODE_QUARANTINE;
}

void ref_set_mode(struct ref *m, __u32 mode)
{
	if (mode_of(mode) != PC_MODE_NORMAL && mode_of(mode) != mode_of(m->mode))
		m->cut[mode_of(mode)]++;
	m->mode = mode;
}

/* ---- deciding ---- */

/* An unknown mode word is enforced as quarantine (README "Modes"). */
static __u32 mode_eff(const struct ref *m)
{
	return mode_of(m->mode);
}

static struct ref_verdict rv(bool pass, enum pc_reason reason, int rule)
{
	struct ref_verdict v = { .pass = pass, .reason = reason, .rule = rule,
				 .rule_by_index = rule };

	return v;
}

static struct ref_verdict from_model(struct pc_model_verdict mv)
{
	return rv(mv.pass, mv.reason, mv.rule);
}

static bool rule_decided(enum pc_reason r)
{
	return r == PC_R_PASS_MGMT || r == PC_R_DROP_DENY ||
	       r == PC_R_PASS_RULE;
}

/* The rules (then the default) for a packet going dir. */
static struct pc_model_verdict judge(const struct ref *m, int dir, __u8 family,
				     const __u8 *remote, __u8 proto, __u16 port)
{
	return pc_model_decide(m->pol, mode_eff(m), dir, family, remote, proto,
			       proto == P_TCP || proto == P_UDP ? port : 0);
}

/*
 * The host-side key of a packet going dir. ICMP has one only for echo,
 * keyed by the id and by which side asked: a request from the far side
 * must never find the flow of our own request. False: no flow key.
 */
static bool flow_key(__u8 family, __u8 proto, int dir, const __u8 *src,
		     const __u8 *dst, __u16 sport, __u16 dport, bool icmp,
		     enum ref_echo echo, __u16 echo_id, struct ref_flow_key *k)
{
	bool out = dir == PC_DIR_EGRESS;

	memset(k, 0, sizeof(*k));
	k->family = family;
	k->proto = proto;
	memcpy(k->laddr, out ? src : dst, 16);
	memcpy(k->raddr, out ? dst : src, 16);
	if (icmp) {
		bool asker_local;

		if (echo == REF_ECHO_NONE)
			return false;
		asker_local = (echo == REF_ECHO_REQUEST) == out;
		k->asker = asker_local ? 1 : 2;
		k->lport = echo_id;
		return true;
	}
	if (proto == P_TCP || proto == P_UDP) {
		k->lport = out ? sport : dport;
		k->rport = out ? dport : sport;
	}
	return true;
}

static bool opener_passes(const struct ref *m, const struct ref_flow_key *k,
			  const struct ref_flow_val *f, __u32 mode)
{
	__u16 port = f->dir == PC_DIR_EGRESS ? k->rport : k->lport;
	__u16 pport = k->proto == P_TCP || k->proto == P_UDP ? port : 0;

	return pc_model_decide(m->pol, mode, f->dir, k->family, k->raddr,
			       k->proto, pport).pass;
}

static bool cuts_seen(const struct ref *m, const struct ref_flow_val *f)
{
	return f->cut[PC_MODE_LOCKDOWN] == (__u8)m->cut[PC_MODE_LOCKDOWN] &&
	       f->cut[PC_MODE_QUARANTINE] == (__u8)m->cut[PC_MODE_QUARANTINE];
}

static void cuts_mark(const struct ref *m, struct ref_flow_val *f)
{
	f->cut[PC_MODE_LOCKDOWN] = m->cut[PC_MODE_LOCKDOWN];
	f->cut[PC_MODE_QUARANTINE] = m->cut[PC_MODE_QUARANTINE];
}

/* Still allowed now, and under each strict mode entered since it was last
 * vouched for? Re-decide the opener if so; cut the flow if that drops it. */
static bool vouch(struct ref *m, const struct ref_flow_key *k,
		  struct ref_flow_val *f)
{
	static const __u32 strict[] = { PC_MODE_QUARANTINE, PC_MODE_LOCKDOWN };

	for (size_t i = 0; i < 2; i++) {
		__u32 s = strict[i];

		if (f->cut[s] != (__u8)m->cut[s] && !opener_passes(m, k, f, s)) {
			tab_del(&m->flows, k);
			return false;
		}
	}
	cuts_mark(m, f);
	if (f->gen == m->gen && f->mode == mode_eff(m))
		return true;
	if (!opener_passes(m, k, f, mode_eff(m))) {
		tab_del(&m->flows, k);
		return false;
	}
	f->gen = m->gen;
	f->mode = mode_eff(m);
	return true;
}

/* create: a packet that may start a flow (for TCP only a SYN). */
static void flow_open(struct ref *m, const struct ref_flow_key *k, int dir,
		      bool create)
{
	struct ref_flow_val *f = tab_find(&m->flows, k);
	struct ref_flow_val nf = { .dir = dir, .gen = m->gen,
				   .mode = mode_eff(m) };

	/* A flow keeps the direction that opened it. */
	if (f && f->dir != (__u32)dir)
		return;
	/* One that a strict mode cut since is gone for good. */
	if (f && !cuts_seen(m, f) && !vouch(m, k, f))
		f = NULL;
	if (!f && !create)
		return;
	cuts_mark(m, &nf);
	tab_put(&m->flows, k, &nf);
}

static bool flow_reply(struct ref *m, const struct ref_pkt *p, int dir)
{
	struct ref_flow_key k;
	struct ref_flow_val *f;

	/* Of ICMP only an echo reply answers a flow. */
	if (p->icmp && p->echo != REF_ECHO_REPLY)
		return false;
	if (!flow_key(p->family, p->proto, dir, p->src, p->dst, p->sport,
		      p->dport, p->icmp, p->echo, p->echo_id, &k))
		return false;
	f = tab_find(&m->flows, &k);
	return f && f->dir != (__u32)dir && vouch(m, &k, f);
}

/* An ICMP error travels back against the packet it quotes. */
static bool flow_related(struct ref *m, const struct ref_pkt *p, int dir)
{
	const struct ref_quote *q = &p->quote;
	struct ref_flow_key k;
	struct ref_flow_val *f;

	if (!p->icmp_error || !q->ok || p->frag != REF_WHOLE)
		return false;
	/* No bigger than an error needs, IP header on. */
	if (p->l3_len > (p->family == 4 ? 576u : 1280u))
		return false;
	/* To the quoted packet's sender; from its receiver, or from a router
	 * on the path when inbound in normal mode. */
	if (memcmp(p->dst, q->src, 16))
		return false;
	if (memcmp(p->src, q->dst, 16) &&
	    (dir != PC_DIR_INGRESS || mode_eff(m) != PC_MODE_NORMAL))
		return false;
	if (!flow_key(p->family, q->proto, !dir, q->src, q->dst, q->sport,
		      q->dport, family_icmp(p->family, q->proto), q->echo,
		      q->echo_id, &k))
		return false;
	f = tab_find(&m->flows, &k);
	return f && vouch(m, &k, f);
}

static struct ref_verdict decide_ip(struct ref *m, const struct ref_pkt *p,
				    int dir)
{
	const __u8 *remote = dir == PC_DIR_INGRESS ? p->src : p->dst;
	struct pc_model_verdict mv;

	mv = judge(m, dir, p->family, remote, p->proto, p->dport);
	if (rule_decided(mv.reason))
		return from_model(mv);
	if (flow_reply(m, p, dir))
		return rv(true, PC_R_PASS_FLOW, -1);
	if (flow_related(m, p, dir))
		return rv(true, PC_R_PASS_RELATED, -1);
	return from_model(mv);	/* the mode's default */
}

static void frag_key(const struct ref_pkt *p, int dir, struct ref_frag_key *k)
{
	memset(k, 0, sizeof(*k));
	k->family = p->family;
	k->proto = p->frag_proto;
	k->dir = dir;
	k->id = p->frag_id;
	memcpy(k->src, p->src, 16);
	memcpy(k->dst, p->dst, 16);
}

/* What later packets need of this one: its flow, its fragments. */
static void remember(struct ref *m, const struct ref_pkt *p, int dir,
		     struct ref_verdict v)
{
	struct ref_flow_key k;

	if (v.pass && (v.reason == PC_R_PASS_MGMT ||
		       v.reason == PC_R_PASS_RULE ||
		       v.reason == PC_R_PASS_DEFAULT) &&
	    (!p->icmp || p->echo == REF_ECHO_REQUEST) &&
	    flow_key(p->family, p->proto, dir, p->src, p->dst, p->sport,
		     p->dport, p->icmp, p->echo, p->echo_id, &k))
		flow_open(m, &k, dir, p->proto != P_TCP ||
				      (p->tcp_flags & 0x12) == 0x02);
	if (p->frag == REF_HEAD) {
		struct ref_frag_val fv = { .v = v, .gen = m->gen,
					   .mode = mode_eff(m) };
		struct ref_frag_key fk;


		frag_key(p, dir, &fk);
		tab_put(&m->frags, &fk, &fv);
	}
}

/*
 * The head's deciding rule: a drop outlives a policy reload, but its rule
 * belongs to the policy that decided it, so under another generation no
 * rule's counter moves.
 */
static int rule_now(const struct ref *m, const struct ref_frag_val *h)
{
	return h->gen == m->gen ? h->v.rule : -1;
}

/* A later fragment follows its head; a pass only under the same policy
 * generation and mode, a drop always. */
static struct ref_verdict decide_tail(struct ref *m, const struct ref_pkt *p,
				      int dir)
{
	const __u8 *remote = dir == PC_DIR_INGRESS ? p->src : p->dst;
	struct ref_frag_val *h;
	struct ref_frag_key k;

	frag_key(p, dir, &k);
	h = tab_find(&m->frags, &k);
	if (h && !h->v.pass) {
		struct ref_verdict v = rv(false, h->v.reason, rule_now(m, h));

		v.rule_by_index = h->v.rule;
		return v;
	}
	if (h && h->gen == m->gen && h->mode == mode_eff(m))
		return rv(true, PC_R_PASS_FRAG, h->v.rule);
	if (mode_eff(m) != PC_MODE_NORMAL)
		return rv(false, PC_R_DROP_FRAGMENT, -1);
	return from_model(judge(m, dir, p->family, remote, P_ADDR_ONLY, 0));
}

static bool is_nd(const struct ref_pkt *p)
{
	return p->family == 6 && p->proto == P_ICMPV6 && p->icmp &&
	       p->frag == REF_WHOLE && p->icmp_type >= 133 &&
	       p->icmp_type <= 137 && p->hop == 255;
}

struct ref_verdict ref_step(struct ref *m, int dir, const __u8 *f, size_t len)
{
	struct ref_verdict v;
	struct ref_pkt p;

	ref_parse(f, len, &p);
	switch (p.kind) {
	case REF_K_ARP:
		v = m->pol->allow_arp ? rv(true, PC_R_PASS_ARP, -1) :
					rv(false, PC_R_DROP_L2, -1);
		break;
	case REF_K_NONIP:
		v = rv(false, PC_R_DROP_L2, -1);
		break;
	case REF_K_MALFORMED:
		v = rv(false, PC_R_DROP_MALFORMED, -1);
		break;
	default:
		if (is_nd(&p) && m->pol->allow_nd) {
			v = rv(true, PC_R_PASS_ND, -1);
		} else if (p.frag == REF_TAIL) {
			v = decide_tail(m, &p, dir);
		} else {
			v = decide_ip(m, &p, dir);
			remember(m, &p, dir, v);
		}
	}
	/* Audit: normal mode counts the would-be drop, then passes. */
	if (!v.pass && mode_eff(m) == PC_MODE_NORMAL && m->pol->audit &&
	    (v.reason == PC_R_DROP_DEFAULT || v.reason == PC_R_DROP_DENY)) {
		v.pass = true;
		v.audit = true;
	}
	return v;
}

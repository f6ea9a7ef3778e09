// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Random policies and frame sequences for the differential run. Policies
 * are cut from a few base addresses so their CIDRs overlap and nest;
 * frames pick remote addresses inside, at the edge of and outside those
 * CIDRs, ports at the edges of the policy's ranges, and answer earlier
 * frames (replies, ICMP errors, later fragments) so flows matter.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "gen.h"

#define P_HOPOPTS	0
#define P_ICMP		1
#define P_TCP		6
#define P_UDP		17
#define P_ROUTING	43
#define P_FRAGMENT	44
#define P_AH		51
#define P_ICMPV6	58
#define P_DSTOPTS	60

/* ---- text ---- */

struct sbuf {
	char *buf;
	size_t cap, len;
	bool full;
};

static void put(struct sbuf *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void put(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(s->buf + s->len, s->cap - s->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= s->cap - s->len) {
		s->full = true;
		return;
	}
	s->len += n;
}

/* ---- addresses ---- */

static void random_bytes(struct rng *r, __u8 *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (__u8)rng_next(r);
}

static void bit_flip(__u8 *a, int bit)
{
	a[bit / 8] ^= 0x80 >> (bit % 8);
}

/* Bits from plen on: cleared (mask) or random. */
static void host_bits(struct rng *r, __u8 *a, int alen, int plen, bool rnd)
{
	for (int bit = plen; bit < alen * 8; bit++) {
		__u8 m = 0x80 >> (bit % 8);

		if (rnd && rng_pct(r, 50))
			a[bit / 8] |= m;
		else
			a[bit / 8] &= ~m;
	}
}

void gen_bases_init(struct rng *r, struct gen_bases *b)
{
	for (int i = 0; i < GEN_BASES; i++) {
		random_bytes(r, b->v4[i], 4);
		random_bytes(r, b->v6[i], 16);
	}
	/* siblings: base 1 shares a long prefix with base 0 */
	memcpy(b->v4[1], b->v4[0], 4);
	bit_flip(b->v4[1], 8 + rng_below(r, 24));
	memcpy(b->v6[1], b->v6[0], 16);
	bit_flip(b->v6[1], 16 + rng_below(r, 112));
}

static int rand_plen(struct rng *r, int family, bool mgmt)
{
	static const int l4[] = { 8, 16, 24, 28, 30, 31, 32 };
	static const int l6[] = { 16, 32, 48, 64, 96, 112, 120, 127, 128 };
	int plen;

	if (rng_pct(r, 50))
		plen = family == 4 ? (int)rng_below(r, 33) : (int)rng_below(r, 129);
	else
		plen = family == 4 ? l4[rng_below(r, 7)] : l6[rng_below(r, 9)];
	if (mgmt && plen == 0)
		plen = 1;	/* management may not name every address */
	return plen;
}

static void put_cidr(struct sbuf *s, struct rng *r, const struct gen_bases *b,
		     int family, bool mgmt)
{
	int alen = family == 4 ? 4 : 16, plen = rand_plen(r, family, mgmt);
	char txt[INET6_ADDRSTRLEN];
	__u8 a[16];

	memcpy(a, family == 4 ? b->v4[rng_below(r, GEN_BASES)] :
				b->v6[rng_below(r, GEN_BASES)], alen);
	if (rng_pct(r, 30))
		bit_flip(a, rng_below(r, alen * 8));
	host_bits(r, a, alen, plen, false);
	inet_ntop(family == 4 ? AF_INET : AF_INET6, a, txt, sizeof(txt));
	put(s, family == 4 ? "%s/%d" : "\"%s/%d\"", txt, plen);
}

/* proto: 0 any, else 6, 17, 1, 58; -1 leave the key out. */
static int rand_proto(struct rng *r)
{
	static const int protos[] = { 6, 6, 17, 17, 1, 58, 0, 0, -1, -1 };

	return protos[rng_below(r, 10)];
}

static const char *proto_word(int proto)
{
	switch (proto) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmpv6";
	}
	return "any";
}

static __u16 rand_port(struct rng *r)
{
	static const __u16 pool[] = { 1, 22, 53, 80, 443, 1024, 8080, 65535 };

	if (rng_pct(r, 50))
		return pool[rng_below(r, 8)];
	return 1 + rng_below(r, 65535);
}

static void put_ports(struct sbuf *s, struct rng *r)
{
	int n = 1 + rng_below(r, 3);

	put(s, ", ports: [");
	for (int i = 0; i < n; i++) {
		__u32 lo = rand_port(r), hi = lo;

		if (rng_pct(r, 50))
			hi = lo + (rng_pct(r, 70) ? rng_below(r, 100) :
						     rng_below(r, 65536));
		if (hi > 65535)
			hi = 65535;
		if (hi == lo)
			put(s, "%s%u", i ? ", " : "", lo);
		else
			put(s, "%s\"%u-%u\"", i ? ", " : "", lo, hi);
	}
	put(s, "]");
}

/* The match keys management entries and rules share; a rule has written
 * its name and action before, a management entry nothing (or its name). */
static void put_match(struct sbuf *s, struct rng *r, const struct gen_bases *b,
		      bool mgmt)
{
	static const char *const dirs[] = { "ingress", "egress", "both" };
	int proto = rand_proto(r), ncidr = mgmt ? 1 + rng_below(r, 2) :
		    (rng_pct(r, 35) ? 0 : 1 + rng_below(r, 3));
	const char *sep = mgmt ? "" : ", ";

	if (!mgmt || rng_pct(r, 40)) {
		put(s, "%sdirection: %s", sep, dirs[rng_below(r, 3)]);
		sep = ", ";
	}
	if (ncidr) {	/* always, for management */
		put(s, "%scidr: [", sep);
		for (int i = 0; i < ncidr; i++) {
			/* icmp names IPv4 peers, icmpv6 IPv6 ones */
			int family = proto == 1 ? 4 : proto == 58 ? 6 :
				     rng_pct(r, 50) ? 4 : 6;

			if (i)
				put(s, ", ");
			put_cidr(s, r, b, family, mgmt);
		}
		put(s, "]");
	}
	if (proto >= 0)
		put(s, ", proto: %s", proto_word(proto));
	if ((proto == 6 || proto == 17) && rng_pct(r, 65))
		put_ports(s, r);
}

static void put_modes(struct sbuf *s, struct rng *r, bool allow)
{
	static const char *const words[] = { "normal", "lockdown", "quarantine" };
	int set = allow ? 1 + rng_below(r, 3) : 1 + rng_below(r, 7);
	bool first = true;

	if (rng_pct(r, 25))
		return;		/* the default: allow [normal], deny all three */
	put(s, ", modes: [");
	for (int m = 0; m < 3; m++) {
		if (!(set & (1 << m)))
			continue;
		put(s, "%s%s", first ? "" : ", ", words[m]);
		first = false;
	}
	put(s, "]");
}

static const char *yes_no(struct rng *r)
{
	return rng_pct(r, 50) ? "true" : "false";
}

int gen_policy(struct rng *r, const struct gen_bases *b, char *buf, size_t cap)
{
	struct sbuf s = { .buf = buf, .cap = cap };
	int nm = rng_pct(r, 30) ? 0 : 1 + rng_below(r, 3), nr;

	if (rng_pct(r, 85))
		put(&s, "defaults: {ingress: %s, egress: %s}\n",
		    rng_pct(r, 50) ? "allow" : "deny",
		    rng_pct(r, 50) ? "allow" : "deny");
	else if (rng_pct(r, 50))
		put(&s, "defaults: {egress: allow}\n");
	if (rng_pct(r, 40))
		put(&s, "audit: %s\n", yes_no(r));
	if (rng_pct(r, 50))
		put(&s, "allow_arp: %s\n", yes_no(r));
	if (rng_pct(r, 50))
		put(&s, "allow_nd: %s\n", yes_no(r));
	if (nm) {
		put(&s, "management:\n");
		for (int i = 0; i < nm; i++) {
			put(&s, "  - {");
			if (rng_pct(r, 30))
				put(&s, "name: m%d, ", i);
			put_match(&s, r, b, true);
			put(&s, "}\n");
		}
	}
	/* Mostly small; sometimes wide enough to use both mask words. */
	nr = rng_pct(r, 85) ? (int)rng_below(r, 17) :
			      50 + (int)rng_below(r, PC_MAX_RULES - 50 - nm + 1);
	put(&s, nr ? "rules:\n" : "rules: []\n");
	for (int i = 0; i < nr; i++) {
		bool allow = rng_pct(r, 55);

		put(&s, "  - {name: r%d, action: %s", i, allow ? "allow" : "deny");
		put_match(&s, r, b, false);
		put_modes(&s, r, allow);
		put(&s, "}\n");
	}
	return s.full ? -ENOSPC : 0;
}

/* ---- frames ---- */

static const struct pc_cidr *pick_cidr(struct gen *g, int family)
{
	const struct pc_cidr *found = NULL;
	int seen = 0;

	/* reservoir sampling over both policies' CIDRs of the family */
	for (int k = 0; k < 2; k++) {
		const struct pc_policy *p = g->pol[k];

		for (size_t i = 0; p && i < p->nrules; i++)
			for (size_t j = 0; j < p->rules[i].ncidrs; j++) {
				const struct pc_cidr *c = &p->rules[i].cidrs[j];

				if (c->family == family &&
				    rng_below(g->r, ++seen) == 0)
					found = c;
			}
	}
	return found;
}

/* A peer inside, at the edge of, or outside the policy's CIDRs. */
static void pick_remote(struct gen *g, int family, __u8 *out)
{
	int alen = family == 4 ? 4 : 16;
	const struct pc_cidr *c = rng_pct(g->r, 75) ? pick_cidr(g, family) : NULL;

	memset(out, 0, 16);
	if (c) {
		memcpy(out, c->addr, alen);
		host_bits(g->r, out, alen, c->plen, true);
		if (c->plen && rng_pct(g->r, 20))
			bit_flip(out, c->plen - 1);	/* just outside */
		else if (c->plen && rng_pct(g->r, 10))
			bit_flip(out, rng_below(g->r, c->plen));
		return;
	}
	memcpy(out, family == 4 ? g->bases.v4[rng_below(g->r, GEN_BASES)] :
				  g->bases.v6[rng_below(g->r, GEN_BASES)], alen);
	host_bits(g->r, out, alen, rng_below(g->r, alen * 8 + 1), true);
}

static __u16 pick_port(struct gen *g)
{
	/* edges of a range of either policy, else the usual suspects */
	if (rng_pct(g->r, 60)) {
		const struct pc_policy *p = g->pol[rng_below(g->r, 2)];

		if (!p)
			p = g->pol[0];
		for (int tries = 0; p && p->nrules && tries < 4; tries++) {
			const struct pc_rule *ru = &p->rules[rng_below(g->r, p->nrules)];
			const struct pc_port_range *pr;
			__u32 v;

			if (!ru->nports)
				continue;
			pr = &ru->ports[rng_below(g->r, ru->nports)];
			switch (rng_below(g->r, 5)) {
			case 0: v = pr->lo - 1; break;
			case 1: v = pr->lo; break;
			case 2: v = pr->hi; break;
			case 3: v = pr->hi + 1; break;
			default: v = pr->lo + rng_below(g->r, pr->hi - pr->lo + 1);
			}
			if (v >= 1 && v <= 65535)
				return v;
		}
	}
	return rand_port(g->r);
}

static __u16 pick_echo_id(struct gen *g)
{
	static const __u16 ids[] = { 0, 1, 7, 0x1234 };
	__u16 id = rng_pct(g->r, 50) ? ids[rng_below(g->r, 4)] :
				       (__u16)rng_next(g->r);

	return id || !g->no_echo_id0 ? id : 1;
}

static void set_ends(struct gen *g, struct gpkt *p, const __u8 *local,
		     const __u8 *remote)
{
	int alen = p->family == 4 ? 4 : 16;

	memset(p->src, 0, 16);
	memset(p->dst, 0, 16);
	memcpy(p->dir == PC_DIR_EGRESS ? p->src : p->dst, local, alen);
	memcpy(p->dir == PC_DIR_EGRESS ? p->dst : p->src, remote, alen);
}

static const __u8 *pick_local(struct gen *g, int family)
{
	int i = rng_below(g->r, 2);

	return family == 4 ? g->local4[i] : g->local6[i];
}

static void clean(struct gpkt *p)
{
	p->version = p->ihl = p->tot_len = -1;
	p->frag_nh = -1;
	p->cut = 0;
}

/* VLAN tags, IPv4 options, IPv6 extension headers, malformations. */
static void decorate(struct gen *g, struct gpkt *p)
{
	static const __u8 exts[] = { P_HOPOPTS, P_ROUTING, P_DSTOPTS, P_AH,
				     P_DSTOPTS, P_FRAGMENT };
	__u32 t = rng_below(g->r, 100);

	p->ntags = t < 75 ? 0 : t < 87 ? 1 : t < 95 ? 2 : 3;
	for (int i = 0; i < p->ntags; i++)
		p->tpid[i] = rng_pct(g->r, 50) ? 0x8100 : 0x88a8;
	p->optlen = 0;
	if (p->family == 4 && rng_pct(g->r, 25))
		p->optlen = 4 * (1 + rng_below(g->r, 10));
	p->next = 0;
	if (p->family == 6 && rng_pct(g->r, 35)) {
		p->next = 1 + rng_below(g->r, 7);
		for (int i = 0; i < p->next; i++) {
			p->ext[i] = exts[rng_below(g->r, rng_pct(g->r, 90) ? 5 : 6)];
			p->extlen[i] = rng_below(g->r, 3);
		}
	}
	if (rng_pct(g->r, 4)) {
		switch (rng_below(g->r, 3)) {
		case 0: p->version = rng_below(g->r, 16); break;
		case 1: p->ihl = rng_below(g->r, 16); break;
		default: p->tot_len = rng_below(g->r, 80);
		}
	}
}

static void fresh_icmp(struct gen *g, struct gpkt *p)
{
	static const __u8 other4[] = { 13, 14, 17, 5, 9, 4 };
	static const __u8 other6[] = { 130, 131, 135, 136, 200, 143 };
	__u32 t = rng_below(g->r, 100);

	p->proto = p->family == 4 ? P_ICMP : P_ICMPV6;
	if (t < 60)
		p->icmp_type = p->family == 4 ? 8 : 128;
	else if (t < 80)
		p->icmp_type = p->family == 4 ? 0 : 129;
	else
		p->icmp_type = p->family == 4 ? other4[rng_below(g->r, 6)] :
						other6[rng_below(g->r, 6)];
	p->echo_id = pick_echo_id(g);
}

static void fresh(struct gen *g, struct gpkt *p)
{
	static const __u8 others[] = { 47, 50, 132, 0, 255, 41 };
	__u8 remote[16];
	__u32 t;

	memset(p, 0, sizeof(*p));
	clean(p);
	p->dir = rng_below(g->r, 2);
	p->family = rng_pct(g->r, 55) ? 4 : 6;
	pick_remote(g, p->family, remote);
	set_ends(g, p, pick_local(g, p->family), remote);
	p->ttl = rng_pct(g->r, 90) ? 64 : (__u8)rng_next(g->r);
	t = rng_below(g->r, 100);
	if (t < 40) {
		p->proto = P_TCP;
		/* SYN, ACK, and now and then FIN+ACK or RST: FIN and RST move
		 * a flow's TCP state, which must change its lifetime only. */
		p->tcp_flags = rng_pct(g->r, 60) ? 0x02 :
			       rng_pct(g->r, 80) ? 0x10 :
			       rng_pct(g->r, 50) ? 0x11 : 0x04;
	} else if (t < 68) {
		p->proto = P_UDP;
	} else if (t < 90) {
		fresh_icmp(g, p);
	} else {
		p->proto = others[rng_below(g->r, 6)];
		/* the other family's ICMP number is just another protocol */
		if (rng_pct(g->r, 30))
			p->proto = p->family == 4 ? P_ICMPV6 : P_ICMP;
	}
	p->sport = rng_pct(g->r, 70) ? 32768 + rng_below(g->r, 28000) :
				       pick_port(g);
	p->dport = pick_port(g);
	p->payload = rng_below(g->r, 48);
	p->fill = rng_next(g->r);
	decorate(g, p);
}

static struct gpkt *hist_pick(struct gen *g, bool heads_only)
{
	struct gpkt *found = NULL;
	int seen = 0;

	for (size_t i = 0; i < g->nhist; i++) {
		struct gpkt *h = &g->hist[i];

		if (heads_only && h->frag != GF_HEAD)
			continue;
		/* favour recent entries: they are likelier to have flows */
		if (rng_below(g->r, ++seen) == 0)
			found = h;
	}
	return found;
}

static void swap_ends(struct gpkt *p)
{
	__u8 a[16];
	__u16 port = p->sport;

	memcpy(a, p->src, 16);
	memcpy(p->src, p->dst, 16);
	memcpy(p->dst, a, 16);
	p->sport = p->dport;
	p->dport = port;
	p->dir = !p->dir;
}

/* The answer to an earlier packet, usually the other way. */
static void reply(struct gen *g, struct gpkt *p)
{
	const struct gpkt *h = hist_pick(g, false);

	if (!h) {
		fresh(g, p);
		return;
	}
	*p = *h;
	clean(p);
	p->frag = GF_NONE;
	p->quote_len = 0;
	p->fill = rng_next(g->r);
	if (rng_pct(g->r, 88))
		swap_ends(p);
	if (p->proto == P_TCP)
		p->tcp_flags = rng_pct(g->r, 90) ? 0x12 : 0x14;	/* SYN-ACK, RST-ACK */
	if ((p->family == 4 && p->proto == P_ICMP) ||
	    (p->family == 6 && p->proto == P_ICMPV6)) {
		bool request = p->icmp_type == (p->family == 4 ? 8 : 128);

		/* mostly the echo reply; now and then the far side's own
		 * request with the same id, which must not pose as one */
		if (request && rng_pct(g->r, 85))
			p->icmp_type = p->family == 4 ? 0 : 129;
		else if (!request && rng_pct(g->r, 30))
			p->icmp_type = p->family == 4 ? 0 : 129;
	}
	if (rng_pct(g->r, 5))
		p->dport = pick_port(g);
	if (rng_pct(g->r, 5))
		p->echo_id = pick_echo_id(g);
	if (rng_pct(g->r, 40))
		decorate(g, p);
}

/* An ICMP error quoting an earlier packet. */
static void icmp_error(struct gen *g, struct gpkt *p)
{
	static const __u8 t4[] = { 3, 3, 11, 12, 5, 4 };
	static const __u8 t6[] = { 1, 2, 3, 4, 1, 137 };
	const struct gpkt *h = hist_pick(g, false);
	struct gframe hf;
	__u8 remote[16];
	size_t ipoff, avail, natural;

	if (!h) {
		fresh(g, p);
		return;
	}
	gen_build(h, &hf);
	ipoff = 14 + 4 * h->ntags;
	avail = hf.len > ipoff ? hf.len - ipoff : 0;
	memset(p, 0, sizeof(*p));
	clean(p);
	p->family = h->family;
	p->dir = rng_pct(g->r, 85) ? !h->dir : h->dir;
	pick_remote(g, p->family, remote);
	if (p->dir != h->dir) {
		const __u8 *hl = h->dir == PC_DIR_EGRESS ? h->src : h->dst;
		const __u8 *hr = h->dir == PC_DIR_EGRESS ? h->dst : h->src;

		/* mostly between the flow's own ends; else from a router,
		 * or to another of our addresses */
		set_ends(g, p, rng_pct(g->r, 90) ? hl : pick_local(g, p->family),
			 rng_pct(g->r, 60) ? hr : remote);
	} else {
		set_ends(g, p, pick_local(g, p->family), remote);
	}
	p->ttl = 64;
	p->proto = p->family == 4 ? P_ICMP : P_ICMPV6;
	p->icmp_type = p->family == 4 ? t4[rng_below(g->r, 6)] :
					t6[rng_below(g->r, 6)];
	p->icmp_code = rng_below(g->r, 4);
	natural = p->family == 4 ? (hf.buf[ipoff] & 0xf) * 4u + 8 : avail;
	if (rng_pct(g->r, 20))
		natural = rng_below(g->r, avail + 1);
	if (natural > avail)
		natural = avail;
	if (natural > GEN_QUOTE_MAX)
		natural = GEN_QUOTE_MAX;
	memcpy(p->quote, hf.buf + ipoff, natural);
	p->quote_len = natural;
	/* now and then more than an error needs: around the size bound */
	if (rng_pct(g->r, 15))
		p->payload = 400 + rng_below(g->r, 1000);
	p->fill = rng_next(g->r);
	if (rng_pct(g->r, 30))
		decorate(g, p);
}

static void ensure_frag_hdr(struct gen *g, struct gpkt *p)
{
	int pos;

	if (p->family != 6)
		return;
	for (int i = 0; i < p->next; i++)
		if (p->ext[i] == P_FRAGMENT)
			return;
	if (p->next == 8)
		p->next = 7;
	pos = rng_below(g->r, p->next + 1);
	memmove(p->ext + pos + 1, p->ext + pos, p->next - pos);
	memmove(p->extlen + pos + 1, p->extlen + pos, p->next - pos);
	p->ext[pos] = P_FRAGMENT;
	p->extlen[pos] = 0;
	p->next++;
}

static void head(struct gen *g, struct gpkt *p)
{
	fresh(g, p);
	p->frag = GF_HEAD;
	p->frag_id = rng_pct(g->r, 90) ? g->next_id++ : rng_below(g->r, 4);
	p->payload = 8 + rng_below(g->r, 64);
	ensure_frag_hdr(g, p);
}

/* A later fragment: of an earlier head, usually. */
static void tail(struct gen *g, struct gpkt *p)
{
	const struct gpkt *h = rng_pct(g->r, 75) ? hist_pick(g, true) : NULL;

	if (h) {
		*p = *h;
		clean(p);
		p->quote_len = 0;
		if (rng_pct(g->r, 8))
			swap_ends(p);
		if (rng_pct(g->r, 8))
			p->frag_id ^= 1 + rng_below(g->r, 3);
		if (rng_pct(g->r, 20))
			decorate(g, p);	/* tags and options may differ */
	} else {
		fresh(g, p);
		p->frag_id = rng_pct(g->r, 50) ? rng_below(g->r, g->next_id + 1) :
						(__u32)rng_next(g->r);
	}
	ensure_frag_hdr(g, p);
	/* The tail's fragment header names what followed the head's. */
	if (p->family == 6) {
		for (int i = 0; i < p->next; i++) {
			if (p->ext[i] != P_FRAGMENT)
				continue;
			p->frag_nh = i + 1 < p->next ? p->ext[i + 1] : p->proto;
			break;
		}
	}
	p->frag = GF_TAIL;
	p->frag_off = 1 + rng_below(g->r, 180);
	p->payload = rng_below(g->r, 64);
	p->fill = rng_next(g->r);
}

static void nd(struct gen *g, struct gpkt *p)
{
	fresh(g, p);
	if (p->family == 4) {
		__u8 remote[16];

		p->family = 6;
		p->next = p->optlen = 0;
		pick_remote(g, 6, remote);
		set_ends(g, p, pick_local(g, 6), remote);
	}
	p->proto = P_ICMPV6;
	p->icmp_type = 133 + rng_below(g->r, 5);
	if (rng_pct(g->r, 10))
		p->icmp_type = rng_pct(g->r, 50) ? 132 : 138;
	p->ttl = rng_pct(g->r, 85) ? 255 : (__u8)rng_next(g->r);
	if (rng_pct(g->r, 5)) {
		p->frag = GF_HEAD;
		p->frag_id = g->next_id++;
		ensure_frag_hdr(g, p);
	}
}

static void not_ip(struct gen *g, struct gpkt *p, __u16 ethertype)
{
	memset(p, 0, sizeof(*p));
	clean(p);
	p->dir = rng_below(g->r, 2);
	p->ethertype = ethertype;
	p->payload = ethertype == 0x0806 ? 28 : rng_below(g->r, 64);
	p->fill = rng_next(g->r);
	decorate(g, p);
}

static void garbage(struct gen *g, struct gpkt *p)
{
	memset(p, 0, sizeof(*p));
	clean(p);
	p->dir = rng_below(g->r, 2);
	p->raw = true;
	p->raw_len = 14 + rng_below(g->r, 187);
	p->fill = rng_next(g->r);
	if (rng_pct(g->r, 60))
		p->ethertype = rng_pct(g->r, 50) ? 0x0800 : 0x86dd;
	if (p->ethertype && rng_pct(g->r, 50))
		p->version = p->ethertype == 0x0800 ? 4 : 6;
}

void gen_begin(struct gen *g, struct rng *r, const struct gen_bases *b,
	       const struct pc_policy *p0, const struct pc_policy *p1)
{
	memset(g, 0, sizeof(*g));
	g->r = r;
	g->bases = *b;
	g->pol[0] = p0;
	g->pol[1] = p1;
	for (int i = 0; i < 2; i++) {
		random_bytes(r, g->local4[i], 4);
		random_bytes(r, g->local6[i], 16);
	}
	g->next_id = 1 + rng_below(r, 1000);
}

void gen_frame(struct gen *g, struct gframe *out)
{
	static const __u16 l2[] = { 0x88cc, 0x8847, 0x0842, 0x9000, 0x22f0 };
	struct gpkt p;
	__u32 t = rng_below(g->r, 100);

	if (t < 33)
		fresh(g, &p);
	else if (t < 55)
		reply(g, &p);
	else if (t < 62)
		icmp_error(g, &p);
	else if (t < 69)
		head(g, &p);
	else if (t < 77)
		tail(g, &p);
	else if (t < 81)
		nd(g, &p);
	else if (t < 85)
		not_ip(g, &p, 0x0806);
	else if (t < 88)
		not_ip(g, &p, rng_pct(g->r, 80) ? l2[rng_below(g->r, 5)] :
						   (__u16)rng_next(g->r));
	else if (t < 92)
		garbage(g, &p);
	else {
		const struct gpkt *h = hist_pick(g, false);

		if (h)
			p = *h;	/* the same packet again */
		else
			fresh(g, &p);
	}
	gen_build(&p, out);
	if (rng_pct(g->r, 8) && out->len > 14) {
		p.cut = 14 + rng_below(g->r, out->len - 14);
		out->len = p.cut;
	}
	if (p.family && !p.raw) {
		g->hist[g->hpos] = p;
		g->hpos = (g->hpos + 1) % GEN_HISTORY;
		if (g->nhist < GEN_HISTORY)
			g->nhist++;
	}
}

/* ---- bytes ---- */

static void wr16(__u8 *b, __u16 v)
{
	b[0] = v >> 8;
	b[1] = (__u8)v;
}

static void wr32(__u8 *b, __u32 v)
{
	wr16(b, v >> 16);
	wr16(b + 2, (__u16)v);
}

static bool family_icmp(__u8 family, __u8 proto)
{
	return (family == 4 && proto == P_ICMP) ||
	       (family == 6 && proto == P_ICMPV6);
}

/* Transport header (not for a tail), payload; returns the new length. */
static size_t build_l4(const struct gpkt *p, __u8 *b, size_t n,
		       struct rng *fr)
{
	if (p->frag != GF_TAIL) {
		if (p->proto == P_TCP) {
			memset(b + n, 0, 20);
			wr16(b + n, p->sport);
			wr16(b + n + 2, p->dport);
			wr32(b + n + 4, (__u32)rng_next(fr));
			b[n + 12] = 0x50;
			b[n + 13] = p->tcp_flags;
			wr16(b + n + 14, 0xffff);
			n += 20;
		} else if (p->proto == P_UDP) {
			wr16(b + n, p->sport);
			wr16(b + n + 2, p->dport);
			wr16(b + n + 4, 8 + p->payload);
			wr16(b + n + 6, 0);
			n += 8;
		} else if (family_icmp(p->family, p->proto)) {
			memset(b + n, 0, 8);
			b[n] = p->icmp_type;
			b[n + 1] = p->icmp_code;
			wr16(b + n + 4, p->echo_id);
			wr16(b + n + 6, 1);
			n += 8;
			if (p->quote_len) {
				memset(b + n - 4, 0, 4);
				memcpy(b + n, p->quote, p->quote_len);
				n += p->quote_len;
			}
		}
	}
	for (int i = 0; i < p->payload && n < GEN_FRAME_MAX; i++)
		b[n++] = (__u8)rng_next(fr);
	return n;
}

static size_t build_v4(const struct gpkt *p, __u8 *b, size_t n,
		       struct rng *fr)
{
	size_t ip = n, hlen = 20 + p->optlen;
	__u16 fo = 0;

	memset(b + n, 0, hlen);
	b[n] = (p->version >= 0 ? p->version : 4) << 4 |
	       (p->ihl >= 0 ? p->ihl : (int)(hlen / 4));
	wr16(b + n + 4, (__u16)p->frag_id);
	if (p->frag == GF_HEAD)
		fo = 0x2000;
	else if (p->frag == GF_TAIL)
		fo = (p->frag_off & 0x1fff) | (p->fill & 1 ? 0x2000 : 0);
	if (p->fill & 2)
		fo |= 0x4000;	/* DF now and then: it must not matter */
	wr16(b + n + 6, fo);
	b[n + 8] = p->ttl;
	b[n + 9] = p->proto;
	memcpy(b + n + 12, p->src, 4);
	memcpy(b + n + 16, p->dst, 4);
	for (size_t i = 20; i < hlen; i++)
		b[n + i] = 1;	/* NOP options */
	n = build_l4(p, b, n + hlen, fr);
	wr16(b + ip + 2, p->tot_len >= 0 ? p->tot_len : (int)(n - ip));
	return n;
}

static size_t build_v6(const struct gpkt *p, __u8 *b, size_t n,
		       struct rng *fr)
{
	size_t ip = n;
	__u8 first = p->next ? p->ext[0] : p->proto;

	memset(b + n, 0, 40);
	b[n] = (p->version >= 0 ? p->version : 6) << 4;
	b[n + 6] = first;
	b[n + 7] = p->ttl;
	memcpy(b + n + 8, p->src, 16);
	memcpy(b + n + 24, p->dst, 16);
	n += 40;
	for (int i = 0; i < p->next; i++) {
		__u8 t = p->ext[i], nxt = i + 1 < p->next ? p->ext[i + 1] : p->proto;
		size_t len;

		if (t == P_FRAGMENT) {
			__u16 fo = 0;

			if (p->frag == GF_HEAD)
				fo = 1;
			else if (p->frag == GF_TAIL)
				fo = (__u16)(p->frag_off << 3) | (p->fill & 1);
			if (p->frag == GF_TAIL && p->frag_nh >= 0)
				nxt = p->frag_nh;
			b[n] = nxt;
			b[n + 1] = 0;
			wr16(b + n + 2, fo);
			wr32(b + n + 4, p->frag_id);
			n += 8;
			if (p->frag == GF_TAIL)
				break;	/* the rest is fragment data */
			continue;
		}
		len = t == P_AH ? (p->extlen[i] + 2) * 4u : (p->extlen[i] + 1) * 8u;
		memset(b + n, 0, len);
		b[n] = nxt;
		b[n + 1] = p->extlen[i];
		n += len;
	}
	n = build_l4(p, b, n, fr);
	wr16(b + ip + 4, (__u16)(n - ip - 40));
	return n;
}

void gen_build(const struct gpkt *p, struct gframe *out)
{
	struct rng fr;
	__u8 *b = out->buf;
	size_t n = 0;

	rng_seed(&fr, p->fill);
	out->dir = p->dir;
	if (p->raw) {
		for (n = 0; n < p->raw_len; n++)
			b[n] = (__u8)rng_next(&fr);
		if (p->ethertype)
			wr16(b + 12, p->ethertype);
		if (p->version >= 0)
			b[14] = (b[14] & 0xf) | p->version << 4;
		out->len = n;
		return;
	}
	memcpy(b, "\x02\x00\x00\x00\x00\x01\x02\x00\x00\x00\x00\x02", 12);
	n = 12;
	for (int i = 0; i < p->ntags; i++) {
		wr16(b + n, p->tpid[i]);
		wr16(b + n + 2, 100 + i);
		n += 4;
	}
	wr16(b + n, p->family == 4 ? 0x0800 : p->family == 6 ? 0x86dd :
						 p->ethertype);
	n += 2;
	if (p->family == 4)
		n = build_v4(p, b, n, &fr);
	else if (p->family == 6)
		n = build_v6(p, b, n, &fr);
	else
		for (int i = 0; i < p->payload; i++)
			b[n++] = (__u8)rng_next(&fr);
	if (p->cut && p->cut < n)
		n = p->cut;
	out->len = n;
}

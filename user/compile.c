// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy -> map contents.
 *
 * Addresses: every (prefix, direction, rule) goes into one sorted list.
 * Sorted by address then length, a prefix comes before every prefix it
 * contains, so one pass with a stack of enclosing prefixes lets each entry
 * inherit the rules of all prefixes that contain it. A longest-prefix
 * lookup then returns every rule whose CIDR covers the address.
 *
 * Ports: per (direction, protocol class), the port space is cut into the
 * intervals where the set of matching rules is constant, and each interval
 * is written as the few aligned prefixes that tile it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "compile.h"

static void set_bit(struct pc_ruleset *rs, unsigned int i)
{
	rs->bits[i / 64] |= 1ULL << (i % 64);
}

static void ruleset_or(struct pc_ruleset *a, const struct pc_ruleset *b)
{
	for (int w = 0; w < PC_RULE_WORDS; w++)
		a->bits[w] |= b->bits[w];
}

static bool ruleset_empty(const struct pc_ruleset *a)
{
	for (int w = 0; w < PC_RULE_WORDS; w++)
		if (a->bits[w])
			return false;
	return true;
}

static bool ruleset_equal(const struct pc_ruleset *a, const struct pc_ruleset *b)
{
	return !memcmp(a, b, sizeof(*a));
}

/* ---- addresses ---- */

static int addr_cmp(const void *pa, const void *pb)
{
	const struct pc_addr_entry *a = pa, *b = pb;
	int r;

	if (a->family != b->family)
		return a->family - b->family;
	r = memcmp(a->addr, b->addr, 16);
	if (r)
		return r;
	return a->plen - b->plen;
}

static bool prefix_contains(const struct pc_addr_entry *outer,
			    const struct pc_addr_entry *inner)
{
	struct pc_cidr net = { .family = outer->family, .plen = outer->plen };

	if (outer->family != inner->family || outer->plen > inner->plen)
		return false;
	memcpy(net.addr, outer->addr, 16);
	return pc_cidr_contains(&net, inner->addr, inner->family);
}

static int addr_push(struct pc_compiled *c, size_t *cap, __u8 family,
		     __u8 plen, const __u8 *addr, __u8 dirs, unsigned int rule)
{
	struct pc_addr_entry *e;

	if (c->naddrs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		void *n = realloc(c->addrs, ncap * sizeof(*c->addrs));

		if (!n)
			return -ENOMEM;
		c->addrs = n;
		*cap = ncap;
	}
	e = &c->addrs[c->naddrs++];
	memset(e, 0, sizeof(*e));
	e->family = family;
	e->plen = plen;
	if (addr)
		memcpy(e->addr, addr, 16);
	for (int d = 0; d < PC_DIR_COUNT; d++)
		if (dirs & (1 << d))
			set_bit(&e->val.dir[d], rule);
	return 0;
}

static int compile_addrs(const struct pc_policy *p, struct pc_compiled *c)
{
	size_t cap = 0, n, *stack, depth = 0;
	int err;

	for (size_t i = 0; i < p->nrules; i++) {
		const struct pc_rule *r = &p->rules[i];

		if (!r->ncidrs) {	/* any address: the root of both tries */
			err = addr_push(c, &cap, 4, 0, NULL, r->dirs, i);
			if (!err)
				err = addr_push(c, &cap, 6, 0, NULL, r->dirs, i);
			if (err)
				return err;
		}
		for (size_t j = 0; j < r->ncidrs; j++) {
			err = addr_push(c, &cap, r->cidrs[j].family,
					r->cidrs[j].plen, r->cidrs[j].addr,
					r->dirs, i);
			if (err)
				return err;
		}
	}
	qsort(c->addrs, c->naddrs, sizeof(*c->addrs), addr_cmp);

	/* The same prefix from several rules becomes one entry. */
	n = 0;
	for (size_t i = 0; i < c->naddrs; i++) {
		if (n && !addr_cmp(&c->addrs[n - 1], &c->addrs[i])) {
			for (int d = 0; d < PC_DIR_COUNT; d++)
				ruleset_or(&c->addrs[n - 1].val.dir[d],
					   &c->addrs[i].val.dir[d]);
			continue;
		}
		c->addrs[n++] = c->addrs[i];
	}
	c->naddrs = n;

	/* Inherit from enclosing prefixes (at most 129 deep). */
	stack = calloc(130, sizeof(*stack));
	if (!stack)
		return -ENOMEM;
	for (size_t i = 0; i < c->naddrs; i++) {
		struct pc_addr_entry *e = &c->addrs[i];

		while (depth && !prefix_contains(&c->addrs[stack[depth - 1]], e))
			depth--;
		if (depth)
			for (int d = 0; d < PC_DIR_COUNT; d++)
				ruleset_or(&e->val.dir[d],
					   &c->addrs[stack[depth - 1]].val.dir[d]);
		if (depth < 130)
			stack[depth++] = i;
	}
	free(stack);
	return 0;
}

/* ---- ports ---- */

/* The protocol classes a rule's protocol falls into. */
static int rule_classes(const struct pc_rule *r, __u8 *out)
{
	switch (r->proto) {
	case 6: out[0] = PC_PC_TCP; return 1;
	case 17: out[0] = PC_PC_UDP; return 1;
	case 1: out[0] = PC_PC_ICMP; return 1;
	case 58: out[0] = PC_PC_ICMPV6; return 1;
	}
	out[0] = PC_PC_TCP;
	out[1] = PC_PC_UDP;
	out[2] = PC_PC_ICMP;
	out[3] = PC_PC_ICMPV6;
	out[4] = PC_PC_OTHER;
	/* Address-only rules also judge fragments whose head we missed. */
	out[5] = PC_PC_NOPORT;
	return 6;
}

struct span {
	__u32 lo, hi;		/* inclusive */
	unsigned int rule;
};

static int port_emit(struct pc_compiled *c, size_t *cap, __u8 dir, __u8 pclass,
		     __u32 lo, __u32 hi, const struct pc_ruleset *rs)
{
	while (lo <= hi) {
		__u32 size = 1;
		__u8 plen = 16;

		/* Largest aligned block starting at lo that fits. */
		while (plen > 0 && !(lo & size) && lo + size * 2 - 1 <= hi) {
			size *= 2;
			plen--;
		}
		if (c->nports == *cap) {
			size_t ncap = *cap ? *cap * 2 : 64;
			void *n = realloc(c->ports, ncap * sizeof(*c->ports));

			if (!n)
				return -ENOMEM;
			c->ports = n;
			*cap = ncap;
		}
		c->ports[c->nports++] = (struct pc_port_entry){
			.dir = dir, .pclass = pclass, .plen = plen,
			.port = lo, .val = *rs,
		};
		lo += size;
	}
	return 0;
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

/* One (direction, class): cut into constant intervals, emit prefixes. */
static int compile_port_class(struct pc_compiled *c, size_t *cap, __u8 dir,
			      __u8 pclass, const struct span *spans, size_t n)
{
	struct pc_ruleset prev = {}, cur;
	__u32 *cuts, start = 0;
	size_t ncuts = 0;
	int err = 0;

	if (!n)
		return 0;
	cuts = malloc((2 * n + 2) * sizeof(*cuts));
	if (!cuts)
		return -ENOMEM;
	cuts[ncuts++] = 0;
	cuts[ncuts++] = 65536;
	for (size_t i = 0; i < n; i++) {
		cuts[ncuts++] = spans[i].lo;
		cuts[ncuts++] = spans[i].hi + 1;
	}
	qsort(cuts, ncuts, sizeof(*cuts), u32_cmp);

	for (size_t k = 0; k + 1 < ncuts && !err; k++) {
		if (cuts[k] == cuts[k + 1])
			continue;
		memset(&cur, 0, sizeof(cur));
		for (size_t i = 0; i < n; i++)
			if (spans[i].lo <= cuts[k] && cuts[k] <= spans[i].hi)
				set_bit(&cur, spans[i].rule);
		if (ruleset_equal(&cur, &prev))
			continue;
		/* The interval of the previous set ends here. */
		if (!ruleset_empty(&prev))
			err = port_emit(c, cap, dir, pclass, start, cuts[k] - 1,
					&prev);
		prev = cur;
		start = cuts[k];
	}
	if (!err && !ruleset_empty(&prev))
		err = port_emit(c, cap, dir, pclass, start, 65535, &prev);
	free(cuts);
	return err;
}

static int compile_ports(const struct pc_policy *p, struct pc_compiled *c)
{
	static const __u8 all_classes[] = { PC_PC_TCP, PC_PC_UDP, PC_PC_ICMP,
					    PC_PC_ICMPV6, PC_PC_OTHER,
					    PC_PC_NOPORT };
	size_t cap = 0, nspans, maxspans = 0;
	struct span *spans;
	int err = 0;

	for (size_t i = 0; i < p->nrules; i++)
		maxspans += p->rules[i].nports ? p->rules[i].nports : 1;
	spans = calloc(maxspans ? maxspans : 1, sizeof(*spans));
	if (!spans)
		return -ENOMEM;

	for (int dir = 0; dir < PC_DIR_COUNT && !err; dir++) {
		for (size_t k = 0; k < sizeof(all_classes) && !err; k++) {
			nspans = 0;
			for (size_t i = 0; i < p->nrules; i++) {
				const struct pc_rule *r = &p->rules[i];
				__u8 classes[6];
				int nc = rule_classes(r, classes), hit = 0;

				if (!(r->dirs & (1 << dir)))
					continue;
				for (int j = 0; j < nc; j++)
					hit |= classes[j] == all_classes[k];
				if (!hit)
					continue;
				if (!r->nports) {
					spans[nspans++] = (struct span){ 0, 65535, i };
					continue;
				}
				for (size_t j = 0; j < r->nports; j++)
					spans[nspans++] = (struct span){
						r->ports[j].lo, r->ports[j].hi, i };
			}
			err = compile_port_class(c, &cap, dir, all_classes[k],
						 spans, nspans);
		}
	}
	free(spans);
	return err;
}

/* ---- settings and metadata ---- */

static void compile_settings(const struct pc_policy *p, struct pc_settings *s)
{
	memset(s, 0, sizeof(*s));
	s->default_action[PC_DIR_INGRESS] = p->default_action[PC_DIR_INGRESS];
	s->default_action[PC_DIR_EGRESS] = p->default_action[PC_DIR_EGRESS];
	s->flags = (p->audit ? PC_F_AUDIT : 0) |
		   (p->allow_arp ? PC_F_ALLOW_ARP : 0) |
		   (p->allow_nd ? PC_F_ALLOW_ND : 0);
	s->nrules = p->nrules;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pc_rule *r = &p->rules[i];

		if (r->mgmt) {
			set_bit(&s->mgmt, i);
			continue;
		}
		for (int m = 0; m < PC_MODE_COUNT; m++) {
			if (!(r->modes & (1 << m)))
				continue;
			/* Quarantine admits management only, whatever a
			 * policy built by other means may say. */
			if (m == PC_MODE_QUARANTINE && r->action == PC_ACT_ALLOW)
				continue;
			set_bit(r->action == PC_ACT_DENY ? &s->deny[m] :
							   &s->allow[m], i);
		}
	}
}

static void compile_meta(const struct pc_policy *p, struct pc_compiled *c)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pc_rule *r = &p->rules[i];
		struct pc_rule_meta *m = &c->meta[i];

		snprintf(m->name, sizeof(m->name), "%s", r->name);
		m->used = 1;
		m->action = r->action;
		m->dirs = r->dirs;
		m->modes = r->modes;
		m->proto = r->proto;
		m->mgmt = r->mgmt;
		m->nports = r->nports > 0xffff ? 0xffff : r->nports;
		m->ncidrs = r->ncidrs > 0xffffffffUL ? 0xffffffffU : r->ncidrs;
		if (r->nports) {
			m->port_lo = r->ports[0].lo;
			m->port_hi = r->ports[0].hi;
		}
		if (r->ncidrs)
			pc_cidr_format(&r->cidrs[0], m->cidr, sizeof(m->cidr));
	}
}

int pc_compile(const struct pc_policy *p, struct pc_compiled *out, char *err,
	       size_t errlen)
{
	int ret;

	memset(out, 0, sizeof(*out));
	if (p->nrules > PC_MAX_RULES) {
		snprintf(err, errlen, "%zu rules: at most %d are supported",
			 p->nrules, PC_MAX_RULES);
		return -E2BIG;
	}
	compile_settings(p, &out->settings);
	compile_meta(p, out);
	ret = compile_addrs(p, out);
	if (!ret)
		ret = compile_ports(p, out);
	if (ret) {
		snprintf(err, errlen, "compiling policy: %s", strerror(-ret));
		pc_compiled_free(out);
	}
	return ret;
}

void pc_compiled_free(struct pc_compiled *c)
{
	free(c->addrs);
	free(c->ports);
	c->addrs = NULL;
	c->ports = NULL;
	c->naddrs = 0;
	c->nports = 0;
}

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
 * Ports: a flat array with an entry per (direction, protocol class, port),
 * each holding the rules that match it: the datapath indexes it directly.
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
	if (c->naddrs)	/* qsort(NULL, 0) is undefined */
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

/* Set rule in every port entry of (dir, class) that lo..hi covers. */
static void port_fill(struct pc_ruleset *sets, int dir, __u8 pclass, __u32 lo,
		      __u32 hi, unsigned int rule)
{
	struct pc_ruleset *base = sets + dir * PC_PORT_SPAN;

	if (pclass != PC_PC_TCP && pclass != PC_PC_UDP) {
		set_bit(&base[pc_port_offset(pclass, 0)], rule);
		return;
	}
	for (__u32 port = lo; port <= hi; port++)
		set_bit(&base[pc_port_offset(pclass, port)], rule);
}

/* Every (direction, class, port) entry: the rules it matches. At most
 * 128 rules x 65536 ports of bit setting: milliseconds. */
static int compile_ports(const struct pc_policy *p, struct pc_compiled *c)
{
	c->port_sets = calloc((size_t)PC_DIR_COUNT * PC_PORT_SPAN,
			      sizeof(*c->port_sets));
	if (!c->port_sets)
		return -ENOMEM;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pc_rule *r = &p->rules[i];
		__u8 classes[6];
		int nc = rule_classes(r, classes);

		for (int dir = 0; dir < PC_DIR_COUNT; dir++) {
			if (!(r->dirs & (1 << dir)))
				continue;
			for (int k = 0; k < nc; k++) {
				if (!r->nports) {
					port_fill(c->port_sets, dir, classes[k], 0,
						  65535, i);
					continue;
				}
				for (size_t j = 0; j < r->nports; j++)
					port_fill(c->port_sets, dir, classes[k],
						  r->ports[j].lo, r->ports[j].hi, i);
			}
		}
	}
	return 0;
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

/* Management entries bound to interfaces: per interface of the policy's
 * list, the bound entries that name it. */
static void compile_binds(const struct pc_policy *p, struct pc_mgmt_binds *b)
{
	memset(b, 0, sizeof(*b));
	for (size_t j = 0; j < p->nifaces && j < PC_MAX_IFACES; j++)
		snprintf(b->ifs[j].name, sizeof(b->ifs[j].name), "%s",
			 p->ifaces[j]);
	b->nifs = p->nifaces < PC_MAX_IFACES ? p->nifaces : PC_MAX_IFACES;
	for (size_t i = 0; i < p->nrules; i++) {
		const struct pc_rule *r = &p->rules[i];

		if (!r->mgmt || !r->ifmask)
			continue;
		set_bit(&b->bound, i);
		for (size_t j = 0; j < b->nifs; j++)
			if (r->ifmask & (1U << j))
				set_bit(&b->ifs[j].rules, i);
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
	compile_binds(p, &out->binds);
	for (int w = 0; w < PC_RULE_WORDS; w++)
		if (out->binds.bound.bits[w])
			out->settings.flags |= PC_F_MGMT_BOUND;
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
	free(c->port_sets);
	c->addrs = NULL;
	c->port_sets = NULL;
	c->naddrs = 0;
}

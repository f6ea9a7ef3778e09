// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Reference semantics by a linear scan over the rules. Deliberately
 * naive: this is the oracle the BPF datapath's LPM lookups are tested
 * against, so it must be obviously right rather than fast.
 */
#include "model.h"

#define PROTO_TCP	6
#define PROTO_UDP	17
#define PROTO_ICMP	1
#define PROTO_ICMPV6	58

static bool match_addr(const struct pc_rule *r, __u8 family,
		       const __u8 *remote)
{
	size_t i;

	if (!r->ncidrs)
		return true;
	for (i = 0; i < r->ncidrs; i++)
		if (pc_cidr_contains(&r->cidrs[i], remote, family))
			return true;
	return false;
}

/* icmp means ICMP over IPv4 only, icmpv6 ICMPv6 over IPv6 only. */
static bool match_proto(const struct pc_rule *r, __u8 family, __u8 proto)
{
	if (r->proto == PC_PROTO_ANY)
		return true;
	if (r->proto != proto)
		return false;
	if (proto == PROTO_ICMP)
		return family == 4;
	if (proto == PROTO_ICMPV6)
		return family == 6;
	return true;
}

static bool match_port(const struct pc_rule *r, __u8 proto, __u16 port)
{
	size_t i;

	if (!r->nports)
		return true;
	if (proto != PROTO_TCP && proto != PROTO_UDP)
		return false;
	for (i = 0; i < r->nports; i++)
		if (port >= r->ports[i].lo && port <= r->ports[i].hi)
			return true;
	return false;
}

static bool rule_matches(const struct pc_rule *r, enum pc_dir dir,
			 __u8 family, const __u8 *remote, __u8 proto,
			 __u16 port)
{
	return (r->dirs & (1U << dir)) && match_addr(r, family, remote) &&
	       match_proto(r, family, proto) && match_port(r, proto, port);
}

static struct pc_model_verdict verdict(bool pass, enum pc_reason reason,
				       int rule)
{
	struct pc_model_verdict v = {
		.pass = pass,
		.reason = reason,
		.rule = rule,
	};

	return v;
}

/* What happens when no rule decides. */
static struct pc_model_verdict fallback(const struct pc_policy *p,
					enum pc_mode mode, enum pc_dir dir)
{
	switch (mode) {
	case PC_MODE_NORMAL:
		/* Only an explicit allow passes; any other value fails secure. */
		if (p->default_action[dir] == PC_ACT_ALLOW)
			return verdict(true, PC_R_PASS_DEFAULT, -1);
		return verdict(false, PC_R_DROP_DEFAULT, -1);
	case PC_MODE_LOCKDOWN:
		return verdict(false, PC_R_DROP_LOCKDOWN, -1);
	default:
		return verdict(false, PC_R_DROP_QUARANTINE, -1);
	}
}

struct pc_model_verdict pc_model_decide(const struct pc_policy *p,
					enum pc_mode mode, enum pc_dir dir,
					__u8 family, const __u8 *remote,
					__u8 proto, __u16 port)
{
	int mgmt = -1, deny = -1, allow = -1;
	const struct pc_rule *r;
	size_t i;

	/* Like the datapath: an unknown mode is the strictest one. */
	if ((unsigned int)mode >= PC_MODE_COUNT)
		mode = PC_MODE_QUARANTINE;
	/* Not a direction at all: nothing can vouch for it. */
	if ((unsigned int)dir >= PC_DIR_COUNT)
		return verdict(false, PC_R_DROP_DEFAULT, -1);
	for (i = 0; i < p->nrules; i++) {
		r = &p->rules[i];
		if (!rule_matches(r, dir, family, remote, proto, port))
			continue;
		if (r->mgmt) {
			if (mgmt < 0)
				mgmt = i;
		} else if (!(r->modes & (1U << mode))) {
			continue;
		} else if (r->action == PC_ACT_ALLOW) {
			if (allow < 0)
				allow = i;
		} else if (deny < 0) {
			deny = i;
		}
	}
	if (mgmt >= 0)
		return verdict(true, PC_R_PASS_MGMT, mgmt);
	if (deny >= 0)
		return verdict(false, PC_R_DROP_DENY, deny);
	/* Quarantine admits the management allowlist and nothing else. */
	if (allow >= 0 && mode != PC_MODE_QUARANTINE)
		return verdict(true, PC_R_PASS_RULE, allow);
	return fallback(p, mode, dir);
}

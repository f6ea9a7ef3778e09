/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Policy -> map contents. Each address LPM entry holds every rule whose
 * CIDR covers its prefix, and each port array entry every rule matching
 * that (direction, protocol, port), so one lookup per field gives the full
 * set of matching rules (see bpf/policy.h).
 */
#ifndef PC_COMPILE_H
#define PC_COMPILE_H

#include "policy.h"

struct pc_addr_entry {
	__u8 family;
	__u8 plen;
	__u8 addr[16];
	struct pc_addr_val val;
};

/* Management entries bound to one interface (policy `interfaces:`). */
struct pc_mgmt_bind {
	char name[PC_IFNAME_LEN];
	struct pc_ruleset rules;	/* bound entries that match on it */
};

/* What pc_mgmt_if holds for a slot, by interface name (user/mgmt_if.c
 * resolves the names when it writes the map). */
struct pc_mgmt_binds {
	struct pc_ruleset bound;	/* every bound entry; empty: none */
	struct pc_mgmt_bind ifs[PC_MAX_IFACES];
	size_t nifs;
};

struct pc_compiled {
	struct pc_settings settings;	/* generation left 0: set by apply */
	struct pc_addr_entry *addrs;	/* IPv4 and IPv6 */
	size_t naddrs;
	/* pc_ports contents for one slot: PC_DIR_COUNT * PC_PORT_SPAN sets,
	 * [dir * PC_PORT_SPAN + pc_port_offset(class, port)]. */
	struct pc_ruleset *port_sets;
	struct pc_rule_meta meta[PC_MAX_RULES];
	struct pc_mgmt_binds binds;
};

int pc_compile(const struct pc_policy *p, struct pc_compiled *out, char *err,
	       size_t errlen);
void pc_compiled_free(struct pc_compiled *c);

#endif /* PC_COMPILE_H */

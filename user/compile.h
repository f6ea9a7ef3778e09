/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Policy -> map contents. Each LPM entry holds every rule that matches
 * its prefix, so one longest-prefix lookup per field gives the full set
 * of matching rules (see bpf/policy.h).
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

struct pc_port_entry {
	__u8 dir;
	__u8 pclass;
	__u8 plen;		/* of 16 */
	__u16 port;		/* host order, low bits zero beyond plen */
	struct pc_ruleset val;
};

struct pc_compiled {
	struct pc_settings settings;	/* generation left 0: set by apply */
	struct pc_addr_entry *addrs;	/* IPv4 and IPv6 */
	size_t naddrs;
	struct pc_port_entry *ports;
	size_t nports;
	struct pc_rule_meta meta[PC_MAX_RULES];
};

int pc_compile(const struct pc_policy *p, struct pc_compiled *out, char *err,
	       size_t errlen);
void pc_compiled_free(struct pc_compiled *c);

#endif /* PC_COMPILE_H */

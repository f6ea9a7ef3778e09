/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The policy a user writes (YAML), parsed into memory. See README "Policy". */
#ifndef PC_POLICY_H
#define PC_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "portcullis.h"

#define PC_PROTO_ANY	0

struct pc_cidr {
	__u8 family;		/* 4 or 6 */
	__u8 plen;		/* prefix length */
	__u8 addr[16];		/* network order; IPv4 in the first 4 bytes */
};

struct pc_port_range {
	__u16 lo;		/* host order, inclusive */
	__u16 hi;
};

struct pc_rule {
	char name[PC_NAME_LEN];
	enum pc_action action;
	__u8 dirs;		/* bit (1 << enum pc_dir) */
	__u8 modes;		/* bit (1 << enum pc_mode) */
	__u8 proto;		/* PC_PROTO_ANY, 6, 17, 1 or 58 */
	bool mgmt;		/* management allowlist entry */
	/* Management entries only: bit i = the policy's interface i; the
	 * entry matches on those interfaces only. 0: on any (address only). */
	__u16 ifmask;
	struct pc_cidr *cidrs;	/* ncidrs == 0: any address */
	size_t ncidrs;
	struct pc_port_range *ports;	/* nports == 0: any port */
	size_t nports;
	int line;		/* where it was written, for messages */
	int column;
};

struct pc_policy {
	char **ifaces;
	size_t nifaces;
	__u8 default_action[PC_DIR_COUNT];	/* normal mode */
	bool audit;
	bool allow_arp;
	bool allow_nd;
	/* Management entries first (indices 0..nmgmt-1), then rules in file
	 * order: the index is the rule's number and its tie-break rank. */
	struct pc_rule *rules;
	size_t nrules;
	size_t nmgmt;
};

/*
 * Parse a policy. On error returns a negative errno and writes one line to
 * err: "FILE:LINE:COLUMN: what is wrong" (for cidr_file: "FILE:LINE: ...").
 * Relative cidr_file paths are taken from the policy file's directory
 * (from base_dir for the string variant; NULL means the current one).
 */
int pc_policy_load_file(const char *path, struct pc_policy *out, char *err,
			size_t errlen);
int pc_policy_load_string(const char *text, size_t len, const char *name,
			  const char *base_dir, struct pc_policy *out,
			  char *err, size_t errlen);
void pc_policy_free(struct pc_policy *p);

/* "192.0.2.0/24", "2001:db8::/32", or a bare address (full length).
 * Refuses host bits set beyond the prefix. 0 or -EINVAL. */
int pc_cidr_parse(const char *s, struct pc_cidr *out);
/* "22" or "80-443": 0 or -EINVAL (0 is not a port; lo <= hi). */
int pc_port_range_parse(const char *s, struct pc_port_range *out);
int pc_cidr_format(const struct pc_cidr *c, char *buf, size_t len);
bool pc_cidr_contains(const struct pc_cidr *net, const __u8 *addr, __u8 family);

const char *pc_mode_name(enum pc_mode m);
int pc_mode_parse(const char *s, enum pc_mode *out);
const char *pc_proto_name(__u8 proto);
const char *pc_dir_name(enum pc_dir d);

#endif /* PC_POLICY_H */

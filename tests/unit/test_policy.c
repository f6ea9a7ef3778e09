// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the policy parser, the reference model and the
 * anti-lockout check. Sample files live in tests/policies/; the path is
 * found from this file's own location so the binary runs from anywhere
 * the source tree is.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <cmocka.h>
#include "policy.h"
#include "model.h"
#include "lockout.h"

#define ERRLEN		512
#define NAME		"t.yaml"
#define IN		(1U << PC_DIR_INGRESS)
#define EG		(1U << PC_DIR_EGRESS)
#define M_NORMAL	(1U << PC_MODE_NORMAL)
#define M_LOCKDOWN	(1U << PC_MODE_LOCKDOWN)
#define M_QUARANTINE	(1U << PC_MODE_QUARANTINE)
#define M_ALL		(M_NORMAL | M_LOCKDOWN | M_QUARANTINE)

/* Leaves room in PATH_MAX buffers for a file name after it. */
static char policies_dir[PATH_MAX - 256];

static void assert_zeroed(const struct pc_policy *p)
{
	assert_null(p->rules);
	assert_null(p->ifaces);
	assert_int_equal(p->nrules, 0);
	assert_int_equal(p->nmgmt, 0);
	assert_int_equal(p->nifaces, 0);
}

static int load(const char *text, struct pc_policy *p, char *err)
{
	return pc_policy_load_string(text, strlen(text), NAME, policies_dir, p,
				     err, ERRLEN);
}

/* Load text that must parse; fail the test with the message if not. */
static void load_ok(const char *text, struct pc_policy *p)
{
	char err[ERRLEN];

	if (load(text, p, err))
		fail_msg("policy refused: %s", err);
}

static void assert_has(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static void assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)))
		fail_msg("'%s' does not start with '%s'", s, prefix);
}

static void assert_cidr(const struct pc_cidr *c, const char *want)
{
	char buf[64];

	assert_int_equal(pc_cidr_format(c, buf, sizeof(buf)), 0);
	assert_string_equal(buf, want);
}

static void assert_ports(const struct pc_port_range *r, __u16 lo, __u16 hi)
{
	assert_int_equal(r->lo, lo);
	assert_int_equal(r->hi, hi);
}

static void policy_path(char *buf, size_t len, const char *file)
{
	snprintf(buf, len, "%s/%s", policies_dir, file);
}

/* ---- the full example ---- */

static void check_full_mgmt(const struct pc_policy *p)
{
	const struct pc_rule *r = &p->rules[0];

	assert_string_equal(r->name, "mgmt-0");
	assert_true(r->mgmt);
	assert_int_equal(r->action, PC_ACT_ALLOW);
	assert_int_equal(r->dirs, IN | EG);
	assert_int_equal(r->modes, M_ALL);
	assert_int_equal(r->proto, 6);
	assert_int_equal(r->ncidrs, 1);
	assert_cidr(&r->cidrs[0], "192.0.2.10/32");
	assert_int_equal(r->nports, 1);
	assert_ports(&r->ports[0], 22, 22);
	assert_int_equal(r->line, 6);
	assert_int_equal(r->column, 5);

	r = &p->rules[1];
	assert_string_equal(r->name, "ops-v6");
	assert_true(r->mgmt);
	assert_int_equal(r->dirs, IN);
	assert_int_equal(r->modes, M_ALL);
	assert_int_equal(r->proto, PC_PROTO_ANY);
	assert_int_equal(r->ncidrs, 2);
	assert_cidr(&r->cidrs[0], "2001:db8:1::/48");
	assert_cidr(&r->cidrs[1], "2001:db8:2::1/128");
	assert_int_equal(r->nports, 0);
	assert_int_equal(r->line, 7);
	assert_int_equal(r->column, 5);
}

static void check_full_allows(const struct pc_policy *p)
{
	const struct pc_rule *r = &p->rules[2];

	assert_string_equal(r->name, "ssh-admins");
	assert_false(r->mgmt);
	assert_int_equal(r->action, PC_ACT_ALLOW);
	assert_int_equal(r->dirs, IN);
	assert_int_equal(r->modes, M_NORMAL | M_LOCKDOWN);
	assert_int_equal(r->ncidrs, 1);
	assert_cidr(&r->cidrs[0], "198.51.100.0/24");
	assert_int_equal(r->line, 11);

	r = &p->rules[3];
	assert_string_equal(r->name, "web");
	assert_int_equal(r->modes, M_NORMAL);	/* allow default */
	assert_int_equal(r->ncidrs, 0);
	assert_int_equal(r->nports, 1);
	assert_ports(&r->ports[0], 80, 443);

	r = &p->rules[4];
	assert_string_equal(r->name, "dns");
	assert_int_equal(r->dirs, EG);
	assert_int_equal(r->proto, 17);
	assert_int_equal(r->nports, 3);
	assert_ports(&r->ports[0], 53, 53);
	assert_ports(&r->ports[1], 5353, 5353);
	assert_ports(&r->ports[2], 6000, 6010);
}

static void check_full_lists(const struct pc_policy *p)
{
	const struct pc_rule *r = &p->rules[5];

	assert_string_equal(r->name, "blocklist");
	assert_int_equal(r->action, PC_ACT_DENY);
	assert_int_equal(r->dirs, IN | EG);
	assert_int_equal(r->modes, M_ALL);	/* deny default */
	assert_int_equal(r->proto, PC_PROTO_ANY);
	assert_int_equal(r->ncidrs, 4);
	assert_cidr(&r->cidrs[0], "203.0.113.0/24");
	assert_cidr(&r->cidrs[1], "198.51.100.7/32");
	assert_cidr(&r->cidrs[2], "2001:db8:bad::/48");
	assert_cidr(&r->cidrs[3], "192.0.2.128/25");

	/* cidr and cidr_file together: inline first, then the file. */
	r = &p->rules[6];
	assert_string_equal(r->name, "ping");
	assert_int_equal(r->proto, 1);
	assert_int_equal(r->modes, M_LOCKDOWN);
	assert_int_equal(r->ncidrs, 3);
	assert_cidr(&r->cidrs[0], "192.0.2.0/24");
	assert_cidr(&r->cidrs[1], "10.1.0.0/16");
	assert_cidr(&r->cidrs[2], "10.2.3.4/32");
	assert_int_equal(r->line, 15);
	assert_int_equal(r->column, 5);
}

static void test_full_example(void **state)
{
	struct pc_policy p;
	char path[PATH_MAX], err[ERRLEN];

	policy_path(path, sizeof(path), "full.yaml");
	if (pc_policy_load_file(path, &p, err, sizeof(err)))
		fail_msg("full.yaml refused: %s", err);
	assert_int_equal(p.nifaces, 2);
	assert_string_equal(p.ifaces[0], "eth0");
	assert_string_equal(p.ifaces[1], "eth1");
	assert_int_equal(p.default_action[PC_DIR_INGRESS], PC_ACT_DENY);
	assert_int_equal(p.default_action[PC_DIR_EGRESS], PC_ACT_ALLOW);
	assert_false(p.audit);
	assert_true(p.allow_arp);
	assert_true(p.allow_nd);
	assert_int_equal(p.nmgmt, 2);
	assert_int_equal(p.nrules, 7);
	check_full_mgmt(&p);
	check_full_allows(&p);
	check_full_lists(&p);
	pc_policy_free(&p);
	assert_zeroed(&p);
	pc_policy_free(&p);	/* twice is harmless */
}

static void test_settings(void **state)
{
	struct pc_policy p;

	load_ok("audit: yes\nallow_arp: off\nallow_nd: False\n"
		"defaults: {ingress: allow, egress: deny}\n", &p);
	assert_true(p.audit);
	assert_false(p.allow_arp);
	assert_false(p.allow_nd);
	assert_int_equal(p.default_action[PC_DIR_INGRESS], PC_ACT_ALLOW);
	assert_int_equal(p.default_action[PC_DIR_EGRESS], PC_ACT_DENY);
	assert_int_equal(p.nrules, 0);
	pc_policy_free(&p);

	/* Omitted defaults fail secure: deny both ways. */
	load_ok("rules: []\n", &p);
	assert_int_equal(p.default_action[PC_DIR_INGRESS], PC_ACT_DENY);
	assert_int_equal(p.default_action[PC_DIR_EGRESS], PC_ACT_DENY);
	assert_int_equal(p.nrules, 0);
	assert_int_equal(p.nifaces, 0);
	pc_policy_free(&p);
}

static void test_rule_defaults(void **state)
{
	struct pc_policy p;

	load_ok("management:\n"
		"  - {cidr: 192.0.2.1}\n"
		"  - {cidr: 192.0.2.2, direction: egress}\n"
		"rules:\n"
		"  - {name: a, action: deny, direction: ingress, ports: [22], proto: tcp}\n"
		"  - {name: b, action: allow, direction: egress, modes: [lockdown, lockdown]}\n",
		&p);
	assert_int_equal(p.nmgmt, 2);
	assert_string_equal(p.rules[0].name, "mgmt-0");
	assert_string_equal(p.rules[1].name, "mgmt-1");
	assert_int_equal(p.rules[0].dirs, IN | EG);
	assert_int_equal(p.rules[1].dirs, EG);
	assert_int_equal(p.rules[0].proto, PC_PROTO_ANY);
	assert_cidr(&p.rules[0].cidrs[0], "192.0.2.1/32");
	assert_int_equal(p.rules[2].modes, M_ALL);
	assert_ports(&p.rules[2].ports[0], 22, 22);
	assert_int_equal(p.rules[3].modes, M_LOCKDOWN);
	assert_int_equal(p.rules[3].column, 5);
	assert_int_equal(p.rules[3].line, 6);
	pc_policy_free(&p);
}

static void test_helpers(void **state)
{
	struct pc_port_range r;
	struct pc_cidr c;
	enum pc_mode m;
	__u8 a4[4] = { 192, 0, 2, 255 }, b4[4] = { 192, 0, 3, 0 };
	__u8 a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
	char buf[8];

	assert_int_equal(pc_cidr_parse("192.0.2.0/24", &c), 0);
	assert_int_equal(c.family, 4);
	assert_int_equal(c.plen, 24);
	assert_true(pc_cidr_contains(&c, a4, 4));
	assert_false(pc_cidr_contains(&c, b4, 4));
	assert_false(pc_cidr_contains(&c, a6, 6));
	assert_int_equal(pc_cidr_parse("2001:db8::/32", &c), 0);
	assert_true(pc_cidr_contains(&c, a6, 6));
	assert_int_equal(pc_cidr_parse("2001:db8::1", &c), 0);
	assert_int_equal(c.plen, 128);
	assert_int_equal(pc_cidr_parse("0.0.0.0/0", &c), 0);
	assert_true(pc_cidr_contains(&c, b4, 4));
	assert_int_equal(pc_cidr_parse("1.2.3.4/33", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("1.2.3/24", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("1.2.3.4/24x", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("1.2.3.4 ", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("1.2.3.4/", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("2001:db8::/129", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("192.0.2.5/24", &c), -EINVAL);
	assert_int_equal(pc_cidr_parse("192.0.2.4/30", &c), 0);
	assert_int_equal(pc_cidr_format(&c, buf, sizeof(buf)), -ENOSPC);

	assert_int_equal(pc_port_range_parse("22", &r), 0);
	assert_ports(&r, 22, 22);
	assert_int_equal(pc_port_range_parse("1-65535", &r), 0);
	assert_ports(&r, 1, 65535);
	assert_int_equal(pc_port_range_parse("0", &r), -EINVAL);
	assert_int_equal(pc_port_range_parse("65536", &r), -EINVAL);
	assert_int_equal(pc_port_range_parse("443-80", &r), -EINVAL);
	assert_int_equal(pc_port_range_parse("80-", &r), -EINVAL);
	assert_int_equal(pc_port_range_parse("http", &r), -EINVAL);

	assert_string_equal(pc_mode_name(PC_MODE_LOCKDOWN), "lockdown");
	assert_int_equal(pc_mode_parse("quarantine", &m), 0);
	assert_int_equal(m, PC_MODE_QUARANTINE);
	assert_int_equal(pc_mode_parse("panic", &m), -EINVAL);
	assert_string_equal(pc_proto_name(58), "icmpv6");
	assert_string_equal(pc_proto_name(PC_PROTO_ANY), "any");
	assert_string_equal(pc_dir_name(PC_DIR_EGRESS), "egress");
}

static void test_free_zeroed(void **state)
{
	struct pc_policy p;

	memset(&p, 0, sizeof(p));
	pc_policy_free(&p);
	pc_policy_free(&p);
	pc_policy_free(NULL);
	assert_zeroed(&p);
}

/* ---- malformed policies, one named test each ---- */

struct bad_case {
	const char *name;
	const char *text;
	const char *prefix;	/* "t.yaml:LINE:COLUMN:" */
	const char *keyword;
};

/* A valid rule head; whatever follows starts on line 5, column 5. */
#define HEAD "rules:\n  - name: r\n    action: allow\n    direction: ingress\n"
#define HEAD_TCP HEAD "    proto: tcp\n"

static const struct bad_case bad_cases[] = {
	{ "syntax: bad indent", "rules:\n  - name: a\n    action: allow\n   direction: x\n",
	  NAME ":4:4:", "did not find expected '-' indicator" },
	{ "syntax: unclosed flow", "rules: [\n", NAME ":2:1:", "YAML syntax error" },
	{ "syntax: control char", "audit: tr\001ue\n", NAME ":1:10:", "control characters" },
	{ "unknown top-level key", "interfaces: [eth0]\nrulez: []\n", NAME ":2:1:",
	  "unknown key 'rulez'" },
	{ "unknown rule key", HEAD "    port: 22\n", NAME ":5:5:", "unknown key 'port'" },
	{ "unknown defaults key", "defaults: {ingress: deny, egres: allow}\n", NAME ":1:27:",
	  "unknown key 'egres'" },
	{ "duplicate top-level key", "audit: true\naudit: false\n", NAME ":2:1:",
	  "duplicate key 'audit'" },
	{ "duplicate rule key", HEAD "    action: deny\n", NAME ":5:5:",
	  "duplicate key 'action'" },
	{ "duplicate rule name",
	  "rules:\n  - {name: a, action: allow, direction: ingress}\n"
	  "  - {name: a, action: deny, direction: egress}\n", NAME ":3:5:",
	  "duplicate rule name 'a'" },
	{ "rule name clashes with mgmt-N",
	  "rules:\n  - {name: mgmt-0, action: allow, direction: ingress}\n"
	  "management:\n  - {cidr: 192.0.2.1}\n", NAME ":4:5:", "mgmt-N" },
	{ "missing name", "rules:\n  - {action: allow, direction: ingress}\n", NAME ":2:5:",
	  "no 'name'" },
	{ "missing action", "rules:\n  - name: a\n    direction: ingress\n", NAME ":2:5:",
	  "no 'action'" },
	{ "missing direction", "rules:\n  - name: a\n    action: deny\n", NAME ":2:5:",
	  "no 'direction'" },
	{ "bad action", "rules:\n  - name: r\n    action: permit\n    direction: ingress\n",
	  NAME ":3:13:", "bad action 'permit'" },
	{ "bad direction", "rules:\n  - name: r\n    action: allow\n    direction: inbound\n",
	  NAME ":4:16:", "bad direction 'inbound'" },
	{ "bad proto", HEAD "    proto: sctp\n", NAME ":5:12:", "bad proto 'sctp'" },
	{ "bad mode", HEAD "    modes: [normal, panic]\n", NAME ":5:21:", "bad mode 'panic'" },
	{ "empty modes", HEAD "    modes: []\n", NAME ":5:12:", "never apply" },
	{ "modes not a list", HEAD "    modes: normal\n", NAME ":5:12:", "'modes' must be a list" },
	{ "bad default", "defaults: {ingress: maybe}\n", NAME ":1:21:", "bad action 'maybe'" },
	{ "bad bool", "audit: maybe\n", NAME ":1:8:", "true or false" },
	{ "bad name characters", "rules:\n  - name: 'a b'\n    action: allow\n    direction: both\n",
	  NAME ":2:11:", "bad name 'a b'" },
	{ "name too long", "rules:\n  - name: abcdefghijabcdefghijabcdefghij12\n"
	  "    action: allow\n    direction: both\n", NAME ":2:11:", "bad name" },
	{ "bad CIDR /33", HEAD "    cidr: 1.2.3.4/33\n", NAME ":5:11:", "bad CIDR '1.2.3.4/33'" },
	{ "bad CIDR in list", HEAD "    cidr: [192.0.2.0/24, 1.2.3/24]\n", NAME ":5:26:",
	  "bad CIDR '1.2.3/24'" },
	{ "bad CIDR trailing junk", HEAD "    cidr: 192.0.2.0/24x\n", NAME ":5:11:",
	  "bad CIDR" },
	{ "host bits set", HEAD "    cidr: 192.0.2.5/24\n", NAME ":5:11:",
	  "192.0.2.5/24 has host bits set (did you mean 192.0.2.0/24?)" },
	{ "host bits set IPv6", HEAD "    cidr: 2001:db8::1/32\n", NAME ":5:11:",
	  "did you mean 2001:db8::/32?" },
	{ "cidr is a mapping", HEAD "    cidr: {a: b}\n", NAME ":5:11:", "'cidr' must be a list" },
	{ "ports with proto any", HEAD "    ports: 22\n", NAME ":5:12:",
	  "ports need proto tcp or udp" },
	{ "ports with proto icmp", HEAD "    proto: icmp\n    ports: 22\n", NAME ":6:12:",
	  "ports need proto tcp or udp" },
	{ "port 0", HEAD_TCP "    ports: 0\n", NAME ":6:12:", "0 is not a port" },
	{ "port 70000", HEAD_TCP "    ports: 70000\n", NAME ":6:12:", "out of range" },
	{ "port range to 70000", HEAD_TCP "    ports: [22, 1000-70000]\n", NAME ":6:17:",
	  "out of range" },
	{ "reversed range", HEAD_TCP "    ports: 443-80\n", NAME ":6:12:", "reversed" },
	{ "port name", HEAD_TCP "    ports: [22, http]\n", NAME ":6:17:", "bad port 'http'" },
	{ "ports mapping", HEAD_TCP "    ports: {a: 1}\n", NAME ":6:12:", "not a mapping" },
	{ "icmp with IPv6", HEAD "    proto: icmp\n    cidr: 2001:db8::/32\n", NAME ":6:11:",
	  "proto icmp does not match IPv6 CIDR 2001:db8::/32" },
	{ "icmpv6 with IPv4", HEAD "    proto: icmpv6\n    cidr: 10.0.0.0/8\n", NAME ":6:11:",
	  "proto icmpv6 does not match IPv4 CIDR 10.0.0.0/8" },
	{ "empty file", "", NAME ":1:1:", "empty policy" },
	{ "comments only", "# nothing\n\n", NAME ":1:1:", "empty policy" },
	{ "top level a list", "- a\n- b\n", NAME ":1:1:", "top level must be a mapping" },
	{ "top level a scalar", "\nhello\n", NAME ":2:1:", "top level must be a mapping" },
	{ "two documents", "audit: true\n---\naudit: false\n", NAME ":3:1:", "one YAML document" },
	{ "rules not a list", "rules: ssh\n", NAME ":1:8:", "'rules' must be a list" },
	{ "rule not a mapping", "rules:\n  - ssh\n", NAME ":2:5:", "must be a mapping" },
	{ "management with action", "management:\n  - {cidr: 192.0.2.1, action: deny}\n",
	  NAME ":2:23:", "'action' is not allowed in management" },
	{ "allow rule in quarantine",
	  "rules:\n  - {name: a, action: allow, direction: ingress, modes: [normal, quarantine]}\n",
	  NAME ":2:66:", "only the management allowlist" },
	{ "management for any address", "management:\n  - {proto: tcp, ports: 22}\n",
	  NAME ":2:5:", "needs a 'cidr'" },
	{ "management for /0", "management:\n  - {cidr: 0.0.0.0/0}\n",
	  NAME ":2:5:", "/0 CIDR" },
	{ "management with modes", "management:\n  - {cidr: 192.0.2.1, modes: [normal]}\n",
	  NAME ":2:23:", "'modes' is not allowed in management" },
	{ "bad interface name", "interfaces: [eth0, this-name-is-too-long]\n", NAME ":1:20:",
	  "bad interface name" },
	{ "interface twice", "interfaces: [eth0, eth0]\n", NAME ":1:20:", "listed twice" },
	{ "management interface not in the list",
	  "interfaces: [eth0]\nmanagement:\n  - {cidr: 192.0.2.1, interfaces: [eth1]}\n",
	  NAME ":3:36:", "not in the policy's 'interfaces' list" },
	{ "management interfaces empty",
	  "interfaces: [eth0]\nmanagement:\n  - {cidr: 192.0.2.1, interfaces: []}\n",
	  NAME ":3:35:", "would match nowhere" },
	{ "management interface twice",
	  "interfaces: [eth0]\nmanagement:\n  - {cidr: 192.0.2.1, interfaces: [eth0, eth0]}\n",
	  NAME ":3:42:", "listed twice" },
	{ "interfaces on a rule",
	  "interfaces: [eth0]\nrules:\n  - {name: a, action: allow, direction: ingress, interfaces: [eth0]}\n",
	  NAME ":3:50:", "management entries only" },
	{ "too many interfaces",
	  "interfaces: [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, b0, b1, b2, b3, b4, b5, b6]\n",
	  NAME ":1:78:", "the limit is 16" },
	{ "empty cidr_file", HEAD "    cidr_file: empty-list.txt\n", NAME ":5:16:",
	  "lists no CIDRs" },
	{ "cidr_file a list", HEAD "    cidr_file: [a.txt]\n", NAME ":5:16:",
	  "'cidr_file' must be a single value" },
};

static void test_bad_case(void **state)
{
	const struct bad_case *bc = *state;
	struct pc_policy p;
	char err[ERRLEN];
	int ret;

	memset(&p, 0x5a, sizeof(p));
	ret = load(bc->text, &p, err);
	if (ret != -EINVAL)
		fail_msg("%s: got %d (%s), want -EINVAL", bc->name, ret, err);
	assert_prefix(err, bc->prefix);
	assert_has(err, bc->keyword);
	assert_null(strchr(err, '\n'));
	assert_zeroed(&p);
}

/* ---- errors that need generated input or a file name ---- */

static char *many_rules(size_t nmgmt, size_t nrules)
{
	size_t len = 64 + (nmgmt + nrules) * 64, off = 0, i;
	char *s = malloc(len);

	assert_non_null(s);
	off += snprintf(s + off, len - off, "management:\n");
	for (i = 0; i < nmgmt; i++)
		off += snprintf(s + off, len - off, "  - {cidr: 192.0.2.%zu}\n",
				i % 256);
	off += snprintf(s + off, len - off, "rules:\n");
	for (i = 0; i < nrules; i++)
		off += snprintf(s + off, len - off,
				"  - {name: r%zu, action: allow, direction: ingress}\n",
				i);
	return s;
}

static void test_too_many_rules(void **state)
{
	struct pc_policy p;
	char err[ERRLEN];
	char *text;

	/* 128 together is the limit, and fine. */
	text = many_rules(1, PC_MAX_RULES - 1);
	load_ok(text, &p);
	assert_int_equal(p.nrules, PC_MAX_RULES);
	assert_string_equal(p.rules[PC_MAX_RULES - 1].name, "r126");
	pc_policy_free(&p);
	free(text);

	/* The 129th entry is rule r127 on line 1 + 1 + 1 + 127 + 1. */
	text = many_rules(1, PC_MAX_RULES);
	assert_int_equal(load(text, &p, err), -EINVAL);
	assert_prefix(err, NAME ":131:5:");
	assert_has(err, "too many rules");
	assert_has(err, "128");
	assert_zeroed(&p);
	free(text);
}

static void test_cidr_file_missing(void **state)
{
	char err[ERRLEN], want[PATH_MAX + 64];
	struct pc_policy p;

	assert_int_equal(load(HEAD "    cidr_file: no-such-file.txt\n", &p, err),
			 -ENOENT);
	snprintf(want, sizeof(want), "%s/no-such-file.txt: %s", policies_dir,
		 strerror(ENOENT));
	assert_prefix(err, want);
	assert_has(err, NAME ":5:16");
	assert_zeroed(&p);

	/* And the policy file itself. */
	policy_path(want, sizeof(want), "no-such-policy.yaml");
	assert_int_equal(pc_policy_load_file(want, &p, err, sizeof(err)),
			 -ENOENT);
	assert_prefix(err, want);
	assert_has(err, ": No such file or directory");
	assert_zeroed(&p);
}

static void test_cidr_file_bad_lines(void **state)
{
	char err[ERRLEN], want[PATH_MAX + 128];
	struct pc_policy p;

	assert_int_equal(load(HEAD "    cidr_file: bad-line.txt\n", &p, err),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s/bad-line.txt:4: bad CIDR '192.0.2.300/32'",
		 policies_dir);
	assert_string_equal(err, want);
	assert_zeroed(&p);

	assert_int_equal(load(HEAD "    cidr_file: host-bits.txt\n", &p, err),
			 -EINVAL);
	snprintf(want, sizeof(want),
		 "%s/host-bits.txt:3: 10.0.0.1/8 has host bits set (did you mean 10.0.0.0/8?)",
		 policies_dir);
	assert_string_equal(err, want);

	/* The rule's proto is checked against every line too. */
	assert_int_equal(load(HEAD "    proto: icmpv6\n    cidr_file: blocklist.txt\n",
			      &p, err), -EINVAL);
	snprintf(want, sizeof(want), "%s/blocklist.txt:3: proto icmpv6",
		 policies_dir);
	assert_prefix(err, want);
	assert_zeroed(&p);
}

static void test_policy_files(void **state)
{
	char path[PATH_MAX], err[ERRLEN], want[PATH_MAX + 64];
	struct pc_policy p;

	policy_path(path, sizeof(path), "unknown-key.yaml");
	assert_int_equal(pc_policy_load_file(path, &p, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s:8:5: unknown key 'port'", path);
	assert_string_equal(err, want);

	policy_path(path, sizeof(path), "syntax-error.yaml");
	assert_int_equal(pc_policy_load_file(path, &p, err, sizeof(err)),
			 -EINVAL);
	snprintf(want, sizeof(want), "%s:6:4: YAML syntax error", path);
	assert_prefix(err, want);
	assert_zeroed(&p);
}

/* Write text to a fresh file under /tmp; returns its malloc'ed path. */
static char *write_temp(const char *dir, const char *file, const char *text)
{
	char *path;
	FILE *f;

	assert_true(asprintf(&path, "%s/%s", dir, file) > 0);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	return path;
}

static void test_cidr_file_relative(void **state)
{
	char dir[] = "/tmp/pc_test_XXXXXX", err[ERRLEN], text[PATH_MAX + 128];
	char *list, *policy;
	struct pc_policy p;

	assert_non_null(mkdtemp(dir));
	list = write_temp(dir, "list.txt", "192.0.2.0/24\n");
	policy = write_temp(dir, "policy.yaml",
			    "rules:\n  - {name: l, action: deny, direction: both, cidr_file: list.txt}\n");

	/* From the policy file's own directory, whatever the cwd. */
	if (pc_policy_load_file(policy, &p, err, sizeof(err)))
		fail_msg("%s", err);
	assert_int_equal(p.rules[0].ncidrs, 1);
	assert_cidr(&p.rules[0].cidrs[0], "192.0.2.0/24");
	pc_policy_free(&p);

	/* From base_dir for the string variant... */
	snprintf(text, sizeof(text),
		 "rules:\n  - {name: l, action: deny, direction: both, cidr_file: list.txt}\n");
	assert_int_equal(pc_policy_load_string(text, strlen(text), NAME, dir,
					       &p, err, sizeof(err)), 0);
	assert_int_equal(p.rules[0].ncidrs, 1);
	pc_policy_free(&p);

	/* ...and an absolute path ignores base_dir. */
	snprintf(text, sizeof(text),
		 "rules:\n  - {name: l, action: deny, direction: both, cidr_file: %s}\n",
		 list);
	assert_int_equal(pc_policy_load_string(text, strlen(text), NAME,
					       "/nonexistent", &p, err,
					       sizeof(err)), 0);
	assert_int_equal(p.rules[0].ncidrs, 1);
	pc_policy_free(&p);

	unlink(list);
	unlink(policy);
	rmdir(dir);
	free(list);
	free(policy);
}

#define BIG_LINES	100000

static void test_cidr_file_large(void **state)
{
	char path[] = "/tmp/pc_test_cidrs_XXXXXX", err[ERRLEN], text[256];
	struct pc_policy p;
	const struct pc_rule *r;
	FILE *f;
	int fd, i, ret;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	assert_non_null(f);
	for (i = 0; i < BIG_LINES; i++) {
		if (i % 1000 == 0)
			fprintf(f, "# block %d\n\n", i / 1000);
		fprintf(f, "10.%d.%d.%d/32\n", i >> 16, (i >> 8) & 0xff,
			i & 0xff);
	}
	assert_int_equal(fclose(f), 0);
	snprintf(text, sizeof(text),
		 "rules:\n  - {name: big, action: deny, direction: both, cidr_file: %s}\n",
		 path);
	ret = load(text, &p, err);
	unlink(path);
	if (ret)
		fail_msg("%s", err);
	r = &p.rules[0];
	assert_int_equal(r->ncidrs, BIG_LINES);
	assert_cidr(&r->cidrs[0], "10.0.0.0/32");
	assert_cidr(&r->cidrs[BIG_LINES - 1], "10.1.134.159/32");
	pc_policy_free(&p);
}

/* ---- the model ---- */

static const char model_yaml[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {name: mgmt, cidr: 192.0.2.10, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80-443}\n"
	"  - {name: web2, action: allow, direction: ingress, proto: tcp, ports: 100-200,"
	" modes: [normal, lockdown]}\n"
	"  - {name: block, action: deny, direction: ingress, cidr: 192.0.2.0/24}\n"
	"  - {name: ping4, action: allow, direction: both, proto: icmp}\n"
	"  - {name: ping6, action: allow, direction: both, proto: icmpv6}\n"
	"  - {name: dns, action: allow, direction: egress, proto: udp, ports: 53,"
	" modes: [lockdown]}\n"
	"  - {name: v6ssh, action: allow, direction: ingress, cidr: 2001:db8::/32,"
	" proto: tcp, ports: 22}\n";

enum { R_MGMT, R_WEB, R_WEB2, R_BLOCK, R_PING4, R_PING6, R_DNS, R_V6SSH };

#define NORMAL		PC_MODE_NORMAL
#define LOCKDOWN	PC_MODE_LOCKDOWN
#define QUARANTINE	PC_MODE_QUARANTINE

/* Decide for a remote address in text form. */
static struct pc_model_verdict decide(const struct pc_policy *p, int mode,
				      enum pc_dir dir, const char *remote,
				      __u8 proto, __u16 port)
{
	__u8 addr[16] = { 0 };
	__u8 family = strchr(remote, ':') ? 6 : 4;

	assert_int_equal(inet_pton(family == 6 ? AF_INET6 : AF_INET, remote,
				   addr), 1);
	return pc_model_decide(p, mode, dir, family, addr, proto, port);
}

#define assert_verdict(v, want_pass, want_reason, want_rule)                 \
	do {                                                                  \
		struct pc_model_verdict _v = (v);                             \
		assert_int_equal(_v.pass, want_pass);                         \
		assert_int_equal(_v.reason, want_reason);                     \
		assert_int_equal(_v.rule, want_rule);                         \
	} while (0)

static int model_setup(void **state)
{
	struct pc_policy *p = malloc(sizeof(*p));
	char err[ERRLEN];

	if (!p || load(model_yaml, p, err)) {
		print_error("model policy refused: %s\n", err);
		free(p);
		return -1;
	}
	*state = p;
	return 0;
}

static int model_teardown(void **state)
{
	pc_policy_free(*state);
	free(*state);
	return 0;
}

static void test_model_deny_beats_allow(void **state)
{
	const struct pc_policy *p = *state;

	/* web (index 1) allows tcp/80, block (index 3) denies the /24. */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "192.0.2.5", 6, 80),
		       false, PC_R_DROP_DENY, R_BLOCK);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 80),
		       true, PC_R_PASS_RULE, R_WEB);
}

static void test_model_mgmt_beats_deny(void **state)
{
	const struct pc_policy *p = *state;
	int mode;

	for (mode = NORMAL; mode <= QUARANTINE; mode++)
		assert_verdict(decide(p, mode, PC_DIR_INGRESS, "192.0.2.10", 6, 22),
			       true, PC_R_PASS_MGMT, R_MGMT);
	/* Management covers port 22 only; the deny still holds elsewhere. */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "192.0.2.10", 6, 23),
		       false, PC_R_DROP_DENY, R_BLOCK);
	/* Both directions by default. */
	assert_verdict(decide(p, QUARANTINE, PC_DIR_EGRESS, "192.0.2.10", 6, 22),
		       true, PC_R_PASS_MGMT, R_MGMT);
}

static void test_model_lowest_index(void **state)
{
	const struct pc_policy *p = *state;

	/* web and web2 both cover 150: the lower index wins... */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 150),
		       true, PC_R_PASS_RULE, R_WEB);
	/* ...unless it does not apply in this mode. */
	assert_verdict(decide(p, LOCKDOWN, PC_DIR_INGRESS, "198.51.100.5", 6, 150),
		       true, PC_R_PASS_RULE, R_WEB2);
}

static void test_model_modes(void **state)
{
	const struct pc_policy *p = *state;

	assert_verdict(decide(p, LOCKDOWN, PC_DIR_INGRESS, "198.51.100.5", 6, 80),
		       false, PC_R_DROP_LOCKDOWN, -1);
	assert_verdict(decide(p, QUARANTINE, PC_DIR_INGRESS, "198.51.100.5", 6, 150),
		       false, PC_R_DROP_QUARANTINE, -1);
	assert_verdict(decide(p, QUARANTINE, PC_DIR_EGRESS, "198.51.100.5", 17, 53),
		       false, PC_R_DROP_QUARANTINE, -1);
	/* Deny rules hold in every mode by default. */
	assert_verdict(decide(p, QUARANTINE, PC_DIR_INGRESS, "192.0.2.7", 6, 80),
		       false, PC_R_DROP_DENY, R_BLOCK);
	/* A lockdown-only allow is ignored in normal mode: default decides. */
	assert_verdict(decide(p, LOCKDOWN, PC_DIR_EGRESS, "198.51.100.5", 17, 53),
		       true, PC_R_PASS_RULE, R_DNS);
	assert_verdict(decide(p, NORMAL, PC_DIR_EGRESS, "198.51.100.5", 17, 53),
		       true, PC_R_PASS_DEFAULT, -1);
	/* An unknown mode is quarantine. */
	assert_verdict(decide(p, 7, PC_DIR_INGRESS, "198.51.100.5", 6, 150),
		       false, PC_R_DROP_QUARANTINE, -1);
	assert_verdict(decide(p, 7, PC_DIR_INGRESS, "192.0.2.10", 6, 22),
		       true, PC_R_PASS_MGMT, R_MGMT);
}

static void test_model_direction(void **state)
{
	const struct pc_policy *p = *state;

	/* web is ingress only: egress tcp/80 falls to the egress default. */
	assert_verdict(decide(p, NORMAL, PC_DIR_EGRESS, "198.51.100.5", 6, 80),
		       true, PC_R_PASS_DEFAULT, -1);
	assert_verdict(decide(p, LOCKDOWN, PC_DIR_EGRESS, "198.51.100.5", 6, 150),
		       false, PC_R_DROP_LOCKDOWN, -1);
	/* dns is egress only. */
	assert_verdict(decide(p, LOCKDOWN, PC_DIR_INGRESS, "198.51.100.5", 17, 53),
		       false, PC_R_DROP_LOCKDOWN, -1);
	/* block is ingress only. */
	assert_verdict(decide(p, NORMAL, PC_DIR_EGRESS, "192.0.2.5", 6, 25),
		       true, PC_R_PASS_DEFAULT, -1);
}

static void test_model_icmp_family(void **state)
{
	const struct pc_policy *p = *state;

	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 1, 0),
		       true, PC_R_PASS_RULE, R_PING4);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "2001:db9::1", 58, 0),
		       true, PC_R_PASS_RULE, R_PING6);
	/* icmp is ICMP over IPv4 only, icmpv6 over IPv6 only. */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "2001:db9::1", 1, 0),
		       false, PC_R_DROP_DEFAULT, -1);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 58, 0),
		       false, PC_R_DROP_DEFAULT, -1);
}

static void test_model_ports(void **state)
{
	const struct pc_policy *p = *state;

	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 79),
		       false, PC_R_DROP_DEFAULT, -1);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 80),
		       true, PC_R_PASS_RULE, R_WEB);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 443),
		       true, PC_R_PASS_RULE, R_WEB);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 444),
		       false, PC_R_DROP_DEFAULT, -1);
	/* Right port, wrong protocol. */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 17, 80),
		       false, PC_R_DROP_DEFAULT, -1);
	/* No cidr: any address of either family. */
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "2001:db9::1", 6, 80),
		       true, PC_R_PASS_RULE, R_WEB);
}

static void test_model_cidr_family(void **state)
{
	const struct pc_policy *p = *state;

	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "2001:db8:ffff::1", 6, 22),
		       true, PC_R_PASS_RULE, R_V6SSH);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "2001:db9::1", 6, 22),
		       false, PC_R_DROP_DEFAULT, -1);
	assert_verdict(decide(p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 22),
		       false, PC_R_DROP_DEFAULT, -1);
}

static void test_model_defaults(void **state)
{
	struct pc_policy p;

	load_ok("defaults: {ingress: allow}\n", &p);
	assert_verdict(decide(&p, NORMAL, PC_DIR_INGRESS, "198.51.100.5", 6, 1),
		       true, PC_R_PASS_DEFAULT, -1);
	assert_verdict(decide(&p, NORMAL, PC_DIR_EGRESS, "198.51.100.5", 6, 1),
		       false, PC_R_DROP_DEFAULT, -1);
	/* Defaults are for normal mode only. */
	assert_verdict(decide(&p, LOCKDOWN, PC_DIR_INGRESS, "198.51.100.5", 6, 1),
		       false, PC_R_DROP_LOCKDOWN, -1);
	pc_policy_free(&p);
}

/* ---- anti-lockout ---- */

static const char lockout_yaml[] =
	"management:\n"
	"  - {cidr: 192.0.2.10, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: blocklist, action: deny, direction: ingress, cidr: 198.51.100.0/24}\n"
	"  - {name: ssh-ops, action: allow, direction: ingress, cidr: 203.0.113.0/24,"
	" proto: tcp, ports: 22}\n";

static void test_lockout_no_mgmt(void **state)
{
	struct pc_policy p;
	char why[256];

	load_ok("defaults: {ingress: allow}\n", &p);
	assert_int_equal(pc_lockout_check(&p, NULL, why, sizeof(why)), 1);
	assert_has(why, "no management allowlist");
	/* Garbage $SSH_CONNECTION is ignored, the rest still checked. */
	assert_int_equal(pc_lockout_check(&p, "garbage", why, sizeof(why)), 1);
	assert_has(why, "no management allowlist");
	pc_policy_free(&p);
}

static void test_lockout_ssh(void **state)
{
	struct pc_policy p;
	char why[256];

	load_ok(lockout_yaml, &p);
	assert_int_equal(pc_lockout_check(&p, "192.0.2.99 50000 192.0.2.1 22",
					  why, sizeof(why)), 1);
	assert_string_equal(why,
			    "the ingress default (deny) would drop this SSH session from 192.0.2.99 to port 22");

	assert_int_equal(pc_lockout_check(&p, "198.51.100.7 50000 192.0.2.1 22",
					  why, sizeof(why)), 1);
	assert_string_equal(why,
			    "rule 'blocklist' (deny) would drop this SSH session from 198.51.100.7 to port 22");

	/* A v4-mapped client is the IPv4 packet the datapath sees. */
	assert_int_equal(pc_lockout_check(&p, "::ffff:198.51.100.7 50000 ::ffff:192.0.2.1 22",
					  why, sizeof(why)), 1);
	assert_has(why, "rule 'blocklist'");
	assert_int_equal(pc_lockout_check(&p, "2001:db8::5 50000 2001:db8::1 22",
					  why, sizeof(why)), 1);
	assert_has(why, "default");
	assert_has(why, "2001:db8::5");

	/* Allowed by a rule, by management, on another port: safe. */
	assert_int_equal(pc_lockout_check(&p, "203.0.113.9 50000 192.0.2.1 22",
					  why, sizeof(why)), 0);
	assert_string_equal(why, "");
	assert_int_equal(pc_lockout_check(&p, "192.0.2.10 50000 192.0.2.1 22",
					  why, sizeof(why)), 0);
	assert_int_equal(pc_lockout_check(&p, "203.0.113.9 50000 192.0.2.1 2222",
					  why, sizeof(why)), 1);
	assert_has(why, "port 2222");
	assert_int_equal(pc_lockout_check(&p, NULL, why, sizeof(why)), 0);
	pc_policy_free(&p);
}

static void test_lockout_garbage(void **state)
{
	static const char *const junk[] = {
		"", "garbage", "192.0.2.99 50000", "192.0.2.99 x 192.0.2.1 22",
		"192.0.2.99 50000 192.0.2.1 70000", "192.0.2.99 50000 192.0.2.1 0",
		"192.0.2.999 50000 192.0.2.1 22", "192.0.2.99 50000 192.0.2.1 22 extra",
	};
	struct pc_policy p;
	char why[256];
	size_t i;

	/* Any well-formed session from 192.0.2.99 would be denied here. */
	load_ok(lockout_yaml, &p);
	for (i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
		if (pc_lockout_check(&p, junk[i], why, sizeof(why)) != 0)
			fail_msg("'%s' was not ignored: %s", junk[i], why);
	}
	pc_policy_free(&p);
}

static int run_bad_cases(void)
{
	size_t i, n = sizeof(bad_cases) / sizeof(bad_cases[0]);
	struct CMUnitTest tests[sizeof(bad_cases) / sizeof(bad_cases[0])];

	for (i = 0; i < n; i++) {
		struct CMUnitTest t = {
			.name = bad_cases[i].name,
			.test_func = test_bad_case,
			.initial_state = (void *)&bad_cases[i],
		};

		tests[i] = t;
	}
	return _cmocka_run_group_tests("malformed policies", tests, n, NULL,
				       NULL);
}

/* tests/unit/test_policy.c -> tests/policies */
static void find_policies_dir(void)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", __FILE__);
	snprintf(policies_dir, sizeof(policies_dir), "%s/policies",
		 dirname(dirname(buf)));
}

int main(void)
{
	const struct CMUnitTest parser[] = {
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_settings),
		cmocka_unit_test(test_rule_defaults),
		cmocka_unit_test(test_helpers),
		cmocka_unit_test(test_free_zeroed),
		cmocka_unit_test(test_too_many_rules),
		cmocka_unit_test(test_cidr_file_missing),
		cmocka_unit_test(test_cidr_file_bad_lines),
		cmocka_unit_test(test_policy_files),
		cmocka_unit_test(test_cidr_file_relative),
		cmocka_unit_test(test_cidr_file_large),
	};
	const struct CMUnitTest model[] = {
		cmocka_unit_test(test_model_deny_beats_allow),
		cmocka_unit_test(test_model_mgmt_beats_deny),
		cmocka_unit_test(test_model_lowest_index),
		cmocka_unit_test(test_model_modes),
		cmocka_unit_test(test_model_direction),
		cmocka_unit_test(test_model_icmp_family),
		cmocka_unit_test(test_model_ports),
		cmocka_unit_test(test_model_cidr_family),
	};
	const struct CMUnitTest other[] = {
		cmocka_unit_test(test_model_defaults),
		cmocka_unit_test(test_lockout_no_mgmt),
		cmocka_unit_test(test_lockout_ssh),
		cmocka_unit_test(test_lockout_garbage),
	};
	int failed = 0;

	find_policies_dir();
	failed += cmocka_run_group_tests_name("policy parser", parser, NULL, NULL);
	failed += run_bad_cases();
	failed += cmocka_run_group_tests_name("model", model, model_setup,
					      model_teardown);
	failed += cmocka_run_group_tests_name("defaults and lockout", other,
					      NULL, NULL);
	return failed ? 1 : 0;
}

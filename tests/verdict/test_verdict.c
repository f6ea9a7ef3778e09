// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Verdict tests: real frames through the loaded datapath with
 * BPF_PROG_TEST_RUN, xdp_ingress for ingress and tc_egress for egress.
 * Each case checks the program's return value and that exactly the
 * expected reason counter moved (by one packet and the frame's bytes),
 * and for rule decisions the rule's counter too, and whether the packet
 * counted as a denied one the host initiated (pc_host_events). Tables of {description,
 * frame, expected verdict, expected counter}, as katran's fixtures.
 *
 * Nothing is pinned: every map's pin path is cleared before load, so the
 * tests never touch (or reuse) a running agent's maps.
 *
 * Deterministic: fixed seeds. Run as root: make check-verdict
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "frames.h"
#include "portcullis.skel.h"
#include "policy.h"
#include "compile.h"
#include "apply.h"
#include "pins.h"
#include "metrics.h"
#include "stats.h"
#include "model.h"

/* Table rows name their leading fields by position and leave the
 * trailing ones (rule, audit, cont) zero, as katran's fixtures do. */
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

#define XDP_DROP_	1
#define XDP_PASS_	2
#define TC_ACT_OK_	0
#define TC_ACT_SHOT_	2

#define IN	PC_DIR_INGRESS
#define OUT	PC_DIR_EGRESS
#define NORMAL		PC_MODE_NORMAL
#define LOCKDOWN	PC_MODE_LOCKDOWN
#define QUARANTINE	PC_MODE_QUARANTINE

/* Our host's addresses. */
#define L4	"192.0.2.1"
#define L6	"2001:db8:1::1"

static int ncases, nfailed;

/* ---- environment: one loaded skeleton and its maps ---- */

struct env {
	struct portcullis_bpf *skel;
	struct pc_maps maps;
	int prog[PC_DIR_COUNT];
	struct pc_policy pol;
	bool have_pol;
};

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static __u32 addr4_max_override;
static __u32 flows_max_override;	/* both flow tables, for the flood test */

static int env_open(struct env *e)
{
	struct bpf_map *map;
	int err;

	memset(e, 0, sizeof(*e));
	e->skel = portcullis_bpf__open();
	if (!e->skel) {
		fprintf(stderr, "opening the skeleton: %s\n", strerror(errno));
		return -errno;
	}
	/* A small address trie, for the map-full test. */
	if (addr4_max_override &&
	    bpf_map__set_max_entries(e->skel->maps.pc_addr4, addr4_max_override)) {
		err = -EINVAL;
		goto fail;
	}
	/* Small flow tables, for the flood test; the peer table is looked
	 * up by name so this test builds on a datapath without it too. */
	if (flows_max_override) {
		struct bpf_map *peer =
			bpf_object__find_map_by_name(e->skel->obj, "pc_flows_peer");

		if (bpf_map__set_max_entries(e->skel->maps.pc_flows,
					     flows_max_override) ||
		    (peer && bpf_map__set_max_entries(peer, flows_max_override))) {
			err = -EINVAL;
			goto fail;
		}
	}
	/* No pinning: never reuse or leave behind an agent's maps. */
	bpf_object__for_each_map(map, e->skel->obj) {
		err = bpf_map__set_pin_path(map, NULL);
		if (err) {
			fprintf(stderr, "clearing pin path of %s: %d\n",
				bpf_map__name(map), err);
			goto fail;
		}
	}
	err = portcullis_bpf__load(e->skel);
	if (err) {
		fprintf(stderr, "loading the skeleton: %s(%d)\n",
			strerror(-err), err);
		goto fail;
	}
	pc_maps_from_skel(e->skel, &e->maps);
	e->prog[PC_DIR_INGRESS] = bpf_program__fd(e->skel->progs.xdp_ingress);
	e->prog[PC_DIR_EGRESS] = bpf_program__fd(e->skel->progs.tc_egress);
	return 0;
fail:
	portcullis_bpf__destroy(e->skel);
	e->skel = NULL;
	return err;
}

static void env_close(struct env *e)
{
	if (e->have_pol)
		pc_policy_free(&e->pol);
	portcullis_bpf__destroy(e->skel);
	memset(e, 0, sizeof(*e));
}

/* Parse, compile and apply a policy; the parsed policy is kept (oracle). */
static int env_apply(struct env *e, const char *yaml)
{
	struct pc_compiled c;
	struct pc_policy p;
	char err[512];
	__u32 gen;
	int ret;

	ret = pc_policy_load_string(yaml, strlen(yaml), "test", NULL, &p, err,
				    sizeof(err));
	if (ret) {
		fprintf(stderr, "policy: %s\n", err);
		return ret;
	}
	ret = pc_compile(&p, &c, err, sizeof(err));
	if (ret) {
		fprintf(stderr, "compile: %s\n", err);
		pc_policy_free(&p);
		return ret;
	}
	ret = pc_apply(&e->maps, &c, &gen, err, sizeof(err));
	pc_compiled_free(&c);
	if (ret) {
		fprintf(stderr, "apply: %s\n", err);
		pc_policy_free(&p);
		return ret;
	}
	if (e->have_pol)
		pc_policy_free(&e->pol);
	e->pol = p;
	e->have_pol = true;
	return 0;
}

static int env_mode(struct env *e, enum pc_mode mode)
{
	return pc_mode_write(&e->maps, mode);
}

static __u32 active_slot(struct env *e)
{
	struct pc_settings s;
	__u32 slot = 0;

	pc_active_settings(&e->maps, &slot, &s);
	return slot;
}

/* Collect, then delete: deleting while walking can skip keys. */
static void map_clear(int fd, size_t key_size)
{
	char cur[64], next[64], *keys = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			keys = realloc(keys, cap * key_size);
			if (!keys)
				return;
		}
		memcpy(keys + n++ * key_size, next, key_size);
		memcpy(cur, next, key_size);
		prev = cur;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * key_size);
	free(keys);
}

/* Forget every flow and fragment: the next packet is judged alone. */
static void env_forget(struct env *e)
{
	map_clear(e->maps.flows, sizeof(struct pc_flow_key));
	map_clear(e->maps.flows_peer, sizeof(struct pc_flow_key));
	map_clear(e->maps.frags, sizeof(struct pc_frag_key));
}

/* ---- running one frame ---- */

static const char *reason_str(int r)
{
	return pc_reason_name(r);
}

static const char *verdict_str(bool pass)
{
	return pass ? "PASS" : "DROP";
}

/* 0 with *pass set, or -1 (test_run failed, odd return value). */
static int run_frame(struct env *e, int dir, const struct frame *f, bool *pass)
{
	struct __sk_buff skb = {};
	LIBBPF_OPTS(bpf_test_run_opts, topts,
		.data_in = f->buf,
		.data_size_in = f->len,
		.repeat = 1,
	);
	int err;

	if (dir == PC_DIR_EGRESS) {
		topts.ctx_in = &skb;
		topts.ctx_size_in = sizeof(skb);
	}
	err = bpf_prog_test_run_opts(e->prog[dir], &topts);
	if (err) {
		fprintf(stderr, "test_run (%s, %u bytes): %s\n",
			dir ? "tc_egress" : "xdp_ingress", f->len,
			strerror(errno));
		return -1;
	}
	if (dir == PC_DIR_INGRESS && (topts.retval == XDP_PASS_ ||
				      topts.retval == XDP_DROP_)) {
		*pass = topts.retval == XDP_PASS_;
		return 0;
	}
	if (dir == PC_DIR_EGRESS && (topts.retval == TC_ACT_OK_ ||
				     topts.retval == TC_ACT_SHOT_)) {
		*pass = topts.retval == TC_ACT_OK_;
		return 0;
	}
	fprintf(stderr, "unexpected retval %u from %s\n", topts.retval,
		dir ? "tc_egress" : "xdp_ingress");
	return -1;
}

/* What a frame did: verdict, reasons counted, rule counted. */
struct outcome {
	bool pass;
	int reason;		/* the non-audit reason counted, or -1 */
	bool audit;		/* PASS_AUDIT counted as well */
	int nreasons;		/* reason counters that moved */
	bool bytes_ok;		/* each moved by exactly one frame */
	int rule;		/* rule counter that moved (checked one), or -1 */
	__u64 initiated;	/* PC_HE_EGRESS_DENIED's move */
};

static void reasons_read(struct env *e, int dir, struct pc_counter *out)
{
	for (int r = 0; r < PC_REASON_COUNT; r++)
		if (pc_reason_counter(&e->maps, dir, r, &out[r]))
			memset(&out[r], 0, sizeof(out[r]));
}

/* Find the rule whose counter moved, trying `hint` first. */
static int rule_moved(struct env *e, __u32 slot, const struct pc_counter *before,
		      int hint)
{
	struct pc_counter c;

	if (hint >= 0 && !pc_rule_counter(&e->maps, slot, hint, &c) &&
	    c.packets == before[hint].packets + 1)
		return hint;
	for (int i = 0; i < PC_MAX_RULES; i++)
		if (!pc_rule_counter(&e->maps, slot, i, &c) &&
		    c.packets != before[i].packets)
			return i;
	return -1;
}

static void rules_read(struct env *e, __u32 slot, struct pc_counter *out)
{
	for (int i = 0; i < PC_MAX_RULES; i++)
		if (pc_rule_counter(&e->maps, slot, i, &out[i]))
			memset(&out[i], 0, sizeof(out[i]));
}

/* Run one frame and read back what it counted; rule_hint: the rule
 * counter to look at first (-1: none expected). */
static int probe(struct env *e, int dir, const struct frame *f,
		 struct outcome *o, int rule_hint)
{
	struct pc_counter before[PC_REASON_COUNT], after[PC_REASON_COUNT];
	static struct pc_counter rules[PC_MAX_RULES];
	__u32 slot = active_slot(e);

	memset(o, 0, sizeof(*o));
	o->reason = o->rule = -1;
	o->bytes_ok = true;
	reasons_read(e, dir, before);
	rules_read(e, slot, rules);
	o->initiated = pc_percpu_u64(e->maps.host_events, PC_HE_EGRESS_DENIED);
	if (run_frame(e, dir, f, &o->pass))
		return -1;
	o->initiated = pc_percpu_u64(e->maps.host_events, PC_HE_EGRESS_DENIED) -
		       o->initiated;
	reasons_read(e, dir, after);
	for (int r = 0; r < PC_REASON_COUNT; r++) {
		__u64 dp = after[r].packets - before[r].packets;
		__u64 db = after[r].bytes - before[r].bytes;

		if (!dp && !db)
			continue;
		o->nreasons++;
		if (dp != 1 || db != f->len)
			o->bytes_ok = false;
		if (r == PC_R_PASS_AUDIT)
			o->audit = true;
		else if (o->reason < 0)
			o->reason = r;
	}
	if (o->audit && o->reason < 0)
		o->reason = PC_R_PASS_AUDIT;
	o->rule = rule_moved(e, slot, rules, rule_hint);
	return 0;
}

/* ---- table cases ---- */

/* Rule numbers in tables are stored +1 so that 0 means "no rule". */
#define R(n)	((n) + 1)

struct vcase {
	const char *desc;
	enum pc_mode mode;
	int dir;
	struct pkt pkt;
	int reason;		/* enum pc_reason expected */
	int rule;		/* R(n): rule n decided (and is counted) */
	bool audit;		/* reason counted, then passed: PASS_AUDIT */
	bool cont;		/* keep flows and fragments of the case before */
	bool initiated;		/* counted as denied egress the host initiated */
};

static void fail(const char *table, const char *desc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fail(const char *table, const char *desc, const char *fmt, ...)
{
	va_list ap;

	nfailed++;
	printf("FAIL [%s] %s: ", table, desc);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

static void outcome_str(const struct outcome *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s rule %d (%d reason counters moved%s)",
		 verdict_str(o->pass), o->reason >= 0 ? reason_str(o->reason) : "-",
		 o->audit ? "+pass_audit" : "", o->rule, o->nreasons,
		 o->bytes_ok ? "" : ", wrong packet/byte delta");
}

/* Check an outcome against an expectation; true if it matched. */
static bool expect(const char *table, const char *desc, const struct frame *f,
		   const struct outcome *o, int reason, int rule, bool audit)
{
	bool pass = audit || !PC_REASON_IS_DROP(reason);
	char got[160];
	bool ok;

	ncases++;
	/* No rule expected: no rule counter may move, but a later fragment
	 * may count the rule its first fragment was passed by. */
	ok = o->pass == pass && o->reason == reason && o->audit == audit &&
	     o->nreasons == 1 + audit && o->bytes_ok &&
	     (rule < 0 || o->rule == rule) &&
	     (rule >= 0 || o->rule < 0 || reason == PC_R_PASS_FRAG);
	if (ok) {
		if (getenv("VERDICT_VERBOSE")) {
			outcome_str(o, got, sizeof(got));
			printf("ok   [%s] %s: %s\n", table, desc, got);
		}
		return true;
	}
	outcome_str(o, got, sizeof(got));
	fail(table, desc, "expected %s %s%s rule %d, got %s",
	     verdict_str(pass), reason_str(reason), audit ? "+pass_audit" : "",
	     rule, got);
	if (getenv("VERDICT_HEX"))
		frame_hex(stdout, f);
	return false;
}

static void run_case(struct env *e, const char *table, const struct vcase *c)
{
	struct outcome o;
	struct frame f;

	if (!c->cont)
		env_forget(e);
	if (build_frame(&f, &c->pkt)) {
		ncases++;
		fail(table, c->desc, "cannot build the frame");
		return;
	}
	env_mode(e, c->mode);
	if (probe(e, c->dir, &f, &o, c->rule - 1)) {
		ncases++;
		fail(table, c->desc, "test_run failed");
		return;
	}
	if (expect(table, c->desc, &f, &o, c->reason, c->rule - 1, c->audit) &&
	    o.initiated != c->initiated)
		fail(table, c->desc, "egress_denied signal moved by %llu, expected %d",
		     (unsigned long long)o.initiated, c->initiated);
}

static void run_table(struct env *e, const char *table,
		      const struct vcase *cases, size_t n)
{
	for (size_t i = 0; i < n; i++)
		run_case(e, table, &cases[i]);
	env_mode(e, NORMAL);
}

#define RUN_TABLE(e, t)	run_table(e, #t, t, sizeof(t) / sizeof(t[0]))

/* ---- frame shorthands ---- */

#define TCP(s, d, sp, dp)	.src = s, .dst = d, .proto = IPP_TCP, .sport = sp, .dport = dp
#define UDP(s, d, sp, dp)	.src = s, .dst = d, .proto = IPP_UDP, .sport = sp, .dport = dp
/* Ingress: remote -> us, to our port; egress: us -> remote port. */
#define TCP_IN(rem, port)	TCP(rem, L4, 40000, port)
#define TCP_OUT(rem, port)	TCP(L4, rem, 40000, port)
#define UDP_IN(rem, port)	UDP(rem, L4, 40000, port)
#define UDP_OUT(rem, port)	UDP(L4, rem, 40000, port)
#define TCP6_IN(rem, port)	TCP(rem, L6, 40000, port)
#define TCP6_OUT(rem, port)	TCP(L6, rem, 40000, port)
#define UDP6_IN(rem, port)	UDP(rem, L6, 40000, port)
#define UDP6_OUT(rem, port)	UDP(L6, rem, 40000, port)
#define PING(s, d, id)		.src = s, .dst = d, .proto = IPP_ICMP, .icmp_type = 8, .echo_id = id
#define PONG(s, d, id)		.src = s, .dst = d, .proto = IPP_ICMP, .icmp_type = 0, .echo_id = id
#define PING6(s, d, id)		.src = s, .dst = d, .proto = IPP_ICMPV6, .icmp_type = 128, .echo_id = id
#define PONG6(s, d, id)		.src = s, .dst = d, .proto = IPP_ICMPV6, .icmp_type = 129, .echo_id = id

/* ---- the main policy ---- */

static const char main_policy[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"		/* 0 */
	"  - {cidr: \"2001:db8:2::10/128\", proto: tcp, ports: 22}\n"	/* 1 */
	"rules:\n"
	"  - {name: ssh-admins, action: allow, direction: ingress, cidr: [198.51.100.0/24, \"2001:db8:100::/48\"], proto: tcp, ports: 22, modes: [normal, lockdown]}\n"	/* 2 */
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80-443}\n"	/* 3 */
	"  - {name: blocklist, action: deny, direction: both, cidr: [203.0.113.0/24, \"2001:db8:bad::/48\"]}\n"	/* 4 */
	"  - {name: dns-out, action: allow, direction: egress, cidr: [9.9.9.9/32, \"2620:fe::fe/128\"], proto: udp, ports: 53, modes: [normal, lockdown]}\n"	/* 5 */
	"  - {name: no-smtp-out, action: deny, direction: egress, proto: tcp, ports: 25}\n"	/* 6 */
	"  - {name: web-tls, action: allow, direction: ingress, proto: tcp, ports: 443}\n"	/* 7 */
	"  - {name: no-web-66, action: deny, direction: ingress, cidr: 198.51.100.66/32, proto: tcp, ports: 80-81}\n"	/* 8 */
	"  - {name: trusted-net, action: allow, direction: ingress, cidr: [10.1.0.0/16, \"fd00:1::/32\"]}\n"	/* 9 */
	"  - {name: lock-udp, action: allow, direction: ingress, proto: udp, ports: 5000, modes: [lockdown]}\n"	/* 10 */
	"  - {name: lock-ping, action: allow, direction: ingress, cidr: 192.0.2.10/32, proto: icmp, modes: [lockdown]}\n"	/* 11 */
	"  - {name: ping6-admins, action: allow, direction: ingress, cidr: \"2001:db8:100::/48\", proto: icmpv6}\n"	/* 12 */
	"  - {name: lock-deny, action: deny, direction: ingress, cidr: 10.1.99.0/24, modes: [lockdown]}\n"	/* 13 */
	"  - {name: udp-list, action: allow, direction: ingress, proto: udp, ports: [1000, 2000-2001, 65535]}\n"	/* 14 */
	"  - {name: no-ssh-docnet, action: deny, direction: ingress, cidr: 192.0.2.0/24, proto: tcp, ports: 22}\n"	/* 15 */
	"  - {name: lock-out-web, action: allow, direction: egress, cidr: \"2001:db8:ffff::/48\", proto: tcp, ports: 443, modes: [lockdown]}\n"	/* 16 */
	"  - {name: narrow-in-wide, action: allow, direction: ingress, cidr: 10.2.3.0/24, proto: tcp, ports: 8080}\n"	/* 17 */
	"  - {name: wide-deny, action: deny, direction: ingress, cidr: 10.2.0.0/16, proto: tcp, ports: 8000-8100}\n"	/* 18 */
	"  - {name: blocklist-half, action: deny, direction: both, cidr: 203.0.113.0/25}\n";	/* 19 */

static const struct vcase rules_v4[] = {
	/* management: every mode, both directions, beats deny */
	{ "mgmt ssh in, normal", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "mgmt ssh in, lockdown", LOCKDOWN, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "mgmt ssh in, quarantine", QUARANTINE, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "mgmt ssh out, quarantine", QUARANTINE, OUT, { TCP_OUT("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "mgmt host other port, normal", NORMAL, IN, { TCP_IN("192.0.2.10", 23) }, PC_R_DROP_DEFAULT },
	{ "mgmt host other port, quarantine", QUARANTINE, IN, { TCP_IN("192.0.2.10", 23) }, PC_R_DROP_QUARANTINE },
	{ "mgmt host udp 22", NORMAL, IN, { UDP_IN("192.0.2.10", 22) }, PC_R_DROP_DEFAULT },
	{ "docnet neighbour ssh: deny (mgmt is /32)", NORMAL, IN, { TCP_IN("192.0.2.11", 22) }, PC_R_DROP_DENY, R(15) },
	/* allow rule with CIDR and modes [normal, lockdown] */
	{ "admin ssh, normal", NORMAL, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_PASS_RULE, R(2) },
	{ "admin ssh, lockdown", LOCKDOWN, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_PASS_RULE, R(2) },
	{ "admin ssh, quarantine", QUARANTINE, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_DROP_QUARANTINE },
	{ "admin net first addr", NORMAL, IN, { TCP_IN("198.51.100.0", 22) }, PC_R_PASS_RULE, R(2) },
	{ "admin net last addr", NORMAL, IN, { TCP_IN("198.51.100.255", 22) }, PC_R_PASS_RULE, R(2) },
	{ "just below admin net", NORMAL, IN, { TCP_IN("198.51.99.255", 22) }, PC_R_DROP_DEFAULT },
	{ "just above admin net", NORMAL, IN, { TCP_IN("198.51.101.0", 22) }, PC_R_DROP_DEFAULT },
	{ "admin ssh egress: rule is ingress only", NORMAL, OUT, { TCP_OUT("198.51.100.7", 22) }, PC_R_PASS_DEFAULT },
	{ "admin ssh egress, lockdown", LOCKDOWN, OUT, { TCP_OUT("198.51.100.7", 22) }, PC_R_DROP_LOCKDOWN },
	/* port range edges of web (80-443, normal only) */
	{ "web port 79", NORMAL, IN, { TCP_IN("100.64.0.1", 79) }, PC_R_DROP_DEFAULT },
	{ "web port 80", NORMAL, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_PASS_RULE, R(3) },
	{ "web port 81", NORMAL, IN, { TCP_IN("100.64.0.1", 81) }, PC_R_PASS_RULE, R(3) },
	{ "web port 255", NORMAL, IN, { TCP_IN("100.64.0.1", 255) }, PC_R_PASS_RULE, R(3) },
	{ "web port 256", NORMAL, IN, { TCP_IN("100.64.0.1", 256) }, PC_R_PASS_RULE, R(3) },
	{ "web port 443: lowest index wins over web-tls", NORMAL, IN, { TCP_IN("100.64.0.1", 443) }, PC_R_PASS_RULE, R(3) },
	{ "web port 444", NORMAL, IN, { TCP_IN("100.64.0.1", 444) }, PC_R_DROP_DEFAULT },
	{ "web port 80 udp", NORMAL, IN, { UDP_IN("100.64.0.1", 80) }, PC_R_DROP_DEFAULT },
	{ "web port 80, lockdown", LOCKDOWN, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_DROP_LOCKDOWN },
	{ "web port 80, quarantine", QUARANTINE, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_DROP_QUARANTINE },
	{ "web port 80 egress (rule is ingress)", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80) }, PC_R_PASS_DEFAULT },
	/* deny beats allow, whatever the index */
	{ "deny host port 80 beats web", NORMAL, IN, { TCP_IN("198.51.100.66", 80) }, PC_R_DROP_DENY, R(8) },
	{ "deny host port 81 beats web", NORMAL, IN, { TCP_IN("198.51.100.66", 81) }, PC_R_DROP_DENY, R(8) },
	{ "deny host port 82: web", NORMAL, IN, { TCP_IN("198.51.100.66", 82) }, PC_R_PASS_RULE, R(3) },
	{ "deny host port 22: admins", NORMAL, IN, { TCP_IN("198.51.100.66", 22) }, PC_R_PASS_RULE, R(2) },
	{ "neighbour of deny host port 80", NORMAL, IN, { TCP_IN("198.51.100.67", 80) }, PC_R_PASS_RULE, R(3) },
	/* blocklist: both directions, every mode, any proto */
	{ "blocklist in tcp 80 (lowest deny of 4, 19)", NORMAL, IN, { TCP_IN("203.0.113.5", 80) }, PC_R_DROP_DENY, R(4) },
	{ "DF set, web", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .dont_frag = true }, PC_R_PASS_RULE, R(3) },
	{ "DF set, default", NORMAL, IN, { TCP_IN("100.64.0.1", 8080), .dont_frag = true }, PC_R_DROP_DEFAULT },
	{ "blocklist in udp", NORMAL, IN, { UDP_IN("203.0.113.255", 1000) }, PC_R_DROP_DENY, R(4) },
	{ "blocklist in ping", NORMAL, IN, { PING("203.0.113.5", L4, 9) }, PC_R_DROP_DENY, R(4) },
	{ "blocklist in gre", NORMAL, IN, { .src = "203.0.113.5", .dst = L4, .proto = IPP_GRE }, PC_R_DROP_DENY, R(4) },
	{ "blocklist out", NORMAL, OUT, { TCP_OUT("203.0.113.5", 443) }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "blocklist out, lockdown", LOCKDOWN, OUT, { TCP_OUT("203.0.113.5", 443) }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "blocklist out, quarantine", QUARANTINE, OUT, { UDP_OUT("203.0.113.5", 53) }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "blocklist source only counts on ingress", NORMAL, OUT, { TCP("203.0.113.5", "100.64.0.1", 1, 80) }, PC_R_PASS_DEFAULT },
	{ "below blocklist", NORMAL, OUT, { TCP_OUT("203.0.112.255", 443) }, PC_R_PASS_DEFAULT },
	/* egress rules */
	{ "dns out, normal", NORMAL, OUT, { UDP_OUT("9.9.9.9", 53) }, PC_R_PASS_RULE, R(5) },
	{ "dns out, lockdown", LOCKDOWN, OUT, { UDP_OUT("9.9.9.9", 53) }, PC_R_PASS_RULE, R(5) },
	{ "dns out, quarantine: management only", QUARANTINE, OUT, { UDP_OUT("9.9.9.9", 53) }, PC_R_DROP_QUARANTINE },
	{ "dns out other server, lockdown", LOCKDOWN, OUT, { UDP_OUT("9.9.9.10", 53) }, PC_R_DROP_LOCKDOWN },
	{ "dns out tcp, quarantine", QUARANTINE, OUT, { TCP_OUT("9.9.9.9", 53) }, PC_R_DROP_QUARANTINE },
	{ "dns in (rule is egress)", NORMAL, IN, { UDP_IN("9.9.9.9", 53) }, PC_R_DROP_DEFAULT },
	{ "smtp out denied", NORMAL, OUT, { TCP_OUT("100.64.0.1", 25) }, PC_R_DROP_DENY, R(6), .initiated = true },
	{ "smtp out denied, quarantine", QUARANTINE, OUT, { TCP_OUT("100.64.0.1", 25) }, PC_R_DROP_DENY, R(6), .initiated = true },
	{ "port 26 out", NORMAL, OUT, { TCP_OUT("100.64.0.1", 26) }, PC_R_PASS_DEFAULT },
	{ "smtp in (deny is egress)", NORMAL, IN, { TCP_IN("10.1.0.1", 25) }, PC_R_PASS_RULE, R(9) },
	/* defaults per mode and direction */
	{ "default in, normal", NORMAL, IN, { TCP_IN("100.64.0.1", 8443) }, PC_R_DROP_DEFAULT },
	{ "default out, normal", NORMAL, OUT, { TCP_OUT("100.64.0.1", 8443) }, PC_R_PASS_DEFAULT },
	{ "default in, lockdown", LOCKDOWN, IN, { TCP_IN("100.64.0.1", 8443) }, PC_R_DROP_LOCKDOWN },
	{ "default out, lockdown", LOCKDOWN, OUT, { TCP_OUT("100.64.0.1", 8443) }, PC_R_DROP_LOCKDOWN },
	{ "default in, quarantine", QUARANTINE, IN, { TCP_IN("100.64.0.1", 8443) }, PC_R_DROP_QUARANTINE },
	{ "default out, quarantine", QUARANTINE, OUT, { TCP_OUT("100.64.0.1", 8443) }, PC_R_DROP_QUARANTINE },
	{ "unknown mode 7 acts as quarantine", 7, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_DROP_QUARANTINE },
	{ "unknown mode 7: mgmt still passes", 7, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	/* modes filtering */
	{ "lockdown-only udp, normal", NORMAL, IN, { UDP_IN("100.64.0.1", 5000) }, PC_R_DROP_DEFAULT },
	{ "lockdown-only udp, lockdown", LOCKDOWN, IN, { UDP_IN("100.64.0.1", 5000) }, PC_R_PASS_RULE, R(10) },
	{ "lockdown-only udp, quarantine", QUARANTINE, IN, { UDP_IN("100.64.0.1", 5000) }, PC_R_DROP_QUARANTINE },
	{ "lockdown-only ping, lockdown", LOCKDOWN, IN, { PING("192.0.2.10", L4, 1) }, PC_R_PASS_RULE, R(11) },
	{ "lockdown-only ping, quarantine", QUARANTINE, IN, { PING("192.0.2.10", L4, 1) }, PC_R_DROP_QUARANTINE },
	{ "lockdown-only ping, normal", NORMAL, IN, { PING("192.0.2.10", L4, 1) }, PC_R_DROP_DEFAULT },
	{ "trusted net, normal", NORMAL, IN, { TCP_IN("10.1.99.5", 9999) }, PC_R_PASS_RULE, R(9) },
	{ "lockdown deny, normal: trusted", NORMAL, IN, { UDP_IN("10.1.99.5", 9999) }, PC_R_PASS_RULE, R(9) },
	{ "lockdown deny, lockdown", LOCKDOWN, IN, { UDP_IN("10.1.99.5", 9999) }, PC_R_DROP_DENY, R(13) },
	{ "trusted net, lockdown: allow is normal only", LOCKDOWN, IN, { UDP_IN("10.1.98.5", 9999) }, PC_R_DROP_LOCKDOWN },
	{ "trusted net ping", NORMAL, IN, { PING("10.1.255.255", L4, 3) }, PC_R_PASS_RULE, R(9) },
	{ "trusted net gre", NORMAL, IN, { .src = "10.1.2.3", .dst = L4, .proto = IPP_GRE }, PC_R_PASS_RULE, R(9) },
	/* port lists */
	{ "udp list 999", NORMAL, IN, { UDP_IN("100.64.0.1", 999) }, PC_R_DROP_DEFAULT },
	{ "udp list 1000", NORMAL, IN, { UDP_IN("100.64.0.1", 1000) }, PC_R_PASS_RULE, R(14) },
	{ "udp list 1001", NORMAL, IN, { UDP_IN("100.64.0.1", 1001) }, PC_R_DROP_DEFAULT },
	{ "udp list 1999", NORMAL, IN, { UDP_IN("100.64.0.1", 1999) }, PC_R_DROP_DEFAULT },
	{ "udp list 2000", NORMAL, IN, { UDP_IN("100.64.0.1", 2000) }, PC_R_PASS_RULE, R(14) },
	{ "udp list 2001", NORMAL, IN, { UDP_IN("100.64.0.1", 2001) }, PC_R_PASS_RULE, R(14) },
	{ "udp list 2002", NORMAL, IN, { UDP_IN("100.64.0.1", 2002) }, PC_R_DROP_DEFAULT },
	{ "udp list 65534", NORMAL, IN, { UDP_IN("100.64.0.1", 65534) }, PC_R_DROP_DEFAULT },
	{ "udp list 65535", NORMAL, IN, { UDP_IN("100.64.0.1", 65535) }, PC_R_PASS_RULE, R(14) },
	{ "udp list port 1000 as tcp", NORMAL, IN, { TCP_IN("100.64.0.1", 1000) }, PC_R_DROP_DEFAULT },
	/* nested CIDRs: narrow allow inside a wide deny */
	{ "narrow allow inside wide deny: deny wins", NORMAL, IN, { TCP_IN("10.2.3.4", 8080) }, PC_R_DROP_DENY, R(18) },
	{ "wide deny, outside narrow", NORMAL, IN, { TCP_IN("10.2.4.4", 8080) }, PC_R_DROP_DENY, R(18) },
	{ "wide deny port edge 8101", NORMAL, IN, { TCP_IN("10.2.3.4", 8101) }, PC_R_DROP_DEFAULT },
	{ "wide deny port edge 7999", NORMAL, IN, { TCP_IN("10.2.3.4", 7999) }, PC_R_DROP_DEFAULT },
	{ "outside wide deny", NORMAL, IN, { TCP_IN("10.3.3.4", 8080) }, PC_R_DROP_DEFAULT },
	/* source and destination ports: only the destination matters */
	{ "web source port 80 to a closed port", NORMAL, IN, { TCP("100.64.0.1", L4, 80, 9999) }, PC_R_DROP_DEFAULT },
};

static const struct vcase rules_v6[] = {
	{ "mgmt6 ssh in, normal", NORMAL, IN, { TCP6_IN("2001:db8:2::10", 22) }, PC_R_PASS_MGMT, R(1) },
	{ "mgmt6 ssh in, quarantine", QUARANTINE, IN, { TCP6_IN("2001:db8:2::10", 22) }, PC_R_PASS_MGMT, R(1) },
	{ "mgmt6 ssh out, lockdown", LOCKDOWN, OUT, { TCP6_OUT("2001:db8:2::10", 22) }, PC_R_PASS_MGMT, R(1) },
	{ "mgmt6 neighbour", NORMAL, IN, { TCP6_IN("2001:db8:2::11", 22) }, PC_R_DROP_DEFAULT },
	{ "admin6 ssh, normal", NORMAL, IN, { TCP6_IN("2001:db8:100:ffff::1", 22) }, PC_R_PASS_RULE, R(2) },
	{ "admin6 ssh, lockdown", LOCKDOWN, IN, { TCP6_IN("2001:db8:100::1", 22) }, PC_R_PASS_RULE, R(2) },
	{ "admin6 ssh, quarantine", QUARANTINE, IN, { TCP6_IN("2001:db8:100::1", 22) }, PC_R_DROP_QUARANTINE },
	{ "admin6 net, just outside", NORMAL, IN, { TCP6_IN("2001:db8:101::1", 22) }, PC_R_DROP_DEFAULT },
	{ "web6 port 79", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 79) }, PC_R_DROP_DEFAULT },
	{ "web6 port 80", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80) }, PC_R_PASS_RULE, R(3) },
	{ "web6 port 443", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 443) }, PC_R_PASS_RULE, R(3) },
	{ "web6 port 444", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 444) }, PC_R_DROP_DEFAULT },
	{ "web6, lockdown", LOCKDOWN, IN, { TCP6_IN("2001:db8:ffff::1", 80) }, PC_R_DROP_LOCKDOWN },
	{ "blocklist6 in", NORMAL, IN, { TCP6_IN("2001:db8:bad:1::1", 80) }, PC_R_DROP_DENY, R(4) },
	{ "blocklist6 out, quarantine", QUARANTINE, OUT, { UDP6_OUT("2001:db8:bad:ffff::ffff", 53) }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "blocklist6 neighbour", NORMAL, OUT, { TCP6_OUT("2001:db8:bae::1", 443) }, PC_R_PASS_DEFAULT },
	{ "dns6 out, quarantine: management only", QUARANTINE, OUT, { UDP6_OUT("2620:fe::fe", 53) }, PC_R_DROP_QUARANTINE },
	{ "dns6 out other, quarantine", QUARANTINE, OUT, { UDP6_OUT("2620:fe::9", 53) }, PC_R_DROP_QUARANTINE },
	{ "smtp6 out", NORMAL, OUT, { TCP6_OUT("2001:db8:ffff::1", 25) }, PC_R_DROP_DENY, R(6), .initiated = true },
	{ "trusted6 net", NORMAL, IN, { UDP6_IN("fd00:1:ffff::1", 7) }, PC_R_PASS_RULE, R(9) },
	{ "trusted6 net, lockdown", LOCKDOWN, IN, { UDP6_IN("fd00:1::1", 7) }, PC_R_DROP_LOCKDOWN },
	{ "ping6 from admins", NORMAL, IN, { PING6("2001:db8:100::1", L6, 5) }, PC_R_PASS_RULE, R(12) },
	{ "ping6 from elsewhere", NORMAL, IN, { PING6("2001:db8:ffff::1", L6, 5) }, PC_R_DROP_DEFAULT },
	{ "lockdown-only egress 443", LOCKDOWN, OUT, { TCP6_OUT("2001:db8:ffff::1", 443) }, PC_R_PASS_RULE, R(16) },
	{ "lockdown-only egress 443, quarantine", QUARANTINE, OUT, { TCP6_OUT("2001:db8:ffff::1", 443) }, PC_R_DROP_QUARANTINE },
	{ "default6 out, normal", NORMAL, OUT, { TCP6_OUT("2001:db8:ffff::1", 8443) }, PC_R_PASS_DEFAULT },
	{ "default6 out, lockdown", LOCKDOWN, OUT, { TCP6_OUT("2001:db8:ffff::1", 8443) }, PC_R_DROP_LOCKDOWN },
	{ "default6 in, quarantine", QUARANTINE, IN, { TCP6_IN("2001:db8:ffff::1", 8443) }, PC_R_DROP_QUARANTINE },
	{ "v4 mgmt address mapped in v6 is not mgmt", NORMAL, IN, { TCP6_IN("::ffff:192.0.2.10", 22) }, PC_R_DROP_DEFAULT },
	{ "icmp (v4) proto over IPv6 is not icmpv6", NORMAL, IN, { .src = "2001:db8:100::1", .dst = L6, .proto = IPP_ICMP, .icmp_type = 8 }, PC_R_DROP_DEFAULT },
};

/* L2, VLAN, IPv4 options, IPv6 extension headers, malformed frames. */
static const struct vcase parsing[] = {
	{ "arp in", NORMAL, IN, { .eth_proto = ETH_P_ARP_ }, PC_R_PASS_ARP },
	{ "arp out", NORMAL, OUT, { .eth_proto = ETH_P_ARP_ }, PC_R_PASS_ARP },
	{ "arp in, quarantine", QUARANTINE, IN, { .eth_proto = ETH_P_ARP_ }, PC_R_PASS_ARP },
	{ "arp in vlan", NORMAL, IN, { .eth_proto = ETH_P_ARP_, .vlan = { ETH_P_8021Q_ } }, PC_R_PASS_ARP },
	{ "lldp in", NORMAL, IN, { .eth_proto = 0x88cc }, PC_R_DROP_L2 },
	{ "ipx out", NORMAL, OUT, { .eth_proto = 0x8137 }, PC_R_DROP_L2 },
	{ "short arp still arp", NORMAL, IN, { .eth_proto = ETH_P_ARP_, .cut = 14 }, PC_R_PASS_ARP },
	/* VLAN */
	{ "802.1Q web", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .vlan = { ETH_P_8021Q_ } }, PC_R_PASS_RULE, R(3) },
	{ "802.1Q default", NORMAL, IN, { TCP_IN("100.64.0.1", 8080), .vlan = { ETH_P_8021Q_ } }, PC_R_DROP_DEFAULT },
	{ "802.1Q blocklist out", NORMAL, OUT, { TCP_OUT("203.0.113.1", 80), .vlan = { ETH_P_8021Q_ } }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "802.1ad+802.1Q web", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .vlan = { ETH_P_8021AD_, ETH_P_8021Q_ } }, PC_R_PASS_RULE, R(3) },
	{ "802.1Q+802.1Q mgmt6 out", NORMAL, OUT, { TCP6_OUT("2001:db8:2::10", 22), .vlan = { ETH_P_8021Q_, ETH_P_8021Q_ } }, PC_R_PASS_MGMT, R(1) },
	{ "802.1ad+802.1Q egress blocklist", QUARANTINE, OUT, { UDP_OUT("203.0.113.1", 53), .vlan = { ETH_P_8021AD_, ETH_P_8021Q_ } }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "three tags: malformed", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .vlan = { ETH_P_8021AD_, ETH_P_8021Q_, ETH_P_8021Q_ } }, PC_R_DROP_MALFORMED },
	{ "three tags out: malformed", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80), .vlan = { ETH_P_8021Q_, ETH_P_8021Q_, ETH_P_8021Q_ } }, PC_R_DROP_MALFORMED },
	{ "tag cut short", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .vlan = { ETH_P_8021Q_ }, .cut = 16 }, PC_R_DROP_MALFORMED },
	{ "second tag cut short", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80), .vlan = { ETH_P_8021AD_, ETH_P_8021Q_ }, .cut = 20 }, PC_R_DROP_MALFORMED },
	{ "vlan, ip cut short", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .vlan = { ETH_P_8021Q_ }, .cut = 18 + 19 }, PC_R_DROP_MALFORMED },
	/* IPv4 options */
	{ "ipv4 options 4 bytes, web", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .ip_opt_len = 4 }, PC_R_PASS_RULE, R(3) },
	{ "ipv4 options 40 bytes, mgmt", QUARANTINE, IN, { TCP_IN("192.0.2.10", 22), .ip_opt_len = 40 }, PC_R_PASS_MGMT, R(0) },
	{ "ipv4 options 40 bytes, default", NORMAL, IN, { TCP_IN("100.64.0.1", 444), .ip_opt_len = 40 }, PC_R_DROP_DEFAULT },
	{ "ipv4 options, blocklist out", NORMAL, OUT, { TCP_OUT("203.0.113.1", 80), .ip_opt_len = 12 }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "ipv4 options cut in options", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .ip_opt_len = 12, .cut = 14 + 28 }, PC_R_DROP_MALFORMED },
	{ "ipv4 options, tcp cut", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .ip_opt_len = 12, .cut = 14 + 32 + 19 }, PC_R_DROP_MALFORMED },
	/* IPv6 extension headers */
	{ "v6 hop-by-hop, web", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 1, .ext = { IPP_HOP } }, PC_R_PASS_RULE, R(3) },
	{ "v6 hbh+rt+dst, 444", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 444), .next = 3, .ext = { IPP_HOP, IPP_ROUTING, IPP_DSTOPTS } }, PC_R_DROP_DEFAULT },
	{ "v6 dst opts, blocklist out", NORMAL, OUT, { TCP6_OUT("2001:db8:bad::1", 80), .next = 1, .ext = { IPP_DSTOPTS } }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "v6 AH, web", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 443), .next = 1, .ext = { 51 } }, PC_R_PASS_RULE, R(3) },
	{ "v6 hbh 24 bytes + AH 16 bytes, mgmt", LOCKDOWN, IN, { TCP6_IN("2001:db8:2::10", 22), .next = 2, .ext = { IPP_HOP, 51 }, .ext_hdrlen = 2 }, PC_R_PASS_MGMT, R(1) },
	{ "v6 AH 16 bytes + dstopts 24, web 444", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 444), .next = 2, .ext = { 51, IPP_DSTOPTS }, .ext_hdrlen = 2 }, PC_R_DROP_DEFAULT },
	{ "v6 routing 24 bytes cut in it", NORMAL, IN, { TCP6_IN("2001:db8:2::10", 22), .next = 1, .ext = { IPP_ROUTING }, .ext_hdrlen = 2, .cut = 14 + 40 + 20 }, PC_R_DROP_MALFORMED },
	{ "v6 chain of 6, web", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 6, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, 51, IPP_DSTOPTS, IPP_DSTOPTS } }, PC_R_PASS_RULE, R(3) },
	{ "v6 chain of 6, mgmt out", NORMAL, OUT, { TCP6_OUT("2001:db8:2::10", 22), .next = 6, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, IPP_DSTOPTS, IPP_DSTOPTS, IPP_DSTOPTS } }, PC_R_PASS_MGMT, R(1) },
	{ "v6 chain of 7: malformed", NORMAL, IN, { TCP6_IN("2001:db8:2::10", 22), .next = 7, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, IPP_DSTOPTS, IPP_DSTOPTS, IPP_DSTOPTS, IPP_DSTOPTS } }, PC_R_DROP_MALFORMED },
	{ "v6 chain of 7 out: malformed", NORMAL, OUT, { TCP6_OUT("2001:db8:ffff::1", 80), .next = 7, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, IPP_DSTOPTS, IPP_DSTOPTS, IPP_DSTOPTS, IPP_DSTOPTS } }, PC_R_DROP_MALFORMED },
	{ "v6 ext header cut (2 bytes missing)", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 1, .ext = { IPP_HOP }, .cut = 14 + 40 + 1 }, PC_R_DROP_MALFORMED },
	{ "v6 ext header cut (body missing)", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 1, .ext = { IPP_HOP }, .cut = 14 + 40 + 5 }, PC_R_DROP_MALFORMED },
	{ "v6 ext header whole, no tcp", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 1, .ext = { IPP_HOP }, .cut = 14 + 48 }, PC_R_DROP_MALFORMED },
	{ "v6 second ext header cut", NORMAL, OUT, { TCP6_OUT("2001:db8:ffff::1", 80), .next = 2, .ext = { IPP_HOP, IPP_ROUTING }, .cut = 14 + 48 + 4 }, PC_R_DROP_MALFORMED },
	{ "v6 no next header (59)", NORMAL, IN, { .src = "fd00:1::1", .dst = L6, .proto = 59 }, PC_R_PASS_RULE, R(9) },
	/* IP header sanity */
	{ "ipv4 version 5", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .ip_version = 5 }, PC_R_DROP_MALFORMED },
	{ "ipv4 ethertype, v6 header", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .ip_version = 6 }, PC_R_DROP_MALFORMED },
	{ "ipv6 ethertype, version 4", NORMAL, IN, { TCP6_IN("2001:db8:2::10", 22), .ip_version = 4 }, PC_R_DROP_MALFORMED },
	{ "ipv4 ihl 4", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .ihl = 4 }, PC_R_DROP_MALFORMED },
	{ "ipv4 ihl 15 past the end", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .ihl = 15, .cut = 14 + 40 + 5 }, PC_R_DROP_MALFORMED },
	{ "ipv4 tot_len < ihl*4", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .tot_len = 16 }, PC_R_DROP_MALFORMED },
	{ "ipv4 tot_len 19 with options", NORMAL, IN, { TCP_IN("192.0.2.10", 22), .ip_opt_len = 4, .tot_len = 23 }, PC_R_DROP_MALFORMED },
};

/* Every cut of a frame the policy would pass is dropped as malformed. */
static const struct {
	const char *desc;
	int dir;
	struct pkt pkt;
	int full;	/* length of the complete frame (no padding) */
	int cuts[8];
} truncations[] = {
	{ "mgmt tcp4", IN, { TCP_IN("192.0.2.10", 22) }, 54, { 14, 15, 20, 33, 34, 35, 44, 53 } },
	/* test_run refuses an skb whose IPv4/IPv6 header is cut short
	 * (EINVAL): egress cuts start past it; XDP covers the shorter ones. */
	{ "mgmt tcp4 out", OUT, { TCP_OUT("192.0.2.10", 22) }, 54, { 34, 35, 47, 53 } },
	{ "dns udp4 out", OUT, { UDP_OUT("9.9.9.9", 53) }, 42, { 34, 36, 41 } },
	{ "dns udp6 out", OUT, { UDP6_OUT("2620:fe::fe", 53) }, 62, { 54, 57, 61 } },
	{ "mgmt tcp4 ihl 6 out", OUT, { TCP_OUT("192.0.2.10", 22), .ip_opt_len = 4 }, 58, { 34, 37, 38, 57 } },
	{ "trusted icmp4", IN, { PING("10.1.0.1", L4, 1) }, 42, { 14, 33, 34, 38, 41 } },
	{ "mgmt tcp6", IN, { TCP6_IN("2001:db8:2::10", 22) }, 74, { 14, 15, 53, 54, 55, 60, 73 } },
	{ "trusted udp6", IN, { UDP6_IN("fd00:1::1", 53) }, 62, { 14, 53, 54, 61 } },
	{ "ping6 admins", IN, { PING6("2001:db8:100::1", L6, 1) }, 62, { 14, 54, 58, 61 } },
	{ "web tcp6 frag hdr", IN, { TCP6_IN("2001:db8:ffff::1", 80), .next = 1, .ext = { IPP_FRAG }, .more_frags = true }, 82, { 54, 55, 61, 62, 63, 81 } },
	{ "web tcp4 first fragment", IN, { TCP_IN("100.64.0.1", 80), .more_frags = true }, 54, { 34, 40, 53 } },
	{ "mgmt tcp4 vlan", IN, { TCP_IN("192.0.2.10", 22), .vlan = { ETH_P_8021Q_ } }, 58, { 14, 17, 18, 37, 38, 57 } },
	{ "mgmt tcp6 qinq out", OUT, { TCP6_OUT("2001:db8:2::10", 22), .vlan = { ETH_P_8021AD_, ETH_P_8021Q_ } }, 82, { 14, 18, 22, 61, 62, 81 } },
};

static void run_truncations(struct env *e)
{
	for (size_t i = 0; i < sizeof(truncations) / sizeof(truncations[0]); i++) {
		struct pkt p = truncations[i].pkt;
		char desc[128];
		struct outcome o;
		struct frame f;

		/* The whole frame passes... */
		env_forget(e);
		if (build_frame(&f, &p) || probe(e, truncations[i].dir, &f, &o, -1)) {
			ncases++;
			fail("truncations", truncations[i].desc, "cannot run");
			continue;
		}
		snprintf(desc, sizeof(desc), "%s whole", truncations[i].desc);
		ncases++;
		if (!o.pass)
			fail("truncations", desc, "expected PASS, got DROP %s",
			     reason_str(o.reason));
		/* ... every cut of it is malformed. */
		for (int k = 0; k < 8 && truncations[i].cuts[k]; k++) {
			p.cut = truncations[i].cuts[k];
			snprintf(desc, sizeof(desc), "%s cut at %d of %d",
				 truncations[i].desc, p.cut, truncations[i].full);
			env_forget(e);
			if (build_frame(&f, &p) ||
			    probe(e, truncations[i].dir, &f, &o, -1)) {
				ncases++;
				fail("truncations", desc, "cannot run");
				continue;
			}
			expect("truncations", desc, &f, &o, PC_R_DROP_MALFORMED,
			       -1, false);
		}
	}
}

/* ---- fragments ---- */

#define FRAG1(...)	{ __VA_ARGS__, .more_frags = true, .frag_id = 0x1111 }
#define FRAGN(...)	{ __VA_ARGS__, .frag_offset = 185, .frag_id = 0x1111 }
#define EXT_FRAG	.next = 1, .ext = { IPP_FRAG }

static const struct vcase fragments[] = {
	{ "v4 first fragment web", NORMAL, IN, FRAG1(TCP_IN("100.64.0.1", 80)), PC_R_PASS_RULE, R(3) },
	{ "v4 later fragment follows", NORMAL, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_PASS_FRAG, .cont = true },
	{ "v4 later fragment again", NORMAL, IN, FRAGN(TCP_IN("100.64.0.1", 80), .payload = 100), PC_R_PASS_FRAG, .cont = true },
	{ "v4 later fragment, other id", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .frag_offset = 185, .frag_id = 0x2222 }, PC_R_DROP_DEFAULT, .cont = true },
	{ "v4 later fragment, other source", NORMAL, IN, FRAGN(TCP_IN("100.64.0.2", 80)), PC_R_DROP_DEFAULT, .cont = true },
	{ "v4 later fragment, other direction", NORMAL, OUT, FRAGN(TCP("100.64.0.1", L4, 40000, 80)), PC_R_PASS_DEFAULT, .cont = true },
	{ "v4 first fragment denied", NORMAL, IN, FRAG1(TCP_IN("203.0.113.9", 80)), PC_R_DROP_DENY, R(4) },
	{ "v4 later fragment: same deny", NORMAL, IN, FRAGN(TCP_IN("203.0.113.9", 80)), PC_R_DROP_DENY, R(4), .cont = true },
	{ "v4 first fragment default drop", NORMAL, IN, FRAG1(TCP_IN("100.64.0.1", 8888)), PC_R_DROP_DEFAULT },
	{ "v4 later fragment: default drop", NORMAL, IN, FRAGN(TCP_IN("100.64.0.1", 8888)), PC_R_DROP_DEFAULT, .cont = true },
	{ "v4 first fragment lockdown drop", LOCKDOWN, IN, FRAG1(TCP_IN("100.64.0.1", 80)), PC_R_DROP_LOCKDOWN },
	{ "v4 later fragment: lockdown drop", LOCKDOWN, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_DROP_LOCKDOWN, .cont = true },
	{ "v4 first fragment mgmt, quarantine", QUARANTINE, IN, FRAG1(TCP_IN("192.0.2.10", 22)), PC_R_PASS_MGMT, R(0) },
	{ "v4 later fragment mgmt, quarantine", QUARANTINE, IN, FRAGN(TCP_IN("192.0.2.10", 22)), PC_R_PASS_FRAG, .cont = true },
	{ "v4 first fragment egress", NORMAL, OUT, FRAG1(UDP_OUT("100.64.0.1", 4500)), PC_R_PASS_DEFAULT },
	{ "v4 later egress fragment", NORMAL, OUT, FRAGN(UDP_OUT("100.64.0.1", 4500)), PC_R_PASS_FRAG, .cont = true },
	/* a pass remembered in normal mode no longer holds in lockdown */
	{ "v4 first fragment web, then lockdown", NORMAL, IN, FRAG1(TCP_IN("100.64.0.1", 80)), PC_R_PASS_RULE, R(3) },
	{ "v4 later fragment after lockdown", LOCKDOWN, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_DROP_FRAGMENT, .cont = true },
	/* later fragments whose first we never saw */
	{ "unknown later, normal, address-only allow", NORMAL, IN, FRAGN(TCP_IN("10.1.2.3", 80)), PC_R_PASS_RULE, R(9) },
	{ "unknown later, normal, address-only deny", NORMAL, IN, FRAGN(TCP_IN("203.0.113.9", 80)), PC_R_DROP_DENY, R(4) },
	{ "unknown later, normal, port rule can't speak", NORMAL, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_DROP_DEFAULT },
	{ "unknown later, normal, mgmt has ports", NORMAL, IN, FRAGN(TCP_IN("192.0.2.10", 22)), PC_R_DROP_DEFAULT },
	{ "unknown later egress, normal default", NORMAL, OUT, FRAGN(UDP_OUT("100.64.0.1", 53)), PC_R_PASS_DEFAULT },
	{ "unknown later egress, blocklist", NORMAL, OUT, FRAGN(UDP_OUT("203.0.113.1", 53)), PC_R_DROP_DENY, R(4) },
	{ "unknown later, lockdown", LOCKDOWN, IN, FRAGN(TCP_IN("10.1.2.3", 80)), PC_R_DROP_FRAGMENT },
	{ "unknown later, quarantine", QUARANTINE, IN, FRAGN(TCP_IN("192.0.2.10", 22)), PC_R_DROP_FRAGMENT },
	{ "unknown later egress, lockdown", LOCKDOWN, OUT, FRAGN(UDP_OUT("9.9.9.9", 53)), PC_R_DROP_FRAGMENT },
	/* IPv6 fragment header */
	{ "v6 first fragment web", NORMAL, IN, FRAG1(TCP6_IN("2001:db8:ffff::1", 80), EXT_FRAG), PC_R_PASS_RULE, R(3) },
	{ "v6 later fragment follows", NORMAL, IN, FRAGN(TCP6_IN("2001:db8:ffff::1", 80), EXT_FRAG), PC_R_PASS_FRAG, .cont = true },
	{ "v6 later fragment, other id", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 80), EXT_FRAG, .frag_offset = 185, .frag_id = 9 }, PC_R_DROP_DEFAULT, .cont = true },
	{ "v6 first fragment after hbh, mgmt", QUARANTINE, IN, FRAG1(TCP6_IN("2001:db8:2::10", 22), .next = 2, .ext = { IPP_HOP, IPP_FRAG }), PC_R_PASS_MGMT, R(1) },
	{ "v6 later fragment after hbh", QUARANTINE, IN, FRAGN(TCP6_IN("2001:db8:2::10", 22), .next = 2, .ext = { IPP_HOP, IPP_FRAG }), PC_R_PASS_FRAG, .cont = true },
	{ "v6 first fragment denied", NORMAL, IN, FRAG1(UDP6_IN("2001:db8:bad::1", 53), EXT_FRAG), PC_R_DROP_DENY, R(4) },
	{ "v6 later fragment: same deny", NORMAL, IN, FRAGN(UDP6_IN("2001:db8:bad::1", 53), EXT_FRAG), PC_R_DROP_DENY, R(4), .cont = true },
	{ "v6 unknown later, address-only allow", NORMAL, IN, FRAGN(UDP6_IN("fd00:1::9", 53), EXT_FRAG), PC_R_PASS_RULE, R(9) },
	{ "v6 unknown later, default", NORMAL, IN, FRAGN(UDP6_IN("2001:db8:ffff::1", 53), EXT_FRAG), PC_R_DROP_DEFAULT },
	{ "v6 unknown later, lockdown", LOCKDOWN, IN, FRAGN(UDP6_IN("fd00:1::9", 53), EXT_FRAG), PC_R_DROP_FRAGMENT },
	{ "v6 atomic fragment (offset 0, M=0) web", LOCKDOWN, IN, { TCP6_IN("2001:db8:ffff::1", 80), EXT_FRAG }, PC_R_DROP_LOCKDOWN },
	{ "v6 atomic fragment mgmt", LOCKDOWN, IN, { TCP6_IN("2001:db8:2::10", 22), EXT_FRAG }, PC_R_PASS_MGMT, R(1) },
	/* RFC 8200: destination options and AH after the fragment header
	 * belong to the fragmentable part, so later fragments name them,
	 * not the transport, as the fragment header's next header. */
	{ "v6 first fragment frag+dstopts, mgmt", QUARANTINE, IN, FRAG1(TCP6_IN("2001:db8:2::10", 22), .next = 2, .ext = { IPP_FRAG, IPP_DSTOPTS }), PC_R_PASS_MGMT, R(1) },
	{ "v6 later fragment frag+dstopts follows", QUARANTINE, IN, FRAGN(TCP6_IN("2001:db8:2::10", 22), .next = 2, .ext = { IPP_FRAG, IPP_DSTOPTS }), PC_R_PASS_FRAG, .cont = true },
	{ "v6 first fragment frag+AH, web", NORMAL, IN, FRAG1(TCP6_IN("2001:db8:ffff::1", 80), .next = 2, .ext = { IPP_FRAG, 51 }), PC_R_PASS_RULE, R(3) },
	{ "v6 later fragment frag+AH follows", NORMAL, IN, FRAGN(TCP6_IN("2001:db8:ffff::1", 80), .next = 2, .ext = { IPP_FRAG, 51 }), PC_R_PASS_FRAG, .cont = true },
	{ "v6 first fragment, later after 6 ext hdrs", NORMAL, IN, FRAG1(TCP6_IN("2001:db8:ffff::1", 443), .next = 6, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, IPP_DSTOPTS, IPP_DSTOPTS, IPP_FRAG }), PC_R_PASS_RULE, R(3) },
	{ "v6 later fragment after 6 ext hdrs", NORMAL, IN, FRAGN(TCP6_IN("2001:db8:ffff::1", 443), .next = 6, .ext = { IPP_HOP, IPP_DSTOPTS, IPP_ROUTING, IPP_DSTOPTS, IPP_DSTOPTS, IPP_FRAG }), PC_R_PASS_FRAG, .cont = true },
};

/* ---- flows ---- */

static const struct vcase flows[] = {
	/* egress TCP out, reply in */
	{ "tcp out opens a flow", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 80) }, PC_R_PASS_DEFAULT },
	{ "tcp reply in: flow", NORMAL, IN, { TCP("100.64.0.1", L4, 80, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "tcp reply in again", NORMAL, IN, { TCP("100.64.0.1", L4, 80, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "tcp out again: not a reply", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 80) }, PC_R_PASS_DEFAULT, .cont = true },
	{ "unrelated in: other local port", NORMAL, IN, { TCP("100.64.0.1", L4, 80, 40001) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "unrelated in: other remote port", NORMAL, IN, { TCP("100.64.0.1", L4, 81, 40000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "unrelated in: other remote", NORMAL, IN, { TCP("100.64.0.2", L4, 80, 40000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "unrelated in: udp, same ports", NORMAL, IN, { UDP("100.64.0.1", L4, 80, 40000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "tcp reply in after lockdown: cut", LOCKDOWN, IN, { TCP("100.64.0.1", L4, 80, 40000) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "tcp reply in, back to normal: still cut", NORMAL, IN, { TCP("100.64.0.1", L4, 80, 40000) }, PC_R_DROP_DEFAULT, .cont = true },
	/* flows are per direction: an ingress flow's "reply" is egress */
	{ "web in opens a flow", NORMAL, IN, { TCP("100.64.0.1", L4, 50000, 80) }, PC_R_PASS_RULE, R(3) },
	{ "web reply out: flow before default", NORMAL, OUT, { TCP(L4, "100.64.0.1", 80, 50000) }, PC_R_PASS_FLOW, .cont = true },
	{ "web reply out, lockdown: cut", LOCKDOWN, OUT, { TCP(L4, "100.64.0.1", 80, 50000) }, PC_R_DROP_LOCKDOWN, .cont = true },
	/* deny rules beat flows */
	{ "smtp in via trusted opens a flow", NORMAL, IN, { TCP("10.1.0.1", L4, 50000, 25) }, PC_R_PASS_RULE, R(9) },
	{ "its reply out, lockdown: cut (rule is normal only)", LOCKDOWN, OUT, { TCP(L4, "10.1.0.1", 25, 50000) }, PC_R_DROP_LOCKDOWN, .cont = true },
	/* ICMP echo: request out, reply in */
	{ "ping out opens a flow", NORMAL, OUT, { PING(L4, "100.64.0.1", 77) }, PC_R_PASS_DEFAULT },
	{ "pong in: flow", NORMAL, IN, { PONG("100.64.0.1", L4, 77) }, PC_R_PASS_FLOW, .cont = true },
	{ "pong in, other id", NORMAL, IN, { PONG("100.64.0.1", L4, 78) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "pong in, other remote", NORMAL, IN, { PONG("100.64.0.2", L4, 77) }, PC_R_DROP_DEFAULT, .cont = true },
	/* a request never poses as the reply to ours */
	{ "ping in with our id is no reply", NORMAL, IN, { PING("100.64.0.1", L4, 77) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "pong out does not open", NORMAL, OUT, { PONG(L4, "100.64.0.3", 5) }, PC_R_PASS_DEFAULT },
	{ "ping in after pong out", NORMAL, IN, { PING("100.64.0.3", L4, 5) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "ping6 out opens a flow", NORMAL, OUT, { PING6(L6, "2001:db8:ffff::1", 7) }, PC_R_PASS_DEFAULT },
	{ "pong6 in: flow", NORMAL, IN, { PONG6("2001:db8:ffff::1", L6, 7) }, PC_R_PASS_FLOW, .cont = true },
	{ "pong6 in, other id", NORMAL, IN, { PONG6("2001:db8:ffff::1", L6, 8) }, PC_R_DROP_DEFAULT, .cont = true },
	/* IPv6 TCP and UDP */
	{ "tcp6 out opens a flow", NORMAL, OUT, { TCP(L6, "2001:db8:ffff::1", 40000, 8443) }, PC_R_PASS_DEFAULT },
	{ "tcp6 reply in: flow", NORMAL, IN, { TCP("2001:db8:ffff::1", L6, 8443, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "tcp6 reply in from other", NORMAL, IN, { TCP("2001:db8:ffff::2", L6, 8443, 40000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "tcp6 reply in, quarantine: cut", QUARANTINE, IN, { TCP("2001:db8:ffff::1", L6, 8443, 40000) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "lockdown tcp6 out by rule", LOCKDOWN, OUT, { TCP(L6, "2001:db8:ffff::1", 40000, 443) }, PC_R_PASS_RULE, R(16) },
	{ "its reply in, lockdown: flow", LOCKDOWN, IN, { TCP("2001:db8:ffff::1", L6, 443, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "its reply in, normal: default allows it", NORMAL, IN, { TCP("2001:db8:ffff::1", L6, 443, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "dns out", NORMAL, OUT, { UDP(L4, "9.9.9.9", 40000, 53) }, PC_R_PASS_RULE, R(5) },
	{ "dns reply in", NORMAL, IN, { UDP("9.9.9.9", L4, 53, 40000) }, PC_R_PASS_FLOW, .cont = true },
	{ "dns reply in, quarantine: cut", QUARANTINE, IN, { UDP("9.9.9.9", L4, 53, 40000) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "dns reply in, lockdown: a cut flow stays cut", LOCKDOWN, IN, { UDP("9.9.9.9", L4, 53, 40000) }, PC_R_DROP_LOCKDOWN, .cont = true },
	/* quarantine cuts every flow but management's */
	{ "mgmt ssh in", NORMAL, IN, { TCP("192.0.2.10", L4, 50000, 22) }, PC_R_PASS_MGMT, R(0) },
	{ "admin ssh in", NORMAL, IN, { TCP("198.51.100.7", L4, 50001, 22) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "web in", NORMAL, IN, { TCP("100.64.0.9", L4, 50002, 80) }, PC_R_PASS_RULE, R(3), .cont = true },
	{ "browse out", NORMAL, OUT, { TCP(L4, "100.64.0.9", 50003, 8080) }, PC_R_PASS_DEFAULT, .cont = true },
	{ "mgmt reply out, normal", NORMAL, OUT, { TCP(L4, "192.0.2.10", 22, 50000) }, PC_R_PASS_FLOW, .cont = true },
	{ "admin reply out, normal", NORMAL, OUT, { TCP(L4, "198.51.100.7", 22, 50001) }, PC_R_PASS_FLOW, .cont = true },
	{ "mgmt reply out, lockdown", LOCKDOWN, OUT, { TCP(L4, "192.0.2.10", 22, 50000) }, PC_R_PASS_FLOW, .cont = true },
	{ "admin reply out, lockdown: rule has lockdown", LOCKDOWN, OUT, { TCP(L4, "198.51.100.7", 22, 50001) }, PC_R_PASS_FLOW, .cont = true },
	{ "web reply out, lockdown: cut", LOCKDOWN, OUT, { TCP(L4, "100.64.0.9", 80, 50002) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "browse reply in, lockdown: cut", LOCKDOWN, IN, { TCP("100.64.0.9", L4, 8080, 50003) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "mgmt reply out, quarantine: kept", QUARANTINE, OUT, { TCP(L4, "192.0.2.10", 22, 50000) }, PC_R_PASS_FLOW, .cont = true },
	{ "admin reply out, quarantine: cut", QUARANTINE, OUT, { TCP(L4, "198.51.100.7", 22, 50001) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "admin reply out, lockdown again: gone", LOCKDOWN, OUT, { TCP(L4, "198.51.100.7", 22, 50001) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "mgmt reply out, normal again", NORMAL, OUT, { TCP(L4, "192.0.2.10", 22, 50000) }, PC_R_PASS_FLOW, .cont = true },
	/* a flow opened in quarantine by management */
	{ "mgmt6 ssh in, quarantine", QUARANTINE, IN, { TCP("2001:db8:2::10", L6, 50000, 22) }, PC_R_PASS_MGMT, R(1) },
	{ "mgmt6 reply out, quarantine", QUARANTINE, OUT, { TCP(L6, "2001:db8:2::10", 22, 50000) }, PC_R_PASS_FLOW, .cont = true },
	/* a flow opened in lockdown by a lockdown rule */
	{ "udp 5000 in, lockdown", LOCKDOWN, IN, { UDP("100.64.0.5", L4, 6000, 5000) }, PC_R_PASS_RULE, R(10) },
	{ "its reply out, lockdown", LOCKDOWN, OUT, { UDP(L4, "100.64.0.5", 5000, 6000) }, PC_R_PASS_FLOW, .cont = true },
	{ "its reply out, quarantine: cut", QUARANTINE, OUT, { UDP(L4, "100.64.0.5", 5000, 6000) }, PC_R_DROP_QUARANTINE, .cont = true },
	/* dropped packets open nothing */
	{ "blocked out", NORMAL, OUT, { TCP(L4, "203.0.113.7", 40000, 80) }, PC_R_DROP_DENY, R(4), .initiated = true },
	{ "its 'reply' in", NORMAL, IN, { TCP("203.0.113.7", L4, 80, 40000) }, PC_R_DROP_DENY, R(4), .cont = true },
	{ "probe in dropped", NORMAL, IN, { TCP("100.64.0.7", L4, 80, 9999) }, PC_R_DROP_DEFAULT },
	{ "its 'reply' out, lockdown", LOCKDOWN, OUT, { TCP(L4, "100.64.0.7", 9999, 80) }, PC_R_DROP_LOCKDOWN, .cont = true },
};

/* ICMP errors about flows. */
static const struct pkt quoted_out4 = { TCP(L4, "100.64.0.1", 40000, 443) };
static const struct pkt quoted_other4 = { TCP(L4, "100.64.0.1", 40001, 443) };
static const struct pkt quoted_out6 = { TCP(L6, "2001:db8:ffff::1", 40000, 443) };
static const struct pkt quoted_other6 = { TCP(L6, "2001:db8:ffff::1", 40009, 443) };
static const struct pkt quoted_in4 = { TCP("192.0.2.10", L4, 50000, 22) };
static const struct pkt quoted_reply4 = { TCP(L4, "192.0.2.10", 22, 50000) };
static const struct pkt quoted_udp4 = { UDP(L4, "100.64.0.1", 40000, 443) };
static const struct pkt quoted_ping4 = { PING(L4, "100.64.0.1", 99) };
static const struct pkt quoted_ping4b = { PING(L4, "100.64.0.1", 98) };

#define ICMP_ERR(s, d, t, c, q)	.src = s, .dst = d, .proto = IPP_ICMP, .icmp_type = t, .icmp_code = c, .inner = q
#define ICMP6_ERR(s, d, t, c, q) .src = s, .dst = d, .proto = IPP_ICMPV6, .icmp_type = t, .icmp_code = c, .inner = q

static const struct vcase related[] = {
	{ "tcp out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT },
	{ "frag needed about it", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4) }, PC_R_PASS_RELATED, .cont = true },
	{ "time exceeded about it", NORMAL, IN, { ICMP_ERR("100.64.0.253", L4, 11, 0, &quoted_out4) }, PC_R_PASS_RELATED, .cont = true },
	{ "parameter problem about it", NORMAL, IN, { ICMP_ERR("100.64.0.253", L4, 12, 0, &quoted_out4) }, PC_R_PASS_RELATED, .cont = true },
	{ "frag needed quoting whole packet", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4), .inner_len = 40 }, PC_R_PASS_RELATED, .cont = true },
	{ "frag needed, unknown flow", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_other4) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "frag needed, udp with same ports", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 3, &quoted_udp4) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "redirect (5) is not an error we relate", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 5, 1, &quoted_out4) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "frag needed quoting 2 bytes of tcp only", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4), .inner_len = 22 }, PC_R_DROP_DEFAULT, .cont = true },
	{ "frag needed from blocklisted router", NORMAL, IN, { ICMP_ERR("203.0.113.1", L4, 3, 4, &quoted_out4) }, PC_R_DROP_DENY, R(4), .cont = true },
	{ "frag needed, lockdown: flow cut", LOCKDOWN, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "frag needed, normal: flow is gone", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "frag needed, no flow at all", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4) }, PC_R_DROP_DEFAULT },
	/* errors about our pings */
	{ "ping out", NORMAL, OUT, { PING(L4, "100.64.0.1", 99) }, PC_R_PASS_DEFAULT },
	{ "time exceeded about the ping", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 11, 0, &quoted_ping4) }, PC_R_PASS_RELATED, .cont = true },
	{ "time exceeded about another ping", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 11, 0, &quoted_ping4b) }, PC_R_DROP_DEFAULT, .cont = true },
	/* the error about our reply to an ingress flow */
	{ "mgmt ssh in", NORMAL, IN, { TCP("192.0.2.10", L4, 50000, 22) }, PC_R_PASS_MGMT, R(0) },
	{ "a router's unreachable about our reply, quarantine", QUARANTINE, IN, { ICMP_ERR("100.64.0.254", L4, 3, 1, &quoted_reply4) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "the peer's unreachable about our reply, quarantine", QUARANTINE, IN, { ICMP_ERR("192.0.2.10", L4, 3, 1, &quoted_reply4) }, PC_R_PASS_RELATED, .cont = true },
	{ "unreachable quoting the peer's packet", QUARANTINE, IN, { ICMP_ERR("100.64.0.254", L4, 3, 1, &quoted_in4) }, PC_R_DROP_QUARANTINE, .cont = true },
	/* IPv6 packet too big */
	{ "tcp6 out", NORMAL, OUT, { TCP(L6, "2001:db8:ffff::1", 40000, 443) }, PC_R_PASS_DEFAULT },
	{ "packet too big about it", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6) }, PC_R_PASS_RELATED, .cont = true },
	{ "unreachable6 about it", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 1, 4, &quoted_out6) }, PC_R_PASS_RELATED, .cont = true },
	{ "time exceeded6 about it", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 3, 0, &quoted_out6) }, PC_R_PASS_RELATED, .cont = true },
	{ "packet too big, unknown flow", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_other6) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "packet too big via hbh header", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6), .next = 1, .ext = { IPP_HOP } }, PC_R_PASS_RELATED, .cont = true },
	{ "packet too big from admins: rule first", NORMAL, IN, { ICMP6_ERR("2001:db8:100::fe", L6, 2, 0, &quoted_out6) }, PC_R_PASS_RULE, R(12), .cont = true },
	{ "packet too big, quarantine: cut", QUARANTINE, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "packet too big, no flow", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6) }, PC_R_DROP_DEFAULT },
	/* our own error about a packet of a management flow */
	{ "mgmt ssh in again", QUARANTINE, IN, { TCP("192.0.2.10", L4, 50000, 22) }, PC_R_PASS_MGMT, R(0) },
	{ "our unreachable about it, quarantine", QUARANTINE, OUT, { ICMP_ERR(L4, "192.0.2.10", 3, 4, &quoted_in4) }, PC_R_PASS_RELATED, .cont = true },
	{ "our unreachable about another packet", QUARANTINE, OUT, { ICMP_ERR(L4, "192.0.2.10", 3, 4, &quoted_reply4) }, PC_R_DROP_QUARANTINE, .cont = true },
	/* errors do not open flows */
	{ "unreachable out", NORMAL, OUT, { ICMP_ERR(L4, "100.64.0.1", 3, 3, &quoted_in4) }, PC_R_PASS_DEFAULT },
	{ "an error back about it", NORMAL, IN, { .src = "100.64.0.1", .dst = L4, .proto = IPP_ICMP, .icmp_type = 3, .icmp_code = 3, .inner = &quoted_in4 }, PC_R_DROP_DEFAULT, .cont = true },
};

/*
 * An error is related only from and to its flow's own endpoints (a router
 * on the path: inbound, normal mode only), unfragmented and no longer than
 * an error needs (576 B IPv4, 1280 B IPv6, IP header on). Otherwise quoting
 * a management flow would carry anything to anyone in quarantine.
 * Sizes: IP 20 + ICMP 8 + quote 28 (IPv6: 40 + 8 + 48) + payload.
 */
static const struct vcase related_outer[] = {
	{ "mgmt ssh in, quarantine", QUARANTINE, IN, { TCP("192.0.2.10", L4, 50000, 22) }, PC_R_PASS_MGMT, R(0) },
	{ "our error quoting it, to another host", QUARANTINE, OUT, { ICMP_ERR(L4, "198.51.100.99", 3, 3, &quoted_in4) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "the same, 1000 B of payload on", QUARANTINE, OUT, { ICMP_ERR(L4, "198.51.100.99", 3, 3, &quoted_in4), .payload = 1000 }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "our error to its peer, 1000 B on", QUARANTINE, OUT, { ICMP_ERR(L4, "192.0.2.10", 3, 3, &quoted_in4), .payload = 1000 }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "our error to its peer, 576 B", QUARANTINE, OUT, { ICMP_ERR(L4, "192.0.2.10", 3, 3, &quoted_in4), .payload = 520 }, PC_R_PASS_RELATED, .cont = true },
	{ "our error to its peer, 577 B", QUARANTINE, OUT, { ICMP_ERR(L4, "192.0.2.10", 3, 3, &quoted_in4), .payload = 521 }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "an error to its peer from another address", QUARANTINE, OUT, { ICMP_ERR("192.0.2.77", "192.0.2.10", 3, 3, &quoted_in4) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "an error in from another host", QUARANTINE, IN, { ICMP_ERR("198.51.100.99", L4, 3, 3, &quoted_reply4) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "an error in from another host, 1000 B on", QUARANTINE, IN, { ICMP_ERR("198.51.100.99", L4, 3, 3, &quoted_reply4), .payload = 1000 }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "an error in from the peer", QUARANTINE, IN, { ICMP_ERR("192.0.2.10", L4, 3, 3, &quoted_reply4) }, PC_R_PASS_RELATED, .cont = true },
	{ "an error from the peer to another address", QUARANTINE, IN, { ICMP_ERR("192.0.2.10", "192.0.2.99", 3, 3, &quoted_reply4) }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "a fragmented error from the peer", QUARANTINE, IN, { ICMP_ERR("192.0.2.10", L4, 3, 3, &quoted_reply4), .more_frags = true }, PC_R_DROP_QUARANTINE, .cont = true },
	{ "a router's error about it, lockdown", LOCKDOWN, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_reply4) }, PC_R_DROP_LOCKDOWN, .cont = true },
	/* routers on the path: inbound, normal mode, bounded */
	{ "tcp out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT },
	{ "a router's frag needed, 576 B", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4), .payload = 520 }, PC_R_PASS_RELATED, .cont = true },
	{ "a router's frag needed, 577 B", NORMAL, IN, { ICMP_ERR("100.64.0.254", L4, 3, 4, &quoted_out4), .payload = 521 }, PC_R_DROP_DEFAULT, .cont = true },
	{ "a router's error to another local address", NORMAL, IN, { ICMP_ERR("100.64.0.254", "192.0.2.99", 3, 4, &quoted_out4) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "tcp6 out", NORMAL, OUT, { TCP(L6, "2001:db8:ffff::1", 40000, 443) }, PC_R_PASS_DEFAULT },
	{ "a router's packet too big, 1280 B", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6), .payload = 1184 }, PC_R_PASS_RELATED, .cont = true },
	{ "a router's packet too big, 1281 B", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::fe", L6, 2, 0, &quoted_out6), .payload = 1185 }, PC_R_DROP_DEFAULT, .cont = true },
	{ "the peer's unreachable6 to another address", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::1", "2001:db8:1::99", 1, 4, &quoted_out6) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "the peer's unreachable6", NORMAL, IN, { ICMP6_ERR("2001:db8:ffff::1", L6, 1, 4, &quoted_out6) }, PC_R_PASS_RELATED, .cont = true },
};

/*
 * A cut connection does not resume: only a SYN opens a TCP flow, and a flow
 * that lived through a strict mode is re-decided under it at its next
 * packet, even if none of its packets came by meanwhile.
 */
#define ACK	.tcp_flags = 0x10
#define PSHACK	.tcp_flags = 0x18
#define SYNACK	.tcp_flags = 0x12

static const struct vcase tcp_cut[] = {
	{ "syn out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT },
	{ "syn-ack in", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), SYNACK }, PC_R_PASS_FLOW, .cont = true },
	{ "data in", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_PASS_FLOW, .cont = true },
	{ "quarantine: only management comes by", QUARANTINE, IN, { TCP("192.0.2.10", L4, 50000, 22) }, PC_R_PASS_MGMT, R(0), .cont = true },
	{ "back to normal: its data in", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_DROP_DEFAULT, .cont = true },
	{ "its retransmission out passes", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443), PSHACK }, PC_R_PASS_DEFAULT, .cont = true },
	{ "and opens nothing: data in", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_DROP_DEFAULT, .cont = true },
	{ "a new syn on the same ports", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT, .cont = true },
	{ "its syn-ack", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), SYNACK }, PC_R_PASS_FLOW, .cont = true },
	/* mid-stream with no flow: opens none */
	{ "ack out, no flow", NORMAL, OUT, { TCP(L4, "100.64.0.2", 40001, 443), ACK }, PC_R_PASS_DEFAULT },
	{ "its answer in", NORMAL, IN, { TCP("100.64.0.2", L4, 443, 40001), ACK }, PC_R_DROP_DEFAULT, .cont = true },
	{ "syn-ack out, no flow", NORMAL, OUT, { TCP(L4, "100.64.0.2", 40001, 443), SYNACK }, PC_R_PASS_DEFAULT, .cont = true },
	{ "its answer in, still none", NORMAL, IN, { TCP("100.64.0.2", L4, 443, 40001), ACK }, PC_R_DROP_DEFAULT, .cont = true },
	/* a lockdown cuts alike; a management flow lives through both */
	{ "mgmt ssh in", NORMAL, IN, { TCP("192.0.2.10", L4, 50001, 22) }, PC_R_PASS_MGMT, R(0) },
	{ "syn out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40002, 443) }, PC_R_PASS_DEFAULT, .cont = true },
	{ "lockdown: only management comes by", LOCKDOWN, IN, { TCP("192.0.2.10", L4, 50001, 22), ACK }, PC_R_PASS_MGMT, R(0), .cont = true },
	{ "quarantine, then normal: its syn-ack", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40002), SYNACK }, PC_R_DROP_DEFAULT, .cont = true },
	{ "our mgmt reply, quarantine", QUARANTINE, OUT, { TCP(L4, "192.0.2.10", 22, 50001), ACK }, PC_R_PASS_FLOW, .cont = true },
};

/*
 * The anomaly signal egress_denied counts denied egress the host itself
 * initiated, never a reply to what an outsider sent: bare SYNs from port
 * 25 to the web port must not count the SYN-ACKs a deny rule on tcp/25
 * drops (issue 13 item 3), while the host's own SYN to port 25 does.
 */
#define RST	.tcp_flags = 0x04
#define RSTACK	.tcp_flags = 0x14

static const char initiated_policy[] =
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 8080}\n"	/* 1 */
	"  - {name: dns, action: allow, direction: ingress, proto: udp, ports: 53}\n"	/* 2 */
	"  - {name: no-smtp-out, action: deny, direction: egress, proto: tcp, ports: 25}\n"	/* 3 */
	"  - {name: no-udp25-out, action: deny, direction: egress, proto: udp, ports: 25}\n"	/* 4 */
	"  - {name: ping-in, action: allow, direction: ingress, proto: icmp}\n"	/* 5 */
	"  - {name: no-ping-99, action: deny, direction: egress, cidr: 198.51.100.99/32, proto: icmp}\n";	/* 6 */

static const struct vcase initiated[] = {
	/* TCP: the flags say who asked */
	{ "bare syn in from port 25 to web", NORMAL, IN, { TCP("198.51.100.7", L4, 25, 8080) }, PC_R_PASS_RULE, R(1) },
	{ "its syn-ack out: denied, a reply", NORMAL, OUT, { TCP(L4, "198.51.100.7", 8080, 25), SYNACK }, PC_R_DROP_DENY, R(3), .cont = true },
	{ "rst+ack out to port 25: a reply", NORMAL, OUT, { TCP(L4, "198.51.100.8", 8081, 25), RSTACK }, PC_R_DROP_DENY, R(3) },
	{ "rst out to port 25: a reply", NORMAL, OUT, { TCP(L4, "198.51.100.8", 8081, 25), RST }, PC_R_DROP_DENY, R(3) },
	{ "ack out to port 25, no flow: mid-stream", NORMAL, OUT, { TCP(L4, "198.51.100.8", 8081, 25), ACK }, PC_R_DROP_DENY, R(3) },
	{ "our own syn out to port 25", NORMAL, OUT, { TCP(L4, "198.51.100.7", 40000, 25) }, PC_R_DROP_DENY, R(3), .initiated = true },
	{ "our own syn out, default deny", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40001, 9) }, PC_R_DROP_DEFAULT, .initiated = true },
	{ "our own syn out, lockdown: a mode's drop", LOCKDOWN, OUT, { TCP(L4, "100.64.0.1", 40001, 9) }, PC_R_DROP_LOCKDOWN },
	{ "our own syn out, quarantine, deny rule", QUARANTINE, OUT, { TCP(L4, "100.64.0.1", 40001, 25) }, PC_R_DROP_DENY, R(3), .initiated = true },
	{ "v6 bare syn in from port 25 to web", NORMAL, IN, { TCP("2001:db8:100::7", L6, 25, 8080) }, PC_R_PASS_RULE, R(1) },
	{ "v6 its syn-ack out: a reply", NORMAL, OUT, { TCP(L6, "2001:db8:100::7", 8080, 25), SYNACK }, PC_R_DROP_DENY, R(3), .cont = true },
	{ "v6 our own syn out to port 25", NORMAL, OUT, { TCP(L6, "2001:db8:100::7", 40000, 25) }, PC_R_DROP_DENY, R(3), .initiated = true },
	/* UDP: a reply is a packet of a flow the far end opened */
	{ "udp from port 25 to our dns", NORMAL, IN, { UDP("198.51.100.7", L4, 25, 53) }, PC_R_PASS_RULE, R(2) },
	{ "its answer out to udp/25: a reply", NORMAL, OUT, { UDP(L4, "198.51.100.7", 53, 25) }, PC_R_DROP_DENY, R(4), .cont = true },
	{ "our own datagram to udp/25", NORMAL, OUT, { UDP(L4, "198.51.100.7", 40002, 25) }, PC_R_DROP_DENY, R(4), .cont = true, .initiated = true },
	{ "udp in, dropped: opens nothing", NORMAL, IN, { UDP("198.51.100.7", L4, 25, 54) }, PC_R_DROP_DEFAULT },
	{ "so ours out from that port is our own", NORMAL, OUT, { UDP(L4, "198.51.100.7", 54, 25) }, PC_R_DROP_DENY, R(4), .cont = true, .initiated = true },
	{ "first fragment of our own datagram", NORMAL, OUT, FRAG1(UDP(L4, "198.51.100.7", 40003, 25)), PC_R_DROP_DENY, R(4), .initiated = true },
	{ "its later fragment: counted once", NORMAL, OUT, FRAGN(UDP(L4, "198.51.100.7", 40003, 25)), PC_R_DROP_DENY, R(4), .cont = true },
	/* ICMP: echo requests only */
	{ "ping in from .99", NORMAL, IN, { PING("198.51.100.99", L4, 7) }, PC_R_PASS_RULE, R(5) },
	{ "its echo reply out: a reply", NORMAL, OUT, { PONG(L4, "198.51.100.99", 7) }, PC_R_DROP_DENY, R(6), .cont = true },
	{ "unreachable out to .99: an error", NORMAL, OUT, { .src = L4, .dst = "198.51.100.99", .proto = IPP_ICMP, .icmp_type = 3, .icmp_code = 3 }, PC_R_DROP_DENY, R(6) },
	{ "our own ping to .99", NORMAL, OUT, { PING(L4, "198.51.100.99", 8) }, PC_R_DROP_DENY, R(6), .initiated = true },
	{ "ingress drops never count", NORMAL, IN, { TCP("100.64.0.1", L4, 40000, 9) }, PC_R_DROP_DEFAULT },
};

/* IPv6 neighbour discovery */
#define ND(t, s, d, hl)	.src = s, .dst = d, .proto = IPP_ICMPV6, .icmp_type = t, .ttl = hl, .payload = 16

/* ---- TCP flow states (pc_flow.dir's PC_FLOW_S_* bits) ---- */

#define FIN	.tcp_flags = 0x11	/* FIN+ACK */
#define HOST	PC_DIR_EGRESS		/* the table a flow is in: its opener */
#define PEER	PC_DIR_INGRESS
#define NOFLOW	(-1)

/* One step: age every flow by age_s first, run the frame, then expect the
 * only flow in table `in` with TCP state `state` (NOFLOW: none live). */
struct tcp_step {
	const char *desc;
	int dir;
	struct pkt pkt;
	int reason;
	int rule;		/* R(n) as in struct vcase */
	int in;
	__u8 state;
	unsigned int age_s;
	bool fresh;		/* forget every flow first */
	bool legacy;		/* move peer flows to pc_flows, as an older
				 * datapath kept them, before the frame */
};

/* Web clients in, the host's own connections out (main policy: ingress
 * tcp/80 by rule R(3), egress default allow, ingress default deny). */
static const struct tcp_step tcp_state[] = {
	/* the host's own connection */
	{ "syn out: embryonic", OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_SYN, .fresh = true },
	{ "syn-ack in 4 s later: established", IN, { TCP("100.64.0.1", L4, 443, 40000), SYNACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST, .age_s = 4 },
	{ "data in after 50 min idle", IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST, .age_s = 3000 },
	{ "forged rst in: ignored on a host flow", IN, { TCP("100.64.0.1", L4, 443, 40000), RST }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST },
	{ "forged fin in: ignored on a host flow", IN, { TCP("100.64.0.1", L4, 443, 40000), FIN }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST },
	{ "data in 20 s after the forged rst", IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST, .age_s = 20 },
	{ "our fin out: closing", OUT, { TCP(L4, "100.64.0.1", 40000, 443), FIN }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_FIN },
	{ "ack in 50 s later", IN, { TCP("100.64.0.1", L4, 443, 40000), ACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_FIN, .age_s = 50 },
	{ "ack in 61 s later: gone", IN, { TCP("100.64.0.1", L4, 443, 40000), ACK }, PC_R_DROP_DEFAULT, 0, NOFLOW, 0, .age_s = 61 },
	{ "a syn nobody answers", OUT, { TCP(L4, "100.64.0.1", 40001, 443) }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_SYN, .fresh = true },
	{ "its syn-ack 6 s later: expired", IN, { TCP("100.64.0.1", L4, 443, 40001), SYNACK }, PC_R_DROP_DEFAULT, 0, NOFLOW, 0, .age_s = 6 },
	{ "a far end's rst to our syn: kept embryonic", OUT, { TCP(L4, "100.64.0.1", 40002, 443) }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_SYN, .fresh = true },
	{ "its rst-ack in", IN, { TCP("100.64.0.1", L4, 443, 40002), RSTACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_SYN },
	{ "syn out", OUT, { TCP(L4, "100.64.0.1", 40003, 443) }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_SYN, .fresh = true },
	{ "syn-ack in", IN, { TCP("100.64.0.1", L4, 443, 40003), SYNACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST },
	{ "our rst out: 10 s", OUT, { TCP(L4, "100.64.0.1", 40003, 443), RSTACK }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_RST },
	{ "a new syn on its ports: a new flow", OUT, { TCP(L4, "100.64.0.1", 40003, 443) }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_SYN },
	{ "syn-ack in", IN, { TCP("100.64.0.1", L4, 443, 40003), SYNACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST },
	{ "our rst out again", OUT, { TCP(L4, "100.64.0.1", 40003, 443), RSTACK }, PC_R_PASS_DEFAULT, 0, HOST, PC_FLOW_S_RST },
	{ "data in 11 s later: gone", IN, { TCP("100.64.0.1", L4, 443, 40003), PSHACK }, PC_R_DROP_DEFAULT, 0, NOFLOW, 0, .age_s = 11 },
	/* a web client's connection: the peer's table */
	{ "web syn in: embryonic", IN, { TCP("100.64.0.9", L4, 50000, 80) }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_SYN, .fresh = true },
	{ "our syn-ack out: established", OUT, { TCP(L4, "100.64.0.9", 80, 50000), SYNACK }, PC_R_PASS_FLOW, 0, PEER, PC_FLOW_S_EST },
	{ "data out after 50 min idle", OUT, { TCP(L4, "100.64.0.9", 80, 50000), PSHACK }, PC_R_PASS_FLOW, 0, PEER, PC_FLOW_S_EST, .age_s = 3000 },
	{ "its rst in: 10 s", IN, { TCP("100.64.0.9", L4, 50000, 80), RSTACK }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_RST },
	{ "data out 5 s later: still", OUT, { TCP(L4, "100.64.0.9", 80, 50000), PSHACK }, PC_R_PASS_FLOW, 0, PEER, PC_FLOW_S_RST, .age_s = 5 },
	{ "data out 11 s later: no flow, default", OUT, { TCP(L4, "100.64.0.9", 80, 50000), PSHACK }, PC_R_PASS_DEFAULT, 0, NOFLOW, 0, .age_s = 11 },
	{ "web syn in", IN, { TCP("100.64.0.9", L4, 50001, 80) }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_SYN, .fresh = true },
	{ "our syn-ack out", OUT, { TCP(L4, "100.64.0.9", 80, 50001), SYNACK }, PC_R_PASS_FLOW, 0, PEER, PC_FLOW_S_EST },
	{ "its fin in: 60 s", IN, { TCP("100.64.0.9", L4, 50001, 80), FIN }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_FIN },
	{ "our fin out 61 s later: no flow", OUT, { TCP(L4, "100.64.0.9", 80, 50001), FIN }, PC_R_PASS_DEFAULT, 0, NOFLOW, 0, .age_s = 61 },
	{ "web syn in, unanswered", IN, { TCP("100.64.0.9", L4, 50002, 80) }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_SYN, .fresh = true },
	{ "its third ack in does not establish", IN, { TCP("100.64.0.9", L4, 50002, 80), ACK }, PC_R_PASS_RULE, R(3), PEER, PC_FLOW_S_SYN },
	{ "our syn-ack 6 s later: expired", OUT, { TCP(L4, "100.64.0.9", 80, 50002), SYNACK }, PC_R_PASS_DEFAULT, 0, NOFLOW, 0, .age_s = 6 },
	/* a live upgrade: the older datapath's one table still answers */
	{ "mgmt ssh in", IN, { TCP("192.0.2.10", L4, 50003, 22) }, PC_R_PASS_MGMT, R(0), PEER, PC_FLOW_S_SYN, .fresh = true },
	{ "a flow an older datapath kept in pc_flows", OUT, { TCP(L4, "192.0.2.10", 22, 50003), SYNACK }, PC_R_PASS_FLOW, 0, HOST, PC_FLOW_S_EST, .legacy = true },
};

/* Move every flow of the peer table into pc_flows, as an older datapath
 * (one table for both openers) left them. */
static void flows_to_legacy(struct env *e)
{
	struct pc_flow_key k, *prev = NULL, keys[16];
	struct pc_flow vals[16];
	int n = 0;

	while (n < 16 && !bpf_map_get_next_key(e->maps.flows_peer, prev, &k)) {
		if (!bpf_map_lookup_elem(e->maps.flows_peer, &k, &vals[n]))
			keys[n++] = k;
		prev = &keys[n ? n - 1 : 0];
	}
	for (int i = 0; i < n; i++) {
		bpf_map_delete_elem(e->maps.flows_peer, &keys[i]);
		bpf_map_update_elem(e->maps.flows, &keys[i], &vals[i], BPF_ANY);
	}
}

/* Age every flow of a table by s seconds: as if nothing came by since.
 * The keys first: an update relinks an LRU entry at its bucket's head, so
 * updating while walking cycles when two flows share a bucket. */
#define AGE_MAX		64
static void flows_age(int fd, unsigned int s)
{
	struct pc_flow_key keys[AGE_MAX], *prev = NULL;
	struct pc_flow v;
	int n = 0;

	while (n < AGE_MAX && !bpf_map_get_next_key(fd, prev, &keys[n])) {
		prev = &keys[n];
		n++;
	}
	for (int i = 0; i < n; i++) {
		if (bpf_map_lookup_elem(fd, &keys[i], &v))
			continue;
		/* Unsigned: now - last_ns in the datapath wraps back, so
		 * an age longer than the uptime works as well. */
		v.last_ns -= s * 1000000000ULL;
		v.created_ns -= s * 1000000000ULL;
		bpf_map_update_elem(fd, &keys[i], &v, BPF_EXIST);
	}
}

/* The one live flow of the datapath: its table and value. 0 if found. */
static int flow_only(struct env *e, int *in, struct pc_flow *v)
{
	const int fds[] = { [HOST] = e->maps.flows, [PEER] = e->maps.flows_peer };
	struct pc_flow_key k;
	int n = 0;

	for (int t = 0; t < 2; t++) {
		if (bpf_map_get_next_key(fds[t], NULL, &k))
			continue;
		if (!bpf_map_lookup_elem(fds[t], &k, v)) {
			*in = t;
			n++;
		}
	}
	return n == 1 ? 0 : -1;
}

static void test_tcp_state(struct env *e)
{
	const size_t n = sizeof(tcp_state) / sizeof(tcp_state[0]);

	for (size_t i = 0; i < n; i++) {
		const struct tcp_step *c = &tcp_state[i];
		struct pc_flow v;
		struct outcome o;
		struct frame f;
		int in = NOFLOW;

		if (c->fresh)
			env_forget(e);
		if (c->legacy)
			flows_to_legacy(e);
		flows_age(e->maps.flows, c->age_s);
		flows_age(e->maps.flows_peer, c->age_s);
		ncases++;
		if (build_frame(&f, &c->pkt) ||
		    probe(e, c->dir, &f, &o, c->rule - 1)) {
			fail("tcp_state", c->desc, "cannot run the frame");
			continue;
		}
		if (!expect("tcp_state", c->desc, &f, &o, c->reason, c->rule - 1,
			    false))
			continue;
		/* The flow a drop left behind has expired: none live. */
		if (flow_only(e, &in, &v) && c->in != NOFLOW)
			fail("tcp_state", c->desc, "no single flow left");
		else if (c->in != NOFLOW && in != c->in)
			fail("tcp_state", c->desc, "flow in the %s table, expected %s",
			     in == HOST ? "host" : "peer", c->in == HOST ? "host" : "peer");
		else if (c->in != NOFLOW && (v.dir & PC_FLOW_S_MASK) != c->state)
			fail("tcp_state", c->desc, "state 0x%02x, expected 0x%02x",
			     v.dir & PC_FLOW_S_MASK, c->state);
	}
}

static const struct vcase nd[] = {
	{ "NS hop 255", NORMAL, IN, { ND(135, "fe80::1", "ff02::1:ff00:1", 255) }, PC_R_PASS_ND },
	{ "NA hop 255", NORMAL, IN, { ND(136, "fe80::1", "fe80::2", 255) }, PC_R_PASS_ND },
	{ "RS hop 255 out", NORMAL, OUT, { ND(133, "fe80::2", "ff02::2", 255) }, PC_R_PASS_ND },
	{ "RA hop 255, quarantine", QUARANTINE, IN, { ND(134, "fe80::1", "ff02::1", 255) }, PC_R_PASS_ND },
	{ "redirect hop 255, lockdown", LOCKDOWN, IN, { ND(137, "fe80::1", "fe80::2", 255) }, PC_R_PASS_ND },
	{ "NS hop 64", NORMAL, IN, { ND(135, "fe80::1", "ff02::1:ff00:1", 64) }, PC_R_DROP_DEFAULT },
	{ "NS hop 64, lockdown", LOCKDOWN, IN, { ND(135, "fe80::1", "ff02::1:ff00:1", 64) }, PC_R_DROP_LOCKDOWN },
	{ "NS hop 254 out, quarantine", QUARANTINE, OUT, { ND(135, "fe80::2", "fe80::1", 254) }, PC_R_DROP_QUARANTINE },
	{ "type 132 hop 255 not ND", NORMAL, IN, { ND(132, "fe80::1", "ff02::1", 255) }, PC_R_DROP_DEFAULT },
	{ "type 138 hop 255 not ND", NORMAL, IN, { ND(138, "fe80::1", "ff02::1", 255) }, PC_R_DROP_DEFAULT },
	{ "NS from admins hop 64: rule", NORMAL, IN, { ND(135, "2001:db8:100::1", L6, 64) }, PC_R_PASS_RULE, R(12) },
	{ "NS in a fragment: not ND", LOCKDOWN, IN, { ND(135, "fe80::1", "fe80::2", 255), .next = 1, .ext = { IPP_FRAG }, .more_frags = true }, PC_R_DROP_LOCKDOWN },
	{ "NS after hbh hop 255", LOCKDOWN, IN, { ND(135, "fe80::1", "fe80::2", 255), .next = 1, .ext = { IPP_HOP } }, PC_R_PASS_ND },
	{ "NS cut short", NORMAL, IN, { ND(135, "fe80::1", "fe80::2", 255), .cut = 14 + 40 + 7 }, PC_R_DROP_MALFORMED },
	{ "icmp (v4) type 135 ttl 255 is not ND", LOCKDOWN, IN, { .src = "100.64.0.1", .dst = L4, .proto = IPP_ICMP, .icmp_type = 135, .ttl = 255 }, PC_R_DROP_LOCKDOWN },
};

/* ---- policies with other settings ---- */

static const char l2_off_policy[] =
	"defaults: {ingress: allow, egress: deny}\n"
	"allow_arp: false\n"
	"allow_nd: false\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: out-web, action: allow, direction: egress, proto: tcp, ports: 443}\n";

static const struct vcase l2_off[] = {
	{ "arp in, disabled", NORMAL, IN, { .eth_proto = ETH_P_ARP_ }, PC_R_DROP_L2 },
	{ "arp out, disabled", NORMAL, OUT, { .eth_proto = ETH_P_ARP_ }, PC_R_DROP_L2 },
	{ "NS in, nd disabled: default allow", NORMAL, IN, { ND(135, "fe80::1", "fe80::2", 255) }, PC_R_PASS_DEFAULT },
	{ "NS out, nd disabled: default deny", NORMAL, OUT, { ND(135, "fe80::2", "fe80::1", 255) }, PC_R_DROP_DEFAULT },
	{ "NS in, nd disabled, lockdown", LOCKDOWN, IN, { ND(135, "fe80::1", "fe80::2", 255) }, PC_R_DROP_LOCKDOWN },
	{ "default in allow", NORMAL, IN, { TCP_IN("100.64.0.1", 9) }, PC_R_PASS_DEFAULT },
	{ "default out deny", NORMAL, OUT, { TCP_OUT("100.64.0.1", 9) }, PC_R_DROP_DEFAULT, .initiated = true },
	{ "out web", NORMAL, OUT, { TCP_OUT("100.64.0.1", 443) }, PC_R_PASS_RULE, R(1) },
	{ "in: flow opened on ingress", NORMAL, IN, { TCP("100.64.0.1", L4, 5555, 7777) }, PC_R_PASS_DEFAULT },
	{ "its reply out: flow", NORMAL, OUT, { TCP(L4, "100.64.0.1", 7777, 5555) }, PC_R_PASS_FLOW, .cont = true },
};

static const char no_defaults_policy[] =
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules: []\n";

static const struct vcase no_defaults[] = {
	{ "omitted defaults: in deny", NORMAL, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_DROP_DEFAULT },
	{ "omitted defaults: out deny", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80) }, PC_R_DROP_DEFAULT, .initiated = true },
	{ "omitted defaults: mgmt", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "omitted defaults: arp allowed", NORMAL, IN, { .eth_proto = ETH_P_ARP_ }, PC_R_PASS_ARP },
	{ "omitted defaults: nd allowed", NORMAL, IN, { ND(136, "fe80::1", "fe80::2", 255) }, PC_R_PASS_ND },
};

/*
 * Management entries bound to interfaces. BPF_PROG_TEST_RUN runs both
 * programs on lo (ifindex 1); pcnothere0 does not exist, so what is bound
 * to it alone matches nowhere: a packet from its address is judged by the
 * rules and defaults, as a spoofed one from another link would be.
 */
static const char mgmt_if_policy[] =
	"interfaces: [lo, pcnothere0]\n"
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {name: on-lo, cidr: 192.0.2.10/32, proto: tcp, ports: 22, interfaces: [lo]}\n"
	"  - {name: elsewhere, cidr: 192.0.2.11/32, proto: tcp, ports: 22, interfaces: [pcnothere0]}\n"
	"  - {name: anywhere, cidr: 192.0.2.12/32, proto: tcp, ports: 22}\n"
	"  - {name: both, cidr: 192.0.2.13/32, proto: tcp, ports: 22, interfaces: [pcnothere0, lo]}\n"
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 22, cidr: 192.0.2.11/32}\n";

static const struct vcase mgmt_if[] = {
	{ "bound to lo, arrives on lo", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "bound to lo, lockdown", LOCKDOWN, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "bound to lo, quarantine", QUARANTINE, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "bound to lo, leaves on lo", NORMAL, OUT, { TCP_OUT("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "bound elsewhere: the allow rule decides", NORMAL, IN, { TCP_IN("192.0.2.11", 22) }, PC_R_PASS_RULE, R(4) },
	{ "bound elsewhere, lockdown: dropped", LOCKDOWN, IN, { TCP_IN("192.0.2.11", 22) }, PC_R_DROP_LOCKDOWN },
	{ "bound elsewhere, quarantine: dropped", QUARANTINE, IN, { TCP_IN("192.0.2.11", 22) }, PC_R_DROP_QUARANTINE },
	{ "bound elsewhere, out: default", NORMAL, OUT, { TCP_OUT("192.0.2.11", 22) }, PC_R_DROP_DEFAULT, .initiated = true },
	{ "unbound: any interface", LOCKDOWN, IN, { TCP_IN("192.0.2.12", 22) }, PC_R_PASS_MGMT, R(2) },
	{ "bound to two, lo one of them", QUARANTINE, IN, { TCP_IN("192.0.2.13", 22) }, PC_R_PASS_MGMT, R(3) },
};

static void mgmt_if_entries(struct env *e, const char *when, int want)
{
	struct pc_mgmt_if_key k, *prev = NULL;
	int n = 0;

	while (!bpf_map_get_next_key(e->maps.mgmt_if, prev, &k)) {
		static struct pc_mgmt_if_key cur;

		cur = k;
		prev = &cur;
		n++;
	}
	ncases++;
	if (n != want)
		fail("mgmt_if", when, "%d pc_mgmt_if entries, expected %d", n, want);
}

static const char audit_policy[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"audit: true\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80}\n"
	"  - {name: blocklist, action: deny, direction: both, cidr: 203.0.113.0/24}\n"
	"  - {name: lock-web, action: allow, direction: ingress, proto: tcp, ports: 8080, modes: [lockdown]}\n";

static const struct vcase audit[] = {
	{ "audit: default drop passes", NORMAL, IN, { TCP_IN("100.64.0.1", 9999) }, PC_R_DROP_DEFAULT, .audit = true },
	{ "audit: deny passes", NORMAL, IN, { TCP_IN("203.0.113.5", 80) }, PC_R_DROP_DENY, R(2), .audit = true },
	{ "audit: deny out passes", NORMAL, OUT, { UDP_OUT("203.0.113.5", 53) }, PC_R_DROP_DENY, R(2), .audit = true, .initiated = true },
	{ "audit: v6 default drop", NORMAL, IN, { TCP6_IN("2001:db8:ffff::1", 1) }, PC_R_DROP_DEFAULT, .audit = true },
	{ "audit: allow unaffected", NORMAL, IN, { TCP_IN("100.64.0.1", 80) }, PC_R_PASS_RULE, R(1) },
	{ "audit: mgmt unaffected", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "audit: lockdown drops", LOCKDOWN, IN, { TCP_IN("100.64.0.1", 9999) }, PC_R_DROP_LOCKDOWN },
	{ "audit: lockdown deny drops", LOCKDOWN, IN, { TCP_IN("203.0.113.5", 80) }, PC_R_DROP_DENY, R(2) },
	{ "audit: quarantine drops", QUARANTINE, OUT, { TCP_OUT("100.64.0.1", 9999) }, PC_R_DROP_QUARANTINE },
	{ "audit: malformed still dropped", NORMAL, IN, { TCP_IN("100.64.0.1", 80), .cut = 40 }, PC_R_DROP_MALFORMED },
	{ "audit: non-ip still dropped", NORMAL, IN, { .eth_proto = 0x88cc }, PC_R_DROP_L2 },
	{ "audit: unknown later fragment, lockdown", LOCKDOWN, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_DROP_FRAGMENT },
	{ "audit: unknown later fragment, normal", NORMAL, IN, FRAGN(TCP_IN("100.64.0.1", 80)), PC_R_DROP_DEFAULT, .audit = true },
	/* an audited pass opens no flow */
	{ "audit: probe in passes", NORMAL, IN, { TCP("100.64.0.1", L4, 5000, 9999) }, PC_R_DROP_DEFAULT, .audit = true },
	{ "audit: its reply out is no flow", NORMAL, OUT, { TCP(L4, "100.64.0.1", 9999, 5000) }, PC_R_PASS_DEFAULT, .cont = true },
};

/*
 * A flow keeps the direction that opened it. Here the egress query opens
 * the flow; replies that some ingress rule happens to pass must not turn
 * it into an ingress-opened flow, or the replies stop being replies once
 * that ingress rule no longer applies.
 */
static const char flowdir_policy[] =
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: dns-out, action: allow, direction: egress, cidr: 203.0.113.53/32, proto: udp, ports: 53, modes: [normal]}\n"	/* 1 */
	"  - {name: resolver-in, action: allow, direction: ingress, cidr: 203.0.113.53/32, modes: [normal, lockdown]}\n";	/* 2 */

static const struct vcase flowdir[] = {
	{ "dns query out, normal", NORMAL, OUT, { UDP(L4, "203.0.113.53", 40000, 53) }, PC_R_PASS_RULE, R(1) },
	{ "reply in, lockdown: passed by resolver-in", LOCKDOWN, IN, { UDP("203.0.113.53", L4, 53, 40000) }, PC_R_PASS_RULE, R(2), .cont = true },
	/* the reply above must not have turned the flow into an ingress one */
	{ "query out, lockdown: dns-out does not apply", LOCKDOWN, OUT, { UDP(L4, "203.0.113.53", 40000, 53) }, PC_R_DROP_LOCKDOWN, .cont = true },
	{ "reply in, quarantine: cut", QUARANTINE, IN, { UDP("203.0.113.53", L4, 53, 40000) }, PC_R_DROP_QUARANTINE, .cont = true },
};

static const char flowdir_late_policy[] =
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: dns-out, action: allow, direction: egress, cidr: 203.0.113.53/32, proto: udp, ports: 53, modes: [normal, lockdown]}\n"	/* 1 */
	"  - {name: resolver-in, action: allow, direction: ingress, cidr: 203.0.113.53/32, modes: [normal]}\n";	/* 2 */

static const struct vcase flowdir_late[] = {
	{ "reply in, normal, >1 s later: resolver-in", NORMAL, IN, { UDP("203.0.113.53", L4, 53, 40000) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "reply in, lockdown: still a reply", LOCKDOWN, IN, { UDP("203.0.113.53", L4, 53, 40000) }, PC_R_PASS_FLOW, .cont = true },
};

static int flowdir_env(struct env *e, const char *policy)
{
	if (env_open(e))
		return -1;
	if (env_apply(e, policy)) {
		ncases++;
		fail("flowdir", "apply", "refused");
		env_close(e);
		return -1;
	}
	return 0;
}

/*
 * A flow keeps the direction that opened it: replies that some ingress
 * rule happens to pass must not turn it into an ingress-opened flow.
 * Else an egress packet would pass as a "reply" once only the ingress
 * rule applies, and real replies stop being replies once it does not.
 */
static void test_flowdir(void)
{
	static const struct vcase open[] = {
		{ "dns query out, normal", NORMAL, OUT, { UDP(L4, "203.0.113.53", 40000, 53) }, PC_R_PASS_RULE, R(1) },
	};
	struct env e;

	if (flowdir_env(&e, flowdir_policy))
		return;
	RUN_TABLE(&e, flowdir);
	env_close(&e);
	/* The same without any mode change: a refresh after a second. */
	if (flowdir_env(&e, flowdir_late_policy))
		return;
	run_table(&e, "flowdir_late", open, 1);
	usleep(1100 * 1000);
	RUN_TABLE(&e, flowdir_late);
	env_close(&e);
}

/* ---- the controller port's budget (bpf/ctl_limit.h) ---- */

static const char ctl_policy[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: udp, ports: 7800}\n"
	"rules:\n"
	"  - {name: ctl-open, action: allow, direction: ingress, proto: udp, ports: 7800, cidr: 198.51.100.0/24}\n";

static __u64 ctl_stat(struct env *e, __u32 k)
{
	return pc_percpu_u64(bpf_map__fd(e->skel->maps.pc_ctl_stats), k);
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* n datagrams to udp/7800 from src; how many passed, elapsed in *secs. */
static int ctl_burst(struct env *e, const char *src, int n, double *secs)
{
	struct pkt p = { UDP(src, L4, 40000, 7800) };
	struct frame f;
	int passed = 0;
	double t0 = mono_s();
	bool pass;

	if (build_frame(&f, &p))
		return -1;
	for (int i = 0; i < n; i++) {
		if (run_frame(e, IN, &f, &pass))
			return -1;
		passed += pass;
	}
	*secs = mono_s() - t0;
	return passed;
}

/* Admitted: the burst, plus what the rate refills over the elapsed time. */
static void ctl_expect(const char *desc, int passed, int burst, int rate,
		       double secs)
{
	int most = burst + (int)(rate * secs) + 1;

	ncases++;
	if (passed < burst || passed > most)
		fail("ctl_budget", desc, "%d admitted, expected %d..%d (%.3f s)",
		     passed, burst, most, secs);
}

/*
 * A source gets PC_CTL_SRC_BURST datagrams and then its rate; management
 * has its interface's bucket; the policy's drops never reach the budget;
 * with no controller port configured nothing is rationed. Counted, not
 * timed: the bound grows with the time the burst took.
 */
static void test_ctl_budget(void)
{
	struct pc_ctl_conf conf = { .port = 7800 };
	int n = PC_CTL_SRC_BURST + 150, passed;
	__u32 zero = 0;
	struct env e;
	double secs;
	__u64 lim;

	if (env_open(&e))
		return;
	if (env_apply(&e, ctl_policy)) {
		ncases++, fail("ctl_budget", "apply", "refused");
		env_close(&e);
		return;
	}
	passed = ctl_burst(&e, "198.51.100.7", n, &secs);
	ncases++;
	if (passed != n)
		fail("ctl_budget", "no port configured", "%d of %d passed", passed, n);
	bpf_map_update_elem(bpf_map__fd(e.skel->maps.pc_ctl_conf), &zero, &conf,
			    BPF_ANY);

	passed = ctl_burst(&e, "198.51.100.7", n, &secs);
	ctl_expect("one source (other class)", passed, PC_CTL_SRC_BURST,
		   PC_CTL_SRC_RATE, secs);
	lim = ctl_stat(&e, PC_CS_SOURCE_LIMITED);
	ncases++;
	if (lim != (__u64)(n - passed) ||
	    ctl_stat(&e, PC_CS_ADMITTED_OTHER) != (__u64)passed)
		fail("ctl_budget", "one source: counters", "source_limited %llu, "
		     "admitted_other %llu, expected %d and %d",
		     (unsigned long long)lim,
		     (unsigned long long)ctl_stat(&e, PC_CS_ADMITTED_OTHER),
		     n - passed, passed);
	/* Management: its interface's bucket (burst PC_CTL_GLOBAL_BURST),
	 * no per-source trickle. */
	passed = ctl_burst(&e, "192.0.2.10", n, &secs);
	ncases++;
	if (passed != n)
		fail("ctl_budget", "management: the interface's bucket",
		     "%d of %d admitted", passed, n);
	ncases++;
	if (ctl_stat(&e, PC_CS_ADMITTED_MGMT) != (__u64)passed)
		fail("ctl_budget", "management: counted as such", "%llu, expected %d",
		     (unsigned long long)ctl_stat(&e, PC_CS_ADMITTED_MGMT), passed);
	lim = ctl_stat(&e, PC_CS_SOURCE_LIMITED);
	passed = ctl_burst(&e, "203.0.113.9", 20, &secs);
	ncases++;
	if (passed || ctl_stat(&e, PC_CS_SOURCE_LIMITED) != lim)
		fail("ctl_budget", "denied by the policy", "%d passed, budget moved "
		     "by %llu", passed,
		     (unsigned long long)(ctl_stat(&e, PC_CS_SOURCE_LIMITED) - lim));
	env_close(&e);
}

/*
 * controller.interfaces: BPF_PROG_TEST_RUN runs on lo (ifindex 1). Bound
 * to lo, datagrams to the port are admitted; bound to another ifindex, or
 * to a named interface missing now (0), they are dropped and counted
 * whichever rule passed them; unbound, admitted on any interface.
 */
static void ctl_if_case(struct env *e, const char *desc, __u32 nbound,
			__u32 ifindex, const char *src, bool want)
{
	struct pc_ctl_conf conf = { .port = 7800, .nbound = nbound,
				    .ifindex = { ifindex } };
	bool mgmt = !strcmp(src, "192.0.2.10");
	__u32 k = want ? (mgmt ? PC_CS_ADMITTED_MGMT : PC_CS_ADMITTED_OTHER) :
		  (mgmt ? PC_CS_WRONG_IFACE_MGMT : PC_CS_WRONG_IFACE_OTHER);
	__u64 before = ctl_stat(e, k);
	__u32 zero = 0;
	double secs;
	int passed;

	bpf_map_update_elem(bpf_map__fd(e->skel->maps.pc_ctl_conf), &zero, &conf,
			    BPF_ANY);
	passed = ctl_burst(e, src, 5, &secs);
	ncases++;
	if (passed != (want ? 5 : 0) || ctl_stat(e, k) - before != 5)
		fail("ctl_iface", desc, "%d of 5 passed, counter %u moved by %llu; "
		     "expected %s, counted", passed, k,
		     (unsigned long long)(ctl_stat(e, k) - before),
		     want ? "all" : "none");
}

static void test_ctl_iface(void)
{
	struct env e;

	if (env_open(&e))
		return;
	if (env_apply(&e, ctl_policy)) {
		ncases++, fail("ctl_iface", "apply", "refused");
		env_close(&e);
		return;
	}
	ctl_if_case(&e, "bound to lo: other admitted", 1, 1, "198.51.100.7", true);
	ctl_if_case(&e, "bound to lo: management admitted", 1, 1, "192.0.2.10", true);
	ctl_if_case(&e, "bound elsewhere: other dropped", 1, 999, "198.51.100.8", false);
	ctl_if_case(&e, "bound elsewhere: management dropped", 1, 999, "192.0.2.10", false);
	ctl_if_case(&e, "bound, interface missing: dropped", 1, 0, "198.51.100.9", false);
	ctl_if_case(&e, "unbound: admitted anywhere", 0, 0, "198.51.100.10", true);
	env_close(&e);
}

/* ---- map full: a policy that does not fit is refused, the old stays ---- */

#define MAPFULL_MAX	16	/* pc_addr4 entries, both slots together */

static const char mapfull_a[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"	/* 0 */
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80}\n"	/* 1 */
	"  - {name: bad, action: deny, direction: both, cidr: 203.0.113.0/24}\n";	/* 2 */

static const char mapfull_small[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"	/* 0 */
	"rules:\n"
	"  - {name: web, action: deny, direction: ingress, proto: tcp, ports: 80}\n";	/* 1 */

/* Under A: what B (below) would change, had it been applied. */
static const struct vcase mapfull_on_a[] = {
	{ "A: web from a host B would deny", NORMAL, IN, { TCP("198.51.100.7", L4, 5000, 80) }, PC_R_PASS_RULE, R(1) },
	{ "A: bad still denied", NORMAL, IN, { TCP("203.0.113.5", L4, 5000, 80) }, PC_R_DROP_DENY, R(2) },
	{ "A: default still deny", NORMAL, IN, { TCP("198.51.100.7", L4, 5000, 81) }, PC_R_DROP_DEFAULT },
	{ "A: mgmt", NORMAL, IN, { TCP("192.0.2.10", L4, 5000, 22) }, PC_R_PASS_MGMT, R(0) },
};

static const struct vcase mapfull_on_small[] = {
	{ "small: web now denied", NORMAL, IN, { TCP("198.51.100.7", L4, 5000, 80) }, PC_R_DROP_DENY, R(1) },
	{ "small: 203.0.113.5 now default", NORMAL, IN, { TCP("203.0.113.5", L4, 5000, 81) }, PC_R_DROP_DEFAULT },
};

static size_t count_keys(int fd, size_t key_size)
{
	char cur[64], next[64];
	void *prev = NULL;
	size_t n = 0;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		memcpy(cur, next, key_size);
		prev = cur;
		n++;
	}
	return n;
}

static void test_mapfull(void)
{
	char big[4096];
	struct pc_settings s;
	size_t len, before, after;
	__u32 gen_a;
	struct env e;

	/* B: A plus 40 /32s of 198.51.100.0/24, more than the trie holds. */
	len = snprintf(big, sizeof(big), "%s  - {name: many, action: deny, "
		       "direction: ingress, cidr: [", mapfull_a);
	for (int i = 1; i <= 40; i++)
		len += snprintf(big + len, sizeof(big) - len, "%s198.51.100.%d",
				i > 1 ? ", " : "", i);
	snprintf(big + len, sizeof(big) - len, "]}\n");

	addr4_max_override = MAPFULL_MAX;
	if (env_open(&e) || env_apply(&e, mapfull_a)) {
		addr4_max_override = 0;
		ncases++;
		fail("mapfull", "setup A", "cannot load or apply");
		if (e.skel)
			env_close(&e);
		return;
	}
	addr4_max_override = 0;
	pc_active_settings(&e.maps, NULL, &s);
	gen_a = s.generation;
	before = count_keys(e.maps.addr4, sizeof(struct pc_addr4_key));

	ncases++;
	if (!env_apply(&e, big))
		fail("mapfull", "apply B", "a policy larger than the map was applied");
	pc_active_settings(&e.maps, NULL, &s);
	ncases++;
	if (s.generation != gen_a)
		fail("mapfull", "generation", "changed from %u to %u", gen_a,
		     s.generation);
	after = count_keys(e.maps.addr4, sizeof(struct pc_addr4_key));
	ncases++;
	if (after != before)
		fail("mapfull", "idle slot emptied", "%zu entries before, %zu after",
		     before, after);
	/* The old policy enforces, whole: B's denials did not leak in. */
	RUN_TABLE(&e, mapfull_on_a);
	/* And the idle slot is usable again. */
	ncases++;
	if (env_apply(&e, mapfull_small))
		fail("mapfull", "apply small", "refused after a failed apply");
	else
		RUN_TABLE(&e, mapfull_on_small);
	env_close(&e);
}

/*
 * Issue 13 item 1: packets from outside must not evict the host's own
 * flows. Both tables cut to FLOOD_MAX entries; the host holds an idle
 * connection out, then web SYNs from FLOOD_SYNS sources (each one a flow
 * the far end opened) go in: the host's reply must still pass.
 */
#define FLOOD_MAX	256
#define FLOOD_SYNS	(8 * FLOOD_MAX)

static void test_flood(void)
{
	static const struct vcase flood_before[] = {
		{ "our syn out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443) }, PC_R_PASS_DEFAULT },
		{ "its syn-ack in", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), SYNACK }, PC_R_PASS_FLOW, .cont = true },
	};
	static const struct vcase flood_after[] = {
		{ "data in after the flood: still our flow", NORMAL, IN, { TCP("100.64.0.1", L4, 443, 40000), PSHACK }, PC_R_PASS_FLOW, .cont = true },
		{ "data out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 40000, 443), PSHACK }, PC_R_PASS_DEFAULT, .cont = true },
	};
	char src[INET_ADDRSTRLEN];
	struct pkt syn = { TCP(src, L4, 50000, 80) };
	int passed = 0;
	struct frame f;
	struct env e;
	bool pass;

	flows_max_override = FLOOD_MAX;
	if (env_open(&e) || env_apply(&e, main_policy)) {
		flows_max_override = 0;
		ncases++;
		fail("flood", "setup", "cannot load or apply");
		if (e.skel)
			env_close(&e);
		return;
	}
	flows_max_override = 0;
	RUN_TABLE(&e, flood_before);
	/* A SYN and an ACK from each: the second packet marks the flood's
	 * entries used, as the victim's are, so the LRU weighs them alike. */
	for (int i = 0; i < 2 * FLOOD_SYNS; i++) {
		snprintf(src, sizeof(src), "198.18.%d.%d", i / 2 / 250,
			 1 + i / 2 % 250);
		syn.tcp_flags = i % 2 ? 0x10 : 0;
		if (!build_frame(&f, &syn) &&
		    !run_frame(&e, PC_DIR_INGRESS, &f, &pass) && pass)
			passed++;
	}
	ncases++;
	/* Count what went in, not what was tried: the flood must be real. */
	if (passed != 2 * FLOOD_SYNS)
		fail("flood", "web packets passed", "%d of %d", passed,
		     2 * FLOOD_SYNS);
	RUN_TABLE(&e, flood_after);
	env_close(&e);
}

/*
 * Issue 13 item 1: evictions counted. Tables of FLOOD_MAX entries; the
 * host opens EV_HOST flows that then idle out and are cut (deleted) by
 * their late replies (an ACK of each refreshing it before), then EV_SYNS
 * sources each open a peer flow (a SYN
 * and an ACK: the ACK refreshes, never creates). What /metrics shows
 * (pc_metrics_snapshot) must be exactly what was sent: the peer table
 * created one entry per SYN that passed, evicted all of them but the live
 * ones (so at least EV_SYNS - FLOOD_MAX); the host table evicted nothing,
 * its entries having gone by deletes.
 */
#define EV_HOST		8
#define EV_SYNS		(4 * FLOOD_MAX)

/* pkt from n sources (*addr 198.18.x.y, or *port base + i), each then
 * again as an ACK if ack: how many passed. */
static int send_n(struct env *e, int dir, struct pkt *p, char *addr,
		  __u16 *port, __u16 base, int n, bool ack)
{
	int passed = 0;
	struct frame f;
	bool pass;

	for (int i = 0; i < n * (ack ? 2 : 1); i++) {
		int who = ack ? i / 2 : i;

		if (addr)
			snprintf(addr, INET_ADDRSTRLEN, "198.18.%d.%d",
				 who / 250, 1 + who % 250);
		if (port)
			*port = base + who;
		if (ack)
			p->tcp_flags = i % 2 ? 0x10 : 0;
		if (!build_frame(&f, p) && !run_frame(e, dir, &f, &pass) &&
		    pass)
			passed++;
	}
	return passed;
}

static void ev_expect(const char *what, __u64 got, __u64 want)
{
	ncases++;
	if (got != want)
		fail("evictions", what, "%llu, want %llu",
		     (unsigned long long)got, (unsigned long long)want);
}

static void test_evictions(void)
{
	char src[INET_ADDRSTRLEN];
	struct pkt out = { TCP(L4, "100.64.0.1", 0, 443) };
	struct pkt late = { TCP("100.64.0.1", L4, 443, 0), SYNACK };
	struct pkt syn = { TCP(src, L4, 50000, 80) };
	struct pc_metrics_snap *s = calloc(1, sizeof(*s));
	int opened, cut, in;
	struct env e;

	flows_max_override = FLOOD_MAX;
	if (!s || env_open(&e) || env_apply(&e, main_policy)) {
		flows_max_override = 0;
		ncases++;
		fail("evictions", "setup", "cannot load or apply");
		if (s && e.skel)
			env_close(&e);
		free(s);
		return;
	}
	flows_max_override = 0;
	opened = send_n(&e, PC_DIR_EGRESS, &out, NULL, &out.sport, 41000,
			EV_HOST, false);
	ev_expect("host syns out passed", opened, EV_HOST);
	/* Two seconds on, an ACK out of each rewrites its flow: a store
	 * that creates no entry. */
	flows_age(e.maps.flows, 2);
	out.tcp_flags = 0x10;
	opened = send_n(&e, PC_DIR_EGRESS, &out, NULL, &out.sport, 41000,
			EV_HOST, false);
	ev_expect("host acks out passed", opened, EV_HOST);
	/* Embryonic for a minute: each late syn-ack finds it idle, cuts it. */
	flows_age(e.maps.flows, 60);
	cut = send_n(&e, PC_DIR_INGRESS, &late, NULL, &late.dport, 41000,
		     EV_HOST, false);
	ev_expect("late syn-acks passed", cut, 0);
	in = send_n(&e, PC_DIR_INGRESS, &syn, src, NULL, 0, EV_SYNS, true);
	ev_expect("web syns and acks passed", in, 2 * EV_SYNS);
	ncases++;
	if (pc_metrics_snapshot(&e.maps, s)) {
		fail("evictions", "snapshot", "%s", strerror(errno));
		goto out;
	}
	ev_expect("host entries created", s->flows_inserted[HOST], EV_HOST);
	ev_expect("host entries live", s->flows_in[HOST], 0);
	ev_expect("host evictions (all deleted)", s->flows_evicted[HOST], 0);
	ev_expect("peer entries created (a SYN each)", s->flows_inserted[PEER],
		  EV_SYNS);
	ev_expect("peer evictions", s->flows_evicted[PEER],
		  EV_SYNS - s->flows_in[PEER]);
	ncases++;
	if (s->flows_in[PEER] > FLOOD_MAX || s->flows_in[PEER] == 0)
		fail("evictions", "peer entries live", "%llu of %d",
		     (unsigned long long)s->flows_in[PEER], FLOOD_MAX);
out:
	env_close(&e);
	free(s);
}

/* ---- kernel dead-man switch ---- */

/* Heartbeats stale: the datapath enforces the action by itself, in any
 * mode the agent left, and tells its drops apart. */
static const struct vcase deadman_lockdown[] = {
	{ "stale: egress default now dropped", NORMAL, OUT, { TCP_OUT("198.51.100.9", 8443) }, PC_R_DROP_DEADMAN },
	{ "stale: ingress default", NORMAL, IN, { TCP_IN("198.51.100.9", 8443) }, PC_R_DROP_DEADMAN },
	{ "stale: mgmt still passes", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
	{ "stale: lockdown rule passes", NORMAL, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_PASS_RULE, R(2) },
	{ "stale: normal-only rule does not", NORMAL, IN, { TCP_IN("198.51.100.9", 80) }, PC_R_DROP_DEADMAN },
	{ "stale: explicit deny keeps its reason", NORMAL, IN, { TCP_IN("203.0.113.5", 80) }, PC_R_DROP_DENY, R(4) },
	{ "stale: quarantine chosen stays quarantine", QUARANTINE, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_DROP_QUARANTINE },
};

static const struct vcase deadman_quarantine[] = {
	{ "stale, action quarantine: lockdown rule dropped", NORMAL, IN, { TCP_IN("198.51.100.7", 22) }, PC_R_DROP_DEADMAN },
	{ "stale, action quarantine: mgmt passes", LOCKDOWN, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_PASS_MGMT, R(0) },
};

static const struct vcase deadman_fresh[] = {
	{ "fresh heartbeat: normal policy", NORMAL, OUT, { TCP_OUT("198.51.100.9", 8443) }, PC_R_PASS_DEFAULT },
	{ "fresh heartbeat: normal-only rule", NORMAL, IN, { TCP_IN("198.51.100.9", 80) }, PC_R_PASS_RULE, R(3) },
};

static void deadman_set(struct env *e, __u64 age_ns, __u64 timeout_ns,
			enum pc_mode action)
{
	struct timespec ts;
	__u64 v[PC_DM_COUNT];

	clock_gettime(CLOCK_BOOTTIME, &ts);
	v[PC_DM_LAST_HB_NS] = ts.tv_sec * 1000000000ULL + ts.tv_nsec - age_ns;
	v[PC_DM_TIMEOUT_NS] = timeout_ns;
	v[PC_DM_ACTION] = action;
	for (__u32 k = 0; k < PC_DM_COUNT; k++)
		bpf_map_update_elem(e->maps.deadman, &k, &v[k], BPF_ANY);
}

static void test_deadman(void)
{
	struct env e;

	if (env_open(&e) || env_apply(&e, main_policy)) {
		ncases++;
		fail("deadman", "setup", "cannot load or apply");
		if (e.skel)
			env_close(&e);
		return;
	}
	/* 2 s since the last heartbeat, timeout 1 s. */
	deadman_set(&e, 2000000000ULL, 1000000000ULL, LOCKDOWN);
	RUN_TABLE(&e, deadman_lockdown);
	deadman_set(&e, 2000000000ULL, 1000000000ULL, QUARANTINE);
	RUN_TABLE(&e, deadman_quarantine);
	/* A heartbeat 0.1 s ago: nothing of the switch shows. */
	deadman_set(&e, 100000000ULL, 1000000000ULL, LOCKDOWN);
	RUN_TABLE(&e, deadman_fresh);
	/* Switched off: however old the heartbeat. */
	deadman_set(&e, 3600000000000ULL, 0, LOCKDOWN);
	RUN_TABLE(&e, deadman_fresh);
	env_close(&e);
}

/* ---- no policy ---- */

static const struct vcase no_policy[] = {
	{ "no policy: mgmt ssh in", NORMAL, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_DROP_NOPOLICY },
	{ "no policy: tcp out", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80) }, PC_R_DROP_NOPOLICY },
	{ "no policy: tcp6 in", NORMAL, IN, { TCP6_IN("2001:db8:2::10", 22) }, PC_R_DROP_NOPOLICY },
	{ "no policy: arp", NORMAL, IN, { .eth_proto = ETH_P_ARP_ }, PC_R_DROP_NOPOLICY },
	{ "no policy: nd", NORMAL, IN, { ND(135, "fe80::1", "fe80::2", 255) }, PC_R_DROP_NOPOLICY },
	{ "no policy: malformed", NORMAL, OUT, { TCP_OUT("100.64.0.1", 80), .cut = 40 }, PC_R_DROP_NOPOLICY },
	{ "no policy: lockdown", LOCKDOWN, IN, { TCP_IN("192.0.2.10", 22) }, PC_R_DROP_NOPOLICY },
};

/* ---- atomic re-apply ---- */

static const char reapply_a[] =
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: alpha, action: allow, direction: ingress, proto: tcp, ports: 1000}\n"
	"  - {name: beta, action: allow, direction: ingress, proto: tcp, ports: 2000}\n";

static const char reapply_b[] =
	"defaults: {ingress: deny, egress: deny}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: beta, action: allow, direction: ingress, proto: tcp, ports: 2000}\n"
	"  - {name: gamma, action: allow, direction: ingress, proto: tcp, ports: 3000}\n"
	"  - {name: alpha, action: deny, direction: ingress, proto: tcp, ports: 3001}\n";

static const struct vcase reapply_on_a[] = {
	{ "A: alpha", NORMAL, IN, { TCP("100.64.0.1", L4, 5000, 1000) }, PC_R_PASS_RULE, R(1) },
	{ "A: alpha again", NORMAL, IN, { TCP("100.64.0.1", L4, 5000, 1000) }, PC_R_PASS_RULE, R(1), .cont = true },
	{ "A: beta", NORMAL, IN, { TCP("100.64.0.1", L4, 5001, 2000) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "A: beta again", NORMAL, IN, { TCP("100.64.0.1", L4, 5001, 2000) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "A: beta third", NORMAL, IN, { TCP("100.64.0.1", L4, 5001, 2000) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "A: gamma port", NORMAL, IN, { TCP("100.64.0.1", L4, 5002, 3000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "A: alpha reply out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 1000, 5000) }, PC_R_PASS_FLOW, .cont = true },
	{ "A: beta reply out", NORMAL, OUT, { TCP(L4, "100.64.0.1", 2000, 5001) }, PC_R_PASS_FLOW, .cont = true },
};

static const struct vcase reapply_on_b[] = {
	{ "B: alpha port now default", NORMAL, IN, { TCP("100.64.0.1", L4, 5000, 1000) }, PC_R_DROP_DEFAULT, .cont = true },
	{ "B: alpha flow cut", NORMAL, OUT, { TCP(L4, "100.64.0.1", 1000, 5000) }, PC_R_DROP_DEFAULT, .cont = true, .initiated = true },
	{ "B: beta flow kept", NORMAL, OUT, { TCP(L4, "100.64.0.1", 2000, 5001) }, PC_R_PASS_FLOW, .cont = true },
	{ "B: beta", NORMAL, IN, { TCP("100.64.0.1", L4, 5001, 2000) }, PC_R_PASS_RULE, R(1), .cont = true },
	{ "B: gamma", NORMAL, IN, { TCP("100.64.0.1", L4, 5002, 3000) }, PC_R_PASS_RULE, R(2), .cont = true },
	{ "B: alpha now deny 3001", NORMAL, IN, { TCP("100.64.0.1", L4, 5003, 3001) }, PC_R_DROP_DENY, R(3), .cont = true },
};

static void check_counter(const char *table, const char *desc, __u64 got,
			  __u64 want)
{
	ncases++;
	if (got != want)
		fail(table, desc, "expected %llu packets, got %llu",
		     (unsigned long long)want, (unsigned long long)got);
}

static void test_reapply(void)
{
	struct pc_counter alpha, beta, c;
	__u32 slot_a, slot_b;
	struct env e;

	if (env_open(&e) || env_apply(&e, reapply_a)) {
		ncases++;
		fail("reapply", "setup A", "cannot load or apply");
		if (e.skel)
			env_close(&e);
		return;
	}
	RUN_TABLE(&e, reapply_on_a);
	slot_a = active_slot(&e);
	pc_rule_counter(&e.maps, slot_a, 1, &alpha);
	pc_rule_counter(&e.maps, slot_a, 2, &beta);
	check_counter("reapply", "A: alpha counter", alpha.packets, 2);
	check_counter("reapply", "A: beta counter", beta.packets, 3);

	if (env_apply(&e, reapply_b)) {
		ncases++;
		fail("reapply", "apply B", "cannot apply");
		env_close(&e);
		return;
	}
	slot_b = active_slot(&e);
	ncases++;
	if (slot_b == slot_a)
		fail("reapply", "slot flip", "active slot still %u", slot_a);
	/* Same-named rules carry their counters over, whatever their index. */
	pc_rule_counter(&e.maps, slot_b, 0, &c);
	check_counter("reapply", "B: mgmt-0 counter carried (0)", c.packets, 0);
	pc_rule_counter(&e.maps, slot_b, 1, &c);
	check_counter("reapply", "B: beta counter carried from A's index 2", c.packets, 3);
	pc_rule_counter(&e.maps, slot_b, 2, &c);
	check_counter("reapply", "B: gamma counter new", c.packets, 0);
	pc_rule_counter(&e.maps, slot_b, 3, &c);
	check_counter("reapply", "B: alpha (now index 3) carried", c.packets, 2);
	RUN_TABLE(&e, reapply_on_b);
	pc_rule_counter(&e.maps, slot_b, 1, &c);
	check_counter("reapply", "B: beta counter after one more", c.packets, 4);

	/* And back to A: alpha passes again, gamma does not. */
	if (env_apply(&e, reapply_a)) {
		ncases++;
		fail("reapply", "apply A again", "cannot apply");
	} else {
		static const struct vcase back[] = {
			{ "A again: alpha", NORMAL, IN, { TCP("100.64.0.1", L4, 5000, 1000) }, PC_R_PASS_RULE, R(1) },
			{ "A again: gamma port", NORMAL, IN, { TCP("100.64.0.1", L4, 5002, 3000) }, PC_R_DROP_DEFAULT },
		};

		ncases++;
		if (active_slot(&e) != slot_a)
			fail("reapply", "slot flip back", "active slot %u", active_slot(&e));
		RUN_TABLE(&e, back);
		pc_rule_counter(&e.maps, slot_a, 1, &c);
		/* 2 from A, 1 deny hit in B (as "alpha"), 1 now */
		check_counter("reapply", "A again: alpha counter", c.packets, 4);
	}
	env_close(&e);
}

/* ---- a long deny list ---- */

static __u64 rng_state;

static __u32 rnd(void)
{
	/* xorshift64*: deterministic, good enough for test data. */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (rng_state * 2685821657736338717ULL) >> 32;
}

static int u32_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

#define BIG_N	10000

static void test_big_denylist(void)
{
	static __u32 addrs[BIG_N];
	size_t cap = BIG_N * 20 + 1024, len = 0;
	char *yaml = malloc(cap), a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
	struct env e;
	__u32 outside = 0;

	if (!yaml)
		return;
	rng_state = 0x5eed0001;
	for (int i = 0; i < BIG_N; i++)
		addrs[i] = 0x0b000000 | (rnd() & 0x00ffffff);	/* 11.0.0.0/8 */
	len += snprintf(yaml + len, cap - len,
			"defaults: {ingress: deny, egress: allow}\n"
			"management:\n"
			"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
			"rules:\n"
			"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80}\n"
			"  - name: big-deny\n"
			"    action: deny\n"
			"    direction: both\n"
			"    cidr: [");
	for (int i = 0; i < BIG_N; i++) {
		__u32 be = htonl(addrs[i]);

		inet_ntop(AF_INET, &be, a, sizeof(a));
		len += snprintf(yaml + len, cap - len, "%s%s/32", i ? ", " : "", a);
	}
	len += snprintf(yaml + len, cap - len, "]\n");

	if (env_open(&e)) {
		ncases++;
		fail("denylist", "load", "cannot load");
		free(yaml);
		return;
	}
	if (env_apply(&e, yaml)) {
		ncases++;
		fail("denylist", "apply 10000 /32s", "cannot apply");
		goto out;
	}
	qsort(addrs, BIG_N, sizeof(addrs[0]), u32_cmp);
	/* An address in the range but not in the list: the first gap. */
	for (int i = 0; i + 1 < BIG_N; i++)
		if (addrs[i + 1] > addrs[i] + 1) {
			outside = addrs[i] + 1;
			break;
		}
	for (int k = 0; k < 8; k++) {
		__u32 in = htonl(addrs[(k * 1237) % BIG_N]);
		__u32 out = htonl(outside);
		struct vcase cs[3] = {};
		char d[3][80];

		inet_ntop(AF_INET, &in, a, sizeof(a));
		inet_ntop(AF_INET, &out, b, sizeof(b));
		snprintf(d[0], sizeof(d[0]), "listed %s, in", a);
		snprintf(d[1], sizeof(d[1]), "listed %s, out, quarantine", a);
		snprintf(d[2], sizeof(d[2]), "unlisted %s, in", b);
		cs[0] = (struct vcase){ d[0], NORMAL, IN, { TCP_IN(a, 80) }, PC_R_DROP_DENY, R(2) };
		cs[1] = (struct vcase){ d[1], QUARANTINE, OUT, { TCP_OUT(a, 80) }, PC_R_DROP_DENY, R(2), .initiated = true };
		cs[2] = (struct vcase){ d[2], NORMAL, IN, { TCP_IN(b, 80) }, PC_R_PASS_RULE, R(1) };
		for (int j = 0; j < 3; j++)
			run_case(&e, "denylist", &cs[j]);
	}
	{
		__u32 lo = htonl(addrs[0] - 1), hi = htonl(addrs[BIG_N - 1] + 1);
		struct vcase cs[2] = {};

		inet_ntop(AF_INET, &lo, a, sizeof(a));
		inet_ntop(AF_INET, &hi, b, sizeof(b));
		cs[0] = (struct vcase){ "below the lowest listed, out", NORMAL, OUT, { TCP_OUT(a, 80) }, PC_R_PASS_DEFAULT };
		run_case(&e, "denylist", &cs[0]);
		cs[1] = (struct vcase){ "above the highest listed, out", NORMAL, OUT, { TCP_OUT(b, 80) }, PC_R_PASS_DEFAULT };
		run_case(&e, "denylist", &cs[1]);
	}
out:
	env_close(&e);
	free(yaml);
}

/* ---- differential check against the model ---- */

static const char *const pool4[] = {
	"10.0.0.1", "10.0.1.1", "10.0.1.200", "10.2.3.4", "192.0.2.10",
	"198.51.100.7", "203.0.113.9", "100.64.0.1",
};
static const char *const pool6[] = {
	"2001:db8::1", "2001:db8:0:1::1", "2001:db8:0:1::c8", "2001:db8:2::10",
	"fd00::1", "fd00:0:0:1::5", "2001:db8:bad::1", "2620:fe::fe",
};
/* The first 8 are IPv4, the last 8 IPv6. */
static const char *const cidrs[] = {
	"10.0.0.0/8", "10.0.1.0/24", "10.0.1.200/32", "10.2.0.0/15",
	"192.0.2.10/32", "198.51.100.0/24", "203.0.113.0/24", "0.0.0.0/1",
	"\"2001:db8::/32\"", "\"2001:db8:0:1::/64\"", "\"2001:db8:0:1::c8/128\"",
	"\"fd00::/8\"", "\"2001:db8:bad::/48\"", "\"2620:fe::fe/128\"",
	"\"::/1\"", "\"2001:db8:2::10/128\"",
};
static const char *const protos[] = { "tcp", "udp", "icmp", "icmpv6", "any" };
static const char *const portsets[] = {
	"22", "80-443", "[53, 1000-2000]", "443", "[1, 65535]", "79-80",
	"[2001, 22]",
};
static const __u16 probe_ports[] = {
	1, 22, 53, 79, 80, 81, 443, 444, 999, 1000, 1500, 2000, 2001, 8080,
	65535,
};
static const char *const mode_words[] = { "normal", "lockdown", "quarantine" };

static size_t gen_policy(char *buf, size_t cap)
{
	size_t len = 0;
	int nm = rnd() % 3, nr = 4 + rnd() % 12;

	len += snprintf(buf + len, cap - len, "defaults: {ingress: %s, egress: %s}\n",
			rnd() % 2 ? "allow" : "deny", rnd() % 2 ? "allow" : "deny");
	len += snprintf(buf + len, cap - len, "management:%s\n",
			nm ? "" : " []");
	for (int i = 0; i < nm; i++) {
		const char *c = cidrs[rnd() % (sizeof(cidrs) / sizeof(cidrs[0]))];

		len += snprintf(buf + len, cap - len,
				"  - {cidr: %s, proto: tcp, ports: %s}\n", c,
				rnd() % 2 ? "22" : "[22, 443]");
	}
	len += snprintf(buf + len, cap - len, "rules:\n");
	for (int i = 0; i < nr; i++) {
		int proto = rnd() % 5, ncidr = rnd() % 3, modes = 1 + rnd() % 7;
		static const char *const dirs[] = { "ingress", "egress", "both" };
		bool allow = rnd() % 3;

		/* Allow rules cannot list quarantine (management only). */
		if (allow)
			modes = 1 + modes % 3;
		len += snprintf(buf + len, cap - len,
				"  - {name: r%d, action: %s, direction: %s, proto: %s",
				i, allow ? "allow" : "deny", dirs[rnd() % 3],
				protos[proto]);
		if (ncidr) {
			len += snprintf(buf + len, cap - len, ", cidr: [");
			for (int j = 0; j < ncidr; j++) {
				/* icmp takes IPv4 CIDRs, icmpv6 IPv6 ones */
				int c = rnd() % 16;

				if (proto == 2)
					c %= 8;
				else if (proto == 3)
					c = 8 + c % 8;
				len += snprintf(buf + len, cap - len, "%s%s",
						j ? ", " : "", cidrs[c]);
			}
			len += snprintf(buf + len, cap - len, "]");
		}
		if (proto <= 1 && rnd() % 3)
			len += snprintf(buf + len, cap - len, ", ports: %s",
					portsets[rnd() % (sizeof(portsets) / sizeof(portsets[0]))]);
		if (rnd() % 4) {
			bool first = true;

			len += snprintf(buf + len, cap - len, ", modes: [");
			for (int m = 0; m < 3; m++)
				if (modes & (1 << m)) {
					len += snprintf(buf + len, cap - len, "%s%s",
							first ? "" : ", ", mode_words[m]);
					first = false;
				}
			len += snprintf(buf + len, cap - len, "]");
		}
		len += snprintf(buf + len, cap - len, "}\n");
	}
	return len;
}

#define DIFF_POLICIES	12
#define DIFF_PROBES	60

static void test_differential(void)
{
	static char yaml[8192];
	int diverged = 0;
	struct env e;

	if (env_open(&e)) {
		ncases++;
		fail("differential", "load", "cannot load");
		return;
	}
	rng_state = 0xd1ff0002;
	for (int pi = 0; pi < DIFF_POLICIES; pi++) {
		gen_policy(yaml, sizeof(yaml));
		if (env_apply(&e, yaml)) {
			ncases++;
			fail("differential", "apply", "generated policy %d refused:\n%s",
			     pi, yaml);
			continue;
		}
		for (int k = 0; k < DIFF_PROBES; k++) {
			enum pc_mode mode = rnd() % 3;
			int dir = rnd() % 2, family = rnd() % 2 ? 6 : 4;
			int pk = rnd() % 4;
			__u16 port = probe_ports[rnd() % (sizeof(probe_ports) / sizeof(probe_ports[0]))];
			const char *remote = family == 4 ? pool4[rnd() % 8] : pool6[rnd() % 8];
			const char *local = family == 4 ? L4 : L6;
			struct pc_model_verdict mv;
			__u8 raddr[16], proto;
			struct pkt p = {};
			struct outcome o;
			struct frame f;
			char desc[160];

			/* tcp, udp, the family's icmp (echo request), gre */
			proto = pk == 0 ? IPP_TCP : pk == 1 ? IPP_UDP :
				pk == 2 ? (family == 4 ? IPP_ICMP : IPP_ICMPV6) : IPP_GRE;
			p.src = dir == IN ? remote : local;
			p.dst = dir == IN ? local : remote;
			p.proto = proto;
			p.sport = 40000;
			p.dport = port;
			p.icmp_type = family == 4 ? 8 : 128;
			p.echo_id = port;
			addr_parse(remote, family, raddr);
			mv = pc_model_decide(&e.pol, mode, dir, family, raddr, proto,
					     proto == IPP_TCP || proto == IPP_UDP ? port : 0);

			env_forget(&e);
			env_mode(&e, mode);
			if (build_frame(&f, &p) || probe(&e, dir, &f, &o, mv.rule)) {
				ncases++;
				fail("differential", "probe", "cannot run");
				continue;
			}
			snprintf(desc, sizeof(desc),
				 "policy %d probe %d: %s %s %s remote %s port %u",
				 pi, k, mode_words[mode], dir ? "egress" : "ingress",
				 proto == IPP_TCP ? "tcp" : proto == IPP_UDP ? "udp" :
				 proto == IPP_GRE ? "gre" : "icmp", remote, port);
			if (!expect("differential", desc, &f, &o, mv.reason, mv.rule,
				    false)) {
				if (!diverged++) {
					printf("  model: %s %s rule %d; policy:\n%s  frame:\n",
					       verdict_str(mv.pass), reason_str(mv.reason),
					       mv.rule, yaml);
					frame_hex(stdout, &f);
				}
			}
		}
	}
	env_mode(&e, NORMAL);
	env_close(&e);
}

/* ---- 128 rules: rule sets spanning both words ---- */

/*
 * 2 management entries + 126 rules, PC_MAX_RULES in all. Rule i (2..126)
 * allows tcp port 1000 + i; rule 127 allows 1000-1200; rule 70 denies
 * 1060-1080 and rule 100 denies 1070-1100. Every port 995..1210 is
 * checked against the model, which scans the rules linearly.
 */
static void test_wide(void)
{
	size_t cap = 128 * 128, len = 0;
	char *yaml = malloc(cap);
	struct env e;

	if (!yaml)
		return;
	len += snprintf(yaml + len, cap - len,
			"defaults: {ingress: deny, egress: allow}\n"
			"management:\n"
			"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
			"  - {cidr: 192.0.2.11/32, proto: tcp, ports: 1064}\n"
			"rules:\n");
	for (int i = 2; i < PC_MAX_RULES; i++) {
		const char *act = "allow", *ports = NULL;
		char pb[32];

		if (i == 70)
			act = "deny", ports = "1060-1080";
		else if (i == 100)
			act = "deny", ports = "1070-1100";
		else if (i == 127)
			ports = "1000-1200";
		if (!ports) {
			snprintf(pb, sizeof(pb), "%d", 1000 + i);
			ports = pb;
		}
		len += snprintf(yaml + len, cap - len,
				"  - {name: w%d, action: %s, direction: ingress, proto: tcp, ports: %s}\n",
				i, act, ports);
	}
	if (env_open(&e)) {
		free(yaml);
		return;
	}
	if (env_apply(&e, yaml)) {
		ncases++;
		fail("wide", "apply 128 rules", "refused");
		goto out;
	}
	{
		static const struct vcase spot[] = {
			{ "rule 2", NORMAL, IN, { TCP_IN("100.64.0.1", 1002) }, PC_R_PASS_RULE, R(2) },
			{ "rule 63 (last of word 0)", NORMAL, IN, { TCP_IN("100.64.0.1", 1063) }, PC_R_DROP_DENY, R(70) },
			{ "rule 59", NORMAL, IN, { TCP_IN("100.64.0.1", 1059) }, PC_R_PASS_RULE, R(59) },
			{ "rule 64 (first of word 1)", NORMAL, IN, { TCP_IN("100.64.0.1", 1064) }, PC_R_DROP_DENY, R(70) },
			{ "mgmt 1 beats deny 70", NORMAL, IN, { TCP_IN("192.0.2.11", 1064) }, PC_R_PASS_MGMT, R(1) },
			{ "deny 70 over deny 100", NORMAL, IN, { TCP_IN("100.64.0.1", 1075) }, PC_R_DROP_DENY, R(70) },
			{ "deny 100", NORMAL, IN, { TCP_IN("100.64.0.1", 1085) }, PC_R_DROP_DENY, R(100) },
			{ "rule 101", NORMAL, IN, { TCP_IN("100.64.0.1", 1101) }, PC_R_PASS_RULE, R(101) },
			{ "rule 126", NORMAL, IN, { TCP_IN("100.64.0.1", 1126) }, PC_R_PASS_RULE, R(126) },
			{ "rule 127 own port", NORMAL, IN, { TCP_IN("100.64.0.1", 1127) }, PC_R_PASS_RULE, R(127) },
			{ "rule 127 (last bit)", NORMAL, IN, { TCP_IN("100.64.0.1", 1150) }, PC_R_PASS_RULE, R(127) },
			{ "rule 127 range end", NORMAL, IN, { TCP_IN("100.64.0.1", 1200) }, PC_R_PASS_RULE, R(127) },
			{ "past every rule", NORMAL, IN, { TCP_IN("100.64.0.1", 1201) }, PC_R_DROP_DEFAULT },
			{ "deny 100 in lockdown", LOCKDOWN, IN, { TCP_IN("100.64.0.1", 1085) }, PC_R_DROP_DENY, R(100) },
			{ "rule 127 in lockdown", LOCKDOWN, IN, { TCP_IN("100.64.0.1", 1150) }, PC_R_DROP_LOCKDOWN },
		};

		RUN_TABLE(&e, spot);
	}
	for (int port = 995; port <= 1210; port++) {
		struct pc_model_verdict mv;
		struct vcase c = {};
		char desc[64];
		__u8 ra[16];

		addr_parse("100.64.0.1", 4, ra);
		mv = pc_model_decide(&e.pol, NORMAL, IN, 4, ra, IPP_TCP, port);
		snprintf(desc, sizeof(desc), "port %d vs model", port);
		c = (struct vcase){ desc, NORMAL, IN, { TCP_IN("100.64.0.1", port) },
				    mv.reason, mv.rule + 1 };
		run_case(&e, "wide", &c);
	}
out:
	env_close(&e);
	free(yaml);
}

/* ---- main ---- */

int main(void)
{
	struct env e;

	libbpf_set_print(libbpf_quiet);
	if (geteuid() != 0)
		fprintf(stderr, "warning: not root, loading BPF will likely fail\n");

	/* No policy at all: everything is dropped. */
	if (env_open(&e))
		return 1;
	RUN_TABLE(&e, no_policy);
	env_close(&e);

	/* The main policy: rules, parsing, fragments, flows. */
	if (env_open(&e))
		return 1;
	if (env_apply(&e, main_policy)) {
		env_close(&e);
		return 1;
	}
	RUN_TABLE(&e, rules_v4);
	RUN_TABLE(&e, rules_v6);
	RUN_TABLE(&e, parsing);
	run_truncations(&e);
	RUN_TABLE(&e, fragments);
	RUN_TABLE(&e, flows);
	RUN_TABLE(&e, related);
	RUN_TABLE(&e, related_outer);
	RUN_TABLE(&e, tcp_cut);
	test_tcp_state(&e);
	RUN_TABLE(&e, nd);
	env_close(&e);

	/* The anomaly signal: denied egress the host initiated. */
	if (env_open(&e))
		return 1;
	if (!env_apply(&e, initiated_policy))
		RUN_TABLE(&e, initiated);
	else
		ncases++, fail("initiated", "apply", "refused");
	env_close(&e);

	/* Settings: ARP/ND off and flipped defaults, omitted defaults, audit. */
	if (!env_open(&e)) {
		if (!env_apply(&e, l2_off_policy))
			RUN_TABLE(&e, l2_off);
		else
			ncases++, fail("l2_off", "apply", "refused");
		if (!env_apply(&e, no_defaults_policy))
			RUN_TABLE(&e, no_defaults);
		else
			ncases++, fail("no_defaults", "apply", "refused");
		if (!env_apply(&e, mgmt_if_policy))
			RUN_TABLE(&e, mgmt_if);
		else
			ncases++, fail("mgmt_if", "apply", "refused");
		/* The live slot's bound set and lo; none for the missing
		 * interface, none left of the slot before. */
		mgmt_if_entries(&e, "after apply", 2);
		if (!env_apply(&e, audit_policy))
			RUN_TABLE(&e, audit);
		else
			ncases++, fail("audit", "apply", "refused");
		mgmt_if_entries(&e, "after a policy without bindings", 0);
		env_close(&e);
	} else {
		return 1;
	}

	test_reapply();
	test_mapfull();
	test_flood();
	test_evictions();
	test_deadman();
	test_flowdir();
	test_ctl_budget();
	test_ctl_iface();
	test_wide();
	test_big_denylist();
	test_differential();

	printf("verdict: %d cases, %d failed\n", ncases, nfailed);
	return nfailed ? 1 : 0;
}

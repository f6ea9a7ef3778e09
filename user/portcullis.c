// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * portcullis: the operator's CLI. Every command works on the pinned maps
 * directly, so it works the same whether portcullisd runs or not.
 */
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "agent_stats.h"
#include "apply.h"
#include "attach.h"
#include "audit.h"
#include "backstop.h"
#include "control.h"
#include "controller.h"
#include "fleet_cli.h"
#include "fsm.h"
#include "guard.h"
#include "metrics.h"
#include "monitor.h"
#include "top.h"
#include "msg.h"
#include "persist.h"
#include "compile.h"
#include "lockout.h"
#include "log.h"
#include "pins.h"
#include "policy.h"
#include "stats.h"

static const char *pin_dir;
static const char *control_path;

#define PC_DEFAULT_AUDIT_LOG	"/var/log/portcullis/audit.jsonl"

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
	const char *help;
};

static void usage(FILE *f);

/* Open the pinned maps, explaining the usual reasons it fails. */
static int open_maps(struct pc_maps *m)
{
	int err;

	if (geteuid() != 0) {
		pr_warn("portcullis must run as root (the maps are root-only)\n");
		return -EPERM;
	}
	err = pc_maps_open_pinned(pin_dir, m);
	if (err == -ENOENT)
		pr_warn("nothing loaded at %s: start portcullisd --policy FILE "
			"(or set --pin-dir / $PORTCULLIS_PIN_DIR)\n", pin_dir);
	else if (err)
		pr_warn("Couldn't open pinned maps in %s: %s\n", pin_dir,
			strerror(-err));
	return err;
}

static const char *action_name(__u8 a)
{
	return a == PC_ACT_ALLOW ? "allow" : "deny";
}

static void format_dirs(__u8 dirs, char *buf, size_t len)
{
	snprintf(buf, len, "%s", dirs == 3 ? "both" :
		 dirs == (1 << PC_DIR_EGRESS) ? "egress" : "ingress");
}

static void format_modes(__u8 modes, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (int m = 0; m < PC_MODE_COUNT; m++)
		if (modes & (1 << m))
			off += snprintf(buf + off, len - off, "%s%s",
					off ? "," : "", pc_mode_name(m));
}

static void format_match(const struct pc_rule_meta *r, char *buf, size_t len)
{
	char ports[40] = "";

	if (r->nports && r->port_lo == r->port_hi)
		snprintf(ports, sizeof(ports), " port %u%s", r->port_lo,
			 r->nports > 1 ? " +more" : "");
	else if (r->nports)
		snprintf(ports, sizeof(ports), " ports %u-%u%s", r->port_lo,
			 r->port_hi, r->nports > 1 ? " +more" : "");
	if (!r->ncidrs)
		snprintf(buf, len, "%s any%s", pc_proto_name(r->proto), ports);
	else if (r->ncidrs == 1)
		snprintf(buf, len, "%s %s%s", pc_proto_name(r->proto), r->cidr,
			 ports);
	else
		snprintf(buf, len, "%s %s +%u more%s", pc_proto_name(r->proto),
			 r->cidr, r->ncidrs - 1, ports);
}

static void print_deadman(const struct pc_maps *m)
{
	__u64 v[PC_DM_COUNT] = {};
	struct timespec ts;
	__s64 age;

	for (__u32 k = 0; k < PC_DM_COUNT; k++)
		bpf_map_lookup_elem(m->deadman, &k, &v[k]);
	if (!v[PC_DM_TIMEOUT_NS]) {
		printf("dead-man:    off\n");
		return;
	}
	clock_gettime(CLOCK_BOOTTIME, &ts);
	age = ts.tv_sec * 1000000000LL + ts.tv_nsec - (__s64)v[PC_DM_LAST_HB_NS];
	printf("dead-man:    on: last heartbeat %.1f s ago, timeout %.1f s, "
	       "action %s%s\n", age / 1e9, v[PC_DM_TIMEOUT_NS] / 1e9,
	       pc_mode_name(v[PC_DM_ACTION]),
	       age > (__s64)v[PC_DM_TIMEOUT_NS] ? " -- TRIPPED: the datapath "
	       "enforces it" : "");
}

/* The egress guard: attached or not, and what it refused. */
static void print_guard(const struct pc_maps *m)
{
	__u64 n[PC_G_COUNT] = {}, total = 0, cg = pc_guard_cgroup(pin_dir);

	pc_guard_counts(m, n);
	for (int r = 0; r < PC_G_COUNT; r++)
		total += n[r];
	if (cg == PC_CGROUP_ROOT_ID)
		printf("guard:       on: PACKET_QDISC_BYPASS and AF_XDP set-up refused");
	else if (cg)
		printf("guard:       PARTIAL: attached below the cgroup root (cgroup "
		       "id %llu), only processes there are covered",
		       (unsigned long long)cg);
	else
		printf("guard:       OFF: raw sockets can be set up to send past "
		       "tc egress (see the agent's log)");
	printf("; refused %llu (", (unsigned long long)total);
	for (int r = 0; r < PC_G_COUNT; r++)
		printf("%s%s %llu", r ? ", " : "", pc_guard_refusal_name(r),
		       (unsigned long long)n[r]);
	printf(")\n");
}

/* The datapath's budget on the controller port (bpf/ctl_limit.h). */
static void print_ctl(const struct pc_metrics_snap *s)
{
	if (!s->ctl_port) {
		printf("controller port: not rationed (no controller)\n");
		return;
	}
	printf("controller port: udp %u, management %d/s per interface, other "
	       "%d/s per source and %d/s in all; admitted %llu management, "
	       "%llu other; dropped %llu by source, %llu management, %llu "
	       "other, %llu on the wrong interface\n", s->ctl_port, PC_CTL_GLOBAL_RATE, PC_CTL_SRC_RATE,
	       PC_CTL_GLOBAL_RATE,
	       (unsigned long long)s->ctl[PC_CS_ADMITTED_MGMT],
	       (unsigned long long)s->ctl[PC_CS_ADMITTED_OTHER],
	       (unsigned long long)s->ctl[PC_CS_SOURCE_LIMITED],
	       (unsigned long long)s->ctl[PC_CS_MGMT_LIMITED],
	       (unsigned long long)s->ctl[PC_CS_OTHER_LIMITED],
	       (unsigned long long)(s->ctl[PC_CS_WRONG_IFACE_MGMT] +
				    s->ctl[PC_CS_WRONG_IFACE_OTHER]));
}

static void print_agent(const struct pc_maps *m)
{
	__u64 v[PC_AS_COUNT] = {};
	char resp[2048];

	for (__u32 k = 0; k < PC_AS_COUNT; k++)
		bpf_map_lookup_elem(m->agent_stats, &k, &v[k]);
	if (pc_control_request(control_path, "status", resp, sizeof(resp))) {
		printf("agent:       not running (no answer on %s)\n", control_path);
	} else {
		/* The agent's own lines, but for its final "ok" line. */
		char *end = strstr(resp, "\nok\n");

		if (end)
			end[1] = '\0';
		fputs(resp, stdout);
	}
	printf("messages:    heartbeats accepted %llu",
	       (unsigned long long)v[PC_AS_HB_ACCEPTED]);
	for (int i = 1; i < PC_MSG_VERDICT_COUNT; i++)
		if (v[PC_AS_HB_REFUSED + i])
			printf(", %s %llu", pc_msg_verdict_name(i),
			       (unsigned long long)v[PC_AS_HB_REFUSED + i]);
	printf("; commands accepted %llu",
	       (unsigned long long)v[PC_AS_CMD_ACCEPTED]);
	for (int i = 1; i < PC_MSG_VERDICT_COUNT; i++)
		if (v[PC_AS_CMD_REFUSED + i])
			printf(", %s %llu", pc_msg_verdict_name(i),
			       (unsigned long long)v[PC_AS_CMD_REFUSED + i]);
	printf(", failed %llu\n", (unsigned long long)v[PC_AS_CMD_FAILED]);
	if (!v[PC_AS_FLEET_KEEPALIVES] && !v[PC_AS_FLEET_ACCEPTED] &&
	    !v[PC_AS_FLEET_HB_ACCEPTED])
		return;
	printf("fleet:       lease keep-alives %llu, lost %llu; signed heartbeats %llu",
	       (unsigned long long)v[PC_AS_FLEET_KEEPALIVES],
	       (unsigned long long)v[PC_AS_FLEET_LEASE_LOST],
	       (unsigned long long)v[PC_AS_FLEET_HB_ACCEPTED]);
	for (int i = 1; i < PC_MSG_VERDICT_COUNT; i++)
		if (v[PC_AS_FLEET_HB_REFUSED + i])
			printf(", %s %llu", pc_msg_verdict_name(i),
			       (unsigned long long)v[PC_AS_FLEET_HB_REFUSED + i]);
	printf("; envelopes accepted %llu",
	       (unsigned long long)v[PC_AS_FLEET_ACCEPTED]);
	for (int i = 0; i < PC_FR_COUNT; i++)
		if (v[PC_AS_FLEET_REFUSED + i])
			printf(", refused %s %llu", fleet_refusal_names[i],
			       (unsigned long long)v[PC_AS_FLEET_REFUSED + i]);
	printf("; policies loaded %llu\n",
	       (unsigned long long)v[PC_AS_FLEET_POLICY_LOADED]);
}

static void print_transitions(const struct pc_maps *m)
{
	struct pc_transition t[PC_MAX_TRANSITIONS] = {};
	int shown = 0;

	for (__u32 k = 0; k < PC_MAX_TRANSITIONS; k++)
		bpf_map_lookup_elem(m->transitions, &k, &t[k]);
	printf("\nlast transitions (newest first):\n");
	for (int n = 0; n < PC_MAX_TRANSITIONS; n++) {
		struct pc_transition *best = NULL;
		char when[32];
		time_t sec;
		struct tm tm;

		for (int k = 0; k < PC_MAX_TRANSITIONS; k++)
			if (t[k].seq && (!best || t[k].seq > best->seq))
				best = &t[k];
		if (!best)
			break;
		sec = best->wall_ms / 1000;
		gmtime_r(&sec, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("  %s  %-10s -> %-10s %-18s secured in %8.3f ms  %s\n", when,
		       pc_mode_name(best->from), pc_mode_name(best->to),
		       pc_trigger_name(best->trigger), best->tts_ns / 1e6,
		       best->detail);
		best->seq = 0;
		shown++;
	}
	if (!shown)
		printf("  none\n");
}

/* The netfilter links pinned here, and what they dropped. */
static void print_backstop(const struct pc_maps *m)
{
	struct pc_counter in = {}, eg = {};
	int n = pc_backstop_count(pin_dir);

	pc_backstop_counter(m, PC_DIR_INGRESS, &in);
	pc_backstop_counter(m, PC_DIR_EGRESS, &eg);
	if (n == PC_BACKSTOP_LINKS)
		printf("backstop:    on: %d netfilter links (IPv4/IPv6 pre-/post-routing)", n);
	else if (!n)
		printf("backstop:    OFF: no netfilter links (a kernel without "
		       "them? see the agent's log): a link re-created while no "
		       "agent runs is unfiltered");
	else
		printf("backstop:    OFF: only %d of %d netfilter links (see the "
		       "agent's log): a link re-created while no agent runs is "
		       "not fully covered", n, PC_BACKSTOP_LINKS);
	printf("; dropped on unenforced links: ingress %llu pkts, egress %llu pkts\n",
	       (unsigned long long)in.packets, (unsigned long long)eg.packets);
}

/* Each opener's table: what an outside flood can fill is the peer's. */
static void print_flows(const struct pc_metrics_snap *s)
{
	printf("flows:       host-opened %llu of %llu (%llu embryonic, %llu evicted), "
	       "peer-opened %llu of %llu (%llu embryonic, %llu evicted)\n",
	       (unsigned long long)s->flows_by[PC_DIR_EGRESS],
	       (unsigned long long)s->flows_max_by[PC_DIR_EGRESS],
	       (unsigned long long)s->flows_embryonic[PC_DIR_EGRESS],
	       (unsigned long long)s->flows_evicted[PC_DIR_EGRESS],
	       (unsigned long long)s->flows_by[PC_DIR_INGRESS],
	       (unsigned long long)s->flows_max_by[PC_DIR_INGRESS],
	       (unsigned long long)s->flows_embryonic[PC_DIR_INGRESS],
	       (unsigned long long)s->flows_evicted[PC_DIR_INGRESS]);
}

static int do_status(int argc, char **argv)
{
	struct pc_settings s;
	struct pc_maps m;
	struct pc_iface ifc;
	__u32 slot, mode, key, next;
	struct pc_metrics_snap *snap;
	int err;

	if (argc > 1) {
		pr_warn("status takes no arguments\n");
		return 2;
	}
	err = open_maps(&m);
	if (err)
		return 1;
	pc_state_get(&m, PC_STATE_MODE, &mode);
	err = pc_active_settings(&m, &slot, &s);
	if (err) {
		pr_warn("Couldn't read settings: %s\n", strerror(-err));
		goto out;
	}
	printf("mode:        %s%s\n", pc_mode_name(mode),
	       mode >= PC_MODE_COUNT ? " (unknown value: enforced as quarantine)" : "");
	if (s.generation)
		printf("policy:      generation %u, %u rules, defaults ingress %s / egress %s%s\n",
		       s.generation, s.nrules,
		       action_name(s.default_action[PC_DIR_INGRESS]),
		       action_name(s.default_action[PC_DIR_EGRESS]),
		       s.flags & PC_F_AUDIT ? ", AUDIT (drops counted, not dropped)" : "");
	else
		printf("policy:      none loaded (everything is dropped)\n");
	printf("neighbours:  arp %s, nd %s\n",
	       s.flags & PC_F_ALLOW_ARP ? "pass" : "drop",
	       s.flags & PC_F_ALLOW_ND ? "pass" : "drop");
	printf("interfaces: ");
	next = 0;
	for (key = 0; key < PC_MAX_IFACES; key++) {
		if (bpf_map_lookup_elem(m.ifaces, &key, &ifc) || !ifc.ifindex)
			continue;
		printf(" %s (ifindex %u, xdp %s, tc egress)", ifc.name,
		       ifc.ifindex, pc_xdp_mode_name(ifc.xdp_mode));
		next++;
	}
	printf("%s\n", next ? "" : " none");
	print_backstop(&m);
	/* Counted in batches (as /metrics does), not key by key. */
	snap = calloc(1, sizeof(*snap));
	if (snap && !pc_metrics_snapshot(&m, snap))
		print_flows(snap);
	else
		printf("flows:       unreadable\n");
	if (snap)
		print_ctl(snap);
	free(snap);
	print_deadman(&m);
	print_guard(&m);
	print_agent(&m);
	print_transitions(&m);
	printf("\n%-20s %12s %14s %12s %14s\n", "reason", "ingress pkts",
	       "ingress bytes", "egress pkts", "egress bytes");
	for (int r = 0; r < PC_REASON_COUNT; r++) {
		struct pc_counter in = {}, eg = {};

		pc_reason_counter(&m, PC_DIR_INGRESS, r, &in);
		pc_reason_counter(&m, PC_DIR_EGRESS, r, &eg);
		printf("%-20s %12llu %14llu %12llu %14llu\n", pc_reason_name(r),
		       (unsigned long long)in.packets, (unsigned long long)in.bytes,
		       (unsigned long long)eg.packets, (unsigned long long)eg.bytes);
	}
out:
	pc_maps_close(&m);
	return err ? 1 : 0;
}

/* Width of the widest match column of the live rules, so columns align. */
static int match_width(const struct pc_maps *m, __u32 slot)
{
	static int width;
	char match[96];

	if (width)
		return width;
	width = 26;
	for (__u32 i = 0; i < PC_MAX_RULES; i++) {
		__u32 key = PC_RULE_KEY(slot, i);
		struct pc_rule_meta r;
		int len;

		if (bpf_map_lookup_elem(m->rule_meta, &key, &r) || !r.used)
			continue;
		format_match(&r, match, sizeof(match));
		len = strlen(match);
		if (len > width)
			width = len;
	}
	return width;
}

static int do_rules(int argc, char **argv)
{
	bool json = false;
	struct pc_settings s;
	struct pc_maps m;
	__u32 slot;
	int err, n = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else {
			pr_warn("rules: unknown option '%s' (only --json)\n", argv[i]);
			return 2;
		}
	}
	err = open_maps(&m);
	if (err)
		return 1;
	err = pc_active_settings(&m, &slot, &s);
	if (err) {
		pr_warn("Couldn't read settings: %s\n", strerror(-err));
		goto out;
	}
	if (json)
		printf("[");
	else
		printf("%-4s %-24s %-6s %-7s %-*s %-26s %12s %14s\n", "#", "name",
		       "action", "dir", match_width(&m, slot), "match", "modes",
		       "packets", "bytes");
	for (__u32 i = 0; s.generation && i < PC_MAX_RULES; i++) {
		__u32 key = PC_RULE_KEY(slot, i);
		struct pc_rule_meta r;
		struct pc_counter c = {};
		char dirs[8], modes[32], match[96];

		if (bpf_map_lookup_elem(m.rule_meta, &key, &r) || !r.used)
			continue;
		pc_rule_counter(&m, slot, i, &c);
		format_dirs(r.dirs, dirs, sizeof(dirs));
		format_modes(r.mgmt ? 7 : r.modes, modes, sizeof(modes));
		format_match(&r, match, sizeof(match));
		if (json) {
			/* Names are [A-Za-z0-9_.-]: nothing to escape. */
			printf("%s\n  {\"index\": %u, \"name\": \"%s\", \"action\": \"%s\", "
			       "\"management\": %s, \"direction\": \"%s\", \"modes\": \"%s\", "
			       "\"match\": \"%s\", \"packets\": %llu, \"bytes\": %llu}",
			       n ? "," : "", i, r.name,
			       r.mgmt ? "allow" : action_name(r.action),
			       r.mgmt ? "true" : "false", dirs, modes, match,
			       (unsigned long long)c.packets,
			       (unsigned long long)c.bytes);
		} else {
			printf("%-4u %-24s %-6s %-7s %-*s %-26s %12llu %14llu\n", i,
			       r.name, r.mgmt ? "mgmt" : action_name(r.action),
			       dirs, match_width(&m, slot), match, modes, (unsigned long long)c.packets,
			       (unsigned long long)c.bytes);
		}
		n++;
	}
	if (json)
		printf("%s]\n", n ? "\n" : "");
	else if (!s.generation)
		printf("(no policy loaded)\n");
out:
	pc_maps_close(&m);
	return err ? 1 : 0;
}

/* Write the mode ourselves: no agent listens. Audited and saved as the
 * agent would, so a reboot does not undo it. */
static int set_mode_directly(enum pc_mode mode, const char *why)
{
	struct pc_transition tr = {}, cur;
	struct pc_persist saved;
	char why_state[160], aside[PATH_MAX];
	const char *state_dir = pc_state_dir(NULL);
	const char *audit = getenv("PORTCULLIS_AUDIT_LOG");
	struct pc_maps m;
	__u32 old, key;
	int err;

	err = open_maps(&m);
	if (err)
		return 1;
	pc_state_get(&m, PC_STATE_MODE, &old);
	/* One word in a pinned map: the datapath enforces it at once. */
	err = pc_mode_write(&m, mode);
	if (err) {
		pr_warn("Couldn't set mode: %s\n", strerror(-err));
		pc_maps_close(&m);
		return 1;
	}
	for (key = 0; key < PC_MAX_TRANSITIONS; key++)
		if (!bpf_map_lookup_elem(m.transitions, &key, &cur) &&
		    cur.seq > tr.seq)
			tr.seq = cur.seq;
	tr.seq++;
	tr.wall_ms = time(NULL) * 1000ULL;
	tr.from = old;
	tr.to = mode;
	tr.trigger = PC_TRIG_BREAK_GLASS;
	snprintf(tr.detail, sizeof(tr.detail), "%s (agent not running)", why);
	key = tr.seq % PC_MAX_TRANSITIONS;
	bpf_map_update_elem(m.transitions, &key, &tr, BPF_ANY);
	pc_maps_close(&m);

	/* An untrusted file is kept aside; what of it parsed (replay state,
	 * the pushed policy) carries over under the operator's mode. */
	if (pc_persist_load(state_dir, &saved, why_state, sizeof(why_state)) ==
		    -EBADMSG &&
	    !pc_persist_set_aside(state_dir, aside, sizeof(aside)))
		pr_warn("warning: state file untrusted (%s): kept as %s\n",
			why_state, aside);
	saved.mode = mode;
	saved.cause = PC_TRIG_BREAK_GLASS;
	saved.since_wall_ms = tr.wall_ms;
	if (pc_persist_save(state_dir, &saved))
		pr_warn("warning: could not save the mode in %s/state: a reboot "
			"restores the previous one\n", state_dir);
	pc_audit_open(audit && *audit ? audit : PC_DEFAULT_AUDIT_LOG);
	pc_audit("transition", "from", pc_mode_name(old), "to",
		 pc_mode_name(mode), "trigger", "break_glass", "detail",
		 tr.detail, PC_AUDIT_END);
	pc_audit_close();
	printf("mode: %s -> %s (agent not running: map written directly)\n",
	       pc_mode_name(old), pc_mode_name(mode));
	return 0;
}

/* Through the agent when it runs (it audits, persists and times it). */
static int set_mode(enum pc_mode mode, const char *req)
{
	char resp[1024];
	int err;

	if (geteuid() != 0) {
		pr_warn("portcullis must run as root\n");
		return 1;
	}
	err = pc_control_request(control_path, req, resp, sizeof(resp));
	if (err == -ENOENT || err == -ECONNREFUSED)
		return set_mode_directly(mode, req);
	if (err) {
		pr_warn("agent at %s did not answer: %s\n", control_path,
			strerror(-err));
		return 1;
	}
	fputs(resp, stdout);
	return strncmp(resp, "ok", 2) ? 1 : 0;
}

static int do_mode(int argc, char **argv)
{
	enum pc_mode mode;
	char req[64];

	if (argc != 2 || pc_mode_parse(argv[1], &mode)) {
		pr_warn("usage: portcullis mode normal|lockdown|quarantine\n");
		return 2;
	}
	snprintf(req, sizeof(req), "mode %s", argv[1]);
	return set_mode(mode, req);
}

static int do_shortcut(int argc, char **argv)
{
	enum pc_mode mode = !strcmp(argv[0], "lockdown") ? PC_MODE_LOCKDOWN :
			    !strcmp(argv[0], "quarantine") ? PC_MODE_QUARANTINE :
							     PC_MODE_NORMAL;
	char req[64];

	if (argc != 1) {
		pr_warn("%s takes no arguments\n", argv[0]);
		return 2;
	}
	if (mode == PC_MODE_NORMAL)
		snprintf(req, sizeof(req), "release");
	else
		snprintf(req, sizeof(req), "mode %s", pc_mode_name(mode));
	return set_mode(mode, req);
}

/* What applying p would change, by rule name. */
static void dry_run_report(const struct pc_maps *m, const struct pc_policy *p,
			   const struct pc_compiled *c)
{
	struct pc_settings s;
	__u32 slot;
	int changes = 0;

	if (pc_active_settings(m, &slot, &s) || !s.generation) {
		printf("no policy loaded: all %zu rules would be added\n", p->nrules);
		return;
	}
	for (int d = 0; d < PC_DIR_COUNT; d++)
		if (s.default_action[d] != c->settings.default_action[d]) {
			printf("~ default %s: %s -> %s\n", pc_dir_name(d),
			       action_name(s.default_action[d]),
			       action_name(c->settings.default_action[d]));
			changes++;
		}
	if (s.flags != c->settings.flags) {
		printf("~ flags: audit %d->%d, arp %d->%d, nd %d->%d\n",
		       !!(s.flags & PC_F_AUDIT), !!(c->settings.flags & PC_F_AUDIT),
		       !!(s.flags & PC_F_ALLOW_ARP), !!(c->settings.flags & PC_F_ALLOW_ARP),
		       !!(s.flags & PC_F_ALLOW_ND), !!(c->settings.flags & PC_F_ALLOW_ND));
		changes++;
	}
	/* Old rules: removed or changed. */
	for (__u32 i = 0; i < PC_MAX_RULES; i++) {
		__u32 key = PC_RULE_KEY(slot, i);
		struct pc_rule_meta old;
		int found = -1;

		if (bpf_map_lookup_elem(m->rule_meta, &key, &old) || !old.used)
			continue;
		for (int j = 0; j < PC_MAX_RULES; j++)
			if (c->meta[j].used && !strcmp(c->meta[j].name, old.name))
				found = j;
		if (found < 0) {
			printf("- %s\n", old.name);
			changes++;
		} else if (memcmp(&old, &c->meta[found], sizeof(old)) || found != (int)i) {
			printf("~ %s%s\n", old.name,
			       found != (int)i ? " (moved: precedence changes)" : "");
			changes++;
		}
	}
	for (size_t j = 0; j < p->nrules; j++) {
		bool known = false;

		for (__u32 i = 0; i < PC_MAX_RULES && !known; i++) {
			__u32 key = PC_RULE_KEY(slot, i);
			struct pc_rule_meta old;

			if (!bpf_map_lookup_elem(m->rule_meta, &key, &old) &&
			    old.used && !strcmp(old.name, c->meta[j].name))
				known = true;
		}
		if (!known) {
			printf("+ %s\n", c->meta[j].name);
			changes++;
		}
	}
	printf("%d change%s (generation %u is live)\n", changes,
	       changes == 1 ? "" : "s", s.generation);
}

static int do_apply(int argc, char **argv)
{
	bool dry_run = false, force = false;
	const char *path = NULL;
	struct pc_policy p = {};
	struct pc_compiled c = {};
	struct pc_maps m;
	char err[512], why[512];
	__u32 gen;
	int ret, lock;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--dry-run"))
			dry_run = true;
		else if (!strcmp(argv[i], "--force"))
			force = true;
		else if (argv[i][0] == '-' || path) {
			pr_warn("usage: portcullis apply FILE [--dry-run] [--force]\n");
			return 2;
		} else
			path = argv[i];
	}
	if (!path) {
		pr_warn("usage: portcullis apply FILE [--dry-run] [--force]\n");
		return 2;
	}
	ret = pc_policy_load_file(path, &p, err, sizeof(err));
	if (ret) {
		pr_warn("policy refused: %s\n", err);
		return 1;
	}
	if (pc_lockout_check(&p, getenv("SSH_CONNECTION"), why, sizeof(why))) {
		if (!force && !dry_run) {
			pr_warn("policy refused (anti-lockout): %s; use --force to apply anyway\n",
				why);
			pc_policy_free(&p);
			return 1;
		}
		printf("anti-lockout: %s%s\n", why, dry_run ? "" : " (overridden by --force)");
	}
	ret = pc_compile(&p, &c, err, sizeof(err));
	if (ret) {
		pr_warn("policy refused: %s\n", err);
		pc_policy_free(&p);
		return 1;
	}
	if (open_maps(&m)) {
		ret = -1;
		goto out;
	}
	if (dry_run) {
		dry_run_report(&m, &p, &c);
		printf("dry run: nothing changed\n");
		goto out_maps;
	}
	lock = pc_lock(pin_dir);
	if (lock < 0) {
		pr_warn("Couldn't lock %s: %s\n", pin_dir, strerror(-lock));
		ret = lock;
		goto out_maps;
	}
	ret = pc_apply(&m, &c, &gen, err, sizeof(err));
	pc_unlock(lock);
	if (ret)
		pr_warn("policy not applied, previous policy still enforcing: %s\n", err);
	else
		printf("applied %s: generation %u, %zu rules\n", path, gen, p.nrules);
	if (!ret && p.nifaces)
		printf("note: interfaces are attached by portcullisd; send it SIGHUP "
		       "to follow interface changes\n");
out_maps:
	pc_maps_close(&m);
out:
	pc_compiled_free(&c);
	pc_policy_free(&p);
	return ret ? 1 : 0;
}

static int do_detach(int argc, char **argv)
{
	const char *audit = getenv("PORTCULLIS_AUDIT_LOG");
	struct pc_persist saved;
	bool force = false;
	int err;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--force")) {
			pr_warn("usage: portcullis detach [--force]\n");
			return 2;
		}
		force = true;
	}
	if (geteuid() != 0) {
		pr_warn("portcullis must run as root\n");
		return 1;
	}
	err = pc_detach_all(pin_dir, force);
	if (err == -ENOENT) {
		pr_warn("nothing loaded at %s\n", pin_dir);
		return 1;
	}
	if (err) {
		pr_warn("detach incomplete: %s; pins kept so you can retry\n",
			strerror(-err));
		return 1;
	}
	printf("detached: enforcement removed, pins under %s deleted\n", pin_dir);
	/* Nothing enforces any more: a saved mode must not come back on the
	 * next start as if it still held. */
	if (!pc_persist_load(pc_state_dir(NULL), &saved, NULL, 0)) {
		saved.mode = PC_MODE_NORMAL;
		saved.cause = PC_TRIG_BREAK_GLASS;
		pc_persist_save(pc_state_dir(NULL), &saved);
	}
	pc_audit_open(audit && *audit ? audit : PC_DEFAULT_AUDIT_LOG);
	pc_audit("detach", "pin_dir", pin_dir, PC_AUDIT_END);
	pc_audit_close();
	return 0;
}

static int do_monitor(int argc, char **argv)
{
	return pc_monitor_main(argc, argv, pin_dir);
}

static int do_top(int argc, char **argv)
{
	return pc_top_main(argc, argv, pin_dir);
}

static int do_help(int argc, char **argv)
{
	usage(stdout);
	return 0;
}

static const struct cmd cmds[] = {
	{ "status", do_status, "", "mode, policy, interfaces, counters per reason" },
	{ "rules", do_rules, "[--json]", "each rule with its packets and bytes" },
	{ "mode", do_mode, "normal|lockdown|quarantine", "switch mode (through the agent, else directly)" },
	{ "lockdown", do_shortcut, "", "mode lockdown" },
	{ "quarantine", do_shortcut, "", "mode quarantine" },
	{ "release", do_shortcut, "", "back to normal: local break-glass, audited" },
	{ "monitor", do_monitor, "[--json] [--reason R] [--rule N] [--addr CIDR]", "stream sampled drops" },
	{ "top", do_top, "[--interval S] [--iterations N]", "live view of the busiest rules and drops" },
	{ "apply", do_apply, "FILE [--dry-run] [--force]", "replace the policy atomically" },
	{ "detach", do_detach, "[--force]", "remove programs and pins: enforcement stops" },
	{ "keygen", pc_keygen_main, "--out FILE", "new controller key pair" },
	{ "controller", pc_controller_main, "heartbeat|send|replay ...", "act as the controller (see portcullis controller --help)" },
	{ "fleet", pc_fleet_main, "quarantine|lockdown|release|policy|status|get ...", "fleet control through etcd (see portcullis fleet --help)" },
	{ "help", do_help, "", "this help" },
	{},
};

static void usage(FILE *f)
{
	fprintf(f, "Usage: portcullis [--pin-dir DIR] COMMAND [ARGS]\n\nCommands:\n");
	for (const struct cmd *c = cmds; c->name; c++)
		fprintf(f, "  %-8s %-30s %s\n", c->name, c->args, c->help);
	fprintf(f, "\nThe pin dir defaults to $PORTCULLIS_PIN_DIR, else "
		PC_DEFAULT_PIN_DIR ".\nSee portcullis(8) in README.md.\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *dir = NULL;
	int c;

	/* Options before the command only; the command parses the rest. */
	while ((c = getopt_long(argc, argv, "+d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'd': dir = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	pin_dir = pc_pin_dir(dir);
	control_path = pc_control_path(NULL);
	if (pc_crypto_init()) {
		pr_warn("libsodium failed to initialise\n");
		return 1;
	}
	for (const struct cmd *cmd = cmds; cmd->name; cmd++)
		if (!strcmp(cmd->name, argv[optind]))
			return cmd->fn(argc - optind, argv + optind);
	pr_warn("unknown command '%s'\n\n", argv[optind]);
	usage(stderr);
	return 2;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Differential verification: random policies and frame sequences run
 * through the real programs (BPF_PROG_TEST_RUN: xdp_ingress, tc_egress)
 * and through the reference datapath in ref.c; verdict, reason counter
 * and rule counter must agree on every frame. A divergence is shrunk
 * (earlier events dropped while it persists) and printed as a
 * reproducer: the policy YAML, mode switches, frames as hex.
 *
 * Nothing is pinned (every map's pin path is cleared before load), so a
 * running agent is never touched. Deterministic for a given --seed.
 *
 *   verify [--seed N] [--frames N] [--policies N] [--keep-going] [-v]
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "portcullis.skel.h"
#include "policy.h"
#include "compile.h"
#include "apply.h"
#include "pins.h"
#include "stats.h"
#include "gen.h"
#include "ref.h"

#define XDP_DROP_	1
#define XDP_PASS_	2
#define TC_ACT_OK_	0
#define TC_ACT_SHOT_	2

#define YAML_MAX	(64 * 1024)
#define NREASON_KEYS	(PC_DIR_COUNT * PC_REASON_COUNT)
#define NRULE_KEYS	(PC_SLOTS * PC_MAX_RULES)

static const struct verify_opts {
	__u64 seed;
	long frames;
	long policies;
} verify_defaults = {
	.seed = 1,
	.frames = 2000,
	.policies = 20,
};

static bool verbose;

/*
 * Divergences traced to datapath bugs (see the report that introduced
 * this tool). Each is a divergence unless named with --tolerate, which
 * counts it instead, so a long run can look past a bug awaiting its fix.
 */
enum known_bug {
	KNOWN_FRAG_RULE = 0,	/* stale later-fragment rule index after reload */
	KNOWN_ECHO_ID0,		/* ICMP echo id 0 flow admits any ICMP: the
				 * generator then makes no echo with id 0 */
	KNOWN_COUNT,
};

static const char *const known_names[KNOWN_COUNT] = {
	[KNOWN_FRAG_RULE] = "frag-rule",
	[KNOWN_ECHO_ID0] = "echo-id-zero",
};

static unsigned int tolerate;		/* bit per enum known_bug */
static long tolerated[KNOWN_COUNT];

/* ---- the loaded programs ---- */

struct env {
	struct portcullis_bpf *skel;
	struct pc_maps maps;
	int prog[PC_DIR_COUNT];
	int ncpus;
	void *keys;		/* batch lookup buffers */
	struct pc_counter *vals;
	__u32 slot;		/* active policy slot */
};

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG && !verbose)
		return 0;
	return level == LIBBPF_WARN || verbose ? vfprintf(stderr, fmt, ap) : 0;
}

static int env_open(struct env *e)
{
	struct bpf_map *map;
	int err;

	memset(e, 0, sizeof(*e));
	e->ncpus = libbpf_num_possible_cpus();
	if (e->ncpus <= 0) {
		fprintf(stderr, "counting possible CPUs: %s\n", strerror(-e->ncpus));
		return e->ncpus ? e->ncpus : -EINVAL;
	}
	e->keys = calloc(NRULE_KEYS, sizeof(__u32));
	e->vals = calloc((size_t)NRULE_KEYS * e->ncpus, sizeof(*e->vals));
	if (!e->keys || !e->vals)
		return -ENOMEM;
	e->skel = portcullis_bpf__open();
	if (!e->skel) {
		err = -errno;
		fprintf(stderr, "opening the skeleton: %s\n", strerror(errno));
		return err;
	}
	/* No pinning: never reuse or leave behind an agent's maps. */
	bpf_object__for_each_map(map, e->skel->obj) {
		err = bpf_map__set_pin_path(map, NULL);
		if (err) {
			fprintf(stderr, "clearing pin path of map '%s': %s(%d)\n",
				bpf_map__name(map), strerror(-err), err);
			return err;
		}
	}
	err = portcullis_bpf__load(e->skel);
	if (err) {
		fprintf(stderr, "loading the skeleton: %s(%d)\n",
			strerror(-err), err);
		return err;
	}
	pc_maps_from_skel(e->skel, &e->maps);
	e->prog[PC_DIR_INGRESS] = bpf_program__fd(e->skel->progs.xdp_ingress);
	e->prog[PC_DIR_EGRESS] = bpf_program__fd(e->skel->progs.tc_egress);
	return 0;
}

static void env_close(struct env *e)
{
	portcullis_bpf__destroy(e->skel);
	free(e->keys);
	free(e->vals);
	memset(e, 0, sizeof(*e));
}

/* Collect, then delete: deleting while walking can skip keys. */
static void map_clear(int fd, size_t key_size)
{
	char cur[64], next[64], *keys = NULL;
	size_t n = 0, cap = 0;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		if (n == cap) {
			char *nk;

			cap = cap ? cap * 2 : 256;
			nk = realloc(keys, cap * key_size);
			if (!nk)
				break;
			keys = nk;
		}
		memcpy(keys + n++ * key_size, next, key_size);
		memcpy(cur, next, key_size);
		prev = cur;
	}
	for (size_t i = 0; i < n; i++)
		bpf_map_delete_elem(fd, keys + i * key_size);
	free(keys);
}

/* Per-CPU counters of keys first..first+nkeys-1, summed, in one batch
 * lookup (the batch cursor is the key before the first one wanted). */
static int counters_read(struct env *e, int fd, __u32 first, __u32 nkeys,
			 struct pc_counter *out)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = nkeys, batch = 0, prev = first - 1;
	int err;

	err = bpf_map_lookup_batch(fd, first ? &prev : NULL, &batch, e->keys,
				   e->vals, &count, &opts);
	if (err && errno != ENOENT)
		return -errno;
	if (count != nkeys)
		return -EIO;
	for (__u32 k = 0; k < nkeys; k++) {
		struct pc_counter sum = {};

		for (int c = 0; c < e->ncpus; c++) {
			sum.packets += e->vals[(size_t)k * e->ncpus + c].packets;
			sum.bytes += e->vals[(size_t)k * e->ncpus + c].bytes;
		}
		out[k] = sum;
	}
	return 0;
}

struct snap {
	struct pc_counter reason[NREASON_KEYS];
	struct pc_counter rule[NRULE_KEYS];
};

/* The reasons, and the active slot's rules: the datapath counts rules in
 * the slot it decided by, so the other slot cannot move between applies. */
static int snap_read(struct env *e, struct snap *s)
{
	int err = counters_read(e, e->maps.reason_stats, 0, NREASON_KEYS,
				s->reason);

	if (err)
		return err;
	memset(s->rule, 0, sizeof(s->rule));
	return counters_read(e, e->maps.rule_stats, e->slot * PC_MAX_RULES,
			     PC_MAX_RULES, s->rule + e->slot * PC_MAX_RULES);
}

/* 0 and *pass, 1 if the kernel refused to run the frame, or -errno. */
static int run_frame(struct env *e, int dir, const struct gframe *f, bool *pass)
{
	struct __sk_buff skb = {};
	LIBBPF_OPTS(bpf_test_run_opts, topts,
		.data_in = f->buf,
		.data_size_in = f->len,
		.repeat = 1,
	);

	if (dir == PC_DIR_EGRESS) {
		topts.ctx_in = &skb;
		topts.ctx_size_in = sizeof(skb);
	}
	if (bpf_prog_test_run_opts(e->prog[dir], &topts))
		return errno == EINVAL ? 1 : -errno;
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
	fprintf(stderr, "unexpected return value %u from %s\n", topts.retval,
		dir ? "tc_egress" : "xdp_ingress");
	return -EPROTO;
}

/* ---- a sequence of events ---- */

enum ev_kind { EV_APPLY, EV_MODE, EV_FRAME };

struct event {
	enum ev_kind kind;
	__u32 arg;		/* EV_APPLY: policy 0/1; EV_MODE: the word */
	struct gframe f;	/* EV_FRAME */
};

/* What one frame did, or must do. */
struct outcome {
	bool pass;
	int reason;		/* counted reason other than pass_audit, or -1 */
	bool audit;		/* pass_audit counted too */
	int rule;		/* rule counted (slot-relative), or -1 */
	int rule_by_index;	/* reference: see enum known_bug */
	char odd[96];		/* anything else that moved, or "" */
};

struct run {
	struct env env;
	struct ref ref;
	struct pc_policy pol[2];
	struct pc_compiled comp[2];
	char *yaml[2];
	bool have[2];
	struct snap before;
	bool before_ok;
	/* statistics */
	long frames, refused, applies;
	long reasons[PC_REASON_COUNT];
	long audits;
	long high_rule;		/* decided by a rule in the second mask word */
	double apply_secs;	/* in pc_apply (RCU waits, slot clearing) */
};

static int do_apply(struct run *r, int which)
{
	struct timespec a0, a1;
	char err[256];
	__u32 gen;
	int ret;

	clock_gettime(CLOCK_MONOTONIC, &a0);
	ret = pc_apply(&r->env.maps, &r->comp[which], &gen, err, sizeof(err));
	clock_gettime(CLOCK_MONOTONIC, &a1);
	r->apply_secs += (a1.tv_sec - a0.tv_sec) + (a1.tv_nsec - a0.tv_nsec) / 1e9;
	if (ret) {
		fprintf(stderr, "applying policy %c: %s\n", 'A' + which, err);
		return ret;
	}
	ret = pc_state_get(&r->env.maps, PC_STATE_ACTIVE_SLOT, &r->env.slot);
	if (ret)
		return ret;
	r->env.slot &= 1;
	ref_set_policy(&r->ref, &r->pol[which], gen);
	r->before_ok = false;
	r->applies++;
	return 0;
}

static int do_mode(struct run *r, __u32 mode)
{
	int ret = pc_mode_write(&r->env.maps, mode);

	if (ret)
		fprintf(stderr, "setting mode %u: %s\n", mode, strerror(-ret));
	ref_set_mode(&r->ref, mode);
	return ret;
}

/* Forget flows and fragments on both sides, mode normal, no policy
 * change: the start of a sequence or of a replay. The model has no clock:
 * a sequence must stay well inside the shortest TCP lifetime the datapath
 * keeps (5 s, a SYN unanswered); one takes about a second. */
static int reset(struct run *r)
{
	map_clear(r->env.maps.flows, sizeof(struct pc_flow_key));
	map_clear(r->env.maps.flows_peer, sizeof(struct pc_flow_key));
	map_clear(r->env.maps.frags, sizeof(struct pc_frag_key));
	ref_reset(&r->ref);
	return do_mode(r, PC_MODE_NORMAL);
}

static void outcome_of(const struct run *r, int dir, const struct gframe *f,
		       bool pass, const struct snap *a, const struct snap *b,
		       struct outcome *o)
{
	size_t n = 0;

	memset(o, 0, sizeof(*o));
	o->pass = pass;
	o->reason = o->rule = -1;
	for (int k = 0; k < NREASON_KEYS; k++) {
		__u64 dp = b->reason[k].packets - a->reason[k].packets;
		__u64 db = b->reason[k].bytes - a->reason[k].bytes;
		int kdir = k / PC_REASON_COUNT, reason = k % PC_REASON_COUNT;

		if (!dp && !db)
			continue;
		if (kdir != dir || dp != 1 || db != f->len ||
		    (reason == PC_R_PASS_AUDIT ? o->audit : o->reason >= 0)) {
			n += snprintf(o->odd + n, sizeof(o->odd) - n,
				      " %s/%s+%llu(%lluB)", kdir ? "egress" : "ingress",
				      pc_reason_name(reason),
				      (unsigned long long)dp, (unsigned long long)db);
			if (n >= sizeof(o->odd))
				n = sizeof(o->odd) - 1;
			continue;
		}
		if (reason == PC_R_PASS_AUDIT)
			o->audit = true;
		else
			o->reason = reason;
	}
	if (o->audit && o->reason < 0) {
		o->reason = PC_R_PASS_AUDIT;
		o->audit = false;
	}
	for (int k = 0; k < NRULE_KEYS; k++) {
		__u64 dp = b->rule[k].packets - a->rule[k].packets;

		if (!dp)
			continue;
		if (dp == 1 && (__u32)(k / PC_MAX_RULES) == r->env.slot &&
		    o->rule < 0) {
			o->rule = k % PC_MAX_RULES;
			continue;
		}
		n += snprintf(o->odd + n, sizeof(o->odd) - n, " rule %d/%d+%llu",
			      k / PC_MAX_RULES, k % PC_MAX_RULES,
			      (unsigned long long)dp);
		if (n >= sizeof(o->odd))
			n = sizeof(o->odd) - 1;
	}
}

static bool same(const struct outcome *x, const struct outcome *y);

static void expected_of(struct ref_verdict v, struct outcome *o)
{
	memset(o, 0, sizeof(*o));
	o->pass = v.pass;
	o->reason = v.reason;
	o->audit = v.audit;
	o->rule = v.rule;
	o->rule_by_index = v.rule_by_index;
}

/* A divergence a known bug explains and --tolerate names, or -1. */
static int known(const struct outcome *got, const struct outcome *want)
{
	struct outcome w = *want;

	w.rule = want->rule_by_index;
	if (want->rule != want->rule_by_index &&
	    (tolerate & (1U << KNOWN_FRAG_RULE)) && same(got, &w))
		return KNOWN_FRAG_RULE;
	return -1;
}

static bool same(const struct outcome *x, const struct outcome *y)
{
	return x->pass == y->pass && x->reason == y->reason &&
	       x->audit == y->audit && x->rule == y->rule && !x->odd[0] &&
	       !y->odd[0];
}

static void outcome_str(const struct outcome *o, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s%s rule %d%s%s", o->pass ? "PASS" : "DROP",
		 o->reason >= 0 ? pc_reason_name(o->reason) : "(no reason)",
		 o->audit ? "+pass_audit" : "", o->rule,
		 o->odd[0] ? ", also moved:" : "", o->odd);
}

static void print_hex(const struct gframe *f);
static void print_pkt(const struct gframe *f);

/*
 * Run one event on both sides. For a frame: 0 agree, 1 diverge (with
 * *got and *want), or -errno. TC refuses some frames cut inside the IP
 * header: those run as ingress (XDP) instead, the event says so.
 */
static int step(struct run *r, struct event *ev, struct outcome *got,
		struct outcome *want)
{
	struct snap after;
	bool pass;
	int ret;

	if (ev->kind == EV_APPLY)
		return do_apply(r, ev->arg);
	if (ev->kind == EV_MODE)
		return do_mode(r, ev->arg);
	if (!r->before_ok) {
		ret = snap_read(&r->env, &r->before);
		if (ret) {
			fprintf(stderr, "reading counters: %s\n", strerror(-ret));
			return ret;
		}
		r->before_ok = true;
	}
	ret = run_frame(&r->env, ev->f.dir, &ev->f, &pass);
	if (ret == 1 && ev->f.dir == PC_DIR_EGRESS) {
		r->refused++;
		if (verbose) {
			printf("tc_egress refused %u bytes: ", ev->f.len);
			print_hex(&ev->f);
			print_pkt(&ev->f);
		}
		ev->f.dir = PC_DIR_INGRESS;
		ret = run_frame(&r->env, ev->f.dir, &ev->f, &pass);
	}
	if (ret) {
		fprintf(stderr, "test_run (%s, %u bytes): %s\n",
			ev->f.dir ? "tc_egress" : "xdp_ingress", ev->f.len,
			ret == 1 ? "refused" : strerror(-ret));
		return ret == 1 ? -EINVAL : ret;
	}
	ret = snap_read(&r->env, &after);
	if (ret) {
		fprintf(stderr, "reading counters: %s\n", strerror(-ret));
		return ret;
	}
	outcome_of(r, ev->f.dir, &ev->f, pass, &r->before, &after, got);
	r->before = after;
	expected_of(ref_step(&r->ref, ev->f.dir, ev->f.buf, ev->f.len), want);
	r->frames++;
	if (want->reason >= 0 && want->reason < PC_REASON_COUNT)
		r->reasons[want->reason]++;
	r->audits += want->audit;
	r->high_rule += want->rule >= 64;
	if (same(got, want))
		return 0;
	ret = known(got, want);
	if (ret >= 0) {
		tolerated[ret]++;
		return 0;
	}
	return 1;
}

/* ---- shrinking and the reproducer ---- */

/* Replay the kept events from a fresh state; true if the last one still
 * diverges with the same verdicts (and nothing before it does). */
static bool replay(struct run *r, struct event *evs, const bool *keep,
		   size_t n, const struct outcome *got0,
		   const struct outcome *want0, struct outcome *last_got,
		   struct outcome *last_want)
{
	struct outcome got, want;
	size_t last = n - 1;
	int ret;

	if (reset(r))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		ret = step(r, &evs[i], &got, &want);
		if (ret < 0)
			return false;
		if (ret == 1 && last_got) {
			*last_got = got;
			*last_want = want;
		}
		if (ret == 1)
			return i == last && got.pass == got0->pass &&
			       got.reason == got0->reason &&
			       want.pass == want0->pass &&
			       want.reason == want0->reason;
	}
	return false;
}

/* ddmin-style: drop chunks of earlier events, halving the chunk size. */
static size_t shrink(struct run *r, struct event *evs, bool *keep, size_t n,
		     const struct outcome *got, const struct outcome *want)
{
	size_t kept = n;

	for (size_t i = 0; i < n; i++)
		keep[i] = true;
	for (size_t chunk = (n - 1) / 2; chunk >= 1; chunk /= 2) {
		/* event 0 (the first apply) and the diverging one stay */
		for (size_t start = 1; start < n - 1; start += chunk) {
			size_t end = start + chunk < n - 1 ? start + chunk : n - 1;
			bool removed_any = false;
			bool save[end - start];

			for (size_t i = start; i < end; i++) {
				save[i - start] = keep[i];
				removed_any |= keep[i];
				keep[i] = false;
			}
			if (!removed_any)
				continue;
			if (replay(r, evs, keep, n, got, want, NULL, NULL))
				continue;
			for (size_t i = start; i < end; i++)
				keep[i] = save[i - start];
		}
		if (chunk == 1)
			break;
	}
	kept = 0;
	for (size_t i = 0; i < n; i++)
		kept += keep[i];
	return kept;
}

static const char *mode_word(__u32 m)
{
	return m == PC_MODE_NORMAL ? "normal" : m == PC_MODE_LOCKDOWN ?
	       "lockdown" : m == PC_MODE_QUARANTINE ? "quarantine" :
	       "(unknown: enforced as quarantine)";
}

static void print_hex(const struct gframe *f)
{
	for (__u32 i = 0; i < f->len; i++)
		printf("%02x", f->buf[i]);
	printf("\n");
}

static void print_yaml(const char *name, const char *yaml)
{
	const char *p = yaml;

	printf("--- policy %s ---\n", name);
	while (*p) {
		const char *nl = strchr(p, '\n');
		int len = nl ? (int)(nl - p) : (int)strlen(p);

		printf("    %.*s\n", len, p);
		p += len + (nl ? 1 : 0);
	}
}

static void print_pkt(const struct gframe *f)
{
	static const char *const kinds[] = { "IP", "ARP", "not IP", "malformed" };
	static const char *const frags[] = { "", " head-fragment", " later-fragment" };
	struct ref_pkt p;

	ref_parse(f->buf, f->len, &p);
	printf("    reference parse: %s", kinds[p.kind]);
	if (p.kind == REF_K_IP) {
		printf(" v%u proto %u%s sport %u dport %u", p.family, p.proto,
		       frags[p.frag], p.sport, p.dport);
		if (p.icmp)
			printf(" icmp type %u%s id %u", p.icmp_type,
			       p.echo == REF_ECHO_REQUEST ? " (echo request)" :
			       p.echo == REF_ECHO_REPLY ? " (echo reply)" : "",
			       p.echo_id);
		if (p.icmp_error)
			printf(" quoting %s proto %u ports %u/%u",
			       p.quote.ok ? "ok" : "unusable", p.quote.proto,
			       p.quote.sport, p.quote.dport);
		if (p.frag != REF_WHOLE)
			printf(" frag id %u nh %u", p.frag_id, p.frag_proto);
	}
	printf("\n");
}

static int load_policy(struct run *r, int which, const char *yaml);
static void drop_policy(struct run *r, int which);

/* "rules:" or "management:" left with no items: an empty list, not null. */
static void empty_lists(char *text)
{
	static const char *const keys[] = { "rules:\n", "management:\n" };

	for (int i = 0; i < 2; i++) {
		char *k = strstr(text, keys[i]);
		size_t kl = strlen(keys[i]);

		if (!k || (k != text && k[-1] != '\n') ||
		    !strncmp(k + kl, "  - ", 4) || strlen(text) + 4 >= YAML_MAX)
			continue;
		memmove(k + kl + 3, k + kl, strlen(k + kl) + 1);
		memcpy(k + kl - 1, " []\n", 4);
	}
}

/* Drop management entries and rules (one YAML line each) that the
 * divergence does not need. */
static void shrink_policy(struct run *r, int k, struct event *evs,
			  const bool *keep, size_t n, const struct outcome *got,
			  const struct outcome *want)
{
	char *text = r->yaml[k], *trial = malloc(YAML_MAX);
	char *line = text;

	if (!trial)
		return;
	while (*line) {
		char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) + 1 : strlen(line);
		size_t off = line - text;

		if (strncmp(line, "  - {", 5)) {
			line += len;
			continue;
		}
		memcpy(trial, text, off);
		strcpy(trial + off, line + len);
		empty_lists(trial);
		drop_policy(r, k);
		if (!load_policy(r, k, trial) &&
		    replay(r, evs, keep, n, got, want, NULL, NULL)) {
			strcpy(text, trial);	/* line now starts the next one */
			continue;
		}
		drop_policy(r, k);
		if (load_policy(r, k, text))
			break;	/* cannot happen: it loaded before */
		line += len;
	}
	free(trial);
}

static void report(struct run *r, struct event *evs, size_t n,
		   const struct outcome *got, const struct outcome *want,
		   long policy_no, long frame_no)
{
	bool *keep = calloc(n, sizeof(*keep));
	bool used[2] = { false, false };
	struct outcome last_got, last_want;
	char gs[160], ws[160];
	size_t kept, shown = 0;

	if (!keep)
		return;
	outcome_str(got, gs, sizeof(gs));
	outcome_str(want, ws, sizeof(ws));
	printf("DIVERGENCE: policy %ld, frame %ld: datapath %s; reference %s\n",
	       policy_no, frame_no, gs, ws);
	kept = shrink(r, evs, keep, n, got, want);
	for (size_t i = 0; i < n; i++)
		if (keep[i] && evs[i].kind == EV_APPLY)
			used[evs[i].arg] = true;
	for (int k = 0; k < 2; k++)
		if (used[k])
			shrink_policy(r, k, evs, keep, n, got, want);
	/* the last look: what the shrunk reproducer itself does */
	last_got = *got;
	last_want = *want;
	replay(r, evs, keep, n, got, want, &last_got, &last_want);
	printf("reproducer (%zu of %zu events kept, policies cut to the "
	       "entries it needs):\n", kept, n);
	for (int k = 0; k < 2; k++)
		if (used[k])
			print_yaml(k ? "B" : "A", r->yaml[k]);
	printf("--- events (start: no flows, no fragments, mode normal) ---\n");
	for (size_t i = 0; i < n; i++) {
		if (!keep[i])
			continue;
		shown++;
		if (evs[i].kind == EV_APPLY)
			printf("%3zu apply policy %c\n", shown, 'A' + evs[i].arg);
		else if (evs[i].kind == EV_MODE)
			printf("%3zu mode %u %s\n", shown, evs[i].arg,
			       mode_word(evs[i].arg));
		else {
			printf("%3zu %s %u bytes: ", shown,
			       evs[i].f.dir ? "egress " : "ingress", evs[i].f.len);
			print_hex(&evs[i].f);
			print_pkt(&evs[i].f);
		}
	}
	outcome_str(&last_got, gs, sizeof(gs));
	outcome_str(&last_want, ws, sizeof(ws));
	printf("--- last frame: datapath %s\n", gs);
	printf("---         reference %s\n", ws);
	free(keep);
}

/* ---- the run ---- */

static int load_policy(struct run *r, int which, const char *yaml)
{
	char err[512];
	int ret;

	ret = pc_policy_load_string(yaml, strlen(yaml), "generated", NULL,
				    &r->pol[which], err, sizeof(err));
	if (ret) {
		if (verbose)
			fprintf(stderr, "generated policy refused: %s\n%s", err, yaml);
		return ret;
	}
	ret = pc_compile(&r->pol[which], &r->comp[which], err, sizeof(err));
	if (ret) {
		fprintf(stderr, "compiling a generated policy: %s\n%s", err, yaml);
		pc_policy_free(&r->pol[which]);
		return ret;
	}
	r->have[which] = true;
	return 0;
}

static void drop_policy(struct run *r, int which)
{
	if (!r->have[which])
		return;
	pc_policy_free(&r->pol[which]);
	pc_compiled_free(&r->comp[which]);
	r->have[which] = false;
}

static void drop_policies(struct run *r)
{
	drop_policy(r, 0);
	drop_policy(r, 1);
}

/* Two policies that parse, A and B (B is applied mid-sequence). */
static int make_policies(struct run *r, struct rng *rng, struct gen_bases *b,
			 long *refused)
{
	for (int k = 0; k < 2; k++) {
		int tries = 0;

		do {
			if (++tries > 100) {
				fprintf(stderr, "generator: 100 policies refused in a row\n");
				return -EINVAL;
			}
			if (gen_policy(rng, b, r->yaml[k], YAML_MAX))
				continue;
			if (!load_policy(r, k, r->yaml[k]))
				break;
			(*refused)++;
		} while (1);
	}
	return 0;
}

/* "frag-rule,..." -> tolerate bits; -1 on an unknown name. */
static int parse_tolerate(const char *arg)
{
	char *copy = strdup(arg), *save = NULL, *tok;
	int err = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok && !err;
	     tok = strtok_r(NULL, ",", &save)) {
		int k;

		for (k = 0; k < KNOWN_COUNT; k++)
			if (!strcmp(tok, known_names[k]))
				break;
		if (k == KNOWN_COUNT) {
			fprintf(stderr, "--tolerate: no known bug '%s'\n", tok);
			err = -1;
		} else {
			tolerate |= 1U << k;
		}
	}
	free(copy);
	return err;
}

static void usage(const char *prog)
{
	fprintf(stderr,
		"usage: %s [options]\n"
		"  --seed N        PRNG seed (default %llu)\n"
		"  --frames N      frames per policy (default %ld)\n"
		"  --policies N    random policies (default %ld)\n"
		"  --keep-going    report every divergence, not just the first\n"
		"  --tolerate LIST count, not fail, divergences of known bugs:",
		prog, (unsigned long long)verify_defaults.seed,
		verify_defaults.frames, verify_defaults.policies);
	for (int k = 0; k < KNOWN_COUNT; k++)
		fprintf(stderr, "%s%s", k ? ", " : " ", known_names[k]);
	fprintf(stderr, "\n  -v, --verbose   libbpf debug output, refused policies\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 's' },
		{ "frames", required_argument, NULL, 'f' },
		{ "policies", required_argument, NULL, 'p' },
		{ "keep-going", no_argument, NULL, 'k' },
		{ "tolerate", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct verify_opts o = verify_defaults;
	long divergences = 0, refused_policies = 0, nevents;
	struct outcome got, want;
	struct timespec t0, t1, s0, s1;
	double shrink_secs = 0;
	long saved_tol[KNOWN_COUNT];
	struct event *evs = NULL;
	bool keep_going = false;
	struct gen_bases bases;
	struct run *r = NULL, saved;
	int opt, ret = 2;
	long pi = 0;
	struct rng rng;
	struct gen g;
	double secs;

	/* parse options */
	while ((opt = getopt_long(argc, argv, "s:f:p:kvh", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': o.seed = strtoull(optarg, NULL, 0); break;
		case 'f': o.frames = strtol(optarg, NULL, 0); break;
		case 'p': o.policies = strtol(optarg, NULL, 0); break;
		case 'k': keep_going = true; break;
		case 't':
			if (parse_tolerate(optarg)) {
				usage(argv[0]);
				return 2;
			}
			break;
		case 'v': verbose = true; break;
		case 'h': usage(argv[0]); return 0;
		default: usage(argv[0]); return 2;
		}
	}
	if (o.frames < 1 || o.policies < 1) {
		usage(argv[0]);
		return 2;
	}
	libbpf_set_print(libbpf_print);

	r = calloc(1, sizeof(*r));
	/* room for every frame plus the mode switches and re-applies */
	nevents = 2 + o.frames * 2;
	evs = calloc(nevents, sizeof(*evs));
	if (!r || !evs) {
		fprintf(stderr, "out of memory for %ld events\n", nevents);
		goto out;
	}
	r->yaml[0] = malloc(YAML_MAX);
	r->yaml[1] = malloc(YAML_MAX);
	if (!r->yaml[0] || !r->yaml[1] || ref_init(&r->ref)) {
		fprintf(stderr, "out of memory\n");
		goto out;
	}
	if (env_open(&r->env))
		goto out;

	rng_seed(&rng, o.seed);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (pi = 0; pi < o.policies; pi++) {
		size_t n = 0;
		int cur = 0;

		gen_bases_init(&rng, &bases);
		if (make_policies(r, &rng, &bases, &refused_policies))
			goto out;
		gen_begin(&g, &rng, &bases, &r->pol[0], &r->pol[1]);
		g.no_echo_id0 = tolerate & (1U << KNOWN_ECHO_ID0);
		if (reset(r))
			goto out;
		evs[n++] = (struct event){ .kind = EV_APPLY, .arg = 0 };
		if (rng_pct(&rng, 30))
			evs[n++] = (struct event){ .kind = EV_MODE,
						   .arg = rng_below(&rng, 3) };
		for (size_t i = 0; i < n; i++)
			if (step(r, &evs[i], &got, &want) < 0)
				goto out;
		for (long fi = 0; fi < o.frames; fi++) {
			size_t first = n;

			if (rng_pct(&rng, 4)) {
				__u32 m = rng_below(&rng, 3);

				if (rng_pct(&rng, 5))
					m = rng_pct(&rng, 50) ? 3 : 0xffffffffu;
				evs[n++] = (struct event){ .kind = EV_MODE, .arg = m };
			} else if (rng_below(&rng, 1000) < 3) {
				/* re-apply: the other policy, or the same anew */
				cur = rng_pct(&rng, 75) ? !cur : cur;
				evs[n++] = (struct event){ .kind = EV_APPLY, .arg = cur };
			}
			evs[n].kind = EV_FRAME;
			gen_frame(&g, &evs[n].f);
			n++;
			for (size_t i = first; i < n; i++) {
				ret = step(r, &evs[i], &got, &want);
				if (ret < 0)
					goto fail;
				if (ret == 0)
					continue;
				divergences++;
				/* replays while shrinking are not counted */
				saved = *r;
				memcpy(saved_tol, tolerated, sizeof(tolerated));
				clock_gettime(CLOCK_MONOTONIC, &s0);
				report(r, evs, i + 1, &got, &want, pi, fi);
				clock_gettime(CLOCK_MONOTONIC, &s1);
				shrink_secs += (s1.tv_sec - s0.tv_sec) +
					       (s1.tv_nsec - s0.tv_nsec) / 1e9;
				r->frames = saved.frames;
				r->applies = saved.applies;
				r->refused = saved.refused;
				memcpy(r->reasons, saved.reasons, sizeof(r->reasons));
				memcpy(tolerated, saved_tol, sizeof(tolerated));
				r->audits = saved.audits;
				r->high_rule = saved.high_rule;
				r->apply_secs = saved.apply_secs;
				if (!keep_going)
					goto done;
				/* the tables now differ: next policy */
				fi = o.frames;
				break;
			}
		}
		drop_policies(r);
	}
done:
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* the rate leaves out the time spent shrinking reproducers */
	secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 -
	       shrink_secs;
	printf("coverage (reference reasons):");
	for (int k = 0; k < PC_REASON_COUNT; k++)
		if (r->reasons[k])
			printf(" %s=%ld", pc_reason_name(k), r->reasons[k]);
	printf(" (+pass_audit=%ld); decided by rules 64-127: %ld\n", r->audits,
	       r->high_rule);
	printf("%ld generated policies refused by the parser, %ld egress frames "
	       "TC refused (run as ingress)\n", refused_policies, r->refused);
	printf("%.1f s: %.0f frames/s overall; %ld policy applies took %.1f s, "
	       "frames alone %.0f frames/s\n", secs,
	       secs > 0 ? r->frames / secs : 0, r->applies, r->apply_secs,
	       secs > r->apply_secs ? r->frames / (secs - r->apply_secs) : 0);
	for (int k = 0; k < KNOWN_COUNT; k++) {
		if (!(tolerate & (1U << k)))
			continue;
		if (k == KNOWN_ECHO_ID0)
			printf("tolerated known bug %s: no echo with id 0 generated\n",
			       known_names[k]);
		else
			printf("tolerated known bug %s: %ld frames\n",
			       known_names[k], tolerated[k]);
	}
	printf("verify: %ld frames compared across %ld policies, %ld divergences\n",
	       r->frames, pi < o.policies ? pi + 1 : o.policies, divergences);
	ret = divergences ? 1 : 0;
	goto out;
fail:
	ret = 2;
out:
	if (r) {
		drop_policies(r);
		ref_free(&r->ref);
		if (r->env.skel)
			env_close(&r->env);
		free(r->yaml[0]);
		free(r->yaml[1]);
	}
	free(r);
	free(evs);
	return ret;
}

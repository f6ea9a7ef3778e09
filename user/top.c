// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * portcullis top: the counters of /metrics as rates, refreshed in place.
 * Each frame compares two snapshots of the pinned maps an interval
 * apart: the mode actually enforced, the busiest rules and the drop
 * reasons, per second. Reads only, so it runs beside the agent freely.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "stats.h"
#include "top.h"

#define CLEAR_SCREEN	"\033[H\033[2J"
#define NS_PER_S	1000000000ULL
#define NAME_WIDTH	24	/* rule and reason column, at least */

struct top_opts {
	double interval;	/* seconds */
	long iterations;	/* frames to show; 0: until interrupted */
	long rules;		/* busiest rules shown */
};

static const struct top_opts top_defaults = {
	.interval = 1.0,
	.iterations = 0,
	.rules = 10,
};

/* A rule of the newer snapshot and its rates over the interval. */
struct rule_rate {
	const struct pc_metrics_rule *r;
	double pps;
	double bps;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: portcullis top [--interval S] [--iterations N] [--rules N]\n"
		"  -i, --interval S     seconds between frames (default 1; 0.1 to 3600)\n"
		"  -n, --iterations N   show N frames, then exit (default: until Ctrl-C)\n"
		"  -r, --rules N        busiest rules shown (default 10; 0 hides them)\n");
}

static int parse_double(const char *opt, const char *s, double min, double max,
			double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < min || v > max) {
		pr_warn("top: bad %s '%s' (want %g to %g)\n", opt, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

static int parse_long(const char *opt, const char *s, long min, long max,
		      long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		pr_warn("top: bad %s '%s' (want %ld to %ld)\n", opt, s, min, max);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

/* 0, or 1 for --help, or a negative errno. */
static int parse_args(int argc, char **argv, struct top_opts *o)
{
	static const struct option longopts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "iterations", required_argument, NULL, 'n' },
		{ "rules", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c, err = 0;

	*o = top_defaults;
	optind = 1;
	while (!err && (c = getopt_long(argc, argv, "i:n:r:h", longopts,
					NULL)) != -1) {
		switch (c) {
		case 'i':
			err = parse_double("--interval", optarg, 0.1, 3600,
					   &o->interval);
			break;
		case 'n':
			err = parse_long("--iterations", optarg, 1, 1000000000L,
					 &o->iterations);
			break;
		case 'r':
			err = parse_long("--rules", optarg, 0, PC_MAX_RULES,
					 &o->rules);
			break;
		case 'h':
			usage(stdout);
			return 1;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (!err && optind < argc) {
		pr_warn("top: unexpected argument '%s'\n", argv[optind]);
		err = -EINVAL;
	}
	return err;
}

/* ---- numbers ---- */

/* A counter that went backwards was reset (a map recreated): count anew. */
static __u64 delta(__u64 cur, __u64 prev)
{
	return cur >= prev ? cur - prev : cur;
}

/* "950", "12.3k", "4.0M": five columns or so, whatever the magnitude. */
static const char *human(double v, bool integral, char *buf, size_t len)
{
	static const char units[] = "kMGTPE";
	int u = -1;

	while (v >= 999.95 && u < (int)sizeof(units) - 2) {
		v /= 1000;
		u++;
	}
	if (u >= 0)
		snprintf(buf, len, "%.1f%c", v, units[u]);
	else
		snprintf(buf, len, integral ? "%.0f" : "%.1f", v);
	return buf;
}

/* ---- rates ---- */

/*
 * An apply moves a rule's counter into the new slot under the same name,
 * so rules are matched by name across snapshots, not by index.
 */
static const struct pc_metrics_rule *find_rule(const struct pc_metrics_snap *s,
					       const char *name)
{
	for (size_t i = 0; i < s->nrules; i++)
		if (!strcmp(s->rules[i].meta.name, name))
			return &s->rules[i];
	return NULL;
}

static int by_rate(const void *a, const void *b)
{
	const struct rule_rate *x = a, *y = b;

	if (x->pps != y->pps)
		return x->pps < y->pps ? 1 : -1;
	if (x->r->c.packets != y->r->c.packets)
		return x->r->c.packets < y->r->c.packets ? 1 : -1;
	return x->r->index < y->r->index ? -1 : x->r->index > y->r->index;
}

static size_t rule_rates(const struct pc_metrics_snap *prev,
			 const struct pc_metrics_snap *cur, double secs,
			 struct rule_rate *out)
{
	for (size_t i = 0; i < cur->nrules; i++) {
		const struct pc_metrics_rule *r = &cur->rules[i];
		const struct pc_metrics_rule *p = find_rule(prev, r->meta.name);

		out[i].r = r;
		out[i].pps = delta(r->c.packets, p ? p->c.packets : 0) / secs;
		out[i].bps = delta(r->c.bytes, p ? p->c.bytes : 0) / secs;
	}
	qsort(out, cur->nrules, sizeof(*out), by_rate);
	return cur->nrules;
}

/* ---- the frame ---- */

static void deadman_text(const struct pc_metrics_snap *s, char *buf,
			 size_t len)
{
	const __u64 *dm = s->deadman;
	double age;

	if (!dm[PC_DM_TIMEOUT_NS]) {
		snprintf(buf, len, "off");
		return;
	}
	if (s->deadman_tripped) {
		snprintf(buf, len, "TRIPPED");
		return;
	}
	age = (double)(__s64)(s->boot_ns - dm[PC_DM_LAST_HB_NS]) / NS_PER_S;
	snprintf(buf, len, "armed (heartbeat %.1fs ago, timeout %.1fs)",
		 age < 0 ? 0 : age, (double)dm[PC_DM_TIMEOUT_NS] / NS_PER_S);
}

static void print_header(const struct pc_metrics_snap *s, double secs)
{
	char dm[96], mode[64], when[16];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%H:%M:%S", &tm);
	if (s->mode < PC_MODE_COUNT && s->enforced == s->mode)
		snprintf(mode, sizeof(mode), "%s", pc_mode_name(s->enforced));
	else if (s->deadman_tripped)
		snprintf(mode, sizeof(mode), "%s (dead-man; set %s)",
			 pc_mode_name(s->enforced), pc_mode_name(s->mode));
	else
		snprintf(mode, sizeof(mode), "%s (mode word %u)",
			 pc_mode_name(s->enforced), s->mode);
	deadman_text(s, dm, sizeof(dm));
	printf("portcullis top - %s, every %.1fs\n", when, secs);
	printf("mode %s | dead-man %s\n", mode, dm);
	if (s->settings.generation)
		printf("policy generation %u, %zu rules", s->settings.generation,
		       s->nrules);
	else
		printf("NO POLICY: every packet is dropped");
	printf(" | flows %llu of %llu\n\n", (unsigned long long)s->flows,
	       (unsigned long long)s->flows_max);
}

static void print_rules(const struct pc_metrics_snap *prev,
			const struct pc_metrics_snap *cur, double secs,
			long max)
{
	struct rule_rate rates[PC_MAX_RULES];
	char a[16], b[16], c[16];
	int width = NAME_WIDTH;
	size_t n;

	if (!max)
		return;
	n = rule_rates(prev, cur, secs, rates);
	/* Names run to 31 characters: widen the column rather than cut them. */
	for (size_t i = 0; i < n && i < (size_t)max; i++)
		if ((int)strlen(rates[i].r->meta.name) > width)
			width = strlen(rates[i].r->meta.name);
	printf("%-*s %-10s %-7s %9s %9s %9s\n", width, "RULE", "ACTION", "DIR",
	       "PKTS/S", "BYTES/S", "PACKETS");
	for (size_t i = 0; i < n && i < (size_t)max; i++) {
		const struct pc_metrics_rule *r = rates[i].r;

		printf("%-*s %-10s %-7s %9s %9s %9s\n", width, r->meta.name,
		       pc_metrics_rule_action(&r->meta),
		       pc_metrics_rule_direction(&r->meta),
		       human(rates[i].pps, false, a, sizeof(a)),
		       human(rates[i].bps, false, b, sizeof(b)),
		       human(r->c.packets, true, c, sizeof(c)));
	}
	if (!n)
		printf("(no rules)\n");
	printf("\n");
}

/* Drop reasons seen since the maps were made, busiest first. */
static void print_drops(const struct pc_metrics_snap *prev,
			const struct pc_metrics_snap *cur, double secs)
{
	struct {
		int reason;
		double pps[PC_DIR_COUNT];
	} rows[PC_REASON_COUNT], tmp;
	char a[16], b[16], c[16], d[16];
	int n = 0;

	/* Drop reasons are the tail of enum pc_reason. */
	for (int r = PC_R_DROP_DEFAULT; r < PC_REASON_COUNT; r++) {
		const struct pc_counter *in = &cur->reasons[PC_DIR_INGRESS][r];
		const struct pc_counter *out = &cur->reasons[PC_DIR_EGRESS][r];

		if (!in->packets && !out->packets)
			continue;
		rows[n].reason = r;
		for (int d = 0; d < PC_DIR_COUNT; d++)
			rows[n].pps[d] = delta(cur->reasons[d][r].packets,
					       prev->reasons[d][r].packets) / secs;
		/* A handful of rows: insertion sort by total rate. */
		for (int i = n; i > 0 && rows[i].pps[0] + rows[i].pps[1] >
					    rows[i - 1].pps[0] + rows[i - 1].pps[1]; i--) {
			tmp = rows[i];
			rows[i] = rows[i - 1];
			rows[i - 1] = tmp;
		}
		n++;
	}
	printf("%-*s %10s %10s %10s %10s\n", NAME_WIDTH, "DROPS", "IN PKTS/S", "OUT PKTS/S",
	       "IN TOTAL", "OUT TOTAL");
	for (int i = 0; i < n; i++) {
		int r = rows[i].reason;

		printf("%-*s %10s %10s %10s %10s\n", NAME_WIDTH, pc_reason_name(r),
		       human(rows[i].pps[PC_DIR_INGRESS], false, a, sizeof(a)),
		       human(rows[i].pps[PC_DIR_EGRESS], false, b, sizeof(b)),
		       human(cur->reasons[PC_DIR_INGRESS][r].packets, true, c,
			     sizeof(c)),
		       human(cur->reasons[PC_DIR_EGRESS][r].packets, true, d,
			     sizeof(d)));
	}
	if (!n)
		printf("(no drops)\n");
}

static void print_frame(const struct pc_metrics_snap *prev,
			const struct pc_metrics_snap *cur,
			const struct top_opts *o, bool tty)
{
	double secs = (double)(cur->boot_ns - prev->boot_ns) / NS_PER_S;

	/* Snapshots are an interval apart; never divide by nothing. */
	if (secs <= 0)
		secs = o->interval;
	if (tty)
		fputs(CLEAR_SCREEN, stdout);
	print_header(cur, secs);
	print_rules(prev, cur, secs, o->rules);
	print_drops(prev, cur, secs);
	if (!tty)
		printf("\n");
	fflush(stdout);
}

/* ---- loop ---- */

/* Sleep until an absolute deadline; false once interrupted. */
static bool wait_until(struct timespec *deadline, double interval)
{
	long long ns = deadline->tv_nsec + (long long)(interval * NS_PER_S);

	deadline->tv_sec += ns / NS_PER_S;
	deadline->tv_nsec = ns % NS_PER_S;
	while (!stop) {
		int err = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
					  deadline, NULL);

		if (!err)
			return true;
		if (err != EINTR)
			return false;
	}
	return false;
}

static int run(const struct pc_maps *m, const struct top_opts *o)
{
	struct pc_metrics_snap *prev, *cur, *swap;
	bool tty = isatty(STDOUT_FILENO);
	struct timespec deadline;
	int err;

	prev = malloc(sizeof(*prev));
	cur = malloc(sizeof(*cur));
	if (!prev || !cur) {
		err = -ENOMEM;
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	err = pc_metrics_snapshot(m, prev);
	for (long shown = 0; !err && (!o->iterations || shown < o->iterations);
	     shown++) {
		if (!wait_until(&deadline, o->interval))
			break;
		err = pc_metrics_snapshot(m, cur);
		if (err)
			break;
		print_frame(prev, cur, o, tty);
		swap = prev;
		prev = cur;
		cur = swap;
	}
	if (err)
		pr_warn("top: Couldn't read the maps: %s\n", strerror(-err));
out:
	free(prev);
	free(cur);
	return err;
}

int pc_top_main(int argc, char **argv, const char *pin_dir)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct top_opts o;
	struct pc_maps m;
	int err;

	err = parse_args(argc, argv, &o);
	if (err)
		return err > 0 ? 0 : 2;
	err = pc_maps_open_pinned(pin_dir, &m);
	if (err) {
		pr_warn("nothing loaded at %s: %s\n", pin_dir, strerror(-err));
		return 1;
	}
	/* No SA_RESTART: Ctrl-C must cut the sleep short, not wait it out. */
	sigemptyset(&sa.sa_mask);
	stop = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	err = run(&m, &o);
	pc_maps_close(&m);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Prometheus exposition (text format 0.0.4) of the pinned maps, and the
 * small libmicrohttpd server that serves it. Every number comes from the
 * maps the datapath and the agent keep, so a scrape tells what the kernel
 * enforces, not what some process believes it asked for.
 *
 * Reads are batched (BPF_MAP_LOOKUP_BATCH): a render is about ten
 * syscalls plus one per 8192 flows, so scraping a busy host stays cheap.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <microhttpd.h>
#include "agent_stats.h"
#include "fsm.h"
#include "guard.h"
#include "http_budget.h"
#include "log.h"
#include "metrics.h"
#include "msg.h"
#include "policy.h"
#include "stats.h"

#ifndef PC_VERSION
#define PC_VERSION		"0.1.0"
#endif

#define PREFIX			"portcullis_"
#define NS_PER_S		1000000000ULL
#define MS_PER_S		1000ULL
/* pc_flows entries per batch syscall: 8192 * 64 bytes of buffers. */
#define FLOW_BATCH		8192
/* An apply flips the active slot under us at most this often in a row. */
#define SNAP_RETRIES		3
/* MHD's idle timeout, a backstop behind the budget's deadline. */
#define HTTP_IDLE_S		((PC_HTTP_DEADLINE_MS + 999) / 1000)
/* libmicrohttpd's lines a second at most: refusals come at connect rate. */
#define MHD_LOG_PER_S		5
#define CONTENT_TYPE		"text/plain; version=0.0.4; charset=utf-8"
/*
 * The kernel's own "no batch ops for this map type" (ENOTSUPP, not
 * ENOTSUP): internal to the kernel, yet BPF_DO_BATCH leaks it to us.
 */
#define KERNEL_ENOTSUPP		524

/* ---- reading the maps ---- */

static bool batch_unsupported(int err)
{
	return err == -EINVAL || err == -EOPNOTSUPP ||
	       err == -KERNEL_ENOTSUPP;
}

static int array_read_keys(int fd, __u32 first, __u32 n, size_t vsize,
			   void *vals)
{
	for (__u32 i = 0; i < n; i++) {
		__u32 key = first + i;

		if (bpf_map_lookup_elem(fd, &key, (char *)vals + i * vsize))
			return -errno;
	}
	return 0;
}

/*
 * Keys [first, first + n) of an array map, values laid out as n lookups
 * would leave them (vsize each; for per-CPU maps that is ncpus values,
 * each rounded up to 8 bytes). One batch syscall where the kernel has
 * batch ops for the map type, per-key lookups where it has not.
 */
static int array_read(int fd, __u32 first, __u32 n, size_t vsize, void *vals)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 *keys, done = 0, in, out, count;
	int err = 0;

	keys = calloc(n, sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (done < n) {
		count = n - done;
		/* For arrays, in_batch is the key before the first wanted. */
		in = first + done - 1;
		err = bpf_map_lookup_batch(fd, first + done ? &in : NULL, &out,
					   keys + done,
					   (char *)vals + (size_t)done * vsize,
					   &count, &opts);
		if (err && err != -ENOENT)
			break;
		done += count;
		if (err == -ENOENT || !count) {
			err = done < n ? -ENOENT : 0;
			break;
		}
	}
	/* Arrays hand keys out in order; anything else is not an array. */
	for (__u32 i = 0; !err && i < n; i++)
		if (keys[i] != first + i)
			err = -EIO;
	free(keys);
	if (!done && batch_unsupported(err))
		err = array_read_keys(fd, first, n, vsize, vals);
	return err;
}

/*
 * Per-CPU array values made of __u64 words (struct pc_counter: 2, a
 * plain count: 1), summed over every possible CPU into out[n * words].
 */
static int percpu_sum(int fd, __u32 first, __u32 n, size_t words, __u64 *out)
{
	int ncpus = libbpf_num_possible_cpus();
	size_t per_key;
	__u64 *vals;
	int err;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	per_key = (size_t)ncpus * words;
	vals = calloc((size_t)n * per_key, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	err = array_read(fd, first, n, per_key * sizeof(*vals), vals);
	memset(out, 0, (size_t)n * words * sizeof(*out));
	for (size_t k = 0; !err && k < n; k++)
		for (size_t c = 0; c < (size_t)ncpus; c++)
			for (size_t w = 0; w < words; w++)
				out[k * words + w] +=
					vals[k * per_key + c * words + w];
	free(vals);
	return err;
}

/*
 * Entries by walking the keys. Under LRU churn a vanished key restarts
 * the walk from the top, so the count is capped at the map's size.
 */
static int count_by_keys(int fd, size_t ksize, __u32 max, __u64 *out)
{
	char cur[256], next[256];
	void *prev = NULL;
	__u64 n = 0;

	if (ksize > sizeof(cur))
		return -E2BIG;
	while (n < max && !bpf_map_get_next_key(fd, prev, next)) {
		memcpy(cur, next, ksize);
		prev = cur;
		n++;
	}
	if (n < max && errno != ENOENT)
		return -errno;
	*out = n;
	return 0;
}

/* What one batch of flow values adds to the counts: by the opener in each
 * value's direction bit, embryonic ones by their state. */
static void flows_tally(const struct pc_flow *vals, __u32 n,
			struct pc_metrics_snap *s)
{
	for (__u32 i = 0; i < n; i++) {
		__u8 opener = vals[i].dir & PC_FLOW_DIR;

		s->flows_by[opener]++;
		if ((vals[i].dir & PC_FLOW_S_MASK) == PC_FLOW_S_SYN)
			s->flows_embryonic[opener]++;
	}
}

/*
 * Entries of one flow table (opener: whose flows it holds) into *s: batch
 * lookups, values and all, else key walks (then by table, not by value).
 */
static int count_flows(int fd, __u8 opener, struct pc_metrics_snap *s)
{
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	struct bpf_map_info info = {};
	__u32 ilen = sizeof(info), in = 0, next = 0, count;
	bool first = true;
	__u64 n = 0;
	void *keys, *vals;
	int err;

	/* Sizes from the kernel: the buffers must fit what it copies out. */
	err = bpf_obj_get_info_by_fd(fd, &info, &ilen);
	if (err)
		return err;
	if (info.value_size != sizeof(struct pc_flow))
		return -EINVAL;
	s->flows_max_by[opener] = info.max_entries;
	s->flows_max += info.max_entries;
	keys = calloc(FLOW_BATCH, info.key_size);
	vals = calloc(FLOW_BATCH, info.value_size);
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	for (;;) {
		count = FLOW_BATCH;
		/* For hashes the batch token is an opaque bucket cursor. */
		err = bpf_map_lookup_batch(fd, first ? NULL : &in, &next, keys,
					   vals, &count, &opts);
		if (err && err != -ENOENT)
			break;
		flows_tally(vals, count, s);
		n += count;
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		in = next;
		first = false;
	}
	if (first && batch_unsupported(err)) {
		err = count_by_keys(fd, info.key_size, info.max_entries, &n);
		s->flows_by[opener] += n;
	}
	s->flows_in[opener] = n;
	s->flows += n;
out:
	free(keys);
	free(vals);
	return err;
}

__u64 pc_flow_evictions(__u64 inserted, __u64 deleted, __u64 live)
{
	return inserted > deleted + live ? inserted - deleted - live : 0;
}

/*
 * Both flow tables into *s, with what their LRUs evicted. Created is read
 * before the walk and deleted after it, so an entry created or deleted
 * during the walk can make the figure read low, never high: a count of
 * host-table evictions is never a false alarm.
 */
static int read_flows(const struct pc_maps *m, struct pc_metrics_snap *s)
{
	__u64 before[PC_FS_MAX] = { 0 }, after[PC_FS_MAX] = { 0 };
	int err = 0;

	if (m->flow_stats >= 0)	/* pins of an older datapath: none */
		err = percpu_sum(m->flow_stats, 0, PC_FS_MAX, 1, before);
	if (!err)
		err = count_flows(m->flows, PC_DIR_EGRESS, s);
	if (!err && m->flows_peer >= 0)	/* pins of an older datapath: none */
		err = count_flows(m->flows_peer, PC_DIR_INGRESS, s);
	if (!err && m->flow_stats >= 0)
		err = percpu_sum(m->flow_stats, 0, PC_FS_MAX, 1, after);
	for (int t = 0; !err && m->flow_stats >= 0 && t < PC_DIR_COUNT; t++) {
		s->flows_inserted[t] = after[PC_FS_KEY(t, PC_FS_INSERTED)];
		s->flows_evicted[t] = pc_flow_evictions(
			before[PC_FS_KEY(t, PC_FS_INSERTED)],
			after[PC_FS_KEY(t, PC_FS_DELETED)], s->flows_in[t]);
	}
	return err;
}

int pc_flow_stats_seed(const struct pc_maps *m)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 fs[PC_FS_MAX], *v = NULL;
	struct pc_metrics_snap *s = NULL;
	int err;

	if (m->flow_stats < 0)
		return 0;
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	err = percpu_sum(m->flow_stats, 0, PC_FS_MAX, 1, fs);
	for (int i = 0; !err && i < PC_FS_MAX; i++)
		if (fs[i])
			return 0;	/* counting already */
	s = calloc(1, sizeof(*s));
	v = calloc((size_t)ncpus, sizeof(*v));
	if (!err && (!s || !v))
		err = -ENOMEM;
	if (!err)
		err = count_flows(m->flows, PC_DIR_EGRESS, s);
	if (!err && m->flows_peer >= 0)
		err = count_flows(m->flows_peer, PC_DIR_INGRESS, s);
	for (int t = 0; !err && t < PC_DIR_COUNT; t++) {
		__u32 key = PC_FS_KEY(t, PC_FS_INSERTED);

		if (!s->flows_in[t])
			continue;
		v[0] = s->flows_in[t];	/* one CPU's share holds it all */
		if (bpf_map_update_elem(m->flow_stats, &key, v, BPF_ANY))
			err = -errno;
	}
	free(v);
	free(s);
	return err;
}

/* As the datapath reads the mode word: unknown values act as quarantine. */
static enum pc_mode mode_sane(__u64 m)
{
	return m < PC_MODE_COUNT ? (enum pc_mode)m : PC_MODE_QUARANTINE;
}

/* The dead-man switch, judged as deadman_mode() in the datapath does. */
static void judge_deadman(struct pc_metrics_snap *s)
{
	const __u64 *dm = s->deadman;
	enum pc_mode mode = mode_sane(s->mode), act;

	s->deadman_tripped = dm[PC_DM_TIMEOUT_NS] &&
			     (__s64)(s->boot_ns - dm[PC_DM_LAST_HB_NS]) >
				     (__s64)dm[PC_DM_TIMEOUT_NS];
	s->enforced = mode;
	if (!s->deadman_tripped)
		return;
	/* Never weaker than lockdown once tripped. */
	act = dm[PC_DM_ACTION] < PC_MODE_LOCKDOWN ? PC_MODE_LOCKDOWN :
						    mode_sane(dm[PC_DM_ACTION]);
	if (act > mode)
		s->enforced = act;
}

static __u64 boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* Settings, rule names and rule counters of one slot. */
static int read_slot(const struct pc_maps *m, struct pc_metrics_snap *s)
{
	struct pc_counter c[PC_MAX_RULES];
	struct pc_rule_meta *meta;
	__u32 first = PC_RULE_KEY(s->slot, 0);
	int err;

	s->nrules = 0;
	if (bpf_map_lookup_elem(m->settings, &s->slot, &s->settings))
		return -errno;
	if (!s->settings.generation)
		return 0;	/* an empty slot's leftovers are no rules */
	meta = calloc(PC_MAX_RULES, sizeof(*meta));
	if (!meta)
		return -ENOMEM;
	err = array_read(m->rule_meta, first, PC_MAX_RULES, sizeof(*meta), meta);
	if (!err)
		err = percpu_sum(m->rule_stats, first, PC_MAX_RULES,
				 sizeof(*c) / sizeof(__u64), (__u64 *)c);
	for (__u32 i = 0; !err && i < PC_MAX_RULES; i++) {
		struct pc_metrics_rule *r = &s->rules[s->nrules];

		if (!meta[i].used)
			continue;
		r->index = i;
		r->meta = meta[i];
		r->meta.name[PC_NAME_LEN - 1] = '\0';
		r->c = c[i];
		s->nrules++;
	}
	free(meta);
	return err;
}

/* The active slot and what it holds, read again if an apply flipped it. */
static int read_policy(const struct pc_maps *m, struct pc_metrics_snap *s)
{
	__u32 state[PC_STATE_COUNT], again;
	int err;

	for (int tries = 0;; tries++) {
		err = array_read(m->state, 0, PC_STATE_COUNT, sizeof(__u32),
				 state);
		if (err)
			return err;
		/* The datapath masks the slot word the same way. */
		s->slot = state[PC_STATE_ACTIVE_SLOT] & 1;
		s->mode = state[PC_STATE_MODE];
		err = read_slot(m, s);
		if (err)
			return err;
		err = pc_state_get(m, PC_STATE_ACTIVE_SLOT, &again);
		if (err || (again & 1) == s->slot || tries == SNAP_RETRIES)
			return err;
	}
}

int pc_metrics_snapshot(const struct pc_maps *m, struct pc_metrics_snap *s)
{
	int err;

	memset(s, 0, sizeof(*s));
	err = read_policy(m, s);
	if (!err)
		err = array_read(m->deadman, 0, PC_DM_COUNT, sizeof(__u64),
				 s->deadman);
	/* Right after the dead-man words: the age is judged against them. */
	s->boot_ns = boot_ns();
	if (!err)
		err = percpu_sum(m->reason_stats, 0,
				 PC_DIR_COUNT * PC_REASON_COUNT,
				 sizeof(struct pc_counter) / sizeof(__u64),
				 (__u64 *)s->reasons);
	if (!err)
		err = percpu_sum(m->events, 0, PC_EV_COUNT, 1, s->events);
	if (!err && m->host_events >= 0)	/* pins of an older datapath: none */
		err = percpu_sum(m->host_events, 0, PC_HE_COUNT, 1, s->host);
	if (!err && m->guard_stats >= 0)
		err = percpu_sum(m->guard_stats, 0, PC_G_COUNT, 1, s->guard);
	if (!err)
		err = pc_ctl_read(m, &s->ctl_port, s->ctl);
	if (!err && m->backstop_stats >= 0)	/* pins of an older agent: none */
		err = percpu_sum(m->backstop_stats, 0, PC_DIR_COUNT,
				 sizeof(struct pc_counter) / sizeof(__u64),
				 (__u64 *)s->backstop);
	if (!err)
		err = array_read(m->agent_stats, 0, PC_AGENT_STATS_MAX,
				 sizeof(__u64), s->agent);
	if (!err)
		err = read_flows(m, s);
	if (!err)
		judge_deadman(s);
	return err;
}

/* ---- the exposition ---- */

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP " PREFIX "%s %s\n# TYPE " PREFIX "%s %s\n", name,
		help, name, type);
}

/* Label values escape backslash, double quote and newline. */
static void label_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fputc('\\', f);
		if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

/* Exact decimal seconds from ns, shortest form: "0.00001", "1", "2.5". */
static void put_seconds(FILE *f, __u64 ns)
{
	char frac[16];
	int len;

	len = snprintf(frac, sizeof(frac), "%09llu",
		       (unsigned long long)(ns % NS_PER_S));
	while (len > 0 && frac[len - 1] == '0')
		frac[--len] = '\0';
	fprintf(f, "%llu%s%s", (unsigned long long)(ns / NS_PER_S),
		len ? "." : "", frac);
}

static void sample_u64(FILE *f, const char *name, __u64 v)
{
	fprintf(f, PREFIX "%s %llu\n", name, (unsigned long long)v);
}

const char *pc_metrics_rule_action(const struct pc_rule_meta *r)
{
	if (r->mgmt)
		return "management";
	return r->action == PC_ACT_ALLOW ? "allow" : "deny";
}

const char *pc_metrics_rule_direction(const struct pc_rule_meta *r)
{
	switch (r->dirs & 3) {
	case 1 << PC_DIR_INGRESS:
		return "ingress";
	case 1 << PC_DIR_EGRESS:
		return "egress";
	case 3:
		return "both";
	default:
		return "none";
	}
}

static void rule_samples(FILE *f, const struct pc_metrics_snap *s,
			 const char *name, bool bytes)
{
	for (size_t i = 0; i < s->nrules; i++) {
		const struct pc_metrics_rule *r = &s->rules[i];

		fprintf(f, PREFIX "%s{rule=\"", name);
		label_value(f, r->meta.name);
		fprintf(f, "\",action=\"%s\",direction=\"%s\"} %llu\n",
			pc_metrics_rule_action(&r->meta),
			pc_metrics_rule_direction(&r->meta),
			(unsigned long long)(bytes ? r->c.bytes : r->c.packets));
	}
}

static void render_rules(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "rule_packets_total", "counter",
	       "Packets whose verdict a rule of the active policy decided.");
	rule_samples(f, s, "rule_packets_total", false);
	family(f, "rule_bytes_total", "counter",
	       "Bytes of the packets a rule of the active policy decided.");
	rule_samples(f, s, "rule_bytes_total", true);
}

static void reason_samples(FILE *f, const struct pc_metrics_snap *s,
			   const char *name, bool bytes)
{
	for (int d = 0; d < PC_DIR_COUNT; d++)
		for (int r = 0; r < PC_REASON_COUNT; r++) {
			const struct pc_counter *c = &s->reasons[d][r];

			fprintf(f, PREFIX "%s{direction=\"%s\",reason=\"%s\",verdict=\"%s\"} %llu\n",
				name, pc_dir_name(d), pc_reason_name(r),
				PC_REASON_IS_DROP(r) ? "drop" : "pass",
				(unsigned long long)(bytes ? c->bytes : c->packets));
		}
}

static void render_traffic(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "packets_total", "counter",
	       "Packets by direction and the reason for their verdict.");
	reason_samples(f, s, "packets_total", false);
	family(f, "bytes_total", "counter",
	       "Bytes by direction and the reason for their verdict.");
	reason_samples(f, s, "bytes_total", true);
	family(f, "egress_denied_initiated_total", "counter",
	       "Denied egress packets that the host itself initiated, never replies (the anomaly signal egress_denied).");
	sample_u64(f, "egress_denied_initiated_total",
		   s->host[PC_HE_EGRESS_DENIED]);
}

static void render_mode(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "mode", "gauge",
	       "1 for the mode the datapath enforces (dead-man switch included), 0 for the others.");
	for (int m = 0; m < PC_MODE_COUNT; m++)
		fprintf(f, PREFIX "mode{mode=\"%s\"} %d\n", pc_mode_name(m),
			s->enforced == (enum pc_mode)m);
	family(f, "deadman_enabled", "gauge",
	       "1 if the kernel dead-man switch is armed (a heartbeat timeout is set).");
	sample_u64(f, "deadman_enabled", !!s->deadman[PC_DM_TIMEOUT_NS]);
	family(f, "deadman_tripped", "gauge",
	       "1 if heartbeats are stale and the datapath enforces the dead-man action itself.");
	sample_u64(f, "deadman_tripped", s->deadman_tripped);
}

static void render_transitions(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "transitions_total", "counter",
	       "Mode transitions the agent enforced, by from, to and trigger (non-zero series only).");
	for (int from = 0; from < PC_MODE_COUNT; from++)
		for (int to = 0; to < PC_MODE_COUNT; to++)
			for (int t = 0; t < PC_TRIG_COUNT; t++) {
				__u64 v = s->agent[pc_as_transition(from, to, t)];

				if (!v)
					continue;
				fprintf(f, PREFIX "transitions_total{from=\"%s\",to=\"%s\",trigger=\"%s\"} %llu\n",
					pc_mode_name(from), pc_mode_name(to),
					pc_trigger_name(t),
					(unsigned long long)v);
			}
	/* One count: the agent keeps no from/to/trigger for failures. */
	family(f, "transition_failures_total", "counter",
	       "Mode transitions the agent decided but could not write to the datapath.");
	sample_u64(f, "transition_failures_total",
		   s->agent[PC_AS_TRANSITION_FAILED]);
}

static void render_fleet(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "fleet_envelopes_total", "counter",
	       "Fleet desired-state values from etcd, accepted or refused (by reason).");
	fprintf(f, PREFIX "fleet_envelopes_total{result=\"accepted\"} %llu\n",
		(unsigned long long)s->agent[PC_AS_FLEET_ACCEPTED]);
	for (int i = 0; i < PC_FR_COUNT; i++)
		fprintf(f, PREFIX "fleet_envelopes_total{result=\"%s\"} %llu\n",
			fleet_refusal_names[i],
			(unsigned long long)s->agent[PC_AS_FLEET_REFUSED + i]);
	family(f, "fleet_heartbeats_total", "counter",
	       "Signed controller heartbeats read from etcd, taken or refused (by reason).");
	fprintf(f, PREFIX "fleet_heartbeats_total{result=\"accepted\"} %llu\n",
		(unsigned long long)s->agent[PC_AS_FLEET_HB_ACCEPTED]);
	for (int i = 1; i < PC_MSG_VERDICT_COUNT; i++)
		fprintf(f, PREFIX "fleet_heartbeats_total{result=\"%s\"} %llu\n",
			pc_msg_verdict_name(i),
			(unsigned long long)s->agent[PC_AS_FLEET_HB_REFUSED + i]);
	family(f, "fleet_keepalives_total", "counter",
	       "etcd lease keep-alives answered (etcd's liveness, not a heartbeat).");
	sample_u64(f, "fleet_keepalives_total", s->agent[PC_AS_FLEET_KEEPALIVES]);
	family(f, "fleet_leases_lost_total", "counter",
	       "etcd leases that expired while the agent could not reach etcd.");
	sample_u64(f, "fleet_leases_lost_total", s->agent[PC_AS_FLEET_LEASE_LOST]);
}

/*
 * The agent keeps cumulative buckets but updates count, sum and buckets
 * one word at a time: a scrape in between could see them out of step.
 * Clamp so every exposition is a valid histogram (buckets non-decreasing,
 * +Inf equal to _count).
 */
static void render_tts(FILE *f, const struct pc_metrics_snap *s)
{
	const char *name = PREFIX "time_to_secure_seconds";
	__u64 count = s->agent[PC_AS_TTS_COUNT], prev = 0;

	family(f, "time_to_secure_seconds", "histogram",
	       "Time from detecting a trigger to the new mode being in the datapath.");
	for (int i = 0; i < PC_TTS_BUCKETS - 1; i++) {
		__u64 b = s->agent[PC_AS_TTS_BUCKET + i];

		b = b > count ? count : b;
		b = b < prev ? prev : b;
		prev = b;
		fprintf(f, "%s_bucket{le=\"", name);
		put_seconds(f, pc_tts_bounds_ns[i]);
		fprintf(f, "\"} %llu\n", (unsigned long long)b);
	}
	fprintf(f, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum ", name,
		(unsigned long long)count, name);
	put_seconds(f, s->agent[PC_AS_TTS_SUM_NS]);
	fprintf(f, "\n%s_count %llu\n", name, (unsigned long long)count);
}

/*
 * The age runs on the clock heartbeat loss is judged by: from the last
 * valid heartbeat, or, before the first, from the agent's start (which
 * writes that start to pc_deadman as one timeout of grace). So a
 * controller that never sends shows a growing age, as one that stopped
 * does. Left out (the family stays, without a sample) with no controller,
 * or if no agent ever wrote either time.
 */
static void render_heartbeat(FILE *f, const struct pc_metrics_snap *s)
{
	__u64 timeout_ms = s->agent[PC_AS_HB_TIMEOUT_MS];
	__u64 last = s->agent[PC_AS_LAST_HB_BOOT_NS];

	if (s->deadman[PC_DM_LAST_HB_NS] > last)
		last = s->deadman[PC_DM_LAST_HB_NS];
	family(f, "heartbeat_age_seconds", "gauge",
	       "Seconds since the last valid controller heartbeat (or since the agent started, before the first).");
	if (timeout_ms && last) {
		fputs(PREFIX "heartbeat_age_seconds ", f);
		put_seconds(f, s->boot_ns > last ? s->boot_ns - last : 0);
		fputc('\n', f);
	}
	family(f, "heartbeat_timeout_seconds", "gauge",
	       "Configured heartbeat timeout; 0 when the agent has no controller.");
	fputs(PREFIX "heartbeat_timeout_seconds ", f);
	put_seconds(f, timeout_ms * (NS_PER_S / MS_PER_S));
	fputc('\n', f);
}

static void message_samples(FILE *f, const struct pc_metrics_snap *s,
			    const char *type, unsigned int accepted,
			    unsigned int refused)
{
	const char *fmt = PREFIX "controller_messages_total{type=\"%s\",result=\"%s\"} %llu\n";

	fprintf(f, fmt, type, "accepted",
		(unsigned long long)s->agent[accepted]);
	for (int v = PC_MSG_OK + 1; v < PC_MSG_VERDICT_COUNT; v++)
		fprintf(f, fmt, type, pc_msg_verdict_name(v),
			(unsigned long long)s->agent[refused + v]);
}

static void render_controller(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "controller_messages_total", "counter",
	       "Controller messages by type, and accepted or why refused.");
	message_samples(f, s, "heartbeat", PC_AS_HB_ACCEPTED, PC_AS_HB_REFUSED);
	message_samples(f, s, "command", PC_AS_CMD_ACCEPTED, PC_AS_CMD_REFUSED);
	family(f, "controller_commands_failed_total", "counter",
	       "Accepted controller commands the agent failed to carry out.");
	sample_u64(f, "controller_commands_failed_total",
		   s->agent[PC_AS_CMD_FAILED]);
	family(f, "controller_datagrams_total", "counter",
	       "Datagrams to the controller port the policy passed: admitted to "
	       "the agent, or dropped by the datapath's budget (per source, or "
	       "the class's shared one).");
	for (int i = 0; i < PC_CS_COUNT; i++)
		fprintf(f, PREFIX "controller_datagrams_total{class=\"%s\",result=\"%s\"} %llu\n",
			pc_ctl_stat_class(i), pc_ctl_stat_result(i),
			(unsigned long long)s->ctl[i]);
	family(f, "control_refused_total", "counter",
	       "Local control socket requests refused (peer not root).");
	sample_u64(f, "control_refused_total", s->agent[PC_AS_CONTROL_REFUSED]);
	family(f, "audit_write_errors_total", "counter",
	       "Audit log records the agent failed to write.");
	sample_u64(f, "audit_write_errors_total", s->agent[PC_AS_AUDIT_ERRORS]);
}

/* One sample per opener of a flow table: egress "host", ingress "peer". */
static void by_opener(FILE *f, const char *name, const __u64 v[PC_DIR_COUNT])
{
	fprintf(f, PREFIX "%s{opener=\"host\"} %llu\n" PREFIX
		"%s{opener=\"peer\"} %llu\n", name,
		(unsigned long long)v[PC_DIR_EGRESS], name,
		(unsigned long long)v[PC_DIR_INGRESS]);
}

static void render_flows(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "flows", "gauge", "Entries in the flow tables, both openers.");
	sample_u64(f, "flows", s->flows);
	family(f, "flows_max", "gauge",
	       "Size of the flow tables, summed (least recently used entries go first).");
	sample_u64(f, "flows_max", s->flows_max);
	family(f, "flow_table_entries", "gauge",
	       "Flow entries by who opened them: the host, or the far end.");
	by_opener(f, "flow_table_entries", s->flows_by);
	family(f, "flow_table_max", "gauge",
	       "Size of each opener's table: a flood from outside evicts only peer entries.");
	by_opener(f, "flow_table_max", s->flows_max_by);
	family(f, "flows_embryonic", "gauge",
	       "TCP flow entries whose SYN got no answer yet (expired ones until reused).");
	by_opener(f, "flows_embryonic", s->flows_embryonic);
	family(f, "flow_inserts_total", "counter",
	       "Entries each flow table created (from the agent's start, or its seed on an upgrade).");
	by_opener(f, "flow_inserts_total", s->flows_inserted);
	family(f, "flow_evictions_total", "counter",
	       "Entries each flow table's LRU evicted to make room: created - deleted - live.");
	by_opener(f, "flow_evictions_total", s->flows_evicted);
	family(f, "flows_opened_total", "counter",
	       "Flows opened, by the direction of their first packet.");
	fprintf(f, PREFIX "flows_opened_total{direction=\"ingress\"} %llu\n"
		PREFIX "flows_opened_total{direction=\"egress\"} %llu\n",
		(unsigned long long)s->events[PC_EV_FLOW_NEW_INGRESS],
		(unsigned long long)s->events[PC_EV_FLOW_NEW_EGRESS]);
}

static void render_policy(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "policy_generation", "gauge",
	       "Generation of the active policy; 0: none loaded (everything dropped).");
	sample_u64(f, "policy_generation", s->settings.generation);
	family(f, "policy_last_load_timestamp_seconds", "gauge",
	       "Unix time the agent last loaded a policy; 0: never.");
	fputs(PREFIX "policy_last_load_timestamp_seconds ", f);
	put_seconds(f, s->agent[PC_AS_POLICY_LOADED_MS] * (NS_PER_S / MS_PER_S));
	fputc('\n', f);
	family(f, "policy_rules", "gauge",
	       "Rules of the active policy, management entries included.");
	sample_u64(f, "policy_rules", s->nrules);
}

static void render_drops(FILE *f, const struct pc_metrics_snap *s)
{
	static const struct {
		const char *result;
		enum pc_event ev;
	} rows[] = {
		{ "sampled", PC_EV_DROP_SAMPLED },
		{ "over_budget", PC_EV_DROP_UNSAMPLED },
		{ "ring_full", PC_EV_DROP_RING_FULL },
	};

	family(f, "drop_samples_total", "counter",
	       "Dropped packets by what became of their sample for the drop monitor.");
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		fprintf(f, PREFIX "drop_samples_total{result=\"%s\"} %llu\n",
			rows[i].result,
			(unsigned long long)s->events[rows[i].ev]);
}

static void render_guard(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "guard_refused_total", "counter",
	       "Socket options the egress guard refused, by what they would have set up.");
	for (int r = 0; r < PC_G_COUNT; r++)
		fprintf(f, PREFIX "guard_refused_total{refused=\"%s\"} %llu\n",
			pc_guard_refusal_name(r),
			(unsigned long long)s->guard[r]);
}

static void render_backstop(FILE *f, const struct pc_metrics_snap *s)
{
	family(f, "backstop_links", "gauge",
	       "Netfilter links of the backstop the agent installed; below 4: "
	       "a link re-created while no agent runs is not (fully) covered.");
	sample_u64(f, "backstop_links", s->agent[PC_AS_BACKSTOP_LINKS]);
	family(f, "backstop_dropped_packets_total", "counter",
	       "Packets the backstop dropped on managed interfaces without our XDP/TC.");
	for (int d = 0; d < PC_DIR_COUNT; d++)
		fprintf(f, PREFIX "backstop_dropped_packets_total{direction=\"%s\"} %llu\n",
			pc_dir_name(d), (unsigned long long)s->backstop[d].packets);
	family(f, "backstop_dropped_bytes_total", "counter",
	       "Bytes the backstop dropped on managed interfaces without our XDP/TC.");
	for (int d = 0; d < PC_DIR_COUNT; d++)
		fprintf(f, PREFIX "backstop_dropped_bytes_total{direction=\"%s\"} %llu\n",
			pc_dir_name(d), (unsigned long long)s->backstop[d].bytes);
}

static void render_info(FILE *f, const char *host_id)
{
	family(f, "build_info", "gauge", "Always 1; the version as a label.");
	fputs(PREFIX "build_info{version=\"" PC_VERSION "\"} 1\n", f);
	family(f, "host_info", "gauge", "Always 1; the host id as a label.");
	if (host_id && *host_id) {
		fputs(PREFIX "host_info{host_id=\"", f);
		label_value(f, host_id);
		fputs("\"} 1\n", f);
	}
}

static void render(FILE *f, const struct pc_metrics_snap *s,
		   const char *host_id)
{
	render_mode(f, s);
	render_policy(f, s);
	render_rules(f, s);
	render_traffic(f, s);
	render_flows(f, s);
	render_drops(f, s);
	render_guard(f, s);
	render_backstop(f, s);
	render_transitions(f, s);
	render_fleet(f, s);
	render_tts(f, s);
	render_heartbeat(f, s);
	render_controller(f, s);
	render_info(f, host_id);
}

int pc_metrics_render(const struct pc_maps *m, const char *host_id,
		      char **out, size_t *len)
{
	struct pc_metrics_snap *s;
	FILE *f;
	int err;

	*out = NULL;
	*len = 0;
	s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	err = pc_metrics_snapshot(m, s);
	if (err)
		goto out;
	f = open_memstream(out, len);
	if (!f) {
		err = -errno;
		goto out;
	}
	render(f, s, host_id);
	if (ferror(f))
		err = -ENOMEM;
	if (fclose(f) && !err)
		err = -errno;
	if (err) {
		free(*out);
		*out = NULL;
		*len = 0;
	}
out:
	free(s);
	return err;
}

/* ---- the server ---- */

struct pc_metrics_server {
	struct MHD_Daemon *d;
	struct pc_http_budget *budget;
	struct pc_maps m;		/* our own dup()s: the caller's may close */
	char host_id[PC_HOST_ID_LEN];
};

/*
 * "ADDR:PORT" or "[IPV6]:PORT", numeric, the port required (0: any free
 * one). The config parser holds the listen string to the same syntax.
 */
static int parse_listen(const char *s, struct sockaddr_storage *ss)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	char addr[INET6_ADDRSTRLEN];
	const char *port, *end;
	unsigned long p;
	size_t alen;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -EINVAL;
		s++;
		port = end + 2;
		ss->ss_family = AF_INET6;
	} else {
		end = strrchr(s, ':');
		/* A second colon: IPv6 without brackets, the port is unclear. */
		if (!end || memchr(s, ':', end - s))
			return -EINVAL;
		port = end + 1;
		ss->ss_family = AF_INET;
	}
	alen = end - s;
	if (!alen || alen >= sizeof(addr) || !*port || strlen(port) > 5 ||
	    strspn(port, "0123456789") != strlen(port))
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	p = strtoul(port, NULL, 10);
	if (p > 65535)
		return -EINVAL;
	if (ss->ss_family == AF_INET6) {
		sin6->sin6_port = htons(p);
		return inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1 ?
			       0 : -EINVAL;
	}
	sin->sin_port = htons(p);
	return inet_pton(AF_INET, addr, &sin->sin_addr) == 1 ? 0 : -EINVAL;
}

static enum MHD_Result respond(struct MHD_Connection *c, unsigned int status,
			       void *body, size_t len,
			       enum MHD_ResponseMemoryMode mem,
			       const char *type)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(len, body, mem);
	if (!r) {
		if (mem == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	/* One request a connection: the budget's deadline is the request's. */
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result text(struct MHD_Connection *c, unsigned int status,
			    const char *msg)
{
	return respond(c, status, (void *)msg, strlen(msg),
		       MHD_RESPMEM_PERSISTENT, "text/plain; charset=utf-8");
}

/*
 * The server's own counters, after what the maps say: they live in this
 * process, not in a map, so pc_metrics_render (from the maps alone) has
 * none of them. 0 on success, else body is left as it was.
 */
static int append_http(struct pc_metrics_server *s, char **body, size_t *len)
{
	struct pc_http_budget_stats st;
	char buf[896];
	char *grown;
	int n;

	pc_http_budget_stats(s->budget, &st);
	n = snprintf(buf, sizeof(buf),
		     "# HELP " PREFIX "http_connections_closed_total Connections to this server it closed early: over_budget, no room left for another client (%d at once from other hosts); deadline, still open %d ms after accept.\n"
		     "# TYPE " PREFIX "http_connections_closed_total counter\n"
		     PREFIX "http_connections_closed_total{reason=\"over_budget\"} %llu\n"
		     PREFIX "http_connections_closed_total{reason=\"deadline\"} %llu\n"
		     "# HELP " PREFIX "http_connections_open Connections this server holds now, this scrape's own included (at most %d).\n"
		     "# TYPE " PREFIX "http_connections_open gauge\n"
		     PREFIX "http_connections_open %llu\n",
		     PC_HTTP_REMOTE, PC_HTTP_DEADLINE_MS,
		     (unsigned long long)st.over_budget,
		     (unsigned long long)st.deadline,
		     PC_HTTP_CONNECTIONS, (unsigned long long)st.open);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -EOVERFLOW;
	grown = realloc(*body, *len + n + 1);
	if (!grown)
		return -ENOMEM;
	memcpy(grown + *len, buf, n + 1);
	*body = grown;
	*len += n;
	return 0;
}

static enum MHD_Result serve_metrics(struct pc_metrics_server *s,
				     struct MHD_Connection *c)
{
	char *body, msg[128];
	size_t len;
	int err;

	err = pc_metrics_render(&s->m, s->host_id, &body, &len);
	if (!err) {
		err = append_http(s, &body, &len);
		if (!err)
			return respond(c, MHD_HTTP_OK, body, len,
				       MHD_RESPMEM_MUST_FREE, CONTENT_TYPE);
		free(body);
	}
	/* A failed scrape (up == 0) says more than a partial one. */
	pr_warn("metrics: Couldn't read the maps: %s\n", strerror(-err));
	snprintf(msg, sizeof(msg), "reading the maps: %s\n", strerror(-err));
	return respond(c, MHD_HTTP_INTERNAL_SERVER_ERROR, msg, strlen(msg),
		       MHD_RESPMEM_MUST_COPY, "text/plain; charset=utf-8");
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c,
			      const char *url, const char *method,
			      const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct pc_metrics_server *s = cls;
	bool metrics = !strcmp(url, "/metrics");
	__u32 v;

	if (!metrics && strcmp(url, "/healthz"))
		return text(c, MHD_HTTP_NOT_FOUND, "not found\n");
	/* MHD leaves the body out of HEAD answers itself. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD))
		return text(c, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "method not allowed\n");
	if (metrics)
		return serve_metrics(s, c);
	if (pc_state_get(&s->m, PC_STATE_ACTIVE_SLOT, &v))
		return text(c, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "maps unreadable\n");
	return text(c, MHD_HTTP_OK, "ok\n");
}

/*
 * libmicrohttpd's messages go to our log, with the daemon's timestamps;
 * MHD_LOG_PER_S a second at most: it has a line for every connection it
 * refuses, and whoever reaches the port may connect as fast as they like.
 * Only MHD's thread calls this.
 */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	static time_t second;
	static unsigned int lines, dropped;
	struct timespec now;
	char buf[256];
	size_t len;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (now.tv_sec != second) {
		if (dropped)
			pr_warn("metrics: %u more libmicrohttpd messages in a second, not logged\n",
				dropped);
		second = now.tv_sec;
		lines = 0;
		dropped = 0;
	}
	if (lines++ >= MHD_LOG_PER_S) {
		dropped++;
		return;
	}
	vsnprintf(buf, sizeof(buf), fmt, ap);
	len = strlen(buf);
	pr_warn("metrics: %s%s", buf, len && buf[len - 1] == '\n' ? "" : "\n");
}

/* Close-on-exec copies, so a helper the agent runs does not inherit them. */
static int dup_maps(const struct pc_maps *from, struct pc_maps *to)
{
	const int *src = (const int *)from;
	int *dst = (int *)to;
	size_t n = sizeof(*to) / sizeof(int);

	for (size_t i = 0; i < n; i++)
		dst[i] = -1;
	for (size_t i = 0; i < n; i++) {
		if (src[i] < 0)
			continue;
		dst[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
		if (dst[i] < 0) {
			int err = -errno;

			pc_maps_close(to);
			return err;
		}
	}
	return 0;
}

/* NULL with errno set (EADDRINUSE and the like) on failure. */
static struct MHD_Daemon *start_daemon(struct pc_metrics_server *s,
				       const struct sockaddr_storage *ss)
{
	/* Auto picks epoll: select() fails on fds >= 1024. */
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
			     MHD_USE_ERROR_LOG;
	__u16 port = ((const struct sockaddr_in *)ss)->sin_port;
	struct MHD_Daemon *d;
	sigset_t all, old;
	int err;

	/* sin_port and sin6_port share their offset. */
	if (ss->ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/*
	 * The server thread inherits our signal mask: block everything so
	 * signals go to the caller's threads (the agent takes them through
	 * a signalfd, which only works while no thread accepts them).
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* The port again, only for MHD's own messages: SOCK_ADDR rules. */
	d = MHD_start_daemon(flags, ntohs(port), NULL, NULL, handle, s,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_SOCK_ADDR, (const struct sockaddr *)ss,
			     MHD_OPTION_CONNECTION_LIMIT,
			     (unsigned int)PC_HTTP_CONNECTIONS,
			     MHD_OPTION_PER_IP_CONNECTION_LIMIT,
			     (unsigned int)PC_HTTP_PER_CLIENT,
			     MHD_OPTION_NOTIFY_CONNECTION,
			     pc_http_budget_notify, s->budget,
			     MHD_OPTION_CONNECTION_TIMEOUT,
			     (unsigned int)HTTP_IDLE_S, MHD_OPTION_END);
	err = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = err;
	return d;
}

struct pc_metrics_server *pc_metrics_start(const char *listen,
					   const struct pc_maps *m,
					   const char *host_id)
{
	struct pc_metrics_server *s;
	struct sockaddr_storage ss;
	int err;

	if (!listen || parse_listen(listen, &ss)) {
		pr_warn("Couldn't start the metrics server: bad listen address '%s' (want ADDR:PORT or [IPV6]:PORT)\n",
			listen ? listen : "");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		pr_warn("Couldn't start the metrics server: %s\n",
			strerror(ENOMEM));
		return NULL;
	}
	snprintf(s->host_id, sizeof(s->host_id), "%s", host_id ? host_id : "");
	err = dup_maps(m, &s->m);
	if (err) {
		pr_warn("Couldn't start the metrics server: duplicating map fds: %s\n",
			strerror(-err));
		free(s);
		return NULL;
	}
	s->budget = pc_http_budget_start();
	if (!s->budget) {
		pr_warn("Couldn't start the metrics server: its deadline thread: %s\n",
			strerror(errno));
		pc_maps_close(&s->m);
		free(s);
		return NULL;
	}
	errno = 0;
	s->d = start_daemon(s, &ss);
	if (!s->d) {
		pr_warn("Couldn't start the metrics server on '%s': %s\n",
			listen, errno ? strerror(errno) : "see above");
		pc_http_budget_stop(s->budget);
		pc_maps_close(&s->m);
		free(s);
		return NULL;
	}
	pr_info("metrics: serving /metrics on %s (port %d; %d connections per client, %d in all, %d of them for this host alone; %d ms each)\n",
		listen, pc_metrics_port(s), PC_HTTP_PER_CLIENT,
		PC_HTTP_CONNECTIONS, PC_HTTP_CONNECTIONS - PC_HTTP_REMOTE,
		PC_HTTP_DEADLINE_MS);
	return s;
}

int pc_metrics_port(const struct pc_metrics_server *s)
{
	const union MHD_DaemonInfo *i;

	i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	return i && i->port ? i->port : -ENOENT;
}

void pc_metrics_stop(struct pc_metrics_server *s)
{
	if (!s)
		return;
	/* Joins the server thread: no handler runs on our fds after this. */
	MHD_stop_daemon(s->d);
	/* After MHD: its last "closed" notifications still reach the budget. */
	pc_http_budget_stop(s->budget);
	pc_maps_close(&s->m);
	free(s);
}

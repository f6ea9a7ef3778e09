// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent. One thread, one poll loop over: the controller's UDP socket,
 * the control socket, netlink link events, a 100 ms timer and signals.
 *
 * Every mode change goes through transition(): the state machine decides,
 * the pinned mode word is written (that is the moment the host is
 * secure), then the change is recorded: pc_transitions (for status), the
 * state file (for reboots) and the audit log. Time to secure is measured
 * from the detection of the trigger to the map write.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <bpf/bpf.h>
#include "agent.h"
#include "agent_fleet.h"
#include "agent_stats.h"
#include "anomaly.h"
#include "apply.h"
#include "attach.h"
#include "audit.h"
#include "backstop.h"
#include "compile.h"
#include "config.h"
#include "config_warn.h"
#include "control.h"
#include "fleet.h"
#include "fsm.h"
#include "guard.h"
#include "ctl_if.h"
#include "linkwatch.h"
#include "mgmt_if.h"
#include "stats.h"
#include "lockout.h"
#include "metrics.h"
#include "log.h"
#include "msg.h"
#include "persist.h"
#include "pins.h"
#include "policy.h"
#include "portcullis.skel.h"

#define TICK_MS			100
#define PC_DEFAULT_AUDIT_LOG	"/var/log/portcullis/audit.jsonl"
#define DATAGRAMS_PER_TURN	64	/* then the other fds get their turn */
#define DRAIN_MAX_DATAGRAMS	1024	/* before heartbeat loss: bounded */
#define DRAIN_MAX_NS		(20ULL * 1000000)
#define UDP_RCVBUF		(4 << 20)
#define POLICY_RETRY_MS		5000	/* re-read etcd for a pending fleet policy */

/* Where the policy in force at start came from: the one meant (the
 * pushed one, else the config's) or a fallback, in this order. */
enum start_src { SRC_PUSHED, SRC_CONFIG, SRC_PINNED, SRC_NONE };

static const char *const start_src_name[] = {
	[SRC_PUSHED] = "pushed", [SRC_CONFIG] = "config",
	[SRC_PINNED] = "pinned", [SRC_NONE] = "none",
};

struct agent {
	const struct agent_opts *o;
	struct pc_config cfg;
	const char *policy_path;	/* config's, a pushed one, or a fallback's name */
	char pushed_path[PATH_MAX];	/* STATE_DIR/policies/<saved hash>.yaml */
	char config_error[512];
	struct portcullis_bpf *skel;
	struct pc_guard guard;		/* the egress guard, if it could attach */
	struct pc_maps m;
	struct pc_fsm fsm;
	struct pc_fsm_cfg fcfg;
	struct pc_replay replay;
	struct pc_persist saved;
	/* The state file existed but was not to be trusted: why, and where
	 * it was kept (empty if it could not be moved). */
	char state_untrusted[160];
	char state_aside[PATH_MAX];
	struct pc_anomaly an;
	struct pc_linkwatch lw;
	struct pc_metrics_server *metrics;
	char lock_path[PATH_MAX];
	int link_fds[PC_MAX_IFACES];	/* our own hold on the XDP links */
	int backstop_fds[PC_BACKSTOP_LINKS];	/* ... and on the backstop's */
	int udp_fd, ctl_fd, tfd, sfd;
	__u64 last_hb_ms;		/* boot clock */
	__u64 next_sample_ms;
	/* Per key, the heartbeat seq reserved on disk (pc_hb_seq_reserve). */
	__u64 hb_mark[PC_MAX_KEYS];
	/* fleet mode */
	struct pc_fleet_link *fleet;	/* the etcd threads */
	struct pc_fleet_view view;	/* envelopes in force, per key */
	__u64 fleet_refused;
	/* Signed fleet heartbeats: the last seq taken per signing key (by
	 * public key, so a reload that reorders keys keeps it), and the
	 * last one taken, for status. */
	struct {
		__u8 pk[PC_PK_LEN];
		__u64 seq;
	} fleet_hb_seen[PC_MAX_KEYS];
	size_t fleet_hb_nseen;
	struct pc_fleet_heartbeat fleet_hb_last;
	__u64 fleet_hb_last_wall_ms;	/* when it was taken */
	/* Per followed key, the revision last refused: a re-read after a
	 * reconnect is not a new offence. */
	__s64 refused_rev[PC_FLEET_MAX_TARGETS];
	__s64 policy_refused_rev;
	__u64 next_policy_retry_ms;
	char fleet_endpoint[256];	/* the endpoint it is up on */
	__u64 next_report_ms;
	__u64 mode_since_wall_ms;	/* the last transition */
	uint64_t watchdog_usec;		/* sd_watchdog_enabled() */
	__u64 next_watchdog_ms;
	/* The policy in force's interface-bound management entries, for an
	 * interface that (re)appears after it was applied. */
	struct pc_mgmt_binds binds;
	/* Small members last: no padding between the large ones. */
	__u32 generation;		/* of the policy in force */
	enum start_src policy_src;
	int lock_fd;
	/* The config could not be read: the agent runs on defaults just
	 * long enough to secure the host, then exits 1 (systemd retries). */
	bool config_failed;
	bool backstop_on;
	bool repin_warned;
	bool hb_lost;
	bool fleet_linked;		/* watch stream up */
	/* The policy the envelopes name could not be had (not in etcd yet,
	 * or its text wrong): re-read etcd now and then until it can. */
	bool policy_pending;
	bool exiting;
};

static void hold_links(struct agent *a);
static void fleet_report(struct agent *a);

/* Heartbeats come from a UDP controller, the fleet's signed heartbeat
 * in etcd, or both. */
static bool hb_enabled(const struct agent *a)
{
	return a->cfg.controller || a->cfg.fleet;
}

/* ---- clocks ---- */

static __u64 clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* The boot clock: the datapath's bpf_ktime_get_boot_ns(); suspend counts. */
static __u64 boot_ms(void)
{
	return clock_ns(CLOCK_BOOTTIME) / 1000000;
}

static __u64 wall_ms(void)
{
	return clock_ns(CLOCK_REALTIME) / 1000000;
}

static void stat_inc(struct agent *a, enum pc_agent_stat s)
{
	__u32 key = s;
	__u64 v = 0;

	bpf_map_lookup_elem(a->m.agent_stats, &key, &v);
	v++;
	bpf_map_update_elem(a->m.agent_stats, &key, &v, BPF_ANY);
}

static void stat_set(struct agent *a, enum pc_agent_stat s, __u64 v)
{
	__u32 key = s;

	bpf_map_update_elem(a->m.agent_stats, &key, &v, BPF_ANY);
}

static void stat_add(struct agent *a, unsigned int s, __u64 n)
{
	__u32 key = s;
	__u64 v = 0;

	bpf_map_lookup_elem(a->m.agent_stats, &key, &v);
	v += n;
	bpf_map_update_elem(a->m.agent_stats, &key, &v, BPF_ANY);
}

/* Counters for /metrics: transitions by (from, to, trigger), and the
 * time-to-secure histogram (cumulative buckets, as Prometheus has them). */
static void stat_transition(struct agent *a, enum pc_mode from, enum pc_mode to,
			    enum pc_trigger t, __u64 tts_ns)
{
	unsigned int i;

	if (from < PC_MODE_COUNT && to < PC_MODE_COUNT && t < PC_TRIG_COUNT)
		stat_add(a, pc_as_transition(from, to, t), 1);
	stat_add(a, PC_AS_TTS_COUNT, 1);
	stat_add(a, PC_AS_TTS_SUM_NS, tts_ns);
	for (i = 0; i < PC_TTS_BUCKETS - 1; i++)
		if (tts_ns <= pc_tts_bounds_ns[i])
			stat_add(a, PC_AS_TTS_BUCKET + i, 1);
	stat_add(a, PC_AS_TTS_BUCKET + PC_TTS_BUCKETS - 1, 1);
}

static void audit_checked(struct agent *a, int ret)
{
	if (ret)
		stat_inc(a, PC_AS_AUDIT_ERRORS);
}

/* ---- persistence ---- */

static int save_state(struct agent *a)
{
	int err;

	a->saved.mode = a->fsm.mode;
	a->saved.cause = a->fsm.cause;
	a->saved.since_wall_ms = wall_ms();
	/* On defaults the agent knows no keys and no fleet: keep what was
	 * saved of them (replay state must never go back). */
	if (a->config_failed)
		goto save;
	a->saved.nkeys = a->cfg.nkeys;
	for (size_t i = 0; i < a->cfg.nkeys; i++) {
		memcpy(a->saved.keys[i].pk, a->cfg.keys[i], PC_PK_LEN);
		a->saved.keys[i].seq[0] = a->hb_mark[i] > a->replay.last_seq[i][0] ?
			a->hb_mark[i] : a->replay.last_seq[i][0];
		a->saved.keys[i].seq[1] = a->replay.last_seq[i][1];
	}
	a->saved.nifaces = 0;
	for (size_t i = 0; i < a->cfg.nifaces && i < PC_MAX_IFACES; i++)
		if (strlen(a->cfg.ifaces[i]) < PC_IFNAME_LEN)
			strcpy(a->saved.ifaces[a->saved.nifaces++],
			       a->cfg.ifaces[i]);
	a->saved.nfleet = 0;
	for (size_t i = 0; i < a->view.n; i++)
		if (a->view.set[i])
			a->saved.fleet[a->saved.nfleet++] = a->view.d[i];
save:
	err = pc_persist_save(a->cfg.state_dir, &a->saved);
	if (err)
		pr_warn("Couldn't save state in %s: %s\n", a->cfg.state_dir,
			strerror(-err));
	return err;
}

/* The replay state of the keys trusted until a reload. */
struct replay_was {
	__u8 keys[PC_MAX_KEYS][PC_PK_LEN];
	size_t nkeys;
	struct pc_replay replay;
	__u64 hb_mark[PC_MAX_KEYS];
};

/*
 * Replay state of the keys we trust now, by key: a key trusted until now
 * (WAS, a reload) keeps its own; else what was saved -- for heartbeats
 * the reserved mark, so a start refuses every seq the last agent took.
 */
static void restore_replay(struct agent *a, const struct replay_was *was)
{
	memset(&a->replay, 0, sizeof(a->replay));
	memset(a->hb_mark, 0, sizeof(a->hb_mark));
	for (size_t i = 0; i < a->cfg.nkeys; i++) {
		for (size_t j = 0; j < a->saved.nkeys; j++)
			if (!memcmp(a->cfg.keys[i], a->saved.keys[j].pk, PC_PK_LEN)) {
				a->replay.last_seq[i][0] = a->saved.keys[j].seq[0];
				a->replay.last_seq[i][1] = a->saved.keys[j].seq[1];
				a->hb_mark[i] = a->saved.keys[j].seq[0];
			}
		for (size_t j = 0; was && j < was->nkeys; j++)
			if (!memcmp(a->cfg.keys[i], was->keys[j], PC_PK_LEN)) {
				a->replay.last_seq[i][0] = was->replay.last_seq[j][0];
				a->replay.last_seq[i][1] = was->replay.last_seq[j][1];
				a->hb_mark[i] = was->hb_mark[j];
			}
	}
}

/* A heartbeat seq past the reserved mark: the next mark on disk before
 * the heartbeat counts (kept only once saved: a failed save retries). */
static void reserve_hb_seq(struct agent *a, int key, __u64 seq)
{
	__u64 was = a->hb_mark[key], mark = was;

	if (!pc_hb_seq_reserve(&mark, seq,
			       pc_hb_seq_reserve_for(a->cfg.hb_timeout_ms)))
		return;
	a->hb_mark[key] = mark;
	if (save_state(a))
		a->hb_mark[key] = was;
}

/* ---- transitions ---- */

static void record_transition(struct agent *a, enum pc_mode from,
			      enum pc_mode to, enum pc_trigger t,
			      const char *detail, __u64 tts_ns)
{
	static __u64 seq;
	struct pc_transition tr = {};
	__u32 key;

	/* Continue the ring where the previous agent left it. */
	if (!seq)
		for (key = 0; key < PC_MAX_TRANSITIONS; key++)
			if (!bpf_map_lookup_elem(a->m.transitions, &key, &tr) &&
			    tr.seq > seq)
				seq = tr.seq;
	memset(&tr, 0, sizeof(tr));
	tr.seq = ++seq;
	tr.wall_ms = wall_ms();
	tr.tts_ns = tts_ns;
	tr.from = from;
	tr.to = to;
	tr.trigger = t;
	snprintf(tr.detail, sizeof(tr.detail), "%s", detail);
	key = tr.seq % PC_MAX_TRANSITIONS;
	bpf_map_update_elem(a->m.transitions, &key, &tr, BPF_ANY);
}

/*
 * Decide, enforce, record. detect_ns: CLOCK_MONOTONIC when the trigger
 * was detected. Returns true if the mode changed.
 */
static bool transition(struct agent *a, enum pc_trigger t,
		       enum pc_mode requested, const char *detail,
		       __u64 detect_ns)
{
	struct pc_fsm_step step;
	enum pc_mode from = a->fsm.mode;
	char tts[32];
	__u64 tts_ns;
	int err;

	step = pc_fsm_decide(&a->fsm, &a->fcfg, t, requested, boot_ms());
	if (!step.change) {
		pr_debug("%s: stay %s (%s)\n", pc_trigger_name(t),
			 pc_mode_name(from), step.why);
		return false;
	}
	/* The moment of truth: one word in a pinned map. */
	err = pc_mode_write(&a->m, step.to);
	tts_ns = clock_ns(CLOCK_MONOTONIC) - detect_ns;
	if (err) {
		pr_warn("Couldn't set mode %s: %s\n", pc_mode_name(step.to),
			strerror(-err));
		stat_inc(a, PC_AS_TRANSITION_FAILED);
		audit_checked(a, pc_audit("transition_failed", "trigger",
					  pc_trigger_name(t), "to",
					  pc_mode_name(step.to), "error",
					  strerror(-err), PC_AUDIT_END));
		return false;
	}
	pc_fsm_commit(&a->fsm, &a->fcfg, &step, t, boot_ms());
	a->mode_since_wall_ms = wall_ms();
	record_transition(a, from, step.to, t, detail, tts_ns);
	stat_inc(a, PC_AS_TRANSITIONS);
	stat_transition(a, from, step.to, t, tts_ns);
	save_state(a);
	snprintf(tts, sizeof(tts), "#%llu", (unsigned long long)(tts_ns / 1000));
	audit_checked(a, pc_audit("transition", "from", pc_mode_name(from), "to",
				  pc_mode_name(step.to), "trigger",
				  pc_trigger_name(t), "detail", detail,
				  "time_to_secure_us", tts, PC_AUDIT_END));
	pr_info("mode %s -> %s (%s: %s), secured in %llu us\n",
		pc_mode_name(from), pc_mode_name(step.to), pc_trigger_name(t),
		detail, (unsigned long long)(tts_ns / 1000));
	sd_notifyf(0, "STATUS=mode %s", pc_mode_name(step.to));
	fleet_report(a);
	return true;
}

/* ---- policy ---- */

/* Parse, check and compile; nothing touches the datapath here. On a
 * refusal err says why (logged here, audited by the caller). */
static int policy_prepare(struct agent *a, const char *path,
			  const struct pc_config *cfg, struct pc_policy *p,
			  struct pc_compiled *c, bool check_ssh, bool at_start,
			  char *err, size_t errlen)
{
	char why[480];
	int ret;

	ret = pc_policy_load_file(path, p, err, errlen);
	if (ret) {
		pr_warn("policy refused: %s\n", err);
		return ret;
	}
	/* The agent's config may name the interfaces instead. */
	if (cfg->nifaces) {
		for (size_t i = 0; i < p->nifaces; i++)
			free(p->ifaces[i]);
		free(p->ifaces);
		p->ifaces = calloc(cfg->nifaces, sizeof(*p->ifaces));
		p->nifaces = 0;
		for (size_t i = 0; p->ifaces && i < cfg->nifaces; i++)
			if ((p->ifaces[i] = strdup(cfg->ifaces[i])))
				p->nifaces++;
	}
	ret = -EINVAL;
	if (!p->nifaces) {
		snprintf(err, errlen, "%s names no interfaces", path);
		goto fail;
	}
	/* A controller interface not attached: heartbeats there would pass
	 * unseen, and every attached link would refuse the port. */
	if (pc_ctl_if_unattached(cfg, p->ifaces, p->nifaces)) {
		snprintf(err, errlen, "controller.interfaces names '%s', which %s "
			 "does not attach to",
			 pc_ctl_if_unattached(cfg, p->ifaces, p->nifaces), path);
		goto fail;
	}
	/* Every interface must be usable before anything is touched. One
	 * that is missing is attached when it appears (on_link); at start
	 * none refuses the policy: it is attached where it can be. */
	for (size_t i = 0; i < p->nifaces; i++) {
		int e = pc_iface_check(p->ifaces[i]);

		if (e && e != -ENODEV && !at_start) {
			ret = e;
			snprintf(err, errlen, "interface '%s' cannot be used",
				 p->ifaces[i]);
			goto fail;
		}
	}
	if (pc_lockout_check(p, check_ssh ? getenv("SSH_CONNECTION") : NULL,
			     why, sizeof(why))) {
		if (!a->o->force) {
			snprintf(err, errlen, "anti-lockout: %.400s; use --force to "
				 "apply anyway", why);
			ret = -EPERM;
			goto fail;
		}
		pr_warn("anti-lockout overridden by --force: %s\n", why);
	}
	ret = pc_compile(p, c, err, errlen);
	if (!ret)
		return 0;
fail:
	pr_warn("policy refused: %s\n", err);
	pc_policy_free(p);
	return ret;
}

static bool policy_has_iface(const struct pc_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nifaces; i++)
		if (!strcmp(p->ifaces[i], name))
			return true;
	return false;
}

/*
 * Attach to each of NAMES. An interface missing now is audited and
 * attached when it appears (on_link). Other failures: strict, the first
 * is the result (a reload refuses); else audited too (at start).
 */
static int attach_ifaces(struct agent *a, char *const *names, size_t n,
			 bool strict, char *err, size_t errlen)
{
	int ret = 0;

	for (size_t i = 0; i < n; i++) {
		int e = pc_attach_iface(a->skel, a->cfg.pin_dir, names[i],
					a->cfg.xdp_mode);

		if (!e)
			continue;
		if (!strict || e == -ENODEV) {
			audit_checked(a, pc_audit("interface_unattached",
						  "interface", names[i], "error",
						  strerror(-e), PC_AUDIT_END));
			pr_warn("interface '%s' not attached (%s)%s\n", names[i],
				strerror(-e), e == -ENODEV ?
				": attached when it appears" : "");
		} else if (!ret) {
			ret = e;
			snprintf(err, errlen, "cannot attach to '%s': %s",
				 names[i], strerror(-e));
		}
	}
	return ret;
}

/* Apply atomically, attach to the policy's interfaces, drop the others.
 * at_start: interfaces that cannot be attached are not an error. */
static int enforce(struct agent *a, const struct pc_policy *p,
		   const struct pc_compiled *c, __u32 *generation, bool at_start,
		   char *err, size_t errlen)
{
	struct pc_iface ifc;
	int lock, ret;

	lock = pc_lock(a->cfg.pin_dir);
	if (lock < 0) {
		snprintf(err, errlen, "Couldn't lock pin dir '%s': %s",
			 a->cfg.pin_dir, strerror(-lock));
		pr_warn("%s\n", err);
		return lock;
	}
	ret = pc_apply(&a->m, c, generation, err, errlen);
	if (ret) {
		pr_warn("policy not applied, previous policy still enforcing: %s\n",
			err);
		goto out;
	}
	a->binds = c->binds;
	ret = attach_ifaces(a, p->ifaces, p->nifaces, !at_start, err, errlen);
	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		if (bpf_map_lookup_elem(a->m.ifaces, &i, &ifc) || !ifc.ifindex)
			continue;
		if (!policy_has_iface(p, ifc.name)) {
			pr_info("iface '%s' no longer in the policy: detaching\n",
				ifc.name);
			pc_detach_iface(a->m.ifaces, a->cfg.pin_dir, i, false);
		}
	}
out:
	pc_unlock(lock);
	return ret;
}

/* Load a policy file and enforce it; the old one stays on any error. */
static int load_policy(struct agent *a, const char *path, const char *why,
		       bool check_ssh)
{
	struct pc_policy p = {};
	struct pc_compiled c = {};
	char gen_s[16], n_s[16], err[512] = "";
	__u32 gen = 0;
	int ret;

	ret = policy_prepare(a, path, &a->cfg, &p, &c, check_ssh, false, err,
			     sizeof(err));
	if (!ret) {
		ret = enforce(a, &p, &c, &gen, false, err, sizeof(err));
		pc_compiled_free(&c);
	}
	if (ret) {
		audit_checked(a, pc_audit("policy_refused", "path", path, "reason",
					  why, "error", err[0] ? err : strerror(-ret),
					  PC_AUDIT_END));
		pc_policy_free(&p);	/* safe when prepare freed it already */
		return ret;
	}
	stat_set(a, PC_AS_POLICY_LOADED_MS, wall_ms());
	a->generation = gen;
	snprintf(gen_s, sizeof(gen_s), "#%u", gen);
	snprintf(n_s, sizeof(n_s), "#%zu", p.nrules);
	audit_checked(a, pc_audit("policy_loaded", "path", path, "reason", why,
				  "generation", gen_s, "rules", n_s, PC_AUDIT_END));
	pr_info("%s policy %s: generation %u, %zu rules (%s)\n",
		strcmp(why, "reload") ? "loaded" : "reloaded", path, gen,
		p.nrules, why);
	pc_policy_free(&p);
	return 0;
}

/* ---- dead-man switch ---- */

static void deadman_write(struct agent *a, enum pc_deadman_key k, __u64 v)
{
	__u32 key = k;

	if (bpf_map_update_elem(a->m.deadman, &key, &v, BPF_ANY))
		pr_warn("Couldn't write dead-man switch: %s\n", strerror(errno));
}

static __u64 deadman_read(struct agent *a, enum pc_deadman_key k)
{
	__u32 key = k;
	__u64 v = 0;

	bpf_map_lookup_elem(a->m.deadman, &key, &v);
	return v;
}

/* The controller port's budget and interfaces in the datapath
 * (bpf/ctl_limit.h), names resolved now. */
static void ctl_configure(struct agent *a)
{
	struct pc_ctl_conf conf;

	pc_ctl_if_conf(&a->cfg, &conf);
	if (pc_ctl_configure(&a->m, &conf))
		pr_warn("Couldn't set the controller port's budget: datagrams "
			"to it are not rationed%s\n", conf.nbound ?
			" nor bound to controller.interfaces" : "");
}

static void deadman_configure(struct agent *a)
{
	bool on = hb_enabled(a) && a->cfg.kernel_deadman;

	stat_set(a, PC_AS_HB_TIMEOUT_MS, hb_enabled(a) ? a->cfg.hb_timeout_ms : 0);
	deadman_write(a, PC_DM_ACTION, a->cfg.hb_action);
	deadman_write(a, PC_DM_TIMEOUT_NS, on ? a->cfg.hb_timeout_ms * 1000000 : 0);
	ctl_configure(a);
}

/* ---- controller messages ---- */

static void addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *ip = ss->ss_family == AF_INET6 ?
		(const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr :
		(const void *)&((const struct sockaddr_in *)ss)->sin_addr;

	if (!inet_ntop(ss->ss_family, ip, buf, len))
		snprintf(buf, len, "?");
}

/*
 * Did the kernel's switch trip while this agent was not looking (hung,
 * stopped, starved)? Then it is a transition like any other: recorded,
 * and the mode held by the agent too, so a first heartbeat afterwards
 * does not lift it past release_after and the back-off.
 */
static void check_deadman_tripped(struct agent *a)
{
	__u64 last = deadman_read(a, PC_DM_LAST_HB_NS);
	__u64 timeout = deadman_read(a, PC_DM_TIMEOUT_NS);
	__u64 detect = clock_ns(CLOCK_MONOTONIC);

	if (!timeout || !last || clock_ns(CLOCK_BOOTTIME) - last <= timeout)
		return;
	if (!a->hb_lost) {
		a->hb_lost = true;
		pc_fsm_heartbeat_lost(&a->fsm);
		audit_checked(a, pc_audit("heartbeat_lost", "detail",
					  "the dead-man switch tripped while the "
					  "agent was not running", PC_AUDIT_END));
	}
	transition(a, PC_TRIG_DEADMAN, a->cfg.hb_action,
		   "dead-man switch tripped while the agent was stalled", detect);
}

/*
 * A valid heartbeat, counting as if it had come at boot-clock at_ms (a
 * fleet heartbeat counts from when it was signed, not when it was read).
 * Never moves the last heartbeat back.
 */
static void heartbeat_at(struct agent *a, __u64 at_ms)
{
	__u64 now = boot_ms();

	check_deadman_tripped(a);

	if (at_ms > now)
		at_ms = now;
	if (at_ms > a->last_hb_ms) {
		a->last_hb_ms = at_ms;
		deadman_write(a, PC_DM_LAST_HB_NS, at_ms * 1000000);
		stat_set(a, PC_AS_LAST_HB_BOOT_NS, at_ms * 1000000);
	}
	stat_inc(a, PC_AS_HB_ACCEPTED);
	pc_fsm_heartbeat(&a->fsm);
	if (a->hb_lost) {
		a->hb_lost = false;
		audit_checked(a, pc_audit("heartbeat_restored", PC_AUDIT_END));
		pr_info("heartbeats restored\n");
	}
	transition(a, PC_TRIG_HEARTBEAT_RESTORED, PC_MODE_NORMAL,
		   "heartbeats valid again", clock_ns(CLOCK_MONOTONIC));
}

/* A pushed policy is in force: the state file may name it now. */
static void pushed_in_force(struct agent *a, const __u8 *hash)
{
	memcpy(a->saved.policy_hash, hash, PC_HASH_LEN);
	a->saved.has_policy = 1;
	pc_persist_policy_path(a->cfg.state_dir, hash, a->pushed_path,
			       sizeof(a->pushed_path));
	a->policy_path = a->pushed_path;
	a->policy_src = SRC_PUSHED;
}

static int apply_pushed_policy(struct agent *a, const struct pc_msg *msg)
{
	__u8 hash[PC_HASH_LEN];
	char path[PATH_MAX], why[PATH_MAX + 96] = "";
	int err;

	if (msg->policy) {
		err = pc_persist_store_policy(a->cfg.state_dir, msg->policy,
					      msg->policy_len, hash);
		if (err) {
			pr_warn("Couldn't store pushed policy: %s\n", strerror(-err));
			return err;
		}
	} else {
		/* Staged by hand: it must be its hash, as at start, and be on
		 * disk before the state file names it (stored ones are). */
		memcpy(hash, msg->policy_hash, PC_HASH_LEN);
		err = pc_persist_policy_verify(a->cfg.state_dir, hash, why,
					       sizeof(why));
		if (!err)
			err = pc_persist_policy_sync(a->cfg.state_dir, hash);
		if (err) {
			pr_warn("apply-policy: staged policy refused: %s\n",
				why[0] ? why : strerror(-err));
			return err;
		}
	}
	pc_persist_policy_path(a->cfg.state_dir, hash, path, sizeof(path));
	/* The SSH session check is about the operator's own shell: not here. */
	err = load_policy(a, path, "controller apply-policy", false);
	if (err)
		return err;
	pushed_in_force(a, hash);
	save_state(a);
	return 0;
}

static void on_command(struct agent *a, const struct pc_msg *msg,
		       const char *from, __u64 detect_ns)
{
	char id[33], detail[64];
	int err = 0;

	pc_hex(msg->cmd_id, sizeof(msg->cmd_id), id);
	stat_inc(a, PC_AS_CMD_ACCEPTED);
	snprintf(detail, sizeof(detail), "%s %.16s", pc_cmd_name(msg->cmd), id);
	/* Secure first; the paperwork (fsynced audit, state) follows. */
	switch (msg->cmd) {
	case PC_CMD_LOCKDOWN:
		transition(a, PC_TRIG_COMMAND, PC_MODE_LOCKDOWN, detail, detect_ns);
		break;
	case PC_CMD_QUARANTINE:
		transition(a, PC_TRIG_COMMAND, PC_MODE_QUARANTINE, detail, detect_ns);
		break;
	case PC_CMD_RELEASE:
		transition(a, PC_TRIG_COMMAND, PC_MODE_NORMAL, detail, detect_ns);
		break;
	case PC_CMD_APPLY_POLICY:
		err = apply_pushed_policy(a, msg);
		break;
	default:
		err = -EINVAL;
	}
	audit_checked(a, pc_audit("command_accepted", "command",
				  pc_cmd_name(msg->cmd), "id", id, "from", from,
				  PC_AUDIT_END));
	/* Commands are rare: their replay state goes to disk at once. */
	save_state(a);
	if (err) {
		stat_inc(a, PC_AS_CMD_FAILED);
		audit_checked(a, pc_audit("command_failed", "command",
					  pc_cmd_name(msg->cmd), "id", id, "error",
					  strerror(-err), PC_AUDIT_END));
	}
}

/* One datagram from the controller socket; false if none was waiting. */
static bool on_datagram(struct agent *a)
{
	static __u8 buf[PC_MSG_MAX + 1];
	struct sockaddr_storage ss = {};
	socklen_t sl = sizeof(ss);
	enum pc_msg_verdict v;
	struct pc_msg msg;
	char from[INET6_ADDRSTRLEN], lim[48];
	__u64 detect_ns;
	ssize_t n;
	int key = -1;

	n = recvfrom(a->udp_fd, buf, sizeof(buf), MSG_DONTWAIT,
		     (struct sockaddr *)&ss, &sl);
	if (n < 0)
		return false;
	detect_ns = clock_ns(CLOCK_MONOTONIC);
	addr_str(&ss, from, sizeof(from));
	v = pc_msg_decode(buf, n, (const __u8(*)[PC_PK_LEN])a->cfg.keys,
			  a->cfg.nkeys, &msg, &key);
	if (v == PC_MSG_OK)
		v = pc_msg_check(&msg, key, a->cfg.host_id, wall_ms(),
				 a->cfg.max_skew_ms, &a->replay);
	if (v != PC_MSG_OK) {
		/* msg is filled only past the signature check. */
		bool cmd = v != PC_MSG_MALFORMED && v != PC_MSG_BAD_SIG &&
			   v != PC_MSG_OLD_FORMAT && v != PC_MSG_UNKNOWN_KEY &&
			   msg.type == PC_MSG_COMMAND;

		/* Counted and audited, never acted on; a flood is rate-limited. */
		stat_inc(a, (cmd ? PC_AS_CMD_REFUSED : PC_AS_HB_REFUSED) + v);
		snprintf(lim, sizeof(lim), "refused:%s", pc_msg_verdict_name(v));
		audit_checked(a, pc_audit_limited(lim, cmd ? "command_refused" :
							     "message_refused",
						  "reason", pc_msg_verdict_name(v),
						  "from", from, PC_AUDIT_END));
		return true;
	}
	if (msg.type == PC_MSG_HEARTBEAT) {
		reserve_hb_seq(a, key, msg.seq);
		heartbeat_at(a, boot_ms());
	} else
		on_command(a, &msg, from, detect_ns);
	return true;
}

/*
 * Before heartbeat loss is declared: a valid heartbeat may be waiting
 * behind junk in the socket. Read on, bounded in count and time, until
 * one counts or the socket is empty.
 */
static void drain_for_heartbeat(struct agent *a)
{
	__u64 before = a->last_hb_ms;
	__u64 end = clock_ns(CLOCK_MONOTONIC) + DRAIN_MAX_NS;

	if (a->udp_fd < 0)
		return;
	for (int i = 0; i < DRAIN_MAX_DATAGRAMS; i++) {
		if (!on_datagram(a) || a->last_hb_ms != before ||
		    clock_ns(CLOCK_MONOTONIC) >= end)
			return;
	}
}

static int open_udp(struct agent *a)
{
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr *sa;
	socklen_t sl;
	int fd, off = 0, on = 1, rcvbuf = UDP_RCVBUF;

	if (inet_pton(AF_INET, a->cfg.listen_addr, &sin.sin_addr) == 1) {
		sin.sin_port = htons(a->cfg.listen_port);
		sa = (struct sockaddr *)&sin;
		sl = sizeof(sin);
	} else if (inet_pton(AF_INET6, a->cfg.listen_addr, &sin6.sin6_addr) == 1) {
		sin6.sin6_port = htons(a->cfg.listen_port);
		sa = (struct sockaddr *)&sin6;
		sl = sizeof(sin6);
	} else {
		pr_warn("controller listen address '%s' is not numeric\n",
			a->cfg.listen_addr);
		return -EINVAL;
	}
	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* Room for a burst the datapath admitted (PC_CTL_GLOBAL_BURST of
	 * each class) while the loop was busy: a heartbeat behind them is
	 * queued, not dropped. FORCE passes rmem_max; root may. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (sa->sa_family == AF_INET6)	/* [::] takes IPv4 too */
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
	/* The agent starts before the network (network-pre.target): its
	 * address may not be there yet, and must not fail the start. */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &on, sizeof(on));
	if (bind(fd, sa, sl)) {
		int err = -errno;

		pr_warn("Couldn't listen for the controller on %s port %u: %s\n",
			a->cfg.listen_addr, a->cfg.listen_port, strerror(-err));
		close(fd);
		return err;
	}
	return fd;
}

/* ---- fleet (etcd) ---- */

static void fleet_report(struct agent *a)
{
	struct pc_fleet_status st = {};

	if (!a->fleet)
		return;
	snprintf(st.host, sizeof(st.host), "%s", a->cfg.host_id);
	st.mode = a->fsm.mode;
	snprintf(st.cause, sizeof(st.cause), "%s", pc_trigger_name(a->fsm.cause));
	st.since_ms = a->mode_since_wall_ms;
	st.generation = a->generation;
	st.has_policy = a->saved.has_policy;
	memcpy(st.policy_hash, a->saved.policy_hash, PC_HASH_LEN);
	snprintf(st.version, sizeof(st.version), "%s", PC_FLEET_VERSION);
	for (size_t i = 0; i < a->cfg.ngroups; i++)
		snprintf(st.groups[st.ngroups++], PC_FLEET_TARGET_LEN, "%s",
			 a->cfg.fleet_groups[i]);
	st.reported_ms = wall_ms();
	/* The boot clock does not jump; convert the age, not the stamp. */
	if (a->last_hb_ms && boot_ms() >= a->last_hb_ms)
		st.last_hb_ms = st.reported_ms - (boot_ms() - a->last_hb_ms);
	st.refused = a->fleet_refused;
	st.hb_lost = a->hb_lost;
	pc_fleet_link_report(a->fleet, &st);
	a->next_report_ms = boot_ms() + a->cfg.fleet_report_ms;
}

/* Counted, audited, never acted on; a flood is rate-limited. */
static void fleet_refuse(struct agent *a, const char *key,
			 enum pc_fleet_refusal why, __s64 revision,
			 const char *detail)
{
	char rev[24], lim[48];

	a->fleet_refused++;
	stat_inc(a, PC_AS_FLEET_REFUSED + why);
	snprintf(rev, sizeof(rev), "#%lld", (long long)revision);
	snprintf(lim, sizeof(lim), "fleet:%s", fleet_refusal_names[why]);
	audit_checked(a, pc_audit_limited(lim, "fleet_refused", "key", key,
					  "reason", fleet_refusal_names[why],
					  "revision", rev, "detail",
					  detail ? detail : "", PC_AUDIT_END));
	pr_warn("fleet: refused %s (revision %lld): %s%s%s\n", key,
		(long long)revision, fleet_refusal_names[why], detail ? ": " : "",
		detail ? detail : "");
	fleet_report(a);
}

static enum pc_fleet_refusal refusal_of(enum pc_msg_verdict v)
{
	switch (v) {
	case PC_MSG_BAD_SIG:
	case PC_MSG_UNKNOWN_KEY:
		return PC_FR_BAD_SIG;
	case PC_MSG_WRONG_HOST:
		return PC_FR_WRONG_TARGET;
	case PC_MSG_REPLAY:
		return PC_FR_REPLAY;
	default:
		return PC_FR_MALFORMED;
	}
}

/* The policy an accepted envelope names: fetched text, checked by hash. */
static void fleet_apply_policy(struct agent *a, const struct pc_fleet_desired *d,
			       const struct pc_fleet_event *ev)
{
	__u8 hash[PC_HASH_LEN];
	char path[PATH_MAX], why[96];
	int err;

	const char *why_not = NULL;

	if (!ev->policy) {
		why_not = ev->detail[0] ? ev->detail : "the policy it names is not in etcd";
	} else {
		pc_sha256(ev->policy, ev->policy_len, hash);
		if (memcmp(hash, d->policy_hash, PC_HASH_LEN))
			why_not = "policy text does not match the signed hash";
	}
	if (why_not) {
		/* Retried by re-reading etcd; refused once per revision. */
		if (!a->policy_pending || a->policy_refused_rev != ev->revision)
			fleet_refuse(a, ev->key, PC_FR_POLICY, ev->revision, why_not);
		a->policy_pending = true;
		a->policy_refused_rev = ev->revision;
		return;
	}
	a->policy_pending = false;
	err = pc_persist_store_policy(a->cfg.state_dir, ev->policy,
				      ev->policy_len, hash);
	if (err) {
		pr_warn("fleet: cannot store policy: %s\n", strerror(-err));
		return;
	}
	pc_persist_policy_path(a->cfg.state_dir, hash, path, sizeof(path));
	snprintf(why, sizeof(why), "fleet %s", d->target);
	/* The old policy stays on any error (audited by load_policy). */
	if (load_policy(a, path, why, false))
		return;
	pushed_in_force(a, hash);
	stat_inc(a, PC_AS_FLEET_POLICY_LOADED);
}

/* Nothing to retry once the policy named is the one in force (or none is). */
static void policy_settle(struct agent *a)
{
	int pi = pc_fleet_policy_index(&a->view);

	if (pi < 0 || (a->saved.has_policy &&
		       !memcmp(a->saved.policy_hash, a->view.d[pi].policy_hash,
			       PC_HASH_LEN)))
		a->policy_pending = false;
}

/* Equal in all that is persisted (the id is for the audit trail only). */
static bool same_desired(const struct pc_fleet_desired *x,
			 const struct pc_fleet_desired *y)
{
	return x->seq == y->seq && x->mode == y->mode &&
	       x->release == y->release && x->has_policy == y->has_policy &&
	       !memcmp(x->policy_hash, y->policy_hash, PC_HASH_LEN) &&
	       !strcmp(x->target, y->target);
}

static void on_fleet_desired(struct agent *a, const struct pc_fleet_event *ev)
{
	__u64 detect = clock_ns(CLOCK_MONOTONIC);
	struct pc_fleet_desired d;
	enum pc_msg_verdict v;
	enum pc_mode floor;
	char target[PC_FLEET_TARGET_LEN], detail[96], seq[24], rev[24];
	bool host_release;
	int i = -1;

	if (!pc_fleet_target_of_key(a->cfg.fleet_prefix, ev->key, target,
				    sizeof(target)))
		i = pc_fleet_view_find(&a->view, target);
	if (i < 0) {
		fleet_refuse(a, ev->key, PC_FR_WRONG_TARGET, ev->revision,
			     "not a key this host follows");
		return;
	}
	if (ev->revision && a->refused_rev[i] == ev->revision)
		return;
	if (!ev->value) {
		a->refused_rev[i] = ev->revision;
		fleet_refuse(a, ev->key, PC_FR_MALFORMED, ev->revision, "empty value");
		return;
	}
	v = pc_fleet_decode(ev->value, ev->len, (const __u8(*)[PC_PK_LEN])a->cfg.keys,
			    a->cfg.nkeys, &d);
	/* The envelope in force, read again (a reconnect, a restart): only
	 * a policy still pending may come of it. */
	if (v == PC_MSG_OK && a->view.set[i] && same_desired(&d, &a->view.d[i])) {
		if (a->policy_pending && d.has_policy &&
		    pc_fleet_policy_index(&a->view) == i)
			fleet_apply_policy(a, &d, ev);
		policy_settle(a);
		return;
	}
	if (v == PC_MSG_OK)
		v = pc_fleet_accept(&a->view, i, &d);
	if (v != PC_MSG_OK) {
		a->refused_rev[i] = ev->revision;
		fleet_refuse(a, ev->key, refusal_of(v), ev->revision, NULL);
		return;
	}
	stat_inc(a, PC_AS_FLEET_ACCEPTED);
	snprintf(seq, sizeof(seq), "#%llu", (unsigned long long)d.seq);
	snprintf(rev, sizeof(rev), "#%lld", (long long)ev->revision);
	audit_checked(a, pc_audit("fleet_accepted", "target", d.target, "mode",
				  d.release ? "release" : pc_mode_name(d.mode),
				  "seq", seq, "revision", rev, PC_AUDIT_END));
	floor = pc_fleet_floor(&a->view);
	snprintf(detail, sizeof(detail), "%s %s #%llu", d.target,
		 d.release ? "release" : pc_mode_name(d.mode),
		 (unsigned long long)d.seq);
	/* Secure first: an escalation before the (slower) policy load. */
	if (floor > a->fsm.mode)
		transition(a, PC_TRIG_FLEET, floor, detail, detect);
	if (d.has_policy && pc_fleet_policy_index(&a->view) == i &&
	    (!a->saved.has_policy ||
	     memcmp(a->saved.policy_hash, d.policy_hash, PC_HASH_LEN)))
		fleet_apply_policy(a, &d, ev);
	/* Lifts: the fleet's own demand, or a host released by name. */
	host_release = d.release && (size_t)i == a->view.n - 1;
	if (floor < a->fsm.mode)
		transition(a, host_release ? PC_TRIG_FLEET_RELEASE : PC_TRIG_FLEET,
			   floor, detail, detect);
	pc_fsm_set_floor(&a->fsm, floor);
	policy_settle(a);
	save_state(a);
	fleet_report(a);
}

/*
 * Deleting is unsigned: the envelope in force stays. Revision 0: found
 * absent on a (re)read, refused once until something is written there.
 */
static void on_fleet_deleted(struct agent *a, const struct pc_fleet_event *ev)
{
	char target[PC_FLEET_TARGET_LEN];
	__s64 mark = ev->revision ? ev->revision : -1;
	int i = -1;

	if (!pc_fleet_target_of_key(a->cfg.fleet_prefix, ev->key, target,
				    sizeof(target)))
		i = pc_fleet_view_find(&a->view, target);
	if (i < 0 || !a->view.set[i] || a->refused_rev[i] == mark)
		return;	/* nothing was in force there: nothing is lost */
	a->refused_rev[i] = mark;
	fleet_refuse(a, ev->key, PC_FR_DELETED, ev->revision,
		     "deletion is not signed: the last accepted value stays in force");
}

/* The last seq taken from the key that signed a fleet heartbeat. */
static __u64 *fleet_hb_seq(struct agent *a, int key)
{
	size_t i;

	for (i = 0; i < a->fleet_hb_nseen; i++)
		if (!memcmp(a->fleet_hb_seen[i].pk, a->cfg.keys[key], PC_PK_LEN))
			return &a->fleet_hb_seen[i].seq;
	if (i == PC_MAX_KEYS)
		i = 0;	/* keys replaced by reloads: forget the oldest */
	else
		a->fleet_hb_nseen++;
	memcpy(a->fleet_hb_seen[i].pk, a->cfg.keys[key], PC_PK_LEN);
	a->fleet_hb_seen[i].seq = 0;
	return &a->fleet_hb_seen[i].seq;
}

/*
 * PREFIX/heartbeat changed. Only a fresh heartbeat a trusted controller
 * key signed, newer than the last one from that key, is proof that the
 * controller lives; etcd (or whoever answers in its place) only carries
 * it. A refusal is counted and audited, and is no heartbeat.
 */
static void on_fleet_heartbeat(struct agent *a, const struct pc_fleet_event *ev)
{
	struct pc_fleet_heartbeat hb;
	enum pc_msg_verdict v;
	__u64 behind = 0, *last = NULL;
	char lim[48], rev[24];
	int key = -1;

	v = pc_fleet_heartbeat_decode(ev->value, ev->len,
				      (const __u8(*)[PC_PK_LEN])a->cfg.keys,
				      a->cfg.nkeys, &hb, &key);
	if (v == PC_MSG_OK) {
		last = fleet_hb_seq(a, key);
		if (hb.seq == *last)
			return;		/* the one already taken, read again */
		v = pc_fleet_heartbeat_check(&hb, *last, wall_ms(),
					     a->cfg.hb_timeout_ms,
					     a->cfg.fleet_skew_ms, &behind);
	}
	if (v != PC_MSG_OK) {
		stat_inc(a, PC_AS_FLEET_HB_REFUSED + v);
		snprintf(lim, sizeof(lim), "fleet_hb:%s", pc_msg_verdict_name(v));
		snprintf(rev, sizeof(rev), "#%lld", (long long)ev->revision);
		audit_checked(a, pc_audit_limited(lim, "fleet_heartbeat_refused",
						  "key", ev->key, "reason",
						  pc_msg_verdict_name(v),
						  "revision", rev, PC_AUDIT_END));
		return;
	}
	*last = hb.seq;
	a->fleet_hb_last = hb;
	a->fleet_hb_last_wall_ms = wall_ms();
	stat_inc(a, PC_AS_FLEET_HB_ACCEPTED);
	heartbeat_at(a, boot_ms() - behind);
}

static void on_fleet(struct agent *a)
{
	struct pc_fleet_event ev;

	pc_fleet_link_ack(a->fleet);
	while (pc_fleet_link_next(a->fleet, &ev)) {
		switch (ev.type) {
		case PC_FE_HEARTBEAT:
			on_fleet_heartbeat(a, &ev);
			break;
		case PC_FE_KEEPALIVE:
			stat_inc(a, PC_AS_FLEET_KEEPALIVES);
			break;
		case PC_FE_DESIRED:
			on_fleet_desired(a, &ev);
			break;
		case PC_FE_DELETED:
			on_fleet_deleted(a, &ev);
			break;
		case PC_FE_LEASE:
			if (!ev.ok)
				stat_inc(a, PC_AS_FLEET_LEASE_LOST);
			audit_checked(a, pc_audit("fleet_lease", "state",
						  ev.ok ? "granted" : "lost",
						  "detail", ev.detail, PC_AUDIT_END));
			pr_info("fleet: lease %s (%s)\n", ev.ok ? "granted" : "lost",
				ev.detail);
			fleet_report(a);
			break;
		case PC_FE_LINK:
			a->fleet_linked = ev.ok;
			if (ev.ok)
				snprintf(a->fleet_endpoint, sizeof(a->fleet_endpoint),
					 "%s", ev.detail);
			audit_checked(a, pc_audit("fleet_link", "state",
						  ev.ok ? "watching" : "broken",
						  "detail", ev.detail, PC_AUDIT_END));
			if (ev.ok)
				pr_info("fleet: watching desired state on %s\n", ev.detail);
			else
				pr_warn("fleet: etcd watch broken: %s\n", ev.detail);
			break;
		}
		pc_fleet_event_free(&ev);
	}
}

/* The envelopes in force before this start, for replay and the floor. */
static void fleet_restore(struct agent *a)
{
	char *groups[PC_FLEET_MAX_GROUPS];

	for (size_t i = 0; i < a->cfg.ngroups; i++)
		groups[i] = a->cfg.fleet_groups[i];
	pc_fleet_view_init(&a->view, a->cfg.host_id, groups, a->cfg.ngroups);
	for (size_t j = 0; j < a->saved.nfleet; j++) {
		int i = pc_fleet_view_find(&a->view, a->saved.fleet[j].target);

		if (i < 0)
			continue;	/* a group this host left */
		a->view.set[i] = true;
		a->view.d[i] = a->saved.fleet[j];
	}
}

/* ---- control socket ---- */

static void control_status(struct agent *a, int fd)
{
	__u64 now = boot_ms();

	dprintf(fd, "agent:       running, pid %d, host id %s\n", getpid(),
		a->cfg.host_id);
	dprintf(fd, "mode cause:  %s\n", pc_trigger_name(a->fsm.cause));
	if (a->cfg.fleet)
		dprintf(fd, "fleet:       etcd %s (%s), prefix %s, %zu group(s); "
			"fleet demands %s; %llu refused\n",
			a->fleet_linked ? a->fleet_endpoint : a->cfg.fleet_endpoints[0],
			a->fleet_linked ? "watching" : "NOT CONNECTED",
			a->cfg.fleet_prefix, a->cfg.ngroups,
			pc_mode_name(a->fsm.floor),
			(unsigned long long)a->fleet_refused);
	if (a->cfg.fleet && a->fleet_hb_last.seq)
		dprintf(fd, "fleet hb:    signed seq %llu taken %.1f s ago, "
			"%.1f s after its signing time (max skew %.1f s)\n",
			(unsigned long long)a->fleet_hb_last.seq,
			(wall_ms() - a->fleet_hb_last_wall_ms) / 1000.0,
			a->fleet_hb_last_wall_ms > a->fleet_hb_last.timestamp_ms ?
				(a->fleet_hb_last_wall_ms - a->fleet_hb_last.timestamp_ms) / 1000.0 : 0.0,
			a->cfg.fleet_skew_ms / 1000.0);
	else if (a->cfg.fleet)
		dprintf(fd, "fleet hb:    no signed heartbeat taken yet (%s/%s)\n",
			a->cfg.fleet_prefix, PC_FLEET_HB_KIND);
	if (hb_enabled(a)) {
		if (a->cfg.controller)
			dprintf(fd, "controller:  udp %s port %u, %zu key(s)\n",
				a->cfg.listen_addr, a->cfg.listen_port,
				a->cfg.nkeys);
		dprintf(fd, "heartbeat:   last %.1f s ago, timeout %.1f s, %s\n",
			(now - a->last_hb_ms) / 1000.0,
			a->cfg.hb_timeout_ms / 1000.0,
			a->hb_lost ? "LOST" : "ok");
	} else {
		dprintf(fd, "controller:  none configured\n");
	}
	dprintf(fd, "audit log:   %s%s\n", a->cfg.audit_log,
		pc_audit_failing() ? " (FAILING: cannot write)" : "");
	dprintf(fd, "ok\n");
}

static void on_control(struct agent *a)
{
	char req[PC_CONTROL_MAX] = "", arg[32];
	enum pc_mode mode = PC_MODE_NORMAL;
	int fd, err;

	err = pc_control_accept(a->ctl_fd, &fd, req, sizeof(req));
	if (err == -EPERM)
		stat_inc(a, PC_AS_CONTROL_REFUSED);
	if (err)
		return;
	if (!strcmp(req, "status")) {
		control_status(a, fd);
	} else if (!strcmp(req, "release") ||
		   (sscanf(req, "mode %31s", arg) == 1 && !pc_mode_parse(arg, &mode))) {
		enum pc_mode from = a->fsm.mode;

		if (!strcmp(req, "release"))
			mode = PC_MODE_NORMAL;
		audit_checked(a, pc_audit("break_glass", "request", req, PC_AUDIT_END));
		if (transition(a, PC_TRIG_BREAK_GLASS, mode, "local operator",
			       clock_ns(CLOCK_MONOTONIC)))
			dprintf(fd, "ok mode: %s -> %s\n", pc_mode_name(from),
				pc_mode_name(mode));
		else
			dprintf(fd, "ok mode: %s (unchanged)\n", pc_mode_name(from));
	} else {
		dprintf(fd, "error: unknown request '%s'\n", req);
	}
	close(fd);
}

/* ---- link events ---- */

/*
 * An interface management entries are bound to got a new ifindex: the
 * live slot's pc_mgmt_if follows, if the live policy is still ours (not
 * one `portcullis apply` wrote behind our back).
 */
static void mgmt_if_refresh(struct agent *a, const char *ifname)
{
	struct pc_settings s;
	__u32 slot;
	int lock, err;

	if (!pc_mgmt_if_names(&a->binds, ifname))
		return;
	lock = pc_lock(a->cfg.pin_dir);
	if (lock < 0)
		return;
	err = pc_active_settings(&a->m, &slot, &s);
	if (!err && s.generation == a->generation)
		err = pc_mgmt_if_write(a->m.mgmt_if, slot, &a->binds);
	pc_unlock(lock);
	if (err)
		pr_warn("interface '%s': management entries bound to it not "
			"updated: %s\n", ifname, strerror(-err));
}

static void on_link(const char *ifname, int ifindex, bool appeared, void *arg)
{
	struct agent *a = arg;
	struct pc_iface ifc;
	bool ours = false, known = false;

	for (size_t i = 0; i < a->cfg.nifaces; i++)
		ours |= !strcmp(a->cfg.ifaces[i], ifname);
	if (!ours)
		return;
	for (__u32 i = 0; i < PC_MAX_IFACES; i++)
		if (!bpf_map_lookup_elem(a->m.ifaces, &i, &ifc) &&
		    ifc.ifindex == (__u32)ifindex && !strcmp(ifc.name, ifname))
			known = true;
	/* Its ifindex changed or went: the port's binding follows (a gone
	 * one is 0, matching nowhere). */
	if (pc_ctl_if_names(&a->cfg, ifname))
		ctl_configure(a);
	if (!appeared) {
		audit_checked(a, pc_audit("interface_gone", "interface", ifname, PC_AUDIT_END));
		pr_warn("interface '%s' went away\n", ifname);
		return;
	}
	if (known)
		return;
	mgmt_if_refresh(a, ifname);
	/* A new link under an old name: the old attachment died with it. */
	if (!pc_attach_iface(a->skel, a->cfg.pin_dir, ifname, a->cfg.xdp_mode)) {
		hold_links(a);
		audit_checked(a, pc_audit("interface_attached", "interface",
					  ifname, PC_AUDIT_END));
		pr_info("interface '%s' (re)appeared: programs attached\n", ifname);
	}
}

/* Interfaces the agent watches: the config's, else the policy's. */
static void learn_ifaces(struct agent *a, const char *path)
{
	struct pc_policy p = {};
	char err[512];

	if (a->cfg.nifaces || pc_policy_load_file(path, &p, err, sizeof(err)))
		return;
	a->cfg.ifaces = p.ifaces;
	a->cfg.nifaces = p.nifaces;
	p.ifaces = NULL;
	p.nifaces = 0;
	pc_policy_free(&p);
}

/* ---- ticks ---- */

static void check_heartbeat(struct agent *a)
{
	char detail[64];

	if (!hb_enabled(a) || a->hb_lost ||
	    boot_ms() - a->last_hb_ms <= a->cfg.hb_timeout_ms)
		return;
	drain_for_heartbeat(a);
	if (boot_ms() - a->last_hb_ms <= a->cfg.hb_timeout_ms)
		return;
	a->hb_lost = true;
	pc_fsm_heartbeat_lost(&a->fsm);
	snprintf(detail, sizeof(detail), "no valid heartbeat for %llu ms",
		 (unsigned long long)a->cfg.hb_timeout_ms);
	audit_checked(a, pc_audit("heartbeat_lost", "detail", detail, PC_AUDIT_END));
	pr_warn("%s\n", detail);
	transition(a, PC_TRIG_HEARTBEAT_LOSS, a->cfg.hb_action, detail,
		   clock_ns(CLOCK_MONOTONIC));
}

static void check_anomaly(struct agent *a)
{
	const struct pc_anomaly_trigger *t;
	char detail[64];
	int fired;

	if (!a->cfg.ntriggers || boot_ms() < a->next_sample_ms)
		return;
	a->next_sample_ms = boot_ms() + a->cfg.anomaly_interval_ms;
	fired = pc_anomaly_sample(&a->an, &a->cfg, &a->m,
				  a->cfg.anomaly_interval_ms * 1000000);
	if (fired < 0)
		return;
	t = &a->cfg.triggers[fired];
	snprintf(detail, sizeof(detail), "%s: %s %llu >= %llu x%u", t->name,
		 pc_metric_name(t->metric),
		 (unsigned long long)a->an.value[t->metric],
		 (unsigned long long)t->threshold, t->intervals);
	audit_checked(a, pc_audit("anomaly", "trigger", t->name, "detail",
				  detail, PC_AUDIT_END));
	transition(a, PC_TRIG_ANOMALY, t->action, detail,
		   clock_ns(CLOCK_MONOTONIC));
}

/* Someone wrote the mode word behind our back (CLI with no socket). */
static void check_external(struct agent *a)
{
	__u32 mode;

	if (pc_state_get(&a->m, PC_STATE_MODE, &mode) || mode == a->fsm.mode)
		return;
	if (mode >= PC_MODE_COUNT)
		mode = PC_MODE_QUARANTINE;
	record_transition(a, a->fsm.mode, mode, PC_TRIG_EXTERNAL,
			  "mode map written directly", 0);
	audit_checked(a, pc_audit("transition", "from", pc_mode_name(a->fsm.mode),
				  "to", pc_mode_name(mode), "trigger", "external",
				  "detail", "mode map written directly", PC_AUDIT_END));
	a->fsm.mode = mode;
	a->fsm.cause = PC_TRIG_EXTERNAL;
	a->fsm.since_ms = boot_ms();
	a->mode_since_wall_ms = wall_ms();
	save_state(a);
	fleet_report(a);
}

/*
 * Hold an fd of every XDP link while we run: if the pins vanish without a
 * `portcullis detach` (bpffs unmounted), the links -- and enforcement --
 * still have a holder, and we can pin them again.
 */
static void hold_links(struct agent *a)
{
	struct pc_iface ifc;
	char path[PATH_MAX];

	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		if (a->link_fds[i] > 0)
			close(a->link_fds[i]);
		a->link_fds[i] = -1;
		if (bpf_map_lookup_elem(a->m.ifaces, &i, &ifc) || !ifc.ifindex)
			continue;
		pc_xdp_link_path(path, sizeof(path), a->cfg.pin_dir, ifc.ifindex);
		a->link_fds[i] = bpf_obj_get(path);
	}
}

/* A held link still attached? `portcullis detach` detaches them first. */
static bool links_attached(struct agent *a)
{
	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		struct bpf_link_info info = {};
		__u32 len = sizeof(info);

		if (a->link_fds[i] <= 0)
			continue;
		if (!bpf_obj_get_info_by_fd(a->link_fds[i], &info, &len) &&
		    info.xdp.ifindex)
			return true;
	}
	return false;
}

/*
 * The egress guard: on, or said loudly at start that it is not -- then a
 * packet socket with PACKET_QDISC_BYPASS or an AF_XDP socket can send
 * past tc_egress in every mode (README "Packet sockets cannot bypass the
 * egress program"). Enforcement goes on either way.
 */
static void guard_start(struct agent *a)
{
	char why[PATH_MAX + 256];
	int ret = pc_guard_start(&a->guard, a->cfg.pin_dir, why, sizeof(why));

	if (!ret) {
		pr_info("egress guard on: %s\n", why);
		audit_checked(a, pc_audit("egress_guard", "state", "on", "detail",
					  why, PC_AUDIT_END));
		return;
	}
	pr_warn("egress guard %s: %s: packet sockets with PACKET_QDISC_BYPASS "
		"and AF_XDP sockets %scan send past tc egress, in lockdown and "
		"quarantine too\n", ret > 0 ? "PARTIAL" : "OFF", why,
		ret > 0 ? "elsewhere " : "");
	audit_checked(a, pc_audit("egress_guard", "state",
				  ret > 0 ? "partial" : "off", "detail", why,
				  PC_AUDIT_END));
}

/* Pins gone but not detached: put maps and links back where they were. */
static int repin(struct agent *a)
{
	struct pc_iface ifc;
	char path[PATH_MAX];
	int err;

	err = pc_pin_dir_prepare(a->cfg.pin_dir);
	if (!err)
		err = bpf_object__pin_maps(a->skel->obj, NULL);
	for (__u32 i = 0; !err && i < PC_MAX_IFACES; i++) {
		if (a->link_fds[i] <= 0 ||
		    bpf_map_lookup_elem(a->m.ifaces, &i, &ifc) || !ifc.ifindex)
			continue;
		pc_xdp_link_path(path, sizeof(path), a->cfg.pin_dir, ifc.ifindex);
		if (bpf_obj_pin(a->link_fds[i], path) && errno != EEXIST)
			err = -errno;
	}
	if (!err)
		err = pc_guard_repin(&a->guard, a->cfg.pin_dir);
	if (!err)
		err = pc_backstop_repin(a->cfg.pin_dir, a->backstop_fds);
	return err;
}

static bool pins_gone(const char *pin_dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, PC_MAP_STATE);
	return access(path, F_OK) != 0;
}

static void on_tick(struct agent *a)
{
	__u64 expirations;

	if (read(a->tfd, &expirations, sizeof(expirations)) < 0)
		return;
	check_heartbeat(a);
	check_deadman_tripped(a);
	if (hb_enabled(a) && !a->hb_lost && a->fsm.mode != PC_MODE_NORMAL)
		transition(a, PC_TRIG_HEARTBEAT_RESTORED, PC_MODE_NORMAL,
			   "heartbeats valid again", clock_ns(CLOCK_MONOTONIC));
	check_anomaly(a);
	check_external(a);
	if (a->fleet && boot_ms() >= a->next_report_ms)
		fleet_report(a);
	if (a->fleet && a->policy_pending && boot_ms() >= a->next_policy_retry_ms) {
		pc_fleet_link_resync(a->fleet);
		a->next_policy_retry_ms = boot_ms() + POLICY_RETRY_MS;
	}
	if (a->watchdog_usec && boot_ms() >= a->next_watchdog_ms) {
		sd_notify(0, "WATCHDOG=1");
		a->next_watchdog_ms = boot_ms() + a->watchdog_usec / 2000;
	}
	if (pins_gone(a->cfg.pin_dir)) {
		if (!links_attached(a)) {
			pr_info("pins removed (portcullis detach): exiting\n");
			a->exiting = true;
		} else if (!repin(a)) {
			pr_warn("pins had vanished without a detach (bpffs "
				"unmounted?): pinned again\n");
			audit_checked(a, pc_audit("pins_restored", "pin_dir",
						  a->cfg.pin_dir, PC_AUDIT_END));
			a->repin_warned = false;
		} else if (!a->repin_warned) {
			/* Our fds keep the links, hence enforcement, alive. */
			pr_warn("pins vanished without a detach and cannot be "
				"restored yet; holding enforcement, do not stop "
				"the agent\n");
			audit_checked(a, pc_audit("pins_lost", "pin_dir",
						  a->cfg.pin_dir, PC_AUDIT_END));
			a->repin_warned = true;
		}
	}
}

/*
 * The backstop, once XDP/TC are attached and recorded: on a managed link
 * they are not on -- one deleted and re-created while no agent runs -- it
 * drops all IP until we are back and attach there. A kernel without
 * netfilter links gets XDP/TC only, and is told so loudly.
 */
static void backstop_start(struct agent *a)
{
	char err[256] = "";
	int ret, n = 0;

	ret = pc_backstop_install(a->cfg.pin_dir, a->backstop_fds, err,
				  sizeof(err));
	for (int i = 0; i < PC_BACKSTOP_LINKS; i++)
		n += a->backstop_fds[i] >= 0;
	stat_set(a, PC_AS_BACKSTOP_LINKS, n);
	a->backstop_on = !ret;
	if (!ret) {
		pr_info("backstop: %d netfilter links pinned (IPv4/IPv6 "
			"pre-/post-routing): a managed link without our XDP/TC "
			"drops all IP until it is attached\n", n);
		return;
	}
	pr_warn("BACKSTOP UNAVAILABLE (%d of %d netfilter links): %s. "
		"Enforcing with XDP/TC only: an interface re-created while no "
		"agent runs passes traffic unfiltered until the agent is back\n",
		n, PC_BACKSTOP_LINKS, err);
	audit_checked(a, pc_audit("backstop_unavailable", "error", err,
				  PC_AUDIT_END));
}

/* ---- configuration ---- */

static void set_str(char **field, const char *val)
{
	free(*field);
	*field = val ? strdup(val) : NULL;
}

/* A trigger on a metric an outsider can drive hands them the host's mode:
 * said at every load, and by --check-config. */
static void warn_outsider_triggers(const struct pc_config *cfg)
{
	for (size_t i = 0; i < cfg->ntriggers; i++) {
		const struct pc_anomaly_trigger *t = &cfg->triggers[i];
		const char *how = pc_anomaly_outsider(t->metric);

		if (how)
			pr_warn("warning: anomaly trigger '%s' watches %s: %s, "
				"and so sets %s\n", t->name,
				pc_metric_name(t->metric), how,
				pc_mode_name(t->action));
	}
}

/* Heartbeats nobody can sign: said at every load, and by --check-config. */
static void warn_deadman_unfed(const struct pc_config *cfg)
{
	char msg[512];

	if (pc_config_deadman_unfed(cfg, msg, sizeof(msg)))
		pr_warn("%s\n", msg);
}

/*
 * The configuration: the file (or --policy), then options and environment.
 * A file that cannot be read gives -errno, ERR says why. defaults: build
 * one anyway from nothing but options, environment and defaults -- no
 * policy, no controller -- for the agent to secure the host with.
 */
static int config_build(const struct agent_opts *o, struct pc_config *cfg,
			bool defaults, char *err, size_t errlen)
{
	int ret;

	if (o->config_path && !defaults) {
		ret = pc_config_load_file(o->config_path, cfg, err, errlen);
		if (ret) {
			pr_warn("config refused: %s\n", err);
			return ret;
		}
		warn_outsider_triggers(cfg);
		warn_deadman_unfed(cfg);
	} else if (defaults) {
		memset(cfg, 0, sizeof(*cfg));
		gethostname(cfg->host_id, sizeof(cfg->host_id) - 1);
		cfg->anomaly_interval_ms = 1000;
		cfg->hb_action = PC_MODE_LOCKDOWN;
	} else {
		/* --policy alone: a loader with no controller. */
		memset(cfg, 0, sizeof(*cfg));
		cfg->policy_path = strdup(o->policy_path);
		gethostname(cfg->host_id, sizeof(cfg->host_id) - 1);
		cfg->anomaly_interval_ms = 1000;
		cfg->hb_action = PC_MODE_LOCKDOWN;
	}
	/* Options win over the environment, which wins over the file. */
	if (o->pin_dir || getenv("PORTCULLIS_PIN_DIR") || !cfg->pin_dir)
		set_str(&cfg->pin_dir, pc_pin_dir(o->pin_dir));
	if (o->state_dir || getenv("PORTCULLIS_STATE_DIR") || !cfg->state_dir)
		set_str(&cfg->state_dir, pc_state_dir(o->state_dir));
	if (o->control_socket || getenv("PORTCULLIS_CONTROL_SOCKET") ||
	    !cfg->control_socket)
		set_str(&cfg->control_socket, pc_control_path(o->control_socket));
	if (o->audit_log || getenv("PORTCULLIS_AUDIT_LOG") || !cfg->audit_log)
		set_str(&cfg->audit_log, o->audit_log ? o->audit_log :
			getenv("PORTCULLIS_AUDIT_LOG") ? getenv("PORTCULLIS_AUDIT_LOG") :
			PC_DEFAULT_AUDIT_LOG);
	if (o->xdp_mode_set)
		cfg->xdp_mode = o->xdp_mode;
	/* /metrics: the option, else the config (loopback by default there);
	 * a bare --policy loader serves none unless asked. */
	const char *metrics = o->metrics ? o->metrics : getenv("PORTCULLIS_METRICS");

	if (metrics) {
		snprintf(cfg->metrics_listen, sizeof(cfg->metrics_listen), "%s",
			 strcmp(metrics, "off") ? metrics : "");
	} else if (!o->config_path) {
		cfg->metrics_listen[0] = '\0';
	}
	if ((!cfg->policy_path && !defaults) || !cfg->pin_dir || !cfg->state_dir ||
	    !cfg->control_socket || !cfg->audit_log) {
		pc_config_free(cfg);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void fsm_configure(struct agent *a)
{
	a->fcfg.hb_action = a->cfg.hb_action;
	a->fcfg.hb_release_after = a->cfg.hb_release_after;
	a->fcfg.backoff_ms = a->cfg.backoff_ms;
}

static void reload(struct agent *a)
{
	struct pc_config next;
	struct replay_was was;
	const char *policy, *bad;
	char err[512] = "";

	pr_info("reloading %s\n", a->o->config_path ? a->o->config_path :
			       a->cfg.policy_path);
	if (config_build(a->o, &next, false, err, sizeof(err))) {
		audit_checked(a, pc_audit("config_refused", "error", err,
					  PC_AUDIT_END));
		pr_warn("reload failed; previous configuration and policy still enforcing\n");
		return;
	}
	/* controller.interfaces against what is attached now (the config
	 * layer checked them against its own 'interfaces', if any). */
	bad = next.nifaces ? NULL :
	      pc_ctl_if_unattached(&next, a->cfg.ifaces, a->cfg.nifaces);
	if (bad) {
		snprintf(err, sizeof(err), "controller.interfaces names '%s', "
			 "which the agent does not attach to", bad);
		audit_checked(a, pc_audit("config_refused", "error", err,
					  PC_AUDIT_END));
		pr_warn("reload failed: %s; previous configuration and policy "
			"still enforcing\n", err);
		pc_config_free(&next);
		return;
	}
	/* The pushed policy if it is in force; else the config's, which is
	 * also how a fallback at start (pinned, none) is mended. */
	policy = a->policy_src == SRC_PUSHED ? a->pushed_path : next.policy_path;
	if (load_policy(a, policy, "reload", true)) {
		pc_config_free(&next);
		pr_warn("reload failed; previous policy still enforcing\n");
		return;
	}
	/* Sockets and the etcd link stay as they are (the link's threads
	 * hold copies); keys, timeouts, triggers take effect. */
	next.fleet = a->cfg.fleet;
	memcpy(next.fleet_endpoints, a->cfg.fleet_endpoints, sizeof(next.fleet_endpoints));
	next.nendpoints = a->cfg.nendpoints;
	memcpy(next.fleet_prefix, a->cfg.fleet_prefix, sizeof(next.fleet_prefix));
	memcpy(next.fleet_groups, a->cfg.fleet_groups, sizeof(next.fleet_groups));
	next.ngroups = a->cfg.ngroups;
	next.listen_port = a->cfg.listen_port;
	snprintf(next.listen_addr, sizeof(next.listen_addr), "%s", a->cfg.listen_addr);
	memcpy(was.keys, a->cfg.keys, sizeof(was.keys));
	was.nkeys = a->cfg.nkeys;
	was.replay = a->replay;
	memcpy(was.hb_mark, a->hb_mark, sizeof(was.hb_mark));
	pc_config_free(&a->cfg);
	a->cfg = next;
	if (a->policy_src != SRC_PUSHED) {
		a->policy_path = a->cfg.policy_path;
		a->policy_src = SRC_CONFIG;
	}
	learn_ifaces(a, a->policy_path);
	fsm_configure(a);
	restore_replay(a, &was);
	deadman_configure(a);
	hold_links(a);
	audit_checked(a, pc_audit("config_reloaded", PC_AUDIT_END));
}

/* ---- start ---- */

/* An exclusive lock per pin dir, held for the agent's life. */
static int agent_lock(const char *pin_dir, char *path, size_t pathlen)
{
	char copy[256];
	int fd;

	snprintf(copy, sizeof(copy), "%s", pin_dir);
	for (char *c = copy; *c; c++)
		if (*c == '/')
			*c = '_';
	snprintf(path, pathlen, "/run/lock/portcullisd.%s.lock", copy);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		pr_warn("Couldn't open lock %s: %s\n", path, strerror(errno));
		return -errno;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		pr_warn("another portcullisd is running for %s (lock %s); stop it "
			"first\n", pin_dir, path);
		close(fd);
		return -EBUSY;
	}
	return fd;
}

/*
 * The mode to start in: the kernel's (pins survive a restart), else the
 * saved one (a reboot), else the configured one; raised to the heartbeat
 * action if the dead-man switch tripped while no agent watched.
 */
static void start_mode(struct agent *a, bool adopted, bool have_saved)
{
	__u64 detect = clock_ns(CLOCK_MONOTONIC);
	__u64 last = deadman_read(a, PC_DM_LAST_HB_NS);
	__u64 timeout = deadman_read(a, PC_DM_TIMEOUT_NS);
	__u32 kmode = PC_MODE_NORMAL;
	enum pc_mode mode, from = PC_MODE_NORMAL;
	char detail[64];

	if (adopted) {
		pc_state_get(&a->m, PC_STATE_MODE, &kmode);
		from = kmode < PC_MODE_COUNT ? kmode : PC_MODE_QUARANTINE;
	}
	if (a->state_untrusted[0]) {
		/* Even over live pins: the strictest, audited, an operator
		 * releases it. */
		mode = PC_MODE_QUARANTINE;
		snprintf(detail, sizeof(detail), "state file untrusted");
	} else if (adopted) {
		mode = from;
		snprintf(detail, sizeof(detail), "adopted pinned mode");
	} else if (have_saved) {
		mode = a->saved.mode;
		snprintf(detail, sizeof(detail), "restored from %s/state",
			 a->cfg.state_dir);
	} else {
		mode = a->o->initial_mode;
		snprintf(detail, sizeof(detail), "fresh start");
	}
	a->fsm.mode = mode;
	a->fsm.cause = have_saved && (!adopted || a->saved.mode == mode) ?
			       a->saved.cause : PC_TRIG_START;
	a->fsm.since_ms = boot_ms();
	pc_mode_write(&a->m, mode);
	/* A saved quarantine coming back after a reboot is a transition. */
	if ((!adopted || a->state_untrusted[0]) && mode != from)
		record_transition(a, from, mode, PC_TRIG_START, detail,
				  clock_ns(CLOCK_MONOTONIC) - detect);
	audit_checked(a, pc_audit("mode_at_start", "mode", pc_mode_name(mode),
				  "detail", detail, PC_AUDIT_END));

	/* Heartbeat clock: continue the kernel's, so both agree on loss --
	 * if the kernel's switch was armed. A switch that was off (a loader
	 * without a controller ran before) gets the grace of a fresh start. */
	a->last_hb_ms = boot_ms();
	if (adopted && last && timeout) {
		a->last_hb_ms = last / 1000000;
		if (clock_ns(CLOCK_BOOTTIME) - last > timeout) {
			a->hb_lost = true;
			transition(a, PC_TRIG_DEADMAN, a->cfg.hb_action,
				   "dead-man switch tripped while no agent ran",
				   detect);
		}
	} else if (!a->config_failed) {
		/* Fresh: one timeout of grace from now, for the kernel too. */
		deadman_write(a, PC_DM_LAST_HB_NS, clock_ns(CLOCK_BOOTTIME));
	}
}

static int open_fds(struct agent *a)
{
	struct itimerspec its = {
		.it_interval = { 0, TICK_MS * 1000000 },
		.it_value = { 0, TICK_MS * 1000000 },
	};
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	a->sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	a->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (a->sfd < 0 || a->tfd < 0 || timerfd_settime(a->tfd, 0, &its, NULL))
		return -errno;
	a->ctl_fd = pc_control_listen(a->cfg.control_socket);
	if (a->ctl_fd < 0) {
		pr_warn("Couldn't open control socket %s: %s\n",
			a->cfg.control_socket, strerror(-a->ctl_fd));
		return a->ctl_fd;
	}
	if (a->cfg.controller) {
		a->udp_fd = open_udp(a);
		if (a->udp_fd < 0)
			return a->udp_fd;
	}
	if (a->cfg.fleet) {
		int err = pc_fleet_link_start(&a->fleet, &a->cfg, &a->view);

		if (err) {
			pr_warn("Couldn't start the fleet link: %s\n", strerror(-err));
			return err;
		}
		fleet_report(a);
	}
	if (pc_linkwatch_open(&a->lw, on_link, a))
		pr_warn("link events unavailable: interfaces that come back "
			"will not be re-attached\n");
	return 0;
}

static void run_loop(struct agent *a)
{
	struct pollfd pfd[6];
	struct signalfd_siginfo si;

	pfd[0] = (struct pollfd){ .fd = a->sfd, .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = a->tfd, .events = POLLIN };
	pfd[2] = (struct pollfd){ .fd = a->ctl_fd, .events = POLLIN };
	pfd[3] = (struct pollfd){ .fd = a->udp_fd, .events = POLLIN };
	pfd[4] = (struct pollfd){ .fd = pc_linkwatch_fd(&a->lw), .events = POLLIN };
	pfd[5] = (struct pollfd){ .fd = pc_fleet_link_fd(a->fleet), .events = POLLIN };
	while (!a->exiting) {
		if (poll(pfd, 6, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("poll: %s\n", strerror(errno));
			break;
		}
		if (pfd[0].revents & POLLIN) {
			while (read(a->sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					reload(a);
				else
					a->exiting = true;
			}
		}
		/* Controller first: a heartbeat in the same wake-up as the
		 * tick must count before the timeout is judged. */
		if (pfd[3].revents & POLLIN)
			for (int i = 0; i < DATAGRAMS_PER_TURN && on_datagram(a); i++)
				;
		if (pfd[5].revents & POLLIN)
			on_fleet(a);
		if (pfd[1].revents & POLLIN)
			on_tick(a);
		if (pfd[2].revents & POLLIN)
			on_control(a);
		if (pfd[4].revents & POLLIN)
			pc_linkwatch_process(&a->lw);
	}
}

/* ---- start: whatever fails, the host ends up enforcing ---- */

/* The last agent's policy, still in the pinned maps? */
static bool pinned_policy(struct agent *a)
{
	struct pc_settings st;
	__u32 slot = 0;

	if (pc_state_get(&a->m, PC_STATE_ACTIVE_SLOT, &slot))
		return false;
	slot &= 1;
	if (bpf_map_lookup_elem(a->m.settings, &slot, &st) || !st.generation)
		return false;
	a->generation = st.generation;
	return true;
}

/* One candidate at start: verified (a pushed one is its hash), checked,
 * compiled; a refusal is audited. Interfaces need not be there yet. */
static int start_candidate(struct agent *a, const char *path, bool pushed,
			   struct pc_policy *p, struct pc_compiled *c,
			   char *why, size_t len)
{
	int err = 0;

	if (pushed)
		err = pc_persist_policy_verify(a->cfg.state_dir,
					       a->saved.policy_hash, why, len);
	if (err)
		pr_warn("policy refused: %s\n", why);
	else
		err = policy_prepare(a, path, &a->cfg, p, c, true, true, why,
				     len);
	if (err)
		audit_checked(a, pc_audit("policy_refused", "path", path,
					  "reason", "start", "error", why,
					  PC_AUDIT_END));
	return err;
}

/*
 * The policy to start with: the one meant (the pushed one, else the
 * config's); else the last agent's, still pinned; else the config's; else
 * none, and the attached programs drop everything (drop_no_policy).
 * FAILED: why the one meant could not be had.
 */
static enum start_src start_policy(struct agent *a, bool adopted,
				   struct pc_policy *p, struct pc_compiled *c,
				   char *failed, size_t len)
{
	bool pushed = a->saved.has_policy;
	char why[512];

	failed[0] = '\0';
	/* Secure and exit, retried until the config is fixed: what the pins
	 * hold is kept as it is, not applied again and again. */
	if (a->config_failed && adopted && pinned_policy(a)) {
		snprintf(failed, len, "configuration refused (%.400s)",
			 a->config_error);
		return SRC_PINNED;
	}
	if (pushed &&
	    !start_candidate(a, a->pushed_path, true, p, c, failed, len))
		return SRC_PUSHED;
	if (!pushed && a->cfg.policy_path &&
	    !start_candidate(a, a->cfg.policy_path, false, p, c, failed, len))
		return SRC_CONFIG;
	if (!a->cfg.policy_path && !pushed)
		snprintf(failed, len, "no policy known (%.400s)", a->config_error);
	if (adopted && pinned_policy(a))
		return SRC_PINNED;
	if (pushed && a->cfg.policy_path &&
	    !start_candidate(a, a->cfg.policy_path, false, p, c, why,
			     sizeof(why)))
		return SRC_CONFIG;
	return SRC_NONE;
}

static void add_iface(struct pc_config *cfg, const char *name)
{
	char **v;

	for (size_t i = 0; i < cfg->nifaces; i++)
		if (!strcmp(cfg->ifaces[i], name))
			return;
	v = realloc(cfg->ifaces, (cfg->nifaces + 1) * sizeof(*v));
	if (!v)
		return;
	cfg->ifaces = v;
	if ((v[cfg->nifaces] = strdup(name)))
		cfg->nifaces++;
}

/* No policy in force names them: the interfaces a policy file names (even
 * one refused), those the last agent attached, those the state file
 * names (a reboot with a config that cannot be read). */
static void fallback_ifaces(struct agent *a)
{
	struct pc_iface ifc;

	if (a->saved.has_policy)
		learn_ifaces(a, a->pushed_path);
	if (a->cfg.policy_path)
		learn_ifaces(a, a->cfg.policy_path);
	for (size_t i = 0; i < a->saved.nifaces; i++)
		add_iface(&a->cfg, a->saved.ifaces[i]);
	for (__u32 i = 0; i < PC_MAX_IFACES; i++)
		if (!bpf_map_lookup_elem(a->m.ifaces, &i, &ifc) && ifc.ifindex)
			add_iface(&a->cfg, ifc.name);
}

/* Pinned or no policy: the programs on every interface known, no apply. */
static void enforce_fallback(struct agent *a)
{
	int lock = pc_lock(a->cfg.pin_dir);

	if (lock < 0) {
		pr_warn("Couldn't lock pin dir '%s': %s\n", a->cfg.pin_dir,
			strerror(-lock));
		return;
	}
	attach_ifaces(a, a->cfg.ifaces, a->cfg.nifaces, false, NULL, 0);
	pc_unlock(lock);
}

/* A start that enforces nothing takes back the maps it pinned: a later
 * start must not adopt a mode word nobody set. */
static void unpin_fresh(struct agent *a)
{
	bpf_object__unpin_maps(a->skel->obj, NULL);
	rmdir(a->cfg.pin_dir);
}

/* A start that could not have all it meant: at least FLOOR, recorded. */
static void start_raise(struct agent *a, enum pc_mode floor, const char *why)
{
	__u64 detect = clock_ns(CLOCK_MONOTONIC);
	enum pc_mode from = a->fsm.mode;
	int err;

	if (floor <= from)
		return;
	err = pc_state_set(&a->m, PC_STATE_MODE, floor);
	if (err) {
		pr_warn("Couldn't set mode %s: %s\n", pc_mode_name(floor),
			strerror(-err));
		return;
	}
	a->fsm.mode = floor;
	a->fsm.cause = PC_TRIG_START;
	a->fsm.since_ms = boot_ms();
	a->mode_since_wall_ms = wall_ms();
	record_transition(a, from, floor, PC_TRIG_START, why,
			  clock_ns(CLOCK_MONOTONIC) - detect);
	audit_checked(a, pc_audit("transition", "from", pc_mode_name(from), "to",
				  pc_mode_name(floor), "trigger", "start",
				  "detail", why, PC_AUDIT_END));
	pr_warn("mode %s -> %s: %s\n", pc_mode_name(from), pc_mode_name(floor),
		why);
}

static void audit_fallback(struct agent *a, const char *failed)
{
	const char *src = start_src_name[a->policy_src];

	audit_checked(a, pc_audit("policy_fallback", "failed", failed,
				  "in_force", src, "policy", a->policy_path,
				  "mode", pc_mode_name(a->fsm.mode), PC_AUDIT_END));
	pr_warn("policy fallback: %s; in force: %s %s, mode %s\n", failed,
		src, a->policy_path, pc_mode_name(a->fsm.mode));
}

/* What a fallback puts in the policy's place, for logs and status. */
static void fallback_path(struct agent *a)
{
	a->policy_path = a->policy_src == SRC_PINNED ?
		"(the last agent's, still pinned)" :
		"(none: programs attached, everything dropped)";
}

/*
 * Load and enforce the best policy there is (start_policy), in at least
 * the saved mode: a fallback other than the pinned policy, or a config
 * that could not be read, raises it to lockdown. 0 once enforcing;
 * -EINVAL when there is nothing to enforce on (a host never enforced
 * before, or no interface known).
 */
static int start_enforce(struct agent *a, bool adopted, bool have_saved,
			 __u32 *gen)
{
	enum start_src meant = a->saved.has_policy ? SRC_PUSHED : SRC_CONFIG;
	struct pc_policy p = {};
	struct pc_compiled c = {};
	char failed[512], why[512] = "";
	int err;

	a->policy_src = start_policy(a, adopted, &p, &c, failed, sizeof(failed));
	if (a->policy_src == SRC_NONE && !adopted && !have_saved) {
		/* Nothing was ever enforced here: nothing to keep secure, and
		 * anti-lockout exists for the operator running this. The maps
		 * this start pinned go again. */
		pr_warn("no policy to start with and no state: nothing enforced\n");
		audit_checked(a, pc_audit("start_failed", "error", failed,
					  PC_AUDIT_END));
		unpin_fresh(a);
		pc_compiled_free(&c);
		pc_policy_free(&p);
		return -EINVAL;
	}
	if (a->policy_src <= SRC_CONFIG) {
		a->policy_path = a->policy_src == SRC_PUSHED ? a->pushed_path :
							      a->cfg.policy_path;
		learn_ifaces(a, a->policy_path);
	} else {
		fallback_ifaces(a);
		fallback_path(a);
	}
	if (!a->cfg.nifaces && !adopted) {
		pr_warn("no interface known to enforce on: nothing enforced\n");
		audit_checked(a, pc_audit("start_failed", "error",
					  "no interface known", PC_AUDIT_END));
		unpin_fresh(a);
		pc_compiled_free(&c);
		pc_policy_free(&p);
		return -EINVAL;
	}
	start_mode(a, adopted, have_saved);
	pc_fsm_set_floor(&a->fsm, pc_fleet_floor(&a->view));
	a->mode_since_wall_ms = wall_ms();
	if (a->config_failed)
		start_raise(a, PC_MODE_LOCKDOWN,
			    "configuration refused: no controller can be heard");
	else
		deadman_configure(a);
	guard_start(a);
	if (a->policy_src != meant && a->policy_src != SRC_PINNED)
		start_raise(a, PC_MODE_LOCKDOWN, "policy fallback: the policy "
			    "meant could not be loaded");
	if (a->policy_src <= SRC_CONFIG) {
		err = enforce(a, &p, &c, gen, true, why, sizeof(why));
		if (!err) {
			stat_set(a, PC_AS_POLICY_LOADED_MS, wall_ms());
			a->generation = *gen;
		} else {
			/* Not applied (maps full?): still attach, on what is
			 * pinned or on nothing. */
			audit_checked(a, pc_audit("policy_refused", "path",
						  a->policy_path, "reason", "start",
						  "error", why, PC_AUDIT_END));
			snprintf(failed, sizeof(failed), "%s", why);
			a->policy_src = adopted && pinned_policy(a) ? SRC_PINNED :
								       SRC_NONE;
			fallback_ifaces(a);
			fallback_path(a);
			if (a->policy_src != SRC_PINNED)
				start_raise(a, PC_MODE_LOCKDOWN, "policy fallback: "
					    "the policy could not be applied");
		}
	}
	if (a->policy_src >= SRC_PINNED)
		enforce_fallback(a);
	if (a->policy_src != meant)
		audit_fallback(a, failed);
	pc_compiled_free(&c);
	pc_policy_free(&p);
	return 0;
}

int agent_run(const struct agent_opts *o)
{
	struct agent a = { .o = o, .udp_fd = -1, .ctl_fd = -1, .tfd = -1, .sfd = -1,
			   .lock_fd = -1, .backstop_fds = { -1, -1, -1, -1 } };
	bool adopted, have_saved;
	char why[512] = "";
	__u32 gen = 0;
	int err;

	if (geteuid() != 0) {
		pr_warn("portcullisd must run as root (CAP_BPF, CAP_NET_ADMIN)\n");
		return 1;
	}
	/* A config that cannot be read still leaves the paths (options,
	 * environment, defaults) to secure the host with, and then exit. */
	err = config_build(o, &a.cfg, false, a.config_error,
			   sizeof(a.config_error));
	if (err) {
		a.config_failed = true;
		if (config_build(o, &a.cfg, true, why, sizeof(why)))
			return 1;
	}
	/* A policy the controller pushed outlives reboots and the config. */
	err = pc_persist_load(a.cfg.state_dir, &a.saved, a.state_untrusted,
			      sizeof(a.state_untrusted));
	have_saved = !err;
	if (err == -EBADMSG) {
		/* Start as strict as the file could have meant (the loader set
		 * quarantine) and keep it aside for the operator: what is saved
		 * from now on says quarantine, never the milder damaged mode. */
		have_saved = true;
		a.saved.cause = PC_TRIG_START;
		if (pc_persist_set_aside(a.cfg.state_dir, a.state_aside,
					 sizeof(a.state_aside)))
			a.state_aside[0] = '\0';
	}
	a.policy_path = a.cfg.policy_path;
	if (have_saved && a.saved.has_policy)
		pc_persist_policy_path(a.cfg.state_dir, a.saved.policy_hash,
				       a.pushed_path, sizeof(a.pushed_path));
	fsm_configure(&a);
	restore_replay(&a, NULL);
	fleet_restore(&a);
	if (pc_audit_open(a.cfg.audit_log))
		pr_warn("audit log %s cannot be opened: auditing to syslog only\n",
			a.cfg.audit_log);
	if (a.state_untrusted[0])
		audit_checked(&a, pc_audit("state_untrusted", "reason",
					   a.state_untrusted, "kept_as",
					   a.state_aside[0] ? a.state_aside : "-",
					   "mode", "quarantine", PC_AUDIT_END));

	/* One agent per pin dir: a second would fight over the maps, the
	 * control socket and the mode. */
	a.lock_fd = agent_lock(a.cfg.pin_dir, a.lock_path, sizeof(a.lock_path));
	if (a.lock_fd < 0) {
		err = a.lock_fd;
		goto out;
	}
	/* Load, reusing whatever is pinned: the live policy keeps enforcing. */
	err = pc_pin_dir_prepare(a.cfg.pin_dir);
	if (err)
		goto out;
	adopted = !pins_gone(a.cfg.pin_dir);
	err = pc_datapath_load(a.cfg.pin_dir, o->verbose, &a.skel);
	if (err)
		goto out;
	pc_maps_from_skel(a.skel, &a.m);
	pr_info("%s pinned state in %s\n", adopted ? "adopting" : "creating",
		a.cfg.pin_dir);

	/* Policy chosen, then mode and dead-man switch, then apply and
	 * attach: the programs never run on anything but the state we mean. */
	err = start_enforce(&a, adopted, have_saved, &gen);
	if (err)
		goto out;
	hold_links(&a);
	backstop_start(&a);
	save_state(&a);
	if (a.config_failed) {
		/* Secured; with no controller, keys or triggers it cannot
		 * watch over the host: exit for the service manager to retry
		 * (never detaching: the pins keep enforcing). */
		audit_checked(&a, pc_audit("config_refused", "error",
					   a.config_error, "at", "start", "mode",
					   pc_mode_name(a.fsm.mode), "policy",
					   start_src_name[a.policy_src],
					   PC_AUDIT_END));
		pr_warn("configuration refused: host secured in mode %s (policy: "
			"%s); exiting for the service manager to retry\n",
			pc_mode_name(a.fsm.mode), a.policy_path);
		err = -EINVAL;
		goto out;
	}
	err = open_fds(&a);
	if (err)
		goto out;
	/* Telemetry must never stand in the way of enforcement: warn only. */
	if (a.cfg.metrics_listen[0]) {
		a.metrics = pc_metrics_start(a.cfg.metrics_listen, &a.m,
					     a.cfg.host_id);
		if (!a.metrics)
			pr_warn("metrics not served on %s; enforcing anyway\n",
				a.cfg.metrics_listen);
	}
	audit_checked(&a, pc_audit("agent_start", "mode", pc_mode_name(a.fsm.mode),
				   "policy", a.policy_path, "policy_source",
				   start_src_name[a.policy_src], "backstop",
				   a.backstop_on ? "on" : "off", PC_AUDIT_END));
	pr_info("portcullisd: ready (generation %u, mode %s, policy %s, %zu interfaces, backstop %s%s%s)\n",
		a.generation, pc_mode_name(a.fsm.mode),
		start_src_name[a.policy_src], a.cfg.nifaces,
		a.backstop_on ? "on" : "OFF",
		a.cfg.controller ? ", controller" : "",
		a.cfg.fleet ? ", fleet" : "");
	sd_watchdog_enabled(0, &a.watchdog_usec);
	sd_notifyf(0, "READY=1\nSTATUS=mode %s", pc_mode_name(a.fsm.mode));

	run_loop(&a);
	save_state(&a);
	audit_checked(&a, pc_audit("agent_stop", "mode", pc_mode_name(a.fsm.mode),
				   PC_AUDIT_END));
	pr_info("exiting; enforcement stays in place (portcullis detach removes it)\n");
	sd_notify(0, "STOPPING=1");
out:
	pc_metrics_stop(a.metrics);
	pc_fleet_link_stop(a.fleet);
	pc_linkwatch_close(&a.lw);
	if (a.udp_fd >= 0)
		close(a.udp_fd);
	if (a.ctl_fd >= 0) {
		close(a.ctl_fd);
		unlink(a.cfg.control_socket);
	}
	/* Destroying the skeletons closes fds only: pins and links remain. */
	pc_guard_close(&a.guard);
	portcullis_bpf__destroy(a.skel);
	if (a.lock_fd >= 0) {
		unlink(a.lock_path);	/* still ours: we hold the lock */
		close(a.lock_fd);
	}
	for (__u32 i = 0; i < PC_MAX_IFACES; i++)
		if (a.link_fds[i] > 0)
			close(a.link_fds[i]);
	pc_backstop_close(a.backstop_fds);	/* the pins keep them */
	pc_audit_close();
	pc_config_free(&a.cfg);
	return err ? 1 : 0;
}

int agent_check_config(const char *path)
{
	struct pc_config cfg;
	struct pc_policy p = {};
	struct pc_compiled c = {};
	const char *bad;
	char err[512];

	if (pc_config_load_file(path, &cfg, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (pc_policy_load_file(cfg.policy_path, &p, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		pc_config_free(&cfg);
		return 1;
	}
	/* What the agent would refuse at start, refused here too. */
	bad = cfg.nifaces ? NULL :
	      pc_ctl_if_unattached(&cfg, p.ifaces, p.nifaces);
	if (bad)
		snprintf(err, sizeof(err), "controller.interfaces names '%s', "
			 "which the policy does not attach to", bad);
	if (bad || pc_compile(&p, &c, err, sizeof(err)) ||
	    pc_lockout_check(&p, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s: policy %s refused: %s\n", path,
			cfg.policy_path, err);
		pc_compiled_free(&c);
		pc_policy_free(&p);
		pc_config_free(&cfg);
		return 1;
	}
	pc_compiled_free(&c);
	warn_outsider_triggers(&cfg);
	warn_deadman_unfed(&cfg);
	printf("%s: ok (policy %s: %zu rules; controller %s; fleet %s; %zu anomaly triggers)\n",
	       path, cfg.policy_path, p.nrules, cfg.controller ? "yes" : "no",
	       cfg.fleet ? cfg.fleet_endpoints[0] : "no", cfg.ntriggers);
	pc_policy_free(&p);
	pc_config_free(&cfg);
	return 0;
}

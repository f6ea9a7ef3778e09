// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The agent's etcd threads (see agent_fleet.h). They only carry bytes:
 * verification, the state machine and enforcement stay on the agent's
 * loop. The watcher reads which policy an envelope names and fetches
 * it; whether the envelope is signed, and the text matches its hash, is
 * decided on the loop.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include "agent_fleet.h"
#include "etcd.h"
#include "log.h"

#define QUEUE_MAX	4096	/* past this, desired events force a re-read */
#define BACKOFF_MIN_MS	100
#define BACKOFF_MAX_MS	2000

struct qnode {
	struct pc_fleet_event ev;
	struct qnode *next;
};

struct pc_fleet_link {
	/* Copies: the config may be reloaded under us. */
	char *endpoints[PC_ETCD_MAX_ENDPOINTS];
	size_t nendpoints;
	char prefix[PC_FLEET_PREFIX_MAX + 1];
	char host[PC_FLEET_TARGET_LEN];
	char *tls_ca, *tls_cert, *tls_key;
	char hb_key[PC_FLEET_KEY_MAX];	/* PREFIX/heartbeat */
	__s64 hb_rev;			/* its mod revision last handed on */
	char keys[PC_FLEET_MAX_TARGETS][PC_FLEET_KEY_MAX];
	size_t nkeys;
	long request_ms, lease_request_ms, ttl_s;
	__u64 keepalive_ms, report_ms;

	pthread_t watcher, leaser;
	bool watcher_up, leaser_up;
	pthread_mutex_t mu;
	pthread_cond_t cond;		/* CLOCK_MONOTONIC */
	bool stop, resync;
	struct qnode *head, *tail;
	size_t qlen;
	int efd;
	char *status_json;		/* the latest reported state */
	bool status_dirty;
};

static __u64 mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static bool stopping(struct pc_fleet_link *l)
{
	bool s;

	pthread_mutex_lock(&l->mu);
	s = l->stop;
	pthread_mutex_unlock(&l->mu);
	return s;
}

/* CLOCK_MONOTONIC, ms from now: the condition variable's clock. */
static struct timespec deadline(__u64 ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return ts;
}

/* Sleep up to ms, or until stopped or poked. */
static void nap(struct pc_fleet_link *l, __u64 ms)
{
	struct timespec ts = deadline(ms);

	pthread_mutex_lock(&l->mu);
	if (!l->stop)
		pthread_cond_timedwait(&l->cond, &l->mu, &ts);
	pthread_mutex_unlock(&l->mu);
}

void pc_fleet_event_free(struct pc_fleet_event *ev)
{
	free(ev->value);
	free(ev->policy);
	memset(ev, 0, sizeof(*ev));
}

/* Takes ownership of ev's buffers. */
static void post(struct pc_fleet_link *l, struct pc_fleet_event *ev)
{
	struct qnode *n = NULL;
	__u64 one = 1;
	bool full;

	pthread_mutex_lock(&l->mu);
	full = l->qlen >= QUEUE_MAX;
	if (!full)
		n = calloc(1, sizeof(*n));
	if (n) {
		n->ev = *ev;
		if (l->tail)
			l->tail->next = n;
		else
			l->head = n;
		l->tail = n;
		l->qlen++;
	} else if (ev->type == PC_FE_DESIRED || ev->type == PC_FE_DELETED) {
		/* Never lose a change silently: read everything again later. */
		l->resync = true;
	}
	pthread_mutex_unlock(&l->mu);
	if (!n)
		pc_fleet_event_free(ev);
	if (write(l->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		pr_warn("fleet: eventfd: %s\n", strerror(errno));
}

static void post_simple(struct pc_fleet_link *l, enum pc_fleet_event_type t,
			bool ok, const char *detail)
{
	struct pc_fleet_event ev = { .type = t, .ok = ok };

	snprintf(ev.detail, sizeof(ev.detail), "%.150s", detail ? detail : "");
	post(l, &ev);
}

bool pc_fleet_link_next(struct pc_fleet_link *l, struct pc_fleet_event *ev)
{
	struct qnode *n;

	pthread_mutex_lock(&l->mu);
	n = l->head;
	if (n) {
		l->head = n->next;
		if (!l->head)
			l->tail = NULL;
		l->qlen--;
	}
	pthread_mutex_unlock(&l->mu);
	if (!n)
		return false;
	*ev = n->ev;
	free(n);
	return true;
}

/* Reset the counter first, then drain: a post in between wakes us again. */
void pc_fleet_link_ack(struct pc_fleet_link *l)
{
	__u64 v;

	if (read(l->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("fleet: eventfd: %s\n", strerror(errno));
}

int pc_fleet_link_fd(const struct pc_fleet_link *l)
{
	return l ? l->efd : -1;
}

void pc_fleet_link_resync(struct pc_fleet_link *l)
{
	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->resync = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

void pc_fleet_link_report(struct pc_fleet_link *l,
			  const struct pc_fleet_status *s)
{
	char *json;

	if (!l)
		return;
	json = pc_fleet_status_json(s);
	if (!json)
		return;
	pthread_mutex_lock(&l->mu);
	free(l->status_json);
	l->status_json = json;
	l->status_dirty = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
}

static int tls_setup(struct pc_fleet_link *l, struct pc_etcd *e)
{
	return pc_etcd_set_tls(e, l->tls_ca, l->tls_cert, l->tls_key);
}

/* ---- watcher ---- */

struct watcher {
	struct pc_fleet_link *l;
	struct pc_etcd fetch;		/* policies, while the watch holds the other */
};

/* The policy an envelope names, if etcd has it. The loop verifies the
 * envelope and the text's hash: here the name is all that is needed. */
static void fetch_policy(struct watcher *w, struct pc_fleet_event *ev)
{
	struct pc_fleet_link *l = w->l;
	struct pc_fleet_desired d;
	struct pc_etcd_range r;
	char hex[2 * PC_HASH_LEN + 1], key[PC_FLEET_KEY_MAX];

	if (!ev->value || !pc_fleet_peek(ev->value, ev->len, &d) ||
	    !d.has_policy)
		return;
	pc_hex(d.policy_hash, PC_HASH_LEN, hex);
	pc_fleet_key(key, sizeof(key), l->prefix, "policies", hex);
	if (pc_etcd_get(&w->fetch, key, false, &r)) {
		snprintf(ev->detail, sizeof(ev->detail), "policy %.16s: %.120s", hex,
			 w->fetch.err);
		return;
	}
	if (r.n == 1 && r.kvs[0].value) {
		ev->policy = (char *)r.kvs[0].value;
		ev->policy_len = r.kvs[0].value_len;
		r.kvs[0].value = NULL;
	}
	pc_etcd_range_free(&r);
}

static void post_kv(struct watcher *w, bool deleted, const struct pc_etcd_kv *kv,
		    __s64 revision)
{
	struct pc_fleet_event ev = { .type = deleted ? PC_FE_DELETED : PC_FE_DESIRED,
				     .revision = revision };

	snprintf(ev.key, sizeof(ev.key), "%s", kv->key);
	if (!deleted && kv->value && kv->value_len) {
		ev.value = malloc(kv->value_len);
		if (!ev.value) {
			pthread_mutex_lock(&w->l->mu);
			w->l->resync = true;
			pthread_mutex_unlock(&w->l->mu);
			return;
		}
		memcpy(ev.value, kv->value, kv->value_len);
		ev.len = kv->value_len;
		fetch_policy(w, &ev);
	}
	post(w->l, &ev);
}

static int on_watch_event(void *arg, bool deleted, const struct pc_etcd_kv *kv,
			  __s64 revision)
{
	post_kv(arg, deleted, kv, revision);
	return 0;
}

static bool watch_should_stop(void *arg)
{
	struct watcher *w = arg;
	bool s;

	pthread_mutex_lock(&w->l->mu);
	s = w->l->stop || w->l->resync;
	pthread_mutex_unlock(&w->l->mu);
	return s;
}

/* Read every key, then watch from just after that read: nothing missed.
 * *linked: the stream was set up (and reported up). */
static int read_then_watch(struct watcher *w, struct pc_etcd *e, bool *linked)
{
	struct pc_fleet_link *l = w->l;
	const char *keys[PC_FLEET_MAX_TARGETS];
	__s64 rev = 0;
	int err = 0;

	pthread_mutex_lock(&l->mu);
	l->resync = false;
	pthread_mutex_unlock(&l->mu);
	for (size_t i = 0; !err && i < l->nkeys; i++) {
		struct pc_etcd_range r;

		keys[i] = l->keys[i];
		err = pc_etcd_get(e, l->keys[i], false, &r);
		if (err)
			break;
		if (r.revision > rev)
			rev = r.revision;
		if (r.n == 1) {
			post_kv(w, false, &r.kvs[0], r.kvs[0].mod_rev);
		} else {
			/* Absent: deleted while we were away, or never set. */
			struct pc_etcd_kv gone = { .key = l->keys[i] };

			post_kv(w, true, &gone, 0);
		}
		pc_etcd_range_free(&r);
	}
	if (err)
		return err;
	post_simple(l, PC_FE_LINK, true, e->endpoints[e->cur]);
	*linked = true;
	return pc_etcd_watch(e, keys, l->nkeys, rev + 1, on_watch_event,
			     watch_should_stop, w);
}

static void *watcher_main(void *arg)
{
	struct watcher w = { .l = arg };
	struct pc_fleet_link *l = w.l;
	__u64 backoff = BACKOFF_MIN_MS, started;
	struct pc_etcd e;
	bool linked = false, told_down = false;
	int err;

	if (pc_etcd_init(&e, l->endpoints, l->nendpoints, l->request_ms) ||
	    pc_etcd_init(&w.fetch, l->endpoints, l->nendpoints, l->request_ms) ||
	    tls_setup(l, &e) || tls_setup(l, &w.fetch)) {
		post_simple(l, PC_FE_LINK, false, "cannot set up an etcd client");
		return NULL;
	}
	while (!stopping(l)) {
		started = mono_ms();
		err = read_then_watch(&w, &e, &linked);
		if (stopping(l))
			break;
		if (linked)
			told_down = false;
		/* Once per outage: a stream that broke, or the first failure. */
		if (err && (linked || !told_down)) {
			post_simple(l, PC_FE_LINK, false, e.err);
			told_down = true;
		}
		linked = false;
		if (!err)	/* a resync: go again at once */
			continue;
		/* A stream that lived a while starts the back-off afresh. */
		if (mono_ms() - started > 10 * BACKOFF_MAX_MS)
			backoff = BACKOFF_MIN_MS;
		nap(l, backoff);
		backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
	}
	pc_etcd_free(&w.fetch);
	pc_etcd_free(&e);
	return NULL;
}

/* ---- lease and reports ---- */

static void publish_status(struct pc_fleet_link *l, struct pc_etcd *e,
			   __u64 *next_report)
{
	char key[PC_FLEET_KEY_MAX], *json;

	pthread_mutex_lock(&l->mu);
	json = l->status_json ? strdup(l->status_json) : NULL;
	l->status_dirty = false;
	pthread_mutex_unlock(&l->mu);
	if (!json)
		return;
	pc_fleet_key(key, sizeof(key), l->prefix, "status", l->host);
	if (pc_etcd_put(e, key, json, strlen(json), 0)) {
		pthread_mutex_lock(&l->mu);
		l->status_dirty = true;		/* try again next round */
		pthread_mutex_unlock(&l->mu);
	} else {
		*next_report = mono_ms() + l->report_ms;
	}
	free(json);
}

static __s64 grant(struct pc_fleet_link *l, struct pc_etcd *e)
{
	char key[PC_FLEET_KEY_MAX], val[96], msg[160];
	__s64 id = 0;
	long ttl = 0;

	if (pc_etcd_lease_grant(e, l->ttl_s, &id, &ttl))
		return 0;
	pc_fleet_key(key, sizeof(key), l->prefix, "alive", l->host);
	snprintf(val, sizeof(val), "{\"pid\":%d,\"version\":\"%s\"}", getpid(),
		 PC_FLEET_VERSION);
	if (pc_etcd_put(e, key, val, strlen(val), id)) {
		pc_etcd_lease_revoke(e, id);
		return 0;
	}
	snprintf(msg, sizeof(msg), "lease %llx, ttl %lds",
		 (unsigned long long)id, ttl);
	post_simple(l, PC_FE_LEASE, true, msg);
	/* A new lease is a new life: tell the fleet where we stand. */
	pthread_mutex_lock(&l->mu);
	l->status_dirty = true;
	pthread_mutex_unlock(&l->mu);
	return id;
}

/* One keep-alive (or grant); true if etcd answered with a live lease.
 * Only etcd's liveness: anything that speaks HTTP can answer one. */
static bool keepalive_round(struct pc_fleet_link *l, struct pc_etcd *e,
			    __s64 *id)
{
	long ttl;

	if (!*id) {
		*id = grant(l, e);
		return *id != 0;
	}
	if (pc_etcd_lease_keepalive(e, *id, &ttl))
		return false;
	if (ttl > 0) {
		post_simple(l, PC_FE_KEEPALIVE, true, NULL);
		return true;
	}
	/* Expired while we could not reach etcd. */
	post_simple(l, PC_FE_LEASE, false, "lease expired: granting a new one");
	*id = grant(l, e);
	return *id != 0;
}

/*
 * The controller's heartbeat, read every round: a new revision goes to
 * the loop, which verifies it. Nothing here decides liveness; an absent,
 * unreadable or unchanged value is simply no heartbeat.
 */
static void read_heartbeat(struct pc_fleet_link *l, struct pc_etcd *e)
{
	struct pc_fleet_event ev = { .type = PC_FE_HEARTBEAT };
	struct pc_etcd_range r;

	if (pc_etcd_get(e, l->hb_key, false, &r))
		return;
	if (r.n == 1 && r.kvs[0].value && r.kvs[0].mod_rev != l->hb_rev) {
		l->hb_rev = r.kvs[0].mod_rev;
		ev.revision = r.kvs[0].mod_rev;
		snprintf(ev.key, sizeof(ev.key), "%s", l->hb_key);
		ev.value = r.kvs[0].value;
		ev.len = r.kvs[0].value_len;
		r.kvs[0].value = NULL;
		post(l, &ev);
	}
	pc_etcd_range_free(&r);
}

static void *leaser_main(void *arg)
{
	struct pc_fleet_link *l = arg;
	__u64 next_report = 0, next_keepalive = 0, now;
	struct pc_etcd e;
	__s64 id = 0;
	bool dirty, ok, failing = false;

	if (pc_etcd_init(&e, l->endpoints, l->nendpoints, l->lease_request_ms) ||
	    tls_setup(l, &e)) {
		post_simple(l, PC_FE_LEASE, false, "cannot set up an etcd client");
		return NULL;
	}
	while (!stopping(l)) {
		now = mono_ms();
		if (now >= next_keepalive) {
			next_keepalive = now + l->keepalive_ms;
			ok = keepalive_round(l, &e, &id);
			read_heartbeat(l, &e);
			/* Back from an outage: the watch stream may be a dead
			 * TCP connection that has not noticed; start it over. */
			if (ok && failing) {
				pthread_mutex_lock(&l->mu);
				l->resync = true;
				pthread_mutex_unlock(&l->mu);
			}
			failing = !ok;
		}
		pthread_mutex_lock(&l->mu);
		dirty = l->status_dirty;
		pthread_mutex_unlock(&l->mu);
		if (id && (dirty || mono_ms() >= next_report))
			publish_status(l, &e, &next_report);
		now = mono_ms();
		pthread_mutex_lock(&l->mu);
		if (!l->stop && !l->status_dirty && now < next_keepalive) {
			struct timespec ts = deadline(next_keepalive - now);

			pthread_cond_timedwait(&l->cond, &l->mu, &ts);
		}
		pthread_mutex_unlock(&l->mu);
		/* An unpublished report and no lease: do not spin on it. */
		if (!id && dirty)
			nap(l, l->keepalive_ms);
	}
	/* Going away on purpose: let the fleet see it at once. */
	if (id)
		pc_etcd_lease_revoke(&e, id);
	pc_etcd_free(&e);
	return NULL;
}

/* ---- start and stop ---- */

int pc_fleet_link_start(struct pc_fleet_link **out, const struct pc_config *cfg,
			const struct pc_fleet_view *v)
{
	struct pc_fleet_link *l = calloc(1, sizeof(*l));
	pthread_condattr_t ca;
	int err;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->efd = -1;
	for (size_t i = 0; i < cfg->nendpoints; i++)
		if ((l->endpoints[i] = strdup(cfg->fleet_endpoints[i])))
			l->nendpoints++;
	snprintf(l->prefix, sizeof(l->prefix), "%s", cfg->fleet_prefix);
	snprintf(l->host, sizeof(l->host), "%s", cfg->host_id);
	pc_fleet_heartbeat_key(l->hb_key, sizeof(l->hb_key), cfg->fleet_prefix);
	l->tls_ca = cfg->fleet_tls_ca ? strdup(cfg->fleet_tls_ca) : NULL;
	l->tls_cert = cfg->fleet_tls_cert ? strdup(cfg->fleet_tls_cert) : NULL;
	l->tls_key = cfg->fleet_tls_key ? strdup(cfg->fleet_tls_key) : NULL;
	for (size_t i = 0; i < v->n; i++)
		pc_fleet_desired_key(l->keys[l->nkeys++], PC_FLEET_KEY_MAX,
				     cfg->fleet_prefix, v->target[i]);
	/* Four rounds (keep-alive, heartbeat read) per heartbeat timeout:
	 * one late answer is no loss. */
	l->keepalive_ms = cfg->hb_timeout_ms / 4 ? cfg->hb_timeout_ms / 4 : 1;
	l->ttl_s = (cfg->hb_timeout_ms + 999) / 1000 + 1;
	l->request_ms = cfg->fleet_request_ms;
	l->lease_request_ms = cfg->hb_timeout_ms / 2 < cfg->fleet_request_ms ?
				      cfg->hb_timeout_ms / 2 : cfg->fleet_request_ms;
	if (l->lease_request_ms < 100)
		l->lease_request_ms = 100;
	l->report_ms = cfg->fleet_report_ms;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cond, &ca);
	pthread_condattr_destroy(&ca);
	l->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->efd < 0 || l->nendpoints != cfg->nendpoints ||
	    (cfg->fleet_tls_ca && !l->tls_ca) ||
	    (cfg->fleet_tls_cert && (!l->tls_cert || !l->tls_key))) {
		err = l->efd < 0 ? -errno : -ENOMEM;
		pc_fleet_link_stop(l);
		return err;
	}
	err = -pthread_create(&l->watcher, NULL, watcher_main, l);
	l->watcher_up = !err;
	if (!err) {
		err = -pthread_create(&l->leaser, NULL, leaser_main, l);
		l->leaser_up = !err;
	}
	if (err) {
		pc_fleet_link_stop(l);
		return err;
	}
	*out = l;
	return 0;
}

void pc_fleet_link_stop(struct pc_fleet_link *l)
{
	struct pc_fleet_event ev;

	if (!l)
		return;
	pthread_mutex_lock(&l->mu);
	l->stop = true;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->mu);
	if (l->watcher_up)
		pthread_join(l->watcher, NULL);
	if (l->leaser_up)
		pthread_join(l->leaser, NULL);
	while (l->efd >= 0 && pc_fleet_link_next(l, &ev))
		pc_fleet_event_free(&ev);
	if (l->efd >= 0)
		close(l->efd);
	for (size_t i = 0; i < l->nendpoints; i++)
		free(l->endpoints[i]);
	free(l->status_json);
	free(l->tls_ca);
	free(l->tls_cert);
	free(l->tls_key);
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->mu);
	free(l);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * "portcullis fleet": the controller for a fleet, as stateless CLI calls.
 * Every write is read-modify-write under a compare-revision transaction:
 * when two operators race, one wins and the other is told (exit 3),
 * never overwritten in silence.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <json-c/json.h>
#include <sodium.h>
#include "compile.h"
#include "config.h"
#include "etcd.h"
#include "fleet.h"
#include "fleet_cli.h"
#include "lockout.h"
#include "log.h"
#include "msg.h"
#include "policy.h"

#define EXIT_CONFLICT	3
#define MAX_TRUST	(PC_MAX_KEYS - 1)

struct opts {
	char *endpoints[PC_ETCD_MAX_ENDPOINTS];
	size_t nendpoints;
	const char *prefix;
	const char *key_path;
	const char *trust[MAX_TRUST];
	size_t ntrust;
	const char *groups[PC_FLEET_MAX_GROUPS];
	size_t ngroups;
	const char *host;		/* policy --host */
	bool all, json, force;
	bool expect_set;
	__s64 expect;
	long timeout_ms;
	__u64 every_ms;			/* heartbeat --every */
	__u64 count;			/* heartbeat --count; 0: until a signal */
	const char *cacert, *cert, *cert_key;	/* TLS to etcd */
	/* keys: ours first, then --trust */
	__u8 sk[PC_SK_LEN];
	bool have_sk;
	__u8 pub[PC_MAX_KEYS][PC_PK_LEN];
	size_t npub;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: portcullis fleet [OPTIONS] COMMAND [ARGS]\n"
"\n"
"Desired mode and policy for a fleet, kept in etcd (README \"Fleet mode\").\n"
"\n"
"Commands:\n"
"  quarantine|lockdown|release HOST... | --group G | --all\n"
"                        set the desired mode (release: normal, and lifts a\n"
"                        named host's local escalations too)\n"
"  policy FILE --host H | --group G | --all\n"
"                        upload FILE (checked first) and make it desired\n"
"  status [--json] [HOST...]\n"
"                        reported vs desired state of every host\n"
"  get HOST | --group G | --all\n"
"                        the desired-state envelope, decoded, with its revision\n"
"  heartbeat [--every D] [--count N]\n"
"                        sign a heartbeat into PREFIX/heartbeat every D\n"
"                        (default 1s) until SIGINT/SIGTERM or N of them:\n"
"                        without it, every agent locks down\n"
"\n"
"Options:\n"
"  -e, --endpoints URL[,URL]  etcd client URLs ($PORTCULLIS_ETCD,\n"
"                             default http://127.0.0.1:2379)\n"
"  -p, --prefix P             key prefix ($PORTCULLIS_FLEET_PREFIX, default %s)\n"
"  -k, --key FILE             controller secret key for signing\n"
"                             ($PORTCULLIS_FLEET_KEY)\n"
"  -t, --trust FILE           another controller's public key: envelopes it\n"
"                             signed count as verified (repeatable)\n"
"  -g, --group G              a group (repeatable)\n"
"  -a, --all                  the fleet-wide key\n"
"      --host H               (policy) a host\n"
"      --expect-revision R    write only if the key is at revision R (0: absent)\n"
"      --timeout MS           per etcd request (default 3000)\n"
"      --cacert FILE          TLS: the CA etcd's certificate must chain to\n"
"                             (pinned: the system's store is not used)\n"
"      --cert FILE, --cert-key FILE\n"
"                             TLS: our client certificate and its key\n"
"      --json                 (status) machine-readable output\n"
"      --force                (policy) store it despite the anti-lockout check\n"
"      --every D              (heartbeat) interval: 500ms, 1s, ... (100ms..1h)\n"
"      --count N              (heartbeat) stop after N heartbeats\n"
"  -h, --help\n"
"\n"
"Exit status: 0 done; 1 error; 2 usage; 3 conflict: the key changed between\n"
"read and write (or was not at --expect-revision), nothing was written.\n",
		PC_FLEET_DEFAULT_PREFIX);
}

static __u64 now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec * 1000ULL + ts.tv_nsec / 1000000;
}

static int split_endpoints(struct opts *o, char *list)
{
	char *save = NULL;

	o->nendpoints = 0;
	for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->nendpoints >= PC_ETCD_MAX_ENDPOINTS || !pc_fleet_endpoint_ok(t)) {
			pr_warn("bad etcd endpoint '%s' (want http://HOST:PORT, at most %d)\n",
				t, PC_ETCD_MAX_ENDPOINTS);
			return -EINVAL;
		}
		o->endpoints[o->nendpoints++] = t;
	}
	return o->nendpoints ? 0 : -EINVAL;
}

static int load_keys(struct opts *o)
{
	char err[256], b64[64];

	if (pc_crypto_init())
		return -EIO;
	if (o->key_path) {
		if (pc_key_load_secret(o->key_path, o->sk, err, sizeof(err))) {
			pr_warn("%s\n", err);
			return -EINVAL;
		}
		o->have_sk = true;
		crypto_sign_ed25519_sk_to_pk(o->pub[o->npub++], o->sk);
	}
	for (size_t i = 0; i < o->ntrust; i++) {
		FILE *f = fopen(o->trust[i], "re");

		if (!f || !fgets(b64, sizeof(b64), f) ||
		    (b64[strcspn(b64, "\r\n")] = '\0',
		     pc_key_parse_public(b64, o->pub[o->npub]))) {
			pr_warn("%s: not a public key file (one line of base64)\n",
				o->trust[i]);
			if (f)
				fclose(f);
			return -EINVAL;
		}
		fclose(f);
		o->npub++;
	}
	return 0;
}

/* ---- reading what is there ---- */

/* A stored value, decoded; verified says whether a key we trust signed it. */
static bool decode_value(const struct opts *o, const struct pc_etcd_kv *kv,
			 struct pc_fleet_desired *d, bool *verified)
{
	*verified = false;
	if (!kv->value)
		return false;
	if (o->npub && pc_fleet_decode(kv->value, kv->value_len,
				       (const __u8(*)[PC_PK_LEN])o->pub, o->npub,
				       d) == PC_MSG_OK) {
		*verified = true;
		return true;
	}
	return pc_fleet_peek(kv->value, kv->value_len, d);
}

static void describe(const struct pc_fleet_desired *d, char *buf, size_t len)
{
	char hex[2 * PC_HASH_LEN + 1] = "";

	if (d->has_policy)
		pc_hex(d->policy_hash, PC_HASH_LEN, hex);
	snprintf(buf, len, "%s%s%.12s, seq %llu", d->release ? "release" :
		 pc_mode_name(d->mode), d->has_policy ? ", policy " : "", hex,
		 (unsigned long long)d->seq);
}

/* ---- writing ---- */

struct change {
	bool set_mode;
	enum pc_mode mode;
	bool release;
	bool set_policy;
	__u8 hash[PC_HASH_LEN];
};

/* Read, build the next envelope, write if nobody wrote in between. */
static int write_target(struct pc_etcd *e, const struct opts *o,
			const char *target, const struct change *c)
{
	struct pc_fleet_desired cur = {}, d = {};
	struct pc_etcd_range r;
	struct pc_etcd_kv now;
	char key[PC_FLEET_KEY_MAX], what[160];
	__u8 buf[1024];
	bool have = false, verified = false;
	__s64 expect = 0, rev;
	int n, ret;

	pc_fleet_desired_key(key, sizeof(key), o->prefix, target);
	ret = pc_etcd_get(e, key, false, &r);
	if (ret) {
		pr_warn("%s: cannot read: %s\n", key, e->err);
		return 1;
	}
	if (r.n == 1) {
		expect = r.kvs[0].mod_rev;
		have = decode_value(o, &r.kvs[0], &cur, &verified);
	}
	pc_etcd_range_free(&r);
	if (o->expect_set)
		expect = o->expect;

	d.mode = have ? cur.mode : PC_MODE_NORMAL;
	/* Carry a policy forward only if a key we trust signed it: never
	 * endorse what someone with bare etcd access put there. */
	if (have && verified) {
		d.has_policy = cur.has_policy;
		memcpy(d.policy_hash, cur.policy_hash, PC_HASH_LEN);
	} else if (have && cur.has_policy && !c->set_policy) {
		pr_warn("%s: the policy named there is not signed by a key this command trusts (--key/--trust): not carried over\n",
			key);
	}
	if (c->set_mode) {
		d.mode = c->mode;
		d.release = c->release;
	}
	if (c->set_policy) {
		d.has_policy = true;
		memcpy(d.policy_hash, c->hash, PC_HASH_LEN);
	}
	/* Microseconds of the wall clock, but always past the last one. */
	d.seq = now_ms() * 1000;
	if (have && cur.seq >= d.seq)
		d.seq = cur.seq + 1;
	d.timestamp_ms = now_ms();
	randombytes_buf(d.id, sizeof(d.id));
	snprintf(d.target, sizeof(d.target), "%s", target);
	n = pc_fleet_encode(&d, o->sk, buf, sizeof(buf));
	if (n < 0) {
		pr_warn("%s: cannot encode: %s\n", target, strerror(-n));
		return 1;
	}
	ret = pc_etcd_put_if(e, key, buf, n, expect, &rev, &now);
	if (ret < 0) {
		pr_warn("%s: cannot write: %s\n", key, e->err);
		return 1;
	}
	describe(&d, what, sizeof(what));
	if (ret == 1) {
		printf("%s: %s (revision %lld)\n", target, what, (long long)rev);
		return 0;
	}
	if (now.key && decode_value(o, &now, &cur, &verified))
		describe(&cur, what, sizeof(what));
	else
		snprintf(what, sizeof(what), "%s", now.key ? "a value that is no envelope" :
			 "absent");
	pr_warn("conflict: %s changed (expected revision %lld, now %lld: %s); nothing written\n",
		key, (long long)expect, (long long)now.mod_rev, what);
	pc_etcd_kv_free(&now);
	return EXIT_CONFLICT;
}

/* The targets a command names: hosts, --group, --all. */
static int collect_targets(const struct opts *o, int argc, char **argv,
			   char (*t)[PC_FLEET_TARGET_LEN], size_t max, size_t *n)
{
	*n = 0;
	if (o->all)
		pc_fleet_target(t[(*n)++], PC_FLEET_TARGET_LEN, "fleet", NULL);
	for (size_t i = 0; i < o->ngroups && *n < max; i++)
		pc_fleet_target(t[(*n)++], PC_FLEET_TARGET_LEN, "group", o->groups[i]);
	for (int i = 0; i < argc; i++) {
		if (!pc_fleet_name_ok(argv[i])) {
			pr_warn("bad host name '%s' (1-%d characters of A-Z a-z 0-9 _ . : -)\n",
				argv[i], PC_FLEET_NAME_MAX);
			return -EINVAL;
		}
		if (*n >= max) {
			pr_warn("too many targets in one call (the limit is %zu)\n", max);
			return -E2BIG;
		}
		pc_fleet_target(t[(*n)++], PC_FLEET_TARGET_LEN, "host", argv[i]);
	}
	for (size_t i = 0; i < o->ngroups; i++)
		if (!pc_fleet_name_ok(o->groups[i])) {
			pr_warn("bad group name '%s'\n", o->groups[i]);
			return -EINVAL;
		}
	if (!*n) {
		pr_warn("name a target: HOST..., --group G or --all\n");
		return -EINVAL;
	}
	if (o->expect_set && *n != 1) {
		pr_warn("--expect-revision needs exactly one target\n");
		return -EINVAL;
	}
	return 0;
}

static int run_writes(struct pc_etcd *e, const struct opts *o, int argc,
		      char **argv, const struct change *c)
{
	static char t[256][PC_FLEET_TARGET_LEN];
	int worst = 0;
	size_t n;

	if (!o->have_sk) {
		pr_warn("writing needs the controller's secret key: --key FILE or $PORTCULLIS_FLEET_KEY\n");
		return 1;
	}
	if (collect_targets(o, argc, argv, t, 256, &n))
		return 2;
	for (size_t i = 0; i < n; i++) {
		int r = write_target(e, o, t[i], c);

		/* An error outranks a conflict, a conflict outranks done. */
		if (r == 1 || (r == EXIT_CONFLICT && worst != 1))
			worst = r;
	}
	return worst;
}

static int do_policy(struct pc_etcd *e, struct opts *o, int argc, char **argv)
{
	struct pc_policy p = {};
	struct pc_compiled c = {};
	struct change ch = { .set_policy = true };
	char err[512], hex[2 * PC_HASH_LEN + 1], key[PC_FLEET_KEY_MAX];
	char *host[1];
	FILE *f;
	char *text = NULL;
	size_t len = 0;
	int ret;

	if (argc != 1) {
		pr_warn("usage: portcullis fleet policy FILE --host H | --group G | --all\n");
		return 2;
	}
	/* Refuse here what every agent would refuse: fail early, once. */
	if (pc_policy_load_file(argv[0], &p, err, sizeof(err)) ||
	    pc_compile(&p, &c, err, sizeof(err))) {
		pr_warn("policy refused: %s\n", err);
		pc_policy_free(&p);
		return 1;
	}
	if (pc_lockout_check(&p, NULL, err, sizeof(err))) {
		if (!o->force) {
			pr_warn("policy refused (anti-lockout, as every agent would refuse it): %s\n",
				err);
			pc_compiled_free(&c);
			pc_policy_free(&p);
			return 1;
		}
		pr_warn("anti-lockout overridden by --force: %s (agents run without --force refuse it)\n",
			err);
	}
	pc_compiled_free(&c);
	pc_policy_free(&p);
	f = fopen(argv[0], "re");
	if (!f) {
		pr_warn("%s: %s\n", argv[0], strerror(errno));
		return 1;
	}
	text = malloc(PC_ETCD_MAX_RESPONSE / 2);
	if (text)
		len = fread(text, 1, PC_ETCD_MAX_RESPONSE / 2, f);
	fclose(f);
	if (!text || len == PC_ETCD_MAX_RESPONSE / 2) {
		pr_warn("%s: too large for etcd\n", argv[0]);
		free(text);
		return 1;
	}
	pc_sha256(text, len, ch.hash);
	pc_hex(ch.hash, PC_HASH_LEN, hex);
	pc_fleet_key(key, sizeof(key), o->prefix, "policies", hex);
	if (!o->have_sk) {
		free(text);
		return run_writes(e, o, 0, NULL, &ch);	/* says what is missing */
	}
	/* Content-addressed: writing it twice writes the same bytes. */
	ret = pc_etcd_put(e, key, text, len, 0);
	free(text);
	if (ret) {
		pr_warn("%s: cannot write: %s\n", key, e->err);
		return 1;
	}
	printf("policy %s stored at %s\n", argv[0], key);
	host[0] = (char *)o->host;
	return run_writes(e, o, o->host ? 1 : 0, host, &ch);
}

/* ---- reading ---- */

static int do_get(struct pc_etcd *e, struct opts *o, int argc, char **argv)
{
	static char t[64][PC_FLEET_TARGET_LEN];
	struct pc_fleet_desired d;
	char key[PC_FLEET_KEY_MAX], what[160], hex[2 * PC_HASH_LEN + 1];
	size_t n;
	bool verified;

	if (collect_targets(o, argc, argv, t, 64, &n))
		return 2;
	for (size_t i = 0; i < n; i++) {
		struct pc_etcd_range r;

		pc_fleet_desired_key(key, sizeof(key), o->prefix, t[i]);
		if (pc_etcd_get(e, key, false, &r)) {
			pr_warn("%s: cannot read: %s\n", key, e->err);
			return 1;
		}
		if (!r.n) {
			printf("%s: absent (revision 0)\n", t[i]);
		} else if (!decode_value(o, &r.kvs[0], &d, &verified)) {
			printf("%s: NOT AN ENVELOPE, %zu bytes (revision %lld): agents refuse it\n",
			       t[i], r.kvs[0].value_len, (long long)r.kvs[0].mod_rev);
		} else {
			describe(&d, what, sizeof(what));
			printf("%s: %s (revision %lld)\n", t[i], what,
			       (long long)r.kvs[0].mod_rev);
			printf("  target %s, signed at %llu ms, %s\n", d.target,
			       (unsigned long long)d.timestamp_ms,
			       verified ? "signature verified" :
			       o->npub ? "SIGNATURE NOT VERIFIED by the given keys" :
					 "signature not checked (no --key/--trust)");
			if (d.has_policy) {
				pc_hex(d.policy_hash, PC_HASH_LEN, hex);
				printf("  policy %s\n", hex);
			}
		}
		pc_etcd_range_free(&r);
	}
	return 0;
}

/* All keys under PREFIX/KIND/. */
static int get_all(struct pc_etcd *e, const struct opts *o, const char *kind,
		   struct pc_etcd_range *r)
{
	char key[PC_FLEET_KEY_MAX];

	snprintf(key, sizeof(key), "%s/%s/", o->prefix, kind);
	if (pc_etcd_get(e, key, true, r)) {
		pr_warn("%s: cannot read: %s\n", key, e->err);
		return -EIO;
	}
	return 0;
}

struct host_row {
	char host[PC_FLEET_TARGET_LEN];
	bool alive, reported;
	struct pc_fleet_status st;
	enum pc_mode desired;
	bool desired_policy;
	__u8 policy_hash[PC_HASH_LEN];
};

/* A desired envelope by target, if it decodes (and verifies, with keys). */
static bool find_desired(const struct opts *o, const struct pc_etcd_range *des,
			 const char *target, struct pc_fleet_desired *d)
{
	char key[PC_FLEET_KEY_MAX];
	bool verified;

	pc_fleet_desired_key(key, sizeof(key), o->prefix, target);
	for (size_t i = 0; i < des->n; i++)
		if (!strcmp(des->kvs[i].key, key))
			return decode_value(o, &des->kvs[i], d, &verified) &&
			       (verified || !o->npub) && !strcmp(d->target, target);
	return false;
}

/* What the host should be in: as the agent resolves it (fleet.c). */
static void resolve(const struct opts *o, const struct pc_etcd_range *des,
		    struct host_row *h)
{
	char *groups[PC_FLEET_MAX_GROUPS];
	struct pc_fleet_view v;
	int pi;

	for (size_t i = 0; i < h->st.ngroups; i++)
		groups[i] = h->st.groups[i];
	pc_fleet_view_init(&v, h->host, groups, h->st.ngroups);
	for (size_t i = 0; i < v.n; i++)
		v.set[i] = find_desired(o, des, v.target[i], &v.d[i]);
	h->desired = pc_fleet_floor(&v);
	pi = pc_fleet_policy_index(&v);
	h->desired_policy = pi >= 0;
	if (pi >= 0)
		memcpy(h->policy_hash, v.d[pi].policy_hash, PC_HASH_LEN);
}

static struct host_row *row_for(struct host_row **rows, size_t *n,
				const char *host)
{
	struct host_row *r;

	for (size_t i = 0; i < *n; i++)
		if (!strcmp((*rows)[i].host, host))
			return &(*rows)[i];
	r = realloc(*rows, (*n + 1) * sizeof(**rows));
	if (!r)
		return NULL;
	*rows = r;
	r = &(*rows)[(*n)++];
	memset(r, 0, sizeof(*r));
	snprintf(r->host, sizeof(r->host), "%s", host);
	return r;
}

static const char *tail(const char *key, const char *prefix, const char *kind)
{
	size_t pl = strlen(prefix), kl = strlen(kind);

	if (strncmp(key, prefix, pl) || key[pl] != '/' ||
	    strncmp(key + pl + 1, kind, kl) || key[pl + 1 + kl] != '/')
		return NULL;
	key += pl + kl + 2;
	return pc_fleet_name_ok(key) ? key : NULL;
}

static int cmp_rows(const void *x, const void *y)
{
	return strcmp(((const struct host_row *)x)->host,
		      ((const struct host_row *)y)->host);
}

static bool row_drift(const struct host_row *h)
{
	if (!h->reported || h->st.mode != h->desired)
		return true;
	return h->desired_policy &&
	       (!h->st.has_policy ||
		memcmp(h->st.policy_hash, h->policy_hash, PC_HASH_LEN));
}

static void print_rows(const struct host_row *rows, size_t n, bool json)
{
	json_object *arr = json_object_new_array();
	__u64 now = now_ms();

	if (!json)
		printf("%-20s %-5s %-10s %-10s %-5s %-18s %-12s %-14s %s\n", "HOST",
		       "ALIVE", "REPORTED", "DESIRED", "DRIFT", "CAUSE", "POLICY",
		       "LAST-HEARTBEAT", "GROUPS");
	for (size_t i = 0; i < n; i++) {
		const struct host_row *h = &rows[i];
		char hex[2 * PC_HASH_LEN + 1] = "-", dhex[2 * PC_HASH_LEN + 1] = "",
		     ago[24] = "never", groups[256] = "";
		bool drift = row_drift(h);

		if (h->st.has_policy)
			pc_hex(h->st.policy_hash, PC_HASH_LEN, hex);
		if (h->desired_policy)
			pc_hex(h->policy_hash, PC_HASH_LEN, dhex);
		/* As of its last report (sent on every change, and every
		 * report_interval while the agent runs). */
		if (h->reported && h->st.last_hb_ms)
			snprintf(ago, sizeof(ago), "%.1fs ago",
				 now > h->st.last_hb_ms ?
					 (now - h->st.last_hb_ms) / 1000.0 : 0.0);
		for (size_t g = 0; g < h->st.ngroups; g++)
			snprintf(groups + strlen(groups), sizeof(groups) - strlen(groups),
				 "%s%s", g ? "," : "", h->st.groups[g]);
		if (!json) {
			printf("%-20s %-5s %-10s %-10s %-5s %-18s %-12.12s %-14s %s\n",
			       h->host, h->alive ? "yes" : "NO",
			       h->reported ? pc_mode_name(h->st.mode) : "-",
			       pc_mode_name(h->desired), drift ? "DRIFT" : "-",
			       h->reported ? h->st.cause : "-", hex, ago,
			       groups[0] ? groups : "-");
			continue;
		}
		json_object *o = json_object_new_object(), *ga = json_object_new_array();

		json_object_object_add(o, "host", json_object_new_string(h->host));
		json_object_object_add(o, "alive", json_object_new_boolean(h->alive));
		json_object_object_add(o, "reported", h->reported ?
				       json_object_new_string(pc_mode_name(h->st.mode)) : NULL);
		json_object_object_add(o, "desired",
				       json_object_new_string(pc_mode_name(h->desired)));
		json_object_object_add(o, "drift", json_object_new_boolean(drift));
		json_object_object_add(o, "cause", h->reported ?
				       json_object_new_string(h->st.cause) : NULL);
		json_object_object_add(o, "policy", h->st.has_policy ?
				       json_object_new_string(hex) : NULL);
		json_object_object_add(o, "desired_policy", h->desired_policy ?
				       json_object_new_string(dhex) : NULL);
		json_object_object_add(o, "last_report_ms",
				       json_object_new_int64(h->st.reported_ms));
		json_object_object_add(o, "last_heartbeat_ms",
				       json_object_new_int64(h->st.last_hb_ms));
		json_object_object_add(o, "heartbeat_lost",
				       json_object_new_boolean(h->st.hb_lost));
		json_object_object_add(o, "refused", json_object_new_int64(h->st.refused));
		for (size_t g = 0; g < h->st.ngroups; g++)
			json_object_array_add(ga, json_object_new_string(h->st.groups[g]));
		json_object_object_add(o, "groups", ga);
		json_object_array_add(arr, o);
	}
	if (json)
		printf("%s\n", json_object_to_json_string_ext(arr,
			JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED));
	json_object_put(arr);
}

static int do_status(struct pc_etcd *e, struct opts *o, int argc, char **argv)
{
	struct pc_etcd_range st = {}, alive = {}, des = {};
	struct host_row *rows = NULL, *h;
	size_t n = 0;
	const char *name;
	int ret = 1;

	if (get_all(e, o, "status", &st) || get_all(e, o, "alive", &alive) ||
	    get_all(e, o, "desired", &des))
		goto out;
	for (size_t i = 0; i < st.n; i++) {
		if (!(name = tail(st.kvs[i].key, o->prefix, "status")) ||
		    !(h = row_for(&rows, &n, name)))
			continue;
		h->reported = st.kvs[i].value &&
			      !pc_fleet_status_parse((const char *)st.kvs[i].value,
						     st.kvs[i].value_len, &h->st);
	}
	for (size_t i = 0; i < alive.n; i++)
		if ((name = tail(alive.kvs[i].key, o->prefix, "alive")) &&
		    (h = row_for(&rows, &n, name)))
			h->alive = true;
	/* Hosts named in desired state but never seen are drift too. */
	for (size_t i = 0; i < des.n; i++) {
		char target[PC_FLEET_TARGET_LEN];

		if (!pc_fleet_target_of_key(o->prefix, des.kvs[i].key, target,
					    sizeof(target)) &&
		    !strncmp(target, "host/", 5))
			row_for(&rows, &n, target + 5);
	}
	for (size_t i = 0; i < n; i++)
		resolve(o, &des, &rows[i]);
	/* Only the hosts asked for, if any were. */
	if (argc) {
		size_t k = 0;

		for (size_t i = 0; i < n; i++)
			for (int j = 0; j < argc; j++)
				if (!strcmp(rows[i].host, argv[j])) {
					rows[k++] = rows[i];
					break;
				}
		n = k;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), cmp_rows);
	print_rows(rows, n, o->json);
	ret = 0;
out:
	free(rows);
	pc_etcd_range_free(&st);
	pc_etcd_range_free(&alive);
	pc_etcd_range_free(&des);
	return ret;
}

/* ---- liveness ---- */

static volatile sig_atomic_t hb_stop;

static void on_hb_signal(int sig)
{
	hb_stop = 1;
}

static void sleep_until(const struct timespec *t)
{
	/* EINTR is the signal we wait for: the caller checks hb_stop. */
	while (!hb_stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, t,
					   NULL) == EINTR)
		;
}

/*
 * The controller's proof of life: a signed heartbeat at PREFIX/heartbeat,
 * rewritten every interval. Agents count only these (README "Fleet
 * liveness is authenticated"); a write that fails is said once per
 * outage and retried on the beat, never a reason to stop.
 */
static int do_heartbeat(struct pc_etcd *e, const struct opts *o, int argc)
{
	struct sigaction sa = { .sa_handler = on_hb_signal }, old_int, old_term;
	struct pc_fleet_heartbeat hb = {};
	struct timespec next, now;
	char key[PC_FLEET_KEY_MAX];
	__u8 buf[256];
	__u64 sent = 0, tries = 0, prev = 0;
	bool failing = false;
	int n;

	if (argc) {
		pr_warn("usage: portcullis fleet heartbeat [--every D] [--count N]\n");
		return 2;
	}
	if (!o->have_sk) {
		pr_warn("heartbeats need the controller's secret key: --key FILE or $PORTCULLIS_FLEET_KEY\n");
		return 1;
	}
	pc_fleet_heartbeat_key(key, sizeof(key), o->prefix);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	printf("signing a heartbeat into %s every %llu ms\n", key,
	       (unsigned long long)o->every_ms);
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!hb_stop && (!o->count || tries < o->count)) {
		/* Wall-clock us, always above the last: a restarted
		 * controller needs no state to stay above what agents took. */
		hb.seq = now_ms() * 1000;
		if (hb.seq <= prev)
			hb.seq = prev + 1;
		prev = hb.seq;
		hb.timestamp_ms = now_ms();
		randombytes_buf(hb.id, sizeof(hb.id));
		n = pc_fleet_heartbeat_encode(&hb, o->sk, buf, sizeof(buf));
		if (n < 0) {
			pr_warn("cannot encode a heartbeat: %s\n", strerror(-n));
			break;
		}
		tries++;
		if (pc_etcd_put(e, key, buf, n, 0)) {
			if (!failing)
				pr_warn("%s: cannot write: %s (still trying)\n", key, e->err);
			failing = true;
		} else {
			if (failing)
				pr_warn("%s: heartbeats are written again\n", key);
			failing = false;
			sent++;
		}
		if (o->count && tries >= o->count)
			break;
		next.tv_sec += o->every_ms / 1000;
		next.tv_nsec += (o->every_ms % 1000) * 1000000;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		/* After a stall, the rhythm from now, not a burst. */
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > next.tv_sec ||
		    (now.tv_sec == next.tv_sec && now.tv_nsec > next.tv_nsec))
			next = now;
		sleep_until(&next);
	}
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	printf("%llu heartbeat(s) written, %llu failed\n", (unsigned long long)sent,
	       (unsigned long long)(tries - sent));
	return sent == tries ? 0 : 1;
}

/* ---- entry ---- */

enum { OPT_EXPECT = 256, OPT_JSON, OPT_TIMEOUT, OPT_HOST, OPT_FORCE, OPT_EVERY,
       OPT_COUNT, OPT_CACERT, OPT_CERT, OPT_CERT_KEY };

int pc_fleet_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "endpoints", required_argument, NULL, 'e' },
		{ "prefix", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "trust", required_argument, NULL, 't' },
		{ "group", required_argument, NULL, 'g' },
		{ "all", no_argument, NULL, 'a' },
		{ "host", required_argument, NULL, OPT_HOST },
		{ "expect-revision", required_argument, NULL, OPT_EXPECT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "force", no_argument, NULL, OPT_FORCE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "every", required_argument, NULL, OPT_EVERY },
		{ "count", required_argument, NULL, OPT_COUNT },
		{ "cacert", required_argument, NULL, OPT_CACERT },
		{ "cert", required_argument, NULL, OPT_CERT },
		{ "cert-key", required_argument, NULL, OPT_CERT_KEY },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct opts o = { .timeout_ms = 3000, .every_ms = 1000 };
	char *eps = getenv("PORTCULLIS_ETCD"), *end, *list;
	const char *cmd;
	struct pc_etcd e;
	int c, ret;

	o.prefix = getenv("PORTCULLIS_FLEET_PREFIX");
	o.key_path = getenv("PORTCULLIS_FLEET_KEY");
	optind = 0;	/* 0: a full restart of GNU getopt, options anywhere */
	while ((c = getopt_long(argc, argv, "e:p:k:t:g:ah", longopts, NULL)) != -1) {
		switch (c) {
		case 'e':
			eps = optarg;
			break;
		case 'p':
			o.prefix = optarg;
			break;
		case 'k':
			o.key_path = optarg;
			break;
		case 't':
			if (o.ntrust >= MAX_TRUST) {
				pr_warn("too many --trust keys (the limit is %d)\n", MAX_TRUST);
				return 2;
			}
			o.trust[o.ntrust++] = optarg;
			break;
		case 'g':
			if (o.ngroups >= PC_FLEET_MAX_GROUPS) {
				pr_warn("too many --group (the limit is %d)\n",
					PC_FLEET_MAX_GROUPS);
				return 2;
			}
			o.groups[o.ngroups++] = optarg;
			break;
		case 'a':
			o.all = true;
			break;
		case OPT_HOST:
			o.host = optarg;
			break;
		case OPT_EXPECT:
			errno = 0;
			o.expect = strtoll(optarg, &end, 10);
			if (!*optarg || *end || errno || o.expect < 0) {
				pr_warn("bad --expect-revision '%s'\n", optarg);
				return 2;
			}
			o.expect_set = true;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_FORCE:
			o.force = true;
			break;
		case OPT_TIMEOUT:
			o.timeout_ms = strtol(optarg, &end, 10);
			if (*end || o.timeout_ms <= 0) {
				pr_warn("bad --timeout '%s' (milliseconds)\n", optarg);
				return 2;
			}
			break;
		case OPT_EVERY:
			if (pc_duration_parse(optarg, &o.every_ms) ||
			    o.every_ms < 100 || o.every_ms > 3600000) {
				pr_warn("bad --every '%s' (a duration with its unit, 100ms..1h: 500ms, 1s)\n",
					optarg);
				return 2;
			}
			break;
		case OPT_COUNT:
			errno = 0;
			o.count = strtoull(optarg, &end, 10);
			if (!*optarg || *optarg == '-' || *end || errno || !o.count) {
				pr_warn("bad --count '%s' (1 or more)\n", optarg);
				return 2;
			}
			break;
		case OPT_CACERT:
			o.cacert = optarg;
			break;
		case OPT_CERT:
			o.cert = optarg;
			break;
		case OPT_CERT_KEY:
			o.cert_key = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind++];
	if (!o.prefix)
		o.prefix = PC_FLEET_DEFAULT_PREFIX;
	if (!pc_fleet_prefix_ok(o.prefix)) {
		pr_warn("bad prefix '%s' (an absolute key path such as /portcullis)\n",
			o.prefix);
		return 2;
	}
	list = strdup(eps && *eps ? eps : "http://127.0.0.1:2379");
	if (!list || split_endpoints(&o, list)) {
		free(list);
		return 2;
	}
	if ((o.cert || o.cert_key || o.cacert) &&
	    (!o.cacert || !o.cert != !o.cert_key)) {
		pr_warn("TLS needs --cacert, and --cert with --cert-key (or neither)\n");
		free(list);
		return 2;
	}
	for (size_t i = 0; o.cacert && i < o.nendpoints; i++)
		if (strncmp(o.endpoints[i], "https://", 8)) {
			pr_warn("with --cacert, every endpoint must be https:// ('%s' is not)\n",
				o.endpoints[i]);
			free(list);
			return 2;
		}
	if (load_keys(&o) || pc_etcd_global_init() ||
	    pc_etcd_init(&e, o.endpoints, o.nendpoints, o.timeout_ms)) {
		free(list);
		return 1;
	}
	if (pc_etcd_set_tls(&e, o.cacert, o.cert, o.cert_key)) {
		pc_etcd_free(&e);
		free(list);
		return 1;
	}
	if (!strcmp(cmd, "quarantine") || !strcmp(cmd, "lockdown") ||
	    !strcmp(cmd, "release")) {
		struct change ch = { .set_mode = true };

		pc_mode_parse(strcmp(cmd, "release") ? cmd : "normal", &ch.mode);
		ch.release = !strcmp(cmd, "release");
		ret = run_writes(&e, &o, argc - optind, argv + optind, &ch);
	} else if (!strcmp(cmd, "policy")) {
		ret = do_policy(&e, &o, argc - optind, argv + optind);
	} else if (!strcmp(cmd, "status")) {
		ret = do_status(&e, &o, argc - optind, argv + optind);
	} else if (!strcmp(cmd, "get")) {
		ret = do_get(&e, &o, argc - optind, argv + optind);
	} else if (!strcmp(cmd, "heartbeat")) {
		ret = do_heartbeat(&e, &o, argc - optind);
	} else {
		pr_warn("unknown fleet command '%s'\n", cmd);
		usage(stderr);
		ret = 2;
	}
	sodium_memzero(o.sk, sizeof(o.sk));
	pc_etcd_free(&e);
	free(list);
	return ret;
}

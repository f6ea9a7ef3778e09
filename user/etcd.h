/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A small etcd v3 client over the HTTP/JSON gateway (libcurl, json-c):
 * range, put, compare-revision put, leases, watch. Keys and values travel
 * base64-encoded, as the gateway wants them; numbers come as JSON strings.
 * One struct pc_etcd per thread: it owns one curl handle.
 */
#ifndef PC_ETCD_H
#define PC_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define PC_ETCD_MAX_ENDPOINTS	8
#define PC_ETCD_MAX_RESPONSE	(8u << 20)	/* a bigger reply is refused */

struct pc_etcd {
	char *endpoints[PC_ETCD_MAX_ENDPOINTS];	/* "http://HOST:PORT", no slash */
	size_t nendpoints;
	size_t cur;			/* the endpoint that answered last */
	long timeout_ms;		/* per request (watch: to connect) */
	/* TLS (pc_etcd_set_tls): the one CA etcd's certificate must chain
	 * to, and our client certificate and key; NULL: none. */
	char *tls_ca, *tls_cert, *tls_key;
	void *curl;			/* CURL * */
	char err[256];			/* why the last call failed */
};

struct pc_etcd_kv {
	char *key;			/* NUL-terminated */
	__u8 *value;			/* NULL when empty (or deleted) */
	size_t value_len;
	__s64 create_rev, mod_rev, version, lease;
};

struct pc_etcd_range {
	__s64 revision;			/* store revision of the answer */
	struct pc_etcd_kv *kvs;
	size_t n;
};

/* Once per process, before any thread uses a client. */
int pc_etcd_global_init(void);

/* endpoints: URLs; a trailing slash is dropped. */
int pc_etcd_init(struct pc_etcd *e, char *const *endpoints, size_t n,
		 long timeout_ms);
void pc_etcd_free(struct pc_etcd *e);
/* Speak only HTTPS, trust only ca (no system store), and present cert
 * and key if given (both or neither). ca NULL: no TLS settings. */
int pc_etcd_set_tls(struct pc_etcd *e, const char *ca, const char *cert,
		    const char *key);

/* Return 0 or a negative errno (-ECONNREFUSED/-ETIMEDOUT: unreachable,
 * -EPROTO: an answer we cannot read, -EIO: an error from etcd); e->err
 * says more. */
int pc_etcd_get(struct pc_etcd *e, const char *key, bool prefix,
		struct pc_etcd_range *out);
void pc_etcd_range_free(struct pc_etcd_range *r);
void pc_etcd_kv_free(struct pc_etcd_kv *kv);
int pc_etcd_put(struct pc_etcd *e, const char *key, const void *val,
		size_t len, __s64 lease);

/*
 * Put only if the key's mod revision is still expect_mod (0: the key must
 * not exist). Returns 1 when written (*new_rev: its revision), 0 on a
 * conflict (*cur: the key as it is now; key NULL if absent), or <0.
 */
int pc_etcd_put_if(struct pc_etcd *e, const char *key, const void *val,
		   size_t len, __s64 expect_mod, __s64 *new_rev,
		   struct pc_etcd_kv *cur);

int pc_etcd_lease_grant(struct pc_etcd *e, long ttl_s, __s64 *id, long *ttl);
/* *ttl 0: the lease has expired (or never was). */
int pc_etcd_lease_keepalive(struct pc_etcd *e, __s64 id, long *ttl);
int pc_etcd_lease_revoke(struct pc_etcd *e, __s64 id);

/*
 * Watch keys (exact keys, one watch each, all on one stream) from
 * start_rev. Blocks: calls on_event for every change until the stream
 * ends, on_event returns non-zero, or should_stop returns true (checked
 * about once a second while idle). Returns <0 on a broken stream or
 * cancelled watch, else what stopped it (0 or on_event's value).
 */
typedef int (*pc_etcd_event_fn)(void *arg, bool deleted,
				const struct pc_etcd_kv *kv, __s64 revision);
typedef bool (*pc_etcd_stop_fn)(void *arg);
int pc_etcd_watch(struct pc_etcd *e, const char *const *keys, size_t nkeys,
		  __s64 start_rev, pc_etcd_event_fn on_event,
		  pc_etcd_stop_fn should_stop, void *arg);

/* One JSON object, nothing after it but white space; the bytes need not
 * end in a NUL. NULL (and err set) otherwise. */
struct json_object;
struct json_object *pc_json_object(const char *s, size_t len, char *err,
				   size_t errlen);

/* The parsers, for the unit tests and the fuzzer: never trust the bytes. */
int pc_etcd_parse_range(const char *json, size_t len, struct pc_etcd_range *out,
			char *err, size_t errlen);
/* One line of a watch stream; <0 on an error or a cancelled watch. */
int pc_etcd_parse_watch(const char *json, size_t len, pc_etcd_event_fn on_event,
			void *arg, char *err, size_t errlen);

#endif /* PC_ETCD_H */

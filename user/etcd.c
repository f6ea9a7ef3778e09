// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * etcd v3 over the gRPC gateway's HTTP/JSON face. Every request is a POST
 * of one JSON object to /v3/<service>/<method>; every int64 comes back as
 * a JSON string and fields at their default value (0, false, "") are left
 * out, so an absent field reads as zero. A watch is one long POST whose
 * body holds one create_request per line; the answer is a stream of JSON
 * objects, one per line.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <sodium.h>
#include "etcd.h"

struct buf {
	char *p;
	size_t len, cap;
};

static int buf_add(struct buf *b, const void *data, size_t n)
{
	if (n > PC_ETCD_MAX_RESPONSE - b->len)
		return -EMSGSIZE;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (!p)
			return -ENOMEM;
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
	return 0;
}

static void seterr(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (!err || !len)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* ---- base64 ---- */

static char *b64_encode(const void *data, size_t len)
{
	size_t n = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
	char *s = malloc(n);

	if (s)
		sodium_bin2base64(s, n, data, len, sodium_base64_VARIANT_ORIGINAL);
	return s;
}

/* Decoded bytes (plus a NUL, so keys are strings) or NULL. */
static __u8 *b64_decode(const char *s, size_t *outlen)
{
	size_t slen = strlen(s), max = slen / 4 * 3 + 3;
	__u8 *out = malloc(max + 1);

	if (!out)
		return NULL;
	if (sodium_base642bin(out, max, s, slen, NULL, outlen, NULL,
			      sodium_base64_VARIANT_ORIGINAL)) {
		free(out);
		return NULL;
	}
	out[*outlen] = '\0';
	return out;
}

/* ---- JSON ---- */

/* An int64 field: a string of digits (the gateway's way) or a number. */
static int get_i64(const json_object *o, const char *name, __s64 *out)
{
	json_object *v;
	const char *s;
	char *end;
	long long n;

	*out = 0;
	if (!json_object_object_get_ex(o, name, &v) || !v)
		return 0;	/* absent: the default, 0 */
	if (json_object_is_type(v, json_type_int)) {
		*out = json_object_get_int64(v);
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return -EPROTO;
	s = json_object_get_string(v);
	/* Digits only: strtoll would also take a sign or white space. */
	if (*s < '0' || *s > '9')
		return -EPROTO;
	errno = 0;
	n = strtoll(s, &end, 10);
	if (*end || errno)
		return -EPROTO;
	*out = n;
	return 0;
}

static bool get_bool(const json_object *o, const char *name)
{
	json_object *v;

	return json_object_object_get_ex(o, name, &v) && v &&
	       json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static json_object *get_obj(const json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_object))
		return NULL;
	return v;
}

static json_object *get_array(const json_object *o, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

void pc_etcd_kv_free(struct pc_etcd_kv *kv)
{
	if (!kv)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

static int parse_kv(const json_object *o, struct pc_etcd_kv *kv)
{
	json_object *v;
	size_t n;
	int err;

	memset(kv, 0, sizeof(*kv));
	if (!json_object_object_get_ex(o, "key", &v) ||
	    !json_object_is_type(v, json_type_string))
		return -EPROTO;
	kv->key = (char *)b64_decode(json_object_get_string(v), &n);
	/* A key with a NUL in it, or none at all, is none of ours. */
	if (!kv->key || !n || strlen(kv->key) != n)
		goto bad;
	if (json_object_object_get_ex(o, "value", &v)) {
		if (!json_object_is_type(v, json_type_string))
			goto bad;
		kv->value = b64_decode(json_object_get_string(v), &kv->value_len);
		if (!kv->value)
			goto bad;
		if (!kv->value_len) {	/* empty: NULL, as etcd.h says */
			free(kv->value);
			kv->value = NULL;
		}
	}
	err = get_i64(o, "create_revision", &kv->create_rev) ?:
	      get_i64(o, "mod_revision", &kv->mod_rev) ?:
	      get_i64(o, "version", &kv->version) ?:
	      get_i64(o, "lease", &kv->lease);
	if (err)
		goto bad;
	return 0;
bad:
	pc_etcd_kv_free(kv);
	return -EPROTO;
}

/* Bounded: the bytes need not end in a NUL. */
static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(" \t\r\n", s[i]))
			return false;
	return true;
}

json_object *pc_json_object(const char *s, size_t len, char *err,
			    size_t errlen)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = NULL;

	if (!tok)
		return NULL;
	if (len <= INT32_MAX)
		o = json_tokener_parse_ex(tok, s, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    json_tokener_get_parse_end(tok) != len) {
		/* Trailing whitespace is fine, more JSON is not. */
		size_t off = o ? json_tokener_get_parse_end(tok) : 0;

		if (!o || !only_space(s + off, len - off)) {
			seterr(err, errlen, "etcd sent something that is not JSON");
			json_object_put(o);
			o = NULL;
		}
	}
	json_tokener_free(tok);
	if (o && !json_object_is_type(o, json_type_object)) {
		seterr(err, errlen, "etcd sent JSON that is not an object");
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* {"error": "...", "code": N, "message": "..."}: etcd said no. */
static int etcd_error(const json_object *o, char *err, size_t errlen)
{
	json_object *v;

	if (json_object_object_get_ex(o, "error", &v) ||
	    json_object_object_get_ex(o, "message", &v)) {
		seterr(err, errlen, "etcd: %.200s", json_object_to_json_string(v));
		return -EIO;
	}
	return 0;
}

static int parse_kvs(const json_object *o, struct pc_etcd_range *out,
		     char *err, size_t errlen)
{
	json_object *header = get_obj(o, "header"), *kvs = get_array(o, "kvs");
	size_t n = kvs ? json_object_array_length(kvs) : 0;

	memset(out, 0, sizeof(*out));
	if (header && get_i64(header, "revision", &out->revision)) {
		seterr(err, errlen, "etcd: bad revision in a range answer");
		return -EPROTO;
	}
	if (!n)
		return 0;
	out->kvs = calloc(n, sizeof(*out->kvs));
	if (!out->kvs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (parse_kv(json_object_array_get_idx(kvs, i), &out->kvs[i])) {
			seterr(err, errlen, "etcd: unreadable key-value in a range answer");
			pc_etcd_range_free(out);
			return -EPROTO;
		}
		out->n++;
	}
	return 0;
}

int pc_etcd_parse_range(const char *json, size_t len, struct pc_etcd_range *out,
			char *err, size_t errlen)
{
	json_object *o = pc_json_object(json, len, err, errlen);
	int ret;

	memset(out, 0, sizeof(*out));
	if (!o)
		return -EPROTO;
	ret = etcd_error(o, err, errlen) ?: parse_kvs(o, out, err, errlen);
	json_object_put(o);
	return ret;
}

void pc_etcd_range_free(struct pc_etcd_range *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		pc_etcd_kv_free(&r->kvs[i]);
	free(r->kvs);
	memset(r, 0, sizeof(*r));
}

int pc_etcd_parse_watch(const char *json, size_t len, pc_etcd_event_fn on_event,
			void *arg, char *err, size_t errlen)
{
	json_object *o = pc_json_object(json, len, err, errlen), *res, *header, *events;
	__s64 rev = 0, compact = 0;
	int ret = 0;

	if (!o)
		return -EPROTO;
	ret = etcd_error(o, err, errlen);
	if (ret)
		goto out;
	res = get_obj(o, "result");
	if (!res) {
		seterr(err, errlen, "etcd: a watch message without a result");
		ret = -EPROTO;
		goto out;
	}
	header = get_obj(res, "header");
	if ((header && get_i64(header, "revision", &rev)) ||
	    get_i64(res, "compact_revision", &compact)) {
		seterr(err, errlen, "etcd: bad revision in a watch message");
		ret = -EPROTO;
		goto out;
	}
	if (get_bool(res, "canceled") || compact) {
		seterr(err, errlen, "etcd cancelled the watch%s",
		       compact ? " (revision compacted)" : "");
		ret = -ECANCELED;
		goto out;
	}
	events = get_array(res, "events");
	for (size_t i = 0; events && !ret && i < json_object_array_length(events); i++) {
		json_object *ev = json_object_array_get_idx(events, i), *kvo, *t;
		struct pc_etcd_kv kv;
		bool deleted = false;

		if (!json_object_is_type(ev, json_type_object) ||
		    !(kvo = get_obj(ev, "kv")) || parse_kv(kvo, &kv)) {
			seterr(err, errlen, "etcd: unreadable watch event");
			ret = -EPROTO;
			break;
		}
		if (json_object_object_get_ex(ev, "type", &t))
			deleted = json_object_is_type(t, json_type_string) &&
				  !strcmp(json_object_get_string(t), "DELETE");
		ret = on_event(arg, deleted, &kv, kv.mod_rev ? kv.mod_rev : rev);
		pc_etcd_kv_free(&kv);
	}
out:
	json_object_put(o);
	return ret;
}

/* ---- HTTP ---- */

int pc_etcd_global_init(void)
{
	if (sodium_init() < 0)
		return -EIO;
	return curl_global_init(CURL_GLOBAL_DEFAULT) ? -EIO : 0;
}

int pc_etcd_init(struct pc_etcd *e, char *const *endpoints, size_t n,
		 long timeout_ms)
{
	memset(e, 0, sizeof(*e));
	if (!n || n > PC_ETCD_MAX_ENDPOINTS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(endpoints[i]);

		while (len && endpoints[i][len - 1] == '/')
			len--;
		e->endpoints[i] = strndup(endpoints[i], len);
		if (!e->endpoints[i]) {
			pc_etcd_free(e);
			return -ENOMEM;
		}
		e->nendpoints++;
	}
	e->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	e->curl = curl_easy_init();
	if (!e->curl) {
		pc_etcd_free(e);
		return -ENOMEM;
	}
	return 0;
}

int pc_etcd_set_tls(struct pc_etcd *e, const char *ca, const char *cert,
		    const char *key)
{
	free(e->tls_ca);
	free(e->tls_cert);
	free(e->tls_key);
	e->tls_ca = e->tls_cert = e->tls_key = NULL;
	if (!ca)
		return cert || key ? -EINVAL : 0;
	if (!cert != !key)
		return -EINVAL;
	e->tls_ca = strdup(ca);
	e->tls_cert = cert ? strdup(cert) : NULL;
	e->tls_key = key ? strdup(key) : NULL;
	if (!e->tls_ca || (cert && (!e->tls_cert || !e->tls_key)))
		return -ENOMEM;
	return 0;
}

void pc_etcd_free(struct pc_etcd *e)
{
	free(e->tls_ca);
	free(e->tls_cert);
	free(e->tls_key);
	if (e->curl)
		curl_easy_cleanup(e->curl);
	for (size_t i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	memset(e, 0, sizeof(*e));
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
	return buf_add(arg, data, size * n) ? 0 : size * n;
}

static int curl_errno(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return -ECONNREFUSED;
	case CURLE_WRITE_ERROR:
		return -EMSGSIZE;
	case CURLE_ABORTED_BY_CALLBACK:
		return -ECANCELED;
	default:
		return -EIO;
	}
}

static void setup(struct pc_etcd *e, const char *url, const char *body,
		  struct curl_slist *hdr)
{
	CURL *c = e->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 2L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 1L);
	/* The gateway only: no redirects, no other schemes. */
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, e->tls_ca ? "https" : "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	if (e->tls_ca) {
		/* Pinned: our CA only, never the system's store. */
		curl_easy_setopt(c, CURLOPT_CAINFO, e->tls_ca);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	}
	if (e->tls_cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->tls_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->tls_key);
	}
}

/*
 * POST body to path on the endpoint that answered last, then the others
 * in turn. On success the parsed answer is in *out.
 */
static int call(struct pc_etcd *e, const char *path, const char *body,
		json_object **out)
{
	struct curl_slist *hdr = curl_slist_append(NULL,
						   "Content-Type: application/json");
	int ret = -ECONNREFUSED;

	*out = NULL;
	for (size_t i = 0; i < e->nendpoints; i++) {
		size_t ep = (e->cur + i) % e->nendpoints;
		struct buf b = {};
		char url[512];
		long status = 0;
		CURLcode c;

		snprintf(url, sizeof(url), "%s%s", e->endpoints[ep], path);
		setup(e, url, body, hdr);
		curl_easy_setopt(e->curl, CURLOPT_TIMEOUT_MS, e->timeout_ms);
		curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_body);
		curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &b);
		c = curl_easy_perform(e->curl);
		if (c != CURLE_OK) {
			seterr(e->err, sizeof(e->err), "%s: %s", e->endpoints[ep],
			       curl_easy_strerror(c));
			ret = curl_errno(c);
			free(b.p);
			continue;	/* the next endpoint may answer */
		}
		e->cur = ep;
		curl_easy_getinfo(e->curl, CURLINFO_RESPONSE_CODE, &status);
		*out = b.p ? pc_json_object(b.p, b.len, e->err, sizeof(e->err)) : NULL;
		free(b.p);
		if (!*out) {
			if (!b.p)
				seterr(e->err, sizeof(e->err), "%s: empty answer (HTTP %ld)",
				       e->endpoints[ep], status);
			ret = -EPROTO;
		} else {
			ret = etcd_error(*out, e->err, sizeof(e->err));
			if (!ret && status != 200) {
				seterr(e->err, sizeof(e->err), "%s: HTTP %ld",
				       e->endpoints[ep], status);
				ret = -EIO;
			}
			if (ret) {
				json_object_put(*out);
				*out = NULL;
			}
		}
		break;	/* an answer, even a refusal, is the cluster's word */
	}
	curl_slist_free_all(hdr);
	return ret;
}

/* The end of a prefix range: the prefix with its last byte bumped. */
static char *range_end(const char *key)
{
	size_t n = strlen(key);
	char *end = strdup(key);

	if (!end)
		return NULL;
	while (n && (unsigned char)end[n - 1] == 0xff)
		n--;
	if (!n) {
		free(end);
		return strdup("\x01");	/* unreachable for our keys */
	}
	end[n - 1]++;
	end[n] = '\0';
	return end;
}

static void add_b64(json_object *o, const char *name, const void *data,
		    size_t len)
{
	char *s = b64_encode(data, len);

	json_object_object_add(o, name, json_object_new_string(s ? s : ""));
	free(s);
}

static void add_i64(json_object *o, const char *name, __s64 v)
{
	char s[24];

	snprintf(s, sizeof(s), "%lld", (long long)v);
	json_object_object_add(o, name, json_object_new_string(s));
}

static json_object *range_req(const char *key, bool prefix)
{
	json_object *req = json_object_new_object();

	add_b64(req, "key", key, strlen(key));
	if (prefix) {
		char *end = range_end(key);

		if (end)
			add_b64(req, "range_end", end, strlen(end));
		free(end);
	}
	return req;
}

static int call_obj(struct pc_etcd *e, const char *path, json_object *req,
		    json_object **out)
{
	int ret = call(e, path, json_object_to_json_string_ext(req,
				JSON_C_TO_STRING_PLAIN), out);

	json_object_put(req);
	return ret;
}

int pc_etcd_get(struct pc_etcd *e, const char *key, bool prefix,
		struct pc_etcd_range *out)
{
	json_object *o;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = call_obj(e, "/v3/kv/range", range_req(key, prefix), &o);
	if (ret)
		return ret;
	ret = parse_kvs(o, out, e->err, sizeof(e->err));
	json_object_put(o);
	return ret;
}

static json_object *put_req(const char *key, const void *val, size_t len,
			    __s64 lease)
{
	json_object *req = json_object_new_object();

	add_b64(req, "key", key, strlen(key));
	add_b64(req, "value", val, len);
	if (lease)
		add_i64(req, "lease", lease);
	return req;
}

int pc_etcd_put(struct pc_etcd *e, const char *key, const void *val,
		size_t len, __s64 lease)
{
	json_object *o;
	int ret = call_obj(e, "/v3/kv/put", put_req(key, val, len, lease), &o);

	json_object_put(o);
	return ret;
}

int pc_etcd_put_if(struct pc_etcd *e, const char *key, const void *val,
		   size_t len, __s64 expect_mod, __s64 *new_rev,
		   struct pc_etcd_kv *cur)
{
	json_object *req = json_object_new_object(), *cmp = json_object_new_object();
	json_object *ok = json_object_new_object(), *no = json_object_new_object();
	json_object *arr, *o, *resp, *rr, *header;
	struct pc_etcd_range r;
	int ret;

	memset(cur, 0, sizeof(*cur));
	*new_rev = 0;
	/* An absent key has mod_revision 0: one comparison covers both. */
	add_b64(cmp, "key", key, strlen(key));
	json_object_object_add(cmp, "target", json_object_new_string("MOD"));
	json_object_object_add(cmp, "result", json_object_new_string("EQUAL"));
	add_i64(cmp, "mod_revision", expect_mod);
	arr = json_object_new_array();
	json_object_array_add(arr, cmp);
	json_object_object_add(req, "compare", arr);
	json_object_object_add(ok, "request_put", put_req(key, val, len, 0));
	arr = json_object_new_array();
	json_object_array_add(arr, ok);
	json_object_object_add(req, "success", arr);
	json_object_object_add(no, "request_range", range_req(key, false));
	arr = json_object_new_array();
	json_object_array_add(arr, no);
	json_object_object_add(req, "failure", arr);

	ret = call_obj(e, "/v3/kv/txn", req, &o);
	if (ret)
		return ret;
	if (get_bool(o, "succeeded")) {
		header = get_obj(o, "header");
		ret = header && !get_i64(header, "revision", new_rev) ? 1 : -EPROTO;
		json_object_put(o);
		return ret;
	}
	/* Lost the race: report what is there now. */
	arr = get_array(o, "responses");
	resp = arr && json_object_array_length(arr) == 1 ?
		       json_object_array_get_idx(arr, 0) : NULL;
	rr = resp && json_object_is_type(resp, json_type_object) ?
		     get_obj(resp, "response_range") : NULL;
	ret = rr ? parse_kvs(rr, &r, e->err, sizeof(e->err)) : -EPROTO;
	if (!ret && r.n == 1) {
		*cur = r.kvs[0];
		r.n = 0;
	}
	if (!ret)
		pc_etcd_range_free(&r);
	json_object_put(o);
	return ret ? ret : 0;
}

int pc_etcd_lease_grant(struct pc_etcd *e, long ttl_s, __s64 *id, long *ttl)
{
	json_object *req = json_object_new_object(), *o;
	__s64 t = 0;
	int ret;

	add_i64(req, "TTL", ttl_s);
	ret = call_obj(e, "/v3/lease/grant", req, &o);
	if (ret)
		return ret;
	if (get_i64(o, "ID", id) || get_i64(o, "TTL", &t) || !*id || t <= 0) {
		seterr(e->err, sizeof(e->err), "etcd: lease grant answer without ID/TTL");
		ret = -EPROTO;
	}
	*ttl = t;
	json_object_put(o);
	return ret;
}

int pc_etcd_lease_keepalive(struct pc_etcd *e, __s64 id, long *ttl)
{
	json_object *req = json_object_new_object(), *o, *res;
	__s64 t = 0;
	int ret;

	add_i64(req, "ID", id);
	ret = call_obj(e, "/v3/lease/keepalive", req, &o);
	if (ret)
		return ret;
	res = get_obj(o, "result");
	if (!res || get_i64(res, "TTL", &t)) {
		seterr(e->err, sizeof(e->err), "etcd: unreadable keep-alive answer");
		ret = -EPROTO;
	}
	*ttl = t > 0 ? t : 0;
	json_object_put(o);
	return ret;
}

int pc_etcd_lease_revoke(struct pc_etcd *e, __s64 id)
{
	json_object *req = json_object_new_object(), *o;
	int ret;

	add_i64(req, "ID", id);
	ret = call_obj(e, "/v3/lease/revoke", req, &o);
	json_object_put(o);
	return ret;
}

/* ---- watch ---- */

struct watch {
	struct buf line;
	pc_etcd_event_fn on_event;
	pc_etcd_stop_fn should_stop;
	void *arg;
	int ret;		/* first error or stop value */
	char *err;
	size_t errlen;
};

static size_t on_stream(char *data, size_t size, size_t n, void *arg)
{
	struct watch *w = arg;
	size_t len = size * n;
	char *nl;

	if (buf_add(&w->line, data, len)) {
		seterr(w->err, w->errlen, "etcd: watch message too long");
		w->ret = -EMSGSIZE;
		return 0;
	}
	while (!w->ret && (nl = memchr(w->line.p, '\n', w->line.len))) {
		size_t l = nl - w->line.p;

		if (strspn(w->line.p, " \t\r") < l)
			w->ret = pc_etcd_parse_watch(w->line.p, l, w->on_event,
						     w->arg, w->err, w->errlen);
		memmove(w->line.p, nl + 1, w->line.len - l - 1);
		w->line.len -= l + 1;
	}
	return w->ret ? 0 : len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut,
		       curl_off_t un)
{
	struct watch *w = arg;

	return w->should_stop && w->should_stop(w->arg);
}

int pc_etcd_watch(struct pc_etcd *e, const char *const *keys, size_t nkeys,
		  __s64 start_rev, pc_etcd_event_fn on_event,
		  pc_etcd_stop_fn should_stop, void *arg)
{
	struct watch w = { .on_event = on_event, .should_stop = should_stop,
			   .arg = arg, .err = e->err, .errlen = sizeof(e->err) };
	struct curl_slist *hdr = curl_slist_append(NULL,
						   "Content-Type: application/json");
	struct buf body = {};
	char url[512];
	CURLcode c;
	int ret = 0;

	for (size_t i = 0; !ret && i < nkeys; i++) {
		json_object *req = json_object_new_object(), *cr = range_req(keys[i], false);
		const char *s;

		if (start_rev)
			add_i64(cr, "start_revision", start_rev);
		json_object_object_add(req, "create_request", cr);
		s = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
		ret = buf_add(&body, s, strlen(s)) ?: buf_add(&body, "\n", 1);
		json_object_put(req);
	}
	if (ret || !body.p) {
		free(body.p);
		curl_slist_free_all(hdr);
		return ret ? ret : -EINVAL;
	}
	snprintf(url, sizeof(url), "%s/v3/watch", e->endpoints[e->cur]);
	setup(e, url, body.p, hdr);
	curl_easy_setopt(e->curl, CURLOPT_WRITEFUNCTION, on_stream);
	curl_easy_setopt(e->curl, CURLOPT_WRITEDATA, &w);
	curl_easy_setopt(e->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e->curl, CURLOPT_XFERINFODATA, &w);
	c = curl_easy_perform(e->curl);
	if (w.ret) {
		ret = w.ret;
	} else if (c == CURLE_ABORTED_BY_CALLBACK) {
		ret = 0;	/* asked to stop */
	} else {
		if (c != CURLE_OK)
			seterr(e->err, sizeof(e->err), "%s: %s",
			       e->endpoints[e->cur], curl_easy_strerror(c));
		else
			seterr(e->err, sizeof(e->err), "%s: watch stream ended",
			       e->endpoints[e->cur]);
		ret = c != CURLE_OK ? curl_errno(c) : -ECONNRESET;
		/* Next time, try the next endpoint. */
		e->cur = (e->cur + 1) % e->nendpoints;
	}
	free(w.line.p);
	free(body.p);
	curl_slist_free_all(hdr);
	return ret;
}

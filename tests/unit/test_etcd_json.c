// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the etcd gateway JSON parsers (user/etcd.c):
 * pc_etcd_parse_range and pc_etcd_parse_watch. No server: the fixtures
 * are answers an etcd 3.4 gateway gave, and variations on them.
 *
 * The gateway's ways: int64 as JSON strings, keys and values in base64,
 * fields at their default value left out. Every parse runs on a heap
 * copy of exactly the given length, with no NUL after it, so under ASan
 * a read past the end is a crash.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "etcd.h"

#define ERRLEN	256

/* Real etcd 3.4 gateway answers. "L3BjL2E=" is "/pc/a", "L3BjL2I="
 * "/pc/b", "aGVsbG8=" "hello", "eg==" "z". */
#define RANGE_ONE \
	"{\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":" \
	"\"3319814642761637952\",\"revision\":\"2\",\"raft_term\":\"2\"},\"kvs\":" \
	"[{\"key\":\"L3BjL2E=\",\"create_revision\":\"2\",\"mod_revision\":\"2\"," \
	"\"version\":\"1\",\"value\":\"aGVsbG8=\"}],\"count\":\"1\"}"
#define RANGE_EMPTY \
	"{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\",\"revision\":\"2\"," \
	"\"raft_term\":\"2\"}}"
#define WATCH_CREATED \
	"{\"result\":{\"header\":{\"cluster_id\":\"3\",\"member_id\":\"3\"," \
	"\"revision\":\"2\",\"raft_term\":\"2\"},\"created\":true}}"
#define WATCH_PUT \
	"{\"result\":{\"header\":{\"revision\":\"5\"},\"events\":[{\"kv\":" \
	"{\"key\":\"L3BjL2E=\",\"create_revision\":\"2\",\"mod_revision\":\"5\"," \
	"\"version\":\"3\",\"value\":\"eg==\"}}]}}"
#define WATCH_DELETE \
	"{\"result\":{\"header\":{\"revision\":\"6\"},\"watch_id\":\"1\"," \
	"\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3BjL2I=\"," \
	"\"mod_revision\":\"6\"}}]}}"
#define ETCD_ERROR \
	"{\"error\":\"etcdserver: mvcc: required revision has been compacted\"," \
	"\"code\":11,\"message\":\"etcdserver: mvcc: required revision has been " \
	"compacted\"}"
#define WATCH_CANCELED \
	"{\"result\":{\"header\":{\"revision\":\"9\"},\"canceled\":true," \
	"\"compact_revision\":\"3\"}}"

/* ---- helpers ---- */

/* A heap copy of exactly len bytes, not NUL-terminated. */
static char *exact(const char *s, size_t len)
{
	char *p = malloc(len ? len : 1);

	assert_non_null(p);
	memcpy(p, s, len);
	return p;
}

static int range_n(const char *json, size_t len, struct pc_etcd_range *r,
		   char *err)
{
	char *copy = exact(json, len);
	int ret;

	err[0] = '\0';
	memset(r, 0xa5, sizeof(*r));
	ret = pc_etcd_parse_range(copy, len, r, err, ERRLEN);
	free(copy);
	return ret;
}

static int range(const char *json, struct pc_etcd_range *r, char *err)
{
	return range_n(json, strlen(json), r, err);
}

/* A refused range answer leaves nothing to free and says why. */
static void assert_range_refused(const char *json, int want)
{
	struct pc_etcd_range r;
	char err[ERRLEN];
	int ret = range(json, &r, err);

	if (ret != want)
		fail_msg("got %d, not %d, for: %s", ret, want, json);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);
	if (!err[0])
		fail_msg("no error message for: %s", json);
}

/* What the watch callback saw. */
#define MAX_EVENTS	8

struct event {
	bool deleted;
	char key[64];
	bool has_value;
	char value[64];
	size_t value_len;
	__s64 mod_rev, version, revision;
};

struct recorder {
	struct event ev[MAX_EVENTS];
	size_t n;
	size_t stop_at;		/* 1-based event to return stop_with on */
	int stop_with;
};

static int record(void *arg, bool deleted, const struct pc_etcd_kv *kv,
		  __s64 revision)
{
	struct recorder *r = arg;
	struct event *e;

	assert_true(r->n < MAX_EVENTS);
	assert_non_null(kv->key);
	e = &r->ev[r->n++];
	e->deleted = deleted;
	snprintf(e->key, sizeof(e->key), "%s", kv->key);
	e->has_value = kv->value != NULL;
	assert_true(kv->value_len < sizeof(e->value));
	if (kv->value)
		memcpy(e->value, kv->value, kv->value_len);
	e->value_len = kv->value_len;
	e->mod_rev = kv->mod_rev;
	e->version = kv->version;
	e->revision = revision;
	return r->n == r->stop_at ? r->stop_with : 0;
}

static int watch_n(const char *json, size_t len, struct recorder *rec,
		   char *err)
{
	char *copy = exact(json, len);
	int ret;

	err[0] = '\0';
	ret = pc_etcd_parse_watch(copy, len, record, rec, err, ERRLEN);
	free(copy);
	return ret;
}

static int watch(const char *json, struct recorder *rec, char *err)
{
	return watch_n(json, strlen(json), rec, err);
}

static void assert_watch_refused(const char *json, int want)
{
	struct recorder rec = {};
	char err[ERRLEN];
	int ret = watch(json, &rec, err);

	if (ret != want)
		fail_msg("got %d, not %d, for: %s", ret, want, json);
	if (!err[0])
		fail_msg("no error message for: %s", json);
	if (rec.n)
		fail_msg("%zu events delivered from: %s", rec.n, json);
}

static void assert_has(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* ---- range ---- */

static void test_range_one(void **state)
{
	struct pc_etcd_range r;
	char err[ERRLEN];

	assert_int_equal(range(RANGE_ONE, &r, err), 0);
	assert_int_equal(r.revision, 2);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.kvs[0].key, "/pc/a");
	assert_int_equal(r.kvs[0].value_len, 5);
	assert_memory_equal(r.kvs[0].value, "hello", 5);
	assert_int_equal(r.kvs[0].create_rev, 2);
	assert_int_equal(r.kvs[0].mod_rev, 2);
	assert_int_equal(r.kvs[0].version, 1);
	/* Absent: the default. */
	assert_int_equal(r.kvs[0].lease, 0);
	pc_etcd_range_free(&r);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);
	/* Freeing twice is harmless: free left it empty. */
	pc_etcd_range_free(&r);
	pc_etcd_range_free(NULL);
}

static void test_range_many(void **state)
{
	/* Three keys, in etcd's order; binary values with NULs survive,
	 * big revisions and a lease too. "AAEC/w==" is 00 01 02 ff. */
	static const char json[] =
		"{\"header\":{\"revision\":\"9007199254740993\"},\"kvs\":["
		"{\"key\":\"L3BjL2E=\",\"mod_revision\":\"3\",\"value\":\"AAEC/w==\"},"
		"{\"key\":\"L3BjL2I=\",\"lease\":\"7587862318389712906\","
		"\"value\":\"aGVsbG8=\"},"
		"{\"key\":\"L3BjL2M=\",\"create_revision\":\"9223372036854775807\"}"
		"],\"count\":\"3\"}";
	struct pc_etcd_range r;
	char err[ERRLEN];

	assert_int_equal(range(json, &r, err), 0);
	/* Above 2^53: a double would have lost it. */
	assert_int_equal(r.revision, 9007199254740993LL);
	assert_int_equal(r.n, 3);
	assert_string_equal(r.kvs[0].key, "/pc/a");
	assert_int_equal(r.kvs[0].value_len, 4);
	assert_memory_equal(r.kvs[0].value, "\x00\x01\x02\xff", 4);
	assert_int_equal(r.kvs[0].mod_rev, 3);
	assert_string_equal(r.kvs[1].key, "/pc/b");
	assert_int_equal(r.kvs[1].lease, 7587862318389712906LL);
	assert_memory_equal(r.kvs[1].value, "hello", 5);
	assert_string_equal(r.kvs[2].key, "/pc/c");
	assert_int_equal(r.kvs[2].create_rev, INT64_MAX);
	pc_etcd_range_free(&r);
}

static void test_range_empty(void **state)
{
	struct pc_etcd_range r;
	char err[ERRLEN];

	assert_int_equal(range(RANGE_EMPTY, &r, err), 0);
	assert_int_equal(r.revision, 2);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);

	/* A count-only answer: a count but no kvs. */
	assert_int_equal(range("{\"header\":{\"revision\":\"7\"},\"count\":\"3\"}",
			       &r, err), 0);
	assert_int_equal(r.revision, 7);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);

	/* An empty kvs list, and no header at all. */
	assert_int_equal(range("{\"kvs\":[]}", &r, err), 0);
	assert_int_equal(r.revision, 0);
	assert_int_equal(r.n, 0);
	assert_int_equal(range("{}", &r, err), 0);
	assert_int_equal(r.n, 0);
}

/* The gateway leaves out an empty value: that reads as no value. */
static void test_range_absent_value(void **state)
{
	struct pc_etcd_range r;
	char err[ERRLEN];

	assert_int_equal(range("{\"kvs\":[{\"key\":\"L3BjL2E=\","
			       "\"mod_revision\":\"4\"}]}", &r, err), 0);
	assert_int_equal(r.n, 1);
	assert_string_equal(r.kvs[0].key, "/pc/a");
	assert_null(r.kvs[0].value);
	assert_int_equal(r.kvs[0].value_len, 0);
	assert_int_equal(r.kvs[0].mod_rev, 4);
	pc_etcd_range_free(&r);

	/* Written out as "": still empty. */
	assert_int_equal(range("{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":\"\"}]}",
			       &r, err), 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.kvs[0].value_len, 0);
	pc_etcd_range_free(&r);
}

static void test_range_bad_base64(void **state)
{
	/* Not base64, bad padding, wrong alphabet (URL-safe), a key with a
	 * NUL in it ("YQBi" is "a\0b"), key and value of the wrong type. */
	static const char *const bad[] = {
		"{\"kvs\":[{\"key\":\"!!!!\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":\"aGVsbG8=x\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":\"a\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E==\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":\"-_-_\"}]}",
		"{\"kvs\":[{\"key\":\"YQBi\"}]}",
		"{\"kvs\":[{\"key\":\"AA==\"}]}",
		"{\"kvs\":[{\"key\":5}]}",
		"{\"kvs\":[{\"key\":null}]}",
		"{\"kvs\":[{\"value\":\"aGVsbG8=\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":7}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":[]}]}",
		"{\"kvs\":[\"L3BjL2E=\"]}",
		"{\"kvs\":[null]}",
		"{\"kvs\":[[]]}",
		/* Good first, bad second: nothing is handed back (nor leaked). */
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"value\":\"aGVsbG8=\"},"
		"{\"key\":\"YQBi\"}]}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_range_refused(bad[i], -EPROTO);
}

static void test_range_revisions(void **state)
{
	static const char *const bad[] = {
		"{\"header\":{\"revision\":\"12x\"}}",
		"{\"header\":{\"revision\":\"\"}}",
		"{\"header\":{\"revision\":\"x\"}}",
		"{\"header\":{\"revision\":\"0x10\"}}",
		"{\"header\":{\"revision\":\"99999999999999999999\"}}",
		"{\"header\":{\"revision\":1.5}}",
		"{\"header\":{\"revision\":true}}",
		"{\"header\":{\"revision\":{}}}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"mod_revision\":\"5 \"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"version\":\"1e3\"}]}",
		"{\"kvs\":[{\"key\":\"L3BjL2E=\",\"lease\":[1]}]}",
	};
	struct pc_etcd_range r;
	char err[ERRLEN];

	/* A JSON number is read as well as the gateway's string. */
	assert_int_equal(range("{\"header\":{\"revision\":12},\"kvs\":[{\"key\":"
			       "\"L3BjL2E=\",\"mod_revision\":11,\"version\":"
			       "\"2\"}]}", &r, err), 0);
	assert_int_equal(r.revision, 12);
	assert_int_equal(r.kvs[0].mod_rev, 11);
	assert_int_equal(r.kvs[0].version, 2);
	pc_etcd_range_free(&r);

	/* A null is as good as absent. */
	assert_int_equal(range("{\"header\":{\"revision\":null}}", &r, err), 0);
	assert_int_equal(r.revision, 0);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_range_refused(bad[i], -EPROTO);
}

static void test_range_not_json(void **state)
{
	static const char *const bad[] = {
		"",
		" ",
		"not json",
		"[]",
		"[" RANGE_ONE "]",
		"null",
		"\"kvs\"",
		"42",
		RANGE_ONE "x",
		RANGE_ONE RANGE_ONE,
		RANGE_ONE "\n{}",
		"{\"kvs\":[}",
	};
	struct pc_etcd_range r;
	char err[ERRLEN];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_range_refused(bad[i], -EPROTO);

	/* Trailing whitespace is no reason to refuse. */
	assert_int_equal(range(RANGE_ONE " \r\n\t\n", &r, err), 0);
	assert_int_equal(r.n, 1);
	pc_etcd_range_free(&r);
}

static void test_range_etcd_error(void **state)
{
	struct pc_etcd_range r;
	char err[ERRLEN];

	assert_int_equal(range(ETCD_ERROR, &r, err), -EIO);
	assert_int_equal(r.n, 0);
	assert_null(r.kvs);
	/* What etcd said is passed on. */
	assert_has(err, "required revision has been compacted");

	/* The gateway's other shape: an error object, or a message alone. */
	assert_range_refused("{\"error\":{\"grpc_code\":3,\"http_code\":400,"
			     "\"message\":\"key is not provided\"}}", -EIO);
	assert_range_refused("{\"code\":3,\"message\":\"key is not provided\"}",
			     -EIO);
	/* An error wins even over a well-formed answer beside it. */
	assert_range_refused("{\"error\":\"x\",\"kvs\":[{\"key\":\"L3BjL2E=\"}]}",
			     -EIO);
}

/* Every prefix of a good answer is refused, never half-read. */
static void test_range_truncated(void **state)
{
	static const char *const good[] = { RANGE_ONE, RANGE_EMPTY };
	struct pc_etcd_range r;
	char err[ERRLEN];

	for (size_t g = 0; g < 2; g++) {
		size_t len = strlen(good[g]);

		for (size_t n = 0; n < len; n++) {
			int ret = range_n(good[g], n, &r, err);

			if (ret != -EPROTO)
				fail_msg("%zu of %zu bytes gave %d", n, len, ret);
			assert_int_equal(r.n, 0);
			assert_null(r.kvs);
		}
		assert_int_equal(range_n(good[g], len, &r, err), 0);
		pc_etcd_range_free(&r);
	}
}

/* ---- watch ---- */

static void test_watch_created(void **state)
{
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(WATCH_CREATED, &rec, err), 0);
	assert_int_equal(rec.n, 0);
	/* A progress notification: a header and nothing else. */
	assert_int_equal(watch("{\"result\":{\"header\":{\"revision\":\"8\"}}}",
			       &rec, err), 0);
	assert_int_equal(watch("{\"result\":{\"events\":[]}}", &rec, err), 0);
	assert_int_equal(rec.n, 0);
}

static void test_watch_put(void **state)
{
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(WATCH_PUT, &rec, err), 0);
	assert_int_equal(rec.n, 1);
	assert_false(rec.ev[0].deleted);
	assert_string_equal(rec.ev[0].key, "/pc/a");
	assert_true(rec.ev[0].has_value);
	assert_int_equal(rec.ev[0].value_len, 1);
	assert_memory_equal(rec.ev[0].value, "z", 1);
	assert_int_equal(rec.ev[0].mod_rev, 5);
	assert_int_equal(rec.ev[0].version, 3);
	assert_int_equal(rec.ev[0].revision, 5);

	/* "PUT" spelled out is a put as well. */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(watch("{\"result\":{\"events\":[{\"type\":\"PUT\","
			       "\"kv\":{\"key\":\"L3BjL2E=\",\"mod_revision\":"
			       "\"3\"}}]}}", &rec, err), 0);
	assert_int_equal(rec.n, 1);
	assert_false(rec.ev[0].deleted);
	assert_int_equal(rec.ev[0].revision, 3);
}

static void test_watch_delete(void **state)
{
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(WATCH_DELETE, &rec, err), 0);
	assert_int_equal(rec.n, 1);
	assert_true(rec.ev[0].deleted);
	assert_string_equal(rec.ev[0].key, "/pc/b");
	assert_false(rec.ev[0].has_value);
	assert_int_equal(rec.ev[0].value_len, 0);
	assert_int_equal(rec.ev[0].revision, 6);

	/* No mod_revision in the kv: the header's revision stands in. */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(watch("{\"result\":{\"header\":{\"revision\":\"11\"},"
			       "\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":"
			       "\"L3BjL2I=\"}}]}}", &rec, err), 0);
	assert_int_equal(rec.n, 1);
	assert_true(rec.ev[0].deleted);
	assert_int_equal(rec.ev[0].revision, 11);
}

static void test_watch_several(void **state)
{
	static const char json[] =
		"{\"result\":{\"header\":{\"revision\":\"12\"},\"events\":["
		"{\"kv\":{\"key\":\"L3BjL2E=\",\"mod_revision\":\"10\",\"value\":\"eg==\"}},"
		"{\"type\":\"DELETE\",\"kv\":{\"key\":\"L3BjL2I=\",\"mod_revision\":\"11\"}},"
		"{\"kv\":{\"key\":\"L3BjL2M=\",\"mod_revision\":\"12\",\"value\":\"aGVsbG8=\"}}"
		"]}}";
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(json, &rec, err), 0);
	assert_int_equal(rec.n, 3);
	/* In the order etcd sent them, each with its own revision. */
	assert_string_equal(rec.ev[0].key, "/pc/a");
	assert_false(rec.ev[0].deleted);
	assert_int_equal(rec.ev[0].revision, 10);
	assert_string_equal(rec.ev[1].key, "/pc/b");
	assert_true(rec.ev[1].deleted);
	assert_int_equal(rec.ev[1].revision, 11);
	assert_string_equal(rec.ev[2].key, "/pc/c");
	assert_false(rec.ev[2].deleted);
	assert_memory_equal(rec.ev[2].value, "hello", 5);
	assert_int_equal(rec.ev[2].revision, 12);
}

static void test_watch_callback_stops(void **state)
{
	static const char json[] =
		"{\"result\":{\"events\":["
		"{\"kv\":{\"key\":\"L3BjL2E=\",\"mod_revision\":\"1\"}},"
		"{\"kv\":{\"key\":\"L3BjL2I=\",\"mod_revision\":\"2\"}},"
		"{\"kv\":{\"key\":\"L3BjL2M=\",\"mod_revision\":\"3\"}}"
		"]}}";
	struct recorder rec = { .stop_at = 2, .stop_with = 42 };
	char err[ERRLEN];

	/* Its value comes back and the third event is never delivered. */
	assert_int_equal(watch(json, &rec, err), 42);
	assert_int_equal(rec.n, 2);
	assert_string_equal(rec.ev[1].key, "/pc/b");

	/* A negative errno too. */
	memset(&rec, 0, sizeof(rec));
	rec.stop_at = 1;
	rec.stop_with = -EINTR;
	assert_int_equal(watch(json, &rec, err), -EINTR);
	assert_int_equal(rec.n, 1);
}

static void test_watch_canceled(void **state)
{
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(WATCH_CANCELED, &rec, err), -ECANCELED);
	assert_has(err, "cancel");
	/* Either sign alone is enough. */
	assert_watch_refused("{\"result\":{\"canceled\":true}}", -ECANCELED);
	assert_watch_refused("{\"result\":{\"header\":{\"revision\":\"9\"},"
			     "\"compact_revision\":\"3\"}}", -ECANCELED);
	assert_watch_refused("{\"result\":{\"compact_revision\":3}}", -ECANCELED);
	/* Events in a cancelled message are not delivered. */
	assert_watch_refused("{\"result\":{\"canceled\":true,\"events\":[{\"kv\":"
			     "{\"key\":\"L3BjL2E=\"}}]}}", -ECANCELED);
	assert_int_equal(rec.n, 0);
	/* canceled: false is not a cancellation. */
	assert_int_equal(watch("{\"result\":{\"canceled\":false}}", &rec, err), 0);
}

static void test_watch_refused(void **state)
{
	static const char *const bad[] = {
		/* no result, or not an object */
		"{}",
		"{\"header\":{\"revision\":\"5\"}}",
		"{\"result\":null}",
		"{\"result\":[]}",
		"{\"result\":\"x\"}",
		/* an event without a kv, or a kv that cannot be read */
		"{\"result\":{\"events\":[{\"type\":\"DELETE\"}]}}",
		"{\"result\":{\"events\":[{}]}}",
		"{\"result\":{\"events\":[{\"kv\":null}]}}",
		"{\"result\":{\"events\":[{\"kv\":\"L3BjL2E=\"}]}}",
		"{\"result\":{\"events\":[null]}}",
		"{\"result\":{\"events\":[\"x\"]}}",
		"{\"result\":{\"events\":[{\"kv\":{}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"!!\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"YQBi\"}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L3BjL2E=\","
		"\"value\":\"%%\"}}]}}",
		/* bad revisions */
		"{\"result\":{\"header\":{\"revision\":\"12x\"}}}",
		"{\"result\":{\"compact_revision\":\"3x\"}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"L3BjL2E=\","
		"\"mod_revision\":\"5x\"}}]}}",
		/* not JSON, not an object, more than one */
		"",
		"nope",
		"[]",
		WATCH_PUT "x",
		WATCH_PUT WATCH_PUT,
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_watch_refused(bad[i], -EPROTO);
}

static void test_watch_etcd_error(void **state)
{
	struct recorder rec = {};
	char err[ERRLEN];

	assert_int_equal(watch(ETCD_ERROR, &rec, err), -EIO);
	assert_has(err, "compacted");
	assert_int_equal(rec.n, 0);
	/* The stream's error shape, beside a result or not. */
	assert_watch_refused("{\"error\":{\"grpc_code\":14,\"http_code\":503,"
			     "\"message\":\"unavailable\"}}", -EIO);
	assert_watch_refused("{\"error\":\"x\",\"result\":{\"events\":[{\"kv\":"
			     "{\"key\":\"L3BjL2E=\"}}]}}", -EIO);
}

/*
 * One line of a stream sits in a buffer with more after it: the parser
 * must stop at len and not look beyond (the copy has no NUL at len).
 */
static void test_watch_line_in_stream(void **state)
{
	static const char stream[] = WATCH_PUT "\n" WATCH_DELETE "\n";
	struct recorder rec = {};
	char err[ERRLEN];
	size_t l1 = strlen(WATCH_PUT);

	assert_int_equal(watch_n(stream, l1, &rec, err), 0);
	assert_int_equal(rec.n, 1);
	assert_string_equal(rec.ev[0].key, "/pc/a");
	/* With a CR before the newline (CRLF framing) too. */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(watch_n(WATCH_PUT "\r\n{", l1 + 1, &rec, err), 0);
	assert_int_equal(rec.n, 1);
	/* A NUL inside the given length is not the end of the message. */
	memset(&rec, 0, sizeof(rec));
	assert_int_equal(watch_n(WATCH_PUT "\0{}", l1 + 3, &rec, err), -EPROTO);
	assert_int_equal(rec.n, 0);
}

/* Every prefix of every good line: refused, no event, no crash. */
static void test_watch_truncated(void **state)
{
	static const char *const good[] = {
		WATCH_CREATED, WATCH_PUT, WATCH_DELETE, WATCH_CANCELED, ETCD_ERROR,
	};
	char err[ERRLEN];

	for (size_t g = 0; g < sizeof(good) / sizeof(good[0]); g++) {
		size_t len = strlen(good[g]);

		for (size_t n = 0; n < len; n++) {
			struct recorder rec = {};
			int ret = watch_n(good[g], n, &rec, err);

			if (ret != -EPROTO || rec.n)
				fail_msg("line %zu: %zu of %zu bytes gave %d with %zu events",
					 g, n, len, ret, rec.n);
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range_one),
		cmocka_unit_test(test_range_many),
		cmocka_unit_test(test_range_empty),
		cmocka_unit_test(test_range_absent_value),
		cmocka_unit_test(test_range_bad_base64),
		cmocka_unit_test(test_range_revisions),
		cmocka_unit_test(test_range_not_json),
		cmocka_unit_test(test_range_etcd_error),
		cmocka_unit_test(test_range_truncated),
		cmocka_unit_test(test_watch_created),
		cmocka_unit_test(test_watch_put),
		cmocka_unit_test(test_watch_delete),
		cmocka_unit_test(test_watch_several),
		cmocka_unit_test(test_watch_callback_stops),
		cmocka_unit_test(test_watch_canceled),
		cmocka_unit_test(test_watch_refused),
		cmocka_unit_test(test_watch_etcd_error),
		cmocka_unit_test(test_watch_line_in_stream),
		cmocka_unit_test(test_watch_truncated),
	};

	return cmocka_run_group_tests_name("etcd json", tests, NULL, NULL);
}

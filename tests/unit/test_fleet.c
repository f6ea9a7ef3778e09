// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for fleet mode (user/fleet.c): names and prefixes, the key
 * layout, desired-state envelopes, the agent's view of them, the
 * controller's signed heartbeat, and the reported-state JSON.
 *
 * Every decode of a truncated or mutated envelope runs on a heap copy of
 * exactly that length, so under ASan a read one byte too far is a crash.
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
#include <sodium.h>
#include "fleet.h"
#include "msg.h"
#include "policy.h"

#define T0		1700000000000ULL	/* a timestamp, Unix ms */
#define SKEW		30000ULL

static __u8 pk1[PC_PK_LEN], sk1[PC_SK_LEN];
static __u8 pk2[PC_PK_LEN], sk2[PC_SK_LEN];
static __u8 keys1[1][PC_PK_LEN];	/* pk1 */
static __u8 keys21[2][PC_PK_LEN];	/* pk2, pk1 */

/* 57 and 58 characters: the longest fleet name and one more. */
#define NAME57	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
#define NAME58	NAME57 "5"

/* ---- helpers ---- */

static struct pc_fleet_desired desired(const char *target, enum pc_mode mode,
				       __u64 seq)
{
	struct pc_fleet_desired d = {
		.mode = mode,
		.seq = seq,
		.timestamp_ms = T0,
	};

	for (int i = 0; i < 16; i++)
		d.id[i] = 0x10 + i;
	snprintf(d.target, sizeof(d.target), "%s", target);
	return d;
}

static void with_policy(struct pc_fleet_desired *d, const char *yaml)
{
	d->has_policy = true;
	pc_sha256(yaml, strlen(yaml), d->policy_hash);
}

static int encode(const struct pc_fleet_desired *d, const __u8 *sk, __u8 *buf)
{
	int len = pc_fleet_encode(d, sk, buf, PC_MSG_MAX);

	if (len <= 0)
		fail_msg("encode refused a valid envelope for '%s': %d",
			 d->target, len);
	return len;
}

/* Decode from a heap buffer of exactly len bytes. */
static enum pc_msg_verdict decode_exact(const __u8 *buf, size_t len,
					const __u8 (*keys)[PC_PK_LEN],
					size_t nkeys,
					struct pc_fleet_desired *out)
{
	__u8 *copy = malloc(len ? len : 1);
	enum pc_msg_verdict v;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	v = pc_fleet_decode(copy, len, keys, nkeys, out);
	free(copy);
	return v;
}

static void assert_desired_equal(const struct pc_fleet_desired *a,
				 const struct pc_fleet_desired *b)
{
	assert_int_equal(a->mode, b->mode);
	assert_int_equal(a->release, b->release);
	assert_int_equal(a->has_policy, b->has_policy);
	if (a->has_policy)
		assert_memory_equal(a->policy_hash, b->policy_hash, PC_HASH_LEN);
	assert_int_equal(a->seq, b->seq);
	assert_int_equal(a->timestamp_ms, b->timestamp_ms);
	assert_memory_equal(a->id, b->id, sizeof(a->id));
	assert_string_equal(a->target, b->target);
}

/* ---- names and prefixes ---- */

static void test_name_ok(void **state)
{
	assert_true(pc_fleet_name_ok("a"));
	assert_true(pc_fleet_name_ok("web-1.eu_west:2"));
	assert_true(pc_fleet_name_ok(NAME57));
	/* 58 would not fit "group/" + name in a 63-byte message host id. */
	assert_false(pc_fleet_name_ok(NAME58));
	assert_false(pc_fleet_name_ok(""));
	assert_false(pc_fleet_name_ok(NULL));
	/* A slash would make a name a key path; the rest are just junk. */
	assert_false(pc_fleet_name_ok("a/b"));
	assert_false(pc_fleet_name_ok("a b"));
	assert_false(pc_fleet_name_ok("a\tb"));
	assert_false(pc_fleet_name_ok("a*"));
	assert_false(pc_fleet_name_ok("a@b"));
	assert_false(pc_fleet_name_ok("caf\xc3\xa9"));
	assert_false(pc_fleet_name_ok("a\n"));
	/* A leading '-' reads as an option, a leading '.' as a path ... */
	assert_false(pc_fleet_name_ok("-web"));
	assert_false(pc_fleet_name_ok("-"));
	assert_false(pc_fleet_name_ok(".web"));
	assert_false(pc_fleet_name_ok("."));
	assert_false(pc_fleet_name_ok(".."));
	/* ... anywhere else they are plain characters. */
	assert_true(pc_fleet_name_ok("web-"));
	assert_true(pc_fleet_name_ok("w.e-b."));
	assert_true(pc_fleet_name_ok("_web"));
	assert_true(pc_fleet_name_ok(":web"));
	assert_true(pc_fleet_name_ok("0"));
}

static void test_prefix_ok(void **state)
{
	char p128[PC_FLEET_PREFIX_MAX + 2];

	assert_true(pc_fleet_prefix_ok("/portcullis"));
	assert_true(pc_fleet_prefix_ok("/a"));
	assert_true(pc_fleet_prefix_ok("/a/b.c/d-e"));
	/* Root alone, trailing slash, relative, empty parts: all refused. */
	assert_false(pc_fleet_prefix_ok("/"));
	assert_false(pc_fleet_prefix_ok("/a/"));
	assert_false(pc_fleet_prefix_ok("a"));
	assert_false(pc_fleet_prefix_ok("a/b"));
	assert_false(pc_fleet_prefix_ok("//x"));
	assert_false(pc_fleet_prefix_ok("/a//b"));
	assert_false(pc_fleet_prefix_ok(""));
	assert_false(pc_fleet_prefix_ok(NULL));
	/* Spaces and control or non-ASCII bytes. */
	assert_false(pc_fleet_prefix_ok("/a b"));
	assert_false(pc_fleet_prefix_ok("/a\nb"));
	assert_false(pc_fleet_prefix_ok("/a\x7f"));
	assert_false(pc_fleet_prefix_ok("/caf\xc3\xa9"));

	/* Exactly PC_FLEET_PREFIX_MAX bytes fits, one more does not. */
	memset(p128, 'a', sizeof(p128));
	p128[0] = '/';
	p128[PC_FLEET_PREFIX_MAX] = '\0';
	assert_true(pc_fleet_prefix_ok(p128));
	p128[PC_FLEET_PREFIX_MAX] = 'a';
	p128[PC_FLEET_PREFIX_MAX + 1] = '\0';
	assert_false(pc_fleet_prefix_ok(p128));
}

static void test_endpoint_ok(void **state)
{
	static const char *const good[] = {
		"http://10.0.0.1:2379",
		"https://etcd-2.example:2379",
		"http://e:1",
		"http://e:65535",
		"http://[2001:db8::1]:2379",
		"https://[::1]:2379",
		"http://ETCD.example.com:2379",
	};
	static const char *const bad[] = {
		/* scheme */
		"etcd:2379", "ftp://e:2379", "HTTP://e:2379", "http:/e:2379",
		"http//e:2379", "http://", "https://", "",
		/* path, query, fragment, userinfo, blanks, controls */
		"http://e:2379/", "http://e/path", "http://e:2379/v3",
		"http://e:2379?a=b", "http://e:2379#x", "http://u@e:2379",
		"http://u:p@e:2379", "http://e :2379", "http://e:2379 ",
		"http://e:2379\n", "http://e\t:2379",
		/* the first host byte too (once skipped for http://) */
		"http:///2379", "http://@e:2379", "http://?e:2379", "http://#e:2379",
		"http:// e:2379",
		/* port: missing, empty, not a number, out of range, signed */
		"http://etcd", "http://etcd:", "http://etcd:abc", "http://e:0",
		"http://e:65536", "http://e:99999999999999999999", "http://e:+1",
		"http://e:-1", "http://e: 1", "http://e:23x", "http://:2379",
		/* brackets: empty, unclosed, no port after them */
		"http://[]:2379", "http://[::1:2379", "http://[::1]", "http://[::1]2379",
		"http://[::1]:", "http://[::1]:2379]:1", NULL,
	};
	char big[300];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!pc_fleet_endpoint_ok(good[i]))
			fail_msg("endpoint '%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pc_fleet_endpoint_ok(bad[i]))
			fail_msg("endpoint '%s' accepted", bad[i]);

	/* 255 bytes fit the config's buffer, 256 do not. */
	memset(big, 'e', sizeof(big));
	memcpy(big, "http://", 7);
	memcpy(big + 255 - 5, ":2379", 6);
	assert_int_equal(strlen(big), 255);
	assert_true(pc_fleet_endpoint_ok(big));
	memset(big, 'e', sizeof(big));
	memcpy(big, "http://", 7);
	memcpy(big + 256 - 5, ":2379", 6);
	assert_false(pc_fleet_endpoint_ok(big));
}

/*
 * KNOWN BUG, this test fails until it is fixed (pc_fleet_endpoint_ok):
 * outside brackets the host may still hold ':' '[' ']' (the character
 * set is shared with the bracketed form), so an unbracketed IPv6 address,
 * whose port cannot be told from the address (the controller's listen
 * parser refuses the same thing), and stray brackets are accepted.
 */
static void test_endpoint_unbracketed(void **state)
{
	static const char *const bad[] = {
		"http://::1:2379", "http://a:b:2379", "http://e]:2379",
		"http://a[b:2379",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pc_fleet_endpoint_ok(bad[i]))
			fail_msg("endpoint '%s' accepted", bad[i]);
}

/* ---- key layout ---- */

static void test_keys(void **state)
{
	char buf[PC_FLEET_KEY_MAX], small[12];

	pc_fleet_target(buf, sizeof(buf), "fleet", "ignored");
	assert_string_equal(buf, "fleet");
	pc_fleet_target(buf, sizeof(buf), "group", "web");
	assert_string_equal(buf, "group/web");
	pc_fleet_target(buf, sizeof(buf), "host", "web-1");
	assert_string_equal(buf, "host/web-1");

	pc_fleet_desired_key(buf, sizeof(buf), "/pc", "group/web");
	assert_string_equal(buf, "/pc/desired/group/web");
	pc_fleet_key(buf, sizeof(buf), "/pc", "status", "web-1");
	assert_string_equal(buf, "/pc/status/web-1");
	pc_fleet_key(buf, sizeof(buf), "/pc", "alive", "web-1");
	assert_string_equal(buf, "/pc/alive/web-1");
	pc_fleet_key(buf, sizeof(buf), "/pc", "policies", "00ff");
	assert_string_equal(buf, "/pc/policies/00ff");

	/* NULL-safe and always terminated, even when cut short. */
	pc_fleet_desired_key(buf, sizeof(buf), NULL, NULL);
	assert_string_equal(buf, "/desired/");
	memset(small, 'x', sizeof(small));
	pc_fleet_desired_key(small, sizeof(small), "/portcullis", "fleet");
	assert_int_equal(strlen(small), sizeof(small) - 1);
}

static void test_target_of_key(void **state)
{
	char t[PC_FLEET_TARGET_LEN];

	assert_int_equal(pc_fleet_target_of_key("/pc", "/pc/desired/fleet", t,
						sizeof(t)), 0);
	assert_string_equal(t, "fleet");
	assert_int_equal(pc_fleet_target_of_key("/pc", "/pc/desired/group/web",
						t, sizeof(t)), 0);
	assert_string_equal(t, "group/web");
	assert_int_equal(pc_fleet_target_of_key("/pc", "/pc/desired/host/"
						NAME57, t, sizeof(t)), 0);
	assert_string_equal(t, "host/" NAME57);

	/* Anything else under (or beside) the prefix is not a target. */
	static const char *const bad[] = {
		"/pc/desired/",
		"/pc/desired/fleetx",
		"/pc/desired/fleet/",
		"/pc/desired/host/",
		"/pc/desired/group/",
		"/pc/desired/group/a b",
		"/pc/desired/host/a/b",
		"/pc/desired/host/" NAME58,
		"/pc/desired/other/x",
		"/pc/desired",
		"/pc/desired-fleet",
		"/pc/desiredsfleet",
		"/pc/status/web-1",
		"/pc/policies/00",
		"/pcx/desired/fleet",	/* a sibling prefix, not ours */
		"/other/desired/fleet",
		"/pc//desired/fleet",
		"pc/desired/fleet",
		"",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(t, "untouched");
		if (pc_fleet_target_of_key("/pc", bad[i], t, sizeof(t)) != -EINVAL)
			fail_msg("'%s' taken as a desired key (target '%s')",
				 bad[i], t);
	}

	/* A target that does not fit the caller's buffer is refused. */
	assert_int_equal(pc_fleet_target_of_key("/pc", "/pc/desired/group/web",
						t, 9), -EINVAL);
	assert_int_equal(pc_fleet_target_of_key("/pc", "/pc/desired/group/web",
						t, 10), 0);
	assert_string_equal(t, "group/web");
}

/* ---- envelopes ---- */

static void test_roundtrip(void **state)
{
	static const enum pc_mode modes[] = {
		PC_MODE_NORMAL, PC_MODE_LOCKDOWN, PC_MODE_QUARANTINE,
	};
	static const char *const targets[] = {
		"fleet", "group/web", "host/web-1", "group/" NAME57,
		"host/" NAME57,
	};
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired in, out;

	/* m == 3: normal as an explicit release. */
	for (size_t m = 0; m < 4; m++) {
		for (size_t t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
			for (int pol = 0; pol < 2; pol++) {
				int len;

				in = desired(targets[t], m < 3 ? modes[m] :
					     PC_MODE_NORMAL, 1000 + m);
				in.release = m == 3;
				if (pol)
					with_policy(&in, "mgmt: []\n");
				len = encode(&in, sk1, buf);
				memset(&out, 0xa5, sizeof(out));
				assert_int_equal(decode_exact(buf, len, keys1, 1,
							      &out), PC_MSG_OK);
				assert_desired_equal(&in, &out);
			}
		}
	}

	/* Release and plain normal differ on the wire (the cmd byte, 6). */
	in = desired("fleet", PC_MODE_NORMAL, 1);
	encode(&in, sk1, buf);
	assert_int_equal(buf[6], PC_CMD_NONE);
	in.release = true;
	encode(&in, sk1, buf);
	assert_int_equal(buf[6], PC_CMD_RELEASE);

	/* Signed by the second trusted key: found wherever it sits. */
	in = desired("fleet", PC_MODE_LOCKDOWN, 7);
	assert_int_equal(decode_exact(buf, encode(&in, sk1, buf), keys21, 2,
				      &out), PC_MSG_OK);
	assert_desired_equal(&in, &out);
}

static void test_encode_refuses(void **state)
{
	static const char *const bad[] = {
		"", "host/", "group/", "group/a b", "other/x", "fleet/",
		"Fleet", "host/a/b", "host/" NAME58, "host",
	};
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired d;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		d = desired(bad[i], PC_MODE_LOCKDOWN, 1);
		if (pc_fleet_encode(&d, sk1, buf, sizeof(buf)) != -EINVAL)
			fail_msg("encoded an envelope for target '%s'", bad[i]);
	}
	/* A mode outside the enum has no command to carry it. */
	d = desired("fleet", PC_MODE_COUNT, 1);
	assert_int_equal(pc_fleet_encode(&d, sk1, buf, sizeof(buf)), -EINVAL);
	d = desired("fleet", (enum pc_mode)-1, 1);
	assert_int_equal(pc_fleet_encode(&d, sk1, buf, sizeof(buf)), -EINVAL);
	/* A release is a return to normal: with any other mode it is nonsense. */
	d = desired("fleet", PC_MODE_LOCKDOWN, 1);
	d.release = true;
	assert_int_equal(pc_fleet_encode(&d, sk1, buf, sizeof(buf)), -EINVAL);
	d = desired("fleet", PC_MODE_QUARANTINE, 1);
	d.release = true;
	assert_int_equal(pc_fleet_encode(&d, sk1, buf, sizeof(buf)), -EINVAL);
	/* No room: refused, not cut short. */
	d = desired("fleet", PC_MODE_LOCKDOWN, 1);
	assert_true(pc_fleet_encode(&d, sk1, buf, 10) < 0);
}

/* Flip each bit of each byte: the signature covers all of them. */
static void test_flipped_bytes(void **state)
{
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired d = desired("group/web", PC_MODE_QUARANTINE, 42);
	struct pc_fleet_desired out;
	int len;

	with_policy(&d, "x: 1\n");
	len = encode(&d, sk1, buf);
	for (int i = 0; i < len; i++) {
		for (int bit = 0; bit < 8; bit++) {
			enum pc_msg_verdict v;

			buf[i] ^= 1u << bit;
			v = decode_exact(buf, len, keys1, 1, &out);
			buf[i] ^= 1u << bit;
			if (v == PC_MSG_OK)
				fail_msg("accepted with byte %d bit %d flipped",
					 i, bit);
		}
	}
	/* Restored, it verifies again: the refusals were the flips. */
	assert_int_equal(decode_exact(buf, len, keys1, 1, &out), PC_MSG_OK);
}

static void test_untrusted_key(void **state)
{
	__u8 buf[PC_MSG_MAX];
	__u8 only2[1][PC_PK_LEN];
	struct pc_fleet_desired d = desired("fleet", PC_MODE_LOCKDOWN, 1), out;
	int len = encode(&d, sk1, buf);

	memcpy(only2[0], pk2, PC_PK_LEN);
	assert_int_equal(decode_exact(buf, len, only2, 1, &out), PC_MSG_UNKNOWN_KEY);
	/* And out says nothing of what the refused envelope claimed. */
	assert_int_equal(out.seq, 0);
	assert_string_equal(out.target, "");
	assert_int_equal(decode_exact(buf, len, keys1, 0, &out), PC_MSG_UNKNOWN_KEY);
	assert_int_equal(decode_exact(buf, len, NULL, 0, &out), PC_MSG_UNKNOWN_KEY);
}

/* A validly signed UDP command copied into etcd is not desired state. */
static void test_command_is_not_desired(void **state)
{
	static const enum pc_cmd cmds[] = {
		PC_CMD_LOCKDOWN, PC_CMD_QUARANTINE, PC_CMD_RELEASE,
	};
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired out;

	for (size_t i = 0; i < 3; i++) {
		struct pc_msg m = {
			.type = PC_MSG_COMMAND,
			.cmd = cmds[i],
			.seq = 5,
			.timestamp_ms = T0,
			.expires_ms = T0 + 60000,
			/* Even one whose host id reads as a target. */
			.host_id = "fleet",
		};
		int len = pc_msg_encode(&m, sk1, buf, sizeof(buf));

		assert_true(len > 0);
		assert_int_equal(decode_exact(buf, len, keys1, 1, &out),
				 PC_MSG_MALFORMED);
	}

	/* A heartbeat neither. */
	struct pc_msg hb = {
		.type = PC_MSG_HEARTBEAT,
		.seq = 5,
		.timestamp_ms = T0,
		.host_id = "host/web-1",
	};
	int len = pc_msg_encode(&hb, sk1, buf, sizeof(buf));

	assert_true(len > 0);
	assert_int_equal(decode_exact(buf, len, keys1, 1, &out),
			 PC_MSG_MALFORMED);
}

/* ... and a desired envelope sent over UDP is not a command. */
static void test_desired_refused_on_udp(void **state)
{
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired d = desired("host/web-1", PC_MODE_LOCKDOWN, 9);
	struct pc_replay r = {};
	struct pc_msg m;
	int key, len = encode(&d, sk1, buf);

	/* The signature is fine: only the check can tell it apart. */
	assert_int_equal(pc_msg_decode(buf, len, keys1, 1, &m, &key), PC_MSG_OK);
	assert_int_equal(m.type, PC_MSG_DESIRED);
	/* Even with the host id equal to its target, fresh and unreplayed. */
	assert_int_equal(pc_msg_check(&m, key, "host/web-1", T0, SKEW, &r),
			 PC_MSG_MALFORMED);
	assert_int_equal(pc_msg_check(&m, key, "web-1", T0, SKEW, &r),
			 PC_MSG_MALFORMED);
	/* The replay state did not move. */
	for (int i = 0; i < PC_MAX_KEYS; i++)
		for (int j = 0; j < 2; j++)
			assert_int_equal(r.last_seq[i][j], 0);
}

/* ---- fleet heartbeats ---- */

#define HB_TIMEOUT	2000ULL
#define HB_SKEW		1000ULL

static int hb_encode(__u64 seq, __u64 ts, const __u8 *sk, __u8 *buf)
{
	struct pc_fleet_heartbeat h = { .seq = seq, .timestamp_ms = ts };
	int len = pc_fleet_heartbeat_encode(&h, sk, buf, PC_MSG_MAX);

	if (len <= 0)
		fail_msg("heartbeat encode refused: %d", len);
	return len;
}

static void test_heartbeat_roundtrip(void **state)
{
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_heartbeat out;
	int key, len = hb_encode(42, T0, sk1, buf);
	char k[PC_FLEET_KEY_MAX];

	assert_int_equal(pc_fleet_heartbeat_decode(buf, len, keys21, 2, &out, &key),
			 PC_MSG_OK);
	assert_int_equal(key, 1);
	assert_true(out.seq == 42 && out.timestamp_ms == T0);
	/* Another key, or one flipped byte anywhere: refused. */
	assert_int_equal(pc_fleet_heartbeat_decode(buf, len, (const __u8(*)[PC_PK_LEN])&pk2,
						   1, &out, &key), PC_MSG_UNKNOWN_KEY);
	assert_int_equal(key, -1);
	for (int i = 0; i < len; i++) {
		buf[i] ^= 0x01;
		assert_int_not_equal(pc_fleet_heartbeat_decode(buf, len, keys1, 1,
							       &out, &key), PC_MSG_OK);
		buf[i] ^= 0x01;
	}
	pc_fleet_heartbeat_key(k, sizeof(k), "/pc");
	assert_string_equal(k, "/pc/heartbeat");
}

/* Neither a UDP heartbeat nor a desired envelope stands in for one, and a
 * fleet heartbeat is no UDP heartbeat (nor a desired envelope). */
static void test_heartbeat_types(void **state)
{
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_heartbeat out;
	struct pc_fleet_desired d = desired("fleet", PC_MODE_NORMAL, 7), dout;
	struct pc_replay r = {};
	struct pc_msg m = {
		.type = PC_MSG_HEARTBEAT,
		.seq = 7,
		.timestamp_ms = T0,
		.host_id = "fleet",
	};
	int key, len = pc_msg_encode(&m, sk1, buf, sizeof(buf));

	assert_true(len > 0);
	assert_int_equal(pc_fleet_heartbeat_decode(buf, len, keys1, 1, &out, &key),
			 PC_MSG_MALFORMED);
	assert_int_equal(key, -1);
	len = encode(&d, sk1, buf);
	assert_int_equal(pc_fleet_heartbeat_decode(buf, len, keys1, 1, &out, &key),
			 PC_MSG_MALFORMED);
	len = hb_encode(7, T0, sk1, buf);
	assert_int_equal(decode_exact(buf, len, keys1, 1, &dout), PC_MSG_MALFORMED);
	assert_int_equal(pc_msg_decode(buf, len, keys1, 1, &m, &key), PC_MSG_OK);
	assert_int_equal(pc_msg_check(&m, key, "fleet", T0, SKEW, &r),
			 PC_MSG_MALFORMED);
	/* Its host id is fixed: a heartbeat signed for another is refused. */
	m = (struct pc_msg){ .type = PC_MSG_FLEET_HEARTBEAT, .seq = 8,
			     .timestamp_ms = T0, .host_id = "host/web-1" };
	len = pc_msg_encode(&m, sk1, buf, sizeof(buf));
	assert_true(len > 0);
	assert_int_equal(pc_fleet_heartbeat_decode(buf, len, keys1, 1, &out, &key),
			 PC_MSG_MALFORMED);
}

static void test_heartbeat_check(void **state)
{
	struct pc_fleet_heartbeat h = { .seq = 10, .timestamp_ms = T0 };
	__u64 behind = 99;

	/* Fresh: counts now. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0, HB_TIMEOUT, HB_SKEW,
						  &behind), PC_MSG_OK);
	assert_true(behind == 0);
	/* Within the skew either way: counts now. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0 + HB_SKEW, HB_TIMEOUT,
						  HB_SKEW, &behind), PC_MSG_OK);
	assert_true(behind == 0);
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0 - HB_SKEW, HB_TIMEOUT,
						  HB_SKEW, &behind), PC_MSG_OK);
	assert_true(behind == 0);
	/* Held back: counts from its signing time plus the skew only. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0 + 2500, HB_TIMEOUT,
						  HB_SKEW, &behind), PC_MSG_OK);
	assert_true(behind == 1500);
	/* So old it would run out as it counts, or from the future. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0 + HB_TIMEOUT + HB_SKEW,
						  HB_TIMEOUT, HB_SKEW, &behind),
			 PC_MSG_STALE);
	assert_int_equal(pc_fleet_heartbeat_check(&h, 9, T0 - HB_SKEW - 1,
						  HB_TIMEOUT, HB_SKEW, &behind),
			 PC_MSG_STALE);
	/* Not above the last one taken: a replay, however fresh. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 10, T0, HB_TIMEOUT, HB_SKEW,
						  &behind), PC_MSG_REPLAY);
	assert_int_equal(pc_fleet_heartbeat_check(&h, 11, T0, HB_TIMEOUT, HB_SKEW,
						  &behind), PC_MSG_REPLAY);
	/* No skew allowed: only exact clocks. */
	assert_int_equal(pc_fleet_heartbeat_check(&h, 0, T0 - 1, HB_TIMEOUT, 0,
						  &behind), PC_MSG_STALE);
	assert_int_equal(pc_fleet_heartbeat_check(&h, 0, T0 + 500, HB_TIMEOUT, 0,
						  &behind), PC_MSG_OK);
	assert_true(behind == 500);
}

static void test_truncated(void **state)
{
	__u8 buf[PC_MSG_MAX];
	struct pc_fleet_desired d = desired("group/" NAME57, PC_MODE_QUARANTINE,
					    3), out;
	int len;

	with_policy(&d, "p\n");
	len = encode(&d, sk1, buf);
	for (int n = 0; n < len; n++) {
		memset(&out, 0xa5, sizeof(out));
		if (decode_exact(buf, n, keys1, 1, &out) == PC_MSG_OK)
			fail_msg("accepted %d of %d bytes", n, len);
		/* A refusal leaves nothing half-decoded behind. */
		assert_int_equal(out.seq, 0);
	}
	/* One byte too many is refused too. */
	buf[len] = 0;
	assert_int_not_equal(decode_exact(buf, len + 1, keys1, 1, &out),
			     PC_MSG_OK);
}

/* Peek reads the structure for display: no key needed, nothing else passes. */
static void test_peek(void **state)
{
	__u8 buf[PC_MSG_MAX], *copy;
	struct pc_fleet_desired d = desired("group/web", PC_MODE_LOCKDOWN, 77);
	struct pc_fleet_desired out;
	struct pc_msg m = {
		.type = PC_MSG_COMMAND,
		.cmd = PC_CMD_LOCKDOWN,
		.seq = 5,
		.timestamp_ms = T0,
		.expires_ms = T0 + 60000,
		.host_id = "group/web",
	};
	int len;

	with_policy(&d, "p\n");
	/* Signed by a key nobody trusts: peek shows it all the same. */
	len = encode(&d, sk2, buf);
	assert_true(pc_fleet_peek(buf, len, &out));
	assert_desired_equal(&d, &out);
	/* ... while decode, with only pk1 trusted, will not. */
	assert_int_equal(decode_exact(buf, len, keys1, 1, &out), PC_MSG_UNKNOWN_KEY);

	/* Every shorter length is no envelope, and clears out. */
	for (int n = 0; n < len; n++) {
		copy = malloc(n ? n : 1);
		assert_non_null(copy);
		memcpy(copy, buf, n);
		memset(&out, 0xa5, sizeof(out));
		if (pc_fleet_peek(copy, n, &out))
			fail_msg("peeked into %d of %d bytes", n, len);
		assert_int_equal(out.seq, 0);
		free(copy);
	}

	/* A command is not shown as desired state. */
	len = pc_msg_encode(&m, sk1, buf, sizeof(buf));
	assert_true(len > 0);
	assert_false(pc_fleet_peek(buf, len, &out));
	assert_false(pc_fleet_peek(NULL, 0, &out));
}

/* ---- the agent's view ---- */

static void test_view_init(void **state)
{
	char *groups[] = { "web", "eu-west" };
	struct pc_fleet_view v;

	pc_fleet_view_init(&v, "web-1", groups, 2);
	assert_int_equal(v.n, 4);
	assert_string_equal(v.target[0], "fleet");
	assert_string_equal(v.target[1], "group/web");
	assert_string_equal(v.target[2], "group/eu-west");
	assert_string_equal(v.target[3], "host/web-1");
	for (size_t i = 0; i < v.n; i++)
		assert_false(v.set[i]);

	assert_int_equal(pc_fleet_view_find(&v, "fleet"), 0);
	assert_int_equal(pc_fleet_view_find(&v, "group/eu-west"), 2);
	assert_int_equal(pc_fleet_view_find(&v, "host/web-1"), 3);
	assert_int_equal(pc_fleet_view_find(&v, "host/web-2"), -1);
	assert_int_equal(pc_fleet_view_find(&v, "group/db"), -1);
	assert_int_equal(pc_fleet_view_find(&v, "web-1"), -1);

	/* No groups: fleet and host only. */
	pc_fleet_view_init(&v, "db-1", NULL, 0);
	assert_int_equal(v.n, 2);
	assert_string_equal(v.target[0], "fleet");
	assert_string_equal(v.target[1], "host/db-1");
	/* Nothing accepted: no floor above normal and no policy. */
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_NORMAL);
	assert_int_equal(pc_fleet_policy_index(&v), -1);
}

static void test_view_max_groups(void **state)
{
	char *groups[PC_FLEET_MAX_GROUPS + 1] = {
		"g0", "g1", "g2", "g3", "g4", "g5", "g6", "g7", "g8",
	};
	struct pc_fleet_view v;

	/* More groups than fit: the extra one is dropped, the host kept. */
	pc_fleet_view_init(&v, "h", groups, PC_FLEET_MAX_GROUPS + 1);
	assert_int_equal(v.n, PC_FLEET_MAX_TARGETS);
	assert_string_equal(v.target[PC_FLEET_MAX_GROUPS], "group/g7");
	assert_string_equal(v.target[PC_FLEET_MAX_TARGETS - 1], "host/h");
	assert_int_equal(pc_fleet_view_find(&v, "group/g8"), -1);
}

static void test_view_accept(void **state)
{
	char *groups[] = { "web" };
	struct pc_fleet_view v, before;
	struct pc_fleet_desired d;

	pc_fleet_view_init(&v, "web-1", groups, 1);

	/* The envelope must name the slot it is offered for. */
	d = desired("host/web-2", PC_MODE_LOCKDOWN, 1);
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_WRONG_HOST);
	d = desired("group/web", PC_MODE_LOCKDOWN, 1);
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_WRONG_HOST);
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_WRONG_HOST);
	/* An index past the view is no slot at all. */
	assert_int_equal(pc_fleet_accept(&v, v.n, &d), PC_MSG_WRONG_HOST);
	assert_int_equal(pc_fleet_accept(&v, 99, &d), PC_MSG_WRONG_HOST);
	for (size_t i = 0; i < v.n; i++)
		assert_false(v.set[i]);

	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_OK);
	assert_true(v.set[1]);
	assert_int_equal(v.d[1].mode, PC_MODE_LOCKDOWN);

	/* Put back the same or an older envelope: a replay, view unchanged. */
	d = desired("group/web", PC_MODE_NORMAL, 10);
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_OK);
	before = v;
	d = desired("group/web", PC_MODE_QUARANTINE, 10);
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_REPLAY);
	assert_memory_equal(&v, &before, sizeof(v));
	d = desired("group/web", PC_MODE_QUARANTINE, 9);
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_REPLAY);
	d = desired("group/web", PC_MODE_QUARANTINE, 0);
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_REPLAY);
	assert_memory_equal(&v, &before, sizeof(v));
	assert_int_equal(v.d[1].mode, PC_MODE_NORMAL);

	/* Sequences are per key: the host slot starts afresh. */
	d = desired("host/web-1", PC_MODE_LOCKDOWN, 1);
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_OK);
	d = desired("group/web", PC_MODE_QUARANTINE, 11);
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_OK);
	assert_int_equal(v.d[1].seq, 11);
}

static void test_view_floor(void **state)
{
	char *groups[] = { "a", "b" };
	struct pc_fleet_view v;
	struct pc_fleet_desired d;

	pc_fleet_view_init(&v, "h", groups, 2);
	d = desired("fleet", PC_MODE_NORMAL, 1);
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_NORMAL);

	/* A group's lockdown raises the floor over the fleet's normal. */
	d = desired("group/b", PC_MODE_LOCKDOWN, 1);
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_LOCKDOWN);

	/* A host-level normal cannot lower what a group asks. */
	d = desired("host/h", PC_MODE_NORMAL, 1);
	assert_int_equal(pc_fleet_accept(&v, 3, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_LOCKDOWN);

	/* The fleet's quarantine is stricter than anything else here. */
	d = desired("fleet", PC_MODE_QUARANTINE, 2);
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_QUARANTINE);

	/* Released everywhere: back to normal. */
	d = desired("fleet", PC_MODE_NORMAL, 3);
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	d = desired("group/b", PC_MODE_NORMAL, 2);
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_NORMAL);

	/* Slots never accepted do not count, whatever they hold. */
	v.d[1].mode = PC_MODE_QUARANTINE;
	assert_false(v.set[1]);
	assert_int_equal(pc_fleet_floor(&v), PC_MODE_NORMAL);
}

static void test_view_policy_index(void **state)
{
	char *groups[] = { "a", "b" };
	struct pc_fleet_view v;
	struct pc_fleet_desired d;

	pc_fleet_view_init(&v, "h", groups, 2);	/* fleet, a, b, host */

	/* Envelopes without a policy name none. */
	d = desired("fleet", PC_MODE_NORMAL, 1);
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	d = desired("host/h", PC_MODE_NORMAL, 1);
	assert_int_equal(pc_fleet_accept(&v, 3, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), -1);

	d = desired("fleet", PC_MODE_NORMAL, 2);
	with_policy(&d, "fleet");
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 0);

	/* The second group before the fleet ... */
	d = desired("group/b", PC_MODE_NORMAL, 1);
	with_policy(&d, "b");
	assert_int_equal(pc_fleet_accept(&v, 2, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 2);

	/* ... the first group before the second ... */
	d = desired("group/a", PC_MODE_NORMAL, 1);
	with_policy(&d, "a");
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 1);

	/* ... and the host before everything. */
	d = desired("host/h", PC_MODE_NORMAL, 2);
	with_policy(&d, "h");
	assert_int_equal(pc_fleet_accept(&v, 3, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 3);

	/* The host drops its policy: the first group's applies again. */
	d = desired("host/h", PC_MODE_NORMAL, 3);
	assert_int_equal(pc_fleet_accept(&v, 3, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 1);

	/* No groups: host, then fleet. */
	pc_fleet_view_init(&v, "h", NULL, 0);
	d = desired("fleet", PC_MODE_NORMAL, 1);
	with_policy(&d, "fleet");
	assert_int_equal(pc_fleet_accept(&v, 0, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 0);
	d = desired("host/h", PC_MODE_NORMAL, 1);
	with_policy(&d, "h");
	assert_int_equal(pc_fleet_accept(&v, 1, &d), PC_MSG_OK);
	assert_int_equal(pc_fleet_policy_index(&v), 1);
}

/* ---- reported state ---- */

static struct pc_fleet_status full_status(void)
{
	struct pc_fleet_status s = {
		.host = "web-1",
		.mode = PC_MODE_QUARANTINE,
		.cause = "anomaly:scan",
		.since_ms = T0 - 5000,
		.generation = 4000000000u,	/* above INT32_MAX */
		.has_policy = true,
		.version = PC_FLEET_VERSION,
		.groups = { "web", "eu-west.1" },
		.ngroups = 2,
		.reported_ms = T0,
		.last_hb_ms = T0 - 250,
		.refused = 3,
		.hb_lost = true,
	};

	for (int i = 0; i < PC_HASH_LEN; i++)
		s.policy_hash[i] = 0xf0 ^ i;
	return s;
}

static void assert_status_equal(const struct pc_fleet_status *a,
				const struct pc_fleet_status *b)
{
	assert_string_equal(a->host, b->host);
	assert_int_equal(a->mode, b->mode);
	assert_string_equal(a->cause, b->cause);
	assert_int_equal(a->since_ms, b->since_ms);
	assert_int_equal(a->generation, b->generation);
	assert_int_equal(a->has_policy, b->has_policy);
	if (a->has_policy)
		assert_memory_equal(a->policy_hash, b->policy_hash, PC_HASH_LEN);
	assert_string_equal(a->version, b->version);
	assert_int_equal(a->ngroups, b->ngroups);
	for (size_t i = 0; i < a->ngroups; i++)
		assert_string_equal(a->groups[i], b->groups[i]);
	assert_int_equal(a->reported_ms, b->reported_ms);
	assert_int_equal(a->last_hb_ms, b->last_hb_ms);
	assert_int_equal(a->refused, b->refused);
	assert_int_equal(a->hb_lost, b->hb_lost);
}

static int parse(const char *json, struct pc_fleet_status *out)
{
	return pc_fleet_status_parse(json, strlen(json), out);
}

static void test_status_roundtrip(void **state)
{
	struct pc_fleet_status in = full_status(), out;
	char *json = pc_fleet_status_json(&in);

	assert_non_null(json);
	memset(&out, 0xa5, sizeof(out));
	assert_int_equal(parse(json, &out), 0);
	assert_status_equal(&in, &out);
	/* The hash travels as lowercase hex, as everywhere else. */
	assert_non_null(strstr(json, "\"policy\":\"f0f1f2f3"));
	free(json);

	/* No policy, no groups, nothing lost: all of that survives too. */
	in.has_policy = false;
	in.ngroups = 0;
	in.hb_lost = false;
	in.mode = PC_MODE_NORMAL;
	in.cause[0] = '\0';
	json = pc_fleet_status_json(&in);
	assert_non_null(json);
	assert_non_null(strstr(json, "\"policy\":null"));
	assert_int_equal(parse(json, &out), 0);
	assert_status_equal(&in, &out);
	free(json);

	/* Every mode by name. */
	for (int m = 0; m < PC_MODE_COUNT; m++) {
		in.mode = m;
		json = pc_fleet_status_json(&in);
		assert_non_null(json);
		assert_int_equal(parse(json, &out), 0);
		assert_int_equal(out.mode, m);
		free(json);
	}
}

static void test_status_minimal(void **state)
{
	struct pc_fleet_status out;

	/* Only host and mode are required; the rest read as zero. */
	assert_int_equal(parse("{\"host\":\"h\",\"mode\":\"lockdown\"}", &out), 0);
	assert_string_equal(out.host, "h");
	assert_int_equal(out.mode, PC_MODE_LOCKDOWN);
	assert_false(out.has_policy);
	assert_int_equal(out.ngroups, 0);
	assert_int_equal(out.generation, 0);
	assert_false(out.hb_lost);
}

static void test_status_refused(void **state)
{
	static const char *const bad[] = {
		"",
		"not json",
		"[]",
		"\"host\"",
		"{\"host\":\"h\",\"mode\":\"lockdown\"",	/* cut short */
		"{\"mode\":\"lockdown\"}",
		"{\"host\":\"h\"}",
		"{\"host\":null,\"mode\":\"lockdown\"}",
		"{\"host\":\"h\",\"mode\":\"panic\"}",
		"{\"host\":\"h\",\"mode\":\"\"}",
		"{\"host\":\"h\",\"mode\":\"LOCKDOWN\"}",
		/* wrong types */
		"{\"host\":1,\"mode\":\"normal\"}",
		"{\"host\":\"h\",\"mode\":2}",
		"{\"host\":[\"h\"],\"mode\":\"normal\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"cause\":5}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"version\":{}}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"since_ms\":\"5\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"since_ms\":1.5}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"generation\":true}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"reported_ms\":[1]}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"policy\":5}",
		/* negative numbers */
		"{\"host\":\"h\",\"mode\":\"normal\",\"since_ms\":-1}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"generation\":-1}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"reported_ms\":-5}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"last_heartbeat_ms\":\"1\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"refused\":-1}",
		/* policy hex of the wrong length */
		"{\"host\":\"h\",\"mode\":\"normal\",\"policy\":\"00\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"policy\":\""
		"000000000000000000000000000000000000000000000000000000000000000\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"policy\":\""
		"00000000000000000000000000000000000000000000000000000000000000000\"}",
		/* over-long strings for their fields */
		"{\"host\":\"" NAME57 "1234567\",\"mode\":\"normal\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"cause\":"
		"\"0123456789012345678901234567890123\"}",
		"{\"host\":\"h\",\"mode\":\"normal\",\"version\":\"0123456789abcdef\"}",
	};
	struct pc_fleet_status out;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse(bad[i], &out) != -EINVAL)
			fail_msg("accepted: %s", bad[i]);

	/* The longest strings that fit are fine. */
	assert_int_equal(parse("{\"host\":\"h\",\"mode\":\"normal\",\"cause\":"
			       "\"0123456789012345678901234567890\","
			       "\"version\":\"0123456789abcde\"}", &out), 0);
	assert_int_equal(strlen(out.cause), sizeof(out.cause) - 1);
	assert_int_equal(strlen(out.version), sizeof(out.version) - 1);
}

#define ZEROS64	"0000000000000000000000000000000000000000000000000000000000000000"

/*
 * Regression: the hash was once read with sscanf("%2x"), which skips
 * blanks and takes a sign or "0x", so 64 characters that were not hex
 * ("-1000...", " f00...", "0x00...") were read as some other hash.
 */

static void test_status_policy_not_hex(void **state)
{
	/* Each replaces the first two digits of an otherwise valid hash. */
	static const char *const bad[] = { "zz", "-1", "+f", " f", "0x", "g0" };
	struct pc_fleet_status out;
	char json[256];

	/* The control: 64 hex digits are a hash, in either case. */
	snprintf(json, sizeof(json),
		 "{\"host\":\"h\",\"mode\":\"normal\",\"policy\":\"aF%.62s\"}",
		 ZEROS64);
	assert_int_equal(parse(json, &out), 0);
	assert_true(out.has_policy);
	assert_int_equal(out.policy_hash[0], 0xaf);
	assert_int_equal(out.policy_hash[1], 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(json, sizeof(json),
			 "{\"host\":\"h\",\"mode\":\"normal\",\"policy\":\"%s%.62s\"}",
			 bad[i], ZEROS64);
		if (parse(json, &out) != -EINVAL)
			fail_msg("policy '%s%.62s' accepted as a hash", bad[i],
				 ZEROS64);
	}
}

static void test_status_groups(void **state)
{
	struct pc_fleet_status out;

	/* Bad names and non-strings are skipped, the good ones kept in order. */
	assert_int_equal(parse("{\"host\":\"h\",\"mode\":\"normal\",\"groups\":"
			       "[\"web\",\"a b\",\"\",7,null,\"x/y\",\""
			       NAME58 "\",\"db\"]}", &out), 0);
	assert_int_equal(out.ngroups, 2);
	assert_string_equal(out.groups[0], "web");
	assert_string_equal(out.groups[1], "db");

	/* At most PC_FLEET_MAX_GROUPS. */
	assert_int_equal(parse("{\"host\":\"h\",\"mode\":\"normal\",\"groups\":"
			       "[\"g0\",\"g1\",\"g2\",\"g3\",\"g4\",\"g5\",\"g6\","
			       "\"g7\",\"g8\",\"g9\"]}", &out), 0);
	assert_int_equal(out.ngroups, PC_FLEET_MAX_GROUPS);
	assert_string_equal(out.groups[PC_FLEET_MAX_GROUPS - 1], "g7");

	/* Not a list: no groups, but the rest still reads. */
	assert_int_equal(parse("{\"host\":\"h\",\"mode\":\"normal\",\"groups\":"
			       "\"web\"}", &out), 0);
	assert_int_equal(out.ngroups, 0);
}

/* Every prefix of a valid status is refused, and nothing crashes. */
static void test_status_truncated(void **state)
{
	struct pc_fleet_status in = full_status(), out;
	char *json = pc_fleet_status_json(&in);
	size_t len;

	assert_non_null(json);
	len = strlen(json);
	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n ? n : 1);

		assert_non_null(copy);
		memcpy(copy, json, n);
		if (pc_fleet_status_parse(copy, n, &out) == 0)
			fail_msg("accepted %zu of %zu bytes", n, len);
		free(copy);
	}
	free(json);
}

static int setup(void **state)
{
	if (pc_crypto_init())
		return -1;
	crypto_sign_keypair(pk1, sk1);
	crypto_sign_keypair(pk2, sk2);
	memcpy(keys1[0], pk1, PC_PK_LEN);
	memcpy(keys21[0], pk2, PC_PK_LEN);
	memcpy(keys21[1], pk1, PC_PK_LEN);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_name_ok),
		cmocka_unit_test(test_prefix_ok),
		cmocka_unit_test(test_endpoint_ok),
		cmocka_unit_test(test_endpoint_unbracketed),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_target_of_key),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_encode_refuses),
		cmocka_unit_test(test_flipped_bytes),
		cmocka_unit_test(test_untrusted_key),
		cmocka_unit_test(test_command_is_not_desired),
		cmocka_unit_test(test_desired_refused_on_udp),
		cmocka_unit_test(test_heartbeat_roundtrip),
		cmocka_unit_test(test_heartbeat_types),
		cmocka_unit_test(test_heartbeat_check),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_peek),
		cmocka_unit_test(test_view_init),
		cmocka_unit_test(test_view_max_groups),
		cmocka_unit_test(test_view_accept),
		cmocka_unit_test(test_view_floor),
		cmocka_unit_test(test_view_policy_index),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_status_minimal),
		cmocka_unit_test(test_status_refused),
		cmocka_unit_test(test_status_policy_not_hex),
		cmocka_unit_test(test_status_groups),
		cmocka_unit_test(test_status_truncated),
	};

	return cmocka_run_group_tests_name("fleet", tests, setup, NULL);
}

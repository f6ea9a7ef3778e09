// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for controller messages (user/msg.c): wire format, structure
 * checks, signatures, freshness/replay checks and key files.
 *
 * Malformed datagrams are built by raw_build(), an independent writer of
 * the wire format that signs whatever it is given, so a structural refusal
 * is proven to come from the structure check and not from a bad signature.
 * Every decode of a truncated or mutated datagram runs on a heap copy of
 * exactly that length, so under ASan a read one byte too far is a crash.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include <sodium.h>
#include "msg.h"

#define ERRLEN		512
#define HOST		"web-1"
#define T0		1700000000000ULL	/* a timestamp, Unix ms */
#define SKEW		30000ULL
#define HDR		57			/* bytes before the host id */
#define KEY_ID_OFF	8			/* the key id, 8 bytes */

static __u8 pk1[PC_PK_LEN], sk1[PC_SK_LEN];
static __u8 pk2[PC_PK_LEN], sk2[PC_SK_LEN];
static __u8 keys12[2][PC_PK_LEN];	/* pk1, pk2 */
static __u8 keys21[2][PC_PK_LEN];	/* pk2, pk1 */
static __u8 id1[PC_KEY_ID_LEN], id2[PC_KEY_ID_LEN];	/* their key ids */
static char tmpdir[] = "/tmp/test_msg.XXXXXX";

static const char policy_yaml[] = "mgmt:\n  - 192.0.2.10/32 tcp 22\n";

/* ---- helpers ---- */

static struct pc_msg base_msg(enum pc_msg_type type, enum pc_cmd cmd)
{
	struct pc_msg m = {
		.type = type,
		.cmd = cmd,
		.seq = 1000,
		.timestamp_ms = T0,
		.expires_ms = type == PC_MSG_COMMAND ? T0 + 60000 : 0,
		.host_id = HOST,
	};

	for (int i = 0; i < 16; i++)
		m.cmd_id[i] = 0xa0 + i;
	return m;
}

static struct pc_msg policy_msg(bool by_hash)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_APPLY_POLICY);

	if (by_hash) {
		m.has_hash = true;
		pc_sha256(policy_yaml, strlen(policy_yaml), m.policy_hash);
	} else {
		m.policy = policy_yaml;
		m.policy_len = strlen(policy_yaml);
	}
	return m;
}

static int encode(const struct pc_msg *m, const __u8 *sk, __u8 *buf)
{
	int len = pc_msg_encode(m, sk, buf, PC_MSG_MAX);

	if (len <= 0)
		fail_msg("encode refused a valid message: %d", len);
	return len;
}

/* Decode a heap copy of exactly len bytes, so ASan sees any overread. */
static enum pc_msg_verdict decode_exact(const __u8 *buf, size_t len,
					const __u8 (*keys)[PC_PK_LEN],
					size_t nkeys, struct pc_msg *out,
					int *key_index)
{
	__u8 *copy = malloc(len ? len : 1);
	enum pc_msg_verdict v;

	assert_non_null(copy);
	memcpy(copy, buf, len);
	v = pc_msg_decode(copy, len, keys, nkeys, out, key_index);
	free(copy);
	return v;
}

static enum pc_msg_verdict decode1(const __u8 *buf, size_t len)
{
	struct pc_msg out;
	int ki;

	return decode_exact(buf, len, keys12, 1, &out, &ki);
}

static void assert_verdict(enum pc_msg_verdict got, enum pc_msg_verdict want)
{
	if (got != want)
		fail_msg("verdict %s, expected %s", pc_msg_verdict_name(got),
			 pc_msg_verdict_name(want));
}

static void assert_same_msg(const struct pc_msg *a, const struct pc_msg *b)
{
	assert_int_equal(a->type, b->type);
	assert_int_equal(a->cmd, b->cmd);
	assert_true(a->seq == b->seq);
	assert_true(a->timestamp_ms == b->timestamp_ms);
	assert_true(a->expires_ms == b->expires_ms);
	assert_memory_equal(a->cmd_id, b->cmd_id, 16);
	assert_string_equal(a->host_id, b->host_id);
	assert_int_equal(a->has_hash, b->has_hash);
	if (a->has_hash)
		assert_memory_equal(a->policy_hash, b->policy_hash,
				    PC_HASH_LEN);
	assert_int_equal(a->policy_len, b->policy_len);
	if (a->policy_len)
		assert_memory_equal(a->policy, b->policy, a->policy_len);
	else
		assert_null(b->policy);
}

/*
 * The wire format written out field by field, with nothing validated:
 * defaults make a valid heartbeat; tests break one field at a time.
 */
struct raw {
	const char *magic;
	__u8 version, type, cmd, flags;
	const __u8 *key_id;		/* NULL: pk1's */
	__u64 seq, ts, expires;
	__u8 hlen;
	const char *host;		/* hlen bytes */
	bool plen_set;
	__u32 plen;			/* the length field, when plen_set */
	const __u8 *payload;
	size_t payload_len;		/* bytes actually written */
	size_t trailing;		/* zero bytes after the signature */
};

static struct raw raw_heartbeat(void)
{
	return (struct raw){
		.magic = "PCM1", .version = 2, .type = PC_MSG_HEARTBEAT,
		.seq = 1000, .ts = T0, .hlen = strlen(HOST), .host = HOST,
	};
}

static struct raw raw_command(__u8 cmd)
{
	struct raw r = raw_heartbeat();

	r.type = PC_MSG_COMMAND;
	r.cmd = cmd;
	r.expires = T0 + 60000;
	return r;
}

static void be(__u8 *p, __u64 v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

/* Build into buf (PC_MSG_MAX + 1024 bytes), signed with sk1; the length. */
static size_t raw_build(const struct raw *r, __u8 *buf)
{
	size_t off = 0;

	memcpy(buf, r->magic, 4);
	buf[4] = r->version;
	buf[5] = r->type;
	buf[6] = r->cmd;
	buf[7] = r->flags;
	memcpy(buf + KEY_ID_OFF, r->key_id ? r->key_id : id1, PC_KEY_ID_LEN);
	be(buf + 16, r->seq, 8);
	be(buf + 24, r->ts, 8);
	be(buf + 32, r->expires, 8);
	for (int i = 0; i < 16; i++)
		buf[40 + i] = 0xa0 + i;
	buf[56] = r->hlen;
	off = HDR;
	memcpy(buf + off, r->host, r->hlen);
	off += r->hlen;
	be(buf + off, r->plen_set ? r->plen : r->payload_len, 4);
	off += 4;
	if (r->payload_len)
		memcpy(buf + off, r->payload, r->payload_len);
	off += r->payload_len;
	crypto_sign_detached(buf + off, NULL, buf, off, sk1);
	off += PC_SIG_LEN;
	memset(buf + off, 0, r->trailing);
	return off + r->trailing;
}

static __u8 *big_buf(void)
{
	__u8 *b = calloc(1, PC_MSG_MAX + 1024);

	assert_non_null(b);
	return b;
}

static void raw_expect(const struct raw *r, enum pc_msg_verdict want)
{
	__u8 *buf = big_buf();
	size_t len = raw_build(r, buf);

	assert_verdict(decode1(buf, len), want);
	free(buf);
}

static void path_in_tmp(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s/%s", tmpdir, name);
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static void assert_has(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

/* ---- names ---- */

static void test_verdict_names(void **state)
{
	static const char *const want[] = { "ok", "malformed", "bad_signature",
		"wrong_host", "stale", "replay", "expired", "old_format",
		"unknown_key" };

	assert_int_equal(PC_MSG_VERDICT_COUNT, 9);
	for (int v = 0; v < PC_MSG_VERDICT_COUNT; v++)
		assert_string_equal(pc_msg_verdict_name(v), want[v]);
	assert_string_equal(pc_msg_verdict_name(PC_MSG_VERDICT_COUNT),
			    "unknown");
}

static void test_cmd_names(void **state)
{
	static const char *const want[] = { "none", "lockdown", "quarantine",
		"release", "apply-policy" };
	enum pc_cmd c;

	for (int i = 0; i < 5; i++) {
		assert_string_equal(pc_cmd_name(i), want[i]);
		c = 99;
		assert_int_equal(pc_cmd_parse(want[i], &c), 0);
		assert_int_equal(c, i);
	}
	assert_string_equal(pc_cmd_name(5), "unknown");
	assert_int_equal(pc_cmd_parse("Lockdown", &c), -EINVAL);
	assert_int_equal(pc_cmd_parse("apply_policy", &c), -EINVAL);
	assert_int_equal(pc_cmd_parse("", &c), -EINVAL);
	assert_int_equal(pc_cmd_parse(NULL, &c), -EINVAL);
}

/* ---- round trips ---- */

static void roundtrip(const struct pc_msg *m)
{
	__u8 *buf = big_buf();
	struct pc_msg out;
	int len, ki = -5;

	len = encode(m, sk1, buf);
	assert_verdict(pc_msg_decode(buf, len, keys12, 1, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, 0);
	assert_same_msg(m, &out);
	/* Inline policy is not copied: it points at the payload in buf. */
	if (m->policy_len)
		assert_ptr_equal(out.policy,
				 buf + HDR + strlen(m->host_id) + 4);
	free(buf);
}

static void test_roundtrip_heartbeat(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);

	roundtrip(&m);
	m.seq = UINT64_MAX;
	m.timestamp_ms = 0;
	roundtrip(&m);
}

static void test_roundtrip_commands(void **state)
{
	for (int c = PC_CMD_LOCKDOWN; c <= PC_CMD_RELEASE; c++) {
		struct pc_msg m = base_msg(PC_MSG_COMMAND, c);

		roundtrip(&m);
	}
}

static void test_roundtrip_policy(void **state)
{
	struct pc_msg m = policy_msg(false);

	roundtrip(&m);
	m = policy_msg(true);
	roundtrip(&m);
	/* One-byte policy: the smallest inline payload. */
	m = policy_msg(false);
	m.policy_len = 1;
	roundtrip(&m);
}

static void test_roundtrip_host_ids(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);

	strcpy(m.host_id, "x");
	roundtrip(&m);
	memset(m.host_id, '~', PC_HOST_ID_LEN - 1);
	m.host_id[PC_HOST_ID_LEN - 1] = '\0';
	roundtrip(&m);
	strcpy(m.host_id, "!abc~");	/* 0x21 and 0x7e, the printable ends */
	roundtrip(&m);
}

/* The largest inline policy fits exactly PC_MSG_MAX; one more is refused. */
static void test_roundtrip_max_size(void **state)
{
	struct pc_msg m = policy_msg(false);
	size_t room = PC_MSG_MAX - HDR - strlen(HOST) - 4 - PC_SIG_LEN;
	char *policy = malloc(room + 1);
	__u8 *buf = big_buf();

	assert_non_null(policy);
	memset(policy, 'p', room + 1);
	m.policy = policy;
	m.policy_len = room;
	assert_int_equal(pc_msg_encode(&m, sk1, buf, PC_MSG_MAX + 1024),
			 PC_MSG_MAX);
	assert_verdict(decode1(buf, PC_MSG_MAX), PC_MSG_OK);
	m.policy_len = room + 1;
	assert_int_equal(pc_msg_encode(&m, sk1, buf, PC_MSG_MAX + 1024),
			 -EINVAL);
	m.policy_len = SIZE_MAX;	/* must not wrap into "fits" */
	assert_int_equal(pc_msg_encode(&m, sk1, buf, PC_MSG_MAX + 1024),
			 -EINVAL);
	free(policy);
	free(buf);
}

/* The documented layout, byte for byte: encode must agree with raw_build. */
static void test_wire_layout(void **state)
{
	struct pc_msg m = policy_msg(true);
	struct raw r = raw_command(PC_CMD_APPLY_POLICY);
	__u8 *a = big_buf(), *b = big_buf();
	int alen;
	size_t blen;

	r.flags = 0x02;
	r.payload = m.policy_hash;
	r.payload_len = PC_HASH_LEN;
	alen = encode(&m, sk1, a);
	blen = raw_build(&r, b);
	assert_int_equal(alen, blen);
	assert_int_equal(alen, HDR + 5 + 4 + 32 + 64);
	assert_memory_equal(a, b, blen);
	assert_memory_equal(a, "PCM1\x02\x02\x04\x02", 8);
	assert_memory_equal(a + KEY_ID_OFF, id1, PC_KEY_ID_LEN);

	m = policy_msg(false);
	r.flags = 0x01;
	r.payload = (const __u8 *)policy_yaml;
	r.payload_len = strlen(policy_yaml);
	alen = encode(&m, sk1, a);
	blen = raw_build(&r, b);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, blen);
	free(a);
	free(b);
}

/* ---- encode refusals ---- */

static void encode_refused(const struct pc_msg *m)
{
	__u8 *buf = big_buf();

	assert_int_equal(pc_msg_encode(m, sk1, buf, PC_MSG_MAX), -EINVAL);
	free(buf);
}

static void test_encode_invalid(void **state)
{
	struct pc_msg m;
	__u8 hash[PC_HASH_LEN] = { 1 };

	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_LOCKDOWN);
	encode_refused(&m);
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	m.expires_ms = 1;
	encode_refused(&m);
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	m.has_hash = true;
	encode_refused(&m);
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	m.policy = policy_yaml;
	m.policy_len = 3;
	encode_refused(&m);
	m = base_msg(0, PC_CMD_NONE);
	encode_refused(&m);
	m = base_msg(5, PC_CMD_NONE);	/* 3, 4: fleet desired state, heartbeat */
	encode_refused(&m);
	m = base_msg(PC_MSG_FLEET_HEARTBEAT, PC_CMD_LOCKDOWN);
	encode_refused(&m);
	m = base_msg(PC_MSG_FLEET_HEARTBEAT, PC_CMD_NONE);
	m.expires_ms = 1;
	encode_refused(&m);
	m = base_msg(PC_MSG_COMMAND, PC_CMD_NONE);
	encode_refused(&m);
	m = base_msg(PC_MSG_COMMAND, 5);
	encode_refused(&m);
	/* apply-policy: neither, both, or an empty inline policy */
	m = base_msg(PC_MSG_COMMAND, PC_CMD_APPLY_POLICY);
	encode_refused(&m);
	m = policy_msg(false);
	m.has_hash = true;
	memcpy(m.policy_hash, hash, sizeof(hash));
	encode_refused(&m);
	m = policy_msg(false);
	m.policy_len = 0;
	encode_refused(&m);
	m = policy_msg(false);
	m.policy = NULL;
	encode_refused(&m);
	/* a policy on any other command */
	m = policy_msg(true);
	m.cmd = PC_CMD_LOCKDOWN;
	encode_refused(&m);
	m = policy_msg(false);
	m.cmd = PC_CMD_RELEASE;
	encode_refused(&m);
	/* host ids: empty, 64 bytes with no NUL, a space, a control char */
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	m.host_id[0] = '\0';
	encode_refused(&m);
	memset(m.host_id, 'a', PC_HOST_ID_LEN);
	encode_refused(&m);
	strcpy(m.host_id, "web 1");
	encode_refused(&m);
	strcpy(m.host_id, "web\t1");
	encode_refused(&m);
	strcpy(m.host_id, "web\x7f");
	encode_refused(&m);
	strcpy(m.host_id, "w\xc3\xa9");
	encode_refused(&m);
}

/* Every buffer one byte short: -ENOSPC, and never a write past it (ASan). */
static void test_encode_nospace(void **state)
{
	struct pc_msg m = policy_msg(false);
	__u8 *full = big_buf();
	int len = encode(&m, sk1, full);

	for (int n = 0; n <= len; n++) {
		__u8 *buf = malloc(n ? n : 1);

		assert_non_null(buf);
		assert_int_equal(pc_msg_encode(&m, sk1, buf, n),
				 n < len ? -ENOSPC : len);
		if (n == len)
			assert_memory_equal(buf, full, len);
		free(buf);
	}
	free(full);
}

/* ---- decode: structure ---- */

static void truncations(const struct pc_msg *m)
{
	__u8 *buf = big_buf();
	int len = encode(m, sk1, buf);

	for (int n = 0; n < len; n++)
		assert_verdict(decode1(buf, n), PC_MSG_MALFORMED);
	assert_verdict(decode1(buf, len), PC_MSG_OK);
	free(buf);
}

static void test_decode_truncated(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);

	truncations(&m);
	m = base_msg(PC_MSG_COMMAND, PC_CMD_QUARANTINE);
	truncations(&m);
	m = policy_msg(false);
	truncations(&m);
	m = policy_msg(true);
	truncations(&m);
}

static void test_decode_null(void **state)
{
	struct pc_msg out;
	int ki;

	assert_verdict(pc_msg_decode(NULL, 100, keys12, 1, &out, &ki),
		       PC_MSG_MALFORMED);
}

static void test_raw_builder_valid(void **state)
{
	struct raw r = raw_heartbeat();
	__u8 hash[PC_HASH_LEN] = { 0 };

	/* The baselines the malformed cases below break one field of. */
	raw_expect(&r, PC_MSG_OK);
	for (int c = PC_CMD_LOCKDOWN; c <= PC_CMD_RELEASE; c++) {
		r = raw_command(c);
		raw_expect(&r, PC_MSG_OK);
	}
	r = raw_command(PC_CMD_APPLY_POLICY);
	r.flags = 0x02;
	r.payload = hash;
	r.payload_len = PC_HASH_LEN;
	raw_expect(&r, PC_MSG_OK);
	r.flags = 0x01;
	r.payload_len = 1;
	raw_expect(&r, PC_MSG_OK);
}

static void test_decode_bad_header(void **state)
{
	struct raw r;

	r = raw_heartbeat();
	r.magic = "PCM2";
	raw_expect(&r, PC_MSG_MALFORMED);
	r.magic = "pcm1";
	raw_expect(&r, PC_MSG_MALFORMED);
	r.magic = "\0CM1";
	raw_expect(&r, PC_MSG_MALFORMED);

	r = raw_heartbeat();
	r.version = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.version = 3;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.version = 0xff;
	raw_expect(&r, PC_MSG_MALFORMED);

	r = raw_heartbeat();
	r.type = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.type = 5;	/* 3, 4 are the fleet's (test_fleet.c) */
	raw_expect(&r, PC_MSG_MALFORMED);
	r.type = 0xff;
	raw_expect(&r, PC_MSG_MALFORMED);
}

static void test_decode_bad_cmd(void **state)
{
	struct raw r;

	for (int c = 1; c <= 0xff; c++) {
		r = raw_heartbeat();
		r.cmd = c;
		raw_expect(&r, PC_MSG_MALFORMED);
	}
	r = raw_command(PC_CMD_NONE);
	raw_expect(&r, PC_MSG_MALFORMED);
	for (int c = 5; c <= 0xff; c++) {
		r = raw_command(c);
		raw_expect(&r, PC_MSG_MALFORMED);
	}
	/* heartbeats never expire: a non-zero expiry is not a heartbeat */
	r = raw_heartbeat();
	r.expires = 1;
	raw_expect(&r, PC_MSG_MALFORMED);
}

static void test_decode_bad_flags(void **state)
{
	static const __u8 hash[PC_HASH_LEN] = { 7 };
	struct raw r;

	/* both policy bits */
	r = raw_command(PC_CMD_APPLY_POLICY);
	r.payload = hash;
	r.payload_len = PC_HASH_LEN;
	r.flags = 0x03;
	raw_expect(&r, PC_MSG_MALFORMED);
	/* undefined bits, alone or beside a valid one */
	for (int bit = 2; bit < 8; bit++) {
		r.flags = 0x02 | 1 << bit;
		raw_expect(&r, PC_MSG_MALFORMED);
		r.flags = 0x01 | 1 << bit;
		raw_expect(&r, PC_MSG_MALFORMED);
	}
	/* apply-policy with no policy bit: with or without a payload */
	r.flags = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.payload_len = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	/* a policy on other commands and on heartbeats */
	for (int c = PC_CMD_LOCKDOWN; c <= PC_CMD_RELEASE; c++) {
		r = raw_command(c);
		r.payload = hash;
		r.payload_len = PC_HASH_LEN;
		r.flags = 0x02;
		raw_expect(&r, PC_MSG_MALFORMED);
		r.flags = 0x01;
		raw_expect(&r, PC_MSG_MALFORMED);
		r.flags = 0;		/* payload with no flag */
		raw_expect(&r, PC_MSG_MALFORMED);
		r.flags = 0x04;
		r.payload_len = 0;
		raw_expect(&r, PC_MSG_MALFORMED);
	}
	r = raw_heartbeat();
	r.payload = hash;
	r.payload_len = PC_HASH_LEN;
	r.flags = 0x02;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.flags = 0x01;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.flags = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
}

static void test_decode_bad_payload_len(void **state)
{
	static const __u8 payload[64] = { 1 };
	struct raw r = raw_command(PC_CMD_APPLY_POLICY);

	r.payload = payload;
	/* a hash is exactly 32 bytes */
	r.flags = 0x02;
	r.payload_len = 31;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.payload_len = 33;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.payload_len = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	/* an inline policy is at least one byte */
	r.flags = 0x01;
	r.payload_len = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	/* the length field must match the bytes present */
	r.payload_len = 10;
	r.plen_set = true;
	for (__u32 bad = 0; bad <= 80; bad++) {
		if (bad == 10)
			continue;
		r.plen = bad;
		raw_expect(&r, PC_MSG_MALFORMED);
	}
	r.plen = UINT32_MAX;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.plen = UINT32_MAX - 63;	/* + signature wraps a 32-bit sum */
	raw_expect(&r, PC_MSG_MALFORMED);
	r.plen = 10;
	raw_expect(&r, PC_MSG_OK);
}

static void test_decode_trailing(void **state)
{
	struct raw r = raw_heartbeat();

	r.trailing = 1;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.trailing = 64;
	raw_expect(&r, PC_MSG_MALFORMED);
}

static void test_decode_too_long(void **state)
{
	struct raw r = raw_command(PC_CMD_APPLY_POLICY);
	size_t room = PC_MSG_MAX - HDR - strlen(HOST) - 4 - PC_SIG_LEN;
	__u8 *policy = malloc(room + 1);

	assert_non_null(policy);
	memset(policy, 'p', room + 1);
	r.flags = 0x01;
	r.payload = policy;
	r.payload_len = room;
	raw_expect(&r, PC_MSG_OK);
	/* well-formed and signed, but one byte too big */
	r.payload_len = room + 1;
	raw_expect(&r, PC_MSG_MALFORMED);
	free(policy);
}

static void test_decode_bad_host(void **state)
{
	char sixty_four[64];
	static const __u8 bad_chars[] = { 0x00, 0x09, 0x0a, 0x20, 0x7f, 0x80,
					  0xff };
	char host[8];
	struct raw r = raw_heartbeat();

	memset(sixty_four, 'a', sizeof(sixty_four));
	r.hlen = 0;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.host = sixty_four;
	r.hlen = 64;
	raw_expect(&r, PC_MSG_MALFORMED);
	r.hlen = 63;
	raw_expect(&r, PC_MSG_OK);
	for (size_t i = 0; i < sizeof(bad_chars); i++) {
		for (int pos = 0; pos < 3; pos++) {
			strcpy(host, "abc");
			host[pos] = bad_chars[i];
			r.host = host;
			r.hlen = 3;
			raw_expect(&r, PC_MSG_MALFORMED);
		}
	}
}

/* A host id length that disagrees with the bytes that follow it. */
static void test_decode_host_len_field(void **state)
{
	struct raw r = raw_heartbeat();
	__u8 *buf = big_buf();
	size_t len = raw_build(&r, buf);

	for (int hlen = 0; hlen <= 0xff; hlen++) {
		if (hlen == (int)strlen(HOST))
			continue;
		buf[56] = hlen;
		assert_verdict(decode1(buf, len), PC_MSG_MALFORMED);
	}
	buf[56] = strlen(HOST);
	assert_verdict(decode1(buf, len), PC_MSG_OK);
	free(buf);
}

/* Random damage to valid datagrams: never OK, never a crash (ASan). */
static void test_decode_mutations(void **state)
{
	struct pc_msg msgs[] = {
		base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE),
		base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN),
		policy_msg(true),
		policy_msg(false),
	};
	__u8 *buf = big_buf(), *mut = big_buf();

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		int len = encode(&msgs[i], sk1, buf);

		for (int iter = 0; iter < 2000; iter++) {
			size_t n = randombytes_uniform(len + 8);
			int flips = 1 + randombytes_uniform(4);

			memcpy(mut, buf, len);
			if (n > (size_t)len)
				randombytes_buf(mut + len, n - len);
			for (int f = 0; f < flips; f++)
				mut[randombytes_uniform(n ? n : 1)] ^=
					1 + randombytes_uniform(255);
			if (n == (size_t)len && !memcmp(mut, buf, len))
				continue;	/* flips cancelled out */
			if (decode1(mut, n) == PC_MSG_OK)
				fail_msg("mutated datagram (%zu bytes) accepted",
					 n);
		}
	}
	free(buf);
	free(mut);
}

/* ---- decode: signatures ---- */

static void test_sig_wrong_key(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN), out;
	__u8 *buf = big_buf();
	int len = encode(&m, sk1, buf), ki;

	/* It names pk1's id; pk1 is not among the trusted keys. */
	assert_verdict(decode_exact(buf, len, keys21, 1, &out, &ki),
		       PC_MSG_UNKNOWN_KEY);
	assert_verdict(decode_exact(buf, len, keys12, 0, &out, &ki),
		       PC_MSG_UNKNOWN_KEY);
	assert_verdict(decode_exact(buf, len, NULL, 0, &out, &ki),
		       PC_MSG_UNKNOWN_KEY);
	assert_int_equal(ki, -1);
	free(buf);
}

static void test_sig_second_key(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_RELEASE), out;
	__u8 *buf = big_buf();
	int len, ki;

	len = encode(&m, sk1, buf);
	ki = -1;
	assert_verdict(decode_exact(buf, len, keys21, 2, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, 1);
	assert_same_msg(&m, &out);
	ki = -1;
	assert_verdict(decode_exact(buf, len, keys12, 2, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, 0);

	len = encode(&m, sk2, buf);
	ki = -1;
	assert_verdict(decode_exact(buf, len, keys12, 2, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, 1);
	assert_verdict(decode_exact(buf, len, keys12, 1, &out, &ki),
		       PC_MSG_UNKNOWN_KEY);
	free(buf);
}

/* Keys past PC_MAX_KEYS have no replay state, so they are not trusted. */
static void test_sig_key_limit(void **state)
{
	__u8 keys[PC_MAX_KEYS + 1][PC_PK_LEN];
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE), out;
	__u8 *buf = big_buf();
	int len = encode(&m, sk1, buf), ki = -1;

	for (int i = 0; i < PC_MAX_KEYS; i++)
		memcpy(keys[i], pk2, PC_PK_LEN);
	memcpy(keys[PC_MAX_KEYS - 1], pk1, PC_PK_LEN);
	assert_verdict(decode_exact(buf, len, keys, PC_MAX_KEYS, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, PC_MAX_KEYS - 1);
	memcpy(keys[PC_MAX_KEYS - 1], pk2, PC_PK_LEN);
	memcpy(keys[PC_MAX_KEYS], pk1, PC_PK_LEN);
	assert_verdict(decode_exact(buf, len, keys, PC_MAX_KEYS + 1, &out,
				    &ki), PC_MSG_UNKNOWN_KEY);
	free(buf);
}

/*
 * One flipped bit anywhere: never OK. Where the bit lands in a field the
 * structure check does not constrain (seq, times, cmd_id, hash, the
 * signature itself) it must be the signature that refuses it.
 */
static void flip_every_bit(const struct pc_msg *m)
{
	__u8 *buf = big_buf();
	int len = encode(m, sk1, buf);
	size_t payload = HDR + strlen(m->host_id) + 4;

	for (int off = 0; off < len; off++) {
		bool key_field = off >= KEY_ID_OFF && off < KEY_ID_OFF + 8;
		bool free_field = (off >= 16 && off < 32) ||
				  (off >= 40 && off < 56) ||
				  (m->type == PC_MSG_COMMAND && off >= 32 &&
				   off < 40) ||
				  (m->has_hash && off >= (int)payload &&
				   off < (int)payload + PC_HASH_LEN) ||
				  off >= len - PC_SIG_LEN;

		for (int bit = 0; bit < 8; bit++) {
			enum pc_msg_verdict v;

			buf[off] ^= 1 << bit;
			v = decode1(buf, len);
			buf[off] ^= 1 << bit;
			if (v == PC_MSG_OK)
				fail_msg("bit %d of byte %d flipped: accepted",
					 bit, off);
			/* Another key's id: that key is not trusted. */
			if (key_field && v != PC_MSG_UNKNOWN_KEY)
				fail_msg("bit %d of key id byte %d flipped: %s, "
					 "expected unknown_key", bit, off,
					 pc_msg_verdict_name(v));
			if (free_field && v != PC_MSG_BAD_SIG)
				fail_msg("bit %d of byte %d flipped: %s, "
					 "expected bad_signature", bit, off,
					 pc_msg_verdict_name(v));
			if (!free_field && !key_field && v != PC_MSG_BAD_SIG &&
			    v != PC_MSG_MALFORMED)
				fail_msg("bit %d of byte %d flipped: %s", bit,
					 off, pc_msg_verdict_name(v));
		}
	}
	assert_verdict(decode1(buf, len), PC_MSG_OK);
	free(buf);
}

static void test_sig_bit_flips(void **state)
{
	struct pc_msg m = policy_msg(true);

	flip_every_bit(&m);
	m = policy_msg(false);
	flip_every_bit(&m);
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	flip_every_bit(&m);
}

/*
 * The key id decides which one key verifies: a datagram signed by a
 * trusted key but naming another trusted key is refused, because only the
 * named key is tried (one Ed25519 verification, whatever nkeys is).
 */
static void test_sig_named_key_only(void **state)
{
	struct raw r = raw_heartbeat();	/* signed with sk1 */
	__u8 *buf = big_buf(), other[PC_KEY_ID_LEN];
	size_t len;
	struct pc_msg out;
	int ki = 7;

	r.key_id = id2;
	len = raw_build(&r, buf);
	assert_verdict(decode_exact(buf, len, keys12, 2, &out, &ki),
		       PC_MSG_BAD_SIG);
	assert_int_equal(ki, -1);
	assert_verdict(decode_exact(buf, len, keys21, 2, &out, &ki),
		       PC_MSG_BAD_SIG);
	/* An id no trusted key has: no verification at all. */
	memcpy(other, id1, sizeof(other));
	other[7] ^= 0x80;
	r.key_id = other;
	len = raw_build(&r, buf);
	assert_verdict(decode_exact(buf, len, keys12, 2, &out, &ki),
		       PC_MSG_UNKNOWN_KEY);
	r.key_id = id1;
	len = raw_build(&r, buf);
	assert_verdict(decode_exact(buf, len, keys21, 2, &out, &ki),
		       PC_MSG_OK);
	assert_int_equal(ki, 1);
	free(buf);
}

/* Version 1 (no key id) is refused as such, signed or not. */
static void test_old_format(void **state)
{
	struct raw r = raw_heartbeat();
	__u8 *buf = big_buf();
	size_t len;

	r.version = 1;
	len = raw_build(&r, buf);
	assert_verdict(decode1(buf, len), PC_MSG_OLD_FORMAT);
	assert_verdict(decode1(buf, 5), PC_MSG_OLD_FORMAT);
	assert_verdict(decode1(buf, 4), PC_MSG_MALFORMED);
	free(buf);
}

static void test_key_id(void **state)
{
	__u8 h[PC_HASH_LEN], id[PC_KEY_ID_LEN];

	pc_sha256(pk1, PC_PK_LEN, h);
	pc_key_id(pk1, id);
	assert_memory_equal(id, h, PC_KEY_ID_LEN);
	assert_memory_not_equal(id1, id2, PC_KEY_ID_LEN);
}

/* ---- check ---- */

static void assert_check(const struct pc_msg *m, int ki, const char *host,
			 __u64 now, struct pc_replay *r,
			 enum pc_msg_verdict want)
{
	struct pc_replay before = *r;
	enum pc_msg_verdict v = pc_msg_check(m, ki, host, now, SKEW, r);

	assert_verdict(v, want);
	if (want != PC_MSG_OK) {
		/* a refusal leaves the replay state exactly as it was */
		assert_memory_equal(&before, r, sizeof(before));
	} else {
		assert_true(r->last_seq[ki][m->type - 1] == m->seq);
		before.last_seq[ki][m->type - 1] = m->seq;
		assert_memory_equal(&before, r, sizeof(before));
	}
}

static void test_check_ok_advances(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN);
	struct pc_replay r = {};

	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
	assert_true(r.last_seq[0][PC_MSG_COMMAND - 1] == 1000);
	assert_true(r.last_seq[0][PC_MSG_HEARTBEAT - 1] == 0);
	m.seq = 1001;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
	assert_true(r.last_seq[0][PC_MSG_COMMAND - 1] == 1001);
}

static void test_check_wrong_host(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	struct pc_replay r = {};

	assert_check(&m, 0, "web-2", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, "web-", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, "web-10", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, "WEB-1", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, "", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
}

static void test_check_stale(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	struct pc_replay r;

	/* our clock ahead of the sender's: the message is old */
	r = (struct pc_replay){};
	assert_check(&m, 0, HOST, T0 + SKEW + 1, &r, PC_MSG_STALE);
	assert_check(&m, 0, HOST, T0 + SKEW, &r, PC_MSG_OK);
	/* our clock behind: the message is from the future */
	r = (struct pc_replay){};
	assert_check(&m, 0, HOST, T0 - SKEW - 1, &r, PC_MSG_STALE);
	assert_check(&m, 0, HOST, T0 - SKEW, &r, PC_MSG_OK);
	/* extremes must not wrap into "fresh" */
	r = (struct pc_replay){};
	m.timestamp_ms = 0;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_STALE);
	m.timestamp_ms = UINT64_MAX;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_STALE);
	assert_check(&m, 0, HOST, 0, &r, PC_MSG_STALE);
	/* zero skew: only the exact millisecond */
	m.timestamp_ms = T0;
	assert_verdict(pc_msg_check(&m, 0, HOST, T0 + 1, 0, &r),
		       PC_MSG_STALE);
	assert_verdict(pc_msg_check(&m, 0, HOST, T0, 0, &r), PC_MSG_OK);
}

static void test_check_expired(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_QUARANTINE);
	struct pc_replay r = {};

	m.expires_ms = T0 + 10;
	assert_check(&m, 0, HOST, T0 + 10, &r, PC_MSG_EXPIRED);
	assert_check(&m, 0, HOST, T0 + 11, &r, PC_MSG_EXPIRED);
	assert_check(&m, 0, HOST, T0 + 9, &r, PC_MSG_OK);
	/* heartbeats carry expires 0 and never expire */
	m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
}

/* host, then stale, then expired, then replay */
static void test_check_order(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN);
	struct pc_replay r = {};

	r.last_seq[0][PC_MSG_COMMAND - 1] = m.seq;	/* a replay too */
	m.expires_ms = T0 - 1;				/* expired too */
	assert_check(&m, 0, "other", T0 + SKEW + 1, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, HOST, T0 + SKEW + 1, &r, PC_MSG_STALE);
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_EXPIRED);
	m.expires_ms = T0 + 1;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_REPLAY);
}

static void test_check_replay(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN);
	struct pc_replay r = {};

	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_REPLAY);	/* same */
	m.seq = 999;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_REPLAY);	/* lower */
	m.seq = 0;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_REPLAY);
	m.seq = 1001;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
	/* a fresh state still refuses seq 0: nothing is below it */
	r = (struct pc_replay){};
	m.seq = 0;
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_REPLAY);
}

static void test_check_replay_streams(void **state)
{
	struct pc_msg cmd = base_msg(PC_MSG_COMMAND, PC_CMD_LOCKDOWN);
	struct pc_msg hb = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	struct pc_replay r = {};

	cmd.seq = 5000;
	assert_check(&cmd, 0, HOST, T0, &r, PC_MSG_OK);
	/* heartbeats have their own sequence: lower than commands' is fine */
	hb.seq = 10;
	assert_check(&hb, 0, HOST, T0, &r, PC_MSG_OK);
	assert_check(&hb, 0, HOST, T0, &r, PC_MSG_REPLAY);
	/* and each key its own: key 1 starts from nothing */
	cmd.seq = 20;
	assert_check(&cmd, 1, HOST, T0, &r, PC_MSG_OK);
	assert_check(&cmd, 0, HOST, T0, &r, PC_MSG_REPLAY);
	assert_check(&hb, PC_MAX_KEYS - 1, HOST, T0, &r, PC_MSG_OK);
	assert_true(r.last_seq[0][0] == 10);
	assert_true(r.last_seq[0][1] == 5000);
	assert_true(r.last_seq[1][0] == 0);
	assert_true(r.last_seq[1][1] == 20);
	assert_true(r.last_seq[PC_MAX_KEYS - 1][0] == 10);
}

/* A refused message leaves no mark: once fixed, the same seq is fine. */
static void test_check_refusal_keeps_state(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_COMMAND, PC_CMD_RELEASE);
	struct pc_replay r = {};

	m.seq = 50;
	m.expires_ms = T0 + 10;
	assert_check(&m, 0, HOST, T0 + SKEW + 1, &r, PC_MSG_STALE);
	assert_check(&m, 0, HOST, T0 + 10, &r, PC_MSG_EXPIRED);
	assert_check(&m, 0, "nope", T0, &r, PC_MSG_WRONG_HOST);
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_OK);
}

static void test_check_bad_key_index(void **state)
{
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE);
	struct pc_replay r = {};

	assert_check(&m, -1, HOST, T0, &r, PC_MSG_MALFORMED);
	assert_check(&m, PC_MAX_KEYS, HOST, T0, &r, PC_MSG_MALFORMED);
	m.type = PC_MSG_DESIRED;	/* etcd only; would index past last_seq[k][] */
	assert_check(&m, 0, HOST, T0, &r, PC_MSG_MALFORMED);
	m.type = PC_MSG_HEARTBEAT;
	assert_check(&m, PC_MAX_KEYS - 1, HOST, T0, &r, PC_MSG_OK);
}

/* ---- keys ---- */

static void test_keygen_and_load(void **state)
{
	char path[256], pub[64], pub2[64], err[ERRLEN] = "";
	__u8 sk[PC_SK_LEN], pk[PC_PK_LEN], file[200], *buf = big_buf();
	struct pc_msg m = base_msg(PC_MSG_HEARTBEAT, PC_CMD_NONE), out;
	struct stat st;
	ssize_t n;
	int fd, len, ki;

	path_in_tmp(path, sizeof(path), "k1");
	assert_int_equal(pc_keygen(path, pub, sizeof(pub)), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	/* 88 base64 characters and a newline */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	n = read(fd, file, sizeof(file));
	close(fd);
	assert_int_equal(n, 89);
	assert_int_equal(file[88], '\n');
	assert_int_equal(strlen(pub), 44);

	assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)), 0);
	assert_int_equal(pc_key_public_of(sk, pub2, sizeof(pub2)), 0);
	assert_string_equal(pub, pub2);
	assert_int_equal(pc_key_public_of(sk, pub2, 44), -ENOSPC);
	assert_int_equal(pc_key_parse_public(pub, pk), 0);

	/* the pair works end to end */
	len = encode(&m, sk, buf);
	assert_verdict(pc_msg_decode(buf, len, (const __u8(*)[PC_PK_LEN])pk,
				     1, &out, &ki), PC_MSG_OK);
	free(buf);
}

static void test_keygen_no_overwrite(void **state)
{
	char path[256], pub[64];
	__u8 before[200], after[200];
	ssize_t n1, n2;
	int fd;

	path_in_tmp(path, sizeof(path), "k2");
	assert_int_equal(pc_keygen(path, pub, sizeof(pub)), 0);
	fd = open(path, O_RDONLY);
	n1 = read(fd, before, sizeof(before));
	close(fd);
	assert_int_equal(pc_keygen(path, pub, sizeof(pub)), -EEXIST);
	fd = open(path, O_RDONLY);
	n2 = read(fd, after, sizeof(after));
	close(fd);
	assert_int_equal(n1, n2);
	assert_memory_equal(before, after, n1);

	/* too small for the public key: refused before any file appears */
	path_in_tmp(path, sizeof(path), "k3");
	assert_int_equal(pc_keygen(path, pub, 44), -ENOSPC);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_key_perms(void **state)
{
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0620, 0602,
					  0666 };
	char path[256], pub[64], err[ERRLEN];
	__u8 sk[PC_SK_LEN];

	path_in_tmp(path, sizeof(path), "k4");
	assert_int_equal(pc_keygen(path, pub, sizeof(pub)), 0);
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		assert_int_equal(chmod(path, refused[i]), 0);
		err[0] = '\0';
		assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)),
				 -EACCES);
		assert_has(err, path);
		assert_has(err, "(chmod 600)");
	}
	assert_int_equal(chmod(path, 0644), 0);
	pc_key_load_secret(path, sk, err, sizeof(err));
	assert_has(err, "is readable by others (chmod 600)");
	assert_int_equal(chmod(path, 0400), 0);
	assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)), 0);
}

static void bad_key_file(const char *name, const char *text, int want)
{
	char path[256], err[ERRLEN] = "";
	__u8 sk[PC_SK_LEN];

	path_in_tmp(path, sizeof(path), name);
	write_text(path, text, 0600);
	assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)), want);
	assert_has(err, path);
}

static void test_key_bad_content(void **state)
{
	char b64[200], path[256], err[ERRLEN] = "";
	__u8 raw[PC_SK_LEN], sk[PC_SK_LEN];
	char *lots;

	bad_key_file("empty", "", -EINVAL);
	bad_key_file("garbage", "not a key\n", -EINVAL);
	/* a public key where the secret one belongs */
	sodium_bin2base64(b64, sizeof(b64), pk1, PC_PK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	bad_key_file("pub", b64, -EINVAL);
	/* 64 bytes, but the second half is not the first half's public key */
	memcpy(raw, sk1, PC_SK_LEN);
	raw[40] ^= 1;
	sodium_bin2base64(b64, sizeof(b64), raw, PC_SK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	bad_key_file("mismatch", b64, -EINVAL);
	/* the right key, then junk on a second line */
	sodium_bin2base64(b64, sizeof(b64), sk1, PC_SK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	strcat(b64, "\nAAAA\n");
	bad_key_file("junk", b64, -EINVAL);
	/* a very long file is refused, not half read */
	lots = malloc(4096);
	assert_non_null(lots);
	sodium_bin2base64(lots, 4096, sk1, PC_SK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	memset(lots + 88, '\n', 4000);
	lots[4088] = '\0';
	bad_key_file("long", lots, -EINVAL);
	free(lots);

	/* no newline at the end is fine, and gives the same key */
	sodium_bin2base64(b64, sizeof(b64), sk1, PC_SK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	path_in_tmp(path, sizeof(path), "nonl");
	write_text(path, b64, 0600);
	assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)), 0);
	assert_memory_equal(sk, sk1, PC_SK_LEN);

	path_in_tmp(path, sizeof(path), "missing");
	assert_int_equal(pc_key_load_secret(path, sk, err, sizeof(err)),
			 -ENOENT);
	assert_has(err, path);
	assert_true(pc_key_load_secret(tmpdir, sk, err, sizeof(err)) < 0);
}

static void test_key_parse_public(void **state)
{
	char b64[200];
	__u8 pk[PC_PK_LEN], raw[40] = { 0 };

	sodium_bin2base64(b64, sizeof(b64), pk1, PC_PK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	assert_int_equal(pc_key_parse_public(b64, pk), 0);
	assert_memory_equal(pk, pk1, PC_PK_LEN);

	b64[43] = '\0';		/* padding dropped */
	assert_int_equal(pc_key_parse_public(b64, pk), -EINVAL);
	for (size_t n = 0; n <= sizeof(raw); n++) {
		if (n == PC_PK_LEN)
			continue;
		sodium_bin2base64(b64, sizeof(b64), raw, n,
				  sodium_base64_VARIANT_ORIGINAL);
		assert_int_equal(pc_key_parse_public(b64, pk), -EINVAL);
	}
	sodium_bin2base64(b64, sizeof(b64), pk1, PC_PK_LEN,
			  sodium_base64_VARIANT_ORIGINAL);
	strcat(b64, "\n");
	assert_int_equal(pc_key_parse_public(b64, pk), -EINVAL);
	b64[0] = '*';
	b64[44] = '\0';
	assert_int_equal(pc_key_parse_public(b64, pk), -EINVAL);
	/* URL-safe alphabet is a different variant */
	assert_int_equal(pc_key_parse_public(
		"____________________________________________", pk), -EINVAL);
	assert_int_equal(pc_key_parse_public(NULL, pk), -EINVAL);
}

static void test_sha256_hex(void **state)
{
	__u8 h[PC_HASH_LEN];
	char hex[2 * PC_HASH_LEN + 1];
	static const __u8 bytes[] = { 0x00, 0x0f, 0xa5, 0xff };
	char small[9];

	pc_sha256("abc", 3, h);
	pc_hex(h, sizeof(h), hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
				 "b00361a396177a9cb410ff61f20015ad");
	pc_sha256("", 0, h);
	pc_hex(h, sizeof(h), hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
				 "27ae41e4649b934ca495991b7852b855");
	memset(small, 'X', sizeof(small));
	pc_hex(bytes, sizeof(bytes), small);
	assert_string_equal(small, "000fa5ff");
	pc_hex(bytes, 0, small);
	assert_string_equal(small, "");
}

static int setup(void **state)
{
	if (pc_crypto_init())
		return -1;
	crypto_sign_keypair(pk1, sk1);
	crypto_sign_keypair(pk2, sk2);
	memcpy(keys12[0], pk1, PC_PK_LEN);
	memcpy(keys12[1], pk2, PC_PK_LEN);
	memcpy(keys21[0], pk2, PC_PK_LEN);
	memcpy(keys21[1], pk1, PC_PK_LEN);
	pc_key_id(pk1, id1);
	pc_key_id(pk2, id2);
	if (!mkdtemp(tmpdir))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	char cmd[sizeof(tmpdir) + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) ? -1 : 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_verdict_names),
		cmocka_unit_test(test_cmd_names),
		cmocka_unit_test(test_roundtrip_heartbeat),
		cmocka_unit_test(test_roundtrip_commands),
		cmocka_unit_test(test_roundtrip_policy),
		cmocka_unit_test(test_roundtrip_host_ids),
		cmocka_unit_test(test_roundtrip_max_size),
		cmocka_unit_test(test_wire_layout),
		cmocka_unit_test(test_encode_invalid),
		cmocka_unit_test(test_encode_nospace),
		cmocka_unit_test(test_decode_truncated),
		cmocka_unit_test(test_decode_null),
		cmocka_unit_test(test_raw_builder_valid),
		cmocka_unit_test(test_decode_bad_header),
		cmocka_unit_test(test_decode_bad_cmd),
		cmocka_unit_test(test_decode_bad_flags),
		cmocka_unit_test(test_decode_bad_payload_len),
		cmocka_unit_test(test_decode_trailing),
		cmocka_unit_test(test_decode_too_long),
		cmocka_unit_test(test_decode_bad_host),
		cmocka_unit_test(test_decode_host_len_field),
		cmocka_unit_test(test_decode_mutations),
		cmocka_unit_test(test_sig_wrong_key),
		cmocka_unit_test(test_sig_second_key),
		cmocka_unit_test(test_sig_key_limit),
		cmocka_unit_test(test_sig_bit_flips),
		cmocka_unit_test(test_sig_named_key_only),
		cmocka_unit_test(test_old_format),
		cmocka_unit_test(test_key_id),
		cmocka_unit_test(test_check_ok_advances),
		cmocka_unit_test(test_check_wrong_host),
		cmocka_unit_test(test_check_stale),
		cmocka_unit_test(test_check_expired),
		cmocka_unit_test(test_check_order),
		cmocka_unit_test(test_check_replay),
		cmocka_unit_test(test_check_replay_streams),
		cmocka_unit_test(test_check_refusal_keeps_state),
		cmocka_unit_test(test_check_bad_key_index),
		cmocka_unit_test(test_keygen_and_load),
		cmocka_unit_test(test_keygen_no_overwrite),
		cmocka_unit_test(test_key_perms),
		cmocka_unit_test(test_key_bad_content),
		cmocka_unit_test(test_key_parse_public),
		cmocka_unit_test(test_sha256_hex),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}

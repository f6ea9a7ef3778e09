// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Controller messages: encode, decode, verify, check; and the key files.
 *
 * Wire format (all integers big-endian):
 *
 * off  size  field
 * 0    4     magic "PCM1"
 * 4    1     version = 2
 * 5    1     type (1 heartbeat, 2 command, 3 fleet desired state,
 *                4 fleet heartbeat)
 * 6    1     cmd (0 none, 1 lockdown, 2 quarantine, 3 release, 4 apply-policy)
 * 7    1     flags: bit0 policy inline, bit1 policy by hash (at most one; only with apply-policy; apply-policy needs exactly one)
 * 8    8     key id: the first 8 bytes of SHA-256 of the signer's public key
 * 16   8     seq
 * 24   8     timestamp_ms
 * 32   8     expires_ms
 * 40   16    cmd_id
 * 56   1     host_id length L (1..63)
 * 57   L     host_id bytes (printable ASCII 0x21..0x7e only)
 * 57+L 4     payload length P (hash: exactly 32; inline: 1..PC_MSG_MAX-ish; none: 0)
 * 61+L P     payload
 * ..   64    Ed25519 signature over every byte before it
 *
 * The total must equal the datagram length exactly, and never exceed
 * PC_MSG_MAX; that bound is what limits an inline policy. Heartbeats carry
 * cmd 0, expires 0 and no payload. Undefined flag bits are refused rather
 * than ignored, so a later version cannot be half-understood by this one.
 *
 * Decoding checks structure before the signature so that a malformed
 * datagram costs no Ed25519 work, and reads only through a bounds-checked
 * cursor: every byte it touches was first proven to lie inside the buffer.
 * The key id names the one key to verify with: a forged datagram costs at
 * most one Ed25519 verification however many keys are trusted, and none
 * if it names a key we do not trust. Version 1 (no key id) is refused.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sodium.h>
#include "msg.h"

#define MSG_MAGIC		"PCM1"
#define MSG_VERSION		2
#define MSG_VERSION_OLD		1	/* no key id: refused as old_format */
#define MSG_FLAG_INLINE		0x01
#define MSG_FLAG_HASH		0x02
#define MSG_FLAGS_KNOWN		(MSG_FLAG_INLINE | MSG_FLAG_HASH)
#define MSG_FIXED_LEN		57	/* through the host id length byte */
#define MSG_HOST_MAX		(PC_HOST_ID_LEN - 1)
/* Everything but host id and payload: header, payload length, signature. */
#define MSG_OVERHEAD		(MSG_FIXED_LEN + 4 + PC_SIG_LEN)

/* Both include the NUL: 89 and 45. */
#define SK_B64_LEN		sodium_base64_ENCODED_LEN(PC_SK_LEN, \
					sodium_base64_VARIANT_ORIGINAL)
#define PK_B64_LEN		sodium_base64_ENCODED_LEN(PC_PK_LEN, \
					sodium_base64_VARIANT_ORIGINAL)
#define KEY_FILE_MAX		256

static const char *const verdict_names[PC_MSG_VERDICT_COUNT] = {
	[PC_MSG_OK] = "ok",
	[PC_MSG_MALFORMED] = "malformed",
	[PC_MSG_BAD_SIG] = "bad_signature",
	[PC_MSG_WRONG_HOST] = "wrong_host",
	[PC_MSG_STALE] = "stale",
	[PC_MSG_REPLAY] = "replay",
	[PC_MSG_EXPIRED] = "expired",
	[PC_MSG_OLD_FORMAT] = "old_format",
	[PC_MSG_UNKNOWN_KEY] = "unknown_key",
};

static const char *const cmd_names[] = {
	[PC_CMD_NONE] = "none",
	[PC_CMD_LOCKDOWN] = "lockdown",
	[PC_CMD_QUARANTINE] = "quarantine",
	[PC_CMD_RELEASE] = "release",
	[PC_CMD_APPLY_POLICY] = "apply-policy",
};

#define NCMDS	(sizeof(cmd_names) / sizeof(cmd_names[0]))

const char *pc_msg_verdict_name(enum pc_msg_verdict v)
{
	if ((unsigned int)v >= PC_MSG_VERDICT_COUNT)
		return "unknown";
	return verdict_names[v];
}

const char *pc_cmd_name(enum pc_cmd c)
{
	if ((unsigned int)c >= NCMDS)
		return "unknown";
	return cmd_names[c];
}

int pc_cmd_parse(const char *s, enum pc_cmd *out)
{
	if (!s)
		return -EINVAL;
	for (unsigned int i = 0; i < NCMDS; i++) {
		if (!strcmp(s, cmd_names[i])) {
			*out = i;
			return 0;
		}
	}
	return -EINVAL;
}

int pc_crypto_init(void)
{
	/* 1 means already initialised, which is as good as 0. */
	return sodium_init() < 0 ? -EIO : 0;
}

static bool host_char_ok(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e;
}

static bool host_id_ok(const char *s, size_t len)
{
	if (len < 1 || len > MSG_HOST_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!host_char_ok(s[i]))
			return false;
	return true;
}

static void put_be32(__u8 *p, __u32 v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static void put_be64(__u8 *p, __u64 v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = v & 0xff;
}

static __u32 get_be32(const __u8 *p)
{
	__u32 v = 0;

	for (int i = 0; i < 4; i++)
		v = v << 8 | p[i];
	return v;
}

static __u64 get_be64(const __u8 *p)
{
	__u64 v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * The invariants shared by encode and decode, on a decoded or to-be-encoded
 * message; flags are derived from has_hash/policy so they cannot disagree.
 */
static bool msg_semantics_ok(const struct pc_msg *m)
{
	bool inline_policy = m->policy_len > 0 || m->policy;

	switch (m->type) {
	case PC_MSG_HEARTBEAT:
		return m->cmd == PC_CMD_NONE && m->expires_ms == 0 &&
		       !m->has_hash && !inline_policy;
	case PC_MSG_COMMAND:
		if (m->cmd < PC_CMD_LOCKDOWN || m->cmd > PC_CMD_APPLY_POLICY)
			return false;
		if (m->cmd != PC_CMD_APPLY_POLICY)
			return !m->has_hash && !inline_policy;
		/* apply-policy: exactly one of hash or a non-empty inline. */
		if (m->has_hash)
			return !inline_policy;
		return m->policy && m->policy_len > 0;
	case PC_MSG_DESIRED:
		/* A mode (none: normal; release: normal, lifting local
		 * escalations), optionally a policy by hash. */
		return m->cmd <= PC_CMD_RELEASE &&
		       m->expires_ms == 0 && !inline_policy;
	case PC_MSG_FLEET_HEARTBEAT:
		/* Its own type, not a UDP heartbeat: neither can stand in
		 * for the other, whatever the host id says. */
		return m->cmd == PC_CMD_NONE && m->expires_ms == 0 &&
		       !m->has_hash && !inline_policy;
	default:
		return false;
	}
}

int pc_msg_encode(const struct pc_msg *m, const __u8 sk[PC_SK_LEN], __u8 *buf,
		  size_t buflen)
{
	size_t hlen, plen, total, off;
	__u8 pk[PC_PK_LEN];
	__u8 flags = 0;

	if (!m || !sk || !buf)
		return -EINVAL;
	hlen = strnlen(m->host_id, PC_HOST_ID_LEN);
	if (!host_id_ok(m->host_id, hlen) || !msg_semantics_ok(m))
		return -EINVAL;
	if (m->has_hash) {
		flags = MSG_FLAG_HASH;
		plen = PC_HASH_LEN;
	} else if (m->policy) {
		flags = MSG_FLAG_INLINE;
		plen = m->policy_len;
	} else {
		plen = 0;
	}
	/* Compared before adding so a huge policy_len cannot wrap. */
	if (plen > PC_MSG_MAX - MSG_OVERHEAD - hlen)
		return -EINVAL;
	total = MSG_OVERHEAD + hlen + plen;
	if (buflen < total)
		return -ENOSPC;

	memcpy(buf, MSG_MAGIC, 4);	/* NOLINT(bugprone-not-null-terminated-result): 4 magic bytes, no NUL on the wire */
	buf[4] = MSG_VERSION;
	buf[5] = m->type;
	buf[6] = m->cmd;
	buf[7] = flags;
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	pc_key_id(pk, buf + 8);
	put_be64(buf + 16, m->seq);
	put_be64(buf + 24, m->timestamp_ms);
	put_be64(buf + 32, m->expires_ms);
	memcpy(buf + 40, m->cmd_id, 16);
	buf[56] = hlen;
	memcpy(buf + MSG_FIXED_LEN, m->host_id, hlen);
	off = MSG_FIXED_LEN + hlen;
	put_be32(buf + off, plen);
	off += 4;
	if (m->has_hash)
		memcpy(buf + off, m->policy_hash, PC_HASH_LEN);
	else if (plen)
		memcpy(buf + off, m->policy, plen);
	off += plen;
	crypto_sign_detached(buf + off, NULL, buf, off, sk);
	return total;
}

/* A read cursor: take() hands out n bytes only if n bytes remain. */
struct rd {
	const __u8 *p;
	size_t left;
};

static const __u8 *take(struct rd *r, size_t n)
{
	const __u8 *p = r->p;

	if (n > r->left)
		return NULL;
	r->p += n;
	r->left -= n;
	return p;
}

/*
 * Structure only: fills *m (and key_id, 8 bytes, if not NULL) and returns
 * the signed length, or 0.
 */
static size_t msg_parse(const __u8 *buf, size_t len, struct pc_msg *m,
			__u8 *key_id)
{
	struct rd r = { .p = buf, .left = len };
	const __u8 *h, *p;
	size_t hlen, plen;
	__u8 flags;

	memset(m, 0, sizeof(*m));
	if (len > PC_MSG_MAX)
		return 0;
	h = take(&r, MSG_FIXED_LEN);
	if (!h || memcmp(h, MSG_MAGIC, 4) || h[4] != MSG_VERSION)
		return 0;
	m->type = h[5];
	m->cmd = h[6];
	flags = h[7];
	if (key_id)
		memcpy(key_id, h + 8, PC_KEY_ID_LEN);
	m->seq = get_be64(h + 16);
	m->timestamp_ms = get_be64(h + 24);
	m->expires_ms = get_be64(h + 32);
	memcpy(m->cmd_id, h + 40, 16);
	hlen = h[56];

	p = take(&r, hlen);
	if (!p || !host_id_ok((const char *)p, hlen))
		return 0;
	memcpy(m->host_id, p, hlen);

	p = take(&r, 4);
	if (!p)
		return 0;
	plen = get_be32(p);
	/* Exactly the signature must follow the payload: no more, no less. */
	if (r.left < PC_SIG_LEN || r.left - PC_SIG_LEN != plen)
		return 0;
	p = take(&r, plen);

	if (flags & ~MSG_FLAGS_KNOWN ||
	    flags == (MSG_FLAG_INLINE | MSG_FLAG_HASH))
		return 0;
	if (flags & MSG_FLAG_HASH) {
		if (plen != PC_HASH_LEN)
			return 0;
		m->has_hash = true;
		memcpy(m->policy_hash, p, PC_HASH_LEN);
	} else if (flags & MSG_FLAG_INLINE) {
		if (plen == 0)
			return 0;
		m->policy = (const char *)p;
		m->policy_len = plen;
	} else if (plen) {
		return 0;
	}
	if (!msg_semantics_ok(m))
		return 0;
	return len - PC_SIG_LEN;
}

bool pc_msg_parse(const __u8 *buf, size_t len, struct pc_msg *out)
{
	return buf && out && msg_parse(buf, len, out, NULL) != 0;
}

enum pc_msg_verdict pc_msg_decode(const __u8 *buf, size_t len,
				  const __u8 (*keys)[PC_PK_LEN], size_t nkeys,
				  struct pc_msg *out, int *key_index)
{
	__u8 id[PC_KEY_ID_LEN], kid[PC_KEY_ID_LEN];
	struct pc_msg m;
	size_t signed_len, i;

	if (key_index)
		*key_index = -1;
	if (!out)
		return PC_MSG_MALFORMED;
	memset(out, 0, sizeof(*out));
	if (!buf)
		return PC_MSG_MALFORMED;
	if (len >= 5 && !memcmp(buf, MSG_MAGIC, 4) && buf[4] == MSG_VERSION_OLD)
		return PC_MSG_OLD_FORMAT;
	signed_len = msg_parse(buf, len, &m, id);
	if (!signed_len)
		return PC_MSG_MALFORMED;
	/*
	 * Replay state only has room for PC_MAX_KEYS keys, so a key past that
	 * could never be checked for replay: it is not trusted at all.
	 */
	if (nkeys > PC_MAX_KEYS)
		nkeys = PC_MAX_KEYS;
	/* The first key with the named id; two trusted keys sharing an id
	 * (one chance in 2^64) would leave the second unusable, not weaker. */
	for (i = 0; keys && i < nkeys; i++) {
		pc_key_id(keys[i], kid);
		if (!memcmp(kid, id, PC_KEY_ID_LEN))
			break;
	}
	if (!keys || i == nkeys)
		return PC_MSG_UNKNOWN_KEY;
	/* The one Ed25519 verification a datagram can cost. */
	if (crypto_sign_verify_detached(buf + signed_len, buf, signed_len,
					keys[i]))
		return PC_MSG_BAD_SIG;
	*out = m;
	if (key_index)
		*key_index = i;
	return PC_MSG_OK;
}

enum pc_msg_verdict pc_msg_check(const struct pc_msg *m, int key_index,
				 const char *host_id, __u64 now_ms,
				 __u64 max_skew_ms, struct pc_replay *r)
{
	__u64 skew, *last;

	if (!m || !r || key_index < 0 || key_index >= PC_MAX_KEYS ||
	    (m->type != PC_MSG_HEARTBEAT && m->type != PC_MSG_COMMAND))
		return PC_MSG_MALFORMED;
	if (!host_id || strncmp(m->host_id, host_id, PC_HOST_ID_LEN))
		return PC_MSG_WRONG_HOST;
	skew = m->timestamp_ms > now_ms ? m->timestamp_ms - now_ms :
					  now_ms - m->timestamp_ms;
	if (skew > max_skew_ms)
		return PC_MSG_STALE;
	if (m->type == PC_MSG_COMMAND && m->expires_ms <= now_ms)
		return PC_MSG_EXPIRED;
	last = &r->last_seq[key_index][m->type - 1];
	if (m->seq <= *last)
		return PC_MSG_REPLAY;
	*last = m->seq;
	return PC_MSG_OK;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= n;
	}
	return 0;
}

int pc_key_public_of(const __u8 sk[PC_SK_LEN], char *pub_b64, size_t pub_len)
{
	__u8 pk[PC_PK_LEN];

	if (pub_len < PK_B64_LEN)
		return -ENOSPC;
	/* A libsodium secret key carries its public half in bytes 32..63. */
	crypto_sign_ed25519_sk_to_pk(pk, sk);
	sodium_bin2base64(pub_b64, pub_len, pk, sizeof(pk),
			  sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

int pc_keygen(const char *secret_path, char *pub_b64, size_t pub_len)
{
	__u8 pk[PC_PK_LEN], sk[PC_SK_LEN];
	char b64[SK_B64_LEN + 1];
	size_t n;
	int fd, err;

	if (!secret_path || !pub_b64)
		return -EINVAL;
	/* Checked first so a too-small buffer leaves no file behind. */
	if (pub_len < PK_B64_LEN)
		return -ENOSPC;
	/* O_EXCL: an existing key may be in use; overwriting it is never
	 * what anyone meant. */
	fd = open(secret_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	crypto_sign_keypair(pk, sk);
	sodium_bin2base64(b64, sizeof(b64), sk, sizeof(sk),
			  sodium_base64_VARIANT_ORIGINAL);
	n = strlen(b64);
	b64[n] = '\n';
	err = write_all(fd, b64, n + 1);
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	sodium_memzero(b64, sizeof(b64));
	sodium_memzero(sk, sizeof(sk));
	if (err) {
		/* A half-written key file would only fail to load later. */
		unlink(secret_path);
		return err;
	}
	sodium_bin2base64(pub_b64, pub_len, pk, sizeof(pk),
			  sodium_base64_VARIANT_ORIGINAL);
	return 0;
}

/* Decode one base64 line of exactly want bytes; whitespace already gone. */
static int b64_exact(const char *s, size_t slen, __u8 *out, size_t want)
{
	const char *end;
	size_t n;

	if (sodium_base642bin(out, want, s, slen, NULL, &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) ||
	    n != want || end != s + slen)
		return -EINVAL;
	return 0;
}

int pc_key_load_secret(const char *path, __u8 sk[PC_SK_LEN], char *err,
		       size_t errlen)
{
	__u8 tmp[PC_SK_LEN], seed[crypto_sign_SEEDBYTES];
	__u8 pk[PC_PK_LEN], sk2[PC_SK_LEN];
	char buf[KEY_FILE_MAX + 1];
	struct stat st;
	ssize_t n;
	size_t len = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "Couldn't open key file %s: %s", path,
			 strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st)) {
		ret = -errno;
		snprintf(err, errlen, "Couldn't stat key file %s: %s", path,
			 strerror(-ret));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		snprintf(err, errlen, "key file %s is not a regular file", path);
		goto out;
	}
	/* Like ssh: a key others can read may already be someone else's. */
	if (st.st_mode & (S_IRGRP | S_IROTH)) {
		ret = -EACCES;
		snprintf(err, errlen,
			 "key file %s is readable by others (chmod 600)", path);
		goto out;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		ret = -EACCES;
		snprintf(err, errlen,
			 "key file %s is writable by others (chmod 600)", path);
		goto out;
	}
	while (len < sizeof(buf)) {
		n = read(fd, buf + len, sizeof(buf) - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "Couldn't read key file %s: %s",
				 path, strerror(-ret));
			goto out;
		}
		if (n == 0)
			break;
		len += n;
	}
	if (len == sizeof(buf)) {
		ret = -EINVAL;
		snprintf(err, errlen, "key file %s: too long for a key (%d bytes max)",
			 path, KEY_FILE_MAX);
		goto out;
	}
	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' ||
		       buf[len - 1] == ' ' || buf[len - 1] == '\t'))
		len--;
	if (b64_exact(buf, len, tmp, sizeof(tmp))) {
		ret = -EINVAL;
		snprintf(err, errlen,
			 "key file %s: not a secret key (want one line: base64 "
			 "of the 64-byte Ed25519 secret key, as written by "
			 "'portcullis keygen')", path);
		goto out;
	}
	/*
	 * The second half must be the public key of the first: a corrupted
	 * or hand-edited file would otherwise sign with one key and claim
	 * another, and every message would be refused with no hint why.
	 */
	crypto_sign_ed25519_sk_to_seed(seed, tmp);
	crypto_sign_seed_keypair(pk, sk2, seed);
	if (sodium_memcmp(sk2, tmp, sizeof(tmp))) {
		ret = -EINVAL;
		snprintf(err, errlen,
			 "key file %s: public half does not match the secret "
			 "half (file corrupted?)", path);
		goto out;
	}
	memcpy(sk, tmp, PC_SK_LEN);
	ret = 0;
out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(tmp, sizeof(tmp));
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk2, sizeof(sk2));
	close(fd);
	return ret;
}

int pc_key_parse_public(const char *b64, __u8 pk[PC_PK_LEN])
{
	if (!b64 || !pk)
		return -EINVAL;
	return b64_exact(b64, strlen(b64), pk, PC_PK_LEN);
}

void pc_sha256(const void *data, size_t len, __u8 out[PC_HASH_LEN])
{
	crypto_hash_sha256(out, data, len);
}

void pc_key_id(const __u8 pk[PC_PK_LEN], __u8 id[PC_KEY_ID_LEN])
{
	__u8 h[PC_HASH_LEN];

	crypto_hash_sha256(h, pk, PC_PK_LEN);
	memcpy(id, h, PC_KEY_ID_LEN);
}

void pc_hex(const __u8 *data, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[data[i] >> 4];
		out[2 * i + 1] = digits[data[i] & 0xf];
	}
	out[2 * len] = '\0';
}

static int nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int pc_unhex(const char *s, __u8 *out, size_t n)
{
	/* Exactly 2n hex digits: sscanf's %x would take a sign or a space. */
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int hi = nibble(s[2 * i]), lo = nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = hi << 4 | lo;
	}
	return 0;
}

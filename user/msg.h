/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Controller messages: heartbeats and commands, signed with Ed25519
 * (libsodium), carried in one UDP datagram each. Wire format in README
 * "Controller protocol".
 */
#ifndef PC_MSG_H
#define PC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>

#define PC_MSG_MAX		65000	/* bytes on the wire, whole datagram */
#define PC_HOST_ID_LEN		64	/* host id, NUL included */
#define PC_MAX_KEYS		8	/* controller public keys an agent trusts */
#define PC_PK_LEN		32
#define PC_SK_LEN		64
#define PC_SIG_LEN		64
#define PC_HASH_LEN		32	/* SHA-256 */
#define PC_KEY_ID_LEN		8	/* SHA-256 of the public key, first bytes */

enum pc_msg_type {
	PC_MSG_HEARTBEAT = 1,
	PC_MSG_COMMAND = 2,
	PC_MSG_DESIRED = 3,	/* fleet desired state, stored in etcd */
	PC_MSG_FLEET_HEARTBEAT = 4,	/* the fleet controller's liveness, in etcd */
};

enum pc_cmd {
	PC_CMD_NONE = 0,		/* heartbeats */
	PC_CMD_LOCKDOWN = 1,
	PC_CMD_QUARANTINE = 2,
	PC_CMD_RELEASE = 3,
	PC_CMD_APPLY_POLICY = 4,
};

/* Why a message was refused (PC_MSG_OK: it was not). */
enum pc_msg_verdict {
	PC_MSG_OK = 0,
	PC_MSG_MALFORMED,	/* truncated, bad magic/version/type/lengths */
	PC_MSG_BAD_SIG,		/* no trusted key verifies it */
	PC_MSG_WRONG_HOST,	/* addressed to another host id */
	PC_MSG_STALE,		/* timestamp too far from our clock */
	PC_MSG_REPLAY,		/* sequence not above the last accepted one */
	PC_MSG_EXPIRED,		/* command past its expiry */
	PC_MSG_OLD_FORMAT,	/* wire version 1: no key id */
	PC_MSG_UNKNOWN_KEY,	/* names a key id we do not trust */
	PC_MSG_VERDICT_COUNT,
};

struct pc_msg {
	enum pc_msg_type type;
	enum pc_cmd cmd;
	__u64 seq;		/* strictly increasing per key and type */
	__u64 timestamp_ms;	/* sender's wall clock, Unix ms */
	__u64 expires_ms;	/* commands: Unix ms; heartbeats: 0 */
	__u8 cmd_id[16];	/* random, for the audit trail */
	char host_id[PC_HOST_ID_LEN];
	/* apply-policy: by hash, or inline YAML (points into the buffer
	 * given to pc_msg_decode, or owned by the caller for encode). */
	bool has_hash;
	__u8 policy_hash[PC_HASH_LEN];
	const char *policy;
	size_t policy_len;
};

/* Replay state: the last accepted sequence per key and message type. */
struct pc_replay {
	__u64 last_seq[PC_MAX_KEYS][2];
};

const char *pc_msg_verdict_name(enum pc_msg_verdict v);
const char *pc_cmd_name(enum pc_cmd c);
int pc_cmd_parse(const char *s, enum pc_cmd *out);

/* 0 once libsodium is ready; call before anything below. */
int pc_crypto_init(void);

/* Serialise and sign; returns the length written or a negative errno. */
int pc_msg_encode(const struct pc_msg *m, const __u8 sk[PC_SK_LEN], __u8 *buf,
		  size_t buflen);

/*
 * Parse and verify with the trusted key the datagram's key id names (one
 * Ed25519 verification at most). Only structure and signature are checked
 * here; *key_index says which key signed it. Never reads past len,
 * whatever the bytes.
 */
enum pc_msg_verdict pc_msg_decode(const __u8 *buf, size_t len,
				  const __u8 (*keys)[PC_PK_LEN], size_t nkeys,
				  struct pc_msg *out, int *key_index);

/* Structure only, no signature check: for showing what is there. */
bool pc_msg_parse(const __u8 *buf, size_t len, struct pc_msg *out);

/*
 * Host, freshness, expiry and replay of a verified message. On PC_MSG_OK
 * the replay state advances; on any refusal it is left as it was.
 */
enum pc_msg_verdict pc_msg_check(const struct pc_msg *m, int key_index,
				 const char *host_id, __u64 now_ms,
				 __u64 max_skew_ms, struct pc_replay *r);

/* Keys: secret key files hold the 64-byte libsodium secret key in base64
 * (one line), mode 0600; public keys are 32 bytes in base64. */
int pc_keygen(const char *secret_path, char *pub_b64, size_t pub_len);
int pc_key_load_secret(const char *path, __u8 sk[PC_SK_LEN], char *err,
		       size_t errlen);
int pc_key_parse_public(const char *b64, __u8 pk[PC_PK_LEN]);
int pc_key_public_of(const __u8 sk[PC_SK_LEN], char *pub_b64, size_t pub_len);
void pc_sha256(const void *data, size_t len, __u8 out[PC_HASH_LEN]);
/* The key id messages carry: SHA-256 of the public key, first 8 bytes. */
void pc_key_id(const __u8 pk[PC_PK_LEN], __u8 id[PC_KEY_ID_LEN]);
void pc_hex(const __u8 *data, size_t len, char *out);	/* 2*len+1 bytes */
/* Exactly 2*n hex digits into n bytes; -EINVAL otherwise. */
int pc_unhex(const char *s, __u8 *out, size_t n);

#endif /* PC_MSG_H */

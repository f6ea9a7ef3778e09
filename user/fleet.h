/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Fleet mode: desired state in etcd. The key layout, the signed envelopes
 * that carry desired state, how an agent resolves what applies to it, and
 * the state it reports back. No I/O here (etcd.c talks to etcd,
 * agent_fleet.c runs the agent's side, fleet_cli.c the controller's).
 *
 * Keys under PREFIX (README "Fleet mode"):
 *   PREFIX/desired/fleet        envelope for every host
 *   PREFIX/desired/group/G      envelope for the members of group G
 *   PREFIX/desired/host/H       envelope for host H
 *   PREFIX/policies/SHA256HEX   policy YAML, named by its hash
 *   PREFIX/status/H             the agent's reported state (JSON)
 *   PREFIX/alive/H              held by the agent's lease
 *   PREFIX/heartbeat            the controller's signed heartbeat
 */
#ifndef PC_FLEET_H
#define PC_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "msg.h"
#include "portcullis.h"

#define PC_FLEET_DEFAULT_PREFIX	"/portcullis"
#define PC_FLEET_PREFIX_MAX	128
#define PC_FLEET_NAME_MAX	57	/* "group/" + name fits a message host id */
#define PC_FLEET_MAX_GROUPS	8
#define PC_FLEET_TARGET_LEN	PC_HOST_ID_LEN
#define PC_FLEET_MAX_TARGETS	(PC_FLEET_MAX_GROUPS + 2)	/* fleet, groups, host */
#define PC_FLEET_KEY_MAX	(PC_FLEET_PREFIX_MAX + 96)
#define PC_FLEET_VERSION	"0.7"

/* Host ids and group names: 1..57 of [A-Za-z0-9_.:-], not starting
 * with '-' or '.'. */
bool pc_fleet_name_ok(const char *s);
/* "/x" or "/x/y": absolute, no trailing slash, no empty part. */
bool pc_fleet_prefix_ok(const char *s);

/* An etcd client URL: http(s)://HOST:PORT or http(s)://[IPV6]:PORT. */
bool pc_fleet_endpoint_ok(const char *s);

/* Targets: "fleet", "group/G", "host/H". */
void pc_fleet_target(char *buf, size_t len, const char *kind, const char *name);
/* PREFIX/desired/TARGET; NULL-safe, always NUL-terminates. */
void pc_fleet_desired_key(char *buf, size_t len, const char *prefix,
			  const char *target);
/* PREFIX/KIND/NAME for status, alive and policies. */
void pc_fleet_key(char *buf, size_t len, const char *prefix, const char *kind,
		  const char *name);
/* The target of a desired key under prefix, or -EINVAL. */
int pc_fleet_target_of_key(const char *prefix, const char *key, char *target,
			   size_t len);

/* One desired state: what a signed envelope says. */
struct pc_fleet_desired {
	enum pc_mode mode;
	bool release;			/* normal, and an operator's explicit release */
	bool has_policy;
	__u8 policy_hash[PC_HASH_LEN];
	__u64 seq;			/* strictly increasing per key */
	__u64 timestamp_ms;		/* when the controller signed it */
	__u8 id[16];			/* random, for the audit trail */
	char target[PC_FLEET_TARGET_LEN];
};

int pc_fleet_encode(const struct pc_fleet_desired *d, const __u8 sk[PC_SK_LEN],
		    __u8 *buf, size_t len);
/* Structure and signature; anything but a desired-state message (a UDP
 * command copied into etcd, say) is PC_MSG_MALFORMED. */
enum pc_msg_verdict pc_fleet_decode(const __u8 *buf, size_t len,
				    const __u8 (*keys)[PC_PK_LEN], size_t nkeys,
				    struct pc_fleet_desired *out);

/* Structure only, signature unchecked (display, never enforcement). */
bool pc_fleet_peek(const __u8 *buf, size_t len, struct pc_fleet_desired *out);

/*
 * What an agent follows: the fleet key, its groups' keys, its host key,
 * in that order, with the last envelope it accepted for each.
 */
struct pc_fleet_view {
	size_t n;
	char target[PC_FLEET_MAX_TARGETS][PC_FLEET_TARGET_LEN];
	bool set[PC_FLEET_MAX_TARGETS];
	struct pc_fleet_desired d[PC_FLEET_MAX_TARGETS];
};

void pc_fleet_view_init(struct pc_fleet_view *v, const char *host,
			char *const *groups, size_t ngroups);
int pc_fleet_view_find(const struct pc_fleet_view *v, const char *target);
/*
 * May envelope d (verified) replace what target i holds? It must name
 * that very target and carry a higher seq than the last one accepted:
 * PC_MSG_WRONG_HOST or PC_MSG_REPLAY otherwise. On PC_MSG_OK the view
 * holds d.
 */
enum pc_msg_verdict pc_fleet_accept(struct pc_fleet_view *v, size_t i,
				    const struct pc_fleet_desired *d);
/* The strictest mode of every accepted envelope (absent: normal). */
enum pc_mode pc_fleet_floor(const struct pc_fleet_view *v);
/* The most specific policy (host, then groups in order, then fleet), or
 * -1 when none names one. */
int pc_fleet_policy_index(const struct pc_fleet_view *v);

/*
 * Liveness: the controller refreshes a signed heartbeat envelope at
 * PREFIX/heartbeat (portcullis fleet heartbeat); an agent counts one only
 * when a trusted key signed it, its seq is above the last one taken from
 * that key, and it is fresh. Anything that merely answers HTTP proves
 * nothing, so lease keep-alives are no heartbeat.
 */
#define PC_FLEET_HB_TARGET	"fleet"
#define PC_FLEET_HB_KIND	"heartbeat"

struct pc_fleet_heartbeat {
	__u64 seq;			/* strictly increasing per signing key */
	__u64 timestamp_ms;		/* when the controller signed it */
	__u8 id[16];			/* random, for the audit trail */
};

/* PREFIX/heartbeat. */
void pc_fleet_heartbeat_key(char *buf, size_t len, const char *prefix);
int pc_fleet_heartbeat_encode(const struct pc_fleet_heartbeat *h,
			      const __u8 sk[PC_SK_LEN], __u8 *buf, size_t len);
/* Structure and signature; *key_index: the trusted key that signed it.
 * Anything but a fleet heartbeat (a UDP heartbeat, an envelope) is
 * PC_MSG_MALFORMED. */
enum pc_msg_verdict pc_fleet_heartbeat_decode(const __u8 *buf, size_t len,
					      const __u8 (*keys)[PC_PK_LEN],
					      size_t nkeys,
					      struct pc_fleet_heartbeat *out,
					      int *key_index);
/*
 * Is verified heartbeat h, read at wall clock now_ms, proof of life?
 * PC_MSG_REPLAY: seq not above last_seq (the last one taken from its
 * key). PC_MSG_STALE: signed more than skew_ms in the future, or so long
 * ago that it would already have run out (timeout_ms + skew_ms). On
 * PC_MSG_OK, *behind_ms says how far before now it counts: it is good
 * until its signing time plus timeout_ms plus skew_ms, never past now
 * plus timeout_ms, so holding it back buys an attacker nothing.
 */
enum pc_msg_verdict pc_fleet_heartbeat_check(const struct pc_fleet_heartbeat *h,
					     __u64 last_seq, __u64 now_ms,
					     __u64 timeout_ms, __u64 skew_ms,
					     __u64 *behind_ms);

/* The state an agent reports at PREFIX/status/H. */
struct pc_fleet_status {
	char host[PC_FLEET_TARGET_LEN];
	enum pc_mode mode;
	char cause[32];
	__u64 since_ms;			/* wall clock of the last transition */
	__u32 generation;
	bool has_policy;
	__u8 policy_hash[PC_HASH_LEN];
	char version[16];
	char groups[PC_FLEET_MAX_GROUPS][PC_FLEET_TARGET_LEN];
	size_t ngroups;
	__u64 reported_ms;
	__u64 last_hb_ms;		/* wall clock of the last valid heartbeat; 0: none */
	__u64 refused;			/* envelopes refused so far */
	bool hb_lost;
};

/* A malloc'd JSON object, or NULL. */
char *pc_fleet_status_json(const struct pc_fleet_status *s);
int pc_fleet_status_parse(const char *json, size_t len,
			  struct pc_fleet_status *out);

#endif /* PC_FLEET_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What must survive a reboot: the mode and why, the replay state of each
 * controller key, and a policy the controller pushed. One small text file
 * in the state dir, replaced atomically (write, fsync, rename, fsync dir).
 */
#ifndef PC_PERSIST_H
#define PC_PERSIST_H

#include <stdbool.h>
#include <linux/types.h>
#include "fleet.h"
#include "msg.h"
#include "portcullis.h"

#define PC_DEFAULT_STATE_DIR	"/var/lib/portcullis"

/*
 * A heartbeat seq on disk is not the last one accepted but a mark reserved
 * ahead of it, written (fsynced) before a heartbeat past it counts: a
 * crash can lose no accepted seq, and a restart refuses every seq up to
 * the mark. The sender's seq is its clock in ns, so the reserve is time:
 * at most 2 s, at most half heartbeat.timeout -- a state write per reserve
 * of heartbeats, and a restarted agent refuses a live controller's
 * heartbeats for at most what is left of one reserve, never long enough
 * to lose them.
 */
#define PC_HB_SEQ_RESERVE_MAX	2000000000ULL

struct pc_persist_key {
	__u8 pk[PC_PK_LEN];
	__u64 seq[2];		/* heartbeat (the reserved mark), command */
};

struct pc_persist {
	enum pc_mode mode;
	enum pc_trigger cause;
	__u64 since_wall_ms;
	struct pc_persist_key keys[PC_MAX_KEYS];
	size_t nkeys;
	/* Set when a controller's apply-policy is live: survives reboots. */
	__u8 policy_hash[PC_HASH_LEN];
	int has_policy;
	/* The interfaces enforced on: a start that cannot read its config
	 * still knows where to attach. */
	char ifaces[PC_MAX_IFACES][PC_IFNAME_LEN];
	size_t nifaces;
	/* The last desired-state envelope accepted per fleet key (the id,
	 * for the audit trail only, is not kept). */
	struct pc_fleet_desired fleet[PC_FLEET_MAX_TARGETS];
	size_t nfleet;
};

/* The reserve for a heartbeat timeout. */
__u64 pc_hb_seq_reserve_for(__u64 hb_timeout_ms);
/* SEQ was accepted: true if it passes *MARK, which then moves to SEQ +
 * RESERVE (saturating) and must be saved before SEQ counts. */
bool pc_hb_seq_reserve(__u64 *mark, __u64 seq, __u64 reserve);
/* State dir from the option, else $PORTCULLIS_STATE_DIR, else default. */
const char *pc_state_dir(const char *opt);
/*
 * 0; -ENOENT if there is no state yet; -EBADMSG if the file exists but is
 * not to be trusted (WHY says why, logged): OUT then holds what parsed, its
 * mode set to quarantine, the strictest the file could have meant.
 */
int pc_persist_load(const char *state_dir, struct pc_persist *out,
		    char *why, size_t why_len);
/* Keep an untrusted state file for the operator: STATE_DIR/state becomes
 * STATE_DIR/state.untrusted-<unix ms> (its name in ASIDE). */
int pc_persist_set_aside(const char *state_dir, char *aside, size_t len);
int pc_persist_save(const char *state_dir, const struct pc_persist *p);
/* Pushed policies live in STATE_DIR/policies/<sha256 hex>.yaml. */
void pc_persist_policy_path(const char *state_dir, const __u8 *hash,
			    char *buf, size_t len);
/* Write TEXT there by its hash, durably (pc_persist_policy_sync). */
int pc_persist_store_policy(const char *state_dir, const char *text,
			    size_t len, __u8 hash[PC_HASH_LEN]);
/* fsync the staged policy of HASH, policies/ and the state dir: call
 * before saving a state file that names it. */
int pc_persist_policy_sync(const char *state_dir, const __u8 *hash);
/* 0 if the staged policy of HASH is there and hashes to its name; else
 * -errno (-EBADMSG: another content), WHY says what. */
int pc_persist_policy_verify(const char *state_dir, const __u8 *hash,
			     char *why, size_t why_len);

#endif /* PC_PERSIST_H */

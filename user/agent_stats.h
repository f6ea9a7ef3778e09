/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's counters, kept in the pinned pc_agent_stats map so the CLI
 * reads them whether the agent runs or not. */
#ifndef PC_AGENT_STATS_H
#define PC_AGENT_STATS_H

#include <linux/types.h>
#include "portcullis.h"
#include "msg.h"

/* Why a fleet value was refused (README "Fleet mode"). */
enum pc_fleet_refusal {
	PC_FR_MALFORMED = 0,		/* not a desired-state envelope at all */
	PC_FR_BAD_SIG,			/* no trusted controller key signed it */
	PC_FR_WRONG_TARGET,		/* signed for another key (copied) */
	PC_FR_REPLAY,			/* not newer than the one in force */
	PC_FR_DELETED,			/* a key deleted: deletion is unsigned */
	PC_FR_POLICY,			/* policy missing or not matching its hash */
	PC_FR_COUNT,
};

static const char *const fleet_refusal_names[PC_FR_COUNT] = {
	[PC_FR_MALFORMED] = "malformed",
	[PC_FR_BAD_SIG] = "bad_signature",
	[PC_FR_WRONG_TARGET] = "wrong_target",
	[PC_FR_REPLAY] = "replay",
	[PC_FR_DELETED] = "deleted",
	[PC_FR_POLICY] = "policy",
};

enum pc_agent_stat {
	PC_AS_HB_ACCEPTED = 0,
	PC_AS_HB_REFUSED = 1,		/* + enum pc_msg_verdict (1..6) */
	PC_AS_CMD_ACCEPTED = PC_AS_HB_REFUSED + PC_MSG_VERDICT_COUNT,
	PC_AS_CMD_REFUSED,		/* + enum pc_msg_verdict */
	PC_AS_CMD_FAILED = PC_AS_CMD_REFUSED + PC_MSG_VERDICT_COUNT,
	PC_AS_TRANSITIONS,
	PC_AS_AUDIT_ERRORS,
	PC_AS_CONTROL_REFUSED,		/* non-root on the control socket */
	PC_AS_POLICY_LOADED_MS,		/* Unix ms of the last policy load (a value, not a count) */
	PC_AS_LAST_HB_BOOT_NS,		/* boot-clock ns of the last valid heartbeat (a value) */
	PC_AS_HB_TIMEOUT_MS,		/* configured heartbeat timeout; 0: no controller (a value) */
	PC_AS_TRANSITION_FAILED,	/* a decided transition could not be enforced */
	PC_AS_TTS_COUNT,		/* time-to-secure histogram: observations */
	PC_AS_TTS_SUM_NS,		/* ... their sum */
	PC_AS_TTS_BUCKET,		/* ... + i: observations <= pc_tts_bounds_ns[i] */
	PC_AS_TRANSITION_BASE = PC_AS_TTS_BUCKET + 8,
					/* + pc_as_transition(from, to, trigger) */
	PC_AS_FLEET_ACCEPTED = PC_AS_TRANSITION_BASE +
			       PC_MODE_COUNT * PC_MODE_COUNT * PC_TRIG_COUNT,
	PC_AS_FLEET_REFUSED,		/* + enum pc_fleet_refusal */
	PC_AS_FLEET_LEASE_LOST = PC_AS_FLEET_REFUSED + PC_FR_COUNT,
	PC_AS_FLEET_KEEPALIVES,		/* lease keep-alives answered (no heartbeat) */
	PC_AS_FLEET_POLICY_LOADED,
	PC_AS_FLEET_HB_ACCEPTED,	/* signed fleet heartbeats taken */
	PC_AS_FLEET_HB_REFUSED,		/* + enum pc_msg_verdict (1..6) */
	PC_AS_BACKSTOP_LINKS = PC_AS_FLEET_HB_REFUSED + PC_MSG_VERDICT_COUNT,
					/* netfilter links the agent installed (a value) */
	PC_AS_COUNT,
};

/* Histogram bucket upper bounds (ns); the last bucket is +Inf. */
#define PC_TTS_BUCKETS	8
static const __u64 pc_tts_bounds_ns[PC_TTS_BUCKETS - 1] = {
	10000, 100000, 1000000, 10000000, 100000000, 1000000000, 10000000000ULL,
};

static inline unsigned int pc_as_transition(unsigned int from, unsigned int to,
					    unsigned int trigger)
{
	return PC_AS_TRANSITION_BASE +
	       (from * PC_MODE_COUNT + to) * PC_TRIG_COUNT + trigger;
}

_Static_assert(PC_AS_COUNT <= PC_AGENT_STATS_MAX, "pc_agent_stats too small");

#endif /* PC_AGENT_STATS_H */

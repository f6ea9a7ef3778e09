/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's mode state machine. Pure logic, no I/O: given the state, a
 * trigger and the clock, decide the next mode. The table is in fsm.c and
 * in README "State machine".
 */
#ifndef PC_FSM_H
#define PC_FSM_H

#include <stdbool.h>
#include <linux/types.h>
#include "portcullis.h"

struct pc_fsm_cfg {
	enum pc_mode hb_action;		/* what heartbeat loss escalates to */
	unsigned int hb_release_after;	/* valid heartbeats to lift it; 0: never */
	__u64 backoff_ms;		/* least time between an escalation and an automatic lift */
};

struct pc_fsm {
	enum pc_mode mode;
	enum pc_trigger cause;		/* trigger of the last escalation */
	__u64 since_ms;			/* when the mode was entered (boot clock) */
	unsigned int valid_hb;		/* valid heartbeats since the last loss */
	unsigned int lifts;		/* automatic lifts in a row (back-off doubles) */
	__u64 last_lift_ms;
	enum pc_mode floor;		/* what the fleet demands (normal: nothing) */
};

struct pc_fsm_step {
	bool change;			/* false: stay (why says why) */
	enum pc_mode to;
	const char *why;		/* for the audit log */
};

/*
 * requested: the target mode of a command, anomaly or break-glass (for
 * release: PC_MODE_NORMAL); ignored for heartbeat triggers.
 */
struct pc_fsm_step pc_fsm_decide(const struct pc_fsm *f,
				 const struct pc_fsm_cfg *cfg,
				 enum pc_trigger t, enum pc_mode requested,
				 __u64 now_ms);
/* Record that step was enforced. */
void pc_fsm_commit(struct pc_fsm *f, const struct pc_fsm_cfg *cfg,
		   const struct pc_fsm_step *step, enum pc_trigger t,
		   __u64 now_ms);
/* The fleet's demand changed: call after deciding on PC_TRIG_FLEET. */
void pc_fsm_set_floor(struct pc_fsm *f, enum pc_mode floor);
/* A valid heartbeat arrived (counts towards an automatic lift). */
void pc_fsm_heartbeat(struct pc_fsm *f);
/* Heartbeats were lost again: the count towards a lift starts over. */
void pc_fsm_heartbeat_lost(struct pc_fsm *f);

const char *pc_trigger_name(enum pc_trigger t);
int pc_trigger_parse(const char *s, enum pc_trigger *out);

#endif /* PC_FSM_H */

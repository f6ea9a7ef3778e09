// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Mode state machine. Modes are ordered normal < lockdown < quarantine.
 *
 *  trigger              from   to                       condition
 *  heartbeat_loss       any    max(mode, hb_action)     escalates only
 *  deadman              any    max(mode, hb_action)     escalates only
 *  anomaly              any    max(mode, requested)     escalates only
 *  command lockdown/    any    max(mode, requested)     escalates only
 *     quarantine
 *  command release      any    fleet floor              signed
 *  fleet                any    floor'                   escalates to the new floor; lifts
 *                                                       to it only a mode the old floor
 *                                                       explained (mode <= floor)
 *  fleet_release        any    floor'                   a host released by name: lifts
 *                                                       any mode, but not below the floor
 *  break_glass          any    requested                local root operator
 *  heartbeat_restored   hb_action  fleet floor         mode was entered by heartbeat
 *                                                       loss or deadman, release_after
 *                                                       valid heartbeats seen, and the
 *                                                       back-off since entering it over
 *  start                -      restored or configured   (not decided here)
 *  external             -      what the map says        (recorded, not decided)
 *
 * Back-off: a lift needs the back-off window to have passed since the
 * escalation; a heartbeat loss soon after a lift (within 4 windows)
 * doubles the window for the next lift (up to 16x), so a flapping
 * controller link cannot flap the host.
 */
#include <string.h>
#include "fsm.h"

static const char *const trigger_names[PC_TRIG_COUNT] = {
	[PC_TRIG_START] = "start",
	[PC_TRIG_HEARTBEAT_LOSS] = "heartbeat_loss",
	[PC_TRIG_HEARTBEAT_RESTORED] = "heartbeat_restored",
	[PC_TRIG_DEADMAN] = "deadman",
	[PC_TRIG_COMMAND] = "command",
	[PC_TRIG_ANOMALY] = "anomaly",
	[PC_TRIG_BREAK_GLASS] = "break_glass",
	[PC_TRIG_EXTERNAL] = "external",
	[PC_TRIG_FLEET] = "fleet",
	[PC_TRIG_FLEET_RELEASE] = "fleet_release",
};

const char *pc_trigger_name(enum pc_trigger t)
{
	return (unsigned int)t < PC_TRIG_COUNT ? trigger_names[t] : "unknown";
}

int pc_trigger_parse(const char *s, enum pc_trigger *out)
{
	for (int t = 0; t < PC_TRIG_COUNT; t++)
		if (!strcmp(s, trigger_names[t])) {
			*out = t;
			return 0;
		}
	return -1;
}

static struct pc_fsm_step stay(enum pc_mode mode, const char *why)
{
	return (struct pc_fsm_step){ .change = false, .to = mode, .why = why };
}

static struct pc_fsm_step go(enum pc_mode to, const char *why)
{
	return (struct pc_fsm_step){ .change = true, .to = to, .why = why };
}

static struct pc_fsm_step escalate(const struct pc_fsm *f, enum pc_mode to)
{
	if ((unsigned int)to >= PC_MODE_COUNT)
		to = PC_MODE_QUARANTINE;
	if (to <= f->mode)
		return stay(f->mode, "already at or above that mode");
	return go(to, "escalation");
}

static __u64 backoff_now(const struct pc_fsm *f, const struct pc_fsm_cfg *cfg)
{
	unsigned int shift = f->lifts < 4 ? f->lifts : 4;

	return cfg->backoff_ms << shift;
}

static struct pc_fsm_step restored(const struct pc_fsm *f,
				   const struct pc_fsm_cfg *cfg, __u64 now_ms)
{
	if (f->mode == PC_MODE_NORMAL)
		return stay(f->mode, "nothing to lift");
	if (f->cause != PC_TRIG_HEARTBEAT_LOSS && f->cause != PC_TRIG_DEADMAN)
		return stay(f->mode, "only a heartbeat-loss mode lifts itself");
	if (!cfg->hb_release_after)
		return stay(f->mode, "automatic release is off");
	if (f->mode > cfg->hb_action)
		return stay(f->mode, "mode is above the heartbeat-loss action");
	if (f->valid_hb < cfg->hb_release_after)
		return stay(f->mode, "not enough valid heartbeats yet");
	if (now_ms - f->since_ms < backoff_now(f, cfg))
		return stay(f->mode, "back-off window not over");
	if (f->mode <= f->floor)
		return stay(f->mode, "the fleet demands this mode");
	return go(f->floor, "heartbeats valid again");
}

static enum pc_mode clamp(enum pc_mode m)
{
	return (unsigned int)m < PC_MODE_COUNT ? m : PC_MODE_QUARANTINE;
}

struct pc_fsm_step pc_fsm_decide(const struct pc_fsm *f,
				 const struct pc_fsm_cfg *cfg,
				 enum pc_trigger t, enum pc_mode requested,
				 __u64 now_ms)
{
	switch (t) {
	case PC_TRIG_HEARTBEAT_LOSS:
	case PC_TRIG_DEADMAN:
		return escalate(f, cfg->hb_action);
	case PC_TRIG_ANOMALY:
		return escalate(f, requested);
	case PC_TRIG_COMMAND:
		if (requested == PC_MODE_NORMAL)
			return f->mode <= f->floor ?
				       stay(f->mode, "already at the fleet's floor") :
				       go(f->floor, "signed release");
		return escalate(f, requested);
	case PC_TRIG_FLEET:
		requested = clamp(requested);
		if (requested > f->mode)
			return go(requested, "fleet escalation");
		if (requested < f->mode && f->mode <= f->floor)
			return go(requested, "fleet lifted its demand");
		return stay(f->mode, requested == f->mode ? "already in that mode" :
				     "mode was not set by the fleet");
	case PC_TRIG_FLEET_RELEASE:
		requested = clamp(requested);
		if (requested > f->mode)
			return go(requested, "fleet escalation");
		if (requested < f->mode)
			return go(requested, "host released by name");
		return stay(f->mode, "already in that mode");
	case PC_TRIG_BREAK_GLASS:
		if ((unsigned int)requested >= PC_MODE_COUNT)
			return stay(f->mode, "unknown mode");
		if (requested == f->mode)
			return stay(f->mode, "already in that mode");
		return go(requested, "local operator");
	case PC_TRIG_HEARTBEAT_RESTORED:
		return restored(f, cfg, now_ms);
	default:
		return stay(f->mode, "not a decision of the state machine");
	}
}

void pc_fsm_commit(struct pc_fsm *f, const struct pc_fsm_cfg *cfg,
		   const struct pc_fsm_step *step, enum pc_trigger t,
		   __u64 now_ms)
{
	if (!step->change)
		return;
	if (t == PC_TRIG_HEARTBEAT_RESTORED) {
		f->last_lift_ms = now_ms;
	} else if (t == PC_TRIG_HEARTBEAT_LOSS || t == PC_TRIG_DEADMAN) {
		/* Lost again soon after a lift: a flapping link; the next
		 * lift waits twice as long. A quiet spell forgives. */
		if (f->last_lift_ms && now_ms - f->last_lift_ms < 4 * backoff_now(f, cfg))
			f->lifts++;
		else
			f->lifts = 0;
	} else if (step->to == PC_MODE_NORMAL) {
		f->lifts = 0;	/* a human released it: start afresh */
	}
	if (step->to != f->mode)
		f->cause = t;
	f->mode = step->to;
	f->since_ms = now_ms;
	f->valid_hb = 0;
}

void pc_fsm_set_floor(struct pc_fsm *f, enum pc_mode floor)
{
	f->floor = clamp(floor);
}

void pc_fsm_heartbeat(struct pc_fsm *f)
{
	if (f->valid_hb < 0xffffffffU)
		f->valid_hb++;
}

void pc_fsm_heartbeat_lost(struct pc_fsm *f)
{
	f->valid_hb = 0;
}

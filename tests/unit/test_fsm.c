// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The state machine's table, row by row, and its back-off. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include "fsm.h"
#include "policy.h"

#define N PC_MODE_NORMAL
#define L PC_MODE_LOCKDOWN
#define Q PC_MODE_QUARANTINE

struct row {
	const char *what;
	enum pc_mode from;
	enum pc_trigger cause;	/* of the current mode */
	enum pc_trigger t;
	enum pc_mode requested;
	bool change;
	enum pc_mode to;
	enum pc_mode floor;	/* what the fleet demanded before (normal: none) */
};

static const struct row table[] = {
	{ "hb loss escalates normal", N, PC_TRIG_START, PC_TRIG_HEARTBEAT_LOSS, N, true, L, N },
	{ "hb loss never lowers quarantine", Q, PC_TRIG_COMMAND, PC_TRIG_HEARTBEAT_LOSS, N, false, Q, N },
	{ "hb loss in lockdown: stay", L, PC_TRIG_COMMAND, PC_TRIG_HEARTBEAT_LOSS, N, false, L, N },
	{ "deadman escalates", N, PC_TRIG_START, PC_TRIG_DEADMAN, N, true, L, N },
	{ "anomaly to quarantine", N, PC_TRIG_START, PC_TRIG_ANOMALY, Q, true, Q, N },
	{ "anomaly lockdown from quarantine: stay", Q, PC_TRIG_ANOMALY, PC_TRIG_ANOMALY, L, false, Q, N },
	{ "anomaly cannot ask for normal", L, PC_TRIG_ANOMALY, PC_TRIG_ANOMALY, N, false, L, N },
	{ "command quarantine", L, PC_TRIG_HEARTBEAT_LOSS, PC_TRIG_COMMAND, Q, true, Q, N },
	{ "command lockdown from quarantine: stay", Q, PC_TRIG_COMMAND, PC_TRIG_COMMAND, L, false, Q, N },
	{ "command release from quarantine", Q, PC_TRIG_ANOMALY, PC_TRIG_COMMAND, N, true, N, N },
	{ "command release when normal: stay", N, PC_TRIG_START, PC_TRIG_COMMAND, N, false, N, N },
	{ "break-glass release", Q, PC_TRIG_COMMAND, PC_TRIG_BREAK_GLASS, N, true, N, N },
	{ "break-glass to lockdown from quarantine", Q, PC_TRIG_COMMAND, PC_TRIG_BREAK_GLASS, L, true, L, N },
	{ "break-glass same mode: stay", L, PC_TRIG_COMMAND, PC_TRIG_BREAK_GLASS, L, false, L, N },
	{ "break-glass unknown mode: stay", L, PC_TRIG_COMMAND, PC_TRIG_BREAK_GLASS, 7, false, L, N },
	{ "restored lifts a heartbeat lockdown", L, PC_TRIG_HEARTBEAT_LOSS, PC_TRIG_HEARTBEAT_RESTORED, N, true, N, N },
	{ "restored lifts a deadman lockdown", L, PC_TRIG_DEADMAN, PC_TRIG_HEARTBEAT_RESTORED, N, true, N, N },
	{ "restored never lifts an anomaly", Q, PC_TRIG_ANOMALY, PC_TRIG_HEARTBEAT_RESTORED, N, false, Q, N },
	{ "restored never lifts a command", L, PC_TRIG_COMMAND, PC_TRIG_HEARTBEAT_RESTORED, N, false, L, N },
	{ "restored never lifts break-glass", L, PC_TRIG_BREAK_GLASS, PC_TRIG_HEARTBEAT_RESTORED, N, false, L, N },
	{ "external is not decided here", N, PC_TRIG_START, PC_TRIG_EXTERNAL, Q, false, N, N },
	/* With a fleet floor */
	{ "fleet escalates to its floor", N, PC_TRIG_START, PC_TRIG_FLEET, Q, true, Q, N },
	{ "fleet escalates past a local lockdown", L, PC_TRIG_ANOMALY, PC_TRIG_FLEET, Q, true, Q, N },
	{ "fleet lifts what it imposed", Q, PC_TRIG_FLEET, PC_TRIG_FLEET, N, true, N, Q },
	{ "fleet lifts only to the new floor", Q, PC_TRIG_FLEET, PC_TRIG_FLEET, L, true, L, Q },
	{ "fleet lift leaves a local quarantine", Q, PC_TRIG_ANOMALY, PC_TRIG_FLEET, N, false, Q, L },
	{ "fleet lift leaves a quarantine above its floor", Q, PC_TRIG_COMMAND, PC_TRIG_FLEET, N, false, Q, N },
	{ "fleet same mode: stay", L, PC_TRIG_FLEET, PC_TRIG_FLEET, L, false, L, L },
	{ "fleet out-of-range mode is quarantine", N, PC_TRIG_START, PC_TRIG_FLEET, 9, true, Q, N },
	{ "host release lifts an anomaly quarantine", Q, PC_TRIG_ANOMALY, PC_TRIG_FLEET_RELEASE, N, true, N, N },
	{ "host release stops at the group's floor", Q, PC_TRIG_ANOMALY, PC_TRIG_FLEET_RELEASE, L, true, L, Q },
	{ "host release at the floor: stay", L, PC_TRIG_FLEET, PC_TRIG_FLEET_RELEASE, L, false, L, L },
	{ "command release stops at the floor", Q, PC_TRIG_COMMAND, PC_TRIG_COMMAND, N, true, L, L },
	{ "command release at the floor: stay", L, PC_TRIG_FLEET, PC_TRIG_COMMAND, N, false, L, L },
	{ "restored lifts only to the floor", Q, PC_TRIG_HEARTBEAT_LOSS, PC_TRIG_HEARTBEAT_RESTORED, N, false, Q, L },
	{ "restored stops at a lockdown floor", L, PC_TRIG_HEARTBEAT_LOSS, PC_TRIG_HEARTBEAT_RESTORED, N, false, L, L },
	{ "hb loss escalates over a floor", N, PC_TRIG_FLEET, PC_TRIG_HEARTBEAT_LOSS, N, true, L, N },
	{ "break-glass ignores the floor", Q, PC_TRIG_FLEET, PC_TRIG_BREAK_GLASS, N, true, N, Q },
};

static const struct pc_fsm_cfg cfg = {
	.hb_action = L, .hb_release_after = 3, .backoff_ms = 1000,
};

static void test_table(void **state)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct row *r = &table[i];
		struct pc_fsm f = {
			.mode = r->from, .cause = r->cause, .since_ms = 0,
			.valid_hb = 3,
		};
		struct pc_fsm_step s;

		pc_fsm_set_floor(&f, r->floor);
		s = pc_fsm_decide(&f, &cfg, r->t, r->requested, 5000);
		if (s.change != r->change || s.to != r->to)
			fail_msg("%s: got change=%d to=%s, want change=%d to=%s",
				 r->what, s.change, pc_mode_name(s.to), r->change,
				 pc_mode_name(r->to));
		assert_non_null(s.why);
	}
}

/* The lift waits for enough heartbeats and for the back-off. */
static void test_restored_conditions(void **state)
{
	struct pc_fsm f = { .mode = L, .cause = PC_TRIG_HEARTBEAT_LOSS };
	struct pc_fsm_cfg off = cfg;
	struct pc_fsm_step s;

	f.valid_hb = 2;
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, 5000);
	assert_false(s.change);
	pc_fsm_heartbeat(&f);
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, 999);
	assert_false(s.change);		/* back-off: 1000 ms since entry */
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, 1000);
	assert_true(s.change);
	pc_fsm_heartbeat_lost(&f);
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, 5000);
	assert_false(s.change);		/* the count starts over */
	off.hb_release_after = 0;
	f.valid_hb = 100;
	s = pc_fsm_decide(&f, &off, PC_TRIG_HEARTBEAT_RESTORED, N, 5000);
	assert_false(s.change);		/* automatic release off */
	/* Heartbeat action lockdown never lifts a quarantine. */
	f.mode = Q;
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, 5000);
	assert_false(s.change);
}

/* Loss, lift, loss, lift...: each quick lift doubles the next wait. */
static void test_no_flapping(void **state)
{
	struct pc_fsm f = { .mode = N, .cause = PC_TRIG_START };
	__u64 now = 10000, waits[4];

	for (int round = 0; round < 4; round++) {
		struct pc_fsm_step s;
		__u64 t;

		s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_LOSS, N, now);
		assert_true(s.change);
		pc_fsm_commit(&f, &cfg, &s, PC_TRIG_HEARTBEAT_LOSS, now);
		assert_int_equal(f.mode, L);
		for (int i = 0; i < 3; i++)
			pc_fsm_heartbeat(&f);
		/* Find the first moment the lift is allowed, 10 ms steps. */
		for (t = now;; t += 10) {
			s = pc_fsm_decide(&f, &cfg, PC_TRIG_HEARTBEAT_RESTORED, N, t);
			if (s.change)
				break;
			assert_true(t < now + 100000);
		}
		waits[round] = t - now;
		pc_fsm_commit(&f, &cfg, &s, PC_TRIG_HEARTBEAT_RESTORED, t);
		assert_int_equal(f.mode, N);
		now = t + 10;	/* lost again at once */
	}
	assert_int_equal(waits[0], 1000);
	assert_int_equal(waits[1], 2000);
	assert_int_equal(waits[2], 4000);
	assert_int_equal(waits[3], 8000);
}

/* A human release resets the back-off; the cause follows each change. */
static void test_commit_bookkeeping(void **state)
{
	struct pc_fsm f = { .mode = L, .cause = PC_TRIG_HEARTBEAT_LOSS,
			    .lifts = 3, .valid_hb = 7 };
	struct pc_fsm_step s;

	s = pc_fsm_decide(&f, &cfg, PC_TRIG_COMMAND, Q, 100);
	pc_fsm_commit(&f, &cfg, &s, PC_TRIG_COMMAND, 100);
	assert_int_equal(f.mode, Q);
	assert_int_equal(f.cause, PC_TRIG_COMMAND);
	assert_int_equal(f.valid_hb, 0);
	assert_int_equal(f.since_ms, 100);
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_BREAK_GLASS, N, 200);
	pc_fsm_commit(&f, &cfg, &s, PC_TRIG_BREAK_GLASS, 200);
	assert_int_equal(f.mode, N);
	assert_int_equal(f.lifts, 0);
	assert_int_equal(f.cause, PC_TRIG_BREAK_GLASS);
	/* A step that changes nothing records nothing. */
	s = pc_fsm_decide(&f, &cfg, PC_TRIG_COMMAND, N, 300);
	pc_fsm_commit(&f, &cfg, &s, PC_TRIG_COMMAND, 300);
	assert_int_equal(f.since_ms, 200);
}


/* A heartbeat quarantine (action quarantine) lifts down to a lockdown
 * floor, not to normal; an out-of-range floor clamps to the strictest. */
static void test_floor_restored_to_floor(void **state)
{
	struct pc_fsm_cfg qcfg = cfg;
	struct pc_fsm f = { .mode = Q, .cause = PC_TRIG_HEARTBEAT_LOSS, .valid_hb = 3 };
	struct pc_fsm_step s;

	qcfg.hb_action = Q;
	pc_fsm_set_floor(&f, L);
	s = pc_fsm_decide(&f, &qcfg, PC_TRIG_HEARTBEAT_RESTORED, N, 5000);
	assert_true(s.change);
	assert_int_equal(s.to, L);
	pc_fsm_set_floor(&f, 17);	/* out of range: the strictest */
	assert_int_equal(f.floor, Q);
}

static void test_names(void **state)
{
	enum pc_trigger t;

	for (int i = 0; i < PC_TRIG_COUNT; i++) {
		assert_int_equal(pc_trigger_parse(pc_trigger_name(i), &t), 0);
		assert_int_equal(t, i);
	}
	assert_int_equal(pc_trigger_parse("nonsense", &t), -1);
	assert_string_equal(pc_trigger_name(99), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_restored_conditions),
		cmocka_unit_test(test_no_flapping),
		cmocka_unit_test(test_commit_bookkeeping),
		cmocka_unit_test(test_floor_restored_to_floor),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

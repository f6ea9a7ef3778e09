# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 5: a heartbeat captured on the wire cannot be replayed to
# an agent restarted after a crash.
#
# The agent used to save heartbeat seqs every 10 s: after a kill -9 it
# knew only an older seq, and a heartbeat captured since, replayed within
# max_skew, was taken once -- counted as the controller alive when it may
# not be (and, with release_after, a step towards lifting a lockdown).
# Now the seq on disk is a mark reserved ahead (PC_HB_SEQ_RESERVE).
#   1. The suite's config with heartbeat.timeout 30 s (so no loss during
#      the test), its own state dir; heartbeats flowing, mode normal.
#   2. The outsider records heartbeats on the management link; the
#      controller stops; the agent is killed (-9) and started again.
#   3. The last recorded heartbeat is sent again: refused and counted as
#      replay, not accepted; the mode stays normal and the node's own
#      connection lives on.
# At the end the suite's usual agent runs again, normal.

HR_PY=$(dirname "${BASH_SOURCE[0]}")/hbreplay.py

hr_restore()
{
	daemon_stop TERM
	STATE_DIR=${HR_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	hb_running || hb_start
	wait_mode normal 15
	ensure_normal
}

hr_counted() { [ "$(msg_count hb accepted)" -gt "$1" ] || [ "$(msg_count hb replay)" -gt "$2" ]; }

test_hbreplay()
{
	local cap=$WORK/hr-heartbeat.bin log=$WORK/hr-capture.log pid acc rep
	ensure_normal || return 1
	sed -e 's/^\( *timeout:\).*/\1 30s/' "$WORK/agent.yaml" >"$WORK/hr-agent.yaml"
	daemon_stop TERM
	HR_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/hr-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$WORK/hr-agent.yaml" || { hr_restore; return 1; }
	hb_running || hb_start
	wait_mode normal 15
	ensure_normal || { hr_restore; return 1; }

	note "attack: record heartbeats on the management link, then the agent crashes"
	rm -f "$cap"
	bg_start "$log" 30 ip netns exec "$LAB_MGMT" "$PY" "$HR_PY" capture \
		"$LAB_MGMT_IF" 7800 "$cap" --count 5 --seconds 20
	pid=$BG_LAST
	wait_for_line "$log" '^captured' 25 "$pid"
	wait "$pid" 2>/dev/null
	if ! grep -q '^captured 5' "$log" || [ ! -s "$cap" ]; then
		fail "no heartbeat recorded: $(tail -n 1 "$log")"
		hr_restore
		return 1
	fi
	pass "recorded 5 heartbeats on $LAB_MGMT_IF ($(stat -c %s "$cap") bytes the last)"
	hb_stop
	daemon_stop KILL
	agent_start "$WORK/hr-agent.yaml" || { hr_restore; return 1; }
	expect_mode normal "restarted after kill -9"
	hold_begin hr_own node "$LAB_PEER4" 7000
	acc=$(msg_count hb accepted)
	rep=$(msg_count hb replay)

	ctl replay "$cap" --to "$AGENT_TO" >"$WORK/hr-send.out" 2>&1 ||
		fail "controller replay: $(tail -n 1 "$WORK/hr-send.out")"
	wait_until 10 hr_counted "$acc" "$rep"
	pass_if "replayed heartbeat refused as replay (replay $rep -> $(msg_count hb replay))" \
		"replayed heartbeat not refused as replay (replay $rep -> $(msg_count hb replay))" \
		[ "$(msg_count hb replay)" -eq $((rep + 1)) ]
	pass_if "replayed heartbeat not accepted (accepted $acc -> $(msg_count hb accepted))" \
		"replayed heartbeat ACCEPTED after the restart (accepted $acc -> $(msg_count hb accepted))" \
		[ "$(msg_count hb accepted)" -eq "$acc" ]
	expect_mode normal "after the replay"
	hold_end hr_own kept
	hr_restore
	expect_mode normal "the suite's agent again"
}

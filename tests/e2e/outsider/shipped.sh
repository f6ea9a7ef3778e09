# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 5: a host set up from the shipped deploy/agent.yaml, with
# no controller, stays normal.
#
# deploy/agent.yaml used to ship a controller section with a placeholder
# key nobody could sign with, and the dead-man switch on: ~5 s after start
# the host locked itself down, for good (release_after: 0). Now it ships
# neither controller nor heartbeat section.
#   The shipped file, with only its policy (the lab's) and interfaces (the
#   policy's) changed, its own state dir, no heartbeat sender: started,
#   normal; still normal past the default heartbeat.timeout (5 s) plus 3 s,
#   no heartbeat_lost audited, and the node's own connection lives on.
# At the end the suite's usual agent runs again, normal.

SH_TIMEOUT_S=5		# heartbeat.timeout's default, what the old file set

sh_not_normal() { [ "$(mode_now)" != normal ]; }

sh_restore()
{
	daemon_stop TERM
	STATE_DIR=${SH_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	hb_running || hb_start
	wait_mode normal 15
	ensure_normal
}

test_shipped()
{
	local n
	ensure_normal || return 1
	sed -e "s#^policy: .*#policy: $WORK/policy.yaml#" -e '/^interfaces:/d' \
		"$E2E_ROOT/deploy/agent.yaml" >"$WORK/shipped.yaml"
	hb_stop
	daemon_stop TERM
	SH_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/sh-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$WORK/shipped.yaml" || { sh_restore; return 1; }
	wait_mode normal 15
	expect_mode normal "deploy/agent.yaml, no controller running"
	n=$(audit_count heartbeat_lost)
	hold_begin sh_own node "$LAB_PEER4" 7000
	if wait_until $((SH_TIMEOUT_S + 3)) sh_not_normal; then
		fail "the shipped config locked the host down with no controller: $(audit_last transition)"
	else
		pass "still normal $((SH_TIMEOUT_S + 3)) s after start (heartbeat.timeout default ${SH_TIMEOUT_S} s)"
	fi
	pass_if "audit: no heartbeat_lost" "audit: heartbeat_lost: $(audit_last heartbeat_lost)" \
		[ "$(audit_count heartbeat_lost)" -eq "$n" ]
	hold_end sh_own kept
	allowed "peer -> node tcp/8080 with the shipped config" web4
	sh_restore
	expect_mode normal "the suite's agent again"
}

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 5: a connection a quarantine (or the dead-man lockdown)
# cut does not resume. The node holds connections to the peer's echo
# server (a reverse shell's shape): one writing throughout (TCP retransmits
# through the quarantine), one idle. After the host is back to normal, every
# byte the peer echoes on them is a denied packet delivered. The node's own
# drop counter says when the peer's answers have come and been judged.

CUTCONN=$E2E_ROOT/tests/e2e/failsecure/cutconn.py

# cut_start NAME [--busy]: a held connection node -> peer tcp/7000.
cut_start()
{
	local name=$1
	shift
	bg_start "$WORK/cut-$name.log" 150 ip netns exec "$LAB_NODE" \
		"$PY" "$CUTCONN" "$LAB_PEER4" 7000 --seconds 140 "$@"
	eval "CUT_WRAP_$name=\$BG_LAST"
	wait_for_line "$WORK/cut-$name.log" '^alive' 20 "$BG_LAST"
}

# The client itself (timeout's child): SIGUSR1 is for it, not for timeout.
cut_pid() { eval "pgrep -P \$CUT_WRAP_$1 | head -n 1"; }

# cut_judge NAME DESC: the host is normal again; mark it, wait until the
# node has dropped >= 2 more of the peer's segments (its answers on the
# cut connection), then count what reached the connection.
cut_judge()
{
	local name=$1 desc=$2 pid before bytes
	pid=$(cut_pid "$name")
	[ -n "$pid" ] || { fail "$desc: the client is gone: $(tail -n 1 "$WORK/cut-$name.log")"; return; }
	before=$(reason_count drop_default ingress)
	kill -USR1 "$pid" 2>/dev/null
	wait_until 20 counter_grew drop_default ingress "$before" 2
	note "the node dropped $(($(reason_count drop_default ingress) - before)) of the peer's segments since"
	kill -TERM "$pid" 2>/dev/null
	eval "wait \$CUT_WRAP_$name" 2>/dev/null
	bytes=$(sed -n 's/^after_cut_bytes \([0-9]*\)$/\1/p' "$WORK/cut-$name.log")
	if [ -z "$bytes" ]; then
		fail "$desc: no count ($(tail -n 1 "$WORK/cut-$name.log"))"
		return
	fi
	pass_if "$desc: 0 bytes echoed after the cut (0 denied packets delivered)" \
		"$desc: $bytes bytes echoed after the cut: it resumed" [ "$bytes" -eq 0 ]
}

counter_grew() { [ $(($(reason_count "$1" "$2") - $3)) -ge "$4" ]; }

test_cut()
{
	local before
	ensure_normal || return 1
	cut_start busy --busy || { fail "cut: busy connection never alive"; return 1; }
	cut_start idle || { fail "cut: idle connection never alive"; return 1; }
	pass "two connections node -> peer tcp/7000 alive (busy, idle)"
	hold_begin mgmt mgmt "$LAB_NODE_MGMT4" 22 || return 1
	before=$(reason_count drop_quarantine egress)
	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "the connections are cut"
	# The busy one's retransmissions meet the quarantine.
	wait_until 15 counter_grew drop_quarantine egress "$before" 3
	note "quarantine dropped $(($(reason_count drop_quarantine egress) - before)) of the node's segments"
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "released: back to normal"
	hold_end mgmt kept
	cut_judge busy "busy connection (retransmitting through the quarantine)"
	cut_judge idle "idle connection (no packet during the quarantine)"

	# The kernel dead-man switch cuts alike, with the agent hung.
	cut_start dm || { fail "cut: connection never alive"; return 1; }
	kill -s STOP "$DAEMON_PID"
	before=$(reason_count drop_deadman ingress)
	wait_until 15 ping_until_deadman "$before"
	note "dead-man lockdown: $(($(reason_count drop_deadman ingress) - before)) drops while the agent was stopped"
	kill -s CONT "$DAEMON_PID"
	wait_mode normal 15
	expect_mode normal "agent resumed, heartbeats back"
	cut_judge dm "idle connection through a dead-man lockdown"
	expect_mode normal "cut: done"
}

# ping_until_deadman BEFORE: one fast ping; true once the node counts a
# dead-man drop (the agent is stopped, so pc reads the maps directly).
ping_until_deadman()
{
	ping_fast >/dev/null 2>&1
	[ "$(reason_count drop_deadman ingress)" -gt "$1" ]
}

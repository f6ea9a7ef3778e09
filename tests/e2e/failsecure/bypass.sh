# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 6: raw packet sockets bypass the egress program.

BYP_PY=$E2E_ROOT/tests/e2e/failsecure/bypass.py
BYP_PORT=7002		# the peer's receiver (no lab server uses it)
BYP_N=50		# frames per batch

# byp_mac NS IF: the interface's MAC address.
byp_mac()
{
	ip -n "$1" -o link show dev "$2" |
		awk '{ for (i = 1; i < NF; i++) if ($i == "link/ether") print $(i + 1) }'
}

# byp_frame_args: where the node's crafted frames go (node -> peer).
byp_frame_args()
{
	BYP_ARGS=(--ifname "$LAB_NODE_PEER_IF" --src "$LAB_NODE_PEER4"
		--dst "$LAB_PEER4" --port "$BYP_PORT"
		--src-mac "$(byp_mac "$LAB_NODE" "$LAB_NODE_PEER_IF")"
		--dst-mac "$(byp_mac "$LAB_PEER" "$LAB_PEER_IF")")
}

# byp_send TAG [--no-bypass]: a new socket in the node sets bypass and
# sends BYP_N frames; its output (bypass ..., sent ...) in BYP_OUT.
byp_send()
{
	local tag=$1
	shift
	BYP_OUT=$(ip netns exec "$LAB_NODE" timeout 30 "$PY" "$BYP_PY" send \
		"${BYP_ARGS[@]}" --tag "$tag" --count "$BYP_N" "$@" 2>&1)
	note "new socket ($tag): $(echo "$BYP_OUT" | tr '\n' ';')"
}

# byp_held TAG: the socket opened in normal mode (it asked for bypass
# then) sends BYP_N more;
# its "sent" line in BYP_OUT.
byp_held()
{
	local tag=$1 go=$WORK/bypass.go
	echo "$tag $BYP_N" >"$go.tmp" && mv "$go.tmp" "$go"
	wait_for_line "$WORK/bypass-hold.log" "^sent $tag " 20 "$BYP_HOLD_PID"
	BYP_OUT=$(grep "^sent $tag " "$WORK/bypass-hold.log")
	note "held socket ($tag): $BYP_OUT"
}

# byp_got TAG: distinct frames of TAG the peer received so far.
byp_got() { grep -c "^got $1 " "$WORK/bypass-recv.log"; }

byp_got_all() { [ "$(byp_got "$1")" -ge "$BYP_N" ]; }

# byp_opt_refused WHAT: the last new socket's setsockopt was refused.
byp_opt_refused()
{
	pass_if "$1: setsockopt(PACKET_QDISC_BYPASS) refused with EPERM" \
		"$1: setsockopt(PACKET_QDISC_BYPASS) not refused: $(head -n 1 <<<"$BYP_OUT")" \
		grep -q '^bypass refused EPERM' <<<"$BYP_OUT"
}

# byp_arrives TAG WHAT: all BYP_N frames of TAG reach the peer.
byp_arrives()
{
	wait_until 10 byp_got_all "$1"
	pass_if "$2: $(byp_got "$1")/$BYP_N frames reached the peer" \
		"$2: only $(byp_got "$1")/$BYP_N frames reached the peer" \
		byp_got_all "$1"
}

# byp_xdp_refused WHAT: an AF_XDP socket cannot get its TX ring.
byp_xdp_refused()
{
	BYP_OUT=$(ip netns exec "$LAB_NODE" timeout 10 "$PY" "$BYP_PY" xdp 2>&1)
	pass_if "$1: AF_XDP set-up (setsockopt XDP_TX_RING) refused with EPERM" \
		"$1: AF_XDP set-up not refused: $BYP_OUT" \
		grep -q '^xdp refused EPERM' <<<"$BYP_OUT"
}

# byp_denied_cases WHEN: in lockdown or quarantine, a new socket cannot
# set bypass, and neither its frames nor the held socket's (which could
# not set it in normal mode either) reach the peer: they go through the
# qdisc, where tc_egress drops them. Counted at the end.
byp_denied_cases()
{
	local when=$1
	byp_send "new-$when"
	byp_opt_refused "$when"
	byp_send "plain-$when" --no-bypass
	byp_held "held-$when"
	byp_xdp_refused "$when"
}

# byp_guard_refusals: the refusals `portcullis status` counts, or -1.
byp_guard_refusals()
{
	pc status 2>/dev/null | awk '$1 == "guard:" {
		for (i = 2; i < NF; i++) if ($i == "refused") { print $(i + 1) + 0; f = 1 } }
		END { if (!f) print -1 }'
}

# byp_guard_on WHY: status says the guard is attached.
byp_guard_on()
{
	local line
	line=$(pc status 2>/dev/null | grep '^guard:')
	pass_if "status: guard on ($1)" "status: $line ($1)" \
		grep -q '^guard: *on' <<<"$line"
}

# An AF_PACKET socket with PACKET_QDISC_BYPASS, or an AF_XDP socket, in
# the node skips tc_egress (dev_direct_xmit). With the agent's guard the
# option and AF_XDP's set-up are refused in every mode (a socket set up in
# normal mode would keep bypassing after), so no frame of theirs skips
# tc_egress: in quarantine and lockdown, with the agent SIGKILLed and
# restarted, 0 arrive. Plain packet-socket frames (through the qdisc) are
# the control in normal mode; other namespaces are not touched.
test_bypass()
{
	local when tag sum n n0 recv_pid
	ensure_normal || return 1
	n0=$(byp_guard_refusals)
	byp_frame_args
	bg_start "$WORK/bypass-recv.log" 300 ip netns exec "$LAB_PEER" \
		"$PY" "$BYP_PY" recv --port "$BYP_PORT" --seconds 240
	recv_pid=$BG_LAST
	wait_for_line "$WORK/bypass-recv.log" '^listening' 20 "$recv_pid" ||
		{ fail "receiver in the peer did not start"; return 1; }
	note "$(grep -m1 'egress guard' "$DAEMON_LOG")"
	expect_audit "egress guard on at start" egress_guard state=on
	byp_guard_on "agent running"

	# Normal mode: the sender and receiver work (through the qdisc).
	byp_send plain-normal --no-bypass
	byp_arrives plain-normal "normal, plain packet socket (control)"
	byp_send new-normal
	byp_opt_refused "normal"
	rm -f "$WORK/bypass.go"
	bg_start "$WORK/bypass-hold.log" 300 ip netns exec "$LAB_NODE" \
		"$PY" "$BYP_PY" hold "${BYP_ARGS[@]}" --go "$WORK/bypass.go" --seconds 240
	BYP_HOLD_PID=$BG_LAST
	wait_for_line "$WORK/bypass-hold.log" '^bypass ' 20 "$BYP_HOLD_PID"
	pass_if "normal: the held socket could not set PACKET_QDISC_BYPASS either" \
		"normal: the held socket: $(head -n 1 "$WORK/bypass-hold.log")" \
		grep -q '^bypass refused EPERM' "$WORK/bypass-hold.log"
	byp_xdp_refused "normal"
	BYP_OUT=$(ip netns exec "$LAB_PEER" timeout 30 "$PY" "$BYP_PY" send \
		--ifname "$LAB_PEER_IF" --src "$LAB_PEER4" --dst "$LAB_NODE_PEER4" \
		--port "$BYP_PORT" --src-mac 02:00:00:00:00:01 \
		--dst-mac 02:00:00:00:00:02 --tag scope --count 0 2>&1)
	pass_if "scope: the peer's namespace may still set PACKET_QDISC_BYPASS" \
		"scope: the peer's namespace was refused too: $(head -n 1 <<<"$BYP_OUT")" \
		grep -q '^bypass ok' <<<"$BYP_OUT"

	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "signed command"
	byp_denied_cases quarantine

	daemon_stop KILL
	note "agent SIGKILLed while quarantined"
	expect_mode quarantine "no agent"
	byp_guard_on "agent SIGKILLed: the pinned link holds"
	byp_denied_cases killed

	n=$(audit_count egress_guard state=on)
	agent_start "$DAEMON_CONFIG" || return 1
	expect_mode quarantine "restarted agent keeps the quarantine"
	audit_more_than "$n" "egress guard replaced by the restarted agent" \
		egress_guard state=on
	byp_guard_on "restarted agent"
	byp_denied_cases restarted

	# 3 in normal mode (new socket, held socket, AF_XDP), 2 in each
	# case since (new socket, AF_XDP); the peer's was not ours to count.
	n=$(($(byp_guard_refusals) - n0))
	pass_if "status: the guard counted the 9 refusals" \
		"status: the guard counted $n refusals, not 9" [ "$n" -eq 9 ]

	check "signed release" ctl_send release
	wait_mode normal 15
	pc lockdown >/dev/null 2>&1
	wait_mode lockdown 15
	expect_mode lockdown "break-glass lockdown"
	byp_denied_cases lockdown

	pc release >/dev/null 2>&1
	wait_mode normal 15
	expect_mode normal "released"
	byp_send plain-back --no-bypass
	byp_arrives plain-back "normal again, plain packet socket"
	byp_held held-back
	byp_arrives held-back "normal again, held socket (through the qdisc)"

	kill -s TERM "$BYP_HOLD_PID" 2>/dev/null
	kill -s TERM "$recv_pid" 2>/dev/null
	wait_for_line "$WORK/bypass-recv.log" '^summary' 10
	sum=$(grep '^summary' "$WORK/bypass-recv.log")
	note "receiver: $sum"
	for when in quarantine killed restarted lockdown; do
		for tag in "new-$when" "plain-$when" "held-$when"; do
			expect_none_delivered "$tag" "$(byp_got "$tag")"
		done
	done
	ensure_normal
}

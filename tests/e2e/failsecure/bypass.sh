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

# byp_held TAG: the socket that set bypass while normal sends BYP_N more;
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

# byp_refused WHAT: the last send was refused at every frame with EPERM.
byp_refused()
{
	pass_if "$1: every send refused (EPERM)" "$1: not refused: $BYP_OUT" \
		grep -q "ok=0 errors=$BYP_N first_error=EPERM" <<<"$BYP_OUT"
}

# byp_arrives TAG WHAT: all BYP_N frames of TAG reach the peer.
byp_arrives()
{
	wait_until 10 byp_got_all "$1"
	pass_if "$2: $(byp_got "$1")/$BYP_N bypass frames reached the peer" \
		"$2: only $(byp_got "$1")/$BYP_N bypass frames reached the peer" \
		byp_got_all "$1"
}

# byp_denied_cases WHEN: in lockdown or quarantine, nothing bypasses.
byp_denied_cases()
{
	local when=$1
	byp_send "new-$when"
	pass_if "$when: setsockopt(PACKET_QDISC_BYPASS) refused with EPERM" \
		"$when: setsockopt(PACKET_QDISC_BYPASS) not refused: $(head -n 1 <<<"$BYP_OUT")" \
		grep -q '^bypass refused EPERM' <<<"$BYP_OUT"
	byp_send "plain-$when" --no-bypass	# through the qdisc: tc_egress drops it
	byp_held "held-$when"
	byp_refused "$when: socket that set bypass in normal mode"
	BYP_OUT=$(ip netns exec "$LAB_NODE" timeout 10 "$PY" "$BYP_PY" xdp 2>&1)
	pass_if "$when: socket(AF_XDP) refused with EPERM" \
		"$when: socket(AF_XDP) not refused: $BYP_OUT" \
		grep -q '^xdp refused EPERM' <<<"$BYP_OUT"
}

# byp_guard_refusals: the refusals `portcullis status` counts, or -1.
byp_guard_refusals()
{
	pc status 2>/dev/null | awk '$1 == "guard:" {
		for (i = 2; i < NF; i++) if ($i == "refused") { print $(i + 1) + 0; f = 1 } }
		END { if (!f) print -1 }'
}

# An AF_PACKET socket with PACKET_QDISC_BYPASS in the node skips tc_egress
# (dev_direct_xmit). Normal mode: its frames arrive (the sender works).
# Quarantine, lockdown, the agent SIGKILLed while quarantined, and a
# restarted agent: setsockopt is refused, a socket that set bypass while
# normal cannot send, AF_XDP cannot be opened, 0 frames arrive. Released:
# it works again.
test_bypass()
{
	local when tag sum n recv_pid
	ensure_normal || return 1
	byp_frame_args
	bg_start "$WORK/bypass-recv.log" 300 ip netns exec "$LAB_PEER" \
		"$PY" "$BYP_PY" recv --port "$BYP_PORT" --seconds 240
	recv_pid=$BG_LAST
	wait_for_line "$WORK/bypass-recv.log" '^listening' 20 "$recv_pid" ||
		{ fail "receiver in the peer did not start"; return 1; }
	rm -f "$WORK/bypass.go"
	bg_start "$WORK/bypass-hold.log" 300 ip netns exec "$LAB_NODE" \
		"$PY" "$BYP_PY" hold "${BYP_ARGS[@]}" --go "$WORK/bypass.go" --seconds 240
	BYP_HOLD_PID=$BG_LAST
	wait_for_line "$WORK/bypass-hold.log" '^bypass ' 20 "$BYP_HOLD_PID"
	pass_if "normal: a socket sets PACKET_QDISC_BYPASS and is kept open" \
		"normal: the held socket: $(head -n 1 "$WORK/bypass-hold.log")" \
		grep -q '^bypass ok' "$WORK/bypass-hold.log"
	pc status 2>/dev/null | grep '^guard:' | sed 's/^/      /'
	expect_audit "egress guard on at start" egress_guard state=on

	byp_send new-normal
	byp_arrives new-normal "normal (control)"
	byp_held held-normal
	byp_arrives held-normal "normal, held socket (control)"

	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "signed command"
	byp_denied_cases quarantine
	blocked "node -> peer tcp/7000 (quarantine, through the qdisc)" out4

	daemon_stop KILL
	note "agent SIGKILLed while quarantined"
	expect_mode quarantine "no agent"
	byp_denied_cases killed

	agent_start "$DAEMON_CONFIG" || return 1
	expect_mode quarantine "restarted agent keeps the quarantine"
	expect_audit "egress guard re-attached by the restarted agent" egress_guard state=on
	byp_denied_cases restarted

	n=$(byp_guard_refusals)
	pass_if "status: the guard counted $n refusals" \
		"status: the guard's refusals not shown ($n)" [ "$n" -gt 0 ]

	check "signed release" ctl_send release
	wait_mode normal 15
	pc lockdown >/dev/null 2>&1
	wait_mode lockdown 15
	expect_mode lockdown "break-glass lockdown"
	byp_denied_cases lockdown

	pc release >/dev/null 2>&1
	wait_mode normal 15
	expect_mode normal "released"
	byp_send new-back
	byp_arrives new-back "normal again"
	byp_held held-back
	byp_arrives held-back "normal again, held socket"

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

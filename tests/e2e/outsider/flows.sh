# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 1: flows the host opened cannot be evicted from outside.
#
# The node runs the lab policy plus one ingress rule, udp/5009 (no server
# there), so every packet the peer sends to it passes and opens a flow the
# far end opened. Its own state dir, as anomaly.sh.
#   1. The node holds an idle TCP connection out to the peer's echo server
#      (tcp/7000): one round trip, then not a byte either way.
#   2. The peer sends UDP to node udp/5009 from FL_FACTOR times as many
#      (spoofed address, port) pairs as pc_flows holds (its max_entries,
#      read from the pin), two packets each (the second marks the entry
#      used for the LRU, as the idle connection's are), paced, bounded.
#      What the node passed is counted: at least twice the table's size of
#      flows must have arrived, or the attack did not happen.
#   3. The idle connection must carry 3 more round trips, the node's flow
#      table must still hold a host-opened flow, and the mode stays normal.
#   4. status counts the evictions: the peer table's grew by at least the
#      flows that arrived less its size, the host table's by none.
# On a datapath with one shared table the flood evicts the idle flow: the
# echo's reply is dropped (drop_default) and the round trip fails.
# At the end the suite's usual agent runs again, normal.

FL_PY=$(dirname "${BASH_SOURCE[0]}")/flows.py
FL_PORT=5009
FL_FACTOR=3			# the flood's sources, in pc_flows sizes
FL_SRC=198.51.100.100-198.51.100.250	# spoofed: 151 addresses, many ports
FL_NADDR=151
FL_SPORT0=10000
FL_PPS=${FL_PPS:-400000}	# paced: the node's 2 shared CPUs keep up
FL_MAX_S=60			# the flood's lifetime, at most
FL_IDLE_PID=
FL_RUNS=0
FL_FLOOD=${FLOOD_BIN:-$E2E_ROOT/build/flood}	# tests/bench/flood.c

fl_files()
{
	{
		cat "$AGENT_POLICY_SRC"
		echo "  - {name: flood-in, action: allow, direction: ingress, proto: udp, ports: $FL_PORT, modes: [normal]}"
	} >"$WORK/fl-policy.yaml"
	sed -e 's/^policy: .*/policy: fl-policy.yaml/' "$WORK/agent.yaml" \
		>"$WORK/fl-agent.yaml"
}

fl_agent()
{
	daemon_stop TERM
	[ -n "${FL_SUITE_STATE_DIR:-}" ] || FL_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/fl-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$1"
}

fl_restore()
{
	if [ -n "$FL_IDLE_PID" ]; then
		kill -s TERM "$FL_IDLE_PID" 2>/dev/null
		wait "$FL_IDLE_PID" 2>/dev/null
		FL_IDLE_PID=
	fi
	daemon_stop TERM
	STATE_DIR=${FL_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	wait_mode normal 15
	ensure_normal
}

# fl_max: max_entries of the pinned pc_flows.
fl_max()
{
	bpftool map show pinned "$PIN_DIR/pc_flows" 2>/dev/null |
		sed -n 's/.*max_entries \([0-9]*\).*/\1/p'
}

# fl_flows_line: the status line about the flow tables.
fl_flows_line() { pc status 2>/dev/null | grep -m1 '^flows:'; }

# fl_host_flows: host-opened entries from status; -1 if it shows none.
fl_host_flows()
{
	fl_flows_line | sed -n 's/.*host-opened \([0-9]*\) of.*/\1/p' |
		grep . || echo -1
}

# fl_evicted host|peer: that table's "N evicted" from status; -1 if none.
fl_evicted()
{
	fl_flows_line | sed -n "s/.*$1-opened [0-9]* of [0-9]* ([0-9]* embryonic, \([0-9]*\) evicted).*/\1/p" |
		grep . || echo -1
}

# fl_grew BEFORE AFTER WANT: both read, and grown by WANT > 0 at least.
fl_grew() { [ "$1" -ge 0 ] && [ "$3" -gt 0 ] && [ "$(($2 - $1))" -ge "$3" ]; }
# fl_none BEFORE AFTER: both read as 0.
fl_none() { [ "$1" -eq 0 ] && [ "$2" -eq 0 ]; }

fl_passed_at_least() { [ "$(reason_count pass_rule ingress)" -ge "$1" ]; }

# fl_setup: the scenario's agent, normal; FL_MAX, FL_NSRC, FL_NPORT, FL_MAC.
fl_setup()
{
	ensure_normal || return 1
	fl_files
	fl_agent "$WORK/fl-agent.yaml" || return 1
	wait_mode normal 15
	ensure_normal || return 1
	FL_MAX=$(fl_max)
	[ -n "$FL_MAX" ] && [ "$FL_MAX" -gt 0 ] ||
		{ fail "cannot read pc_flows' max_entries"; return 1; }
	FL_NSRC=$((FL_FACTOR * FL_MAX))
	FL_NPORT=$(((FL_NSRC + FL_NADDR - 1) / FL_NADDR))
	FL_MAC=$(ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" |
		awk '/link\/ether/ { print $2 }')
}

# fl_idle_start: the node's idle connection out to the peer's tcp/7000.
fl_idle_start()
{
	FL_IDLE_LOG=$WORK/fl-idle-$((++FL_RUNS)).log
	FL_WAKE=$WORK/fl-wake-$FL_RUNS
	bg_start "$FL_IDLE_LOG" $((FL_MAX_S + 60)) ip netns exec "$LAB_NODE" \
		"$PY" "$FL_PY" idle "$LAB_PEER4" 7000 --wake "$FL_WAKE" \
		--max-idle $((FL_MAX_S + 30))
	FL_IDLE_PID=$BG_LAST
	wait_for_line "$FL_IDLE_LOG" '^idle' 15 "$FL_IDLE_PID"
}

# fl_idle_end: wake it for 3 round trips; its summary in FL_SUMMARY.
fl_idle_end()
{
	touch "$FL_WAKE"
	wait "$FL_IDLE_PID" 2>/dev/null
	FL_IDLE_PID=
	FL_SUMMARY=$(grep '^summary' "$FL_IDLE_LOG")
}

# fl_survived: the idle connection's 3 round trips after the flood worked.
fl_survived() { [ "$FL_SUMMARY" = "summary ok=4 first_fail=none" ]; }

# fl_flood PORT [flood args]: 2 packets from each of FL_NSRC spoofed
# (address, port) pairs to node udp/PORT, bounded; the sender's report in
# FL_OUT, its rate (pps) in FL_RATE, its seconds in FL_ELAPSED.
fl_flood()
{
	local port=$1
	shift
	FL_OUT=$(ip netns exec "$LAB_PEER" timeout $((FL_MAX_S + 10)) "$FL_FLOOD" send \
		--ifname "$LAB_PEER_IF" --dst-mac "$FL_MAC" --src "$FL_SRC" \
		--dst "$LAB_NODE_PEER4" --sport "$FL_SPORT0-$((FL_SPORT0 + FL_NPORT - 1))" \
		--dport "$port" --twice --count $((2 * FL_NSRC)) \
		--duration "$FL_MAX_S" "$@" 2>&1)
	FL_RATE=$(sed -n 's/.* rate \([0-9]*\).*/\1/p' <<<"$FL_OUT")
	FL_ELAPSED=$(sed -n 's/.* elapsed \([0-9.]*\).*/\1/p' <<<"$FL_OUT")
	[ -n "$FL_RATE" ]
}

test_flows()
{
	local n p0 p1 eh0 ep0 eh1 ep1 want
	fl_setup || { fl_restore; return 1; }
	if fl_idle_start; then
		pass "node -> peer tcp/7000 connected, one round trip, now idle"
	else
		fail "idle connection never worked: $(tail -n 1 "$FL_IDLE_LOG")"
		fl_restore
		return 1
	fi
	note "before: $(fl_flows_line)"

	eh0=$(fl_evicted host)
	ep0=$(fl_evicted peer)
	p0=$(reason_count pass_rule ingress)
	note "attack: UDP to node udp/$FL_PORT from $FL_NSRC spoofed (address, port) pairs, 2 packets each, $FL_PPS pps (pc_flows holds $FL_MAX)"
	fl_flood "$FL_PORT" --pps "$FL_PPS"
	note "peer: $FL_OUT"
	# Count what the node passed, not what was sent: at least twice the
	# table's size of flows arrived, each of them once at least.
	if wait_until 10 fl_passed_at_least $((p0 + 4 * FL_MAX)); then
		p1=$(reason_count pass_rule ingress)
		pass "the node passed $((p1 - p0)) flood packets (>= $((4 * FL_MAX)): the table filled twice over)"
	else
		p1=$(reason_count pass_rule ingress)
		fail "the node passed only $((p1 - p0)) flood packets, < $((4 * FL_MAX)): no attack to survive"
	fi
	note "after: $(fl_flows_line)"
	# Two packets a flow: at least half of what passed were new flows,
	# and the table holds FL_MAX of them at most; the rest were evicted.
	eh1=$(fl_evicted host)
	ep1=$(fl_evicted peer)
	want=$(((p1 - p0) / 2 - FL_MAX))
	pass_if "status: the peer table counted $((ep1 - ep0)) evictions (>= $want)" \
		"status: peer evictions $ep0 -> $ep1, want growth >= $want: $(fl_flows_line)" \
		fl_grew "$ep0" "$ep1" "$want"
	pass_if "status: the host table counted no eviction ($eh0 -> $eh1)" \
		"status: host evictions $eh0 -> $eh1, want 0 -> 0: $(fl_flows_line)" \
		fl_none "$eh0" "$eh1"

	fl_idle_end
	pass_if "the idle connection survived the flood: $FL_SUMMARY" \
		"idle connection lost to the flood: $FL_SUMMARY (drop_default ingress now $(reason_count drop_default ingress))" \
		fl_survived
	n=$(fl_host_flows)
	pass_if "status: host-opened flows kept ($n)" \
		"status shows no host-opened flow table: $(fl_flows_line)" \
		[ "$n" -ge 1 ]
	expect_mode normal "after the flood"
	fl_restore
	expect_mode normal "the suite's agent again"
	allowed "node -> peer tcp/7000 at the end" out4
}

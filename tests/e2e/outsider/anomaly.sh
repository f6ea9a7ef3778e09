# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 3: the anomaly trigger on egress_denied cannot be pulled
# from outside.
#
# The node runs the lab policy plus an egress deny rule on tcp/25, and one
# trigger: egress_denied >= 50 for 2 intervals -> lockdown (the shipped
# one). Its own state dir, so nothing an earlier scenario saved decides it.
#   1. The peer sends AN_SYNS bare SYNs from source port 25 to the web port
#      8080, each from another spoofed address of 2001:db8:99::/64 (the
#      node routes that prefix back through the peer). Every SYN-ACK the
#      node answers with is dropped by the deny rule: the peer must get
#      none, the node must stay normal (no anomaly audited) and its own
#      connection to the peer must live on.
#   2. Positive control: the node itself connects out to the peer's tcp/25,
#      100 attempts a second: the peer gets none of the SYNs, and the
#      trigger fires (audited anomaly, lockdown); a signed release ends it.
# At the end the suite's usual agent runs again, normal.

AN_PY=$(dirname "${BASH_SOURCE[0]}")/anomaly.py
AN_SYNS=800
AN_SRCNET=2001:db8:99::
AN_SNIFF_PID=

an_files()
{
	{
		cat "$AGENT_POLICY_SRC"
		echo "  - {name: no-smtp-out, action: deny, direction: egress, proto: tcp, ports: 25}"
	} >"$WORK/an-policy.yaml"
	sed -e 's/^policy: .*/policy: an-policy.yaml/' -e '/^  triggers:/,$d' \
		"$WORK/agent.yaml" >"$WORK/an-agent.yaml"
	cat >>"$WORK/an-agent.yaml" <<EOF
  triggers:
    - {name: callout, metric: egress_denied, threshold: 50, intervals: 2, action: lockdown}
EOF
}

an_agent()
{
	daemon_stop TERM
	[ -n "${AN_SUITE_STATE_DIR:-}" ] || AN_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/an-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$1"
}

an_restore()
{
	an_sniff_stop
	ip -n "$LAB_NODE" -6 route del "$AN_SRCNET/64" 2>/dev/null
	daemon_stop TERM
	STATE_DIR=${AN_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	wait_mode normal 15
	ensure_normal
}

# an_sniff_start: count TCP to port 25 arriving at the peer.
an_sniff_start()
{
	AN_SNIFF_LOG=$WORK/an-sniff-$1.log
	bg_start "$AN_SNIFF_LOG" 120 ip netns exec "$LAB_PEER" \
		"$PY" "$AN_PY" sniff "$LAB_PEER_IF" --seconds 100
	AN_SNIFF_PID=$BG_LAST
	wait_for_line "$AN_SNIFF_LOG" '^listening' 10 "$AN_SNIFF_PID"
}

# an_sniff_stop: end the sniffer; its counts in AN_SYNACK25, AN_SYN25.
an_sniff_stop()
{
	[ -n "$AN_SNIFF_PID" ] || return 0
	kill -s TERM "$AN_SNIFF_PID" 2>/dev/null
	wait "$AN_SNIFF_PID" 2>/dev/null
	AN_SNIFF_PID=
	read -r _ AN_SYNACK25 _ AN_SYN25 < <(grep '^synack25' "$AN_SNIFF_LOG")
	: "${AN_SYNACK25:=-1}" "${AN_SYN25:=-1}"
}

an_drops_at_least() { [ "$(reason_count drop_deny_rule egress)" -ge "$1" ]; }
an_not_normal() { [ "$(mode_now)" != normal ]; }

test_anomaly()
{
	local n d0 out
	ensure_normal || return 1
	an_files
	an_agent "$WORK/an-agent.yaml" || { an_restore; return 1; }
	wait_mode normal 15
	ensure_normal || { an_restore; return 1; }
	ip -n "$LAB_NODE" -6 route add "$AN_SRCNET/64" via "$LAB_PEER6" ||
		fail "route $AN_SRCNET/64 via the peer"
	n=$(audit_count anomaly)
	d0=$(reason_count drop_deny_rule egress)
	hold_begin an_own node "$LAB_PEER4" 7000
	an_sniff_start flood

	note "attack: $AN_SYNS bare SYNs from port 25 (spoofed $AN_SRCNET/64) to node tcp/8080 over 4 s"
	out=$(ip netns exec "$LAB_PEER" timeout 30 "$PY" "$AN_PY" synflood \
		"$LAB_NODE_PEER6" 8080 "$AN_SRCNET" "$AN_SYNS" --seconds 4 2>&1)
	note "peer: $out"
	# The attack landed: the node answered, the deny rule dropped it.
	if wait_until 10 an_drops_at_least $((d0 + AN_SYNS * 9 / 10)); then
		pass "node's SYN-ACKs to port 25 dropped: $(($(reason_count drop_deny_rule egress) - d0)) drop_deny_rule egress"
	else
		fail "only $(($(reason_count drop_deny_rule egress) - d0)) drop_deny_rule egress after $AN_SYNS SYNs"
	fi
	# Three more sampling intervals (anomaly.interval 1 s) for the trigger.
	if wait_until 3 an_not_normal; then
		fail "the SYN flood moved the node to $(mode_now): $(audit_last transition trigger=anomaly)"
	else
		pass "node still normal after the SYN flood"
	fi
	pass_if "audit: no anomaly from the outsider's SYNs" \
		"audit: anomaly from the outsider's SYNs: $(audit_last anomaly)" \
		[ "$(audit_count anomaly)" -eq "$n" ]
	hold_end an_own kept
	an_sniff_stop
	expect_none_delivered "node SYN-ACKs to peer port 25" "$AN_SYNACK25"
	pc status 2>/dev/null | grep -E '^mode:' | sed 's/^/      | /'
	ensure_normal || { an_restore; return 1; }

	note "control: the node itself tries the peer's tcp/25, 100 times a second"
	n=$(audit_count anomaly)
	an_sniff_start own
	bg_start "$WORK/an-connect.log" 20 ip netns exec "$LAB_NODE" \
		"$PY" "$AN_PY" connect "$LAB_PEER4" 25 --rate 100 --seconds 8
	local cpid=$BG_LAST
	wait_mode lockdown 15
	kill -s TERM "$cpid" 2>/dev/null
	wait "$cpid" 2>/dev/null
	expect_mode lockdown "the host's own denied attempts trip the trigger"
	audit_more_than "$n" "anomaly, trigger callout" anomaly trigger=callout
	expect_audit "transition normal -> lockdown, trigger anomaly" \
		transition from=normal to=lockdown trigger=anomaly
	an_sniff_stop
	expect_none_delivered "node SYNs to peer port 25" "$AN_SYN25"
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "after the signed release"
	an_restore
	expect_mode normal "the suite's agent again"
	allowed "node -> peer tcp/7000 at the end" out4
}

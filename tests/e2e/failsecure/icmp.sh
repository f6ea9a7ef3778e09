# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 1: ICMP errors quoting a management flow must not carry
# anything to, or from, anyone but that flow's own peer, nor more than an
# error needs. In quarantine the management host opens tcp/22 flows (v4 and
# v6); the node and the peer then send errors quoting them, counted at the
# receiver. The datapath's drop counter says when a burst has been judged.

ICMPERR=$E2E_ROOT/tests/e2e/failsecure/icmperr.py
ICMP_BURST=20

# icmp_counter NS FAMILY MARKER: a receiver counting ICMP with MARKER.
icmp_counter()
{
	bg_start "$WORK/icmp-$3.log" 120 ip netns exec "$(ns_of "$1")" \
		"$PY" "$ICMPERR" count "$2" --marker "$3" --seconds 100
	ICMP_COUNTER=$BG_LAST
	wait_for_line "$WORK/icmp-$3.log" '^ready' 20 "$BG_LAST"
}

# icmp_counted MARKER: stop the receiver; ICMP_GOT what it counted, -1 if
# it said nothing. (Not in $(...): wait needs the receiver's parent.)
icmp_counted()
{
	kill -TERM "$ICMP_COUNTER" 2>/dev/null
	wait "$ICMP_COUNTER" 2>/dev/null
	ICMP_GOT=$(sed -n 's/^received \([0-9]*\)$/\1/p' "$WORK/icmp-$1.log")
	ICMP_GOT=${ICMP_GOT:--1}
}

# counter_grew REASON DIR BEFORE N: the node has counted N more.
counter_grew() { [ $(($(reason_count "$1" "$2") - $3)) -ge "$4" ]; }

# icmp_case DESC RECV_NS EXPECT FROM_NS SRC DST QSRC QDST QSPORT QDPORT
#           [--payload N]: a burst of errors, EXPECT delivered (all or 0).
icmp_case()
{
	local desc=$1 recv=$2 expect=$3 from=$4 marker fam dir before reason
	shift 4
	marker=pc-icmp-$RANDOM$RANDOM
	case $1 in *:*) fam=6 ;; *) fam=4 ;; esac
	if [ "$from" = node ]; then dir=egress; else dir=ingress; fi
	if [ "$expect" -eq 0 ]; then reason=drop_quarantine; else reason=pass_related_icmp; fi
	before=$(reason_count "$reason" "$dir")
	icmp_counter "$recv" "$fam" "$marker" || { fail "$desc: no receiver"; return; }
	ip netns exec "$(ns_of "$from")" "$PY" "$ICMPERR" send "$@" \
		--count "$ICMP_BURST" --marker "$marker" >>"$WORK/icmp-send.log" 2>&1
	# Judged when the node has counted the whole burst (dropped, or
	# passed as related); the receiver then drains what reached it.
	wait_until 10 counter_grew "$reason" "$dir" "$before" "$ICMP_BURST"
	icmp_counted "$marker"
	if [ "$ICMP_GOT" -lt 0 ]; then
		fail "$desc: the receiver did not report: $(tail -n 2 "$WORK/icmp-$marker.log")"
	elif [ "$expect" -eq 0 ]; then
		expect_none_delivered "$desc" "$ICMP_GOT"
	else
		pass_if "$desc: $ICMP_GOT of $ICMP_BURST delivered (the flow's own peer)" \
			"$desc: $ICMP_GOT of $ICMP_BURST delivered, expected all" \
			[ "$ICMP_GOT" -eq "$expect" ]
	fi
	note "$(tail -n 1 "$WORK/icmp-send.log")"
}

test_icmp()
{
	ensure_normal || return 1
	# The peer reaches the node's management addresses directly (it
	# spoofs nothing but the packets' contents).
	ip -n "$LAB_PEER" route replace "$LAB_NODE_MGMT4/32" dev "$LAB_PEER_IF"
	ip -n "$LAB_PEER" -6 route replace "$LAB_NODE_MGMT6/128" dev "$LAB_PEER_IF"
	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "icmp: errors judged in quarantine"
	check "mgmt opens tcp/22 (v4)" ip netns exec "$LAB_MGMT" "$PY" "$ICMPERR" \
		syn "$LAB_MGMT4" "$LAB_NODE_MGMT4" 50022 22
	check "mgmt opens tcp/22 (v6)" ip netns exec "$LAB_MGMT" "$PY" "$ICMPERR" \
		syn "$LAB_MGMT6" "$LAB_NODE_MGMT6" 50022 22

	# The flow's own peer: errors either way still pass (they matter).
	icmp_case "node -> mgmt error quoting the flow" mgmt "$ICMP_BURST" node \
		"$LAB_NODE_MGMT4" "$LAB_MGMT4" "$LAB_MGMT4" "$LAB_NODE_MGMT4" 50022 22
	icmp_case "mgmt -> node error quoting the flow" node "$ICMP_BURST" mgmt \
		"$LAB_MGMT4" "$LAB_NODE_MGMT4" "$LAB_NODE_MGMT4" "$LAB_MGMT4" 22 50022
	# A covert channel: to, or from, anyone else, or a kilobyte on.
	icmp_case "node -> peer error quoting the mgmt flow, +1000 B" peer 0 node \
		"$LAB_NODE_PEER4" "$LAB_PEER4" "$LAB_MGMT4" "$LAB_NODE_MGMT4" 50022 22 --payload 1000
	icmp_case "node -> peer error quoting the mgmt flow (v4 mgmt source)" peer 0 node \
		"$LAB_NODE_MGMT4" "$LAB_PEER4" "$LAB_MGMT4" "$LAB_NODE_MGMT4" 50022 22
	icmp_case "node -> mgmt error quoting the flow, +1000 B" mgmt 0 node \
		"$LAB_NODE_MGMT4" "$LAB_MGMT4" "$LAB_MGMT4" "$LAB_NODE_MGMT4" 50022 22 --payload 1000
	icmp_case "peer -> node error quoting the mgmt flow, +1000 B" node 0 peer \
		"$LAB_PEER4" "$LAB_NODE_MGMT4" "$LAB_NODE_MGMT4" "$LAB_MGMT4" 22 50022 --payload 1000
	icmp_case "peer -> node error quoting the mgmt flow" node 0 peer \
		"$LAB_PEER4" "$LAB_NODE_MGMT4" "$LAB_NODE_MGMT4" "$LAB_MGMT4" 22 50022
	icmp_case "node -> peer ICMPv6 error quoting the mgmt flow, +1000 B" peer 0 node \
		"$LAB_NODE_PEER6" "$LAB_PEER6" "$LAB_MGMT6" "$LAB_NODE_MGMT6" 50022 22 --payload 1000
	icmp_case "peer -> node ICMPv6 error quoting the mgmt flow" node 0 peer \
		"$LAB_PEER6" "$LAB_NODE_MGMT6" "$LAB_NODE_MGMT6" "$LAB_MGMT6" 22 50022
	icmp_case "node -> mgmt ICMPv6 error quoting the flow, 1300 B" mgmt 0 node \
		"$LAB_NODE_MGMT6" "$LAB_MGMT6" "$LAB_MGMT6" "$LAB_NODE_MGMT6" 50022 22 --payload 1200

	ip -n "$LAB_PEER" route del "$LAB_NODE_MGMT4/32" dev "$LAB_PEER_IF" 2>/dev/null
	ip -n "$LAB_PEER" -6 route del "$LAB_NODE_MGMT6/128" dev "$LAB_PEER_IF" 2>/dev/null
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "released"
}

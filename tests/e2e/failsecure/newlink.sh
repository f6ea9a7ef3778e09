# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 4: a link that appears while no agent runs.

NL_PY=$E2E_ROOT/tests/e2e/failsecure/newlink.py
# A link the agent does not manage, made while it is dead (a container
# runtime's veth): documentation addresses of its own.
NL_X_IF=pcnlx
NL_X_NODE4=203.0.113.129
NL_X_PEER4=203.0.113.130
NL_X_NODE6=2001:db8:7::1
NL_X_PEER6=2001:db8:7::2
NL_BURST=200		# datagrams per stream and burst
NL_N=0

nl_ifindex() { ip -n "$LAB_NODE" -o link show "$1" 2>/dev/null | cut -d: -f1; }
nl_xdp_on() { ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | grep -q 'prog/xdp'; }

# The status line, and what it counts.
backstop_line() { pc status 2>/dev/null | grep -m1 '^backstop:'; }
backstop_on() { backstop_line | grep -q '^backstop: *on'; }
# backstop_dropped: ingress packets the backstop dropped (-1: not shown).
backstop_dropped()
{
	backstop_line | sed -n 's/.*ingress \([0-9]*\) pkts.*/\1/p' | grep . || echo -1
}

# nl_recv_start: a counting receiver on the node, udp/5000 and 5001, v4+v6.
nl_recv_start()
{
	NL_N=$((NL_N + 1))
	NL_RUN=nl$NL_N-$$
	NL_OUT=$WORK/newlink-$NL_N
	bg_start "$NL_OUT.recv.log" 150 ip netns exec "$LAB_NODE" "$PY" "$NL_PY" \
		recv --ports 5000,5001 --run "$NL_RUN" --out "$NL_OUT.counts" \
		--duration 120
	NL_RECV=$BG_LAST
	wait_for_line "$NL_OUT.recv.log" '^listening' 10 "$NL_RECV" || {
		fail "newlink receiver did not start: $(tail -n 1 "$NL_OUT.recv.log")"
		return 1
	}
}

# nl_send STREAM...: NL_BURST datagrams of each NAME,SRC,DST,PORT from the peer.
nl_send()
{
	local s args=()
	for s in "$@"; do
		args+=(--stream "$s")
	done
	ip netns exec "$LAB_PEER" timeout 60 "$PY" "$NL_PY" send \
		--count "$NL_BURST" --run "$NL_RUN" "${args[@]}" \
		>>"$NL_OUT.send.log" 2>&1
}

# nl_recv_stop: the receiver reads on until quiet, then writes its counts.
nl_recv_stop()
{
	kill -s TERM "$NL_RECV" 2>/dev/null
	wait "$NL_RECV" 2>/dev/null
	[ -f "$NL_OUT.counts" ] || fail "newlink receiver wrote no counts"
}

nl_got() { awk -v n="$1" '$1 == n { print $2; f = 1 } END { if (!f) print 0 }' "$NL_OUT.counts" 2>/dev/null; }
nl_sent() { awk -v n="$1" '$1 == "sent" && $2 == n { print $3; f = 1 } END { if (!f) print 0 }' "$NL_OUT.send.log"; }

# The unmanaged pair, node NL_X_IF <-> peer NL_X_IF, neighbours resolved.
nl_extra_up()
{
	_lab_link "$LAB_NODE" "$NL_X_IF" "$LAB_PEER" "$NL_X_IF" &&
	_lab_addrs "$LAB_NODE" "$NL_X_IF" "$NL_X_NODE4/25" "$NL_X_NODE6/64" &&
	_lab_addrs "$LAB_PEER" "$NL_X_IF" "$NL_X_PEER4/25" "$NL_X_PEER6/64" &&
	wait_until 10 ping_probe peer "$NL_X_NODE4" >/dev/null &&
	wait_until 10 ping_probe peer "$NL_X_NODE6" >/dev/null
}

nl_extra_down() { ip -n "$LAB_NODE" link del "$NL_X_IF" 2>/dev/null; }

# nl_neigh add|del: the peer's neighbour entries for the node's peer link,
# permanent, so every datagram of a burst leaves the peer at once (the
# backstop drops ND on the re-created link too: without them the IPv6 ones
# would wait in the peer's neighbour queue and never be sent at all).
nl_neigh()
{
	local mac a
	mac=$(ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | awk '/link\/ether/ { print $2 }')
	for a in "$LAB_NODE_PEER4" "$LAB_NODE_PEER6"; do
		if [ "$1" = add ]; then
			ip -n "$LAB_PEER" neigh replace "$a" lladdr "$mac" \
				dev "$LAB_PEER_IF" nud permanent || return 1
		else
			ip -n "$LAB_PEER" neigh del "$a" dev "$LAB_PEER_IF" 2>/dev/null
		fi
	done
}

# D streams: each denied by the policy on the peer link, both families.
NL_DENIED=(Dd4 Dr4 Dd6)
nl_streams_peer()
{
	echo "Dd4,$LAB_PEER4,$LAB_NODE_PEER4,5001"	# ingress default deny
	echo "Dr4,$LAB_PEER_BAD4,$LAB_NODE_PEER4,5000"	# rule "blocked"
	echo "Dd6,$LAB_PEER6,$LAB_NODE_PEER6,5001"	# ingress default deny
	echo "A4,$LAB_PEER4,$LAB_NODE_PEER4,5000"	# rule udp-in (normal)
}

# nl_expect_denied WHEN: every D stream of the last burst: 0 delivered.
nl_expect_denied()
{
	local s
	for s in "${NL_DENIED[@]}"; do
		[ "$(nl_sent "$s")" -gt 0 ] ||
			fail "$1: no $s datagram left the peer: nothing proven"
		expect_none_delivered "$1, $s ($(nl_sent "$s") sent)" "$(nl_got "$s")"
	done
}

# With the agent SIGKILLed, the node's peer link is deleted and made again
# (same name, same addresses, a new ifindex, nothing attached), and a link
# the agent does not manage appears. A burst the policy denies, sent at
# once on the re-created link, must not arrive, from its first datagram:
# the backstop (netfilter links pinned by the agent) drops all IP on a
# managed name that XDP/TC are not attached to. The unmanaged link passes.
# The agent back, it attaches again: the policy decides once more.
test_newlink()
{
	local old new d0 d1 d2 sum streams
	ensure_normal || return 1
	if backstop_on; then
		pass "status: $(backstop_line)"
	else
		fail "status: no backstop ($(backstop_line))"
	fi
	old=$(nl_ifindex "$LAB_NODE_PEER_IF")
	d0=$(backstop_dropped)
	daemon_stop KILL
	note "portcullisd SIGKILLed"
	if ! lab_recreate_peer_link || ! nl_neigh add || ! nl_extra_up; then
		fail "could not re-create $LAB_NODE_PEER_IF or make $NL_X_IF"
		nl_extra_down
		agent_start "$DAEMON_CONFIG"
		return 1
	fi
	new=$(nl_ifindex "$LAB_NODE_PEER_IF")
	pass_if "$LAB_NODE_PEER_IF re-created: ifindex $old -> $new, no XDP program on it" \
		"$LAB_NODE_PEER_IF: ifindex $old -> $new, xdp: $(nl_xdp_on && echo yes || echo no)" \
		eval '[ "$new" -gt "$old" ] && ! nl_xdp_on'
	mapfile -t streams < <(nl_streams_peer)
	nl_recv_start || return 1
	nl_send "${streams[@]}" "X4,$NL_X_PEER4,$NL_X_NODE4,5001" \
		"X6,$NL_X_PEER6,$NL_X_NODE6,5001"
	nl_recv_stop
	sed 's/^/      | /' "$NL_OUT.send.log"
	nl_expect_denied "re-created link, no agent"
	note "A4 (allowed by the policy): $(nl_got A4) of $(nl_sent A4) delivered: the backstop drops all IP there until the agent is back"
	d1=$(backstop_dropped)
	sum=$(($(nl_sent Dd4) + $(nl_sent Dr4) + $(nl_sent Dd6) + $(nl_sent A4)))
	pass_if "the backstop counted its drops: ingress $d0 -> $d1 packets (>= the $sum datagrams sent on the re-created link)" \
		"backstop drops: ingress $d0 -> $d1, fewer than the $sum datagrams sent" \
		[ "$((d1 - d0))" -ge "$sum" ]
	pass_if "unmanaged $NL_X_IF passes: X4 $(nl_got X4)/$(nl_sent X4), X6 $(nl_got X6)/$(nl_sent X6) delivered" \
		"unmanaged $NL_X_IF: X4 $(nl_got X4)/$(nl_sent X4), X6 $(nl_got X6)/$(nl_sent X6)" \
		eval '[ "$(nl_got X4)" -eq "$(nl_sent X4)" ] && [ "$(nl_sent X4)" -gt 0 ] &&
			[ "$(nl_got X6)" -eq "$(nl_sent X6)" ] && [ "$(nl_sent X6)" -gt 0 ]'
	allowed "mgmt -> node tcp/22 over the untouched $LAB_NODE_MGMT_IF (agent dead)" ssh4
	blocked "peer -> node tcp/9090 over the re-created link (agent dead)" alt4
	nl_extra_down

	agent_start "$DAEMON_CONFIG" || return 1
	pass_if "agent back: XDP on the re-created $LAB_NODE_PEER_IF" \
		"agent back: no XDP on $LAB_NODE_PEER_IF" wait_until 15 nl_xdp_on
	expect_audit "agent_start with the backstop on" agent_start backstop=on
	wait_mode normal 20
	expect_mode normal "heartbeats lift the dead-man lockdown"
	allowed "peer -> node tcp/8080 (rule web, XDP again)" web4
	blocked "peer -> node tcp/9090 (ingress default, XDP again)" alt4
	d1=$(backstop_dropped)
	nl_recv_start || return 1
	nl_send "${streams[@]}"
	nl_recv_stop
	nl_expect_denied "re-attached link"
	pass_if "allowed again: A4 $(nl_got A4) of $(nl_sent A4) delivered" \
		"A4: $(nl_got A4) of $(nl_sent A4) delivered after the re-attach" \
		eval '[ "$(nl_sent A4)" -gt 0 ] && [ "$(nl_got A4)" -eq "$(nl_sent A4)" ]'
	d2=$(backstop_dropped)
	pass_if "the backstop passes the enforced link: its drops stay at $d2" \
		"the backstop dropped on the enforced link: $d1 -> $d2" [ "$d1" -eq "$d2" ]
	nl_neigh del
	nl_unavailable
	ensure_normal
}

# A backstop the agent cannot install (here: a directory where one link's
# pin goes, as a kernel without netfilter links refuses them all) is said
# loudly -- log, audit, status -- and XDP/TC enforce as before.
nl_unavailable()
{
	local pin=$PIN_DIR/link_nf_ipv6_out n
	n=$(audit_count backstop_unavailable)
	daemon_stop KILL
	rm -f -- "$pin" && mkdir -- "$pin" || { fail "cannot block $pin"; return 1; }
	agent_start "$DAEMON_CONFIG"
	pass_if "agent without its backstop says so: $(grep -m1 -o 'BACKSTOP UNAVAILABLE.*' "$DAEMON_LOG" | cut -c1-110)..." \
		"no BACKSTOP UNAVAILABLE in the agent's log" \
		grep -q 'ready (.*backstop OFF' "$DAEMON_LOG"
	audit_more_than "$n" "backstop_unavailable recorded" backstop_unavailable
	pass_if "status: $(backstop_line | cut -c1-72)..." "status: $(backstop_line)" \
		eval 'backstop_line | grep -q "^backstop: *OFF: only 3 of 4"'
	blocked "peer -> node tcp/9090 (XDP/TC without the backstop)" alt4
	allowed "peer -> node tcp/8080 (XDP/TC without the backstop)" web4
	daemon_stop TERM
	rmdir -- "$pin"
	agent_start "$DAEMON_CONFIG"
	pass_if "backstop back with the next start: $(backstop_line | cut -c1-60)" \
		"backstop not back: $(backstop_line)" backstop_on
}

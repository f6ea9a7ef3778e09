# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 4: /metrics and /healthz cannot be held shut.
#
# The node's agent serves metrics on 0.0.0.0:9712 (this scenario's config;
# its policy lets anyone in on tcp/9712 in normal), so the peer reaches it
# as an outsider would the DaemonSet's $(HOST_IP):9712. The peer holds
# connections open by trickling header bytes (tests/e2e/outsider/metrics.py
# trickle: a byte every 0.5 s, which resets libmicrohttpd's idle timeout,
# and every connection the server closes opened again), while /healthz and
# /metrics are polled every 0.25 s:
#   1. 32 connections from one address (198.51.100.2): from the mgmt host
#      and from the node itself, every probe answers 200 within
#      OM_BOUND_MS (the per-client limit leaves the rest for others);
#   2. 80 connections from 16 addresses, more than the server takes from
#      other hosts: from the node itself (the kubelet's place), every
#      probe answers 200 within OM_BOUND_MS (the reserve for this host);
#      the mgmt host's share is recorded, not asserted (it competes with
#      the attacker for the remote budget).
# In both the server closes every held connection by the whole-request
# deadline (2 s; the attacker's longest-lived one is measured), the mode
# stays normal, no heartbeat is lost, and a counted burst of UDP to a
# denied port delivers nothing. At the end the suite's agent
# (tests/configs/lab-agent.yaml) runs again, normal.

OM_PY=$(dirname "${BASH_SOURCE[0]}")/metrics.py
OM_COUNT_PY=$(dirname "${BASH_SOURCE[0]}")/../failsecure/fleetauth.py	# udp-count, udp-burst
OM_PORT=9712
OM_DENIED_UDP=5003		# nothing in the policy allows it
OM_BURST=50
OM_ATTACK_S=10			# the attacker's lifetime, at most
OM_POLL_S=6			# the pollers run inside the attack
OM_BOUND_MS=1500		# a probe's answer, at most (2 shared CPUs)
OM_DEADLINE_MS=2000		# PC_HTTP_DEADLINE_MS
OM_SWEEP_MARGIN_MS=1000		# the sweep period, scheduling, the client's view
OM_EXTRA=(11 12 13 14 15 16 17 18 19 20 21 22 23 24 25)	# 198.51.100.X on the peer
OM_RUNS=0
OM_PIDS=()

# om_files: the scenario's agent config and policy in WORK.
om_files()
{
	{
		cat "$AGENT_POLICY_SRC"
		echo "  - {name: metrics-in, action: allow, direction: ingress, proto: tcp, ports: $OM_PORT, modes: [normal]}"
	} >"$WORK/om-policy.yaml"
	{
		sed 's/^policy:.*/policy: om-policy.yaml/' "$AGENT_CONFIG_SRC"
		printf 'metrics:\n  listen: "0.0.0.0:%s"\n' "$OM_PORT"
	} >"$WORK/om-agent.yaml"
}

# om_bg NAME NETNS CMD...: bounded, in NETNS; log in OM_LOG, PID in BG_LAST.
om_bg()
{
	local name=$1 ns=$2
	shift 2
	OM_RUNS=$((OM_RUNS + 1))
	OM_LOG=$WORK/om-$name-$OM_RUNS.log
	bg_start "$OM_LOG" 60 ip netns exec "$ns" "$@"
	OM_PIDS+=("$BG_LAST")
}

om_kill()
{
	[ -n "$1" ] || return 0
	kill -s TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

om_extra_addrs()
{
	local op=$1 x
	for x in "${OM_EXTRA[@]}"; do
		ip -n "$LAB_PEER" addr "$op" "198.51.100.$x/24" dev "$LAB_PEER_IF" 2>/dev/null
	done
}

# om_healthy: /healthz answers from the node, the server is up.
om_healthy()
{
	ip netns exec "$LAB_NODE" timeout 5 "$PY" "$OM_PY" poll \
		"http://$LAB_NODE_PEER4:$OM_PORT/healthz" --seconds 0.1 --timeout 2 |
		grep -q '^summary .* ok=1 '
}

# om_burst: OM_BURST datagrams peer -> node udp/OM_DENIED_UDP; echoes how
# many the node's receiver got (-1 if it never listened).
om_burst()
{
	local pid log
	om_bg count "$LAB_NODE" "$PY" "$OM_COUNT_PY" udp-count "$OM_DENIED_UDP" --timeout 30
	pid=$BG_LAST
	log=$OM_LOG
	if ! wait_for_line "$log" '^listening' 10 "$pid"; then
		om_kill "$pid"
		echo -1
		return
	fi
	ip netns exec "$LAB_PEER" timeout 20 "$PY" "$OM_COUNT_PY" udp-burst \
		"$LAB_NODE_PEER4" "$OM_DENIED_UDP" "$OM_BURST"
	sleep 0.5	# the last ones in flight
	om_kill "$pid"
	sed -n 's/^received \([0-9]*\)$/\1/p' "$log" | tail -n 1
}

# om_summary LOG URL: "ok total max_ms" of one poller's URL.
om_summary()
{
	sed -n "s|^summary $2 ok=\([0-9]*\) total=\([0-9]*\) max_ms=\([0-9]*\)$|\1 \2 \3|p" "$1"
}

# om_expect_answered LOG URL WHERE: every probe 200 within OM_BOUND_MS.
om_expect_answered()
{
	local ok total max
	read -r ok total max <<<"$(om_summary "$1" "$2")"
	if [ -z "$total" ]; then
		fail "$3: no poller summary ($(tail -n 1 "$1"))"
		return 1
	fi
	pass_if "$3: $ok of $total probes answered 200, slowest $max ms (bound $OM_BOUND_MS ms)" \
		"$3: $ok of $total probes answered 200, slowest $max ms (bound $OM_BOUND_MS ms); first misses: $(grep -v ' 200 ' "$1" | grep -m3 '^probe' | tr '\n' ';')" \
		om_all_answered "$ok" "$total" "$max"
}

om_all_answered() { [ "$2" -gt 0 ] && [ "$1" -eq "$2" ] && [ "$3" -le "$OM_BOUND_MS" ]; }

# om_deadline_held CLOSED LIFE_MS: the server closed some, none outlived
# the deadline (and the longest did reach it: those were the held ones).
om_deadline_held()
{
	[ "${1:-0}" -gt 0 ] && [ "${2:-0}" -ge $((OM_DEADLINE_MS - 200)) ] &&
		[ "${2:-0}" -le $((OM_DEADLINE_MS + OM_SWEEP_MARGIN_MS)) ]
}

# om_attack WHAT SOURCES PER: the attack from the peer, the pollers from
# the node (and from mgmt), the judgement. MGMT=assert|record.
om_attack()
{
	local what=$1 sources=$2 per=$3 mgmt=$4 att node_log mgmt_log hb tr
	local node_url=http://$LAB_NODE_PEER4:$OM_PORT mgmt_url=http://$LAB_NODE_MGMT4:$OM_PORT
	local ok total max opened closed life got
	hb=$(audit_count heartbeat_lost)
	tr=$(audit_count transition)
	om_bg trickle "$LAB_PEER" "$PY" "$OM_PY" trickle "$LAB_NODE_PEER4" "$OM_PORT" \
		--sources "$sources" --per-source "$per" --seconds "$OM_ATTACK_S"
	att=$BG_LAST
	local att_log=$OM_LOG
	if ! wait_for_line "$att_log" '^attack on' 10 "$att"; then
		fail "$what: the attacker did not start: $(tail -n 2 "$att_log")"
		om_kill "$att"
		return 1
	fi
	note "$what: the attack is on; polling /healthz and /metrics for $OM_POLL_S s"
	om_bg poll-node "$LAB_NODE" "$PY" "$OM_PY" poll "$node_url/healthz" "$node_url/metrics" \
		--seconds "$OM_POLL_S"
	local node_pid=$BG_LAST
	node_log=$OM_LOG
	om_bg poll-mgmt "$LAB_MGMT" "$PY" "$OM_PY" poll "$mgmt_url/healthz" "$mgmt_url/metrics" \
		--seconds "$OM_POLL_S"
	local mgmt_pid=$BG_LAST
	mgmt_log=$OM_LOG
	got=$(om_burst)
	wait_until $((OM_POLL_S + 10)) om_done "$node_pid" "$mgmt_pid"
	om_kill "$node_pid"
	om_kill "$mgmt_pid"
	om_kill "$att"
	read -r opened closed life <<<"$(sed -n 's/^summary opened=\([0-9]*\) server_closed=\([0-9]*\) max_life_ms=\([0-9]*\)$/\1 \2 \3/p' "$att_log")"
	note "attacker: ${opened:-?} connections opened, ${closed:-?} closed by the server, the longest-lived closed after ${life:-?} ms"

	om_expect_answered "$node_log" "$node_url/healthz" "$what, the node itself: /healthz"
	om_expect_answered "$node_log" "$node_url/metrics" "$what, the node itself: /metrics"
	if [ "$mgmt" = assert ]; then
		om_expect_answered "$mgmt_log" "$mgmt_url/healthz" "$what, mgmt: /healthz"
		om_expect_answered "$mgmt_log" "$mgmt_url/metrics" "$what, mgmt: /metrics"
	else
		read -r ok total max <<<"$(om_summary "$mgmt_log" "$mgmt_url/healthz")"
		note "$what, mgmt (competes with the attacker, not asserted): /healthz $ok of $total answered, slowest $max ms"
		read -r ok total max <<<"$(om_summary "$mgmt_log" "$mgmt_url/metrics")"
		note "$what, mgmt (competes with the attacker, not asserted): /metrics $ok of $total answered, slowest $max ms"
	fi
	pass_if "$what: the server closed held connections, the longest after $life ms (deadline $OM_DEADLINE_MS ms + $OM_SWEEP_MARGIN_MS)" \
		"$what: held connections lived ${life:-?} ms (${closed:-?} closed by the server; deadline $OM_DEADLINE_MS ms + $OM_SWEEP_MARGIN_MS)" \
		om_deadline_held "$closed" "$life"
	expect_none_delivered "$what: peer -> node udp/$OM_DENIED_UDP, $OM_BURST datagrams" "$got"
	expect_mode normal "$what: the attack moved nothing"
	pass_if "audit: no heartbeat_lost during the attack" \
		"audit: heartbeat_lost during the attack: $(audit_last heartbeat_lost)" \
		[ "$(audit_count heartbeat_lost)" -eq "$hb" ]
	pass_if "audit: no transition during the attack" \
		"audit: a transition during the attack: $(audit_last transition)" \
		[ "$(audit_count transition)" -eq "$tr" ]
}

# om_done PID...: none of them runs any more.
om_done()
{
	local p
	for p in "$@"; do
		kill -0 "$p" 2>/dev/null && return 1
	done
	return 0
}

# om_agent CONFIG: the agent from CONFIG, with a state dir of its own (a
# policy an earlier scenario pushed must not decide this one's).
om_agent()
{
	daemon_stop TERM
	[ -n "${OM_SUITE_STATE_DIR:-}" ] || OM_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/om-state
	[ -d "$STATE_DIR" ] || mkdir -m 0700 "$STATE_DIR"
	agent_start "$1"
}

om_restore()
{
	local p
	for p in "${OM_PIDS[@]}"; do
		om_kill "$p"
	done
	OM_PIDS=()
	om_extra_addrs del
	daemon_stop TERM
	STATE_DIR=${OM_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	wait_mode normal 15
	ensure_normal
}

test_metrics()
{
	local x sources=$LAB_PEER4
	ensure_normal || return 1
	om_files
	om_agent "$WORK/om-agent.yaml" || { om_restore; return 1; }
	if ! wait_mode normal 15 || ! wait_until 10 om_healthy; then
		fail "the metrics agent is not normal with /healthz answering: mode '$(mode_now)'; $(grep -m1 'metrics' "$DAEMON_LOG")"
		om_restore
		return 1
	fi
	pass "the agent serves /healthz on 0.0.0.0:$OM_PORT, mode normal"
	note "$(grep -m1 -o 'metrics: serving.*' "$DAEMON_LOG")"

	om_attack "32 from one address" "$LAB_PEER4" 32 assert

	om_extra_addrs add
	for x in "${OM_EXTRA[@]}"; do
		sources+=,198.51.100.$x
	done
	om_attack "80 from 16 addresses" "$sources" 5 record

	om_restore
	expect_mode normal "the suite's agent back, heartbeats flowing"
	return 0
}

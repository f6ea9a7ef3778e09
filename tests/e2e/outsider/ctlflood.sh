# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 2: forged datagrams on the controller port cannot starve
# the heartbeats.
#
# The node runs the lab policy with its management entries bound to the
# management interface (interfaces: [pcmgmt]) plus a rule that lets all of
# 192.0.2.0/24 reach udp/7800 in normal mode (so the forged datagrams are
# passed by the policy and meet the datapath's budget for the port), and
# trusts eight controller keys, the real one last. The peer sends well-formed
# heartbeats with random signatures, naming the trusted key's id (made by
# ctlflood.py from controller.pub, as anyone with the public key can), at
# the highest rate build/flood reaches (AF_PACKET, no pacing):
#   1. for CF_SECS s from the controller's own address 192.0.2.10 (the
#      peer interface: a spoofed source);
#   2. for CF_SECS s from that address and, by a second sender at once,
#      from 244 other addresses of 192.0.2.0/24.
# Real heartbeats flow from the management host every 200 ms throughout
# (timeout 2 s). Each phase asserts: no heartbeat_lost and no transition
# audited, heartbeats still accepted during the flood, mode normal, and the
# node's own connection to the peer (a round trip every 0.2 s) intact.
# CF_WIRE=1 CF_BIND=0 run it as today's code would be attacked (wire v1,
# management by address only): how it was shown to fail before the fix.
#   3. with controller.interfaces: [the management link] in the agent's
#      config, both senders again: every forged datagram is dropped by the
#      datapath as arriving on the wrong interface (none admitted as other,
#      none reaching the buckets or the agent), heartbeats from the
#      management link still taken, mode normal.
#   4. bound to both links, the peer link deleted and re-created (a new
#      ifindex under its name): the agent writes the new ifindex, so 20
#      datagrams then sent on it are admitted, none dropped as wrong
#      interface (as a binding left on the old ifindex would).

CF_PY=$(dirname "${BASH_SOURCE[0]}")/ctlflood.py
CF_FLOOD=${CF_FLOOD:-$E2E_ROOT/build/flood}
CF_SECS=6
CF_WIRE=${CF_WIRE:-2}
CF_BIND=${CF_BIND:-1}
CF_PIDS=()

cf_files()
{
	{
		if [ "$CF_BIND" = 1 ]; then
			sed '/^management:/,/^rules:/s/}$/, interfaces: [pcmgmt]}/' \
				"$AGENT_POLICY_SRC"
		else
			cat "$AGENT_POLICY_SRC"
		fi
		echo "  - {name: ctl-open, action: allow, direction: ingress, proto: udp, ports: 7800, cidr: 192.0.2.0/24, modes: [normal]}"
	} >"$WORK/cf-policy.yaml"
	# Eight trusted keys (a rotation's worth), the controller's last: the
	# order in which a decoder without key ids would try them.
	local i keys=
	for i in 1 2 3 4 5 6 7; do
		[ -e "$WORK/cf-old$i.key.pub" ] ||
			"$PCCLI" keygen --out "$WORK/cf-old$i.key" >/dev/null 2>&1
		keys+="cf-old$i.key.pub, "
	done
	sed -e 's/^policy:.*/policy: cf-policy.yaml/' \
		-e "s/^\( *key_files:\).*/\1 [${keys}controller.pub]/" \
		"$WORK/agent.yaml" >"$WORK/cf-agent.yaml"
	# The same, with the controller port bound to the management link.
	sed "s/^controller:\$/controller:\n  interfaces: [$LAB_NODE_MGMT_IF]/" \
		"$WORK/cf-agent.yaml" >"$WORK/cf-agent-if.yaml"
	sed "s/^controller:\$/controller:\n  interfaces: [$LAB_NODE_MGMT_IF, $LAB_NODE_PEER_IF]/" \
		"$WORK/cf-agent.yaml" >"$WORK/cf-agent-both.yaml"
	"$PY" "$CF_PY" forge --pub "$WORK/controller.pub" \
		--host-id "$AGENT_HOST_ID" --version "$CF_WIRE" \
		--out "$WORK/cf-forged.bin" >/dev/null
}

cf_agent()
{
	daemon_stop TERM
	[ -n "${CF_SUITE_STATE_DIR:-}" ] || CF_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/cf-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$1"
}

cf_restore()
{
	local p
	for p in "${CF_PIDS[@]}"; do
		kill -s TERM "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	CF_PIDS=()
	daemon_stop TERM
	STATE_DIR=${CF_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	wait_mode normal 15
	ensure_normal
}

# cf_send NAME SRC [PORT]: the forged datagram from SRC (A or A-B) at full
# speed from the peer to PORT (7800), CF_SECS s; log in WORK, PID in BG_LAST.
cf_send()
{
	local mac
	mac=$(ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | awk '/link\/ether/ { print $2 }')
	bg_start "$WORK/cf-$1.log" $((CF_SECS + 20)) ip netns exec "$LAB_PEER" \
		"$CF_FLOOD" send --ifname "$LAB_PEER_IF" --dst-mac "$mac" \
		--src "$2" --sport 1024-65000 --dst "$LAB_NODE_MGMT4" --dport "${3:-7800}" \
		--payload "$WORK/cf-forged.bin" --duration "$CF_SECS"
	CF_PIDS+=("$BG_LAST")
}

# cf_rate NAME: "sent rate" of a finished sender.
cf_rate()
{
	sed -n 's/^sent \([0-9]*\) busy [0-9]* elapsed [0-9.]* rate \([0-9]*\)$/\1 \2/p' \
		"$WORK/cf-$1.log"
}

# cf_unmoved WHAT ACC0 ACC1 HB TR HOLD: heartbeats were still taken
# (ACC0 -> ACC1), no heartbeat_lost or transition beyond the HB and TR
# audited before, the mode is normal, and the connection HOLD lived on.
cf_unmoved()
{
	local what=$1 acc0=$2 acc1=$3 hb=$4 tr=$5

	pass_if "$what: heartbeats accepted during the flood ($acc0 -> $acc1)" \
		"$what: no heartbeat accepted during the flood ($acc0 -> $acc1)" \
		[ "$acc1" -gt "$acc0" ]
	pass_if "$what: no heartbeat_lost audited" \
		"$what: heartbeat_lost: $(audit_last heartbeat_lost)" \
		[ "$(audit_count heartbeat_lost)" -eq "$hb" ]
	pass_if "$what: no transition audited" \
		"$what: a transition: $(audit_last transition)" \
		[ "$(audit_count transition)" -eq "$tr" ]
	expect_mode normal "$what: the flood moved nothing"
	hold_end "$6" kept
}

cf_phase()
{
	local what=$1 hb tr acc0 acc1 p name sent rate lim ls lm lo
	shift
	hb=$(audit_count heartbeat_lost)
	tr=$(audit_count transition)
	hold_begin cf node "$LAB_PEER4" 7000 || return 1
	acc0=$(msg_count hb accepted)
	local pids=()
	for name in "$@"; do
		cf_send "${name%%=*}" "${name#*=}"
		pids+=("$BG_LAST")
	done
	for p in "${pids[@]}"; do
		wait_until $((CF_SECS + 15)) cf_gone "$p"
	done
	acc1=$(msg_count hb accepted)
	for name in "$@"; do
		read -r sent rate <<<"$(cf_rate "${name%%=*}")"
		note "$what: sender ${name%%=*} (${name#*=}): ${sent:-?} forged datagrams, ${rate:-?}/s"
		pass_if "$what: sender ${name%%=*} ran (${sent:-0} sent)" \
			"$what: sender ${name%%=*} sent nothing: $(tail -n 2 "$WORK/cf-${name%%=*}.log")" \
			[ "${sent:-0}" -gt 0 ]
	done
	note "$(pc status 2>/dev/null | grep -E '^(messages|controller port):' | tr '\n' ' ')"
	if [ "$CF_WIRE" = 2 ]; then
		lim=$(cf_ctl_counts)
		read -r _ _ ls lm lo _ <<<"$lim"
		pass_if "$what: the datapath's budget dropped forged datagrams (${ls:-?} by source, ${lm:-?} management, ${lo:-?} other)" \
			"$what: the datapath's budget dropped nothing: '$lim'" \
			[ "$((${ls:-0} + ${lm:-0} + ${lo:-0}))" -gt 0 ]
	fi
	cf_unmoved "$what" "$acc0" "$acc1" "$hb" "$tr" cf
}

cf_gone() { ! kill -0 "$1" 2>/dev/null; }

# cf_ctl_counts: the controller port line's "admitted-management
# admitted-other source-limited management-limited other-limited
# wrong-interface".
cf_ctl_counts()
{
	pc status 2>/dev/null | sed -n 's/^controller port:.*admitted \([0-9]*\) management, \([0-9]*\) other; dropped \([0-9]*\) by source, \([0-9]*\) management, \([0-9]*\) other, \([0-9]*\) on the wrong interface$/\1 \2 \3 \4 \5 \6/p'
}

# cf_hb_refused: heartbeats the agent refused, every verdict summed.
cf_hb_refused()
{
	pc status 2>/dev/null | "$PY" -c '
import re, sys
for line in sys.stdin:
    if line.startswith("messages:"):
        hb = line[len("messages:"):].partition(";")[0]
        print(sum(int(n) for w, n in re.findall(r"(\w+) (\d+)", hb) if w != "accepted"))
        break
else:
    print(-1)'
}

# Phase 3: the port bound to the management link. Counted from the
# datapath's own counters, not from what the senders attempted.
cf_bound_phase()
{
	local what="port bound to $LAB_NODE_MGMT_IF" c0 c1 hb tr acc0 acc1 ref0 ref1 p
	local ao0 ls0 lm0 lo0 w0 ao1 ls1 lm1 lo1 w1 sent
	cf_agent "$WORK/cf-agent-if.yaml" || { fail "$what: agent did not start"; return 1; }
	if ! wait_mode normal 15; then
		fail "$what: the agent is not normal: mode '$(mode_now)'"
		return 1
	fi
	wait_until 10 cf_hb_flowing || { fail "$what: no heartbeat accepted before the flood"; return 1; }
	hb=$(audit_count heartbeat_lost)
	tr=$(audit_count transition)
	hold_begin cfif node "$LAB_PEER4" 7000 || return 1
	c0=$(cf_ctl_counts)
	read -r _ ao0 ls0 lm0 lo0 w0 <<<"$c0"
	acc0=$(msg_count hb accepted)
	ref0=$(cf_hb_refused)
	local pids=()
	cf_send ifspoof "$LAB_MGMT4"
	pids+=("$BG_LAST")
	cf_send ifmany 192.0.2.11-192.0.2.254
	pids+=("$BG_LAST")
	for p in "${pids[@]}"; do
		wait_until $((CF_SECS + 15)) cf_gone "$p"
	done
	c1=$(cf_ctl_counts)
	read -r _ ao1 ls1 lm1 lo1 w1 <<<"$c1"
	acc1=$(msg_count hb accepted)
	ref1=$(cf_hb_refused)
	read -r sent _ <<<"$(cf_rate ifspoof)"
	read -r p _ <<<"$(cf_rate ifmany)"
	sent=$((${sent:-0} + ${p:-0}))
	note "$what: $sent forged datagrams sent; counters '$c0' -> '$c1'; refused heartbeats $ref0 -> $ref1"
	pass_if "$what: status shows the counters" "$what: no controller port line: '$c0' '$c1'" \
		[ "${c0:+x}${c1:+y}" = xy ]
	pass_if "$what: forged datagrams dropped as wrong interface ($((${w1:-0} - ${w0:-0})))" \
		"$what: none counted as wrong interface ('$c0' -> '$c1', $sent sent)" \
		[ "$((${w1:-0} - ${w0:-0}))" -gt 0 ]
	pass_if "$what: none admitted as other" "$what: admitted other moved ${ao0:-?} -> ${ao1:-?}" \
		[ "${ao1:-x}" = "${ao0:-y}" ]
	pass_if "$what: none reached the buckets" \
		"$what: the buckets saw some: '$c0' -> '$c1'" \
		[ "${ls1:-x}${lm1:-x}${lo1:-x}" = "${ls0:-y}${lm0:-y}${lo0:-y}" ]
	pass_if "$what: none reached the agent ($ref0 -> $ref1 refused)" \
		"$what: the agent refused $((ref1 - ref0)) forged heartbeats" \
		[ "$ref1" -eq "$ref0" ]
	cf_unmoved "$what" "$acc0" "$acc1" "$hb" "$tr" cfif
}

cf_hb_flowing() { [ "$(msg_count hb accepted)" -gt 0 ]; }

cf_attached_since() { [ "$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")" -gt "$1" ]; }

# Phase 4: the binding follows a link re-created under its name.
cf_relink_phase()
{
	local what="port bound to both links, peer link re-created" n c0 c1 ao0 ao1 w0 w1 mac
	cf_agent "$WORK/cf-agent-both.yaml" || { fail "$what: agent did not start"; return 1; }
	wait_mode normal 15 || { fail "$what: the agent is not normal: mode '$(mode_now)'"; return 1; }
	n=$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")
	lab_recreate_peer_link || { fail "$what: could not re-create $LAB_NODE_PEER_IF"; return 1; }
	pass_if "$what: programs re-attached" "$what: no interface_attached within 15 s" \
		wait_until 15 cf_attached_since "$n"
	c0=$(cf_ctl_counts)
	read -r _ ao0 _ _ _ w0 <<<"$c0"
	mac=$(ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | awk '/link\/ether/ { print $2 }')
	ip netns exec "$LAB_PEER" timeout 20 "$CF_FLOOD" send --ifname "$LAB_PEER_IF" \
		--dst-mac "$mac" --src 192.0.2.20 --sport 1024-65000 \
		--dst "$LAB_NODE_MGMT4" --dport 7800 --payload "$WORK/cf-forged.bin" \
		--count 20 --pps 100 >"$WORK/cf-relink.log" 2>&1
	wait_until 10 cf_counted "$ao0" "$w0"
	c1=$(cf_ctl_counts)
	read -r _ ao1 _ _ _ w1 <<<"$c1"
	note "$what: counters '$c0' -> '$c1'"
	pass_if "$what: datagrams on the new link admitted ($((${ao1:-0} - ${ao0:-0})))" \
		"$what: none admitted on the new link ('$c0' -> '$c1')" \
		[ "$((${ao1:-0} - ${ao0:-0}))" -gt 0 ]
	pass_if "$what: none dropped as wrong interface" \
		"$what: $((${w1:-0} - ${w0:-0})) dropped as wrong interface: the binding kept the old ifindex" \
		[ "${w1:-x}" = "${w0:-y}" ]
	expect_mode normal "$what: mode"
}

# cf_counted AO W: the datapath counted something past admitted-other AO
# or wrong-interface W.
cf_counted()
{
	local ao w
	read -r _ ao _ _ _ w <<<"$(cf_ctl_counts)"
	[ "${ao:-0}" -gt "$1" ] || [ "${w:-0}" -gt "$2" ]
}

test_ctlflood()
{
	ensure_normal || return 1
	[ -x "$CF_FLOOD" ] || { fail "$CF_FLOOD missing (make build/flood)"; return 1; }
	cf_files
	cf_agent "$WORK/cf-agent.yaml" || { cf_restore; return 1; }
	if ! wait_mode normal 15; then
		fail "the ctlflood agent is not normal: mode '$(mode_now)'"
		cf_restore
		return 1
	fi
	note "forged datagram: wire v$CF_WIRE, $(stat -c %s "$WORK/cf-forged.bin") bytes; management bound to pcmgmt: $([ "$CF_BIND" = 1 ] && echo yes || echo no)"
	cf_phase "spoofed controller address" "spoof=$LAB_MGMT4"
	cf_phase "spoofed controller + 244 sources" "spoof=$LAB_MGMT4" "many=192.0.2.11-192.0.2.254"
	cf_bound_phase
	cf_relink_phase
	cf_restore
	expect_mode normal "the suite's agent back, heartbeats flowing"
	return 0
}

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Portcullis walk-through in a namespace lab (make demo; root). Builds
# nothing: expects build/portcullisd and build/portcullis. Narrates normal
# mode, status and rules, lockdown, quarantine cutting an established
# connection while management still works, back to normal, and detach;
# then the agent with a controller: lockdown on heartbeat loss, signed
# quarantine and release.
# Exits non-zero if any step does not behave as described.

set -u
# shellcheck source=SCRIPTDIR/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/e2e/lib.sh"

SURPRISES=0
STEP=0

step()
{
	STEP=$((STEP + 1))
	printf '\n=== %d. %s\n' "$STEP" "$*"
}

note() { printf '    %s\n' "$*"; }

surprise()
{
	SURPRISES=$((SURPRISES + 1))
	printf '    !!! unexpected: %s\n' "$*"
}

# portcullis CMD... as typed on the node, with its output.
cli()
{
	printf '  node# portcullis %s\n' "$*"
	pc "$@" >"$WORK/out" 2>&1 || { sed 's/^/    /' "$WORK/out"; return 1; }
	sed 's/^/    /' "$WORK/out"
}

# probe EXPECT(pass|block) WHY PROBE FROM ARGS...: one probe, narrated.
probe()
{
	local expect=$1 why=$2 fn=$3 from=$4 got
	shift 3
	case $fn in
	ping_probe) printf '  %s$ ping -c 1 -W 1 %s\n' "$from" "${*:2}" ;;
	*) printf '  %s$ traffic.py %s %s\n' "$from" "${fn/_/-}" "${*:2}" ;;
	esac
	if "$fn" "$@" >"$WORK/out" 2>&1; then got=pass; else got=block; fi
	if [ "$got" = "$expect" ]; then
		note "-> $( [ "$got" = pass ] && echo "gets through" || echo "blocked" ) ($why)"
	else
		surprise "expected $expect, got $got ($why): $(tail -n 1 "$WORK/out")"
	fi
}

demo_normal()
{
	step "Normal mode: the policy's allow rules and defaults"
	probe pass "rule web" tcp_probe peer "$LAB_NODE_PEER4" 8080
	probe pass "rule web, IPv6" tcp_probe peer "$LAB_NODE_PEER6" 8080
	probe block "ingress default deny, though a server listens" \
		tcp_probe peer "$LAB_NODE_PEER4" 9090
	probe pass "rule ping-in" ping_probe peer "$LAB_NODE_PEER4"
	probe pass "rule udp-in" udp_probe peer "$LAB_NODE_PEER4" 5000
	probe pass "egress default allow, replies via the flow table" \
		tcp_probe node "$LAB_PEER4" 7000
	probe block "deny rule 'blocked' (203.0.113.0/24) beats web" \
		tcp_probe peer "$LAB_NODE_PEER4" 8080 --source "$LAB_PEER_BAD4"
	probe pass "management allowlist" tcp_probe mgmt "$LAB_NODE_MGMT4" 22
}

demo_counters()
{
	step "What the node saw: status and per-rule counters"
	cli status || surprise "portcullis status failed"
	cli rules || surprise "portcullis rules failed"
}

demo_lockdown()
{
	step "Lockdown: only rules that list lockdown, plus management"
	cli mode lockdown || surprise "portcullis mode lockdown failed"
	probe pass "web lists lockdown" tcp_probe peer "$LAB_NODE_PEER4" 8080
	probe block "ping-in is normal-mode only" ping_probe peer "$LAB_NODE_PEER4"
	probe block "lockdown: default deny, egress too" \
		tcp_probe node "$LAB_PEER4" 7000
	probe pass "management allowlist" tcp_probe mgmt "$LAB_NODE_MGMT4" 22
}

# An established connection node -> peer:7000, cut by quarantine.
demo_quarantine_cut()
{
	local log=$WORK/hold.log res
	note "node keeps one TCP connection to the peer and echoes a line every 0.2s:"
	tcp_hold_start node "$LAB_PEER4" 7000 25 "$log"
	if ! wait_for_count "$log" '^rtt [0-9]+ ok' 3 5; then
		surprise "the held connection never worked: $(tail -n 1 "$log")"
		return
	fi
	note "$(grep -c '^rtt [0-9]* ok' "$log") round trips ok so far"
	cli mode quarantine || surprise "portcullis mode quarantine failed"
	wait "$BG_LAST"
	res=$(sed -n 's/^summary //p' "$log")
	note "held connection: $res"
	case $res in
	*first_fail=none*) surprise "quarantine did not cut the established connection" ;;
	*) note "-> cut (quarantine ends flows no rule of the mode allows)" ;;
	esac
}

demo_quarantine()
{
	step "Quarantine: management only, established connections cut"
	cli mode normal >/dev/null || surprise "portcullis mode normal failed"
	demo_quarantine_cut
	probe pass "management allowlist" tcp_probe mgmt "$LAB_NODE_MGMT4" 22
	probe pass "management allowlist, IPv6" tcp_probe mgmt "$LAB_NODE_MGMT6" 22
	probe block "web is not management" tcp_probe peer "$LAB_NODE_PEER4" 8080
}

demo_back()
{
	step "Back to normal"
	cli mode normal || surprise "portcullis mode normal failed"
	probe pass "rule web" tcp_probe peer "$LAB_NODE_PEER4" 8080
	probe pass "rule ping-in" ping_probe peer "$LAB_NODE_PEER4"
	probe pass "egress default allow" tcp_probe node "$LAB_PEER4" 7000
}

# The controller's side, as typed on the management host.
mgmt_says() { printf '  mgmt$ portcullis %s\n' "$*"; }

# The mode status reports, narrated; a surprise unless it is WANT.
expect_mode()
{
	local want=$1 why=$2
	if wait_mode "$want" 6; then
		note "-> mode $want ($why)"
	else
		surprise "mode $(mode_now), expected $want ($why)"
	fi
}

# The daemon again, now from an agent config with a controller.
demo_agent_start()
{
	step "An agent with a controller: signed heartbeats every 200 ms"
	agent_prepare || { surprise "portcullis keygen failed"; return 1; }
	mgmt_says "keygen --out controller.key"
	sed 's/^/    /' "$WORK/keygen.out"
	note "agent.yaml (tests/configs/lab-agent.yaml), controller and heartbeat:"
	sed -n '/^controller:/,/^anomaly:/p' "$WORK/agent.yaml" | sed '$d; s/^/      /'
	mgmt_says "controller heartbeat --to $AGENT_TO --key controller.key" \
		"--host-id $AGENT_HOST_ID --interval 200 &"
	hb_start
	printf '  node# portcullisd --config agent.yaml &\n'
	DAEMON_CONFIG=$WORK/agent.yaml
	if ! daemon_start; then
		surprise "portcullisd did not become ready with agent.yaml"
		return 1
	fi
	grep -m1 'portcullisd: ready' "$DAEMON_LOG" | sed 's/^/    /'
}

demo_heartbeat_loss()
{
	step "Heartbeats stop: within the 2 s timeout the node locks itself down"
	printf '  mgmt$ kill %%1   (the heartbeat sender)\n'
	hb_stop
	expect_mode lockdown "heartbeat loss"
	printf '  node# portcullis status | grep ...\n'
	pc status 2>/dev/null | grep -E '^(mode|mode cause|dead-man|heartbeat):' |
		sed 's/^/    /'
	printf '  node# tail audit.jsonl\n'
	note "$(audit_last transition trigger=heartbeat_loss)"
	probe block "ping-in is normal only" ping_probe peer "$LAB_NODE_PEER4"
	probe pass "management allowlist" tcp_probe mgmt "$LAB_NODE_MGMT4" 22
	mgmt_says "controller heartbeat ... &   (the controller is back)"
	hb_start
	expect_mode normal "3 valid heartbeats lift it: release_after: 3"
}

demo_signed_commands()
{
	step "Signed commands from the controller: quarantine, then release"
	mgmt_says "controller send quarantine --to $AGENT_TO --key controller.key" \
		"--host-id $AGENT_HOST_ID"
	ctl_send quarantine >"$WORK/out" 2>&1 ||
		surprise "controller send failed: $(tail -n 1 "$WORK/out")"
	expect_mode quarantine "signed quarantine"
	note "audit: $(audit_last command_accepted command=quarantine)"
	probe block "quarantine: management only" tcp_probe peer "$LAB_NODE_PEER4" 8080
	probe pass "management allowlist" tcp_probe mgmt "$LAB_NODE_MGMT4" 22
	mgmt_says "controller send release --to $AGENT_TO --key controller.key" \
		"--host-id $AGENT_HOST_ID"
	ctl_send release >"$WORK/out" 2>&1 ||
		surprise "controller send failed: $(tail -n 1 "$WORK/out")"
	expect_mode normal "signed release"
	probe pass "rule web" tcp_probe peer "$LAB_NODE_PEER4" 8080
}

demo_detach()
{
	step "The daemon stops, enforcement stays; only detach removes it"
	printf '  node# kill -TERM %s   (portcullisd)\n' "$DAEMON_PID"
	daemon_stop TERM
	probe block "still denied with the daemon gone" \
		tcp_probe peer "$LAB_NODE_PEER4" 9090
	cli detach || surprise "portcullis detach failed"
	probe pass "nothing enforces any more" tcp_probe peer "$LAB_NODE_PEER4" 9090
	probe pass "nothing enforces any more" \
		tcp_probe peer "$LAB_NODE_PEER4" 8080 --source "$LAB_PEER_BAD4"
}

demo_start()
{
	step "Lab: node, peer and management host in their own namespaces"
	note "peer $LAB_PEER4 / $LAB_PEER6 (+ $LAB_PEER_BAD4)  <->  node $LAB_NODE_PEER4 [$LAB_NODE_PEER_IF]"
	note "mgmt $LAB_MGMT4 / $LAB_MGMT6  <->  node $LAB_NODE_MGMT4 [$LAB_NODE_MGMT_IF]"
	note "servers: node tcp 8080 9090 22, udp 5000 5001; peer tcp 7000, udp 7001"
	step "Policy (tests/policies/lab-normal.yaml)"
	sed 's/^/    /' "$LAB_POLICY"
	step "Start portcullisd on the node"
	printf '  node# portcullisd --policy %s --pin-dir %s &\n' \
		"${ACTIVE_POLICY#"$WORK/"}" "$PIN_DIR"
	if ! daemon_start; then
		surprise "portcullisd did not become ready"
		return 1
	fi
	grep -E 'adopting|creating|ready' "$DAEMON_LOG" | sed 's/^/    /'
}

main()
{
	local bin
	[ "$(id -u)" -eq 0 ] || { echo "demo: must run as root" >&2; exit 1; }
	for bin in "$PCD" "$PCCLI"; do
		[ -x "$bin" ] || { echo "demo: $bin missing: run make" >&2; exit 1; }
	done
	trap e2e_teardown EXIT
	e2e_setup || { echo "demo: lab setup failed" >&2; exit 1; }
	if demo_start; then
		demo_normal
		demo_counters
		demo_lockdown
		demo_quarantine
		demo_back
		demo_detach
		if demo_agent_start; then
			demo_heartbeat_loss
			demo_signed_commands
		fi
	fi
	echo
	if [ "$SURPRISES" -eq 0 ]; then
		echo "demo: every step behaved as described"
		return 0
	fi
	echo "demo: $SURPRISES step(s) did not behave as described"
	return 1
}

main "$@"

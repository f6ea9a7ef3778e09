# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 3: a start failure must not leave the host unfiltered.

STARTFAIL_COUNT=$(dirname "${BASH_SOURCE[0]}")/startfail_count.py
STARTFAIL_PORT=5002	# no rule allows it; quarantine denies all but management
STARTFAIL_BURST=20

# startfail_burst WHAT: STARTFAIL_BURST datagrams peer -> node, counted by a
# receiver on the node, and as many echo requests, counted by ping's own
# "received"; both must be 0.
startfail_burst()
{
	local log=$WORK/startfail-recv-$RANDOM.log got
	bg_start "$log" 30 ip netns exec "$LAB_NODE" "$PY" "$STARTFAIL_COUNT" \
		recv "$STARTFAIL_PORT" 4
	wait_for_line "$log" '^listening' 10 "$BG_LAST" ||
		{ fail "$1: the counting receiver did not start"; return 1; }
	ip netns exec "$LAB_PEER" timeout 10 "$PY" "$STARTFAIL_COUNT" send \
		"$LAB_NODE_PEER4" "$STARTFAIL_PORT" "$STARTFAIL_BURST"
	wait_for_line "$log" '^received' 10 "$BG_LAST"
	got=$(awk '$1 == "received" { print $2 }' "$log")
	expect_none_delivered "$1: peer -> node udp/$STARTFAIL_PORT, $STARTFAIL_BURST sent, node received ${got:-?}" \
		"${got:-$STARTFAIL_BURST}"
	got=$(ip netns exec "$LAB_PEER" timeout 15 ping -n -q -c "$STARTFAIL_BURST" \
		-i 0.05 -W 1 "$LAB_NODE_PEER4" 2>/dev/null |
		awk -F', ' '/ received/ { print $2 + 0 }')
	expect_none_delivered "$1: peer -> node ping, $STARTFAIL_BURST echo requests, ${got:-?} answered" \
		"${got:-$STARTFAIL_BURST}"
}

# startfail_crash: what a crash and a reboot leave: the agent SIGKILLed,
# pins and qdiscs gone (state_start without the start).
startfail_crash()
{
	local ifc
	daemon_stop KILL
	rm -rf -- "$PIN_DIR"
	for ifc in "$LAB_NODE_PEER_IF" "$LAB_NODE_MGMT_IF"; do
		tc -n "$LAB_NODE" qdisc del dev "$ifc" clsact 2>/dev/null
	done
}

startfail_attached()
{
	ip -n "$LAB_NODE" link show dev "$LAB_NODE_PEER_IF" | grep -q 'xdp' &&
		tc -n "$LAB_NODE" filter show dev "$LAB_NODE_PEER_IF" egress | grep -q ' bpf '
}

startfail_ghost_attached()
{
	ip -n "$LAB_NODE" link show dev pcghost0 2>/dev/null | grep -q 'xdp'
}

# Saved quarantine, a pushed policy whose staged file is gone (as a crash
# can leave it), then an unreadable controller key: the host stays
# attached, in quarantine, and the peer gets nothing through.
test_startfail()
{
	local hash staged n rc key=$WORK/controller.pub
	ensure_normal || return 1
	n=$(audit_count command_accepted command=apply-policy)
	check "signed apply-policy --policy open.yaml" ctl_send apply-policy --policy "$WORK/open.yaml"
	wait_audit "$n" 15 command_accepted command=apply-policy ||
		fail "apply-policy: no command_accepted within 15 s"
	hash=$(sha256sum "$WORK/open.yaml" | cut -d' ' -f1)
	staged=$STATE_DIR/policies/$hash.yaml
	pass_if "pushed policy staged as policies/${hash:0:12}... and named by the state file" \
		"pushed policy not staged or not in the state file" \
		grep -qx "policy $hash" "$STATE_DIR/state"
	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "before the crash"

	# 1. The staged policy is lost with the crash.
	startfail_crash
	rm -f -- "$staged"
	note "agent SIGKILLed, pins and qdiscs removed, $staged deleted"
	n=$(audit_count policy_fallback)
	agent_start "$DAEMON_CONFIG"
	grep -E 'policy|fallback' "$DAEMON_LOG" | grep -v libbpf | head -n 4 | sed 's/^/      | /'
	expect_mode quarantine "after a start whose pushed policy is missing"
	audit_more_than "$n" "policy_fallback (pushed policy missing)" policy_fallback
	pass_if "programs attached to $LAB_NODE_PEER_IF (XDP and TC egress)" \
		"nothing attached to $LAB_NODE_PEER_IF" startfail_attached
	blocked "peer -> node tcp/8080 (quarantine kept)" web4
	blocked "node -> peer tcp/7000 (quarantine kept)" out4
	startfail_burst "pushed policy missing"
	allowed "mgmt -> node tcp/22 (management)" ssh4

	# 2. The controller key cannot be read: the config fails. The pins
	# (a restart, not a reboot) keep enforcing; the agent holds the mode
	# and exits non-zero for systemd to retry.
	daemon_stop KILL
	mv -- "$key" "$key.away" && mkdir -- "$key"
	note "agent SIGKILLed; $key replaced by a directory (unreadable)"
	n=$(audit_count config_refused)
	if daemon_start; then
		fail "portcullisd started with an unreadable controller key"
	else
		wait "$DAEMON_WRAP" 2>/dev/null
		rc=$?
		# shellcheck disable=SC2034 # lib.sh's: the daemon is gone
		DAEMON_PID=
		pass_if "portcullisd exits $rc: $(grep -m1 -E 'config refused' "$DAEMON_LOG")" \
			"portcullisd exit status $rc, expected 1" [ "$rc" -eq 1 ]
	fi
	grep -E 'secur|enforc' "$DAEMON_LOG" | head -n 3 | sed 's/^/      | /'
	expect_mode quarantine "after a start with an unreadable key"
	audit_more_than "$n" "config_refused at start" config_refused
	pass_if "programs still attached to $LAB_NODE_PEER_IF" \
		"nothing attached to $LAB_NODE_PEER_IF" startfail_attached
	blocked "peer -> node tcp/8080 (unreadable key: quarantine kept)" web4
	startfail_burst "unreadable key"
	allowed "mgmt -> node tcp/22 (management)" ssh4

	# 2b. The same unreadable key after a reboot: no pins, no config, the
	# pushed policy lost. The state file names the interfaces: attached
	# with no policy, everything is dropped, management included.
	startfail_crash
	note "pins and qdiscs removed (a reboot), the key still unreadable"
	n=$(audit_count policy_fallback in_force=none)
	if daemon_start; then
		fail "portcullisd started with an unreadable controller key"
	else
		wait "$DAEMON_WRAP" 2>/dev/null
		rc=$?
		# shellcheck disable=SC2034 # lib.sh's: the daemon is gone
		DAEMON_PID=
		pass_if "portcullisd exits $rc after securing the host" \
			"portcullisd exit status $rc, expected 1" [ "$rc" -eq 1 ]
	fi
	expect_mode quarantine "after a reboot with an unreadable key"
	audit_more_than "$n" "policy_fallback: none in force" policy_fallback in_force=none
	pass_if "programs attached to $LAB_NODE_PEER_IF from the state file's interfaces" \
		"nothing attached to $LAB_NODE_PEER_IF" startfail_attached
	startfail_burst "reboot, unreadable key, no policy"
	blocked "mgmt -> node tcp/22 (no policy at all: drop_no_policy)" ssh4

	# 3. The key readable again, but the config names an interface the
	# node does not have yet: the others are enforced, it is attached
	# when it appears.
	rmdir -- "$key" && mv -- "$key.away" "$key"
	{ cat "$WORK/agent.yaml"; echo "interfaces: [$LAB_NODE_PEER_IF, $LAB_NODE_MGMT_IF, pcghost0]"; } \
		>"$WORK/agent-ghost.yaml"
	n=$(audit_count interface_unattached interface=pcghost0)
	agent_start "$WORK/agent-ghost.yaml" || return 1
	expect_mode quarantine "restart over the pins (pushed policy still missing)"
	audit_more_than "$n" "interface_unattached pcghost0 (missing)" \
		interface_unattached interface=pcghost0
	blocked "peer -> node tcp/8080 (quarantine, one interface missing)" web4
	ip -n "$LAB_NODE" link add pcghost0 type veth peer name pcghost1 &&
		ip -n "$LAB_NODE" link set pcghost0 up
	pass_if "pcghost0 created: programs attached to it" \
		"pcghost0 created, no XDP on it after 10 s" \
		wait_until 10 startfail_ghost_attached
	ip -n "$LAB_NODE" link del pcghost0 2>/dev/null
	DAEMON_CONFIG=$WORK/agent.yaml
	n=$(audit_count command_accepted command=apply-policy)
	check "signed apply-policy --policy policy.yaml (the lab policy, staged again)" \
		ctl_send apply-policy --policy "$WORK/policy.yaml"
	wait_audit "$n" 15 command_accepted command=apply-policy ||
		fail "apply-policy: no command_accepted within 15 s"
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "released by the controller"
	allowed "peer -> node tcp/8080 (normal)" web4

	# 4. The same loss in normal mode: the config's policy is not the one
	# the controller chose, so the start raises the host to lockdown.
	hash=$(sha256sum "$WORK/policy.yaml" | cut -d' ' -f1)
	startfail_crash
	rm -f -- "$STATE_DIR/policies/$hash.yaml"
	note "normal; agent SIGKILLed, pins removed, the staged policy.yaml deleted"
	n=$(audit_count transition trigger=start to=lockdown)
	agent_start "$DAEMON_CONFIG" || return 1
	expect_mode lockdown "pushed policy lost in normal mode: raised"
	audit_more_than "$n" "transition to lockdown, trigger start (policy fallback)" \
		transition trigger=start to=lockdown
	startfail_burst "lockdown after a fallback"
	allowed "mgmt -> node tcp/22 (management)" ssh4
	n=$(audit_count command_accepted command=apply-policy)
	check "signed apply-policy --policy policy.yaml" \
		ctl_send apply-policy --policy "$WORK/policy.yaml"
	wait_audit "$n" 15 command_accepted command=apply-policy ||
		fail "apply-policy: no command_accepted within 15 s"
	check "signed release" ctl_send release
	wait_mode normal 15
	daemon_stop TERM
	agent_start "$DAEMON_CONFIG" || return 1
	hb_running || hb_start
	wait_mode normal 15
	expect_mode normal "restarted from agent.yaml"
}

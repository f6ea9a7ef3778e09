#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# End-to-end suite for the agent: portcullisd run from an agent config
# (tests/configs/lab-agent.yaml) in the namespace lab, with the controller
# on the management host sending heartbeats and signed commands.
#
#   bash tests/e2e/agent.sh [TEST...]     (root; after make)
#
# One PASS/FAIL line per check, a summary, non-zero exit on any failure.
# TESTs default to all, in order (each leaves the node normal with
# heartbeats flowing for the next; picked alone they set that up first):
#   checkconfig heartbeat hbloss release deadman refused command anomaly
#   pushpolicy reboot relink
# Heartbeat timeout 2s, action lockdown, kernel dead-man on; release_after
# 3 (agent.yaml) until "release" switches to 0 (agent-manual.yaml).

set -u
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK_NAME="agent e2e"
CHECK_WIDTH=11
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=SCRIPTDIR/agent_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"

# Our own pin dir; lib.sh's teardown removes it by this exact name.
PIN_DIR=/sys/fs/bpf/pc-agent-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC	# open.yaml = lab-agent.yaml + tcp/9090

ALL_TESTS=(checkconfig heartbeat hbloss release deadman refused command
	anomaly pushpolicy reboot relink adopt)
HB_TIMEOUT_MS=2000	# lab-agent.yaml heartbeat.timeout
SECURE_MARGIN_MS=2500	# allowed on top of it (2 shared CPUs in CI)

# ---- 1. configuration check ----

test_checkconfig()
{
	local rc
	"$PCD" --check-config "$WORK/agent.yaml" >"$WORK/cc.out" 2>&1
	rc=$?
	sed 's/^/      | /' "$WORK/cc.out"
	pass_if "--check-config agent.yaml -> 0" \
		"--check-config agent.yaml -> $rc, expected 0" \
		[ "$rc" -eq 0 ]
	if "$PCD" --check-config "$WORK/agent-manual.yaml" >"$WORK/cc.out" 2>&1; then
		pass "--check-config agent-manual.yaml -> 0"
	else
		fail "--check-config agent-manual.yaml failed: $(tail -n 1 "$WORK/cc.out")"
	fi
	cp "$E2E_ROOT/tests/configs/lab-agent-bad.yaml" "$WORK/agent-bad.yaml"
	"$PCD" --check-config "$WORK/agent-bad.yaml" >"$WORK/cc.out" 2>&1
	rc=$?
	sed 's/^/      | /' "$WORK/cc.out"
	pass_if "--check-config agent-bad.yaml -> 1" \
		"--check-config agent-bad.yaml -> $rc, expected 1" \
		[ "$rc" -eq 1 ]
	# lab-agent-bad.yaml: 'timeout: 2' without a unit, line 11 column 12.
	if grep -q 'agent-bad.yaml:11:12:' "$WORK/cc.out"; then
		pass "error names agent-bad.yaml:11:12"
	else
		fail "error does not name agent-bad.yaml:11:12: $(head -n 1 "$WORK/cc.out")"
	fi
	# A policy mistake is reported at the policy's own line.
	mkdir -p "$WORK/bad-pol"
	sed 's/ports: 8080,/ports: 80800,/' "$WORK/policy.yaml" >"$WORK/bad-pol/policy.yaml"
	cp "$WORK/agent.yaml" "$WORK/controller.pub" "$WORK/bad-pol/"
	"$PCD" --check-config "$WORK/bad-pol/agent.yaml" >"$WORK/cc.out" 2>&1
	rc=$?
	if [ "$rc" -eq 1 ] && grep -Eq 'policy.yaml:[0-9]+:[0-9]+' "$WORK/cc.out"; then
		pass "--check-config with a bad policy -> 1, $(grep -Eo 'policy.yaml:[0-9]+:[0-9]+' "$WORK/cc.out" | head -n 1)"
	else
		fail "--check-config with a bad policy -> $rc: $(head -n 1 "$WORK/cc.out")"
	fi
}

# ---- 2. heartbeats keep the node normal ----

test_heartbeat()
{
	local n
	hb_start
	agent_start "$WORK/agent.yaml" || return 1
	note "heartbeats every 200 ms; waiting 3 heartbeat timeouts (6 s)"
	sleep 6
	expect_mode normal "6 s of heartbeats, timeout 2 s"
	n=$(msg_count hb accepted)
	pass_if "status: heartbeats accepted $n (>= 15)" \
		"status: heartbeats accepted $n, expected >= 15" \
		[ "$n" -ge 15 ]
	n=$(audit_count heartbeat_lost)
	pass_if "audit: no heartbeat_lost while heartbeats flow" \
		"audit: $n heartbeat_lost while heartbeats flowed" \
		[ "$n" -eq 0 ]
	allowed "peer -> node tcp/8080 (rule web)" web4
	allowed "peer -> node ping (rule ping-in, normal)" ping4
	blocked "peer -> node tcp/9090 (default deny)" alt4
	allowed "node -> peer tcp/7000 (egress default allow)" out4
	show pc status
}

# ---- 3. heartbeat loss: lockdown ----

# probe_until_blocked T0_MS: fast pings until two in a row fail (at most
# 15 s); sets SECURED_MS to the time of the first of them from T0_MS,
# empty if never. One late reply on a loaded machine is not a lockdown.
probe_until_blocked()
{
	local t0=$1 i first=
	SECURED_MS=
	for ((i = 0; i < 120; i++)); do
		if ! ping_fast >/dev/null 2>&1; then
			[ -n "$first" ] && { SECURED_MS=$first; return 0; }
			first=$(($(now_ms) - t0))
		else
			first=
		fi
		[ $(($(now_ms) - t0)) -gt 15000 ] && break
		sleep 0.1
	done
	return 1
}

# expect_secured_in WHAT SINCE: SECURED_MS within the timeout plus margin,
# and not before the timeout (less a heartbeat interval and a ping).
expect_secured_in()
{
	local max=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS)) min=$((HB_TIMEOUT_MS - 500))
	if [ -z "$SECURED_MS" ]; then
		fail "$1: ping from the peer still passes 15 s after $2"
	elif [ "$SECURED_MS" -le "$max" ] && [ "$SECURED_MS" -ge "$min" ]; then
		pass "$1: ping blocked ${SECURED_MS} ms after $2 (timeout $HB_TIMEOUT_MS ms, window $min..$max)"
	else
		fail "$1: ping blocked ${SECURED_MS} ms after $2, outside $min..$max ms"
	fi
}

test_hbloss()
{
	local t0 lost line us
	ensure_normal || return 1
	lost=$(audit_count heartbeat_lost)
	allowed "peer -> node ping before the loss" ping4
	hb_stop
	t0=$(now_ms)
	note "heartbeats stopped; pinging from the peer every ~0.1 s"
	probe_until_blocked "$t0"
	expect_secured_in "heartbeat loss" \
		"the heartbeats stopped (the last <= 200 ms before)"
	wait_mode lockdown 15
	expect_mode lockdown "heartbeat loss"
	if pc status 2>/dev/null | grep -q 'mode cause: *heartbeat_loss'; then
		pass "status: mode cause heartbeat_loss"
	else
		fail "status: no 'mode cause: heartbeat_loss'"
	fi
	audit_more_than "$lost" "heartbeat_lost recorded" heartbeat_lost
	line=$(audit_last transition to=lockdown trigger=heartbeat_loss)
	us=$(sed -n 's/.*"time_to_secure_us":\([0-9]*\).*/\1/p' <<<"$line")
	if [ -n "$us" ]; then
		pass "audit: transition normal -> lockdown, trigger heartbeat_loss, time_to_secure_us $us"
		note "$line"
	else
		fail "audit: no transition to lockdown with trigger heartbeat_loss and time_to_secure_us"
	fi
	grep 'mode normal -> lockdown' "$DAEMON_LOG" | tail -n 1 | sed 's/^/      | /'
	blocked "peer -> node ping (ping-in is normal only)" ping4
	blocked "node -> peer tcp/7000 (lockdown: egress default deny)" out4
	allowed "mgmt -> node tcp/22 (management)" ssh4
	allowed "mgmt -> node tcp/22 v6 (management)" ssh6
	allowed "peer -> node tcp/8080 (web lists lockdown)" web4
	show pc status
}

# ---- 4. release: by heartbeats (release_after 3), else by hand ----

test_release()
{
	local n
	if [ "$(mode_now)" != lockdown ]; then
		ensure_normal || return 1
		hb_stop
		wait_mode lockdown 15 || { fail "no heartbeat-loss lockdown to release"; return 1; }
	fi
	# Two valid heartbeats are not enough.
	ctl heartbeat --to "$AGENT_TO" --key "$CTL_KEY" --host-id "$AGENT_HOST_ID" \
		--interval 200 --count 2 >"$WORK/hb2.out" 2>&1 ||
		fail "controller heartbeat --count 2: $(tail -n 1 "$WORK/hb2.out")"
	sleep 0.3
	expect_mode lockdown "after 2 valid heartbeats, release_after 3"
	blocked "peer -> node ping after 2 heartbeats" ping4
	n=$(audit_count transition trigger=heartbeat_restored)
	hb_start
	if wait_mode normal 15; then
		pass "heartbeats resumed: back to normal by itself"
	else
		fail "heartbeats resumed: still $(mode_now) after 5 s"
	fi
	audit_more_than "$n" "transition to normal, trigger heartbeat_restored" \
		transition to=normal trigger=heartbeat_restored
	expect_audit "heartbeat_restored recorded" heartbeat_restored
	allowed "peer -> node ping after the automatic release" ping4
	allowed "node -> peer tcp/7000 after the automatic release" out4

	note "restarting the agent with release_after 0 (agent-manual.yaml)"
	daemon_stop TERM
	agent_start "$WORK/agent-manual.yaml" || return 1
	expect_mode normal "restart with heartbeats flowing"
	hb_stop
	wait_mode lockdown $(((HB_TIMEOUT_MS + SECURE_MARGIN_MS) / 1000 + 1))
	expect_mode lockdown "heartbeats stopped again"
	hb_start
	note "heartbeats resumed; waiting 3 s (15 heartbeats)"
	sleep 3
	expect_mode lockdown "release_after 0: heartbeats alone do not release"
	blocked "peer -> node ping while still locked down" ping4
	n=$(audit_count break_glass)
	if show pc release; then
		pass "portcullis release"
	else
		fail "portcullis release failed"
	fi
	expect_mode normal "after portcullis release"
	audit_more_than "$n" "break_glass recorded" break_glass
	expect_audit "transition lockdown -> normal, trigger break_glass" \
		transition from=lockdown to=normal trigger=break_glass
	allowed "peer -> node ping after the release" ping4
}

# ---- 5. kernel dead-man switch with the agent dead ----

test_deadman()
{
	local t0 n
	ensure_normal || return 1
	allowed "peer -> node ping before" ping4
	daemon_stop KILL
	pass "portcullisd SIGKILLed"
	t0=$(now_ms)
	hb_stop
	note "agent dead, heartbeats stopped; pinging from the peer"
	probe_until_blocked "$t0"
	expect_secured_in "kernel dead-man" "the agent was killed"
	show pc status
	if grep -q 'agent: *not running' "$WORK/show.out"; then
		pass "status works with the agent down: agent not running"
	else
		fail "status with the agent down does not say 'agent: not running'"
	fi
	if grep -q 'dead-man:.*TRIPPED' "$WORK/show.out"; then
		pass "status: dead-man TRIPPED"
	else
		fail "status: no 'dead-man: ... TRIPPED' line"
	fi
	n=$(reason_packets drop_deadman)
	pass_if "status: drop_deadman $n > 0" \
		"status: drop_deadman $n, expected > 0" \
		[ "$n" -gt 0 ]
	blocked "peer -> node ping (dead-man lockdown, no agent)" ping4
	blocked "node -> peer tcp/7000 (dead-man lockdown, no agent)" out4
	allowed "mgmt -> node tcp/22 (management, no agent)" ssh4
	allowed "peer -> node tcp/8080 (web lists lockdown, no agent)" web4
	n=$(audit_count transition trigger=deadman)
	agent_start "$DAEMON_CONFIG" || return 1
	audit_more_than "$n" "transition to lockdown, trigger deadman" \
		transition to=lockdown trigger=deadman
	expect_mode lockdown "restart after the dead-man tripped"
	show pc status
	if grep -Eq 'normal +-> lockdown +deadman' "$WORK/show.out"; then
		pass "status: last transitions has normal -> lockdown deadman"
	else
		fail "status: no 'normal -> lockdown deadman' in last transitions"
	fi
	hb_start
	note "heartbeats resumed (release_after 0); waiting 2 s"
	sleep 2
	expect_mode lockdown "stays locked down"
	blocked "peer -> node ping, still locked down" ping4
	pc release >/dev/null 2>&1
	wait_mode normal 15
	expect_mode normal "after portcullis release"
	allowed "peer -> node ping after release" ping4
}

# ---- 6. refused commands ----

# refused DESC HB|CMD REASON EVENT SEND_ARGS...: the command must be
# refused, counted under REASON and audited; the mode must not change.
refused()
{
	local desc=$1 part=$2 reason=$3 event=$4 before_c before_a i
	shift 4
	before_c=$(msg_count "$part" "$reason")
	before_a=$(audit_count "$event" reason="$reason")
	if ! ctl_send "$@" >"$WORK/send.out" 2>&1; then
		fail "$desc: controller send failed: $(tail -n 1 "$WORK/send.out")"
		return 1
	fi
	for ((i = 0; i < 20; i++)); do
		[ "$(msg_count "$part" "$reason")" -gt "$before_c" ] && break
		sleep 0.1
	done
	if [ "$(msg_count "$part" "$reason")" -gt "$before_c" ]; then
		pass "$desc: counted ($reason $before_c -> $(msg_count "$part" "$reason"))"
	else
		fail "$desc: $reason count still $before_c"
	fi
	audit_more_than "$before_a" "$desc: $event reason $reason" \
		"$event" reason="$reason"
	expect_mode normal "$desc changed nothing"
}

test_refused()
{
	local seq
	ensure_normal || return 1
	if [ ! -e "$WORK/forged.key" ]; then
		"$PCCLI" keygen --out "$WORK/forged.key" >/dev/null 2>&1 ||
			{ fail "keygen for the forged key"; return 1; }
	fi
	refused "quarantine signed with another key" hb unknown_key \
		message_refused quarantine --key "$WORK/forged.key"
	refused "quarantine for another host" cmd wrong_host command_refused \
		quarantine --host-id other-node
	refused "quarantine that expired (--expires 0)" cmd expired \
		command_refused quarantine --expires 0
	refused "quarantine 120 s old (stale)" cmd stale command_refused \
		quarantine --timestamp-offset -120000
	# A harmless command (release while normal) captured, then replayed.
	if ctl_send release --raw-out "$WORK/release.bin" >"$WORK/send.out" 2>&1; then
		pass "signed release (node already normal) sent and captured"
	else
		fail "signed release with --raw-out: $(tail -n 1 "$WORK/send.out")"
	fi
	seq=$(msg_count cmd replay)
	refused_replay "$seq"
	refused "quarantine with a sequence below the last (--seq 1)" cmd replay \
		command_refused quarantine --seq 1
	show pc status
	grep '^messages:' "$WORK/show.out" | sed 's/^/      /'
	allowed "peer -> node ping after the refused commands" ping4
	allowed "peer -> node tcp/8080 after the refused commands" web4
	blocked "peer -> node tcp/9090 after the refused commands" alt4
}

# The captured datagram again, byte for byte.
refused_replay()
{
	local before=$1 before_a i
	before_a=$(audit_count command_refused reason=replay)
	ctl replay "$WORK/release.bin" --to "$AGENT_TO" >"$WORK/send.out" 2>&1 ||
		{ fail "controller replay: $(tail -n 1 "$WORK/send.out")"; return; }
	for ((i = 0; i < 20; i++)); do
		[ "$(msg_count cmd replay)" -gt "$before" ] && break
		sleep 0.1
	done
	pass_if "replayed datagram: counted (replay $before -> $(msg_count cmd replay))" \
		"replayed datagram: replay count still $before" \
		[ "$(msg_count cmd replay)" -gt "$before" ]
	audit_more_than "$before_a" "replayed datagram: command_refused reason replay" \
		command_refused reason=replay
}

# ---- 7. signed quarantine, lockdown does not de-escalate, release ----

test_command()
{
	local acc n n2
	ensure_normal || return 1
	acc=$(audit_count command_accepted)
	n=$(audit_count transition trigger=command)
	hold_begin out node "$LAB_PEER4" 7000 || return 1
	hold_begin in peer "$LAB_NODE_PEER4" 8080 || return 1
	check "signed quarantine sent" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "signed quarantine"
	hold_end out cut
	hold_end in cut
	blocked "peer -> node tcp/8080 in quarantine" web4
	blocked "node -> peer tcp/7000 in quarantine" out4
	blocked "peer -> node ping in quarantine" ping4
	allowed "mgmt -> node tcp/22 in quarantine (management)" ssh4
	allowed "mgmt -> node tcp/22 v6 in quarantine (management)" ssh6
	check "signed lockdown sent" ctl_send lockdown
	sleep 0.5
	expect_mode quarantine "a signed lockdown does not de-escalate"
	blocked "peer -> node tcp/8080 still (lockdown would allow it)" web4
	check "signed release sent (captured)" ctl_send release --raw-out "$WORK/release2.bin"
	wait_mode normal 15
	expect_mode normal "signed release"
	allowed "peer -> node tcp/8080 after release" web4
	allowed "node -> peer tcp/7000 after release" out4
	# The same release once more, replayed in a later quarantine: refused.
	check "signed quarantine again" ctl_send quarantine
	wait_mode quarantine 15
	ctl replay "$WORK/release2.bin" --to "$AGENT_TO" >/dev/null 2>&1
	sleep 0.5
	expect_mode quarantine "a replayed release lifts nothing"
	blocked "peer -> node tcp/8080 after the replayed release" web4
	show pc release
	wait_mode normal 15
	expect_mode normal "local portcullis release"
	allowed "peer -> node tcp/8080 after portcullis release" web4
	n2=$(audit_count command_accepted)
	pass_if "audit: command_accepted $acc -> $n2 (quarantine, lockdown, release, quarantine)" \
		"audit: command_accepted $acc -> $n2, expected +4" \
		[ "$n2" -ge $((acc + 4)) ]
	note "$(audit_last command_accepted command=quarantine)"
	audit_more_than $((n + 2)) "transitions with trigger command (3 new)" \
		transition trigger=command
	expect_audit "transition normal -> quarantine, trigger command" \
		transition from=normal to=quarantine trigger=command
	expect_audit "transition quarantine -> normal, trigger command" \
		transition from=quarantine to=normal trigger=command
}

# ---- 8. anomaly: outbound connection burst ----

# burst RATE SECONDS: RATE new TCP connections a second from the node to
# closed ports of the peer, evenly spread, for SECONDS (at most 20).
burst()
{
	ip netns exec "$LAB_NODE" timeout 30 "$PY" - "$LAB_PEER4" "$1" "$2" <<'PYEOF'
import socket, sys, time
host, rate, secs = sys.argv[1], int(sys.argv[2]), min(float(sys.argv[3]), 20.0)
start = time.monotonic()
n = 0
while True:
    now = time.monotonic()
    if now - start >= secs:
        break
    due = start + n / rate
    if due > now:
        time.sleep(due - now)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(0.05)
    try:
        s.connect((host, 30000 + n % 20000))
    except OSError:
        pass
    finally:
        s.close()
    n += 1
print("burst: %d connections in %.1f s" % (n, time.monotonic() - start))
PYEOF
}

test_anomaly()
{
	local n
	ensure_normal || return 1
	n=$(audit_count anomaly)
	note "below the threshold: 8 new flows/s for 3 s (trigger: 20/s for 2 intervals)"
	burst 8 3 | sed 's/^/      /'
	sleep 1.2
	expect_mode normal "8 new flows/s does not trip the trigger"
	pass_if "audit: no anomaly below the threshold" \
		"audit: anomaly recorded below the threshold" \
		[ "$(audit_count anomaly)" -eq "$n" ]
	allowed "node -> peer tcp/7000 after the small burst" out4
	note "above: 40 new flows/s for 4 s"
	burst 40 4 | sed 's/^/      /'
	wait_mode quarantine 15
	expect_mode quarantine "40 new flows/s for 4 s"
	audit_more_than "$n" "anomaly, trigger scan" anomaly trigger=scan
	expect_audit "transition normal -> quarantine, trigger anomaly" \
		transition from=normal to=quarantine trigger=anomaly
	grep 'anomaly' "$DAEMON_LOG" | tail -n 1 | sed 's/^/      | /'
	blocked "node -> peer tcp/7000 in anomaly quarantine" out4
	blocked "peer -> node tcp/8080 in anomaly quarantine" web4
	allowed "mgmt -> node tcp/22 in anomaly quarantine" ssh4
	pc release >/dev/null 2>&1
	wait_mode normal 15
	expect_mode normal "after portcullis release"
	allowed "node -> peer tcp/7000 after release" out4
}

# ---- 9. policy pushed by the controller ----

# push_policy DESC ARGS...: a signed apply-policy, then wait (15 s at most)
# for its command_accepted audit line, written once the policy is loaded.
push_policy()
{
	local desc=$1 n
	shift
	n=$(audit_count command_accepted command=apply-policy)
	check "$desc" ctl_send apply-policy "$@"
	wait_audit "$n" 15 command_accepted command=apply-policy ||
		fail "$desc: no command_accepted within 15 s"
}

test_pushpolicy()
{
	local n hash
	ensure_normal || return 1
	blocked "peer -> node tcp/9090 before the push" alt4
	push_policy "signed apply-policy --policy open.yaml (adds tcp/9090)" \
		--policy "$WORK/open.yaml"
	expect_audit "policy_loaded after the push" policy_loaded
	allowed "peer -> node tcp/9090 after the push" alt4
	allowed "peer -> node tcp/8080 after the push" web4
	blocked "peer 203.0.113.5 -> node tcp/8080 after the push (deny blocked)" \
		tcp_probe peer "$LAB_NODE_PEER4" 8080 --source "$LAB_PEER_BAD4"
	pass_if "audit: no command_failed" \
		"audit: command_failed: $(audit_last command_failed)" \
		[ "$(audit_count command_failed)" -eq 0 ]
	note "restarting the agent"
	daemon_stop TERM
	agent_start "$DAEMON_CONFIG" || return 1
	grep -E 'policy' "$DAEMON_LOG" | grep -v libbpf | head -n 3 | sed 's/^/      | /'
	allowed "peer -> node tcp/9090 after the restart (pushed policy kept)" alt4
	allowed "peer -> node tcp/8080 after the restart" web4
	expect_mode normal "after the restart"
	# The lab policy back inline, then each by hash: the agent keeps what
	# was pushed.
	push_policy "signed apply-policy --policy policy.yaml (the lab policy)" --policy "$WORK/policy.yaml"
	blocked "peer -> node tcp/9090 after pushing the lab policy back" alt4
	hash=$(sha256sum "$WORK/open.yaml" | cut -d' ' -f1)
	push_policy "signed apply-policy --policy-hash (open.yaml, held since its push)" --policy-hash "$hash"
	allowed "peer -> node tcp/9090 after apply by hash" alt4
	hash=$(sha256sum "$WORK/policy.yaml" | cut -d' ' -f1)
	push_policy "signed apply-policy --policy-hash (policy.yaml)" --policy-hash "$hash"
	blocked "peer -> node tcp/9090 after apply of the lab policy by hash" alt4
	pass_if "audit: still no command_failed" \
		"audit: command_failed: $(audit_last command_failed)" \
		[ "$(audit_count command_failed)" -eq 0 ]
}

# ---- 10. a reboot: pins gone, agent starts from its state dir ----

# state_start WHY: the agent over removed pins (as after a reboot), so the
# mode can only come from the state file.

test_reboot()
{
	local ifc xdp tcf
	ensure_normal || return 1
	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "before the reboot"
	daemon_stop KILL
	pass "portcullisd SIGKILLed"
	rm -rf -- "$PIN_DIR"
	pass_if "pin dir removed (the XDP links with it)" \
		"cannot remove $PIN_DIR" \
		[ ! -e "$PIN_DIR" ]
	# The TC egress filter is attached over netlink, not by a pinned link:
	# it outlives the pins, enforcing the orphaned maps. A reboot clears
	# it; so do we.
	for ifc in "$LAB_NODE_PEER_IF" "$LAB_NODE_MGMT_IF"; do
		xdp=$(ip -n "$LAB_NODE" link show dev "$ifc" | grep -o 'xdp[a-z]*' | head -n 1)
		tcf=$(tc -n "$LAB_NODE" filter show dev "$ifc" egress |
			grep -q ' bpf ' && echo "bpf filter still attached")
		note "$ifc with the pins gone: XDP ${xdp:-none}; tc egress: ${tcf:-none} (removing clsact)"
		tc -n "$LAB_NODE" qdisc del dev "$ifc" clsact 2>/dev/null
	done
	sleep 0.3
	allowed "peer -> node tcp/9090 with no pins (nothing enforces)" alt4
	allowed "node -> peer tcp/7000 with no pins (nothing enforces)" out4
	agent_start "$DAEMON_CONFIG" || return 1
	if grep -q 'portcullisd: ready.*mode quarantine' "$DAEMON_LOG"; then
		pass "ready in quarantine: $(grep -m1 'portcullisd: ready' "$DAEMON_LOG")"
	else
		fail "not ready in quarantine: $(grep -m1 'portcullisd: ready' "$DAEMON_LOG")"
	fi
	expect_mode quarantine "after the reboot"
	expect_audit "mode_at_start quarantine" mode_at_start mode=quarantine
	blocked "peer -> node tcp/8080 after the reboot (quarantine)" web4
	blocked "node -> peer tcp/7000 after the reboot (quarantine)" out4
	blocked "peer -> node tcp/9090 after the reboot" alt4
	allowed "mgmt -> node tcp/22 after the reboot (management)" ssh4
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "signed release after the reboot"
	allowed "peer -> node tcp/8080 after release" web4
}

# ---- 11. the interface comes back: programs re-attached ----

test_relink()
{
	local n i ok=no
	ensure_normal || return 1
	n=$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")
	blocked "peer -> node tcp/9090 before" alt4
	if lab_recreate_peer_link; then
		pass "node's $LAB_NODE_PEER_IF deleted and re-created (new ifindex)"
	else
		fail "could not re-create $LAB_NODE_PEER_IF"
		return 1
	fi
	for ((i = 0; i < 50; i++)); do
		if [ "$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")" -gt "$n" ]; then
			ok=yes
			break
		fi
		sleep 0.2
	done
	pass_if "audit: interface_attached $LAB_NODE_PEER_IF within $((i / 5)) s" \
		"audit: no interface_attached $LAB_NODE_PEER_IF within 10 s" \
		[ "$ok" = yes ]
	note "$(audit_last interface_attached interface="$LAB_NODE_PEER_IF")"
	expect_audit "interface_gone $LAB_NODE_PEER_IF" interface_gone \
		interface="$LAB_NODE_PEER_IF"
	pc status 2>/dev/null | grep '^interfaces:' | sed 's/^/      | /'
	blocked "peer -> node tcp/9090 on the new link (default deny again)" alt4
	blocked "peer 203.0.113.5 -> node tcp/8080 on the new link" \
		tcp_probe peer "$LAB_NODE_PEER4" 8080 --source "$LAB_PEER_BAD4"
	allowed "peer -> node tcp/8080 on the new link" web4
	allowed "peer -> node ping on the new link" ping4
	blocked "node -> peer 203.0.113.5 tcp/7000 on the new link (egress deny)" \
		tcp_probe node "$LAB_PEER_BAD4" 7000
}

# ---- 12. adopting pins the dead-man was off for: one timeout of grace ----

test_adopt()
{
	local n t_start t_loss
	ensure_normal || return 1
	hb_stop
	daemon_stop TERM
	note "portcullisd --policy (no controller, dead-man off) over the pins for 3 s"
	DAEMON_CONFIG=
	if daemon_start; then
		pass "policy-only portcullisd adopted the pins"
	else
		fail "policy-only portcullisd not ready: $(tail -n 1 "$DAEMON_LOG")"
		return 1
	fi
	sleep 3
	daemon_stop TERM
	n=$(audit_count transition trigger=heartbeat_loss)
	note "portcullisd --config agent.yaml over the same pins, no heartbeats yet"
	agent_start "$WORK/agent.yaml" || return 1
	expect_mode normal "at the start, inside the 2 s grace"
	allowed "peer -> node ping inside the grace" ping4
	wait_mode lockdown 15
	expect_mode lockdown "grace over, still no heartbeat"
	# When the grace ended is the agent's own record: how fast the probes
	# above ran does not matter.
	t_start=$(audit_ms mode_at_start)
	t_loss=$(audit_ms transition trigger=heartbeat_loss)
	if [ "$(audit_count transition trigger=heartbeat_loss)" -le "$n" ]; then
		fail "no heartbeat_loss transition after the grace"
	elif [ $((t_loss - t_start)) -ge 1800 ]; then
		pass "heartbeat_loss $((t_loss - t_start)) ms after mode_at_start: not inside the 2 s grace"
	else
		fail "heartbeat_loss $((t_loss - t_start)) ms after mode_at_start: inside the 2 s grace"
	fi
	hb_start
	pc release >/dev/null 2>&1
	wait_mode normal 15
	expect_mode normal "heartbeats back, released"
}

summary() { check_summary; }

main()
{
	local t tests=("$@")
	[ ${#tests[@]} -gt 0 ] || tests=("${ALL_TESTS[@]}")
	[ "$(id -u)" -eq 0 ] || { echo "agent e2e: must run as root" >&2; exit 1; }
	binaries_present || { summary; exit 1; }
	trap e2e_teardown EXIT
	if ! e2e_setup || ! agent_prepare; then
		fail "lab setup"
		summary
		exit 1
	fi
	for t in "${tests[@]}"; do
		CUR=$t
		if ! declare -F "test_$t" >/dev/null; then
			fail "no such test"
			continue
		fi
		echo "== $t"
		"test_$t"
	done
	CUR=summary
	summary
}

main "$@"

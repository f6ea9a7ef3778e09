#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fault injection: the proof of fail-secure. The agent (tests/configs/
# lab-agent.yaml: controller, heartbeats, kernel dead-man) runs in the
# namespace lab (tests/lab.sh) while the peer sends numbered UDP datagrams
# (tests/e2e/faults/numbered.py) on three streams, and a receiver on the
# node records which numbers arrived:
#
#   A   198.51.100.2 -> node udp/5000   allowed (rule udp-in, normal mode)
#   Dr  203.0.113.5  -> node udp/5000   denied by the rule "blocked"
#   Dd  198.51.100.2 -> node udp/5001   denied by the ingress default
#
# Every scenario injects its faults under that traffic and asserts that no
# datagram of Dr or Dd (together: D) arrived, and reports A's losses,
# which must be zero wherever the scenario does not explain them.
#
#   bash tests/e2e/faults.sh [SCENARIO...]     (root; after make)
#
# SCENARIOs default to all, in order:
#   kill stop restart upgrade hang        the agent's process
#   hup apply                             policy reloads in a loop
#   partition skew replay                 the controller
#   configs                               bad files: check, apply, SIGHUP
#   relink relinkdead auditfull           the system under the agent
#   flows rulemaps                        full maps (a full flow table
#                                         makes `status` slow: late)
#   bpffs                                 last: it detaches the main pins
# One PASS/FAIL line per check; the summary line counts scenarios, checks,
# faults injected (each signal, reload, bad file, partition, skewed or
# replayed datagram, flood, unlink, full disk, unmount) and leaks (D
# datagrams that arrived); non-zero exit on any failure.
#
# Safety: only the lab's namespaces (removed by exact name), our own pin
# dir, temp dirs and the mounts we made (a 64 KiB tmpfs for the audit log;
# a bpffs in a private mount namespace, never the host's /sys/fs/bpf);
# processes killed by the PIDs we started; every loop bounded in count and
# time; the whole run bounded by FAULTS_MAX_SECONDS (default 480).

set -u
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK_NAME="faults"
CHECK_WIDTH=10
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

FAULTS_DIR=$E2E_ROOT/tests/e2e/faults
NUM=$FAULTS_DIR/numbered.py
PIN_DIR=/sys/fs/bpf/pc-faults-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
# Only what the probes use: udp/5000 and 5001 belong to our receiver.
LAB_SERVERS=("node tcp 8080" "node tcp 9090")

ALL_SCENARIOS=(kill stop restart upgrade hang hup apply partition skew replay
	configs relink relinkdead auditfull flows rulemaps bpffs)
RATE=${FAULTS_RATE:-500}	# datagrams a second, per stream
HB_TIMEOUT_MS=2000		# lab-agent.yaml heartbeat.timeout
SECURE_MARGIN_MS=2500		# allowed on top of it (2 shared CPUs)
MAX_SKEW_S=30			# lab-agent.yaml controller.max_skew
REPLAYS=${FAULTS_REPLAYS:-5000}	# replayed datagrams in the flood
REPLAYS_CLI=${FAULTS_REPLAYS_CLI:-100}	# of which sent by `controller replay`
FLOOD_FLOWS=${FAULTS_FLOOD_FLOWS:-300000}	# > PC_MAX_FLOWS (262,144)
FLOWS_MAX=262144	# each flow table (pc_flows, pc_flows_peer)
FILL_CIDRS=${FAULTS_FILL_CIDRS:-600000}	# /128s per policy; 2 > PC_MAX_ADDR6
MAX_SECONDS=${FAULTS_MAX_SECONDS:-480}

SCEN_N=0
FAULT_N=0
LEAK_N=0
WATCHDOG=
AUD_MNT=		# our tmpfs for the audit log (host mount namespace)
BPF_MNT=		# mount point of the private bpffs (private namespace)
PRIV_WRAP=		# timeout(1) around the agent in the private namespace
PRIV_PID=

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---- numbered traffic ----

TR=		# this run's file prefix
TR_RUN=
TR_RECV=
TR_SEND=
TR_N=0

# traffic_start SECONDS: receiver on the node, sender on the peer.
traffic_start()
{
	local secs=$1
	TR_N=$((TR_N + 1))
	TR=$WORK/tr-$TR_N-$CUR
	TR_RUN=$CUR-$TR_N-$$
	: >"$TR.events"
	bg_start "$TR.recv.log" $((secs + 60)) ip netns exec "$LAB_NODE" \
		"$PY" "$NUM" recv --ports 5000,5001 --out "$TR.recv.json" \
		--run "$TR_RUN" --duration $((secs + 45))
	TR_RECV=$BG_LAST
	if ! wait_for_line "$TR.recv.log" '^listening' 5 "$TR_RECV"; then
		fail "receiver did not start: $(tail -n 1 "$TR.recv.log")"
		return 1
	fi
	bg_start "$TR.send.log" $((secs + 30)) ip netns exec "$LAB_PEER" \
		"$PY" "$NUM" send --dst "$LAB_NODE_PEER4" --rate "$RATE" \
		--duration "$secs" --out "$TR.send.json" --run "$TR_RUN" \
		--stream "A:$LAB_PEER4:5000" --stream "Dr:$LAB_PEER_BAD4:5000" \
		--stream "Dd:$LAB_PEER4:5001"
	TR_SEND=$BG_LAST
	if ! wait_for_line "$TR.send.log" '^sending' 5 "$TR_SEND"; then
		fail "sender did not start: $(tail -n 1 "$TR.send.log")"
		return 1
	fi
	sleep 0.3
}

# event LABEL: a named moment on the traffic's clock.
event() { echo "$(date +%s.%N) $1" >>"$TR.events"; }

# fault LABEL [N]: an injected fault (N of them), marked on the clock.
fault()
{
	event "$1"
	FAULT_N=$((FAULT_N + ${2:-1}))
}

# traffic_stop: end the sender now (it writes what it sent so far).
traffic_stop()
{
	kill -s TERM "$TR_SEND" 2>/dev/null
}

# traffic_end [EVENT1:EVENT2...]: wait for the sender, stop the receiver,
# load R_* from the report and show its account (and what was sent and
# arrived between each pair of events).
traffic_end()
{
	local v w windows=()
	for w in "$@"; do
		windows+=(--window "$w")
	done
	wait "$TR_SEND" 2>/dev/null
	# The receiver reads on until its sockets are quiet (numbered.py).
	kill -s TERM "$TR_RECV" 2>/dev/null
	wait "$TR_RECV" 2>/dev/null
	for v in "${!R_@}"; do
		unset "$v"
	done
	if ! "$PY" "$NUM" report --sent "$TR.send.json" --recv "$TR.recv.json" \
		--events "$TR.events" --deny Dr,Dd "${windows[@]}" >"$TR.report" 2>&1; then
		fail "traffic report: $(tail -n 1 "$TR.report")"
		return 1
	fi
	# Numbers only: nothing else is evaluated.
	eval "$(grep -E '^R_[A-Z0-9_]+=-?[0-9.]+$' "$TR.report")"
	sed -n 's/^# /      | /p' "$TR.report"
	expect_no_leak
}

expect_no_leak()
{
	if [ "${R_D_SENT:-0}" -le 0 ]; then
		fail "no denied datagram was sent: nothing proven"
	elif [ "$R_D_RECV" -eq 0 ]; then
		pass "zero denied: 0 of $R_D_SENT D datagrams arrived (Dr 0/$R_DR_SENT, Dd 0/$R_DD_SENT)"
	else
		LEAK_N=$((LEAK_N + R_D_RECV))
		fail "LEAK: $R_D_RECV of $R_D_SENT denied datagrams arrived (Dr $R_DR_RECV, Dd $R_DD_RECV)"
	fi
}

# a_lost_at_most N WHY: A's losses; A must also have arrived at all.
a_lost_at_most()
{
	local max=$1 why=$2
	if [ "${R_A_RECV:-0}" -le 0 ]; then
		fail "A: nothing arrived of $R_A_SENT: a datapath dropping everything proves nothing"
	elif [ "$R_A_LOST" -le "$max" ]; then
		pass "A: $R_A_RECV of $R_A_SENT arrived, $R_A_LOST lost (at most $max: $why)"
	else
		fail "A: $R_A_LOST of $R_A_SENT lost, longest gap ${R_A_LONGEST_GAP_MS} ms (at most $max: $why)"
	fi
}

# a_report WHY: A's losses, reported, not judged (the scenario explains).
a_report()
{
	if [ "${R_A_RECV:-0}" -le 0 ]; then
		fail "A: nothing arrived of $R_A_SENT"
		return
	fi
	pass "A: $R_A_RECV of $R_A_SENT arrived, $R_A_LOST lost in ${R_A_GAPS} gap(s), longest ${R_A_LONGEST_GAP_MS} ms ($1)"
}

# a_flowing_at_end: the last A datagram arrived (traffic ended allowed).
a_flowing_at_end()
{
	local last=${R_A_LAST_RECV_T:-0} dur=$R_ELAPSED
	if awk -v l="$last" -v d="$dur" 'BEGIN { exit !(l >= d - 0.5) }'; then
		pass "A flowing at the end (last arrived sent at ${last} s of ${dur} s): $1"
	else
		fail "A not flowing at the end (last arrived sent at ${last} s of ${dur} s): $1"
	fi
}

# ms_between T1 T2: (T2 - T1) in ms, from the report's seconds.
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%d", (b - a) * 1000 }'; }

# ---- the agent ----

msg_count()
{
	pc status 2>/dev/null | "$PY" -c '
import re, sys
part, name = sys.argv[1], sys.argv[2]
for line in sys.stdin:
    if line.startswith("messages:"):
        hb, _, cmd = line[len("messages:"):].partition(";")
        m = re.search(r"\b%s (\d+)" % re.escape(name), hb if part == "hb" else cmd)
        print(m.group(1) if m else 0)
        break
else:
    print(-1)
' "$1" "$2"
}

generation_now()
{
	pc status 2>/dev/null | sed -n 's/^policy: *generation \([0-9]*\).*/\1/p'
}

# metric NAME: a sample of the agent's /metrics, "none" if absent.
metric()
{
	ip netns exec "$LAB_NODE" timeout 10 "$PY" - "$1" <<'PYEOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open("http://127.0.0.1:9712/metrics", timeout=5) as r:
        for line in r.read().decode().splitlines():
            if line.split(" ")[0] == sys.argv[1]:
                print(line.split(" ")[1])
                sys.exit(0)
except Exception as e:
    sys.stderr.write("metrics: %s\n" % e)
print("none")
PYEOF
}

agent_up()
{
	DAEMON_CONFIG=$WORK/agent.yaml
	if daemon_start; then
		pass "portcullisd: $(grep -m1 'portcullisd: ready' "$DAEMON_LOG" | sed 's/.*portcullisd: //')"
		return 0
	fi
	fail "portcullisd not ready: $(tail -n 1 "$DAEMON_LOG")"
	return 1
}

# ensure_agent: agent up with policy A, heartbeats flowing, mode normal.
ensure_agent()
{
	hb_running || hb_start
	if ! daemon_alive; then
		agent_up || return 1
	fi
	[ "$(mode_now)" = normal ] && return 0
	pc release >/dev/null 2>&1
	wait_mode normal 15 || { fail "cannot get the node back to normal"; return 1; }
}

# reload_and_wait BEFORE: SIGHUP, then more than BEFORE reloads logged.
reloads_now() { grep -c 'reloaded policy' "$DAEMON_LOG"; }
refusals_now() { grep -c 'reload failed' "$DAEMON_LOG"; }

# Small predicates for pass_if.
agent_normal() { daemon_alive && [ "$(mode_now)" = normal ]; }
status_reaches() { pc status 2>/dev/null | grep -q "^agent: *running, pid $1"; }
alt_blocked() { ! tcp_probe peer "$LAB_NODE_PEER4" 9090 >/dev/null 2>&1; }
policy_a_enforcing()
{
	tcp_probe peer "$LAB_NODE_PEER4" 8080 >/dev/null 2>&1 && alt_blocked
}
stale_at_least() { [ "$(msg_count cmd stale)" -ge "$1" ]; }
stale_and_normal() { [ "$(msg_count cmd stale)" -eq "$1" ] && [ "$(mode_now)" = normal ]; }
# all_ok RC CMD...: RC was 0 and CMD succeeds.
all_ok() { [ "$1" -eq 0 ] && shift && "$@"; }
# increasing N...: each (integer part) above the one before.
increasing()
{
	local prev=-1 v
	for v in "$@"; do
		v=${v%%.*}
		case $v in '' | *[!0-9]*) return 1 ;; esac
		[ "$v" -gt "$prev" ] || return 1
		prev=$v
	done
}

set_policy()
{
	cp "$1" "$WORK/policy.yaml.tmp" && mv "$WORK/policy.yaml.tmp" "$WORK/policy.yaml"
}

# hup_policy FILE: make FILE the agent's policy, SIGHUP, wait for the
# reload (at most 3 s).
hup_policy()
{
	local before
	set_policy "$1" || return 1
	before=$(reloads_now)
	kill -s HUP "$DAEMON_PID" 2>/dev/null || return 1
	wait_for_count "$DAEMON_LOG" 'reloaded policy' $((before + 1)) 15
}

# ---- 1. the agent's process ----

scenario_kill()
{
	ensure_agent || return 1
	traffic_start 4 || return 1
	sleep 1
	fault sigkill
	daemon_stop KILL
	pass "portcullisd SIGKILLed under traffic"
	sleep 0.3
	event restart
	agent_up
	event ready
	traffic_end
	note "agent back $(ms_between "$R_EV_SIGKILL" "$R_EV_READY") ms after the SIGKILL (dead-man timeout $HB_TIMEOUT_MS ms)"
	a_lost_at_most 0 "the datapath runs without the agent; dead 0.3 s + start, under the 2 s dead-man timeout"
	pass_if "restart adopted the pinned state" "restart did not adopt the pins" \
		grep -q 'adopting pinned state' "$DAEMON_LOG"
}

scenario_stop()
{
	ensure_agent || return 1
	traffic_start 4 || return 1
	sleep 1
	fault sigstop
	kill -s STOP "$DAEMON_PID"
	sleep 0.8
	event sigcont
	kill -s CONT "$DAEMON_PID"
	traffic_end
	note "stopped for $(ms_between "$R_EV_SIGSTOP" "$R_EV_SIGCONT") ms (heartbeat timeout $HB_TIMEOUT_MS ms)"
	a_lost_at_most 0 "stopped 0.8 s, well under the 2 s heartbeat timeout"
	wait_until 10 agent_normal
	pass_if "agent alive and normal after SIGCONT" \
		"agent after SIGCONT: alive=$(daemon_alive && echo yes || echo no) mode=$(mode_now)" \
		agent_normal
}

scenario_restart()
{
	ensure_agent || return 1
	traffic_start 4 || return 1
	sleep 1
	fault sigterm
	daemon_stop TERM
	event start
	agent_up
	traffic_end
	a_lost_at_most 0 "SIGTERM leaves enforcement; the new agent adopts it"
}

# The new binary: a copy under another path, started (a) beside the old
# agent, then (b) in its place.
scenario_upgrade()
{
	local new=$WORK/portcullisd.new log=$WORK/upgrade-beside.log wrap pid rc i g0
	ensure_agent || return 1
	g0=$(generation_now)
	if ! cp "$PCD" "$new"; then
		fail "copy of $PCD"
		return 1
	fi
	traffic_start 6 || return 1
	sleep 1
	fault second-copy
	bg_start "$log" 30 nsenter --net="/run/netns/$LAB_NODE" -- "$new" \
		--config "$WORK/agent.yaml" --pin-dir "$PIN_DIR" \
		--state-dir "$STATE_DIR" --audit-log "$AUDIT_LOG" \
		--control-socket "$CONTROL_SOCKET" --xdp-mode "$E2E_XDP_MODE" -v
	wrap=$BG_LAST
	for ((i = 0; i < 50; i++)); do
		kill -0 "$wrap" 2>/dev/null || break
		grep -q 'portcullisd: ready' "$log" && break
		sleep 0.1
	done
	pid=$(pgrep -P "$wrap" | head -n 1)
	if grep -q 'portcullisd: ready' "$log"; then
		note "second copy beside the running agent became ready (pid $pid): two agents on one pin dir"
		kill -s TERM "$pid" 2>/dev/null
	fi
	wait "$wrap" 2>/dev/null
	rc=$?
	note "second copy beside the running agent: exit $rc, policy generation $g0 -> $(generation_now); $(grep -v 'debug\|libbpf' "$log" | tail -n 2 | tr '\n' ' ')"
	pass_if "old agent still alive beside the second copy" \
		"old agent died when a second copy started" daemon_alive
	if pc status 2>/dev/null | grep -q '^agent: *running'; then
		pass "status still reaches the running agent over its control socket"
	else
		fail "status no longer reaches the running agent (pid $DAEMON_PID): $(pc status 2>/dev/null | grep '^agent:')"
	fi
	sleep 0.5
	fault upgrade
	daemon_stop TERM
	PCD=$new agent_up
	traffic_end
	a_lost_at_most 0 "a second copy and the swap to the new binary: atomic link update, adopted state"
	pass_if "new binary adopted the pinned state" "new binary did not adopt the pins" \
		grep -q 'adopting pinned state' "$DAEMON_LOG"
	pass_if "status reaches the new agent" "status does not reach the new agent" \
		status_reaches "$DAEMON_PID"
}

# SIGSTOP past the heartbeat timeout: a hung agent. The kernel dead-man
# switch must lock the node down without it.
scenario_hang()
{
	local stop_t lost_ms max=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS)) n n0
	ensure_agent || return 1
	n0=$(($(audit_count transition trigger=heartbeat_loss) +
		$(audit_count transition trigger=deadman) + $(audit_count heartbeat_lost)))
	traffic_start 40 || return 1
	sleep 1
	fault sigstop-long
	kill -s STOP "$DAEMON_PID"
	sleep 3.5
	event sigcont
	kill -s CONT "$DAEMON_PID"
	sleep 1.5
	note "after SIGCONT: mode $(mode_now); $(pc status 2>/dev/null | grep '^dead-man:')"
	if [ "$(mode_now)" != normal ]; then
		event release
		pc release >/dev/null 2>&1
	fi
	wait_mode normal 15
	sleep 1		# A must flow again after the release: a hold
	traffic_stop
	traffic_end
	stop_t=${R_EV_SIGSTOP_LONG:-0}
	# The lockdown is the longest gap; a stray loss before it is not.
	if [ -n "${R_A_LONGEST_GAP_START_T:-}" ]; then
		lost_ms=$(ms_between "$stop_t" "$R_A_LONGEST_GAP_START_T")
		pass_if "dead-man: A cut ${lost_ms} ms after SIGSTOP (timeout $HB_TIMEOUT_MS, at most $max)" \
			"dead-man: A cut ${lost_ms} ms after SIGSTOP, outside $((HB_TIMEOUT_MS - 500))..$max ms" \
			[ "$lost_ms" -ge $((HB_TIMEOUT_MS - 500)) ] && [ "$lost_ms" -le "$max" ]
	else
		fail "dead-man: A never cut with the agent stopped 3.5 s"
	fi
	a_report "expected: lost from the dead-man lockdown until the release"
	a_flowing_at_end "released"
	# The node was locked down by the kernel while the agent hung: that
	# secure-state period must be on record (audit or transitions).
	n=$(($(audit_count transition trigger=heartbeat_loss) +
		$(audit_count transition trigger=deadman) + $(audit_count heartbeat_lost)))
	pass_if "the dead-man lockdown during the hang is on record ($n audit lines)" \
		"the dead-man lockdown during the hang (A cut ${R_A_LONGEST_GAP_MS} ms) left NO record: no heartbeat_lost, no transition in the audit log" \
		[ "$n" -gt "$n0" ]
}

# ---- 2. reloads in a loop ----

# Policy B: another allowlist (tcp/9090 instead of 8080, extra udp ports)
# and another rule order; A allowed and D denied in both.
policies_write()
{
	cp "$AGENT_POLICY_SRC" "$WORK/pol-a.yaml" || return 1
	cat >"$WORK/pol-b.yaml" <<'EOF'
# faults.sh policy B: the rules of A reordered, tcp/9090 for 8080.
interfaces: [pcpeer, pcmgmt]
defaults: {ingress: deny, egress: allow}
management:
  - {cidr: 192.0.2.10/32, proto: udp, ports: 7800}
  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}
  - {cidr: "2001:db8:2::10/128", proto: tcp, ports: 22}
rules:
  - {name: blocked, action: deny, direction: both, cidr: 203.0.113.0/24}
  - {name: udp-in, action: allow, direction: ingress, proto: udp, ports: [5000, "5002-5010"]}
  - {name: alt-web, action: allow, direction: ingress, proto: tcp, ports: 9090, modes: [normal, lockdown]}
  - {name: ping-in, action: allow, direction: ingress, proto: icmp}
EOF
	set_policy "$WORK/pol-a.yaml"
}

LOOP_N=${FAULTS_RELOADS:-20}

scenario_hup()
{
	local i before gen0 gen1 ok=0 f
	ensure_agent || return 1
	gen0=$(generation_now)
	traffic_start 7 || return 1
	for ((i = 1; i <= LOOP_N; i++)); do
		f=$WORK/pol-b.yaml
		[ $((i % 2)) -eq 0 ] && f=$WORK/pol-a.yaml
		set_policy "$f"
		before=$(reloads_now)
		FAULT_N=$((FAULT_N + 1))
		kill -s HUP "$DAEMON_PID" 2>/dev/null
		wait_for_count "$DAEMON_LOG" 'reloaded policy' $((before + 1)) 15 &&
			ok=$((ok + 1))
		sleep 0.15
	done
	traffic_end
	gen1=$(generation_now)
	pass_if "$ok of $LOOP_N SIGHUP reloads done, generation $gen0 -> $gen1" \
		"$ok of $LOOP_N SIGHUP reloads done, generation $gen0 -> $gen1" \
		[ "$ok" -eq "$LOOP_N" ] && [ $((gen1 - gen0)) -eq "$LOOP_N" ]
	a_lost_at_most 0 "A is allowed by both policies: no packet decided by neither"
	pass_if "policy A enforcing after the loop (tcp/8080 allowed, 9090 denied)" \
		"policy A not enforcing after the loop" policy_a_enforcing
}

scenario_apply()
{
	local i gen0 gen1 ok=0 f
	ensure_agent || return 1
	gen0=$(generation_now)
	traffic_start 7 || return 1
	for ((i = 1; i <= LOOP_N; i++)); do
		f=$WORK/pol-b.yaml
		[ $((i % 2)) -eq 0 ] && f=$WORK/pol-a.yaml
		FAULT_N=$((FAULT_N + 1))
		pc apply "$f" >"$WORK/apply.out" 2>&1 && ok=$((ok + 1))
		sleep 0.1
	done
	traffic_end
	gen1=$(generation_now)
	pass_if "$ok of $LOOP_N applies done, generation $gen0 -> $gen1" \
		"$ok of $LOOP_N applies done, generation $gen0 -> $gen1: $(tail -n 1 "$WORK/apply.out")" \
		[ "$ok" -eq "$LOOP_N" ] && [ $((gen1 - gen0)) -eq "$LOOP_N" ]
	a_lost_at_most 0 "A is allowed by both policies: no packet decided by neither"
}

# ---- 3. the controller ----

nft_mgmt() { ip netns exec "$LAB_MGMT" nft "$@"; }

scenario_partition()
{
	local part_ms heal_ms max=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS)) lost0
	ensure_agent || return 1
	lost0=$(audit_count heartbeat_lost)
	traffic_start 40 || return 1
	sleep 1
	fault partition
	if ! nft_mgmt add table inet pcfault ||
	   ! nft_mgmt add chain inet pcfault out '{ type filter hook output priority 0; policy accept; }' ||
	   ! nft_mgmt add rule inet pcfault out udp dport 7800 drop; then
		fail "nft partition in $LAB_MGMT"
	fi
	wait_mode lockdown 15
	pass_if "status: lockdown after the partition" \
		"status: $(mode_now) after the partition" [ "$(mode_now)" = lockdown ]
	sleep 1
	event heal
	nft_mgmt delete table inet pcfault
	wait_mode normal 15
	sleep 1		# A must flow again after the heal: a hold
	traffic_stop
	traffic_end
	# The lockdown is the longest gap; a stray loss before it is not.
	if [ -n "${R_A_LONGEST_GAP_START_T:-}" ]; then
		part_ms=$(ms_between "$R_EV_PARTITION" "$R_A_LONGEST_GAP_START_T")
		pass_if "lockdown: A cut ${part_ms} ms after the partition (timeout $HB_TIMEOUT_MS, at most $max)" \
			"lockdown: A cut ${part_ms} ms after the partition, outside $((HB_TIMEOUT_MS - 500))..$max ms" \
			[ "$part_ms" -ge $((HB_TIMEOUT_MS - 500)) ] && [ "$part_ms" -le "$max" ]
	else
		fail "lockdown: A never cut after the partition"
	fi
	heal_ms=$(ms_between "$R_EV_HEAL" "${R_A_LONGEST_GAP_END_T:-0}")
	note "A back ${heal_ms} ms after the heal (release_after 3 heartbeats of 200 ms)"
	a_report "expected: lost from the lockdown (udp-in is normal-only) until 3 heartbeats after the heal"
	a_flowing_at_end "heartbeats restored"
	pass_if "audit: heartbeat_lost recorded" "audit: no new heartbeat_lost" \
		[ "$(audit_count heartbeat_lost)" -gt "$lost0" ]
}

# send_skewed CMD OFFSET_MS: a signed command with a shifted timestamp.
send_skewed()
{
	FAULT_N=$((FAULT_N + 1))
	ctl_send "$1" --timestamp-offset "$2" >"$WORK/send.out" 2>&1 ||
		fail "controller send $1 --timestamp-offset $2: $(tail -n 1 "$WORK/send.out")"
}

scenario_skew()
{
	local stale0 acc0 far=$(((MAX_SKEW_S + 30) * 1000)) near=$(((MAX_SKEW_S - 10) * 1000))
	ensure_agent || return 1
	stale0=$(msg_count cmd stale)
	acc0=$(msg_count cmd accepted)
	# Traffic runs until stopped (the sequence's length is the machine's).
	traffic_start 40 || return 1
	sleep 0.5
	event skew-far
	send_skewed quarantine "$far"
	send_skewed quarantine "-$far"
	send_skewed lockdown "$far"
	wait_until 10 stale_at_least $((stale0 + 3))
	pass_if "3 commands skewed by ±$((far / 1000)) s (max_skew ${MAX_SKEW_S} s) refused as stale" \
		"skewed commands: stale $stale0 -> $(msg_count cmd stale), mode $(mode_now)" \
		stale_and_normal $((stale0 + 3))
	sleep 0.5
	fault skew-near
	send_skewed lockdown "$near"
	wait_mode lockdown 15
	pass_if "lockdown skewed by +$((near / 1000)) s (within max_skew) accepted" \
		"lockdown skewed by +$((near / 1000)) s: mode $(mode_now)" \
		[ "$(mode_now)" = lockdown ]
	sleep 1
	event release-near
	send_skewed release "-$near"
	wait_mode normal 15
	pass_if "release skewed by -$((near / 1000)) s accepted" \
		"release skewed by -$((near / 1000)) s: mode $(mode_now)" \
		[ "$(mode_now)" = normal ]
	sleep 1		# A must flow again after the release: a hold
	traffic_stop
	traffic_end
	pass_if "commands accepted $acc0 -> $(msg_count cmd accepted) (+2)" \
		"commands accepted $acc0 -> $(msg_count cmd accepted), expected +2" \
		[ "$(msg_count cmd accepted)" -eq $((acc0 + 2)) ]
	a_report "expected: lost only during the accepted lockdown (~1 s)"
	a_flowing_at_end "released"
}

# raw_resend FILE N: the captured datagram N more times, byte for byte,
# from the management host, as fast as it goes (bounded: 30 s).
raw_resend()
{
	ip netns exec "$LAB_MGMT" timeout 30 "$PY" - "$1" "$2" "$LAB_NODE_MGMT4" 7800 <<'PYEOF'
import socket, sys, time
data = open(sys.argv[1], "rb").read()
n = int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t = time.monotonic()
sent = 0
for i in range(n):
    try:
        s.sendto(data, (sys.argv[3], int(sys.argv[4])))
        sent += 1
    except OSError:
        pass
    if i % 50 == 49:
        time.sleep(0.01)  # ~5,000/s at most
print("resent %d of %d in %.2f s" % (sent, n, time.monotonic() - t))
PYEOF
}

# udp_drops PORT: datagrams the node's kernel dropped for the UDP socket
# bound to PORT (its receive buffer full), from /proc/net/udp.
udp_drops()
{
	# shellcheck disable=SC2016 # awk's own fields
	ip netns exec "$LAB_NODE" awk -v p="$(printf ':%04X' "$1")" \
		'$2 ~ p "$" { n += $NF } END { print n + 0 }' /proc/net/udp
}

scenario_replay()
{
	local acc0 ref0 ref1 acc1 i t0 ms worst=0 slow=0 polls=0 cli_pid raw_pid \
		modes_bad=0 raw_n=$((REPLAYS - REPLAYS_CLI)) drops0 drops1 sent bud0 bud1
	ensure_agent || return 1
	if ! ctl_send lockdown --raw-out "$WORK/lockdown.bin" >"$WORK/send.out" 2>&1; then
		fail "controller send lockdown --raw-out: $(tail -n 1 "$WORK/send.out")"
		return 1
	fi
	wait_mode lockdown 15
	pass_if "captured signed lockdown accepted once" \
		"captured lockdown not accepted: mode $(mode_now)" [ "$(mode_now)" = lockdown ]
	pc release >/dev/null 2>&1
	wait_mode normal 15
	acc0=$(msg_count cmd accepted)
	ref0=$(($(msg_count cmd replay) + $(msg_count cmd stale) + $(msg_count cmd expired)))
	drops0=$(udp_drops 7800)
	bud0=$(ctl_budget_drops)
	traffic_start 8 || return 1
	fault replay-flood "$REPLAYS"
	# shellcheck disable=SC2016 # expanded by the inner shell
	bg_start "$WORK/replay-cli.log" 60 ip netns exec "$LAB_MGMT" bash -c \
		'for ((i = 0; i < $1; i++)); do "$2" controller replay "$3" --to "$4" >/dev/null || echo "replay failed"; done; echo done' \
		sh "$REPLAYS_CLI" "$PCCLI" "$WORK/lockdown.bin" "$AGENT_TO"
	cli_pid=$BG_LAST
	raw_resend "$WORK/lockdown.bin" "$raw_n" >"$WORK/replay-raw.log" 2>&1 &
	raw_pid=$!
	BG_PIDS+=("$raw_pid")
	# The agent answers and stays normal throughout (at most 40 polls).
	for ((i = 0; i < 40; i++)); do
		kill -0 "$raw_pid" 2>/dev/null || kill -0 "$cli_pid" 2>/dev/null || break
		t0=$(now_ms)
		if timeout 5 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" \
			--pin-dir "$PIN_DIR" status >"$WORK/st.out" 2>&1 &&
		   grep -q '^agent: *running' "$WORK/st.out"; then
			ms=$(($(now_ms) - t0))
		else
			ms=9999
		fi
		polls=$((polls + 1))
		[ "$ms" -gt "$worst" ] && worst=$ms
		[ "$ms" -ge 9999 ] && slow=$((slow + 1))
		grep -q '^mode: *normal' "$WORK/st.out" || modes_bad=$((modes_bad + 1))
		sleep 0.1
	done
	wait "$raw_pid" 2>/dev/null
	wait "$cli_pid" 2>/dev/null
	note "$(cat "$WORK/replay-raw.log"); controller replay x$REPLAYS_CLI: $(tail -n 1 "$WORK/replay-cli.log")"
	traffic_end
	# Answering at all is the check (a starved agent times out at 5 s);
	# how fast is the machine's business that day, and only reported.
	pass_if "status answered all $polls polls during the flood (slowest ${worst} ms)" \
		"status during the flood: $slow of $polls polls got no answer within 5 s" \
		[ "$polls" -gt 0 ] && [ "$slow" -eq 0 ]
	pass_if "mode normal in every poll during the flood" \
		"mode not normal in $modes_bad of $polls polls during the flood" \
		[ "$modes_bad" -eq 0 ]
	# What left the senders, not what was asked of them.
	sent=$(sed -n 's/^resent \([0-9]*\) of.*/\1/p' "$WORK/replay-raw.log")
	sent=$((${sent:-0} + REPLAYS_CLI - $(grep -c 'replay failed' "$WORK/replay-cli.log")))
	# Each datagram is either counted as refused, or was dropped by the
	# datapath's budget for the port or by the kernel before the agent saw
	# it (the socket's own drop counter): wait until the agent has worked
	# through its socket (at most 20 s).
	replays_accounted() {
		ref1=$(($(msg_count cmd replay) + $(msg_count cmd stale) + $(msg_count cmd expired)))
		bud1=$(ctl_budget_drops)
		drops1=$(($(udp_drops 7800) + bud1 - bud0))
		[ $((ref1 - ref0 + drops1 - drops0)) -ge "$sent" ]
	}
	wait_until 20 replays_accounted
	acc1=$(msg_count cmd accepted)
	note "counters: refused (replay+stale+expired) $ref0 -> $ref1 (+$((ref1 - ref0)) of $sent sent); dropped by the datapath's budget or the agent's full socket buffer: $((drops1 - drops0)) (budget $((bud1 - bud0))); $(pc status 2>/dev/null | grep '^messages:')"
	pass_if "none acted on: commands accepted $acc0 -> $acc1" \
		"replays acted on: commands accepted $acc0 -> $acc1" [ "$acc1" -eq "$acc0" ]
	pass_if "counters show the replays: +$((ref1 - ref0)) refused + $((drops1 - drops0)) socket drops = $((ref1 - ref0 + drops1 - drops0)) of $sent sent" \
		"counters: +$((ref1 - ref0)) refused + $((drops1 - drops0)) socket drops of $sent sent" \
		[ "$sent" -gt 0 ] && [ $((ref1 - ref0 + drops1 - drops0)) -ge "$sent" ] && [ $((ref1 - ref0)) -gt 0 ]
	pass_if "heartbeats not lost to the flood (mode normal, no heartbeat_lost)" \
		"flood cost heartbeats: mode $(mode_now)" [ "$(mode_now)" = normal ]
	a_lost_at_most 0 "no replay may act: a lockdown would cut A"
}

# ---- 6. bad files ----

# The bad files, in BADDIR: NAME.yaml each, and whether the error must
# name a line:column (BAD_LC).
bad_files()
{
	local d=$WORK/bad
	mkdir -p "$d"
	# Truncated inside a flow mapping.
	head -c "$(($(grep -b -m1 'name: web' "$WORK/pol-a.yaml" | cut -d: -f1) + 30))" \
		"$WORK/pol-a.yaml" >"$d/truncated.yaml"
	: >"$d/empty.yaml"
	# 50 MB: the policy, then comment lines.
	{
		cat "$WORK/pol-a.yaml"
		"$PY" -c 'import sys; sys.stdout.write(("#" + "x" * 99 + "\n") * 500000)'
	} >"$d/huge.yaml"
	"$PY" -c 'import random, sys; r = random.Random(1); sys.stdout.buffer.write(bytes(r.getrandbits(8) for _ in range(8192)))' \
		>"$d/garbage.yaml"
	{
		cat "$WORK/pol-a.yaml"
		echo "  - {name: web, action: deny, direction: ingress, proto: udp, ports: 5000}"
	} >"$d/dup-name.yaml"
	{
		cat "$WORK/pol-a.yaml"
		echo "  - {name: both-ways, action: allow, action: deny, direction: ingress, proto: udp, ports: 5001}"
	} >"$d/dup-key.yaml"
	{
		cat "$WORK/pol-a.yaml"
		echo "  - {name: icmp-port, action: allow, direction: ingress, proto: icmp, ports: 5001}"
	} >"$d/contradiction.yaml"
	{
		cat "$WORK/pol-a.yaml"
		echo "  - {name: reversed, action: allow, direction: ingress, proto: udp, ports: 5010-5001}"
	} >"$d/reversed.yaml"
	BAD_FILES=(truncated empty huge garbage dup-name dup-key contradiction reversed)
}

# bad_lc NAME: must the error name NAME.yaml:LINE:COLUMN?
bad_lc()
{
	case $1 in
	cfg-truncated | cfg-garbage | truncated | dup-name | dup-key | contradiction | reversed) return 0 ;;
	esac
	return 1
}

# judge_refusal WHAT NAME RC OUT: refused (0 < rc < 128), a message naming
# the file (with line:column where it applies).
judge_refusal()
{
	local what=$1 name=$2 rc=$3 out=$4 msg
	msg=$(grep -v '^ *$' "$out" | grep -v 'debug:' | head -n 1 | cut -c1-160)
	if [ "$rc" -ge 128 ]; then
		fail "$what $name.yaml: CRASHED (rc $rc = signal $((rc - 128))): $msg"
	elif [ "$rc" -eq 0 ]; then
		fail "$what $name.yaml: accepted (rc 0)"
	elif bad_lc "$name" && ! grep -Eq "$name\.yaml:[0-9]+:[0-9]+" "$out"; then
		fail "$what $name.yaml: rc $rc but no $name.yaml:LINE:COL: $msg"
	elif ! grep -q "$name\.yaml" "$out"; then
		fail "$what $name.yaml: rc $rc but the message does not name the file: $msg"
	else
		pass "$what $name.yaml refused, rc $rc: $msg"
	fi
}

scenario_configs()
{
	local name rc d=$WORK/bad cc=$WORK/bad-cc before gen0 gen1 refused=0
	ensure_agent || return 1
	bad_files
	mkdir -p "$cc"
	cp "$WORK/agent.yaml" "$WORK/controller.pub" "$cc/"
	for name in "${BAD_FILES[@]}"; do
		FAULT_N=$((FAULT_N + 1))
		cp "$d/$name.yaml" "$cc/$name.yaml"
		sed "s|^policy:.*|policy: $name.yaml|" "$WORK/agent.yaml" >"$cc/agent.yaml"
		timeout 60 "$PCD" --check-config "$cc/agent.yaml" >"$WORK/cc.out" 2>&1
		rc=$?
		judge_refusal "--check-config (policy)" "$name" "$rc" "$WORK/cc.out"
		pc apply "$d/$name.yaml" >"$WORK/cc.out" 2>&1
		rc=$?
		judge_refusal "apply" "$name" "$rc" "$WORK/cc.out"
	done
	# The agent config itself truncated, empty, garbage.
	# Cut inside the quoted listen address.
	head -c "$(($(grep -b -m1 'listen:' "$WORK/agent.yaml" | cut -d: -f1) + 20))" \
		"$WORK/agent.yaml" >"$cc/cfg-truncated.yaml"
	cp "$d/garbage.yaml" "$cc/cfg-garbage.yaml"
	: >"$cc/cfg-empty.yaml"
	for name in cfg-truncated cfg-garbage cfg-empty; do
		FAULT_N=$((FAULT_N + 1))
		timeout 60 "$PCD" --check-config "$cc/$name.yaml" >"$WORK/cc.out" 2>&1
		rc=$?
		judge_refusal "--check-config (config)" "$name" "$rc" "$WORK/cc.out"
	done
	# SIGHUP with each bad policy under traffic: the old one enforces.
	gen0=$(generation_now)
	traffic_start 6 || return 1
	for name in "${BAD_FILES[@]}"; do
		FAULT_N=$((FAULT_N + 1))
		set_policy "$d/$name.yaml"
		before=$(refusals_now)
		kill -s HUP "$DAEMON_PID" 2>/dev/null
		wait_for_count "$DAEMON_LOG" 'reload failed' $((before + 1)) 5 &&
			refused=$((refused + 1))
	done
	set_policy "$WORK/pol-a.yaml"
	traffic_end
	gen1=$(generation_now)
	pass_if "SIGHUP: $refused of ${#BAD_FILES[@]} bad policies refused, generation stays $gen0" \
		"SIGHUP: $refused of ${#BAD_FILES[@]} refused, generation $gen0 -> $gen1" \
		[ "$refused" -eq "${#BAD_FILES[@]}" ] && [ "$gen1" = "$gen0" ]
	pass_if "agent alive after ${#BAD_FILES[@]} bad SIGHUPs" "agent died on a bad SIGHUP" daemon_alive
	a_lost_at_most 0 "refused reloads change nothing"
	grep 'policy refused' "$DAEMON_LOG" | tail -n "${#BAD_FILES[@]}" | cut -c1-170 | sed 's/^/      | /'
	# A bad agent config at SIGHUP: refused, the running one stays.
	before=$(refusals_now)
	cp "$WORK/agent.yaml" "$WORK/agent.yaml.good"
	cp "$cc/cfg-garbage.yaml" "$WORK/agent.yaml"
	FAULT_N=$((FAULT_N + 1))
	kill -s HUP "$DAEMON_PID" 2>/dev/null
	wait_for_count "$DAEMON_LOG" 'reload failed' $((before + 1)) 5
	rc=$?
	mv "$WORK/agent.yaml.good" "$WORK/agent.yaml"
	pass_if "SIGHUP with a garbage agent config refused, agent alive" \
		"SIGHUP with a garbage agent config: refused=$([ $rc -eq 0 ] && echo yes || echo no) alive=$(daemon_alive && echo yes || echo no)" \
		all_ok "$rc" daemon_alive
}

# ---- 4. full maps ----

# flood_round K DMAC SMAC: two senders (one per CPU), each one UDP port
# of 6000-6009 with every source port: 2 x 64,512 new flows, distinct from
# every other round's. The senders report what they actually sent.
flood_round()
{
	local k=$1 dmac=$2 smac=$3 i dport pids=()
	for i in 0 1; do
		dport=$((6000 + 2 * (k - 1) + i))
		ip netns exec "$LAB_PEER" timeout 40 "$PY" "$NUM" flood --ifname "$LAB_PEER_IF" \
			--src-mac "$smac" --dst-mac "$dmac" --src "$LAB_PEER4" --dst "$LAB_NODE_PEER4" \
			--dports "$dport-$dport" --sports 1024-65535 --count 64512 --seconds 30 \
			>"$WORK/flood$k-$i.log" 2>&1 &
		pids+=($!)
	done
	BG_PIDS+=("${pids[@]}")
	wait "${pids[@]}"
	note "round $k: $(cat "$WORK/flood$k-0.log") / $(cat "$WORK/flood$k-1.log")"
}

# The flow table overfilled from outside: the node must count more flows
# opened than the table holds (FLOOD_FLOWS, > 262,144), whatever the peer's
# queue or the node's ring lost on the way. Rounds of new flows are sent
# until the node's own counter says so (at most 5 rounds: 645,120 flows).
scenario_flows()
{
	local dmac smac flows opened0 opened k=0 want=$FLOOD_FLOWS
	ensure_agent || return 1
	{
		cat "$WORK/pol-a.yaml"
		echo "  - {name: flood-in, action: allow, direction: ingress, proto: udp, ports: 6000-6009}"
	} >"$WORK/pol-flood.yaml"
	hup_policy "$WORK/pol-flood.yaml" ||
		fail "SIGHUP with the flood policy: $(grep 'refused' "$DAEMON_LOG" | tail -n 1)"
	dmac=$(ip -n "$LAB_NODE" -br link show "$LAB_NODE_PEER_IF" | awk '{ print $3 }')
	smac=$(ip -n "$LAB_PEER" -br link show "$LAB_PEER_IF" | awk '{ print $3 }')
	opened0=$(metric 'portcullis_flows_opened_total{direction="ingress"}')
	opened0=${opened0%%.*}
	[ "$opened0" = none ] && { fail "no flows_opened metric"; return 1; }
	opened=$opened0
	traffic_start 12 || return 1
	fault flood
	while [ $((opened - opened0)) -lt "$want" ] && [ "$k" -lt 5 ]; do
		k=$((k + 1))
		flood_round "$k" "$dmac" "$smac"
		opened=$(metric 'portcullis_flows_opened_total{direction="ingress"}')
		opened=${opened%%.*}
		[ "$opened" = none ] && opened=$opened0
	done
	event flood-done
	traffic_end
	# The peer's table: flows from outside land there (the host's apart).
	flows=$(pc status 2>/dev/null | sed -n 's/^flows:.*peer-opened \([0-9]*\) of.*/\1/p')
	note "$k flood round(s): the node opened $((opened - opened0)) ingress flows (wanted $want); peer-opened tracked $flows (max $FLOWS_MAX)"
	pass_if "the node counted $((opened - opened0)) new flows (>= $want) in $k round(s)" \
		"the node counted only $((opened - opened0)) new flows of $want after $k rounds" \
		[ $((opened - opened0)) -ge "$want" ]
	pass_if "flow table full: $flows tracked of $FLOWS_MAX" \
		"flow table not full: ${flows:-?} tracked of $FLOWS_MAX" \
		[ "${flows:-0}" -ge $((FLOWS_MAX * 95 / 100)) ]
	pass_if "LRU evicted: ${opened} flows opened > ${flows} tracked" \
		"no eviction seen: opened ${opened}, tracked ${flows}" \
		[ "${opened:-0}" -gt "${flows:-0}" ] 2>/dev/null
	a_report "flows never decide A or D (rules do); any loss here is the flood's congestion, not policy"
	pass_if "agent alive, mode $(mode_now) after the flood" "agent not well after the flood" \
		agent_normal
	hup_policy "$WORK/pol-a.yaml" || fail "SIGHUP back to policy A"
}

scenario_rulemaps()
{
	local n gen0 gen1 rc t0 ms
	ensure_agent || return 1
	for n in 1 2; do
		"$PY" "$NUM" cidrs --v6prefix "2001:db8:ff0$n::" --count "$FILL_CIDRS" \
			--out "$WORK/fill$n.txt" || { fail "cidr file $n"; return 1; }
		{
			cat "$WORK/pol-a.yaml"
			echo "  - {name: fill$n, action: deny, direction: ingress, cidr_file: fill$n.txt}"
		} >"$WORK/big$n.yaml"
	done
	traffic_start 40 || return 1
	event apply-big1
	t0=$(now_ms)
	timeout 60 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" --pin-dir "$PIN_DIR" \
		apply "$WORK/big1.yaml" >"$WORK/big1.out" 2>&1
	rc=$?
	ms=$(($(now_ms) - t0))
	pass_if "apply of $FILL_CIDRS IPv6 /128s (more than half of pc_addr6) in $ms ms" \
		"apply of $FILL_CIDRS /128s: rc $rc: $(tail -n 1 "$WORK/big1.out")" [ "$rc" -eq 0 ]
	gen0=$(generation_now)
	fault apply-big2
	t0=$(now_ms)
	timeout 60 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" --pin-dir "$PIN_DIR" \
		apply "$WORK/big2.yaml" >"$WORK/big2.out" 2>&1
	rc=$?
	ms=$(($(now_ms) - t0))
	event refused
	gen1=$(generation_now)
	note "$(head -n 1 "$WORK/big2.out" | cut -c1-200)"
	if [ "$rc" -ge 128 ]; then
		fail "second $FILL_CIDRS-CIDR apply CRASHED (rc $rc)"
	elif [ "$rc" -ne 0 ] && grep -q 'map full' "$WORK/big2.out"; then
		pass "second $FILL_CIDRS-CIDR apply refused cleanly in $ms ms: rc $rc, 'map full'"
	else
		fail "second $FILL_CIDRS-CIDR apply: rc $rc, no 'map full': $(head -n 1 "$WORK/big2.out")"
	fi
	pass_if "old policy still live: generation $gen0 -> $gen1" \
		"generation changed $gen0 -> $gen1 after a refused apply" [ "$gen0" = "$gen1" ]
	sleep 1
	traffic_stop
	traffic_end
	a_lost_at_most 0 "the refused apply never flips; the big apply flips atomically"
	a_flowing_at_end "old (big) policy enforcing after the refusal"
	t0=$(now_ms)
	timeout 60 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" --pin-dir "$PIN_DIR" \
		apply "$WORK/pol-a.yaml" >"$WORK/small.out" 2>&1
	rc=$?
	pass_if "back to policy A in $(($(now_ms) - t0)) ms (the refused slot was emptied)" \
		"apply of policy A after the refusal: rc $rc: $(tail -n 1 "$WORK/small.out")" [ "$rc" -eq 0 ]
}

# ---- 5. the system under the agent ----

# attached_event LABEL: the moment of the agent's last "(re)appeared:
# programs attached" log line, as an event (the log has UTC ms).
attached_event()
{
	local ts
	ts=$(grep "interface '$LAB_NODE_PEER_IF' (re)appeared" "$DAEMON_LOG" |
		tail -n 1 | cut -d' ' -f1)
	[ -n "$ts" ] || return 1
	echo "$(date -d "$ts" +%s.%N) $1" >>"$TR.events"
}

xdp_on_peer_if() { ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | grep -q 'prog/xdp'; }

# Delete and re-create the interface under traffic, three times: the
# window from the deletion to the re-attach is measured (what D sent in
# it, and whether any arrived).
scenario_relink()
{
	local n i k ok windows=()
	ensure_agent || return 1
	traffic_start 60 || return 1
	sleep 0.5
	for k in 1 2 3; do
		n=$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")
		fault "relink$k"
		if ! lab_recreate_peer_link; then
			fail "could not re-create $LAB_NODE_PEER_IF"
			break
		fi
		event "recreated$k"
		ok=no
		for ((i = 0; i < 75; i++)); do
			if [ "$(audit_count interface_attached interface="$LAB_NODE_PEER_IF")" -gt "$n" ]; then
				ok=yes
				break
			fi
			sleep 0.2
		done
		pass_if "relink $k: re-attached (audit interface_attached) within $((i * 200)) ms of the re-creation" \
			"relink $k: no interface_attached within 15 s" [ "$ok" = yes ]
		attached_event "attached$k" && windows+=("relink$k:attached$k")
		sleep 1.5	# A flows again on the new link: a hold
	done
	traffic_stop
	traffic_end "${windows[@]}"
	a_report "expected: lost while the interface is gone and until the peer's neighbour entry is back"
	a_flowing_at_end "enforcement back on the new link"
	pass_if "XDP program on the re-created $LAB_NODE_PEER_IF" \
		"no XDP program on the re-created $LAB_NODE_PEER_IF" xdp_on_peer_if
}

# The same with no agent to re-attach (SIGKILLed: dead, or between a
# crash and its restart): the new link has no program, and the kernel
# dead-man switch cannot help it; the backstop (netfilter links the agent
# pinned) drops all IP on it until the agent is back and attached. So D
# never arrives, and A is lost from the re-creation to the re-attach.
scenario_relinkdead()
{
	ensure_agent || return 1
	traffic_start 6 || return 1
	sleep 1
	fault sigkill
	daemon_stop KILL
	fault relink
	lab_recreate_peer_link || fail "could not re-create $LAB_NODE_PEER_IF"
	event recreated
	sleep 2
	event restart
	agent_up
	attached_event attached || event attached
	traffic_end recreated:restart restart:attached
	a_report "expected: lost from the re-creation until the agent re-attached (the backstop drops all IP there)"
	pass_if "XDP program on the re-created $LAB_NODE_PEER_IF after the agent restart" \
		"no XDP program on the re-created $LAB_NODE_PEER_IF after the agent restart" xdp_on_peer_if
	pass_if "denied traffic blocked again after the restart (tcp/9090)" \
		"tcp/9090 still passes after the restart" \
		alt_blocked
}

audit_failing() { pc status 2>/dev/null | grep -q '^audit log:.*FAILING'; }

scenario_auditfull()
{
	local saved=$AUDIT_LOG e0 e1 e2 i
	ensure_agent || return 1
	AUD_MNT=$(mktemp -d /tmp/pc-faults-audit.XXXXXX) || return 1
	if ! mount -t tmpfs -o size=64k,mode=0700 pcfaults "$AUD_MNT"; then
		fail "cannot mount a tmpfs on $AUD_MNT"
		rmdir "$AUD_MNT"
		AUD_MNT=
		return 1
	fi
	daemon_stop TERM
	AUDIT_LOG=$AUD_MNT/audit.jsonl
	agent_up || { AUDIT_LOG=$saved; return 1; }
	e0=$(metric portcullis_audit_write_errors_total)
	fault disk-full
	dd if=/dev/zero of="$AUD_MNT/filler" bs=4k count=64 >/dev/null 2>&1
	note "tmpfs $(df -k "$AUD_MNT" | awk 'NR == 2 { print $2 " KiB, " $4 " KiB free" }')"
	traffic_start 40 || { AUDIT_LOG=$saved; return 1; }
	# Transitions until the log's last page is full too (at most 12).
	for ((i = 0; i < 12; i++)); do
		audit_failing && break
		pc lockdown >/dev/null 2>&1
		pc release >/dev/null 2>&1
	done
	pass_if "status: audit log FAILING after $i lockdown/release pairs" \
		"status does not say FAILING: $(pc status 2>/dev/null | grep '^audit log:')" audit_failing
	e1=$(metric portcullis_audit_write_errors_total)
	sleep 0.5
	event lockdown
	pc lockdown >/dev/null 2>&1
	sleep 1.5
	pass_if "lockdown enforced with the audit log failing" \
		"mode $(mode_now) after lockdown with the audit log failing" \
		[ "$(mode_now)" = lockdown ]
	event release
	pc release >/dev/null 2>&1
	kill -s HUP "$DAEMON_PID"
	sleep 1
	e2=$(metric portcullis_audit_write_errors_total)
	traffic_stop
	traffic_end
	pc status 2>/dev/null | grep '^audit log:' | sed 's/^/      | /'
	pass_if "audit_write_errors_total grows: $e0 -> $e1 -> $e2" \
		"audit_write_errors_total: $e0 -> $e1 -> $e2" \
		increasing "$e0" "$e1" "$e2"
	if [ -n "${R_A_LONGEST_GAP_MS:-}" ] && [ "$R_A_LONGEST_GAP_MS" -ge 1000 ]; then
		pass "A cut for ${R_A_LONGEST_GAP_MS} ms by the 1.5 s lockdown: enforcement follows the mode"
	else
		fail "A not cut by the lockdown (longest gap ${R_A_LONGEST_GAP_MS:-0} ms)"
	fi
	a_flowing_at_end "released with the audit log failing"
	pass_if "agent alive with a full disk" "agent died with a full disk" daemon_alive
	daemon_stop TERM
	AUDIT_LOG=$saved
	umount "$AUD_MNT" && rmdir "$AUD_MNT" && AUD_MNT=
	agent_up
}

# The CLI in the private agent's mount namespace.
pc_priv()
{
	timeout 20 nsenter --mount="/proc/$PRIV_PID/ns/mnt" --net="/run/netns/$LAB_NODE" -- \
		env PORTCULLIS_CONTROL_SOCKET="$WORK/priv.sock" \
		"$PCCLI" --pin-dir "$BPF_MNT/pc" "$@"
}

priv_alive() { [ -n "$PRIV_PID" ] && kill -0 "$PRIV_PID" 2>/dev/null; }

# Stop the private agent, take off what it left on the interfaces.
priv_cleanup()
{
	local ifc
	if [ -n "$PRIV_WRAP" ]; then
		priv_alive && kill -s TERM "$PRIV_PID" 2>/dev/null
		wait "$PRIV_WRAP" 2>/dev/null
		PRIV_WRAP=
		PRIV_PID=
	fi
	if [ -n "${LAB_NODE:-}" ] && [ -e "/run/netns/$LAB_NODE" ]; then
		for ifc in "$LAB_NODE_PEER_IF" "$LAB_NODE_MGMT_IF"; do
			tc -n "$LAB_NODE" qdisc del dev "$ifc" clsact 2>/dev/null
		done
	fi
	# Once its bpffs is gone the agent may have made "$BPF_MNT/pc" again
	# as a plain directory under /tmp: remove it all, never crossing into
	# a mount (the host never sees the private bpffs; checked anyway).
	[ -n "$BPF_MNT" ] && [ -d "$BPF_MNT" ] && ! mountpoint -q "$BPF_MNT" &&
		rm -rf --one-file-system -- "$BPF_MNT"
	BPF_MNT=
}

# bpffs unmounted under the agent. Never the host's: the agent runs in a
# private mount namespace with its own bpffs, and that one is unmounted.
scenario_bpffs()
{
	local i mounted after xdp
	hb_stop
	daemon_stop TERM
	if [ -e "$PIN_DIR" ] && ! pc detach >"$WORK/detach.out" 2>&1; then
		fail "detach of the main pins: $(tail -n 1 "$WORK/detach.out")"
		return 1
	fi
	BPF_MNT=$(mktemp -d /tmp/pc-faults-bpffs.XXXXXX) || return 1
	# shellcheck disable=SC2016 # expanded by the inner shell
	bg_start "$WORK/priv.log" 120 unshare --mount --propagation private -- \
		sh -c 'mount -t bpf pcfaults "$1" && shift && exec "$@"' sh "$BPF_MNT" \
		nsenter --net="/run/netns/$LAB_NODE" -- "$PCD" \
		--policy "$WORK/pol-a.yaml" --pin-dir "$BPF_MNT/pc" \
		--state-dir "$WORK/priv-state" --audit-log "$WORK/priv-audit.jsonl" \
		--control-socket "$WORK/priv.sock" --xdp-mode "$E2E_XDP_MODE" -v
	PRIV_WRAP=$BG_LAST
	for ((i = 0; i < 300; i++)); do
		PRIV_PID=$(pgrep -P "$PRIV_WRAP" | head -n 1)
		[ -n "$PRIV_PID" ] && grep -q 'portcullisd: ready' "$WORK/priv.log" && break
		kill -0 "$PRIV_WRAP" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q 'portcullisd: ready' "$WORK/priv.log"; then
		fail "agent in a private mount namespace not ready: $(tail -n 1 "$WORK/priv.log")"
		return 1
	fi
	pass "agent in a private mount namespace with its own bpffs (pid $PRIV_PID)"
	mountpoint -q "$BPF_MNT" && mounted=yes || mounted=no
	pass_if "the private bpffs is invisible to the host (host mountpoint: $mounted)" \
		"the private bpffs leaked into the host's mount namespace" [ "$mounted" = no ]
	traffic_start 6 || return 1
	sleep 1.5
	fault bpffs-umount
	if ! timeout 10 nsenter --mount="/proc/$PRIV_PID/ns/mnt" -- umount "$BPF_MNT" 2>"$WORK/umount.err"; then
		note "umount: $(cat "$WORK/umount.err"); lazy"
		timeout 10 nsenter --mount="/proc/$PRIV_PID/ns/mnt" -- umount -l "$BPF_MNT"
	fi
	sleep 3
	priv_alive && after=running || after=exited
	xdp=$(ip -n "$LAB_NODE" link show "$LAB_NODE_PEER_IF" | grep -o 'prog/xdp id [0-9]*' || echo none)
	traffic_end
	grep -v 'debug\|libbpf' "$WORK/priv.log" | tail -n 3 | sed 's/^/      | /'
	note "after the unmount: agent $after; $LAB_NODE_PEER_IF XDP: $xdp"
	pass_if "agent still running after its bpffs was unmounted" \
		"agent EXITED after its bpffs was unmounted ('$(grep -m1 'pins removed' "$WORK/priv.log")')" \
		[ "$after" = running ]
	pass_if "XDP still attached after the unmount ($xdp)" \
		"XDP program GONE from $LAB_NODE_PEER_IF after the unmount: ingress enforcement lost" \
		[ "$xdp" != none ]
	if priv_alive; then
		pc_priv status >"$WORK/priv-status.out" 2>&1
		if grep -qi 'pin\|bpffs\|unmount' "$WORK/priv-status.out"; then
			pass "the agent reports it: $(grep -i -m1 'pin\|bpffs\|unmount' "$WORK/priv-status.out")"
		else
			fail "the agent does not report the lost pins: $(head -n 1 "$WORK/priv-status.out")"
		fi
	fi
	if [ "$R_D_RECV" -gt 0 ]; then
		note "first leak sent $(ms_between "$R_EV_BPFFS_UMOUNT" "$(printf '%s\n' "${R_DR_FIRST_LEAK_T:-99}" "${R_DD_FIRST_LEAK_T:-99}" | sort -n | head -n 1)") ms after the unmount"
	fi
	a_lost_at_most 0 "nothing that allows A changed"
	priv_cleanup
}

# ---- the run ----

faults_teardown()
{
	[ -n "$WATCHDOG" ] && kill "$WATCHDOG" 2>/dev/null
	daemon_alive && kill -s CONT "$DAEMON_PID" 2>/dev/null
	priv_cleanup
	if [ -n "$AUD_MNT" ] && [ -d "$AUD_MNT" ]; then
		daemon_stop TERM
		mountpoint -q "$AUD_MNT" && umount "$AUD_MNT"
		rmdir "$AUD_MNT"
	fi
	e2e_teardown
}

summary()
{
	check_summary "faults: $SCEN_N scenarios, $((PASS_N + FAIL_N)) checks, $FAULT_N faults injected, $LEAK_N leaks"
}

# Frozen copies of the binaries: a rebuild during the run changes nothing.
binaries_freeze()
{
	local bin
	mkdir -p "$WORK/bin"
	for bin in "$PCD" "$PCCLI"; do
		[ -x "$bin" ] || { fail "$bin missing: run make first"; return 1; }
		cp "$bin" "$WORK/bin/" || return 1
	done
	note "binaries: $(sha256sum "$PCD" "$PCCLI" | awk '{ printf "%s %.12s  ", $2, $1 }')"
	PCD=$WORK/bin/portcullisd
	PCCLI=$WORK/bin/portcullis
}

main()
{
	local s t_start scen=("$@")
	[ ${#scen[@]} -gt 0 ] || scen=("${ALL_SCENARIOS[@]}")
	[ "$(id -u)" -eq 0 ] || { echo "faults: must run as root" >&2; exit 1; }
	trap faults_teardown EXIT
	trap 'echo "faults: interrupted" >&2; exit 130' INT TERM
	# The watchdog's sleep holds no descriptor of ours: a pipe reading
	# our output ends when we do.
	# shellcheck disable=SC2016 # expanded by the watchdog's shell
	bash -c 'sleep "$1" </dev/null >/dev/null 2>&1 & s=$!
		trap "kill \$s; exit 0" TERM
		wait "$s" && echo "faults: over $1 s, stopping" >&2 &&
		kill -s TERM "$2"' faults-watchdog "$MAX_SECONDS" $$ &
	WATCHDOG=$!
	t_start=$(now_ms)
	if ! e2e_setup || ! binaries_freeze || ! agent_prepare || ! policies_write; then
		fail "lab setup"
		summary
		exit 1
	fi
	for s in "${scen[@]}"; do
		CUR=$s
		if ! declare -F "scenario_$s" >/dev/null; then
			fail "no such scenario"
			continue
		fi
		echo "== $s ($((($(now_ms) - t_start) / 1000)) s)"
		SCEN_N=$((SCEN_N + 1))
		"scenario_$s"
	done
	CUR=summary
	echo "faults: $((($(now_ms) - t_start) / 1000)) s"
	summary
}

main "$@"

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# End-to-end suite for fleet mode: etcd in its own namespace, three agents
# in three node namespaces (tests/fleet-lab.sh), driven by
# `portcullis fleet` run in etcd's namespace.
#
#   bash tests/e2e/fleet.sh [TEST...]     (root; after make; etcd-server)
#
# One PASS/FAIL line per check, a summary, non-zero exit on any failure.
# TESTs default to all, in order; each starts from etcd up, every agent up
# and alive, every node normal, and sets that up first when picked alone:
#   up          agents come up; `fleet status` lists them alive, normal
#   quarantine  fleet quarantine node-1 isolates it and only it; release
#   group       fleet lockdown --group web: node-1, node-2, not node-3
#   refused     unsigned, tampered, replayed, misaddressed, deleted values
#               change nothing and are audited as fleet_refused
#   conflict    racing writers: --expect-revision, exit 0 or 3, no drift
#   policy      fleet policy: a pushed policy goes live, a no-management
#               one never does, an altered policy text is refused
#   restart     an agent restarted keeps (and does not refuse) the envelope
#               in force; one down while its key changed applies it at start
#   partition   one node cut off from etcd (1 s, then ~5 s) while its key
#               changes: it catches up after the heal
#   floor       etcd lost while the fleet demands lockdown / quarantine:
#               the heartbeat lift goes down to that demand, never below
#   etcdloss    etcd SIGKILLed: every node locks down within the heartbeat
#               timeout; etcd back on the same data: they lift by themselves
#   deadman     an agent SIGKILLed: the kernel dead-man switch drops its
#               traffic after the timeout; restarted, it lifts again
#   ha          etcd as 3 members (the single one's snapshot), agents with
#               all three endpoints: the first one SIGKILLed, keep-alives
#               and the watch fail over (no heartbeat loss); a quarantine
#               through a survivor; a second one killed (no quorum): every
#               node locks down; both back: each lifts to what the fleet
#               demands. The next test (or teardown) goes back to the
#               single etcd, with the cluster's data. The first member is
#               not the raft leader when killed (leadership is moved off
#               it): a leader's death adds an election, which can outlast
#               the 2 s timeout; FLEET_HA_KILL_LEADER=1 kills a leading
#               member 1 instead. FLEET_HA_LIFT_BOUND_S (20): quorum back
#               to each node in its desired mode.
# node-1 and node-2 are in group web, node-3 in group db. Heartbeats: the
# controller's signed ones, `portcullis fleet heartbeat --every 500ms`
# (fleet_heartbeat_start, running throughout), timeout 2 s, action
# lockdown, release_after 3, backoff 1 s (tests/configs/fleet-agent.yaml);
# lease keep-alives only keep the nodes alive in `fleet status`.
# FLEET_KEEP_WORK=1 keeps the work dir
# (agent logs, audit logs, etcd data) for a look after the run. The lab
# policy's etcd management entry names the single etcd's client port and
# the cluster members' (FLEET_HA_CLIENT_PORTS, default 12379 22379 32379;
# peers FLEET_HA_PEER_PORTS, 12380 22380 32380), whatever the tests picked.

set -u
# shellcheck source=SCRIPTDIR/../fleet-lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fleet-lab.sh"
CHECK_NAME="fleet e2e"
CHECK_WIDTH=11
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
FL_POLICY_HA=1	# the management entry names the ha test's members too

ALL_TESTS=(up quarantine group refused conflict policy restart partition floor etcdloss deadman ha)
NODES=(1 2 3)
declare -A GROUPS_OF=([1]=web [2]=web [3]=db)
HB_TIMEOUT_MS=2000	# fleet-agent.yaml heartbeat.timeout
SECURE_MARGIN_MS=2500	# allowed on top of it (2 shared CPUs in CI)
# signed write -> mode: that it happens is the check here; how fast is
# measured by tests/bench/fleet_fanout.sh, not judged on a loaded machine.
COMMAND_BOUND_MS=${FLEET_COMMAND_BOUND_MS:-10000}
LIFT_BOUND_S=15		# etcd back -> normal (release_after 3, backoff 1 s)
REPORT_WAIT_S=15	# report_interval 2 s, plus margin for a loaded machine
HOLD_S=3		# how long a refused value must change nothing

summary() { check_summary; }

h() { fl_host "$1"; }

# cli OUT ARGS...: portcullis fleet ARGS, output in OUT, status in CLI_RC.
cli()
{
	local out=$1
	shift
	fleet_cli "$@" >"$out" 2>&1
	CLI_RC=$?
	return $CLI_RC
}

# cli_ok DESC ARGS...: the command must exit 0.
cli_ok()
{
	local desc=$1
	shift
	if cli "$FL_WORK/cli.out" "$@"; then
		pass "fleet $*: exit 0 ($desc)"
		return 0
	fi
	fail "fleet $*: exit $CLI_RC, expected 0 ($desc) [$(tail -n 1 "$FL_WORK/cli.out")]"
	return 1
}

expect_mode()
{
	local i=$1 want=$2 why=$3 got
	got=$(fleet_mode "$i")
	if [ "$got" = "$want" ]; then
		pass "$(h "$i"): mode $want ($why)"
	else
		fail "$(h "$i"): mode '$got', expected $want ($why)"
	fi
}

# wait_mode_timed I MODE T0_MS BOUND_MS WHY: poll node I's pinned mode
# until MODE; PASS if reached within BOUND_MS of T0_MS (polling itself
# takes time: the bound is checked on the time it was first seen).
wait_mode_timed()
{
	local i=$1 want=$2 t0=$3 bound=$4 why=$5 deadline dt
	deadline=$((t0 + bound + 5000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		if [ "$(fleet_mode "$i")" = "$want" ]; then
			dt=$(($(now_ms) - t0))
			if [ "$dt" -le "$bound" ]; then
				pass "$(h "$i"): $want in $dt ms (<= $bound; $why)"
				return 0
			fi
			fail "$(h "$i"): $want only after $dt ms (> $bound; $why)"
			return 1
		fi
		sleep 0.05
	done
	fail "$(h "$i"): not $want within $((bound + 5000)) ms (mode '$(fleet_mode "$i")'; $why)"
	return 1
}

# hold_mode I MODE SECONDS WHY: node I stays in MODE the whole time.
hold_mode()
{
	local i=$1 want=$2 why=$4 deadline got
	deadline=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		got=$(fleet_mode "$i")
		if [ "$got" != "$want" ]; then
			fail "$(h "$i"): mode went to '$got' ($why)"
			return 1
		fi
		sleep 0.2
	done
	pass "$(h "$i"): still $want after $3 s ($why)"
}

# allowed_ping I WHY: an echo gets through within 3 tries (about 3 s). On a
# loaded machine a fleet heartbeat can reach the agent more than timeout
# minus its 500 ms period after it was signed; the kernel dead-man then
# rightly drops for a moment although the mode is normal. A lost try is
# reported with the node's dead-man line, so a lasting drop still fails.
allowed_ping()
{
	local try

	for try in 1 2 3; do
		if fleet_ping "$1" >"$FL_WORK/ping.out" 2>&1; then
			pass "ping etcd-ns -> $(h "$1") $(fl_node_ip "$1") gets through ($2, try $try)"
			return 0
		fi
		note "ping $try to $(h "$1") lost; $(fleet_pc "$1" status 2>/dev/null | grep -E '^dead-man:')"
	done
	fail "ping etcd-ns -> $(h "$1") should pass ($2): 3 tries lost [$(tail -n 1 "$FL_WORK/ping.out")]"
}

blocked_ping()
{
	if fleet_ping "$1" >"$FL_WORK/ping.out" 2>&1; then
		fail "ping etcd-ns -> $(h "$1") should be dropped ($2)"
	else
		pass "ping etcd-ns -> $(h "$1") $(fl_node_ip "$1") dropped ($2)"
	fi
}

audit_n() { fleet_audit_count "$(fl_audit "$1")" "${@:2}"; }
audit_last() { fleet_audit_last "$(fl_audit "$1")" "${@:2}"; }

# audit_more I BEFORE DESC EVENT [K=V...]: more such lines than BEFORE.
audit_more()
{
	local i=$1 before=$2 desc=$3 n
	shift 3
	n=$(audit_n "$i" "$@")
	if [ "$n" -gt "$before" ]; then
		pass "$(h "$i") audit: $desc"
		note "$(audit_last "$i" "$@")"
	else
		fail "$(h "$i") audit: no new '$*' line ($desc; $n, $before before)"
	fi
}

# wait_audit I BEFORE SECONDS EVENT [K=V...]: more than BEFORE such lines.
wait_audit()
{
	local i=$1 before=$2 deadline
	deadline=$(($(now_ms) + $3 * 1000))
	shift 3
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(audit_n "$i" "$@")" -gt "$before" ] && return 0
		sleep 0.2
	done
	[ "$(audit_n "$i" "$@")" -gt "$before" ]
}

# status_row I: "alive reported desired drift" of node I from
# `fleet status --json` (into STATUS_JSON); "" if not listed.
STATUS_JSON=
status_row()
{
	STATUS_JSON=$FL_WORK/status.json
	fleet_status_json "$STATUS_JSON" || return 1
	"$PY" - "$STATUS_JSON" "$(h "$1")" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))
for r in rows:
    if r.get("host") == sys.argv[2]:
        b = lambda v: "true" if v is True else "false" if v is False else str(v)
        print(b(r.get("alive")), r.get("reported"), r.get("desired"), b(r.get("drift")))
        break
PYEOF
}

# expect_status I ALIVE REPORTED DESIRED DRIFT WHY: wait (REPORT_WAIT_S)
# for `fleet status` to show that row.
expect_status()
{
	local i=$1 want="$2 $3 $4 $5" why=$6 deadline row=
	deadline=$(($(now_ms) + REPORT_WAIT_S * 1000))
	while :; do
		row=$(status_row "$i")
		[ "$row" = "$want" ] && break
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.3
	done
	if [ "$row" = "$want" ]; then
		pass "fleet status $(h "$i"): alive $2, reported $3, desired $4, drift $5 ($why)"
	else
		fail "fleet status $(h "$i"): '$row', expected '$want' (alive reported desired drift; $why)"
	fi
}

# ---- starting point ----

# start_agent I: start node I's agent and wait for ready; PASS/FAIL.
start_agent()
{
	if fleet_agent_start "$1" && fleet_agent_wait_ready "$1" 30; then
		pass "$(h "$1"): portcullisd ready: $(grep -m1 -o 'portcullisd: ready.*' "$(fleet_agent_log "$1")")"
		return 0
	fi
	fail "$(h "$1"): portcullisd not ready: $(grep -v libbpf "$(fleet_agent_log "$1")" | tail -n 1)"
	return 1
}

all_normal()
{
	local i
	for i in "${NODES[@]}"; do
		[ "$(fleet_mode "$i")" = normal ] || return 1
	done
}

# ensure_baseline: etcd up, every agent up and alive in fleet status,
# every node normal and desired normal (silent when it already is).
ensure_baseline()
{
	local i t
	ha_leave || { fail "cannot go back from the cluster to the single etcd"; return 1; }
	if ! fleet_etcd_alive; then
		fleet_etcd_start || { fail "cannot start etcd"; return 1; }
	fi
	fleet_heartbeat_alive || fleet_heartbeat_start ||
		{ fail "cannot start the heartbeat publisher"; return 1; }
	for i in "${NODES[@]}"; do
		fleet_agent_alive "$i" || start_agent "$i" || return 1
	done
	fleet_wait_alive 15 "${NODES[@]}" || {
		fail "not every agent alive in fleet status after 15 s"
		show fleet_cli status
		return 1
	}
	all_normal && [ -z "$(desired_not_normal)" ] && return 0
	fleet_cli release --all >/dev/null 2>&1
	fleet_cli release --group web --group db >/dev/null 2>&1
	for i in "${NODES[@]}"; do
		fleet_cli release "$(h "$i")" >/dev/null 2>&1
	done
	for ((t = 0; t < 50; t++)); do
		all_normal && break
		sleep 0.2
	done
	all_normal || { fail "cannot get every node back to normal"; return 1; }
}

# desired_not_normal: hosts whose desired mode (fleet status) is not normal.
desired_not_normal()
{
	fleet_status_json "$FL_WORK/base.json" || { echo error; return; }
	"$PY" - "$FL_WORK/base.json" <<'PYEOF'
import json, sys
print(" ".join(r.get("host", "?") for r in json.load(open(sys.argv[1]))
               if r.get("desired") != "normal"))
PYEOF
}

# ---- 1. agents come up ----

test_up()
{
	local i rc n
	"$PCD" --check-config "$(fl_dir 1)/agent.yaml" >"$FL_WORK/cc.out" 2>&1
	rc=$?
	sed 's/^/      | /' "$FL_WORK/cc.out"
	pass_if "--check-config node-1's agent.yaml -> 0" \
		"--check-config node-1's agent.yaml -> $rc, expected 0" [ "$rc" -eq 0 ]
	ensure_baseline || return 1
	show fleet_cli status
	fleet_status_json "$FL_WORK/up.json"
	n=$("$PY" -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$FL_WORK/up.json" 2>/dev/null)
	pass_if "fleet status --json lists ${n:-?} hosts (3)" \
		"fleet status --json lists '${n:-?}' hosts, expected 3" [ "${n:-0}" = 3 ]
	for i in "${NODES[@]}"; do
		expect_status "$i" true normal normal false "just started"
		expect_mode "$i" normal "just started"
		if [ "$(fleet_status_get "$FL_WORK/status.json" "$(h "$i")" groups)" = "[\"${GROUPS_OF[$i]}\"]" ]; then
			pass "fleet status $(h "$i"): groups [${GROUPS_OF[$i]}]"
		else
			fail "fleet status $(h "$i"): groups $(fleet_status_get "$FL_WORK/status.json" "$(h "$i")" groups), expected [\"${GROUPS_OF[$i]}\"]"
		fi
		if fleet_etcdctl get --keys-only "$FL_KEY_PREFIX/alive/$(h "$i")" | grep -q alive; then
			pass "etcd: $FL_KEY_PREFIX/alive/$(h "$i") present"
		else
			fail "etcd: no $FL_KEY_PREFIX/alive/$(h "$i")"
		fi
		n=$(audit_n "$i" fleet_lease state=granted)
		pass_if "$(h "$i") audit: fleet_lease granted ($n)" \
			"$(h "$i") audit: no fleet_lease granted line" [ "$n" -gt 0 ]
		n=$(fleet_pc "$i" status 2>/dev/null | grep '^fleet hb:')
		pass_if "$(h "$i") status: ${n:-?}" \
			"$(h "$i") status: no signed heartbeat taken ('$n')" \
			grep -q 'signed seq' <<<"$n"
		allowed_ping "$i" "normal: ping-in"
	done
	show fleet_etcdctl get --print-value-only "$FL_KEY_PREFIX/status/$(h 1)"
	cli "$FL_WORK/one.out" status --json "$(h 2)"
	n=$("$PY" -c 'import json,sys; print(",".join(r["host"] for r in json.load(open(sys.argv[1]))))' "$FL_WORK/one.out" 2>/dev/null)
	pass_if "fleet status --json $(h 2): only $(h 2)" \
		"fleet status --json $(h 2): '$n' (exit $CLI_RC)" [ "$n" = "$(h 2)" ]

	note "a host with a desired key but no agent"
	cli_ok "no such agent" lockdown ghost-1
	fleet_status_json "$FL_WORK/ghost.json"
	n="$(fleet_status_get "$FL_WORK/ghost.json" ghost-1 alive) $(fleet_status_get "$FL_WORK/ghost.json" ghost-1 desired) $(fleet_status_get "$FL_WORK/ghost.json" ghost-1 drift)"
	pass_if "fleet status ghost-1: alive false, desired lockdown, drift true" \
		"fleet status ghost-1: '$n', expected 'false lockdown true' (alive desired drift)" \
		[ "$n" = "false lockdown true" ]
	fleet_etcdctl del "$FL_KEY_PREFIX/desired/host/ghost-1" >/dev/null
}

# ---- 2. quarantine one host ----

test_quarantine()
{
	local t0 ts n
	ensure_baseline || return 1
	n=$(audit_n 1 transition trigger=fleet to=quarantine)
	t0=$(now_ms)
	cli_ok "quarantine one host" quarantine "$(h 1)" || return 1
	wait_mode_timed 1 quarantine "$t0" "$COMMAND_BOUND_MS" "fleet quarantine"
	ts=$(fleet_audit_ts_ms "$(fl_audit 1)" "$t0" transition trigger=fleet to=quarantine)
	[ -n "$ts" ] && note "audit: transition stamped $((ts - t0)) ms after the CLI started"
	audit_more 1 "$n" "transition to quarantine, trigger fleet" \
		transition to=quarantine trigger=fleet
	expect_audit_accepted 1 "host/$(h 1)" quarantine
	blocked_ping 1 "quarantined"
	allowed_ping 2 "not quarantined"
	allowed_ping 3 "not quarantined"
	expect_mode 2 normal "another host's quarantine"
	expect_mode 3 normal "another host's quarantine"
	expect_status 1 true quarantine quarantine false "quarantined by the fleet"
	expect_status 2 true normal normal false "untouched"
	show fleet_cli get "$(h 1)"
	if grep -q 'quarantine' "$FL_WORK/show.out" && grep -Eq 'revision [0-9]+' "$FL_WORK/show.out"; then
		pass "fleet get $(h 1): quarantine, with its revision"
	else
		fail "fleet get $(h 1): no 'quarantine' and revision in its output"
	fi
	# Management only: etcd's client port answers, anything else is cut.
	if ip netns exec "$(fl_ns 1)" timeout 5 curl -s -m 2 -o /dev/null "$FL_ETCD_URL/version"; then
		pass "$(h 1) -> etcd tcp/$FL_ETCD_PORT works in quarantine (management)"
	else
		fail "$(h 1) -> etcd tcp/$FL_ETCD_PORT cut in quarantine (management should pass)"
	fi
	if ip netns exec "$(fl_ns 1)" timeout 5 ping -n -q -c 1 -W 1 "$(fl_router_ip 1)" >/dev/null 2>&1; then
		fail "$(h 1) -> $(fl_router_ip 1) ping passes in quarantine"
	else
		pass "$(h 1) -> $(fl_router_ip 1) ping dropped in quarantine (not management)"
	fi
	expect_lease_ok 1 "quarantine keeps the etcd client (management)"
	t0=$(now_ms)
	cli_ok "release" release "$(h 1)" || return 1
	wait_mode_timed 1 normal "$t0" "$COMMAND_BOUND_MS" "fleet release"
	allowed_ping 1 "released"
	expect_status 1 true normal normal false "released"
}

# expect_audit_accepted I TARGET MODE: a fleet_accepted line for it.
expect_audit_accepted()
{
	local n
	n=$(audit_n "$1" fleet_accepted target="$2" mode="$3")
	if [ "$n" -gt 0 ]; then
		pass "$(h "$1") audit: fleet_accepted $2 $3"
	else
		fail "$(h "$1") audit: no fleet_accepted target=$2 mode=$3 line"
	fi
}

# expect_lease_ok I WHY: 3 s later the node is still alive in fleet status
# (its keep-alives go through in this mode).
expect_lease_ok()
{
	local row
	sleep 3
	row=$(status_row "$1")
	case $row in
	true\ *) pass "fleet status $(h "$1"): alive after 3 s ($2)" ;;
	*) fail "fleet status $(h "$1"): '$row', not alive after 3 s ($2)" ;;
	esac
}

# ---- 3. lockdown a group ----

test_group()
{
	local t0 i
	ensure_baseline || return 1
	t0=$(now_ms)
	cli_ok "lockdown group web" lockdown --group web || return 1
	wait_mode_timed 1 lockdown "$t0" "$COMMAND_BOUND_MS" "group web"
	wait_mode_timed 2 lockdown "$t0" "$COMMAND_BOUND_MS" "group web"
	hold_mode 3 normal 1 "group db is not web"
	for i in 1 2; do
		expect_audit_accepted "$i" group/web lockdown
		blocked_ping "$i" "lockdown: ping-in is normal only"
	done
	allowed_ping 3 "group db untouched"
	expect_status 1 true lockdown lockdown false "group web"
	expect_status 2 true lockdown lockdown false "group web"
	expect_status 3 true normal normal false "group db"
	show fleet_cli get --group web
	note "strictest of fleet, group and host: quarantine node-1, then release it"
	t0=$(now_ms)
	cli_ok "host above its group" quarantine "$(h 1)" || return 1
	wait_mode_timed 1 quarantine "$t0" "$COMMAND_BOUND_MS" "host quarantine over group lockdown"
	t0=$(now_ms)
	cli_ok "host key released, group still lockdown" release "$(h 1)" || return 1
	wait_mode_timed 1 lockdown "$t0" "$COMMAND_BOUND_MS" "group web still demands lockdown"
	hold_mode 1 lockdown 2 "released by name, but its group demands lockdown"
	expect_status 1 true lockdown lockdown false "host released, group lockdown"
	t0=$(now_ms)
	cli_ok "release group web" release --group web || return 1
	wait_mode_timed 1 normal "$t0" "$COMMAND_BOUND_MS" "group web released"
	wait_mode_timed 2 normal "$t0" "$COMMAND_BOUND_MS" "group web released"
	expect_mode 3 normal "group db untouched"
	allowed_ping 1 "released"
	expect_status 2 true normal normal false "group released"

	note "the whole fleet: lockdown --all"
	t0=$(now_ms)
	cli_ok "every host" lockdown --all || return 1
	for i in "${NODES[@]}"; do
		wait_mode_timed "$i" lockdown "$t0" "$COMMAND_BOUND_MS" "fleet lockdown --all"
	done
	expect_audit_accepted 3 fleet lockdown
	expect_status 3 true lockdown lockdown false "fleet lockdown"
	t0=$(now_ms)
	cli_ok "every host" release --all || return 1
	for i in "${NODES[@]}"; do
		wait_mode_timed "$i" normal "$t0" "$COMMAND_BOUND_MS" "fleet release --all"
	done
}

# ---- 4. refused values ----

# put_b64 KEY BASE64: store raw bytes under KEY (the JSON gateway).
put_b64()
{
	fleet_kv put "$1" "$2" >"$FL_WORK/kv.out" 2>&1 || {
		fail "could not write $1 through the gateway: $(tail -n 1 "$FL_WORK/kv.out")"
		return 1
	}
}

# tamper BASE64: the envelope with its command byte (offset 6) changed
# from release (3) to quarantine (2), signature kept.
tamper()
{
	"$PY" - "$1" <<'PYEOF'
import base64, sys
b = bytearray(base64.b64decode(sys.argv[1]))
if b[:4] == b"PCM1" and len(b) > 6:
    b[6] = 2 if b[6] != 2 else 1
else:
    b[len(b) // 2] ^= 0x01
print(base64.b64encode(bytes(b)).decode())
PYEOF
}

# refused_check I BEFORE_TOTAL REASONS WHY: node I audits a new
# fleet_refused line with one of REASONS ("a|b").
refused_check()
{
	local i=$1 before=$2 reasons=$3 why=$4 line reason
	if ! wait_audit "$i" "$before" 5 fleet_refused; then
		fail "$(h "$i") audit: no fleet_refused line ($why)"
		return 1
	fi
	line=$(audit_last "$i" fleet_refused)
	reason=$("$PY" -c 'import json,sys; print(json.loads(sys.argv[1]).get("reason"))' "$line" 2>/dev/null)
	if [[ "|$reasons|" == *"|$reason|"* ]]; then
		pass "$(h "$i") audit: fleet_refused reason $reason ($why)"
	else
		fail "$(h "$i") audit: fleet_refused reason '$reason', expected $reasons ($why)"
	fi
	note "$line"
}

test_refused()
{
	local key key1 before good quar other t0 refused0 refused1
	ensure_baseline || return 1
	key=$(fl_key_of 3)
	refused0=$(status_refused 3)

	note "1. not an envelope: etcdctl put $key quarantine"
	before=$(audit_n 3 fleet_refused)
	if fleet_etcdctl put "$key" quarantine >"$FL_WORK/put.out" 2>&1; then
		pass "etcdctl put $key quarantine (no signature): accepted by etcd"
	else
		fail "etcdctl put failed: $(tail -n 1 "$FL_WORK/put.out")"
	fi
	hold_mode 3 normal "$HOLD_S" "unsigned value"
	refused_check 3 "$before" malformed "unsigned value"
	allowed_ping 3 "unsigned value changed nothing"
	if cli "$FL_WORK/st.out" status && grep -q "$(h 3)" "$FL_WORK/st.out"; then
		pass "fleet status exits 0 and lists $(h 3) with junk under its key"
		sed 's/^/      | /' "$FL_WORK/st.out"
	else
		fail "fleet status with junk under $key: exit $CLI_RC [$(tail -n 1 "$FL_WORK/st.out")]"
	fi
	# An operator repairs the key with a signed value.
	cli_ok "over a junk value" release "$(h 3)"
	expect_mode 3 normal "signed release over junk"

	note "2. a signed release altered into a quarantine (command byte)"
	good=$(fleet_kv get "$key") || { fail "no value under $key"; return 1; }
	before=$(audit_n 3 fleet_refused)
	put_b64 "$key" "$(tamper "$good")" || return 1
	hold_mode 3 normal "$HOLD_S" "tampered envelope"
	refused_check 3 "$before" bad_signature "tampered envelope"

	note "3. replay: an older valid quarantine put back after a release"
	t0=$(now_ms)
	cli_ok "to record it" quarantine "$(h 3)" || return 1
	wait_mode_timed 3 quarantine "$t0" "$COMMAND_BOUND_MS" "signed quarantine"
	quar=$(fleet_kv get "$key")
	t0=$(now_ms)
	cli_ok "after it" release "$(h 3)" || return 1
	wait_mode_timed 3 normal "$t0" "$COMMAND_BOUND_MS" "signed release"
	before=$(audit_n 3 fleet_refused)
	put_b64 "$key" "$quar" || return 1
	hold_mode 3 normal "$HOLD_S" "replayed quarantine"
	refused_check 3 "$before" replay "replayed quarantine"

	note "4. another host's valid quarantine copied under $key"
	key1=$(fl_key_of 1)
	t0=$(now_ms)
	cli_ok "to copy it" quarantine "$(h 1)" || return 1
	other=$(fleet_kv get "$key1")
	cli_ok "" release "$(h 1)"
	before=$(audit_n 3 fleet_refused)
	put_b64 "$key" "$other" || return 1
	hold_mode 3 normal "$HOLD_S" "$(h 1)'s envelope under $(h 3)'s key"
	refused_check 3 "$before" "wrong_target|wrong_host" "$(h 1)'s envelope"
	fleet_wait_mode 1 normal 5
	expect_mode 1 normal "its own release"

	note "5. deleting a key that holds a quarantine"
	t0=$(now_ms)
	cli_ok "before the delete" quarantine "$(h 3)" || return 1
	wait_mode_timed 3 quarantine "$t0" "$COMMAND_BOUND_MS" "signed quarantine"
	before=$(audit_n 3 fleet_refused)
	if fleet_etcdctl del "$key" >"$FL_WORK/del.out" 2>&1; then
		pass "etcdctl del $key: $(tail -n 1 "$FL_WORK/del.out") deleted"
	else
		fail "etcdctl del $key failed: $(tail -n 1 "$FL_WORK/del.out")"
	fi
	hold_mode 3 quarantine "$HOLD_S" "deleted key: the last accepted envelope stays"
	refused_check 3 "$before" deleted "key deleted"
	blocked_ping 3 "still quarantined after the delete"
	t0=$(now_ms)
	cli_ok "after the delete" release "$(h 3)" || return 1
	wait_mode_timed 3 normal "$t0" "$COMMAND_BOUND_MS" "signed release after delete"

	note "6. a valid envelope signed by a key the agents do not trust"
	"$PCCLI" keygen --out "$FL_WORK/rogue.key" >/dev/null 2>&1 || { fail "keygen rogue.key"; return 1; }
	before=$(audit_n 3 fleet_refused)
	if FL_CLI_KEY=$FL_WORK/rogue.key cli "$FL_WORK/rogue.out" quarantine "$(h 3)"; then
		pass "fleet --key rogue.key quarantine $(h 3): written (exit 0)"
	else
		note "fleet --key rogue.key quarantine $(h 3): exit $CLI_RC: $(tail -n 1 "$FL_WORK/rogue.out")"
	fi
	if [ "$CLI_RC" = 0 ]; then
		hold_mode 3 normal "$HOLD_S" "envelope signed by an untrusted key"
		refused_check 3 "$before" bad_signature "untrusted key"
		show fleet_cli get "$(h 3)"
	fi
	t0=$(now_ms)
	cli_ok "with the trusted key, over the rogue value" release "$(h 3)"
	fleet_wait_mode 3 normal 5

	note "fleet status after all that"
	expect_status 3 true normal normal false "refusals changed nothing"
	refused1=$(status_refused 3 "${refused0:-0}")
	pass_if "fleet status $(h 3): refused $refused0 -> $refused1" \
		"fleet status $(h 3): refused $refused0 -> $refused1, expected more" \
		[ "${refused1:-0}" -gt "${refused0:-0}" ] 2>/dev/null
	expect_mode 1 normal "untouched by $(h 3)'s refusals"
	expect_mode 2 normal "untouched by $(h 3)'s refusals"
}

# status_refused I [ABOVE]: node I's reported refused count; with ABOVE,
# polled (a report interval and margin) until it is more than that.
status_refused()
{
	local n deadline
	deadline=$(($(now_ms) + REPORT_WAIT_S * 1000))
	while :; do
		status_row "$1" >/dev/null
		n=$(fleet_status_get "$STATUS_JSON" "$(h "$1")" refused)
		[ -z "${2:-}" ] && break
		[ "${n:-0}" -gt "$2" ] 2>/dev/null && break
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.3
	done
	echo "$n"
}

# ---- 5. racing writers ----

# revision_of I: the revision `fleet get` prints for node I's key.
revision_of()
{
	fleet_cli get "$(h "$1")" 2>/dev/null | grep -Eo 'revision [0-9]+' | head -n 1 | grep -Eo '[0-9]+'
}

# race OUTDIR CMD1 CMD2 ...: each "CMD ARGS" as one concurrent fleet call;
# statuses in OUTDIR/N.rc, output in OUTDIR/N.out.
race()
{
	local dir=$1 k=0 c pids=()
	shift
	mkdir -p "$dir"
	for c in "$@"; do
		k=$((k + 1))
		# shellcheck disable=SC2086 # "CMD ARGS" splits on purpose
		(fleet_cli $c >"$dir/$k.out" 2>&1; echo $? >"$dir/$k.rc") &
		pids+=($!)
	done
	wait "${pids[@]}"
}

test_conflict()
{
	local key rev rev2 rq rr winner want i round dir rcs bad d got row
	ensure_baseline || return 1
	key=$(fl_key_of 2)
	cli_ok "so the key exists" release "$(h 2)" || return 1
	rev=$(revision_of 2)
	rev2=$(fleet_kv rev "$key")
	if [ -n "$rev" ] && [ "$rev" = "$rev2" ]; then
		pass "fleet get $(h 2): revision $rev (= etcd mod_revision)"
	else
		fail "fleet get $(h 2): revision '$rev', etcd mod_revision '$rev2'"
		rev=$rev2
	fi
	dir=$FL_WORK/race0
	race "$dir" "quarantine $(h 2) --expect-revision $rev" \
		"release $(h 2) --expect-revision $rev"
	rq=$(cat "$dir/1.rc")
	rr=$(cat "$dir/2.rc")
	note "quarantine --expect-revision $rev -> $rq: $(tail -n 1 "$dir/1.out")"
	note "release    --expect-revision $rev -> $rr: $(tail -n 1 "$dir/2.out")"
	winner=
	if [ "$rq" = 0 ] && [ "$rr" = 3 ]; then
		winner=quarantine
		want=quarantine
	elif [ "$rq" = 3 ] && [ "$rr" = 0 ]; then
		winner=release
		want=normal
	fi
	if [ -n "$winner" ]; then
		pass "exactly one writer won ($winner), the other exited 3"
	else
		fail "exit statuses $rq (quarantine) and $rr (release), expected one 0 and one 3"
		want=
	fi
	for d in 1 2; do
		if [ "$(cat "$dir/$d.rc")" = 3 ]; then
			if grep -qi 'conflict' "$dir/$d.out" && grep -Eqi 'revision [0-9]+' "$dir/$d.out"; then
				pass "the loser says conflict and names the revision"
			else
				fail "the loser's message lacks 'conflict' or the revision: $(tail -n 1 "$dir/$d.out")"
			fi
		fi
	done
	if [ -n "$want" ]; then
		fleet_wait_mode 2 "$want" 5
		expect_mode 2 "$want" "the winner's mode"
		expect_status 2 true "$want" "$want" false "after the race"
	fi
	# The revision the racers saw is stale now: a third writer must lose.
	cli "$FL_WORK/stale.out" release "$(h 2)" --expect-revision "$rev"
	pass_if "fleet release --expect-revision $rev (stale) -> 3" \
		"fleet release --expect-revision $rev (stale) -> $CLI_RC, expected 3" [ "$CLI_RC" = 3 ]
	cli "$FL_WORK/absent.out" quarantine "$(h 2)" --expect-revision 0
	pass_if "fleet quarantine --expect-revision 0 on an existing key -> 3" \
		"fleet quarantine --expect-revision 0 on an existing key -> $CLI_RC, expected 3" [ "$CLI_RC" = 3 ]

	note "plain racing writers, no --expect-revision: 5 rounds of 3"
	bad=0
	for round in 1 2 3 4 5; do
		dir=$FL_WORK/race$round
		race "$dir" "quarantine $(h 2)" "release $(h 2)" "lockdown $(h 2)"
		rcs=$(cat "$dir/1.rc" "$dir/2.rc" "$dir/3.rc" | tr '\n' ' ')
		note "round $round: quarantine release lockdown -> $rcs"
		for d in 1 2 3; do
			case $(cat "$dir/$d.rc") in
			0 | 3) ;;
			*)
				bad=$((bad + 1))
				note "  unexpected: $(tail -n 2 "$dir/$d.out" | tr '\n' ' ')"
				;;
			esac
		done
		case " $rcs" in
		*" 0 "*) ;;
		*) bad=$((bad + 1)); note "  round $round: nobody won" ;;
		esac
	done
	pass_if "every racing command exited 0 or 3, each round had a winner" \
		"$bad racing commands exited other than 0/3 (or rounds without a winner)" [ "$bad" -eq 0 ]
	# The agent must end where etcd says (the CLI calls have returned:
	# etcd holds the outcome, the agent is polled for it below).
	row=$(status_row 2)
	want=$(echo "$row" | awk '{ print $3 }')
	case $want in
	normal | lockdown | quarantine)
		fleet_wait_mode 2 "$want" 5
		got=$(fleet_mode 2)
		pass_if "$(h 2): mode $got = desired $want after the races" \
			"$(h 2): mode $got, desired $want after the races" [ "$got" = "$want" ]
		note "fleet get: $(fleet_cli get "$(h 2)" 2>&1 | head -n 1)"
		expect_status 2 true "$want" "$want" false "after the races"
		;;
	*) fail "fleet status: no desired mode for $(h 2) ('$row')" ;;
	esac
	for i in 1 3; do
		expect_mode "$i" normal "not in the race"
	done
	cli_ok "end of the races" release "$(h 2)"
	fleet_wait_mode 2 normal 5
	expect_mode 2 normal "released"
}

# ---- policy pushed through etcd ----

# rules_have I NAME: node I's live policy has a rule NAME.
rules_have()
{
	fleet_pc "$1" rules 2>/dev/null | awk -v n="$2" '$2 == n { f = 1 } END { exit !f }'
}

# wait_rules I NAME yes|no SECONDS
wait_rules()
{
	local i=$1 name=$2 want=$3 deadline
	deadline=$(($(now_ms) + $4 * 1000))
	while :; do
		if rules_have "$i" "$name"; then
			[ "$want" = yes ] && return 0
		else
			[ "$want" = no ] && return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.2
	done
}

# expect_policy_status I HASH WHY: reported policy = desired policy = HASH.
expect_policy_status()
{
	local i=$1 want=$2 why=$3 deadline got dgot
	deadline=$(($(now_ms) + REPORT_WAIT_S * 1000))
	while :; do
		status_row "$i" >/dev/null
		got=$(fleet_status_get "$STATUS_JSON" "$(h "$i")" policy)
		dgot=$(fleet_status_get "$STATUS_JSON" "$(h "$i")" desired_policy)
		[ "$got" = "$want" ] && [ "$dgot" = "$want" ] && break
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.3
	done
	if [ "$got" = "$want" ] && [ "$dgot" = "$want" ]; then
		pass "fleet status $(h "$i"): policy = desired_policy = ${want:0:12}... ($why)"
	else
		fail "fleet status $(h "$i"): policy '$got', desired_policy '$dgot', expected ${want:0:12}... ($why)"
	fi
}

test_policy()
{
	local hb ha t0 before key
	ensure_baseline || return 1
	# Variant B: the lab policy without ping-in (ping dropped in normal).
	grep -v 'name: ping-in' "$FL_WORK/policy.yaml" >"$FL_WORK/noping.yaml"
	# No management entry at all: agents must never enforce it.
	sed '/^management:/,/^rules:/{/^rules:/!d}' "$FL_WORK/policy.yaml" >"$FL_WORK/nomgmt.yaml"
	hb=$(sha256sum "$FL_WORK/noping.yaml" | cut -d' ' -f1)
	ha=$(sha256sum "$FL_WORK/policy.yaml" | cut -d' ' -f1)

	cli_ok "variant without ping-in" policy "$FL_WORK/noping.yaml" --host "$(h 2)" || return 1
	if wait_rules 2 ping-in no 15; then
		pass "$(h 2): rule ping-in gone from its live policy"
	else
		fail "$(h 2): rule ping-in still live 15 s after the push"
	fi
	expect_mode 2 normal "a policy push does not change the mode"
	blocked_ping 2 "normal, pushed policy has no ping-in"
	allowed_ping 1 "policy pushed to $(h 2) only"
	expect_policy_status 2 "$hb" "pushed"
	if fleet_etcdctl get --print-value-only "$FL_KEY_PREFIX/policies/$hb" | cmp -s - <(cat "$FL_WORK/noping.yaml"; echo); then
		pass "etcd: $FL_KEY_PREFIX/policies/${hb:0:12}... holds the file"
	else
		fail "etcd: $FL_KEY_PREFIX/policies/$hb does not hold the pushed file"
	fi
	t0=$(now_ms)
	cli_ok "the hash is carried over" lockdown "$(h 2)" || return 1
	wait_mode_timed 2 lockdown "$t0" "$COMMAND_BOUND_MS" "lockdown keeps the pushed policy"
	if fleet_cli get "$(h 2)" 2>&1 | grep -q "$hb"; then
		pass "fleet get $(h 2): still names policy ${hb:0:12}..."
	else
		fail "fleet get $(h 2): lockdown dropped the policy hash"
	fi
	t0=$(now_ms)
	cli_ok "" release "$(h 2)" || return 1
	wait_mode_timed 2 normal "$t0" "$COMMAND_BOUND_MS" "release"
	blocked_ping 2 "released, pushed policy still in force"

	note "a policy without management entries"
	before=$(audit_n 2 policy_loaded)
	# The CLI refuses what every agent would refuse (anti-lockout) ...
	if cli "$FL_WORK/nomgmt.out" policy "$FL_WORK/nomgmt.yaml" --host "$(h 2)"; then
		fail "fleet policy accepted a policy without management (exit 0)"
	elif [ "$CLI_RC" = 1 ] && grep -q "anti-lockout" "$FL_WORK/nomgmt.out"; then
		pass "fleet policy refused a policy without management: $(tail -n 1 "$FL_WORK/nomgmt.out")"
	else
		fail "fleet policy without management: exit $CLI_RC, no anti-lockout message"
	fi
	# ... and an agent refuses it even when an operator forces it into etcd.
	before=$(audit_n 2 policy_refused)
	if cli "$FL_WORK/nomgmt.out" policy "$FL_WORK/nomgmt.yaml" --host "$(h 2)" --force; then
		pass "fleet policy --force stored it anyway (exit 0)"
		wait_audit 2 "$before" 15 policy_refused ||
			fail "$(h 2): no policy_refused audit line 5 s after the push"
		# The agent keeps its policy: fleet status must flag the drift.
		expect_status 2 true normal normal true "desired policy refused by the agent: drift"
		if grep '"event":"policy_refused"' "$(fl_audit 2)" | tail -n 1 | grep -q 'anti-lockout'; then
			pass "$(h 2) audit: policy_refused names the anti-lockout reason"
		else
			fail "$(h 2) audit: policy_refused without the anti-lockout reason: $(audit_last 2 policy_refused)"
		fi
	else
		fail "fleet policy --force: exit $CLI_RC"
	fi
	if rules_have 2 etcd; then
		pass "$(h 2): management entry etcd still live (no-management policy never enforced)"
	else
		fail "$(h 2): management entry etcd gone: a policy without management was enforced"
	fi
	note "$(h 2) audit: $(audit_last 2 policy_refused)$(audit_last 2 fleet_refused reason=policy)"
	expect_lease_ok 2 "after the no-management push"

	cli_ok "back to the lab policy" policy "$FL_WORK/policy.yaml" --host "$(h 2)" || return 1
	if wait_rules 2 ping-in yes 15; then
		pass "$(h 2): rule ping-in live again"
	else
		fail "$(h 2): rule ping-in not back 15 s after pushing the lab policy"
	fi
	allowed_ping 2 "lab policy again"
	expect_policy_status 2 "$ha" "lab policy pushed"

	note "a policy text altered in etcd after it was signed"
	fleet_agent_stop 3 TERM
	cli_ok "while $(h 3)'s agent is down" policy "$FL_WORK/noping.yaml" --host "$(h 3)" || return 1
	key=$FL_KEY_PREFIX/policies/$hb
	{ cat "$FL_WORK/noping.yaml"; echo '  - {name: sneaky, action: allow, direction: ingress, proto: tcp, ports: 9999}'; } >"$FL_WORK/sneaky.yaml"
	put_b64 "$key" "$(base64 -w0 "$FL_WORK/sneaky.yaml")" || return 1
	before=$(audit_n 3 fleet_refused)
	start_agent 3 || return 1
	refused_check 3 "$before" "policy|policy_mismatch" "policy text does not match the signed hash"
	if rules_have 3 sneaky; then
		fail "$(h 3): the altered policy (rule sneaky) is live"
	else
		pass "$(h 3): the altered policy is not live"
	fi
	# Down longer than the heartbeat timeout, the agent starts in the
	# dead-man lockdown and lifts it after release_after signed heartbeats.
	if fleet_wait_mode 3 normal "$LIFT_BOUND_S"; then
		pass "$(h 3): normal again after its restart"
	else
		fail "$(h 3): $(fleet_mode 3) $LIFT_BOUND_S s after its restart"
	fi
	allowed_ping 3 "local policy kept"
	# Put the right text back: the agent re-reads etcd while a named
	# policy is pending (every 5 s) and applies it, with no new envelope.
	put_b64 "$key" "$(base64 -w0 "$FL_WORK/noping.yaml")"
	if wait_rules 3 ping-in no 20; then
		pass "$(h 3): the signed policy applied once its right text was in etcd (retried)"
	else
		fail "$(h 3): the signed policy not applied 20 s after its right text was in etcd"
	fi
	# And name the lab policy for node-3 (no drift).
	cli_ok "back to the lab policy" policy "$FL_WORK/policy.yaml" --host "$(h 3)"
	expect_policy_status 3 "$ha" "lab policy pushed"
	fleet_wait_alive 10 3
}

# ---- agent restarts keep the fleet's word ----

test_restart()
{
	local t0 before quar
	ensure_baseline || return 1
	t0=$(now_ms)
	cli_ok "" quarantine "$(h 2)" || return 1
	wait_mode_timed 2 quarantine "$t0" "$COMMAND_BOUND_MS" "fleet quarantine"
	before=$(audit_n 2 fleet_refused)
	fleet_agent_stop 2 TERM
	pass "$(h 2)'s portcullisd stopped (SIGTERM) while quarantined"
	start_agent 2 || return 1
	if grep -q 'portcullisd: ready.*mode quarantine' "$(fleet_agent_log 2)"; then
		pass "$(h 2): restarted in quarantine"
	else
		fail "$(h 2): ready line does not say mode quarantine"
	fi
	hold_mode 2 quarantine "$HOLD_S" "the envelope in force, re-read after a restart"
	pass_if "$(h 2) audit: its own envelope not refused on re-read" 		"$(h 2) audit: fleet_refused after a restart: $(audit_last 2 fleet_refused)" 		[ "$(audit_n 2 fleet_refused)" -eq "$before" ]
	fleet_wait_alive 10 2
	quar=$(fleet_kv get "$(fl_key_of 2)")
	t0=$(now_ms)
	cli_ok "after the restart" release "$(h 2)" || return 1
	wait_mode_timed 2 normal "$t0" "$COMMAND_BOUND_MS" "release after restart"
	note "the replay state survives a restart: the old quarantine put back"
	fleet_agent_stop 2 TERM
	start_agent 2 || return 1
	fleet_wait_alive 10 2
	before=$(audit_n 2 fleet_refused)
	put_b64 "$(fl_key_of 2)" "$quar" || return 1
	hold_mode 2 normal "$HOLD_S" "replayed quarantine after a restart"
	refused_check 2 "$before" replay "replayed after a restart"
	cli_ok "over the replayed value" release "$(h 2)"

	note "desired state written while the agent is down"
	fleet_agent_stop 3 TERM
	cli_ok "while $(h 3)'s agent is down" lockdown "$(h 3)" || return 1
	expect_mode 3 normal "agent down: nobody applied it yet"
	t0=$(now_ms)
	start_agent 3 || return 1
	wait_mode_timed 3 lockdown "$t0" $((COMMAND_BOUND_MS + 5000)) "read at start"
	expect_audit_accepted 3 "host/$(h 3)" lockdown
	fleet_wait_alive 10 3
	t0=$(now_ms)
	cli_ok "" release "$(h 3)" || return 1
	wait_mode_timed 3 normal "$t0" "$COMMAND_BOUND_MS" "release"
}

# ---- etcd gone while the fleet demands more than normal ----

test_floor()
{
	local t0 i n
	ensure_baseline || return 1
	t0=$(now_ms)
	cli_ok "" lockdown --group web || return 1
	cli_ok "" quarantine "$(h 3)" || return 1
	wait_mode_timed 1 lockdown "$t0" "$COMMAND_BOUND_MS" "group web"
	wait_mode_timed 2 lockdown "$t0" "$COMMAND_BOUND_MS" "group web"
	wait_mode_timed 3 quarantine "$t0" "$COMMAND_BOUND_MS" "host quarantine"
	n=$(audit_n 1 heartbeat_restored)
	local lost1 lost3
	lost1=$(audit_n 1 heartbeat_lost)
	lost3=$(audit_n 3 heartbeat_lost)
	fleet_etcd_stop KILL
	pass "etcd SIGKILLed"
	pass_if "$(h 1), $(h 3): heartbeat loss detected" \
		"$(h 1), $(h 3): no heartbeat_lost audit line within the timeout and margin" \
		wait_audit 1 "$lost1" $(((HB_TIMEOUT_MS + SECURE_MARGIN_MS) / 1000 + 1)) heartbeat_lost
	wait_audit 3 "$lost3" 10 heartbeat_lost || fail "$(h 3): no heartbeat_lost audit line"
	expect_mode 1 lockdown "heartbeat loss on top of a fleet lockdown"
	expect_mode 2 lockdown "heartbeat loss on top of a fleet lockdown"
	expect_mode 3 quarantine "heartbeat loss never lowers a quarantine"
	blocked_ping 3 "still quarantined"
	t0=$(now_ms)
	fleet_etcd_start || { fail "etcd did not restart"; return 1; }
	pass "etcd restarted"
	if wait_audit 1 "$n" "$LIFT_BOUND_S" heartbeat_restored; then
		pass "$(h 1) audit: heartbeat_restored $(($(now_ms) - t0)) ms after etcd came back"
	else
		note "$(h 1) audit: no heartbeat_restored within $LIFT_BOUND_S s (none needed if lockdown was the fleet's)"
	fi
	sleep 3	# release_after 3 keep-alives (0.5 s apart) + backoff 1 s
	expect_mode 1 lockdown "the lift goes down to the group's lockdown, not below"
	expect_mode 2 lockdown "the lift goes down to the group's lockdown, not below"
	expect_mode 3 quarantine "the lift goes down to the host's quarantine, not below"
	fleet_wait_alive 15 "${NODES[@]}"
	expect_status 1 true lockdown lockdown false "after etcd came back"
	expect_status 3 true quarantine quarantine false "after etcd came back"
	t0=$(now_ms)
	cli_ok "" release --group web || return 1
	cli_ok "" release "$(h 3)" || return 1
	for i in "${NODES[@]}"; do
		wait_mode_timed "$i" normal "$t0" "$COMMAND_BOUND_MS" "released"
	done
}

# ---- one node cut off from etcd ----

test_partition()
{
	local t0 t1 bound=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS))
	ensure_baseline || return 1
	note "short cut (1 s, under the heartbeat timeout): a lockdown written meanwhile"
	fleet_partition 1 down || { fail "cannot cut $(h 1) off"; return 1; }
	cli_ok "while $(h 1) is cut off" lockdown "$(h 1)"
	sleep 1
	fleet_partition 1 up
	t0=$(now_ms)
	wait_mode_timed 1 lockdown "$t0" 8000 "written while cut off, seen after the heal"
	t0=$(now_ms)
	cli_ok "" release "$(h 1)"
	wait_mode_timed 1 normal "$t0" $((LIFT_BOUND_S * 1000)) "released"

	note "long cut (about 5 s: past the heartbeat timeout and the 3 s lease): heartbeat loss, and a quarantine written meanwhile"
	t0=$(now_ms)
	fleet_partition 1 down || { fail "cannot cut $(h 1) off"; return 1; }
	wait_mode_timed 1 lockdown "$t0" "$bound" "cut off from etcd: heartbeat loss"
	expect_mode 2 normal "still connected"
	cli_ok "while $(h 1) is cut off" quarantine "$(h 1)"
	sleep 3
	expect_mode 1 lockdown "cannot have seen the quarantine yet"
	fleet_partition 1 up
	t1=$(now_ms)
	wait_mode_timed 1 quarantine "$t1" 10000 "caught up after the heal"
	hold_mode 1 quarantine 4 "heartbeats back: the lift stops at the fleet's quarantine"
	expect_status 1 true quarantine quarantine false "after the heal"
	t0=$(now_ms)
	cli_ok "" release "$(h 1)"
	wait_mode_timed 1 normal "$t0" $((LIFT_BOUND_S * 1000)) "released"
	allowed_ping 1 "healed and released"
	expect_mode 2 normal "never involved"
}

# ---- 6. etcd gone ----

test_etcdloss()
{
	local t0 i t ts dt bound=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS)) pending deadline
	local -A seen=()
	ensure_baseline || return 1
	for i in "${NODES[@]}"; do
		allowed_ping "$i" "before etcd goes"
	done
	t0=$(now_ms)
	fleet_etcd_stop KILL
	pass "etcd SIGKILLed"
	note "waiting for every node to lock itself down (bound $bound ms)"
	deadline=$((t0 + bound + 8000))
	pending=${#NODES[@]}
	while [ "$pending" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do
		for i in "${NODES[@]}"; do
			[ -n "${seen[$i]:-}" ] && continue
			if [ "$(fleet_mode "$i")" = lockdown ]; then
				seen[$i]=$(($(now_ms) - t0))
				pending=$((pending - 1))
			fi
		done
		sleep 0.05
	done
	for i in "${NODES[@]}"; do
		ts=$(fleet_audit_ts_ms "$(fl_audit "$i")" "$t0" transition to=lockdown trigger=heartbeat_loss)
		dt=${ts:+$((ts - t0))}
		if [ -z "${seen[$i]:-}" ]; then
			fail "$(h "$i"): not in lockdown $((bound + 8000)) ms after etcd died (mode '$(fleet_mode "$i")')"
		elif [ "${dt:-${seen[$i]}}" -le "$bound" ]; then
			pass "$(h "$i"): lockdown ${dt:-?} ms after etcd died (audit; seen in pins at ${seen[$i]} ms; bound $bound)"
		else
			fail "$(h "$i"): lockdown ${dt:-?} ms after etcd died (audit; pins ${seen[$i]} ms) > $bound"
		fi
	done
	for i in "${NODES[@]}"; do
		note "$(h "$i"): $(audit_last "$i" transition trigger=heartbeat_loss)"
		blocked_ping "$i" "heartbeat-loss lockdown"
	done
	fleet_pc 1 status >"$FL_WORK/st1.out" 2>&1
	grep -E '^(mode|mode cause|fleet|heartbeat|dead-man):' "$FL_WORK/st1.out" | sed 's/^/      | /'
	if cli "$FL_WORK/down.out" status; then
		fail "fleet status exits 0 with etcd down"
	else
		pass "fleet status with etcd down: exit $CLI_RC ($(tail -n 1 "$FL_WORK/down.out"))"
	fi

	t0=$(now_ms)
	if fleet_etcd_start; then
		pass "etcd restarted on the same data dir ($(($(now_ms) - t0)) ms)"
	else
		fail "etcd did not restart"
		return 1
	fi
	t0=$(now_ms)
	seen=()
	deadline=$((t0 + LIFT_BOUND_S * 1000))
	pending=${#NODES[@]}
	while [ "$pending" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do
		for i in "${NODES[@]}"; do
			[ -n "${seen[$i]:-}" ] && continue
			if [ "$(fleet_mode "$i")" = normal ]; then
				seen[$i]=$(($(now_ms) - t0))
				pending=$((pending - 1))
			fi
		done
		sleep 0.1
	done
	for i in "${NODES[@]}"; do
		if [ -n "${seen[$i]:-}" ]; then
			pass "$(h "$i"): back to normal ${seen[$i]} ms after etcd answered (bound ${LIFT_BOUND_S} s)"
			note "$(audit_last "$i" transition to=normal)"
		else
			fail "$(h "$i"): not normal ${LIFT_BOUND_S} s after etcd came back (mode '$(fleet_mode "$i")')"
			grep -v libbpf "$(fleet_agent_log "$i")" | tail -n 5 | sed 's/^/      | /'
		fi
	done
	t=$(audit_n 1 transition to=normal trigger=heartbeat_restored)
	pass_if "$(h 1) audit: transition to normal, trigger heartbeat_restored" \
		"$(h 1) audit: no transition to normal with trigger heartbeat_restored" [ "$t" -gt 0 ]
	for i in "${NODES[@]}"; do
		allowed_ping "$i" "lifted"
	done
	if fleet_wait_alive 15 "${NODES[@]}"; then
		pass "fleet status: every agent alive again"
	else
		fail "fleet status: not every agent alive 15 s after etcd came back"
	fi
	for i in "${NODES[@]}"; do
		expect_status "$i" true normal normal false "after etcd came back"
	done
}

# ---- 7. agent killed ----

test_deadman()
{
	local t0 i dt=
	local bound=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS))
	ensure_baseline || return 1
	allowed_ping 1 "agent alive"
	fleet_agent_stop 1 KILL
	t0=$(now_ms)
	pass "$(h 1)'s portcullisd SIGKILLed"
	for ((i = 0; i < 60; i++)); do
		if ! fleet_ping_fast 1 >/dev/null 2>&1; then
			dt=$(($(now_ms) - t0))
			break
		fi
		sleep 0.05
	done
	if [ -z "$dt" ]; then
		fail "ping to $(h 1) never dropped after its agent died"
	elif [ "$dt" -le "$bound" ]; then
		pass "ping to $(h 1) dropped $dt ms after its agent died (kernel dead-man; bound $bound)"
	else
		fail "ping to $(h 1) dropped only $dt ms after its agent died (> $bound)"
	fi
	blocked_ping 1 "dead-man, no agent"
	allowed_ping 2 "other nodes unaffected"
	fleet_pc 1 status >"$FL_WORK/dm.out" 2>&1
	grep -E '^(mode|dead-man|agent):' "$FL_WORK/dm.out" | sed 's/^/      | /'
	if grep -q 'dead-man:.*TRIPPED' "$FL_WORK/dm.out"; then
		pass "$(h 1) status: dead-man TRIPPED"
	else
		fail "$(h 1) status: no 'dead-man: ... TRIPPED'"
	fi
	# Its lease (TTL timeout + 1 s) runs out: no longer alive.
	for ((i = 0; i < 40; i++)); do
		[ "$(status_row 1 | awk '{ print $1 }')" = false ] && break
		sleep 0.25
	done
	if [ "$(status_row 1 | awk '{ print $1 }')" = false ]; then
		pass "fleet status $(h 1): alive false once its lease expired"
	else
		fail "fleet status $(h 1): still '$(status_row 1)' 10 s after its agent died"
	fi
	t0=$(now_ms)
	start_agent 1 || return 1
	if fleet_wait_mode 1 normal "$LIFT_BOUND_S"; then
		pass "$(h 1): restarted agent lifted the dead-man lockdown in $(($(now_ms) - t0)) ms"
	else
		fail "$(h 1): mode '$(fleet_mode 1)' $LIFT_BOUND_S s after the agent restarted"
	fi
	i=$(audit_n 1 transition trigger=deadman)
	pass_if "$(h 1) audit: transition with trigger deadman at restart ($i)" \
		"$(h 1) audit: no transition with trigger deadman" [ "$i" -gt 0 ]
	note "$(audit_last 1 transition trigger=deadman)"
	allowed_ping 1 "lifted"
	if fleet_wait_alive 10 1; then
		pass "fleet status $(h 1): alive again"
	else
		fail "fleet status $(h 1): not alive 10 s after the restart"
	fi
}

# ---- etcd as a 3-member cluster: members die, the fleet holds ----

HA_ON=0			# 1 while the lab runs the cluster (ha_enter .. ha_leave)
HA_LIFT_BOUND_S=${FLEET_HA_LIFT_BOUND_S:-20}	# quorum back -> desired mode
HA_SETUP_BOUND_S=20	# members started -> healthy

# probe I: "MODE KEEPALIVES" of node I from one `portcullis status`.
probe()
{
	fleet_pc "$1" status 2>/dev/null | awk '
		$1 == "mode:" && m == "" { m = $2 }
		$1 == "fleet:" { for (j = 1; j < NF; j++) if ($j == "keep-alives") { k = $(j + 1); sub(/,$/, "", k) } }
		END { print (m == "" ? "?" : m), (k == "" ? 0 : k) }'
}

# audit_field LINE FIELD: one field of an audit line.
audit_field()
{
	"$PY" -c 'import json,sys; print(json.loads(sys.argv[1]).get(sys.argv[2], ""))' "$1" "$2" 2>/dev/null
}

# ha_stop_agents: TERM every agent at once, then reap each.
ha_stop_agents()
{
	local i
	for i in "${NODES[@]}"; do
		[ -n "${FL_AGENT_PID[$i]:-}" ] && kill -s TERM "${FL_AGENT_PID[$i]}" 2>/dev/null
	done
	for i in "${NODES[@]}"; do
		fleet_agent_stop "$i" TERM
	done
}

# ha_enter: from the single etcd (stopped, its data dir kept) to a
# 3-member cluster restored from its snapshot (same keys, same
# revisions: no agent sees a value vanish), agents restarted with the
# three members as fleet.endpoints.
ha_enter()
{
	local i k t0 eps
	ensure_baseline || return 1
	t0=$(now_ms)
	ha_stop_agents
	if ! fleet_etcdctl snapshot save "$FL_WORK/ha-pre.db" >"$FL_WORK/snap.out" 2>&1; then
		fail "etcdctl snapshot save of the single etcd: $(tail -n 1 "$FL_WORK/snap.out")"
		return 1
	fi
	HA_ON=1		# from here on, ha_leave puts the single etcd back
	fleet_etcd_stop TERM
	fleet_cluster_init "$FL_WORK/ha-pre.db" || { fail "cluster data dirs"; return 1; }
	for k in 1 2 3; do
		fleet_member_start "$k" || { fail "member $k did not start"; return 1; }
	done
	if ! fleet_cluster_wait_healthy "$HA_SETUP_BOUND_S"; then
		fail "the 3 members not healthy within $HA_SETUP_BOUND_S s"
		return 1
	fi
	FL_CLI_ENDPOINTS=$(fleet_cluster_locals 1 2 3)
	eps=$(fleet_cluster_urls)
	for i in "${NODES[@]}"; do
		fleet_agent_config "$i" "${GROUPS_OF[$i]}" \
			"s|^\( *endpoints:\).*|\1 [$eps]|" || { fail "$(h "$i"): agent config"; return 1; }
	done
	for i in "${NODES[@]}"; do
		fleet_agent_start "$i" || { fail "$(h "$i"): agent did not start"; return 1; }
	done
	for i in "${NODES[@]}"; do
		fleet_agent_wait_ready "$i" 30 || { fail "$(h "$i"): agent not ready on the cluster"; return 1; }
	done
	pass "3-member cluster up (members $(for k in 1 2 3; do printf 'm%s pid %s, ' "$k" "${FL_MEMBER_PID[$k]}"; done | sed 's/, $//'); single etcd's snapshot restored), agents restarted on it, in $(($(now_ms) - t0)) ms"
	note "fleet.endpoints: [$eps]"
	note "management: $(grep 'name: etcd,' "$FL_WORK/policy.yaml" | sed 's/^ *- *//')"
}

# ha_leave: back to the single etcd, with the cluster's data (a snapshot
# of a member restored into its data dir, so no agent sees a replay),
# every member stopped by PID and its data dir removed, the agents'
# configs back to the single endpoint. The agents are left stopped
# (ensure_baseline starts them). Nothing to do unless ha_enter ran.
ha_leave()
{
	local k snap=
	[ "$HA_ON" = 1 ] || return 0
	HA_ON=0
	ha_stop_agents
	for k in 1 2 3; do
		fleet_member_alive "$k" || continue
		if FL_CLI_ENDPOINTS=$(fl_member_local "$k") fleet_etcdctl snapshot save \
			"$FL_WORK/ha-post.db" >"$FL_WORK/snap.out" 2>&1; then
			snap=$FL_WORK/ha-post.db
			break
		fi
	done
	fleet_cluster_down
	FL_CLI_ENDPOINTS=
	if [ -n "$snap" ] && fleet_etcd_restore "$snap"; then
		note "back to the single etcd, with the cluster's data (snapshot of member $k)"
	else
		note "back to the single etcd on its own data (no snapshot of the cluster: values written meanwhile may be refused as replays)"
	fi
	for k in "${NODES[@]}"; do
		fleet_agent_config "$k" "${GROUPS_OF[$k]}" || { fail "$(h "$k"): agent config"; return 1; }
	done
	fleet_etcd_alive || fleet_etcd_start
}

test_ha()
{
	local t0 t1 i k n m ka dt ts lead second survivor line deadline pending
	local bound=$((HB_TIMEOUT_MS + SECURE_MARGIN_MS)) hold_ms=$((2 * HB_TIMEOUT_MS)) tstart
	local -A ka0=() kac=() ka_first=() ka_last=() ka_gap=() left=() hbl0=() link0=() seen=()
	tstart=$(now_ms)
	ha_enter || return 1

	note "1. the cluster healthy: every agent up and alive"
	# The agents were down for the switch-over, longer than the timeout:
	# the dead-man switch locked their nodes down; they lift by themselves.
	t0=$(now_ms)
	for i in "${NODES[@]}"; do
		if fleet_wait_mode "$i" normal "$LIFT_BOUND_S"; then
			line=$(audit_last "$i" transition)
			pass "$(h "$i"): normal $(($(now_ms) - t0)) ms after the agents were ready on the cluster (last transition: $(audit_field "$line" from) -> $(audit_field "$line" to), $(audit_field "$line" trigger))"
		else
			fail "$(h "$i"): mode '$(fleet_mode "$i")' $LIFT_BOUND_S s after the agents were ready on the cluster"
		fi
	done
	if fleet_wait_alive 15 "${NODES[@]}"; then
		pass "fleet status: every agent alive on the cluster"
	else
		fail "fleet status: not every agent alive 15 s after the restart on the cluster"
	fi
	for i in "${NODES[@]}"; do
		expect_status "$i" true normal normal false "on the cluster"
	done
	show fleet_cli status
	show fleet_etcdctl endpoint status -w table
	for i in "${NODES[@]}"; do
		line=$(audit_last "$i" fleet_link state=watching)
		pass_if "$(h "$i"): watch on member 1 $(fl_member_url 1) (its first endpoint)" \
			"$(h "$i"): watch on '$(audit_field "$line" detail)', expected member 1 $(fl_member_url 1)" \
			[ "$(audit_field "$line" detail)" = "$(fl_member_url 1)" ]
	done

	note "2. SIGKILL member 1, every agent's first endpoint: no heartbeat loss"
	lead=$(fleet_cluster_leader)
	if [ "${FLEET_HA_KILL_LEADER:-0}" = 1 ]; then
		# Explore: the first endpoint is also the leader (an election too).
		if [ -n "$lead" ] && [ "$lead" != 1 ]; then
			FL_CLI_ENDPOINTS=$(fl_member_local "$lead") fleet_etcdctl \
				move-leader "$(fleet_member_id 1)" >"$FL_WORK/move.out" 2>&1
			note "FLEET_HA_KILL_LEADER=1: leadership moved from member $lead to member 1: $(tail -n 1 "$FL_WORK/move.out")"
		fi
	elif [ "$lead" = 1 ]; then
		# The first endpoint's death is the client-side failover under
		# test; a leader's death adds a raft election on top.
		FL_CLI_ENDPOINTS=$(fl_member_local 1) fleet_etcdctl \
			move-leader "$(fleet_member_id 2)" >"$FL_WORK/move.out" 2>&1
		note "member 1 was the leader: moved to member 2 first (FLEET_HA_KILL_LEADER=1 kills a leading member 1): $(tail -n 1 "$FL_WORK/move.out")"
	fi
	lead=$(fleet_cluster_leader)
	note "leader: member ${lead:-?}"
	for i in "${NODES[@]}"; do
		read -r m ka <<<"$(probe "$i")"
		ka0[$i]=$ka
		kac[$i]=$ka
		hbl0[$i]=$(audit_n "$i" transition trigger=heartbeat_loss)
		link0[$i]=$(audit_n "$i" fleet_link state=watching)
	done
	t0=$(now_ms)
	k=${FL_MEMBER_PID[1]}
	fleet_member_stop 1 KILL
	pass "member 1 $(fl_member_url 1) (pid $k) SIGKILLed; watching the nodes for $hold_ms ms (2 x heartbeat timeout)"
	FL_CLI_ENDPOINTS=$(fleet_cluster_locals 2 3)
	while :; do
		for i in "${NODES[@]}"; do
			read -r m ka <<<"$(probe "$i")"
			dt=$(($(now_ms) - t0))
			[ "$m" != normal ] && [ -z "${left[$i]:-}" ] && left[$i]="'$m' at $dt ms"
			if [ "$ka" -gt "${kac[$i]}" ]; then
				[ -n "${ka_first[$i]:-}" ] || ka_first[$i]=$dt
				if [ -n "${ka_last[$i]:-}" ] && [ $((dt - ka_last[$i])) -gt "${ka_gap[$i]:-0}" ]; then
					ka_gap[$i]=$((dt - ka_last[$i]))
				fi
				ka_last[$i]=$dt
				kac[$i]=$ka
			fi
		done
		[ "$(($(now_ms) - t0))" -lt "$hold_ms" ] || break
		sleep 0.05
	done
	for i in "${NODES[@]}"; do
		if [ -n "${left[$i]:-}" ]; then
			fail "$(h "$i"): left normal after member 1 died: ${left[$i]}"
		else
			pass "$(h "$i"): normal throughout the $hold_ms ms after member 1 died"
		fi
		n=$((kac[$i] - ka0[$i]))
		if [ -n "${ka_first[$i]:-}" ] && [ "$n" -ge $((hold_ms / (HB_TIMEOUT_MS / 4) / 2)) ]; then
			pass "$(h "$i"): keep-alives went on: first answered ${ka_first[$i]} ms after the kill, last seen at ${ka_last[$i]} ms, ${ka0[$i]} -> ${kac[$i]} (+$n in $hold_ms ms; widest gap seen ${ka_gap[$i]:-0} ms)"
		else
			fail "$(h "$i"): keep-alives ${ka0[$i]} -> ${kac[$i]} in $hold_ms ms after the kill (first answered at '${ka_first[$i]:-never}' ms)"
		fi
		n=$(audit_n "$i" transition trigger=heartbeat_loss)
		pass_if "$(h "$i") audit: no heartbeat_loss transition" \
			"$(h "$i") audit: heartbeat_loss transition after member 1 died: $(audit_last "$i" transition trigger=heartbeat_loss)" \
			[ "$n" -eq "${hbl0[$i]}" ]
		if [ "$(audit_n "$i" fleet_link state=watching)" -gt "${link0[$i]}" ]; then
			line=$(audit_last "$i" fleet_link state=watching)
			ts=$(fleet_audit_ts_ms "$(fl_audit "$i")" "$t0" fleet_link state=watching)
			case $(audit_field "$line" detail) in
			"$(fl_member_url 2)" | "$(fl_member_url 3)")
				pass "$(h "$i"): watch moved to $(audit_field "$line" detail) ${ts:+$((ts - t0)) ms after the kill}" ;;
			*) fail "$(h "$i"): watch now on '$(audit_field "$line" detail)', not a surviving member" ;;
			esac
			note "$(audit_last "$i" fleet_link state=broken)"
		else
			fail "$(h "$i"): its watch did not move off member 1 (no new fleet_link watching line)"
		fi
	done
	if fleet_wait_alive 5 "${NODES[@]}"; then
		pass "fleet status (members 2, 3): every agent still alive"
	else
		fail "fleet status (members 2, 3): not every agent alive after member 1 died"
		show fleet_cli status
	fi

	note "3. fleet quarantine $(h 1), written through member 2 alone"
	t0=$(now_ms)
	FL_CLI_ENDPOINTS=$(fl_member_local 2) cli_ok "through $(fl_member_local 2), member 1 dead" \
		quarantine "$(h 1)" || return 1
	wait_mode_timed 1 quarantine "$t0" "$COMMAND_BOUND_MS" "fleet quarantine, member 1 dead"
	ts=$(fleet_audit_ts_ms "$(fl_audit 1)" "$t0" transition trigger=fleet to=quarantine)
	[ -n "$ts" ] && note "audit: transition stamped $((ts - t0)) ms after the CLI started"
	blocked_ping 1 "quarantined"
	allowed_ping 2 "not quarantined"
	expect_mode 2 normal "another host's quarantine"
	expect_mode 3 normal "another host's quarantine"
	read -r m ka <<<"$(probe 1)"
	sleep "$((HB_TIMEOUT_MS / 1000))"
	read -r m n <<<"$(probe 1)"
	pass_if "$(h 1) in quarantine: keep-alives $ka -> $n in $HB_TIMEOUT_MS ms (management names members 2 and 3)" \
		"$(h 1) in quarantine: keep-alives $ka -> $n in $HB_TIMEOUT_MS ms (mode $m)" [ "$n" -gt "$ka" ]

	note "4. SIGKILL a second member: 1 of 3 left, no quorum: fail secure"
	lead=$(fleet_cluster_leader)
	case $lead in 2 | 3) second=$lead ;; *) second=2 ;; esac
	survivor=$((5 - second))
	for i in "${NODES[@]}"; do
		hbl0[$i]=$(audit_n "$i" transition trigger=heartbeat_loss)
	done
	seen=()
	left=()
	t0=$(now_ms)
	k=${FL_MEMBER_PID[$second]}
	fleet_member_stop "$second" KILL
	pass "member $second $(fl_member_url "$second") (pid $k, ${lead:+the leader: member $lead}) SIGKILLed; member $survivor alone"
	FL_CLI_ENDPOINTS=$(fleet_cluster_locals "$survivor")
	deadline=$((t0 + bound + 8000))
	pending=2
	while [ "$(now_ms)" -lt "$deadline" ]; do
		for i in "${NODES[@]}"; do
			m=$(fleet_mode "$i")
			dt=$(($(now_ms) - t0))
			if [ "$i" = 1 ]; then
				[ "$m" != quarantine ] && [ -z "${left[1]:-}" ] && left[1]="'$m' at $dt ms"
				continue
			fi
			if [ -z "${seen[$i]:-}" ] && [ "$m" = lockdown ]; then
				seen[$i]=$dt
				pending=$((pending - 1))
			fi
		done
		[ "$pending" -gt 0 ] || [ "$(($(now_ms) - t0))" -lt "$bound" ] || break
		sleep 0.05
	done
	if [ -n "${left[1]:-}" ]; then
		fail "$(h 1): left quarantine after the quorum was lost: ${left[1]}"
	else
		pass "$(h 1): stayed in quarantine (heartbeat loss never lowers it) for $(($(now_ms) - t0)) ms"
	fi
	for i in "${NODES[@]}"; do
		[ "$i" = 1 ] && continue
		ts=$(fleet_audit_ts_ms "$(fl_audit "$i")" "$t0" transition to=lockdown trigger=heartbeat_loss)
		dt=${ts:+$((ts - t0))}
		if [ -z "${seen[$i]:-}" ]; then
			fail "$(h "$i"): not in lockdown $((bound + 8000)) ms after the quorum was lost (mode '$(fleet_mode "$i")')"
		elif [ "${dt:-${seen[$i]}}" -le "$bound" ]; then
			pass "$(h "$i"): lockdown ${dt:-?} ms after the quorum was lost (audit; seen in pins at ${seen[$i]} ms; bound $bound)"
		else
			fail "$(h "$i"): lockdown ${dt:-?} ms after the quorum was lost (audit; pins ${seen[$i]} ms) > $bound"
		fi
		note "$(audit_last "$i" transition trigger=heartbeat_loss)"
	done
	fleet_pc 1 status >"$FL_WORK/st1.out" 2>&1
	grep -E '^(mode|mode cause|fleet|heartbeat):' "$FL_WORK/st1.out" | sed 's/^/      | /'
	for i in "${NODES[@]}"; do
		note "$(h "$i") audit: $(audit_n "$i" fleet_link state=broken) fleet_link broken line(s) so far; the last fleet_link: $(audit_last "$i" fleet_link | cut -c1-110)"
	done
	blocked_ping 1 "quarantine"
	blocked_ping 2 "heartbeat-loss lockdown"
	t1=$(now_ms)
	if fleet_etcdctl --command-timeout 2s put "$FL_KEY_PREFIX/ha-probe" x >"$FL_WORK/put.out" 2>&1; then
		fail "etcdctl put through member $survivor succeeded without quorum"
	else
		pass "etcdctl put through member $survivor refused without quorum after $(($(now_ms) - t1)) ms: $(tail -n 1 "$FL_WORK/put.out" | cut -c1-100)"
	fi
	t1=$(now_ms)
	if cli "$FL_WORK/rel.out" release "$(h 1)"; then
		fail "fleet release $(h 1) through member $survivor: exit 0 without quorum"
	else
		pass "fleet release $(h 1) through member $survivor: exit $CLI_RC after $(($(now_ms) - t1)) ms ($(tail -n 1 "$FL_WORK/rel.out" | cut -c1-100))"
	fi
	expect_mode 1 quarantine "no release without quorum"

	note "5. both members restarted on their data dirs: quorum back, nodes lift to what the fleet demands"
	t0=$(now_ms)
	fleet_member_start 1 || fail "member 1 did not restart"
	fleet_member_start "$second" || fail "member $second did not restart"
	if fleet_cluster_wait_healthy "$HA_SETUP_BOUND_S"; then
		t1=$(now_ms)
		pass "quorum back: all 3 members healthy $((t1 - t0)) ms after the restart"
	else
		fail "members not healthy $HA_SETUP_BOUND_S s after the restart"
		return 1
	fi
	FL_CLI_ENDPOINTS=$(fleet_cluster_locals 1 2 3)
	seen=()
	left=()
	deadline=$((t1 + HA_LIFT_BOUND_S * 1000))
	pending=2
	while [ "$pending" -gt 0 ] && [ "$(now_ms)" -lt "$deadline" ]; do
		for i in "${NODES[@]}"; do
			m=$(fleet_mode "$i")
			dt=$(($(now_ms) - t1))
			if [ "$i" = 1 ]; then
				[ "$m" != quarantine ] && [ -z "${left[1]:-}" ] && left[1]="'$m' at $dt ms"
				continue
			fi
			if [ -z "${seen[$i]:-}" ] && [ "$m" = normal ]; then
				seen[$i]=$dt
				pending=$((pending - 1))
			fi
		done
		sleep 0.1
	done
	for i in "${NODES[@]}"; do
		[ "$i" = 1 ] && continue
		if [ -n "${seen[$i]:-}" ]; then
			pass "$(h "$i"): back to normal ${seen[$i]} ms after the quorum was back ($((seen[$i] + t1 - t0)) ms after the restart; bound $HA_LIFT_BOUND_S s)"
			note "$(audit_last "$i" transition to=normal)"
		else
			fail "$(h "$i"): not normal $HA_LIFT_BOUND_S s after the quorum was back (mode '$(fleet_mode "$i")')"
			grep -v libbpf "$(fleet_agent_log "$i")" | tail -n 5 | sed 's/^/      | /'
		fi
	done
	hold_mode 1 quarantine 2 "quorum back: the lift stops at the fleet's quarantine"
	[ -n "${left[1]:-}" ] && fail "$(h 1): left quarantine while the quorum came back: ${left[1]}"
	if fleet_wait_alive 15 "${NODES[@]}"; then
		pass "fleet status: every agent alive again"
	else
		fail "fleet status: not every agent alive 15 s after the quorum was back"
	fi
	expect_status 1 true quarantine quarantine false "after the quorum came back"
	expect_status 2 true normal normal false "after the quorum came back"
	expect_status 3 true normal normal false "after the quorum came back"
	t0=$(now_ms)
	cli_ok "quorum back" release "$(h 1)" || return 1
	wait_mode_timed 1 normal "$t0" "$COMMAND_BOUND_MS" "fleet release on the healed cluster"
	allowed_ping 1 "released"
	expect_status 1 true normal normal false "released"
	note "ha: $(($(now_ms) - tstart)) ms in all (the single etcd comes back at the next test's start, or teardown)"
}

# ---- main ----

setup()
{
	local i t0
	t0=$(now_ms)
	fleet_lab_init || return 1
	fleet_lab_up "${#NODES[@]}" || return 1
	fleet_etcd_start || return 1
	fleet_keygen || return 1
	fleet_heartbeat_start || return 1
	for i in "${NODES[@]}"; do
		fleet_agent_config "$i" "${GROUPS_OF[$i]}" || return 1
	done
	for i in "${NODES[@]}"; do
		fleet_agent_start "$i" || return 1
	done
	for i in "${NODES[@]}"; do
		fleet_agent_wait_ready "$i" 30 || return 1
	done
	note "lab $FL_ID: etcd $FL_ETCD_URL (pid $FL_ETCD_PID), heartbeat publisher (pid $FL_HB_WRAP), ${#NODES[@]} agents, up in $(($(now_ms) - t0)) ms; work dir $FL_WORK"
}

main()
{
	local t tests=("$@")
	[ ${#tests[@]} -gt 0 ] || tests=("${ALL_TESTS[@]}")
	[ "$(id -u)" -eq 0 ] || { echo "fleet e2e: must run as root" >&2; exit 1; }
	for t in "${tests[@]}"; do
		declare -F "test_$t" >/dev/null || {
			echo "fleet e2e: no such test '$t' (have: ${ALL_TESTS[*]})" >&2
			exit 2
		}
	done
	trap fleet_lab_down EXIT
	trap 'exit 130' INT TERM
	if ! setup; then
		fail "lab setup"
		summary
		exit 1
	fi
	for t in "${tests[@]}"; do
		CUR=$t
		echo "== $t"
		"test_$t"
	done
	CUR=summary
	summary
}

main "$@"

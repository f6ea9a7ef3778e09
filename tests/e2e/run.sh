#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# End-to-end suite: portcullisd enforcing in a namespace lab (tests/lab.sh).
#
#   bash tests/e2e/run.sh [TEST...]     (make check-e2e; root)
#
# One PASS/FAIL line per check, a summary, non-zero exit on any failure.
# Every check of a denial has an allowed twin, so a datapath that drops
# everything fails too; the last test detaches and shows the denied traffic
# passing, so the denials were ours. TESTs default to all, in order:
# baseline start normal counters lockdown quarantine restart badpolicy
# sighup detach (cli runs before start). E2E_XDP_MODE=native|generic picks the XDP mode (auto).

set -u
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK_NAME="e2e"
CHECK_WIDTH=10
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"

ALL_TESTS=(baseline cli start normal counters lockdown quarantine restart
	badpolicy sighup detach)

status_says() { pc status 2>&1 | grep -qi -- "$1"; }
rules_list() { pc rules 2>&1 | grep -qw -- "$1"; }

mode_set()
{
	pc mode "$1" >"$WORK/mode.out" 2>&1 || {
		fail "portcullis mode $1 failed: $(tail -n 1 "$WORK/mode.out")"
		return 1
	}
}

# The probes every mode test looks at.
web4() { tcp_probe peer "$LAB_NODE_PEER4" 8080; }
web6() { tcp_probe peer "$LAB_NODE_PEER6" 8080; }
alt4() { tcp_probe peer "$LAB_NODE_PEER4" 9090; }
alt6() { tcp_probe peer "$LAB_NODE_PEER6" 9090; }
ssh4() { tcp_probe mgmt "$LAB_NODE_MGMT4" 22; }
ssh6() { tcp_probe mgmt "$LAB_NODE_MGMT6" 22; }
out4() { tcp_probe node "$LAB_PEER4" 7000; }
ping4() { ping_probe peer "$LAB_NODE_PEER4"; }
ping6() { ping_probe peer "$LAB_NODE_PEER6"; }
bad_web() { tcp_probe peer "$LAB_NODE_PEER4" 8080 --source "$LAB_PEER_BAD4"; }

# expect_cli RC REGEX CMD...: CMD exits with RC and says REGEX.
expect_cli()
{
	local rc=$1 re=$2 got
	shift 2
	"$@" >"$WORK/cli.out" 2>&1
	got=$?
	if [ "$got" -eq "$rc" ] && grep -Eq -- "$re" "$WORK/cli.out"; then
		pass "$* -> rc $rc, '$re'"
	else
		fail "$* -> rc $got (want $rc): $(head -n 1 "$WORK/cli.out")"
	fi
}

# Clear errors before anything is loaded.
test_cli()
{
	expect_cli 1 'nothing loaded at' pc status
	expect_cli 1 'nothing loaded at' pc mode lockdown
	expect_cli 2 'usage: portcullis mode' pc mode sideways
	expect_cli 2 'unknown command' pc frobnicate
	expect_cli 0 'Commands:' pc --help
	expect_cli 1 'must run as root' setpriv --reuid=65534 --regid=65534 \
		--clear-groups "$PCCLI" --pin-dir "$PIN_DIR" status
	expect_cli 2 'give one of --config FILE or --policy FILE' "$PCD" --pin-dir "$PIN_DIR"
	expect_cli 1 "policy refused: .*bad-policy.yaml" bad_policy_daemon
	[ ! -e "$PIN_DIR" ] && pass "a refused first start (no state, no pins) leaves no pins" ||
		fail "a refused start left $PIN_DIR behind"
}

# The daemon's first start (no state dir yet) with a policy that does not
# parse. (A missing interface is no refusal: it is attached when it
# appears; see tests/e2e/failsecure/startfail.sh.)
bad_policy_daemon()
{
	sed 's/^defaults: .*/defaults: {ingress: maybe, egress: allow}/' "$LAB_POLICY" \
		>"$WORK/bad-policy.yaml"
	timeout 10 nsenter --net="/run/netns/$LAB_NODE" -- \
		"$PCD" --policy "$WORK/bad-policy.yaml" --pin-dir "$PIN_DIR" \
		--state-dir "$WORK/bad-policy-state"
}

test_baseline()
{
	# Without portcullis everything in the lab gets through.
	allowed "peer -> node tcp/9090 (no enforcement yet)" alt4
	allowed "peer 203.0.113.5 -> node tcp/8080 (no enforcement yet)" bad_web
	allowed "peer -> node ping (no enforcement yet)" ping4
	allowed "node -> peer tcp/7000 (no enforcement yet)" out4
}

test_start()
{
	if daemon_start; then
		pass "portcullisd ready: $(grep -m1 'portcullisd: ready' "$DAEMON_LOG")"
	else
		fail "portcullisd did not become ready (log: $(tail -n 1 "$DAEMON_LOG"))"
		return 1
	fi
	check "portcullis status" pc status
	show pc status
	if grep -qi normal "$WORK/show.out"; then
		pass "status reports mode normal"
	else
		fail "status does not mention mode normal"
	fi
}

test_normal()
{
	allowed "peer -> node tcp/8080 v4 (rule web)" web4
	allowed "peer -> node tcp/8080 v6 (rule web)" web6
	blocked "peer -> node tcp/9090 v4 (default deny, listener up)" alt4
	blocked "peer -> node tcp/9090 v6 (default deny, listener up)" alt6
	allowed "node -> peer tcp/7000 v4 (egress default allow + reply)" out4
	allowed "node -> peer tcp/7000 v6 (egress default allow + reply)" \
		tcp_probe node "$LAB_PEER6" 7000
	allowed "peer -> node ping v4 (rule ping-in)" ping4
	allowed "peer -> node ping v6 (rule ping6-in)" ping6
	allowed "peer -> node udp/5000 v4 (rule udp-in)" \
		udp_probe peer "$LAB_NODE_PEER4" 5000
	allowed "peer -> node udp/5000 v6 (rule udp-in)" \
		udp_probe peer "$LAB_NODE_PEER6" 5000
	blocked "peer -> node udp/5001 (default deny, listener up)" \
		udp_probe peer "$LAB_NODE_PEER4" 5001
	allowed "node -> peer udp/7001 (egress default allow + reply)" \
		udp_probe node "$LAB_PEER4" 7001
	allowed "mgmt -> node tcp/22 v4 (management)" ssh4
	allowed "mgmt -> node tcp/22 v6 (management)" ssh6
	blocked "peer -> node tcp/22 (management is mgmt's address only)" \
		tcp_probe peer "$LAB_NODE_PEER4" 22
	blocked "peer 203.0.113.5 -> node tcp/8080 (deny blocked beats web)" bad_web
	allowed "peer 198.51.100.2 -> node tcp/8080 (same port, other source)" web4
	blocked "peer 203.0.113.5 -> node ping (deny blocked beats ping-in)" \
		ping_probe peer "$LAB_NODE_PEER4" -I "$LAB_PEER_BAD4"
	blocked "node -> peer 203.0.113.5 tcp/7000 (deny blocked, egress)" \
		tcp_probe node "$LAB_PEER_BAD4" 7000
}

# rule_packets NAME < rules.json: the packets of one rule, -1 if absent.
rule_packets()
{
	"$PY" -c '
import json, sys
name = sys.argv[1]
try:
    rules = json.load(sys.stdin)
except ValueError as e:
    print(-2); sys.exit(0)
print(next((int(r.get("packets", 0)) for r in rules
            if isinstance(r, dict) and r.get("name") == name), -1))
' "$1"
}

# reason_packets REASON: ingress packets of one reason in `portcullis status`.
reason_packets()
{
	pc status 2>/dev/null | awk -v r="$1" '$1 == r { print $2; f = 1 }
		END { if (!f) print -1 }'
}

counter_positive()
{
	local name=$1 n
	n=$(rule_packets "$name" <"$WORK/rules.json")
	if [ "$n" -gt 0 ] 2>/dev/null; then
		pass "rules --json: $name packets=$n > 0"
	else
		fail "rules --json: $name packets=$n, expected > 0"
	fi
}

test_counters()
{
	local before after n
	web4 >/dev/null 2>&1
	bad_web >/dev/null 2>&1
	if pc rules --json >"$WORK/rules.json" 2>"$WORK/rules.err"; then
		pass "portcullis rules --json"
	else
		fail "portcullis rules --json failed: $(tail -n 1 "$WORK/rules.err")"
	fi
	sed 's/^/      | /' "$WORK/rules.json"
	counter_positive web
	counter_positive blocked
	counter_positive udp-in
	check "portcullis rules (table) lists web" rules_list web
	before=$(reason_packets drop_default)
	alt4 >/dev/null 2>&1
	alt4 >/dev/null 2>&1
	after=$(reason_packets drop_default)
	if [ "$before" -ge 0 ] && [ "$after" -gt "$before" ]; then
		pass "status drop_default moved ($before -> $after) after denied tcp/9090"
	else
		fail "status drop_default did not move ($before -> $after)"
	fi
	n=$(reason_packets drop_deny_rule)
	if [ "$n" -gt 0 ]; then
		pass "status drop_deny_rule=$n > 0 after traffic from 203.0.113.5"
	else
		fail "status drop_deny_rule=$n, expected > 0"
	fi
	show pc status
}

test_lockdown()
{
	hold_begin web peer "$LAB_NODE_PEER4" 8080 || return 1
	mode_set lockdown || return 1
	pass "portcullis mode lockdown"
	check "status reports lockdown" status_says lockdown
	allowed "peer -> node tcp/8080 (web lists lockdown)" web4
	allowed "mgmt -> node tcp/22 v4 (management)" ssh4
	allowed "mgmt -> node tcp/22 v6 (management)" ssh6
	blocked "peer -> node ping v4 (ping-in is normal only)" ping4
	blocked "peer -> node ping v6 (ping6-in is normal only)" ping6
	blocked "peer -> node udp/5000 (udp-in is normal only)" \
		udp_probe peer "$LAB_NODE_PEER4" 5000
	blocked "node -> peer tcp/7000 (lockdown default deny)" out4
	hold_end web kept
	mode_set normal || return 1
	allowed "peer -> node ping v4 after mode normal" ping4
}

test_quarantine()
{
	hold_begin out node "$LAB_PEER4" 7000 || return 1
	hold_begin in peer "$LAB_NODE_PEER4" 8080 || return 1
	mode_set quarantine || return 1
	pass "portcullis mode quarantine"
	hold_end out cut
	hold_end in cut
	allowed "mgmt -> node tcp/22 v4 in quarantine (management)" ssh4
	allowed "mgmt -> node tcp/22 v6 in quarantine (management)" ssh6
	blocked "peer -> node tcp/8080 in quarantine" web4
	blocked "peer -> node ping in quarantine" ping4
	blocked "node -> peer tcp/7000 in quarantine" out4
	mode_set normal || return 1
	pass "portcullis mode normal"
	allowed "peer -> node tcp/8080 after mode normal" web4
	allowed "node -> peer tcp/7000 after mode normal" out4
	allowed "peer -> node ping after mode normal" ping4
	blocked "peer -> node tcp/9090 after mode normal" alt4
}

# probe_loop LOG STOPFILE: allowed and denied probes in a loop, one line
# per result, until STOPFILE exists (200 rounds at most).
probe_loop()
{
	local i
	for ((i = 0; i < 200; i++)); do
		[ -e "$2" ] && break
		if tcp_probe peer "$LAB_NODE_PEER4" 8080 --timeout 3; then
			echo "allow ok"
		else
			echo "allow FAILED"
		fi
		if tcp_probe peer "$LAB_NODE_PEER4" 9090 --timeout 0.5; then
			echo "deny PASSED"
		else
			echo "deny ok"
		fi
	done >"$1" 2>/dev/null
}

test_restart()
{
	local loop alive n
	daemon_stop KILL
	pass "portcullisd SIGKILLed"
	allowed "peer -> node tcp/8080 with the daemon dead" web4
	blocked "peer -> node tcp/9090 with the daemon dead" alt4
	blocked "peer 203.0.113.5 -> node tcp/8080 with the daemon dead" bad_web
	rm -f "$WORK/loop.stop"
	probe_loop "$WORK/loop.log" "$WORK/loop.stop" &
	loop=$!
	BG_PIDS+=("$loop")
	wait_for_count "$WORK/loop.log" '^deny' 2 20 ||
		fail "probe loop did not start"
	if daemon_start; then
		pass "portcullisd restarted over the pins: $(grep -m1 'portcullisd: ready' "$DAEMON_LOG")"
		check "restart adopted the pinned state" \
			grep -q 'adopting pinned state' "$DAEMON_LOG"
	else
		fail "portcullisd restart not ready: $(tail -n 1 "$DAEMON_LOG")"
	fi
	kill -0 "$loop" 2>/dev/null && alive=yes || alive=no
	# A few more rounds with the new daemon in charge, then stop.
	n=$(grep -c '^deny' "$WORK/loop.log")
	wait_for_count "$WORK/loop.log" '^deny' $((n + 4)) 30
	touch "$WORK/loop.stop"
	wait "$loop"
	if [ "$alive" = yes ]; then
		pass "probe loop was still running when the daemon became ready"
	else
		fail "probe loop ended before the restart finished (no overlap)"
	fi
	check_loop "$WORK/loop.log"
	allowed "peer -> node tcp/8080 after restart" web4
	blocked "peer -> node tcp/9090 after restart" alt4
}

check_loop()
{
	local n bad_allow bad_deny
	n=$(grep -c . "$1")
	bad_allow=$(grep -c 'allow FAILED' "$1")
	bad_deny=$(grep -c 'deny PASSED' "$1")
	if [ "$n" -ge 12 ] && [ "$bad_allow" -eq 0 ] && [ "$bad_deny" -eq 0 ]; then
		pass "during restart: $((n / 2)) rounds, no allowed probe failed, no denied probe passed"
	else
		fail "during restart: $n results, $bad_allow allowed failed, $bad_deny denied passed"
	fi
}

# The generated bad policies, with the line of the mistake.
bad_policies()
{
	local n
	n=$(wc -l <"$LAB_POLICY")
	BAD_CIDR_LINE=$((n + 1))
	{
		cat "$LAB_POLICY"
		echo "  - {name: bad, action: allow, direction: ingress, proto: tcp, cidr: 198.51.100.300/24}"
	} >"$WORK/bad-cidr.yaml"
	printf '%s\n' 'interfaces: [pcpeer, pcmgmt]' \
		'defaults: {ingress: deny, egress: allow' \
		'rules:' '  - {name: x' >"$WORK/bad-syntax.yaml"
}

# apply_rejected FILE REGEX: apply must fail and print REGEX.
apply_rejected()
{
	local file=$1 re=$2 rc
	pc apply "$file" >"$WORK/apply.out" 2>&1
	rc=$?
	sed 's/^/      | /' "$WORK/apply.out"
	if [ "$rc" -eq 0 ]; then
		fail "apply $(basename "$file") succeeded, expected rejection"
	elif grep -Eq -- "$re" "$WORK/apply.out"; then
		pass "apply $(basename "$file") rejected (rc=$rc) naming $re"
	else
		fail "apply $(basename "$file") rc=$rc but no '$re' in its message"
	fi
}

test_badpolicy()
{
	bad_policies
	apply_rejected "$WORK/bad-cidr.yaml" "bad-cidr.yaml:$BAD_CIDR_LINE:[0-9]+"
	apply_rejected "$WORK/bad-syntax.yaml" 'bad-syntax.yaml:[0-9]+:[0-9]+'
	allowed "peer -> node tcp/8080 after rejected applies" web4
	blocked "peer -> node tcp/9090 after rejected applies (old policy)" alt4
	check "apply --dry-run of a good policy" pc apply "$WORK/open.yaml" --dry-run
	blocked "peer -> node tcp/9090 after --dry-run (nothing changed)" alt4
	check "apply of the policy allowing 9090" pc apply "$WORK/open.yaml"
	allowed "peer -> node tcp/9090 after apply (apply takes effect)" alt4
	check "apply of the lab policy again" pc apply "$LAB_POLICY"
	blocked "peer -> node tcp/9090 after re-apply" alt4
	allowed "peer -> node tcp/8080 after re-apply" web4
	# Anti-lockout: the SSH session the command runs over is judged. From
	# the peer to port 22 the lab policy's ingress default drops it.
	SSH_CONNECTION="$LAB_PEER4 50022 $LAB_NODE_PEER4 22" \
		apply_rejected "$WORK/open.yaml" 'anti-lockout.*default'
	blocked "peer -> node tcp/9090 after the anti-lockout refusal" alt4
	SSH_CONNECTION="$LAB_PEER4 50022 $LAB_NODE_PEER4 22" \
		check "apply --force overrides anti-lockout" pc apply "$WORK/open.yaml" --force
	allowed "peer -> node tcp/9090 after apply --force" alt4
	SSH_CONNECTION="$LAB_MGMT4 50022 $LAB_NODE_MGMT4 22" \
		check "apply over a management SSH session" pc apply "$LAB_POLICY"
	blocked "peer -> node tcp/9090 after apply over management SSH" alt4
}

# hup_and_wait REGEX BEFORE: SIGHUP, wait for more than BEFORE lines
# matching REGEX in the daemon log.
hup_and_wait()
{
	kill -s HUP "$DAEMON_PID" 2>/dev/null || return 1
	wait_for_count "$DAEMON_LOG" "$1" $(($2 + 1)) 5
}

# What a refused reload logs: any of these words.
HUP_ERR_RE='[Ff]ail|[Rr]efused|[Ee]rror|[Ii]nvalid'

test_sighup()
{
	local errors reloads
	daemon_alive || { fail "no daemon to send SIGHUP to"; return 1; }
	reloads=$(grep -c 'reloaded policy' "$DAEMON_LOG")
	errors=$(grep -Ec "$HUP_ERR_RE" "$DAEMON_LOG")
	printf 'interfaces: [pcpeer\nrules: {{{\n' >"$ACTIVE_POLICY"
	if hup_and_wait "$HUP_ERR_RE" "$errors"; then
		pass "SIGHUP with a corrupt policy: daemon logged '$(grep -E "$HUP_ERR_RE" "$DAEMON_LOG" | tail -n 1)'"
	else
		fail "SIGHUP with a corrupt policy: no error logged in 5s ($(tail -n 1 "$DAEMON_LOG"))"
	fi
	sleep 0.5
	check "daemon still running after the bad SIGHUP" daemon_alive
	if [ "$(grep -c 'reloaded policy' "$DAEMON_LOG")" -eq "$reloads" ]; then
		pass "corrupt policy not reported as reloaded"
	else
		fail "daemon claims it reloaded a corrupt policy"
	fi
	allowed "peer -> node tcp/8080 after bad SIGHUP (old policy)" web4
	blocked "peer -> node tcp/9090 after bad SIGHUP (old policy)" alt4
	cp "$WORK/open.yaml" "$ACTIVE_POLICY"
	if hup_and_wait 'reloaded policy' "$reloads"; then
		pass "SIGHUP with a good policy: $(grep 'reloaded policy' "$DAEMON_LOG" | tail -n 1)"
	else
		fail "SIGHUP with a good policy: no 'reloaded policy' in 5s"
	fi
	allowed "peer -> node tcp/9090 after SIGHUP allowing it" alt4
	cp "$LAB_POLICY" "$ACTIVE_POLICY"
	hup_and_wait 'reloaded policy' $((reloads + 1)) ||
		fail "SIGHUP back to the lab policy: no 'reloaded policy' in 5s"
	blocked "peer -> node tcp/9090 after SIGHUP back" alt4
}

pins_gone()
{
	[ -z "$(ls -A "$PIN_DIR" 2>/dev/null)" ]
}

test_detach()
{
	daemon_stop TERM
	pass "portcullisd stopped with SIGTERM"
	blocked "peer -> node tcp/9090 after SIGTERM (enforcement stays)" alt4
	allowed "peer -> node tcp/8080 after SIGTERM" web4
	check "portcullis detach" pc detach
	check "pins removed by detach" pins_gone
	allowed "peer -> node tcp/9090 after detach (was denied)" alt4
	allowed "peer 203.0.113.5 -> node tcp/8080 after detach (was denied)" bad_web
	allowed "node -> peer 203.0.113.5 tcp/7000 after detach (was denied)" \
		tcp_probe node "$LAB_PEER_BAD4" 7000
	allowed "peer -> node udp/5001 after detach (was denied)" \
		udp_probe peer "$LAB_NODE_PEER4" 5001
	allowed "peer -> node tcp/22 after detach (was denied)" \
		tcp_probe peer "$LAB_NODE_PEER4" 22
}

summary() { check_summary; }

# Tests after "start" need a daemon; without one, their results say nothing.
needs_daemon()
{
	case $1 in
	baseline | cli | start) return 1 ;;
	esac
}

binaries_present()
{
	local bin ok=0
	for bin in "$PCD" "$PCCLI"; do
		[ -x "$bin" ] || { fail "$bin missing: run make first"; ok=1; }
	done
	return $ok
}

# run_one TEST: runs it, starting the daemon first when nothing did yet.
run_one()
{
	local t=$1
	CUR=$t
	declare -F "test_$t" >/dev/null || { fail "no such test"; return; }
	[ "$t" = start ] && [ "$DAEMON_STARTS" -gt 0 ] && return
	if needs_daemon "$t" || [ "$t" = start ]; then
		[ "$HAVE_BINS" = yes ] || { fail "skipped: no binaries"; return; }
	fi
	if needs_daemon "$t" && [ "$DAEMON_STARTS" -eq 0 ]; then
		run_one start
		CUR=$t
	fi
	if needs_daemon "$t" && [ "$DAEMON_OK" = no ]; then
		fail "skipped: portcullisd never became ready"
		return
	fi
	echo "== $t"
	"test_$t" || { [ "$t" = start ] && DAEMON_OK=no; }
}

main()
{
	local t tests=("$@")
	[ ${#tests[@]} -gt 0 ] || tests=("${ALL_TESTS[@]}")
	[ "$(id -u)" -eq 0 ] || { echo "e2e: must run as root" >&2; exit 1; }
	HAVE_BINS=yes
	DAEMON_OK=yes
	binaries_present || HAVE_BINS=no
	trap e2e_teardown EXIT
	e2e_setup || { fail "lab setup"; summary; exit 1; }
	for t in "${tests[@]}"; do
		run_one "$t"
	done
	CUR=summary
	summary
}

main "$@"

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Checks shared by the suites that run the agent with a controller
# (tests/e2e/agent.sh, tests/e2e/failsecure.sh), to be sourced after lib.sh
# and checks.sh: probes, mode and audit expectations, starting the agent.

# The probes.
web4() { tcp_probe peer "$LAB_NODE_PEER4" 8080; }
alt4() { tcp_probe peer "$LAB_NODE_PEER4" 9090; }
ssh4() { tcp_probe mgmt "$LAB_NODE_MGMT4" 22; }
ssh6() { tcp_probe mgmt "$LAB_NODE_MGMT6" 22; }
out4() { tcp_probe node "$LAB_PEER4" 7000; }
ping4() { ping_probe peer "$LAB_NODE_PEER4"; }
# A fast ping for timing loops: fails in 0.3s.
ping_fast() { ip netns exec "$LAB_PEER" timeout 3 ping -n -q -c 1 -W 0.3 "$LAB_NODE_PEER4"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# expect_mode MODE WHY: status must report MODE.
expect_mode()
{
	local got
	got=$(mode_now)
	if [ "$got" = "$1" ]; then
		pass "status: mode $1 ($2)"
	else
		fail "status: mode '$got', expected $1 ($2)"
	fi
}

# expect_audit DESC EVENT [KEY=VALUE...]: at least one such audit line.
expect_audit()
{
	local desc=$1 n line
	shift
	n=$(audit_count "$@")
	if [ "$n" -gt 0 ]; then
		line=$(audit_last "$@")
		pass "audit: $desc"
		note "$line"
	else
		fail "audit: no $* line ($desc)"
	fi
}

# audit_more_than N DESC EVENT [KEY=VALUE...]: more than N such lines now.
audit_more_than()
{
	local before=$1 desc=$2 n
	shift 2
	n=$(audit_count "$@")
	if [ "$n" -gt "$before" ]; then
		pass "audit: $desc"
		note "$(audit_last "$@")"
	else
		fail "audit: no new $* line ($desc; $n lines, $before before)"
	fi
}

# wait_audit N SECONDS EVENT [KEY=VALUE...]: more than N such lines.
wait_audit()
{
	local before=$1 tenths=$(($2 * 10)) i
	shift 2
	for ((i = 0; i < tenths; i += 2)); do
		[ "$(audit_count "$@")" -gt "$before" ] && return 0
		sleep 0.2
	done
	return 1
}

# msg_count hb|cmd NAME: a number from status "messages:", 0 if not shown.
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

# reason_packets REASON: ingress packets of one reason in `portcullis status`.
reason_packets()
{
	pc status 2>/dev/null | awk -v r="$1" '$1 == r { print $2; f = 1 }
		END { if (!f) print -1 }'
}

# reason_count REASON ingress|egress: packets of one reason, one direction.
reason_count()
{
	pc status 2>/dev/null | awk -v r="$1" -v c="$([ "$2" = egress ] && echo 4 || echo 2)" \
		'$1 == r { print $c; f = 1 } END { if (!f) print 0 }'
}

# agent_start CONFIG: the daemon from an agent config; PASS/FAIL.
agent_start()
{
	DAEMON_CONFIG=$1
	if daemon_start; then
		pass "portcullisd ($(basename "$1")): $(grep -m1 'portcullisd: ready' "$DAEMON_LOG")"
		return 0
	fi
	fail "portcullisd ($(basename "$1")) not ready: $(tail -n 1 "$DAEMON_LOG")"
	return 1
}

# ensure_normal: daemon up, heartbeats flowing, mode normal (a test's
# starting point; silent when it already is).
ensure_normal()
{
	hb_running || hb_start
	if ! daemon_alive; then
		agent_start "${DAEMON_CONFIG:-$WORK/agent.yaml}" || return 1
	fi
	[ "$(mode_now)" = normal ] && return 0
	pc release >/dev/null 2>&1
	wait_mode normal 15 || { fail "cannot get the node back to normal"; return 1; }
}

# state_start: the agent from nothing but its state directory: no pins, no
# qdiscs (a reboot as the agent sees it).
state_start()
{
	local ifc
	daemon_stop KILL
	rm -rf -- "$PIN_DIR"
	for ifc in "$LAB_NODE_PEER_IF" "$LAB_NODE_MGMT_IF"; do
		tc -n "$LAB_NODE" qdisc del dev "$ifc" clsact 2>/dev/null
	done
	agent_start "$DAEMON_CONFIG"
}

# expect_none_delivered WHAT N: N denied packets got through; must be 0.
expect_none_delivered()
{
	pass_if "$1: 0 denied packets delivered" \
		"$1: $2 denied packets delivered" [ "$2" -eq 0 ]
}

binaries_present()
{
	local bin ok=0
	for bin in "$PCD" "$PCCLI"; do
		[ -x "$bin" ] || { fail "$bin missing: run make first"; ok=1; }
	done
	return $ok
}

# scenarios_main SUITE [SCENARIO...]: the lab and the agent's keys, then
# each scenario's test_NAME in turn (default: ALL_TESTS), then the summary.
scenarios_main()
{
	local t suite=$1 tests
	shift
	tests=("$@")
	[ ${#tests[@]} -gt 0 ] || tests=("${ALL_TESTS[@]}")
	[ "$(id -u)" -eq 0 ] || { echo "$suite e2e: must run as root" >&2; exit 1; }
	binaries_present || { check_summary; exit 1; }
	trap e2e_teardown EXIT
	if ! e2e_setup || ! agent_prepare; then
		fail "lab setup"
		check_summary
		exit 1
	fi
	for t in "${tests[@]}"; do
		CUR=$t
		if ! declare -F "test_$t" >/dev/null; then
			fail "no such scenario"
			continue
		fi
		echo "== $t"
		"test_$t"
	done
	CUR=summary
	check_summary
}

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Does the agent work with no more capabilities than the systemd unit
# grants? Runs portcullisd in the namespace lab (tests/lab.sh) under a
# bounding set read from deploy/systemd/portcullisd.service, then checks
# it enforces (a denied port is dropped, an allowed one passes), takes a
# mode change over its control socket, reloads, leaves enforcement in place
# when stopped and restarts on its pins. Then, under strace, that every
# system call it makes is one the unit's SystemCallFilter= allows.
#
#   tests/deploy/caps.sh              the unit's set
#   tests/deploy/caps.sh -CAP_SYS_ADMIN   the unit's set less one
#
# Exit 0 when all checks pass. Root only; touches only its own lab.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
UNIT=$ROOT/deploy/systemd/portcullisd.service
# shellcheck source=SCRIPTDIR/../e2e/lib.sh
. "$ROOT/tests/e2e/lib.sh"

PCD_REAL=$PCD	# lib.sh's: $PCD from the environment, else build/
FAILS=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }

# The unit's bounding set, as setpriv spells it: "+bpf,+net_admin,...".
unit_caps()
{
	local caps c out='' drop
	caps=$(sed -n 's/^CapabilityBoundingSet=//p' "$UNIT" | tail -n 1)
	for c in $caps; do
		for drop in "$@"; do
			[ "$c" = "${drop#-}" ] && continue 2
		done
		c=${c#CAP_}
		out+=",+${c,,}"
	done
	echo "${out#,}"
}

trap e2e_teardown EXIT
e2e_setup || { echo "FAIL: lab setup"; exit 1; }

CAPS=$(unit_caps "$@")
[ -n "$CAPS" ] || { echo "FAIL: no CapabilityBoundingSet= in $UNIT"; exit 1; }
echo "bounding set: $CAPS"
# The daemon runs through this wrapper, so its PID and log are lib.sh's.
cat >"$WORK/pcd-caps" <<WRAP
#!/bin/sh
exec setpriv --bounding-set=-all,$CAPS --inh-caps=-all -- "$PCD_REAL" "\$@"
WRAP
chmod 0755 "$WORK/pcd-caps"
PCD=$WORK/pcd-caps
# With a /metrics server when the agent has one (its own thread and
# libmicrohttpd: capabilities and system calls of their own).
METRICS_OPT=()
"$PCD_REAL" --help 2>&1 | grep -q -- '--metrics' &&
	METRICS_OPT=(--metrics 127.0.0.1:9712)

metrics_get()
{
	ip netns exec "$LAB_NODE" timeout 5 "$PY" -c '
import sys, urllib.request
o = urllib.request.build_opener(urllib.request.ProxyHandler({}))
sys.exit(0 if b"portcullis_" in o.open("http://127.0.0.1:9712/metrics", timeout=3).read() else 1)' \
		2>/dev/null
}

if daemon_start "${METRICS_OPT[@]}"; then
	pass "portcullisd starts with only $CAPS"
	grep -q "^CapBnd:" "/proc/$DAEMON_PID/status" &&
		echo "    $(grep '^CapEff:' "/proc/$DAEMON_PID/status")" \
			"($(capsh --decode="$(awk '/^CapEff:/ {print $2}' \
				"/proc/$DAEMON_PID/status")" | cut -d= -f2))"
else
	fail "portcullisd starts with only $CAPS"
	sed 's/^/    /' "$DAEMON_LOG"
	exit 1
fi

# The backstop's netfilter links need no more than this set either: an
# agent short of a capability would run without them, warning only.
if grep -q 'portcullisd: ready.*backstop on' "$DAEMON_LOG"; then
	pass "the backstop's netfilter links are in place with only $CAPS"
else
	fail "the backstop's netfilter links are in place with only $CAPS"
	grep -i backstop "$DAEMON_LOG" | sed 's/^/    /'
fi
if tcp_probe peer "$LAB_NODE_PEER4" 8080 >/dev/null 2>&1; then
	pass "allowed tcp 8080 passes"
else
	fail "allowed tcp 8080 passes"
fi
if tcp_probe peer "$LAB_NODE_PEER4" 9090 >/dev/null 2>&1; then
	fail "denied tcp 9090 is dropped"
else
	pass "denied tcp 9090 is dropped"
fi
if pc lockdown >"$WORK/lockdown.out" 2>&1 && [ "$(mode_now)" = lockdown ]; then
	pass "mode change through the agent"
else
	fail "mode change through the agent"
	sed 's/^/    /' "$WORK/lockdown.out"
fi
pc mode normal >/dev/null 2>&1
if [ ${#METRICS_OPT[@]} -gt 0 ]; then
	if metrics_get; then
		pass "GET /metrics with only $CAPS"
	else
		fail "GET /metrics with only $CAPS"
	fi
fi
# SIGHUP re-reads the policy: map updates under the reduced set too.
n=$(grep -c 'reloaded policy' "$DAEMON_LOG")
kill -HUP "$DAEMON_PID"
wait_for_count "$DAEMON_LOG" 'reloaded policy' $((n + 1)) 15 ||
	fail "reload (SIGHUP): no 'reloaded policy' within 15 s"
if daemon_alive && ! grep -Eqi "operation not permitted|EPERM" "$DAEMON_LOG"; then
	pass "reload (SIGHUP) without EPERM"
else
	fail "reload (SIGHUP) without EPERM"
	grep -Ei "not permitted|EPERM" "$DAEMON_LOG" | sed 's/^/    /'
fi
daemon_stop TERM
if tcp_probe peer "$LAB_NODE_PEER4" 9090 >/dev/null 2>&1; then
	fail "enforcement outlives the agent"
else
	pass "enforcement outlives the agent"
fi
# A restart under the same set takes the pins over.
if daemon_start "${METRICS_OPT[@]}" &&
	grep -q 'portcullisd: ready.*backstop on' "$DAEMON_LOG"; then
	pass "restart re-uses the pins (and replaces the backstop's links) with only $CAPS"
else
	fail "restart re-uses the pins with only $CAPS"
	sed 's/^/    /' "$DAEMON_LOG"
fi
daemon_stop TERM

# ---- System calls: what the agent uses vs the unit's SystemCallFilter= ----
# Expand a systemd syscall group (or name) into syscall names.
syscalls_of()
{
	local x
	case $1 in
	@*) ;;
	*) echo "$1"; return ;;
	esac
	systemd-analyze syscall-filter "$1" 2>/dev/null |
	awk 'NR > 1 && $1 !~ /^#/ { print $1 }' | while read -r x; do
		case $x in
		@*) syscalls_of "$x" ;;
		*) echo "$x" ;;
		esac
	done
}

# The unit's final allow list, as systemd builds it: SystemCallFilter=
# lines in order, a plain one adds its calls, a ~ one takes its away.
filter_lists()
{
	local line item
	: >"$WORK/allowed.txt"
	while read -r line; do
		line=${line#SystemCallFilter=}
		case $line in
		'~'*)
			for item in ${line#'~'}; do syscalls_of "$item"; done |
				sort -u >"$WORK/take.txt"
			sort -u "$WORK/allowed.txt" | comm -23 - "$WORK/take.txt" \
				>"$WORK/left.txt"
			mv "$WORK/left.txt" "$WORK/allowed.txt" ;;
		*)
			for item in $line; do syscalls_of "$item"; done >>"$WORK/allowed.txt" ;;
		esac
	done < <(grep '^SystemCallFilter=' "$UNIT")
	sort -u -o "$WORK/allowed.txt" "$WORK/allowed.txt"
}

syscall_check()
{
	local trace=$WORK/strace.out bad n
	command -v strace >/dev/null || { fail "system calls: strace is not installed"; return; }
	cat >"$WORK/pcd-strace" <<WRAP
#!/bin/sh
exec strace -f -qq -o "$trace" -- "$PCD_REAL" "\$@"
WRAP
	chmod 0755 "$WORK/pcd-strace"
	PCD=$WORK/pcd-strace
	daemon_start "${METRICS_OPT[@]}" ||
		{ fail "system calls: portcullisd under strace"; return; }
	# daemon_start found strace; the agent is its child.
	DAEMON_PID=$(pgrep -P "$DAEMON_PID" | head -n 1)
	tcp_probe peer "$LAB_NODE_PEER4" 9090 >/dev/null 2>&1
	pc lockdown >/dev/null 2>&1
	pc mode normal >/dev/null 2>&1
	pc status >/dev/null 2>&1
	[ ${#METRICS_OPT[@]} -gt 0 ] && metrics_get
	n=$(grep -c 'reloaded policy' "$DAEMON_LOG")
	kill -HUP "$DAEMON_PID"
	wait_for_count "$DAEMON_LOG" 'reloaded policy' $((n + 1)) 15 ||
		fail "system calls: no 'reloaded policy' after SIGHUP within 15 s"
	daemon_stop TERM
	awk '{ s = $2; sub(/\(.*/, "", s); if (s ~ /^[a-z_0-9]+$/) print s }' \
		"$trace" | sort -u >"$WORK/used.txt"
	filter_lists
	bad=$(comm -23 "$WORK/used.txt" "$WORK/allowed.txt" | tr '\n' ' ')
	if [ -s "$WORK/used.txt" ] && [ -z "$bad" ]; then
		pass "all $(wc -l <"$WORK/used.txt") system calls the agent made are in SystemCallFilter="
	else
		fail "system calls outside SystemCallFilter=: ${bad:-none traced}"
	fi
}
syscall_check
[ "$FAILS" -eq 0 ]

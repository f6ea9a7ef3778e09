# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Shared by tests/e2e/run.sh and tests/demo.sh (sourced): the lab with its
# servers, portcullisd in the node namespace, the CLI, bounded probes and
# teardown. Callers set a trap calling e2e_teardown on EXIT.

E2E_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=SCRIPTDIR/../lab.sh
. "$E2E_ROOT/tests/lab.sh"

PCD=${PCD:-$E2E_ROOT/build/portcullisd}
PCCLI=${PCCLI:-$E2E_ROOT/build/portcullis}
PY=/usr/bin/python3	# Debian's; the python3 first on PATH is another build
TRAFFIC=$E2E_ROOT/tests/e2e/traffic.py
LAB_POLICY=$E2E_ROOT/tests/policies/lab-normal.yaml
E2E_XDP_MODE=${E2E_XDP_MODE:-auto}

LAB_ID=$(lab_prefix)
PIN_DIR=/sys/fs/bpf/pc-e2e-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
# The daemon's state dir, audit log and control socket: per run, under WORK
# (e2e_setup sets them, for the daemon's options and the CLI's environment),
# never the system's /var/lib, /var/log and /run/portcullis.
STATE_DIR=
AUDIT_LOG=
CONTROL_SOCKET=
# The anti-lockout check looks at the operator's SSH session; the lab's
# policies know nothing of it, and no lab traffic goes over it.
unset SSH_CONNECTION

WORK=
BG_PIDS=()		# every background process we started (timeout wrappers)
DAEMON_WRAP=		# timeout(1) around the daemon
DAEMON_PID=		# the daemon itself
DAEMON_LOG=
DAEMON_STARTS=0
ACTIVE_POLICY=		# the file the daemon reads on start and SIGHUP
DAEMON_CONFIG=		# if set, the daemon runs from this agent config instead

# Lab servers: "NS PROTO PORT" (NS is node or peer).
LAB_SERVERS=(
	"node tcp 8080" "node tcp 9090" "node tcp 22"
	"node udp 5000" "node udp 5001"
	"peer tcp 7000" "peer udp 7001"
)
SERVER_LIFETIME=900

ns_of()
{
	case $1 in
	node) echo "$LAB_NODE" ;;
	peer) echo "$LAB_PEER" ;;
	mgmt) echo "$LAB_MGMT" ;;
	*) echo "$1" ;;
	esac
}

# wait_for_line FILE REGEX SECONDS [PID]: poll, stop early if PID dies.
wait_for_line()
{
	local file=$1 re=$2 tenths=$(($3 * 10)) pid=${4:-} i
	for ((i = 0; i < tenths; i++)); do
		grep -Eq -- "$re" "$file" 2>/dev/null && return 0
		if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
			grep -Eq -- "$re" "$file" 2>/dev/null
			return
		fi
		sleep 0.1
	done
	return 1
}

# wait_for_count FILE REGEX N SECONDS: at least N matching lines.
wait_for_count()
{
	local file=$1 re=$2 n=$3 tenths=$(($4 * 10)) i
	for ((i = 0; i < tenths; i++)); do
		[ "$(grep -Ec -- "$re" "$file" 2>/dev/null)" -ge "$n" ] && return 0
		sleep 0.1
	done
	return 1
}

# wait_until SECONDS CMD...: run CMD every 0.1 s until it succeeds or
# SECONDS (whole) have passed on the clock; returns CMD's last status.
wait_until()
{
	local end=$(($(date +%s%3N) + $1 * 1000))
	shift
	until "$@"; do
		[ "$(date +%s%3N)" -ge "$end" ] && { "$@"; return; }
		sleep 0.1
	done
}

# bg_start LOG SECONDS CMD...: bounded background command, PID in BG_LAST.
bg_start()
{
	local log=$1 secs=$2
	shift 2
	timeout -s TERM "$secs" "$@" >"$log" 2>&1 &
	BG_LAST=$!
	BG_PIDS+=("$BG_LAST")
}

server_start()
{
	local where=$1 proto=$2 port=$3 log
	log=$WORK/server-$where-$proto-$port.log
	bg_start "$log" $((SERVER_LIFETIME + 30)) ip netns exec "$(ns_of "$where")" \
		"$PY" "$TRAFFIC" "$proto-server" "$port" --timeout "$SERVER_LIFETIME"
	wait_for_line "$log" "^listening $proto $port" 20 "$BG_LAST" || {
		echo "e2e: $proto server on $where:$port did not start:" >&2
		cat "$log" >&2
		return 1
	}
}

servers_start()
{
	local s
	for s in "${LAB_SERVERS[@]}"; do
		# shellcheck disable=SC2086 # "NS PROTO PORT" splits on purpose
		server_start $s || return 1
	done
}

# The daemon runs in the node's network namespace only (nsenter keeps our
# mount namespace, so /sys/fs/bpf stays visible). It reads DAEMON_CONFIG if
# set, else ACTIVE_POLICY. Extra args go through.
# shellcheck disable=SC2120 # extra args are optional
daemon_start()
{
	local i src=(--policy "$ACTIVE_POLICY")
	[ -n "$DAEMON_CONFIG" ] && src=(--config "$DAEMON_CONFIG")
	DAEMON_STARTS=$((DAEMON_STARTS + 1))
	DAEMON_LOG=$WORK/daemon-$DAEMON_STARTS.log
	bg_start "$DAEMON_LOG" 1800 nsenter --net="/run/netns/$LAB_NODE" -- \
		"$PCD" "${src[@]}" --pin-dir "$PIN_DIR" \
		--state-dir "$STATE_DIR" --audit-log "$AUDIT_LOG" \
		--control-socket "$CONTROL_SOCKET" \
		--xdp-mode "$E2E_XDP_MODE" -v "$@"
	DAEMON_WRAP=$BG_LAST
	DAEMON_PID=
	for ((i = 0; i < 50; i++)); do
		DAEMON_PID=$(pgrep -P "$DAEMON_WRAP" | head -n 1)
		[ -n "$DAEMON_PID" ] && break
		sleep 0.1
	done
	[ -n "$DAEMON_PID" ] || { echo "e2e: portcullisd did not start" >&2; return 1; }
	wait_for_line "$DAEMON_LOG" 'portcullisd: ready' 30 "$DAEMON_PID" || {
		echo "e2e: portcullisd not ready after 30 s; its log:" >&2
		sed 's/^/    /' "$DAEMON_LOG" >&2
		return 1
	}
}

daemon_alive()
{
	[ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null
}

# daemon_stop [SIGNAL]: signal the daemon by PID, wait up to 5s for it.
daemon_stop()
{
	local sig=${1:-TERM} i ignored=no
	daemon_alive || return 0
	# stderr off throughout: bash reports a job that died of a signal
	# ("Killed") whenever it reaps it, not only in wait.
	{
		kill -s "$sig" "$DAEMON_PID"
		for ((i = 0; i < 50; i++)); do
			daemon_alive || break
			sleep 0.1
		done
		if daemon_alive; then
			ignored=yes
			kill -s KILL "$DAEMON_PID"
		fi
		wait "$DAEMON_WRAP"
	} 2>/dev/null
	[ "$ignored" = yes ] &&
		echo "e2e: portcullisd ignored SIG$sig for 5s, killed it" >&2
	DAEMON_PID=
	return 0
}

# The CLI, in the node's network namespace.
pc()
{
	timeout 20 nsenter --net="/run/netns/$LAB_NODE" -- \
		"$PCCLI" --pin-dir "$PIN_DIR" "$@"
}

# Probes. FROM is node, peer or mgmt; extra args go to traffic.py.
tcp_probe()
{
	local from=$1 host=$2 port=$3
	shift 3
	ip netns exec "$(ns_of "$from")" timeout 5 \
		"$PY" "$TRAFFIC" tcp-probe "$host" "$port" --timeout 1.5 "$@"
}

udp_probe()
{
	local from=$1 host=$2 port=$3
	shift 3
	ip netns exec "$(ns_of "$from")" timeout 5 \
		"$PY" "$TRAFFIC" udp-probe "$host" "$port" --timeout 1.5 "$@"
}

# ping_probe FROM HOST [ping args]: one echo, one second.
ping_probe()
{
	local from=$1 host=$2
	shift 2
	ip netns exec "$(ns_of "$from")" timeout 5 ping -n -q -c 1 -W 1 "$@" "$host"
}

# tcp_hold_start FROM HOST PORT COUNT LOG: one connection, a round trip
# every 0.2s, at most COUNT of them.
tcp_hold_start()
{
	bg_start "$5" 90 ip netns exec "$(ns_of "$1")" \
		"$PY" "$TRAFFIC" tcp-hold "$2" "$3" --interval 0.2 --count "$4" \
		--timeout 2
}

# hold_begin NAME FROM HOST PORT: one held connection, a round trip every
# 0.2 s until hold_end (60 s at most); PASS once 3 round trips worked.
hold_begin()
{
	local log=$WORK/hold-$1.log
	tcp_hold_start "$2" "$3" "$4" 300 "$log"
	eval "HOLD_PID_$1=\$BG_LAST"
	if wait_for_count "$log" '^rtt [0-9]+ ok' 3 20; then
		pass "hold $1 ($2 -> $3:$4) established, round trips ok"
		return 0
	fi
	fail "hold $1 ($2 -> $3:$4) never worked: $(tail -n 1 "$log")"
	return 1
}

# hold_end NAME cut|kept: end the hold and judge it. cut: a round trip
# failed after 3 worked (waited for, 15 s at most). kept: none failed, and
# 3 more worked since hold_end was called (the connection is alive now).
hold_end()
{
	local name=$1 expect=$2 pid res ok first log=$WORK/hold-$1.log n
	eval "pid=\$HOLD_PID_$name"
	if [ "$expect" = cut ]; then
		wait_for_line "$log" '^rtt [0-9]+ fail' 15 "$pid"
	else
		n=$(grep -Ec '^rtt [0-9]+ ok' "$log")
		wait_for_count "$log" '^rtt [0-9]+ ok' $((n + 3)) 15
	fi
	kill -s TERM "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	res=$(sed -n 's/^summary ok=\([0-9]*\) first_fail=\(.*\)$/\1 \2/p' "$log")
	read -r ok first <<<"$res"
	if [ -z "$res" ]; then
		fail "hold $name: no summary ($(tail -n 1 "$log"))"
	elif [ "$expect" = cut ] && [ "$first" != none ] && [ "$ok" -ge 3 ]; then
		pass "hold $name cut: $ok round trips, then failed at #$first"
	elif [ "$expect" = kept ] && [ "$first" = none ] && [ "$ok" -ge $((n + 3)) ]; then
		pass "hold $name kept: all $ok round trips ok"
	else
		fail "hold $name expected $expect, got ok=$ok first_fail=$first"
	fi
}

# ---- The agent with a controller (tests/e2e/agent.sh, tests/demo.sh) ----
AGENT_CONFIG_SRC=$E2E_ROOT/tests/configs/lab-agent.yaml
AGENT_POLICY_SRC=$E2E_ROOT/tests/policies/lab-agent.yaml
AGENT_HOST_ID=lab-node		# the host_id of lab-agent.yaml
AGENT_TO=$LAB_NODE_MGMT4:7800	# where the controller (mgmt) sends
CTL_KEY=			# the controller's secret key, made per run
HB_PID=				# the running heartbeat sender (timeout wrapper)
HB_RUNS=0

# agent_prepare: a controller key pair and the agent configs in WORK, next
# to policy.yaml and controller.pub as lab-agent.yaml expects:
# agent.yaml (release_after 3), agent-manual.yaml (release_after 0).
agent_prepare()
{
	CTL_KEY=$WORK/controller.key
	"$PCCLI" keygen --out "$CTL_KEY" >"$WORK/keygen.out" 2>&1 || {
		cat "$WORK/keygen.out" >&2
		return 1
	}
	cp "$CTL_KEY.pub" "$WORK/controller.pub" &&
	cp "$AGENT_POLICY_SRC" "$WORK/policy.yaml" &&
	cp "$AGENT_CONFIG_SRC" "$WORK/agent.yaml" &&
	sed 's/^\( *release_after:\).*/\1 0/' "$AGENT_CONFIG_SRC" \
		>"$WORK/agent-manual.yaml"
}

# ctl ARGS...: `portcullis controller ARGS` on the management host.
ctl()
{
	timeout 20 ip netns exec "$LAB_MGMT" "$PCCLI" controller "$@"
}

# ctl_send CMD [ARGS...]: one signed command to the node; later ARGS win
# (--key, --host-id) for the forged and misaddressed ones.
ctl_send()
{
	local cmd=$1
	shift
	ctl send "$cmd" --to "$AGENT_TO" --key "$CTL_KEY" \
		--host-id "$AGENT_HOST_ID" "$@"
}

# hb_start [MS]: heartbeats from mgmt every MS (200) until hb_stop.
# shellcheck disable=SC2120 # MS is optional
hb_start()
{
	HB_RUNS=$((HB_RUNS + 1))
	bg_start "$WORK/hb-$HB_RUNS.log" 900 ip netns exec "$LAB_MGMT" \
		"$PCCLI" controller heartbeat --to "$AGENT_TO" --key "$CTL_KEY" \
		--host-id "$AGENT_HOST_ID" --interval "${1:-200}" -v
	HB_PID=$BG_LAST
}

hb_running()
{
	[ -n "$HB_PID" ] && kill -0 "$HB_PID" 2>/dev/null
}

hb_stop()
{
	[ -n "$HB_PID" ] || return 0
	kill -s TERM "$HB_PID" 2>/dev/null
	wait "$HB_PID" 2>/dev/null
	HB_PID=
}

# mode_now: the mode `portcullis status` reports.
mode_now()
{
	pc status 2>/dev/null | awk '$1 == "mode:" { print $2; exit }'
}

# wait_mode MODE SECONDS: poll status until it reports MODE.
wait_mode()
{
	local want=$1 tenths=$(($2 * 10)) i
	for ((i = 0; i < tenths; i += 2)); do
		[ "$(mode_now)" = "$want" ] && return 0
		sleep 0.2
	done
	[ "$(mode_now)" = "$want" ]
}

# ctl_budget_drops: datagrams to the controller port the datapath's budget
# dropped (status "controller port:", every kind summed; 0 if not shown).
ctl_budget_drops()
{
	pc status 2>/dev/null | sed -n 's/^controller port:.*dropped \([0-9]*\) by source, \([0-9]*\) management, \([0-9]*\) other$/\1 \2 \3/p' |
		awk '{ n = $1 + $2 + $3 } END { print n + 0 }'
}

# audit_count EVENT [KEY=VALUE...]: audit log lines of EVENT with all of
# those fields.
audit_count() { "$PY" "$E2E_ROOT/tests/audit_grep.py" count "$AUDIT_LOG" "$@"; }

# audit_last EVENT [KEY=VALUE...]: the last such line, as written.
audit_last() { "$PY" "$E2E_ROOT/tests/audit_grep.py" last "$AUDIT_LOG" "$@"; }

# audit_ms EVENT [KEY=VALUE...]: the last such line's time, Unix ms.
audit_ms() { "$PY" "$E2E_ROOT/tests/audit_grep.py" ms "$AUDIT_LOG" "$@"; }

# Policy files for one run: the daemon's own copy and generated variants.
policies_prepare()
{
	ACTIVE_POLICY=$WORK/active.yaml
	cp "$LAB_POLICY" "$ACTIVE_POLICY" || return 1
	# Same policy plus an allow for 9090, to see apply and SIGHUP take effect.
	{
		cat "$LAB_POLICY"
		echo "  - {name: alt-web, action: allow, direction: ingress, proto: tcp, ports: 9090}"
	} >"$WORK/open.yaml"
}

# Per-run daemon files under WORK, exported for the CLI too.
state_paths_set()
{
	STATE_DIR=$WORK/state
	AUDIT_LOG=$WORK/audit.jsonl
	CONTROL_SOCKET=$WORK/control.sock
	PORTCULLIS_STATE_DIR=$STATE_DIR
	PORTCULLIS_AUDIT_LOG=$AUDIT_LOG
	PORTCULLIS_CONTROL_SOCKET=$CONTROL_SOCKET
	export PORTCULLIS_STATE_DIR PORTCULLIS_AUDIT_LOG PORTCULLIS_CONTROL_SOCKET
}

e2e_setup()
{
	WORK=$(mktemp -d /tmp/pc-e2e.XXXXXX) || return 1
	state_paths_set
	lab_bpffs || return 1
	lab_up "$LAB_ID" || return 1
	policies_prepare && servers_start
}

e2e_teardown()
{
	local pid
	hb_stop
	daemon_stop TERM
	for pid in "${BG_PIDS[@]}"; do
		kill -s TERM "$pid" 2>/dev/null
	done
	for pid in "${BG_PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [ -d "$PIN_DIR" ] && [ -n "${LAB_NODE:-}" ] && [ -e "/run/netns/${LAB_NODE:-}" ] &&
	   [ -x "$PCCLI" ]; then
		pc detach >/dev/null 2>&1
	fi
	# Only our own pin dir, by its exact name.
	[ -d "$PIN_DIR" ] && rm -rf -- "$PIN_DIR"
	lab_down "$LAB_ID"
	[ -n "$WORK" ] && [ -d "$WORK" ] && [ -z "${E2E_KEEP:-}" ] && rm -rf -- "$WORK"
	return 0
}

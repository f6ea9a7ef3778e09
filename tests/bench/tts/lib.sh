# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Shared by tests/bench/tts.sh and tests/bench/agent_cost.sh (sourced, after
# tests/e2e/lib.sh): the lab with an agent config of our own, tts_probe
# built per run and driven as a coprocess, the agent started without -v
# (debug logging is not what we measure), and teardown.

BENCH_DIR=$E2E_ROOT/tests/bench/tts
BENCH_OUT=${BENCH_OUT:-./bench-results}
PROBE_BIN=
PROBE_WRAP=		# timeout(1) around tts_probe (the coprocess)
PROBE_US=${PROBE_US:-20}	# probe interval, microseconds
HB_MS=${HB_MS:-100}	# heartbeat interval of tts_probe
PROBE_PORT=5000		# lab-agent.yaml policy: udp-in, normal mode only
PROBE_DENY_PORT=5001	# no rule: default deny in every mode

# bench_config FILE TIMEOUT KERNEL_DEADMAN [EXTRA YAML]: an agent config in
# WORK next to policy.yaml and controller.pub. release_after 1 and no
# back-off, so a trial recovers on the first heartbeat.
bench_config()
{
	cat >"$1" <<EOF
host_id: $AGENT_HOST_ID
policy: policy.yaml
controller:
  listen: "$AGENT_TO"
  key_files: [controller.pub]
  max_skew: 30s
heartbeat:
  timeout: $2
  action: lockdown
  kernel_deadman: $3
  release_after: 1
  backoff: 0s
${4:-}
EOF
}

bench_setup()
{
	WORK=$(mktemp -d /tmp/pc-bench.XXXXXX) || return 1
	# Our own copy of the binaries: a rebuild during the run (new map
	# layouts) must not meet this run's pins on an agent restart.
	cp "$PCD" "$WORK/portcullisd" && cp "$PCCLI" "$WORK/portcullis" || return 1
	PCD=$WORK/portcullisd
	PCCLI=$WORK/portcullis
	state_paths_set
	lab_bpffs || return 1
	lab_up "$LAB_ID" || return 1
	agent_prepare || return 1
	mkdir -p "$BENCH_OUT" || return 1
	BENCH_OUT=$(cd "$BENCH_OUT" && pwd)
	PROBE_BIN=$WORK/tts_probe
	gcc -g -O2 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
		-D_GNU_SOURCE -I"$E2E_ROOT/include" -I"$E2E_ROOT/user" \
		"$BENCH_DIR/tts_probe.c" "$E2E_ROOT/user/msg.c" \
		-lsodium -lbpf -lpthread -o "$PROBE_BIN"
}

# bench_daemon_start [ARGS...]: as lib.sh's daemon_start, without -v.
bench_daemon_start()
{
	local i
	DAEMON_STARTS=$((DAEMON_STARTS + 1))
	DAEMON_LOG=$WORK/daemon-$DAEMON_STARTS.log
	bg_start "$DAEMON_LOG" 900 nsenter --net="/run/netns/$LAB_NODE" -- \
		"$PCD" --config "$DAEMON_CONFIG" --pin-dir "$PIN_DIR" \
		--state-dir "$STATE_DIR" --audit-log "$AUDIT_LOG" \
		--control-socket "$CONTROL_SOCKET" --xdp-mode "$E2E_XDP_MODE" "$@"
	DAEMON_WRAP=$BG_LAST
	DAEMON_PID=
	for ((i = 0; i < 50; i++)); do
		DAEMON_PID=$(pgrep -P "$DAEMON_WRAP" | head -n 1)
		[ -n "$DAEMON_PID" ] && break
		sleep 0.05
	done
	[ -n "$DAEMON_PID" ] || { echo "bench: portcullisd did not start" >&2; return 1; }
	wait_for_line "$DAEMON_LOG" 'portcullisd: ready' 10 "$DAEMON_PID" || {
		echo "bench: portcullisd not ready after 10s; its log:" >&2
		sed 's/^/    /' "$DAEMON_LOG" >&2
		return 1
	}
	[ "$(cat "/proc/$DAEMON_PID/comm" 2>/dev/null)" = portcullisd ] || {
		echo "bench: pid $DAEMON_PID is not portcullisd" >&2
		return 1
	}
}

# The daemon died (tts_probe SIGKILLed it): reap its wrapper.
bench_daemon_reap()
{
	{ wait "$DAEMON_WRAP"; } 2>/dev/null
	DAEMON_PID=
}

probe_start()
{
	coproc PROBE { exec timeout -s TERM 900 "$PROBE_BIN" \
		--node-ns "/run/netns/$LAB_NODE" --peer-ns "/run/netns/$LAB_PEER" \
		--mgmt-ns "/run/netns/$LAB_MGMT" --node-addr "$LAB_NODE_PEER4" \
		--agent-addr "${AGENT_TO%:*}" --agent-port "${AGENT_TO##*:}" \
		--key "$CTL_KEY" --host-id "$AGENT_HOST_ID" --pin-dir "$PIN_DIR" \
		--port "$PROBE_PORT" --deny-port "$PROBE_DENY_PORT" \
		--interval-us "$PROBE_US" --hb-ms "$HB_MS" 2>"$WORK/probe.err"; }
	PROBE_WRAP=$PROBE_PID
	BG_PIDS+=("$PROBE_WRAP")
	probe_cmd /dev/null 10 "" >/dev/null
}

# probe_cmd OUT SECONDS CMD...: send CMD (none: just read the greeting),
# data lines appended to OUT, the final "ok ..." line printed; non-zero on
# "err", a dead prober or SECONDS without an answer.
probe_cmd()
{
	local out=$1 secs=$2 line part= end
	shift 2
	[ -n "${PROBE[1]:-}" ] || { echo "bench: tts_probe not running" >&2; return 1; }
	[ $# -gt 0 ] && echo "$*" >&"${PROBE[1]}"
	end=$((SECONDS + secs))
	while [ "$SECONDS" -le "$end" ]; do
		line=
		if ! IFS= read -r -t 5 line <&"${PROBE[0]}"; then
			# A timeout keeps what came of a line so far.
			part+=$line
			kill -0 "$PROBE_WRAP" 2>/dev/null && continue
			echo "bench: tts_probe died: $(tail -n 2 "$WORK/probe.err")" >&2
			return 1
		fi
		line=$part$line
		part=
		case $line in
		ok*) echo "$line"; return 0 ;;
		err*) echo "bench: tts_probe: $line (for: $*)" >&2; return 1 ;;
		*) printf '%s\n' "$line" >>"$out" ;;
		esac
	done
	echo "bench: tts_probe: no answer to '$*' in ${secs}s" >&2
	return 1
}

probe_stop()
{
	[ -n "$PROBE_WRAP" ] || return 0
	if [ -n "${PROBE[1]:-}" ]; then
		echo quit >&"${PROBE[1]}" 2>/dev/null
	fi
	sleep 0.2
	kill -s TERM "$PROBE_WRAP" 2>/dev/null
	{ wait "$PROBE_WRAP"; } 2>/dev/null
	PROBE_WRAP=
}

# xdp_mode_used: how XDP sits on the node's peer-facing veth.
xdp_mode_used()
{
	ip -n "$LAB_NODE" -d link show dev "$LAB_NODE_PEER_IF" 2>/dev/null |
		grep -o 'xdp[a-z]*' | head -n 1
}

bench_teardown()
{
	probe_stop
	e2e_teardown
}

# cpu_ns PID: CPU time of every thread of PID so far, from schedstat (ns).
cpu_ns()
{
	cat /proc/"$1"/task/*/schedstat 2>/dev/null |
		awk '{ s += $1 } END { printf "%d\n", s }'
}

# cpu_ticks PID: utime + stime from /proc/PID/stat (clock ticks).
cpu_ticks()
{
	# Fields after the ")" of comm: state is $1, utime $12, stime $13.
	sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'
}

rss_kb()
{
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"
}

host_line()
{
	echo "$(uname -r), $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(systemd-detect-virt 2>/dev/null || echo unknown virt)"
}

# cpu_snap: "TOTAL IDLE" jiffies of the whole host, from /proc/stat.
cpu_snap()
{
	awk '$1 == "cpu" { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}

# busy_since SNAP: percent of all CPUs busy since SNAP (everyone's work,
# ours included: other jobs on a shared host show here).
busy_since()
{
	local t0 i0 t1 i1
	read -r t0 i0 <<<"$1"
	read -r t1 i1 <<<"$(cpu_snap)"
	awk -v t="$((t1 - t0))" -v i="$((i1 - i0))" \
		'BEGIN { printf "%.0f", (t > 0 ? 100 * (1 - i / t) : 0) }'
}

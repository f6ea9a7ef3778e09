#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Time to secure, measured from outside the agent in the namespace lab:
#
#   bash tests/bench/tts.sh         (root; after make; about 2 minutes)
#
# Writes $BENCH_OUT/tts.md and $BENCH_OUT/tts.tsv (BENCH_OUT defaults to
# ./bench-results). tests/bench/tts/tts_probe.c does the measuring: a
# prober in the peer namespace streams UDP probes to the node every
# PROBE_US (20) us, each stamped with its CLOCK_MONOTONIC send time (one
# clock for every namespace); a receiver on the node keeps the highest
# probe seen; the controller side (mgmt namespace) signs with user/msg.c.
# The first probe dropped is the one after the last received, and
#   1. signed command: quarantine sent at T0 -> first probe dropped - T0
#      (TTS_TRIALS, 1000), then a signed release;
#   2. heartbeat loss: heartbeats every HB_MS (100) ms, timeout 1 s,
#      stopped after one sent at T_last -> first dropped - T_last - 1 s
#      (TTS_HB_TRIALS, 20), with the kernel dead-man switch on, then off;
#   3. agent SIGKILLed right after it took a heartbeat (T_last), dead-man
#      on -> first dropped - T_last - 1 s (TTS_DM_TRIALS, 10), agent
#      restarted over its pins between trials.
# Target: signed command -> first packet dropped, p99 < 1 ms.

set -u
# shellcheck source=SCRIPTDIR/../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=SCRIPTDIR/tts/lib.sh
. "$E2E_ROOT/tests/bench/tts/lib.sh"

PIN_DIR=/sys/fs/bpf/pc-tts-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC

TTS_TRIALS=${TTS_TRIALS:-1000}
TTS_HB_TRIALS=${TTS_HB_TRIALS:-20}
TTS_DM_TRIALS=${TTS_DM_TRIALS:-10}
TTS_GAP_MS=${TTS_GAP_MS:-"30 50"}	# quiet before each command: min max
TIMEOUT_MS=1000
STARTED=$SECONDS

say() { printf '[%3ds] %s\n' $((SECONDS - STARTED)) "$*"; }

die()
{
	echo "tts: $*" >&2
	exit 1
}

# 1. Signed quarantine / release pairs, TTS_GAP_MS of quiet before each:
# the agent has finished the previous command's paperwork (fsynced audit
# and state), and the command lands at a random phase to its tick.
part_command()
{
	say "signed command -> first drop: $TTS_TRIALS trials, ${TTS_GAP_MS% *}..${TTS_GAP_MS#* } ms apart"
	# shellcheck disable=SC2086 # "MIN MAX" splits on purpose
	probe_cmd "$WORK/raw-cmd.tsv" 150 cmdloop "$TTS_TRIALS" $TTS_GAP_MS ||
		die "command trials failed"
}

# 2. Heartbeat loss with the agent alive.
part_hbloss()
{
	say "heartbeat loss ($1): $TTS_HB_TRIALS trials"
	probe_cmd "$WORK/raw-hbloss-$1.tsv" $((TTS_HB_TRIALS * 4 + 10)) \
		hbloss "$TTS_HB_TRIALS" "$TIMEOUT_MS" || die "heartbeat-loss trials failed"
}

# 3. SIGKILL, kernel dead-man, restart over the pins, recover.
part_deadman()
{
	local i
	say "agent SIGKILLed -> dead-man: $TTS_DM_TRIALS trials"
	for ((i = 0; i < TTS_DM_TRIALS; i++)); do
		probe_cmd "$WORK/raw-deadman.tsv" 10 deadman "$DAEMON_PID" "$TIMEOUT_MS" >/dev/null ||
			die "dead-man trial $i failed"
		bench_daemon_reap
		bench_daemon_start || die "agent restart after trial $i"
		probe_cmd /dev/null 5 hb on >/dev/null &&
			probe_cmd /dev/null 10 pass 5000 >/dev/null ||
			die "no recovery after dead-man trial $i"
		sleep 0.2
	done
}

main()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	[ -x "$PCD" ] && [ -x "$PCCLI" ] || die "build first: make"
	trap bench_teardown EXIT
	LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	SNAP0=$(cpu_snap)
	bench_setup || die "lab setup"
	bench_config "$WORK/tts-dm.yaml" 1s true
	bench_config "$WORK/tts-agent.yaml" 1s false
	probe_start || die "tts_probe did not start"
	probe_cmd /dev/null 5 hb on >/dev/null
	DAEMON_CONFIG=$WORK/tts-dm.yaml
	bench_daemon_start || die "agent did not start"
	probe_cmd /dev/null 10 pass 5000 >/dev/null || die "probes do not pass"
	say "lab $LAB_ID up, agent pid $DAEMON_PID, XDP $(xdp_mode_used)"
	probe_cmd /dev/null 5 reset >/dev/null

	part_command
	part_hbloss dm-on
	part_deadman
	daemon_stop TERM
	DAEMON_CONFIG=$WORK/tts-agent.yaml
	bench_daemon_start || die "agent (kernel dead-man off) did not start"
	probe_cmd /dev/null 10 pass 5000 >/dev/null || die "probes do not pass"
	part_hbloss dm-off
	STATS=$(probe_cmd /dev/null 5 stats)
	say "probes: ${STATS#ok }"

	"$PY" "$BENCH_DIR/tts_report.py" --work "$WORK" --audit "$AUDIT_LOG" \
		--out "$BENCH_OUT" --probe-us "$PROBE_US" --hb-ms "$HB_MS" \
		--timeout-ms "$TIMEOUT_MS" --xdp "$(xdp_mode_used)" \
		--host "$(host_line)" --stats "${STATS#ok }" \
		--load "load average at the start $LOAD0; all CPUs $(busy_since "$SNAP0") % busy over the run, everyone's work included" ||
		die "report failed"
	say "wrote $BENCH_OUT/tts.md and $BENCH_OUT/tts.tsv"
}

main "$@"

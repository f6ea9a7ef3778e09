#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The forged-datagram rate a host survives on its controller port, in the
# namespace lab (issue 13, item 2):
#
#   bash tests/bench/ctl_flood.sh     (root; after make build/flood)
#
# Writes $BENCH_OUT/ctl_flood.md and .tsv. The agent and its policy are
# those of tests/e2e/outsider/ctlflood.sh (management bound to pcmgmt,
# udp/7800 open to 192.0.2.0/24 in normal, eight trusted keys); heartbeats
# every 200 ms, timeout 2 s. CTL_TRIALS (3) times:
#   baseline: build/flood sends the forged heartbeat from the peer at full
#     speed to udp/9, which the policy drops in XDP: this machine's own
#     send rate, the highest it can send, measured in the same run;
#   attack: the same, to the controller port, for CTL_SECS (6) s, once
#     spoofing the controller's address and once from 244 addresses.
# Reported: each attack's rate as a ratio to the baseline of its trial,
# the heartbeats the agent took during it, heartbeat losses (audited
# heartbeat_lost lines: the figure to reach is 0), and what the datapath's
# budget admitted and dropped.

set -u
# shellcheck source=SCRIPTDIR/../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
CHECK_NAME="ctl_flood bench"
# shellcheck source=SCRIPTDIR/../e2e/checks.sh
. "$E2E_ROOT/tests/e2e/checks.sh"
# shellcheck source=SCRIPTDIR/../e2e/agent_lib.sh
. "$E2E_ROOT/tests/e2e/agent_lib.sh"
# shellcheck source=SCRIPTDIR/../e2e/outsider/ctlflood.sh
. "$E2E_ROOT/tests/e2e/outsider/ctlflood.sh"

PIN_DIR=/sys/fs/bpf/pc-ctlb-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC
BENCH_OUT=${BENCH_OUT:-$E2E_ROOT/bench-results}
CTL_TRIALS=${CTL_TRIALS:-3}
CF_SECS=${CTL_SECS:-6}
CF_FLOOD=${FLOOD_BIN:-$CF_FLOOD}
CUR=bench

die() { echo "ctl_flood: $*" >&2; exit 1; }

# ctl_counters: "admitted_mgmt admitted_other by_source mgmt other".
ctl_counters()
{
	pc status 2>/dev/null | sed -n 's/^controller port:.*admitted \([0-9]*\) management, \([0-9]*\) other; dropped \([0-9]*\) by source, \([0-9]*\) management, \([0-9]*\) other$/\1 \2 \3 \4 \5/p'
}

# one_run NAME SRC PORT: rate, heartbeats taken, losses, budget deltas.
one_run()
{
	local name=$1 src=$2 port=$3 hb0 acc0 acc1 c0 c1 sent rate
	hb0=$(audit_count heartbeat_lost)
	acc0=$(msg_count hb accepted)
	read -r -a c0 <<<"$(ctl_counters)"
	cf_send "$name" "$src" "$port"
	wait_until $((CF_SECS + 15)) cf_gone "$BG_LAST"
	acc1=$(msg_count hb accepted)
	read -r -a c1 <<<"$(ctl_counters)"
	read -r sent rate <<<"$(cf_rate "$name")"
	echo "${rate:-0} $((acc1 - acc0)) $(($(audit_count heartbeat_lost) - hb0))" \
		"$((c1[0] + c1[1] - c0[0] - c0[1]))" \
		"$((c1[2] + c1[3] + c1[4] - c0[2] - c0[3] - c0[4]))"
}

main()
{
	local t base att what src r
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	[ -x "$CF_FLOOD" ] || die "$CF_FLOOD missing (make build/flood)"
	mkdir -p "$BENCH_OUT"
	trap e2e_teardown EXIT
	e2e_setup && agent_prepare || die "lab setup failed"
	ensure_normal >/dev/null || die "the lab agent is not normal"
	cf_files
	cf_agent "$WORK/cf-agent.yaml" >/dev/null || die "the ctlflood agent did not start"
	wait_mode normal 15 || die "the ctlflood agent is not normal"
	printf 'trial\tattack\tbaseline_pps\tattack_pps\tratio\theartbeats_taken\theartbeat_losses\tadmitted\tbudget_dropped\n' \
		>"$BENCH_OUT/ctl_flood.tsv"
	for ((t = 1; t <= CTL_TRIALS; t++)); do
		read -r base _ <<<"$(one_run base "$LAB_MGMT4" 9)"
		for what in spoof many; do
			src=$LAB_MGMT4
			[ "$what" = many ] && src=192.0.2.11-192.0.2.254
			read -r -a r <<<"$(one_run "$what" "$src" 7800)"
			att=$(awk -v a="${r[0]}" -v b="$base" 'BEGIN { printf "%.2f", b ? a / b : 0 }')
			printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$what" "$base" \
				"${r[0]}" "$att" "${r[1]}" "${r[2]}" "${r[3]}" "${r[4]}" \
				>>"$BENCH_OUT/ctl_flood.tsv"
			echo "trial $t $what: ${r[0]}/s = $att x baseline ($base/s); heartbeats taken ${r[1]}, losses ${r[2]}"
		done
	done
	report
	daemon_stop TERM
}

report()
{
	{
		echo "# Controller port flood"
		echo
		echo "Host: $(uname -r), $(nproc) CPUs. The forged datagram: a well-formed wire-v2 heartbeat" \
			"naming the trusted key's id, with a random canonical signature ($(stat -c %s "$WORK/cf-forged.bin") bytes)," \
			"sent by build/flood (AF_PACKET) from the peer for $CF_SECS s. Baseline: the same sender" \
			"to a port the policy drops, in the same trial. Heartbeats every 200 ms, timeout 2 s; 8 trusted keys."
		echo
		echo "| trial | attack | baseline pps | attack pps | ratio | heartbeats taken | heartbeat losses | admitted by the budget | dropped by the budget |"
		echo "|---:|---|---:|---:|---:|---:|---:|---:|---:|"
		tail -n +2 "$BENCH_OUT/ctl_flood.tsv" | awk -F'\t' '{ printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2 == "spoof" ? "controller address spoofed" : "244 sources", $3, $4, $5, $6, $7, $8, $9 }'
		echo
		awk -F'\t' 'NR > 1 { n++; l += $7; r = (n == 1 || $5 < r) ? $5 : r } END {
			printf "**Heartbeat losses: %d over %d attacks** (target 0); lowest attack/baseline ratio %.2f.\n", l, n, r }' \
			"$BENCH_OUT/ctl_flood.tsv"
	} >"$BENCH_OUT/ctl_flood.md"
	cat "$BENCH_OUT/ctl_flood.md"
}

main "$@"

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# The spoofed flood the host's own flows survive, against this machine's
# own send rate measured in the same run:
#
#   bash tests/bench/flows.sh       (root; after make and make build/flood)
#
# The lab and agent of tests/e2e/outsider/flows.sh, rounds interleaved
# (BENCH_FLOWS_ROUNDS, 3), each of two unpaced floods of 2 packets from
# each of 3x pc_flows' size of spoofed (address, port) pairs:
#   own:    to a port the policy denies (XDP drops it, nothing is kept):
#           how fast this machine sends into the veth -- the baseline;
#   attack: to the allowed udp/5009 while the node holds an idle TCP
#           connection out; every packet passes and opens or uses a flow
#           the far end opened. Then the idle connection must still carry
#           3 round trips.
# Reported: the attack's send rate and the node's pass rate as ratios to
# the own rate, and in how many rounds the idle connection survived.
# Writes $BENCH_OUT/flows.md and flows.tsv.

set -u
# shellcheck source=SCRIPTDIR/../e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
CHECK_NAME="flows bench"
CHECK_WIDTH=10
# shellcheck source=SCRIPTDIR/../e2e/checks.sh
. "$E2E_ROOT/tests/e2e/checks.sh"
# shellcheck source=SCRIPTDIR/../e2e/agent_lib.sh
. "$E2E_ROOT/tests/e2e/agent_lib.sh"
# shellcheck source=SCRIPTDIR/../e2e/outsider/flows.sh
. "$E2E_ROOT/tests/e2e/outsider/flows.sh"

PIN_DIR=/sys/fs/bpf/pc-flbench-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC
HB_TIMEOUT_MS=2000
BENCH_OUT=${BENCH_OUT:-$E2E_ROOT/bench-results}
ROUNDS=${BENCH_FLOWS_ROUNDS:-3}
DENIED_PORT=5010	# nothing in the policy allows it

# median of the arguments (integers or decimals).
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

test_bench()
{
	local r p0 p1 own att pass_pps survived=0 owns=() atts=() passes=()
	fl_setup || { fl_restore; return 1; }
	mkdir -p "$BENCH_OUT"
	printf 'round\town_pps\tattack_pps\tnode_pass_pps\tsurvived\n' >"$BENCH_OUT/flows.tsv"
	for ((r = 1; r <= ROUNDS; r++)); do
		fl_flood "$DENIED_PORT" || { fail "round $r own: $FL_OUT"; continue; }
		own=$FL_RATE
		fl_idle_start || { fail "round $r: idle connection never worked"; continue; }
		p0=$(reason_count pass_rule ingress)
		fl_flood "$FL_PORT" || { fail "round $r attack: $FL_OUT"; fl_idle_end; continue; }
		att=$FL_RATE
		# What the node passed: counted once the counters settle.
		wait_until 10 fl_passed_at_least $((p0 + 2 * FL_NSRC))
		p1=$(reason_count pass_rule ingress)
		pass_pps=$(awk -v n=$((p1 - p0)) -v t="$FL_ELAPSED" 'BEGIN { printf "%d", n / t }')
		fl_idle_end
		if fl_survived; then
			survived=$((survived + 1))
			pass "round $r: own $own pps, attack $att pps, node passed $pass_pps pps; idle connection kept"
		else
			fail "round $r: own $own pps, attack $att pps, node passed $pass_pps pps; idle connection lost: $FL_SUMMARY"
		fi
		printf '%d\t%s\t%s\t%s\t%d\n' "$r" "$own" "$att" "$pass_pps" \
			"$(fl_survived && echo 1 || echo 0)" >>"$BENCH_OUT/flows.tsv"
		owns+=("$own") atts+=("$att") passes+=("$pass_pps")
	done
	fl_restore
	[ ${#owns[@]} -gt 0 ] || return 1
	own=$(median "${owns[@]}") att=$(median "${atts[@]}") pass_pps=$(median "${passes[@]}")
	{
		echo "## Flow table: the spoofed flood the host's own flows survive"
		echo
		echo "Per round: $((2 * FL_NSRC)) UDP packets, 2 from each of $FL_NSRC spoofed"
		echo "(address, port) pairs ($FL_FACTOR x pc_flows' $FL_MAX entries), unpaced, from the peer"
		echo "namespace over veth (tests/bench/flows.sh; medians of $ROUNDS rounds)."
		echo
		echo "| figure | pps | ratio to own send rate |"
		echo "|---|---:|---:|"
		echo "| own send rate (to a denied port, XDP drops it) | $own | 1 |"
		awk -v a="$att" -v p="$pass_pps" -v o="$own" 'BEGIN {
			printf "| attack send rate (to the allowed udp/5009) | %d | %.2f |\n", a, a / o
			printf "| node passed (every packet opens or uses a flow) | %d | %.2f |\n", p, p / o }'
		echo
		echo "The node's idle TCP connection out survived $survived of ${#owns[@]} rounds."
	} >"$BENCH_OUT/flows.md"
	cat "$BENCH_OUT/flows.md"
	[ "$survived" -eq "${#owns[@]}" ]
}

ALL_TESTS=(bench)
scenarios_main flows-bench "$@"

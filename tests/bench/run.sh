#!/usr/bin/env bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# make bench: every benchmark in one run, each against baselines measured
# in that same run, into one results folder:
#
#   bench-results/<UTC time>/results.md   the report (Markdown)
#   bench-results/<UTC time>/*.tsv        machine-readable figures
#   bench-results/<UTC time>/rules.png    per-packet cost vs rule count
#
# BENCH_PARTS picks parts (default: pkt veth swap tts agent fleet flows ctl).
set -u
cd "$(dirname "$0")/../.."
[ "$(id -u)" -eq 0 ] || { echo "bench: must run as root" >&2; exit 1; }

stamp=$(date -u +%Y%m%dT%H%M%SZ)
export BENCH_OUT=${BENCH_OUT:-$PWD/bench-results/$stamp}
export FLOOD_BIN=${FLOOD_BIN:-$PWD/build/flood}
mkdir -p "$BENCH_OUT"
parts=${BENCH_PARTS:-pkt veth swap tts agent fleet flows ctl}
failed=()

run_part()
{
	local name=$1
	shift
	echo "== bench: $name"
	if ! "$@"; then
		failed+=("$name")
		echo "bench: part '$name' failed" >&2
	fi
}

for p in $parts; do
	case $p in
	pkt) run_part pkt build/bench_pkt build/trivial.bpf.o build/probe.bpf.o &&
		gnuplot -e "dir='$BENCH_OUT'" tests/bench/plot.gp ;;
	veth) run_part veth bash tests/bench/veth.sh ;;
	swap) run_part swap bash tests/bench/swap.sh ;;
	tts) run_part tts bash tests/bench/tts.sh ;;
	agent) run_part agent bash tests/bench/agent_cost.sh ;;
	fleet) run_part fleet bash tests/bench/fleet_fanout.sh ;;
	flows) run_part flows bash tests/bench/flows.sh ;;
	ctl) run_part ctl bash tests/bench/ctl_flood.sh ;;
	*) echo "bench: unknown part '$p'" >&2; failed+=("$p") ;;
	esac
done

{
	echo "# Portcullis benchmark results"
	echo
	echo "Run $stamp on $(uname -n): kernel $(uname -r), $(nproc) CPUs," \
		"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')."
	echo "Every ratio is against a baseline measured in this same run."
	echo
	for p in pkt veth swap tts agent fleet_fanout flows ctl_flood; do
		[ -f "$BENCH_OUT/$p.md" ] && { cat "$BENCH_OUT/$p.md"; echo; }
	done
	if [ ${#failed[@]} -gt 0 ]; then
		echo "Parts that failed to run: ${failed[*]}"
	fi
} >"$BENCH_OUT/results.md"
ln -sfn "$stamp" "$(dirname "$BENCH_OUT")/latest" 2>/dev/null
echo "bench: report in $BENCH_OUT/results.md"
[ ${#failed[@]} -eq 0 ]

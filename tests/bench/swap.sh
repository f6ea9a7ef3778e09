#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Policy swap: how long `portcullis apply` takes to replace a policy of
# 100,000 CIDRs, against `nft -f` loading the same rules as a set; and
# whether a packet leaks while policies are swapped under traffic.
#
#   bash tests/bench/swap.sh        (root; after `make`; about a minute)
#
# 1. Apply time. A policy with one deny rule whose cidr_file holds
#    SWAP_CIDRS distinct /32s, plus a few port rules, applied with
#    `portcullis apply` (parse, check, compile, write the idle slot, flip,
#    wait for RCU) to a portcullisd running on a veth; the same rules as
#    one nft transaction (`table inet` with an interval set, deleted and
#    re-created in the same file, so it is atomic too) in a namespace of
#    its own. Each SWAP_REPEAT times, alternating two variants so every
#    run really replaces something; the median, wall clock around the
#    command.
# 2. Leaks. While two numbered UDP streams run from the sender namespace
#    (tests/bench/flood.c --seq, paced, bounded in count and time) - A from
#    203.0.113.66, which both policies deny, B from 198.51.100.77, which
#    both allow - `portcullis apply` alternates between two policies
#    (different blocklists and allowlists) SWAP_SWAPS times. Both policies
#    also hold an allow rule for A's port from anywhere: only the deny rule
#    stops A, so a torn swap (allows before denies, a half-written slot)
#    would let A through. The receiver (flood recv) must see no packet of
#    A and every packet of B.
#
# Output: $BENCH_OUT/swap.tsv (every measurement) and $BENCH_OUT/swap.md.

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PCD=${PCD:-$ROOT/build/portcullisd}
PCCLI=${PCCLI:-$ROOT/build/portcullis}
PY=/usr/bin/python3
BENCH_OUT=${BENCH_OUT:-$ROOT/build/bench}
SWAP_CIDRS=${SWAP_CIDRS:-100000}
SWAP_REPEAT=${SWAP_REPEAT:-3}
SWAP_SWAPS=${SWAP_SWAPS:-40}
SWAP_STREAM_PACKETS=${SWAP_STREAM_PACKETS:-100000}	# per stream
SWAP_STREAM_PPS=${SWAP_STREAM_PPS:-10000}		# per stream

ID=$(($$ % 10000))
NS_S=pcbw${ID}s		# sender
NS_R=pcbw${ID}r		# receiver, Portcullis
NS_N=pcbw${ID}n		# nft timing, no interfaces
IF_S=pcws$ID
IF_R=pcwr$ID
ADDR_R=192.0.2.1
SRC_A=203.0.113.66
SRC_B=198.51.100.77
PORT=5000
PIN_DIR=/sys/fs/bpf/pcb-swap-$$
WORK=
RECV_WRAP=
SEND_PIDS=()
FLOOD=
MAC_R=

log() { printf 'swap: %s\n' "$*" >&2; }
# shellcheck source=SCRIPTDIR/pc_agent.sh
. "$ROOT/tests/bench/pc_agent.sh"

cleanup()
{
	local pid
	for pid in "${SEND_PIDS[@]}" $RECV_WRAP; do
		kill -s TERM "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	pc_stop
	for ns in "$NS_S" "$NS_R" "$NS_N"; do
		[ -e "/run/netns/$ns" ] && ip netns del "$ns"
	done
	[ -d "$PIN_DIR" ] && rm -rf -- "$PIN_DIR"
	[ -n "$WORK" ] && [ -d "$WORK" ] && rm -rf -- "$WORK"
	return 0
}

in_r() { ip netns exec "$NS_R" "$@"; }
in_s() { ip netns exec "$NS_S" "$@"; }

now_ns() { date +%s%N; }

build_tools()
{
	if [ -n "${FLOOD_BIN:-}" ]; then
		FLOOD=$FLOOD_BIN
		return 0
	fi
	FLOOD=$WORK/flood
	gcc -g -O2 -std=gnu11 -Wall -Wextra -Werror -Wno-unused-parameter \
		-D_GNU_SOURCE "$ROOT/tests/bench/flood.c" -lbpf -o "$FLOOD"
}

net_up()
{
	ip netns add "$NS_S" && ip netns add "$NS_R" && ip netns add "$NS_N" ||
		return 1
	ip -n "$NS_S" link add "$IF_S" type veth peer name "$IF_R" netns "$NS_R" ||
		return 1
	ip -n "$NS_S" link set lo up && ip -n "$NS_R" link set lo up &&
	ip -n "$NS_N" link set lo up &&
	ip -n "$NS_S" link set "$IF_S" up && ip -n "$NS_R" link set "$IF_R" up &&
	ip -n "$NS_R" addr add "$ADDR_R/24" dev "$IF_R" &&
	ip -n "$NS_R" route add default dev "$IF_R" || return 1
	in_r sysctl -qw net.ipv4.conf.all.rp_filter=0 \
		"net.ipv4.conf.$IF_R.rp_filter=0" || return 1
	MAC_R=$(ip -n "$NS_R" -br link show "$IF_R" | awk '{ print $3 }')
}

# cidrs N SEED: N distinct /32s in 240.0.0.0/4 (reserved, never routed:
# they only fill maps, no packet uses them), different for each SEED.
cidrs()
{
	awk -v n="$1" -v seed="$2" 'BEGIN {
		for (i = 0; i < n; i++) {
			a = ((i + seed * 16777216) * 2654435761) % 268435456
			printf "%d.%d.%d.%d/32\n", 240 + int(a / 16777216), \
				int(a / 65536) % 256, int(a / 256) % 256, a % 256
		}
	}'
}

# ---- Portcullis ----


# ---- policies ----

POLICY_HEAD=
policies_write()
{
	POLICY_HEAD="interfaces: [$IF_R]
defaults: {ingress: deny, egress: allow}
management:
  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}
rules:"
	cidrs "$SWAP_CIDRS" 1 >"$WORK/big.txt"
	# Big policies, a and b: the same blocklist, one port rule apart.
	for v in a b; do
		{
			printf '%s\n' "$POLICY_HEAD"
			echo "  - {name: blocklist, action: deny, direction: both, cidr_file: big.txt}"
			echo "  - {name: ssh, action: allow, direction: ingress, proto: tcp, ports: 22}"
			echo "  - {name: web, action: allow, direction: ingress, proto: tcp, ports: [80, 443]}"
			echo "  - {name: dns, action: allow, direction: egress, proto: udp, ports: 53}"
			[ "$v" = b ] &&
				echo "  - {name: alt, action: allow, direction: ingress, proto: tcp, ports: 8080}"
		} >"$WORK/big-$v.yaml"
		nft_file "$v" >"$WORK/big-$v.nft"
	done
	# Swap policies X and Y: both deny A by a rule and allow B, with
	# an allow for the stream port from anywhere behind the deny.
	cidrs 1000 2 >"$WORK/list-x.txt"
	cidrs 1000 3 >"$WORK/list-y.txt"
	{
		printf '%s\n' "$POLICY_HEAD"
		echo "  - {name: block-x, action: deny, direction: ingress, cidr: 203.0.113.0/24, cidr_file: list-x.txt}"
		echo "  - {name: stream-any, action: allow, direction: ingress, proto: udp, ports: $PORT}"
		echo "  - {name: allow-x, action: allow, direction: ingress, cidr: 198.51.100.0/24, proto: udp, ports: 5000-5010}"
	} >"$WORK/swap-x.yaml"
	{
		printf '%s\n' "$POLICY_HEAD"
		echo "  - {name: block-y, action: deny, direction: ingress, cidr: [203.0.113.64/26, 192.0.2.128/25], cidr_file: list-y.txt}"
		echo "  - {name: stream-any, action: allow, direction: ingress, proto: udp, ports: [$PORT, 6000]}"
		echo "  - {name: allow-y, action: allow, direction: ingress, cidr: 198.51.100.77/32, proto: udp, ports: $PORT}"
		echo "  - {name: web-y, action: allow, direction: ingress, proto: tcp, ports: 80}"
	} >"$WORK/swap-y.yaml"
}

# The big policy as one nft transaction: delete and re-create the table.
nft_file()
{
	echo "table inet pcswap"
	echo "delete table inet pcswap"
	echo "table inet pcswap {"
	echo "	set blocklist {"
	echo "		type ipv4_addr; flags interval"
	printf '\t\telements = { '
	paste -sd, "$WORK/big.txt"
	echo "		}"
	echo "	}"
	echo "	chain input {"
	echo "		type filter hook input priority 0; policy drop"
	echo "		ct state established,related accept"
	echo "		ip saddr 192.0.2.10 tcp dport 22 accept"
	echo "		ip saddr @blocklist drop"
	echo "		tcp dport 22 accept"
	echo "		tcp dport { 80, 443 } accept"
	[ "$1" = b ] && echo "		tcp dport 8080 accept"
	echo "	}"
	echo "	chain output {"
	echo "		type filter hook output priority 0; policy accept"
	echo "		ip daddr @blocklist drop"
	echo "	}"
	echo "}"
}

# ---- 1. apply time ----

# timed KIND RUN CMD...: one TSV row "apply KIND RUN REAL USER SYS"
# (seconds; user and system time of the command and its children).
timed()
{
	local kind=$1 run=$2 TIMEFORMAT='%3R %3U %3S' rus
	shift 2
	{ time "$@" >"$WORK/timed.out" 2>&1; } 2>"$WORK/timed.t" || {
		log "$kind run $run failed:"
		sed 's/^/    /' "$WORK/timed.out" >&2
		return 1
	}
	read -r -a rus <"$WORK/timed.t"
	printf 'apply\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$run" "${rus[@]}"
}

apply_times()
{
	local i v
	# Prime nft with the table so every timed run replaces one.
	ip netns exec "$NS_N" nft -f "$WORK/big-a.nft" || return 1
	for ((i = 1; i <= SWAP_REPEAT; i++)); do
		v=b; [ $((i % 2)) = 0 ] && v=a
		timed portcullis-apply "$i" pc apply "$WORK/big-$v.yaml" || return 1
		timed nft-f "$i" ip netns exec "$NS_N" nft -f "$WORK/big-$v.nft" || return 1
	done
}

# ---- 2. leaks ----

leak_test()
{
	local i t0 t1 pid d0 d1 v src n=0 fails=0
	start_bg() { "$@" & SEND_PIDS+=("$!"); }
	timeout 120 ip netns exec "$NS_R" "$FLOOD" recv --port "$PORT" \
		--duration 100 --idle 3 >"$WORK/recv.out" 2>&1 &
	RECV_WRAP=$!
	for ((i = 0; i < 50; i++)); do
		grep -q '^listening' "$WORK/recv.out" && break
		sleep 0.1
	done
	d0=$(pc_reason drop_deny_rule)
	for src in "$SRC_A" "$SRC_B"; do
		start_bg timeout 120 ip netns exec "$NS_S" "$FLOOD" send --ifname "$IF_S" \
			--dst-mac "$MAC_R" --src "$src" --dst "$ADDR_R" --dport "$PORT" \
			--seq --batch 8 --pps "$SWAP_STREAM_PPS" \
			--count "$SWAP_STREAM_PACKETS" --duration 60 \
			>"$WORK/send-$src.out" 2>&1
	done
	sleep 0.2
	t0=$(now_ns)
	for ((i = 1; i <= SWAP_SWAPS; i++)); do
		v=x; [ $((i % 2)) = 0 ] && v=y
		if pc apply "$WORK/swap-$v.yaml" >>"$WORK/swaps.log" 2>&1; then
			n=$((n + 1))
		else
			fails=$((fails + 1))
		fi
		# Stop swapping when the streams are done: the swaps must
		# happen under traffic.
		kill -0 "${SEND_PIDS[0]}" 2>/dev/null || break
	done
	t1=$(now_ns)
	for pid in "${SEND_PIDS[@]}"; do
		wait "$pid"
	done
	SEND_PIDS=()
	wait "$RECV_WRAP"
	RECV_WRAP=
	d1=$(pc_reason drop_deny_rule)
	printf 'swaps\tdone\t%s\tfailed\t%s\tseconds\t%s\n' "$n" "$fails" \
		"$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.3f", d / 1e9 }')"
	for src in "$SRC_A" "$SRC_B"; do
		awk -v s="$src" '{ printf "sent\t%s\t%s\n", s, $2 }' "$WORK/send-$src.out"
	done
	awk '$1 == "src" { printf "recv\t%s\t%s\t%s\t%s\t%s\n", $2, $4, $6, $8, $12 }' \
		"$WORK/recv.out"
	printf 'deny_drops\t%s\n' $((d1 - d0))
}

report()
{
	"$PY" - "$BENCH_OUT/swap.tsv" "$BENCH_OUT/swap.md" "$SWAP_CIDRS" \
		"$SRC_A" "$SRC_B" <<'PYEOF'
import statistics, sys
tsv, md, ncidr, src_a, src_b = sys.argv[1:6]
apply, sent, recv, swaps, deny = {}, {}, {}, None, None
for l in open(tsv):
    f = l.rstrip("\n").split("\t")
    if f[0] == "apply":
        apply.setdefault(f[1], []).append(tuple(map(float, f[3:6])))
    elif f[0] == "sent":
        sent[f[1]] = int(f[2])
    elif f[0] == "recv":
        recv[f[1]] = dict(zip(("packets", "distinct", "dups", "missing"), map(int, f[2:6])))
    elif f[0] == "swaps":
        swaps = (int(f[2]), int(f[4]), float(f[6]))
    elif f[0] == "deny_drops":
        deny = int(f[1])
out = ["## Policy swap\n"]
out.append("### Apply time, %s CIDRs\n" % format(int(ncidr), ","))
out.append("| method | runs, wall (s) | median wall (s) | median user (s) | median system (s) |")
out.append("|---|---|---:|---:|---:|")
med = {}
for k, v in apply.items():
    med[k] = statistics.median(x[0] for x in v)
    out.append("| %s | %s | %.3f | %.3f | %.3f |" % (k, ", ".join("%.3f" % x[0] for x in v),
               med[k], statistics.median(x[1] for x in v), statistics.median(x[2] for x in v)))
out.append("")
out.append("Wall clock (bash `time`) around the command: `portcullis apply` includes reading and "
           "checking the YAML and the list, compiling, writing the idle slot, the flip and "
           "the RCU wait; `nft -f` one transaction deleting and re-creating the table "
           "(interval set), in a namespace of its own.\n")
a = sent.get(src_a, 0); b = sent.get(src_b, 0)
ra = recv.get(src_a, {"packets": 0, "distinct": 0, "dups": 0, "missing": 0})
rb = recv.get(src_b, {"packets": 0, "distinct": 0, "dups": 0, "missing": 0})
out.append("### Packets during swaps\n")
if swaps:
    out.append("%d swaps (`portcullis apply`, alternating two policies; %d failed) in %.1f s, "
               "%.0f ms each, under two streams.\n" % (swaps[0], swaps[1], swaps[2],
               1000 * swaps[2] / max(swaps[0] + swaps[1], 1)))
out.append("| stream | sent | received | lost | duplicates |")
out.append("|---|---:|---:|---:|---:|")
out.append("| A %s (denied by both) | %d | %d | - | %d |" % (src_a, a, ra["packets"], ra["dups"]))
out.append("| B %s (allowed by both) | %d | %d | %d | %d |" % (src_b, b, rb["distinct"], b - rb["distinct"], rb["dups"]))
out.append("")
if deny is not None:
    out.append("Portcullis counted %d ingress drops by deny rules over the test (stream A: %d sent).\n" % (deny, a))
checks = []
def check(label, ok, val):
    checks.append("| %s | %s | %s |" % (label, val, "PASS" if ok else "FAIL"))
if "portcullis-apply" in med and "nft-f" in med:
    r = med["nft-f"] / med["portcullis-apply"]
    check("apply >= 5x faster than nft -f", r >= 5, "%.2fx" % r)
check("zero packets of A received", ra["packets"] == 0 and a > 0, str(ra["packets"]))
check("all of B received", b > 0 and rb["distinct"] == b, "%d of %d" % (rb["distinct"], b))
check("swaps under traffic", bool(swaps) and swaps[0] >= 2 and swaps[1] == 0,
      "%d done, %d failed" % (swaps[0], swaps[1]) if swaps else "none")
out.append("| target | value | result |")
out.append("|---|---|---|")
out.extend(checks)
out.append("")
open(md, "w").write("\n".join(out) + "\n")
print("\n".join(out))
PYEOF
}

main()
{
	if [ "$(id -u)" != 0 ]; then log "must run as root"; exit 1; fi
	if [ ! -x "$PCD" ] || [ ! -x "$PCCLI" ]; then log "build first: make"; exit 1; fi
	trap cleanup EXIT
	trap 'exit 130' INT TERM
	WORK=$(mktemp -d /tmp/pcb-swap.XXXXXX) || exit 1
	mkdir -p "$BENCH_OUT" || exit 1
	mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
	build_tools || { log "cannot build flood"; exit 1; }
	net_up || { log "cannot set up the namespaces"; exit 1; }
	policies_write || exit 1
	pc_start "$WORK/swap-x.yaml" || exit 1
	: >"$BENCH_OUT/swap.tsv"
	apply_times >>"$BENCH_OUT/swap.tsv" || exit 1
	pc apply "$WORK/swap-x.yaml" >/dev/null || exit 1
	leak_test >>"$BENCH_OUT/swap.tsv" || exit 1
	report
}

main "$@"

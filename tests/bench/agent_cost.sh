#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# What the agent costs the host, in the namespace lab:
#
#   bash tests/bench/agent_cost.sh      (root; after make; about 1.5 minutes)
#
# Writes $BENCH_OUT/agent.md and $BENCH_OUT/agent.tsv (BENCH_OUT defaults
# to ./bench-results):
#   - idle: VmRSS, and CPU over IDLE_S (10) s from /proc/PID/stat
#     (utime + stime, clock ticks) and /proc/PID/task/*/schedstat (ns), with
#     `portcullis controller heartbeat` sending every second;
#   - /metrics scrapes (curl in the node namespace, median of SCRAPES (20)),
#     with the lab policy, then with the largest policy we take (128
#     entries, our limit, one rule a cidr_file of 100,000 CIDRs) and
#     FLOWS (50,000) flows in the table: time per scrape and agent CPU per
#     scrape;
#   - enforcement while scrapes run back to back: allowed probes all pass,
#     denied ones never do, and a signed quarantine still drops the first
#     packet as fast as with no scrapes (tests/bench/tts/tts_probe.c);
#   - a 10,000-rule policy, refused: beyond the 128-rule limit.

set -u
# shellcheck source=SCRIPTDIR/e2e/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../e2e/lib.sh"
# shellcheck source=SCRIPTDIR/tts/lib.sh
. "$E2E_ROOT/tests/bench/tts/lib.sh"

PIN_DIR=/sys/fs/bpf/pc-cost-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC

IDLE_S=${IDLE_S:-10}
SCRAPES=${SCRAPES:-20}
FLOWS=${FLOWS:-50000}
BIG_CIDRS=${BIG_CIDRS:-100000}
CMD_TRIALS=${CMD_TRIALS:-100}
RELOAD_STREAM_S=${RELOAD_STREAM_S:-8}	# probing while the big policy loads
METRICS=127.0.0.1:9712
HZ=$(getconf CLK_TCK)
STARTED=$SECONDS
TSV_ROWS=()

say() { printf '[%3ds] %s\n' $((SECONDS - STARTED)) "$*"; }

die()
{
	echo "agent_cost: $*" >&2
	exit 1
}

# row NAME VALUE UNIT: one line of agent.tsv.
row() { TSV_ROWS+=("$1	$2	$3"); }

median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

# The largest policy: the lab's 3 management entries and 5 rules, a deny
# rule over a cidr_file of BIG_CIDRS IPv6 /64s (documentation space,
# 2001:db8:fe00::/39, which the lab does not use), and allow rules up to
# the 128-entry limit.
make_big_policy()
{
	"$PY" - "$WORK" "$AGENT_POLICY_SRC" "$BIG_CIDRS" <<'PYEOF'
import sys
work, src, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(work + "/big-cidrs.txt", "w") as f:
    for i in range(n):
        f.write("2001:db8:%x:%x::/64\n" % (0xfe00 + (i >> 16), i & 0xffff))
lines = [l for l in open(src) if not l.startswith("#")]
nmgmt = sum(1 for l in lines if l.startswith("  - {cidr:"))
nrules = sum(1 for l in lines if l.startswith("  - {name:"))
out = lines + ["  - {name: big-list, action: deny, direction: both, "
               "cidr_file: big-cidrs.txt}\n"]
for i in range(128 - nmgmt - nrules - 1):
    out.append("  - {name: fill-%d, action: allow, direction: ingress, "
               "proto: tcp, ports: %d, cidr: 198.51.100.0/24, modes: [normal]}\n"
               % (i, 20000 + i))
open(work + "/big.yaml", "w").writelines(out)
# 10,000 rules: beyond PC_MAX_RULES.
out = lines + ["  - {name: r%d, action: allow, direction: ingress, proto: tcp, "
               "ports: %d}\n" % (i, 1024 + i) for i in range(10000)]
open(work + "/huge/policy.yaml", "w").writelines(out)
PYEOF
}

# scrape_times N: N scrapes in a row; their durations (s), one a line.
scrape_times()
{
	ip netns exec "$LAB_NODE" timeout 120 bash -c '
		for ((i = 0; i < $1; i++)); do
			curl -s -o /dev/null --max-time 10 \
				-w "%{time_total} %{size_download} %{http_code}\n" "$2"
		done' _ "$1" "http://$METRICS/metrics"
}

# scrape_cost TAG: SCRAPES scrapes; median time, size, agent CPU each.
scrape_cost()
{
	local tag=$1 c0 c1 t0 t1 med size codes cpu
	c0=$(cpu_ns "$DAEMON_PID")
	t0=$(date +%s%N)
	scrape_times "$SCRAPES" >"$WORK/scrape-$tag.txt"
	t1=$(date +%s%N)
	c1=$(cpu_ns "$DAEMON_PID")
	codes=$(awk '$3 != 200' "$WORK/scrape-$tag.txt" | wc -l)
	[ "$codes" -eq 0 ] || die "$codes scrapes did not answer 200"
	med=$(awk '{ print $1 * 1000 }' "$WORK/scrape-$tag.txt" | median)
	size=$(awk 'END { print $2 }' "$WORK/scrape-$tag.txt")
	# Less what the idle agent would have used in the same time.
	cpu=$(awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" -v r="$IDLE_RATE" \
		-v n="$SCRAPES" 'BEGIN { v = (c - r * t) / n / 1e6; printf "%.2f", (v < 0 ? 0 : v) }')
	row "scrape_${tag}_median_ms" "$med" ms
	row "scrape_${tag}_agent_cpu_ms" "$cpu" ms
	row "scrape_${tag}_bytes" "$size" bytes
	eval "S_${tag}_MED=\$med S_${tag}_CPU=\$cpu S_${tag}_SIZE=\$size"
	say "scrape ($tag): median $med ms, agent CPU $cpu ms a scrape, $size bytes"
}

metric() { ip netns exec "$LAB_NODE" curl -s --max-time 10 "http://$METRICS/metrics" | awk -v m="portcullis_$1" '$1 == m { print $2; exit }'; }

idle_cost()
{
	local c0 c1 k0 k1 t0 t1
	sleep 2
	c0=$(cpu_ns "$DAEMON_PID")
	k0=$(cpu_ticks "$DAEMON_PID")
	t0=$(date +%s%N)
	sleep "$IDLE_S"
	c1=$(cpu_ns "$DAEMON_PID")
	k1=$(cpu_ticks "$DAEMON_PID")
	t1=$(date +%s%N)
	IDLE_RATE=$(awk -v c="$((c1 - c0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.8f", c / t }')
	IDLE_RSS=$(rss_kb "$DAEMON_PID")
	IDLE_TICKS=$((k1 - k0))
	IDLE_PCT=$(awk -v r="$IDLE_RATE" 'BEGIN { printf "%.3f", r * 100 }')
	IDLE_MS=$(awk -v c="$((c1 - c0))" 'BEGIN { printf "%.1f", c / 1e6 }')
	row idle_rss_kb "$IDLE_RSS" kB
	row idle_cpu_ticks_10s "$IDLE_TICKS" "ticks(1/$HZ s)"
	row idle_cpu_ms_10s "$IDLE_MS" ms
	row idle_cpu_percent "$IDLE_PCT" "%"
	say "idle: RSS $IDLE_RSS kB, CPU $IDLE_MS ms in ${IDLE_S} s ($IDLE_TICKS ticks), $IDLE_PCT %"
}

# drop_packets REASON: ingress packets of one drop reason, from status.
drop_packets()
{
	pc status 2>/dev/null | awk -v r="$1" '$1 == r { print $2; f = 1 }
		END { if (!f) print 0 }'
}

# The largest policy by SIGHUP, while probes stream from the peer every
# 200 us: the reload runs in the agent's one thread (no heartbeat is taken
# meanwhile), the datapath keeps enforcing the old policy until the swap.
big_policy()
{
	local dm0 dm1 st hup
	cp "$WORK/big.yaml" "$WORK/policy.yaml"
	dm0=$(drop_packets drop_deadman)
	probe_cmd /dev/null 5 reset >/dev/null
	(
		sleep 0.5
		date +%s%3N >"$WORK/hup.ms"
		kill -s HUP "$DAEMON_PID"
	) &
	hup=$!
	BG_PIDS+=("$hup")
	probe_cmd /dev/null 40 stream "$RELOAD_STREAM_S" 200 >/dev/null || die "stream"
	wait "$hup" 2>/dev/null
	st=$(probe_cmd /dev/null 5 stats)
	wait_for_line "$DAEMON_LOG" 'reloaded policy' 30 "$DAEMON_PID" ||
		die "big policy not loaded: $(tail -n 3 "$DAEMON_LOG")"
	dm1=$(drop_packets drop_deadman)
	BIG_LOAD_MS=$("$PY" - "$AUDIT_LOG" "$(cat "$WORK/hup.ms")" <<'PYEOF'
import datetime, json, sys
t0 = int(sys.argv[2])
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("event") == "policy_loaded" and e.get("reason") == "reload":
        ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
        ts = ts.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
        print(int(round(ts - t0)))
PYEOF
)
	BIG_LINE=$(grep 'reloaded policy' "$DAEMON_LOG" | tail -n 1)
	RELOAD_STATS=${st#ok }
	read -r _ RL_SENT _ RL_RX _ RL_GAPS _ <<<"$RELOAD_STATS"
	RELOAD_DEADMAN=$((dm1 - dm0))
	row big_policy_reload_ms "$BIG_LOAD_MS" ms
	row big_policy_rss_kb "$(rss_kb "$DAEMON_PID")" kB
	row reload_probes_sent "$RL_SENT" packets
	row reload_probes_received "$RL_RX" packets
	row reload_drop_deadman "$RELOAD_DEADMAN" packets
	say "largest policy: SIGHUP -> policy_loaded in $BIG_LOAD_MS ms: ${BIG_LINE##*: }"
	say "during the reload: probes $RELOAD_STATS; drop_deadman +$RELOAD_DEADMAN"
}

fill_flows()
{
	local n
	probe_cmd /dev/null 30 flows "$FLOWS" "$PROBE_PORT" >/dev/null || die "flows"
	sleep 0.5
	n=$(metric flows)
	FLOWS_NOW=${n:-?}
	row flows_in_table "$FLOWS_NOW" entries
	say "flow table: $FLOWS_NOW entries"
}

# Scrapes back to back in the background while probes run: the datapath
# and the agent's command handling must not notice.
under_scrapes()
{
	local pid st
	probe_cmd "$WORK/raw-cmd-idle.tsv" 60 cmdloop "$CMD_TRIALS" 20 40 >/dev/null ||
		die "command trials (no scrapes)"
	ip netns exec "$LAB_NODE" timeout 60 bash -c '
		end=$((SECONDS + 40)); n=0
		while [ $SECONDS -lt $end ] && [ ! -e "$2" ]; do
			curl -s -o /dev/null --max-time 10 "$1" && n=$((n + 1))
		done
		echo "$n"' _ "http://$METRICS/metrics" "$WORK/scrapes.stop" \
		>"$WORK/scrape-loop.out" 2>&1 &
	pid=$!
	BG_PIDS+=("$pid")
	probe_cmd /dev/null 5 reset >/dev/null
	probe_cmd /dev/null 60 stream 5 100 >/dev/null || die "stream"
	st=$(probe_cmd /dev/null 5 stats)
	probe_cmd "$WORK/raw-cmd-scrape.tsv" 60 cmdloop "$CMD_TRIALS" 20 40 >/dev/null ||
		die "command trials (scrapes)"
	touch "$WORK/scrapes.stop"
	wait "$pid" 2>/dev/null
	STREAM_STATS=${st#ok }
	SCRAPES_DONE=$(tail -n 1 "$WORK/scrape-loop.out")
	say "under scrapes ($SCRAPES_DONE scrapes): probes $STREAM_STATS"
	read -r _ STREAM_SENT _ STREAM_RX _ STREAM_GAPS _ _ _ DENY_SENT _ DENY_RX _ <<<"$STREAM_STATS"
	row scrape_loop_scrapes "$SCRAPES_DONE" scrapes
	row scrape_loop_probes_sent "$STREAM_SENT" packets
	row scrape_loop_probes_received "$STREAM_RX" packets
	row scrape_loop_denied_sent "$DENY_SENT" packets
	row scrape_loop_denied_received "$DENY_RX" packets
	TTS_IDLE=$(cmd_pcts "$WORK/raw-cmd-idle.tsv")
	TTS_SCRAPE=$(cmd_pcts "$WORK/raw-cmd-scrape.tsv")
	row tts_no_scrapes_p50_p99_max_us "$TTS_IDLE" us
	row tts_under_scrapes_p50_p99_max_us "$TTS_SCRAPE" us
	say "signed quarantine -> first drop p50/p99/max: $TTS_IDLE us idle, $TTS_SCRAPE us under scrapes"
}

# cmd_pcts RAW: "p50/p99/max" of command -> first drop (us).
cmd_pcts()
{
	awk -F'\t' '$1 == "cmd" && !$7 { print $3 }' "$1" | sort -g | awk '
		{ a[NR] = $1 }
		END {
			i50 = int(NR * 0.50 + 0.999); i99 = int(NR * 0.99 + 0.999)
			printf "%.0f/%.0f/%.0f", a[i50], a[i99], a[NR]
		}'
}

too_many_rules()
{
	cp "$WORK/agent.yaml" "$WORK/controller.pub" "$WORK/huge/"
	"$PCD" --check-config "$WORK/huge/agent.yaml" >"$WORK/huge.out" 2>&1
	HUGE_RC=$?
	HUGE_MSG=$(head -n 1 "$WORK/huge.out" | sed "s|$WORK/||")
	row policy_10000_rules_check_config_rc "$HUGE_RC" exit
	say "10,000 rules: --check-config -> $HUGE_RC: $HUGE_MSG"
}

write_report()
{
	local r
	{
		printf 'measure\tvalue\tunit\n'
		for r in "${TSV_ROWS[@]}"; do printf '%s\n' "$r"; done
	} >"$BENCH_OUT/agent.tsv"
	cat >"$BENCH_OUT/agent.md" <<EOF
# Agent cost

Host: $(host_line). Load average at the start: $LOAD0; all CPUs
$BUSY % busy over the run, everyone's work included (others' jobs share
this host). portcullisd from build/, XDP $(xdp_mode_used)
on the lab veth, metrics on $METRICS (node namespace), heartbeats from
\`portcullis controller heartbeat --interval 1000\`, timeout 3 s.

## Idle

| | value |
|---|---:|
| VmRSS | $IDLE_RSS kB |
| CPU over ${IDLE_S} s, utime+stime (/proc/PID/stat) | $IDLE_TICKS ticks of 1/$HZ s |
| CPU over ${IDLE_S} s, all threads (schedstat) | $IDLE_MS ms ($IDLE_PCT % of one CPU) |

The agent wakes every 100 ms (its tick) and once a second for a heartbeat;
a clock tick is 10 ms, so /proc/PID/stat rounds that to a few ticks at
most; schedstat counts nanoseconds.

## /metrics scrapes

$SCRAPES scrapes in a row with curl from the node namespace; time is curl's
time_total (connect to last byte); agent CPU is its schedstat time during
the scrapes less the idle rate, per scrape.

| policy, flow table | median time | agent CPU a scrape | body |
|---|---:|---:|---:|
| lab policy (8 entries), no flows | $S_small_MED ms | $S_small_CPU ms | $S_small_SIZE B |
| 128 entries incl. a ${BIG_CIDRS}-CIDR cidr_file, $FLOWS_NOW flows | $S_big_MED ms | $S_big_CPU ms | $S_big_SIZE B |

The largest policy: ${BIG_LINE##*: }; SIGHUP to its policy_loaded audit
record: $BIG_LOAD_MS ms (the agent's one thread parses, compiles and writes
the maps meanwhile; heartbeat timeout 3 s, kernel dead-man on). Probes every
200 us during the reload (${RELOAD_STREAM_S} s): $RL_SENT sent, $RL_RX received
(allowed in both policies), drop_deadman packets +$RELOAD_DEADMAN.
VmRSS after it: $(awk -F'\t' '$1 == "big_policy_rss_kb" { print $2 }' "$BENCH_OUT/agent.tsv") kB, after the scrapes: $RSS_END kB.
A policy of 10,000 rules is beyond our limit of 128 rules per policy
(management entries included; long address lists go in a cidr_file):
\`portcullisd --check-config\` exits $HUGE_RC with
\`$HUGE_MSG\`.

## Enforcement while scrapes run back to back

$SCRAPES_DONE scrapes ran back to back (largest policy, full flow table)
while probes streamed from the peer every 100 us and signed commands came
in:

| | value |
|---|---:|
| allowed probes (udp/$PROBE_PORT) sent / received | $STREAM_SENT / $STREAM_RX |
| denied probes (udp/$PROBE_DENY_PORT) sent / received | $DENY_SENT / $DENY_RX |
| signed quarantine -> first drop, p50/p99/max, no scrapes ($CMD_TRIALS trials) | $TTS_IDLE us |
| the same under scrapes ($CMD_TRIALS trials) | $TTS_SCRAPE us |
EOF
}

main()
{
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	[ -x "$PCD" ] && [ -x "$PCCLI" ] || die "build first: make"
	trap bench_teardown EXIT
	LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
	SNAP0=$(cpu_snap)
	bench_setup || die "lab setup"
	mkdir -p "$WORK/huge"
	make_big_policy || die "policy generation"
	bench_config "$WORK/agent.yaml" 3s true
	probe_start || die "tts_probe did not start"
	hb_start 1000
	DAEMON_CONFIG=$WORK/agent.yaml
	bench_daemon_start --metrics "$METRICS" || die "agent did not start"
	probe_cmd /dev/null 10 pass 5000 >/dev/null || die "probes do not pass"
	say "lab $LAB_ID up, agent pid $DAEMON_PID, XDP $(xdp_mode_used)"

	idle_cost
	scrape_cost small
	big_policy
	fill_flows
	scrape_cost big
	under_scrapes
	RSS_END=$(rss_kb "$DAEMON_PID")
	row end_rss_kb "$RSS_END" kB
	too_many_rules
	BUSY=$(busy_since "$SNAP0")
	write_report
	say "wrote $BENCH_OUT/agent.md and $BENCH_OUT/agent.tsv"
	cat "$BENCH_OUT/agent.md"
}

main "$@"

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fleet fan-out: how long `portcullis fleet quarantine --all` takes to be
# enforced on 1, 10 and 50 agents, against etcd's own put -> watch latency
# measured in the same run, in the fleet lab (tests/fleet-lab.sh: etcd in
# one namespace, one namespace and one agent per node):
#
#   bash tests/bench/fleet_fanout.sh        (root; after make; a few minutes)
#
#   FANOUT_SIZES="1 10 50"   fleet sizes, ascending, at most 60 (the lab
#                            grows from one size to the next)
#   FANOUT_TRIALS=5          quarantine --all / release --all per size
#   FANOUT_BASELINE=20       etcd put -> watch samples
#   BENCH_OUT=DIR            default bench-results/<UTC time>
#
# Per trial: T0 = wall clock (ms) just before the CLI is exec'd (taken
# inside etcd's namespace: entering it is not the CLI's time); a node's
# enforcement time is the "ts" of its audit line {"event":"transition",
# "to":"quarantine","trigger":"fleet"}, written right after the mode word
# is in its pinned map. Reported per size over every node of every trial:
# p50, p90 and max of (enforcement - T0), and their ratio to
#   - the baseline: etcdctl put (from etcd's namespace, process start
#     included, as for the CLI) -> an etcd v3 JSON-gateway watch (the
#     agents' kind) in node 1's namespace sees it, median of the samples;
#   - the same figure at N = 1.
# Also: the CLI's own run time, how long each lab step took to set up, and
# the CPU the idle agents and etcd use at each size (FANOUT_IDLE_S, 5 s).
# Writes $BENCH_OUT/fleet_fanout.md, fleet_fanout.csv (one row per size)
# and fleet_fanout_raw.csv (one row per node and trial).

set -u
# shellcheck source=SCRIPTDIR/../fleet-lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/../fleet-lab.sh"

SIZES=${FANOUT_SIZES:-"1 10 50"}
TRIALS=${FANOUT_TRIALS:-5}
BASE_SAMPLES=${FANOUT_BASELINE:-20}
BENCH_OUT=${BENCH_OUT:-$FL_ROOT/bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
ENFORCE_WAIT_S=30	# a trial fails if a node is not quarantined by then
STARTED=$SECONDS
HAVE=0			# nodes up so far
declare -A SETUP_MS=()	# by size: time to add its nodes and see them alive
declare -A CLI_MS=()	# by size: CLI run times, space-separated
declare -A IDLE_AGENTS=() IDLE_ETCD=()	# by size: % of one CPU when idle
IDLE_S=${FANOUT_IDLE_S:-5}
RAW=			# raw samples file: N,trial,host,ms
NS_MS=			# entering etcd's namespace, ms, per trial
ETCD_SETUP_MS=0
FAILED=0

say() { printf '[%4ds] %s\n' $((SECONDS - STARTED)) "$*"; }

die()
{
	echo "fleet_fanout: $*" >&2
	exit 1
}

# grow N: nodes HAVE+1..N with their agents, all alive in fleet status.
grow()
{
	local n=$1 i t0 first=$((HAVE + 1)) secs
	t0=$(now_ms)
	fleet_lab_up "$n" "$first" || die "lab: adding nodes $first..$n failed"
	for ((i = first; i <= n; i++)); do
		fleet_agent_config "$i" "bench" || die "config of node $i"
		fleet_agent_start "$i" || die "agent $i did not start"
	done
	for ((i = first; i <= n; i++)); do
		fleet_agent_wait_ready "$i" 90 || die "agent $i not ready"
	done
	secs=$((30 + n))
	# shellcheck disable=SC2046 # one word per node
	fleet_wait_alive "$secs" $(seq 1 "$n") ||
		die "not all $n agents alive in fleet status after $secs s"
	HAVE=$n
	SETUP_MS[$n]=$(($(now_ms) - t0))
	say "N=$n: nodes $first..$n up and alive in $((SETUP_MS[$n])) ms"
}

# cpu_ticks PID...: their utime + stime, in clock ticks, summed.
cpu_ticks()
{
	local pid sum=0 f
	for pid in "$@"; do
		f=$(cut -d')' -f2 "/proc/$pid/stat" 2>/dev/null) || continue
		# shellcheck disable=SC2086 # fields
		set -- $f
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

# idle_cpu N: % of one CPU the N agents (together) and etcd use over
# IDLE_S seconds with nothing to do but keep-alives, heartbeat reads and
# reports.
idle_cpu()
{
	local n=$1 pids=() i a0 e0 a1 e1 hz
	hz=$(getconf CLK_TCK)
	for ((i = 1; i <= n; i++)); do
		pids+=("${FL_AGENT_PID[$i]}")
	done
	a0=$(cpu_ticks "${pids[@]}")
	e0=$(cpu_ticks "$FL_ETCD_PID")
	sleep "$IDLE_S"
	a1=$(cpu_ticks "${pids[@]}")
	e1=$(cpu_ticks "$FL_ETCD_PID")
	# tenths of a per cent: ticks / hz / IDLE_S * 100 * 10
	a1=$(( (a1 - a0) * 1000 / (hz * IDLE_S) ))
	e1=$(( (e1 - e0) * 1000 / (hz * IDLE_S) ))
	IDLE_AGENTS[$n]=$((a1 / 10)).$((a1 % 10))
	IDLE_ETCD[$n]=$((e1 / 10)).$((e1 % 10))
	say "N=$n idle for ${IDLE_S}s: agents ${IDLE_AGENTS[$n]} %, etcd ${IDLE_ETCD[$n]} % of one CPU"
}

# enforce_times SINCE_MS MODE N: per node 1..N, the ms (from SINCE_MS) of
# its first transition to MODE with trigger fleet (any trigger for normal) at or after
# SINCE_MS, as "host ms" lines; waits up to ENFORCE_WAIT_S for all of
# them; status 1 if some never came (listed with ms "-").
enforce_times()
{
	"$PY" - "$FL_WORK" "$1" "$2" "$3" "$ENFORCE_WAIT_S" <<'PYEOF'
import datetime, json, sys, time
work, since, mode, n, wait_s = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), float(sys.argv[5])
def ms(ts):
    d = datetime.datetime.strptime(ts.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)
found, offs = {}, {}
deadline = time.time() + wait_s
while True:
    for i in range(1, n + 1):
        if i in found:
            continue
        path = "%s/n%d/audit.jsonl" % (work, i)
        try:
            with open(path) as f:
                f.seek(offs.get(i, 0))
                while True:
                    line = f.readline()
                    if not line.endswith("\n"):
                        break
                    offs[i] = f.tell()
                    try:
                        e = json.loads(line)
                        t = ms(e["ts"])
                    except (ValueError, KeyError, TypeError):
                        continue
                    # Back to normal may come by another trigger (a node
                    # that lost heartbeats under load lifts on their return).
                    if (t >= since and e.get("event") == "transition"
                            and e.get("to") == mode
                            and (e.get("trigger") == "fleet" or mode == "normal")):
                        found[i] = t - since
                        break
        except OSError:
            pass
    if len(found) == n or time.time() > deadline:
        break
    time.sleep(0.05)
for i in range(1, n + 1):
    print("node-%d %s" % (i, found.get(i, "-")))
sys.exit(0 if len(found) == n else 1)
PYEOF
}

# cli_timed ARGS...: portcullis fleet ARGS in etcd's namespace; the wall
# clock just before the CLI is exec'd, taken inside the namespace (entering
# it costs tens of ms here, which are not the CLI's), into $FL_WORK/t0.
cli_timed()
{
	# shellcheck disable=SC2016 # expanded by the inner bash
	timeout 30 ip netns exec "$FL_NS_ETCD" env PORTCULLIS_ETCD="$FL_ETCD_LOCAL" \
		PORTCULLIS_FLEET_PREFIX="$FL_KEY_PREFIX" LC_ALL=C \
		bash -c 'echo "$EPOCHREALTIME" >"$0"; exec "$@"' "$FL_WORK/t0" \
		"$PCCLI" fleet --key "$FL_KEY" "$@"
}

# trials N: TRIALS x (quarantine --all, all enforced, release --all, all normal).
trials()
{
	local n=$1 t ta t0 t1 rel host ms out missing
	for ((t = 1; t <= TRIALS; t++)); do
		sleep 1	# quiet: the last release's reports are written
		ta=$(now_ms)
		cli_timed quarantine --all >"$FL_WORK/q.out" 2>&1 ||
			die "fleet quarantine --all failed: $(tail -n 1 "$FL_WORK/q.out")"
		t1=$(now_ms)
		read -r t0 <"$FL_WORK/t0"	# seconds.microseconds
		t0=$((${t0%.*} * 1000 + 10#$(printf '%.3s' "${t0#*.}")))
		CLI_MS[$n]="${CLI_MS[$n]:-} $((t1 - t0))"
		NS_MS="$NS_MS $((t0 - ta))"
		out=$FL_WORK/enf-$n-$t.txt
		enforce_times "$t0" quarantine "$n" >"$out"
		missing=$(awk '$2 == "-" { print $1 }' "$out" | tr '\n' ' ')
		if [ -n "$missing" ]; then
			FAILED=$((FAILED + 1))
			say "N=$n trial $t: not quarantined within ${ENFORCE_WAIT_S}s: $missing"
		fi
		while read -r host ms; do
			[ "$ms" = - ] && continue
			echo "$n,$t,$host,$ms" >>"$RAW"
		done <"$out"
		say "N=$n trial $t: CLI $((t1 - t0)) ms; enforced on $(awk '$2 != "-"' "$out" | wc -l)/$n, last at $(awk '$2 != "-" { print $2 }' "$out" | sort -n | tail -n 1) ms"
		rel=$(now_ms)
		fleet_cli release --all >"$FL_WORK/r.out" 2>&1 ||
			die "fleet release --all failed: $(tail -n 1 "$FL_WORK/r.out")"
		enforce_times "$rel" normal "$n" >"$FL_WORK/rel.txt" ||
			die "N=$n trial $t: not every node back to normal: $(awk '$2 == "-" { print $1 }' "$FL_WORK/rel.txt" | tr '\n' ' ')"
	done
}

# baseline: etcd put -> watch notification, BASE_SAMPLES samples, into
# $FL_WORK/baseline.txt ("etcdctl MS" and "gateway MS" lines).
baseline()
{
	cat >"$FL_WORK/watch.py" <<'PYEOF'
# A v3 JSON-gateway watch of one key, as the agents do it: one line per
# event seen, "<unix ns> <value>".
import base64, http.client, json, sys, time
host, port, key = sys.argv[1], int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection(host, port, timeout=600)
body = json.dumps({"create_request": {"key": base64.b64encode(key.encode()).decode()}})
c.request("POST", "/v3/watch", body, {"Content-Type": "application/json"})
r = c.getresponse()
ready = False
while True:
    line = r.readline()
    if not line:
        break
    now = time.time_ns()
    try:
        res = json.loads(line).get("result", {})
    except ValueError:
        continue
    # Ready once etcd says the watch exists: a put before that is missed.
    if not ready and res.get("created"):
        ready = True
        print("ready", flush=True)
    for ev in res.get("events") or []:
        v = base64.b64decode(ev.get("kv", {}).get("value", "")).decode(errors="replace")
        print(now, v, flush=True)
PYEOF
	cat >"$FL_WORK/baseline.py" <<'PYEOF'
# In etcd's namespace: start the watcher in node 1's, then put values with
# etcdctl (a process per put, as the CLI is) and with one HTTP request each
# (etcd alone), and time put start -> watcher line.
import base64, json, queue, subprocess, sys, threading, time, urllib.request
watch_cmd, etcdctl, local, key, samples = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
w = subprocess.Popen(watch_cmd, shell=True, stdout=subprocess.PIPE, text=True)
q = queue.Queue()
def reader():
    for line in w.stdout:
        q.put((time.time_ns(), line.strip()))
threading.Thread(target=reader, daemon=True).start()
t, line = q.get(timeout=30)
assert line == "ready", line
def wait_for(val):
    end = time.time() + 5
    while time.time() < end:
        t, line = q.get(timeout=5)
        parts = line.split(" ", 1)
        if len(parts) == 2 and parts[1] == val:
            return int(parts[0])
    raise SystemExit("watch never saw " + val)
def gw_put(val):
    body = json.dumps({"key": base64.b64encode(key.encode()).decode(),
                       "value": base64.b64encode(val.encode()).decode()}).encode()
    req = urllib.request.Request(local + "/v3/kv/put", data=body,
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=5).read()
for k in range(samples):
    val = "ctl-%d" % k
    t0 = time.time_ns()
    subprocess.run([etcdctl, "--endpoints", local, "put", key, val],
                   check=True, stdout=subprocess.DEVNULL, env={"ETCDCTL_API": "3"})
    print("etcdctl %.3f" % ((wait_for(val) - t0) / 1e6), flush=True)
    time.sleep(0.1)
    val = "gw-%d" % k
    t0 = time.time_ns()
    gw_put(val)
    print("gateway %.3f" % ((wait_for(val) - t0) / 1e6), flush=True)
    time.sleep(0.1)
w.terminate()
w.wait(timeout=5)
PYEOF
	timeout 120 ip netns exec "$FL_NS_ETCD" "$PY" "$FL_WORK/baseline.py" \
		"timeout 100 nsenter --net=/run/netns/$(fl_ns 1) $PY $FL_WORK/watch.py $FL_ETCD_IP $FL_ETCD_PORT /bench/baseline" \
		"$(command -v "$ETCDCTL_BIN")" "$FL_ETCD_LOCAL" /bench/baseline \
		"$BASE_SAMPLES" >"$FL_WORK/baseline.txt" ||
		die "baseline measurement failed"
}

# The report: table on stdout, Markdown and CSV in BENCH_OUT.
report()
{
	local sizes=$1 setup_list="" n
	for n in $sizes; do
		setup_list="$setup_list $n=${SETUP_MS[$n]}:${IDLE_AGENTS[$n]}:${IDLE_ETCD[$n]}:${CLI_MS[$n]// /;}"
	done
	"$PY" - "$RAW" "$FL_WORK/baseline.txt" "$BENCH_OUT" "$sizes" "$setup_list" \
		"$TRIALS" "$(uname -r)" "$(nproc)" "$FL_XDP_MODE" "$FAILED" "$NS_MS" <<'PYEOF'
import statistics, sys
raw, basef, out, sizes, setup, trials, kernel, cpus, xdp, failed, nsms = sys.argv[1:12]
nsms = [int(x) for x in nsms.split()]
sizes = [int(s) for s in sizes.split()]
def pct(v, p):  # nearest rank
    v = sorted(v)
    return v[max(0, min(len(v) - 1, -(-len(v) * p // 100) - 1))]
samples = {n: [] for n in sizes}
with open(raw) as f:
    for line in f:
        n, t, host, ms = line.strip().split(",")
        samples[int(n)].append(int(ms))
base = {"etcdctl": [], "gateway": []}
with open(basef) as f:
    for line in f:
        k, v = line.split()
        base[k].append(float(v))
b_ctl = statistics.median(base["etcdctl"]) if base["etcdctl"] else float("nan")
b_gw = statistics.median(base["gateway"]) if base["gateway"] else float("nan")
setup_ms, cli_ms, idle_a, idle_e = {}, {}, {}, {}
for item in setup.split():
    n, rest = item.split("=")
    s, ia, ie, c = rest.split(":", 3)
    setup_ms[int(n)] = int(s) if s else 0
    idle_a[int(n)], idle_e[int(n)] = ia or "-", ie or "-"
    cli_ms[int(n)] = [int(x) for x in c.split(";") if x]
rows = []
one = None
for n in sizes:
    v = samples[n]
    if not v:
        rows.append((n, 0, None, None, None))
        continue
    r = (n, len(v), pct(v, 50), pct(v, 90), max(v))
    rows.append(r)
    if n == 1:
        one = r
def ratio(a, b):
    return "%.2f" % (a / b) if a is not None and b and b == b else "-"
hdr = ["N", "samples", "p50 ms", "p90 ms", "max ms", "p50/base", "p90/base",
       "max/base", "p50/http", "p50/N1", "p90/N1", "max/N1", "CLI ms (median)", "setup s",
       "idle CPU % agents", "idle CPU % etcd"]
lines = []
for n, cnt, p50, p90, mx in rows:
    lines.append([str(n), str(cnt), str(p50), str(p90), str(mx),
                  ratio(p50, b_ctl), ratio(p90, b_ctl), ratio(mx, b_ctl), ratio(p50, b_gw),
                  ratio(p50, one[2] if one else None), ratio(p90, one[3] if one else None),
                  ratio(mx, one[4] if one else None),
                  str(statistics.median(cli_ms[n])) if cli_ms.get(n) else "-",
                  "%.1f" % (setup_ms.get(n, 0) / 1000), idle_a.get(n, "-"), idle_e.get(n, "-")])
w = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(hdr)]
table = ["  ".join(h.rjust(w[i]) for i, h in enumerate(hdr))]
table += ["  ".join(c.rjust(w[i]) for i, c in enumerate(l)) for l in lines]
basel = ("baseline (median of %d): etcdctl put -> gateway watch %.1f ms (process start included, "
         "as for the CLI); HTTP put -> gateway watch %.1f ms" % (len(base["etcdctl"]), b_ctl, b_gw))
nsl = ("entering etcd's namespace (ip netns exec, not counted above): median %s ms"
       % (statistics.median(nsms) if nsms else "-"))
print("\n".join(table))
print(basel)
print(nsl)
with open(out + "/fleet_fanout.csv", "w") as f:
    f.write("n,samples,p50_ms,p90_ms,max_ms,p50_over_base,p90_over_base,max_over_base,"
            "p50_over_http,p50_over_n1,p90_over_n1,max_over_n1,cli_median_ms,setup_ms,base_etcdctl_ms,base_gateway_ms,"
            "idle_cpu_pct_agents,idle_cpu_pct_etcd\n")
    for l, (n, *_r) in zip(lines, rows):
        f.write(",".join(l[:13] + [
                          str(setup_ms.get(n, 0)), "%.3f" % b_ctl, "%.3f" % b_gw,
                          idle_a.get(n, "-"), idle_e.get(n, "-")]) + "\n")
with open(out + "/fleet_fanout.md", "w") as f:
    f.write("# Fleet fan-out: `portcullis fleet quarantine --all` -> enforced\n\n")
    f.write("Time from just before the CLI starts to each node's audit line for its "
            "transition to quarantine (trigger fleet), over every node of %s trials per size; "
            "one namespace and one agent per node, etcd 3.4 in its own namespace. "
            "Kernel %s, %s CPUs, XDP %s.\n\n" % (trials, kernel, cpus, xdp))
    f.write("| " + " | ".join(hdr) + " |\n|" + "|".join("---:" for _ in hdr) + "|\n")
    for l in lines:
        f.write("| " + " | ".join(l) + " |\n")
    f.write("\n" + basel + ". Ratios /base are to the etcdctl figure, /http to the HTTP "
            "one (etcd alone), /N1 to N = 1.\n")
    f.write(nsl + ".\n")
    f.write("'setup s': adding that size's nodes (namespaces, agents) until all are alive "
            "in `fleet status`. 'idle CPU %': of one CPU, all agents together and etcd, over "
            "a quiet spell (a lease keep-alive and a read of the signed heartbeat every timeout/4, and status reports, only).\n")
    if int(failed):
        f.write("\n**%s trial(s) had nodes that were never quarantined.**\n" % failed)
PYEOF
}

main()
{
	local n prev=0 sizes=""
	[ "$(id -u)" -eq 0 ] || die "must run as root"
	for n in $SIZES; do
		case $n in '' | *[!0-9]*) die "bad size '$n'" ;; esac
		[ "$n" -gt "$prev" ] || die "FANOUT_SIZES must be ascending: $SIZES"
		[ "$n" -le "$FL_MAX_NODES" ] || die "at most $FL_MAX_NODES nodes"
		prev=$n
		sizes="$sizes $n"
	done
	trap fleet_lab_down EXIT
	trap 'exit 130' INT TERM
	mkdir -p "$BENCH_OUT" || die "cannot make $BENCH_OUT"
	fleet_lab_init || die "lab init"
	RAW=$FL_WORK/raw.csv
	: >"$RAW"
	say "lab $FL_ID, sizes$sizes, $TRIALS trials each, work dir $FL_WORK"
	local t0
	t0=$(now_ms)
	fleet_lab_etcd_ns || die "etcd namespace"
	fleet_etcd_start || die "etcd did not start"
	fleet_keygen || die "keygen"
	# Signed heartbeats, or every agent locks down (and stays down).
	fleet_heartbeat_start || die "heartbeat publisher"
	ETCD_SETUP_MS=$(($(now_ms) - t0))
	say "etcd up in $ETCD_SETUP_MS ms"
	for n in $sizes; do
		grow "$n"
		idle_cpu "$n"
		if [ ! -s "$FL_WORK/baseline.txt" ]; then
			say "baseline: $BASE_SAMPLES x etcd put -> watch (watcher in $(fl_ns 1))"
			baseline
		fi
		trials "$n"
	done
	t0=$ETCD_SETUP_MS
	for n in $sizes; do
		t0=$((t0 + SETUP_MS[$n]))
	done
	say "lab setup in all: $t0 ms for etcd and $HAVE nodes (namespaces, agents alive); whole run $((SECONDS - STARTED)) s"
	{
		echo "n,trial,host,enforce_ms"
		cat "$RAW"
	} >"$BENCH_OUT/fleet_fanout_raw.csv"
	echo
	report "$sizes" || die "report failed"
	say "wrote $BENCH_OUT/fleet_fanout.md, fleet_fanout.csv, fleet_fanout_raw.csv"
	[ "$FAILED" -eq 0 ] || die "$FAILED trial(s) with nodes never quarantined"
}

main "$@"

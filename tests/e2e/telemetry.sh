#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Telemetry end to end, with a real Prometheus (Debian's /usr/bin/prometheus)
# in the lab's node namespace scraping the agent's /metrics every second:
#
#  1. exactly N single TCP SYNs (raw socket, one packet each, no retries)
#     from the peer to a port nothing allows, and M from 203.0.113.5 (the
#     "blocked" deny rule): Prometheus must store exactly +N for
#     portcullis_packets_total{direction="ingress",reason="drop_default"}
#     and +M for portcullis_rule_packets_total{rule="blocked"}, as must the
#     CLI's own counters;
#  2. `promtool check metrics` on the exposition;
#  3. `portcullis monitor --json` shows those drops with the right rule,
#     reason and 5-tuple;
#  4. a UDP flood to a denied port: monitor shows no more than the
#     sampling budget allows, exits on time at --duration, says what it
#     did not sample, and the agent keeps answering `portcullis status`;
#  5. the shipped deploy/prometheus/alerts.yml and the Grafana dashboard's
#     queries evaluate without error against the real exposition, and a
#     lockdown makes PortcullisModeTransition fire.
#
# Root; runs only in its own namespace lab (tests/lab.sh). Exit 0 all
# passed, 1 a check failed, 2 the agent has no metrics endpoint (yet).
set -u

E2E_DIR=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$E2E_DIR/lib.sh"

PROMETHEUS=${PROMETHEUS:-/usr/bin/prometheus}
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
METRICS_ADDR=127.0.0.1:9712	# inside the node namespace: ours alone
PROM_ADDR=127.0.0.1:19090
N_SYN=${N_SYN:-25}		# SYNs to the default-denied port
M_SYN=${M_SYN:-7}		# SYNs from 203.0.113.5 (rule "blocked")
DENIED_PORT=9090		# nothing in lab-normal.yaml allows it
BLOCKED_PORT=9091
FLOOD_PORT=6000			# udp, nothing allows it
FLOOD_COUNT=${FLOOD_COUNT:-200000}
FLOOD_SECONDS=8			# the flood stops at whichever comes first
MON_SECONDS=3			# monitor's --duration during the flood

FAILS=0
HAVE_METRICS=no
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
skip() { echo "SKIP: $*"; }

# ---- Python helpers (stdlib only), run inside a namespace ----

# http_get URL: the body on stdout; exit 1 on any error. No proxies.
http_get()
{
	ip netns exec "$LAB_NODE" timeout 10 "$PY" - "$1" <<'PYEOF'
import sys, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    with opener.open(sys.argv[1], timeout=5) as r:
        sys.stdout.write(r.read().decode())
except Exception as e:
    sys.stderr.write('%s: %s\n' % (sys.argv[1], e))
    sys.exit(1)
PYEOF
}

# prom_query EXPR: the value of a one-element instant vector, or "none".
prom_query()
{
	ip netns exec "$LAB_NODE" timeout 10 "$PY" - "http://$PROM_ADDR" "$1" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
url = sys.argv[1] + '/api/v1/query?' + urllib.parse.urlencode({'query': sys.argv[2]})
try:
    with opener.open(url, timeout=5) as r:
        res = json.load(r)['data']['result']
except Exception as e:
    sys.stderr.write('query %r: %s\n' % (sys.argv[2], e))
    print('none')
    sys.exit(0)
if len(res) != 1:
    print('none')
else:
    v = float(res[0]['value'][1])
    print(int(v) if v == int(v) else v)
PYEOF
}

# syn_send FROM_NS SRC DST DPORT COUNT SPORT0: COUNT raw TCP SYNs, one
# packet each, source ports SPORT0.., so the count on the wire is exact.
syn_send()
{
	ip netns exec "$1" timeout 10 "$PY" - "${@:2}" <<'PYEOF'
import socket, struct, sys
src, dst, dport, count, sport0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])

def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff

s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s.bind((src, 0))	# the kernel writes the IP header, from this source
sent = 0
for i in range(count):
    sport = sport0 + i
    hdr = struct.pack('!HHIIBBHHH', sport, dport, 1000 + i, 0, 5 << 4, 0x02, 64240, 0, 0)
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, 6, len(hdr))
    hdr = hdr[:16] + struct.pack('!H', csum(pseudo + hdr)) + hdr[18:]
    if s.sendto(hdr, (dst, 0)) == len(hdr):
        sent += 1
print(sent)
PYEOF
}

# udp_flood DST PORT COUNT SECONDS: small datagrams from the peer until
# COUNT sent or SECONDS passed; prints how many the kernel took.
udp_flood()
{
	ip netns exec "$LAB_PEER" timeout $(($4 + 5)) "$PY" - "$@" <<'PYEOF'
import socket, sys, time
dst, port, count, secs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setblocking(False)
end = time.monotonic() + secs
sent = 0
for i in range(count):
    if (i & 1023) == 0 and time.monotonic() > end:
        break
    try:
        s.sendto(b'x', (dst, port))
        sent += 1
    except (BlockingIOError, OSError):
        time.sleep(0.0005)
print(sent)
PYEOF
}

# ---- Counters straight from the pins, to compare with Prometheus ----
cli_reason()	# REASON DIR(ingress|egress): packets from `portcullis status`
{
	pc status 2>/dev/null | awk -v r="$1" -v d="$2" \
		'$1 == r { print (d == "ingress" ? $2 : $4); exit }'
}

cli_rule()	# RULE: packets from `portcullis rules --json`
{
	pc rules --json 2>/dev/null | "$PY" -c '
import json, sys
print(sum(r["packets"] for r in json.load(sys.stdin) if r["name"] == sys.argv[1]))' "$1"
}

# ---- Setup ----
agent_config()
{
	cat >"$WORK/agent.yaml" <<EOF
# tests/e2e/telemetry.sh: the lab policy, no controller.
host_id: lab-telemetry
policy: active.yaml
EOF
	DAEMON_CONFIG=$WORK/agent.yaml
}

metrics_wait()
{
	local i
	for ((i = 0; i < 50; i++)); do
		http_get "http://$METRICS_ADDR/metrics" >"$WORK/metrics.txt" 2>/dev/null &&
			grep -q '^portcullis_' "$WORK/metrics.txt" && return 0
		sleep 0.2
	done
	return 1
}

prometheus_start()
{
	local i
	mkdir -p "$WORK/prom"
	cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $E2E_ROOT/deploy/prometheus/alerts.yml
scrape_configs:
  - job_name: portcullis
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ['$METRICS_ADDR']
EOF
	bg_start "$WORK/prometheus.log" 600 ip netns exec "$LAB_NODE" \
		"$PROMETHEUS" --config.file="$WORK/prometheus.yml" \
		--storage.tsdb.path="$WORK/prom" \
		--web.listen-address="$PROM_ADDR" --log.level=warn
	PROM_PID=$BG_LAST
	for ((i = 0; i < 100; i++)); do
		kill -0 "$PROM_PID" 2>/dev/null || break
		[ "$(prom_query 'up{job="portcullis"}' 2>/dev/null)" = 1 ] && return 0
		sleep 0.2
	done
	echo "prometheus did not start scraping; its log:" >&2
	sed 's/^/    /' "$WORK/prometheus.log" >&2
	return 1
}

# scrapes_after EPOCH K: wait (max 15s) until Prometheus holds a scrape
# taken at least K seconds after EPOCH, i.e. K scrapes at 1s intervals.
scrapes_after()
{
	local t=$1 k=$2 i ts
	for ((i = 0; i < 75; i++)); do
		ts=$(prom_query 'timestamp(up{job="portcullis"})')
		[ "$ts" != none ] && "$PY" -c "import sys; sys.exit(0 if $ts >= $t + $k else 1)" &&
			return 0
		sleep 0.2
	done
	return 1
}

prom_drop_default='sum(portcullis_packets_total{direction="ingress",reason="drop_default"})'
prom_blocked='sum(portcullis_rule_packets_total{rule="blocked"})'

# ---- 1 + 3: exact counts in Prometheus and the CLI, and monitor ----
test_exact_counts()
{
	local p0 b0 c0 r0 p1 b1 c1 r1 t sent_n sent_m mon_pid i
	if [ $HAVE_METRICS = yes ]; then
		scrapes_after "$(date +%s.%N)" 1 || fail "no scrape before the probes"
		p0=$(prom_query "$prom_drop_default")
		b0=$(prom_query "$prom_blocked")
	fi
	c0=$(cli_reason drop_default ingress)
	r0=$(cli_rule blocked)

	# The monitor reads the drops of exactly these probes.
	timeout 30 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" \
		--pin-dir "$PIN_DIR" monitor --json --count $((N_SYN + M_SYN)) \
		--duration 20 >"$WORK/monitor.json" 2>"$WORK/monitor.err" &
	mon_pid=$!
	BG_PIDS+=("$mon_pid")
	sleep 1

	sent_n=$(syn_send "$LAB_PEER" "$LAB_PEER4" "$LAB_NODE_PEER4" $DENIED_PORT "$N_SYN" 41000)
	sent_m=$(syn_send "$LAB_PEER" "$LAB_PEER_BAD4" "$LAB_NODE_PEER4" $BLOCKED_PORT "$M_SYN" 42000)
	t=$(date +%s.%N)
	echo "    sent $sent_n SYNs to :$DENIED_PORT, $sent_m from $LAB_PEER_BAD4 to :$BLOCKED_PORT"
	if [ "$sent_n" != "$N_SYN" ] || [ "$sent_m" != "$M_SYN" ]; then
		fail "raw sender sent $sent_n/$N_SYN and $sent_m/$M_SYN"
	fi

	# XDP counts in the receiver's softirq, which a loaded machine may run
	# late: wait (10 s at most) until both counts are in, then compare.
	counted_syns() {
		c1=$(cli_reason drop_default ingress)
		r1=$(cli_rule blocked)
		[ $((c1 - c0)) -ge "$N_SYN" ] && [ $((r1 - r0)) -ge "$M_SYN" ]
	}
	wait_until 10 counted_syns
	if [ $((c1 - c0)) -eq "$N_SYN" ] && [ $((r1 - r0)) -eq "$M_SYN" ]; then
		pass "CLI counters: drop_default +$((c1 - c0)), rule blocked +$((r1 - r0))"
	else
		fail "CLI counters: drop_default +$((c1 - c0)) (want $N_SYN), rule blocked +$((r1 - r0)) (want $M_SYN)"
	fi

	if [ $HAVE_METRICS = yes ]; then
		scrapes_after "$t" 2 || fail "no two scrapes after the probes in 15s"
		p1=$(prom_query "$prom_drop_default")
		b1=$(prom_query "$prom_blocked")
		if [ "$p0" != none ] && [ "$p1" != none ] && [ $((p1 - p0)) -eq "$N_SYN" ]; then
			pass "Prometheus: $prom_drop_default +$((p1 - p0)) = SYNs sent"
		else
			fail "Prometheus: $prom_drop_default went $p0 -> $p1, want +$N_SYN"
		fi
		if [ "$b0" != none ] && [ "$b1" != none ] && [ $((b1 - b0)) -eq "$M_SYN" ]; then
			pass "Prometheus: $prom_blocked +$((b1 - b0)) = SYNs sent"
		else
			fail "Prometheus: $prom_blocked went $b0 -> $b1, want +$M_SYN"
		fi
		# And the stored series is the pinned counter itself.
		if [ "$p1" = "$c1" ]; then
			pass "Prometheus and portcullis status agree: $p1"
		else
			fail "Prometheus $p1 vs portcullis status $c1 (drop_default ingress)"
		fi
	else
		skip "Prometheus counts (no metrics endpoint)"
	fi

	for ((i = 0; i < 100; i++)); do
		kill -0 "$mon_pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$mon_pid" 2>/dev/null && kill -s TERM "$mon_pid"
	wait "$mon_pid" 2>/dev/null
	"$PY" - "$WORK/monitor.json" "$N_SYN" "$M_SYN" "$LAB_PEER4" "$LAB_PEER_BAD4" \
		"$LAB_NODE_PEER4" "$LAB_NODE_PEER_IF" $DENIED_PORT $BLOCKED_PORT \
		>"$WORK/monitor-check.out" <<'PYEOF'
import json, sys
path, n, m, peer, bad, node, ifname, dport, bport = sys.argv[1:]
n, m, dport, bport = int(n), int(m), int(dport), int(bport)
ev = []
for line in open(path):
    try:
        ev.append(json.loads(line))
    except ValueError:
        print('not JSON: %r' % line)
        sys.exit(1)
def match(e, src, port, reason, rule):
    return (e['src'] == src and e['dst'] == node and e['dport'] == port and
            e['proto'] == 'tcp' and e['direction'] == 'ingress' and
            e['interface'] == ifname and e['reason'] == reason and
            e['rule'] == rule and e['family'] == 4)
a = [e for e in ev if match(e, peer, dport, 'drop_default', '-')]
b = [e for e in ev if match(e, bad, bport, 'drop_deny_rule', 'blocked')]
ok = (sorted(e['sport'] for e in a) == list(range(41000, 41000 + n)) and
      sorted(e['sport'] for e in b) == list(range(42000, 42000 + m)))
print('    %d events; %d drop_default %s->%s:%d, %d drop_deny_rule/blocked %s->%s:%d; source ports %s'
      % (len(ev), len(a), peer, node, dport, len(b), bad, node, bport,
         'exactly those sent' if ok else 'NOT those sent'))
if not ok:
    for e in ev[:5]:
        print('      ', json.dumps(e))
sys.exit(0 if ok and len(a) == n and len(b) == m else 1)
PYEOF
	local rc=$?
	cat "$WORK/monitor-check.out"
	if [ $rc -eq 0 ]; then
		pass "monitor --json: every probe with its rule, reason and 5-tuple"
	else
		fail "monitor --json does not show the probes as sent"
		sed 's/^/    /' "$WORK/monitor.err"
	fi
}

# ---- 2: promtool check metrics ----
test_promtool_metrics()
{
	if [ $HAVE_METRICS = no ]; then
		skip "promtool check metrics (no metrics endpoint)"
		return
	fi
	http_get "http://$METRICS_ADDR/metrics" >"$WORK/metrics.txt"
	if "$PROMTOOL" check metrics <"$WORK/metrics.txt" >"$WORK/promtool.out" 2>&1; then
		pass "promtool check metrics: $(grep -c '^portcullis_' "$WORK/metrics.txt") samples, no lint problems"
	else
		fail "promtool check metrics"
		sed 's/^/    /' "$WORK/promtool.out"
	fi
}

# ---- 4: flood vs the monitor's budget, and the agent's responsiveness ----
test_flood()
{
	local ncpus rate burst bound mon_pid flood_pid t0 t1 ms shown lines unsampled
	local sent st0 st1 st_ms i c0 c1
	ncpus=$("$PY" -c '
s = open("/sys/devices/system/cpu/possible").read().strip()
print(sum(int(b) - int(a) + 1 if "-" in r else 1
          for r in s.split(",") for a, b in [(r.split("-") + [r])[:2]]))')
	rate=$(grep -o 'at most [0-9]* a' <("$PCCLI" monitor --help) | grep -o '[0-9]*')
	rate=${rate:-2000}
	burst=200	# PC_DROP_SAMPLE_BURST, per CPU
	bound=$(( (rate * MON_SECONDS + burst) * ncpus ))

	c0=$(cli_reason drop_default ingress)
	t0=$(date +%s%N)
	timeout 30 nsenter --net="/run/netns/$LAB_NODE" -- "$PCCLI" \
		--pin-dir "$PIN_DIR" monitor --duration $MON_SECONDS \
		>"$WORK/flood-monitor.txt" 2>"$WORK/flood-monitor.err" &
	mon_pid=$!
	BG_PIDS+=("$mon_pid")
	udp_flood "$LAB_NODE_PEER4" $FLOOD_PORT "$FLOOD_COUNT" $FLOOD_SECONDS \
		>"$WORK/flood.out" 2>&1 &
	flood_pid=$!
	BG_PIDS+=("$flood_pid")

	# The agent answers while the flood runs.
	sleep 0.5
	st0=$(date +%s%N)
	pc status >"$WORK/status-flood.txt" 2>&1
	st1=$(date +%s%N)
	st_ms=$(( (st1 - st0) / 1000000 ))
	# That it answers is the check (pc gives up after 20 s); how fast is
	# the machine's business and only reported.
	if grep -q '^agent:' "$WORK/status-flood.txt" &&
	   ! grep -q '^agent: *not running' "$WORK/status-flood.txt"; then
		pass "portcullis status during the flood: agent answered in ${st_ms} ms"
	else
		fail "portcullis status during the flood: ${st_ms} ms, agent line: $(grep '^agent:' "$WORK/status-flood.txt")"
	fi

	for ((i = 0; i < 250; i++)); do
		kill -0 "$mon_pid" 2>/dev/null || break
		sleep 0.1
	done
	t1=$(date +%s%N)
	ms=$(( (t1 - t0) / 1000000 ))
	# --duration must end it: 10 s of slack for a loaded machine (the
	# process start counts too), still far from "never".
	if kill -0 "$mon_pid" 2>/dev/null; then
		fail "monitor --duration $MON_SECONDS still running after ${ms} ms"
		kill -s TERM "$mon_pid"
	elif [ $ms -le $((MON_SECONDS * 1000 + 10000)) ]; then
		pass "monitor --duration $MON_SECONDS exited after ${ms} ms under the flood"
	else
		fail "monitor --duration $MON_SECONDS took ${ms} ms to exit"
	fi
	wait "$mon_pid" 2>/dev/null
	wait "$flood_pid" 2>/dev/null
	sent=$(tail -n 1 "$WORK/flood.out")

	lines=$(grep -c ':'"$FLOOD_PORT"' ' "$WORK/flood-monitor.txt")
	shown=$(sed -n 's/^monitor: \([0-9]*\) shown.*/\1/p' "$WORK/flood-monitor.err")
	unsampled=$(sed -n 's/.*not sampled (over budget) \([0-9]*\).*/\1/p' "$WORK/flood-monitor.err")
	echo "    flood: $sent datagrams sent; monitor printed $lines lines;" \
		"its summary: $(cat "$WORK/flood-monitor.err")"
	if [ "$lines" -gt 0 ] && [ "$lines" -le "$bound" ]; then
		pass "monitor showed $lines drops <= budget $bound (${rate}/s x ${MON_SECONDS}s + $burst, x $ncpus CPUs)"
	else
		fail "monitor showed $lines drops, budget $bound"
	fi
	if [ -n "$unsampled" ] && [ "$unsampled" -gt 0 ]; then
		pass "monitor reports $unsampled drops not sampled (over budget) on stderr"
	else
		fail "monitor did not report drops over budget: $(cat "$WORK/flood-monitor.err")"
	fi
	if [ "${shown:-x}" = "$lines" ]; then
		pass "monitor's summary count ($shown shown) matches the lines it printed"
	else
		fail "monitor's summary says '${shown:-?} shown' but it printed $lines lines (counted only with --count)"
	fi

	# Every datagram the peer's kernel took reached XDP and was counted,
	# unless the veth's backlog dropped it first (then fewer, never more).
	# Read once the count has stopped moving (10 s at most).
	c_prev=
	count_settled() {
		c1=$(cli_reason drop_default ingress)
		[ "$c1" = "$c_prev" ] && return 0
		c_prev=$c1
		sleep 0.5
		return 1
	}
	wait_until 10 count_settled
	if [ $((c1 - c0)) -eq "$sent" ]; then
		pass "drop_default counted every flood datagram: +$((c1 - c0))"
	elif [ $((c1 - c0)) -lt "$sent" ] && [ $((c1 - c0)) -gt 0 ]; then
		pass "drop_default counted +$((c1 - c0)) of $sent datagrams (the rest died in the veth backlog)"
	else
		fail "drop_default counted +$((c1 - c0)) for $sent datagrams sent"
	fi

	st0=$(date +%s%N)
	pc status >"$WORK/status-after.txt" 2>&1
	st_ms=$(( ($(date +%s%N) - st0) / 1000000 ))
	if daemon_alive && grep -q '^agent:' "$WORK/status-after.txt" &&
	   ! grep -q '^agent: *not running' "$WORK/status-after.txt"; then
		pass "portcullis status after the flood: agent answered in ${st_ms} ms"
	else
		fail "portcullis status after the flood: ${st_ms} ms"
	fi

	if [ $HAVE_METRICS = yes ]; then
		scrapes_after "$(date +%s.%N)" 2 ||
			fail "no two scrapes after the flood in 15 s"
		echo "    Prometheus after the flood: ingress drop_default $(prom_query \
			"$prom_drop_default"), drop samples: sampled $(prom_query \
			'sum(portcullis_drop_samples_total{result="sampled"})'), over budget $(prom_query \
			'sum(portcullis_drop_samples_total{result="over_budget"})')"
		if [ "$(prom_query "$prom_drop_default")" = "$c1" ]; then
			pass "Prometheus holds the same drop_default count as the pins: $c1"
		else
			fail "Prometheus drop_default $(prom_query "$prom_drop_default") vs pins $c1"
		fi
		if [ "$(prom_query 'up{job="portcullis"}')" = 1 ]; then
			pass "Prometheus kept scraping the agent through the flood"
		else
			fail "Prometheus lost the agent (up != 1) after the flood"
		fi
	fi
}

# ---- 5: the shipped alerts and dashboard against the real exposition ----
# api_check PATH: the JSON of a Prometheus API GET, checked by PYCODE
# (reads `d`, prints a summary, exits non-zero on failure).
api_check()
{
	ip netns exec "$LAB_NODE" timeout 20 "$PY" - "http://$PROM_ADDR" "$@" <<'PYEOF'
import json, sys, urllib.parse, urllib.request
base, what = sys.argv[1], sys.argv[2]
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
def get(path, **q):
    url = base + path + ('?' + urllib.parse.urlencode(q) if q else '')
    with opener.open(url, timeout=5) as r:
        return json.load(r)
if what == 'rules':
    groups = get('/api/v1/rules')['data']['groups']
    rules = [r for g in groups for r in g['rules']]
    bad = [(r['name'], r.get('lastError')) for r in rules if r.get('health') != 'ok']
    print('%d rules loaded, %d unhealthy %s' % (len(rules), len(bad), bad or ''))
    sys.exit(1 if bad or not rules else 0)
if what == 'alert':
    name, label, value = sys.argv[3:6]
    alerts = get('/api/v1/alerts')['data']['alerts']
    hit = [a for a in alerts if a['labels'].get('alertname') == name and
           a['labels'].get(label) == value and a['state'] == 'firing']
    print('%s{%s="%s"} firing: %s; all: %s' % (name, label, value, bool(hit),
          sorted((a['labels']['alertname'], a['state']) for a in alerts)))
    sys.exit(0 if hit else 1)
if what == 'dashboard':
    d = json.load(open(sys.argv[3]))
    exprs = [t['expr'] for p in d['panels'] for t in p.get('targets', [])]
    exprs += [a['expr'] for a in d['annotations']['list'] if 'expr' in a]
    bad, empty = [], 0
    for e in exprs:
        e = (e.replace('$__rate_interval', '1m').replace('$__range', '5m')
              .replace('$instance', '.*'))
        try:
            r = get('/api/v1/query', query=e)
            empty += not r['data']['result']
        except Exception as x:
            bad.append((e, str(x)))
    print('%d queries, %d errors, %d empty now %s' % (len(exprs), len(bad), empty, bad or ''))
    sys.exit(1 if bad else 0)
PYEOF
}

test_deploy_rules()
{
	local i
	if [ $HAVE_METRICS = no ]; then
		skip "deploy/ alerts and dashboard against the agent (no metrics endpoint)"
		return
	fi
	if api_check rules >"$WORK/rules.out" 2>&1; then
		pass "deploy/prometheus/alerts.yml evaluates cleanly: $(cat "$WORK/rules.out")"
	else
		fail "deploy/prometheus/alerts.yml: $(cat "$WORK/rules.out")"
	fi
	if api_check dashboard "$E2E_ROOT/deploy/grafana/portcullis-dashboard.json" \
		>"$WORK/dash.out" 2>&1; then
		pass "Grafana dashboard queries run: $(cat "$WORK/dash.out")"
	else
		fail "Grafana dashboard queries: $(cat "$WORK/dash.out")"
	fi
	# A lockdown by hand: its series is new (first of its kind), the case
	# increase() alone misses.
	pc lockdown >/dev/null 2>&1 || fail "portcullis lockdown"
	for ((i = 0; i < 50; i++)); do
		api_check alert PortcullisModeTransition to lockdown >"$WORK/alert.out" 2>&1 && break
		sleep 0.2
	done
	if [ $i -lt 50 ]; then
		pass "lockdown -> PortcullisModeTransition firing (severity ticket) within $((i * 2 / 10)) s"
	else
		fail "PortcullisModeTransition did not fire after a lockdown: $(cat "$WORK/alert.out")"
	fi
	pc release >/dev/null 2>&1 || fail "portcullis release"
}

# ---- Main ----
trap e2e_teardown EXIT
for t in "$PROMETHEUS" "$PROMTOOL" "$PCD" "$PCCLI"; do
	[ -x "$t" ] || { echo "FAIL: $t is missing"; exit 1; }
done
e2e_setup || { echo "FAIL: lab setup"; exit 1; }
agent_config
METRICS_OPT=()
"$PCD" --help 2>&1 | grep -q -- '--metrics' && METRICS_OPT=(--metrics "$METRICS_ADDR")
daemon_start "${METRICS_OPT[@]}" || { echo "FAIL: portcullisd did not start"; exit 1; }
pass "portcullisd started from a config in $LAB_NODE ${METRICS_OPT[*]}"

if metrics_wait; then
	HAVE_METRICS=yes
	pass "GET http://$METRICS_ADDR/metrics in the node namespace"
	if prometheus_start; then
		pass "prometheus scrapes the agent every 1s (up == 1)"
	else
		fail "prometheus did not scrape the agent"
		HAVE_METRICS=no
	fi
else
	skip "the agent serves no /metrics on $METRICS_ADDR (not built yet?)"
fi

test_exact_counts
test_promtool_metrics
test_flood
test_deploy_rules

echo
if [ "$FAILS" -gt 0 ]; then
	echo "telemetry: $FAILS failed"
	exit 1
fi
if [ $HAVE_METRICS = no ]; then
	echo "telemetry: no metrics endpoint: Prometheus checks skipped"
	exit 2
fi
echo "telemetry: all passed"
exit 0

#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Static checks of deploy/: the systemd unit, the Kubernetes manifests, the
# Prometheus config, alerts and their unit tests, the Grafana dashboard.
# One PASS/FAIL line per check; exit 1 if any failed. Needs systemd-analyze,
# promtool (Debian: prometheus), python3-yaml, and build/portcullisd
# (make). Touches nothing outside its temp dir.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEPLOY=$ROOT/deploy
PCD=${PCD:-$ROOT/build/portcullisd}
PY=/usr/bin/python3	# Debian's, with python3-yaml
PROMTOOL=${PROMTOOL:-/usr/bin/promtool}
# systemd-analyze security: fail above this exposure (0-100; shown /10).
EXPOSURE_MAX=30

FAILS=0
WORK=$(mktemp -d /tmp/pc-deploy-check.XXXXXX) || exit 1
trap 'rm -rf -- "$WORK"' EXIT

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILS=$((FAILS + 1)); }
# Show a command's output indented, under its PASS/FAIL line.
indent() { sed 's/^/    /' "$@"; }

# ---- Tools ----
tools_check()
{
	local ok=yes t
	for t in systemd-analyze "$PROMTOOL" "$PY"; do
		command -v "$t" >/dev/null || { fail "tool $t is missing"; ok=no; }
	done
	if ! dpkg -s python3-yaml >/dev/null 2>&1; then
		fail "python3-yaml is not installed (apt-get install python3-yaml)"
		ok=no
	fi
	[ -x "$PCD" ] || { fail "$PCD not built (make)"; ok=no; }
	[ $ok = yes ] && pass "tools: systemd-analyze, promtool, python3-yaml, portcullisd"
}

# ---- systemd ----
# The unit as installed, but with the binaries of this build, so verify
# can check that ExecStart= and ExecStartPre= point at executables.
unit_copy()
{
	mkdir -p "$WORK/unit"
	sed -e "s#/usr/local/sbin/portcullisd#$PCD#g" \
		"$DEPLOY/systemd/portcullisd.service" >"$WORK/unit/portcullisd.service"
}

unit_verify()
{
	local out=$WORK/verify.out ours
	systemd-analyze verify "$WORK/unit/portcullisd.service" >"$out" 2>&1
	local rc=$?
	# Messages about our unit name the file or the unit; anything else is
	# about the host's units (shown, not held against us).
	ours=$(grep -E "portcullisd\.service|$WORK" "$out")
	if [ $rc -eq 0 ] && [ -z "$ours" ]; then
		pass "systemd-analyze verify portcullisd.service: no warnings"
		[ -s "$out" ] && { echo "    (about other units:)"; indent "$out"; }
	else
		fail "systemd-analyze verify portcullisd.service (rc $rc)"
		indent "$out"
	fi
}

unit_semantics()
{
	local u=$WORK/unit/portcullisd.service missing=() k
	for k in '^Type=notify$' '^WatchdogSec=' '^Before=network-pre.target$' \
		 '^KillMode=process$' '^Restart=always$' \
		 '^Wants=network-pre.target$' '^StartLimitIntervalSec=0$' \
		 '^ExecStartPre=-/.*portcullisd --check-config /etc/portcullis/agent.yaml$' \
		 '^ExecStart=.*portcullisd --config /etc/portcullis/agent.yaml$' \
		 '^ProtectSystem=strict$' '^NoNewPrivileges=yes$' \
		 '^LimitMEMLOCK=infinity$' \
		 '^ReadWritePaths=/sys/fs/bpf /var/lib/portcullis /var/log/portcullis /run/portcullis$' \
		 '^RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK$'; do
		grep -Eq -- "$k" "$u" || missing+=("$k")
	done
	# Stopping must never detach: no ExecStop, no detach anywhere.
	grep -Eq '^ExecStop(Post)?=' "$u" && missing+=("no ExecStop=")
	grep -Eq '^Exec.*detach' "$u" && missing+=("no detach in Exec*=")
	grep -Eq '^CapabilityBoundingSet=.*CAP_NET_RAW' "$u" && missing+=("no CAP_NET_RAW")
	# Nothing may keep a failed start from enforcing: no condition that
	# skips the unit, no start limit that gives up.
	grep -Eq '^Condition' "$u" && missing+=("no Condition*=")
	grep -Eq '^StartLimitBurst=' "$u" && missing+=("no StartLimitBurst=")
	if [ ${#missing[@]} -eq 0 ]; then
		pass "unit keeps its semantics (notify, watchdog, before network-pre, KillMode=process, no ExecStop, retries forever, check-config advisory) and hardening"
	else
		fail "unit semantics/hardening: ${missing[*]}"
	fi
}

unit_exposure()
{
	local out=$WORK/security.out level
	systemd-analyze security --offline=yes --threshold=$EXPOSURE_MAX \
		"$WORK/unit/portcullisd.service" >"$out" 2>&1
	local rc=$?
	level=$(grep -o 'Overall exposure level for [^:]*: [0-9.]*' "$out" | awk '{print $NF}')
	if [ $rc -eq 0 ]; then
		pass "systemd-analyze security: exposure ${level:-?} (at most $((EXPOSURE_MAX / 10)).$((EXPOSURE_MAX % 10)))"
	else
		fail "systemd-analyze security: exposure ${level:-?} over $((EXPOSURE_MAX / 10)).$((EXPOSURE_MAX % 10))"
		grep '✗' "$out" | indent
	fi
}

# ---- Kubernetes ----
k8s_check()
{
	"$PY" - "$DEPLOY/kubernetes" "$WORK/k8s" <<'PYEOF'
import os, sys, yaml
d, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
errs = []
docs = {}
for f in sorted(os.listdir(d)):
    if not f.endswith(('.yaml', '.yml')):
        continue
    try:
        with open(os.path.join(d, f)) as fh:
            docs[f] = [x for x in yaml.safe_load_all(fh) if x is not None]
    except yaml.YAMLError as e:
        errs.append('%s: %s' % (f, e))
        continue
    for x in docs[f]:
        for k in ('apiVersion', 'kind', 'metadata'):
            if k not in x:
                errs.append('%s: a document without %s' % (f, k))
objs = [(f, x) for f, l in docs.items() for x in l]
kinds = {x.get('kind') for _, x in objs}
for k in ('DaemonSet', 'ConfigMap', 'Namespace'):
    if k not in kinds:
        errs.append('no %s in deploy/kubernetes' % k)
for f, x in objs:
    ns = x['metadata'].get('namespace')
    if x['kind'] != 'Namespace' and ns != 'portcullis-system':
        errs.append('%s: %s/%s not in portcullis-system' % (f, x['kind'], x['metadata'].get('name')))
    if x['kind'] == 'ConfigMap':
        for k, v in x.get('data', {}).items():
            with open(os.path.join(out, k), 'w') as fh:
                fh.write(v)
    if x['kind'] not in ('DaemonSet', 'Job'):
        continue
    spec = x['spec']['template']['spec']
    sel = x['spec'].get('selector', {}).get('matchLabels', {})
    labels = x['spec']['template']['metadata'].get('labels', {})
    if any(labels.get(k) != v for k, v in sel.items()):
        errs.append('%s: selector does not match the pod labels' % f)
    if not spec.get('hostNetwork'):
        errs.append('%s: hostNetwork must be true' % f)
    if spec.get('hostPID'):
        errs.append('%s: hostPID must be false' % f)
    vols = {v['name']: v for v in spec.get('volumes', [])}
    for c in spec.get('initContainers', []) + spec['containers']:
        sc = c.get('securityContext', {})
        for m in c.get('volumeMounts', []):
            if m['name'] not in vols:
                errs.append('%s: %s mounts unknown volume %s' % (f, c['name'], m['name']))
            # The API server refuses Bidirectional outside privileged.
            if m.get('mountPropagation') == 'Bidirectional' and not sc.get('privileged'):
                errs.append('%s: %s: Bidirectional propagation needs privileged' % (f, c['name']))
    if x['kind'] == 'DaemonSet':
        c = spec['containers'][0]
        sc = c.get('securityContext', {})
        caps = set(sc.get('capabilities', {}).get('add', []))
        if sc.get('privileged') is not False:
            errs.append('%s: the agent must be privileged: false' % f)
        if caps != {'BPF', 'NET_ADMIN', 'PERFMON', 'SYS_ADMIN'}:
            errs.append('%s: capabilities %s' % (f, sorted(caps)))
        if sc.get('capabilities', {}).get('drop') != ['ALL']:
            errs.append('%s: capabilities must drop ALL first' % f)
        mounts = {m['mountPath']: m for m in c.get('volumeMounts', [])}
        for p in ('/sys/fs/bpf', '/var/lib/portcullis', '/var/log/portcullis', '/etc/portcullis'):
            if p not in mounts:
                errs.append('%s: agent does not mount %s' % (f, p))
        for p in ('/sys/fs/bpf', '/var/lib/portcullis', '/var/log/portcullis'):
            v = vols.get(mounts.get(p, {}).get('name'), {})
            if 'hostPath' not in v:
                errs.append('%s: %s must be a hostPath' % (f, p))
        if 'configMap' not in vols.get(mounts.get('/etc/portcullis', {}).get('name'), {}):
            errs.append('%s: /etc/portcullis must come from a ConfigMap' % f)
        if spec.get('priorityClassName') != 'system-node-critical':
            errs.append('%s: priorityClassName' % f)
        if {'operator': 'Exists'} not in spec.get('tolerations', []):
            errs.append('%s: must tolerate every taint' % f)
        us = x['spec'].get('updateStrategy', {})
        if us.get('type') != 'RollingUpdate' or us.get('rollingUpdate', {}).get('maxUnavailable') != 1:
            errs.append('%s: updateStrategy RollingUpdate maxUnavailable 1' % f)
        for p in ('livenessProbe', 'readinessProbe'):
            if p not in c:
                errs.append('%s: no %s' % (f, p))
        if 'resources' not in c:
            errs.append('%s: no resources' % f)
for e in errs:
    print(e)
print('%d documents in %d files' % (len(objs), len(docs)))
sys.exit(1 if errs else 0)
PYEOF
}

k8s_config_check()
{
	local out=$WORK/k8s-check-config.out
	if [ ! -f "$WORK/k8s/agent.yaml" ]; then
		fail "ConfigMap agent.yaml: not found"
		return
	fi
	if "$PCD" --check-config "$WORK/k8s/agent.yaml" >"$out" 2>&1; then
		pass "ConfigMap agent.yaml + policy.yaml: portcullisd --check-config"
		indent "$out"
	else
		fail "ConfigMap agent.yaml + policy.yaml: portcullisd --check-config"
		indent "$out"
	fi
	safe_defaults "ConfigMap agent.yaml" "$out"
}

# safe_defaults WHAT OUT: a config shipped to be copied expects no
# controller (nothing then locks the host down for want of heartbeats)
# and draws no dead-man warning from --check-config's output OUT.
safe_defaults()
{
	if grep -q 'controller no; fleet no' "$2" && ! grep -qi 'dead-man' "$2"; then
		pass "$1: no controller, no heartbeats expected (safe until one is configured)"
	else
		fail "$1: ships a controller or heartbeats nobody sends (issue 13)"
		indent "$2"
	fi
}

# deploy/agent.yaml, its policy path pointed at the ConfigMap's policy.
agent_example_check()
{
	local out=$WORK/agent-example.out
	sed "s#^policy: .*#policy: $WORK/k8s/policy.yaml#" "$DEPLOY/agent.yaml" \
		>"$WORK/agent-example.yaml"
	if "$PCD" --check-config "$WORK/agent-example.yaml" >"$out" 2>&1; then
		pass "deploy/agent.yaml: portcullisd --check-config"
	else
		fail "deploy/agent.yaml: portcullisd --check-config"
		indent "$out"
	fi
	safe_defaults "deploy/agent.yaml" "$out"
}

# ---- Prometheus ----
prom_check()
{
	local what=$1 out=$WORK/promtool-$1.out
	shift
	if (cd "$DEPLOY/prometheus" && "$PROMTOOL" "$@") >"$out" 2>&1; then
		pass "promtool $what"
	else
		fail "promtool $what"
		indent "$out"
	fi
}

# The commented kubernetes_sd job must still be a valid scrape config
# shape once uncommented (this promtool cannot check it: see the file).
prom_k8s_example()
{
	"$PY" - "$DEPLOY/prometheus/prometheus.yml" <<'PYEOF'
import re, sys, yaml
s = open(sys.argv[1]).read()
m = re.search(r'# BEGIN kubernetes_sd example\n(.*?)\n\s*# END kubernetes_sd example', s, re.S)
if not m:
    sys.exit('no kubernetes_sd example block')
block = '\n'.join(re.sub(r'^(\s*)# ?', r'\1', l, count=1) for l in m.group(1).split('\n'))
jobs = yaml.safe_load(block)
j = jobs[0]
assert j['job_name'].startswith('portcullis'), 'job name must start with portcullis'
assert j['kubernetes_sd_configs'][0]['role'] in ('pod', 'node', 'endpoints')
assert any(r.get('target_label') == '__address__' for r in j['relabel_configs'])
PYEOF
}

# Every metric the alerts and the dashboard use must be one the agent
# exports (the list agreed with the metrics work), or up.
METRICS="rule_packets_total rule_bytes_total packets_total bytes_total mode
deadman_tripped deadman_enabled transitions_total time_to_secure_seconds_bucket
time_to_secure_seconds_count time_to_secure_seconds_sum heartbeat_age_seconds
heartbeat_timeout_seconds controller_messages_total controller_commands_failed_total
audit_write_errors_total flows flows_max flow_table_entries flow_table_max
flows_embryonic flow_inserts_total flow_evictions_total policy_generation
policy_last_load_timestamp_seconds policy_rules drop_samples_total build_info
host_info transition_failures_total fleet_envelopes_total fleet_keepalives_total
fleet_leases_lost_total fleet_heartbeats_total"

metric_names_check()
{
	local f=$1 used unknown=() m known
	used=$(grep -o 'portcullis_[a-z_]*' "$f" | sort -u)
	known=" $(tr '\n' ' ' <<<"$METRICS") "
	for m in $used; do
		case $known in
		*" ${m#portcullis_} "*) ;;
		*) unknown+=("$m") ;;
		esac
	done
	if [ ${#unknown[@]} -eq 0 ]; then
		pass "$(basename "$f"): uses only known metric names ($(echo "$used" | wc -w))"
	else
		fail "$(basename "$f"): unknown metrics ${unknown[*]}"
	fi
}

# ---- Grafana ----
grafana_check()
{
	"$PY" - "$DEPLOY/grafana/portcullis-dashboard.json" "$WORK/grafana-rules.yml" <<'PYEOF'
import json, sys, yaml
d = json.load(open(sys.argv[1]))
errs = []
rows = [p['title'] for p in d['panels'] if p['type'] == 'row']
if rows != ['Executive', 'On-call', 'Debug', 'Fleet']:
    errs.append('rows are %s, want Executive, On-call, Debug, Fleet' % rows)
if not 30 <= d.get('schemaVersion', 0) <= 39:
    errs.append('schemaVersion %s' % d.get('schemaVersion'))
names = [v['name'] for v in d['templating']['list']]
for v in ('DS_PROMETHEUS', 'instance'):
    if v not in names:
        errs.append('no $%s variable' % v)
ids = [p['id'] for p in d['panels']]
if len(ids) != len(set(ids)):
    errs.append('duplicate panel ids')
# Panels per row, and every query as a recording rule for promtool.
per_row, cur, exprs = {}, None, []
for p in d['panels']:
    if p['type'] == 'row':
        cur = p['title']
        per_row[cur] = 0
        continue
    per_row[cur] += 1
    if p.get('datasource', {}).get('uid') != '${DS_PROMETHEUS}':
        errs.append('panel %r: datasource is not ${DS_PROMETHEUS}' % p['title'])
    for t in p.get('targets', []):
        if 'instance=~"$instance"' not in t['expr']:
            errs.append('panel %r: query ignores $instance' % p['title'])
        exprs.append(t['expr'])
for a in d['annotations']['list']:
    if 'expr' in a:
        exprs.append(a['expr'])
for r, n in per_row.items():
    if n < 3:
        errs.append('row %s has only %d panels' % (r, n))
def concrete(e):
    return (e.replace('$__rate_interval', '1m').replace('$__range', '1h')
             .replace('$instance', '.*'))
rules = [{'record': 'dashboard:q%d' % i, 'expr': concrete(e)} for i, e in enumerate(exprs)]
yaml.safe_dump({'groups': [{'name': 'dashboard', 'rules': rules}]}, open(sys.argv[2], 'w'))
for e in errs:
    print(e)
print('rows %s; panels per row %s; %d queries' % (rows, per_row, len(exprs)))
sys.exit(1 if errs else 0)
PYEOF
}

tools_check
unit_copy
unit_verify
unit_semantics
unit_exposure

if k8s_check >"$WORK/k8s.out" 2>&1; then
	pass "Kubernetes manifests parse and have the required shape ($(tail -n 1 "$WORK/k8s.out"))"
else
	fail "Kubernetes manifests"
	indent "$WORK/k8s.out"
fi
k8s_config_check
agent_example_check

prom_check "check config prometheus.yml" check config prometheus.yml
prom_check "check rules alerts.yml" check rules alerts.yml
prom_check "test rules alerts_test.yml" test rules alerts_test.yml
if prom_k8s_example >"$WORK/k8s-sd.out" 2>&1; then
	pass "prometheus.yml: commented kubernetes_sd job parses"
else
	fail "prometheus.yml: commented kubernetes_sd job"
	indent "$WORK/k8s-sd.out"
fi
metric_names_check "$DEPLOY/prometheus/alerts.yml"

if grafana_check >"$WORK/grafana.out" 2>&1; then
	pass "Grafana dashboard parses ($(tail -n 1 "$WORK/grafana.out"))"
else
	fail "Grafana dashboard"
	indent "$WORK/grafana.out"
fi
if [ -s "$WORK/grafana-rules.yml" ] &&
   "$PROMTOOL" check rules "$WORK/grafana-rules.yml" >"$WORK/grafana-promql.out" 2>&1; then
	pass "Grafana dashboard: every query is valid PromQL"
else
	fail "Grafana dashboard: PromQL"
	indent "$WORK/grafana-promql.out"
fi
metric_names_check "$DEPLOY/grafana/portcullis-dashboard.json"

echo
if [ "$FAILS" -eq 0 ]; then
	echo "deploy checks: all passed"
else
	echo "deploy checks: $FAILS failed"
fi
[ "$FAILS" -eq 0 ]

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Fleet lab for Portcullis, to be sourced (tests/e2e/fleet.sh,
# tests/bench/fleet_fanout.sh):
#
#   . tests/fleet-lab.sh
#   trap fleet_lab_down EXIT
#   fleet_lab_init               # prefix, work dir, bpffs, tools
#   fleet_lab_up 3               # etcd namespace + nodes 1..3, wired
#   fleet_etcd_start             # etcd in <prefix>-etcd
#   fleet_keygen                 # controller key pair for the run
#   fleet_heartbeat_start        # the controller's signed heartbeats
#   fleet_agent_config 1 "web"   # WORK/n1/agent.yaml from the template
#   fleet_agent_start 1 && fleet_agent_wait_ready 1 20
#   fleet_cli quarantine node-1  # portcullis fleet, in the etcd namespace
#   fleet_mode 1                 # the mode in node 1's pinned map
#
# Optionally etcd as a 3-member cluster instead of the single etcd (the
# single one stopped meanwhile, its data dir kept): fleet_cluster_init
# [SNAPSHOT], fleet_member_start K, fleet_cluster_wait_healthy,
# fleet_member_stop K KILL, fleet_cluster_down (fleet_lab_down calls it
# too). Members K=1..3 listen on 192.0.2.1 and 127.0.0.1, client ports
# FLEET_HA_CLIENT_PORTS (12379 22379 32379), peer ports
# FLEET_HA_PEER_PORTS (12380 22380 32380) on 127.0.0.1, data in
# WORK/etcd-mK.data. Set FL_POLICY_HA=1 before fleet_lab_init for a node
# policy whose etcd management entry names those client ports as well.
#
# Agents count only the controller's signed heartbeats as liveness
# (README "Fleet liveness is authenticated"): without
# fleet_heartbeat_start [EVERY] (`portcullis fleet heartbeat --every
# EVERY`, 500ms, in the etcd namespace, to the single etcd and the
# cluster's members in turn) every node locks down after its heartbeat
# timeout. fleet_heartbeat_stop stops it (fleet_lab_down does too).
#
#                <prefix>-etcd   etcd on http://192.0.2.1:PORT (192.0.2.1/32
#                                on lo) and http://127.0.0.1:PORT
#   pcn1 198.51.100.5/30   pcn2 198.51.100.9/30  ...  pcnI 198.51.100.(4I+1)/30
#        |                      |                          |
#   pcfleet 198.51.100.6/30  pcfleet 198.51.100.10/30 ...  pcfleet 198.51.100.(4I+2)/30
#   <prefix>-n1              <prefix>-n2                <prefix>-nI
#   route 192.0.2.1/32 via the router side (.4I+1)
#
# Every veth pair is made inside a node namespace with its other end placed
# straight into the etcd namespace: nothing is created in the root
# namespace, nothing of the machine's own is touched. Only documentation
# addresses are used; up to 60 nodes (a /30 each inside 198.51.100.0/24).
# Each agent runs in its node's network namespace only (nsenter --net, so
# /sys/fs/bpf stays visible) with its own pin dir /sys/fs/bpf/<prefix>-nI,
# state dir, audit log and control socket under the run's work dir.
# fleet_lab_down stops what this lab started (by PID), detaches and removes
# each pin dir and namespace by its exact name, and removes the work dir.

FL_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=SCRIPTDIR/lab.sh
. "$FL_ROOT/tests/lab.sh"

PCD=${PCD:-$FL_ROOT/build/portcullisd}
PCCLI=${PCCLI:-$FL_ROOT/build/portcullis}
PY=/usr/bin/python3	# Debian's; the python3 first on PATH is another build
ETCD_BIN=${ETCD_BIN:-etcd}
ETCDCTL_BIN=${ETCDCTL_BIN:-etcdctl}
FL_POLICY_SRC=${FL_POLICY_SRC:-$FL_ROOT/tests/policies/fleet-node.yaml}
FL_CONFIG_SRC=${FL_CONFIG_SRC:-$FL_ROOT/tests/configs/fleet-agent.yaml}

FL_ETCD_IP=192.0.2.1
FL_ETCD_PORT=${FLEET_ETCD_PORT:-2379}	# per namespace: no clash with the host
FL_ETCD_PEER_PORT=${FLEET_ETCD_PEER_PORT:-2380}
FL_ETCD_LOCAL=http://127.0.0.1:$FL_ETCD_PORT	# the CLI's endpoint (etcd ns)
FL_ETCD_URL=http://$FL_ETCD_IP:$FL_ETCD_PORT	# the agents' endpoint
FL_KEY_PREFIX=${FLEET_PREFIX:-/portcullis}	# the fleet's etcd key prefix
FL_XDP_MODE=${FLEET_XDP_MODE:-auto}
FL_IF=pcfleet			# the agent's interface in every node namespace
FL_MAX_NODES=60
FL_AGENT_LIFETIME=${FLEET_AGENT_LIFETIME:-3600}	# timeout(1) bound, seconds
FL_ETCD_LIFETIME=${FLEET_ETCD_LIFETIME:-3600}
# The anti-lockout check looks at the operator's SSH session; the lab's
# policy knows nothing of it, and no lab traffic goes over it.
unset SSH_CONNECTION
export ETCDCTL_API=3

FL_ID=			# lab prefix, pc + 4 hex digits
FL_WORK=		# the run's work dir
FL_NS_ETCD=		# <prefix>-etcd
FL_NODES=()		# node indices whose namespace exists
FL_AGENT_WRAP=()	# by index: timeout(1) around the agent
FL_AGENT_PID=()		# by index: the agent itself
FL_AGENT_STARTS=()	# by index: how many times started (log names)
FL_ETCD_WRAP=
FL_ETCD_PID=
FL_ETCD_STARTS=0
# The optional 3-member cluster (see the top).
read -r -a FL_HA_CLIENT_PORTS <<<"${FLEET_HA_CLIENT_PORTS:-12379 22379 32379}"
read -r -a FL_HA_PEER_PORTS <<<"${FLEET_HA_PEER_PORTS:-12380 22380 32380}"
FL_POLICY_HA=${FL_POLICY_HA:-0}	# 1: management names the members' ports too
FL_MEMBERS=()		# member indices with a data dir (the cluster exists)
FL_MEMBER_WRAP=()	# by index: timeout(1) around the member
FL_MEMBER_PID=()	# by index: etcd itself
FL_MEMBER_STARTS=()	# by index: how many times started (log names)
# The CLI's, etcdctl's and fleet_kv's endpoints (comma-separated; fleet_kv
# takes the first): the single etcd unless set (the cluster's members).
FL_CLI_ENDPOINTS=
FL_BG=()		# other background processes we started
FL_HB_WRAP=		# timeout(1) around the heartbeat publisher
FL_HB_STARTS=0
FL_HB_EVERY=${FLEET_HB_EVERY:-500ms}	# a quarter of the lab's 2 s timeout
FL_KEY=			# the controller's secret key file
FL_PUB=			# its public half
FL_DOWN_DONE=

# ---- names ----
fl_ns() { echo "$FL_ID-n$1"; }
fl_node_ip() { echo "198.51.100.$((4 * $1 + 2))"; }
fl_router_ip() { echo "198.51.100.$((4 * $1 + 1))"; }
fl_router_if() { echo "pcn$1"; }
fl_host() { echo "node-$1"; }
fl_pin() { echo "/sys/fs/bpf/$FL_ID-n$1"; }
fl_dir() { echo "$FL_WORK/n$1"; }
fl_audit() { echo "$FL_WORK/n$1/audit.jsonl"; }
fl_key_of() { echo "$FL_KEY_PREFIX/desired/host/$(fl_host "$1")"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

fl_log() { echo "fleet-lab: $*" >&2; }

# fleet_lab_init: pick the prefix, make the work dir, mount bpffs if needed,
# check the tools. Callers set `trap fleet_lab_down EXIT` first.
fleet_lab_init()
{
	local t
	for t in ip nsenter timeout pgrep "$ETCD_BIN" "$ETCDCTL_BIN" curl "$PY"; do
		command -v "$t" >/dev/null 2>&1 || { fl_log "$t not found"; return 1; }
	done
	for t in "$PCD" "$PCCLI"; do
		[ -x "$t" ] || { fl_log "$t missing: run make first"; return 1; }
	done
	FL_ID=$(lab_prefix)
	# An unlikely clash with a lab of another run: pick again.
	while [ -e "/run/netns/$FL_ID-etcd" ] || [ -e "/sys/fs/bpf/$FL_ID-n1" ]; do
		FL_ID=$(lab_prefix)
	done
	FL_NS_ETCD=$FL_ID-etcd
	FL_WORK=$(mktemp -d /tmp/pc-fleet.XXXXXX) || return 1
	lab_bpffs || { fl_log "cannot mount bpffs on /sys/fs/bpf"; return 1; }
	# The management entry names etcd's client port (2379 in the file),
	# and with FL_POLICY_HA=1 the cluster members' client ports too.
	local ports=$FL_ETCD_PORT
	if [ "$FL_POLICY_HA" = 1 ]; then
		ports="[$FL_ETCD_PORT$(printf ', %s' "${FL_HA_CLIENT_PORTS[@]}")]"
	fi
	sed "/name: etcd,/s/ports: 2379/ports: $ports/" "$FL_POLICY_SRC" \
		>"$FL_WORK/policy.yaml"
}

_fl_in()
{
	local ns=$1
	shift
	ip netns exec "$ns" "$@" || { fl_log "in $ns: $* failed"; return 1; }
}

# fleet_lab_etcd_ns: the etcd namespace, 192.0.2.1/32 on its lo.
fleet_lab_etcd_ns()
{
	[ -e "/run/netns/$FL_NS_ETCD" ] && return 0
	_lab_ns_create "$FL_NS_ETCD" || return 1
	ip -n "$FL_NS_ETCD" addr add "$FL_ETCD_IP/32" dev lo
}

# fleet_lab_node_add I: node I's namespace and its link to the etcd one.
fleet_lab_node_add()
{
	local i=$1 ns rif
	if [ "$i" -lt 1 ] || [ "$i" -gt "$FL_MAX_NODES" ]; then
		fl_log "node index $i outside 1..$FL_MAX_NODES"
		return 1
	fi
	ns=$(fl_ns "$i")
	rif=$(fl_router_if "$i")
	[ -e "/run/netns/$ns" ] && { fl_log "$ns exists already"; return 1; }
	_lab_ns_create "$ns" || return 1
	FL_NODES+=("$i")
	mkdir -p "$(fl_dir "$i")" || return 1
	if ! { ip -n "$ns" link add "$FL_IF" type veth peer name "$rif" netns "$FL_NS_ETCD" &&
		ip -n "$ns" link set "$FL_IF" up &&
		ip -n "$FL_NS_ETCD" link set "$rif" up &&
		ip -n "$FL_NS_ETCD" addr add "$(fl_router_ip "$i")/30" dev "$rif" &&
		ip -n "$ns" addr add "$(fl_node_ip "$i")/30" dev "$FL_IF" &&
		ip -n "$ns" route add "$FL_ETCD_IP/32" via "$(fl_router_ip "$i")"; }; then
		fl_log "wiring node $i failed"
		return 1
	fi
}

# fleet_lab_up N [FIRST]: the etcd namespace and nodes FIRST (1)..N.
fleet_lab_up()
{
	local n=$1 first=${2:-1} i
	fleet_lab_etcd_ns || return 1
	for ((i = first; i <= n; i++)); do
		fleet_lab_node_add "$i" || return 1
	done
}

# ---- etcd ----

# _fl_child_of WRAP NAME: the PID of WRAP's child once it runs NAME (the
# child of timeout(1) is first a fork of it, then nsenter, then NAME).
_fl_child_of()
{
	local wrap=$1 name=$2 i pid=
	for ((i = 0; i < 100; i++)); do
		pid=$(pgrep -x -P "$wrap" "$name" | head -n 1)
		[ -n "$pid" ] && break
		kill -0 "$wrap" 2>/dev/null || break
		sleep 0.1
	done
	echo "$pid"
}

# fleet_etcd_start: etcd in the etcd namespace on the run's data dir (a
# restart reuses it); waits until it answers (15 s).
fleet_etcd_start()
{
	local log i
	FL_ETCD_STARTS=$((FL_ETCD_STARTS + 1))
	log=$FL_WORK/etcd-$FL_ETCD_STARTS.log
	timeout -s TERM "$FL_ETCD_LIFETIME" ip netns exec "$FL_NS_ETCD" \
		"$ETCD_BIN" --name "$FL_ID" --data-dir "$FL_WORK/etcd.data" \
		--listen-client-urls "$FL_ETCD_URL,$FL_ETCD_LOCAL" \
		--advertise-client-urls "$FL_ETCD_URL" \
		--listen-peer-urls "http://127.0.0.1:$FL_ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$FL_ETCD_PEER_PORT" \
		--initial-cluster "$FL_ID=http://127.0.0.1:$FL_ETCD_PEER_PORT" \
		--initial-cluster-token "$FL_ID" --initial-cluster-state new \
		--logger zap --log-level warn >"$log" 2>&1 &
	FL_ETCD_WRAP=$!
	FL_ETCD_PID=$(_fl_child_of "$FL_ETCD_WRAP" "$(basename "$ETCD_BIN")")
	[ -n "$FL_ETCD_PID" ] || { fl_log "etcd did not start: $(tail -n 3 "$log")"; return 1; }
	for ((i = 0; i < 150; i++)); do
		fleet_etcdctl endpoint health >/dev/null 2>&1 && return 0
		kill -0 "$FL_ETCD_PID" 2>/dev/null || break
		sleep 0.1
	done
	fl_log "etcd not healthy after 15 s; its log:"
	sed 's/^/    /' "$log" >&2
	return 1
}

# _fl_reap WRAP: wait for a timeout(1) wrapper whose child was stopped; if
# it is still there after 5 s, TERM it (it passes that on) and wait.
_fl_reap()
{
	local wrap=$1 t
	[ -n "$wrap" ] || return 0
	for ((t = 0; t < 50; t++)); do
		kill -0 "$wrap" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$wrap" 2>/dev/null && kill -s TERM "$wrap" 2>/dev/null
	wait "$wrap" 2>/dev/null
}

fleet_etcd_alive() { [ -n "$FL_ETCD_PID" ] && kill -0 "$FL_ETCD_PID" 2>/dev/null; }

# fleet_etcd_stop [SIGNAL]: signal etcd by its PID (TERM), reap it.
# _fl_stop PID WRAP SIGNAL: signal a process we started, KILL it after
# 5 s, reap its timeout(1) wrapper.
_fl_stop()
{
	local pid=$1 wrap=$2 sig=$3 i
	{
		kill -s "$sig" "$pid"
		for ((i = 0; i < 50; i++)); do
			kill -0 "$pid" || break
			sleep 0.1
		done
		kill -0 "$pid" && kill -s KILL "$pid"
		_fl_reap "$wrap"
	} 2>/dev/null
}

fleet_etcd_stop()
{
	[ -n "$FL_ETCD_PID" ] || return 0
	_fl_stop "$FL_ETCD_PID" "$FL_ETCD_WRAP" "${1:-TERM}"
	FL_ETCD_PID=
	FL_ETCD_WRAP=
}

# ---- etcd as a 3-member cluster (optional) ----

fl_member_name() { echo "$FL_ID-m$1"; }
fl_member_url() { echo "http://$FL_ETCD_IP:${FL_HA_CLIENT_PORTS[$(($1 - 1))]}"; }
fl_member_local() { echo "http://127.0.0.1:${FL_HA_CLIENT_PORTS[$(($1 - 1))]}"; }
fl_member_peer() { echo "http://127.0.0.1:${FL_HA_PEER_PORTS[$(($1 - 1))]}"; }
fl_member_data() { echo "$FL_WORK/etcd-m$1.data"; }
fl_member_log() { echo "$FL_WORK/etcd-m$1-${FL_MEMBER_STARTS[$1]:-0}.log"; }

# fleet_cluster_urls: the members' agent endpoints, "URL1, URL2, URL3"
# (a YAML flow list's inside); fleet_cluster_locals [K...]: the local
# (127.0.0.1) endpoints of members K (all), comma-separated (CLI, etcdctl).
fleet_cluster_urls()
{
	local k out=
	for k in 1 2 3; do
		out=${out:+$out, }$(fl_member_url "$k")
	done
	echo "$out"
}

fleet_cluster_locals()
{
	local k out='' ks=("$@")
	[ ${#ks[@]} -gt 0 ] || ks=(1 2 3)
	for k in "${ks[@]}"; do
		out=${out:+$out,}$(fl_member_local "$k")
	done
	echo "$out"
}

_fl_initial_cluster()
{
	local k out=
	for k in 1 2 3; do
		out=${out:+$out,}$(fl_member_name "$k")=$(fl_member_peer "$k")
	done
	echo "$out"
}

# fleet_cluster_init [SNAPSHOT]: data dirs for members 1..3 (any of an
# earlier cluster of the run removed), restored from SNAPSHOT (etcdctl
# snapshot save: the same keys and revisions) or left to a new cluster;
# starts nothing.
fleet_cluster_init()
{
	local snap=${1:-} k p all=()
	all=("$FL_ETCD_PORT" "$FL_ETCD_PEER_PORT" "${FL_HA_CLIENT_PORTS[@]}" "${FL_HA_PEER_PORTS[@]}")
	if [ ${#FL_HA_CLIENT_PORTS[@]} -ne 3 ] || [ ${#FL_HA_PEER_PORTS[@]} -ne 3 ] ||
		[ "$(printf '%s\n' "${all[@]}" | sort -u | wc -l)" -ne 8 ]; then
		fl_log "cluster ports must be 3 client and 3 peer ports, distinct from $FL_ETCD_PORT/$FL_ETCD_PEER_PORT and each other: ${all[*]}"
		return 1
	fi
	for p in "${FL_HA_CLIENT_PORTS[@]}"; do
		if [ "$FL_POLICY_HA" = 1 ] && ! grep -q "name: etcd,.*$p" "$FL_WORK/policy.yaml"; then
			fl_log "the lab policy's etcd management entry lacks port $p"
			return 1
		fi
	done
	for k in 1 2 3; do
		fleet_member_alive "$k" && { fl_log "member $k runs already"; return 1; }
	done
	FL_MEMBERS=()
	for k in 1 2 3; do
		# A data dir of an earlier cluster of this run (FLEET_KEEP_WORK=1).
		rm -rf -- "$(fl_member_data "$k")"
		FL_MEMBERS+=("$k")
		[ -n "$snap" ] || continue
		ETCDCTL_API=3 timeout 60 "$ETCDCTL_BIN" snapshot restore "$snap" \
			--name "$(fl_member_name "$k")" --data-dir "$(fl_member_data "$k")" \
			--initial-cluster "$(_fl_initial_cluster)" \
			--initial-cluster-token "$FL_ID-ha" \
			--initial-advertise-peer-urls "$(fl_member_peer "$k")" \
			>"$FL_WORK/restore-m$k.log" 2>&1 || {
			fl_log "snapshot restore for member $k failed: $(tail -n 2 "$FL_WORK/restore-m$k.log")"
			return 1
		}
	done
}

fleet_member_alive()
{
	local pid=${FL_MEMBER_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# fleet_member_start K: member K in the etcd namespace on its data dir (a
# restart reuses it); does not wait (a member alone has no quorum).
fleet_member_start()
{
	local k=$1 log
	fleet_member_alive "$k" && { fl_log "member $k runs already"; return 1; }
	FL_MEMBER_STARTS[k]=$((${FL_MEMBER_STARTS[$k]:-0} + 1))
	log=$(fl_member_log "$k")
	timeout -s TERM "$FL_ETCD_LIFETIME" ip netns exec "$FL_NS_ETCD" \
		"$ETCD_BIN" --name "$(fl_member_name "$k")" --data-dir "$(fl_member_data "$k")" \
		--listen-client-urls "$(fl_member_url "$k"),$(fl_member_local "$k")" \
		--advertise-client-urls "$(fl_member_url "$k")" \
		--listen-peer-urls "$(fl_member_peer "$k")" \
		--initial-advertise-peer-urls "$(fl_member_peer "$k")" \
		--initial-cluster "$(_fl_initial_cluster)" \
		--initial-cluster-token "$FL_ID-ha" --initial-cluster-state new \
		--logger zap --log-level warn >"$log" 2>&1 &
	FL_MEMBER_WRAP[k]=$!
	FL_MEMBER_PID[k]=$(_fl_child_of "${FL_MEMBER_WRAP[$k]}" "$(basename "$ETCD_BIN")")
	[ -n "${FL_MEMBER_PID[$k]}" ] || { fl_log "member $k did not start: $(tail -n 3 "$log")"; return 1; }
}

# fleet_cluster_wait_healthy SECONDS [K...]: each member K (all) answers
# `endpoint health` (a quorum read: the cluster has a leader).
fleet_cluster_wait_healthy()
{
	local deadline k ok ks=("${@:2}")
	[ ${#ks[@]} -gt 0 ] || ks=(1 2 3)
	deadline=$(($(now_ms) + $1 * 1000))
	while :; do
		ok=1
		for k in "${ks[@]}"; do
			FL_CLI_ENDPOINTS=$(fl_member_local "$k") fleet_etcdctl \
				--command-timeout 2s endpoint health >/dev/null 2>&1 || { ok=0; break; }
		done
		[ "$ok" = 1 ] && return 0
		[ "$(now_ms)" -lt "$deadline" ] || break
		sleep 0.2
	done
	fl_log "members ${ks[*]} not healthy after $1 s; the end of their logs:"
	for k in "${ks[@]}"; do
		tail -n 3 "$(fl_member_log "$k")" 2>/dev/null | sed "s/^/    m$k: /" >&2
	done
	return 1
}

# fleet_cluster_leader: the index of the member that is leader ("" if
# none answers or there is none).
fleet_cluster_leader()
{
	FL_CLI_ENDPOINTS=$(fleet_cluster_locals 1 2 3) fleet_etcdctl --command-timeout 2s \
		endpoint status -w json 2>/dev/null | "$PY" -c '
import json, sys
locs = sys.argv[1].split(",")
try:
    rows = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for r in rows:
    st = r.get("Status", {})
    if st.get("leader") and st["leader"] == st.get("header", {}).get("member_id"):
        ep = r.get("Endpoint", "")
        if ep in locs:
            print(locs.index(ep) + 1)
            break
' "$(fleet_cluster_locals 1 2 3)"
}

# fleet_member_id K: member K's id, hex (for etcdctl move-leader).
fleet_member_id()
{
	FL_CLI_ENDPOINTS=$(fl_member_local "$1") fleet_etcdctl --command-timeout 2s \
		endpoint status -w json 2>/dev/null | "$PY" -c '
import json, sys
for r in json.load(sys.stdin):
    print("%x" % r["Status"]["header"]["member_id"])
'
}

# fleet_member_stop K [SIGNAL]: signal member K by its PID (TERM), reap it;
# its data dir stays (a restart rejoins).
fleet_member_stop()
{
	local k=$1 pid
	pid=${FL_MEMBER_PID[$k]:-}
	[ -n "$pid" ] || return 0
	_fl_stop "$pid" "${FL_MEMBER_WRAP[$k]:-}" "${2:-TERM}"
	FL_MEMBER_PID[k]=
	FL_MEMBER_WRAP[k]=
}

# fleet_cluster_down: stop every member (by PID: TERM to all, then each
# reaped, KILL after 5 s) and remove their data dirs (kept with
# FLEET_KEEP_WORK=1, as the work dir is). Safe to call when there is none.
fleet_cluster_down()
{
	local k pid
	for k in "${!FL_MEMBER_PID[@]}"; do
		pid=${FL_MEMBER_PID[$k]:-}
		[ -n "$pid" ] && kill -s TERM "$pid" 2>/dev/null
	done
	for k in "${!FL_MEMBER_PID[@]}"; do
		fleet_member_stop "$k" TERM
	done
	if [ "${FLEET_KEEP_WORK:-0}" != 1 ] && [ -n "$FL_WORK" ]; then
		for k in "${FL_MEMBERS[@]}"; do
			rm -rf -- "$(fl_member_data "$k")"
		done
	fi
	FL_MEMBERS=()
}

# fleet_etcd_restore SNAPSHOT: replace the single etcd's data dir (it must
# be stopped) with SNAPSHOT's keys and revisions.
fleet_etcd_restore()
{
	local snap=$1 d=$FL_WORK/etcd.data
	fleet_etcd_alive && { fl_log "etcd runs: not restoring its data"; return 1; }
	rm -rf -- "$d.restore"
	ETCDCTL_API=3 timeout 60 "$ETCDCTL_BIN" snapshot restore "$snap" \
		--name "$FL_ID" --data-dir "$d.restore" \
		--initial-cluster "$FL_ID=http://127.0.0.1:$FL_ETCD_PEER_PORT" \
		--initial-cluster-token "$FL_ID" \
		--initial-advertise-peer-urls "http://127.0.0.1:$FL_ETCD_PEER_PORT" \
		>"$FL_WORK/restore-single.log" 2>&1 || {
		fl_log "snapshot restore failed: $(tail -n 2 "$FL_WORK/restore-single.log")"
		rm -rf -- "$d.restore"
		return 1
	}
	rm -rf -- "$d" && mv -- "$d.restore" "$d"
}

# fleet_etcdctl ARGS...: etcdctl (v3) in the etcd namespace, 127.0.0.1
# or FL_CLI_ENDPOINTS (FL_CLI_ENDPOINTS=URL fleet_etcdctl ... for one
# member); a later --command-timeout wins.
fleet_etcdctl()
{
	timeout 15 ip netns exec "$FL_NS_ETCD" env ETCDCTL_API=3 \
		"$ETCDCTL_BIN" --endpoints "${FL_CLI_ENDPOINTS:-$FL_ETCD_LOCAL}" \
		--dial-timeout 3s --command-timeout 5s "$@"
}

# fleet_kv get KEY: the value, base64, on stdout ("" and status 1 if none);
# fleet_kv put KEY BASE64: store those bytes; fleet_kv rev KEY: the key's
# mod_revision (0 if absent). Through etcd's JSON gateway (binary-safe).
fleet_kv()
{
	local ep=${FL_CLI_ENDPOINTS:-$FL_ETCD_LOCAL}
	timeout 15 ip netns exec "$FL_NS_ETCD" "$PY" - "${ep%%,*}" "$@" <<'PYEOF'
import base64, json, sys, urllib.request
url, op, key = sys.argv[1], sys.argv[2], sys.argv[3]
b64 = lambda b: base64.b64encode(b).decode()
def call(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        return json.load(r)
if op == "put":
    call("/v3/kv/put", {"key": b64(key.encode()), "value": sys.argv[4]})
    sys.exit(0)
res = call("/v3/kv/range", {"key": b64(key.encode())})
kvs = res.get("kvs") or []
if op == "get":
    if not kvs:
        sys.exit(1)
    print(kvs[0].get("value", ""))
elif op == "rev":
    print(kvs[0].get("mod_revision", 0) if kvs else 0)
PYEOF
}

# ---- the controller's heartbeat ----

fleet_heartbeat_alive() { [ -n "$FL_HB_WRAP" ] && kill -0 "$FL_HB_WRAP" 2>/dev/null; }

# fleet_heartbeat_start [EVERY]: `portcullis fleet heartbeat` in the etcd
# namespace (the run's key), to the single etcd and the cluster members'
# local endpoints, tried in turn, so it survives any of them going away;
# waits for its first line. Call after fleet_keygen.
# shellcheck disable=SC2120 # EVERY is optional
fleet_heartbeat_start()
{
	local log
	fleet_heartbeat_alive && return 0
	FL_HB_STARTS=$((FL_HB_STARTS + 1))
	log=$FL_WORK/heartbeat-$FL_HB_STARTS.log
	timeout -s TERM "$FL_ETCD_LIFETIME" ip netns exec "$FL_NS_ETCD" \
		env PORTCULLIS_ETCD="$FL_ETCD_LOCAL,$(fleet_cluster_locals 1 2 3)" \
		PORTCULLIS_FLEET_PREFIX="$FL_KEY_PREFIX" \
		"$PCCLI" fleet --key "$FL_KEY" --timeout 1000 heartbeat \
		--every "${1:-$FL_HB_EVERY}" >"$log" 2>&1 &
	FL_HB_WRAP=$!
	local i
	for ((i = 0; i < 100; i++)); do
		grep -q '^signing a heartbeat' "$log" 2>/dev/null && return 0
		fleet_heartbeat_alive || break
		sleep 0.1
	done
	fl_log "heartbeat publisher did not start: $(tail -n 2 "$log")"
	return 1
}

# fleet_heartbeat_stop: TERM the publisher (timeout(1) passes it on), reap.
fleet_heartbeat_stop()
{
	[ -n "$FL_HB_WRAP" ] || return 0
	kill -s TERM "$FL_HB_WRAP" 2>/dev/null
	wait "$FL_HB_WRAP" 2>/dev/null
	FL_HB_WRAP=
}

# ---- keys and agent configs ----

# fleet_keygen: the controller key pair of this run (FL_KEY, FL_PUB).
fleet_keygen()
{
	FL_KEY=$FL_WORK/controller.key
	FL_PUB=$FL_WORK/controller.key.pub
	"$PCCLI" keygen --out "$FL_KEY" >"$FL_WORK/keygen.out" 2>&1 || {
		cat "$FL_WORK/keygen.out" >&2
		return 1
	}
	[ -s "$FL_PUB" ] || { fl_log "keygen wrote no $FL_PUB"; return 1; }
}

# fleet_agent_config I GROUPS [SED...]: node I's agent config, from the
# template, in WORK/nI/agent.yaml: host id node-I, groups GROUPS
# (space-separated, may be empty), the lab's endpoint, prefix, key and
# policy; extra sed expressions go after.
fleet_agent_config()
{
	local i=$1 groups=$2 g list="" cfg
	shift 2
	for g in $groups; do
		list=${list:+$list, }$g
	done
	cfg=$(fl_dir "$i")/agent.yaml
	mkdir -p "$(fl_dir "$i")"
	local exprs=(
		-e "s|^host_id:.*|host_id: $(fl_host "$i")|"
		-e "s|^policy:.*|policy: $FL_WORK/policy.yaml|"
		-e "s|^\( *endpoints:\).*|\1 [$FL_ETCD_URL]|"
		-e "s|^\( *prefix:\).*|\1 $FL_KEY_PREFIX|"
		-e "s|^\( *groups:\).*|\1 [$list]|"
		-e "s|^\( *key_files:\).*|\1 [$FL_PUB]|"
	)
	for g in "$@"; do
		exprs+=(-e "$g")
	done
	sed "${exprs[@]}" "$FL_CONFIG_SRC" >"$cfg"
}

# ---- agents ----

# _fl_agent_env I: the per-node environment (also the CLI's, for status).
_fl_agent_env()
{
	local d
	d=$(fl_dir "$1")
	echo "PORTCULLIS_PIN_DIR=$(fl_pin "$1")" "PORTCULLIS_STATE_DIR=$d/state" \
		"PORTCULLIS_AUDIT_LOG=$d/audit.jsonl" \
		"PORTCULLIS_CONTROL_SOCKET=$d/control.sock" "PORTCULLIS_METRICS=off"
}

# fleet_agent_start I [ARGS...]: portcullisd for node I in the background
# (its own pin dir, state, audit log, socket, no metrics); does not wait.
fleet_agent_start()
{
	local i=$1 ns d n log envw
	shift
	# The env words before the fork: a command substitution in the
	# background job would be a child of the wrapper for a moment.
	read -r -a envw <<<"$(_fl_agent_env "$i")"
	ns=$(fl_ns "$i")
	d=$(fl_dir "$i")
	n=$((${FL_AGENT_STARTS[$i]:-0} + 1))
	FL_AGENT_STARTS[i]=$n
	log=$d/daemon-$n.log
	env "${envw[@]}" timeout -s TERM "$FL_AGENT_LIFETIME" \
		nsenter --net="/run/netns/$ns" -- \
		"$PCD" --config "$d/agent.yaml" --pin-dir "$(fl_pin "$i")" \
		--state-dir "$d/state" --audit-log "$d/audit.jsonl" \
		--control-socket "$d/control.sock" --metrics off \
		--xdp-mode "$FL_XDP_MODE" -v "$@" >"$log" 2>&1 &
	FL_AGENT_WRAP[i]=$!
	FL_AGENT_PID[i]=$(_fl_child_of "${FL_AGENT_WRAP[$i]}" "$(basename "$PCD")")
	[ -n "${FL_AGENT_PID[$i]}" ] || { fl_log "agent $i did not start"; return 1; }
}

fleet_agent_log() { echo "$(fl_dir "$1")/daemon-${FL_AGENT_STARTS[$1]:-0}.log"; }

fleet_agent_alive()
{
	local pid=${FL_AGENT_PID[$1]:-}
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# fleet_agent_wait_ready I SECONDS: its log says ready.
fleet_agent_wait_ready()
{
	local i=$1 tenths=$(($2 * 10)) t log
	log=$(fleet_agent_log "$i")
	for ((t = 0; t < tenths; t++)); do
		grep -q 'portcullisd: ready' "$log" 2>/dev/null && return 0
		fleet_agent_alive "$i" || break
		sleep 0.1
	done
	grep -q 'portcullisd: ready' "$log" 2>/dev/null && return 0
	fl_log "agent $i not ready; the end of its log:"
	tail -n 15 "$log" | sed 's/^/    /' >&2
	return 1
}

# fleet_agent_stop I [SIGNAL]: signal agent I by PID (TERM), wait 5 s,
# then KILL; reap it. Enforcement stays (pins).
fleet_agent_stop()
{
	local i=$1 pid
	pid=${FL_AGENT_PID[$i]:-}
	[ -n "$pid" ] || return 0
	_fl_stop "$pid" "${FL_AGENT_WRAP[$i]:-}" "${2:-TERM}"
	FL_AGENT_PID[i]=
	FL_AGENT_WRAP[i]=
}

# fleet_pc I ARGS...: the local CLI for node I (its pins, socket, state).
fleet_pc()
{
	local i=$1
	shift
	# shellcheck disable=SC2046 # the env words split on purpose
	env $(_fl_agent_env "$i") timeout 20 \
		nsenter --net="/run/netns/$(fl_ns "$i")" -- "$PCCLI" "$@"
}

# fleet_mode I: the mode in node I's pinned map (portcullis status).
fleet_mode()
{
	fleet_pc "$1" status 2>/dev/null | awk '$1 == "mode:" { print $2; exit }'
}

# fleet_wait_mode I MODE SECONDS: poll until node I is in MODE.
fleet_wait_mode()
{
	local i=$1 want=$2 deadline
	deadline=$(($(now_ms) + $3 * 1000))
	while [ "$(now_ms)" -lt "$deadline" ]; do
		[ "$(fleet_mode "$i")" = "$want" ] && return 0
		sleep 0.1
	done
	[ "$(fleet_mode "$i")" = "$want" ]
}

# ---- the fleet CLI (in the etcd namespace: it needs no pins) ----

# fleet_cli ARGS...: portcullis fleet with the run's key (FL_CLI_KEY if
# set), endpoint and prefix.
fleet_cli()
{
	timeout 30 ip netns exec "$FL_NS_ETCD" \
		env PORTCULLIS_ETCD="${FL_CLI_ENDPOINTS:-$FL_ETCD_LOCAL}" \
		PORTCULLIS_FLEET_PREFIX="$FL_KEY_PREFIX" \
		"$PCCLI" fleet --key "${FL_CLI_KEY:-$FL_KEY}" "$@"
}

# fleet_partition I down|up: cut node I off from etcd (its router-side
# veth end, in etcd's namespace, down: the node's end loses carrier) or
# heal it (and make sure the node's route to etcd is there).
fleet_partition()
{
	local i=$1
	ip -n "$FL_NS_ETCD" link set "$(fl_router_if "$i")" "$2" || return 1
	if [ "$2" = up ]; then
		ip -n "$(fl_ns "$i")" route replace "$FL_ETCD_IP/32" via "$(fl_router_ip "$i")"
	fi
}

# fleet_status_json FILE: `fleet status --json` into FILE.
fleet_status_json()
{
	fleet_cli status --json >"$1" 2>"$1.err"
}

# fleet_status_get FILE HOST FIELD: one field of one host ("" if none;
# booleans as true/false, null as null).
fleet_status_get()
{
	"$PY" - "$@" <<'PYEOF'
import json, sys
path, host, field = sys.argv[1:4]
try:
    rows = json.load(open(path))
except (OSError, ValueError):
    sys.exit(1)
for r in rows if isinstance(rows, list) else []:
    if r.get("host") == host:
        v = r.get(field)
        print(json.dumps(v) if isinstance(v, (bool, list, dict)) or v is None else v)
        break
PYEOF
}

# fleet_wait_alive SECONDS I...: `fleet status` lists each node I alive.
fleet_wait_alive()
{
	local deadline f=$FL_WORK/alive.json
	deadline=$(($(now_ms) + $1 * 1000))
	shift
	while :; do
		if fleet_status_json "$f" && "$PY" - "$f" "$@" <<'PYEOF'
import json, sys
rows = json.load(open(sys.argv[1]))
alive = {r.get("host") for r in rows if r.get("alive") is True}
sys.exit(0 if all("node-%s" % i in alive for i in sys.argv[2:]) else 1)
PYEOF
		then
			return 0
		fi
		[ "$(now_ms)" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}

# ---- audit logs ----

# fleet_audit_count FILE EVENT [KEY=VALUE...]: lines of EVENT with those fields.
fleet_audit_count() { "$PY" "$FL_ROOT/tests/audit_grep.py" count "$@"; }

# fleet_audit_last FILE EVENT [KEY=VALUE...]: the last such line.
fleet_audit_last() { "$PY" "$FL_ROOT/tests/audit_grep.py" last "$@"; }

# fleet_audit_ts_ms FILE SINCE_MS EVENT [KEY=VALUE...]: the Unix ms of the
# first such line stamped at or after SINCE_MS - 1000 (the "ts" field has
# ms; the second of slack covers a clock read just before it); "" if none.
fleet_audit_ts_ms()
{
	"$PY" - "$@" <<'PYEOF'
import datetime, json, sys
path, since, event, conds = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
want = dict(c.split("=", 1) for c in conds)
def ms(ts):
    d = datetime.datetime.strptime(ts.rstrip("Z"), "%Y-%m-%dT%H:%M:%S.%f")
    return int(d.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000 + 0.5)
try:
    with open(path) as f:
        for line in f:
            try:
                e = json.loads(line)
                t = ms(e["ts"])
            except (ValueError, KeyError, TypeError):
                continue
            if t >= since - 1000 and e.get("event") == event and all(
                    str(e.get(k)) == v for k, v in want.items()):
                print(t)
                break
except OSError:
    pass
PYEOF
}

# ---- probes (plain traffic: ip netns exec is fine) ----

# fleet_ping I: one echo from the etcd namespace to node I, one second.
fleet_ping()
{
	ip netns exec "$FL_NS_ETCD" timeout 5 ping -n -q -c 1 -W 1 "$(fl_node_ip "$1")"
}

# fleet_ping_fast I: fails in 0.3 s, for timing loops.
fleet_ping_fast()
{
	ip netns exec "$FL_NS_ETCD" timeout 3 ping -n -q -c 1 -W 0.3 "$(fl_node_ip "$1")"
}

# ---- teardown ----

# fleet_lab_down: everything this lab made, by PID and exact name; safe to
# call twice and after a partial setup. FLEET_KEEP_WORK=1 keeps the work dir.
fleet_lab_down()
{
	local i pid pin ns
	[ -n "$FL_DOWN_DONE" ] && return 0
	FL_DOWN_DONE=1
	[ -n "$FL_ID" ] || return 0
	# Agents first (TERM in parallel, then reap each).
	for i in "${FL_NODES[@]}"; do
		pid=${FL_AGENT_PID[$i]:-}
		[ -n "$pid" ] && kill -s TERM "$pid" 2>/dev/null
	done
	for i in "${FL_NODES[@]}"; do
		fleet_agent_stop "$i" TERM
	done
	for pid in "${FL_BG[@]}"; do
		kill -s TERM "$pid" 2>/dev/null
	done
	for pid in "${FL_BG[@]}"; do
		wait "$pid" 2>/dev/null
	done
	fleet_heartbeat_stop
	fleet_etcd_stop TERM
	fleet_cluster_down
	# Each node's pins: detach in its namespace, then the exact dir.
	for i in "${FL_NODES[@]}"; do
		pin=$(fl_pin "$i")
		ns=$(fl_ns "$i")
		if [ -d "$pin" ] && [ -e "/run/netns/$ns" ]; then
			fleet_pc "$i" detach --force >/dev/null 2>&1
		fi
		[ -d "$pin" ] && rm -rf -- "$pin"
	done
	for i in "${FL_NODES[@]}"; do
		ns=$(fl_ns "$i")
		if [ -e "/run/netns/$ns" ]; then
			ip netns del "$ns" || fl_log "cannot delete netns $ns"
		fi
	done
	if [ -n "$FL_NS_ETCD" ] && [ -e "/run/netns/$FL_NS_ETCD" ]; then
		ip netns del "$FL_NS_ETCD" || fl_log "cannot delete netns $FL_NS_ETCD"
	fi
	if [ -n "$FL_WORK" ] && [ -d "$FL_WORK" ]; then
		if [ "${FLEET_KEEP_WORK:-0}" = 1 ]; then
			fl_log "work dir kept: $FL_WORK"
		else
			rm -rf -- "$FL_WORK"
		fi
	fi
	return 0
}

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 7: in fleet mode, liveness is authenticated.
#
# The node runs a fleet-mode agent (no UDP controller) whose etcd is
# 192.0.2.10:2379 in the mgmt namespace, heartbeat timeout 2 s:
#   1. a fake gateway there (tests/e2e/failsecure/fleetauth.py gateway)
#      grants leases and answers every keep-alive, has no data and no
#      key: the node must lock down and stay locked down;
#   2. a real etcd there with `portcullis fleet heartbeat` signing into
#      it: the node lifts to normal and stays there;
#   3. the heartbeat publisher stopped (etcd still answers): lockdown;
#   4. the agent restarted against a fake gateway that serves the last
#      recorded heartbeat: refused as stale, lockdown kept;
#   5. TLS, the CA pinned (fleet.tls): a fake gateway with another CA's
#      certificate is not even spoken to, lockdown kept; a real etcd with
#      client-certificate auth and the publisher over TLS: normal.
# Denied traffic is a counted burst of UDP to node port 5002 (allowed in
# normal only by this scenario's policy). At the end the suite's usual
# agent (tests/configs/lab-agent.yaml) runs again, normal.

FA_PY=$(dirname "${BASH_SOURCE[0]}")/fleetauth.py
FA_PORT=2379
FA_URL=http://$LAB_MGMT4:$FA_PORT
FA_PREFIX=/portcullis
FA_SKEW_MS=1000		# fleet.max_skew, its default
FA_MARGIN_MS=2500	# on top of the bound (2 shared CPUs)
FA_BURST=50
FA_GW_PID=
FA_ETCD_PID=
FA_PUB_PID=
FA_RUNS=0

# fa_files: the scenario's agent config and policy in WORK.
fa_files()
{
	{
		cat "$AGENT_POLICY_SRC"
		echo "  - {name: fa-udp, action: allow, direction: ingress, proto: udp, ports: 5002, modes: [normal]}"
	} | sed "/^management:/a\\
  - {name: etcd, cidr: $LAB_MGMT4/32, proto: tcp, ports: $FA_PORT, direction: egress}" \
		>"$WORK/fa-policy.yaml"
	cat >"$WORK/fa-agent.yaml" <<EOF
host_id: $AGENT_HOST_ID
policy: fa-policy.yaml
fleet:
  endpoints: [$FA_URL]
  prefix: $FA_PREFIX
  key_files: [controller.pub]
  report_interval: 2s
  request_timeout: 1s
heartbeat:
  timeout: $((HB_TIMEOUT_MS / 1000))s
  action: lockdown
  kernel_deadman: true
  release_after: 3
  backoff: 0s
EOF
}

# fa_bg NAME CMD...: a bounded background command in the mgmt namespace;
# its wrapper's PID in BG_LAST, its log in WORK/fa-NAME-RUN.log (FA_LOG).
fa_bg()
{
	local name=$1
	shift
	FA_RUNS=$((FA_RUNS + 1))
	FA_LOG=$WORK/fa-$name-$FA_RUNS.log
	bg_start "$FA_LOG" 600 ip netns exec "$LAB_MGMT" "$@"
}

# fa_kill PID: TERM a wrapper we started (timeout(1) passes it on), reap.
fa_kill()
{
	[ -n "$1" ] || return 0
	kill -s TERM "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 0
}

# fa_gateway_start [OPTION...]: the fake etcd on the etcd address (in
# place of whatever of ours ran there), fleetauth.py gateway OPTIONs.
fa_gateway_start()
{
	fa_stop_servers
	fa_bg gateway "$PY" "$FA_PY" gateway "$LAB_MGMT4" "$FA_PORT" --timeout 300 "$@"
	FA_GW_PID=$BG_LAST
	FA_GW_LOG=$FA_LOG
	wait_for_line "$FA_GW_LOG" '^listening' 10 "$FA_GW_PID"
}

# With FA_TLS=1, etcd, etcdctl and the publisher speak TLS (fa_certs).
FA_TLS=0
fa_url() { if [ "$FA_TLS" = 1 ]; then echo "https://$LAB_MGMT4:$FA_PORT"; else echo "$FA_URL"; fi; }

fa_etcdctl()
{
	local tls=()
	[ "$FA_TLS" = 1 ] && tls=(--cacert "$FA_T/ca.pem" --cert "$FA_T/client.pem" --key "$FA_T/client.key")
	timeout 15 ip netns exec "$LAB_MGMT" env ETCDCTL_API=3 etcdctl \
		--endpoints "$(fa_url)" "${tls[@]}" --dial-timeout 2s --command-timeout 3s "$@"
}

# fa_stop_servers: whatever of ours answers on the etcd address.
fa_stop_servers()
{
	fa_kill "$FA_PUB_PID"
	fa_kill "$FA_GW_PID"
	fa_kill "$FA_ETCD_PID"
	FA_PUB_PID=
	FA_GW_PID=
	FA_ETCD_PID=
}

# fa_etcd_start: a real etcd on the etcd address; waits until healthy.
# FA_TLS=1: https only, client certificates from our CA required.
fa_etcd_start()
{
	local tls=()
	[ "$FA_TLS" = 1 ] && tls=(--cert-file "$FA_T/server.pem" --key-file "$FA_T/server.key"
		--client-cert-auth --trusted-ca-file "$FA_T/ca.pem")
	fa_stop_servers
	rm -rf -- "$WORK/fa-etcd.data"
	fa_bg etcd etcd --name fa --data-dir "$WORK/fa-etcd.data" "${tls[@]}" \
		--listen-client-urls "$(fa_url)" --advertise-client-urls "$(fa_url)" \
		--listen-peer-urls http://127.0.0.1:2380 \
		--initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster fa=http://127.0.0.1:2380 \
		--initial-cluster-state new --logger zap --log-level warn
	FA_ETCD_PID=$BG_LAST
	wait_until 15 fa_etcdctl endpoint health >/dev/null 2>&1
}

# fa_publisher_start: signed heartbeats into etcd every 500 ms.
fa_publisher_start()
{
	local tls=()
	[ "$FA_TLS" = 1 ] && tls=(--cacert "$FA_T/ca.pem" --cert "$FA_T/client.pem"
		--cert-key "$FA_T/client.key")
	fa_bg publisher "$PCCLI" fleet --endpoints "$(fa_url)" --prefix "$FA_PREFIX" \
		--key "$CTL_KEY" "${tls[@]}" heartbeat --every 500ms
	FA_PUB_PID=$BG_LAST
	wait_for_line "$FA_LOG" '^signing a heartbeat' 10 "$FA_PUB_PID"
}

# fa_burst: FA_BURST datagrams peer -> node udp/5002; echoes how many
# the node's receiver got (-1 if it never listened).
fa_burst()
{
	local log pid
	FA_RUNS=$((FA_RUNS + 1))
	log=$WORK/fa-count-$FA_RUNS.log
	bg_start "$log" 60 ip netns exec "$LAB_NODE" "$PY" "$FA_PY" udp-count 5002 --timeout 30
	pid=$BG_LAST
	if ! wait_for_line "$log" '^listening' 10 "$pid"; then
		fa_kill "$pid"
		echo -1
		return
	fi
	ip netns exec "$LAB_PEER" timeout 20 "$PY" "$FA_PY" udp-burst \
		"$LAB_NODE_PEER4" 5002 "$FA_BURST"
	sleep 0.5	# the last ones in flight
	fa_kill "$pid"
	sed -n 's/^received \([0-9]*\)$/\1/p' "$log" | tail -n 1
}

# fa_hold_mode MODE SECONDS WHY: status reports MODE throughout.
fa_hold_mode()
{
	local want=$1 end=$(($(now_ms) + $2 * 1000)) got
	while [ "$(now_ms)" -lt "$end" ]; do
		got=$(mode_now)
		if [ "$got" != "$want" ]; then
			fail "mode '$got' within $2 s, expected $want throughout ($3)"
			return 1
		fi
		sleep 0.2
	done
	pass "mode $want throughout $2 s ($3)"
}

# fa_wait_mode_by MODE BOUND_MS SINCE_MS WHY: MODE within BOUND_MS of SINCE_MS.
fa_wait_mode_by()
{
	local want=$1 bound=$2 since=$3 t
	while :; do
		if [ "$(mode_now)" = "$want" ]; then
			t=$(($(now_ms) - since))
			pass_if "mode $want $t ms after $4 (bound $bound ms)" \
				"mode $want only $t ms after $4 (bound $bound ms)" [ "$t" -le "$bound" ]
			return 0
		fi
		if [ $(($(now_ms) - since)) -gt $((bound + 5000)) ]; then
			fail "mode '$(mode_now)' $((bound + 5000)) ms after $4, expected $want (bound $bound ms)"
			return 1
		fi
		sleep 0.1
	done
}

fa_status_line() { pc status 2>/dev/null | grep -E "^$1:" | head -n 1; }

# fa_status_unfresh: status says the heartbeat is lost and none was taken.
fa_status_unfresh()
{
	fa_status_line heartbeat | grep -q LOST &&
		fa_status_line 'fleet hb' | grep -q 'no signed heartbeat'
}

fa_recording_old() { [ $(($(now_ms) - FA_RECORDED_MS)) -gt $((HB_TIMEOUT_MS + FA_SKEW_MS)) ]; }

# fa_agent CONFIG: the agent restarted from CONFIG, with a state dir of
# its own: what earlier scenarios saved (a pushed policy without the etcd
# management entry, say) must not decide this one's policy.
fa_agent()
{
	daemon_stop TERM
	[ -n "${FA_SUITE_STATE_DIR:-}" ] || FA_SUITE_STATE_DIR=$STATE_DIR
	STATE_DIR=$WORK/fa-state
	mkdir -p -m 0700 "$STATE_DIR"
	agent_start "$1"
}

# fa_restore: the suite's usual agent, normal, heartbeats flowing.
fa_restore()
{
	fa_stop_servers
	daemon_stop TERM
	STATE_DIR=${FA_SUITE_STATE_DIR:-$STATE_DIR}
	agent_start "$WORK/agent.yaml"
	# Its UDP heartbeats lift the heartbeat lockdown (release_after 3); a
	# break-glass release before the first one would be undone by it (the
	# dead-man switch's stale stamp is recorded then).
	wait_mode normal 15
	ensure_normal
}

fa_fake_gateway()
{
	local t0 n ka line tr
	note "1. a fake etcd gateway on $FA_URL: leases, keep-alives with TTL > 0, no data, no key"
	fa_gateway_start || { fail "fake gateway did not start: $(tail -n 2 "$FA_GW_LOG")"; return 1; }
	n=$(audit_count heartbeat_lost)
	tr=$(audit_count transition to=lockdown)
	fa_agent "$WORK/fa-agent.yaml" || return 1
	t0=$(now_ms)
	fa_wait_mode_by lockdown $((HB_TIMEOUT_MS + FA_MARGIN_MS)) "$t0" "the fleet agent was ready, fake gateway only"
	fa_hold_mode lockdown 4 "the fake gateway keeps answering keep-alives"
	ka=$(grep -c '^/v3/lease/keepalive' "$FA_GW_LOG")
	pass_if "the fake gateway answered $ka keep-alive(s) meanwhile (the attack was live)" \
		"the fake gateway saw no keep-alive: the agent never tried it" [ "$ka" -gt 0 ]
	pass_if "audit: heartbeat_lost: $(audit_last heartbeat_lost)" \
		"audit: no new heartbeat_lost line" [ "$(audit_count heartbeat_lost)" -gt "$n" ]
	audit_more_than "$tr" "the lockdown recorded" transition to=lockdown
	expect_none_delivered "peer -> node udp/5002, $FA_BURST datagrams (fake gateway, lockdown)" "$(fa_burst)"
	blocked "peer ping (fake gateway, lockdown)" ping4
	allowed "mgmt -> node tcp/22 (management)" ssh4
	line=$(fa_status_line heartbeat)
	note "status: $line"
	note "status: $(fa_status_line 'fleet hb')"
	pass_if "status: heartbeat LOST, no signed heartbeat taken" \
		"status shows a heartbeat: '$line' / '$(fa_status_line 'fleet hb')'" \
		fa_status_unfresh
	fa_kill "$FA_GW_PID"
	FA_GW_PID=
}

fa_real_etcd()
{
	local t0 got line n
	note "2. a real etcd on $FA_URL, signed heartbeats from 'portcullis fleet heartbeat --every 500ms'"
	fa_etcd_start || { fail "etcd not healthy: $(tail -n 3 "$FA_LOG")"; return 1; }
	pass "etcd healthy on $FA_URL (mgmt namespace)"
	t0=$(now_ms)
	fa_publisher_start || { fail "publisher did not start: $(tail -n 2 "$FA_LOG")"; return 1; }
	if wait_mode normal 15; then
		pass "normal $(($(now_ms) - t0)) ms after the publisher started (release_after 3)"
	else
		fail "mode '$(mode_now)' 15 s after the publisher started"
		tail -n 5 "$DAEMON_LOG" | sed 's/^/      | /'
		return 1
	fi
	fa_hold_mode normal 4 "signed heartbeats flowing"
	got=$(fa_burst)
	pass_if "peer -> node udp/5002: $got of $FA_BURST delivered in normal (the probe works)" \
		"peer -> node udp/5002: $got of $FA_BURST delivered in normal" [ "$got" -gt 0 ]
	line=$(fa_status_line 'fleet hb')
	pass_if "status: $line" "status: no signed heartbeat taken: '$line'" \
		grep -q 'signed seq' <<<"$line"
	note "status: $(fa_status_line heartbeat)"
	note "status: $(fa_status_line fleet)"

	note "3. the publisher stopped; etcd still answers every keep-alive"
	n=$(audit_count heartbeat_lost)
	# The last heartbeat signed, recorded for the replay in 4.
	ip netns exec "$LAB_MGMT" "$PY" "$FA_PY" etcd-get "$FA_URL" "$FA_PREFIX/heartbeat" \
		>"$WORK/fa-recorded.b64"
	fa_kill "$FA_PUB_PID"
	FA_PUB_PID=
	t0=$(now_ms)
	FA_RECORDED_MS=$t0
	fa_wait_mode_by lockdown $((HB_TIMEOUT_MS + FA_SKEW_MS + FA_MARGIN_MS)) "$t0" "the publisher stopped"
	pass_if "audit: heartbeat_lost: $(audit_last heartbeat_lost)" \
		"audit: no new heartbeat_lost line" [ "$(audit_count heartbeat_lost)" -gt "$n" ]
	expect_none_delivered "peer -> node udp/5002, $FA_BURST datagrams (publisher stopped, lockdown)" "$(fa_burst)"
	fa_hold_mode lockdown 2 "etcd up, no new signed heartbeat"
	fa_kill "$FA_ETCD_PID"
	FA_ETCD_PID=
}

fa_replay()
{
	local n
	note "4. the last signed heartbeat replayed by a fake gateway to a restarted agent"
	[ -s "$WORK/fa-recorded.b64" ] || { fail "no heartbeat recorded from etcd"; return 1; }
	# It must be past timeout + skew old: a recording, not a relay.
	wait_until 10 fa_recording_old
	fa_gateway_start --heartbeat-b64 "$WORK/fa-recorded.b64" --prefix "$FA_PREFIX" ||
		{ fail "fake gateway did not start"; return 1; }
	n=$(audit_count fleet_heartbeat_refused reason=stale)
	fa_agent "$WORK/fa-agent.yaml" || return 1
	if wait_audit "$n" 10 fleet_heartbeat_refused reason=stale; then
		pass "audit: the recorded heartbeat refused: $(audit_last fleet_heartbeat_refused)"
	else
		fail "audit: no fleet_heartbeat_refused reason=stale line (last: $(audit_last fleet_heartbeat_refused))"
	fi
	fa_hold_mode lockdown 3 "a replayed signed heartbeat is no heartbeat"
	expect_none_delivered "peer -> node udp/5002, $FA_BURST datagrams (replayed heartbeat, lockdown)" "$(fa_burst)"
}

# fa_certs: in FA_T, a CA, etcd's certificate (IP $LAB_MGMT4) and a
# client certificate signed by it, and a rogue CA's certificate for the
# same address; the TLS agent config next to them.
FA_T=
fa_certs()
{
	local n
	FA_T=$WORK/fa-tls
	mkdir -p "$FA_T" || return 1
	for n in ca rogue-ca; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
			-keyout "$FA_T/$n.key" -out "$FA_T/$n.pem" -days 1 -subj "/CN=fa-$n" \
			>>"$FA_T/openssl.log" 2>&1 || return 1
	done
	# etcd's own gateway dials etcd with the server certificate: clientAuth too.
	fa_cert server ca "subjectAltName=IP:$LAB_MGMT4
extendedKeyUsage=serverAuth,clientAuth" &&
	fa_cert rogue rogue-ca "subjectAltName=IP:$LAB_MGMT4
extendedKeyUsage=serverAuth" &&
	fa_cert client ca "extendedKeyUsage=clientAuth" || return 1
	sed -e "s|^\(  endpoints:\).*|\1 [https://$LAB_MGMT4:$FA_PORT]|" \
		-e "/^  request_timeout:/a\\
  tls: {ca: fa-tls/ca.pem, cert: fa-tls/client.pem, key: fa-tls/client.key}" \
		"$WORK/fa-agent.yaml" >"$WORK/fa-agent-tls.yaml"
}

# fa_cert NAME CA EXTENSIONS: NAME.pem/.key signed by CA.
fa_cert()
{
	printf '%s\n' "$3" >"$FA_T/$1.ext"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-keyout "$FA_T/$1.key" -out "$FA_T/$1.csr" -subj "/CN=fa-$1" \
		>>"$FA_T/openssl.log" 2>&1 &&
	openssl x509 -req -in "$FA_T/$1.csr" -CA "$FA_T/$2.pem" -CAkey "$FA_T/$2.key" \
		-CAcreateserial -out "$FA_T/$1.pem" -days 1 -extfile "$FA_T/$1.ext" \
		>>"$FA_T/openssl.log" 2>&1
}

fa_tls()
{
	local ka got
	note "5. TLS to etcd, the CA pinned (fleet.tls {ca, cert, key})"
	fa_certs || { fail "openssl: cannot make the test certificates: $(tail -n 2 "$FA_T/openssl.log")"; return 1; }
	check "the TLS agent config is valid" "$PCD" --check-config "$WORK/fa-agent-tls.yaml"
	fa_gateway_start --tls-cert "$FA_T/rogue.pem" --tls-key "$FA_T/rogue.key" ||
		{ fail "TLS fake gateway did not start: $(tail -n 2 "$FA_GW_LOG")"; return 1; }
	note "a fake gateway on https://$LAB_MGMT4:$FA_PORT with a certificate from another CA"
	fa_agent "$WORK/fa-agent-tls.yaml" || return 1
	fa_hold_mode lockdown 3 "TLS agent, fake gateway with a rogue certificate"
	ka=$(grep -c '^/v3/' "$FA_GW_LOG")
	pass_if "the fake gateway got no request through the TLS handshake ($ka)" \
		"the fake gateway got $ka requests past TLS with a rogue certificate" [ "$ka" -eq 0 ]
	note "agent: $(grep -m1 -o 'etcd watch broken: .*' "$DAEMON_LOG" | cut -c1-140)"
	expect_none_delivered "peer -> node udp/5002, $FA_BURST datagrams (rogue TLS gateway, lockdown)" "$(fa_burst)"
	FA_TLS=1
	fa_etcd_start || { fail "TLS etcd not healthy: $(tail -n 3 "$FA_LOG")"; FA_TLS=0; return 1; }
	pass "etcd on https://$LAB_MGMT4:$FA_PORT, client certificates required"
	fa_publisher_start || { fail "TLS publisher did not start: $(tail -n 2 "$FA_LOG")"; FA_TLS=0; return 1; }
	if wait_mode normal 15; then
		pass "normal: the TLS agent takes the signed heartbeats over TLS"
	else
		fail "mode '$(mode_now)' 15 s after the TLS publisher started"
		grep -E 'fleet|etcd|heartbeat' "$DAEMON_LOG" | tail -n 5 | sed 's/^/      | /'
		tail -n 3 "$FA_LOG" | sed 's/^/      | publisher: /'
	fi
	fa_hold_mode normal 3 "signed heartbeats over TLS"
	got=$(fa_burst)
	pass_if "peer -> node udp/5002: $got of $FA_BURST delivered in normal" \
		"peer -> node udp/5002: $got of $FA_BURST delivered in normal" [ "$got" -gt 0 ]
	FA_TLS=0
}

test_fleetauth()
{
	if ! command -v etcd >/dev/null || ! command -v etcdctl >/dev/null; then
		fail "etcd/etcdctl not installed (Debian etcd-server, etcd-client)"
		return 1
	fi
	ensure_normal || return 1
	fa_files
	fa_fake_gateway
	fa_real_etcd
	fa_replay
	fa_tls
	fa_restore
	expect_mode normal "the suite's agent back, UDP heartbeats flowing"
	# FA_KEEP=DIR: a copy of the run's logs, for a look afterwards.
	[ -n "${FA_KEEP:-}" ] && cp -r "$WORK" "$FA_KEEP"
	return 0
}

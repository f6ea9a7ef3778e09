#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Fleet walk-through (make demo, after tests/demo.sh; root; after make):
# etcd in its own namespace and three nodes (tests/fleet-lab.sh), each with
# an agent following its desired state. Narrates fleet status, quarantine
# of one host, a group lockdown, an unsigned value refused, a conflict
# between two operators, and etcd lost. The controller's signed heartbeat
# (portcullis fleet heartbeat) runs throughout: without it every node
# would lock down. Exits non-zero if any step does not
# behave as described.

set -u
# shellcheck source=SCRIPTDIR/fleet-lab.sh
. "$(dirname "${BASH_SOURCE[0]}")/fleet-lab.sh"

SURPRISES=0
STEP=0

step()
{
	STEP=$((STEP + 1))
	printf '\n=== F%d. %s\n' "$STEP" "$*"
}

note() { printf '    %s\n' "$*"; }

surprise()
{
	SURPRISES=$((SURPRISES + 1))
	printf '    !!! unexpected: %s\n' "$*"
}

# fleet ARGS...: the operator's command, with its output and exit status.
fleet()
{
	printf '  ops$ portcullis fleet %s\n' "$*"
	fleet_cli "$@" >"$FL_WORK/out" 2>&1
	FLEET_RC=$?
	sed -e 's/^/    /' "$FL_WORK/out"
	return "$FLEET_RC"
}

# expect_mode I MODE WHY: node I reaches MODE within 5 s.
expect_mode()
{
	if fleet_wait_mode "$1" "$2" 5; then
		note "-> $(fl_host "$1") is $2 ($3)"
	else
		surprise "$(fl_host "$1") is $(fleet_mode "$1"), not $2 ($3)"
	fi
}

# ping_expect I pass|block WHY: one ping from the etcd namespace.
ping_expect()
{
	local got=block
	printf '  etcd-ns$ ping -c 1 -W 1 %s   (%s)\n' "$(fl_node_ip "$1")" "$(fl_host "$1")"
	fleet_ping "$1" >/dev/null 2>&1 && got=pass
	if [ "$got" = "$2" ]; then
		note "-> $( [ "$got" = pass ] && echo "gets through" || echo "blocked" ) ($3)"
	else
		surprise "expected $2, got $got ($3)"
	fi
}

main()
{
	local i
	trap fleet_lab_down EXIT
	fleet_lab_init || exit 1
	step "Fleet lab: etcd in its own namespace, three nodes, one agent each"
	fleet_lab_up 3 && fleet_etcd_start && fleet_keygen || { surprise "lab setup"; exit 1; }
	printf '  ops$ portcullis fleet heartbeat --every 500ms &\n'
	fleet_heartbeat_start || { surprise "heartbeat publisher"; exit 1; }
	note "-> a signed heartbeat at /portcullis/heartbeat every 500 ms: the agents' only proof that the controller lives"
	for i in 1 2 3; do
		fleet_agent_config "$i" "$([ "$i" = 3 ] && echo db || echo web)" &&
			fleet_agent_start "$i" && fleet_agent_wait_ready "$i" 30 ||
			{ surprise "agent $i did not start"; exit 1; }
	done
	fleet_wait_alive 20 1 2 3 || surprise "not every agent alive in fleet status"
	note "node-1 and node-2 in group web, node-3 in group db; heartbeat timeout 2 s"
	fleet status

	step "Quarantine one host: it and only it is isolated"
	fleet quarantine node-2
	expect_mode 2 quarantine "signed envelope at /portcullis/desired/host/node-2"
	ping_expect 2 block "quarantine: management (etcd) only"
	ping_expect 1 pass "node-1 untouched"
	fleet status node-2
	fleet release node-2
	expect_mode 2 normal "released by name"

	step "Group lockdown reaches every member"
	fleet lockdown --group web
	expect_mode 1 lockdown "group web"
	expect_mode 2 lockdown "group web"
	expect_mode 3 normal "group db is not web"
	fleet release --group web
	expect_mode 1 normal "group released"

	step "Write access to etcd is not enough: an unsigned value is refused"
	printf '  ops$ etcdctl put /portcullis/desired/host/node-3 quarantine\n'
	fleet_etcdctl put "$FL_KEY_PREFIX/desired/host/$(fl_host 3)" quarantine >/dev/null
	sleep 1
	expect_mode 3 normal "nothing changed"
	note "node-3 audit: $(grep '"fleet_refused"' "$(fl_audit 3)" | tail -n 1)"

	step "Two operators at once: one wins, the other is told (exit 3)"
	fleet get node-1
	local rev
	rev=$(sed -n 's/.*(revision \([0-9]*\)).*/\1/p' "$FL_WORK/out" | head -n 1)
	fleet quarantine node-1 --expect-revision "$rev"
	fleet release node-1 --expect-revision "$rev"
	[ "$FLEET_RC" = 3 ] || surprise "second writer: exit $FLEET_RC, not 3"
	expect_mode 1 quarantine "the first writer's value"
	fleet release node-1
	expect_mode 1 normal "released"

	step "etcd lost: every node locks itself down within the 2 s timeout"
	note "kill etcd (pid $FL_ETCD_PID)"
	fleet_etcd_stop KILL
	for i in 1 2 3; do
		fleet_wait_mode "$i" lockdown 5 || surprise "$(fl_host "$i") not in lockdown"
	done
	note "-> all three in lockdown (heartbeat_loss)"
	note "node-1 audit: $(grep '"heartbeat_loss"' "$(fl_audit 1)" | tail -n 1)"

	echo
	if [ "$SURPRISES" -eq 0 ]; then
		echo "fleet demo: every step behaved as described"
	else
		echo "fleet demo: $SURPRISES step(s) did not behave as described"
		exit 1
	fi
}

main "$@"

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 13, item 5: whoever can write a file the agent trusts -- here a
# group-writable controller .pub and a group-writable config -- cannot use
# it to move the host to a milder mode.
#
# The suite's config with its key in tf-controller.pub; heartbeats flowing.
#   1. Reload: the controller locks the node down; someone of the file's
#      group writes their own key into the .pub (0664) and the agent
#      reloads (SIGHUP): refused, audited with the file and the bit; their
#      signed release is a bad signature; the node stays in lockdown and
#      the controller's heartbeats still count.
#   2. Start: the .pub (the right key, but 0664) at start: the agent says
#      why, secures the host in lockdown and exits.
#   3. Start: the config itself 0664: the same.
# At the end the suite's usual agent runs again, normal.

tf_start_refused()	# CONFIG LOG: the daemon until it exits (30 s at most)
{
	timeout 30 nsenter --net="/run/netns/$LAB_NODE" -- "$PCD" --config "$1" \
		--pin-dir "$PIN_DIR" --state-dir "$STATE_DIR" --audit-log "$AUDIT_LOG" \
		--control-socket "$CONTROL_SOCKET" --xdp-mode "$E2E_XDP_MODE" -v \
		>"$2" 2>&1
	TF_RC=$?
}

tf_restore()
{
	chmod 0644 "$WORK/tf-controller.pub" "$WORK/tf-agent.yaml"
	daemon_stop TERM
	agent_start "$WORK/agent.yaml"
	hb_running || hb_start
	ensure_normal
}

# A datagram naming a key the agent does not trust (wire v2's key id) is
# counted with the heartbeats as unknown_key: nothing in it is trusted.
tf_unknown_above() { [ "$(msg_count hb unknown_key)" -gt "$1" ]; }
# The release was handled: refused (unknown key) or accepted.
tf_release_seen() { tf_unknown_above "$1" || [ "$(msg_count cmd accepted)" -gt "$2" ]; }
tf_exited_refusing() { [ "$TF_RC" -ne 0 ] && [ "$TF_RC" -ne 124 ]; }
tf_hb_above() { [ "$(msg_count hb accepted)" -gt "$1" ]; }

# tf_refused_at_start WHAT FILE: run, then judge exit, message, mode, audit.
tf_refused_at_start()
{
	local what=$1 file=$2 n log=$WORK/tf-start-$3.log
	pc release >/dev/null 2>&1
	expect_mode normal "released by hand before the start"
	n=$(audit_count config_refused at=start)
	tf_start_refused "$WORK/tf-agent.yaml" "$log"
	pass_if "start with a group-writable $what: agent exits ($TF_RC)" \
		"start with a group-writable $what: exit status $TF_RC (0, or still running at 30 s: 124)" \
		tf_exited_refusing
	if grep -q "$file is group-writable" "$log"; then
		pass "clear error: $(grep -m1 -o "[^ ]*$(basename "$file") is group-writable[^;]*" "$log" | head -c 160)"
	else
		fail "no error naming $file and the bit: $(tail -n 2 "$log")"
	fi
	expect_mode lockdown "a group-writable $what at start secures the host"
	audit_more_than "$n" "config_refused at start" config_refused at=start
}

test_trustfiles()
{
	local n acc bad cmds
	ensure_normal || return 1
	cp "$WORK/controller.pub" "$WORK/tf-controller.pub"
	chmod 0644 "$WORK/tf-controller.pub"
	sed 's/controller\.pub/tf-controller.pub/' "$WORK/agent.yaml" >"$WORK/tf-agent.yaml"
	"$PCCLI" keygen --out "$WORK/tf-attacker.key" >/dev/null 2>&1 ||
		{ fail "keygen"; return 1; }
	daemon_stop TERM
	agent_start "$WORK/tf-agent.yaml" || { tf_restore; return 1; }
	ensure_normal || { tf_restore; return 1; }

	note "1. reload: a group member writes their key into the 0664 .pub"
	check "signed lockdown" ctl_send lockdown
	wait_mode lockdown 15
	expect_mode lockdown "the controller's lockdown"
	chmod 0664 "$WORK/tf-controller.pub"
	cat "$WORK/tf-attacker.key.pub" >"$WORK/tf-controller.pub"
	n=$(audit_count config_refused)
	kill -s HUP "$DAEMON_PID"
	if wait_audit "$n" 10 config_refused; then
		pass "reload refused: $(audit_last config_refused | head -c 300)"
	else
		fail "reload with a group-writable key file not refused"
	fi
	bad=$(msg_count hb unknown_key)
	cmds=$(msg_count cmd accepted)
	ctl_send release --key "$WORK/tf-attacker.key" >/dev/null 2>&1
	wait_until 10 tf_release_seen "$bad" "$cmds"
	pass_if "their signed release: not accepted ($cmds commands accepted before and after)" \
		"their signed release was ACCEPTED (commands accepted $cmds -> $(msg_count cmd accepted))" \
		[ "$(msg_count cmd accepted)" -eq "$cmds" ]
	pass_if "their signed release: unknown_key ($bad -> $(msg_count hb unknown_key))" \
		"their signed release: not counted as unknown_key ($bad -> $(msg_count hb unknown_key))" \
		tf_unknown_above "$bad"
	expect_mode lockdown "after their release"
	acc=$(msg_count hb accepted)
	pass_if "the controller's heartbeats still count" \
		"the controller's heartbeats no longer count" wait_until 5 tf_hb_above "$acc"

	note "2. start with the right key in a 0664 .pub"
	cp "$WORK/controller.pub" "$WORK/tf-controller.pub"
	chmod 0664 "$WORK/tf-controller.pub"
	daemon_stop TERM
	tf_refused_at_start "key file" "$WORK/tf-controller.pub" pub

	note "3. start with a 0664 config"
	chmod 0644 "$WORK/tf-controller.pub"
	chmod 0664 "$WORK/tf-agent.yaml"
	tf_refused_at_start "config" "$WORK/tf-agent.yaml" config
	tf_restore
	expect_mode normal "the suite's agent again"
}

# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# Issue 12, item 2: a state file the agent does not fully understand.

# A state file the agent does not fully understand: a newer agent's extra
# key keeps the saved quarantine; a damaged file starts in quarantine, is
# kept aside and audited, and is not overwritten with a milder mode.
test_statefile()
{
	local n aside
	ensure_normal || return 1
	check "signed quarantine" ctl_send quarantine
	wait_mode quarantine 15
	expect_mode quarantine "saved in the state file"
	echo "lease_id 7587881224" >>"$STATE_DIR/state"
	note "appended an unknown well-formed line: 'lease_id 7587881224'"
	state_start || return 1
	expect_mode quarantine "restart with an extra key in the state file (forward compatible)"
	blocked "peer -> node tcp/8080 (quarantine kept)" web4
	allowed "mgmt -> node tcp/22 (management)" ssh4
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "released"
	# Bit rot: the saved mode says normal, a line after it is garbage.
	n=$(audit_count state_untrusted)
	printf 'mode normal\ncause command\n\001\377 garbage\n' >"$STATE_DIR/state"
	note "state file overwritten with 'mode normal' and a garbage line"
	state_start || return 1
	expect_mode quarantine "restart with a damaged state file (saved normal)"
	blocked "peer -> node tcp/8080 (damaged state: quarantine)" web4
	blocked "node -> peer tcp/7000 (damaged state: quarantine)" out4
	allowed "mgmt -> node tcp/22 (management)" ssh4
	pass_if "audit: state_untrusted recorded: $(audit_last state_untrusted)" \
		"audit: no state_untrusted line" [ "$(audit_count state_untrusted)" -gt "$n" ]
	aside=$(ls "$STATE_DIR"/state.untrusted-* 2>/dev/null | tail -n 1)
	pass_if "the damaged file kept aside as $(basename "${aside:-none}")" \
		"the damaged file was not kept" [ -n "$aside" ] && grep -q garbage "$aside"
	pass_if "the state file now says quarantine, not the damaged normal" \
		"state file: $(head -n 1 "$STATE_DIR/state")" \
		grep -qx 'mode quarantine' "$STATE_DIR/state"
	check "signed release" ctl_send release
	wait_mode normal 15
	expect_mode normal "released by the controller"
}

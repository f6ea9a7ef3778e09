# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# shellcheck shell=bash
# PASS/FAIL bookkeeping shared by the end-to-end suites (sourced). Set
# CHECK_NAME (the summary's prefix) and, if wanted, CHECK_WIDTH (the test
# name column) first; set CUR to the test running. Command output goes to
# the suite's work dir ($WORK, or the fleet lab's $FL_WORK).

PASS_N=0
FAIL_N=0
FAILED=()
CUR=setup
CHECK_WIDTH=${CHECK_WIDTH:-10}

pass()
{
	PASS_N=$((PASS_N + 1))
	printf "PASS  %-${CHECK_WIDTH}s %s\n" "$CUR" "$*"
}

fail()
{
	FAIL_N=$((FAIL_N + 1))
	FAILED+=("$CUR: $*")
	printf "FAIL  %-${CHECK_WIDTH}s %s\n" "$CUR" "$*"
}

note() { printf '      %s\n' "$*"; }

# pass_if PASS_TEXT FAIL_TEXT CMD...: PASS or FAIL by CMD's status.
pass_if()
{
	local yes=$1 no=$2
	shift 2
	if "$@"; then
		pass "$yes"
	else
		fail "$no"
	fi
}

_check_dir() { echo "${WORK:-${FL_WORK:-}}"; }

# check DESC CMD...: CMD must succeed.
check()
{
	local desc=$1
	shift
	if "$@" >"$(_check_dir)/last.out" 2>&1; then
		pass "$desc"
	else
		fail "$desc [$(tail -n 1 "$(_check_dir)/last.out")]"
	fi
}

# allowed/blocked DESC PROBE...: traffic must get through / must not.
allowed()
{
	local desc=$1
	shift
	if "$@" >"$(_check_dir)/last.out" 2>&1; then
		pass "allowed: $desc"
	else
		fail "should pass: $desc [$(tail -n 1 "$(_check_dir)/last.out")]"
	fi
}

blocked()
{
	local desc=$1
	shift
	if "$@" >"$(_check_dir)/last.out" 2>&1; then
		fail "should be blocked: $desc [$(tail -n 1 "$(_check_dir)/last.out")]"
	else
		pass "blocked: $desc"
	fi
}

# show CMD...: its output in the log, indented; keeps its status.
show()
{
	local rc
	"$@" >"$(_check_dir)/show.out" 2>&1
	rc=$?
	sed 's/^/      | /' "$(_check_dir)/show.out"
	return $rc
}

# check_summary [LINE]: LINE, the counts and every failure; fails if any did.
check_summary()
{
	local f
	echo
	[ $# -gt 0 ] && echo "$1"
	echo "$CHECK_NAME: $PASS_N passed, $FAIL_N failed"
	for f in "${FAILED[@]}"; do
		echo "  FAILED $f"
	done
	[ "$FAIL_N" -eq 0 ]
}

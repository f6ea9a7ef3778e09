#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# End-to-end suite for the fail-secure promise (issue 12): one scenario per
# path that once failed open, each with real packets between namespaces and
# a count of denied packets delivered, which must be 0. The agent runs from
# tests/configs/lab-agent.yaml with the controller on the management host,
# as in tests/e2e/agent.sh.
#
#   bash tests/e2e/failsecure.sh [SCENARIO...]     (root; after make)
#
# SCENARIOs default to all, in order; each is tests/e2e/failsecure/NAME.sh
# defining test_NAME, and leaves the node normal with heartbeats flowing:
#   icmp statefile startfail newlink cut bypass fleetauth

set -u
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK_NAME="failsecure e2e"
CHECK_WIDTH=10
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=SCRIPTDIR/agent_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"

# Our own pin dir; lib.sh's teardown removes it by this exact name.
PIN_DIR=/sys/fs/bpf/pc-fsec-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC

ALL_TESTS=(icmp statefile startfail newlink cut bypass fleetauth)
HB_TIMEOUT_MS=2000	# lab-agent.yaml heartbeat.timeout

for f in "$(dirname "${BASH_SOURCE[0]}")"/failsecure/*.sh; do
	# shellcheck source=/dev/null
	. "$f"
done

main() { scenarios_main failsecure "$@"; }
main "$@"

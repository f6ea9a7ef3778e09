#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# End-to-end suite for "an outsider cannot move the host" (issue 13): one
# attack per scenario, from the peer (who can only send packets), each
# asserting the host's mode and its own connections are unaffected. The
# agent runs from tests/configs/lab-agent.yaml with the controller on the
# management host, as in tests/e2e/agent.sh.
#
#   bash tests/e2e/outsider.sh [SCENARIO...]     (root; after make)
#
# SCENARIOs default to all, in order; each is tests/e2e/outsider/NAME.sh
# defining test_NAME, and leaves the node normal with heartbeats flowing.

set -u
# shellcheck source=SCRIPTDIR/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CHECK_NAME="outsider e2e"
CHECK_WIDTH=10
# shellcheck source=SCRIPTDIR/checks.sh
. "$(dirname "${BASH_SOURCE[0]}")/checks.sh"
# shellcheck source=SCRIPTDIR/agent_lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/agent_lib.sh"

# Our own pin dir; lib.sh's teardown removes it by this exact name.
PIN_DIR=/sys/fs/bpf/pc-outs-$$
PORTCULLIS_PIN_DIR=$PIN_DIR
export PORTCULLIS_PIN_DIR
LAB_POLICY=$AGENT_POLICY_SRC

ALL_TESTS=()
HB_TIMEOUT_MS=2000	# lab-agent.yaml heartbeat.timeout

for f in "$(dirname "${BASH_SOURCE[0]}")"/outsider/*.sh; do
	[ -e "$f" ] || continue
	# shellcheck source=/dev/null
	. "$f"
	ALL_TESTS+=("$(basename "$f" .sh)")
done

main() { scenarios_main outsider "$@"; }
main "$@"

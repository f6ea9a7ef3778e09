#!/bin/bash
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# Every end-to-end suite in turn (root; after make): tests/e2e/run.sh, the
# datapath and CLI, tests/e2e/agent.sh, the agent with a controller, and
# tests/e2e/fleet.sh, agents following desired state in etcd.
# Each builds and removes its own lab; all run even if one fails; the exit
# status is non-zero if any failed.
#
#   bash tests/e2e/run-all.sh

set -u
dir=$(dirname "${BASH_SOURCE[0]}")
rc=0
failed=()
for suite in run.sh agent.sh fleet.sh; do
	echo "=== tests/e2e/$suite"
	if ! bash "$dir/$suite"; then
		rc=1
		failed+=("$suite")
	fi
done
echo
if [ "$rc" -eq 0 ]; then
	echo "e2e: all suites passed"
else
	echo "e2e: failed: ${failed[*]}"
fi
exit "$rc"

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer: the policy parser and compiler on arbitrary bytes. */
#include <stdint.h>
#include <stdlib.h>
#include "compile.h"
#include "model.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_policy p;
	struct pc_compiled c;
	char err[512];

	/* cidr_file names resolve under a directory that does not exist. */
	if (pc_policy_load_string((const char *)data, size, "fuzz",
				  "/nonexistent-portcullis-fuzz", &p, err,
				  sizeof(err)))
		return 0;
	/* What parses must compile (or fail cleanly) and be decidable. */
	if (!pc_compile(&p, &c, err, sizeof(err))) {
		__u8 addr[16] = { 198, 51, 100, 7 };

		pc_model_decide(&p, PC_MODE_NORMAL, PC_DIR_INGRESS, 4, addr, 6, 22);
		pc_compiled_free(&c);
	}
	pc_policy_free(&p);
	return 0;
}

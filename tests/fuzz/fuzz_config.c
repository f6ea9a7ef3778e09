// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer: the agent configuration parser on arbitrary bytes. */
#include <stdint.h>
#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_config c;
	char err[512];

	if (!pc_config_load_string((const char *)data, size,
				   "/nonexistent-portcullis-fuzz/agent.yaml", &c,
				   err, sizeof(err)))
		pc_config_free(&c);
	return 0;
}

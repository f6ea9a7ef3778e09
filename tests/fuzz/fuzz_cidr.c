// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* libFuzzer: CIDR and port-range parsing, with a round trip. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pc_port_range r;
	struct pc_cidr c, back;
	char buf[64], *s;

	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!pc_cidr_parse(s, &c)) {
		/* What parses formats, and formats back to the same. */
		if (pc_cidr_format(&c, buf, sizeof(buf)) < 0 ||
		    pc_cidr_parse(buf, &back) || back.family != c.family ||
		    back.plen != c.plen || memcmp(back.addr, c.addr, 16))
			__builtin_trap();
		if (!pc_cidr_contains(&c, c.addr, c.family))
			__builtin_trap();
	}
	if (!pc_port_range_parse(s, &r) && (!r.lo || r.lo > r.hi))
		__builtin_trap();
	free(s);
	return 0;
}

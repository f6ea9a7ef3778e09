// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: controller datagrams, decode then check. The trusted key is
 * the one the seed corpus was signed with (secret seed bytes 0x00..0x1f),
 * so mutations of valid messages get past the signature sometimes and
 * the checks behind it are exercised too.
 */
#include <stdint.h>
#include <string.h>
#include "msg.h"

static const char test_pk_b64[] = "A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg=";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static __u8 keys[2][PC_PK_LEN];
	static int ready;
	static struct pc_replay replay;
	struct pc_msg m;
	int key = -1;

	if (!ready) {
		if (pc_crypto_init() || pc_key_parse_public(test_pk_b64, keys[0]))
			__builtin_trap();
		memset(keys[1], 0x42, PC_PK_LEN);
		ready = 1;
	}
	if (pc_msg_decode(data, size, (const __u8(*)[PC_PK_LEN])keys, 2, &m,
			  &key) == PC_MSG_OK)
		pc_msg_check(&m, key, "node-1", m.timestamp_ms, 30000, &replay);
	return 0;
}

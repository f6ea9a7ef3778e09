// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer: what etcd (or whoever answers in its place) sends the agent
 * and the fleet CLI. The first byte picks the parser: a range answer, a
 * watch-stream line, a reported-state JSON or a desired-state envelope
 * (decoded, and peeked as `fleet status` does). None may crash, leak or
 * read out of bounds, whatever the bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "etcd.h"
#include "fleet.h"

static int events;

static int on_event(void *arg, bool deleted, const struct pc_etcd_kv *kv,
		    __s64 revision)
{
	/* Touch every byte the parser handed out. */
	if (kv->key)
		events += strlen(kv->key);
	for (size_t i = 0; kv->value && i < kv->value_len; i++)
		events += kv->value[i];
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static __u8 keys[1][PC_PK_LEN];
	struct pc_etcd_range r;
	struct pc_fleet_status st;
	struct pc_fleet_desired d;
	struct pc_fleet_heartbeat hb;
	char err[128];
	int key;

	if (!size)
		return 0;
	switch (data[0] % 4) {
	case 0:
		if (!pc_etcd_parse_range((const char *)data + 1, size - 1, &r,
					 err, sizeof(err)))
			pc_etcd_range_free(&r);
		break;
	case 1:
		pc_etcd_parse_watch((const char *)data + 1, size - 1, on_event,
				    NULL, err, sizeof(err));
		break;
	case 2:
		pc_fleet_status_parse((const char *)data + 1, size - 1, &st);
		break;
	default:
		memset(keys[0], 0x42, PC_PK_LEN);
		pc_fleet_decode(data + 1, size - 1, (const __u8(*)[PC_PK_LEN])keys,
				1, &d);
		pc_fleet_peek(data + 1, size - 1, &d);
		/* The same bytes as a fleet heartbeat (PREFIX/heartbeat). */
		pc_fleet_heartbeat_decode(data + 1, size - 1,
					  (const __u8(*)[PC_PK_LEN])keys, 1, &hb,
					  &key);
		break;
	}
	return 0;
}

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's link to etcd. Two threads keep every etcd call off the
 * agent's poll loop, so a hung cluster can never stall enforcement:
 *   watcher: reads the host's desired-state keys, then watches them;
 *   leaser:  holds the lease (the fleet's view of who is alive), reads
 *            the controller's signed heartbeat, and publishes the
 *            reported state.
 * They hand events to the loop through a queue and an eventfd; nothing
 * they receive is trusted before the loop verifies it.
 */
#ifndef PC_AGENT_FLEET_H
#define PC_AGENT_FLEET_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "config.h"
#include "fleet.h"

enum pc_fleet_event_type {
	PC_FE_HEARTBEAT,	/* a new value at PREFIX/heartbeat, unverified */
	PC_FE_KEEPALIVE,	/* a lease keep-alive was answered: no heartbeat */
	PC_FE_DESIRED,		/* a desired key's value (read or watched) */
	PC_FE_DELETED,		/* a desired key was deleted */
	PC_FE_LEASE,		/* lease granted (ok) or lost */
	PC_FE_LINK,		/* watch stream up (ok) or broken */
};

struct pc_fleet_event {
	enum pc_fleet_event_type type;
	bool ok;
	char key[PC_FLEET_KEY_MAX];
	__u8 *value;		/* the envelope (or heartbeat), as stored */
	size_t len;
	__s64 revision;
	char *policy;		/* PREFIX/policies/HASH if the envelope names one */
	size_t policy_len;
	char detail[160];
};

struct pc_fleet_link;

/* Starts both threads; v says which keys to follow. */
int pc_fleet_link_start(struct pc_fleet_link **out, const struct pc_config *cfg,
			const struct pc_fleet_view *v);
void pc_fleet_link_stop(struct pc_fleet_link *l);
/* Readable when events wait. */
int pc_fleet_link_fd(const struct pc_fleet_link *l);
/* Call when the fd polls readable, before draining with _next(). */
void pc_fleet_link_ack(struct pc_fleet_link *l);
/* Pops one event (the caller frees it); false when none is left. */
bool pc_fleet_link_next(struct pc_fleet_link *l, struct pc_fleet_event *ev);
void pc_fleet_event_free(struct pc_fleet_event *ev);
/* Read every key again (and fetch the policies they name). */
void pc_fleet_link_resync(struct pc_fleet_link *l);
/* Publish this reported state soon (and every report interval). */
void pc_fleet_link_report(struct pc_fleet_link *l,
			  const struct pc_fleet_status *s);

#endif /* PC_AGENT_FLEET_H */

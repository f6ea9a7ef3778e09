/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The pinned maps, opened by name, for the CLI and the daemon alike. */
#ifndef PC_PINS_H
#define PC_PINS_H

#include <linux/types.h>
#include "portcullis.h"

struct portcullis_bpf;

struct pc_maps {
	int state;
	int settings;
	int addr4;
	int addr6;
	int ports;
	int flows;		/* flows the host opened */
	int flows_peer;		/* flows the far end opened; -1 in older pins */
	int frags;
	int reason_stats;
	int rule_stats;
	int rule_meta;
	int ifaces;
	int deadman;
	int events;
	int transitions;
	int agent_stats;
	int drops;
	int cuts;		/* -1 in pins of a datapath that predates it */
	int guard_stats;	/* -1 in pins of an agent that predates it */
	int backstop_stats;	/* -1 in pins of a version without it */
	int host_events;	/* -1 in pins of a datapath that predates it */
	int mgmt_if;		/* -1 in pins of a datapath that predates it */
	int ctl_conf;		/* -1 in pins of a datapath that predates it */
	int ctl_stats;		/* -1 in pins of a datapath that predates it */
	int flow_stats;		/* -1 in pins of a datapath that predates it */
};

/* Pin dir from --pin-dir, else $PORTCULLIS_PIN_DIR, else the default. */
const char *pc_pin_dir(const char *opt);
/* Mount bpffs on /sys/fs/bpf if it is not, and create the pin dir. */
int pc_pin_dir_prepare(const char *pin_dir);
/* Open every pinned map; -ENOENT if nothing is loaded there. */
int pc_maps_open_pinned(const char *pin_dir, struct pc_maps *m);
/* Borrow the fds of a loaded skeleton (not to be closed). */
void pc_maps_from_skel(struct portcullis_bpf *skel, struct pc_maps *m);
void pc_maps_close(struct pc_maps *m);
/* Exclusive lock for anything that changes policy, across processes. */
int pc_lock(const char *pin_dir);
void pc_unlock(int fd);

int pc_state_get(const struct pc_maps *m, enum pc_state_key k, __u32 *val);
int pc_state_set(const struct pc_maps *m, enum pc_state_key k, __u32 val);
/* Set the mode word, every writer's one way to: entering lockdown or
 * quarantine bumps that mode's cut epoch first (struct pc_cuts). */
int pc_mode_write(const struct pc_maps *m, __u32 mode);

#endif /* PC_PINS_H */

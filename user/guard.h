/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The egress guard (bpf/guard.bpf.c): a cgroup setsockopt program on the
 * root of the cgroup v2 hierarchy that refuses, to sockets of the enforced
 * network namespace, the options that make a socket send past tc_egress.
 * Its link is pinned in the pin dir (PC_GUARD_LINK), so it outlives the
 * agent; a new agent's link replaces it.
 */
#ifndef PC_GUARD_H
#define PC_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "portcullis.h"

struct guard_bpf;
struct bpf_link;

struct pc_guard {
	struct guard_bpf *skel;
	struct bpf_link *link;
};

/*
 * Load the guard for this network namespace, attach it to the cgroup v2
 * root and pin its link in pin_dir in place of any pinned there (one
 * rename: a guard is attached throughout). 0, or negative errno with why
 * saying what failed (a link a previous agent pinned then stays).
 */
int pc_guard_start(struct pc_guard *g, const char *pin_dir, char *why,
		   size_t len);
/* Pin our link again (the pins vanished without a detach). */
int pc_guard_repin(const struct pc_guard *g, const char *pin_dir);
/* Close our fds; the pinned link keeps the guard on. */
void pc_guard_close(struct pc_guard *g);
/* Detach and unpin the guard pinned in pin_dir (none: 0). */
int pc_guard_detach(const char *pin_dir);
/* Is a guard link pinned in pin_dir, and still attached? */
bool pc_guard_pinned(const char *pin_dir);
const char *pc_guard_refusal_name(enum pc_guard_refusal r);

#endif /* PC_GUARD_H */

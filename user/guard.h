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
#include <stdio.h>
#include <linux/types.h>
#include "portcullis.h"

/* The root of a cgroup v2 hierarchy always has id 1 (its kernfs node). */
#define PC_CGROUP_ROOT_ID	1

struct guard_bpf;
struct bpf_link;

struct pc_guard {
	struct guard_bpf *skel;
	struct bpf_link *link;
};

/*
 * Load the guard for this network namespace, attach it to the topmost
 * cgroup v2 directory mounted and pin its link in pin_dir in place of any
 * pinned there (one rename: a guard is attached throughout). 0: on, at
 * the hierarchy's root; 1: on, but below the root (a container's cgroup
 * namespace), so it covers only the processes there; negative errno: off.
 * why says where, or what failed (a link a previous agent pinned then
 * stays).
 */
int pc_guard_start(struct pc_guard *g, const char *pin_dir, char *why,
		   size_t len);
/*
 * Where the guard attaches, from mountinfo lines: the topmost cgroup v2
 * directory mounted. On a host the hierarchy's root (/sys/fs/cgroup, or
 * /sys/fs/cgroup/unified on a hybrid layout); in a container with its own
 * cgroup namespace the node's hierarchy where it is mounted in (its root
 * reads "/../.."), else the container's own cgroup ("/"). A bind of a
 * subtree ("/system.slice") never counts. -ENOENT: no cgroup v2 at all.
 */
int pc_guard_cgroup_pick(FILE *mountinfo, char *path, size_t len);
/* Pin our link again (the pins vanished without a detach). */
int pc_guard_repin(const struct pc_guard *g, const char *pin_dir);
/* Close our fds; the pinned link keeps the guard on. */
void pc_guard_close(struct pc_guard *g);
/* Detach and unpin the guard pinned in pin_dir (none: 0). */
int pc_guard_detach(const char *pin_dir);
/* The cgroup the guard pinned in pin_dir is attached to: 0 none (not
 * pinned, or detached), PC_CGROUP_ROOT_ID the hierarchy's root. */
__u64 pc_guard_cgroup(const char *pin_dir);
const char *pc_guard_refusal_name(enum pc_guard_refusal r);

#endif /* PC_GUARD_H */

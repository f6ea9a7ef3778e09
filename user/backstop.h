/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The backstop (bpf/backstop.bpf.c): netfilter bpf_links in the agent's
 * network namespace that drop all IP traffic on a managed interface XDP/TC
 * are not attached to (a link re-created while no agent ran), pinned so
 * they outlive the agent.
 */
#ifndef PC_BACKSTOP_H
#define PC_BACKSTOP_H

#include <stddef.h>
#include <linux/types.h>
#include "portcullis.h"

/* IPv4 and IPv6, each at pre-routing (ingress) and post-routing (egress). */
#define PC_BACKSTOP_LINKS	4
/* Before everything else netfilter runs (NF_IP_PRI_FIRST itself is
 * refused). Two BPF hooks may not share a priority, so a replacement
 * takes the other of the two while the old one still runs. */
#define PC_BACKSTOP_PRIORITY	(-2147483647)
#define PC_BACKSTOP_PRIORITY_ALT (-2147483646)

/*
 * Load the program and hook it in this network namespace, pinning each
 * link in pin_dir, replacing a link pinned there before (the new one is
 * in place before the old one goes). fds[i]: each link made, for the
 * caller to keep (pins lost with bpffs are restored from them), -1 where
 * it failed; there a link pinned from before stays. 0, or the first error
 * with err saying why; -EOPNOTSUPP: the kernel has no netfilter links.
 */
int pc_backstop_install(const char *pin_dir, int fds[PC_BACKSTOP_LINKS],
			char *err, size_t errlen);
/* Pin the held links again where they belong (EEXIST is fine). */
int pc_backstop_repin(const char *pin_dir, const int fds[PC_BACKSTOP_LINKS]);
void pc_backstop_close(int fds[PC_BACKSTOP_LINKS]);
/* Detach the pinned links (even while an agent holds them) and unpin
 * them: `portcullis detach`. 0 if there were none. */
int pc_backstop_detach(const char *pin_dir);
/* Pinned links attached now (0 .. PC_BACKSTOP_LINKS). */
int pc_backstop_count(const char *pin_dir);

#endif /* PC_BACKSTOP_H */

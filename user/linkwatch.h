/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Netlink link events (libnl): an interface of ours that comes back (a
 * veth re-created, a NIC re-probed) gets the programs attached again. */
#ifndef PC_LINKWATCH_H
#define PC_LINKWATCH_H

#include <stdbool.h>

struct nl_sock;

/* Called for each link that appears (up is true) or goes away. */
typedef void (*pc_link_cb)(const char *ifname, int ifindex, bool appeared,
			   void *arg);

struct pc_linkwatch {
	struct nl_sock *sk;
	pc_link_cb cb;
	void *arg;
};

int pc_linkwatch_open(struct pc_linkwatch *w, pc_link_cb cb, void *arg);
int pc_linkwatch_fd(const struct pc_linkwatch *w);
/* Read and dispatch whatever events are pending. */
void pc_linkwatch_process(struct pc_linkwatch *w);
void pc_linkwatch_close(struct pc_linkwatch *w);

#endif /* PC_LINKWATCH_H */

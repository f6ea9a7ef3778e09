// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/msg.h>
#include <netlink/attr.h>
#include <linux/rtnetlink.h>
#include "linkwatch.h"
#include "log.h"

static int on_msg(struct nl_msg *msg, void *arg)
{
	struct pc_linkwatch *w = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct ifinfomsg *ifi;
	struct nlattr *name;
	char ifname[IF_NAMESIZE] = "";

	if (nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK)
		return NL_OK;
	if (!nlmsg_valid_hdr(nlh, sizeof(*ifi)))
		return NL_OK;
	ifi = nlmsg_data(nlh);
	name = nlmsg_find_attr(nlh, sizeof(*ifi), IFLA_IFNAME);
	if (name)
		nla_strlcpy(ifname, name, sizeof(ifname));
	if (ifname[0])
		w->cb(ifname, ifi->ifi_index, nlh->nlmsg_type == RTM_NEWLINK,
		      w->arg);
	return NL_OK;
}

int pc_linkwatch_open(struct pc_linkwatch *w, pc_link_cb cb, void *arg)
{
	int err;

	w->cb = cb;
	w->arg = arg;
	w->sk = nl_socket_alloc();
	if (!w->sk)
		return -ENOMEM;
	/* Events are not replies to anything we sent. */
	nl_socket_disable_seq_check(w->sk);
	nl_socket_modify_cb(w->sk, NL_CB_VALID, NL_CB_CUSTOM, on_msg, w);
	err = nl_connect(w->sk, NETLINK_ROUTE);
	if (!err)
		err = nl_socket_add_membership(w->sk, RTNLGRP_LINK);
	if (!err)
		err = nl_socket_set_nonblocking(w->sk);
	if (err) {
		pr_warn("Couldn't watch link events: %s\n", nl_geterror(err));
		nl_socket_free(w->sk);
		w->sk = NULL;
		return -EIO;
	}
	return 0;
}

int pc_linkwatch_fd(const struct pc_linkwatch *w)
{
	return w->sk ? nl_socket_get_fd(w->sk) : -1;
}

void pc_linkwatch_process(struct pc_linkwatch *w)
{
	if (w->sk)
		nl_recvmsgs_default(w->sk);
}

void pc_linkwatch_close(struct pc_linkwatch *w)
{
	if (w->sk)
		nl_socket_free(w->sk);
	w->sk = NULL;
}

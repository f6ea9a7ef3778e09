// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The backstop: a netfilter program (bpf_link per family and hook, pinned,
 * so it outlives the agent) that covers a link XDP/TC do not. It passes
 * whatever arrives or leaves on an interface pc_ifaces records as
 * enforced (XDP/TC decided it already), on loopback and on interfaces the
 * agent does not manage; on an interface whose NAME the agent manages but
 * whose ifindex it has not attached to -- a link deleted and re-created
 * while no agent ran -- it drops everything, until the agent attaches
 * XDP/TC there and records the new ifindex.
 *
 * libbpf 1.1 does not know the "netfilter" section: userspace sets the
 * program type and attach type before load (user/backstop.c).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "portcullis.h"
#include "maps_backstop.h"

#define NF_DROP		0
#define NF_ACCEPT	1

/* Our XDP link on the device, in either mode: a record matching only an
 * ifindex that was handed out again (or to a device moved in from another
 * namespace) is not enough. */
static __always_inline bool xdp_linked(const struct net_device *dev)
{
	return dev->xdp_state[XDP_MODE_SKB].link ||
	       dev->xdp_state[XDP_MODE_DRV].link;
}

static __always_inline bool name_eq(const char *ours,
				    const struct net_device *dev)
{
#pragma clang loop unroll(full)
	for (int i = 0; i < PC_IFNAME_LEN; i++) {
		if (ours[i] != dev->name[i])
			return false;
		if (!ours[i])
			return true;
	}
	return true;
}

/* Direct loads from the hook state and the device: the verifier turns
 * them into fault-safe reads (BTF pointers), CO-RE relocates them. */
static __always_inline int verdict(const struct net_device *dev, __u64 ns)
{
	__u32 ifindex = dev->ifindex;
	bool managed = false;

	if (dev->flags & IFF_LOOPBACK)
		return NF_ACCEPT;
#pragma clang loop unroll(full)
	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		__u32 key = i;
		struct pc_iface *e = bpf_map_lookup_elem(&pc_ifaces, &key);

		if (!e || !e->ifindex || e->netns_ino != ns)
			continue;
		if (e->ifindex == ifindex)
			return xdp_linked(dev) ? NF_ACCEPT : NF_DROP;
		managed |= name_eq(e->name, dev);
	}
	return managed ? NF_DROP : NF_ACCEPT;
}

SEC("netfilter")
int pc_backstop(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *st = ctx->state;
	const struct net_device *dev;
	struct pc_counter *c;
	__u32 dir;
	int v;

	if (st->hook == NF_INET_PRE_ROUTING) {
		dir = PC_DIR_INGRESS;
		dev = st->in;
	} else {
		dir = PC_DIR_EGRESS;
		dev = st->out;
	}
	if (!dev)
		return NF_ACCEPT;	/* no device at this hook: not ours */
	v = verdict(dev, st->net->ns.inum);
	if (v == NF_DROP) {
		c = bpf_map_lookup_elem(&pc_backstop_stats, &dir);
		if (c) {
			c->packets++;
			c->bytes += ctx->skb->len;
		}
	}
	return v;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

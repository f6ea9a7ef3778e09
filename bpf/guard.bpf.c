// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The egress guard. tc_egress sits in the qdisc layer; two kinds of
 * socket transmit beneath it (dev_direct_xmit), and both need only
 * CAP_NET_RAW:
 *
 * - an AF_PACKET socket with PACKET_QDISC_BYPASS;
 * - an AF_XDP socket (its TX ring, in copy mode; zero-copy goes straight
 *   to the driver).
 *
 * Both are set up with setsockopt(2): PACKET_QDISC_BYPASS is an option,
 * and an AF_XDP socket cannot send without its umem and rings (SOL_XDP
 * options). This program refuses those options (EPERM), in every mode:
 * once a socket has them, nothing checks its sends again -- an AF_XDP TX
 * ring is even driven by poll(2) -- so refusing them only in lockdown
 * would let a socket set up in normal mode send past tc_egress after.
 * Packet sockets that go through the qdisc (DHCP clients, raw injectors
 * without the option) are tc_egress's to judge and are left alone.
 *
 * It is attached to the root of the cgroup v2 hierarchy, so it sees every
 * process; it acts only on sockets of the network namespace the agent
 * enforces (guard_netns, a netns cookie). Nobody is exempt: the agent
 * sets neither option.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "portcullis.h"
#include "guard_maps.h"

/* UAPI values vmlinux.h does not carry (linux/socket.h, if_packet.h). */
#define SOL_PACKET		263
#define SOL_XDP			283
#define PACKET_QDISC_BYPASS	20

/* Cgroup sockopt verdicts: 0 refuses with EPERM, 1 lets the call on. */
#define SOCKOPT_REFUSE		0
#define SOCKOPT_PROCEED		1

/* Cookie of the enforced network namespace (SO_NETNS_COOKIE); set
 * before load. 0 matches no namespace. */
const volatile __u64 guard_netns = 0;

/* optlen 0: the kernel uses the caller's own buffer, not our copy of it
 * (no allocation; and no truncation notice for options over a page). */
static __always_inline int proceed(struct bpf_sockopt *ctx)
{
	ctx->optlen = 0;
	return SOCKOPT_PROCEED;
}

static __always_inline int refuse(__u32 what)
{
	__u64 *n = bpf_map_lookup_elem(&pc_guard_stats, &what);

	if (n)
		(*n)++;
	return SOCKOPT_REFUSE;
}

SEC("cgroup/setsockopt")
int guard_setsockopt(struct bpf_sockopt *ctx)
{
	/* The machine's every setsockopt comes here: the level test first. */
	if (ctx->level != SOL_PACKET && ctx->level != SOL_XDP)
		return proceed(ctx);
	if (!guard_netns || bpf_get_netns_cookie(ctx) != guard_netns)
		return proceed(ctx);
	if (ctx->level == SOL_XDP)
		return refuse(PC_G_XDP_SETUP);
	if (ctx->optname == PACKET_QDISC_BYPASS)
		return refuse(PC_G_QDISC_BYPASS);
	return proceed(ctx);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fast sender of tests/bench/flood.c (`flood xdp`): run through
 * BPF_PROG_TEST_RUN in live-frames mode, it redirects the frame it is given
 * out of the sender's veth, so frames reach the receiver as a NIC's would
 * (xdp_frames through the peer's NAPI), at a cost per frame well below an
 * AF_PACKET sendmmsg(). It walks the source address and port over the
 * configured ranges.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

struct flood_cfg {
	__u32 ifindex;
	__u32 src_base;		/* host order */
	__u32 src_count;	/* >= 1 */
	__u16 sport_base;	/* host order */
	__u16 sport_count;	/* >= 1 */
	__u64 next;		/* frames this program has built */
};

/* One entry, written by flood before the run, counting as it goes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct flood_cfg);
} flood_cfg SEC(".maps");

static __always_inline __u16 ip_csum(struct iphdr *ip)
{
	__u16 *p = (__u16 *)ip;
	__u32 sum = 0;

	ip->check = 0;
#pragma unroll
	for (int i = 0; i < (int)sizeof(*ip) / 2; i++)
		sum += p[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

SEC("xdp")
int xdp_flood(struct xdp_md *ctx)
{
	void *data_end = (void *)(long)ctx->data_end;
	void *data = (void *)(long)ctx->data;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	struct flood_cfg *cfg;
	__u32 key = 0;
	__u64 n;

	cfg = bpf_map_lookup_elem(&flood_cfg, &key);
	if (!cfg || (void *)(udp + 1) > data_end)
		return XDP_ABORTED;
	n = cfg->next++;	/* one sender thread: no atomics needed */
	if (cfg->src_count > 1) {
		ip->saddr = bpf_htonl(cfg->src_base + (__u32)(n % cfg->src_count));
		ip->check = ip_csum(ip);
	}
	if (cfg->sport_count > 1)
		udp->source = bpf_htons(cfg->sport_base +
					(__u16)((n / cfg->src_count) % cfg->sport_count));
	return bpf_redirect(cfg->ifindex, 0);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The controller port's budget (include/portcullis.h, "controller port"):
 * every datagram costs the agent's one thread a signature check, so the
 * datapath admits at most PC_CTL_GLOBAL_RATE/s of management traffic per
 * interface, and of the rest PC_CTL_SRC_RATE/s per source and interface
 * and PC_CTL_GLOBAL_RATE/s in all, before userspace sees any of it.
 */
#ifndef PC_BPF_CTL_LIMIT_H
#define PC_BPF_CTL_LIMIT_H

#define NS_PER_S	1000000000ULL

/* The controller's UDP port and the interfaces it is bound to (struct
 * pc_ctl_conf), written by the agent. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pc_ctl_conf);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ctl_conf SEC(".maps");

/* Admitted and limited datagrams (enum pc_ctl_stat). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_CS_MAX);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ctl_stats SEC(".maps");

/* One bucket per (interface, source); the least recent go first. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, PC_CTL_SOURCES);
	__type(key, struct pc_ctl_src_key);
	__type(value, struct pc_tbucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ctl_sources SEC(".maps");

/* The class buckets (struct pc_ctl_class_key): one for all other traffic,
 * one per interface for management. Not per CPU: one budget for the host;
 * racing CPUs can only admit a few more than it says. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PC_CTL_CLASS_MAX);
	__type(key, struct pc_ctl_class_key);
	__type(value, struct pc_tbucket);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ctl_global SEC(".maps");

static __always_inline void ctl_stat(__u32 k)
{
	__u64 *c = bpf_map_lookup_elem(&pc_ctl_stats, &k);

	if (c)
		(*c)++;
}

/* Take one datagram's worth from b, refilled at rate/s up to burst. */
static __always_inline bool bucket_take(struct pc_tbucket *b, __u64 now,
					__u64 rate, __u64 burst)
{
	__u64 elapsed = now - b->last_ns;

	/* Another CPU stamped it a moment later: no time passed, rather
	 * than a wrapped difference refilling the bucket. */
	if ((__s64)elapsed < 0)
		elapsed = 0;
	/* Ten seconds fill any bucket: no overflow below. */
	if (elapsed > NS_PER_S * 10)
		elapsed = NS_PER_S * 10;
	b->tokens += elapsed * rate;
	if (b->tokens > burst * NS_PER_S)
		b->tokens = burst * NS_PER_S;
	b->last_ns = now;
	if (b->tokens < NS_PER_S)
		return false;
	b->tokens -= NS_PER_S;
	return true;
}

/* The bucket of pkt's source on ifindex; a new source starts full. */
static __always_inline bool source_take(const struct pc_pkt *pkt,
					__u32 ifindex, __u64 now)
{
	struct pc_ctl_src_key k = { .ifindex = ifindex,
				    .family = pkt->family };
	struct pc_tbucket *b, fresh = {
		.last_ns = now, .tokens = (PC_CTL_SRC_BURST - 1) * NS_PER_S,
	};

	__builtin_memcpy(k.addr, pkt->saddr, 16);
	b = bpf_map_lookup_elem(&pc_ctl_sources, &k);
	if (!b) {
		/* No room to track it (cannot happen with an LRU): refused. */
		return !bpf_map_update_elem(&pc_ctl_sources, &k, &fresh,
					    BPF_NOEXIST);
	}
	return bucket_take(b, now, PC_CTL_SRC_RATE, PC_CTL_SRC_BURST);
}

/* The class bucket: a new one starts full. Management ifindexes are the
 * attached interfaces only, so the map cannot fill up from outside. */
static __always_inline bool class_take(bool mgmt, __u32 ifindex, __u64 now)
{
	struct pc_ctl_class_key k = {
		.cls = mgmt ? PC_CC_MGMT : PC_CC_OTHER,
		.ifindex = mgmt ? ifindex : 0,
	};
	struct pc_tbucket *b, fresh = {
		.last_ns = now, .tokens = (PC_CTL_GLOBAL_BURST - 1) * NS_PER_S,
	};

	b = bpf_map_lookup_elem(&pc_ctl_global, &k);
	if (!b)
		return !bpf_map_update_elem(&pc_ctl_global, &k, &fresh,
					    BPF_NOEXIST);
	return bucket_take(b, now, PC_CTL_GLOBAL_RATE, PC_CTL_GLOBAL_BURST);
}

/* Is the port bound elsewhere than ifindex (controller.interfaces)? A
 * named interface missing now has entry 0, which no packet carries. */
static __always_inline bool ctl_wrong_iface(__u32 ifindex)
{
	struct pc_ctl_conf *conf;
	__u32 zero = 0;

	conf = bpf_map_lookup_elem(&pc_ctl_conf, &zero);
	if (!conf)
		return true;
	if (!conf->nbound)
		return false;
	for (int i = 0; i < PC_CTL_IFACES; i++)
		if (conf->ifindex[i] && conf->ifindex[i] == ifindex)
			return false;
	return true;
}

/*
 * The interface binding, then the buckets, for a datagram to the
 * controller port. Global, so its stack is not added to pc_decide's on the
 * deepest call chain (the verifier's 512 bytes); only datagrams to the
 * port pay the call.
 */
__noinline int pc_ctl_take(const struct pc_pkt *pkt, __u32 mgmt, __u32 ifindex)
{
	__u64 now;

	if (!pkt)	/* global-function pointers may be NULL to the verifier */
		return 0;
	if (ctl_wrong_iface(ifindex)) {
		ctl_stat(mgmt ? PC_CS_WRONG_IFACE_MGMT : PC_CS_WRONG_IFACE_OTHER);
		return 0;
	}
	now = bpf_ktime_get_coarse_ns();
	if (!mgmt && !source_take(pkt, ifindex, now)) {
		ctl_stat(PC_CS_SOURCE_LIMITED);
		return 0;
	}
	if (!class_take(mgmt, ifindex, now)) {
		ctl_stat(mgmt ? PC_CS_MGMT_LIMITED : PC_CS_OTHER_LIMITED);
		return 0;
	}
	ctl_stat(mgmt ? PC_CS_ADMITTED_MGMT : PC_CS_ADMITTED_OTHER);
	return 1;
}

/*
 * May this ingress packet, which the policy passes, reach the agent? Only
 * UDP to the controller port is rationed; everything else is admitted.
 * mgmt: it passed as management. Unreadable state drops (fail secure: the
 * heartbeats' path is the one being protected, not all traffic).
 */
static __always_inline bool ctl_admit(const struct pc_pkt *pkt, bool mgmt,
				      __u32 ifindex)
{
	struct pc_ctl_conf *conf;
	__u32 zero = 0;

	if (pkt->proto != IPPROTO_UDP_ || pkt->frag == FRAG_LATER)
		return true;
	conf = bpf_map_lookup_elem(&pc_ctl_conf, &zero);
	if (!conf || !conf->port || bpf_ntohs(pkt->dport) != conf->port)
		return true;
	return pc_ctl_take(pkt, mgmt, ifindex);
}

#endif /* PC_BPF_CTL_LIMIT_H */

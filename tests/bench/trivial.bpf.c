// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Floors for tests/bench/bench_pkt.c: programs that decide without
 * looking at the packet, so what they cost is what BPF_PROG_TEST_RUN
 * itself costs per packet on this machine (dispatch, timer, loop).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0

SEC("xdp")
int xdp_pass(struct xdp_md *ctx) { return XDP_PASS; }

SEC("xdp")
int xdp_drop(struct xdp_md *ctx) { return XDP_DROP; }

/* tc_egress runs on an skb: its floor is not XDP's. */
SEC("tc")
int tc_ok(struct __sk_buff *skb) { return TC_ACT_OK; }

char LICENSE[] SEC("license") = "Dual BSD/GPL";

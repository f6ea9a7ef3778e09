/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The egress guard's map, declared by the datapath and the guard alike. */
#ifndef PC_BPF_GUARD_MAPS_H
#define PC_BPF_GUARD_MAPS_H

/* What the egress guard refused, per CPU (enum pc_guard_refusal);
 * never touched by the datapath. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_G_COUNT);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_guard_stats SEC(".maps");

#endif /* PC_BPF_GUARD_MAPS_H */

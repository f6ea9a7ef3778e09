/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The maps the datapath (maps.h) and the backstop (backstop.bpf.c) share:
 * both objects declare them, so both must declare the very same maps. */
#ifndef PC_BPF_MAPS_BACKSTOP_H
#define PC_BPF_MAPS_BACKSTOP_H

/* Interfaces we are attached to: written by the agent once XDP and TC
 * are on; read by the backstop only, never by XDP/TC. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, PC_MAX_IFACES);
	__type(key, __u32);
	__type(value, struct pc_iface);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_ifaces SEC(".maps");

/* Packets and bytes the backstop dropped, per direction (enum pc_dir). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PC_DIR_COUNT);
	__type(key, __u32);
	__type(value, struct pc_counter);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} pc_backstop_stats SEC(".maps");

#endif /* PC_BPF_MAPS_BACKSTOP_H */

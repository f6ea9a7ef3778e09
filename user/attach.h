/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Loading the datapath and attaching it: XDP via a pinned bpf_link,
 * TC egress via clsact. */
#ifndef PC_ATTACH_H
#define PC_ATTACH_H

#include <stdbool.h>
#include "portcullis.h"

struct portcullis_bpf;

/* Open and load the skeleton with its maps pinned by name in pin_dir,
 * adopting maps already pinned there. verbose: libbpf debug output. */
int pc_datapath_load(const char *pin_dir, bool verbose,
		     struct portcullis_bpf **out);
/* 0 if ifname exists here and is Ethernet; else logs why. */
int pc_iface_check(const char *ifname);
/* Attach (or atomically replace) both programs on ifname. */
int pc_attach_iface(struct portcullis_bpf *skel, const char *pin_dir,
		    const char *ifname, enum pc_xdp_mode mode);
/* Detach from ifindex (entry of pc_ifaces) and forget it. force: an
 * entry of another network namespace loses its XDP link (links are
 * namespace-free) and its TC filter is left, with a warning. */
int pc_detach_iface(int ifaces_fd, const char *pin_dir, __u32 slot,
		    bool force);
/* Detach everywhere and remove the pins: enforcement stops. */
int pc_detach_all(const char *pin_dir, bool force);
const char *pc_xdp_mode_name(enum pc_xdp_mode m);
/* Where the XDP link of ifindex is pinned. */
void pc_xdp_link_path(char *buf, size_t len, const char *pin_dir,
		      __u32 ifindex);

#endif /* PC_ATTACH_H */

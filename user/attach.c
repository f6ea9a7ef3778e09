// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loading and attaching. XDP goes through a bpf_link pinned in the pin
 * dir, so it outlives us and a newer program replaces it atomically
 * (bpf_link_update). TC egress goes on clsact with BPF_TC_F_REPLACE at a
 * fixed handle/priority, which is atomic as well. Neither path ever
 * removes the old program before the new one is in place.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "backstop.h"
#include "guard.h"
#include "log.h"
#include "metrics.h"
#include "pins.h"
#include "portcullis.skel.h"

const char *pc_xdp_mode_name(enum pc_xdp_mode m)
{
	switch (m) {
	case PC_XDP_NATIVE: return "native";
	case PC_XDP_GENERIC: return "generic";
	default: return "auto";
	}
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list args)
{
	return vfprintf(stderr, fmt, args);
}

static int libbpf_print_quiet(enum libbpf_print_level level, const char *fmt,
			      va_list args)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, args);
}

int pc_datapath_load(const char *pin_dir, bool verbose,
		     struct portcullis_bpf **out)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct portcullis_bpf *skel;
	struct pc_maps m;
	int err;

	libbpf_set_print(verbose ? libbpf_print : libbpf_print_quiet);
	skel = portcullis_bpf__open_opts(&opts);
	if (!skel) {
		err = -errno;
		pr_warn("Couldn't open the BPF object: %s\n", strerror(-err));
		return err;
	}
	/* Maps already pinned in pin_dir are reused, so their contents (the
	 * live policy, the mode, the flows) carry over untouched. */
	err = portcullis_bpf__load(skel);
	if (err) {
		pr_warn("Couldn't load the BPF programs: %s(%d)%s\n",
			strerror(-err), err,
			err == -EINVAL ? " (pinned maps from an incompatible "
					 "version? see `portcullis detach`)" :
			err == -EPERM ? " (needs root: CAP_BPF and CAP_NET_ADMIN)" :
					"");
		portcullis_bpf__destroy(skel);
		return err;
	}
	/* Before attaching: the new programs must not count what the seed
	 * counts. Only a metric rides on it, so a failure does not stop us. */
	pc_maps_from_skel(skel, &m);
	err = pc_flow_stats_seed(&m);
	if (err)
		pr_warn("Couldn't seed %s from the live flow tables: %s(%d)\n",
			PC_MAP_FLOW_STATS, strerror(-err), err);
	*out = skel;
	return 0;
}

static __u64 netns_ino(void)
{
	struct stat st;

	return stat("/proc/self/ns/net", &st) ? 0 : st.st_ino;
}

void pc_xdp_link_path(char *buf, size_t len, const char *pin_dir,
		      __u32 ifindex)
{
	snprintf(buf, len, "%s/link_xdp_%u", pin_dir, ifindex);
}

/* Replace the program behind a pinned link, or create and pin a link. */
static int attach_xdp(struct portcullis_bpf *skel, const char *pin_dir,
		      const char *ifname, __u32 ifindex, enum pc_xdp_mode mode,
		      enum pc_xdp_mode *used)
{
	int prog_fd = bpf_program__fd(skel->progs.xdp_ingress);
	LIBBPF_OPTS(bpf_link_create_opts, opts);
	char path[PATH_MAX];
	int fd, err;

	pc_xdp_link_path(path, sizeof(path), pin_dir, ifindex);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		err = bpf_link_update(fd, prog_fd, NULL) ? -errno : 0;
		close(fd);
		if (err)
			pr_warn("Couldn't replace XDP program on iface '%s': %s(%d)\n",
				ifname, strerror(-err), err);
		return err;
	}

	opts.flags = mode == PC_XDP_GENERIC ? XDP_FLAGS_SKB_MODE :
						  XDP_FLAGS_DRV_MODE;
	fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	if (fd < 0 && mode == PC_XDP_AUTO && errno != EBUSY && errno != EEXIST) {
		pr_info("iface '%s': no native XDP (%s), using generic\n", ifname,
			strerror(errno));
		opts.flags = XDP_FLAGS_SKB_MODE;
		fd = bpf_link_create(prog_fd, ifindex, BPF_XDP, &opts);
	}
	if (fd < 0) {
		err = -errno;
		pr_warn("Couldn't attach XDP program on iface '%s': %s(%d)%s\n",
			ifname, strerror(-err), err,
			err == -EBUSY || err == -EEXIST ?
			" (another XDP program is attached; remove it first)" : "");
		return err;
	}
	*used = opts.flags == XDP_FLAGS_SKB_MODE ? PC_XDP_GENERIC : PC_XDP_NATIVE;
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		pr_warn("Couldn't pin XDP link at '%s': %s\n", path, strerror(-err));
		bpf_link_detach(fd);
		close(fd);
		return err;
	}
	close(fd);
	return 0;
}

static int attach_tc(struct portcullis_bpf *skel, const char *ifname,
		     __u32 ifindex, bool *created)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex,
		    .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = PC_TC_HANDLE,
		    .priority = PC_TC_PRIO, .flags = BPF_TC_F_REPLACE,
		    .prog_fd = bpf_program__fd(skel->progs.tc_egress));
	int err;

	err = bpf_tc_hook_create(&hook);
	if (err && err != -EEXIST) {
		pr_warn("Couldn't create clsact on iface '%s': %s(%d)\n", ifname,
			strerror(-err), err);
		return err;
	}
	*created = !err;
	err = bpf_tc_attach(&hook, &opts);
	if (err)
		pr_warn("Couldn't attach TC egress program on iface '%s': %s(%d)\n",
			ifname, strerror(-err), err);
	return err;
}

/* The parser starts at an Ethernet header: on an L3 device (tun,
 * WireGuard) every frame would look malformed and be dropped. Say so. */
int pc_iface_check(const char *ifname)
{
	struct ifreq ifr = {};
	int fd, err = 0;

	if (!if_nametoindex(ifname)) {
		pr_warn("Interface '%s' not found: %s\n", ifname, strerror(errno));
		return -ENODEV;
	}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		err = -errno;
	else if (ifr.ifr_hwaddr.sa_family != ARPHRD_ETHER)
		err = -EPROTONOSUPPORT;
	close(fd);
	if (err == -EPROTONOSUPPORT)
		pr_warn("Interface '%s' is not Ethernet (link type %u): only "
			"Ethernet interfaces are supported\n", ifname,
			ifr.ifr_hwaddr.sa_family);
	else if (err)
		pr_warn("Couldn't read the link type of '%s': %s\n", ifname,
			strerror(-err));
	return err;
}

/*
 * Our entry for this interface in this namespace -- by ifindex, or by
 * name for a link re-created under its old name -- else a free one, else
 * -ENOSPC.
 */
static int iface_slot(int fd, const char *ifname, __u32 ifindex, __u64 ns,
		      struct pc_iface *cur)
{
	int free_slot = -ENOSPC;

	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		if (bpf_map_lookup_elem(fd, &i, cur))
			return -errno;
		if (cur->netns_ino == ns && cur->ifindex &&
		    (cur->ifindex == ifindex || !strcmp(cur->name, ifname)))
			return i;
		if (!cur->ifindex && free_slot < 0)
			free_slot = i;
	}
	memset(cur, 0, sizeof(*cur));
	return free_slot;
}

int pc_attach_iface(struct portcullis_bpf *skel, const char *pin_dir,
		    const char *ifname, enum pc_xdp_mode mode)
{
	int fd = bpf_map__fd(skel->maps.pc_ifaces);
	__u32 ifindex = if_nametoindex(ifname);
	struct pc_iface cur;
	enum pc_xdp_mode used;
	bool created = false;
	__u64 ns = netns_ino();
	int slot, err;

	if (!ifindex) {
		pr_warn("Interface '%s' not found: %s\n", ifname, strerror(errno));
		return -ENODEV;
	}
	err = pc_iface_check(ifname);
	if (err)
		return err;
	slot = iface_slot(fd, ifname, ifindex, ns, &cur);
	if (slot < 0) {
		pr_warn("Couldn't record iface '%s': %s (at most %d interfaces)\n",
			ifname, strerror(-slot), PC_MAX_IFACES);
		return slot;
	}
	if (cur.ifindex && cur.ifindex != ifindex) {
		char old[PATH_MAX];

		/* The old link died with its interface; forget its pin. */
		pc_xdp_link_path(old, sizeof(old), pin_dir, cur.ifindex);
		unlink(old);
		memset(&cur, 0, sizeof(cur));
	}
	used = cur.ifindex ? cur.xdp_mode : PC_XDP_AUTO;
	/* Egress first: when both are new, the host is never filtered on
	 * ingress only, where replies to its unfiltered sends would drop. */
	err = attach_tc(skel, ifname, ifindex, &created);
	if (!err)
		err = attach_xdp(skel, pin_dir, ifname, ifindex, mode, &used);
	if (err)
		return err;

	cur.ifindex = ifindex;
	cur.netns_ino = ns;
	cur.xdp_mode = used;
	cur.tc_attached = 1;
	cur.clsact_created |= created;
	snprintf(cur.name, sizeof(cur.name), "%s", ifname);
	if (bpf_map_update_elem(fd, &slot, &cur, BPF_ANY))
		return -errno;
	pr_debug("attached to '%s' (ifindex %u, xdp %s)\n", ifname, ifindex,
		 pc_xdp_mode_name(used));
	return 0;
}

int pc_detach_iface(int ifaces_fd, const char *pin_dir, __u32 slot,
		    bool force)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, opts, .handle = PC_TC_HANDLE,
		    .priority = PC_TC_PRIO);
	struct pc_iface cur, empty = {};
	char path[PATH_MAX];
	int fd, err = 0;

	if (bpf_map_lookup_elem(ifaces_fd, &slot, &cur))
		return -errno;
	if (!cur.ifindex)
		return 0;
	if (cur.netns_ino != netns_ino()) {
		if (!force) {
			pr_warn("iface '%s' was attached from another network "
				"namespace; run this there (nsenter --net=...), or "
				"--force if that namespace is gone\n", cur.name);
			return -EXDEV;
		}
		pr_warn("iface '%s' is in another network namespace: its XDP link "
			"is detached, its TC egress filter (if the namespace still "
			"exists) is not\n", cur.name);
	}
	/* Force the link off even while a running daemon holds its fd. */
	pc_xdp_link_path(path, sizeof(path), pin_dir, cur.ifindex);
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		if (bpf_link_detach(fd))
			err = -errno;
		close(fd);
		unlink(path);
	}
	hook.ifindex = cur.ifindex;
	if (cur.netns_ino != netns_ino())
		goto forget;	/* an ifindex here would be another link */
	bpf_tc_detach(&hook, &opts);	/* -ENOENT if the iface is gone */
	if (cur.clsact_created) {
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
forget:
	if (err)
		pr_warn("Couldn't detach XDP from '%s': %s\n", cur.name,
			strerror(-err));
	bpf_map_update_elem(ifaces_fd, &slot, &empty, BPF_ANY);
	return err;
}

int pc_detach_all(const char *pin_dir, bool force)
{
	struct pc_maps m;
	struct dirent *de;
	char path[PATH_MAX];
	DIR *dir;
	int err, ret = 0;

	err = pc_maps_open_pinned(pin_dir, &m);
	if (err)
		return err;
	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		err = pc_detach_iface(m.ifaces, pin_dir, i, force);
		if (err && !ret)
			ret = err;
	}
	pc_maps_close(&m);
	if (ret)
		return ret;	/* keep the pins: nothing half-removed */
	/* The backstop's links: off now, even if an agent still holds them
	 * (with the records gone it would pass everything anyway). */
	ret = pc_backstop_detach(pin_dir);
	if (ret)
		return ret;
	ret = pc_guard_detach(pin_dir);

	dir = opendir(pin_dir);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_dir, de->d_name);
		if (unlink(path) && !ret)
			ret = -errno;
	}
	closedir(dir);
	if (!ret && rmdir(pin_dir))
		ret = -errno;
	return ret;
}

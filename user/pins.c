// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include "pins.h"
#include "portcullis.skel.h"

#define BPF_FS "/sys/fs/bpf"

const char *pc_pin_dir(const char *opt)
{
	const char *env = getenv("PORTCULLIS_PIN_DIR");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	return PC_DEFAULT_PIN_DIR;
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return !statfs(path, &st) && st.f_type == BPF_FS_MAGIC;
}

int pc_pin_dir_prepare(const char *pin_dir)
{
	if (!is_bpffs(BPF_FS)) {
		/* As bpftool and cilium do: pins need a bpffs to live in. */
		if (mount("bpf", BPF_FS, "bpf", 0, "mode=0700")) {
			int err = -errno;

			fprintf(stderr, "Couldn't mount bpffs on %s: %s\n",
				BPF_FS, strerror(-err));
			return err;
		}
	}
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		int err = -errno;

		fprintf(stderr, "Couldn't create pin dir '%s': %s\n", pin_dir,
			strerror(-err));
		return err;
	}
	if (!is_bpffs(pin_dir)) {
		fprintf(stderr, "Pin dir '%s' is not on a bpf filesystem\n",
			pin_dir);
		return -EINVAL;
	}
	return 0;
}

static int open_one(const char *pin_dir, const char *name)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, name);
	return bpf_obj_get(path);
}

int pc_maps_open_pinned(const char *pin_dir, struct pc_maps *m)
{
	struct { int *fd; const char *name; } all[] = {
		{ &m->state, PC_MAP_STATE },
		{ &m->settings, PC_MAP_SETTINGS },
		{ &m->addr4, PC_MAP_ADDR4 },
		{ &m->addr6, PC_MAP_ADDR6 },
		{ &m->ports, PC_MAP_PORTS },
		{ &m->flows, PC_MAP_FLOWS },
		{ &m->frags, PC_MAP_FRAGS },
		{ &m->reason_stats, PC_MAP_REASON_STATS },
		{ &m->rule_stats, PC_MAP_RULE_STATS },
		{ &m->rule_meta, PC_MAP_RULE_META },
		{ &m->ifaces, PC_MAP_IFACES },
		{ &m->deadman, PC_MAP_DEADMAN },
		{ &m->events, PC_MAP_EVENTS },
		{ &m->transitions, PC_MAP_TRANSITIONS },
		{ &m->agent_stats, PC_MAP_AGENT_STATS },
		{ &m->drops, PC_MAP_DROPS },
		{ &m->backstop_stats, PC_MAP_BACKSTOP_STATS },
	};
	struct { int *fd; const char *name; } optional[] = {
		{ &m->guard_stats, PC_MAP_GUARD_STATS },
		{ &m->cuts, PC_MAP_CUTS },
		{ &m->host_events, PC_MAP_HOST_EVENTS },
		{ &m->flows_peer, PC_MAP_FLOWS_PEER },
		{ &m->mgmt_if, PC_MAP_MGMT_IF },
		{ &m->ctl_conf, PC_MAP_CTL_CONF },
		{ &m->ctl_stats, PC_MAP_CTL_STATS },
		{ &m->flow_stats, PC_MAP_FLOW_STATS },
	};
	size_t i;

	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++)
		*optional[i].fd = -1;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		*all[i].fd = -1;
	for (i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		*all[i].fd = open_one(pin_dir, all[i].name);
		/* Newer than the rest: pins of an older agent lack it. */
		if (*all[i].fd < 0 && all[i].fd == &m->backstop_stats)
			continue;
		if (*all[i].fd < 0) {
			int err = -errno;

			pc_maps_close(m);
			return err;
		}
	}
	/* Optional: the pins of an agent older than the egress guard, the
	 * cut epochs, the host events or the peer flow table lack them, and the
	 * CLI (break-glass included) must still work on them. */
	for (i = 0; i < sizeof(optional) / sizeof(optional[0]); i++) {
		*optional[i].fd = open_one(pin_dir, optional[i].name);
		if (*optional[i].fd < 0 && errno != ENOENT) {
			int err = -errno;

			pc_maps_close(m);
			return err;
		}
	}
	return 0;
}

void pc_maps_from_skel(struct portcullis_bpf *skel, struct pc_maps *m)
{
	m->state = bpf_map__fd(skel->maps.pc_state);
	m->settings = bpf_map__fd(skel->maps.pc_settings);
	m->addr4 = bpf_map__fd(skel->maps.pc_addr4);
	m->addr6 = bpf_map__fd(skel->maps.pc_addr6);
	m->ports = bpf_map__fd(skel->maps.pc_ports);
	m->flows = bpf_map__fd(skel->maps.pc_flows);
	m->flows_peer = bpf_map__fd(skel->maps.pc_flows_peer);
	m->frags = bpf_map__fd(skel->maps.pc_frags);
	m->reason_stats = bpf_map__fd(skel->maps.pc_reason_stats);
	m->rule_stats = bpf_map__fd(skel->maps.pc_rule_stats);
	m->rule_meta = bpf_map__fd(skel->maps.pc_rule_meta);
	m->ifaces = bpf_map__fd(skel->maps.pc_ifaces);
	m->deadman = bpf_map__fd(skel->maps.pc_deadman);
	m->events = bpf_map__fd(skel->maps.pc_events);
	m->transitions = bpf_map__fd(skel->maps.pc_transitions);
	m->agent_stats = bpf_map__fd(skel->maps.pc_agent_stats);
	m->drops = bpf_map__fd(skel->maps.pc_drops);
	m->cuts = bpf_map__fd(skel->maps.pc_cuts);
	m->guard_stats = bpf_map__fd(skel->maps.pc_guard_stats);
	m->backstop_stats = bpf_map__fd(skel->maps.pc_backstop_stats);
	m->host_events = bpf_map__fd(skel->maps.pc_host_events);
	m->mgmt_if = bpf_map__fd(skel->maps.pc_mgmt_if);
	m->ctl_conf = bpf_map__fd(skel->maps.pc_ctl_conf);
	m->ctl_stats = bpf_map__fd(skel->maps.pc_ctl_stats);
	m->flow_stats = bpf_map__fd(skel->maps.pc_flow_stats);
}

void pc_maps_close(struct pc_maps *m)
{
	int *fds = (int *)m;

	for (size_t i = 0; i < sizeof(*m) / sizeof(int); i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int pc_lock(const char *pin_dir)
{
	int fd = open(pin_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX)) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

void pc_unlock(int fd)
{
	if (fd >= 0)
		close(fd);	/* closing drops the flock */
}

int pc_state_get(const struct pc_maps *m, enum pc_state_key k, __u32 *val)
{
	__u32 key = k;

	return bpf_map_lookup_elem(m->state, &key, val) ? -errno : 0;
}

int pc_state_set(const struct pc_maps *m, enum pc_state_key k, __u32 val)
{
	__u32 key = k;

	return bpf_map_update_elem(m->state, &key, &val, BPF_ANY) ? -errno : 0;
}

static __u32 mode_enforced(__u32 mode)
{
	return mode < PC_MODE_COUNT ? mode : PC_MODE_QUARANTINE;
}

/*
 * The epoch first: a packet that sees the new epoch under the old mode is
 * re-decided under the new one early, never late. Read-modify-write: a
 * dead-man trip counted by the datapath at the same instant may be lost,
 * and is then counted again at its next packet (dm_trip is rewritten too).
 */
int pc_mode_write(const struct pc_maps *m, __u32 mode)
{
	__u32 old = PC_MODE_NORMAL, to = mode_enforced(mode), key = 0;
	struct pc_cuts c;

	pc_state_get(m, PC_STATE_MODE, &old);
	/* No pc_cuts: pins of a datapath that predates cut epochs. */
	if (m->cuts >= 0 && to != PC_MODE_NORMAL && to != mode_enforced(old)) {
		if (bpf_map_lookup_elem(m->cuts, &key, &c))
			return -errno;
		c.epoch[to]++;
		if (bpf_map_update_elem(m->cuts, &key, &c, BPF_ANY))
			return -errno;
	}
	return pc_state_set(m, PC_STATE_MODE, mode);
}

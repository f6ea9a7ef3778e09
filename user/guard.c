// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loading the egress guard and keeping its link pinned. A new agent
 * attaches its own program first, then renames its pin over the old one:
 * the old link detaches only once the new one is attached, and both
 * refuse the same options meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "guard.h"
#include "guard.skel.h"

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE	71
#endif

static const char *const refusal_names[PC_G_COUNT] = {
	[PC_G_QDISC_BYPASS] = "qdisc_bypass",
	[PC_G_XDP_SETUP] = "af_xdp_setup",
};

const char *pc_guard_refusal_name(enum pc_guard_refusal r)
{
	return r < PC_G_COUNT ? refusal_names[r] : "unknown";
}

/* The kernel's cookie for our network namespace (Linux 5.14+). */
static int netns_cookie(__u64 *cookie)
{
	socklen_t len = sizeof(*cookie);
	int fd, err = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &len))
		err = -errno;
	close(fd);
	return err;
}

/*
 * How far above our cgroup namespace's root a mountinfo root lies: "/" 0,
 * "/.." 1, "/../.." 2 (a mount of the host's hierarchy seen from inside a
 * container); -1 for a subtree ("/system.slice"), which is no ancestor.
 */
static int ancestor_levels(const char *root)
{
	int n = 0;

	while (!strncmp(root, "/..", 3)) {
		root += 3;
		n++;
	}
	if (!strcmp(root, "/"))
		return n;
	return *root ? -1 : n;
}

int pc_guard_cgroup_pick(FILE *mountinfo, char *path, size_t len)
{
	char line[1024], root[512], mnt[512];
	int best = -1, n;

	while (fgets(line, sizeof(line), mountinfo)) {
		if (!strstr(line, " - cgroup2 ") ||
		    sscanf(line, "%*s %*s %*s %511s %511s", root, mnt) != 2)
			continue;
		n = ancestor_levels(root);
		if (n > best) {
			snprintf(path, len, "%s", mnt);
			best = n;
		}
	}
	return best < 0 ? -ENOENT : 0;
}

static int cgroup2_top(char *path, size_t len)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	int err;

	if (!f)
		return -errno;
	err = pc_guard_cgroup_pick(f, path, len);
	fclose(f);
	return err;
}

/* The id of the cgroup a cgroup link is attached to; 0 if none. */
static __u64 link_cgroup_id(int link_fd)
{
	struct bpf_link_info info = {};
	__u32 info_len = sizeof(info);

	if (bpf_obj_get_info_by_fd(link_fd, &info, &info_len))
		return 0;
	return info.cgroup.cgroup_id;
}

/* Pin fd at path in place of whatever is pinned there, in one rename. */
static int pin_replace(int fd, const char *path)
{
	char tmp[PATH_MAX + 8];
	int err;

	snprintf(tmp, sizeof(tmp), "%s_new", path);	/* bpffs refuses dots */
	unlink(tmp);
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
		return err;
	}
	return 0;
}

static void link_path(char *buf, size_t len, const char *pin_dir)
{
	snprintf(buf, len, "%s/%s", pin_dir, PC_GUARD_LINK);
}

int pc_guard_start(struct pc_guard *g, const char *pin_dir, char *why,
		   size_t len)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	char cg[PATH_MAX], path[PATH_MAX];
	__u64 cookie = 0, cg_id;
	int cg_fd, err;

	memset(g, 0, sizeof(*g));
	err = netns_cookie(&cookie);
	if (err) {
		snprintf(why, len, "no network namespace cookie (SO_NETNS_COOKIE, "
			 "Linux 5.14): %s", strerror(-err));
		return err;
	}
	err = cgroup2_top(cg, sizeof(cg));
	if (err) {
		snprintf(why, len, "no cgroup v2 hierarchy mounted: %s",
			 strerror(-err));
		return err;
	}
	/* pc_guard_stats: the datapath's pin, reused by name. */
	g->skel = guard_bpf__open_opts(&opts);
	if (!g->skel) {
		err = -errno;
		snprintf(why, len, "cannot open the guard: %s", strerror(-err));
		return err;
	}
	g->skel->rodata->guard_netns = cookie;
	err = guard_bpf__load(g->skel);
	if (err) {
		snprintf(why, len, "cannot load the guard: %s(%d)", strerror(-err),
			 err);
		goto fail;
	}
	cg_fd = open(cg, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		err = -errno;
		snprintf(why, len, "cannot open cgroup %s: %s", cg, strerror(-err));
		goto fail;
	}
	g->link = bpf_program__attach_cgroup(g->skel->progs.guard_setsockopt,
					     cg_fd);
	err = g->link ? 0 : -errno;
	close(cg_fd);
	if (err) {
		snprintf(why, len, "cannot attach to cgroup %s: %s(%d)", cg,
			 strerror(-err), err);
		goto fail;
	}
	link_path(path, sizeof(path), pin_dir);
	err = pin_replace(bpf_link__fd(g->link), path);
	if (err) {
		snprintf(why, len, "cannot pin %s: %s", path, strerror(-err));
		goto fail;
	}
	cg_id = link_cgroup_id(bpf_link__fd(g->link));
	if (cg_id != PC_CGROUP_ROOT_ID) {
		snprintf(why, len, "attached to cgroup %s (id %llu), not to the root "
			 "of the cgroup hierarchy: processes outside it are not "
			 "covered (a container's own cgroup namespace? mount the "
			 "host's /sys/fs/cgroup in)", cg, (unsigned long long)cg_id);
		return 1;
	}
	snprintf(why, len, "cgroup %s, network namespace cookie %llu", cg,
		 (unsigned long long)cookie);
	return 0;
fail:
	pc_guard_close(g);
	return err;
}

int pc_guard_repin(const struct pc_guard *g, const char *pin_dir)
{
	char path[PATH_MAX];

	if (!g->link)
		return 0;
	link_path(path, sizeof(path), pin_dir);
	if (bpf_obj_pin(bpf_link__fd(g->link), path) && errno != EEXIST)
		return -errno;
	return 0;
}

void pc_guard_close(struct pc_guard *g)
{
	/* Closing a link's fd leaves it attached while its pin holds it. */
	bpf_link__destroy(g->link);
	guard_bpf__destroy(g->skel);
	memset(g, 0, sizeof(*g));
}

int pc_guard_detach(const char *pin_dir)
{
	char path[PATH_MAX];
	int fd, err = 0;

	link_path(path, sizeof(path), pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	/* Off now, even while a running agent still holds its fd. */
	if (bpf_link_detach(fd))
		err = -errno;
	close(fd);
	if (unlink(path) && !err)
		err = -errno;
	return err;
}

__u64 pc_guard_cgroup(const char *pin_dir)
{
	char path[PATH_MAX];
	__u64 id;
	int fd;

	link_path(path, sizeof(path), pin_dir);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	/* A detached cgroup link keeps its pin but no cgroup. */
	id = link_cgroup_id(fd);
	close(fd);
	return id;
}

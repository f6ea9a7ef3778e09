// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loading the backstop and hooking it into netfilter. libbpf 1.1 has
 * neither the "netfilter" section nor a helper for its links, so the
 * program type is set by hand and the links are made with the raw
 * BPF_LINK_CREATE attributes of Linux 6.4. A netfilter link cannot swap
 * its program (no bpf_link_update), so a restart replaces one by hooking
 * the new link in beside the old (at the other of our two priorities: the
 * kernel refuses two BPF hooks at one) and renaming its pin over the old
 * pin: both run for that instant, dropping the same things; neither is
 * ever missing.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <linux/bpf.h>
#include <linux/netfilter.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "backstop.h"
#include "backstop.skel.h"

/* Linux 6.4 UAPI, newer than Debian 12's headers (vmlinux.h has them). */
#define PC_BPF_PROG_TYPE_NETFILTER	32
#define PC_BPF_NETFILTER		45
#define PC_BPF_LINK_TYPE_NETFILTER	10
#define NO_NF_LINKS_HINT " (needs Linux >= 6.4 with CONFIG_NETFILTER_BPF_LINK)"

/* union bpf_attr's link_create with its netfilter member. */
struct nf_link_create_attr {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u32 pf;		/* NFPROTO_IPV4 / NFPROTO_IPV6 */
	__u32 hooknum;		/* NF_INET_PRE_ROUTING ... */
	__s32 priority;
	__u32 nf_flags;		/* no BPF_F_NETFILTER_IP_DEFRAG: fragments
				 * are dropped one by one like the rest */
};

/* bpf_link_info with its netfilter member. */
struct nf_link_info {
	__u32 type;
	__u32 id;
	__u32 prog_id;
	__u32 pad;
	__u32 pf;
	__u32 hooknum;
	__s32 priority;
	__u32 flags;
};

static const struct {
	const char *pin;
	__u32 pf;
	__u32 hook;
} links[PC_BACKSTOP_LINKS] = {
	{ "link_nf_ipv4_in", NFPROTO_IPV4, NF_INET_PRE_ROUTING },
	{ "link_nf_ipv4_out", NFPROTO_IPV4, NF_INET_POST_ROUTING },
	{ "link_nf_ipv6_in", NFPROTO_IPV6, NF_INET_PRE_ROUTING },
	{ "link_nf_ipv6_out", NFPROTO_IPV6, NF_INET_POST_ROUTING },
};

static void pin_path(char *buf, size_t len, const char *pin_dir, int i,
		     const char *suffix)
{
	snprintf(buf, len, "%s/%s%s", pin_dir, links[i].pin, suffix);
}

/* A netfilter link of ours pinned at path: 0 and its info, else -errno. */
static int pinned_info(const char *path, struct nf_link_info *info)
{
	__u32 len = sizeof(*info);
	int fd, err = 0;

	memset(info, 0, sizeof(*info));
	fd = bpf_obj_get(path);
	if (fd < 0)
		return -errno;
	if (bpf_obj_get_info_by_fd(fd, info, &len))
		err = -errno;
	else if (info->type != PC_BPF_LINK_TYPE_NETFILTER)
		err = -EINVAL;
	close(fd);
	return err;
}

static int nf_link_create(int prog_fd, const char *pin_dir, int i)
{
	struct nf_link_create_attr attr = {
		.prog_fd = prog_fd,
		.attach_type = PC_BPF_NETFILTER,
		.pf = links[i].pf,
		.hooknum = links[i].hook,
		.priority = PC_BACKSTOP_PRIORITY,
	};
	struct nf_link_info old;
	char path[PATH_MAX];
	int fd;

	pin_path(path, sizeof(path), pin_dir, i, "");
	if (!pinned_info(path, &old) && old.priority == PC_BACKSTOP_PRIORITY)
		attr.priority = PC_BACKSTOP_PRIORITY_ALT;
	fd = syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
	return fd < 0 ? -errno : fd;
}

/* Pin fd as link i, replacing what was pinned there in one rename. */
static int pin_replace(const char *pin_dir, int i, int fd)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int err = 0;

	pin_path(tmp, sizeof(tmp), pin_dir, i, "_new");	/* bpffs refuses dots */
	pin_path(path, sizeof(path), pin_dir, i, "");
	unlink(tmp);	/* left by an agent killed right here */
	if (bpf_obj_pin(fd, tmp))
		return -errno;
	if (rename(tmp, path)) {
		err = -errno;
		unlink(tmp);
	}
	return err;
}

static int load(const char *pin_dir, struct backstop_bpf **out, char *err,
		size_t errlen)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts, .pin_root_path = pin_dir);
	struct backstop_bpf *skel;
	int ret;

	skel = backstop_bpf__open_opts(&opts);
	if (!skel) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the backstop object: %s",
			 strerror(-ret));
		return ret;
	}
	bpf_program__set_type(skel->progs.pc_backstop,
			      (enum bpf_prog_type)PC_BPF_PROG_TYPE_NETFILTER);
	bpf_program__set_expected_attach_type(skel->progs.pc_backstop,
					      (enum bpf_attach_type)PC_BPF_NETFILTER);
	ret = backstop_bpf__load(skel);
	if (ret) {
		snprintf(err, errlen, "the kernel refused the netfilter program%s: %s",
			 ret == -EINVAL ? NO_NF_LINKS_HINT : "", strerror(-ret));
		backstop_bpf__destroy(skel);
		return ret == -EINVAL ? -EOPNOTSUPP : ret;
	}
	*out = skel;
	return 0;
}

int pc_backstop_install(const char *pin_dir, int fds[PC_BACKSTOP_LINKS],
			char *err, size_t errlen)
{
	struct backstop_bpf *skel;
	int ret, first = 0;

	for (int i = 0; i < PC_BACKSTOP_LINKS; i++)
		fds[i] = -1;
	ret = load(pin_dir, &skel, err, errlen);
	if (ret)
		return ret;
	for (int i = 0; i < PC_BACKSTOP_LINKS; i++) {
		int fd = nf_link_create(bpf_program__fd(skel->progs.pc_backstop),
					pin_dir, i);

		ret = fd < 0 ? fd : pin_replace(pin_dir, i, fd);
		if (!ret) {
			fds[i] = fd;
			continue;
		}
		if (fd >= 0)
			close(fd);	/* unpinned: detaches on close */
		if (!first) {
			first = ret == -EINVAL ? -EOPNOTSUPP : ret;
			snprintf(err, errlen, "%s: %s%s: %s", links[i].pin,
				 fd < 0 ? "the kernel refused the netfilter link" :
					  "cannot pin the netfilter link",
				 fd == -EINVAL ? NO_NF_LINKS_HINT : "",
				 strerror(-ret));
		}
	}
	/* The links hold the program; the maps stay pinned. */
	backstop_bpf__destroy(skel);
	return first;
}

int pc_backstop_repin(const char *pin_dir, const int fds[PC_BACKSTOP_LINKS])
{
	char path[PATH_MAX];

	for (int i = 0; i < PC_BACKSTOP_LINKS; i++) {
		if (fds[i] < 0)
			continue;
		pin_path(path, sizeof(path), pin_dir, i, "");
		if (bpf_obj_pin(fds[i], path) && errno != EEXIST)
			return -errno;
	}
	return 0;
}

void pc_backstop_close(int fds[PC_BACKSTOP_LINKS])
{
	for (int i = 0; i < PC_BACKSTOP_LINKS; i++) {
		if (fds[i] >= 0)
			close(fds[i]);
		fds[i] = -1;
	}
}

int pc_backstop_detach(const char *pin_dir)
{
	char path[PATH_MAX];
	int ret = 0;

	for (int i = 0; i < PC_BACKSTOP_LINKS; i++) {
		int fd;

		pin_path(path, sizeof(path), pin_dir, i, "_new");
		unlink(path);
		pin_path(path, sizeof(path), pin_dir, i, "");
		fd = bpf_obj_get(path);
		if (fd < 0)
			continue;
		/* Off now, even while a running agent holds the link. */
		if (bpf_link_detach(fd) && !ret)
			ret = -errno;
		close(fd);
		if (unlink(path) && !ret)
			ret = -errno;
	}
	return ret;
}

int pc_backstop_count(const char *pin_dir)
{
	char path[PATH_MAX];
	int n = 0;

	for (int i = 0; i < PC_BACKSTOP_LINKS; i++) {
		struct nf_link_info info;

		pin_path(path, sizeof(path), pin_dir, i, "");
		n += !pinned_info(path, &info);
	}
	return n;
}

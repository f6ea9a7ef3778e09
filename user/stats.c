// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "stats.h"

static const char *const reason_names[PC_REASON_COUNT] = {
	[PC_R_PASS_RULE] = "pass_rule",
	[PC_R_PASS_MGMT] = "pass_management",
	[PC_R_PASS_DEFAULT] = "pass_default",
	[PC_R_PASS_FLOW] = "pass_established",
	[PC_R_PASS_RELATED] = "pass_related_icmp",
	[PC_R_PASS_FRAG] = "pass_fragment",
	[PC_R_PASS_ARP] = "pass_arp",
	[PC_R_PASS_ND] = "pass_nd",
	[PC_R_PASS_AUDIT] = "pass_audit",
	[PC_R_DROP_DEFAULT] = "drop_default",
	[PC_R_DROP_DENY] = "drop_deny_rule",
	[PC_R_DROP_LOCKDOWN] = "drop_lockdown",
	[PC_R_DROP_QUARANTINE] = "drop_quarantine",
	[PC_R_DROP_MALFORMED] = "drop_malformed",
	[PC_R_DROP_FRAGMENT] = "drop_fragment",
	[PC_R_DROP_L2] = "drop_non_ip",
	[PC_R_DROP_NOPOLICY] = "drop_no_policy",
	[PC_R_DROP_DEADMAN] = "drop_deadman",
};

const char *pc_reason_name(enum pc_reason r)
{
	return r < PC_REASON_COUNT ? reason_names[r] : "unknown";
}

int pc_percpu_counter(int fd, __u32 key, struct pc_counter *out)
{
	int ncpus = libbpf_num_possible_cpus();
	struct pc_counter *vals;
	int err = 0;

	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	out->packets = out->bytes = 0;
	if (bpf_map_lookup_elem(fd, &key, vals)) {
		err = -errno;
	} else {
		for (int i = 0; i < ncpus; i++) {
			out->packets += vals[i].packets;
			out->bytes += vals[i].bytes;
		}
	}
	free(vals);
	return err;
}

__u64 pc_percpu_u64(int fd, __u32 key)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals, sum = 0;

	if (fd < 0 || ncpus <= 0)
		return 0;
	vals = calloc(ncpus, sizeof(*vals));
	if (vals && !bpf_map_lookup_elem(fd, &key, vals))
		for (int i = 0; i < ncpus; i++)
			sum += vals[i];
	free(vals);
	return sum;
}

int pc_reason_counter(const struct pc_maps *m, enum pc_dir dir,
		      enum pc_reason r, struct pc_counter *out)
{
	return pc_percpu_counter(m->reason_stats, PC_REASON_KEY(dir, r), out);
}

int pc_rule_counter(const struct pc_maps *m, __u32 slot, __u32 rule,
		    struct pc_counter *out)
{
	return pc_percpu_counter(m->rule_stats, PC_RULE_KEY(slot, rule), out);
}

int pc_backstop_counter(const struct pc_maps *m, enum pc_dir dir,
			struct pc_counter *out)
{
	if (m->backstop_stats < 0)
		return -ENOENT;
	return pc_percpu_counter(m->backstop_stats, dir, out);
}

int pc_guard_counts(const struct pc_maps *m, __u64 out[PC_G_COUNT])
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *vals;
	int err = 0;

	for (__u32 k = 0; k < PC_G_COUNT; k++)
		out[k] = 0;
	if (m->guard_stats < 0)
		return -ENOENT;
	if (ncpus <= 0)
		return ncpus ? ncpus : -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 k = 0; k < PC_G_COUNT; k++) {
		if (bpf_map_lookup_elem(m->guard_stats, &k, vals)) {
			err = -errno;
			continue;
		}
		for (int i = 0; i < ncpus; i++)
			out[k] += vals[i];
	}
	free(vals);
	return err;
}

static const struct {
	const char *cls, *result;
} ctl_stat_names[PC_CS_COUNT] = {
	[PC_CS_ADMITTED_MGMT] = { "management", "admitted" },
	[PC_CS_ADMITTED_OTHER] = { "other", "admitted" },
	[PC_CS_SOURCE_LIMITED] = { "other", "source_limited" },
	[PC_CS_MGMT_LIMITED] = { "management", "class_limited" },
	[PC_CS_OTHER_LIMITED] = { "other", "class_limited" },
	[PC_CS_WRONG_IFACE_MGMT] = { "management", "wrong_interface" },
	[PC_CS_WRONG_IFACE_OTHER] = { "other", "wrong_interface" },
};

const char *pc_ctl_stat_class(enum pc_ctl_stat s)
{
	return (unsigned int)s < PC_CS_COUNT ? ctl_stat_names[s].cls : "unknown";
}

const char *pc_ctl_stat_result(enum pc_ctl_stat s)
{
	return (unsigned int)s < PC_CS_COUNT ? ctl_stat_names[s].result :
					       "unknown";
}

int pc_ctl_read(const struct pc_maps *m, __u32 *port, __u64 out[PC_CS_COUNT])
{
	struct pc_ctl_conf conf = {};
	__u32 zero = 0;

	*port = 0;
	for (int i = 0; i < PC_CS_COUNT; i++)
		out[i] = pc_percpu_u64(m->ctl_stats, i);
	if (m->ctl_conf < 0)
		return 0;
	if (bpf_map_lookup_elem(m->ctl_conf, &zero, &conf))
		return -errno;
	*port = conf.port;
	return 0;
}

int pc_ctl_configure(const struct pc_maps *m, const struct pc_ctl_conf *conf)
{
	__u32 zero = 0;

	if (m->ctl_conf < 0)
		return -EOPNOTSUPP;
	return bpf_map_update_elem(m->ctl_conf, &zero, conf, BPF_ANY) ? -errno : 0;
}

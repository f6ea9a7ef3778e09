// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * pc_mgmt_if contents (bpf/mgmt_if.h): (slot, 0) -> the bound entries,
 * (slot, ifindex) -> the bound entries that match there.
 */
#include <errno.h>
#include <string.h>
#include <net/if.h>
#include <bpf/bpf.h>
#include "mgmt_if.h"

static bool ruleset_empty(const struct pc_ruleset *rs)
{
	for (int w = 0; w < PC_RULE_WORDS; w++)
		if (rs->bits[w])
			return false;
	return true;
}

bool pc_mgmt_if_names(const struct pc_mgmt_binds *b, const char *name)
{
	for (size_t i = 0; i < b->nifs; i++)
		if (!strcmp(b->ifs[i].name, name) &&
		    !ruleset_empty(&b->ifs[i].rules))
			return true;
	return false;
}

/* Is key one of the n ifindexes just written (or the bound set)? */
static bool key_kept(const struct pc_mgmt_if_key *k, const __u32 *kept,
		     size_t n, bool any_bound)
{
	if (!k->ifindex)
		return any_bound;
	for (size_t i = 0; i < n; i++)
		if (kept[i] == k->ifindex)
			return true;
	return false;
}

/* Delete the slot's keys not kept; collected first, then deleted. */
static int prune(int fd, __u32 slot, const __u32 *kept, size_t n,
		 bool any_bound)
{
	struct pc_mgmt_if_key keys[PC_MGMT_IF_MAX], cur, next;
	const struct pc_mgmt_if_key *prev = NULL;
	size_t nk = 0;
	int err = 0;

	while (nk < PC_MGMT_IF_MAX && !bpf_map_get_next_key(fd, prev, &next)) {
		cur = next;
		prev = &cur;
		if (next.slot == slot && !key_kept(&next, kept, n, any_bound))
			keys[nk++] = next;
	}
	for (size_t i = 0; i < nk; i++)
		if (bpf_map_delete_elem(fd, &keys[i]) && errno != ENOENT && !err)
			err = -errno;
	return err;
}

int pc_mgmt_if_write(int fd, __u32 slot, const struct pc_mgmt_binds *b)
{
	bool any = !ruleset_empty(&b->bound);
	__u32 kept[PC_MAX_IFACES];
	size_t n = 0;

	if (fd < 0)
		return any ? -EOPNOTSUPP : 0;
	for (size_t i = 0; any && i < b->nifs; i++) {
		struct pc_mgmt_if_key k = { .slot = slot };

		if (ruleset_empty(&b->ifs[i].rules))
			continue;
		k.ifindex = if_nametoindex(b->ifs[i].name);
		if (!k.ifindex)
			continue;	/* not there yet: matches nowhere */
		if (bpf_map_update_elem(fd, &k, &b->ifs[i].rules, BPF_ANY))
			return -errno;
		kept[n++] = k.ifindex;
	}
	/* The bound set last: until it is in, a slot being built has no
	 * bindings, and a live one keeps its old (same) set. */
	if (any) {
		struct pc_mgmt_if_key k = { .slot = slot, .ifindex = 0 };

		if (bpf_map_update_elem(fd, &k, &b->bound, BPF_ANY))
			return -errno;
	}
	return prune(fd, slot, kept, n, any);
}

int pc_mgmt_if_clear(int fd, __u32 slot)
{
	if (fd < 0)
		return 0;
	return prune(fd, slot, NULL, 0, false);
}

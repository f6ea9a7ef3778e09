// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Atomic policy replacement.
 *
 *   1. empty the inactive slot (leftovers of an apply that failed);
 *   2. write the new rule sets, names and counters into it;
 *   3. write its settings with a new generation number;
 *   4. flip PC_STATE_ACTIVE_SLOT: one __u32 update, the only moment the
 *      datapath changes policy; a packet sees the old or the new, whole;
 *   5. wait for programs still running on the old slot, then empty it.
 *
 * A failure in 1-3 (map full, no memory) empties the inactive slot again
 * and leaves the old policy enforcing.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "apply.h"
#include "log.h"
#include "mgmt_if.h"

#define BATCH	4096	/* map entries per batch syscall */

/* Collect, then delete: deleting while walking an LPM trie skips keys. */
static int slot_clear(int fd, size_t key_size, size_t slot_off, size_t slot_len,
		      __u32 slot)
{
	size_t n = 0, cap = 0;
	char *keys = NULL, *cur = NULL;
	char next[64], prev[64];
	int err = 0;

	while (!bpf_map_get_next_key(fd, cur, next)) {
		__u32 s = 0;

		memcpy(&s, next + slot_off, slot_len);
		if (s == slot) {
			if (n == cap) {
				size_t ncap = cap ? cap * 2 : 1024;
				char *nk = realloc(keys, ncap * key_size);

				if (!nk) {
					err = -ENOMEM;
					goto out;
				}
				keys = nk;
				cap = ncap;
			}
			memcpy(keys + n * key_size, next, key_size);
			n++;
		}
		memcpy(prev, next, key_size);
		cur = prev;
	}
	/* In batches: one syscall per few thousand keys, not per key. */
	for (size_t done = 0; done < n && !err; done += BATCH) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 cnt = n - done < BATCH ? n - done : BATCH;

		if (bpf_map_delete_batch(fd, keys + done * key_size, &cnt, &opts) &&
		    errno != ENOENT)
			err = -errno;
	}
out:
	free(keys);
	return err;
}

static int slot_clear_all(const struct pc_maps *m, __u32 slot)
{
	int err;

	err = slot_clear(m->addr4, sizeof(struct pc_addr4_key),
			 offsetof(struct pc_addr4_key, slot), 4, slot);
	if (!err)
		err = slot_clear(m->addr6, sizeof(struct pc_addr6_key),
				 offsetof(struct pc_addr6_key, slot), 4, slot);
	if (!err)
		err = pc_mgmt_if_clear(m->mgmt_if, slot);
	/* pc_ports is an array: a slot is rewritten whole, never cleared. */
	return err;
}

/*
 * The slot's whole block of the port array, in batches: 2 x 131076
 * entries per apply, whatever the policy.
 */
static int write_port_sets(int fd, const struct pc_ruleset *sets, __u32 slot)
{
	enum { CHUNK = 8192 };
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	size_t total = (size_t)PC_DIR_COUNT * PC_PORT_SPAN;
	__u32 *keys = malloc(CHUNK * sizeof(*keys));
	__u32 base = slot * PC_DIR_COUNT * PC_PORT_SPAN;
	int err = 0;

	if (!keys)
		return -ENOMEM;
	for (size_t done = 0; done < total && !err; done += CHUNK) {
		__u32 n = total - done < CHUNK ? total - done : CHUNK;

		for (__u32 i = 0; i < n; i++)
			keys[i] = base + done + i;
		if (bpf_map_update_batch(fd, keys, sets + done, &n, &opts))
			err = -errno;
	}
	free(keys);
	return err;
}

/* One family's prefixes into its trie, in batches. */
static int write_addrs(int fd, const struct pc_compiled *c, __u8 family,
		       __u32 slot, size_t *written)
{
	size_t ksz = family == 4 ? sizeof(struct pc_addr4_key) :
				   sizeof(struct pc_addr6_key);
	char *keys = malloc(BATCH * ksz);
	struct pc_addr_val *vals = malloc(BATCH * sizeof(*vals));
	size_t i = 0;
	int err = 0;

	*written = 0;
	if (!keys || !vals) {
		err = -ENOMEM;
		goto out;
	}
	while (i < c->naddrs && !err) {
		LIBBPF_OPTS(bpf_map_batch_opts, opts);
		__u32 n = 0;

		for (; i < c->naddrs && n < BATCH; i++) {
			const struct pc_addr_entry *e = &c->addrs[i];
			struct pc_addr6_key k = { 32 + e->plen, slot, {} };

			if (e->family != family)
				continue;
			memcpy(k.addr, e->addr, family == 4 ? 4 : 16);
			memcpy(keys + n * ksz, &k, ksz);
			vals[n++] = e->val;
		}
		if (n && bpf_map_update_batch(fd, keys, vals, &n, &opts))
			err = -errno;
		*written += n;	/* on error: how many made it */
	}
out:
	free(keys);
	free(vals);
	return err;
}

static int write_rules(const struct pc_maps *m, const struct pc_compiled *c,
		       __u32 slot, char *err, size_t errlen)
{
	size_t n4 = 0, n6 = 0;
	int ret;

	ret = write_addrs(m->addr4, c, 4, slot, &n4);
	if (!ret)
		ret = write_addrs(m->addr6, c, 6, slot, &n6);
	if (ret) {
		snprintf(err, errlen, "writing addresses (%zu IPv4, %zu IPv6 written "
			 "of %zu): %s%s", n4, n6, c->naddrs, strerror(-ret),
			 ret == -ENOSPC || ret == -E2BIG ?
			 " (map full: too many CIDRs)" : "");
		return ret;
	}
	ret = write_port_sets(m->ports, c->port_sets, slot);
	if (ret) {
		snprintf(err, errlen, "writing %s: %s", PC_MAP_PORTS, strerror(-ret));
		return ret;
	}
	/* A binding the datapath cannot hold would widen the entry to any
	 * interface: refused, the old policy stays. */
	ret = pc_mgmt_if_write(m->mgmt_if, slot, &c->binds);
	if (ret)
		snprintf(err, errlen, "writing %s: %s%s", PC_MAP_MGMT_IF,
			 strerror(-ret), ret == -EOPNOTSUPP ?
			 " (the loaded datapath predates interface-bound "
			 "management entries: restart the agent)" : "");
	return ret;
}

/*
 * Per-rule counters of the new slot start from those of the rule with
 * the same name in the old one, so a reload loses no history.
 */
static int write_meta_and_counters(const struct pc_maps *m,
				   const struct pc_compiled *c, __u32 slot,
				   __u32 old_slot)
{
	int ncpus = libbpf_num_possible_cpus();
	struct pc_rule_meta old_meta;
	struct pc_counter *vals;
	int err = 0;

	if (ncpus <= 0)
		return -EINVAL;
	vals = calloc(ncpus, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (__u32 i = 0; i < PC_MAX_RULES && !err; i++) {
		__u32 key = PC_RULE_KEY(slot, i);

		memset(vals, 0, ncpus * sizeof(*vals));
		for (__u32 j = 0; c->meta[i].used && j < PC_MAX_RULES; j++) {
			__u32 okey = PC_RULE_KEY(old_slot, j);

			if (bpf_map_lookup_elem(m->rule_meta, &okey, &old_meta))
				break;
			if (old_meta.used &&
			    !strcmp(old_meta.name, c->meta[i].name)) {
				bpf_map_lookup_elem(m->rule_stats, &okey, vals);
				break;
			}
		}
		if (bpf_map_update_elem(m->rule_stats, &key, vals, BPF_ANY) ||
		    bpf_map_update_elem(m->rule_meta, &key, &c->meta[i], BPF_ANY))
			err = -errno;
	}
	free(vals);
	return err;
}

/*
 * Wait until no program still runs on the old slot. Updating a
 * map-in-map makes the kernel call synchronize_rcu() before returning
 * (maybe_wait_bpf_programs() in kernel/bpf/syscall.c): exactly the
 * guarantee we need, as XDP and TC programs run under RCU.
 */
static void wait_for_programs(void)
{
	LIBBPF_OPTS(bpf_map_create_opts, opts);
	int inner, outer = -1;
	__u32 key = 0;

	inner = bpf_map_create(BPF_MAP_TYPE_ARRAY, NULL, 4, 4, 1, NULL);
	if (inner >= 0) {
		opts.inner_map_fd = inner;
		outer = bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS, NULL, 4, 4,
				       1, &opts);
	}
	if (outer < 0 || bpf_map_update_elem(outer, &key, &inner, BPF_ANY)) {
		/* Far longer than any program run, should the trick fail. */
		pr_debug("map-in-map RCU wait unavailable, sleeping\n");
		usleep(100000);
	}
	if (outer >= 0)
		close(outer);
	if (inner >= 0)
		close(inner);
}

int pc_active_settings(const struct pc_maps *m, __u32 *slot,
		       struct pc_settings *s)
{
	__u32 active;
	int err;

	err = pc_state_get(m, PC_STATE_ACTIVE_SLOT, &active);
	if (err)
		return err;
	active &= 1;
	if (slot)
		*slot = active;
	return bpf_map_lookup_elem(m->settings, &active, s) ? -errno : 0;
}

int pc_apply(const struct pc_maps *m, const struct pc_compiled *c,
	     __u32 *generation, char *err, size_t errlen)
{
	struct pc_settings cur, next;
	__u32 slot, old_slot;
	int ret;

	ret = pc_active_settings(m, &old_slot, &cur);
	if (ret) {
		snprintf(err, errlen, "reading active policy: %s", strerror(-ret));
		return ret;
	}
	slot = !old_slot;

	ret = slot_clear_all(m, slot);
	if (ret) {
		snprintf(err, errlen, "clearing inactive slot: %s", strerror(-ret));
		return ret;
	}
	ret = write_rules(m, c, slot, err, errlen);
	if (!ret) {
		ret = write_meta_and_counters(m, c, slot, old_slot);
		if (ret)
			snprintf(err, errlen, "writing rule names and counters: %s",
				 strerror(-ret));
	}
	if (!ret) {
		next = c->settings;
		next.generation = cur.generation + 1 ? cur.generation + 1 : 1;
		if (bpf_map_update_elem(m->settings, &slot, &next, BPF_ANY)) {
			ret = -errno;
			snprintf(err, errlen, "writing settings: %s", strerror(-ret));
		}
	}
	if (ret) {
		/* The old policy never stopped enforcing; tidy up after us. */
		slot_clear_all(m, slot);
		return ret;
	}

	ret = pc_state_set(m, PC_STATE_ACTIVE_SLOT, slot);
	if (ret) {
		snprintf(err, errlen, "switching to the new policy: %s",
			 strerror(-ret));
		slot_clear_all(m, slot);
		return ret;
	}
	if (generation)
		*generation = next.generation;

	wait_for_programs();
	if (slot_clear_all(m, old_slot))
		pr_warn("could not free the previous policy's entries\n");
	return 0;
}

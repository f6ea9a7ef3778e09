/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Per-CPU counters summed over every possible CPU. */
#ifndef PC_STATS_H
#define PC_STATS_H

#include "pins.h"

/* One key of any per-CPU struct pc_counter map, summed. */
int pc_percpu_counter(int fd, __u32 key, struct pc_counter *out);
int pc_reason_counter(const struct pc_maps *m, enum pc_dir dir,
		      enum pc_reason r, struct pc_counter *out);
int pc_rule_counter(const struct pc_maps *m, __u32 slot, __u32 rule,
		    struct pc_counter *out);
/* What the backstop dropped; -ENOENT in pins without its map. */
int pc_backstop_counter(const struct pc_maps *m, enum pc_dir dir,
			struct pc_counter *out);
const char *pc_reason_name(enum pc_reason r);
/* One key of a per-CPU __u64 map (pc_events, pc_host_events), summed;
 * 0 if the map is absent (fd < 0) or cannot be read. */
__u64 pc_percpu_u64(int fd, __u32 key);
/* The egress guard's refusals (pc_guard_stats), each summed. */
int pc_guard_counts(const struct pc_maps *m, __u64 out[PC_G_COUNT]);
/* The controller port's counters (enum pc_ctl_stat): the class label
 * ("management", "other") and the result ("admitted", "source_limited",
 * "class_limited", "wrong_interface"). */
const char *pc_ctl_stat_class(enum pc_ctl_stat s);
const char *pc_ctl_stat_result(enum pc_ctl_stat s);
/* The controller port the datapath rations (0: none), and its counters
 * summed; zeros in pins without the maps. */
int pc_ctl_read(const struct pc_maps *m, __u32 *port, __u64 out[PC_CS_COUNT]);
/* The agent: ration datagrams to conf's port (0: stop rationing), on its
 * bound interfaces only if it names any (user/ctl_if.h). */
int pc_ctl_configure(const struct pc_maps *m, const struct pc_ctl_conf *conf);

#endif /* PC_STATS_H */

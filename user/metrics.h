/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus metrics: text exposition rendered from the pinned maps alone
 * (so it needs nothing of the agent's loop), served by libmicrohttpd on
 * its own thread. Metric names in README "Metrics".
 */
#ifndef PC_METRICS_H
#define PC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include "pins.h"

#define PC_DEFAULT_METRICS_LISTEN	"127.0.0.1:9712"

struct pc_metrics_server;

/* Render the exposition into a malloc'ed buffer. 0 or negative errno. */
int pc_metrics_render(const struct pc_maps *m, const char *host_id,
		      char **out, size_t *len);

/*
 * Serve GET /metrics (and /healthz: "ok" while the pinned maps answer) on
 * listen ("ADDR:PORT", IPv6 in brackets). The server keeps its own copies
 * of the map fds. NULL on error, logged.
 */
struct pc_metrics_server *pc_metrics_start(const char *listen,
					   const struct pc_maps *m,
					   const char *host_id);
void pc_metrics_stop(struct pc_metrics_server *s);
/* The port it listens on (listen may ask for port 0: any free one). */
int pc_metrics_port(const struct pc_metrics_server *s);

/* One rule of the active slot, as /metrics and `portcullis top` show it. */
struct pc_metrics_rule {
	__u32 index;			/* rule number within its slot */
	struct pc_rule_meta meta;	/* name NUL-terminated */
	struct pc_counter c;		/* summed over CPUs */
};

/* Everything the exposition shows, read from the maps in one pass. */
struct pc_metrics_snap {
	__u64 boot_ns;			/* CLOCK_BOOTTIME when taken */
	__u32 slot;			/* active policy slot */
	struct pc_settings settings;	/* of that slot; generation 0: none */
	__u32 mode;			/* pc_state's mode word, as written */
	enum pc_mode enforced;		/* what the datapath enforces, dead-man included */
	bool deadman_tripped;
	__u64 deadman[PC_DM_COUNT];
	struct pc_counter reasons[PC_DIR_COUNT][PC_REASON_COUNT];
	__u64 events[PC_EV_COUNT];	/* summed over CPUs */
	__u64 host[PC_HE_COUNT];	/* pc_host_events, summed; 0 if absent */
	__u64 guard[PC_G_COUNT];	/* egress guard refusals, summed */
	__u32 ctl_port;			/* the controller port rationed; 0: none */
	__u64 ctl[PC_CS_COUNT];		/* its counters, summed */
	struct pc_counter backstop[PC_DIR_COUNT];	/* dropped, summed over CPUs */
	__u64 agent[PC_AGENT_STATS_MAX];
	__u64 flows;			/* entries of both flow tables */
	__u64 flows_max;		/* their max_entries, summed */
	/* By who opened them (enum pc_dir: egress the host, ingress the far
	 * end): entries, embryonic ones (TCP, a SYN unanswered, expired ones
	 * included until reused), each table's size. */
	__u64 flows_by[PC_DIR_COUNT];
	__u64 flows_embryonic[PC_DIR_COUNT];
	__u64 flows_max_by[PC_DIR_COUNT];
	/* By table (enum pc_dir of the opener it is for; an older datapath's
	 * peer flows in pc_flows count as the host table's): entries, entries
	 * it created (pc_flow_stats), entries the LRU evicted (0 without
	 * pc_flow_stats: pins of an older datapath). */
	__u64 flows_in[PC_DIR_COUNT];
	__u64 flows_inserted[PC_DIR_COUNT];
	__u64 flows_evicted[PC_DIR_COUNT];
	size_t nrules;			/* used entries of rules[] */
	struct pc_metrics_rule rules[PC_MAX_RULES];
};

/* Fill *s (about 20 KiB: allocate it). 0 or negative errno. */
int pc_metrics_snapshot(const struct pc_maps *m, struct pc_metrics_snap *s);
/*
 * Entries a flow table's LRU evicted: created minus deleted minus live,
 * at 0 if that is below (it can be only in the cases README "Limits and
 * known gaps" lists: entries an uncounting datapath created).
 */
__u64 pc_flow_evictions(__u64 inserted, __u64 deleted, __u64 live);
/*
 * Seed a pc_flow_stats that counted nothing yet over flow tables that hold
 * entries (a live upgrade): those count as created, so evictions start at
 * 0. Call it before the programs that count are attached. 0 or -errno.
 */
int pc_flow_stats_seed(const struct pc_maps *m);
/* Label values: "allow", "deny", "management"; "ingress", "egress", "both". */
const char *pc_metrics_rule_action(const struct pc_rule_meta *r);
const char *pc_metrics_rule_direction(const struct pc_rule_meta *r);

#endif /* PC_METRICS_H */

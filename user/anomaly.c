// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "anomaly.h"
#include "stats.h"

static __u64 reason_packets(const struct pc_maps *m, enum pc_dir d,
			    enum pc_reason r)
{
	struct pc_counter c = {};

	pc_reason_counter(m, d, r, &c);
	return c.packets;
}

static int addr_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 17);
}

/* Distinct remote addresses of flows an egress packet opened lately. */
static __u64 egress_destinations(const struct pc_maps *m, __u64 since_ns)
{
	struct pc_flow_key key, *prev = NULL;
	struct pc_flow val;
	size_t n = 0, cap = 1024, distinct = 0;
	__u8 (*seen)[17] = malloc(cap * 17);

	if (!seen)
		return 0;
	while (!bpf_map_get_next_key(m->flows, prev, &key)) {
		prev = &key;
		if (bpf_map_lookup_elem(m->flows, &key, &val) ||
		    (val.dir & PC_FLOW_DIR) != PC_DIR_EGRESS || val.created_ns < since_ns)
			continue;
		if (n == cap) {
			void *bigger = realloc(seen, cap * 2 * 17);

			if (!bigger)
				break;
			seen = bigger;
			cap *= 2;
		}
		seen[n][0] = key.family;
		memcpy(&seen[n][1], key.raddr, 16);
		n++;
	}
	qsort(seen, n, 17, addr_cmp);
	for (size_t i = 0; i < n; i++)
		if (!i || memcmp(seen[i], seen[i - 1], 17))
			distinct++;
	free(seen);
	return distinct;
}

const char *pc_anomaly_outsider(enum pc_metric metric)
{
	switch (metric) {
	case PC_METRIC_EGRESS_NEW_FLOWS:
	case PC_METRIC_EGRESS_DESTINATIONS:
		return "an outsider drives it through any service that opens "
		       "an outbound flow per request (a DNS lookup, a proxy, "
		       "a webhook)";
	case PC_METRIC_INGRESS_DEFAULT_DENIED:
		return "an outsider drives it with any packet to a closed port";
	default:
		return NULL;
	}
}

int pc_anomaly_sample(struct pc_anomaly *a, const struct pc_config *cfg,
		      const struct pc_maps *m, __u64 interval_ns)
{
	__u64 now[PC_METRIC_COUNT];
	struct timespec ts;
	int fired = -1;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);	/* the flows' clock */
	now[PC_METRIC_EGRESS_NEW_FLOWS] =
		pc_percpu_u64(m->events, PC_EV_FLOW_NEW_EGRESS);
	/* Not the egress drop reasons: those count the host's replies to
	 * whatever an outsider sends too. */
	now[PC_METRIC_EGRESS_DENIED] =
		pc_percpu_u64(m->host_events, PC_HE_EGRESS_DENIED);
	now[PC_METRIC_INGRESS_DEFAULT_DENIED] =
		reason_packets(m, PC_DIR_INGRESS, PC_R_DROP_DEFAULT);
	now[PC_METRIC_EGRESS_DESTINATIONS] = 0;

	for (int k = 0; k < PC_METRIC_COUNT; k++)
		a->value[k] = a->primed ? now[k] - a->last[k] : 0;
	/* Not a counter: measured over the interval just ended, and only
	 * when a trigger wants it (it walks the flow table). */
	for (size_t i = 0; i < cfg->ntriggers; i++)
		if (cfg->triggers[i].metric == PC_METRIC_EGRESS_DESTINATIONS) {
			a->value[PC_METRIC_EGRESS_DESTINATIONS] =
				egress_destinations(m, ts.tv_sec * 1000000000ULL +
							       ts.tv_nsec - interval_ns);
			break;
		}
	memcpy(a->last, now, sizeof(now));
	if (!a->primed) {
		a->primed = true;
		return -1;
	}
	for (size_t i = 0; i < cfg->ntriggers; i++) {
		const struct pc_anomaly_trigger *t = &cfg->triggers[i];

		if (a->value[t->metric] >= t->threshold)
			a->streak[i]++;
		else
			a->streak[i] = 0;
		if (fired < 0 && a->streak[i] >= t->intervals) {
			fired = i;
			a->streak[i] = 0;
		}
	}
	return fired;
}

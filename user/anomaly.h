/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Local anomaly triggers: sample the datapath's counters every interval,
 * and fire a trigger once its metric has held at or above its threshold
 * for its number of consecutive intervals (one noisy interval is not an
 * incident).
 */
#ifndef PC_ANOMALY_H
#define PC_ANOMALY_H

#include "config.h"
#include "pins.h"

struct pc_anomaly {
	__u64 last[PC_METRIC_COUNT];	/* counter values at the last sample */
	bool primed;			/* one sample taken: deltas make sense */
	unsigned int streak[PC_MAX_TRIGGERS];
	__u64 value[PC_METRIC_COUNT];	/* the last interval's metrics */
};

/* What an outsider who can only send packets can do to a metric, as a
 * phrase for a warning; NULL if only the host's own behaviour moves it. */
const char *pc_anomaly_outsider(enum pc_metric metric);

/* Sample once; returns the index of a trigger that fires, or -1. The
 * streak of a trigger that fires starts over. */
int pc_anomaly_sample(struct pc_anomaly *a, const struct pc_config *cfg,
		      const struct pc_maps *m, __u64 interval_ns);

#endif /* PC_ANOMALY_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Prometheus metrics: text exposition rendered from the pinned maps alone
 * (so it needs nothing of the agent's loop), served by libmicrohttpd on
 * its own thread. Metric names in README "Metrics".
 */
#ifndef PC_METRICS_H
#define PC_METRICS_H

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

#endif /* PC_METRICS_H */

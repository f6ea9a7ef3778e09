/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The fail-secure agent: enforcement (policy, mode, dead-man switch) plus
 * the triggers that move the mode by themselves: heartbeat loss, signed
 * controller commands, local anomaly counters.
 */
#ifndef PC_AGENT_H
#define PC_AGENT_H

#include <stdbool.h>
#include <linux/types.h>
#include "portcullis.h"

struct agent_opts {
	const char *config_path;	/* --config; or NULL with policy_path */
	const char *policy_path;	/* --policy: loader only, no controller */
	const char *pin_dir;		/* overrides the config's */
	const char *state_dir;
	const char *audit_log;
	const char *control_socket;
	const char *metrics;		/* --metrics ADDR:PORT or "off" */
	enum pc_xdp_mode xdp_mode;
	bool xdp_mode_set;
	enum pc_mode initial_mode;	/* fresh start with no saved state */
	bool force;			/* anti-lockout override */
	bool verbose;
};

/* Run until SIGTERM/SIGINT or `portcullis detach`; returns an exit code. */
int agent_run(const struct agent_opts *o);
/* --check-config: 0 if the config and its policy are good, else 1. */
int agent_check_config(const char *path);

#endif /* PC_AGENT_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's counters, kept in the pinned pc_agent_stats map so the CLI
 * reads them whether the agent runs or not. */
#ifndef PC_AGENT_STATS_H
#define PC_AGENT_STATS_H

#include <linux/types.h>
#include "portcullis.h"
#include "msg.h"

enum pc_agent_stat {
	PC_AS_HB_ACCEPTED = 0,
	PC_AS_HB_REFUSED = 1,		/* + enum pc_msg_verdict (1..6) */
	PC_AS_CMD_ACCEPTED = PC_AS_HB_REFUSED + PC_MSG_VERDICT_COUNT,
	PC_AS_CMD_REFUSED,		/* + enum pc_msg_verdict */
	PC_AS_CMD_FAILED = PC_AS_CMD_REFUSED + PC_MSG_VERDICT_COUNT,
	PC_AS_TRANSITIONS,
	PC_AS_AUDIT_ERRORS,
	PC_AS_CONTROL_REFUSED,		/* non-root on the control socket */
	PC_AS_COUNT,
};

_Static_assert(PC_AS_COUNT <= PC_AGENT_STATS_MAX, "pc_agent_stats too small");

#endif /* PC_AGENT_STATS_H */

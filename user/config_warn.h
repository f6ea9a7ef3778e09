/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Configs that load but would lock the host down for nothing. */
#ifndef PC_CONFIG_WARN_H
#define PC_CONFIG_WARN_H

#include <stddef.h>
#include "config.h"

/*
 * A dead-man switch with no controller to feed it: heartbeats are
 * expected (a controller or fleet section) but every key that could sign
 * one is a placeholder whose secret half nobody kept, as the example
 * configs shipped before issue 13. Then the host goes to the heartbeat
 * action one heartbeat.timeout after start and stays there. Returns 1 and
 * the warning in BUF, or 0.
 */
int pc_config_deadman_unfed(const struct pc_config *cfg, char *buf, size_t len);

#endif /* PC_CONFIG_WARN_H */

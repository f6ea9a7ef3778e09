/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * controller.interfaces: the controller port bound to named interfaces,
 * resolved to this namespace's ifindexes for pc_ctl_conf.
 */
#ifndef PC_CTL_IF_H
#define PC_CTL_IF_H

#include <stdbool.h>
#include "config.h"

/* conf for cfg: the port (0 without a controller) and the bound set, each
 * name resolved now; one missing now is 0, which matches nowhere. */
void pc_ctl_if_conf(const struct pc_config *cfg, struct pc_ctl_conf *conf);
/* Does cfg bind the controller port to the interface called name? */
bool pc_ctl_if_names(const struct pc_config *cfg, const char *name);
/* The first of cfg's controller interfaces not among names, or NULL. */
const char *pc_ctl_if_unattached(const struct pc_config *cfg,
				 char *const *names, size_t n);

#endif /* PC_CTL_IF_H */

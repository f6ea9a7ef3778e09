/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * pc_mgmt_if: management entries bound to interfaces, written per slot
 * with the interface names resolved to this namespace's ifindexes.
 */
#ifndef PC_MGMT_IF_H
#define PC_MGMT_IF_H

#include "compile.h"

/*
 * Make the slot's entries say b: the bound set and each interface that
 * exists now (one that does not is left out: its bound entries match
 * nowhere until it appears and this runs again). Entries of interfaces no
 * longer meant are removed after the new ones are in. fd < 0 (pins of a
 * datapath without the map): -EOPNOTSUPP if anything is bound, else 0.
 */
int pc_mgmt_if_write(int fd, __u32 slot, const struct pc_mgmt_binds *b);
/* Remove every entry of the slot. */
int pc_mgmt_if_clear(int fd, __u32 slot);
/* Does b bind anything to the interface called name? */
bool pc_mgmt_if_names(const struct pc_mgmt_binds *b, const char *name);

#endif /* PC_MGMT_IF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Atomic policy replacement: the new policy is written into the inactive
 * slot beside the live one, then one single-word map update flips the
 * active slot. Any failure before the flip leaves the old policy live.
 */
#ifndef PC_APPLY_H
#define PC_APPLY_H

#include "compile.h"
#include "pins.h"

/* On success *generation is the new policy's generation number. */
int pc_apply(const struct pc_maps *m, const struct pc_compiled *c,
	     __u32 *generation, char *err, size_t errlen);
/* Active settings (generation 0: no policy loaded). */
int pc_active_settings(const struct pc_maps *m, __u32 *slot,
		       struct pc_settings *s);

#endif /* PC_APPLY_H */

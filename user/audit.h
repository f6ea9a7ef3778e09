/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Audit log: one JSON object per line, appended and fsynced, and the same
 * line to syslog (the journal). See README "Audit log".
 */
#ifndef PC_AUDIT_H
#define PC_AUDIT_H

#include <stdbool.h>

/* Open (creating dirs 0700 and the file 0600) for appending. */
int pc_audit_open(const char *path);
void pc_audit_close(void);
/* True while the last write failed (disk full...): status reports it. */
bool pc_audit_failing(void);

/*
 * Write one event: {"ts":"<UTC ISO-8601 ms>","event":"<event>",<fields>}.
 * fields: pairs of key, value strings ending with NULL; a value that
 * starts with '#' is written raw (a number or true/false), others are
 * JSON-escaped strings. Returns 0 or a negative errno; never aborts.
 */
int pc_audit(const char *event, ...) __attribute__((sentinel));

/* The sentinel that ends a field list: a typed null pointer, because a
 * bare NULL may be a plain 0 where varargs need a pointer. */
#define PC_AUDIT_END	((const char *)NULL)

/*
 * Rate-limited variant for events a flood could produce (rejected
 * messages): at most burst lines per key and second; the count of the
 * suppressed ones goes into the next line written for that key as
 * "suppressed".
 */
int pc_audit_limited(const char *key, const char *event, ...)
	__attribute__((sentinel));

#endif /* PC_AUDIT_H */

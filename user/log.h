/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Logging in the manner of xdp-tools' lib/util/logging.h. */
#ifndef PC_LOG_H
#define PC_LOG_H

enum pc_log_level { PC_LOG_WARN, PC_LOG_INFO, PC_LOG_DEBUG };

void pc_log_set_level(enum pc_log_level level);
/* Daemon logs carry a timestamp; the CLI's do not. */
void pc_log_set_timestamps(int on);
void pc_log(enum pc_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define pr_warn(...)	pc_log(PC_LOG_WARN, __VA_ARGS__)
#define pr_info(...)	pc_log(PC_LOG_INFO, __VA_ARGS__)
#define pr_debug(...)	pc_log(PC_LOG_DEBUG, __VA_ARGS__)

#endif /* PC_LOG_H */

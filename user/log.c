// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include "log.h"

static enum pc_log_level log_level = PC_LOG_INFO;
static int log_timestamps;

void pc_log_set_level(enum pc_log_level level)
{
	log_level = level;
}

void pc_log_set_timestamps(int on)
{
	log_timestamps = on;
}

void pc_log(enum pc_log_level level, const char *fmt, ...)
{
	static const char *const tag[] = { "warning: ", "", "debug: " };
	va_list ap;

	if (level > log_level)
		return;
	if (log_timestamps) {
		struct timespec ts;
		struct tm tm;
		char buf[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		gmtime_r(&ts.tv_sec, &tm);
		strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ ", buf, ts.tv_nsec / 1000000);
	}
	fputs(tag[level], stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

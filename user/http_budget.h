/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The connection budget of the metrics server: whoever can reach its port
 * must not be able to hold it shut. libmicrohttpd limits connections per
 * client address and in all; this adds a reserve for this host itself
 * (the kubelet's probe, a local curl) that other clients cannot take, and
 * a deadline on each connection's whole life: its timeout is an idle
 * timeout, which a byte a second keeps resetting.
 */
#ifndef PC_HTTP_BUDGET_H
#define PC_HTTP_BUDGET_H

#include <stdint.h>
#include <microhttpd.h>

/* Connections at once from one client address (MHD enforces it). */
#define PC_HTTP_PER_CLIENT	4
/* Connections at once in all (MHD enforces it) ... */
#define PC_HTTP_CONNECTIONS	64
/* ... of which only this many from other hosts: the rest is this host's. */
#define PC_HTTP_REMOTE		(PC_HTTP_CONNECTIONS - 8)
/* A connection's whole life, accept to close: one request and its answer. */
#define PC_HTTP_DEADLINE_MS	2000

struct pc_http_budget;

/* Counters, for the exposition. */
struct pc_http_budget_stats {
	uint64_t over_budget;	/* remote connections closed at once: none left */
	uint64_t deadline;	/* connections closed at the deadline */
	uint64_t open;		/* connections MHD holds now, shut or not */
};

/* NULL with errno set. Its thread blocks every signal. */
struct pc_http_budget *pc_http_budget_start(void);
/* After MHD_stop_daemon: MHD's last notifications still come to it. */
void pc_http_budget_stop(struct pc_http_budget *b);
void pc_http_budget_stats(struct pc_http_budget *b,
			  struct pc_http_budget_stats *out);

/* MHD_OPTION_NOTIFY_CONNECTION's callback; cls is the budget. */
void pc_http_budget_notify(void *cls, struct MHD_Connection *c,
			   void **socket_context,
			   enum MHD_ConnectionNotificationCode code);

#endif

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The metrics server's connection budget (http_budget.h). MHD tells us of
 * every connection it accepts and closes (MHD_OPTION_NOTIFY_CONNECTION);
 * we keep each one's socket and start time. One that would take the
 * reserve of this host, or is older than the deadline, is shut down:
 * shutdown(2) makes its socket read EOF and fail writes, so MHD's own
 * thread closes it at its next turn. We never close() MHD's sockets.
 *
 * MHD calls the "closed" notification before it closes the socket, and
 * we only shut a socket down under the lock that notification takes, so
 * the fd we shut is always still that connection's.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "http_budget.h"

#define SWEEP_MS	100	/* the deadline holds to within this */
#define NS_PER_MS	1000000LL
#define MS_PER_S	1000LL

struct conn {
	bool used;
	bool remote;		/* not from one of this host's addresses */
	bool shut;		/* shut down; MHD closes it soon */
	int fd;
	int64_t start_ms;
};

struct pc_http_budget {
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t sweeper;
	bool stopping;
	unsigned int remote;	/* remote connections not shut down */
	struct pc_http_budget_stats stats;
	struct conn conns[PC_HTTP_CONNECTIONS];
};

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

/* Under the lock. */
static void shut(struct pc_http_budget *b, struct conn *c)
{
	if (c->shut)
		return;
	shutdown(c->fd, SHUT_RDWR);
	c->shut = true;
	if (c->remote)
		b->remote--;
}

static bool same_addr(const struct sockaddr_storage *a,
		      const struct sockaddr_storage *b)
{
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	return a->ss_family == AF_INET6 &&
	       !memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr));
}

/*
 * From this host: its kernel picks the address it connects to as the
 * source (127.0.0.1 to itself, HOST_IP to HOST_IP), and no one else can
 * finish a handshake from one of our addresses: the answer stays here.
 */
static bool from_this_host(int fd)
{
	struct sockaddr_storage ours = { 0 }, theirs = { 0 };
	socklen_t ol = sizeof(ours), tl = sizeof(theirs);

	if (getsockname(fd, (struct sockaddr *)&ours, &ol) ||
	    getpeername(fd, (struct sockaddr *)&theirs, &tl))
		return false;	/* unknown: counts as remote */
	return same_addr(&ours, &theirs);
}

static void started(struct pc_http_budget *b, struct MHD_Connection *mc,
		    void **ctx)
{
	const union MHD_ConnectionInfo *i;
	struct conn *c = NULL;
	int fd;

	i = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (!i)
		return;		/* no socket to watch: MHD's own limits only */
	fd = i->connect_fd;
	pthread_mutex_lock(&b->lock);
	for (size_t k = 0; k < PC_HTTP_CONNECTIONS && !c; k++)
		if (!b->conns[k].used)
			c = &b->conns[k];
	if (!c) {
		/* MHD admits no more than we have slots: cannot happen. */
		shutdown(fd, SHUT_RDWR);
		b->stats.over_budget++;
		pthread_mutex_unlock(&b->lock);
		return;
	}
	*c = (struct conn){ .used = true, .fd = fd, .start_ms = now_ms(),
			    .remote = !from_this_host(fd) };
	*ctx = c;
	if (c->remote && ++b->remote > PC_HTTP_REMOTE) {
		shut(b, c);
		b->stats.over_budget++;
	}
	pthread_mutex_unlock(&b->lock);
}

static void closed(struct pc_http_budget *b, void **ctx)
{
	struct conn *c = *ctx;

	if (!c)
		return;
	pthread_mutex_lock(&b->lock);
	if (c->remote && !c->shut)
		b->remote--;
	c->used = false;
	pthread_mutex_unlock(&b->lock);
	*ctx = NULL;
}

void pc_http_budget_notify(void *cls, struct MHD_Connection *c,
			   void **socket_context,
			   enum MHD_ConnectionNotificationCode code)
{
	struct pc_http_budget *b = cls;

	if (code == MHD_CONNECTION_NOTIFY_STARTED)
		started(b, c, socket_context);
	else if (code == MHD_CONNECTION_NOTIFY_CLOSED)
		closed(b, socket_context);
}

static void *sweep(void *arg)
{
	struct pc_http_budget *b = arg;
	struct timespec until;

	pthread_mutex_lock(&b->lock);
	while (!b->stopping) {
		int64_t now = now_ms();

		for (size_t k = 0; k < PC_HTTP_CONNECTIONS; k++) {
			struct conn *c = &b->conns[k];

			if (c->used && !c->shut &&
			    now - c->start_ms >= PC_HTTP_DEADLINE_MS) {
				shut(b, c);
				b->stats.deadline++;
			}
		}
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_nsec += SWEEP_MS * NS_PER_MS;
		if (until.tv_nsec >= MS_PER_S * NS_PER_MS) {
			until.tv_sec++;
			until.tv_nsec -= MS_PER_S * NS_PER_MS;
		}
		pthread_cond_timedwait(&b->wake, &b->lock, &until);
	}
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

struct pc_http_budget *pc_http_budget_start(void)
{
	struct pc_http_budget *b;
	pthread_condattr_t ca;
	sigset_t all, old;
	int err;

	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	pthread_mutex_init(&b->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&b->wake, &ca);
	pthread_condattr_destroy(&ca);
	/* Signals stay with the caller's threads (the agent's signalfd). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&b->sweeper, NULL, sweep, b);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pthread_cond_destroy(&b->wake);
		pthread_mutex_destroy(&b->lock);
		free(b);
		errno = err;
		return NULL;
	}
	return b;
}

void pc_http_budget_stats(struct pc_http_budget *b,
			  struct pc_http_budget_stats *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->stats;
	out->open = 0;
	for (size_t k = 0; k < PC_HTTP_CONNECTIONS; k++)
		out->open += b->conns[k].used;
	pthread_mutex_unlock(&b->lock);
}

void pc_http_budget_stop(struct pc_http_budget *b)
{
	if (!b)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_signal(&b->wake);
	pthread_mutex_unlock(&b->lock);
	pthread_join(b->sweeper, NULL);
	pthread_cond_destroy(&b->wake);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

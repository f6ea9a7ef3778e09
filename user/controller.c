// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The controller side of the CLI: "portcullis keygen" and "portcullis
 * controller heartbeat|send|replay". Each message is one signed UDP
 * datagram (format in msg.c); nothing here needs root or the BPF maps.
 *
 * Exit codes: 0 done, 1 runtime error (files, keys, sockets), 2 usage
 * error (options, arguments), so scripts can tell "you typed it wrong"
 * from "it did not work".
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sodium.h>
#include "controller.h"
#include "log.h"
#include "msg.h"

#define EXIT_RUNTIME	1
#define EXIT_USAGE	2

#define NS_PER_MS	1000000ULL
#define MS_PER_S	1000ULL
/* Bounds that keep now + value far from wrapping a __u64 of ms. */
#define MAX_EXPIRES_S	(10ULL * 365 * 24 * 3600)
#define MAX_INTERVAL_MS	(24ULL * 3600 * 1000)
#define MAX_DURATION_S	(10ULL * 365 * 24 * 3600)
/* Fixed part of a datagram (msg.c): 49 header, 4 payload length, 64 sig. */
#define WIRE_OVERHEAD	(49 + 4 + PC_SIG_LEN)
/* A heartbeat is at most WIRE_OVERHEAD + 63 bytes of host id. */
#define HEARTBEAT_BUF	256

struct dest {
	struct sockaddr_storage ss;
	socklen_t len;
	const char *text;	/* as the user wrote it, for messages */
};

struct sub_cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *args;
	const char *help;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static __u64 realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static __u64 realtime_ms(void)
{
	return realtime_ns() / NS_PER_MS;
}

/*
 * Sequence numbers are wall-clock nanoseconds so that a restarted
 * controller still sends numbers above the ones the agent last accepted,
 * without keeping state on disk. The clock can step back or repeat, and
 * the agent refuses anything not strictly above its last, so never go
 * backwards within one run.
 */
static __u64 next_seq(__u64 *prev)
{
	__u64 seq = realtime_ns();

	if (seq <= *prev)
		seq = *prev + 1;
	*prev = seq;
	return seq;
}

/* Decimal digits only: strtoull alone would take "-1", " 7" and "0x10". */
static int parse_u64(const char *s, __u64 min, __u64 max, __u64 *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_s64(const char *s, long long *out)
{
	long long v;
	char *end;

	if (!s || !*s || (*s != '-' && (*s < '0' || *s > '9')))
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*out = v;
	return 0;
}

/*
 * HOST:PORT with a numeric host only: an agent that can be reached only
 * through DNS is one whose lockdown may depend on DNS working, so we do
 * not offer it. IPv6 goes in brackets, optionally with a %scope.
 */
static int parse_dest(const char *s, struct dest *d)
{
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 1];
	const char *h, *colon;
	size_t hlen;
	__u64 port;

	memset(d, 0, sizeof(*d));
	d->text = s;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':') {
			pr_warn("bad address '%s': want [IPV6]:PORT\n", s);
			return -EINVAL;
		}
		h = s + 1;
		hlen = close - h;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			pr_warn("bad address '%s': want HOST:PORT\n", s);
			return -EINVAL;
		}
		if (strchr(s, ':') != colon) {
			pr_warn("bad address '%s': IPv6 addresses go in brackets, "
				"[ADDR]:PORT\n", s);
			return -EINVAL;
		}
		h = s;
		hlen = colon - s;
	}
	if (parse_u64(colon + 1, 1, 65535, &port)) {
		pr_warn("bad address '%s': port must be 1..65535\n", s);
		return -EINVAL;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		pr_warn("bad address '%s': bad host part\n", s);
		return -EINVAL;
	}
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	if (s[0] == '[') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&d->ss;
		char *scope = strchr(host, '%');

		if (scope) {
			__u64 id;

			*scope++ = '\0';
			if (parse_u64(scope, 1, UINT_MAX, &id))
				id = if_nametoindex(scope);
			if (!id) {
				pr_warn("bad address '%s': unknown scope '%s'\n",
					s, scope);
				return -EINVAL;
			}
			sin6->sin6_scope_id = id;
		}
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1) {
			pr_warn("bad address '%s': '%s' is not a numeric IPv6 "
				"address\n", s, host);
			return -EINVAL;
		}
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		d->len = sizeof(*sin6);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&d->ss;

		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1) {
			pr_warn("bad address '%s': '%s' is not a numeric IPv4 "
				"address (no DNS names)\n", s, host);
			return -EINVAL;
		}
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		d->len = sizeof(*sin);
	}
	return 0;
}

static int check_host_id(const char *id)
{
	size_t len;

	if (!id) {
		pr_warn("--host-id is required\n");
		return -EINVAL;
	}
	len = strlen(id);
	if (len < 1 || len >= PC_HOST_ID_LEN) {
		pr_warn("bad --host-id '%s': 1 to %d characters\n", id,
			PC_HOST_ID_LEN - 1);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		if (id[i] < 0x21 || id[i] > 0x7e) {
			pr_warn("bad --host-id '%s': printable ASCII only, no "
				"spaces\n", id);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_hash(const char *s, __u8 out[PC_HASH_LEN])
{
	size_t len;

	if (strlen(s) != 2 * PC_HASH_LEN)
		return -EINVAL;
	if (sodium_hex2bin(out, PC_HASH_LEN, s, 2 * PC_HASH_LEN, NULL, &len,
			   NULL) || len != PC_HASH_LEN)
		return -EINVAL;
	return 0;
}

/* Whole file into a malloc'd buffer; -EFBIG past max bytes. */
static int read_file(const char *path, size_t max, __u8 **data, size_t *len)
{
	size_t cap = max + 1, n = 0;
	__u8 *buf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(cap);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	/* Read one byte past max so "exactly max" and "more" differ. */
	while (n < cap) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = -errno;
			break;
		}
		if (r == 0)
			break;
		n += r;
	}
	close(fd);
	if (!err && n > max)
		err = -EFBIG;
	if (err) {
		free(buf);
		return err;
	}
	*data = buf;
	*len = n;
	return 0;
}

/* force_mode: set mode exactly, whatever the umask. */
static int write_file(const char *path, const void *data, size_t len,
		      mode_t mode, bool force_mode)
{
	const char *p = data;
	int fd, err = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  mode);
	if (fd < 0)
		return -errno;
	if (force_mode && fchmod(fd, mode))
		err = -errno;
	while (!err && len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			break;
		}
		p += n;
		len -= n;
	}
	if (close(fd) && !err)
		err = -errno;
	return err;
}

static int open_socket(const struct dest *d)
{
	int fd = socket(d->ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		int err = -errno;

		pr_warn("Couldn't create UDP socket for %s: %s\n", d->text,
			strerror(-err));
		return err;
	}
	return fd;
}

/*
 * sendto on an unconnected socket: an ICMP port unreachable from an agent
 * that is restarting must not fail the next heartbeat.
 */
static int send_datagram(int fd, const struct dest *d, const void *buf,
			 size_t len)
{
	ssize_t n = sendto(fd, buf, len, 0, (const struct sockaddr *)&d->ss,
			   d->len);

	if (n < 0)
		return -errno;
	if ((size_t)n != len)
		return -EMSGSIZE;
	return 0;
}

static int load_key(const char *path, __u8 sk[PC_SK_LEN])
{
	char err[PATH_MAX + 256];
	int ret;

	ret = pc_key_load_secret(path, sk, err, sizeof(err));
	if (ret)
		pr_warn("%s\n", err);
	return ret;
}

static int crypto_ready(void)
{
	if (pc_crypto_init()) {
		pr_warn("Couldn't initialise libsodium\n");
		return -EIO;
	}
	return 0;
}

/* ---- heartbeat ---- */

static const struct heartbeat_defaults {
	__u64 interval_ms;
} heartbeat_defaults = {
	.interval_ms = 1000,
};

static void heartbeat_usage(FILE *f)
{
	fprintf(f,
		"Usage: portcullis controller heartbeat --to HOST:PORT --key FILE --host-id ID\n"
		"                                       [--interval MS] [--count N] [--duration S] [-v]\n"
		"\n"
		"Send a signed heartbeat every interval until SIGINT/SIGTERM, --count\n"
		"heartbeats or --duration seconds, whichever comes first.\n"
		"\n"
		"  --to HOST:PORT   agent address, numeric: 192.0.2.1:7800 or [2001:db8::1]:7800\n"
		"  --key FILE       controller secret key (from 'portcullis keygen'), mode 0600\n"
		"  --host-id ID     the agent's host id\n"
		"  --interval MS    milliseconds between heartbeats (default %llu)\n"
		"  --count N        stop after N heartbeats (default: forever)\n"
		"  --duration S     stop after S seconds\n"
		"  -v, --verbose    one line per heartbeat\n",
		(unsigned long long)heartbeat_defaults.interval_ms);
}

static void timespec_add_ms(struct timespec *ts, __u64 ms)
{
	ts->tv_sec += ms / MS_PER_S;
	ts->tv_nsec += (ms % MS_PER_S) * NS_PER_MS;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool timespec_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec ||
	       (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

static int heartbeat_loop(int fd, const struct dest *d, struct pc_msg *m,
			  const __u8 sk[PC_SK_LEN], __u64 interval_ms,
			  __u64 count, __u64 duration_s, bool verbose)
{
	__u8 buf[HEARTBEAT_BUF];
	struct timespec next, now, deadline;
	__u64 sent = 0, prev_seq = 0;
	bool failing = false;
	int len, err;

	clock_gettime(CLOCK_MONOTONIC, &next);
	deadline = next;
	timespec_add_ms(&deadline, duration_s * MS_PER_S);
	while (!stop) {
		m->seq = next_seq(&prev_seq);
		m->timestamp_ms = realtime_ms();
		len = pc_msg_encode(m, sk, buf, sizeof(buf));
		if (len < 0) {
			pr_warn("Couldn't encode heartbeat: %s\n",
				strerror(-len));
			return len;
		}
		err = send_datagram(fd, d, buf, len);
		/*
		 * A send error is usually passing (route flap, agent host
		 * rebooting): keep the rhythm, say so once, and say when it
		 * recovers, rather than a line per interval.
		 */
		if (err && !failing)
			pr_warn("Couldn't send heartbeat to %s: %s (still trying)\n",
				d->text, strerror(-err));
		else if (!err && failing)
			pr_warn("heartbeats to %s are going out again\n",
				d->text);
		failing = err;
		if (!err && verbose)
			printf("heartbeat seq %llu to %s\n",
			       (unsigned long long)m->seq, d->text);
		if (verbose)
			fflush(stdout);
		sent++;
		if (count && sent >= count)
			break;

		timespec_add_ms(&next, interval_ms);
		clock_gettime(CLOCK_MONOTONIC, &now);
		/* After a stall (suspend, SIGSTOP) resume the rhythm from now
		 * instead of sending the missed heartbeats in a burst. */
		if (timespec_before(&next, &now)) {
			next = now;
			timespec_add_ms(&next, interval_ms);
		}
		if (duration_s && !timespec_before(&next, &deadline))
			break;
		/* EINTR is the signal we are waiting for: the loop checks it.
		 * A signal landing just before the sleep costs one interval. */
		while (!stop && clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME,
						&next, NULL) == EINTR)
			;
	}
	if (verbose)
		printf("sent %llu heartbeats to %s\n", (unsigned long long)sent,
		       d->text);
	return 0;
}

static int do_heartbeat(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "host-id", required_argument, NULL, 'i' },
		{ "interval", required_argument, NULL, 'I' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'D' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct sigaction sa = { .sa_handler = on_signal }, old_int, old_term;
	const char *to = NULL, *key = NULL, *host_id = NULL;
	__u64 interval = heartbeat_defaults.interval_ms;
	__u64 count = 0, duration = 0;
	__u8 sk[PC_SK_LEN];
	struct pc_msg m = {};
	struct dest d;
	bool verbose = false;
	int c, fd, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 't': to = optarg; break;
		case 'k': key = optarg; break;
		case 'i': host_id = optarg; break;
		case 'I':
			if (parse_u64(optarg, 1, MAX_INTERVAL_MS, &interval)) {
				pr_warn("bad --interval '%s': milliseconds, 1..%llu\n",
					optarg, MAX_INTERVAL_MS);
				return EXIT_USAGE;
			}
			break;
		case 'c':
			if (parse_u64(optarg, 1, ULLONG_MAX, &count)) {
				pr_warn("bad --count '%s': a number of heartbeats, 1 or more\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'D':
			if (parse_u64(optarg, 1, MAX_DURATION_S, &duration)) {
				pr_warn("bad --duration '%s': seconds, 1 or more\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case 'v': verbose = true; break;
		case 'h': heartbeat_usage(stdout); return 0;
		default:
			heartbeat_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("heartbeat: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!to || !key) {
		pr_warn("heartbeat needs --to HOST:PORT and --key FILE "
			"(see --help)\n");
		return EXIT_USAGE;
	}
	if (!host_id || parse_dest(to, &d) || check_host_id(host_id))
		return EXIT_USAGE;

	if (crypto_ready() || load_key(key, sk))
		return EXIT_RUNTIME;
	m.type = PC_MSG_HEARTBEAT;
	m.cmd = PC_CMD_NONE;
	strcpy(m.host_id, host_id);	/* length checked above */

	fd = open_socket(&d);
	if (fd < 0) {
		sodium_memzero(sk, sizeof(sk));
		return EXIT_RUNTIME;
	}
	/* No SA_RESTART: the sleep must return so the loop sees stop. */
	stop = 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	err = heartbeat_loop(fd, &d, &m, sk, interval, count, duration,
			     verbose);
	sigaction(SIGTERM, &old_term, NULL);
	sigaction(SIGINT, &old_int, NULL);
	close(fd);
	sodium_memzero(sk, sizeof(sk));
	return err ? EXIT_RUNTIME : 0;
}

/* ---- send ---- */

static const struct send_defaults {
	__u64 expires_s;
} send_defaults = {
	.expires_s = 60,
};

static void send_usage(FILE *f)
{
	fprintf(f,
		"Usage: portcullis controller send lockdown|quarantine|release|apply-policy\n"
		"           --to HOST:PORT --key FILE --host-id ID [--expires S]\n"
		"           [--policy FILE | --policy-hash HEX64] [-v]\n"
		"\n"
		"Send one signed command. apply-policy needs exactly one of --policy (the\n"
		"YAML travels inline) or --policy-hash (the agent must already have it).\n"
		"\n"
		"  --to HOST:PORT          agent address, numeric: 192.0.2.1:7800 or [2001:db8::1]:7800\n"
		"  --key FILE              controller secret key, mode 0600\n"
		"  --host-id ID            the agent's host id\n"
		"  --expires S             the agent ignores the command after S seconds (default %llu)\n"
		"  --policy FILE           apply-policy: send this policy file inline\n"
		"  --policy-hash HEX64     apply-policy: SHA-256 of a policy the agent holds\n"
		"  -v, --verbose           show seq, timestamps and sizes\n"
		"\n"
		"For tests:\n"
		"  --timestamp-offset MS   shift the timestamp (may be negative): stale messages\n"
		"  --seq N                 force the sequence number: replayed sequences\n"
		"  --raw-out FILE          also write the datagram to FILE; without --to, only write\n",
		(unsigned long long)send_defaults.expires_s);
}

struct send_opts {
	const char *to, *key, *host_id, *policy, *policy_hash, *raw_out;
	__u64 expires_s;
	long long ts_offset_ms;
	bool has_seq;
	__u64 seq;
	bool verbose;
	enum pc_cmd cmd;
};

/* Returns 0, or the exit code of a usage error already reported. */
static int send_parse(int argc, char **argv, struct send_opts *o)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "key", required_argument, NULL, 'k' },
		{ "host-id", required_argument, NULL, 'i' },
		{ "expires", required_argument, NULL, 'e' },
		{ "policy", required_argument, NULL, 'p' },
		{ "policy-hash", required_argument, NULL, 'P' },
		{ "timestamp-offset", required_argument, NULL, 'T' },
		{ "seq", required_argument, NULL, 's' },
		{ "raw-out", required_argument, NULL, 'r' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o->to = optarg; break;
		case 'k': o->key = optarg; break;
		case 'i': o->host_id = optarg; break;
		case 'p': o->policy = optarg; break;
		case 'P': o->policy_hash = optarg; break;
		case 'r': o->raw_out = optarg; break;
		case 'v': o->verbose = true; break;
		case 'e':
			if (parse_u64(optarg, 0, MAX_EXPIRES_S,
				      &o->expires_s)) {
				pr_warn("bad --expires '%s': seconds, 0..%llu\n",
					optarg, MAX_EXPIRES_S);
				return EXIT_USAGE;
			}
			break;
		case 'T':
			if (parse_s64(optarg, &o->ts_offset_ms)) {
				pr_warn("bad --timestamp-offset '%s': milliseconds, "
					"may be negative\n", optarg);
				return EXIT_USAGE;
			}
			break;
		case 's':
			if (parse_u64(optarg, 0, ULLONG_MAX, &o->seq)) {
				pr_warn("bad --seq '%s': an unsigned 64-bit number\n",
					optarg);
				return EXIT_USAGE;
			}
			o->has_seq = true;
			break;
		case 'h': send_usage(stdout); return -1;
		default:
			send_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		pr_warn("send: which command? lockdown, quarantine, release or "
			"apply-policy\n");
		return EXIT_USAGE;
	}
	if (argc - optind > 1) {
		pr_warn("send: unexpected argument '%s'\n", argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (pc_cmd_parse(argv[optind], &o->cmd) || o->cmd == PC_CMD_NONE) {
		pr_warn("send: unknown command '%s': lockdown, quarantine, "
			"release or apply-policy\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (o->cmd == PC_CMD_APPLY_POLICY && !o->policy == !o->policy_hash) {
		pr_warn("apply-policy needs exactly one of --policy FILE or "
			"--policy-hash HEX64\n");
		return EXIT_USAGE;
	}
	if (o->cmd != PC_CMD_APPLY_POLICY && (o->policy || o->policy_hash)) {
		pr_warn("--policy and --policy-hash go with apply-policy only\n");
		return EXIT_USAGE;
	}
	if (!o->to && !o->raw_out) {
		pr_warn("send needs --to HOST:PORT (or --raw-out FILE)\n");
		return EXIT_USAGE;
	}
	if (!o->key) {
		pr_warn("send needs --key FILE\n");
		return EXIT_USAGE;
	}
	return check_host_id(o->host_id) ? EXIT_USAGE : 0;
}

/* Fill in the timestamps; 0, or the exit code of an error reported. */
static int send_times(const struct send_opts *o, struct pc_msg *m)
{
	__u64 now = realtime_ms();

	if (o->ts_offset_ms < 0 && (__u64)-(o->ts_offset_ms + 1) >= now) {
		pr_warn("--timestamp-offset %lld puts the timestamp before 1970\n",
			o->ts_offset_ms);
		return EXIT_USAGE;
	}
	m->timestamp_ms = now + o->ts_offset_ms;
	/* Expiry from the true clock: a stale test should test staleness. */
	m->expires_ms = now + o->expires_s * MS_PER_S;
	return 0;
}

/* The policy payload; 0, or the exit code of an error reported. */
static int send_policy(const struct send_opts *o, struct pc_msg *m,
		       __u8 **policy)
{
	/* What a datagram has left after header, host id and signature. */
	size_t room = PC_MSG_MAX - WIRE_OVERHEAD - strlen(m->host_id);
	size_t len;
	int err;

	if (o->policy_hash) {
		if (parse_hash(o->policy_hash, m->policy_hash)) {
			pr_warn("bad --policy-hash '%s': 64 hex digits (SHA-256)\n",
				o->policy_hash);
			return EXIT_USAGE;
		}
		m->has_hash = true;
		return 0;
	}
	if (!o->policy)
		return 0;
	err = read_file(o->policy, room, policy, &len);
	if (err == -EFBIG) {
		pr_warn("policy %s does not fit in one datagram (at most %zu "
			"bytes with this host id): use --policy-hash\n",
			o->policy, room);
		return EXIT_RUNTIME;
	}
	if (err) {
		pr_warn("Couldn't read policy %s: %s\n", o->policy,
			strerror(-err));
		return EXIT_RUNTIME;
	}
	if (!len) {
		pr_warn("policy %s is empty\n", o->policy);
		free(*policy);
		*policy = NULL;
		return EXIT_RUNTIME;
	}
	m->policy = (const char *)*policy;
	m->policy_len = len;
	return 0;
}

static int do_send(int argc, char **argv)
{
	struct send_opts o = { .expires_s = send_defaults.expires_s };
	char id_hex[2 * sizeof(((struct pc_msg *)0)->cmd_id) + 1];
	__u8 sk[PC_SK_LEN], *policy = NULL, *buf = NULL;
	struct pc_msg m = {};
	__u64 prev_seq = 0;
	struct dest d;
	int ret, len, fd, err;

	ret = send_parse(argc, argv, &o);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (o.to && parse_dest(o.to, &d))
		return EXIT_USAGE;
	m.type = PC_MSG_COMMAND;
	m.cmd = o.cmd;
	strcpy(m.host_id, o.host_id);	/* length checked in send_parse */
	ret = send_times(&o, &m);
	if (ret)
		return ret;
	ret = send_policy(&o, &m, &policy);
	if (ret)
		return ret;
	if (crypto_ready() || load_key(o.key, sk)) {
		ret = EXIT_RUNTIME;
		goto out_policy;
	}
	m.seq = o.has_seq ? o.seq : next_seq(&prev_seq);
	randombytes_buf(m.cmd_id, sizeof(m.cmd_id));
	pc_hex(m.cmd_id, sizeof(m.cmd_id), id_hex);

	ret = EXIT_RUNTIME;
	buf = malloc(PC_MSG_MAX);
	if (!buf) {
		pr_warn("Couldn't allocate the datagram buffer\n");
		goto out_key;
	}
	len = pc_msg_encode(&m, sk, buf, PC_MSG_MAX);
	if (len < 0) {
		pr_warn("Couldn't encode %s: %s\n", pc_cmd_name(o.cmd),
			strerror(-len));
		goto out_buf;
	}
	if (o.verbose)
		printf("%s: seq %llu timestamp_ms %llu expires_ms %llu, %d bytes\n",
		       pc_cmd_name(o.cmd), (unsigned long long)m.seq,
		       (unsigned long long)m.timestamp_ms,
		       (unsigned long long)m.expires_ms, len);
	if (o.raw_out) {
		err = write_file(o.raw_out, buf, len, 0644, false);
		if (err) {
			pr_warn("Couldn't write %s: %s\n", o.raw_out,
				strerror(-err));
			goto out_buf;
		}
		printf("wrote %s id %s to %s (%d bytes)\n", pc_cmd_name(o.cmd),
		       id_hex, o.raw_out, len);
	}
	if (o.to) {
		fd = open_socket(&d);
		if (fd < 0)
			goto out_buf;
		err = send_datagram(fd, &d, buf, len);
		close(fd);
		if (err) {
			pr_warn("Couldn't send %s to %s: %s\n",
				pc_cmd_name(o.cmd), o.to, strerror(-err));
			goto out_buf;
		}
		printf("sent %s id %s to %s\n", pc_cmd_name(o.cmd), id_hex,
		       o.to);
	}
	ret = 0;
out_buf:
	free(buf);
out_key:
	sodium_memzero(sk, sizeof(sk));
out_policy:
	free(policy);
	return ret;
}

/* ---- replay ---- */

static void replay_usage(FILE *f)
{
	fprintf(f,
		"Usage: portcullis controller replay FILE --to HOST:PORT [-v]\n"
		"\n"
		"Send a datagram captured with 'send --raw-out FILE' again, byte for\n"
		"byte: the agent must refuse it as a replay. For tests.\n");
}

static int do_replay(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "to", required_argument, NULL, 't' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *to = NULL, *path;
	__u8 *buf = NULL;
	size_t len = 0;
	struct dest d;
	int c, fd, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "vh", longopts, NULL)) != -1) {
		switch (c) {
		case 't': to = optarg; break;
		case 'v': break;	/* accepted, as the others do */
		case 'h': replay_usage(stdout); return 0;
		default:
			replay_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (argc - optind != 1) {
		pr_warn("replay takes one FILE (see --help)\n");
		return EXIT_USAGE;
	}
	path = argv[optind];
	if (!to) {
		pr_warn("replay needs --to HOST:PORT\n");
		return EXIT_USAGE;
	}
	if (parse_dest(to, &d))
		return EXIT_USAGE;
	err = read_file(path, PC_MSG_MAX, &buf, &len);
	if (err == -EFBIG) {
		pr_warn("%s is larger than a datagram (%d bytes)\n", path,
			PC_MSG_MAX);
		return EXIT_RUNTIME;
	}
	if (err) {
		pr_warn("Couldn't read %s: %s\n", path, strerror(-err));
		return EXIT_RUNTIME;
	}
	if (!len) {
		pr_warn("%s is empty\n", path);
		free(buf);
		return EXIT_RUNTIME;
	}
	fd = open_socket(&d);
	if (fd < 0) {
		free(buf);
		return EXIT_RUNTIME;
	}
	err = send_datagram(fd, &d, buf, len);
	close(fd);
	free(buf);
	if (err) {
		pr_warn("Couldn't send %s to %s: %s\n", path, to,
			strerror(-err));
		return EXIT_RUNTIME;
	}
	printf("replayed %zu bytes from %s to %s\n", len, path, to);
	return 0;
}

/* ---- dispatch ---- */

static int do_help(int argc, char **argv);

static const struct sub_cmd sub_cmds[] = {
	{ "heartbeat", do_heartbeat, "--to HOST:PORT --key FILE --host-id ID",
	  "signed heartbeats every --interval MS" },
	{ "send", do_send, "CMD --to HOST:PORT --key FILE --host-id ID",
	  "one signed command: lockdown|quarantine|release|apply-policy" },
	{ "replay", do_replay, "FILE --to HOST:PORT",
	  "resend a captured datagram as-is (tests)" },
	{ "help", do_help, "", "this help" },
	{},
};

static void controller_usage(FILE *f)
{
	fprintf(f, "Usage: portcullis controller COMMAND [ARGS]\n\nCommands:\n");
	for (const struct sub_cmd *c = sub_cmds; c->name; c++)
		fprintf(f, "  %-10s %-42s %s\n", c->name, c->args, c->help);
	fprintf(f, "\n'portcullis controller COMMAND --help' for the options.\n");
}

static int do_help(int argc, char **argv)
{
	controller_usage(stdout);
	return 0;
}

int pc_controller_main(int argc, char **argv)
{
	if (argc < 2) {
		controller_usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		controller_usage(stdout);
		return 0;
	}
	for (const struct sub_cmd *c = sub_cmds; c->name; c++)
		if (!strcmp(c->name, argv[1]))
			return c->fn(argc - 1, argv + 1);
	pr_warn("unknown controller command '%s'\n\n", argv[1]);
	controller_usage(stderr);
	return EXIT_USAGE;
}

/* ---- keygen ---- */

static void keygen_usage(FILE *f)
{
	fprintf(f,
		"Usage: portcullis keygen --out FILE\n"
		"\n"
		"Create a controller key pair: FILE holds the secret key (mode 0600, never\n"
		"overwritten), FILE.pub the public key to list in each agent's config.\n");
}

int pc_keygen_main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	char pub[sodium_base64_ENCODED_LEN(PC_PK_LEN,
					   sodium_base64_VARIANT_ORIGINAL) + 1];
	const char *out = NULL;
	char *pub_path;
	size_t n;
	int c, err;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': out = optarg; break;
		case 'h': keygen_usage(stdout); return 0;
		default:
			keygen_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc) {
		pr_warn("keygen: unexpected argument '%s'\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (!out) {
		pr_warn("keygen needs --out FILE\n");
		return EXIT_USAGE;
	}
	if (asprintf(&pub_path, "%s.pub", out) < 0) {
		pr_warn("Couldn't allocate a path\n");
		return EXIT_RUNTIME;
	}
	if (crypto_ready()) {
		free(pub_path);
		return EXIT_RUNTIME;
	}
	err = pc_keygen(out, pub, sizeof(pub));
	if (err == -EEXIST) {
		pr_warn("%s already exists: refusing to overwrite a key\n", out);
		goto fail;
	}
	if (err) {
		pr_warn("Couldn't create key file %s: %s\n", out,
			strerror(-err));
		goto fail;
	}
	/* The public half is public: 0644 whatever the umask, so the
	 * operator can copy it to agents without sudo. */
	n = strlen(pub);
	pub[n] = '\n';
	err = write_file(pub_path, pub, n + 1, 0644, true);
	pub[n] = '\0';
	if (err) {
		pr_warn("Couldn't write %s: %s (the secret key %s was created)\n",
			pub_path, strerror(-err), out);
		goto fail;
	}
	printf("public key: %s\n", pub);
	free(pub_path);
	return 0;
fail:
	free(pub_path);
	return EXIT_RUNTIME;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * `portcullis monitor`: the drops the datapath sampled into pc_drops, one
 * line each (or JSON), like `hubble observe` for a host's own lockdown.
 * The kernel side is rate-limited; what it could not sample is counted and
 * reported here, so a flood shows as a number, not a backlog.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/file.h>
#include <getopt.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "log.h"
#include "monitor.h"
#include "pins.h"
#include "policy.h"
#include "stats.h"

struct mon {
	struct pc_maps m;
	bool json;
	int reason;			/* -1: any */
	char rule[PC_NAME_LEN];		/* "": any */
	bool have_cidr;
	struct pc_cidr cidr;
	long count;			/* 0: unlimited */
	long shown;
	__s64 wall_minus_boot_ns;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: portcullis monitor [--json] [--reason REASON] [--rule NAME]\n"
"                          [--addr CIDR] [--count N] [--duration SECONDS]\n"
"\n"
"Stream the packets the datapath drops, as it samples them (at most %d a\n"
"second per CPU). --addr matches source or destination. Reasons are those\n"
"of `portcullis status` (drop_default, drop_deny_rule, drop_quarantine...).\n",
		PC_DROP_SAMPLE_RATE);
}

static void rule_name(const struct mon *mo, const struct pc_drop_event *e,
		      char *buf, size_t len)
{
	struct pc_rule_meta meta;
	__u32 key = PC_RULE_KEY(e->slot & 1, e->rule);

	if (e->rule >= PC_MAX_RULES ||
	    bpf_map_lookup_elem(mo->m.rule_meta, &key, &meta) || !meta.used)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%s", meta.name);
}

static bool wanted(const struct mon *mo, const struct pc_drop_event *e,
		   const char *rule)
{
	if (mo->reason >= 0 && e->reason != mo->reason)
		return false;
	if (mo->rule[0] && strcmp(mo->rule, rule))
		return false;
	if (mo->have_cidr &&
	    !pc_cidr_contains(&mo->cidr, e->saddr, e->family) &&
	    !pc_cidr_contains(&mo->cidr, e->daddr, e->family))
		return false;
	return true;
}

static const char *proto_str(__u8 p, char *buf, size_t len)
{
	switch (p) {
	case 6: return "tcp";
	case 17: return "udp";
	case 1: return "icmp";
	case 58: return "icmpv6";
	}
	snprintf(buf, len, "proto-%u", p);
	return buf;
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct mon *mo = ctx;
	const struct pc_drop_event *e = data;
	char src[INET6_ADDRSTRLEN] = "-", dst[INET6_ADDRSTRLEN] = "-";
	char ifname[IF_NAMESIZE], rule[PC_NAME_LEN], when[40], pbuf[16];
	const char *proto;
	struct tm tm;
	time_t sec;
	__s64 wall;

	if (size < sizeof(*e))
		return 0;
	rule_name(mo, e, rule, sizeof(rule));
	if (!wanted(mo, e, rule))
		return 0;
	if (e->family) {
		int af = e->family == 6 ? AF_INET6 : AF_INET;

		inet_ntop(af, e->saddr, src, sizeof(src));
		inet_ntop(af, e->daddr, dst, sizeof(dst));
	}
	if (!if_indextoname(e->ifindex, ifname))
		snprintf(ifname, sizeof(ifname), "if%u", e->ifindex);
	wall = (__s64)e->ts_ns + mo->wall_minus_boot_ns;
	sec = wall / 1000000000LL;
	gmtime_r(&sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	proto = e->family ? proto_str(e->proto, pbuf, sizeof(pbuf)) : "-";
	if (mo->json)
		printf("{\"time\":\"%s.%06lldZ\",\"interface\":\"%s\",\"direction\":\"%s\","
		       "\"family\":%u,\"proto\":\"%s\",\"src\":\"%s\",\"sport\":%u,"
		       "\"dst\":\"%s\",\"dport\":%u,\"rule\":\"%s\",\"reason\":\"%s\","
		       "\"mode\":\"%s\",\"bytes\":%u}\n",
		       when, (long long)(wall % 1000000000LL) / 1000, ifname,
		       pc_dir_name(e->dir), e->family, proto, src, ntohs(e->sport),
		       dst, ntohs(e->dport), rule, pc_reason_name(e->reason),
		       pc_mode_name(e->mode), e->len);
	else
		printf("%s.%06lld %-8s %-7s %-6s %s:%u -> %s:%u  %-16s %s\n", when,
		       (long long)(wall % 1000000000LL) / 1000, ifname,
		       pc_dir_name(e->dir), proto, src, ntohs(e->sport), dst,
		       ntohs(e->dport), pc_reason_name(e->reason), rule);
	fflush(stdout);
	mo->shown++;
	if (mo->count && mo->shown >= mo->count)
		stop = 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct mon *mo, double *duration)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "reason", required_argument, NULL, 'r' },
		{ "rule", required_argument, NULL, 'R' },
		{ "addr", required_argument, NULL, 'a' },
		{ "count", required_argument, NULL, 'c' },
		{ "duration", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	mo->reason = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jr:R:a:c:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': mo->json = true; break;
		case 'R': snprintf(mo->rule, sizeof(mo->rule), "%s", optarg); break;
		case 'c': mo->count = atol(optarg); break;
		case 'd': *duration = atof(optarg); break;
		case 'h': usage(stdout); exit(0);
		case 'r':
			for (int r = 0; r < PC_REASON_COUNT; r++)
				if (!strcmp(optarg, pc_reason_name(r)))
					mo->reason = r;
			if (mo->reason < 0 || !PC_REASON_IS_DROP(mo->reason)) {
				pr_warn("--reason: '%s' is not a drop reason\n", optarg);
				return -EINVAL;
			}
			break;
		case 'a':
			if (pc_cidr_parse(optarg, &mo->cidr)) {
				pr_warn("--addr: '%s' is not an address or CIDR\n", optarg);
				return -EINVAL;
			}
			mo->have_cidr = true;
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		pr_warn("unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	return 0;
}

/*
 * A BPF ring buffer has one consumer position: two readers would each see
 * part of the stream. One monitor per pin dir, then, held by a lock file.
 */
static char lock_path[PATH_MAX + 64];

static int monitor_lock(const char *pin_dir)
{
	char copy[PATH_MAX], *path = lock_path;
	int fd;

	snprintf(copy, sizeof(copy), "%s", pin_dir);
	snprintf(path, sizeof(lock_path), "/run/lock/portcullis-monitor.%s.lock",
		 basename(copy));
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -EBUSY;
	}
	return fd;
}

int pc_monitor_main(int argc, char **argv, const char *pin_dir)
{
	int lock;
	struct mon mo = {};
	struct ring_buffer *rb;
	struct timespec wall, boot;
	double duration = 0;
	__u64 unsampled0, full0, start, elapsed_ms;
	int err;

	if (parse_args(argc, argv, &mo, &duration))
		return 2;
	if (geteuid() != 0) {
		pr_warn("portcullis must run as root\n");
		return 1;
	}
	err = pc_maps_open_pinned(pin_dir, &mo.m);
	if (err) {
		pr_warn("nothing loaded at %s: %s\n", pin_dir, strerror(-err));
		return 1;
	}
	lock = monitor_lock(pin_dir);
	if (lock == -EBUSY) {
		pr_warn("another portcullis monitor is reading %s's drops (one at "
			"a time: they would split the stream)\n", pin_dir);
		pc_maps_close(&mo.m);
		return 1;
	}
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_BOOTTIME, &boot);
	mo.wall_minus_boot_ns = (wall.tv_sec - boot.tv_sec) * 1000000000LL +
				(wall.tv_nsec - boot.tv_nsec);
	rb = ring_buffer__new(mo.m.drops, on_event, &mo, NULL);
	if (!rb) {
		err = -errno;
		pr_warn("Couldn't open the drop ring: %s\n", strerror(-err));
		pc_maps_close(&mo.m);
		if (lock >= 0)
			close(lock);
		return 1;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	unsampled0 = pc_percpu_u64(mo.m.events, PC_EV_DROP_UNSAMPLED);
	full0 = pc_percpu_u64(mo.m.events, PC_EV_DROP_RING_FULL);
	start = boot.tv_sec * 1000ULL + boot.tv_nsec / 1000000;
	while (!stop) {
		err = ring_buffer__poll(rb, 200);
		if (err < 0 && err != -EINTR) {
			pr_warn("ring buffer: %s\n", strerror(-err));
			break;
		}
		clock_gettime(CLOCK_BOOTTIME, &boot);
		elapsed_ms = boot.tv_sec * 1000ULL + boot.tv_nsec / 1000000 - start;
		if (duration > 0 && (double)elapsed_ms >= duration * 1000.0)
			break;
	}
	/* What the budget or a full ring kept from us, said once, on stderr. */
	fprintf(stderr, "monitor: %ld shown; not sampled (over budget) %llu, "
		"ring full %llu\n", mo.shown,
		(unsigned long long)(pc_percpu_u64(mo.m.events, PC_EV_DROP_UNSAMPLED) - unsampled0),
		(unsigned long long)(pc_percpu_u64(mo.m.events, PC_EV_DROP_RING_FULL) - full0));
	ring_buffer__free(rb);
	pc_maps_close(&mo.m);
	if (lock >= 0) {
		unlink(lock_path);	/* still ours: we hold the lock */
		close(lock);
	}
	return 0;
}

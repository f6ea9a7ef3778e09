// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * tts_probe: the measuring half of tests/bench/tts.sh and agent_cost.sh.
 *
 * One process with sockets in three network namespaces of the lab (a
 * socket stays in the namespace it was made in):
 *   prober     (peer)  UDP to the node's allowed port, payload {magic, seq,
 *                      send time}; every 10th one also to a denied port
 *   receiver   (node)  polled right after each probe: the highest seq
 *                      seen, and where the stream resumed after a gap
 *   controller (mgmt)  signed heartbeats (own thread) and signed commands
 *                      (user/msg.c, the agent's own encoder)
 * Every time is CLOCK_MONOTONIC, which all namespaces share. The send time
 * of every probe is kept here, by seq, so "the first probe dropped" is
 * max(seq received) + 1 and its send time is known exactly. Probes go out
 * only inside a command's window (see probe_until), fast there (every
 * --interval-us, spinning) and slow (0.5 ms, sleeping) elsewhere.
 *
 * Driven by one command per line on stdin; each answers zero or more
 * data lines (tab-separated) and then one line "ok ..." or "err ...":
 *   pass MS                  probe until one sent from now on arrives
 *   stream SECONDS US        probe every US for SECONDS (then: stats)
 *   hb on|off                heartbeats every --hb-ms, or none
 *   cmdloop N GAPMIN GAPMAX  N x {quarantine, first drop, release, first
 *                            pass}, GAPMIN..GAPMAX ms of quiet before each
 *   hbloss N TIMEOUT_MS      N x {stop heartbeats after the next one, first
 *                            drop, heartbeats back, first pass}
 *   deadman PID TIMEOUT_MS   stop heartbeats after the next one, SIGKILL
 *                            PID once it took it, wait for the first drop
 *   flows N PORT             one UDP datagram from each of N source ports
 *   reset                    zero the probe counters
 *   stats                    probe counters since the last reset
 *   quit
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <sodium.h>
#include "msg.h"
#include "portcullis.h"

#define PROBE_MAGIC	0x50435454U	/* "PCTT" */
#define RING		(1U << 21)	/* send times kept, by seq */
#define RX_BATCH	256
#define DENY_EVERY	10		/* a denied-port probe every 10 ticks */
#define KILL_WAIT_NS	200000000ULL	/* for the agent to take the heartbeat */
#define NS_PER_MS	1000000ULL

struct probe_pkt {
	__u32 magic;
	__u32 pad;
	__u64 seq;
	__u64 send_ns;
};

struct opts {
	const char *node_ns, *peer_ns, *mgmt_ns;
	const char *node_addr, *agent_addr, *key, *host_id, *pin_dir;
	int port, deny_port, agent_port;
	__u64 interval_ns, hb_ms, settle_ns;
};

static struct opts o = {
	.port = 5000, .deny_port = 5001, .agent_port = 7800,
	.interval_ns = 20000, .hb_ms = 100, .settle_ns = 2 * NS_PER_MS,
};

static __u8 sk[PC_SK_LEN];
static int probe_fd, deny_fd, rx_fd, rx_deny_fd, ctl_fd, raw_fd;
static __u64 *send_ns;			/* RING entries, by seq */
static _Atomic __u64 sent_seq;		/* last seq sent (from 1) */
static _Atomic __u64 max_rx_seq, rx_count, gaps, reorders, resume_seq;
static _Atomic __u64 deny_sent, deny_rx, sent_base;
static _Atomic int hb_on, hb_stop_req, quit;
static _Atomic __u64 last_hb_ns, hb_sent;
static _Atomic int kill_pid;		/* with hb_stop_req: SIGKILL it */
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static __u64 prev_seq;

static __u64 now_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static __u64 mono(void)
{
	return now_ns(CLOCK_MONOTONIC);
}

static void sleep_until(__u64 t)
{
	struct timespec ts = { t / 1000000000ULL, t % 1000000000ULL };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static void sleep_ns(__u64 d)
{
	sleep_until(mono() + d);
}

/* ---- sockets in other namespaces ---- */

static int enter_ns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err = 0;

	if (fd < 0 || setns(fd, CLONE_NEWNET))
		err = -errno;
	if (fd >= 0)
		close(fd);
	if (err)
		fprintf(stderr, "tts_probe: Couldn't enter netns %s: %s\n", path,
			strerror(-err));
	return err;
}

static int udp_socket(const char *addr, int port, bool bind_it)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd, big = 8 << 20;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -EINVAL;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind_it) {
		setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
		if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)))
			goto fail;
	} else if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		goto fail;
	}
	return fd;
fail:
	big = -errno;
	fprintf(stderr, "tts_probe: Couldn't %s %s:%d: %s\n",
		bind_it ? "bind" : "connect", addr, port, strerror(-big));
	close(fd);
	return big;
}

static int sockets_open(void)
{
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), err;

	if (home < 0)
		return -errno;
	err = enter_ns(o.node_ns);
	if (!err) {
		rx_fd = udp_socket(o.node_addr, o.port, true);
		rx_deny_fd = udp_socket(o.node_addr, o.deny_port, true);
		err = rx_fd < 0 ? rx_fd : rx_deny_fd < 0 ? rx_deny_fd : 0;
	}
	if (!err)
		err = enter_ns(o.peer_ns);
	if (!err) {
		probe_fd = udp_socket(o.node_addr, o.port, false);
		deny_fd = udp_socket(o.node_addr, o.deny_port, false);
		raw_fd = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP);
		err = probe_fd < 0 ? probe_fd : deny_fd < 0 ? deny_fd :
		      raw_fd < 0 ? -errno : 0;
	}
	if (!err)
		err = enter_ns(o.mgmt_ns);
	if (!err) {
		ctl_fd = udp_socket(o.agent_addr, o.agent_port, false);
		err = ctl_fd < 0 ? ctl_fd : 0;
	}
	if (setns(home, CLONE_NEWNET) && !err)
		err = -errno;
	close(home);
	return err;
}

/* ---- controller ---- */

/* Wall-clock ns, strictly increasing: the agent refuses any seq not above
 * its last (per key and type), as `portcullis controller` does. */
static __u64 next_seq(void)
{
	__u64 s;

	pthread_mutex_lock(&seq_lock);
	s = now_ns(CLOCK_REALTIME);
	if (s <= prev_seq)
		s = prev_seq + 1;
	prev_seq = s;
	pthread_mutex_unlock(&seq_lock);
	return s;
}

static int msg_build(enum pc_msg_type type, enum pc_cmd cmd, __u8 *buf,
		     size_t len)
{
	struct pc_msg m = { .type = type, .cmd = cmd };
	__u64 wall = now_ns(CLOCK_REALTIME) / NS_PER_MS;

	m.seq = next_seq();
	m.timestamp_ms = wall;
	m.expires_ms = type == PC_MSG_COMMAND ? wall + 60000 : 0;
	if (type == PC_MSG_COMMAND)
		randombytes_buf(m.cmd_id, sizeof(m.cmd_id));
	snprintf(m.host_id, sizeof(m.host_id), "%s", o.host_id);
	return pc_msg_encode(&m, sk, buf, len);
}

/* Sign first, then stamp T0 right before the datagram leaves. */
static int send_cmd(enum pc_cmd cmd, __u64 *t0)
{
	__u8 buf[512];
	int n = msg_build(PC_MSG_COMMAND, cmd, buf, sizeof(buf));

	if (n < 0)
		return n;
	*t0 = mono();
	return send(ctl_fd, buf, n, 0) == n ? 0 : -errno;
}

static __s64 agent_hb_stamp(void);

static void *hb_thread(void *arg)
{
	__u64 next = mono();
	__u8 buf[512];
	int n, pid;

	while (!quit) {
		sleep_until(next);
		next += o.hb_ms * NS_PER_MS;
		if (!hb_on) {
			next = mono() + NS_PER_MS;	/* poll for "hb on" */
			continue;
		}
		n = msg_build(PC_MSG_HEARTBEAT, PC_CMD_NONE, buf, sizeof(buf));
		if (n < 0)
			continue;
		last_hb_ns = mono();
		if (send(ctl_fd, buf, n, 0) == n)
			hb_sent++;
		if (hb_stop_req) {
			hb_on = 0;
			pid = kill_pid;
			if (pid > 0) {
				/* Right after the agent took it: its stamp in
				 * the dead-man map (at most KILL_WAIT_NS). */
				__u64 lim = mono() + KILL_WAIT_NS;

				while (agent_hb_stamp() < (__s64)last_hb_ns &&
				       mono() < lim)
					sleep_ns(50000);
				kill(pid, SIGKILL);
			}
			kill_pid = 0;
			hb_stop_req = 0;
		}
	}
	return NULL;
}

/* Stop heartbeats right after the next one; its send time. */
static __u64 hb_stop_after_next(int pid)
{
	__u64 limit = mono() + 3 * o.hb_ms * NS_PER_MS + 100 * NS_PER_MS;

	kill_pid = pid;
	hb_stop_req = 1;
	while (hb_stop_req && mono() < limit)
		sleep_ns(100000);
	return hb_stop_req ? 0 : last_hb_ns;
}

/* ---- probes ---- */

/*
 * Probing runs in the calling thread, in windows: the probe and the
 * receiver are the same thread, so nothing of ours competes with the
 * agent for the second CPU. Inside a fast window probes go out every
 * --interval-us, spinning to each send time (sleeping 20 us in a VM wakes
 * 100+ us late, and the probe gap is the resolution); outside, every
 * SLOW_NS, sleeping. A probe that passes the datapath is already in the
 * node socket's queue when send() returns (veth delivers in the sender's
 * softirq), so polling the socket after each send sees it at once.
 */
#define SLOW_NS		500000ULL

static __u64 probe_seq;

static void rx_one(const struct probe_pkt *p)
{
	__u64 max = max_rx_seq;

	if (p->magic != PROBE_MAGIC)
		return;
	rx_count++;
	if (p->seq > max + 1) {
		gaps++;
		resume_seq = p->seq;
	}
	if (p->seq > max)
		max_rx_seq = p->seq;
	else
		reorders++;
}

static void drain(int fd, bool deny)
{
	static struct probe_pkt pk[RX_BATCH];
	static struct mmsghdr mm[RX_BATCH];
	static struct iovec iov[RX_BATCH];
	int n, i;

	for (i = 0; i < RX_BATCH; i++) {
		iov[i] = (struct iovec){ &pk[i], sizeof(pk[i]) };
		mm[i].msg_hdr = (struct msghdr){ .msg_iov = &iov[i], .msg_iovlen = 1 };
	}
	while ((n = recvmmsg(fd, mm, RX_BATCH, MSG_DONTWAIT, NULL)) > 0) {
		for (i = 0; i < n; i++) {
			if (mm[i].msg_len != sizeof(pk[i]))
				continue;
			if (!deny)
				rx_one(&pk[i]);
			else if (pk[i].magic == PROBE_MAGIC)
				deny_rx++;
		}
	}
}

static void probe_send(void)
{
	struct probe_pkt p = { .magic = PROBE_MAGIC };

	p.seq = ++probe_seq;
	p.send_ns = mono();
	send_ns[p.seq & (RING - 1)] = p.send_ns;
	sent_seq = p.seq;
	send(probe_fd, &p, sizeof(p), MSG_DONTWAIT);
	if (p.seq % DENY_EVERY == 0 &&
	    send(deny_fd, &p, sizeof(p), MSG_DONTWAIT) == sizeof(p))
		deny_sent++;
	drain(rx_fd, false);
	if (p.seq % DENY_EVERY == 0)
		drain(rx_deny_fd, true);
}

static __u64 sent_at(__u64 seq)
{
	return send_ns[seq & (RING - 1)];
}

enum until { UNTIL_TIME, UNTIL_DROPPED, UNTIL_PASSING };

/*
 * Probe until `until` holds or `limit`: slowly before fast_from, then
 * fast. UNTIL_DROPPED: the probe after the last received went out more
 * than settle ago; returns it (the first dropped). UNTIL_PASSING: a probe
 * sent at or after t arrived; returns the first one through after the
 * gap. UNTIL_TIME: returns the last seq sent. 0: limit reached.
 */
static __u64 probe_until(enum until u, __u64 t, __u64 fast_from, __u64 limit)
{
	__u64 next = mono(), now, m;

	for (;;) {
		now = mono();
		if (now >= limit)
			return u == UNTIL_TIME ? probe_seq : 0;
		if (next < fast_from) {
			sleep_until(next < limit ? next : limit);
		} else {
			while ((now = mono()) < next)
				;
		}
		probe_send();
		now = mono();
		/* Late (descheduled): carry on from now, never burst. */
		if (next < now && now - next > o.interval_ns)
			next = now;
		next += next < fast_from ? SLOW_NS : o.interval_ns;
		m = max_rx_seq;
		if (u == UNTIL_DROPPED && m + 1 <= probe_seq &&
		    now - sent_at(m + 1) > o.settle_ns)
			return m + 1;
		if (u == UNTIL_PASSING && m && sent_at(m) >= t)
			return resume_seq && sent_at(resume_seq) >= t ? resume_seq : m;
	}
}

/* ---- commands ---- */

static double us(__s64 ns)
{
	return ns / 1000.0;
}

static void cmd_pass(long ms)
{
	__u64 t = mono(), s = probe_until(UNTIL_PASSING, t, ULLONG_MAX,
					  t + ms * NS_PER_MS);

	if (s)
		printf("ok pass %.1f us\n", us(sent_at(s) - t));
	else
		printf("err no probe passed within %ld ms\n", ms);
}

/* Probe slowly for SECONDS (a background check that enforcement holds:
 * see stats for what passed and what did not). */
static void cmd_stream(long secs, long interval_us)
{
	__u64 keep = o.interval_ns;

	o.interval_ns = interval_us * 1000;
	probe_until(UNTIL_TIME, 0, 0, mono() + secs * 1000 * NS_PER_MS);
	o.interval_ns = keep;
	printf("ok stream %ld s\n", secs);
}

/*
 * One trial: quiet gap (the agent idle, a random phase against its tick
 * and the heartbeats), 1 ms of fast probes that must pass, quarantine at
 * T0, probes until one is dropped, release at T1, probes until through.
 */
static void cmd_loop(long n, long gmin, long gmax)
{
	__u64 t0, t1, fd, rs, early = 0, now;
	long i;

	for (i = 0; i < n; i++) {
		sleep_ns((gmin + (gmax > gmin ? randombytes_uniform(gmax - gmin + 1) : 0)) *
			 NS_PER_MS);
		now = mono();
		if (!probe_until(UNTIL_PASSING, now, ULLONG_MAX, now + 1000 * NS_PER_MS)) {
			printf("err probes not passing before trial %ld\n", i);
			return;
		}
		probe_until(UNTIL_TIME, 0, 0, mono() + NS_PER_MS);
		if (send_cmd(PC_CMD_QUARANTINE, &t0)) {
			printf("err send quarantine: %s\n", strerror(errno));
			return;
		}
		fd = probe_until(UNTIL_DROPPED, 0, 0, t0 + 1000 * NS_PER_MS);
		if (send_cmd(PC_CMD_RELEASE, &t1)) {
			printf("err send release: %s\n", strerror(errno));
			return;
		}
		rs = probe_until(UNTIL_PASSING, t1, 0, t1 + 1000 * NS_PER_MS);
		if (!fd || !rs) {
			printf("err trial %ld: %s\n", i, fd ? "release never passed" :
			       "nothing dropped within 1 s");
			return;
		}
		early += sent_at(fd) < t0;
		/* trial, tts(first dropped), last passed, release->first pass,
		 * probe gap at the boundary, early */
		printf("cmd\t%ld\t%.1f\t%.1f\t%.1f\t%.1f\t%d\n", i,
		       us(sent_at(fd) - t0), us((__s64)(sent_at(fd - 1) - t0)),
		       us(sent_at(rs) - t1), us(sent_at(fd) - sent_at(fd - 1)),
		       sent_at(fd) < t0);
	}
	printf("ok cmdloop %ld early %llu\n", n, (unsigned long long)early);
}

/* The agent's stamp of the last heartbeat it took, on the monotonic clock. */
static __s64 agent_hb_stamp(void)
{
	char path[512];
	__u32 key = PC_DM_LAST_HB_NS;
	__u64 v = 0, off;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", o.pin_dir, PC_MAP_DEADMAN);
	fd = bpf_obj_get(path);
	if (fd < 0)
		return 0;
	bpf_map_lookup_elem(fd, &key, &v);
	close(fd);
	off = now_ns(CLOCK_BOOTTIME) - mono();
	return v ? (__s64)(v - off) : 0;
}

/*
 * One heartbeat-loss trial: heartbeats stop after one sent at T_last.
 * Slow probes (every 0.5 ms: an early drop would show) until 5 ms before
 * T_last + timeout, fast ones from there to the first drop.
 */
static int hb_trial(const char *tag, long i, int pid, long timeout_ms)
{
	__u64 tl, fd, tmo = timeout_ms * NS_PER_MS, t = mono();
	__s64 stamp;

	if (!probe_until(UNTIL_PASSING, t, ULLONG_MAX, t + 3000 * NS_PER_MS)) {
		printf("err %s %ld: probes not passing before the trial\n", tag, i);
		return -1;
	}
	tl = hb_stop_after_next(pid);
	if (!tl) {
		printf("err heartbeat thread did not stop\n");
		return -1;
	}
	fd = probe_until(UNTIL_DROPPED, 0, tl + tmo - 5 * NS_PER_MS,
			 tl + tmo + 3000 * NS_PER_MS);
	stamp = agent_hb_stamp();
	if (!fd) {
		printf("err %s %ld: nothing dropped within timeout + 3 s\n", tag, i);
		return -1;
	}
	/* trial, first dropped - (last hb + timeout), same for the last one
	 * passed, agent's stamp of the last heartbeat - its send time, gap */
	printf("%s\t%ld\t%.1f\t%.1f\t%.1f\t%.1f\t%d\n", tag, i,
	       us((__s64)(sent_at(fd) - tl - tmo)),
	       us((__s64)(sent_at(fd - 1) - tl - tmo)),
	       stamp ? us(stamp - (__s64)tl) : -1.0,
	       us(sent_at(fd) - sent_at(fd - 1)), sent_at(fd) < tl);
	return 0;
}

static void cmd_hbloss(long n, long timeout_ms)
{
	long i;

	for (i = 0; i < n; i++) {
		hb_on = 1;
		/* A few heartbeats in, at a random phase to the agent's tick. */
		sleep_ns((150 + randombytes_uniform(100)) * NS_PER_MS);
		if (hb_trial("hbloss", i, 0, timeout_ms))
			return;
	}
	hb_on = 1;
	printf("ok hbloss %ld\n", n);
}

static void cmd_deadman(int pid, long timeout_ms)
{
	static long trial;

	if (!hb_on) {
		printf("err heartbeats are off\n");
		return;
	}
	if (!hb_trial("deadman", trial++, pid, timeout_ms))
		printf("ok deadman\n");
}

/* N datagrams from N source ports (raw socket: no bind per port), each a
 * new flow for the datapath. */
static void cmd_flows(long n, int port)
{
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct {
		struct udphdr uh;
		__u32 magic;
	} d;
	long i, ok = 0;

	inet_pton(AF_INET, o.node_addr, &dst.sin_addr);
	for (i = 0; i < n; i++) {
		d.uh.source = htons(10000 + i % 55000);
		d.uh.dest = htons(port);
		d.uh.len = htons(sizeof(d));
		d.uh.check = 0;		/* IPv4: no checksum */
		d.magic = 0;
		if (sendto(raw_fd, &d, sizeof(d), 0, (struct sockaddr *)&dst,
			   sizeof(dst)) == sizeof(d))
			ok++;
		if (i % 2000 == 1999) {
			sleep_ns(NS_PER_MS);	/* let the veth queue drain */
			drain(rx_fd, false);	/* and our socket's */
		}
	}
	sleep_ns(10 * NS_PER_MS);
	drain(rx_fd, false);
	printf("ok flows %ld sent\n", ok);
}

static void cmd_reset(void)
{
	rx_count = gaps = reorders = deny_sent = deny_rx = hb_sent = 0;
	sent_base = sent_seq;
	printf("ok reset\n");
}

static void cmd_stats(void)
{
	drain(rx_fd, false);
	drain(rx_deny_fd, true);
	printf("ok sent %llu rx %llu gaps %llu reorders %llu deny_sent %llu "
	       "deny_rx %llu hb_sent %llu\n",
	       (unsigned long long)(sent_seq - sent_base),
	       (unsigned long long)rx_count,
	       (unsigned long long)gaps, (unsigned long long)reorders,
	       (unsigned long long)deny_sent, (unsigned long long)deny_rx,
	       (unsigned long long)hb_sent);
}

static void dispatch(char *line)
{
	char w[16] = "", a[32] = "";
	long x = 0, y = 0, z = 0;
	int n = sscanf(line, "%15s %ld %ld %ld", w, &x, &y, &z);

	if (n >= 1 && !strcmp(w, "hb") && sscanf(line, "hb %31s", a) == 1) {
		hb_on = !strcmp(a, "on");
		printf("ok hb %s\n", hb_on ? "on" : "off");
	} else if (n == 2 && !strcmp(w, "pass")) {
		cmd_pass(x);
	} else if (n == 3 && !strcmp(w, "stream")) {
		cmd_stream(x, y);
	} else if (n == 4 && !strcmp(w, "cmdloop")) {
		cmd_loop(x, y, z);
	} else if (n == 3 && !strcmp(w, "hbloss")) {
		cmd_hbloss(x, y);
	} else if (n == 3 && !strcmp(w, "deadman")) {
		cmd_deadman(x, y);
	} else if (n == 3 && !strcmp(w, "flows")) {
		cmd_flows(x, y);
	} else if (n == 1 && !strcmp(w, "reset")) {
		cmd_reset();
	} else if (n == 1 && !strcmp(w, "stats")) {
		cmd_stats();
	} else if (n == 1 && !strcmp(w, "quit")) {
		quit = 1;
		printf("ok quit\n");
	} else {
		printf("err unknown command '%s'\n", line);
	}
	fflush(stdout);
}

/* ---- start ---- */

static int usage(void)
{
	fprintf(stderr,
		"Usage: tts_probe --node-ns P --peer-ns P --mgmt-ns P --node-addr A\n"
		"                 --agent-addr A --key FILE --host-id ID --pin-dir DIR\n"
		"                 [--port N] [--deny-port N] [--agent-port N]\n"
		"                 [--interval-us N] [--hb-ms N] [--settle-ms N]\n"
		"Commands on stdin: see the comment at the top of tts_probe.c.\n");
	return 2;
}

static int parse(int argc, char **argv)
{
	for (int i = 1; i + 1 < argc; i += 2) {
		const char *k = argv[i], *v = argv[i + 1];

		if (!strcmp(k, "--node-ns")) o.node_ns = v;
		else if (!strcmp(k, "--peer-ns")) o.peer_ns = v;
		else if (!strcmp(k, "--mgmt-ns")) o.mgmt_ns = v;
		else if (!strcmp(k, "--node-addr")) o.node_addr = v;
		else if (!strcmp(k, "--agent-addr")) o.agent_addr = v;
		else if (!strcmp(k, "--key")) o.key = v;
		else if (!strcmp(k, "--host-id")) o.host_id = v;
		else if (!strcmp(k, "--pin-dir")) o.pin_dir = v;
		else if (!strcmp(k, "--port")) o.port = atoi(v);
		else if (!strcmp(k, "--deny-port")) o.deny_port = atoi(v);
		else if (!strcmp(k, "--agent-port")) o.agent_port = atoi(v);
		else if (!strcmp(k, "--interval-us")) o.interval_ns = atoll(v) * 1000;
		else if (!strcmp(k, "--hb-ms")) o.hb_ms = atoll(v);
		else if (!strcmp(k, "--settle-ms")) o.settle_ns = atoll(v) * NS_PER_MS;
		else return -1;
	}
	if (!(argc % 2) || !o.node_ns || !o.peer_ns || !o.mgmt_ns || !o.node_addr ||
	    !o.agent_addr || !o.key || !o.host_id || !o.pin_dir ||
	    !o.interval_ns || !o.hb_ms)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	pthread_t hb;
	char line[256], err[256];

	if (parse(argc, argv))
		return usage();
	/* stdout is a pipe to the script: one line a trial, as it happens. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pc_crypto_init() || pc_key_load_secret(o.key, sk, err, sizeof(err))) {
		fprintf(stderr, "tts_probe: %s\n", err);
		return 1;
	}
	send_ns = calloc(RING, sizeof(*send_ns));
	if (!send_ns || sockets_open())
		return 1;
	pthread_create(&hb, NULL, hb_thread, NULL);
	printf("ok ready\n");
	fflush(stdout);
	while (!quit && fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0])
			dispatch(line);
	}
	quit = 1;
	pthread_join(hb, NULL);
	return 0;
}

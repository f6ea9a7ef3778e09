// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * flood: bounded UDP/IPv4 traffic for tests/bench/veth.sh and swap.sh.
 *
 *   flood send --ifname IF --dst-mac MAC --src A[-B] --dst ADDR
 *              [--sport P[-Q]] [--dport N] [--size BYTES] [--batch N]
 *              [--duration SECS] [--count N] [--pps N] [--seq] [--twice]
 *              [--payload FILE]
 *   flood recv --port N [--duration SECS] [--idle SECS] [--max-seq N]
 *
 * send writes whole Ethernet frames on an AF_PACKET socket bound to IF,
 * `--batch` (64) frames per sendmmsg() call, with PACKET_QDISC_BYPASS: the
 * cheapest path from userspace into a veth, so that on a small machine the
 * receiver, not the sender, is what runs out of CPU. A raw frame lets the
 * source address and port walk a range (no local address, no ARP needed:
 * the destination MAC is given). It stops at `--duration` seconds or
 * `--count` frames attempted, whichever comes first (both always bounded),
 * and prints what it sent and the rate. `--pps` paces it; `--seq` writes a
 * 64-bit big-endian sequence number (0, 1, ...) first in the payload;
 * `--twice` sends each source address and port two frames in a row (a
 * flow's first packet and one that uses it, tests/e2e/outsider/flows.sh).
 * `--payload FILE` sends FILE's bytes as every datagram's payload (a
 * forged controller message for tests/e2e/outsider/ctlflood.sh).
 *
 * recv counts datagrams on a UDP port per source address and, with the
 * sequence numbers of `send --seq`, how many distinct ones arrived, which
 * are missing below the highest seen, and duplicates. It stops at
 * `--duration`, after `--idle` seconds without a datagram once one came,
 * or at SIGTERM/SIGINT, and then prints its counts.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MAX_BATCH	256
#define FRAME_MIN	60	/* Ethernet minimum without FCS */
#define FRAME_MAX	1514
#define HDR_LEN		(sizeof(struct ethhdr) + sizeof(struct iphdr) + \
			 sizeof(struct udphdr))
#define MAX_SOURCES	64	/* recv: distinct source addresses tracked */
#define HARD_MAX_SECS	600	/* no run lasts longer, whatever is asked */

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = 1;
}

__attribute__((format(printf, 1, 2)))
static void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "flood: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long parse_num(const char *s, const char *what,
				    unsigned long long max)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s || *end || v > max)
		die("bad %s '%s' (0..%llu)", what, s, max);
	return v;
}

static double parse_secs(const char *s, const char *what)
{
	char *end;
	double v;

	v = strtod(s, &end);
	if (end == s || *end || !(v > 0) || v > HARD_MAX_SECS)
		die("bad %s '%s' (0 < secs <= %d)", what, s, HARD_MAX_SECS);
	return v;
}

/* "A" or "A-B", IPv4, host order out. */
static void parse_addr_range(const char *s, uint32_t *lo, uint32_t *hi)
{
	char buf[64], *dash;
	struct in_addr a;

	if (strlen(s) >= sizeof(buf))
		die("bad address range '%s'", s);
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1)
		die("bad IPv4 address '%s'", buf);
	*lo = *hi = ntohl(a.s_addr);
	if (dash) {
		if (inet_pton(AF_INET, dash + 1, &a) != 1)
			die("bad IPv4 address '%s'", dash + 1);
		*hi = ntohl(a.s_addr);
	}
	if (*hi < *lo)
		die("reversed address range '%s'", s);
}

static void parse_port_range(const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[32], *dash;

	if (strlen(s) >= sizeof(buf))
		die("bad port range '%s'", s);
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	*lo = *hi = parse_num(buf, "port", 65535);
	if (dash)
		*hi = parse_num(dash + 1, "port", 65535);
	if (*hi < *lo || !*lo)
		die("bad port range '%s'", s);
}

static void parse_mac(const char *s, unsigned char mac[ETH_ALEN])
{
	unsigned int b[ETH_ALEN];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4],
		   &b[5]) != ETH_ALEN)
		die("bad MAC address '%s'", s);
	for (int i = 0; i < ETH_ALEN; i++)
		mac[i] = b[i];
}

static uint16_t ip_csum(const void *hdr, size_t len)
{
	const uint16_t *p = hdr;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *p++;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

/* ---- send ---- */

struct send_opts {
	const char *ifname;
	unsigned char dst_mac[ETH_ALEN];
	int have_mac;
	uint32_t src_lo, src_hi, dst;	/* host order */
	uint16_t sport_lo, sport_hi, dport;
	unsigned int size, batch;
	double duration;
	unsigned long long count, pps;
	int seq;
	int twice;	/* frames 2k and 2k+1 share a source */
	unsigned char payload[FRAME_MAX];	/* --payload: plen bytes */
	size_t plen;
	const char *obj;	/* flood xdp: the compiled flood_xdp.bpf.c */
};

static const struct send_opts send_defaults = {
	.sport_lo = 40000, .sport_hi = 40000, .dport = 9,
	.size = FRAME_MIN, .batch = 64, .duration = 3.0,
	.count = 100000000ULL,
};

/* Template frame: our MAC as source, checksums redone per frame. */
static void build_template(const struct send_opts *o, const unsigned char *src_mac,
			   unsigned char *f)
{
	struct ethhdr *eth = (void *)f;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);

	memset(f, 0, o->size);
	memcpy(eth->h_dest, o->dst_mac, ETH_ALEN);
	memcpy(eth->h_source, src_mac, ETH_ALEN);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_UDP;
	ip->tot_len = htons(o->plen ? sizeof(*ip) + sizeof(*udp) + o->plen :
				      o->size - sizeof(*eth));
	ip->daddr = htonl(o->dst);
	udp->dest = htons(o->dport);
	udp->len = htons(o->plen ? sizeof(*udp) + o->plen :
				   o->size - sizeof(*eth) - sizeof(*ip));
	memcpy(udp + 1, o->payload, o->plen);
	/* UDP checksum 0: "none", allowed for IPv4. */
}

/* Frame number n: its source address and port, its sequence number. */
static void fill_frame(const struct send_opts *o, unsigned char *f,
		       unsigned long long n)
{
	struct iphdr *ip = (void *)(f + sizeof(struct ethhdr));
	struct udphdr *udp = (void *)(ip + 1);
	unsigned long long naddr = (unsigned long long)o->src_hi - o->src_lo + 1;
	unsigned int nport = o->sport_hi - o->sport_lo + 1;
	unsigned long long src = o->twice ? n / 2 : n;

	ip->saddr = htonl(o->src_lo + (uint32_t)(src % naddr));
	ip->id = htons((uint16_t)n);
	ip->check = 0;
	ip->check = ip_csum(ip, sizeof(*ip));
	udp->source = htons(o->sport_lo + (uint16_t)((src / naddr) % nport));
	if (o->seq) {
		unsigned char *p = f + HDR_LEN;

		for (int i = 7; i >= 0; i--, n >>= 8)
			p[i] = n & 0xff;
	}
}

static int open_packet_socket(const char *ifname, unsigned char *mac)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	int fd, one = 1, sndbuf = 4 << 20;
	struct ifreq ifr = {};

	/* Protocol 0: this socket receives nothing, it only sends. */
	fd = socket(AF_PACKET, SOCK_RAW, 0);
	if (fd < 0)
		die("socket(AF_PACKET): %s", strerror(errno));
	sll.sll_ifindex = if_nametoindex(ifname);
	if (!sll.sll_ifindex)
		die("no interface '%s': %s", ifname, strerror(errno));
	sll.sll_protocol = htons(ETH_P_IP);
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)))
		die("bind to '%s': %s", ifname, strerror(errno));
	if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)))
		die("PACKET_QDISC_BYPASS on '%s': %s", ifname, strerror(errno));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf)))
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, SIOCGIFHWADDR, &ifr))
		die("SIOCGIFHWADDR on '%s': %s", ifname, strerror(errno));
	memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
	return fd;
}

static void send_usage(void)
{
	fprintf(stderr,
		"usage: flood send --ifname IF --dst-mac MAC --src A[-B] --dst ADDR\n"
		"                  [--sport P[-Q]] [--dport N] [--size BYTES] [--batch N]\n"
		"                  [--duration SECS] [--count N] [--pps N] [--seq] [--twice]\n"
		"                  [--payload FILE]\n"
		"       flood xdp --obj FLOOD_XDP.O (the same options but --pps, --seq)\n");
	exit(2);
}

static void parse_send(int argc, char **argv, struct send_opts *o)
{
	static const struct option longopts[] = {
		{ "ifname", required_argument, NULL, 'i' },
		{ "dst-mac", required_argument, NULL, 'm' },
		{ "src", required_argument, NULL, 's' },
		{ "dst", required_argument, NULL, 'd' },
		{ "sport", required_argument, NULL, 'S' },
		{ "dport", required_argument, NULL, 'D' },
		{ "size", required_argument, NULL, 'z' },
		{ "batch", required_argument, NULL, 'b' },
		{ "duration", required_argument, NULL, 't' },
		{ "count", required_argument, NULL, 'c' },
		{ "pps", required_argument, NULL, 'r' },
		{ "seq", no_argument, NULL, 'q' },
		{ "twice", no_argument, NULL, 'w' },
		{ "obj", required_argument, NULL, 'o' },
		{ "payload", required_argument, NULL, 'p' },
		{}
	};
	FILE *pf;
	int opt, have_src = 0, have_dst = 0;
	uint32_t dummy;

	*o = send_defaults;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'i': o->ifname = optarg; break;
		case 'm': parse_mac(optarg, o->dst_mac); o->have_mac = 1; break;
		case 's': parse_addr_range(optarg, &o->src_lo, &o->src_hi);
			  have_src = 1; break;
		case 'd': parse_addr_range(optarg, &o->dst, &dummy);
			  have_dst = 1; break;
		case 'S': parse_port_range(optarg, &o->sport_lo, &o->sport_hi); break;
		case 'D': o->dport = parse_num(optarg, "port", 65535); break;
		case 'z': o->size = parse_num(optarg, "size", FRAME_MAX); break;
		case 'b': o->batch = parse_num(optarg, "batch", MAX_BATCH); break;
		case 't': o->duration = parse_secs(optarg, "duration"); break;
		case 'c': o->count = parse_num(optarg, "count", 1ULL << 40); break;
		case 'r': o->pps = parse_num(optarg, "pps", 100000000ULL); break;
		case 'q': o->seq = 1; break;
		case 'w': o->twice = 1; break;
		case 'o': o->obj = optarg; break;
		case 'p':
			pf = fopen(optarg, "rb");
			if (!pf)
				die("payload '%s': %s", optarg, strerror(errno));
			o->plen = fread(o->payload, 1, FRAME_MAX - HDR_LEN + 1, pf);
			fclose(pf);
			if (!o->plen || o->plen > FRAME_MAX - HDR_LEN)
				die("payload '%s': 1..%zu bytes", optarg,
				    FRAME_MAX - HDR_LEN);
			break;
		default: send_usage();
		}
	}
	if (optind != argc || !o->ifname || !o->have_mac || !have_src ||
	    !have_dst || !o->batch || !o->count)
		send_usage();
	if (o->plen && o->seq)
		die("--payload and --seq exclude each other");
	if (o->plen)	/* the frame fits the payload; Ethernet pads short ones */
		o->size = HDR_LEN + o->plen < FRAME_MIN ? FRAME_MIN :
						    HDR_LEN + o->plen;
	if (o->size < FRAME_MIN || o->size < HDR_LEN + (o->seq ? 8 : 0))
		die("size %u too small (minimum %d)", o->size, FRAME_MIN);
}

/* Sleep until frame n is due at the paced rate; 1 if it is not due yet. */
static int pace(const struct send_opts *o, unsigned long long n, double t)
{
	double ahead = (double)n / o->pps - t;
	struct timespec ts;

	if (ahead <= 0)
		return 0;
	if (ahead > 0.01)
		ahead = 0.01;	/* wake up to look at the clock and signals */
	ts.tv_sec = 0;
	ts.tv_nsec = ahead * 1e9;
	nanosleep(&ts, NULL);
	return 1;
}

static int do_send(int argc, char **argv)
{
	static unsigned char frames[MAX_BATCH][FRAME_MAX];
	struct mmsghdr msgs[MAX_BATCH] = {};
	struct iovec iov[MAX_BATCH];
	unsigned long long n = 0, busy = 0;
	unsigned char src_mac[ETH_ALEN];
	struct send_opts o;
	double t0, t;
	int fd;

	parse_send(argc, argv, &o);
	fd = open_packet_socket(o.ifname, src_mac);
	for (unsigned int i = 0; i < o.batch; i++) {
		build_template(&o, src_mac, frames[i]);
		iov[i].iov_base = frames[i];
		iov[i].iov_len = o.size;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = now_s();
	while (!stop && n < o.count) {
		unsigned int k = o.batch;
		int r;

		t = now_s() - t0;
		if (t >= o.duration)
			break;
		if (o.pps && pace(&o, n, t))
			continue;
		if (k > o.count - n)
			k = o.count - n;
		for (unsigned int i = 0; i < k; i++)
			fill_frame(&o, frames[i], n + i);
		r = sendmmsg(fd, msgs, k, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != ENOBUFS && errno != EAGAIN)
				die("sendmmsg on '%s': %s", o.ifname, strerror(errno));
			/* The device refused frame n: send it again, so that
			 * --seq numbers are never skipped. */
			busy++;
			continue;
		}
		n += r;
	}
	t = now_s() - t0;
	close(fd);
	printf("sent %llu busy %llu elapsed %.3f rate %.0f\n", n, busy, t,
	       t > 0 ? n / t : 0.0);
	return 0;
}

/* ---- recv ---- */

struct src_stat {
	uint32_t addr;			/* network order */
	unsigned long long pkts, distinct, dups, max_seq, out_of_range;
	int have_seq;
	unsigned char *seen;		/* bitmap of sequence numbers */
};

struct recv_opts {
	uint16_t port;
	double duration, idle;
	unsigned long long max_seq;
};

static const struct recv_opts recv_defaults = {
	.duration = 60.0, .idle = 0, .max_seq = 1ULL << 24,
};

static void recv_usage(void)
{
	fprintf(stderr, "usage: flood recv --port N [--duration SECS] [--idle SECS]"
			" [--max-seq N]\n");
	exit(2);
}

static void parse_recv(int argc, char **argv, struct recv_opts *o)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "duration", required_argument, NULL, 't' },
		{ "idle", required_argument, NULL, 'I' },
		{ "max-seq", required_argument, NULL, 'M' },
		{}
	};
	int opt;

	*o = recv_defaults;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (opt) {
		case 'p': o->port = parse_num(optarg, "port", 65535); break;
		case 't': o->duration = parse_secs(optarg, "duration"); break;
		case 'I': o->idle = parse_secs(optarg, "idle"); break;
		case 'M': o->max_seq = parse_num(optarg, "max-seq", 1ULL << 30); break;
		default: recv_usage();
		}
	}
	if (optind != argc || !o->port)
		recv_usage();
}

static struct src_stat *src_find(struct src_stat *tab, int *n, uint32_t addr,
				 unsigned long long max_seq)
{
	for (int i = 0; i < *n; i++)
		if (tab[i].addr == addr)
			return &tab[i];
	if (*n == MAX_SOURCES)
		return NULL;
	tab[*n].addr = addr;
	tab[*n].seen = calloc(max_seq / 8 + 1, 1);
	if (!tab[*n].seen)
		die("out of memory");
	return &tab[(*n)++];
}

static void count_datagram(struct src_stat *s, const unsigned char *p,
			   size_t len, unsigned long long max_seq)
{
	unsigned long long seq = 0;

	s->pkts++;
	if (len < 8)
		return;
	for (int i = 0; i < 8; i++)
		seq = seq << 8 | p[i];
	if (seq >= max_seq) {
		s->out_of_range++;
		return;
	}
	if (s->seen[seq / 8] & (1 << (seq % 8))) {
		s->dups++;
		return;
	}
	s->seen[seq / 8] |= 1 << (seq % 8);
	s->distinct++;
	if (!s->have_seq || seq > s->max_seq)
		s->max_seq = seq;
	s->have_seq = 1;
}

static void print_recv(const struct src_stat *tab, int n, unsigned long long other)
{
	char a[INET_ADDRSTRLEN];

	for (int i = 0; i < n; i++) {
		const struct src_stat *s = &tab[i];

		inet_ntop(AF_INET, &s->addr, a, sizeof(a));
		printf("src %s packets %llu distinct %llu dups %llu max_seq %lld "
		       "missing %llu out_of_range %llu\n", a, s->pkts, s->distinct,
		       s->dups, s->have_seq ? (long long)s->max_seq : -1LL,
		       s->have_seq ? s->max_seq + 1 - s->distinct : 0,
		       s->out_of_range);
	}
	printf("sources %d other %llu\n", n, other);
}

static int do_recv(int argc, char **argv)
{
	static unsigned char bufs[64][2048];
	struct sockaddr_in addr = { .sin_family = AF_INET }, from[64];
	struct timeval tv = { .tv_usec = 100000 };
	struct src_stat tab[MAX_SOURCES] = {};
	unsigned long long other = 0;
	struct mmsghdr msgs[64] = {};
	int fd, ntab = 0, rcvbuf = 32 << 20, one = 1;
	struct iovec iov[64];
	double t0, last = 0;
	struct recv_opts o;

	parse_recv(argc, argv, &o);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket(AF_INET, SOCK_DGRAM): %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	addr.sin_port = htons(o.port);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		die("bind to UDP port %u: %s", o.port, strerror(errno));
	for (int i = 0; i < 64; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof(bufs[i]);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &from[i];
	}
	printf("listening udp %u\n", o.port);
	fflush(stdout);
	t0 = now_s();
	while (!stop) {
		double t = now_s();
		int r;

		if (t - t0 >= o.duration || (o.idle && last && t - last >= o.idle))
			break;
		for (int i = 0; i < 64; i++)
			msgs[i].msg_hdr.msg_namelen = sizeof(from[i]);
		r = recvmmsg(fd, msgs, 64, MSG_WAITFORONE, NULL);
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			die("recvmmsg on UDP port %u: %s", o.port, strerror(errno));
		}
		last = now_s();
		for (int i = 0; i < r; i++) {
			struct src_stat *s = src_find(tab, &ntab,
						      from[i].sin_addr.s_addr,
						      o.max_seq);

			if (!s) {
				other++;
				continue;
			}
			count_datagram(s, bufs[i], msgs[i].msg_len, o.max_seq);
		}
	}
	close(fd);
	print_recv(tab, ntab, other);
	for (int i = 0; i < ntab; i++)
		free(tab[i].seen);
	return 0;
}

/* ---- xdp: live frames ---- */

/* As in veth/flood_xdp.bpf.c. */
struct flood_cfg {
	__u32 ifindex;
	__u32 src_base;
	__u32 src_count;
	__u16 sport_base;
	__u16 sport_count;
	__u64 next;
};

#define XDP_CHUNK	(1U << 15)	/* frames per BPF_PROG_TEST_RUN call */

static int do_xdp(int argc, char **argv)
{
	static unsigned char frame[FRAME_MAX];
	unsigned long long n = 0, nsrc;
	unsigned char src_mac[ETH_ALEN];
	struct flood_cfg cfg = {};
	struct bpf_program *prog;
	struct bpf_object *obj;
	struct bpf_map *map;
	struct send_opts o;
	__u32 key = 0;
	double t0, t;
	int fd, err;

	parse_send(argc, argv, &o);
	if (!o.obj || o.pps || o.seq)
		send_usage();
	fd = open_packet_socket(o.ifname, src_mac);	/* for the MAC */
	close(fd);
	build_template(&o, src_mac, frame);
	fill_frame(&o, frame, 0);
	obj = bpf_object__open_file(o.obj, NULL);
	if (!obj)
		die("opening BPF object '%s': %s", o.obj, strerror(errno));
	err = bpf_object__load(obj);
	if (err)
		die("loading BPF object '%s': %s", o.obj, strerror(-err));
	prog = bpf_object__find_program_by_name(obj, "xdp_flood");
	map = bpf_object__find_map_by_name(obj, "flood_cfg");
	if (!prog || !map)
		die("BPF object '%s' has no xdp_flood or flood_cfg", o.obj);
	nsrc = (unsigned long long)o.src_hi - o.src_lo + 1;
	cfg.ifindex = if_nametoindex(o.ifname);
	cfg.src_base = o.src_lo;
	cfg.src_count = nsrc > 0xffffffffULL ? 0xffffffffU : nsrc;
	cfg.sport_base = o.sport_lo;
	cfg.sport_count = o.sport_hi - o.sport_lo + 1;
	if (bpf_map_update_elem(bpf_map__fd(map), &key, &cfg, BPF_ANY))
		die("writing flood_cfg: %s", strerror(errno));
	t0 = now_s();
	while (!stop && n < o.count) {
		unsigned int chunk = XDP_CHUNK;

		t = now_s() - t0;
		if (t >= o.duration)
			break;
		if (chunk > o.count - n)
			chunk = o.count - n;
		LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = frame,
			    .data_size_in = o.size, .repeat = chunk,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
			    .batch_size = o.batch);
		err = bpf_prog_test_run_opts(bpf_program__fd(prog), &topts);
		if (err) {
			if (errno == EINTR)
				break;
			die("BPF_PROG_TEST_RUN (live frames) on '%s': %s",
			    o.ifname, strerror(errno));
		}
		n += chunk;
	}
	t = now_s() - t0;
	/* What the program built and redirected; the peer may still have
	 * dropped some of them at its ring (its rx counters tell). */
	if (bpf_map_lookup_elem(bpf_map__fd(map), &key, &cfg) == 0 && cfg.next < n)
		n = cfg.next;
	bpf_object__close(obj);
	printf("sent %llu busy 0 elapsed %.3f rate %.0f\n", n, t,
	       t > 0 ? n / t : 0.0);
	return 0;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };

	/* No SA_RESTART: a signal ends a blocking recvmmsg() at once. */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "send"))
		return do_send(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "xdp"))
		return do_xdp(argc - 1, argv + 1);
	if (argc >= 2 && !strcmp(argv[1], "recv"))
		return do_recv(argc - 1, argv + 1);
	fprintf(stderr, "usage: flood send|xdp|recv ... (flood send --help)\n");
	return 2;
}

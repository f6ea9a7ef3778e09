// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Per-packet cost against policy size: the same frame run through
 * xdp_ingress (BPF_PROG_TEST_RUN, repeat) under a deny list of 1, 1,000,
 * 100,000 and 1,000,000 IPv4 CIDRs. Figures are ratios to the 1-CIDR
 * baseline measured in the same run, rounds interleaved, so a noisy
 * shared machine moves baseline and candidates alike.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "apply.h"
#include "compile.h"
#include "pins.h"
#include "policy.h"
#include "portcullis.skel.h"

#define REPEAT	200000
#define ROUNDS	5

static const size_t sizes[] = { 1, 1000, 100000, 1000000 };
#define NSIZES	(sizeof(sizes) / sizeof(sizes[0]))

struct bench {
	struct portcullis_bpf *skel;
	double apply_s;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* A policy whose deny list has n distinct /32s spread over 11.0.0.0 -
 * 75.255.255.255 (i * odd constant mod 2^30 never repeats), as a real
 * blocklist is. They only fill the map: no traffic goes to them. */
static int write_policy(size_t n, char *policy_path, char *list_path)
{
	FILE *f;
	int fd;

	strcpy(list_path, "/tmp/pc-bench-list-XXXXXX");
	fd = mkstemp(list_path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -errno;
	for (size_t i = 0; i < n; i++) {
		__u32 a = 0x0b000000 + (__u32)(i * 2654435761u % 0x40000000u);

		fprintf(f, "%u.%u.%u.%u/32\n", a >> 24, (a >> 16) & 0xff,
			(a >> 8) & 0xff, a & 0xff);
	}
	fclose(f);
	strcpy(policy_path, "/tmp/pc-bench-policy-XXXXXX");
	fd = mkstemp(policy_path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return -errno;
	fprintf(f, "defaults: {ingress: deny, egress: allow}\n"
		   "management:\n  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
		   "rules:\n"
		   "  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80-443}\n"
		   "  - {name: blocklist, action: deny, direction: both, cidr_file: %s}\n",
		   list_path);
	fclose(f);
	return 0;
}

static int setup(size_t n, struct bench *b)
{
	char policy_path[64], list_path[64], err[512];
	struct pc_policy p = {};
	struct pc_compiled c = {};
	struct bpf_map *map;
	struct pc_maps m;
	double t0;
	__u32 gen;
	int ret;

	b->skel = portcullis_bpf__open();
	if (!b->skel)
		return -errno;
	bpf_object__for_each_map(map, b->skel->obj)
		bpf_map__set_pin_path(map, NULL);	/* private maps */
	ret = portcullis_bpf__load(b->skel);
	if (ret)
		return ret;
	ret = write_policy(n, policy_path, list_path);
	if (ret)
		return ret;
	t0 = now_s();
	ret = pc_policy_load_file(policy_path, &p, err, sizeof(err));
	if (!ret)
		ret = pc_compile(&p, &c, err, sizeof(err));
	pc_maps_from_skel(b->skel, &m);
	if (!ret)
		ret = pc_apply(&m, &c, &gen, err, sizeof(err));
	b->apply_s = now_s() - t0;
	if (ret)
		fprintf(stderr, "bench: %zu CIDRs: %s\n", n, err);
	pc_compiled_free(&c);
	pc_policy_free(&p);
	unlink(policy_path);
	unlink(list_path);
	return ret;
}

/* TCP SYN from 198.51.100.7 to port 80: misses the deny list, hits "web". */
static void build_frame(unsigned char *buf, size_t *len)
{
	struct ethhdr *eth = (void *)buf;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);

	memset(buf, 0, 128);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->saddr = inet_addr("198.51.100.7");
	ip->daddr = inet_addr("192.0.2.1");
	tcp->source = htons(40000);
	tcp->dest = htons(80);
	tcp->doff = 5;
	tcp->syn = 1;
	*len = sizeof(*eth) + sizeof(*ip) + sizeof(*tcp);
}

static int run_once(struct bench *b, const unsigned char *frame, size_t len,
		    double *ns)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = frame,
		    .data_size_in = len, .repeat = REPEAT);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(b->skel->progs.xdp_ingress),
				     &topts);
	if (err)
		return err;
	if (topts.retval != 2 /* XDP_PASS */) {
		fprintf(stderr, "bench: unexpected verdict %u\n", topts.retval);
		return -EINVAL;
	}
	*ns = topts.duration;	/* average per run, ns */
	return 0;
}

int main(void)
{
	struct bench b[NSIZES] = {};
	double best[NSIZES];
	unsigned char frame[128];
	size_t len;
	int err = 0;

	build_frame(frame, &len);
	for (size_t i = 0; i < NSIZES && !err; i++) {
		err = setup(sizes[i], &b[i]);
		best[i] = 1e18;
	}
	/* Interleave: round r measures every size once. Keep each best. */
	for (int r = 0; r < ROUNDS && !err; r++)
		for (size_t i = 0; i < NSIZES && !err; i++) {
			double ns;

			err = run_once(&b[i], frame, len, &ns);
			if (!err && ns < best[i])
				best[i] = ns;
		}
	if (!err) {
		printf("%-12s %12s %10s %12s\n", "CIDRs", "ns/packet", "ratio",
		       "apply (s)");
		for (size_t i = 0; i < NSIZES; i++)
			printf("%-12zu %12.1f %9.2fx %12.2f\n", sizes[i], best[i],
			       best[i] / best[0], b[i].apply_s);
		printf("bench: per-packet cost with 1,000,000 CIDRs is %.2fx the "
		       "1-CIDR baseline (best of %d rounds x %d runs)\n",
		       best[NSIZES - 1] / best[0], ROUNDS, REPEAT);
	}
	for (size_t i = 0; i < NSIZES; i++)
		portcullis_bpf__destroy(b[i].skel);
	if (err)
		fprintf(stderr, "bench failed: %s\n", strerror(-err));
	return err ? 1 : 0;
}

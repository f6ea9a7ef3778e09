/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Random policies (YAML text, as a user writes them) and random frame
 * sequences that make the policy, the flow table and the fragment table
 * matter: replies to earlier packets, ICMP errors quoting them, later
 * fragments of earlier heads, among fresh, malformed and non-IP frames.
 * Everything is drawn from one seeded struct rng.
 */
#ifndef PC_VERIFY_GEN_H
#define PC_VERIFY_GEN_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "policy.h"
#include "rng.h"

#define GEN_FRAME_MAX	1600
#define GEN_HISTORY	64
#define GEN_QUOTE_MAX	160
#define GEN_BASES	3

/* One frame, as a descriptor: kept so later frames can answer it. */
struct gpkt {
	int dir;		/* enum pc_dir */
	__u8 family;		/* 4, 6; 0: not IP (ethertype, raw) */
	__u8 ntags;
	__u16 tpid[3];
	__u16 ethertype;	/* not IP: the ethertype */
	__u8 src[16], dst[16];
	__u8 ttl;
	__u8 proto;
	__u16 sport, dport;
	__u8 icmp_type, icmp_code;
	__u16 echo_id;
	__u8 tcp_flags;
	__u8 optlen;		/* IPv4 options, bytes */
	__u8 next;		/* IPv6 extension headers */
	__u8 ext[8];
	__u8 extlen[8];		/* their hdrlen fields */
	__u8 frag;		/* GF_* */
	__u16 frag_off;		/* 8-byte units */
	__u32 frag_id;
	int frag_nh;		/* IPv6 tail: the fragment header's next; -1 */
	__u16 payload;
	__u32 fill;		/* payload bytes derive from it */
	__u16 quote_len;	/* ICMP error: bytes of quote[] */
	__u8 quote[GEN_QUOTE_MAX];
	int version, ihl, tot_len;	/* malformations; -1: consistent */
	__u32 cut;		/* > 0: the frame is cut to this length */
	bool raw;		/* garbage: raw_len bytes from fill */
	__u16 raw_len;
};

enum { GF_NONE = 0, GF_HEAD, GF_TAIL, GF_ATOMIC };

struct gframe {
	int dir;
	__u32 len;
	__u8 buf[GEN_FRAME_MAX];
};

/* Addresses the policy's CIDRs were cut from. */
struct gen_bases {
	__u8 v4[GEN_BASES][4];
	__u8 v6[GEN_BASES][16];
};

struct gen {
	struct rng *r;
	const struct pc_policy *pol[2];	/* addresses and ports come from them */
	struct gen_bases bases;
	__u8 local4[2][4], local6[2][16];
	struct gpkt hist[GEN_HISTORY];
	size_t nhist, hpos;
	__u32 next_id;
	bool no_echo_id0;	/* steer clear of a known datapath bug */
};

/* A random policy: YAML text into buf (NUL-terminated); 0 or -ENOSPC. */
int gen_policy(struct rng *r, const struct gen_bases *b, char *buf, size_t cap);
void gen_bases_init(struct rng *r, struct gen_bases *b);

/* Start a sequence against one or two parsed policies (p1 may be NULL). */
void gen_begin(struct gen *g, struct rng *r, const struct gen_bases *b,
	       const struct pc_policy *p0, const struct pc_policy *p1);
/* The next frame of the sequence. */
void gen_frame(struct gen *g, struct gframe *out);
/* Bytes of a descriptor (exposed for the builder's own checks). */
void gen_build(const struct gpkt *p, struct gframe *out);

#endif /* PC_VERIFY_GEN_H */

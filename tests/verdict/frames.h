/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Frame builders for the verdict tests: a declarative struct pkt (one
 * table row) becomes the bytes of an Ethernet frame. Ethernet with up to
 * three VLAN tags, IPv4 with options and fragment fields, IPv6 with an
 * extension header chain, TCP/UDP/ICMP/ICMPv6 (echo, errors quoting an
 * inner packet, ND), ARP and any other ethertype; every frame can be cut
 * at an arbitrary length. Checksums stay zero: the datapath never reads
 * them. Lengths (tot_len, payload_len) are always consistent unless a
 * field asks otherwise.
 */
#ifndef PC_TEST_FRAMES_H
#define PC_TEST_FRAMES_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <linux/types.h>

#define FRAME_MAX	2048

#define ETH_P_IP_	0x0800
#define ETH_P_IPV6_	0x86DD
#define ETH_P_ARP_	0x0806
#define ETH_P_8021Q_	0x8100
#define ETH_P_8021AD_	0x88A8

#define IPP_HOP		0
#define IPP_ICMP	1
#define IPP_TCP		6
#define IPP_UDP		17
#define IPP_ROUTING	43
#define IPP_FRAG	44
#define IPP_GRE		47
#define IPP_ICMPV6	58
#define IPP_DSTOPTS	60

/* One frame, as a table row describes it. Zero means "the usual". */
struct pkt {
	__u16 eth_proto;	/* 0: from the address family */
	__u16 vlan[3];		/* TPIDs of the tags, outer first; 0 ends */
	const char *src;	/* IPv4 or IPv6 text; family from it */
	const char *dst;
	__u8 proto;		/* IPPROTO_* of the transport */
	__u16 sport;		/* host order */
	__u16 dport;
	__u8 tcp_flags;		/* 0: SYN */
	__u8 icmp_type;
	__u8 icmp_code;
	__u16 echo_id;		/* host order */
	__u8 ttl;		/* TTL / hop limit; 0: 64 */
	__u8 ip_opt_len;	/* IPv4 options, bytes, multiple of 4 */
	__u8 next;		/* IPv6 extension headers in ext[] */
	__u8 ext[8];		/* their types, in order (IPP_HOP, ...) */
	__u8 ext_hdrlen;	/* hdrlen field of options/routing/AH headers */
	__u16 frag_offset;	/* 8-byte units; > 0: no transport header */
	bool more_frags;
	bool dont_frag;		/* IPv4 DF */
	__u32 frag_id;
	const struct pkt *inner;	/* ICMP error: the quoted packet */
	__u16 inner_len;	/* bytes of it quoted; 0: IP header + 8 */
	__u16 payload;		/* transport payload bytes */
	int cut;		/* > 0: frame cut to this many bytes */
	/* Malformations, 0: consistent value */
	__u8 ip_version;
	__u8 ihl;
	__u16 tot_len;
};

struct frame {
	__u8 buf[FRAME_MAX];
	__u32 len;
};

static inline int pkt_family(const struct pkt *p)
{
	if (!p->src)
		return 0;
	return strchr(p->src, ':') ? 6 : 4;
}

static inline void put16(__u8 *b, __u16 v)
{
	b[0] = v >> 8;
	b[1] = v & 0xff;
}

static inline void put32(__u8 *b, __u32 v)
{
	put16(b, v >> 16);
	put16(b + 2, v & 0xffff);
}

static inline int addr_parse(const char *s, int family, __u8 *out)
{
	memset(out, 0, 16);
	if (inet_pton(family == 4 ? AF_INET : AF_INET6, s, out) != 1) {
		fprintf(stderr, "frames: bad address '%s'\n", s);
		return -1;
	}
	return 0;
}

static int build_l3(__u8 *b, int cap, const struct pkt *p);

/* Transport header and payload at b; returns its length or -1. */
static int build_l4(__u8 *b, int cap, const struct pkt *p)
{
	int n = 0;

	if (cap < 64 + p->payload)
		return -1;
	if (p->proto == IPP_TCP) {
		memset(b, 0, 20);
		put16(b, p->sport);
		put16(b + 2, p->dport);
		put32(b + 4, 1);		/* seq */
		b[12] = 5 << 4;			/* data offset */
		b[13] = p->tcp_flags ? p->tcp_flags : 0x02;	/* SYN */
		put16(b + 14, 65535);
		n = 20;
	} else if (p->proto == IPP_UDP) {
		put16(b, p->sport);
		put16(b + 2, p->dport);
		put16(b + 4, 8 + p->payload);
		put16(b + 6, 0);
		n = 8;
	} else if (p->proto == IPP_ICMP || p->proto == IPP_ICMPV6) {
		memset(b, 0, 8);
		b[0] = p->icmp_type;
		b[1] = p->icmp_code;
		if (p->inner) {
			/* Errors: 4 unused/MTU bytes, then the quote. */
			__u8 in[FRAME_MAX];
			int ilen = build_l3(in, sizeof(in), p->inner);
			int q;

			if (ilen < 0)
				return -1;
			q = p->inner_len ? p->inner_len :
			    (pkt_family(p->inner) == 4 ? 20 : 40) + 8;
			if (q > ilen)
				q = ilen;
			if (p->icmp_type == 3 || p->icmp_type == 2)
				put16(b + 6, 1280);	/* next-hop MTU */
			if (cap < 8 + q + p->payload)
				return -1;
			memcpy(b + 8, in, q);
			n = 8 + q;
		} else {
			put16(b + 4, p->echo_id);
			put16(b + 6, 1);	/* sequence */
			n = 8;
		}
	}
	for (int i = 0; i < p->payload; i++)
		b[n + i] = 0xa0 + (i & 0xf);
	return n + p->payload;
}

/* IPv4 header (+ options) and everything above it. */
static int build_ipv4(__u8 *b, int cap, const struct pkt *p)
{
	int hlen = 20 + p->ip_opt_len, l4;
	__u16 frag = p->frag_offset & 0x1fff;

	if (cap < hlen)
		return -1;
	memset(b, 0, hlen);
	b[0] = ((p->ip_version ? p->ip_version : 4) << 4) |
	       (p->ihl ? p->ihl : hlen / 4);
	put16(b + 4, p->frag_id ? p->frag_id : 0x1234);
	if (p->more_frags)
		frag |= 0x2000;
	if (p->dont_frag)
		frag |= 0x4000;
	put16(b + 6, frag);
	b[8] = p->ttl ? p->ttl : 64;
	b[9] = p->proto;
	if (addr_parse(p->src, 4, b + 12) || addr_parse(p->dst, 4, b + 16))
		return -1;
	/* Options: NOPs, then one end-of-list. */
	for (int i = 0; i < p->ip_opt_len; i++)
		b[20 + i] = i == p->ip_opt_len - 1 ? 0 : 1;
	if (p->frag_offset) {
		l4 = p->payload ? p->payload : 16;	/* data, no header */
		if (cap < hlen + l4)
			return -1;
		memset(b + hlen, 0xfa, l4);
	} else {
		l4 = build_l4(b + hlen, cap - hlen, p);
		if (l4 < 0)
			return -1;
	}
	put16(b + 2, p->tot_len ? p->tot_len : hlen + l4);
	return hlen + l4;
}

/* IPv6 header, the extension chain, then the transport. */
static int build_ipv6(__u8 *b, int cap, const struct pkt *p)
{
	int off = 40, l4;
	__u8 *nh = b + 6;

	if (cap < 40 + 8 * (p->ext_hdrlen + 2) * (p->next + 1))
		return -1;
	memset(b, 0, 40);
	b[0] = (p->ip_version ? p->ip_version : 6) << 4;
	b[7] = p->ttl ? p->ttl : 64;
	if (addr_parse(p->src, 6, b + 8) || addr_parse(p->dst, 6, b + 24))
		return -1;
	for (int i = 0; i < p->next; i++) {
		__u8 *h = b + off;
		/* AH counts 4-byte words minus 2, the others 8-byte minus 1 */
		int hlen = p->ext[i] == 51 ? (p->ext_hdrlen + 2) * 4 :
			   (p->ext_hdrlen + 1) * 8;

		if (p->ext[i] == IPP_FRAG)
			hlen = 8;
		*nh = p->ext[i];
		memset(h, 0, hlen);
		nh = h;		/* next header is each one's first byte */
		if (p->ext[i] == IPP_FRAG) {
			put16(h + 2, (p->frag_offset << 3) |
				     (p->more_frags ? 1 : 0));
			put32(h + 4, p->frag_id ? p->frag_id : 0x5678);
			/* A later fragment carries only the unfragmentable
			 * part: what follows the fragment header is data,
			 * and its next header names the first header of
			 * the fragmentable part (RFC 8200 4.5). */
			if (p->frag_offset && i + 1 < p->next) {
				*nh = p->ext[i + 1];
				off += 8;
				nh = NULL;
				break;
			}
		} else if (p->ext[i] == IPP_ROUTING) {
			h[1] = p->ext_hdrlen;
			h[2] = 0;	/* type 0 */
			h[3] = 0;	/* segments left */
		} else if (p->ext[i] == 51) {
			h[1] = p->ext_hdrlen;
			put32(h + 4, 0x100);	/* SPI */
		} else {
			/* Hop-by-hop / dest options: one PadN filling it. */
			h[1] = p->ext_hdrlen;
			h[2] = 1;
			h[3] = hlen - 4;
		}
		off += hlen;
	}
	if (nh)
		*nh = p->proto;
	if (p->frag_offset) {
		l4 = p->payload ? p->payload : 16;
		if (cap < off + l4)
			return -1;
		memset(b + off, 0xfa, l4);
	} else {
		l4 = build_l4(b + off, cap - off, p);
		if (l4 < 0)
			return -1;
	}
	put16(b + 4, p->tot_len ? p->tot_len : off - 40 + l4);
	return off + l4;
}

static int build_l3(__u8 *b, int cap, const struct pkt *p)
{
	int family = pkt_family(p);

	if (family == 4)
		return build_ipv4(b, cap, p);
	if (family == 6)
		return build_ipv6(b, cap, p);
	return -1;
}

/* The whole frame; 0 or -1. */
static int build_frame(struct frame *f, const struct pkt *p)
{
	static const __u8 dmac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
	static const __u8 smac[6] = { 0x02, 0, 0, 0, 0, 0x02 };
	__u16 proto = p->eth_proto;
	int off = 12, n;

	memset(f, 0, sizeof(*f));
	memcpy(f->buf, dmac, 6);
	memcpy(f->buf + 6, smac, 6);
	for (int i = 0; i < 3 && p->vlan[i]; i++) {
		put16(f->buf + off, p->vlan[i]);
		put16(f->buf + off + 2, 100 + i);	/* TCI: VLAN id */
		off += 4;
	}
	if (!proto)
		proto = pkt_family(p) == 6 ? ETH_P_IPV6_ : ETH_P_IP_;
	put16(f->buf + off, proto);
	off += 2;
	if ((proto == ETH_P_IP_ || proto == ETH_P_IPV6_) && p->src) {
		n = build_l3(f->buf + off, FRAME_MAX - off, p);
		if (n < 0)
			return -1;
	} else {
		/* ARP request (or opaque bytes for other ethertypes). */
		static const __u8 arp[28] = {
			0, 1, 8, 0, 6, 4, 0, 1,
			0x02, 0, 0, 0, 0, 0x02, 192, 0, 2, 1,
			0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
		};

		memcpy(f->buf + off, arp, sizeof(arp));
		n = sizeof(arp);
	}
	f->len = off + n;
	/* The shortest frame test_run takes is an Ethernet header; real
	 * frames are padded to 60 bytes, which the parser must not mind. */
	if (f->len < 60 && !p->cut)
		f->len = 60;
	if (p->cut > 0 && (__u32)p->cut < f->len)
		f->len = p->cut;
	return 0;
}

static inline void frame_hex(FILE *out, const struct frame *f)
{
	for (__u32 i = 0; i < f->len; i++)
		fprintf(out, "%02x%s", f->buf[i],
			(i + 1) % 32 == 0 || i + 1 == f->len ? "\n" : " ");
}

#endif /* PC_TEST_FRAMES_H */

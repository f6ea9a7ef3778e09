/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Frame parsing in the cursor style of xdp-tools' parsing_helpers.h: each
 * step checks its own bounds and moves the cursor. Anything we cannot parse
 * is reported as PARSE_MALFORMED and the caller drops it: a parser that
 * gives up must never be a way around the policy.
 */
#ifndef PC_BPF_PARSE_H
#define PC_BPF_PARSE_H

#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define ETH_P_ARP	0x0806
#define ETH_P_8021Q	0x8100
#define ETH_P_8021AD	0x88A8

#define IPPROTO_HOPOPTS_	0
#define IPPROTO_ICMP_		1
#define IPPROTO_TCP_		6
#define IPPROTO_UDP_		17
#define IPPROTO_ROUTING_	43
#define IPPROTO_FRAGMENT_	44
#define IPPROTO_AH_		51
#define IPPROTO_ICMPV6_		58
#define IPPROTO_NONE_		59
#define IPPROTO_DSTOPTS_	60

enum parse_result {
	PARSE_IP = 0,
	PARSE_ARP,
	PARSE_NONIP,
	PARSE_MALFORMED,
};

enum frag_kind {
	FRAG_NONE = 0,
	FRAG_FIRST,		/* offset 0, more fragments follow: has ports */
	FRAG_LATER,		/* offset > 0: no transport header */
};

/* The packet embedded in an ICMP error. */
struct pc_inner {
	__u8 ok;
	__u8 proto;
	__u8 icmp_type;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

struct pc_pkt {
	__u8 family;		/* 4 or 6 */
	__u8 proto;		/* transport protocol */
	__u8 frag;		/* enum frag_kind */
	__u8 frag_nh;		/* fragment key protocol: the IPv4 protocol, or
				 * the IPv6 fragment header's next header, the
				 * same in first and later fragments */
	__u8 icmp_type;
	__u8 hop_limit;
	__u8 tcp_flags;		/* TCP only */
	__u8 l3_off;		/* bytes before the IP header (L2, VLANs) */
	__u16 sport;		/* network order; ICMP echo: id both ways */
	__u16 dport;
	__u32 frag_id;
	__u8 saddr[16];
	__u8 daddr[16];
	struct pc_inner inner;	/* ICMP errors only */
};

struct hdr_cursor {
	void *pos;
	void *end;
};

struct vlan_hdr_ {
	__be16 tci;
	__be16 proto;
};

struct ipv6_opt_hdr_ {
	__u8 nexthdr;
	__u8 hdrlen;
};

static __always_inline int parse_eth(struct hdr_cursor *c, __u16 *proto)
{
	struct ethhdr *eth = c->pos;
	struct vlan_hdr_ *vlan;
	__u16 p;

	if ((void *)(eth + 1) > c->end)
		return -1;
	p = bpf_ntohs(eth->h_proto);
	c->pos = eth + 1;
#pragma unroll
	for (int i = 0; i < PC_MAX_VLAN_DEPTH; i++) {
		if (p != ETH_P_8021Q && p != ETH_P_8021AD)
			break;
		vlan = c->pos;
		if ((void *)(vlan + 1) > c->end)
			return -1;
		p = bpf_ntohs(vlan->proto);
		c->pos = vlan + 1;
	}
	/* Deeper stacks than we parse are refused rather than guessed at. */
	if (p == ETH_P_8021Q || p == ETH_P_8021AD)
		return -1;
	*proto = p;
	return 0;
}

static __always_inline int is_icmp_error(__u8 family, __u8 type)
{
	if (family == 4)	/* unreachable, time exceeded, parameter problem */
		return type == 3 || type == 11 || type == 12;
	/* unreachable, packet too big, time exceeded, parameter problem */
	return type >= 1 && type <= 4;
}

static __always_inline int is_icmp_echo(__u8 family, __u8 type)
{
	if (family == 4)
		return type == 8 || type == 0;
	return type == 128 || type == 129;
}

static __always_inline int is_icmp_echo_request(__u8 family, __u8 type)
{
	return family == 4 ? type == 8 : type == 128;
}

/* Ports (or echo id) of a transport header; -1 if it is cut short. */
static __always_inline int parse_ports(struct hdr_cursor *c, __u8 family,
				       __u8 proto, __u16 *sport, __u16 *dport,
				       __u8 *icmp_type)
{
	__u8 *l4 = c->pos;

	*sport = 0;
	*dport = 0;
	if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) {
		if (l4 + (proto == IPPROTO_TCP_ ? 20 : 8) > (__u8 *)c->end)
			return -1;
		*sport = *(__u16 *)l4;
		*dport = *(__u16 *)(l4 + 2);
	} else if ((family == 4 && proto == IPPROTO_ICMP_) ||
		   (family == 6 && proto == IPPROTO_ICMPV6_)) {
		if (l4 + 8 > (__u8 *)c->end)
			return -1;
		*icmp_type = l4[0];
		/* The echo id stands in for ports: the request carries it as
		 * source, the reply as destination, so a reply matches the
		 * request's flow but a request never poses as a reply. */
		if (is_icmp_echo_request(family, l4[0]))
			*sport = *(__u16 *)(l4 + 4);
		else if (is_icmp_echo(family, l4[0]))
			*dport = *(__u16 *)(l4 + 4);
	}
	return 0;
}

static __always_inline int parse_ipv4(struct hdr_cursor *c, struct pc_pkt *pkt)
{
	struct iphdr *iph = c->pos;
	__u32 hlen;
	__u16 off;

	if ((void *)(iph + 1) > c->end)
		return -1;
	if (iph->version != 4)
		return -1;
	hlen = iph->ihl * 4;
	/* Both checks, as synproxy does: ihl too small, header past the end. */
	if (hlen < sizeof(*iph) || c->pos + hlen > c->end)
		return -1;
	if (bpf_ntohs(iph->tot_len) < hlen)
		return -1;
	pkt->family = 4;
	pkt->proto = iph->protocol;
	pkt->hop_limit = iph->ttl;
	__builtin_memcpy(pkt->saddr, &iph->saddr, 4);
	__builtin_memcpy(pkt->daddr, &iph->daddr, 4);
	off = bpf_ntohs(iph->frag_off);
	if (off & 0x1fff)
		pkt->frag = FRAG_LATER;
	else if (off & 0x2000)
		pkt->frag = FRAG_FIRST;
	pkt->frag_id = iph->id;
	pkt->frag_nh = iph->protocol;
	c->pos += hlen;
	return 0;
}

/* Walks a bounded chain of extension headers; stops at the transport. */
static __always_inline int parse_ipv6(struct hdr_cursor *c, struct pc_pkt *pkt)
{
	struct ipv6hdr *ip6h = c->pos;
	struct ipv6_opt_hdr_ *opt;
	struct frag_hdr *fh;
	__u8 nh;

	if ((void *)(ip6h + 1) > c->end)
		return -1;
	if (ip6h->version != 6)
		return -1;
	pkt->family = 6;
	pkt->hop_limit = ip6h->hop_limit;
	__builtin_memcpy(pkt->saddr, &ip6h->saddr, 16);
	__builtin_memcpy(pkt->daddr, &ip6h->daddr, 16);
	nh = ip6h->nexthdr;
	c->pos = ip6h + 1;

#pragma unroll
	for (int i = 0; i < PC_MAX_EXTHDRS; i++) {
		opt = c->pos;
		switch (nh) {
		case IPPROTO_HOPOPTS_:
		case IPPROTO_ROUTING_:
		case IPPROTO_DSTOPTS_:
			if ((void *)(opt + 1) > c->end)
				return -1;
			nh = opt->nexthdr;
			c->pos += (opt->hdrlen + 1) * 8;
			break;
		case IPPROTO_AH_:
			if ((void *)(opt + 1) > c->end)
				return -1;
			nh = opt->nexthdr;
			c->pos += (opt->hdrlen + 2) * 4;
			break;
		case IPPROTO_FRAGMENT_:
			fh = c->pos;
			if ((void *)(fh + 1) > c->end)
				return -1;
			nh = fh->nexthdr;
			pkt->frag_nh = nh;
			pkt->frag_id = fh->identification;
			if (bpf_ntohs(fh->frag_off) & 0xfff8)
				pkt->frag = FRAG_LATER;
			else if (bpf_ntohs(fh->frag_off) & 1)
				pkt->frag = FRAG_FIRST;
			c->pos = fh + 1;
			break;
		default:
			pkt->proto = nh;
			return 0;
		}
		if (c->pos > c->end)
			return -1;
		if (pkt->frag == FRAG_LATER) {
			pkt->proto = nh;
			return 0;
		}
	}
	/* Chain longer than we walk: refuse, never guess the transport. */
	switch (nh) {
	case IPPROTO_HOPOPTS_:
	case IPPROTO_ROUTING_:
	case IPPROTO_DSTOPTS_:
	case IPPROTO_AH_:
	case IPPROTO_FRAGMENT_:
		return -1;
	}
	pkt->proto = nh;
	return 0;
}

/* The header quoted by an ICMP error, enough to find its flow. Failure
 * here is not malformed: the error just cannot vouch for itself. */
static __always_inline void parse_icmp_inner(struct hdr_cursor *c,
					     struct pc_pkt *pkt)
{
	struct pc_inner *in = &pkt->inner;
	__u8 type = 0;

	c->pos += 8;	/* ICMP header; its bounds were checked by parse_ports */
	if (pkt->family == 4) {
		struct iphdr *iph = c->pos;
		__u32 hlen;

		if ((void *)(iph + 1) > c->end || iph->version != 4)
			return;
		hlen = iph->ihl * 4;
		if (hlen < sizeof(*iph) || c->pos + hlen > c->end)
			return;
		in->proto = iph->protocol;
		__builtin_memcpy(in->saddr, &iph->saddr, 4);
		__builtin_memcpy(in->daddr, &iph->daddr, 4);
		c->pos += hlen;
	} else {
		struct ipv6hdr *ip6h = c->pos;

		if ((void *)(ip6h + 1) > c->end || ip6h->version != 6)
			return;
		in->proto = ip6h->nexthdr;
		__builtin_memcpy(in->saddr, &ip6h->saddr, 16);
		__builtin_memcpy(in->daddr, &ip6h->daddr, 16);
		c->pos = ip6h + 1;
	}
	/* Errors quote at least 8 bytes of transport header: enough here. */
	if (in->proto == IPPROTO_TCP_ || in->proto == IPPROTO_UDP_) {
		__u16 *ports = c->pos;

		if ((void *)(ports + 2) > c->end)
			return;
		in->sport = ports[0];
		in->dport = ports[1];
	} else if (parse_ports(c, pkt->family, in->proto, &in->sport,
			       &in->dport, &type) < 0) {
		return;
	}
	in->icmp_type = type;
	in->ok = 1;
}

static __always_inline int parse_packet(void *data, void *data_end,
					struct pc_pkt *pkt)
{
	struct hdr_cursor c = { .pos = data, .end = data_end };
	__u16 proto;
	int err;

	if (parse_eth(&c, &proto) < 0)
		return PARSE_MALFORMED;
	pkt->l3_off = c.pos - data;
	if (proto == ETH_P_ARP)
		return PARSE_ARP;
	if (proto == ETH_P_IP)
		err = parse_ipv4(&c, pkt);
	else if (proto == ETH_P_IPV6)
		err = parse_ipv6(&c, pkt);
	else
		return PARSE_NONIP;
	if (err < 0)
		return PARSE_MALFORMED;
	if (pkt->frag == FRAG_LATER)
		return PARSE_IP;
	/* A first fragment too short to hold the ports is an evasion trick. */
	if (parse_ports(&c, pkt->family, pkt->proto, &pkt->sport, &pkt->dport,
			&pkt->icmp_type) < 0)
		return PARSE_MALFORMED;
	if (pkt->proto == IPPROTO_TCP_) {
		__u8 *tcp = c.pos;

		if (tcp + 14 > (__u8 *)c.end)
			return PARSE_MALFORMED;
		pkt->tcp_flags = tcp[13];
	}
	if ((pkt->proto == IPPROTO_ICMP_ || pkt->proto == IPPROTO_ICMPV6_) &&
	    is_icmp_error(pkt->family, pkt->icmp_type))
		parse_icmp_inner(&c, pkt);
	return PARSE_IP;
}

#endif /* PC_BPF_PARSE_H */

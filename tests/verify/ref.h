/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The reference datapath: README "Semantics", "Modes" and "Datapath"
 * written as plain userspace C, independently of bpf/. It parses the
 * frame with its own offset arithmetic, keeps its own flow and fragment
 * tables (linear-probing hashes), and asks user/model.c's rule scan only
 * "which rule decides this (direction, remote, protocol, port)".
 *
 * One struct ref per run: the live policy, its generation, the mode word
 * and the tables, so (policy, mode, tables, frame, direction) -> verdict.
 */
#ifndef PC_VERIFY_REF_H
#define PC_VERIFY_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "portcullis.h"
#include "policy.h"

/* What the datapath must count for one frame. */
struct ref_verdict {
	bool pass;
	enum pc_reason reason;	/* the reason counted (before any audit pass) */
	int rule;		/* rule counted with it, or -1 */
	bool audit;		/* pass_audit counted as well, and passed */
	int rule_by_index;	/* known datapath bug "frag-rule": a later
				 * fragment's drop after a reload counts the
				 * head's rule index in the new policy */
};

/* A frame as the reference parser reads it (exposed for diagnostics). */
enum ref_kind { REF_K_IP, REF_K_ARP, REF_K_NONIP, REF_K_MALFORMED };
enum ref_frag { REF_WHOLE, REF_HEAD, REF_TAIL };
enum ref_echo { REF_ECHO_NONE, REF_ECHO_REQUEST, REF_ECHO_REPLY };

struct ref_quote {		/* the packet an ICMP error quotes */
	bool ok;
	__u8 proto;
	__u8 src[16], dst[16];
	__u16 sport, dport;	/* host order, TCP/UDP */
	enum ref_echo echo;
	__u16 echo_id;
};

struct ref_pkt {
	enum ref_kind kind;
	__u8 family;		/* 4 or 6 */
	__u8 proto;		/* transport protocol */
	__u8 hop;		/* TTL / hop limit */
	enum ref_frag frag;
	__u8 frag_proto;	/* IPv4 protocol / fragment header's next */
	__u32 frag_id;
	__u8 src[16], dst[16];
	bool icmp;		/* the family's own ICMP, header present */
	__u8 icmp_type;
	__u16 sport, dport;	/* host order; 0 unless TCP/UDP */
	__u8 tcp_flags;
	size_t l3_len;		/* bytes from the IP header to the frame's end */
	enum ref_echo echo;
	__u16 echo_id;
	bool icmp_error;
	struct ref_quote quote;
};

/* Host-side flow key: the same for both directions of a flow. */
struct ref_flow_key {
	__u8 family, proto;
	__u16 lport, rport;	/* TCP/UDP, host order; ICMP echo: the id */
	__u8 asker;		/* ICMP echo: 1 we asked, 2 the peer asked */
	__u8 pad;
	__u8 laddr[16], raddr[16];
};

struct ref_flow_val {
	__u32 dir;		/* the direction that opened it */
	__u32 gen;		/* generation and mode that last vouched */
	__u32 mode;
	__u8 cut[PC_MODE_COUNT];	/* low bytes of the cut epochs then */
};

struct ref_frag_key {
	__u8 family, proto, dir, pad;
	__u32 id;
	__u8 src[16], dst[16];
};

struct ref_frag_val {
	struct ref_verdict v;	/* the head's verdict, before any audit pass */
	__u32 gen;
	__u32 mode;
};

/* Open addressing, linear probing, tombstones; keys compared bytewise. */
struct ref_tab {
	size_t ksize, vsize, cap, used, live;
	__u8 *slots;		/* cap * (1 + ksize + vsize) */
};

struct ref {
	const struct pc_policy *pol;	/* borrowed */
	__u32 gen;
	__u32 mode;			/* the raw word in pc_state */
	__u64 cut[PC_MODE_COUNT];	/* times each strict mode was entered */
	struct ref_tab flows;
	struct ref_tab frags;
};

int ref_init(struct ref *m);
void ref_free(struct ref *m);
/* Forget every flow and fragment (the runner clears the maps alike). */
void ref_reset(struct ref *m);
void ref_set_policy(struct ref *m, const struct pc_policy *p, __u32 gen);
/* Entering lockdown or quarantine is a cut epoch (README "Datapath"). */
void ref_set_mode(struct ref *m, __u32 mode);

void ref_parse(const __u8 *f, size_t len, struct ref_pkt *out);
/* Decide one frame and update the tables as the datapath must. */
struct ref_verdict ref_step(struct ref *m, int dir, const __u8 *f, size_t len);

#endif /* PC_VERIFY_REF_H */

/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The reference semantics of a policy, by a plain scan over its rules:
 * what the datapath must decide for a packet that no flow vouches for.
 * Used by the anti-lockout check, --dry-run, and tests as the oracle.
 */
#ifndef PC_MODEL_H
#define PC_MODEL_H

#include "policy.h"

struct pc_model_verdict {
	bool pass;
	enum pc_reason reason;
	int rule;		/* index into policy->rules, or -1 */
};

/* remote: the peer's address (source on ingress, destination on egress);
 * port: destination port, host order (ignored unless tcp/udp). */
struct pc_model_verdict pc_model_decide(const struct pc_policy *p,
					enum pc_mode mode, enum pc_dir dir,
					__u8 family, const __u8 *remote,
					__u8 proto, __u16 port);

#endif /* PC_MODEL_H */

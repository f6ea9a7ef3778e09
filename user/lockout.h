/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Anti-lockout: refuse a policy whose normal mode would cut the operator
 * off: no management allowlist, or the SSH session this command runs over
 * ($SSH_CONNECTION) denied.
 */
#ifndef PC_LOCKOUT_H
#define PC_LOCKOUT_H

#include "policy.h"

/* 0 if safe; 1 with a one-line reason in why if the policy locks out;
 * ssh_connection may be NULL (no SSH session). */
int pc_lockout_check(const struct pc_policy *p, const char *ssh_connection,
		     char *why, size_t len);

#endif /* PC_LOCKOUT_H */

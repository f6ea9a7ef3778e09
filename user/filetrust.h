/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Files the agent trusts (the config, controller key files, the policy,
 * cidr_files): whoever can write one can sign a release or open the
 * host, so they must be root's, as sshd's StrictModes has it.
 */
#ifndef PC_FILETRUST_H
#define PC_FILETRUST_H

#include <stddef.h>

/*
 * Open PATH read-only and check it: the opened file (fstat on the fd, so
 * what is read is what was checked) is a regular file owned by root and
 * not group- or world-writable; every directory above it, as named and
 * as resolved, is owned by root and not group- or world-writable unless
 * sticky (/tmp). Root here is uid 0 or our own euid (the agent is root;
 * a CLI or test run by a user checks that user's own files).
 * Returns the fd, or -errno: -EPERM when the file is not to be trusted,
 * WHY naming the file or directory and the bit.
 */
int pc_open_trusted(const char *path, char *why, size_t len);

#endif /* PC_FILETRUST_H */

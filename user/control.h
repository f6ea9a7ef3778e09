/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Local control socket: a Unix stream socket, root only (SO_PEERCRED).
 * One request line per connection ("status", "mode lockdown", "release"),
 * answered with text lines, the last of which starts "ok" or "error".
 */
#ifndef PC_CONTROL_H
#define PC_CONTROL_H

#include <stddef.h>

#define PC_DEFAULT_CONTROL_SOCKET	"/run/portcullis/control.sock"
#define PC_CONTROL_MAX			256	/* request line */

const char *pc_control_path(const char *opt);
/* Server: listening socket (0600, parent dir 0700). */
int pc_control_listen(const char *path);
/* Server: accept one client; -EPERM (answered and closed) unless root.
 * On success *req holds the request line without its newline. */
int pc_control_accept(int lfd, int *cfd, char *req, size_t len);
/* Client: send req, copy the answer into resp. -ENOENT/-ECONNREFUSED
 * mean no agent listens (the CLI then updates the maps itself). */
int pc_control_request(const char *path, const char *req, char *resp,
		       size_t len);

#endif /* PC_CONTROL_H */

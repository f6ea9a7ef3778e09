// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include "control.h"

const char *pc_control_path(const char *opt)
{
	const char *env = getenv("PORTCULLIS_CONTROL_SOCKET");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	return PC_DEFAULT_CONTROL_SOCKET;
}

static int fill_addr(const char *path, struct sockaddr_un *sun)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	strcpy(sun->sun_path, path);
	return 0;
}

int pc_control_listen(const char *path)
{
	char dir[PATH_MAX];
	struct sockaddr_un sun;
	int fd, err;

	err = fill_addr(path, &sun);
	if (err)
		return err;
	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0700) && errno != EEXIST)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(path);	/* a stale socket of a dead agent */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) ||
	    chmod(path, 0600) || listen(fd, 8)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = 2 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

int pc_control_accept(int lfd, int *cfd, char *req, size_t len)
{
	struct ucred cred;
	socklen_t clen = sizeof(cred);
	size_t got = 0;
	int fd;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	set_timeouts(fd);
	/* The socket file is 0600 already; the kernel's word is final. */
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) || cred.uid) {
		dprintf(fd, "error: root only\n");
		close(fd);
		return -EPERM;
	}
	while (got + 1 < len) {
		ssize_t n = read(fd, req + got, 1);

		if (n <= 0 || req[got] == '\n')
			break;
		got++;
	}
	req[got] = '\0';
	*cfd = fd;
	return 0;
}

int pc_control_request(const char *path, const char *req, char *resp,
		       size_t len)
{
	struct sockaddr_un sun;
	size_t got = 0;
	int fd, err;

	err = fill_addr(path, &sun);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	set_timeouts(fd);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		err = -errno;
		close(fd);
		return err;
	}
	if (dprintf(fd, "%s\n", req) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	while (got + 1 < len) {
		ssize_t n = read(fd, resp + got, len - 1 - got);

		if (n <= 0)
			break;
		got += n;
	}
	resp[got] = '\0';
	close(fd);
	return got ? 0 : -EIO;
}

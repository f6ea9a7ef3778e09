// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * StrictModes for the files the agent trusts. The file is opened first
 * and checked through its fd; the directories are checked after, by path,
 * both as named (a symlink in a writable directory could be re-pointed)
 * and as resolved (what the symlinks lead to). A sticky world-writable
 * directory (/tmp) is accepted: others can create names in it but not
 * replace or rename the root-owned file the path names.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "filetrust.h"

static int owner_ok(uid_t uid)
{
	return uid == 0 || uid == geteuid();
}

/* The writable bit to complain of, or NULL. */
static const char *writable_by_others(mode_t mode)
{
	if (mode & S_IWOTH)
		return "world-writable";
	if (mode & S_IWGRP)
		return "group-writable";
	return NULL;
}

static int refuse(char *why, size_t len, const char *what, const char *path,
		  const char *problem, const struct stat *st)
{
	snprintf(why, len, "%s%s is %s (owner uid %u, mode %04o): refused, "
		 "trusted files and their directories must be root's and "
		 "writable by root only", what, path, problem,
		 (unsigned int)st->st_uid, (unsigned int)(st->st_mode & 07777));
	return -EPERM;
}

static int check_dir(const char *dir, char *why, size_t len)
{
	const char *bit;
	struct stat st;

	if (stat(dir, &st)) {
		int err = -errno;

		snprintf(why, len, "directory %s: %s", dir, strerror(-err));
		return err;
	}
	if (!owner_ok(st.st_uid))
		return refuse(why, len, "directory ", dir, "not owned by root",
			      &st);
	bit = writable_by_others(st.st_mode);
	if (bit && !(st.st_mode & S_ISVTX))
		return refuse(why, len, "directory ", dir, bit, &st);
	return 0;
}

/* Every directory above PATH (absolute), from the nearest up to /. */
static int check_parents(const char *path, char *why, size_t len)
{
	char buf[PATH_MAX];
	char *slash;
	int err;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf)) {
		snprintf(why, len, "%.64s...: path too long", path);
		return -ENAMETOOLONG;
	}
	while ((slash = strrchr(buf, '/'))) {
		if (slash == buf)
			return check_dir("/", why, len);
		*slash = '\0';
		err = check_dir(buf, why, len);
		if (err)
			return err;
	}
	return 0;
}

/* PATH as named, made absolute against the working directory. */
static int check_named(const char *path, char *why, size_t len)
{
	char cwd[PATH_MAX], abs[2 * PATH_MAX];

	if (path[0] == '/')
		return check_parents(path, why, len);
	if (!getcwd(cwd, sizeof(cwd))) {
		int err = -errno;

		snprintf(why, len, "%s: cannot tell the working directory: %s",
			 path, strerror(-err));
		return err;
	}
	snprintf(abs, sizeof(abs), "%s/%s", strcmp(cwd, "/") ? cwd : "", path);
	return check_parents(abs, why, len);
}

static int check_fd(int fd, const char *path, char *why, size_t len)
{
	const char *bit;
	struct stat st;

	if (fstat(fd, &st)) {
		int err = -errno;

		snprintf(why, len, "%s: %s", path, strerror(-err));
		return err;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, len, "%s is not a regular file: refused", path);
		return -EPERM;
	}
	if (!owner_ok(st.st_uid))
		return refuse(why, len, "", path, "not owned by root", &st);
	bit = writable_by_others(st.st_mode);
	if (bit)
		return refuse(why, len, "", path, bit, &st);
	return 0;
}

int pc_open_trusted(const char *path, char *why, size_t len)
{
	char *real;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		err = -errno;
		snprintf(why, len, "%s: %s", path, strerror(-err));
		return err;
	}
	err = check_fd(fd, path, why, len);
	if (!err)
		err = check_named(path, why, len);
	if (!err) {
		real = realpath(path, NULL);
		if (!real) {
			err = -errno;
			snprintf(why, len, "%s: %s", path, strerror(-err));
		} else {
			err = check_parents(real, why, len);
			free(real);
		}
	}
	if (err) {
		close(fd);
		return err;
	}
	return fd;
}

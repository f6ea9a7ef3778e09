// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for trusted files (user/filetrust.c, issue 13): the config,
 * key files, the policy and cidr_files are refused when someone other
 * than root could have written them -- the file group- or world-writable
 * or not root's, or a directory above it (as named or as resolved) so --
 * with an error naming the file or directory and the bit; a sticky
 * world-writable directory (/tmp) is accepted. Each case goes through the
 * loaders the agent uses, so a refusal here is a refusal at start and at
 * reload. Everything lives under one mkdtemp() directory (0700, root's).
 */
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "config.h"
#include "policy.h"

#define KEY	"0+IRh9a2jg9ZYrFY5cXeDtsG5u4dvOfvo/L0CdSeuA4="
#define NOBODY	65534

static char dir[64];

static void put(const char *name, const char *text, mode_t mode)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static char *at(const char *name)
{
	static char path[4][PATH_MAX];
	static int i;

	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir, name);
	return path[i];
}

/* A config that trusts sub/ctl.pub, for a policy in the same directory. */
static void put_all(mode_t cfg, mode_t pub, mode_t pol, mode_t cidrs)
{
	put("agent.yaml", "policy: policy.yaml\ncontroller:\n  key_files: [ctl.pub]\n",
	    cfg);
	put("ctl.pub", KEY "\n", pub);
	put("policy.yaml", "interfaces: [lo]\ndefaults: {ingress: deny, egress: allow}\n"
	    "rules:\n  - {name: r, action: deny, direction: both, cidr_file: cidrs.txt}\n",
	    pol);
	put("cidrs.txt", "203.0.113.0/24\n", cidrs);
}

static int load_config(char *err, size_t len)
{
	struct pc_config c;
	int ret = pc_config_load_file(at("agent.yaml"), &c, err, len);

	if (!ret)
		pc_config_free(&c);
	return ret;
}

static int load_policy(char *err, size_t len)
{
	struct pc_policy p;
	int ret = pc_policy_load_file(at("policy.yaml"), &p, err, len);

	if (!ret)
		pc_policy_free(&p);
	return ret;
}

static void assert_has(const char *s, const char *want)
{
	if (!strstr(s, want))
		fail_msg("'%s' does not say '%s'", s, want);
}

static int setup(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/pc-test-trust.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	static const char *const names[] = {
		"agent.yaml", "ctl.pub", "policy.yaml", "cidrs.txt", "link.pub",
		"open/ctl.pub", "sticky/ctl.pub",
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(at("open"));
	rmdir(at("sticky"));
	return rmdir(dir);
}

/* The same files, 0644 and 0600, root's: loaded. */
static void test_accept(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0644, 0600);
	if (load_config(err, sizeof(err)))
		fail_msg("config refused: %s", err);
	if (load_policy(err, sizeof(err)))
		fail_msg("policy refused: %s", err);
}

static void test_config_group_writable(void **state)
{
	char err[512] = "";

	put_all(0664, 0644, 0644, 0644);
	assert_int_equal(load_config(err, sizeof(err)), -EPERM);
	assert_has(err, at("agent.yaml"));
	assert_has(err, "group-writable");
}

static void test_key_file_world_writable(void **state)
{
	char err[512] = "";

	put_all(0644, 0646, 0644, 0644);
	assert_int_equal(load_config(err, sizeof(err)), -EINVAL);
	assert_has(err, "key file");
	assert_has(err, at("ctl.pub"));
	assert_has(err, "world-writable");
}

static void test_key_file_group_writable(void **state)
{
	char err[512] = "";

	put_all(0644, 0620, 0644, 0644);
	assert_int_equal(load_config(err, sizeof(err)), -EINVAL);
	assert_has(err, at("ctl.pub"));
	assert_has(err, "group-writable");
}

static void test_policy_group_writable(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0664, 0644);
	assert_int_equal(load_policy(err, sizeof(err)), -EPERM);
	assert_has(err, at("policy.yaml"));
	assert_has(err, "group-writable");
}

static void test_cidr_file_world_writable(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0644, 0666);
	assert_int_equal(load_policy(err, sizeof(err)), -EPERM);
	assert_has(err, at("cidrs.txt"));
	assert_has(err, "world-writable");
}

/* Root only: another owner needs chown. */
static void test_not_owned_by_root(void **state)
{
	char err[512] = "";

	if (geteuid() != 0)
		skip();
	put_all(0644, 0644, 0644, 0644);
	assert_int_equal(chown(at("ctl.pub"), NOBODY, NOBODY), 0);
	assert_int_equal(load_config(err, sizeof(err)), -EINVAL);
	assert_has(err, at("ctl.pub"));
	assert_has(err, "not owned by root");
	assert_int_equal(chown(at("policy.yaml"), NOBODY, 0), 0);
	assert_int_equal(load_policy(err, sizeof(err)), -EPERM);
	assert_has(err, "not owned by root");
}

/* A directory others can write to: they could swap the file for theirs. */
static void test_dir_world_writable(void **state)
{
	char err[512] = "";
	struct pc_config c;

	put_all(0644, 0644, 0644, 0644);
	assert_int_equal(mkdir(at("open"), 0755), 0);
	assert_int_equal(chmod(at("open"), 0777), 0);
	put("open/ctl.pub", KEY "\n", 0644);
	put("agent.yaml", "policy: policy.yaml\ncontroller:\n  key_files: [open/ctl.pub]\n",
	    0644);
	assert_int_equal(pc_config_load_file(at("agent.yaml"), &c, err,
					     sizeof(err)), -EINVAL);
	assert_has(err, "directory");
	assert_has(err, at("open"));
	assert_has(err, "world-writable");
	/* Group-writable is no better. */
	assert_int_equal(chmod(at("open"), 0775), 0);
	assert_int_equal(pc_config_load_file(at("agent.yaml"), &c, err,
					     sizeof(err)), -EINVAL);
	assert_has(err, "group-writable");
}

/* Sticky (as /tmp): others cannot replace a name that is not theirs. */
static void test_sticky_dir_accepted(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0644, 0644);
	assert_int_equal(mkdir(at("sticky"), 0755), 0);
	assert_int_equal(chmod(at("sticky"), 01777), 0);
	put("sticky/ctl.pub", KEY "\n", 0644);
	put("agent.yaml", "policy: policy.yaml\ncontroller:\n  key_files: [sticky/ctl.pub]\n",
	    0644);
	if (load_config(err, sizeof(err)))
		fail_msg("key in a sticky directory refused: %s", err);
}

/* A symlink in a directory others can write: they can re-point it, even
 * though what it points at now is trusted. */
static void test_symlink_in_open_dir(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0644, 0644);
	assert_int_equal(mkdir(at("open"), 0777), 0);
	assert_int_equal(chmod(at("open"), 0777), 0);
	assert_int_equal(symlink(at("ctl.pub"), at("open/ctl.pub")), 0);
	put("agent.yaml", "policy: policy.yaml\ncontroller:\n  key_files: [open/ctl.pub]\n",
	    0644);
	assert_int_equal(load_config(err, sizeof(err)), -EINVAL);
	assert_has(err, at("open"));
	assert_has(err, "world-writable");
}

/* A symlink in a trusted directory to a file in an open one. */
static void test_symlink_to_open_dir(void **state)
{
	char err[512] = "";

	put_all(0644, 0644, 0644, 0644);
	assert_int_equal(mkdir(at("open"), 0777), 0);
	assert_int_equal(chmod(at("open"), 0777), 0);
	put("open/ctl.pub", KEY "\n", 0644);
	assert_int_equal(symlink(at("open/ctl.pub"), at("link.pub")), 0);
	put("agent.yaml", "policy: policy.yaml\ncontroller:\n  key_files: [link.pub]\n",
	    0644);
	assert_int_equal(load_config(err, sizeof(err)), -EINVAL);
	assert_has(err, at("open"));
}

/* Not a regular file: refused, not read. */
static void test_not_regular(void **state)
{
	char err[512] = "";
	struct pc_policy p;

	assert_int_equal(pc_policy_load_file(dir, &p, err, sizeof(err)), -EPERM);
	assert_has(err, "not a regular file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_accept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_group_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_world_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_file_group_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_policy_group_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cidr_file_world_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_owned_by_root, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dir_world_writable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sticky_dir_accepted, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_in_open_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_to_open_dir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_regular, setup, teardown),
	};

	umask(022);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

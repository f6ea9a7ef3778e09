// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for where the egress guard attaches (user/guard.c): the
 * topmost cgroup v2 directory of a mountinfo, so that on a host it is the
 * hierarchy's root and in a container the node's hierarchy mounted in,
 * never a subtree bind.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>
#include "guard.h"

static int pick(const char *mountinfo, char *path, size_t len)
{
	FILE *f = fmemopen((void *)mountinfo, strlen(mountinfo), "r");
	int err;

	assert_non_null(f);
	path[0] = '\0';
	err = pc_guard_cgroup_pick(f, path, len);
	fclose(f);
	return err;
}

static void test_unified_host(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
		"30 25 0:26 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
		"31 25 0:27 / /sys/fs/bpf rw shared:10 - bpf bpf rw,mode=700\n",
		path, sizeof(path)), 0);
	assert_string_equal(path, "/sys/fs/cgroup");
}

static void test_hybrid_host(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
		"31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"32 30 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
		path, sizeof(path)), 0);
	assert_string_equal(path, "/sys/fs/cgroup/unified");
}

/* A pod's own cgroup at /sys/fs/cgroup ("/" in its namespace), the node's
 * hierarchy at /sys/fs/cgroup-node, three levels up: the node's wins. */
static void test_container_with_node_hierarchy(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"801 790 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n"
		"812 790 0:26 /../../.. /sys/fs/cgroup-node ro,relatime - cgroup2 cgroup2 rw\n",
		path, sizeof(path)), 0);
	assert_string_equal(path, "/sys/fs/cgroup-node");
}

static void test_container_alone(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"801 790 0:26 / /sys/fs/cgroup ro,nosuid - cgroup2 cgroup rw\n",
		path, sizeof(path)), 0);
	assert_string_equal(path, "/sys/fs/cgroup");
}

/* A bind of a subtree is below the root: never where the guard goes. */
static void test_subtree_bind_ignored(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"40 25 0:26 /system.slice /run/sub rw - cgroup2 cgroup2 rw\n"
		"41 25 0:26 /..foo /run/odd rw - cgroup2 cgroup2 rw\n"
		"30 25 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
		path, sizeof(path)), 0);
	assert_string_equal(path, "/sys/fs/cgroup");
	assert_int_equal(pick(
		"40 25 0:26 /system.slice /run/sub rw - cgroup2 cgroup2 rw\n",
		path, sizeof(path)), -ENOENT);
}

static void test_no_cgroup2(void **state)
{
	char path[256];

	assert_int_equal(pick(
		"31 30 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
		"garbage\n\n",
		path, sizeof(path)), -ENOENT);
	assert_int_equal(pick("", path, sizeof(path)), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unified_host),
		cmocka_unit_test(test_hybrid_host),
		cmocka_unit_test(test_container_with_node_hierarchy),
		cmocka_unit_test(test_container_alone),
		cmocka_unit_test(test_subtree_bind_ignored),
		cmocka_unit_test(test_no_cgroup2),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

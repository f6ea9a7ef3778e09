/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the config suites share (test_config.c, test_config_fleet.c):
 * loading from a string, the assertions, the runner for malformed
 * configs, and the tests/configs directory. Include after <cmocka.h>.
 */
#ifndef PC_CONFIG_CASES_H
#define PC_CONFIG_CASES_H

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"

#define ERRLEN		512
#define NAME		"t.yaml"

/* Dummy Ed25519 public keys; nobody holds their secret halves. */
#define K1	"bdG3GbfNofpFzrcliCAgogwcL/O/BZDptga0wJpm4zg="
#define K2	"l/aTYvGbbX29pcNA8ShED4X2QVdUc7bnqMzhVtiy3KY="
#define K3	"ZMQqFpOnoHa2TEke3BeSnvHJq3YVpC4NR4Cjd44GCUA="	/* controller.pub */

/* Leaves room in PATH_MAX buffers for a file name after it. */
static char configs_dir[PATH_MAX - 256];

static inline int load(const char *text, struct pc_config *c, char *err)
{
	return pc_config_load_string(text, strlen(text), NAME, c, err, ERRLEN);
}

static inline void load_ok(const char *text, struct pc_config *c)
{
	char err[ERRLEN];

	if (load(text, c, err))
		fail_msg("config refused: %s\n--\n%s", err, text);
}

static inline void assert_has(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static inline void assert_prefix(const char *s, const char *prefix)
{
	if (strncmp(s, prefix, strlen(prefix)))
		fail_msg("'%s' does not start with '%s'", s, prefix);
}

/* A refused config leaves nothing behind. */
static inline void assert_zeroed(const struct pc_config *c)
{
	static const struct pc_config zero;

	assert_memory_equal(c, &zero, sizeof(zero));
}

static inline void assert_key(const __u8 *pk, const char *b64)
{
	__u8 want[PC_PK_LEN];

	assert_int_equal(pc_key_parse_public(b64, want), 0);
	assert_memory_equal(pk, want, PC_PK_LEN);
}

struct bad_case {
	const char *name;
	const char *text;
	const char *pos;	/* "FILE:LINE:COLUMN:" the message starts with */
	const char *words;	/* ... and something it says */
};

static inline void test_bad_case(void **state)
{
	const struct bad_case *bc = *state;
	char err[ERRLEN];
	struct pc_config c;

	memset(&c, 0xa5, sizeof(c));
	if (load(bc->text, &c, err) != -EINVAL) {
		pc_config_free(&c);
		fail_msg("accepted: %s", bc->text);
	}
	assert_prefix(err, bc->pos);
	assert_has(err, bc->words);
	assert_null(strchr(err, '\n'));
	assert_zeroed(&c);
}

/* One cmocka test per case, in a group of that name. */
static inline int run_bad_cases(const char *group, const struct bad_case *cases,
				size_t n)
{
	struct CMUnitTest *tests = calloc(n, sizeof(*tests));
	int failed;

	if (!tests)
		return 1;
	for (size_t i = 0; i < n; i++) {
		tests[i].name = cases[i].name;
		tests[i].test_func = test_bad_case;
		tests[i].initial_state = (void *)&cases[i];
	}
	failed = _cmocka_run_group_tests(group, tests, n, NULL, NULL);
	free(tests);
	return failed;
}

/* tests/unit/config_cases.h -> tests/configs, made absolute; chdir there. */
static inline int find_configs_dir(void)
{
	char file[PATH_MAX], buf[PATH_MAX + 16], *abs;

	snprintf(file, sizeof(file), "%s", __FILE__);
	snprintf(buf, sizeof(buf), "%s/configs", dirname(dirname(file)));
	abs = realpath(buf, NULL);
	if (!abs || strlen(abs) >= sizeof(configs_dir)) {
		fprintf(stderr, "cannot find %s: run from the source tree\n",
			buf);
		free(abs);
		return -1;
	}
	strcpy(configs_dir, abs);
	free(abs);
	return chdir(configs_dir);
}

#endif /* PC_CONFIG_CASES_H */

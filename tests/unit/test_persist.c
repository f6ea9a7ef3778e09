// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the state file (user/persist.c): a file that exists but
 * cannot be fully trusted must come back as quarantine (-EBADMSG), never as
 * a milder mode or as "no state"; a newer agent's extra keys are ignored.
 * A staged policy is durable once stored and verified by its hash at start.
 * Every test writes under one mkdtemp() directory, removed at the end.
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
#include "persist.h"

#define KEY_HEX "00112233445566778899aabbccddeeff" \
		"00112233445566778899aabbccddeeff"

static char dir[64];

static void write_state(const char *text)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/state", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static int load(struct pc_persist *p, char *why, size_t len)
{
	return pc_persist_load(dir, p, why, len);
}

static void test_missing_is_enoent(void **state)
{
	struct pc_persist p;
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	assert_int_equal(load(&p, NULL, 0), -ENOENT);
}

static void test_clean_file(void **state)
{
	struct pc_persist p;

	write_state("mode lockdown\ncause command\nsince 1795741234567\n"
		    "key " KEY_HEX " 7 9\n");
	assert_int_equal(load(&p, NULL, 0), 0);
	assert_int_equal(p.mode, PC_MODE_LOCKDOWN);
	assert_int_equal(p.cause, PC_TRIG_COMMAND);
	assert_int_equal(p.nkeys, 1);
	assert_int_equal(p.keys[0].seq[1], 9);
}

/* Forward compatibility: a well-formed line with a key we do not know. */
static void test_unknown_key_ignored(void **state)
{
	struct pc_persist p;

	write_state("mode quarantine\ncause command\nsince 1\n"
		    "lease_id 7587881224\n");
	assert_int_equal(load(&p, NULL, 0), 0);
	assert_int_equal(p.mode, PC_MODE_QUARANTINE);
}

/* Each of these must come back untrusted, as quarantine, with a reason. */
static const char *const untrusted[] = {
	"mode normal\nmode quarntine\n",		/* a known key, bad value */
	"mode normal\ncause commnd\n",
	"mode normal\nsince soon\n",
	"mode normal\nkey nothex 1 2\n",
	"mode normal\npolicy 12\n",
	"mode normal\nfleet x 1\n",
	"mode normal\n\x01\x02\xff garbage\n",		/* bit rot */
	"mode normal\nMODE quarantine\n",		/* not a key line */
	"mode normal\n\n",				/* empty line */
	"mode normal\nnovalue\n",
	"cause command\nsince 1\n",			/* no mode at all */
	"mode normal\nmode normal\n",			/* two modes */
	"",						/* empty file */
};

static void test_untrusted_is_quarantine(void **state)
{
	for (size_t i = 0; i < sizeof(untrusted) / sizeof(untrusted[0]); i++) {
		struct pc_persist p;
		char why[160] = "unset";

		write_state(untrusted[i]);
		assert_int_equal(load(&p, why, sizeof(why)), -EBADMSG);
		assert_int_equal(p.mode, PC_MODE_QUARANTINE);
		assert_string_not_equal(why, "unset");
		assert_true(why[0] != '\0');
	}
}

/* A line longer than the reader's buffer is not split into two lines. */
static void test_overlong_line_untrusted(void **state)
{
	char text[2048];
	struct pc_persist p;

	memset(text, 'a', sizeof(text));
	memcpy(text, "mode normal\nx ", 14);
	text[sizeof(text) - 2] = '\n';
	text[sizeof(text) - 1] = '\0';
	write_state(text);
	assert_int_equal(load(&p, NULL, 0), -EBADMSG);
	assert_int_equal(p.mode, PC_MODE_QUARANTINE);
}

/* What parsed before the bad line is kept: replay state must not reset. */
static void test_untrusted_keeps_replay_state(void **state)
{
	struct pc_persist p;

	write_state("mode normal\nkey " KEY_HEX " 41 42\n~~~\n");
	assert_int_equal(load(&p, NULL, 0), -EBADMSG);
	assert_int_equal(p.mode, PC_MODE_QUARANTINE);
	assert_int_equal(p.nkeys, 1);
	assert_int_equal(p.keys[0].seq[0], 41);
	assert_int_equal(p.keys[0].seq[1], 42);
}

static void test_unreadable_untrusted(void **state)
{
	char path[PATH_MAX];
	struct pc_persist p;

	/* A directory where the file should be: it exists, cannot be read. */
	snprintf(path, sizeof(path), "%s/state", dir);
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(load(&p, NULL, 0), -EBADMSG);
	assert_int_equal(p.mode, PC_MODE_QUARANTINE);
	assert_int_equal(rmdir(path), 0);
}

static void test_set_aside(void **state)
{
	char aside[PATH_MAX], path[PATH_MAX];
	struct stat st;

	write_state("mode normal\n~~~\n");
	assert_int_equal(pc_persist_set_aside(dir, aside, sizeof(aside)), 0);
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(stat(aside, &st), 0);
	assert_non_null(strstr(aside, "/state.untrusted-"));
	assert_int_equal(unlink(aside), 0);
}

static void test_round_trip(void **state)
{
	struct pc_persist in = { .mode = PC_MODE_QUARANTINE,
				 .cause = PC_TRIG_FLEET,
				 .since_wall_ms = 1795741234567ULL },
			  out;

	in.nkeys = 1;
	in.keys[0].seq[0] = 3;
	in.keys[0].seq[1] = 4;
	in.has_policy = 1;
	memset(in.policy_hash, 0xab, sizeof(in.policy_hash));
	strcpy(in.ifaces[0], "eth0");
	strcpy(in.ifaces[1], "bond0.100");
	in.nifaces = 2;
	assert_int_equal(pc_persist_save(dir, &in), 0);
	assert_int_equal(load(&out, NULL, 0), 0);
	assert_int_equal(out.mode, PC_MODE_QUARANTINE);
	assert_int_equal(out.cause, PC_TRIG_FLEET);
	assert_int_equal(out.since_wall_ms, in.since_wall_ms);
	assert_int_equal(out.keys[0].seq[1], 4);
	assert_true(out.has_policy);
	assert_memory_equal(out.policy_hash, in.policy_hash,
			    sizeof(in.policy_hash));
	assert_int_equal(out.nifaces, 2);
	assert_string_equal(out.ifaces[1], "bond0.100");
}

/* Where to attach when the config cannot be read: a name the kernel
 * could not have is damage, not a name. */
static void test_iface_lines(void **state)
{
	static const char *const bad[] = {
		"iface \n", "iface a/b\n", "iface ..\n",
		"iface name-longer-than-15\n", "iface a b\n",
	};
	struct pc_persist p;
	char text[256];

	write_state("mode lockdown\niface pcpeer\niface pcmgmt\n");
	assert_int_equal(load(&p, NULL, 0), 0);
	assert_int_equal(p.nifaces, 2);
	assert_string_equal(p.ifaces[0], "pcpeer");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), "mode normal\n%s", bad[i]);
		write_state(text);
		assert_int_equal(load(&p, NULL, 0), -EBADMSG);
		assert_int_equal(p.mode, PC_MODE_QUARANTINE);
	}
}

static const char policy_text[] = "interfaces: [eth0]\n";

static void test_store_policy_verifies(void **state)
{
	__u8 hash[PC_HASH_LEN];
	char why[PATH_MAX + 96] = "", path[PATH_MAX];
	struct stat st;

	assert_int_equal(pc_persist_store_policy(dir, policy_text,
						 strlen(policy_text), hash), 0);
	pc_persist_policy_path(dir, hash, path, sizeof(path));
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, strlen(policy_text));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(pc_persist_policy_verify(dir, hash, why, sizeof(why)), 0);
	assert_int_equal(pc_persist_policy_sync(dir, hash), 0);
}

static void test_missing_policy_refused(void **state)
{
	__u8 hash[PC_HASH_LEN];
	char why[PATH_MAX + 96] = "", path[PATH_MAX];

	assert_int_equal(pc_persist_store_policy(dir, policy_text,
						 strlen(policy_text), hash), 0);
	pc_persist_policy_path(dir, hash, path, sizeof(path));
	assert_int_equal(unlink(path), 0);
	/* What a crash before the fsync used to leave: named, not there. */
	assert_int_equal(pc_persist_policy_verify(dir, hash, why, sizeof(why)),
			 -ENOENT);
	assert_non_null(strstr(why, "No such file"));
	assert_int_equal(pc_persist_policy_sync(dir, hash), -ENOENT);
}

static void test_altered_policy_refused(void **state)
{
	__u8 hash[PC_HASH_LEN];
	char why[PATH_MAX + 96] = "", path[PATH_MAX];
	FILE *f;

	assert_int_equal(pc_persist_store_policy(dir, policy_text,
						 strlen(policy_text), hash), 0);
	pc_persist_policy_path(dir, hash, path, sizeof(path));
	/* Torn (a prefix only) or altered: not the policy that was meant. */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("interfaces: [eth", f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(pc_persist_policy_verify(dir, hash, why, sizeof(why)),
			 -EBADMSG);
	assert_non_null(strstr(why, "not its name"));
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(pc_persist_policy_verify(dir, hash, why, sizeof(why)),
			 -EBADMSG);
}

/* The mark moves only when a seq passes it, by the reserve, saturating. */
static void test_hb_seq_reserve(void **state)
{
	const __u64 R = PC_HB_SEQ_RESERVE_MAX;
	__u64 mark = 0;

	/* Half the timeout, at most 2 s. */
	assert_int_equal(pc_hb_seq_reserve_for(2000), 1000000000ULL);
	assert_int_equal(pc_hb_seq_reserve_for(5000), R);
	assert_int_equal(pc_hb_seq_reserve_for(3600000), R);

	assert_true(pc_hb_seq_reserve(&mark, 100, R));
	assert_int_equal(mark, 100 + R);
	assert_false(pc_hb_seq_reserve(&mark, 101, R));
	assert_false(pc_hb_seq_reserve(&mark, 100 + R, R));
	assert_int_equal(mark, 100 + R);
	assert_true(pc_hb_seq_reserve(&mark, 101 + R, R));
	assert_int_equal(mark, 101 + 2 * R);
	assert_true(pc_hb_seq_reserve(&mark, UINT64_MAX - 5, R));
	assert_true(mark == UINT64_MAX);
	assert_false(pc_hb_seq_reserve(&mark, UINT64_MAX, R));
}

/*
 * Heartbeats every 200 ms of the sender's ns clock, handled as the agent
 * does (check, then save when the seq passes the mark), then a crash at
 * any point: the state file brought back refuses every heartbeat taken
 * before the crash. Saving the last seq every 10 s instead (the agent
 * before issue 13) left up to 10 s of them open to a replay.
 */
static void test_hb_mark_survives_crash(void **state)
{
	const __u64 base = 1795741234567000000ULL, step = 200000000ULL;
	struct pc_msg m = { .type = PC_MSG_HEARTBEAT, .host_id = "h" };
	struct pc_persist p = { .mode = PC_MODE_NORMAL, .nkeys = 1 }, back;
	struct pc_replay r = {}, after;
	__u64 mark = 0;
	int n, saves = 0;

	for (n = 1; n <= 40; n++) {
		m.seq = base + n * step;
		m.timestamp_ms = m.seq / 1000000;
		assert_int_equal(pc_msg_check(&m, 0, "h", m.timestamp_ms, 30000,
					      &r), PC_MSG_OK);
		if (pc_hb_seq_reserve(&mark, m.seq, PC_HB_SEQ_RESERVE_MAX)) {
			p.keys[0].seq[0] = mark;
			assert_int_equal(pc_persist_save(dir, &p), 0);
			saves++;
		}
		/* Crash now: every heartbeat so far is refused after it. */
		assert_int_equal(load(&back, NULL, 0), 0);
		memset(&after, 0, sizeof(after));
		after.last_seq[0][0] = back.keys[0].seq[0];
		for (int k = 1; k <= n; k++) {
			struct pc_msg old = m;

			old.seq = base + k * step;
			assert_int_equal(pc_msg_check(&old, 0, "h", m.timestamp_ms,
						      30000, &after), PC_MSG_REPLAY);
		}
	}
	/* 8 s of heartbeats: a state write per 2 s reserve, not one each. */
	assert_int_equal(saves, 4);
}

static int setup_dir(void **state)
{
	snprintf(dir, sizeof(dir), "/tmp/pc-test-persist.XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_is_enoent),
		cmocka_unit_test(test_clean_file),
		cmocka_unit_test(test_unknown_key_ignored),
		cmocka_unit_test(test_untrusted_is_quarantine),
		cmocka_unit_test(test_overlong_line_untrusted),
		cmocka_unit_test(test_untrusted_keeps_replay_state),
		cmocka_unit_test(test_unreadable_untrusted),
		cmocka_unit_test(test_set_aside),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_iface_lines),
		cmocka_unit_test(test_store_policy_verifies),
		cmocka_unit_test(test_missing_policy_refused),
		cmocka_unit_test(test_altered_policy_refused),
		cmocka_unit_test(test_hb_seq_reserve),
		cmocka_unit_test(test_hb_mark_survives_crash),
	};

	return cmocka_run_group_tests_name("state file", tests, setup_dir,
					   remove_dir);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the audit log. Every test writes under one mkdtemp()
 * directory in /tmp, removed at the end. Each line read back goes through
 * a small strict JSON checker, so a bad escape fails the test rather than
 * some log shipper later.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>
#include "audit.h"

#define THREADS		4
#define PER_THREAD	200

static char tmp_dir[64];
static char log_path[PATH_MAX - 64];	/* tmp_dir/a/b/audit.jsonl */

/* ---- a strict JSON checker, enough for one flat-or-nested object ---- */

static bool j_value(const char **p, int depth);

static void j_ws(const char **p)
{
	*p += strspn(*p, " \t\r\n");
}

static bool j_string(const char **p)
{
	const unsigned char *s = (const unsigned char *)*p;

	if (*s++ != '"')
		return false;
	while (*s != '"') {
		if (*s < 0x20)
			return false;	/* raw control character or NUL */
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s[i]) ||
					    !s[i])
						return false;
				s += 5;
				continue;
			}
			if (!*s || !strchr("\"\\/bfnrt", *s))
				return false;
		}
		s++;
	}
	*p = (const char *)s + 1;
	return true;
}

static bool j_number(const char **p)
{
	const char *s = *p;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s += strspn(s, "0123456789");
	else
		return false;
	if (*s == '.') {
		if (!strspn(++s, "0123456789"))
			return false;
		s += strspn(s, "0123456789");
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (!strspn(s, "0123456789"))
			return false;
		s += strspn(s, "0123456789");
	}
	*p = s;
	return true;
}

static bool j_container(const char **p, int depth, char open, char close)
{
	bool first = true;

	if (**p != open || depth > 16)
		return false;
	(*p)++;
	j_ws(p);
	while (**p != close) {
		if (!first) {
			if (**p != ',')
				return false;
			(*p)++;
			j_ws(p);
		}
		if (open == '{') {
			if (!j_string(p))
				return false;
			j_ws(p);
			if (*(*p)++ != ':')
				return false;
			j_ws(p);
		}
		if (!j_value(p, depth + 1))
			return false;
		j_ws(p);
		first = false;
	}
	(*p)++;
	return true;
}

static bool j_value(const char **p, int depth)
{
	static const char *const lits[] = { "true", "false", "null" };

	switch (**p) {
	case '{':
		return j_container(p, depth, '{', '}');
	case '[':
		return j_container(p, depth, '[', ']');
	case '"':
		return j_string(p);
	}
	for (size_t i = 0; i < 3; i++) {
		if (!strncmp(*p, lits[i], strlen(lits[i]))) {
			*p += strlen(lits[i]);
			return true;
		}
	}
	return j_number(p);
}

/* One audit line: a JSON object that starts with a well-formed ts. */
static void assert_line(const char *line)
{
	static const char digits_at[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	const char *p = line;
	size_t i;

	if (strncmp(line, "{\"ts\":\"", 7))
		fail_msg("line does not start with {\"ts\":\" : %s", line);
	for (i = 0; digits_at[i]; i++) {
		char c = line[7 + i];
		bool digit = c >= '0' && c <= '9';

		if (digits_at[i] == 'd' ? !digit : c != digits_at[i])
			fail_msg("bad timestamp in %s", line);
	}
	if (strncmp(line + 7 + i, "\",\"event\":\"", 11))
		fail_msg("no event after ts: %s", line);
	if (!j_value(&p, 0) || *p)
		fail_msg("not one JSON object (stopped at '%.20s'): %s", p, line);
	if (line[strlen(line) - 1] != '}')
		fail_msg("line does not end with }: %s", line);
}

/* ---- reading the log back ---- */

struct lines {
	char *buf;
	char *line[4096];
	size_t n;
};

static void read_lines(const char *path, struct lines *l)
{
	FILE *f = fopen(path, "re");
	size_t len = 0;
	char *s;

	assert_non_null(f);
	memset(l, 0, sizeof(*l));
	l->buf = calloc(1, 1 << 20);
	assert_non_null(l->buf);
	len = fread(l->buf, 1, (1 << 20) - 1, f);
	fclose(f);
	if (len)
		assert_int_equal(l->buf[len - 1], '\n');
	for (s = l->buf; *s; ) {
		char *nl = strchr(s, '\n');

		assert_non_null(nl);
		*nl = '\0';
		assert_true(l->n < sizeof(l->line) / sizeof(l->line[0]));
		l->line[l->n++] = s;
		assert_line(s);
		s = nl + 1;
	}
}

static void free_lines(struct lines *l)
{
	free(l->buf);
}

static void assert_has(const char *haystack, const char *needle)
{
	if (!strstr(haystack, needle))
		fail_msg("'%s' does not contain '%s'", haystack, needle);
}

static void assert_lacks(const char *haystack, const char *needle)
{
	if (strstr(haystack, needle))
		fail_msg("'%s' contains '%s'", haystack, needle);
}

/* Each test starts from an empty, open log. */
static int fresh_log(void **state)
{
	unlink(log_path);
	return pc_audit_open(log_path);
}

static int close_log(void **state)
{
	pc_audit_close();
	return 0;
}

/* ---- tests ---- */

static void test_open_creates(void **state)
{
	char dir[PATH_MAX];
	struct stat st;
	mode_t old = umask(0);

	pc_audit_close();
	unlink(log_path);
	snprintf(dir, sizeof(dir), "%s/a/b", tmp_dir);
	rmdir(dir);
	snprintf(dir, sizeof(dir), "%s/a", tmp_dir);
	rmdir(dir);
	assert_int_equal(pc_audit_open(log_path), 0);
	umask(old);
	assert_int_equal(stat(log_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	snprintf(dir, sizeof(dir), "%s/a/b", tmp_dir);
	assert_int_equal(stat(dir, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
	/* Reopening appends to what is there. */
	assert_int_equal(pc_audit("first", NULL), 0);
	assert_int_equal(pc_audit_open(log_path), 0);
	assert_int_equal(pc_audit("second", NULL), 0);
	{
		struct lines l;

		read_lines(log_path, &l);
		assert_int_equal(l.n, 2);
		assert_has(l.line[0], "\"event\":\"first\"}");
		assert_has(l.line[1], "\"event\":\"second\"}");
		free_lines(&l);
	}
	assert_false(pc_audit_failing());
}

static void test_fields(void **state)
{
	struct lines l;

	assert_int_equal(pc_audit("policy_applied", "generation", "#3",
				  "hash", "ab12", "audit", "#false", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 1);
	/* Exactly the shape the README promises: ts, event, the fields. */
	assert_has(l.line[0], "Z\",\"event\":\"policy_applied\","
			      "\"generation\":3,\"hash\":\"ab12\",\"audit\":false}");
	assert_int_equal(strlen(l.line[0]),
			 strlen("{\"ts\":\"2026-11-27T01:02:03.456Z\",") +
			 strlen("\"event\":\"policy_applied\",\"generation\":3,"
				"\"hash\":\"ab12\",\"audit\":false}"));
	free_lines(&l);
}

static void test_escapes(void **state)
{
	struct lines l;

	assert_int_equal(pc_audit("esc\"ape", "q", "say \"hi\"", "bs", "a\\b",
				  "ctl", "\n\t\r\x01\x1f\x7f", "utf8",
				  "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac",
				  "bad", "\xff\xc3", "overlong", "\xc0\xaf",
				  "surrogate", "\xed\xa0\x80", "toobig",
				  "\xf4\x90\x80\x80", "cut", "\xe2\x82",
				  "ke\"y", "v", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 1);
	assert_has(l.line[0], "\"event\":\"esc\\\"ape\"");
	assert_has(l.line[0], "\"q\":\"say \\\"hi\\\"\"");
	assert_has(l.line[0], "\"bs\":\"a\\\\b\"");
	assert_has(l.line[0],
		   "\"ctl\":\"\\u000a\\u0009\\u000d\\u0001\\u001f\\u007f\"");
	/* Valid UTF-8 passes through untouched. */
	assert_has(l.line[0],
		   "\"utf8\":\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"");
	/* Everything else byte by byte as \u00XX. */
	assert_has(l.line[0], "\"bad\":\"\\u00ff\\u00c3\"");
	assert_has(l.line[0], "\"overlong\":\"\\u00c0\\u00af\"");
	assert_has(l.line[0], "\"surrogate\":\"\\u00ed\\u00a0\\u0080\"");
	assert_has(l.line[0], "\"toobig\":\"\\u00f4\\u0090\\u0080\\u0080\"");
	assert_has(l.line[0], "\"cut\":\"\\u00e2\\u0082\"");
	assert_has(l.line[0], "\"ke\\\"y\":\"v\"");
	free_lines(&l);
}

static void test_raw_values(void **state)
{
	struct lines l;

	assert_int_equal(pc_audit("raw", "n", "#42", "neg", "#-1.5e3", "zero",
				  "#0", "t", "#true", "f", "#false", "nul",
				  "#null", "word", "#abc", "lead0", "#01",
				  "hash", "#", "inject", "#1,\"x\":2", "plain",
				  "42", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 1);
	assert_has(l.line[0], "\"n\":42,\"neg\":-1.5e3,\"zero\":0,\"t\":true,"
			      "\"f\":false,\"nul\":null,");
	/* Not JSON after the '#': a string, so the line still parses. */
	assert_has(l.line[0], "\"word\":\"#abc\",\"lead0\":\"#01\",\"hash\":\"#\","
			      "\"inject\":\"#1,\\\"x\\\":2\",\"plain\":\"42\"}");
	free_lines(&l);
}

/* A NULL value ends the list: with an odd count it is the sentinel. */
static void test_null_value(void **state)
{
	struct lines l;

	assert_int_equal(pc_audit("odd", "a", "1", "b", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 1);
	assert_has(l.line[0], "\"a\":\"1\",\"b\":null}");
	free_lines(&l);
}

/*
 * The rate limiter's table lives as long as the process, so this runs in
 * a child forked before any other test used a limited key: all 32 slots
 * are free there, and the parent's table stays clean for the tests after.
 * The child only counts failures; the parent checks what reached the log.
 */
static int overflow_scenario(void)
{
	char key[16];
	int i, bad = 0;

	for (i = 0; i < 32; i++) {
		snprintf(key, sizeof(key), "ovf-%02d", i);
		bad |= pc_audit_limited(key, "rejected", "key", key, NULL);
	}
	/* Keys 33 and on share one bucket: ten lines between them. */
	for (i = 0; i < 5; i++) {
		bad |= pc_audit_limited("extra-a", "rejected", "key", "extra-a",
					NULL);
		bad |= pc_audit_limited("extra-b", "rejected", "key", "extra-b",
					NULL);
	}
	bad |= pc_audit_limited("extra-c", "rejected", "key", "extra-c", NULL);
	/* A key with a slot of its own still has nine lines left. */
	for (i = 0; i < 9; i++)
		bad |= pc_audit_limited("ovf-00", "rejected", "key", "ovf-00",
					NULL);
	return bad ? 1 : 0;
}

static void test_limit_overflow(void **state)
{
	struct lines l;
	int status, i;
	pid_t pid;

	pid = fork();
	assert_true(pid >= 0);
	if (!pid)
		_exit(overflow_scenario());
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 32 + 10 + 9);
	for (i = 0; i < (int)l.n; i++)
		assert_lacks(l.line[i], "extra-c");
	free_lines(&l);
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_limit_rate(void **state)
{
	struct timespec t0;
	struct lines l;
	int i;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < 11; i++)
		assert_int_equal(pc_audit_limited("rate", "rejected", "reason",
						  "bad_sig", "n", i == 10 ? "#10" : "#0",
						  NULL), 0);
	/* Another key is not held back by this one. */
	assert_int_equal(pc_audit_limited("other", "rejected", NULL), 0);
	if (since(&t0) >= 1.0)
		skip();	/* too slow a machine to tell a window apart */
	read_lines(log_path, &l);
	assert_int_equal(l.n, 11);
	for (i = 0; i < 10; i++) {
		assert_has(l.line[i], "\"event\":\"rejected\",\"reason\":\"bad_sig\"");
		assert_lacks(l.line[i], "suppressed");
	}
	assert_lacks(l.buf, "\"n\":10");
	free_lines(&l);

	/* Next window: the count of what was held back rides along once. */
	while (since(&t0) < 1.02)
		usleep(10000);
	assert_int_equal(pc_audit_limited("rate", "rejected", "reason", "late",
					  NULL), 0);
	assert_int_equal(pc_audit_limited("rate", "rejected", "reason",
					  "later", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 13);
	assert_has(l.line[11], "\"reason\":\"late\",\"suppressed\":1}");
	assert_has(l.line[12], "\"reason\":\"later\"}");
	free_lines(&l);
}

static void test_dev_full(void **state)
{
	assert_false(pc_audit_failing());
	assert_int_equal(pc_audit_open("/dev/full"), 0);
	assert_false(pc_audit_failing());
	assert_int_equal(pc_audit("disk_full", "n", "#1", NULL), -ENOSPC);
	assert_true(pc_audit_failing());
	assert_int_equal(pc_audit_limited("full", "rejected", NULL), -ENOSPC);
	assert_true(pc_audit_failing());
	/* A write that works again clears the flag. */
	unlink(log_path);
	assert_int_equal(pc_audit_open(log_path), 0);
	assert_int_equal(pc_audit("recovered", NULL), 0);
	assert_false(pc_audit_failing());
}

/* A reopen that fails keeps the log that works. */
static void test_open_fails(void **state)
{
	struct lines l;

	assert_true(pc_audit_open("/dev/null/x/audit.jsonl") < 0);
	assert_true(pc_audit_open("") < 0);
	assert_int_equal(pc_audit("still_here", NULL), 0);
	read_lines(log_path, &l);
	assert_int_equal(l.n, 1);
	free_lines(&l);
}

/* Before pc_audit_open (or after close): syslog and stderr only. */
static void test_not_open(void **state)
{
	char path[PATH_MAX], buf[512] = "";
	int fd, saved;
	ssize_t n;

	pc_audit_close();
	snprintf(path, sizeof(path), "%s/stderr.txt", tmp_dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	dup2(fd, STDERR_FILENO);
	assert_int_equal(pc_audit("early", "why", "not open yet", NULL), 0);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	unlink(path);
	assert_true(n > 0);
	assert_int_equal(buf[n - 1], '\n');
	buf[n - 1] = '\0';
	assert_line(buf);
	assert_has(buf, "\"event\":\"early\",\"why\":\"not open yet\"}");
	assert_false(pc_audit_failing());
}

/* A FIFO never hangs us and a vanished reader never kills us. */
static void test_fifo(void **state)
{
	char path[PATH_MAX], buf[512];
	ssize_t n;
	int rd;

	snprintf(path, sizeof(path), "%s/fifo", tmp_dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_int_equal(pc_audit_open(path), -ENXIO);	/* no reader yet */
	rd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	assert_true(rd >= 0);
	assert_int_equal(pc_audit_open(path), 0);
	assert_int_equal(pc_audit("piped", NULL), 0);
	n = read(rd, buf, sizeof(buf) - 1);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_has(buf, "\"event\":\"piped\"}\n");
	close(rd);
	assert_int_equal(pc_audit("no_reader", NULL), -EPIPE);
	assert_true(pc_audit_failing());
	pc_audit_close();
	unlink(path);
}

static void *writer(void *arg)
{
	char id[16];
	int i;

	snprintf(id, sizeof(id), "%ld", (long)(intptr_t)arg);
	for (i = 0; i < PER_THREAD; i++)
		if (pc_audit("thread", "id", id, "pad",
			     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
			     NULL))
			return (void *)1;
	return NULL;
}

/* Lines from several threads come out whole, never interleaved. */
static void test_threads(void **state)
{
	pthread_t t[THREADS];
	struct lines l;
	void *ret;
	int i;

	for (i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, writer,
						(void *)(intptr_t)i), 0);
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(t[i], &ret), 0);
		assert_null(ret);
	}
	read_lines(log_path, &l);
	assert_int_equal(l.n, THREADS * PER_THREAD);
	free_lines(&l);
}

static int setup_dir(void **state)
{
	snprintf(tmp_dir, sizeof(tmp_dir), "/tmp/pc-audit-XXXXXX");
	if (!mkdtemp(tmp_dir))
		return -1;
	snprintf(log_path, sizeof(log_path), "%s/a/b/audit.jsonl", tmp_dir);
	return 0;
}

static int remove_dir(void **state)
{
	char p[PATH_MAX];

	pc_audit_close();
	unlink(log_path);
	snprintf(p, sizeof(p), "%s/a/b", tmp_dir);
	rmdir(p);
	snprintf(p, sizeof(p), "%s/a", tmp_dir);
	rmdir(p);
	return rmdir(tmp_dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_open_creates),
		cmocka_unit_test_setup_teardown(test_fields, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_escapes, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_raw_values, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_null_value, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_limit_overflow, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_limit_rate, fresh_log,
						close_log),
		cmocka_unit_test_setup_teardown(test_dev_full, NULL, close_log),
		cmocka_unit_test_setup_teardown(test_open_fails, fresh_log,
						close_log),
		cmocka_unit_test(test_not_open),
		cmocka_unit_test_setup_teardown(test_fifo, NULL, close_log),
		cmocka_unit_test_setup_teardown(test_threads, fresh_log,
						close_log),
	};

	return cmocka_run_group_tests_name("audit log", tests, setup_dir,
					   remove_dir);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Audit log: one JSON object per line. Each line goes out in a single
 * write() on an O_APPEND descriptor, so lines from this process and any
 * other appender never interleave, and is fsynced before we return: an
 * event we report as logged survives a crash right after. A failing disk
 * must not take the agent down with it, so errors are remembered and
 * returned, never fatal.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "audit.h"

#define LIMIT_BURST	10		/* lines per key ... */
#define LIMIT_WINDOW_NS	1000000000ULL	/* ... and per second */
#define LIMIT_KEYS	32
#define LIMIT_KEY_LEN	64	/* longer keys share by their prefix */
#define SYSLOG_IDENT	"portcullisd"

/* One key's rate-limit window. */
struct bucket {
	char key[LIMIT_KEY_LEN];	/* "" = free */
	unsigned long long start_ns;	/* CLOCK_MONOTONIC, window start */
	unsigned int lines;		/* written in this window */
	unsigned long long suppressed;	/* dropped since the last line */
};

/* Callers may be on several threads; one lock keeps lines and counts whole. */
static struct {
	pthread_mutex_t lock;
	int fd;		/* -1: not open, syslog and stderr only */
	bool pipe;	/* FIFO or socket: writes can raise SIGPIPE */
	bool failing;
	struct bucket buckets[LIMIT_KEYS];
	struct bucket overflow;	/* for every key beyond LIMIT_KEYS */
} audit = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.fd = -1,
};

/* ---- building a line ---- */

struct line {
	char *s;
	size_t len;
	size_t cap;
	bool oom;		/* sticky: checked once, at the end */
};

static void put(struct line *l, const char *s, size_t n)
{
	char *p;
	size_t cap;

	if (l->oom)
		return;
	if (l->len + n + 1 > l->cap) {
		cap = l->cap ? l->cap : 256;
		while (cap < l->len + n + 1)
			cap *= 2;
		p = realloc(l->s, cap);
		if (!p) {
			l->oom = true;
			return;
		}
		l->s = p;
		l->cap = cap;
	}
	memcpy(l->s + l->len, s, n);
	l->len += n;
	l->s[l->len] = '\0';
}

static void puts_(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void putf(struct line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void putf(struct line *l, const char *fmt, ...)
{
	char buf[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		l->oom = true;
	else
		put(l, buf, n);
}

static bool cont(unsigned char c)
{
	return (c & 0xc0) == 0x80;
}

/*
 * Length of the well-formed UTF-8 sequence at s, 0 if there is none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. The string
 * is NUL-terminated and NUL is no continuation byte, so the checks stop
 * at its end.
 */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char c = s[0];

	if (c >= 0xc2 && c <= 0xdf)
		return cont(s[1]) ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((c == 0xe0 && s[1] < 0xa0) || (c == 0xed && s[1] > 0x9f))
			return 0;
		return cont(s[1]) && cont(s[2]) ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((c == 0xf0 && s[1] < 0x90) || (c == 0xf4 && s[1] > 0x8f))
			return 0;
		return cont(s[1]) && cont(s[2]) && cont(s[3]) ? 4 : 0;
	}
	return 0;
}

/*
 * A JSON string. Bytes that are not valid UTF-8 become \u00XX, so the
 * line stays valid JSON whatever a peer put into a field we log.
 */
static void put_str(struct line *l, const char *str)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t n;

	puts_(l, "\"");
	while (*s) {
		if (*s == '"' || *s == '\\') {
			put(l, "\\", 1);
			put(l, (const char *)s, 1);
			s++;
		} else if (*s < 0x20 || *s == 0x7f) {
			putf(l, "\\u%04x", *s);
			s++;
		} else if (*s < 0x80) {
			for (n = 1; s[n] >= 0x20 && s[n] < 0x7f && s[n] != '"' &&
				    s[n] != '\\'; n++)
				;
			put(l, (const char *)s, n);
			s += n;
		} else if ((n = utf8_len(s))) {
			put(l, (const char *)s, n);
			s += n;
		} else {
			putf(l, "\\u%04x", *s);
			s++;
		}
	}
	puts_(l, "\"");
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *s)
{
	size_t n;

	if (*s == '-')
		s++;
	if (*s == '0')
		s++;
	else if (*s >= '1' && *s <= '9')
		s += strspn(s, "0123456789");
	else
		return false;
	if (*s == '.') {
		n = strspn(++s, "0123456789");
		if (!n)
			return false;
		s += n;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		n = strspn(s, "0123456789");
		if (!n)
			return false;
		s += n;
	}
	return !*s;
}

/*
 * "#..." values are raw JSON; one that is not a number or literal would
 * break the line for every reader, so it is logged as a string instead.
 */
static void put_value(struct line *l, const char *v)
{
	if (!v) {
		puts_(l, "null");
	} else if (v[0] == '#' && (json_number(v + 1) || !strcmp(v + 1, "true") ||
				   !strcmp(v + 1, "false") ||
				   !strcmp(v + 1, "null"))) {
		puts_(l, v + 1);
	} else {
		put_str(l, v);
	}
}

static void put_ts(struct line *l)
{
	struct timespec ts;
	struct tm tm;
	char buf[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
	putf(l, "{\"ts\":\"%s.%03ldZ\"", buf, ts.tv_nsec / 1000000);
}

/*
 * Pairs of key and value until a NULL key. A NULL value also ends the
 * list (after "key":null): with an odd count it is the sentinel, and
 * reading on would take garbage off the stack.
 */
static int build(struct line *l, const char *event,
		 unsigned long long suppressed, va_list ap)
{
	const char *k, *v;

	put_ts(l);
	puts_(l, ",\"event\":");
	put_str(l, event ? event : "");
	while ((k = va_arg(ap, const char *))) {
		v = va_arg(ap, const char *);
		puts_(l, ",");
		put_str(l, k);
		puts_(l, ":");
		put_value(l, v);
		if (!v)
			break;
	}
	if (suppressed)
		putf(l, ",\"suppressed\":%llu", suppressed);
	puts_(l, "}\n");
	return l->oom ? -ENOMEM : 0;
}

/* ---- writing it ---- */

/*
 * A reader gone from a FIFO or socket would raise SIGPIPE and kill the
 * agent; keep it pending while we write and take it back after, so the
 * write just fails with EPIPE.
 */
static ssize_t write_nosig(int fd, const char *s, size_t len, bool pipe)
{
	sigset_t pipe_set, old;
	struct timespec zero = { 0 };
	bool was_pending;
	ssize_t n;
	int saved;

	if (!pipe)
		return write(fd, s, len);
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	{
		sigset_t pending;

		sigpending(&pending);
		was_pending = sigismember(&pending, SIGPIPE);
	}
	n = write(fd, s, len);
	saved = errno;
	if (n < 0 && saved == EPIPE && !was_pending)
		sigtimedwait(&pipe_set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = saved;
	return n;
}

/* Caller holds the lock. */
static int write_line(const char *s, size_t len)
{
	ssize_t n;
	int err = 0;

	do {
		n = write_nosig(audit.fd, s, len, audit.pipe);
	} while (n < 0 && errno == EINTR);
	/*
	 * A short write means the disk filled mid-line: finish the line if
	 * we can, so what is there still parses, and learn the real error
	 * if we cannot.
	 */
	if (n >= 0 && (size_t)n < len) {
		s += n;
		len -= n;
		n = write_nosig(audit.fd, s, len, audit.pipe);
		if (n >= 0 && (size_t)n < len) {
			n = -1;
			errno = EIO;
		}
	}
	if (n < 0)
		err = -errno;
	/* Pipes and devices cannot be synced, and need not be. */
	else if (fsync(audit.fd) && errno != EINVAL && errno != EROFS)
		err = -errno;
	audit.failing = err != 0;
	return err;
}

static void to_stderr(const char *s, size_t len)
{
	ssize_t n = write(STDERR_FILENO, s, len);

	(void)n;	/* nowhere left to report a failure to */
}

static int emit(const char *event, unsigned long long suppressed, va_list ap)
{
	struct line l = { 0 };
	int err;

	err = build(&l, event, suppressed, ap);
	if (err) {
		free(l.s);
		syslog(LOG_ERR, "audit: no memory to log event '%s'",
		       event ? event : "");
		if (audit.fd >= 0)
			audit.failing = true;
		return err;
	}
	/* The journal gets the line without its newline. */
	l.s[l.len - 1] = '\0';
	syslog(LOG_NOTICE, "%s", l.s);
	l.s[l.len - 1] = '\n';
	if (audit.fd < 0)
		to_stderr(l.s, l.len);
	else
		err = write_line(l.s, l.len);
	free(l.s);
	return err;
}

int pc_audit(const char *event, ...)
{
	va_list ap;
	int err;

	pthread_mutex_lock(&audit.lock);
	va_start(ap, event);
	err = emit(event, 0, ap);
	va_end(ap);
	pthread_mutex_unlock(&audit.lock);
	return err;
}

/* ---- rate limiting ---- */

static unsigned long long mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/*
 * A bucket past its window with nothing suppressed is as good as new,
 * so its slot can go to another key without anyone seeing a difference.
 */
static bool bucket_idle(const struct bucket *b, unsigned long long now)
{
	return !b->suppressed && now - b->start_ns >= LIMIT_WINDOW_NS;
}

static struct bucket *find_bucket(const char *key, unsigned long long now)
{
	struct bucket *free_slot = NULL, *b;
	size_t i;

	if (!key || !*key)
		return &audit.overflow;
	for (i = 0; i < LIMIT_KEYS; i++) {
		b = &audit.buckets[i];
		if (b->key[0] && !strncmp(b->key, key, LIMIT_KEY_LEN - 1))
			return b;
		if (!free_slot && (!b->key[0] || bucket_idle(b, now)))
			free_slot = b;
	}
	if (!free_slot)
		return &audit.overflow;
	memset(free_slot, 0, sizeof(*free_slot));
	snprintf(free_slot->key, sizeof(free_slot->key), "%s", key);
	return free_slot;
}

int pc_audit_limited(const char *key, const char *event, ...)
{
	unsigned long long now = mono_ns();
	struct bucket *b;
	va_list ap;
	int err = 0;

	pthread_mutex_lock(&audit.lock);
	b = find_bucket(key, now);
	if (!b->lines || now - b->start_ns >= LIMIT_WINDOW_NS) {
		b->start_ns = now;
		b->lines = 0;
	}
	if (b->lines >= LIMIT_BURST) {
		b->suppressed++;
		goto out;
	}
	b->lines++;
	va_start(ap, event);
	err = emit(event, b->suppressed, ap);
	va_end(ap);
	/* A count that did not reach the log is carried to the next line. */
	if (!err)
		b->suppressed = 0;
out:
	pthread_mutex_unlock(&audit.lock);
	return err;
}

/* ---- open and close ---- */

/* mkdir -p of everything before the last '/'; new directories are 0700. */
static int make_parents(const char *path)
{
	char *dir = strdup(path), *p;
	struct stat st;
	int err = 0;

	if (!dir)
		return -ENOMEM;
	for (p = dir + 1; !err && (p = strchr(p, '/')); p++) {
		*p = '\0';
		if (mkdir(dir, 0700) && errno != EEXIST &&
		    (stat(dir, &st) || !S_ISDIR(st.st_mode)))
			err = -errno;
		*p = '/';
	}
	free(dir);
	return err;
}

int pc_audit_open(const char *path)
{
	struct stat st;
	int fd, err;

	if (!path || !*path)
		return -EINVAL;
	err = make_parents(path);
	if (err)
		return err;
	/* O_NONBLOCK: a FIFO without a reader must not hang us in open(). */
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY |
			O_NONBLOCK, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	/* Swap once the new file is open: a failed reopen keeps logging. */
	pthread_mutex_lock(&audit.lock);
	if (audit.fd >= 0)
		close(audit.fd);
	audit.fd = fd;
	audit.pipe = S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode);
	audit.failing = false;
	openlog(SYSLOG_IDENT, LOG_PID, LOG_DAEMON);
	pthread_mutex_unlock(&audit.lock);
	return 0;
}

void pc_audit_close(void)
{
	pthread_mutex_lock(&audit.lock);
	if (audit.fd >= 0) {
		close(audit.fd);
		closelog();
	}
	audit.fd = -1;
	audit.pipe = false;
	audit.failing = false;
	pthread_mutex_unlock(&audit.lock);
}

bool pc_audit_failing(void)
{
	bool failing;

	pthread_mutex_lock(&audit.lock);
	failing = audit.failing;
	pthread_mutex_unlock(&audit.lock);
	return failing;
}

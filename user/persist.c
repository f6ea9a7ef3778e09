// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * State file, "key value" lines:
 *   mode quarantine
 *   cause command
 *   since 1795741234567
 *   key <pubkey hex> <heartbeat seq mark> <command seq>
 *   policy <sha256 hex>
 *   iface <name>			(one per interface enforced on)
 * A file that exists but cannot be fully trusted -- a known key whose value
 * does not parse, a line that is no "key value" at all, no mode line or two,
 * a file that cannot be read -- is untrusted (-EBADMSG): what parsed is kept
 * (replay state, the policy hash) but the caller must start at its
 * strictest, quarantine. A well-formed line with a key this version does
 * not know ("word value", as a newer agent may add) is ignored, so
 * forward compatibility never quarantines a host.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include "fsm.h"
#include "log.h"
#include "persist.h"
#include "policy.h"

__u64 pc_hb_seq_reserve_for(__u64 hb_timeout_ms)
{
	__u64 half = hb_timeout_ms * 1000000ULL / 2;

	return half < PC_HB_SEQ_RESERVE_MAX ? half : PC_HB_SEQ_RESERVE_MAX;
}

bool pc_hb_seq_reserve(__u64 *mark, __u64 seq, __u64 reserve)
{
	if (seq <= *mark)
		return false;
	*mark = seq > UINT64_MAX - reserve ? UINT64_MAX : seq + reserve;
	return true;
}

const char *pc_state_dir(const char *opt)
{
	const char *env = getenv("PORTCULLIS_STATE_DIR");

	if (opt && *opt)
		return opt;
	if (env && *env)
		return env;
	return PC_DEFAULT_STATE_DIR;
}

static int mkdirs(const char *dir)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s", dir);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(path, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* fsync a directory, so the names created or renamed in it are durable. */
static int fsync_dir(const char *dir)
{
	int fd, err = 0;

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

/* "fleet TARGET SEQ TIMESTAMP MODE RELEASE HASH|-" */
static int parse_fleet_line(const char *line, struct pc_persist *out)
{
	char target[80], mode[16], hash[80];
	unsigned long long seq, ts;
	struct pc_fleet_desired *f;
	int release;

	if (out->nfleet >= PC_FLEET_MAX_TARGETS ||
	    sscanf(line, "fleet %79s %llu %llu %15s %d %79s", target, &seq, &ts,
		   mode, &release, hash) != 6 || strlen(target) >= sizeof(f->target))
		return -EINVAL;
	f = &out->fleet[out->nfleet];
	if (pc_mode_parse(mode, &f->mode))
		return -EINVAL;
	if (strcmp(hash, "-")) {
		if (pc_unhex(hash, f->policy_hash, PC_HASH_LEN))
			return -EINVAL;
		f->has_policy = 1;
	}
	strcpy(f->target, target);
	f->seq = seq;
	f->timestamp_ms = ts;
	f->release = !!release;
	out->nfleet++;
	return 0;
}

/* "iface NAME": an interface name as the kernel allows it. */
static int parse_iface_line(const char *line, struct pc_persist *out)
{
	const char *name = line + strlen("iface ");
	size_t n = strlen(name);

	if (out->nifaces >= PC_MAX_IFACES || !n || n >= PC_IFNAME_LEN ||
	    strpbrk(name, "/: \t") || !strcmp(name, ".") || !strcmp(name, ".."))
		return -EINVAL;
	memcpy(out->ifaces[out->nifaces++], name, n + 1);
	return 0;
}

/* "word value": a key of lowercase letters, digits, '_' or '-'. */
static bool is_key_line(const char *line)
{
	const char *p = line;

	if (*p < 'a' || *p > 'z')
		return false;
	while ((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
	       *p == '_' || *p == '-')
		p++;
	if (*p != ' ' || !p[1])
		return false;
	for (p++; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			return false;
	return true;
}

static bool key_is(const char *line, const char *key)
{
	size_t n = strlen(key);

	return !strncmp(line, key, n) && line[n] == ' ';
}

/* One line into OUT: 0, 1 for an ignorable unknown key, -EINVAL. */
static int parse_line(const char *line, struct pc_persist *out, int *modes)
{
	unsigned long long x, y;
	enum pc_trigger t;
	enum pc_mode m;
	char a[160];

	if (!is_key_line(line))
		return -EINVAL;
	if (key_is(line, "mode")) {
		if (sscanf(line, "mode %159s", a) != 1 || pc_mode_parse(a, &m))
			return -EINVAL;
		out->mode = m;
		(*modes)++;
	} else if (key_is(line, "cause")) {
		if (sscanf(line, "cause %159s", a) != 1 || pc_trigger_parse(a, &t))
			return -EINVAL;
		out->cause = t;
	} else if (key_is(line, "since")) {
		if (sscanf(line, "since %llu", &x) != 1)
			return -EINVAL;
		out->since_wall_ms = x;
	} else if (key_is(line, "key")) {
		if (sscanf(line, "key %159s %llu %llu", a, &x, &y) != 3 ||
		    out->nkeys >= PC_MAX_KEYS ||
		    pc_unhex(a, out->keys[out->nkeys].pk, PC_PK_LEN))
			return -EINVAL;
		out->keys[out->nkeys].seq[0] = x;
		out->keys[out->nkeys].seq[1] = y;
		out->nkeys++;
	} else if (key_is(line, "fleet")) {
		return parse_fleet_line(line, out);
	} else if (key_is(line, "iface")) {
		return parse_iface_line(line, out);
	} else if (key_is(line, "policy")) {
		if (sscanf(line, "policy %159s", a) != 1 ||
		    pc_unhex(a, out->policy_hash, PC_HASH_LEN))
			return -EINVAL;
		out->has_policy = 1;
	} else {
		return 1;
	}
	return 0;
}

int pc_persist_load(const char *state_dir, struct pc_persist *out,
		    char *why, size_t why_len)
{
	char path[PATH_MAX], line[512], msg[160];
	int lineno = 0, modes = 0, rc;
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (why_len)
		why[0] = '\0';
	msg[0] = '\0';
	snprintf(path, sizeof(path), "%s/state", state_dir);
	f = fopen(path, "re");
	if (!f) {
		if (errno == ENOENT)
			return -ENOENT;
		snprintf(msg, sizeof(msg), "cannot be read: %s", strerror(errno));
		goto untrusted;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			snprintf(msg, sizeof(msg), "line %d is over %zu bytes",
				 lineno, sizeof(line) - 2);
			fclose(f);
			goto untrusted;
		}
		line[strcspn(line, "\n")] = '\0';
		rc = parse_line(line, out, &modes);
		if (rc < 0) {
			snprintf(msg, sizeof(msg), "line %d is not understood: '%.60s'",
				 lineno, line);
			fclose(f);
			goto untrusted;
		}
		if (rc > 0)
			pr_warn("state file %s: line %d: unknown key ignored: '%.60s'\n",
				path, lineno, line);
	}
	if (ferror(f)) {
		snprintf(msg, sizeof(msg), "read error: %s", strerror(errno));
		fclose(f);
		goto untrusted;
	}
	fclose(f);
	if (modes != 1) {
		snprintf(msg, sizeof(msg), "%s mode line", modes ? "more than one" :
								 "no");
		goto untrusted;
	}
	return 0;
untrusted:
	pr_warn("state file %s is untrusted: %s\n", path, msg);
	if (why_len)
		snprintf(why, why_len, "%s", msg);
	out->mode = PC_MODE_QUARANTINE;
	return -EBADMSG;
}

int pc_persist_set_aside(const char *state_dir, char *aside, size_t len)
{
	char path[PATH_MAX];
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	snprintf(path, sizeof(path), "%s/state", state_dir);
	snprintf(aside, len, "%s/state.untrusted-%lld%03ld", state_dir,
		 (long long)ts.tv_sec, ts.tv_nsec / 1000000);
	if (rename(path, aside))
		return -errno;
	return 0;
}

int pc_persist_save(const char *state_dir, const struct pc_persist *p)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8], hex[2 * PC_HASH_LEN + 1];
	int fd, err = 0;
	FILE *f;

	err = mkdirs(state_dir);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/state", state_dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		err = -errno;
		close(fd);
		return err;
	}
	fprintf(f, "mode %s\ncause %s\nsince %llu\n", pc_mode_name(p->mode),
		pc_trigger_name(p->cause), (unsigned long long)p->since_wall_ms);
	for (size_t i = 0; i < p->nkeys; i++) {
		char khex[2 * PC_PK_LEN + 1];

		pc_hex(p->keys[i].pk, PC_PK_LEN, khex);
		fprintf(f, "key %s %llu %llu\n", khex,
			(unsigned long long)p->keys[i].seq[0],
			(unsigned long long)p->keys[i].seq[1]);
	}
	if (p->has_policy) {
		pc_hex(p->policy_hash, PC_HASH_LEN, hex);
		fprintf(f, "policy %s\n", hex);
	}
	for (size_t i = 0; i < p->nifaces; i++)
		fprintf(f, "iface %s\n", p->ifaces[i]);
	for (size_t i = 0; i < p->nfleet; i++) {
		const struct pc_fleet_desired *e = &p->fleet[i];

		if (e->has_policy)
			pc_hex(e->policy_hash, PC_HASH_LEN, hex);
		fprintf(f, "fleet %s %llu %llu %s %d %s\n", e->target,
			(unsigned long long)e->seq,
			(unsigned long long)e->timestamp_ms, pc_mode_name(e->mode),
			e->release, e->has_policy ? hex : "-");
	}
	if (fflush(f) || fsync(fd))
		err = -errno;
	if (fclose(f) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	/* The rename itself must reach the disk. */
	fsync_dir(state_dir);
	return 0;
}

void pc_persist_policy_path(const char *state_dir, const __u8 *hash,
			    char *buf, size_t len)
{
	char hex[2 * PC_HASH_LEN + 1];

	pc_hex(hash, PC_HASH_LEN, hex);
	snprintf(buf, len, "%s/policies/%s.yaml", state_dir, hex);
}

/*
 * The staged file, policies/ and the state dir itself (which holds the
 * name policies/) on disk, in that order: once the state file names a
 * hash, a crash cannot leave it naming a file that never reached the disk.
 */
int pc_persist_policy_sync(const char *state_dir, const __u8 *hash)
{
	char dir[PATH_MAX], path[PATH_MAX];
	int fd, err = 0;

	pc_persist_policy_path(state_dir, hash, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	snprintf(dir, sizeof(dir), "%s/policies", state_dir);
	if (!err)
		err = fsync_dir(dir);
	if (!err)
		err = fsync_dir(state_dir);
	return err;
}

int pc_persist_policy_verify(const char *state_dir, const __u8 *hash,
			     char *why, size_t why_len)
{
	char path[PATH_MAX], hex[2 * PC_HASH_LEN + 1];
	__u8 got[PC_HASH_LEN];
	struct stat st;
	char *text;
	ssize_t n;
	int fd, err = 0;

	pc_persist_policy_path(state_dir, hash, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		snprintf(why, why_len, "%s: %s", path, strerror(-err));
		if (fd >= 0)
			close(fd);
		return err;
	}
	text = malloc(st.st_size ? st.st_size : 1);
	if (!text) {
		close(fd);
		snprintf(why, why_len, "%s: out of memory", path);
		return -ENOMEM;
	}
	n = read(fd, text, st.st_size);
	if (n < 0)
		err = -errno;
	close(fd);
	if (!err && n != st.st_size)
		err = -EIO;
	if (!err) {
		pc_sha256(text, n, got);
		if (memcmp(got, hash, PC_HASH_LEN)) {
			pc_hex(got, PC_HASH_LEN, hex);
			err = -EBADMSG;
			snprintf(why, why_len, "%s: content hashes to %.16s..., "
				 "not its name (torn or altered)", path, hex);
		}
	} else {
		snprintf(why, why_len, "%s: %s", path, strerror(-err));
	}
	free(text);
	return err;
}

int pc_persist_store_policy(const char *state_dir, const char *text,
			    size_t len, __u8 hash[PC_HASH_LEN])
{
	char dir[PATH_MAX], path[PATH_MAX], tmp[PATH_MAX + 8];
	ssize_t n;
	int fd, err;

	pc_sha256(text, len, hash);
	snprintf(dir, sizeof(dir), "%s/policies", state_dir);
	err = mkdirs(dir);
	if (err)
		return err;
	pc_persist_policy_path(state_dir, hash, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, text, len);
	err = n == (ssize_t)len ? 0 : n < 0 ? -errno : -EIO;
	if (!err && fsync(fd))
		err = -errno;
	close(fd);
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	/* Durable before any state file names it. */
	return pc_persist_policy_sync(state_dir, hash);
}

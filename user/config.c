// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Agent configuration: YAML, through libyaml's document API, into struct
 * pc_config. As strict as the policy parser and for the same reason: the
 * config decides who may lock this host down and when it locks itself
 * down, so a typo must stop the agent with a line and column rather than
 * quietly fall back to a default.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/un.h>
#include <yaml.h>
#include "config.h"
#include "filetrust.h"
#include "metrics.h"

/* A config is a page or two; anything larger is not one. */
#define CONFIG_MAX_BYTES	(1U << 20)
/* A key file holds one line of base64 (44 characters) and a newline. */
#define KEY_FILE_MAX_BYTES	4096
#define MSG_LEN			512

#define MS_PER_S		1000ULL
#define MS_PER_M		(60 * MS_PER_S)
#define MS_PER_H		(60 * MS_PER_M)

#define DEFAULT_STATE_DIR	"/var/lib/portcullis"
#define DEFAULT_AUDIT_LOG	"/var/log/portcullis/audit.jsonl"
#define DEFAULT_CONTROL_SOCKET	"/run/portcullis/control.sock"
#define DEFAULT_LISTEN_ADDR	"::"
#define DEFAULT_LISTEN_PORT	7800
#define DEFAULT_MAX_SKEW_MS	(30 * MS_PER_S)
#define DEFAULT_HB_TIMEOUT_MS	(5 * MS_PER_S)
#define DEFAULT_BACKOFF_MS	(30 * MS_PER_S)
#define DEFAULT_INTERVAL_MS	MS_PER_S
#define DEFAULT_INTERVALS	1
#define DEFAULT_REPORT_MS	(10 * MS_PER_S)
#define DEFAULT_REQUEST_MS	(2 * MS_PER_S)
#define DEFAULT_FLEET_SKEW_MS	MS_PER_S
#define MAX_INTERVALS		1000

#define NAME_CHARS	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz" \
			"0123456789_.-"
#define HOST_ID_CHARS	NAME_CHARS ":"
#define IFNAME_CHARS	NAME_CHARS ":@"

struct ctx {
	yaml_document_t *doc;
	const char *name;	/* file name in messages */
	const char *base_dir;	/* relative paths; NULL: as written */
	char *err;
	size_t errlen;
	struct pc_config *cfg;
	size_t keys_shared;	/* keys from controller: the fleet may list them again */
};

/* A key a mapping may hold, and what the document gave it. */
struct field {
	const char *key;
	yaml_node_t *key_node;
	yaml_node_t *val;
};

struct word {
	const char *s;
	int v;
};

/* A duration's accepted range, as written in messages. */
struct span {
	__u64 min_ms;
	__u64 max_ms;
	const char *text;
};

static const struct span timeout_span = { 100, MS_PER_H, "100ms..1h" };
static const struct span interval_span = { 100, MS_PER_H, "100ms..1h" };
static const struct span skew_span = { MS_PER_S, MS_PER_H, "1s..1h" };
static const struct span backoff_span = { 0, 24 * MS_PER_H, "0s..24h" };
static const struct span report_span = { MS_PER_S, MS_PER_H, "1s..1h" };
/* Fleet heartbeats: every ms of it is time a dead controller stays trusted. */
static const struct span fleet_skew_span = { 0, MS_PER_M, "0s..1m" };

static const struct word xdp_words[] = {
	{ "auto", PC_XDP_AUTO },
	{ "native", PC_XDP_NATIVE },
	{ "generic", PC_XDP_GENERIC },
	{ NULL, 0 },
};

/* Normal is no reaction: neither heartbeat nor trigger may ask for it. */
static const struct word reaction_words[] = {
	{ "lockdown", PC_MODE_LOCKDOWN },
	{ "quarantine", PC_MODE_QUARANTINE },
	{ NULL, 0 },
};

static const char *const metric_names[PC_METRIC_COUNT] = {
	[PC_METRIC_EGRESS_NEW_FLOWS] = "egress_new_flows",
	[PC_METRIC_EGRESS_DESTINATIONS] = "egress_destinations",
	[PC_METRIC_EGRESS_DENIED] = "egress_denied",
	[PC_METRIC_INGRESS_DEFAULT_DENIED] = "ingress_default_denied",
};

const char *pc_metric_name(enum pc_metric m)
{
	return (unsigned int)m < PC_METRIC_COUNT ? metric_names[m] : "unknown";
}

/* ---- messages ---- */

/* Messages are one line: a quoted value must not smuggle in a newline. */
static void one_line(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

static void set_err(struct ctx *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(struct ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (!c->err || !c->errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	one_line(c->err);
}

static int pos_err(struct ctx *c, size_t line, size_t col, const char *fmt,
		   ...) __attribute__((format(printf, 4, 5)));

static int pos_err(struct ctx *c, size_t line, size_t col, const char *fmt,
		   ...)
{
	char msg[MSG_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(c, "%s:%zu:%zu: %s", c->name, line, col, msg);
	return -EINVAL;
}

/* libyaml marks are 0-based; people count from 1. */
#define node_err(c, n, ...)                                                   \
	pos_err(c, (n)->start_mark.line + 1, (n)->start_mark.column + 1,     \
		__VA_ARGS__)

static int oom(struct ctx *c)
{
	set_err(c, "%s: %s", c->name, strerror(ENOMEM));
	return -ENOMEM;
}

/* ---- document access ---- */

static yaml_node_t *node(struct ctx *c, int id)
{
	return yaml_document_get_node(c->doc, id);
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

static size_t seq_len(const yaml_node_t *n)
{
	return n->data.sequence.items.top - n->data.sequence.items.start;
}

static yaml_node_t *seq_item(struct ctx *c, const yaml_node_t *n, size_t i)
{
	return node(c, n->data.sequence.items.start[i]);
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return n->data.scalar.length ? "a single value" : "nothing";
	}
}

static int want_scalar(struct ctx *c, const yaml_node_t *n, const char *key)
{
	if (n->type != YAML_SCALAR_NODE)
		return node_err(c, n, "'%s' must be a single value, not %s",
				key, kind_name(n));
	/* A double-quoted "\0" would cut paths and names short. */
	if (strlen(scalar(n)) != n->data.scalar.length)
		return node_err(c, n, "'%s' contains a NUL byte", key);
	return 0;
}

static int want_type(struct ctx *c, const yaml_node_t *n, const char *key,
		     yaml_node_type_t type)
{
	if (n->type == type)
		return 0;
	return node_err(c, n, "'%s' must be %s, not %s", key,
			type == YAML_MAPPING_NODE ? "a mapping" : "a list",
			kind_name(n));
}

static struct field *find_field(struct field *f, size_t nf, const char *key)
{
	size_t i;

	for (i = 0; i < nf; i++)
		if (!strcmp(f[i].key, key))
			return &f[i];
	return NULL;
}

/* Sort a mapping's pairs into fields; unknown and repeated keys are errors. */
static int collect(struct ctx *c, const yaml_node_t *map, struct field *f,
		   size_t nf)
{
	yaml_node_pair_t *pair;

	for (pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = node(c, pair->key);
		struct field *slot;

		if (k->type != YAML_SCALAR_NODE)
			return node_err(c, k, "a key must be a word, not %s",
					kind_name(k));
		slot = find_field(f, nf, scalar(k));
		if (!slot)
			return node_err(c, k, "unknown key '%.64s'", scalar(k));
		if (slot->val)
			return node_err(c, k,
					"duplicate key '%s' (first at line %zu)",
					scalar(k),
					slot->key_node->start_mark.line + 1);
		slot->key_node = k;
		slot->val = node(c, pair->value);
	}
	return 0;
}

/* ---- values ---- */

static int parse_word(struct ctx *c, const struct field *f,
		      const struct word *w, const char *want, int *out)
{
	int err = want_scalar(c, f->val, f->key);

	if (err)
		return err;
	for (; w->s; w++) {
		if (!strcmp(w->s, scalar(f->val))) {
			*out = w->v;
			return 0;
		}
	}
	return node_err(c, f->val, "bad %s '%.64s' (want %s)", f->key,
			scalar(f->val), want);
}

static int parse_bool(struct ctx *c, const struct field *f, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *s;
	size_t i;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	s = scalar(f->val);
	for (i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*out = !strcasecmp(s, yes[i]);
			return 0;
		}
	}
	return node_err(c, f->val, "'%s' must be true or false, not '%.64s'",
			f->key, s);
}

/* Decimal digits only, no sign; -EINVAL junk, -ERANGE beyond 64 bits. */
static int digits(const char *s, size_t len, __u64 *out)
{
	bool over = false;
	__u64 v = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		unsigned int d = s[i] - '0';

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		/* Keep scanning: junk later on is still junk, not a range. */
		if (v > (UINT64_MAX - d) / 10)
			over = true;
		else
			v = v * 10 + d;
	}
	*out = v;
	return over ? -ERANGE : 0;
}

static int parse_uint(struct ctx *c, const struct field *f, __u64 min,
		      __u64 max, __u64 *out)
{
	const char *s;
	__u64 v = 0;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	s = scalar(f->val);
	err = digits(s, strlen(s), &v);
	if (err == -EINVAL)
		return node_err(c, f->val, "'%s' must be a whole number, not '%.64s'",
				f->key, s);
	if (err || v < min || v > max)
		return node_err(c, f->val, "'%s' %.64s is out of range (%llu..%llu)",
				f->key, s, (unsigned long long)min,
				(unsigned long long)max);
	*out = v;
	return 0;
}

/*
 * "500ms", "5s", "2m", "1h". A bare number is refused rather than taken
 * as seconds: "timeout: 500" meant as milliseconds would otherwise be
 * eight minutes without a heartbeat going unnoticed.
 */
int pc_duration_parse(const char *s, __u64 *out_ms)
{
	static const struct {
		const char *unit;
		__u64 ms;
	} units[] = {
		{ "ms", 1 }, { "s", MS_PER_S }, { "m", MS_PER_M }, { "h", MS_PER_H },
	};
	const char *unit = s + strspn(s, "0123456789");
	__u64 v, ms = 0;
	size_t i;
	int err;

	if (!*unit && unit != s)
		return -ENOMSG;
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
		if (!strcmp(unit, units[i].unit))
			ms = units[i].ms;
	err = ms ? digits(s, unit - s, &v) : -EINVAL;
	if (err)
		return err;
	if (v > UINT64_MAX / ms)
		return -ERANGE;
	*out_ms = v * ms;
	return 0;
}

static int parse_duration(struct ctx *c, const struct field *f,
			  const struct span *span, __u64 *out_ms)
{
	const char *s;
	__u64 ms = 0;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	s = scalar(f->val);
	err = pc_duration_parse(s, &ms);
	if (err == -ENOMSG)
		return node_err(c, f->val,
				"'%s' %.64s: duration needs a unit: ms, s, m or h",
				f->key, s);
	if (err == -EINVAL)
		return node_err(c, f->val,
				"bad duration '%.64s' for '%s' (want a number and a unit: 500ms, 5s, 2m, 1h)",
				s, f->key);
	if (err || ms < span->min_ms || ms > span->max_ms)
		return node_err(c, f->val, "'%s' %.64s is out of range (%s)",
				f->key, s, span->text);
	*out_ms = ms;
	return 0;
}

/* ---- paths ---- */

/* Relative paths are taken from the config file's directory. */
static char *resolve(const char *base_dir, const char *path)
{
	size_t blen;
	char *out;

	if (path[0] == '/' || !base_dir || !*base_dir)
		return strdup(path);
	blen = strlen(base_dir);
	if (asprintf(&out, "%s%s%s", base_dir,
		     base_dir[blen - 1] == '/' ? "" : "/", path) < 0)
		return NULL;
	return out;
}

static int parse_path(struct ctx *c, const struct field *f, char **out)
{
	char *path;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	if (!*scalar(f->val))
		return node_err(c, f->val, "empty '%s' path", f->key);
	path = resolve(c->base_dir, scalar(f->val));
	if (!path)
		return oom(c);
	free(*out);
	*out = path;
	return 0;
}

/* ---- top-level values ---- */

static bool valid_chars(const char *s, size_t maxlen, const char *chars)
{
	size_t len = strlen(s);

	return len && len <= maxlen && strspn(s, chars) == len;
}

static int parse_host_id(struct ctx *c, const struct field *f)
{
	int err = want_scalar(c, f->val, f->key);

	if (err)
		return err;
	if (!valid_chars(scalar(f->val), PC_HOST_ID_LEN - 1, HOST_ID_CHARS))
		return node_err(c, f->val,
				"bad host_id '%.64s' (1-%d characters of A-Z a-z 0-9 _ . : -)",
				scalar(f->val), PC_HOST_ID_LEN - 1);
	strcpy(c->cfg->host_id, scalar(f->val));
	return 0;
}

/* Controllers address the host by name; a name it cannot carry is fatal. */
static int default_host_id(struct ctx *c)
{
	char buf[PC_HOST_ID_LEN + 1] = "";

	if (gethostname(buf, sizeof(buf) - 1) < 0) {
		int err = -errno;

		set_err(c, "%s: no host_id and gethostname failed: %s", c->name,
			strerror(-err));
		return err;
	}
	if (!valid_chars(buf, PC_HOST_ID_LEN - 1, HOST_ID_CHARS)) {
		set_err(c, "%s: no host_id, and the hostname '%.64s' cannot be one (1-%d characters of A-Z a-z 0-9 _ . : -): set host_id",
			c->name, buf, PC_HOST_ID_LEN - 1);
		return -EINVAL;
	}
	strcpy(c->cfg->host_id, buf);
	return 0;
}

static bool valid_ifname(const char *s)
{
	return valid_chars(s, PC_IFNAME_LEN - 1, IFNAME_CHARS) &&
	       strcmp(s, ".") && strcmp(s, "..");
}

/* An entry of an 'interfaces' list: a scalar that can be an interface name. */
static int want_ifname(struct ctx *c, const yaml_node_t *n)
{
	int err = want_scalar(c, n, "interfaces");

	if (err)
		return err;
	if (!valid_ifname(scalar(n)))
		return node_err(c, n,
				"bad interface name '%.64s' (1-15 characters of A-Z a-z 0-9 _ . : @ -)",
				scalar(n));
	return 0;
}

static int parse_iface(struct ctx *c, const yaml_node_t *n)
{
	struct pc_config *cfg = c->cfg;
	size_t i;
	int err;

	err = want_ifname(c, n);
	if (err)
		return err;
	for (i = 0; i < cfg->nifaces; i++)
		if (!strcmp(cfg->ifaces[i], scalar(n)))
			return node_err(c, n, "interface '%s' listed twice",
					scalar(n));
	cfg->ifaces[cfg->nifaces] = strdup(scalar(n));
	if (!cfg->ifaces[cfg->nifaces])
		return oom(c);
	cfg->nifaces++;
	return 0;
}

/* An empty override would attach nowhere: leaving the key out is the way
 * to use the policy's list. */
static int parse_ifaces(struct ctx *c, const struct field *f)
{
	const yaml_node_t *seq = f->val;
	size_t i, n;
	int err;

	err = want_type(c, seq, f->key, YAML_SEQUENCE_NODE);
	if (err)
		return err;
	n = seq_len(seq);
	if (!n)
		return node_err(c, seq,
				"empty 'interfaces' list (leave it out to use the policy's)");
	if (n > PC_MAX_IFACES)
		return node_err(c, seq_item(c, seq, PC_MAX_IFACES),
				"too many interfaces: the limit is %d",
				PC_MAX_IFACES);
	c->cfg->ifaces = calloc(n, sizeof(*c->cfg->ifaces));
	if (!c->cfg->ifaces)
		return oom(c);
	for (i = 0; i < n; i++) {
		err = parse_iface(c, seq_item(c, seq, i));
		if (err)
			return err;
	}
	return 0;
}

/* sun_path holds the socket's path; longer ones cannot be bound at all. */
static int check_socket_path(struct ctx *c, const struct field *f)
{
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;

	if (strlen(c->cfg->control_socket) <= max)
		return 0;
	return node_err(c, f->val,
			"control_socket path is too long for a socket (%zu bytes, the limit is %zu)",
			strlen(c->cfg->control_socket), max);
}

/* ---- controller ---- */

/* "ADDR:PORT" with IPv6 in brackets, or a bare port; numeric only. */
static int split_listen(const char *s, char *addr, size_t addrlen,
			const char **port)
{
	const char *colon;
	size_t alen;

	if (!strchr(s, ':')) {
		snprintf(addr, addrlen, "%s", DEFAULT_LISTEN_ADDR);
		*port = s;
		return strspn(s, "0123456789") == strlen(s) ? 0 : -EINVAL;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		alen = close - (s + 1);
		if (!alen || alen >= addrlen)
			return -EINVAL;
		memcpy(addr, s + 1, alen);
		addr[alen] = '\0';
		*port = close + 2;
		return strchr(addr, ':') ? 0 : -EINVAL;
	}
	colon = strchr(s, ':');
	/* A second colon: IPv6 without brackets, the port cannot be told. */
	if (strchr(colon + 1, ':'))
		return -EPROTONOSUPPORT;
	alen = colon - s;
	if (!alen || alen >= addrlen)
		return -EINVAL;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	*port = colon + 1;
	return 0;
}

static int parse_listen(struct ctx *c, const struct field *f)
{
	char addr[sizeof(c->cfg->listen_addr)];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *s, *port;
	__u64 p;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	s = scalar(f->val);
	err = split_listen(s, addr, sizeof(addr), &port);
	if (err == -EPROTONOSUPPORT)
		return node_err(c, f->val,
				"bad listen address '%.64s': put an IPv6 address in brackets, as in [::]:7800",
				s);
	if (err || inet_pton(strchr(addr, ':') ? AF_INET6 : AF_INET, addr,
			     bin) != 1)
		return node_err(c, f->val,
				"bad listen address '%.64s' (want ADDR:PORT with a numeric address, [IPV6]:PORT, or a port)",
				s);
	if (digits(port, strlen(port), &p) || !p || p > 65535)
		return node_err(c, f->val,
				"bad listen port in '%.64s' (want 1-65535)", s);
	strcpy(c->cfg->listen_addr, addr);
	c->cfg->listen_port = p;
	return 0;
}

/* The same key twice is surely a copy-paste slip, perhaps of the wrong key. */
static int add_key(struct ctx *c, const yaml_node_t *n, const __u8 *pk)
{
	struct pc_config *cfg = c->cfg;
	size_t i;

	if (cfg->nkeys >= PC_MAX_KEYS)
		return node_err(c, n, "too many controller keys: the limit is %d",
				PC_MAX_KEYS);
	for (i = 0; i < cfg->nkeys; i++) {
		if (memcmp(cfg->keys[i], pk, PC_PK_LEN))
			continue;
		/* One controller key for UDP and etcd alike is fine. */
		if (i < c->keys_shared)
			return 0;
		return node_err(c, n, "controller key listed twice");
	}
	memcpy(cfg->keys[cfg->nkeys++], pk, PC_PK_LEN);
	return 0;
}

static int parse_keys(struct ctx *c, const struct field *f)
{
	__u8 pk[PC_PK_LEN];
	yaml_node_t *n;
	size_t i;
	int err;

	err = want_type(c, f->val, f->key, YAML_SEQUENCE_NODE);
	for (i = 0; !err && i < seq_len(f->val); i++) {
		n = seq_item(c, f->val, i);
		err = want_scalar(c, n, "keys");
		if (err)
			break;
		if (pc_key_parse_public(scalar(n), pk))
			return node_err(c, n,
					"bad controller key '%.64s' (want an Ed25519 public key: 32 bytes in base64)",
					scalar(n));
		err = add_key(c, n, pk);
	}
	return err;
}

/* The whole file, trimmed; one line of base64 and nothing else. Whoever
 * can write it can sign a release: root's only (WHY says why not). */
static int read_key_file(const char *path, char *buf, size_t len, char *why,
			 size_t why_len)
{
	size_t got = 0;
	char *s, *end;
	ssize_t r;
	int fd;

	fd = pc_open_trusted(path, why, why_len);
	if (fd < 0)
		return fd;
	while (got < len - 1) {
		r = read(fd, buf + got, len - 1 - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			r = -errno;
			close(fd);
			return r;
		}
		if (!r)
			break;
		got += r;
	}
	close(fd);
	if (got == len - 1)
		return -EFBIG;
	buf[got] = '\0';
	if (strlen(buf) != got)
		return -EBADMSG;
	s = buf + strspn(buf, " \t\r\n");
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n", end[-1]))
		end--;
	*end = '\0';
	if (!*s || strpbrk(s, "\r\n"))
		return -EBADMSG;
	memmove(buf, s, end - s + 1);
	return 0;
}

static int parse_key_file(struct ctx *c, const yaml_node_t *n)
{
	char buf[KEY_FILE_MAX_BYTES], why[MSG_LEN], *path;
	__u8 pk[PC_PK_LEN];
	int err;

	err = want_scalar(c, n, "key_files");
	if (err)
		return err;
	if (!*scalar(n))
		return node_err(c, n, "empty 'key_files' path");
	path = resolve(c->base_dir, scalar(n));
	if (!path)
		return oom(c);
	err = read_key_file(path, buf, sizeof(buf), why, sizeof(why));
	if (err == -EPERM)
		err = node_err(c, n, "key file %s", why);
	else if (err == -EFBIG || err == -EBADMSG || (!err &&
	    pc_key_parse_public(buf, pk)))
		err = node_err(c, n,
			       "key file %s does not hold one public key (one line: 32 bytes in base64)",
			       path);
	else if (err)
		err = node_err(c, n, "cannot read key file %s: %s", path,
			       strerror(-err));
	else
		err = add_key(c, n, pk);
	free(path);
	return err;
}

static int parse_key_files(struct ctx *c, const struct field *f)
{
	size_t i;
	int err;

	err = want_type(c, f->val, f->key, YAML_SEQUENCE_NODE);
	for (i = 0; !err && i < seq_len(f->val); i++)
		err = parse_key_file(c, seq_item(c, f->val, i));
	return err;
}

/* One of controller.interfaces: it must be one the agent attaches to
 * when the config names them (else the policy's, checked by the agent). */
static int parse_ctl_iface(struct ctx *c, const yaml_node_t *n)
{
	struct pc_config *cfg = c->cfg;
	bool attached = !cfg->nifaces;
	size_t i;
	int err;

	err = want_ifname(c, n);
	if (err)
		return err;
	for (i = 0; i < cfg->nctl_ifaces; i++)
		if (!strcmp(cfg->ctl_ifaces[i], scalar(n)))
			return node_err(c, n, "interface '%s' listed twice",
					scalar(n));
	for (i = 0; i < cfg->nifaces; i++)
		attached |= !strcmp(cfg->ifaces[i], scalar(n));
	if (!attached)
		return node_err(c, n,
				"controller interface '%s' is not one of the agent's 'interfaces'",
				scalar(n));
	strcpy(cfg->ctl_ifaces[cfg->nctl_ifaces++], scalar(n));
	return 0;
}

/* Empty would bind the port nowhere: leave the key out for any interface. */
static int parse_ctl_ifaces(struct ctx *c, const struct field *f)
{
	const yaml_node_t *seq = f->val;
	size_t i, n;
	int err;

	err = want_type(c, seq, "controller.interfaces", YAML_SEQUENCE_NODE);
	if (err)
		return err;
	n = seq_len(seq);
	if (!n)
		return node_err(c, seq,
				"empty controller 'interfaces' list (leave it out for any interface)");
	if (n > PC_CTL_IFACES)
		return node_err(c, seq_item(c, seq, PC_CTL_IFACES),
				"too many controller interfaces: the limit is %d",
				PC_CTL_IFACES);
	for (i = 0; i < n; i++) {
		err = parse_ctl_iface(c, seq_item(c, seq, i));
		if (err)
			return err;
	}
	return 0;
}

enum ctl_key {
	C_LISTEN,
	C_KEYS,
	C_KEY_FILES,
	C_MAX_SKEW,
	C_IFACES,
	C_COUNT,
};

static int parse_controller(struct ctx *c, const struct field *sect)
{
	struct field f[C_COUNT] = {
		[C_LISTEN] = { .key = "listen" },
		[C_KEYS] = { .key = "keys" },
		[C_KEY_FILES] = { .key = "key_files" },
		[C_MAX_SKEW] = { .key = "max_skew" },
		[C_IFACES] = { .key = "interfaces" },
	};
	int err;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, C_COUNT);
	if (!err && f[C_LISTEN].val)
		err = parse_listen(c, &f[C_LISTEN]);
	if (!err && f[C_KEYS].val)
		err = parse_keys(c, &f[C_KEYS]);
	if (!err && f[C_KEY_FILES].val)
		err = parse_key_files(c, &f[C_KEY_FILES]);
	if (!err && !c->cfg->nkeys)
		err = node_err(c, sect->key_node,
			       "a controller needs at least one key ('keys' or 'key_files')");
	if (!err && f[C_MAX_SKEW].val)
		err = parse_duration(c, &f[C_MAX_SKEW], &skew_span,
				     &c->cfg->max_skew_ms);
	if (!err && f[C_IFACES].val)
		err = parse_ctl_ifaces(c, &f[C_IFACES]);
	if (!err)
		c->cfg->controller = true;
	return err;
}

/* ---- fleet ---- */

static int parse_endpoint(struct ctx *c, const yaml_node_t *n)
{
	struct pc_config *cfg = c->cfg;
	const char *s;
	int err = want_scalar(c, n, "endpoints");

	if (err)
		return err;
	s = scalar(n);
	/* The gateway speaks HTTP; a URL with a path or odd bytes is a typo. */
	if (!pc_fleet_endpoint_ok(s) || strlen(s) >= sizeof(cfg->fleet_endpoints[0]))
		return node_err(c, n,
				"bad etcd endpoint '%.64s' (want http://HOST:PORT or https://HOST:PORT)",
				s);
	if (cfg->nendpoints >= PC_ETCD_MAX_ENDPOINTS)
		return node_err(c, n, "too many etcd endpoints: the limit is %d",
				PC_ETCD_MAX_ENDPOINTS);
	strcpy(cfg->fleet_endpoints[cfg->nendpoints++], s);
	return 0;
}

static int parse_groups(struct ctx *c, const struct field *f)
{
	struct pc_config *cfg = c->cfg;
	yaml_node_t *n;
	int err;

	err = want_type(c, f->val, f->key, YAML_SEQUENCE_NODE);
	for (size_t i = 0; !err && i < seq_len(f->val); i++) {
		n = seq_item(c, f->val, i);
		err = want_scalar(c, n, "groups");
		if (err)
			break;
		if (!pc_fleet_name_ok(scalar(n)))
			return node_err(c, n,
					"bad group name '%.64s' (1-%d characters of A-Z a-z 0-9 _ . : -)",
					scalar(n), PC_FLEET_NAME_MAX);
		for (size_t j = 0; j < cfg->ngroups; j++)
			if (!strcmp(cfg->fleet_groups[j], scalar(n)))
				return node_err(c, n, "group '%s' listed twice",
						scalar(n));
		if (cfg->ngroups >= PC_FLEET_MAX_GROUPS)
			return node_err(c, n, "too many groups: the limit is %d",
					PC_FLEET_MAX_GROUPS);
		strcpy(cfg->fleet_groups[cfg->ngroups++], scalar(n));
	}
	return err;
}

/* fleet.tls: {ca, cert, key}, files we can read; every endpoint https. */
static int parse_fleet_tls(struct ctx *c, const struct field *sect)
{
	struct field f[] = { { .key = "ca" }, { .key = "cert" }, { .key = "key" } };
	char **out[] = { &c->cfg->fleet_tls_ca, &c->cfg->fleet_tls_cert,
			 &c->cfg->fleet_tls_key };
	int err;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, 3);
	if (!err && !f[0].val)
		return node_err(c, sect->key_node,
				"'tls' needs 'ca': the CA etcd's certificate must chain to");
	if (!err && !f[1].val != !f[2].val)
		return node_err(c, sect->key_node,
				"'tls' needs 'cert' and 'key' together (or neither)");
	for (size_t i = 0; !err && i < 3; i++) {
		if (!f[i].val)
			continue;
		err = parse_path(c, &f[i], out[i]);
		if (!err && access(*out[i], R_OK))
			err = node_err(c, f[i].val, "cannot read '%.200s': %s",
				       *out[i], strerror(errno));
	}
	for (size_t i = 0; !err && i < c->cfg->nendpoints; i++)
		if (strncmp(c->cfg->fleet_endpoints[i], "https://", 8))
			err = node_err(c, sect->key_node,
				       "with 'tls', every endpoint must be https:// ('%.64s' is not)",
				       c->cfg->fleet_endpoints[i]);
	return err;
}

enum fleet_key {
	F_ENDPOINTS,
	F_PREFIX,
	F_GROUPS,
	F_KEYS,
	F_KEY_FILES,
	F_REPORT,
	F_REQUEST,
	F_SKEW,
	F_TLS,
	F_COUNT,
};

static int parse_fleet(struct ctx *c, const struct field *sect)
{
	struct field f[F_COUNT] = {
		[F_ENDPOINTS] = { .key = "endpoints" },
		[F_PREFIX] = { .key = "prefix" },
		[F_GROUPS] = { .key = "groups" },
		[F_KEYS] = { .key = "keys" },
		[F_KEY_FILES] = { .key = "key_files" },
		[F_REPORT] = { .key = "report_interval" },
		[F_REQUEST] = { .key = "request_timeout" },
		[F_SKEW] = { .key = "max_skew" },
		[F_TLS] = { .key = "tls" },
	};
	struct pc_config *cfg = c->cfg;
	int err;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, F_COUNT);
	if (!err && !f[F_ENDPOINTS].val)
		return node_err(c, sect->key_node,
				"a fleet needs 'endpoints' (the etcd cluster's client URLs)");
	if (!err)
		err = want_type(c, f[F_ENDPOINTS].val, "endpoints", YAML_SEQUENCE_NODE);
	for (size_t i = 0; !err && i < seq_len(f[F_ENDPOINTS].val); i++)
		err = parse_endpoint(c, seq_item(c, f[F_ENDPOINTS].val, i));
	if (!err && !cfg->nendpoints)
		return node_err(c, f[F_ENDPOINTS].val, "empty 'endpoints' list");
	if (!err && f[F_PREFIX].val) {
		err = want_scalar(c, f[F_PREFIX].val, "prefix");
		if (!err && !pc_fleet_prefix_ok(scalar(f[F_PREFIX].val)))
			return node_err(c, f[F_PREFIX].val,
					"bad fleet prefix '%.64s' (an absolute key path such as /portcullis, no trailing slash, at most %d bytes)",
					scalar(f[F_PREFIX].val), PC_FLEET_PREFIX_MAX);
		if (!err)
			strcpy(cfg->fleet_prefix, scalar(f[F_PREFIX].val));
	}
	if (!err && f[F_GROUPS].val)
		err = parse_groups(c, &f[F_GROUPS]);
	c->keys_shared = cfg->nkeys;
	if (!err && f[F_KEYS].val)
		err = parse_keys(c, &f[F_KEYS]);
	if (!err && f[F_KEY_FILES].val)
		err = parse_key_files(c, &f[F_KEY_FILES]);
	if (!err && !cfg->nkeys)
		err = node_err(c, sect->key_node,
			       "a fleet needs at least one controller key ('keys' or 'key_files'): desired state is signed");
	if (!err && f[F_REPORT].val)
		err = parse_duration(c, &f[F_REPORT], &report_span,
				     &cfg->fleet_report_ms);
	if (!err && f[F_REQUEST].val)
		err = parse_duration(c, &f[F_REQUEST], &timeout_span,
				     &cfg->fleet_request_ms);
	if (!err && f[F_SKEW].val)
		err = parse_duration(c, &f[F_SKEW], &fleet_skew_span,
				     &cfg->fleet_skew_ms);
	if (!err && f[F_TLS].val)
		err = parse_fleet_tls(c, &f[F_TLS]);
	/* The host's name becomes an etcd key and a signed target. */
	if (!err && !pc_fleet_name_ok(cfg->host_id))
		err = node_err(c, sect->key_node,
			       "host_id '%.64s' cannot name a fleet member (1-%d characters of A-Z a-z 0-9 _ . : -)",
			       cfg->host_id, PC_FLEET_NAME_MAX);
	if (!err)
		cfg->fleet = true;
	return err;
}

/* ---- metrics ---- */

/*
 * As controller.listen, but with the address required: a bare port would
 * listen on every address, and the metrics tell whoever reaches them how
 * this host is guarded. "off": no server. Stored as [IPV6]:PORT or
 * IPV4:PORT, the form pc_metrics_start takes.
 */
static int parse_metrics_listen(struct ctx *c, const struct field *f)
{
	char addr[sizeof(c->cfg->listen_addr)];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *s, *port;
	__u64 p;
	int err;

	err = want_scalar(c, f->val, f->key);
	if (err)
		return err;
	s = scalar(f->val);
	if (!strcmp(s, "off")) {
		c->cfg->metrics_listen[0] = '\0';
		return 0;
	}
	err = strchr(s, ':') ? split_listen(s, addr, sizeof(addr), &port) :
			       -EINVAL;
	if (err == -EPROTONOSUPPORT)
		return node_err(c, f->val,
				"bad listen address '%.64s': put an IPv6 address in brackets, as in [::1]:9712",
				s);
	if (err || inet_pton(strchr(addr, ':') ? AF_INET6 : AF_INET, addr,
			     bin) != 1)
		return node_err(c, f->val,
				"bad listen address '%.64s' (want ADDR:PORT with a numeric address, [IPV6]:PORT, or off)",
				s);
	if (digits(port, strlen(port), &p) || !p || p > 65535)
		return node_err(c, f->val,
				"bad listen port in '%.64s' (want 1-65535)", s);
	snprintf(c->cfg->metrics_listen, sizeof(c->cfg->metrics_listen),
		 strchr(addr, ':') ? "[%s]:%llu" : "%s:%llu", addr,
		 (unsigned long long)p);
	return 0;
}

static int parse_metrics(struct ctx *c, const struct field *sect)
{
	struct field f[] = { { .key = "listen" } };
	int err;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, 1);
	if (!err && f[0].val)
		err = parse_metrics_listen(c, &f[0]);
	return err;
}

/* ---- heartbeat ---- */

enum hb_key {
	H_TIMEOUT,
	H_ACTION,
	H_DEADMAN,
	H_RELEASE,
	H_BACKOFF,
	H_COUNT,
};

static int parse_heartbeat(struct ctx *c, const struct field *sect)
{
	struct field f[H_COUNT] = {
		[H_TIMEOUT] = { .key = "timeout" },
		[H_ACTION] = { .key = "action" },
		[H_DEADMAN] = { .key = "kernel_deadman" },
		[H_RELEASE] = { .key = "release_after" },
		[H_BACKOFF] = { .key = "backoff" },
	};
	struct pc_config *cfg = c->cfg;
	int act, err;
	__u64 v = 0;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, H_COUNT);
	if (!err && f[H_TIMEOUT].val)
		err = parse_duration(c, &f[H_TIMEOUT], &timeout_span,
				     &cfg->hb_timeout_ms);
	if (!err && f[H_ACTION].val) {
		err = parse_word(c, &f[H_ACTION], reaction_words,
				 "lockdown or quarantine", &act);
		if (!err)
			cfg->hb_action = act;
	}
	if (!err && f[H_DEADMAN].val)
		err = parse_bool(c, &f[H_DEADMAN], &cfg->kernel_deadman);
	if (!err && f[H_RELEASE].val) {
		err = parse_uint(c, &f[H_RELEASE], 0, UINT_MAX, &v);
		if (!err)
			cfg->hb_release_after = v;
	}
	if (!err && f[H_BACKOFF].val)
		err = parse_duration(c, &f[H_BACKOFF], &backoff_span,
				     &cfg->backoff_ms);
	return err;
}

/* ---- anomaly ---- */

enum trig_key {
	G_NAME,
	G_METRIC,
	G_THRESHOLD,
	G_INTERVALS,
	G_ACTION,
	G_COUNT,
};

static int trigger_metric(struct ctx *c, const struct field *f,
			  enum pc_metric *out)
{
	int m, err = want_scalar(c, f->val, f->key);

	if (err)
		return err;
	for (m = 0; m < PC_METRIC_COUNT; m++) {
		if (!strcmp(scalar(f->val), metric_names[m])) {
			*out = m;
			return 0;
		}
	}
	return node_err(c, f->val,
			"bad metric '%.64s' (want egress_new_flows, egress_destinations, egress_denied or ingress_default_denied)",
			scalar(f->val));
}

static int trigger_name(struct ctx *c, const struct field *f,
			struct pc_anomaly_trigger *t)
{
	size_t i;
	int err = want_scalar(c, f->val, f->key);

	if (err)
		return err;
	if (!valid_chars(scalar(f->val), PC_NAME_LEN - 1, NAME_CHARS))
		return node_err(c, f->val,
				"bad trigger name '%.64s' (1-%d characters of A-Z a-z 0-9 _ . -)",
				scalar(f->val), PC_NAME_LEN - 1);
	/* Names key the audit trail: two alike could not be told apart. */
	for (i = 0; i < c->cfg->ntriggers; i++)
		if (!strcmp(c->cfg->triggers[i].name, scalar(f->val)))
			return node_err(c, f->val,
					"duplicate trigger name '%s'",
					scalar(f->val));
	strcpy(t->name, scalar(f->val));
	return 0;
}

/* Every field but intervals is required: a guessed reaction is no reaction. */
static int trigger_required(struct ctx *c, const yaml_node_t *map,
			    const struct field *f)
{
	static const enum trig_key need[] = {
		G_NAME, G_METRIC, G_THRESHOLD, G_ACTION,
	};
	size_t i;

	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!f[need[i]].val)
			return node_err(c, map, "trigger has no '%s'",
					f[need[i]].key);
	return 0;
}

static int parse_trigger(struct ctx *c, const yaml_node_t *map)
{
	struct field f[G_COUNT] = {
		[G_NAME] = { .key = "name" },
		[G_METRIC] = { .key = "metric" },
		[G_THRESHOLD] = { .key = "threshold" },
		[G_INTERVALS] = { .key = "intervals" },
		[G_ACTION] = { .key = "action" },
	};
	struct pc_anomaly_trigger t = { .intervals = DEFAULT_INTERVALS };
	int act, err;
	__u64 v = 0;

	if (map->type != YAML_MAPPING_NODE)
		return node_err(c, map, "each trigger must be a mapping, not %s",
				kind_name(map));
	err = collect(c, map, f, G_COUNT);
	if (!err)
		err = trigger_required(c, map, f);
	if (!err)
		err = trigger_name(c, &f[G_NAME], &t);
	if (!err)
		err = trigger_metric(c, &f[G_METRIC], &t.metric);
	if (!err)
		err = parse_uint(c, &f[G_THRESHOLD], 1, UINT64_MAX,
				 &t.threshold);
	if (!err && f[G_INTERVALS].val) {
		err = parse_uint(c, &f[G_INTERVALS], 1, MAX_INTERVALS, &v);
		if (!err)
			t.intervals = v;
	}
	if (!err) {
		err = parse_word(c, &f[G_ACTION], reaction_words,
				 "lockdown or quarantine", &act);
		if (!err)
			t.action = act;
	}
	if (!err)
		c->cfg->triggers[c->cfg->ntriggers++] = t;
	return err;
}

static int parse_triggers(struct ctx *c, const struct field *f)
{
	size_t i;
	int err;

	err = want_type(c, f->val, f->key, YAML_SEQUENCE_NODE);
	if (err)
		return err;
	if (seq_len(f->val) > PC_MAX_TRIGGERS)
		return node_err(c, seq_item(c, f->val, PC_MAX_TRIGGERS),
				"too many triggers: the limit is %d",
				PC_MAX_TRIGGERS);
	for (i = 0; !err && i < seq_len(f->val); i++)
		err = parse_trigger(c, seq_item(c, f->val, i));
	return err;
}

enum anomaly_key {
	A_INTERVAL,
	A_TRIGGERS,
	A_COUNT,
};

static int parse_anomaly(struct ctx *c, const struct field *sect)
{
	struct field f[A_COUNT] = {
		[A_INTERVAL] = { .key = "interval" },
		[A_TRIGGERS] = { .key = "triggers" },
	};
	int err;

	err = want_type(c, sect->val, sect->key, YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, sect->val, f, A_COUNT);
	if (!err && f[A_INTERVAL].val)
		err = parse_duration(c, &f[A_INTERVAL], &interval_span,
				     &c->cfg->anomaly_interval_ms);
	if (!err && f[A_TRIGGERS].val)
		err = parse_triggers(c, &f[A_TRIGGERS]);
	return err;
}

/* ---- document ---- */

enum top_key {
	T_HOST_ID,
	T_POLICY,
	T_IFACES,
	T_PIN_DIR,
	T_STATE_DIR,
	T_AUDIT_LOG,
	T_CONTROL_SOCKET,
	T_XDP_MODE,
	T_CONTROLLER,
	T_HEARTBEAT,
	T_ANOMALY,
	T_METRICS,
	T_FLEET,
	T_COUNT,
};

static void set_defaults(struct pc_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->xdp_mode = PC_XDP_AUTO;
	strcpy(cfg->listen_addr, DEFAULT_LISTEN_ADDR);
	cfg->listen_port = DEFAULT_LISTEN_PORT;
	cfg->max_skew_ms = DEFAULT_MAX_SKEW_MS;
	cfg->hb_timeout_ms = DEFAULT_HB_TIMEOUT_MS;
	cfg->hb_action = PC_MODE_LOCKDOWN;
	cfg->kernel_deadman = true;
	cfg->hb_release_after = 0;
	cfg->backoff_ms = DEFAULT_BACKOFF_MS;
	cfg->anomaly_interval_ms = DEFAULT_INTERVAL_MS;
	strcpy(cfg->metrics_listen, PC_DEFAULT_METRICS_LISTEN);
	strcpy(cfg->fleet_prefix, PC_FLEET_DEFAULT_PREFIX);
	cfg->fleet_report_ms = DEFAULT_REPORT_MS;
	cfg->fleet_request_ms = DEFAULT_REQUEST_MS;
	cfg->fleet_skew_ms = DEFAULT_FLEET_SKEW_MS;
}

/* Defaults are copies, so pc_config_free can free every path alike. */
static int default_paths(struct ctx *c)
{
	static const struct {
		size_t off;
		const char *path;
	} paths[] = {
		{ offsetof(struct pc_config, pin_dir), PC_DEFAULT_PIN_DIR },
		{ offsetof(struct pc_config, state_dir), DEFAULT_STATE_DIR },
		{ offsetof(struct pc_config, audit_log), DEFAULT_AUDIT_LOG },
		{ offsetof(struct pc_config, control_socket),
		  DEFAULT_CONTROL_SOCKET },
	};
	size_t i;

	for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		char **p = (char **)((char *)c->cfg + paths[i].off);

		if (*p)
			continue;
		*p = strdup(paths[i].path);
		if (!*p)
			return oom(c);
	}
	return 0;
}

static int parse_top_paths(struct ctx *c, struct field *f)
{
	struct pc_config *cfg = c->cfg;
	int err = 0;

	if (f[T_POLICY].val)
		err = parse_path(c, &f[T_POLICY], &cfg->policy_path);
	if (!err && f[T_PIN_DIR].val)
		err = parse_path(c, &f[T_PIN_DIR], &cfg->pin_dir);
	if (!err && f[T_STATE_DIR].val)
		err = parse_path(c, &f[T_STATE_DIR], &cfg->state_dir);
	if (!err && f[T_AUDIT_LOG].val)
		err = parse_path(c, &f[T_AUDIT_LOG], &cfg->audit_log);
	if (!err && f[T_CONTROL_SOCKET].val) {
		err = parse_path(c, &f[T_CONTROL_SOCKET], &cfg->control_socket);
		if (!err)
			err = check_socket_path(c, &f[T_CONTROL_SOCKET]);
	}
	if (!err)
		err = default_paths(c);
	return err;
}

static int parse_sections(struct ctx *c, struct field *f)
{
	int err = 0;

	/* Heartbeats come from a controller or the fleet's etcd lease. */
	if (f[T_HEARTBEAT].val && !f[T_CONTROLLER].val && !f[T_FLEET].val)
		return node_err(c, f[T_HEARTBEAT].key_node,
				"'heartbeat' needs a 'controller' or 'fleet' section: heartbeats come from there");
	if (f[T_CONTROLLER].val)
		err = parse_controller(c, &f[T_CONTROLLER]);
	if (!err && f[T_FLEET].val)
		err = parse_fleet(c, &f[T_FLEET]);
	if (!err && f[T_HEARTBEAT].val)
		err = parse_heartbeat(c, &f[T_HEARTBEAT]);
	if (!err && f[T_ANOMALY].val)
		err = parse_anomaly(c, &f[T_ANOMALY]);
	if (!err && f[T_METRICS].val)
		err = parse_metrics(c, &f[T_METRICS]);
	return err;
}

static bool empty_root(const yaml_node_t *root)
{
	return !root || (root->type == YAML_SCALAR_NODE &&
			 root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			 !root->data.scalar.length);
}

static int parse_document(struct ctx *c)
{
	struct field f[T_COUNT] = {
		[T_HOST_ID] = { .key = "host_id" },
		[T_POLICY] = { .key = "policy" },
		[T_IFACES] = { .key = "interfaces" },
		[T_PIN_DIR] = { .key = "pin_dir" },
		[T_STATE_DIR] = { .key = "state_dir" },
		[T_AUDIT_LOG] = { .key = "audit_log" },
		[T_CONTROL_SOCKET] = { .key = "control_socket" },
		[T_XDP_MODE] = { .key = "xdp_mode" },
		[T_CONTROLLER] = { .key = "controller" },
		[T_HEARTBEAT] = { .key = "heartbeat" },
		[T_ANOMALY] = { .key = "anomaly" },
		[T_METRICS] = { .key = "metrics" },
		[T_FLEET] = { .key = "fleet" },
	};
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	int mode = 0, err;

	if (empty_root(root))
		return pos_err(c, 1, 1, "empty config ('policy' at least is required)");
	if (root->type != YAML_MAPPING_NODE)
		return node_err(c, root, "top level must be a mapping of config keys, not %s",
				kind_name(root));
	err = collect(c, root, f, T_COUNT);
	if (err)
		return err;
	if (!f[T_POLICY].val)
		return node_err(c, root, "missing 'policy' (the policy file to enforce)");
	err = f[T_HOST_ID].val ? parse_host_id(c, &f[T_HOST_ID]) :
				 default_host_id(c);
	if (!err)
		err = parse_top_paths(c, f);
	if (!err && f[T_IFACES].val)
		err = parse_ifaces(c, &f[T_IFACES]);
	if (!err && f[T_XDP_MODE].val) {
		err = parse_word(c, &f[T_XDP_MODE], xdp_words,
				 "auto, native or generic", &mode);
		if (!err)
			c->cfg->xdp_mode = mode;
	}
	if (!err)
		err = parse_sections(c, f);
	return err;
}

/* ---- loading ---- */

/* Reader errors carry a byte offset, not a mark. */
static void offset_pos(const char *text, size_t len, size_t off, size_t *line,
		       size_t *col)
{
	size_t i;

	*line = 1;
	*col = 1;
	for (i = 0; i < off && i < len; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static int yaml_err(struct ctx *c, const yaml_parser_t *ps, const char *text,
		    size_t len)
{
	const char *problem = ps->problem ? ps->problem : "unknown problem";
	size_t line = ps->problem_mark.line + 1;
	size_t col = ps->problem_mark.column + 1;

	if (ps->error == YAML_MEMORY_ERROR)
		return oom(c);
	if (ps->error == YAML_READER_ERROR)
		offset_pos(text, len, ps->problem_offset, &line, &col);
	if (ps->context)
		return pos_err(c, line, col,
			       "YAML syntax error: %s (%s at line %zu, column %zu)",
			       problem, ps->context, ps->context_mark.line + 1,
			       ps->context_mark.column + 1);
	return pos_err(c, line, col, "YAML syntax error: %s", problem);
}

/* A second document would be silently ignored: refuse it. */
static int check_single_doc(struct ctx *c, yaml_parser_t *ps, const char *text,
			    size_t len)
{
	yaml_document_t next;
	yaml_node_t *root;
	int err = 0;

	if (!yaml_parser_load(ps, &next))
		return yaml_err(c, ps, text, len);
	root = yaml_document_get_root_node(&next);
	if (root)
		err = node_err(c, root, "a config is one YAML document; found another here");
	yaml_document_delete(&next);
	return err;
}

static int load_yaml(struct ctx *c, const char *text, size_t len)
{
	yaml_parser_t ps;
	yaml_document_t doc;
	int err;

	if (!yaml_parser_initialize(&ps))
		return oom(c);
	yaml_parser_set_input_string(&ps, (const unsigned char *)text, len);
	if (!yaml_parser_load(&ps, &doc)) {
		err = yaml_err(c, &ps, text, len);
		yaml_parser_delete(&ps);
		return err;
	}
	c->doc = &doc;
	err = check_single_doc(c, &ps, text, len);
	if (!err)
		err = parse_document(c);
	c->doc = NULL;
	yaml_document_delete(&doc);
	yaml_parser_delete(&ps);
	return err;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

static int load(const char *text, size_t len, const char *name,
		const char *base_dir, struct pc_config *out, char *err,
		size_t errlen)
{
	struct ctx c = {
		.name = name ? name : "config",
		.base_dir = base_dir,
		.err = err,
		.errlen = errlen,
		.cfg = out,
	};
	int ret;

	set_defaults(out);
	if (err && errlen)
		err[0] = '\0';
	ret = load_yaml(&c, text ? text : "", text ? len : 0);
	if (ret)
		pc_config_free(out);
	return ret;
}

/*
 * No file behind the text: relative paths are taken from the directory
 * part of name, if it has one, else left as written.
 */
int pc_config_load_string(const char *text, size_t len, const char *name,
			  struct pc_config *out, char *err, size_t errlen)
{
	char *dir = NULL;
	int ret;

	if (name && strchr(name, '/')) {
		dir = dir_of(name);
		if (!dir) {
			memset(out, 0, sizeof(*out));
			if (err && errlen)
				snprintf(err, errlen, "%s: %s", name,
					 strerror(ENOMEM));
			return -ENOMEM;
		}
	}
	ret = load(text, len, name, dir, out, err, errlen);
	free(dir);
	return ret;
}

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *n;
	ssize_t got;

	while (buf) {
		if (len == cap) {
			if (cap >= CONFIG_MAX_BYTES) {
				free(buf);
				return -EFBIG;
			}
			n = realloc(buf, cap * 2);
			if (!n)
				break;
			buf = n;
			cap *= 2;
		}
		got = read(fd, buf + len, cap - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			free(buf);
			return -errno;
		}
		if (!got) {
			*out = buf;
			*outlen = len;
			return 0;
		}
		len += got;
	}
	free(buf);
	return -ENOMEM;
}

/*
 * The daemon may chdir("/") after loading, so a config named by a
 * relative path gets its directory made absolute: stored paths must not
 * depend on the working directory.
 */
static char *abs_dir_of(const char *path)
{
	char *dir = dir_of(path), *cwd, *out;

	if (!dir || dir[0] == '/')
		return dir;
	cwd = getcwd(NULL, 0);
	if (!cwd) {
		free(dir);
		return NULL;
	}
	if (!strcmp(dir, "."))
		out = strdup(cwd);
	else
		out = resolve(cwd, dir);
	free(cwd);
	free(dir);
	return out;
}

int pc_config_load_file(const char *path, struct pc_config *out, char *err,
			size_t errlen)
{
	char *text = NULL, *dir = NULL, why[MSG_LEN] = "";
	size_t len = 0;
	int fd, ret;

	memset(out, 0, sizeof(*out));
	fd = pc_open_trusted(path, why, sizeof(why));
	if (fd < 0) {
		ret = fd;
	} else {
		ret = read_all(fd, &text, &len);
		close(fd);
	}
	if (!ret) {
		dir = abs_dir_of(path);
		if (!dir)
			ret = -(errno ? errno : ENOMEM);
	}
	if (ret) {
		free(text);
		if (err && errlen && ret == -EPERM)
			snprintf(err, errlen, "config %s", why);
		else if (err && errlen)
			snprintf(err, errlen, "%s: %s", path,
				 ret == -EFBIG ? "config file too large" :
				 strerror(-ret));
		return ret;
	}
	ret = load(text, len, path, dir, out, err, errlen);
	free(dir);
	free(text);
	return ret;
}

void pc_config_free(struct pc_config *c)
{
	size_t i;

	if (!c)
		return;
	free(c->policy_path);
	for (i = 0; c->ifaces && i < c->nifaces; i++)
		free(c->ifaces[i]);
	free(c->ifaces);
	free(c->pin_dir);
	free(c->state_dir);
	free(c->audit_log);
	free(c->control_socket);
	free(c->fleet_tls_ca);
	free(c->fleet_tls_cert);
	free(c->fleet_tls_key);
	memset(c, 0, sizeof(*c));
}

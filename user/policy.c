// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Policy parser: YAML, through libyaml's document API, into struct
 * pc_policy. Strict on purpose: an unknown key, a duplicate key, a value
 * of the wrong type or a doubtful CIDR is an error with its line and
 * column, because a typo in a firewall policy must never silently widen
 * or narrow what it lets through.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <yaml.h>
#include "filetrust.h"
#include "policy.h"

/* Policies are small; long address lists belong in a cidr_file. */
#define POLICY_MAX_BYTES	(16U << 20)
#define MODES_ALL		((1U << PC_MODE_COUNT) - 1)
#define DIRS_BOTH		((1U << PC_DIR_COUNT) - 1)
#define PROTO_TCP		6
#define PROTO_UDP		17
#define PROTO_ICMP		1
#define PROTO_ICMPV6		58
#define MSG_LEN			512

struct ctx {
	yaml_document_t *doc;
	const char *name;	/* file name in messages */
	const char *base_dir;	/* relative cidr_file paths; NULL: cwd */
	char *err;
	size_t errlen;
	struct pc_policy *p;
	/* Unnamed management entries get "mgmt-N"; say so on a clash. */
	bool default_name[PC_MAX_RULES];
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

static const struct word action_words[] = {
	{ "allow", PC_ACT_ALLOW }, { "deny", PC_ACT_DENY }, { NULL, 0 },
};

static const struct word dir_words[] = {
	{ "ingress", 1U << PC_DIR_INGRESS },
	{ "egress", 1U << PC_DIR_EGRESS },
	{ "both", DIRS_BOTH },
	{ NULL, 0 },
};

static const struct word proto_words[] = {
	{ "any", PC_PROTO_ANY }, { "tcp", PROTO_TCP }, { "udp", PROTO_UDP },
	{ "icmp", PROTO_ICMP }, { "icmpv6", PROTO_ICMPV6 }, { NULL, 0 },
};

static const struct word mode_words[] = {
	{ "normal", PC_MODE_NORMAL },
	{ "lockdown", PC_MODE_LOCKDOWN },
	{ "quarantine", PC_MODE_QUARANTINE },
	{ NULL, 0 },
};

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
			return node_err(c, k, "unknown key '%s'", scalar(k));
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

static int parse_word(struct ctx *c, const yaml_node_t *n, const char *key,
		      const struct word *w, const char *want, int *out)
{
	int err = want_scalar(c, n, key);

	if (err)
		return err;
	for (; w->s; w++) {
		if (!strcmp(w->s, scalar(n))) {
			*out = w->v;
			return 0;
		}
	}
	return node_err(c, n, "bad %s '%.64s' (want %s)", key, scalar(n), want);
}

static int parse_bool(struct ctx *c, const struct field *f, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };
	const char *s;
	size_t i;
	int err;

	if (!f->val)
		return 0;
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

/* ---- CIDRs and ports ---- */

/*
 * Parse "ADDR/LEN" or a bare address. -EINVAL on junk; -EDOM when host
 * bits are set beyond the prefix, with out holding the masked network so
 * the message can suggest it.
 */
static int cidr_parse(const char *s, struct pc_cidr *out)
{
	char buf[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t alen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned int plen = 0, max, i;
	bool dirty = false;
	int af;

	if (!alen || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	memset(out, 0, sizeof(*out));
	out->family = strchr(buf, ':') ? 6 : 4;
	af = out->family == 6 ? AF_INET6 : AF_INET;
	if (inet_pton(af, buf, out->addr) != 1)
		return -EINVAL;
	max = out->family == 6 ? 128 : 32;
	if (!slash) {
		plen = max;
	} else {
		const char *d = slash + 1;

		if (!*d || strlen(d) > 3)
			return -EINVAL;
		for (; *d; d++) {
			if (*d < '0' || *d > '9')
				return -EINVAL;
			plen = plen * 10 + (*d - '0');
		}
		if (plen > max)
			return -EINVAL;
	}
	out->plen = plen;
	for (i = plen; i < max; i++) {
		__u8 bit = 0x80 >> (i % 8);

		dirty |= out->addr[i / 8] & bit;
		out->addr[i / 8] &= ~bit;
	}
	return dirty ? -EDOM : 0;
}

int pc_cidr_parse(const char *s, struct pc_cidr *out)
{
	return s && cidr_parse(s, out) == 0 ? 0 : -EINVAL;
}

int pc_cidr_format(const struct pc_cidr *c, char *buf, size_t len)
{
	char addr[INET6_ADDRSTRLEN];
	int n;

	if (c->family != 4 && c->family != 6)
		return -EINVAL;
	if (!inet_ntop(c->family == 6 ? AF_INET6 : AF_INET, c->addr, addr,
		       sizeof(addr)))
		return -errno;
	n = snprintf(buf, len, "%s/%u", addr, c->plen);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

bool pc_cidr_contains(const struct pc_cidr *net, const __u8 *addr,
		      __u8 family)
{
	unsigned int whole = net->plen / 8, rest = net->plen % 8;
	__u8 mask = (__u8)(0xff00 >> rest);

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, whole))
		return false;
	return !rest || !((net->addr[whole] ^ addr[whole]) & mask);
}

/* Explain why s is not a CIDR the rule can use; 0 if it is. */
static int cidr_check(const char *s, __u8 proto, struct pc_cidr *out,
		      char *msg, size_t len)
{
	char net[64];
	int err = cidr_parse(s, out);

	if (err == -EDOM) {
		pc_cidr_format(out, net, sizeof(net));
		snprintf(msg, len, "%s has host bits set (did you mean %s?)", s,
			 net);
		return -EINVAL;
	}
	if (err) {
		snprintf(msg, len, "bad CIDR '%.64s'", s);
		return -EINVAL;
	}
	if (proto == PROTO_ICMP && out->family == 6) {
		snprintf(msg, len,
			 "proto icmp does not match IPv6 CIDR %s (use icmpv6)",
			 s);
		return -EINVAL;
	}
	if (proto == PROTO_ICMPV6 && out->family == 4) {
		snprintf(msg, len,
			 "proto icmpv6 does not match IPv4 CIDR %s (use icmp)",
			 s);
		return -EINVAL;
	}
	return 0;
}

/* Decimal port, 1..65535; -EINVAL junk, -ERANGE too big, -EDOM zero. */
static int port_parse(const char *s, size_t len, __u16 *out)
{
	unsigned long v = 0;
	size_t i;

	if (!len)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		/* Saturate: a 30-digit number is out of range, not wrapped. */
		if (v <= 65535)
			v = v * 10 + (s[i] - '0');
	}
	if (v > 65535)
		return -ERANGE;
	if (!v)
		return -EDOM;
	*out = v;
	return 0;
}

/* "22" or "80-443"; see port_parse for the error codes, -ENOTSUP reversed. */
static int range_parse(const char *s, struct pc_port_range *out)
{
	const char *dash = strchr(s, '-');
	int err;

	if (!dash)
		dash = s + strlen(s);
	err = port_parse(s, dash - s, &out->lo);
	if (err)
		return err;
	if (!*dash) {
		out->hi = out->lo;
		return 0;
	}
	err = port_parse(dash + 1, strlen(dash + 1), &out->hi);
	if (err)
		return err;
	return out->lo <= out->hi ? 0 : -ENOTSUP;
}

int pc_port_range_parse(const char *s, struct pc_port_range *out)
{
	return s && range_parse(s, out) == 0 ? 0 : -EINVAL;
}

static int port_check(const char *s, struct pc_port_range *out, char *msg,
		      size_t len)
{
	switch (range_parse(s, out)) {
	case 0:
		return 0;
	case -ERANGE:
		snprintf(msg, len, "port %.64s is out of range (1-65535)", s);
		break;
	case -EDOM:
		snprintf(msg, len, "port %.64s: 0 is not a port (1-65535)", s);
		break;
	case -ENOTSUP:
		snprintf(msg, len, "port range %s is reversed (want LO-HI, LO <= HI)",
			 s);
		break;
	default:
		snprintf(msg, len, "bad port '%.64s' (want N or LO-HI)", s);
	}
	return -EINVAL;
}

/* ---- names ---- */

static const char *const mode_names[] = {
	[PC_MODE_NORMAL] = "normal",
	[PC_MODE_LOCKDOWN] = "lockdown",
	[PC_MODE_QUARANTINE] = "quarantine",
};

const char *pc_mode_name(enum pc_mode m)
{
	return (unsigned int)m < PC_MODE_COUNT ? mode_names[m] : "unknown";
}

int pc_mode_parse(const char *s, enum pc_mode *out)
{
	int m;

	for (m = 0; s && m < PC_MODE_COUNT; m++) {
		if (!strcmp(s, mode_names[m])) {
			*out = m;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pc_proto_name(__u8 proto)
{
	const struct word *w;

	for (w = proto_words; w->s; w++)
		if (w->v == proto)
			return w->s;
	return "other";
}

const char *pc_dir_name(enum pc_dir d)
{
	switch (d) {
	case PC_DIR_INGRESS:
		return "ingress";
	case PC_DIR_EGRESS:
		return "egress";
	default:
		return "unknown";
	}
}

/* ---- top-level sections ---- */

static bool valid_ifname(const char *s)
{
	size_t len = strlen(s);

	if (!len || len >= PC_IFNAME_LEN || !strcmp(s, ".") ||
	    !strcmp(s, ".."))
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.:@-") == len;
}

static int parse_iface(struct ctx *c, const yaml_node_t *n)
{
	struct pc_policy *p = c->p;
	size_t i;
	int err;

	err = want_scalar(c, n, "interfaces");
	if (err)
		return err;
	if (!valid_ifname(scalar(n)))
		return node_err(c, n,
				"bad interface name '%.64s' (1-15 characters of A-Z a-z 0-9 _ . : @ -)",
				scalar(n));
	for (i = 0; i < p->nifaces; i++)
		if (!strcmp(p->ifaces[i], scalar(n)))
			return node_err(c, n, "interface '%s' listed twice",
					scalar(n));
	p->ifaces[p->nifaces] = strdup(scalar(n));
	if (!p->ifaces[p->nifaces])
		return oom(c);
	p->nifaces++;
	return 0;
}

static int parse_ifaces(struct ctx *c, const yaml_node_t *seq)
{
	size_t i, n;
	int err;

	err = want_type(c, seq, "interfaces", YAML_SEQUENCE_NODE);
	if (err)
		return err;
	n = seq_len(seq);
	if (n > PC_MAX_IFACES)
		return node_err(c, seq_item(c, seq, PC_MAX_IFACES),
				"too many interfaces: the limit is %d",
				PC_MAX_IFACES);
	c->p->ifaces = calloc(n ? n : 1, sizeof(*c->p->ifaces));
	if (!c->p->ifaces)
		return oom(c);
	for (i = 0; i < n; i++) {
		err = parse_iface(c, seq_item(c, seq, i));
		if (err)
			return err;
	}
	return 0;
}

/* Omitted directions stay deny (zero): fail secure. */
static int parse_defaults(struct ctx *c, const yaml_node_t *map)
{
	struct field f[PC_DIR_COUNT] = {
		[PC_DIR_INGRESS] = { .key = "ingress" },
		[PC_DIR_EGRESS] = { .key = "egress" },
	};
	int d, act = PC_ACT_DENY, err;

	err = want_type(c, map, "defaults", YAML_MAPPING_NODE);
	if (!err)
		err = collect(c, map, f, PC_DIR_COUNT);
	for (d = 0; !err && d < PC_DIR_COUNT; d++) {
		if (!f[d].val)
			continue;
		err = parse_word(c, f[d].val, "action", action_words,
				 "allow or deny", &act);
		if (!err)
			c->p->default_action[d] = act;
	}
	return err;
}

/* ---- rules ---- */

enum rule_key {
	R_NAME,
	R_ACTION,
	R_DIRECTION,
	R_PROTO,
	R_PORTS,
	R_MODES,
	R_CIDR,
	R_CIDR_FILE,
	R_IFACES,
	R_COUNT,
};

static bool valid_name(const char *s)
{
	size_t len = strlen(s);

	return len && len < PC_NAME_LEN &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.-") == len;
}

static int rule_name(struct ctx *c, const yaml_node_t *map,
		     const struct field *f, struct pc_rule *r, size_t idx)
{
	int err;

	if (!f->val) {
		if (!r->mgmt)
			return node_err(c, map, "rule has no 'name'");
		snprintf(r->name, sizeof(r->name), "mgmt-%zu", idx);
		c->default_name[c->p->nrules - 1] = true;
		return 0;
	}
	err = want_scalar(c, f->val, "name");
	if (err)
		return err;
	if (!valid_name(scalar(f->val)))
		return node_err(c, f->val,
				"bad name '%.64s' (1-%d characters of A-Z a-z 0-9 _ . -)",
				scalar(f->val), PC_NAME_LEN - 1);
	strcpy(r->name, scalar(f->val));
	return 0;
}

static int rule_action(struct ctx *c, const yaml_node_t *map,
		       const struct field *f, struct pc_rule *r)
{
	int act = PC_ACT_DENY, err;

	if (r->mgmt) {
		if (f->val)
			return node_err(c, f->key_node,
					"'action' is not allowed in management entries: they always allow");
		r->action = PC_ACT_ALLOW;
		return 0;
	}
	if (!f->val)
		return node_err(c, map, "rule '%s' has no 'action' (allow or deny)",
				r->name);
	err = parse_word(c, f->val, "action", action_words, "allow or deny",
			 &act);
	r->action = act;
	return err;
}

static int rule_direction(struct ctx *c, const yaml_node_t *map,
			  const struct field *f, struct pc_rule *r)
{
	int dirs = 0, err;

	if (!f->val) {
		if (!r->mgmt)
			return node_err(c, map,
					"rule '%s' has no 'direction' (ingress, egress or both)",
					r->name);
		r->dirs = DIRS_BOTH;
		return 0;
	}
	err = parse_word(c, f->val, "direction", dir_words,
			 "ingress, egress or both", &dirs);
	r->dirs = dirs;
	return err;
}

static int rule_proto(struct ctx *c, const struct field *f, struct pc_rule *r)
{
	int proto = PC_PROTO_ANY, err = 0;

	if (f->val)
		err = parse_word(c, f->val, "proto", proto_words,
				 "tcp, udp, icmp, icmpv6 or any", &proto);
	r->proto = proto;
	return err;
}

static int rule_port(struct ctx *c, const yaml_node_t *n, struct pc_rule *r)
{
	char msg[MSG_LEN];
	int err;

	err = want_scalar(c, n, "ports");
	if (err)
		return err;
	if (port_check(scalar(n), &r->ports[r->nports], msg, sizeof(msg)))
		return node_err(c, n, "%s", msg);
	r->nports++;
	return 0;
}

static int rule_ports(struct ctx *c, const struct field *f, struct pc_rule *r)
{
	const yaml_node_t *v = f->val;
	size_t i, n;
	int err;

	if (!v)
		return 0;
	if (r->proto != PROTO_TCP && r->proto != PROTO_UDP)
		return node_err(c, v, "ports need proto tcp or udp (not %s)",
				pc_proto_name(r->proto));
	if (v->type == YAML_MAPPING_NODE)
		return node_err(c, v, "'ports' must be a port, a range or a list, not a mapping");
	n = v->type == YAML_SEQUENCE_NODE ? seq_len(v) : 1;
	if (!n)
		return node_err(c, v, "empty 'ports' list (leave 'ports' out for any port)");
	r->ports = calloc(n, sizeof(*r->ports));
	if (!r->ports)
		return oom(c);
	if (v->type == YAML_SCALAR_NODE)
		return rule_port(c, v, r);
	for (i = 0; i < n; i++) {
		err = rule_port(c, seq_item(c, v, i), r);
		if (err)
			return err;
	}
	return 0;
}

/* Allow rules default to normal mode only; deny rules hold in every mode. */
static int rule_modes(struct ctx *c, const struct field *f, struct pc_rule *r)
{
	size_t i, n;
	int m = 0, err;

	if (r->mgmt) {
		if (f->val)
			return node_err(c, f->key_node,
					"'modes' is not allowed in management entries: they apply in every mode");
		r->modes = MODES_ALL;
		return 0;
	}
	if (!f->val) {
		r->modes = r->action == PC_ACT_ALLOW ? 1U << PC_MODE_NORMAL :
						       MODES_ALL;
		return 0;
	}
	err = want_type(c, f->val, "modes", YAML_SEQUENCE_NODE);
	if (err)
		return err;
	n = seq_len(f->val);
	if (!n)
		return node_err(c, f->val, "empty 'modes' list: the rule would never apply");
	for (i = 0; i < n; i++) {
		err = parse_word(c, seq_item(c, f->val, i), "mode", mode_words,
				 "normal, lockdown or quarantine", &m);
		if (err)
			return err;
		if (m == PC_MODE_QUARANTINE && r->action == PC_ACT_ALLOW)
			return node_err(c, seq_item(c, f->val, i),
					"allow rules cannot list quarantine: in "
					"quarantine only the management allowlist "
					"passes (add a management entry instead)");
		r->modes |= 1U << m;
	}
	return 0;
}

/*
 * interfaces: on a management entry binds it to those of the policy's
 * interfaces: a packet from its address arriving anywhere else is no
 * management traffic (a spoofed source from another link).
 */
static int rule_ifaces(struct ctx *c, const struct field *f, struct pc_rule *r)
{
	const struct pc_policy *p = c->p;
	const yaml_node_t *n;
	size_t i, j, len;
	int err;

	if (!f->val)
		return 0;
	if (!r->mgmt)
		return node_err(c, f->key_node,
				"'interfaces' is allowed in management entries only");
	err = want_type(c, f->val, "interfaces", YAML_SEQUENCE_NODE);
	if (err)
		return err;
	len = seq_len(f->val);
	if (!len)
		return node_err(c, f->val, "empty 'interfaces' list: the entry "
				"would match nowhere (leave it out for any interface)");
	for (i = 0; i < len; i++) {
		n = seq_item(c, f->val, i);
		err = want_scalar(c, n, "interfaces");
		if (err)
			return err;
		for (j = 0; j < p->nifaces; j++)
			if (!strcmp(p->ifaces[j], scalar(n)))
				break;
		if (j == p->nifaces)
			return node_err(c, n, "interface '%.64s' is not in the "
					"policy's 'interfaces' list", scalar(n));
		if (r->ifmask & (1U << j))
			return node_err(c, n, "interface '%s' listed twice",
					scalar(n));
		r->ifmask |= 1U << j;
	}
	return 0;
}

/* The quarantine zone must be a zone: an entry open to any address
 * would let everyone through in quarantine. */
static int check_mgmt_scope(struct ctx *c, const yaml_node_t *map,
			    const struct pc_rule *r)
{
	if (!r->ncidrs)
		return node_err(c, map, "management entry '%s' needs a 'cidr' or "
				"'cidr_file': for any address it would open "
				"quarantine to everyone", r->name);
	for (size_t i = 0; i < r->ncidrs; i++)
		if (!r->cidrs[i].plen)
			return node_err(c, map, "management entry '%s': a /0 "
					"CIDR would open quarantine to everyone",
					r->name);
	return 0;
}

/* Geometric growth: a cidr_file may hold a million lines. */
static int cidr_push(struct pc_rule *r, size_t *cap, const struct pc_cidr *v)
{
	if (r->ncidrs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct pc_cidr *n = realloc(r->cidrs, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		r->cidrs = n;
		*cap = ncap;
	}
	r->cidrs[r->ncidrs++] = *v;
	return 0;
}

static int rule_cidr(struct ctx *c, const yaml_node_t *n, struct pc_rule *r,
		     size_t *cap)
{
	char msg[MSG_LEN];
	struct pc_cidr v;
	int err;

	err = want_scalar(c, n, "cidr");
	if (err)
		return err;
	if (cidr_check(scalar(n), r->proto, &v, msg, sizeof(msg)))
		return node_err(c, n, "%s", msg);
	return cidr_push(r, cap, &v) ? oom(c) : 0;
}

static int rule_cidrs(struct ctx *c, const struct field *f, struct pc_rule *r,
		      size_t *cap)
{
	const yaml_node_t *v = f->val;
	size_t i, n;
	int err;

	if (!v)
		return 0;
	if (v->type == YAML_SCALAR_NODE)
		return rule_cidr(c, v, r, cap);
	err = want_type(c, v, "cidr", YAML_SEQUENCE_NODE);
	if (err)
		return err;
	n = seq_len(v);
	if (!n)
		return node_err(c, v, "empty 'cidr' list (leave 'cidr' out for any address)");
	for (i = 0; i < n; i++) {
		err = rule_cidr(c, seq_item(c, v, i), r, cap);
		if (err)
			return err;
	}
	return 0;
}

/* Relative paths are taken from the policy's directory. */
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

/* Cut a trailing comment and surrounding blanks; "" for nothing left. */
static char *trim_line(char *s)
{
	char *hash = strchr(s, '#');
	char *end;

	if (hash)
		*hash = '\0';
	s += strspn(s, " \t\r\n\v\f");
	end = s + strlen(s);
	while (end > s && strchr(" \t\r\n\v\f", end[-1]))
		end--;
	*end = '\0';
	return s;
}

static int read_cidr_lines(struct ctx *c, FILE *f, const char *path,
			   struct pc_rule *r, size_t *cap)
{
	char msg[MSG_LEN], *line = NULL, *tok;
	size_t lineno = 0, linecap = 0;
	struct pc_cidr v;
	ssize_t len;
	int err = 0;

	while (!err && (len = getline(&line, &linecap, f)) >= 0) {
		lineno++;
		if (strlen(line) != (size_t)len) {
			set_err(c, "%s:%zu: line contains a NUL byte", path,
				lineno);
			err = -EINVAL;
			break;
		}
		tok = trim_line(line);
		if (!*tok)
			continue;
		if (cidr_check(tok, r->proto, &v, msg, sizeof(msg))) {
			set_err(c, "%s:%zu: %s", path, lineno, msg);
			err = -EINVAL;
		} else if (cidr_push(r, cap, &v)) {
			err = oom(c);
		}
	}
	if (!err && ferror(f)) {
		err = -(errno ? errno : EIO);
		set_err(c, "%s: %s", path, strerror(-err));
	}
	free(line);
	return err;
}

static int rule_cidr_file(struct ctx *c, const struct field *f,
			  struct pc_rule *r, size_t *cap)
{
	const yaml_node_t *v = f->val;
	size_t before = r->ncidrs;
	char why[MSG_LEN], *path;
	FILE *fp;
	int fd, err;

	if (!v)
		return 0;
	err = want_scalar(c, v, "cidr_file");
	if (err)
		return err;
	if (!*scalar(v))
		return node_err(c, v, "empty 'cidr_file' path");
	path = resolve(c->base_dir, scalar(v));
	if (!path)
		return oom(c);
	fd = pc_open_trusted(path, why, sizeof(why));
	fp = fd >= 0 ? fdopen(fd, "re") : NULL;
	if (!fp) {
		err = fd < 0 ? fd : -errno;
		if (fd >= 0)
			close(fd);
		if (err != -EPERM)
			snprintf(why, sizeof(why), "%s: %s", path,
				 strerror(-err));
		set_err(c, "%s (cidr_file at %s:%zu:%zu)", why, c->name,
			v->start_mark.line + 1, v->start_mark.column + 1);
		free(path);
		return err;
	}
	err = read_cidr_lines(c, fp, path, r, cap);
	fclose(fp);
	if (!err && r->ncidrs == before)
		err = node_err(c, v,
			       "cidr_file %s lists no CIDRs (a rule on an empty list is surely a mistake)",
			       path);
	free(path);
	return err;
}

/* The exact fit saves up to half of a million-entry list. */
static void shrink_cidrs(struct pc_rule *r)
{
	struct pc_cidr *n;

	if (!r->ncidrs)
		return;
	n = realloc(r->cidrs, r->ncidrs * sizeof(*n));
	if (n)
		r->cidrs = n;
}

static int rule_fields(struct ctx *c, const yaml_node_t *map,
		       struct field *f, struct pc_rule *r, size_t idx)
{
	size_t cap = 0;
	int err;

	err = rule_name(c, map, &f[R_NAME], r, idx);
	if (!err)
		err = rule_action(c, map, &f[R_ACTION], r);
	if (!err)
		err = rule_direction(c, map, &f[R_DIRECTION], r);
	if (!err)
		err = rule_proto(c, &f[R_PROTO], r);
	if (!err)
		err = rule_ports(c, &f[R_PORTS], r);
	if (!err)
		err = rule_modes(c, &f[R_MODES], r);
	/* After proto, so a CIDR of the wrong family is caught where it is. */
	if (!err)
		err = rule_cidrs(c, &f[R_CIDR], r, &cap);
	if (!err)
		err = rule_cidr_file(c, &f[R_CIDR_FILE], r, &cap);
	shrink_cidrs(r);
	if (!err)
		err = rule_ifaces(c, &f[R_IFACES], r);
	if (!err && r->mgmt)
		err = check_mgmt_scope(c, map, r);
	return err;
}

/* idx counts within its own list: management entries are mgmt-0, mgmt-1… */
static int parse_rule(struct ctx *c, const yaml_node_t *map, bool mgmt,
		      size_t idx)
{
	struct field f[R_COUNT] = {
		[R_NAME] = { .key = "name" },
		[R_ACTION] = { .key = "action" },
		[R_DIRECTION] = { .key = "direction" },
		[R_PROTO] = { .key = "proto" },
		[R_PORTS] = { .key = "ports" },
		[R_MODES] = { .key = "modes" },
		[R_CIDR] = { .key = "cidr" },
		[R_CIDR_FILE] = { .key = "cidr_file" },
		[R_IFACES] = { .key = "interfaces" },
	};
	struct pc_rule *r = &c->p->rules[c->p->nrules++];
	int err;

	if (map->type != YAML_MAPPING_NODE)
		return node_err(c, map, "each %s entry must be a mapping, not %s",
				mgmt ? "management" : "rules", kind_name(map));
	r->mgmt = mgmt;
	r->line = map->start_mark.line + 1;
	r->column = map->start_mark.column + 1;
	err = collect(c, map, f, R_COUNT);
	if (err)
		return err;
	return rule_fields(c, map, f, r, idx);
}

static bool comes_after(const struct pc_rule *a, const struct pc_rule *b)
{
	return a->line > b->line ||
	       (a->line == b->line && a->column > b->column);
}

/* Report a clash at whichever of the two comes later in the file. */
static int name_clash(struct ctx *c, size_t i, size_t j)
{
	const struct pc_rule *a = &c->p->rules[i], *b = &c->p->rules[j];
	bool dflt = c->default_name[i] || c->default_name[j];

	if (comes_after(a, b)) {
		const struct pc_rule *t = a;

		a = b;
		b = t;
	}
	return pos_err(c, b->line, b->column,
		       "duplicate rule name '%s' (also at line %d)%s", b->name,
		       a->line,
		       dflt ? "; unnamed management entries are called mgmt-N" :
			      "");
}

/* Across rules and management entries alike: names key the counters. */
static int check_names(struct ctx *c)
{
	const struct pc_policy *p = c->p;
	size_t i, j;

	for (i = 0; i < p->nrules; i++)
		for (j = i + 1; j < p->nrules; j++)
			if (!strcmp(p->rules[i].name, p->rules[j].name))
				return name_clash(c, i, j);
	return 0;
}

static int parse_list(struct ctx *c, const yaml_node_t *seq, bool mgmt)
{
	size_t i;
	int err;

	for (i = 0; seq && i < seq_len(seq); i++) {
		err = parse_rule(c, seq_item(c, seq, i), mgmt, i);
		if (err)
			return err;
	}
	return 0;
}

static int parse_rules(struct ctx *c, const struct field *mgmt,
		       const struct field *rules)
{
	size_t nm = 0, nr = 0;
	int err;

	if (mgmt->val) {
		err = want_type(c, mgmt->val, "management", YAML_SEQUENCE_NODE);
		if (err)
			return err;
		nm = seq_len(mgmt->val);
	}
	if (rules->val) {
		err = want_type(c, rules->val, "rules", YAML_SEQUENCE_NODE);
		if (err)
			return err;
		nr = seq_len(rules->val);
	}
	if (nm + nr > PC_MAX_RULES) {
		const yaml_node_t *n = nm > PC_MAX_RULES ?
			seq_item(c, mgmt->val, PC_MAX_RULES) :
			seq_item(c, rules->val, PC_MAX_RULES - nm);

		return node_err(c, n,
				"too many rules: %zu management entries + %zu rules, the limit is %d",
				nm, nr, PC_MAX_RULES);
	}
	c->p->rules = calloc(nm + nr ? nm + nr : 1, sizeof(*c->p->rules));
	if (!c->p->rules)
		return oom(c);
	err = parse_list(c, mgmt->val, true);
	c->p->nmgmt = c->p->nrules;
	if (!err)
		err = parse_list(c, rules->val, false);
	if (!err)
		err = check_names(c);
	return err;
}

enum top_key {
	T_IFACES,
	T_DEFAULTS,
	T_AUDIT,
	T_ARP,
	T_ND,
	T_MGMT,
	T_RULES,
	T_COUNT,
};

static bool empty_root(const yaml_node_t *root)
{
	return !root || (root->type == YAML_SCALAR_NODE &&
			 root->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
			 !root->data.scalar.length);
}

static int parse_document(struct ctx *c)
{
	struct field f[T_COUNT] = {
		[T_IFACES] = { .key = "interfaces" },
		[T_DEFAULTS] = { .key = "defaults" },
		[T_AUDIT] = { .key = "audit" },
		[T_ARP] = { .key = "allow_arp" },
		[T_ND] = { .key = "allow_nd" },
		[T_MGMT] = { .key = "management" },
		[T_RULES] = { .key = "rules" },
	};
	yaml_node_t *root = yaml_document_get_root_node(c->doc);
	int err;

	if (empty_root(root))
		return pos_err(c, 1, 1, "empty policy");
	if (root->type != YAML_MAPPING_NODE)
		return node_err(c, root, "top level must be a mapping of policy keys, not %s",
				kind_name(root));
	err = collect(c, root, f, T_COUNT);
	if (!err && f[T_IFACES].val)
		err = parse_ifaces(c, f[T_IFACES].val);
	if (!err && f[T_DEFAULTS].val)
		err = parse_defaults(c, f[T_DEFAULTS].val);
	if (!err)
		err = parse_bool(c, &f[T_AUDIT], &c->p->audit);
	if (!err)
		err = parse_bool(c, &f[T_ARP], &c->p->allow_arp);
	if (!err)
		err = parse_bool(c, &f[T_ND], &c->p->allow_nd);
	if (!err)
		err = parse_rules(c, &f[T_MGMT], &f[T_RULES]);
	return err;
}

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
		err = node_err(c, root, "a policy is one YAML document; found another here");
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

int pc_policy_load_string(const char *text, size_t len, const char *name,
			  const char *base_dir, struct pc_policy *out,
			  char *err, size_t errlen)
{
	struct ctx c = {
		.name = name ? name : "policy",
		.base_dir = base_dir,
		.err = err,
		.errlen = errlen,
		.p = out,
	};
	int ret;

	memset(out, 0, sizeof(*out));
	out->allow_arp = true;
	out->allow_nd = true;
	if (err && errlen)
		err[0] = '\0';
	ret = load_yaml(&c, text ? text : "", text ? len : 0);
	if (ret)
		pc_policy_free(out);
	return ret;
}

static int read_all(int fd, char **out, size_t *outlen)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *n;
	ssize_t got;

	while (buf) {
		if (len == cap) {
			if (cap >= POLICY_MAX_BYTES) {
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

/* Whoever can write the policy opens the host: root's only. */
static int read_file(const char *path, char **text, size_t *len, char *err,
		     size_t errlen)
{
	char why[MSG_LEN] = "";
	int fd = pc_open_trusted(path, why, sizeof(why));
	int ret;

	if (fd < 0) {
		ret = fd;
	} else {
		ret = read_all(fd, text, len);
		close(fd);
	}
	if (ret == -EPERM && err && errlen)
		snprintf(err, errlen, "policy %s", why);
	else if (ret && err && errlen)
		snprintf(err, errlen, "%s: %s", path,
			 ret == -EFBIG ? "policy file too large (put long lists in a cidr_file)" :
			 strerror(-ret));
	return ret;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		return strdup(".");
	return strndup(path, slash == path ? 1 : (size_t)(slash - path));
}

int pc_policy_load_file(const char *path, struct pc_policy *out, char *err,
			size_t errlen)
{
	char *text = NULL, *dir;
	size_t len = 0;
	int ret;

	memset(out, 0, sizeof(*out));
	ret = read_file(path, &text, &len, err, errlen);
	if (ret)
		return ret;
	dir = dir_of(path);
	if (!dir) {
		free(text);
		if (err && errlen)
			snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
		return -ENOMEM;
	}
	/* "." keeps messages short: the cidr_file as written. */
	ret = pc_policy_load_string(text, len, path,
				    strcmp(dir, ".") ? dir : NULL, out, err,
				    errlen);
	free(dir);
	free(text);
	return ret;
}

void pc_policy_free(struct pc_policy *p)
{
	size_t i;

	if (!p)
		return;
	for (i = 0; p->ifaces && i < p->nifaces; i++)
		free(p->ifaces[i]);
	free(p->ifaces);
	for (i = 0; p->rules && i < p->nrules; i++) {
		free(p->rules[i].cidrs);
		free(p->rules[i].ports);
	}
	free(p->rules);
	memset(p, 0, sizeof(*p));
}

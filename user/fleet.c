// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Fleet desired state: keys, envelopes, resolution, reported state.
 *
 * An envelope is a controller message (msg.c) of type "desired": the same
 * Ed25519 signature over every byte, with the target ("fleet",
 * "group/G", "host/H") where a command has its host id. Binding the
 * target into the signed bytes is what stops a valid envelope for one
 * host from being copied under another host's key; the per-key sequence
 * is what stops an old one (an earlier release) from being put back.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "etcd.h"
#include "fleet.h"
#include "policy.h"

bool pc_fleet_name_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	/* A leading '-' would read as an option, a leading '.' as a path. */
	if (n < 1 || n > PC_FLEET_NAME_MAX || s[0] == '-' || s[0] == '.')
		return false;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_.:-") == n;
}

bool pc_fleet_prefix_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n < 2 || n > PC_FLEET_PREFIX_MAX || s[0] != '/' || s[n - 1] == '/')
		return false;
	if (strstr(s, "//"))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return false;
	return true;
}

static bool all_of(const char *from, const char *to, const char *set)
{
	for (const char *p = from; p < to; p++)
		if (!*p || !strchr(set, *p))
			return false;
	return from < to;
}

bool pc_fleet_endpoint_ok(const char *s)
{
	const char *host, *colon;
	char *end;
	long port;

	if (!s || strlen(s) >= 256)
		return false;
	if (!strncmp(s, "http://", 7))
		host = s + 7;
	else if (!strncmp(s, "https://", 8))
		host = s + 8;
	else
		return false;
	/* HOST:PORT or [IPV6]:PORT; no path, user or query. A bare IPv6
	 * address is refused: its port could not be told apart. */
	if (host[0] == '[') {
		colon = strchr(host, ']');
		if (!colon || colon[1] != ':' ||
		    !all_of(host + 1, colon, "0123456789abcdefABCDEF:."))
			return false;
		colon++;
	} else {
		colon = strchr(host, ':');
		if (!colon || !all_of(host, colon, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "abcdefghijklmnopqrstuvwxyz0123456789.-"))
			return false;
	}
	if (colon[1] < '0' || colon[1] > '9')
		return false;
	port = strtol(colon + 1, &end, 10);
	return !*end && port > 0 && port <= 65535;
}

void pc_fleet_target(char *buf, size_t len, const char *kind, const char *name)
{
	if (!strcmp(kind, "fleet"))
		snprintf(buf, len, "fleet");
	else
		snprintf(buf, len, "%s/%s", kind, name ? name : "");
}

void pc_fleet_desired_key(char *buf, size_t len, const char *prefix,
			  const char *target)
{
	snprintf(buf, len, "%s/desired/%s", prefix ? prefix : "", target ? target : "");
}

void pc_fleet_key(char *buf, size_t len, const char *prefix, const char *kind,
		  const char *name)
{
	snprintf(buf, len, "%s/%s/%s", prefix ? prefix : "", kind, name ? name : "");
}

static bool target_ok(const char *t)
{
	if (!strcmp(t, "fleet"))
		return true;
	if (!strncmp(t, "group/", 6))
		return pc_fleet_name_ok(t + 6);
	if (!strncmp(t, "host/", 5))
		return pc_fleet_name_ok(t + 5);
	return false;
}

int pc_fleet_target_of_key(const char *prefix, const char *key, char *target,
			   size_t len)
{
	size_t pl = strlen(prefix);

	if (strncmp(key, prefix, pl) || strncmp(key + pl, "/desired/", 9))
		return -EINVAL;
	key += pl + 9;
	if (!target_ok(key) || strlen(key) >= len)
		return -EINVAL;
	strcpy(target, key);
	return 0;
}

/* ---- envelopes ---- */

/* Mode on the wire: none is plain normal, release is normal as an act. */
static enum pc_cmd mode_cmd(enum pc_mode m, bool release)
{
	switch (m) {
	case PC_MODE_NORMAL:
		return release ? PC_CMD_RELEASE : PC_CMD_NONE;
	case PC_MODE_LOCKDOWN:
		return PC_CMD_LOCKDOWN;
	case PC_MODE_QUARANTINE:
		return PC_CMD_QUARANTINE;
	default:
		return PC_CMD_NONE;
	}
}

int pc_fleet_encode(const struct pc_fleet_desired *d, const __u8 sk[PC_SK_LEN],
		    __u8 *buf, size_t len)
{
	struct pc_msg m = {
		.type = PC_MSG_DESIRED,
		.cmd = mode_cmd(d->mode, d->release),
		.seq = d->seq,
		.timestamp_ms = d->timestamp_ms,
		.has_hash = d->has_policy,
	};

	if (!target_ok(d->target) || (unsigned int)d->mode >= PC_MODE_COUNT ||
	    (d->release && d->mode != PC_MODE_NORMAL))
		return -EINVAL;
	memcpy(m.cmd_id, d->id, sizeof(m.cmd_id));
	snprintf(m.host_id, sizeof(m.host_id), "%s", d->target);
	memcpy(m.policy_hash, d->policy_hash, PC_HASH_LEN);
	return pc_msg_encode(&m, sk, buf, len);
}

static enum pc_msg_verdict from_msg(const struct pc_msg *mp,
				   struct pc_fleet_desired *out)
{
	const struct pc_msg m = *mp;

	if (m.type != PC_MSG_DESIRED || !target_ok(m.host_id))
		return PC_MSG_MALFORMED;
	switch (m.cmd) {
	case PC_CMD_NONE:
		out->mode = PC_MODE_NORMAL;
		break;
	case PC_CMD_RELEASE:
		out->mode = PC_MODE_NORMAL;
		out->release = true;
		break;
	case PC_CMD_LOCKDOWN:
		out->mode = PC_MODE_LOCKDOWN;
		break;
	case PC_CMD_QUARANTINE:
		out->mode = PC_MODE_QUARANTINE;
		break;
	default:
		return PC_MSG_MALFORMED;
	}
	out->has_policy = m.has_hash;
	memcpy(out->policy_hash, m.policy_hash, PC_HASH_LEN);
	out->seq = m.seq;
	out->timestamp_ms = m.timestamp_ms;
	memcpy(out->id, m.cmd_id, sizeof(out->id));
	snprintf(out->target, sizeof(out->target), "%s", m.host_id);
	return PC_MSG_OK;
}

enum pc_msg_verdict pc_fleet_decode(const __u8 *buf, size_t len,
				    const __u8 (*keys)[PC_PK_LEN], size_t nkeys,
				    struct pc_fleet_desired *out)
{
	enum pc_msg_verdict v;
	struct pc_msg m;
	int key;

	memset(out, 0, sizeof(*out));
	v = pc_msg_decode(buf, len, keys, nkeys, &m, &key);
	if (v != PC_MSG_OK)
		return v;
	v = from_msg(&m, out);
	if (v != PC_MSG_OK)
		memset(out, 0, sizeof(*out));
	return v;
}

bool pc_fleet_peek(const __u8 *buf, size_t len, struct pc_fleet_desired *out)
{
	struct pc_msg m;

	memset(out, 0, sizeof(*out));
	return pc_msg_parse(buf, len, &m) && from_msg(&m, out) == PC_MSG_OK;
}

/* ---- heartbeats ---- */

void pc_fleet_heartbeat_key(char *buf, size_t len, const char *prefix)
{
	snprintf(buf, len, "%s/%s", prefix ? prefix : "", PC_FLEET_HB_KIND);
}

int pc_fleet_heartbeat_encode(const struct pc_fleet_heartbeat *h,
			      const __u8 sk[PC_SK_LEN], __u8 *buf, size_t len)
{
	struct pc_msg m = {
		.type = PC_MSG_FLEET_HEARTBEAT,
		.cmd = PC_CMD_NONE,
		.seq = h->seq,
		.timestamp_ms = h->timestamp_ms,
		.host_id = PC_FLEET_HB_TARGET,
	};

	memcpy(m.cmd_id, h->id, sizeof(m.cmd_id));
	return pc_msg_encode(&m, sk, buf, len);
}

enum pc_msg_verdict pc_fleet_heartbeat_decode(const __u8 *buf, size_t len,
					      const __u8 (*keys)[PC_PK_LEN],
					      size_t nkeys,
					      struct pc_fleet_heartbeat *out,
					      int *key_index)
{
	enum pc_msg_verdict v;
	struct pc_msg m;

	memset(out, 0, sizeof(*out));
	v = pc_msg_decode(buf, len, keys, nkeys, &m, key_index);
	if (v != PC_MSG_OK)
		return v;
	if (m.type != PC_MSG_FLEET_HEARTBEAT ||
	    strcmp(m.host_id, PC_FLEET_HB_TARGET)) {
		if (key_index)
			*key_index = -1;
		return PC_MSG_MALFORMED;
	}
	out->seq = m.seq;
	out->timestamp_ms = m.timestamp_ms;
	memcpy(out->id, m.cmd_id, sizeof(out->id));
	return PC_MSG_OK;
}

enum pc_msg_verdict pc_fleet_heartbeat_check(const struct pc_fleet_heartbeat *h,
					     __u64 last_seq, __u64 now_ms,
					     __u64 timeout_ms, __u64 skew_ms,
					     __u64 *behind_ms)
{
	__u64 age;

	*behind_ms = 0;
	if (h->timestamp_ms > now_ms) {
		if (h->timestamp_ms - now_ms > skew_ms)
			return PC_MSG_STALE;
		age = 0;
	} else {
		age = now_ms - h->timestamp_ms;
		/* At timeout + skew it would run out the moment it counts. */
		if (age >= timeout_ms + skew_ms)
			return PC_MSG_STALE;
	}
	if (h->seq <= last_seq)
		return PC_MSG_REPLAY;
	*behind_ms = age > skew_ms ? age - skew_ms : 0;
	return PC_MSG_OK;
}

/* ---- the agent's view ---- */

void pc_fleet_view_init(struct pc_fleet_view *v, const char *host,
			char *const *groups, size_t ngroups)
{
	memset(v, 0, sizeof(*v));
	pc_fleet_target(v->target[v->n++], PC_FLEET_TARGET_LEN, "fleet", NULL);
	for (size_t i = 0; i < ngroups && i < PC_FLEET_MAX_GROUPS; i++)
		pc_fleet_target(v->target[v->n++], PC_FLEET_TARGET_LEN, "group",
				groups[i]);
	pc_fleet_target(v->target[v->n++], PC_FLEET_TARGET_LEN, "host", host);
}

int pc_fleet_view_find(const struct pc_fleet_view *v, const char *target)
{
	for (size_t i = 0; i < v->n; i++)
		if (!strcmp(v->target[i], target))
			return i;
	return -1;
}

enum pc_msg_verdict pc_fleet_accept(struct pc_fleet_view *v, size_t i,
				    const struct pc_fleet_desired *d)
{
	if (i >= v->n || strcmp(v->target[i], d->target))
		return PC_MSG_WRONG_HOST;
	if (v->set[i] && d->seq <= v->d[i].seq)
		return PC_MSG_REPLAY;
	v->d[i] = *d;
	v->set[i] = true;
	return PC_MSG_OK;
}

enum pc_mode pc_fleet_floor(const struct pc_fleet_view *v)
{
	enum pc_mode m = PC_MODE_NORMAL;

	for (size_t i = 0; i < v->n; i++)
		if (v->set[i] && v->d[i].mode > m && v->d[i].mode < PC_MODE_COUNT)
			m = v->d[i].mode;
	return m;
}

int pc_fleet_policy_index(const struct pc_fleet_view *v)
{
	/* Host last in the view, fleet first: the most specific wins. */
	if (v->n && v->set[v->n - 1] && v->d[v->n - 1].has_policy)
		return v->n - 1;
	for (size_t i = 1; i + 1 < v->n; i++)
		if (v->set[i] && v->d[i].has_policy)
			return i;
	if (v->n && v->set[0] && v->d[0].has_policy)
		return 0;
	return -1;
}

/* ---- reported state ---- */

char *pc_fleet_status_json(const struct pc_fleet_status *s)
{
	json_object *o = json_object_new_object(), *g = json_object_new_array();
	char hex[2 * PC_HASH_LEN + 1];
	char *out;

	if (!o || !g) {
		json_object_put(o);
		json_object_put(g);
		return NULL;
	}
	json_object_object_add(o, "host", json_object_new_string(s->host));
	json_object_object_add(o, "mode", json_object_new_string(pc_mode_name(s->mode)));
	json_object_object_add(o, "cause", json_object_new_string(s->cause));
	json_object_object_add(o, "since_ms", json_object_new_int64(s->since_ms));
	json_object_object_add(o, "generation", json_object_new_int64(s->generation));
	if (s->has_policy) {
		pc_hex(s->policy_hash, PC_HASH_LEN, hex);
		json_object_object_add(o, "policy", json_object_new_string(hex));
	} else {
		json_object_object_add(o, "policy", NULL);
	}
	json_object_object_add(o, "version", json_object_new_string(s->version));
	for (size_t i = 0; i < s->ngroups; i++)
		json_object_array_add(g, json_object_new_string(s->groups[i]));
	json_object_object_add(o, "groups", g);
	json_object_object_add(o, "reported_ms", json_object_new_int64(s->reported_ms));
	json_object_object_add(o, "last_heartbeat_ms", json_object_new_int64(s->last_hb_ms));
	json_object_object_add(o, "refused", json_object_new_int64(s->refused));
	json_object_object_add(o, "heartbeat_lost", json_object_new_boolean(s->hb_lost));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return out;
}

static int str_field(json_object *o, const char *name, char *buf, size_t len,
		     bool required)
{
	json_object *v;

	if (!json_object_object_get_ex(o, name, &v) || !v)
		return required ? -EINVAL : 0;
	if (!json_object_is_type(v, json_type_string) ||
	    (size_t)json_object_get_string_len(v) >= len)
		return -EINVAL;
	strcpy(buf, json_object_get_string(v));
	return 0;
}

static int u64_field(json_object *o, const char *name, __u64 *out)
{
	json_object *v;

	*out = 0;
	if (!json_object_object_get_ex(o, name, &v) || !v)
		return 0;
	if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
		return -EINVAL;
	*out = json_object_get_int64(v);
	return 0;
}

int pc_fleet_status_parse(const char *json, size_t len,
			  struct pc_fleet_status *out)
{
	json_object *o = NULL, *v;
	char mode[16] = "", hex[2 * PC_HASH_LEN + 2] = "";
	__u64 gen = 0;
	int err = -EINVAL;

	memset(out, 0, sizeof(*out));
	if (len < 65536)
		o = pc_json_object(json, len, NULL, 0);
	if (!o)
		return -EINVAL;
	if (str_field(o, "host", out->host, sizeof(out->host), true) ||
	    str_field(o, "mode", mode, sizeof(mode), true) ||
	    pc_mode_parse(mode, &out->mode) ||
	    str_field(o, "cause", out->cause, sizeof(out->cause), false) ||
	    str_field(o, "version", out->version, sizeof(out->version), false) ||
	    str_field(o, "policy", hex, sizeof(hex), false) ||
	    u64_field(o, "since_ms", &out->since_ms) ||
	    u64_field(o, "generation", &gen) ||
	    u64_field(o, "reported_ms", &out->reported_ms) ||
	    u64_field(o, "last_heartbeat_ms", &out->last_hb_ms) ||
	    u64_field(o, "refused", &out->refused))
		goto out;
	/* The reporter is an agent, but the bytes come from etcd. */
	if (gen > 0xffffffffULL || !pc_fleet_name_ok(out->host))
		goto out;
	out->generation = gen;
	if (hex[0]) {
		if (pc_unhex(hex, out->policy_hash, PC_HASH_LEN))
			goto out;
		out->has_policy = true;
	}
	if (json_object_object_get_ex(o, "heartbeat_lost", &v))
		out->hb_lost = json_object_is_type(v, json_type_boolean) &&
			       json_object_get_boolean(v);
	if (json_object_object_get_ex(o, "groups", &v) &&
	    json_object_is_type(v, json_type_array)) {
		for (size_t i = 0; i < json_object_array_length(v) &&
				   out->ngroups < PC_FLEET_MAX_GROUPS; i++) {
			json_object *g = json_object_array_get_idx(v, i);

			if (json_object_is_type(g, json_type_string) &&
			    pc_fleet_name_ok(json_object_get_string(g)))
				strcpy(out->groups[out->ngroups++],
				       json_object_get_string(g));
		}
	}
	err = 0;
out:
	json_object_put(o);
	return err;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Anti-lockout check: would this policy, in normal mode, cut off the SSH
 * session the operator is typing in, or leave quarantine with no way in?
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include "lockout.h"
#include "model.h"

#define PROTO_TCP	6

struct ssh_peer {
	__u8 family;
	__u8 addr[16];
	__u16 server_port;
	char text[INET6_ADDRSTRLEN];	/* client address, as printed */
};

static int parse_port(const char *s, __u16 *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || !v || v > 65535)
		return -EINVAL;
	*out = v;
	return 0;
}

/* A link-local client carries a zone ("fe80::1%eth0"); an IPv4 client of
 * a dual-stack listener may show up v4-mapped: the datapath sees IPv4. */
static int parse_client(char *s, struct ssh_peer *out)
{
	static const __u8 v4mapped[12] = { [10] = 0xff, [11] = 0xff };
	char *zone = strchr(s, '%');

	if (zone)
		*zone = '\0';
	if (inet_pton(AF_INET, s, out->addr) == 1) {
		out->family = 4;
	} else if (inet_pton(AF_INET6, s, out->addr) == 1) {
		out->family = 6;
		if (!memcmp(out->addr, v4mapped, sizeof(v4mapped))) {
			memmove(out->addr, out->addr + 12, 4);
			out->family = 4;
		}
	} else {
		return -EINVAL;
	}
	inet_ntop(out->family == 4 ? AF_INET : AF_INET6, out->addr, out->text,
		  sizeof(out->text));
	return 0;
}

/* "CLIENT_IP CLIENT_PORT SERVER_IP SERVER_PORT", as sshd sets it. */
static int parse_ssh_connection(const char *s, struct ssh_peer *out)
{
	char client[64], cport[16], server[64], sport[16], extra;
	__u16 unused;

	if (sscanf(s, "%63s %15s %63s %15s %c", client, cport, server, sport,
		   &extra) != 4)
		return -EINVAL;
	if (parse_port(cport, &unused) || parse_port(sport, &out->server_port))
		return -EINVAL;
	return parse_client(client, out);
}

static void describe_drop(const struct pc_policy *p,
			  const struct pc_model_verdict *v,
			  const struct ssh_peer *peer, char *why, size_t len)
{
	char what[PC_NAME_LEN + 32];

	if (v->rule >= 0 && (size_t)v->rule < p->nrules)
		snprintf(what, sizeof(what), "rule '%s' (deny)",
			 p->rules[v->rule].name);
	else
		snprintf(what, sizeof(what), "the ingress default (deny)");
	snprintf(why, len, "%s would drop this SSH session from %s to port %u",
		 what, peer->text, peer->server_port);
}

int pc_lockout_check(const struct pc_policy *p, const char *ssh_connection,
		     char *why, size_t len)
{
	char dummy[1];
	struct ssh_peer peer;
	struct pc_model_verdict v;

	if (!why || !len) {
		why = dummy;
		len = sizeof(dummy);
	}
	why[0] = '\0';
	/* The live session first: losing it is the more immediate harm. */
	if (ssh_connection && !parse_ssh_connection(ssh_connection, &peer)) {
		v = pc_model_decide(p, PC_MODE_NORMAL, PC_DIR_INGRESS,
				    peer.family, peer.addr, PROTO_TCP,
				    peer.server_port);
		if (!v.pass) {
			describe_drop(p, &v, &peer, why, len);
			return 1;
		}
	}
	if (!p->nmgmt) {
		snprintf(why, len,
			 "no management allowlist: quarantine would leave no way in");
		return 1;
	}
	return 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Warnings for configs that load but cannot work as meant: said at start
 * and by --check-config, never a refusal (the host is secured either way;
 * it is its availability that is at stake).
 */
#include <stdio.h>
#include <string.h>
#include "config_warn.h"
#include "policy.h"

/* Valid Ed25519 public keys published as examples: nobody can sign with
 * them. The first is the one deploy/ shipped until issue 13. */
static const char *const placeholder_keys[] = {
	"0+IRh9a2jg9ZYrFY5cXeDtsG5u4dvOfvo/L0CdSeuA4=",
};

static int is_placeholder(const __u8 *pk)
{
	__u8 ph[PC_PK_LEN];

	for (size_t i = 0; i < sizeof(placeholder_keys) / sizeof(placeholder_keys[0]); i++)
		if (!pc_key_parse_public(placeholder_keys[i], ph) &&
		    !memcmp(ph, pk, PC_PK_LEN))
			return 1;
	return 0;
}

int pc_config_deadman_unfed(const struct pc_config *cfg, char *buf, size_t len)
{
	if (!cfg->controller && !cfg->fleet)
		return 0;
	for (size_t i = 0; i < cfg->nkeys; i++)
		if (!is_placeholder(cfg->keys[i]))
			return 0;
	snprintf(buf, len,
		 "dead-man switch with no controller to feed it: every controller "
		 "key is the shipped placeholder, whose secret half nobody kept; "
		 "no heartbeat can verify, so this host goes to %s %llu ms after "
		 "start%s. Put your controller's key in, or leave the controller "
		 "and heartbeat sections out",
		 pc_mode_name(cfg->hb_action),
		 (unsigned long long)cfg->hb_timeout_ms,
		 cfg->hb_release_after ? "" : " and stays there");
	return 1;
}

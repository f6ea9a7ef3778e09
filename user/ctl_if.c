// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include <string.h>
#include <net/if.h>
#include "ctl_if.h"

void pc_ctl_if_conf(const struct pc_config *cfg, struct pc_ctl_conf *conf)
{
	memset(conf, 0, sizeof(*conf));
	if (!cfg->controller)
		return;
	conf->port = cfg->listen_port;
	/* nbound stays as named whatever resolves: a bound port with all its
	 * links away is closed, not open on every interface. */
	conf->nbound = cfg->nctl_ifaces;
	for (size_t i = 0; i < cfg->nctl_ifaces && i < PC_CTL_IFACES; i++)
		conf->ifindex[i] = if_nametoindex(cfg->ctl_ifaces[i]);
}

bool pc_ctl_if_names(const struct pc_config *cfg, const char *name)
{
	for (size_t i = 0; i < cfg->nctl_ifaces; i++)
		if (!strcmp(cfg->ctl_ifaces[i], name))
			return true;
	return false;
}

const char *pc_ctl_if_unattached(const struct pc_config *cfg,
				 char *const *names, size_t n)
{
	for (size_t i = 0; i < cfg->nctl_ifaces; i++) {
		bool found = false;

		for (size_t j = 0; j < n; j++)
			found |= !strcmp(names[j], cfg->ctl_ifaces[i]);
		if (!found)
			return cfg->ctl_ifaces[i];
	}
	return NULL;
}

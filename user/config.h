/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* The agent's configuration file (YAML). See README "Agent configuration". */
#ifndef PC_CONFIG_H
#define PC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <linux/types.h>
#include "portcullis.h"
#include "msg.h"
#include "fleet.h"
#include "etcd.h"

#define PC_MAX_TRIGGERS	16

enum pc_metric {
	PC_METRIC_EGRESS_NEW_FLOWS = 0,		/* flows opened by egress, per interval */
	PC_METRIC_EGRESS_DESTINATIONS,		/* distinct remotes of those flows */
	PC_METRIC_EGRESS_DENIED,		/* denied egress the host initiated */
	PC_METRIC_INGRESS_DEFAULT_DENIED,	/* ingress drop_default */
	PC_METRIC_COUNT,
};

struct pc_anomaly_trigger {
	char name[PC_NAME_LEN];
	enum pc_metric metric;
	__u64 threshold;	/* fires when the metric is >= threshold ... */
	unsigned int intervals;	/* ... for this many consecutive intervals */
	enum pc_mode action;	/* lockdown or quarantine */
};

struct pc_config {
	char host_id[PC_HOST_ID_LEN];	/* default: gethostname() */
	char *policy_path;		/* required */
	char **ifaces;			/* optional: overrides the policy's */
	size_t nifaces;
	char *pin_dir;			/* default PC_DEFAULT_PIN_DIR */
	char *state_dir;		/* default /var/lib/portcullis */
	char *audit_log;		/* default /var/log/portcullis/audit.jsonl */
	char *control_socket;		/* default /run/portcullis/control.sock */
	enum pc_xdp_mode xdp_mode;	/* default auto */

	/* controller: absent => no heartbeats, no commands */
	bool controller;
	char listen_addr[64];		/* numeric IPv4/IPv6, default "::" */
	__u16 listen_port;		/* default 7800 */
	__u8 keys[PC_MAX_KEYS][PC_PK_LEN];
	size_t nkeys;			/* >= 1 when controller */
	__u64 max_skew_ms;		/* default 30000 */
	/* controller.interfaces: the port only on these; none: any */
	char ctl_ifaces[PC_CTL_IFACES][PC_IFNAME_LEN];
	size_t nctl_ifaces;

	/* fleet: absent => no etcd. Keys go to keys[] like the controller's. */
	bool fleet;
	char fleet_endpoints[PC_ETCD_MAX_ENDPOINTS][256];
	size_t nendpoints;
	char fleet_prefix[PC_FLEET_PREFIX_MAX + 1];	/* default PC_FLEET_DEFAULT_PREFIX */
	char fleet_groups[PC_FLEET_MAX_GROUPS][PC_FLEET_NAME_MAX + 1];
	size_t ngroups;
	__u64 fleet_report_ms;		/* status refresh, default 10000 */
	__u64 fleet_request_ms;		/* one etcd request, default 2000 */
	__u64 fleet_skew_ms;		/* heartbeat clock allowance, default 1000 */
	/* fleet.tls: etcd's CA (pinned), our client certificate and key;
	 * NULL: plain (or system-CA https) endpoints. */
	char *fleet_tls_ca, *fleet_tls_cert, *fleet_tls_key;

	/* heartbeat (with a controller or a fleet) */
	__u64 hb_timeout_ms;		/* default 5000 */
	enum pc_mode hb_action;		/* default lockdown */
	bool kernel_deadman;		/* default true */
	unsigned int hb_release_after;	/* valid heartbeats to lift; 0 = never (default 0) */
	__u64 backoff_ms;		/* default 30000 */

	/* metrics: "ADDR:PORT" or "[IPV6]:PORT"; "" = no server */
	char metrics_listen[64];	/* default PC_DEFAULT_METRICS_LISTEN */

	/* anomaly */
	__u64 anomaly_interval_ms;	/* default 1000 */
	struct pc_anomaly_trigger triggers[PC_MAX_TRIGGERS];
	size_t ntriggers;
};

/* Errors as "FILE:LINE:COLUMN: message"; -EINVAL or -errno. */
int pc_config_load_file(const char *path, struct pc_config *out, char *err,
			size_t errlen);
int pc_config_load_string(const char *text, size_t len, const char *name,
			  struct pc_config *out, char *err, size_t errlen);
void pc_config_free(struct pc_config *c);
/* "500ms", "5s", "2m", "1h" into ms: 0, -ENOMSG (a number without a
 * unit), -EINVAL (not a duration) or -ERANGE. */
int pc_duration_parse(const char *s, __u64 *out_ms);
const char *pc_metric_name(enum pc_metric m);

#endif /* PC_CONFIG_H */

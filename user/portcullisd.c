// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * portcullisd: the agent. Loads, attaches and pins the datapath, enforces
 * the policy and the mode, and moves the mode by itself on heartbeat
 * loss, signed controller commands and local anomaly counters (agent.c).
 * Enforcement lives in pinned maps and links, so it outlives this process.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "agent.h"
#include "log.h"
#include "msg.h"
#include "policy.h"

static void usage(FILE *f)
{
	fprintf(f,
"Usage: portcullisd --config FILE [options]\n"
"       portcullisd --policy FILE [options]\n"
"       portcullisd --check-config FILE\n"
"\n"
"The Portcullis agent. Loads the datapath (XDP ingress, TC egress) on the\n"
"interfaces, pins it, enforces the policy and mode, and with a controller\n"
"configured falls into its secure state by itself when heartbeats stop.\n"
"Runs in the foreground; SIGHUP reloads. Enforcement outlives the agent;\n"
"only `portcullis detach` removes it.\n"
"\n"
"Options:\n"
"  -c, --config FILE         agent configuration (YAML, see README)\n"
"  -p, --policy FILE         policy only: no controller, no triggers\n"
"      --check-config FILE   validate a configuration and its policy, exit\n"
"  -d, --pin-dir DIR         pin dir on bpffs (default " PC_DEFAULT_PIN_DIR ")\n"
"      --state-dir DIR       saved mode and pushed policies (/var/lib/portcullis)\n"
"      --audit-log FILE      JSON-lines audit log (/var/log/portcullis/audit.jsonl)\n"
"      --control-socket PATH local control socket (/run/portcullis/control.sock)\n"
"      --metrics ADDR:PORT   serve Prometheus /metrics there, or \"off\"\n"
"                            (config default 127.0.0.1:9712; --policy: off)\n"
"  -x, --xdp-mode MODE       auto (native, else generic), native or generic\n"
"  -m, --mode MODE           mode on a first start with no saved state\n"
"  -f, --force               apply even if the anti-lockout check refuses\n"
"  -v, --verbose             debug logs, libbpf's included\n"
"  -h, --help                this help\n"
"\n"
"Environment: PORTCULLIS_PIN_DIR, PORTCULLIS_STATE_DIR, PORTCULLIS_AUDIT_LOG,\n"
"PORTCULLIS_CONTROL_SOCKET, PORTCULLIS_METRICS stand in for the options above.\n");
}

enum { OPT_CHECK = 256, OPT_STATE, OPT_AUDIT, OPT_CONTROL, OPT_METRICS };

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' },
		{ "check-config", required_argument, NULL, OPT_CHECK },
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "state-dir", required_argument, NULL, OPT_STATE },
		{ "audit-log", required_argument, NULL, OPT_AUDIT },
		{ "control-socket", required_argument, NULL, OPT_CONTROL },
		{ "metrics", required_argument, NULL, OPT_METRICS },
		{ "xdp-mode", required_argument, NULL, 'x' },
		{ "mode", required_argument, NULL, 'm' },
		{ "force", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct agent_opts o = { .xdp_mode = PC_XDP_AUTO };
	const char *check = NULL;
	int c;

	pc_log_set_timestamps(1);
	while ((c = getopt_long(argc, argv, "c:p:d:x:m:fvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o.config_path = optarg; break;
		case 'p': o.policy_path = optarg; break;
		case OPT_CHECK: check = optarg; break;
		case 'd': o.pin_dir = optarg; break;
		case OPT_STATE: o.state_dir = optarg; break;
		case OPT_AUDIT: o.audit_log = optarg; break;
		case OPT_CONTROL: o.control_socket = optarg; break;
		case OPT_METRICS: o.metrics = optarg; break;
		case 'f': o.force = true; break;
		case 'v': o.verbose = true; break;
		case 'h': usage(stdout); return 0;
		case 'x':
			o.xdp_mode_set = true;
			if (!strcmp(optarg, "auto"))
				o.xdp_mode = PC_XDP_AUTO;
			else if (!strcmp(optarg, "native"))
				o.xdp_mode = PC_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				o.xdp_mode = PC_XDP_GENERIC;
			else {
				pr_warn("--xdp-mode: '%s' is not auto, native or generic\n",
					optarg);
				return 2;
			}
			break;
		case 'm':
			if (pc_mode_parse(optarg, &o.initial_mode)) {
				pr_warn("--mode: '%s' is not normal, lockdown or quarantine\n",
					optarg);
				return 2;
			}
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		pr_warn("unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (pc_crypto_init()) {
		pr_warn("libsodium failed to initialise\n");
		return 1;
	}
	if (check) {
		pc_log_set_timestamps(0);
		return agent_check_config(check);
	}
	if (!!o.config_path == !!o.policy_path) {
		pr_warn("give one of --config FILE or --policy FILE (see --help)\n");
		return 2;
	}
	if (o.verbose)
		pc_log_set_level(PC_LOG_DEBUG);
	return agent_run(&o);
}

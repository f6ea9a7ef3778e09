// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * portcullisd: loads, attaches and pins the datapath, applies the policy,
 * reloads it on SIGHUP. Enforcement lives in pinned maps and links, so it
 * outlives this process: SIGTERM, SIGKILL or a crash leave the host
 * filtered, and the next start adopts the pinned state with no gap.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "apply.h"
#include "attach.h"
#include "compile.h"
#include "lockout.h"
#include "log.h"
#include "pins.h"
#include "policy.h"
#include "portcullis.skel.h"

static volatile sig_atomic_t exiting;
static volatile sig_atomic_t reload;

struct daemon_opts {
	const char *policy_path;
	const char *pin_dir;
	enum pc_xdp_mode xdp_mode;
	enum pc_mode initial_mode;
	bool force;
	bool verbose;
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: portcullisd --policy FILE [options]\n"
"\n"
"Load the Portcullis datapath (XDP ingress, TC egress) on the policy's\n"
"interfaces, pin it under the pin dir, enforce the policy, and reload it on\n"
"SIGHUP. Runs in the foreground. Enforcement outlives the daemon; only\n"
"`portcullis detach` removes it.\n"
"\n"
"Options:\n"
"  -p, --policy FILE     policy file (YAML), required\n"
"  -d, --pin-dir DIR     pin dir on bpffs (default " PC_DEFAULT_PIN_DIR ",\n"
"                        or $PORTCULLIS_PIN_DIR)\n"
"  -x, --xdp-mode MODE   auto (native, else generic), native or generic\n"
"  -m, --mode MODE       mode on a fresh start: normal, lockdown, quarantine\n"
"                        (default normal; a pinned mode is always kept)\n"
"  -f, --force           apply even if the anti-lockout check refuses\n"
"  -v, --verbose         debug logs, libbpf's included\n"
"  -h, --help            this help\n");
}

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload = 1;
	else
		exiting = 1;
}

static int parse_args(int argc, char **argv, struct daemon_opts *o)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "pin-dir", required_argument, NULL, 'd' },
		{ "xdp-mode", required_argument, NULL, 'x' },
		{ "mode", required_argument, NULL, 'm' },
		{ "force", no_argument, NULL, 'f' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:d:x:m:fvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'p': o->policy_path = optarg; break;
		case 'd': o->pin_dir = optarg; break;
		case 'f': o->force = true; break;
		case 'v': o->verbose = true; break;
		case 'h': usage(stdout); exit(0);
		case 'x':
			if (!strcmp(optarg, "auto"))
				o->xdp_mode = PC_XDP_AUTO;
			else if (!strcmp(optarg, "native"))
				o->xdp_mode = PC_XDP_NATIVE;
			else if (!strcmp(optarg, "generic"))
				o->xdp_mode = PC_XDP_GENERIC;
			else {
				pr_warn("--xdp-mode: '%s' is not auto, native or generic\n",
					optarg);
				return -EINVAL;
			}
			break;
		case 'm':
			if (pc_mode_parse(optarg, &o->initial_mode)) {
				pr_warn("--mode: '%s' is not normal, lockdown or quarantine\n",
					optarg);
				return -EINVAL;
			}
			break;
		default:
			usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		pr_warn("unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->policy_path) {
		pr_warn("--policy FILE is required (see --help)\n");
		return -EINVAL;
	}
	return 0;
}

/* Parse, check and compile; nothing touches the datapath here. */
static int policy_prepare(const struct daemon_opts *o, struct pc_policy *p,
			  struct pc_compiled *c)
{
	char err[512], why[512];
	int ret;

	ret = pc_policy_load_file(o->policy_path, p, err, sizeof(err));
	if (ret) {
		pr_warn("policy refused: %s\n", err);
		return ret;
	}
	if (!p->nifaces) {
		pr_warn("policy refused: %s names no interfaces\n", o->policy_path);
		pc_policy_free(p);
		return -EINVAL;
	}
	/* Every interface must be usable before anything is touched. */
	for (size_t i = 0; i < p->nifaces; i++) {
		ret = pc_iface_check(p->ifaces[i]);
		if (ret) {
			pr_warn("policy refused: interface '%s' cannot be used\n",
				p->ifaces[i]);
			pc_policy_free(p);
			return ret;
		}
	}
	if (pc_lockout_check(p, getenv("SSH_CONNECTION"), why, sizeof(why))) {
		if (!o->force) {
			pr_warn("policy refused (anti-lockout): %s; use --force to "
				"apply anyway\n", why);
			pc_policy_free(p);
			return -EPERM;
		}
		pr_warn("anti-lockout overridden by --force: %s\n", why);
	}
	ret = pc_compile(p, c, err, sizeof(err));
	if (ret) {
		pr_warn("policy refused: %s\n", err);
		pc_policy_free(p);
	}
	return ret;
}

static bool policy_has_iface(const struct pc_policy *p, const char *name)
{
	for (size_t i = 0; i < p->nifaces; i++)
		if (!strcmp(p->ifaces[i], name))
			return true;
	return false;
}

/* Apply atomically, attach to the policy's interfaces, drop the others. */
static int enforce(const struct daemon_opts *o, struct portcullis_bpf *skel,
		   const struct pc_policy *p, const struct pc_compiled *c,
		   __u32 *generation)
{
	struct pc_maps m;
	struct pc_iface ifc;
	char err[512];
	int lock, ret;

	pc_maps_from_skel(skel, &m);
	lock = pc_lock(o->pin_dir);
	if (lock < 0) {
		pr_warn("Couldn't lock pin dir '%s': %s\n", o->pin_dir,
			strerror(-lock));
		return lock;
	}
	ret = pc_apply(&m, c, generation, err, sizeof(err));
	if (ret) {
		pr_warn("policy not applied, previous policy still enforcing: %s\n",
			err);
		goto out;
	}
	for (size_t i = 0; i < p->nifaces; i++) {
		int e = pc_attach_iface(skel, o->pin_dir, p->ifaces[i], o->xdp_mode);

		if (e && !ret)
			ret = e;
	}
	for (__u32 i = 0; i < PC_MAX_IFACES; i++) {
		if (bpf_map_lookup_elem(m.ifaces, &i, &ifc) || !ifc.ifindex)
			continue;
		if (!policy_has_iface(p, ifc.name)) {
			pr_info("iface '%s' no longer in the policy: detaching\n",
				ifc.name);
			pc_detach_iface(m.ifaces, o->pin_dir, i);
		}
	}
out:
	pc_unlock(lock);
	return ret;
}

static void do_reload(const struct daemon_opts *o, struct portcullis_bpf *skel)
{
	struct pc_policy p = {};
	struct pc_compiled c = {};
	__u32 gen;

	pr_info("SIGHUP: reloading %s\n", o->policy_path);
	if (policy_prepare(o, &p, &c)) {
		pr_warn("reload failed; previous policy still enforcing\n");
		return;
	}
	if (!enforce(o, skel, &p, &c, &gen))
		pr_info("reloaded policy %s: generation %u, %zu rules\n",
			o->policy_path, gen, p.nrules);
	pc_compiled_free(&c);
	pc_policy_free(&p);
}

/* The operator ran `portcullis detach`: nothing left to keep. */
static bool pins_gone(const char *pin_dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", pin_dir, PC_MAP_STATE);
	return access(path, F_OK) != 0;
}

int main(int argc, char **argv)
{
	struct daemon_opts o = { .xdp_mode = PC_XDP_AUTO };
	struct portcullis_bpf *skel = NULL;
	struct pc_policy p = {};
	struct pc_compiled c = {};
	struct pc_maps m;
	__u32 gen = 0, mode, last_mode;
	bool adopted;
	int err;

	/* Parse options, then check what we can before touching anything. */
	pc_log_set_timestamps(1);
	if (parse_args(argc, argv, &o))
		return 2;
	if (o.verbose)
		pc_log_set_level(PC_LOG_DEBUG);
	o.pin_dir = pc_pin_dir(o.pin_dir);
	if (geteuid() != 0) {
		pr_warn("portcullisd must run as root (CAP_BPF, CAP_NET_ADMIN)\n");
		return 1;
	}
	if (policy_prepare(&o, &p, &c))
		return 1;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	/* Load, reusing whatever is pinned: the live policy keeps enforcing. */
	err = pc_pin_dir_prepare(o.pin_dir);
	if (err)
		goto cleanup;
	adopted = !pins_gone(o.pin_dir);
	err = pc_datapath_load(o.pin_dir, o.verbose, &skel);
	if (err)
		goto cleanup;
	pc_maps_from_skel(skel, &m);
	if (!adopted)
		pc_state_set(&m, PC_STATE_MODE, o.initial_mode);
	pc_state_get(&m, PC_STATE_MODE, &mode);
	pr_info("%s pinned state in %s (mode %s)\n",
		adopted ? "adopting" : "creating", o.pin_dir, pc_mode_name(mode));

	/* Policy before attach: programs never run without one. */
	err = enforce(&o, skel, &p, &c, &gen);
	if (err)
		goto cleanup;
	pr_info("portcullisd: ready (generation %u, mode %s, %zu rules, %zu interfaces)\n",
		gen, pc_mode_name(mode), p.nrules, p.nifaces);
	pc_compiled_free(&c);
	pc_policy_free(&p);

	last_mode = mode;
	while (!exiting) {
		sleep(1);
		if (reload) {
			reload = 0;
			do_reload(&o, skel);
		}
		if (pins_gone(o.pin_dir)) {
			pr_info("pins removed (portcullis detach): exiting\n");
			break;
		}
		if (!pc_state_get(&m, PC_STATE_MODE, &mode) && mode != last_mode) {
			pr_info("mode changed: %s -> %s\n", pc_mode_name(last_mode),
				pc_mode_name(mode));
			last_mode = mode;
		}
	}
	pr_info("exiting; enforcement stays in place (portcullis detach removes it)\n");

cleanup:
	pc_compiled_free(&c);
	pc_policy_free(&p);
	/* Destroying the skeleton closes fds only: pins and links remain. */
	portcullis_bpf__destroy(skel);
	return err ? 1 : 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the agent config parser. Sample files live in
 * tests/configs/; the tests chdir there (found from this file's own
 * location) so relative key_files in inline configs resolve to them.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "config_cases.h"
#include "config_warn.h"

/* Dummy Ed25519 public keys; nobody holds their secret halves. */
#define K4	"ASFheT/0uQ6Yqm5P9cVz6ngNLU3AcR8maJ0SDWnnVUw="	/* second.pub */
#define K5	"eWYCcvNF4GmiqlDBavrx+pUd401whc3vlgB3yNkDFa4="
#define K6	"5HNxWZ+dCg2C1B0j0oVNfC2A73rttp5RGVijghr7BoA="
#define K7	"X+yUWeU2yt+3AJoYxqRR/QmVOxl5ljxzvIP8+7mftsE="
#define K8	"/CaHQW4A1+S3IGhVxUhioCDYiMPrDf6BJBOAOBkxY74="
#define K9	"OCZywjDG9OP3N70US1mBionQHHiCIhFW3w0yDuHCHPo="

/* The shortest config with a controller; append heartbeat lines to it. */
#define CTL	"policy: p.yaml\ncontroller:\n  keys: [" K1 "]\n"
#define TRIG	"policy: p.yaml\nanomaly:\n  triggers:\n"

/* ---- the full example ---- */

static void test_full_example(void **state)
{
	const struct pc_anomaly_trigger *t;
	char path[PATH_MAX], want[PATH_MAX], err[ERRLEN];
	struct pc_config c;

	snprintf(path, sizeof(path), "%s/full.yaml", configs_dir);
	if (pc_config_load_file(path, &c, err, sizeof(err)))
		fail_msg("full.yaml refused: %s", err);

	assert_string_equal(c.host_id, "node-1.example:a_b");
	/* Relative paths are stored resolved against the config's directory. */
	snprintf(want, sizeof(want), "%s/policy.yaml", configs_dir);
	assert_string_equal(c.policy_path, want);
	snprintf(want, sizeof(want), "%s/state", configs_dir);
	assert_string_equal(c.state_dir, want);
	assert_int_equal(c.nifaces, 2);
	assert_string_equal(c.ifaces[0], "eth0");
	assert_string_equal(c.ifaces[1], "bond0.100");
	assert_string_equal(c.pin_dir, "/sys/fs/bpf/portcullis-test");
	assert_string_equal(c.audit_log, "/var/log/portcullis-test/audit.jsonl");
	assert_string_equal(c.control_socket,
			    "/run/portcullis-test/control.sock");
	assert_int_equal(c.xdp_mode, PC_XDP_NATIVE);

	assert_true(c.controller);
	assert_string_equal(c.listen_addr, "2001:db8::1");
	assert_int_equal(c.listen_port, 7900);
	assert_int_equal(c.nkeys, 3);
	assert_key(c.keys[0], K1);
	assert_key(c.keys[1], K2);
	assert_key(c.keys[2], K3);
	assert_int_equal(c.max_skew_ms, 45000);

	assert_int_equal(c.hb_timeout_ms, 1500);
	assert_int_equal(c.hb_action, PC_MODE_QUARANTINE);
	assert_false(c.kernel_deadman);
	assert_int_equal(c.hb_release_after, 3);
	assert_int_equal(c.backoff_ms, 120000);

	assert_int_equal(c.anomaly_interval_ms, 500);
	assert_int_equal(c.ntriggers, 4);
	t = &c.triggers[0];
	assert_string_equal(t->name, "scan");
	assert_int_equal(t->metric, PC_METRIC_EGRESS_NEW_FLOWS);
	assert_int_equal(t->threshold, 200);
	assert_int_equal(t->intervals, 3);
	assert_int_equal(t->action, PC_MODE_QUARANTINE);
	t = &c.triggers[1];
	assert_string_equal(t->name, "callout");
	assert_int_equal(t->metric, PC_METRIC_EGRESS_DENIED);
	assert_int_equal(t->threshold, 50);
	assert_int_equal(t->intervals, 2);
	assert_int_equal(t->action, PC_MODE_LOCKDOWN);
	t = &c.triggers[2];
	assert_string_equal(t->name, "fanout");
	assert_int_equal(t->metric, PC_METRIC_EGRESS_DESTINATIONS);
	assert_int_equal(t->threshold, 1000);
	assert_int_equal(t->intervals, 1);	/* the default */
	assert_int_equal(t->action, PC_MODE_LOCKDOWN);
	t = &c.triggers[3];
	assert_string_equal(t->name, "probe");
	assert_int_equal(t->metric, PC_METRIC_INGRESS_DEFAULT_DENIED);
	assert_true(t->threshold == UINT64_MAX);
	assert_int_equal(t->intervals, 1000);
	assert_int_equal(t->action, PC_MODE_QUARANTINE);
	pc_config_free(&c);
	assert_zeroed(&c);
}

/* The documented example in deploy/ must stay loadable. */
static void test_deploy_example(void **state)
{
	char path[PATH_MAX], err[ERRLEN];
	struct pc_config c;

	snprintf(path, sizeof(path), "%s/../../deploy/agent.yaml", configs_dir);
	if (pc_config_load_file(path, &c, err, sizeof(err)))
		fail_msg("deploy/agent.yaml refused: %s", err);
	/* No controller until one is configured: nothing expects heartbeats,
	 * so nothing locks the host down for want of them (issue 13). */
	assert_false(c.controller);
	assert_false(c.fleet);
	assert_int_equal(c.nkeys, 0);
	assert_int_equal(pc_config_deadman_unfed(&c, err, sizeof(err)), 0);
	assert_string_equal(c.policy_path, "/etc/portcullis/policy.yaml");
	/* Only a trigger no outsider can drive by sending packets. */
	assert_int_equal(c.ntriggers, 1);
	assert_int_equal(c.triggers[0].metric, PC_METRIC_EGRESS_DENIED);
	pc_config_free(&c);
}

/* The key deploy/ shipped before issue 13: valid, its secret never kept. */
#define PLACEHOLDER "0+IRh9a2jg9ZYrFY5cXeDtsG5u4dvOfvo/L0CdSeuA4="

/* Heartbeats only a placeholder could sign: said; any real key: silent. */
static void test_deadman_unfed(void **state)
{
	char msg[512] = "";
	struct pc_config c;

	load_ok("policy: p.yaml\ncontroller:\n  keys: [" PLACEHOLDER "]\n", &c);
	assert_int_equal(pc_config_deadman_unfed(&c, msg, sizeof(msg)), 1);
	assert_non_null(strstr(msg, "dead-man switch with no controller to feed it"));
	assert_non_null(strstr(msg, "lockdown 5000 ms after start and stays there"));
	pc_config_free(&c);
	load_ok("policy: p.yaml\ncontroller:\n  keys: [" PLACEHOLDER ", " K1 "]\n", &c);
	assert_int_equal(pc_config_deadman_unfed(&c, msg, sizeof(msg)), 0);
	pc_config_free(&c);
	load_ok(CTL, &c);
	assert_int_equal(pc_config_deadman_unfed(&c, msg, sizeof(msg)), 0);
	pc_config_free(&c);
	load_ok("policy: p.yaml\n", &c);
	assert_int_equal(pc_config_deadman_unfed(&c, msg, sizeof(msg)), 0);
	pc_config_free(&c);
}

static void test_defaults(void **state)
{
	char host[PC_HOST_ID_LEN + 1] = "";
	struct pc_config c;

	load_ok("policy: p.yaml\n", &c);
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	assert_string_equal(c.host_id, host);
	/* No directory in the name: the path stays as written. */
	assert_string_equal(c.policy_path, "p.yaml");
	assert_null(c.ifaces);
	assert_int_equal(c.nifaces, 0);
	assert_string_equal(c.pin_dir, PC_DEFAULT_PIN_DIR);
	assert_string_equal(c.state_dir, "/var/lib/portcullis");
	assert_string_equal(c.audit_log, "/var/log/portcullis/audit.jsonl");
	assert_string_equal(c.control_socket, "/run/portcullis/control.sock");
	assert_int_equal(c.xdp_mode, PC_XDP_AUTO);
	assert_false(c.controller);
	assert_string_equal(c.listen_addr, "::");
	assert_int_equal(c.listen_port, 7800);
	assert_int_equal(c.nkeys, 0);
	assert_int_equal(c.max_skew_ms, 30000);
	assert_int_equal(c.hb_timeout_ms, 5000);
	assert_int_equal(c.hb_action, PC_MODE_LOCKDOWN);
	assert_true(c.kernel_deadman);
	assert_int_equal(c.hb_release_after, 0);
	assert_int_equal(c.backoff_ms, 30000);
	assert_int_equal(c.anomaly_interval_ms, 1000);
	assert_int_equal(c.ntriggers, 0);
	assert_string_equal(c.metrics_listen, "127.0.0.1:9712");
	pc_config_free(&c);

	/* A controller alone: its own defaults, and heartbeat's. */
	load_ok(CTL, &c);
	assert_true(c.controller);
	assert_int_equal(c.nkeys, 1);
	assert_string_equal(c.listen_addr, "::");
	assert_int_equal(c.listen_port, 7800);
	assert_int_equal(c.hb_timeout_ms, 5000);
	assert_true(c.kernel_deadman);
	pc_config_free(&c);

	/* An empty heartbeat section and an empty trigger list are fine. */
	load_ok(CTL "heartbeat: {}\nanomaly: {triggers: []}\n", &c);
	assert_int_equal(c.ntriggers, 0);
	pc_config_free(&c);

	/* The smallest file on disk. */
	{
		char path[PATH_MAX], err[ERRLEN];

		snprintf(path, sizeof(path), "%s/minimal.yaml", configs_dir);
		if (pc_config_load_file(path, &c, err, sizeof(err)))
			fail_msg("minimal.yaml refused: %s", err);
		assert_string_equal(c.policy_path, "/etc/portcullis/policy.yaml");
		pc_config_free(&c);
	}
}

static void test_values(void **state)
{
	static const struct {
		const char *text;
		__u64 ms;
	} durations[] = {
		{ "100ms", 100 }, { "1s", 1000 }, { "2m", 120000 },
		{ "1h", 3600000 }, { "3600s", 3600000 }, { "60m", 3600000 },
	};
	char text[256];
	struct pc_config c;
	size_t i;

	for (i = 0; i < sizeof(durations) / sizeof(durations[0]); i++) {
		snprintf(text, sizeof(text), CTL "heartbeat: {timeout: %s}\n",
			 durations[i].text);
		load_ok(text, &c);
		assert_int_equal(c.hb_timeout_ms, durations[i].ms);
		pc_config_free(&c);
	}
	/* backoff may be zero (retry at once) and reaches a day. */
	load_ok(CTL "heartbeat: {backoff: 0s}\n", &c);
	assert_int_equal(c.backoff_ms, 0);
	pc_config_free(&c);
	load_ok(CTL "heartbeat: {backoff: 24h}\n", &c);
	assert_int_equal(c.backoff_ms, 24ULL * 3600 * 1000);
	pc_config_free(&c);
	load_ok(CTL "heartbeat: {kernel_deadman: yes, release_after: 4294967295}\n",
		&c);
	assert_true(c.kernel_deadman);
	assert_int_equal(c.hb_release_after, 4294967295U);
	pc_config_free(&c);

	/* Listen forms. */
	load_ok("policy: p\ncontroller: {listen: 7801, keys: [" K1 "]}\n", &c);
	assert_string_equal(c.listen_addr, "::");
	assert_int_equal(c.listen_port, 7801);
	pc_config_free(&c);
	load_ok("policy: p\ncontroller: {listen: '192.0.2.1:80', keys: [" K1 "]}\n",
		&c);
	assert_string_equal(c.listen_addr, "192.0.2.1");
	assert_int_equal(c.listen_port, 80);
	pc_config_free(&c);
	load_ok("policy: p\ncontroller: {listen: '[::1]:65535', keys: [" K1 "]}\n",
		&c);
	assert_string_equal(c.listen_addr, "::1");
	assert_int_equal(c.listen_port, 65535);
	pc_config_free(&c);

	/* key_files alone, and keys from both add up to the limit. */
	load_ok("policy: p\ncontroller: {key_files: [controller.pub, second.pub]}\n",
		&c);
	assert_int_equal(c.nkeys, 2);
	assert_key(c.keys[0], K3);
	assert_key(c.keys[1], K4);
	pc_config_free(&c);
	load_ok("policy: p\ncontroller:\n  keys: [" K1 ", " K2 ", " K5 ", " K6
		", " K7 ", " K8 "]\n  key_files: [controller.pub, second.pub]\n",
		&c);
	assert_int_equal(c.nkeys, PC_MAX_KEYS);
	pc_config_free(&c);

	/* Metrics: stored in the form the server takes; off is empty. */
	load_ok("policy: p\nmetrics: {listen: '0.0.0.0:9100'}\n", &c);
	assert_string_equal(c.metrics_listen, "0.0.0.0:9100");
	pc_config_free(&c);
	load_ok("policy: p\nmetrics: {listen: '[::1]:65535'}\n", &c);
	assert_string_equal(c.metrics_listen, "[::1]:65535");
	pc_config_free(&c);
	load_ok("policy: p\nmetrics: {listen: off}\n", &c);
	assert_string_equal(c.metrics_listen, "");
	pc_config_free(&c);
	load_ok("policy: p\nmetrics: {}\n", &c);
	assert_string_equal(c.metrics_listen, "127.0.0.1:9712");
	pc_config_free(&c);

	load_ok("policy: p\nxdp_mode: generic\n", &c);
	assert_int_equal(c.xdp_mode, PC_XDP_GENERIC);
	pc_config_free(&c);
}

/* Relative paths follow the directory part of the name, if any. */
static void test_relative_paths(void **state)
{
	const char *text = "policy: p.yaml\npin_dir: /abs\nstate_dir: s\n";
	char err[ERRLEN];
	struct pc_config c;

	if (pc_config_load_string(text, strlen(text), "/etc/portcullis/agent.yaml",
				  &c, err, sizeof(err)))
		fail_msg("refused: %s", err);
	assert_string_equal(c.policy_path, "/etc/portcullis/p.yaml");
	assert_string_equal(c.pin_dir, "/abs");
	assert_string_equal(c.state_dir, "/etc/portcullis/s");
	pc_config_free(&c);
}

/* controller.interfaces: unset is any interface; names are kept in order;
 * with the agent's own 'interfaces' they must be among them. */
static void test_ctl_interfaces(void **state)
{
	struct pc_config c;

	load_ok(CTL, &c);
	assert_int_equal(c.nctl_ifaces, 0);
	pc_config_free(&c);
	load_ok(CTL "  interfaces: [eth1, mgmt0]\n", &c);
	assert_int_equal(c.nctl_ifaces, 2);
	assert_string_equal(c.ctl_ifaces[0], "eth1");
	assert_string_equal(c.ctl_ifaces[1], "mgmt0");
	pc_config_free(&c);
	load_ok("policy: p\ninterfaces: [eth0, eth1]\n"
		"controller: {keys: [" K1 "], interfaces: [eth1]}\n", &c);
	assert_int_equal(c.nctl_ifaces, 1);
	assert_string_equal(c.ctl_ifaces[0], "eth1");
	pc_config_free(&c);
	load_ok(CTL "  interfaces: [a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, "
		"b0, b1, b2, b3, b4, b5]\n", &c);
	assert_int_equal(c.nctl_ifaces, 16);
	pc_config_free(&c);
}

static void test_free_zeroed(void **state)
{
	struct pc_config c;

	memset(&c, 0, sizeof(c));
	pc_config_free(&c);
	pc_config_free(&c);
	pc_config_free(NULL);
	load_ok("policy: p\ninterfaces: [eth0]\n", &c);
	pc_config_free(&c);
	assert_zeroed(&c);
	pc_config_free(&c);
}

static void test_metric_names(void **state)
{
	assert_string_equal(pc_metric_name(PC_METRIC_EGRESS_NEW_FLOWS),
			    "egress_new_flows");
	assert_string_equal(pc_metric_name(PC_METRIC_EGRESS_DESTINATIONS),
			    "egress_destinations");
	assert_string_equal(pc_metric_name(PC_METRIC_EGRESS_DENIED),
			    "egress_denied");
	assert_string_equal(pc_metric_name(PC_METRIC_INGRESS_DEFAULT_DENIED),
			    "ingress_default_denied");
	assert_string_equal(pc_metric_name(PC_METRIC_COUNT), "unknown");
	assert_string_equal(pc_metric_name(-1), "unknown");
}

static void test_missing_file(void **state)
{
	char err[ERRLEN], want[ERRLEN];
	struct pc_config c;

	memset(&c, 0xa5, sizeof(c));
	assert_int_equal(pc_config_load_file("/nonexistent/agent.yaml", &c, err,
					     sizeof(err)), -ENOENT);
	snprintf(want, sizeof(want), "/nonexistent/agent.yaml: %s",
		 strerror(ENOENT));
	assert_string_equal(err, want);
	assert_zeroed(&c);
}

/* A refused config leaves nothing behind, whatever was parsed before. */
static void test_error_frees(void **state)
{
	char err[ERRLEN];
	struct pc_config c;

	assert_int_equal(load("policy: p\ninterfaces: [eth0, eth1]\n"
			      "state_dir: /x\nxdp_mode: turbo\n", &c, err),
			 -EINVAL);
	assert_prefix(err, NAME ":4:11: ");
	assert_zeroed(&c);
}

/* The message must be one line even when the value held a newline. */
static void test_one_line_errors(void **state)
{
	char err[ERRLEN];
	struct pc_config c;

	assert_int_equal(load("policy: p\nhost_id: \"a\\nb\"\n", &c, err),
			 -EINVAL);
	assert_null(strchr(err, '\n'));
	assert_has(err, "bad host_id 'a?b'");
}

/* ---- malformed configs ---- */

#define NINE_KEYS	"[" K1 ", " K2 ", " K3 ", " K4 ", " K5 ", " K6 ", " \
			K7 ", " K8 ", " K9 "]"
#define SEVENTEEN_IFACES	"[a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, " \
				"b0, b1, b2, b3, b4, b5, b6]"
#define T(n)	"    - {name: t" #n ", metric: egress_denied, threshold: 1, action: lockdown}\n"

static const struct bad_case bad_cases[] = {
	/* YAML and document shape */
	{ "syntax error", "policy: [\n", NAME ":2:1:", "YAML syntax error" },
	{ "empty config", "", NAME ":1:1:", "empty config" },
	{ "top level not a mapping", "- policy\n", NAME ":1:1:",
	  "top level must be a mapping" },
	{ "second document", "policy: p\n---\npolicy: q\n", NAME ":3:1:",
	  "one YAML document" },
	{ "key not a word", "policy: p\n[a]: b\n", NAME ":2:1:",
	  "a key must be a word" },
	/* unknown and duplicate keys */
	{ "unknown top-level key", "policy: p\npolicyy: q\n", NAME ":2:1:",
	  "unknown key 'policyy'" },
	{ "unknown controller key", CTL "  keyz: []\n", NAME ":4:3:",
	  "unknown key 'keyz'" },
	{ "unknown heartbeat key", CTL "heartbeat:\n  timeout: 1s\n  tmeout: 2s\n",
	  NAME ":6:3:", "unknown key 'tmeout'" },
	{ "unknown anomaly key", "policy: p\nanomaly: {interval: 1s, trigger: []}\n",
	  NAME ":2:25:", "unknown key 'trigger'" },
	{ "unknown trigger key",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 1, action: lockdown, interval: 2}\n",
	  NAME ":4:72:", "unknown key 'interval'" },
	{ "duplicate top-level key", "policy: p\npolicy: q\n", NAME ":2:1:",
	  "duplicate key 'policy' (first at line 1)" },
	{ "duplicate heartbeat key", CTL "heartbeat:\n  timeout: 1s\n  timeout: 2s\n",
	  NAME ":6:3:", "duplicate key 'timeout' (first at line 5)" },
	{ "duplicate trigger key",
	  TRIG "    - {name: a, name: b, metric: egress_denied, threshold: 1, action: lockdown}\n",
	  NAME ":4:17:", "duplicate key 'name'" },
	/* required things */
	{ "missing policy", "host_id: a\nxdp_mode: auto\n", NAME ":1:1:",
	  "missing 'policy'" },
	{ "empty policy path", "policy: ''\n", NAME ":1:9:", "empty 'policy' path" },
	{ "policy not a value", "policy: [a]\n", NAME ":1:9:",
	  "'policy' must be a single value, not a list" },
	{ "NUL in a path", "policy: \"a\\0b\"\n", NAME ":1:9:", "NUL byte" },
	/* host_id */
	{ "bad host_id", "policy: p\nhost_id: 'node 1'\n", NAME ":2:10:",
	  "bad host_id 'node 1'" },
	{ "host_id too long", "policy: p\nhost_id: "
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  NAME ":2:10:", "bad host_id" },
	{ "empty host_id", "policy: p\nhost_id: ''\n", NAME ":2:10:",
	  "bad host_id" },
	/* interfaces */
	{ "interfaces not a list", "policy: p\ninterfaces: eth0\n", NAME ":2:13:",
	  "'interfaces' must be a list, not a single value" },
	{ "empty interfaces", "policy: p\ninterfaces: []\n", NAME ":2:13:",
	  "empty 'interfaces' list" },
	{ "bad interface name", "policy: p\ninterfaces: [eth0, 'eth 1']\n",
	  NAME ":2:20:", "bad interface name 'eth 1'" },
	{ "interface name too long",
	  "policy: p\ninterfaces: [abcdefghijklmnop]\n", NAME ":2:14:",
	  "bad interface name" },
	{ "interface twice", "policy: p\ninterfaces: [eth0, eth0]\n",
	  NAME ":2:20:", "interface 'eth0' listed twice" },
	{ "too many interfaces", "policy: p\ninterfaces: " SEVENTEEN_IFACES "\n",
	  NAME ":2:78:", "too many interfaces: the limit is 16" },
	/* controller.interfaces */
	{ "controller interface not attached", "policy: p\ninterfaces: [eth0, eth1]\n"
	  "controller:\n  keys: [" K1 "]\n  interfaces: [eth1, eth2]\n", NAME ":5:22:",
	  "controller interface 'eth2' is not one of the agent's 'interfaces'" },
	{ "too many controller interfaces", CTL "  interfaces: " SEVENTEEN_IFACES "\n",
	  NAME ":4:80:", "too many controller interfaces: the limit is 16" },
	{ "empty controller interfaces", CTL "  interfaces: []\n", NAME ":4:15:",
	  "empty controller 'interfaces' list" },
	{ "controller interface twice", CTL "  interfaces: [eth0, eth0]\n",
	  NAME ":4:22:", "interface 'eth0' listed twice" },
	{ "bad controller interface name", CTL "  interfaces: ['eth 0']\n",
	  NAME ":4:16:", "bad interface name 'eth 0'" },
	{ "controller interfaces not a list", CTL "  interfaces: eth0\n",
	  NAME ":4:15:", "'controller.interfaces' must be a list" },
	/* words */
	{ "bad xdp_mode", "policy: p\nxdp_mode: turbo\n", NAME ":2:11:",
	  "bad xdp_mode 'turbo' (want auto, native or generic)" },
	{ "control_socket too long", "policy: p\ncontrol_socket: /"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
	  NAME ":2:17:", "too long for a socket" },
	/* controller */
	{ "controller not a mapping", "policy: p\ncontroller: 5\n", NAME ":2:13:",
	  "'controller' must be a mapping, not a single value" },
	{ "controller empty", "policy: p\ncontroller:\n", NAME ":2:12:",
	  "'controller' must be a mapping, not nothing" },
	{ "controller without keys", "policy: p\ncontroller:\n  listen: 7800\n",
	  NAME ":2:1:", "a controller needs at least one key" },
	{ "controller with an empty key list",
	  "policy: p\ncontroller: {keys: [], key_files: []}\n", NAME ":2:1:",
	  "a controller needs at least one key" },
	{ "keys not a list", "policy: p\ncontroller: {keys: " K1 "}\n",
	  NAME ":2:20:", "'keys' must be a list" },
	{ "bad key base64", "policy: p\ncontroller:\n  keys: [" K1 ", not-base64!]\n",
	  NAME ":3:56:", "bad controller key 'not-base64!'" },
	{ "key too short", "policy: p\ncontroller:\n  keys: [AAAAAAAAAAAAAAAAAAAAAA==]\n",
	  NAME ":3:10:", "bad controller key" },
	{ "key twice", "policy: p\ncontroller:\n  keys: [" K1 ", " K1 "]\n",
	  NAME ":3:56:", "controller key listed twice" },
	{ "key in keys and key_files",
	  "policy: p\ncontroller:\n  keys: [" K3 "]\n  key_files: [controller.pub]\n",
	  NAME ":4:15:", "listed twice" },
	{ "too many keys", "policy: p\ncontroller:\n  keys: " NINE_KEYS "\n",
	  NAME ":3:378:", "too many controller keys: the limit is 8" },
	{ "too many keys with key_files",
	  "policy: p\ncontroller:\n  keys: [" K1 ", " K2 ", " K5 ", " K6 ", " K7
	  ", " K8 ", " K9 "]\n  key_files: [controller.pub, second.pub]\n",
	  NAME ":4:31:", "too many controller keys" },
	{ "key_files missing", "policy: p\ncontroller:\n  key_files: [nope.pub]\n",
	  NAME ":3:15:", "cannot read key file nope.pub: No such file or directory" },
	{ "key_files bad", "policy: p\ncontroller:\n  key_files: [bad.pub]\n",
	  NAME ":3:15:", "key file bad.pub does not hold one public key" },
	{ "key_files two lines",
	  "policy: p\ncontroller:\n  key_files: [two-lines.pub]\n", NAME ":3:15:",
	  "does not hold one public key" },
	{ "key_files is a directory", "policy: p\ncontroller:\n  key_files: [.]\n",
	  NAME ":3:15:", "key file . is not a regular file" },
	{ "bad listen host name", "policy: p\ncontroller: {listen: 'localhost:7800', keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen address 'localhost:7800'" },
	{ "bad listen word", "policy: p\ncontroller: {listen: any, keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen address 'any'" },
	{ "listen IPv6 without brackets",
	  "policy: p\ncontroller: {listen: '::1:7800', keys: [" K1 "]}\n",
	  NAME ":2:22:", "in brackets" },
	{ "listen IPv4 in brackets",
	  "policy: p\ncontroller: {listen: '[192.0.2.1]:7800', keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen address" },
	{ "listen without port", "policy: p\ncontroller: {listen: '192.0.2.1:', keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen port" },
	{ "listen port zero", "policy: p\ncontroller: {listen: '[::]:0', keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen port in '[::]:0' (want 1-65535)" },
	{ "listen port too big", "policy: p\ncontroller: {listen: 70000, keys: [" K1 "]}\n",
	  NAME ":2:22:", "bad listen port" },
	{ "max_skew too small", CTL "  max_skew: 500ms\n", NAME ":4:13:",
	  "'max_skew' 500ms is out of range (1s..1h)" },
	/* metrics */
	{ "metrics not a mapping", "policy: p\nmetrics: on\n", NAME ":2:10:",
	  "'metrics' must be a mapping" },
	{ "metrics unknown key", "policy: p\nmetrics: {port: 9712}\n",
	  NAME ":2:11:", "unknown key 'port'" },
	{ "metrics listen bare port", "policy: p\nmetrics: {listen: 9712}\n",
	  NAME ":2:19:", "bad listen address '9712' (want ADDR:PORT" },
	{ "metrics listen host name",
	  "policy: p\nmetrics: {listen: 'localhost:9712'}\n", NAME ":2:19:",
	  "bad listen address 'localhost:9712'" },
	{ "metrics listen IPv6 without brackets",
	  "policy: p\nmetrics: {listen: '::1:9712'}\n", NAME ":2:19:",
	  "in brackets" },
	{ "metrics listen port zero",
	  "policy: p\nmetrics: {listen: '127.0.0.1:0'}\n", NAME ":2:19:",
	  "bad listen port in '127.0.0.1:0' (want 1-65535)" },
	/* heartbeat */
	{ "heartbeat without controller", "policy: p\nheartbeat:\n  timeout: 5s\n",
	  NAME ":2:1:", "'heartbeat' needs a 'controller'" },
	{ "bad duration", CTL "heartbeat: {timeout: 5x}\n", NAME ":4:22:",
	  "bad duration '5x' for 'timeout'" },
	{ "negative duration", CTL "heartbeat: {timeout: -5s}\n", NAME ":4:22:",
	  "bad duration" },
	{ "duration with a space", CTL "heartbeat: {timeout: 5 s}\n", NAME ":4:22:",
	  "bad duration" },
	{ "duration without unit", CTL "heartbeat: {timeout: 5}\n", NAME ":4:22:",
	  "duration needs a unit: ms, s, m or h" },
	{ "zero without unit", CTL "heartbeat: {backoff: 0}\n", NAME ":4:22:",
	  "duration needs a unit" },
	{ "timeout too short", CTL "heartbeat: {timeout: 99ms}\n", NAME ":4:22:",
	  "'timeout' 99ms is out of range (100ms..1h)" },
	{ "timeout too long", CTL "heartbeat: {timeout: 61m}\n", NAME ":4:22:",
	  "out of range (100ms..1h)" },
	{ "duration overflow", CTL "heartbeat: {timeout: 99999999999999999999999h}\n",
	  NAME ":4:22:", "out of range" },
	{ "backoff too long", CTL "heartbeat: {backoff: 25h}\n", NAME ":4:22:",
	  "'backoff' 25h is out of range (0s..24h)" },
	{ "heartbeat action normal", CTL "heartbeat: {action: normal}\n",
	  NAME ":4:21:", "bad action 'normal' (want lockdown or quarantine)" },
	{ "bad kernel_deadman", CTL "heartbeat: {kernel_deadman: maybe}\n",
	  NAME ":4:29:", "'kernel_deadman' must be true or false" },
	{ "negative release_after", CTL "heartbeat: {release_after: -1}\n",
	  NAME ":4:28:", "'release_after' must be a whole number" },
	{ "release_after too big", CTL "heartbeat: {release_after: 4294967296}\n",
	  NAME ":4:28:", "out of range" },
	{ "heartbeat a list", CTL "heartbeat: [timeout]\n", NAME ":4:12:",
	  "'heartbeat' must be a mapping, not a list" },
	/* anomaly */
	{ "interval too short", "policy: p\nanomaly: {interval: 50ms}\n",
	  NAME ":2:21:", "'interval' 50ms is out of range (100ms..1h)" },
	{ "interval without unit", "policy: p\nanomaly: {interval: 1}\n",
	  NAME ":2:21:", "duration needs a unit" },
	{ "triggers not a list", "policy: p\nanomaly: {triggers: {name: a}}\n",
	  NAME ":2:21:", "'triggers' must be a list, not a mapping" },
	{ "trigger not a mapping", TRIG "    - scan\n", NAME ":4:7:",
	  "each trigger must be a mapping" },
	{ "trigger without name",
	  TRIG "    - {metric: egress_denied, threshold: 1, action: lockdown}\n",
	  NAME ":4:7:", "trigger has no 'name'" },
	{ "trigger without action",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 1}\n",
	  NAME ":4:7:", "trigger has no 'action'" },
	{ "bad trigger name",
	  TRIG "    - {name: 'a b', metric: egress_denied, threshold: 1, action: lockdown}\n",
	  NAME ":4:14:", "bad trigger name 'a b'" },
	{ "bad metric",
	  TRIG "    - {name: a, metric: egress_flows, threshold: 1, action: lockdown}\n",
	  NAME ":4:25:", "bad metric 'egress_flows'" },
	{ "bad trigger action",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 1, action: drop}\n",
	  NAME ":4:62:", "bad action 'drop' (want lockdown or quarantine)" },
	{ "threshold zero",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 0, action: lockdown}\n",
	  NAME ":4:51:", "'threshold' 0 is out of range" },
	{ "threshold not a number",
	  TRIG "    - {name: a, metric: egress_denied, threshold: lots, action: lockdown}\n",
	  NAME ":4:51:", "'threshold' must be a whole number" },
	{ "threshold overflow",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 18446744073709551616, action: lockdown}\n",
	  NAME ":4:51:", "out of range" },
	{ "intervals zero",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 1, intervals: 0, action: lockdown}\n",
	  NAME ":4:65:", "'intervals' 0 is out of range (1..1000)" },
	{ "intervals too many",
	  TRIG "    - {name: a, metric: egress_denied, threshold: 1, intervals: 1001, action: lockdown}\n",
	  NAME ":4:65:", "out of range (1..1000)" },
	{ "duplicate trigger name", TRIG T(1) T(1), NAME ":5:14:",
	  "duplicate trigger name 't1'" },
	{ "too many triggers",
	  TRIG T(1) T(2) T(3) T(4) T(5) T(6) T(7) T(8) T(9) T(10) T(11) T(12)
	  T(13) T(14) T(15) T(16) T(17), NAME ":20:7:",
	  "too many triggers: the limit is 16" },
};

int main(void)
{
	const struct CMUnitTest parser[] = {
		cmocka_unit_test(test_full_example),
		cmocka_unit_test(test_deploy_example),
		cmocka_unit_test(test_deadman_unfed),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_ctl_interfaces),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_relative_paths),
		cmocka_unit_test(test_free_zeroed),
		cmocka_unit_test(test_metric_names),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_error_frees),
		cmocka_unit_test(test_one_line_errors),
	};
	int failed = 0;

	if (find_configs_dir())
		return 1;
	failed += cmocka_run_group_tests_name("config parser", parser, NULL,
					      NULL);
	failed += run_bad_cases("malformed configs", bad_cases,
				 sizeof(bad_cases) / sizeof(bad_cases[0]));
	return failed ? 1 : 0;
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the 'fleet:' section of the agent config (user/config.c):
 * what a valid one sets, its defaults, and a line, a column and a useful
 * word for every way it can be wrong. Like test_config.c, the tests chdir
 * to tests/configs so relative key_files resolve to the sample keys.
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

/* 57 and 58 characters: the longest fleet name and one more. */
#define NAME57	"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234"
#define NAME58	NAME57 "5"

/* The shortest fleet config: the fleet key is on line 3, endpoints on 4,
 * keys on 5; further fleet keys are appended from line 6. */
#define HEAD	"policy: p\nhost_id: h\nfleet:\n"
#define EP	"  endpoints: [http://e:2379]\n"
#define KEYS	"  keys: [" K1 "]\n"
#define FL	HEAD EP KEYS

#define EIGHT_EPS	"http://e1:1, http://e2:1, http://e3:1, http://e4:1, " \
			"http://e5:1, http://e6:1, http://e7:1, http://e8:1"
#define EIGHT_GROUPS	"g1, g2, g3, g4, g5, g6, g7, g8"

/* ---- valid configs ---- */

static void test_full(void **state)
{
	struct pc_config c;

	load_ok("policy: p.yaml\n"
		"host_id: web-1.eu:a_b\n"
		"fleet:\n"
		"  endpoints:\n"
		"    - http://10.0.0.1:2379\n"
		"    - https://etcd-2.example:2379\n"
		"    - http://[2001:db8::1]:2379\n"
		"  prefix: /pc/prod\n"
		"  groups: [web, eu-west.1, 'db:primary']\n"
		"  keys: [" K1 ", " K2 "]\n"
		"  key_files: [controller.pub]\n"
		"  report_interval: 30s\n"
		"  request_timeout: 500ms\n"
		"  max_skew: 250ms\n"
		"heartbeat:\n"
		"  timeout: 3s\n"
		"  action: quarantine\n", &c);

	assert_true(c.fleet);
	assert_false(c.controller);
	assert_string_equal(c.host_id, "web-1.eu:a_b");
	assert_int_equal(c.nendpoints, 3);
	assert_string_equal(c.fleet_endpoints[0], "http://10.0.0.1:2379");
	assert_string_equal(c.fleet_endpoints[1], "https://etcd-2.example:2379");
	assert_string_equal(c.fleet_endpoints[2], "http://[2001:db8::1]:2379");
	assert_string_equal(c.fleet_prefix, "/pc/prod");
	assert_int_equal(c.ngroups, 3);
	assert_string_equal(c.fleet_groups[0], "web");
	assert_string_equal(c.fleet_groups[1], "eu-west.1");
	assert_string_equal(c.fleet_groups[2], "db:primary");
	/* keys first, then key_files, in order. */
	assert_int_equal(c.nkeys, 3);
	assert_key(c.keys[0], K1);
	assert_key(c.keys[1], K2);
	assert_key(c.keys[2], K3);
	assert_int_equal(c.fleet_report_ms, 30000);
	assert_int_equal(c.fleet_request_ms, 500);
	assert_int_equal(c.fleet_skew_ms, 250);
	/* heartbeat: with a fleet and no controller. */
	assert_int_equal(c.hb_timeout_ms, 3000);
	assert_int_equal(c.hb_action, PC_MODE_QUARANTINE);
	pc_config_free(&c);
}

static void test_defaults(void **state)
{
	struct pc_config c;

	load_ok(FL, &c);
	assert_true(c.fleet);
	assert_false(c.controller);
	assert_string_equal(c.fleet_prefix, PC_FLEET_DEFAULT_PREFIX);
	assert_string_equal(c.fleet_prefix, "/portcullis");
	assert_int_equal(c.fleet_report_ms, 10000);
	assert_int_equal(c.fleet_request_ms, 2000);
	assert_int_equal(c.ngroups, 0);
	assert_int_equal(c.nendpoints, 1);
	assert_string_equal(c.fleet_endpoints[0], "http://e:2379");
	assert_int_equal(c.nkeys, 1);
	pc_config_free(&c);

	/* No fleet section: no fleet, whatever the defaults hold. */
	load_ok("policy: p\nhost_id: h\n", &c);
	assert_false(c.fleet);
	assert_int_equal(c.nendpoints, 0);
	assert_int_equal(c.nkeys, 0);
	pc_config_free(&c);
}

/* Heartbeats come from the fleet's lease: no controller section needed. */
static void test_heartbeat_with_fleet(void **state)
{
	struct pc_config c;

	load_ok(FL "heartbeat:\n  timeout: 2s\n  action: lockdown\n"
		"  kernel_deadman: false\n  release_after: 3\n  backoff: 1s\n", &c);
	assert_true(c.fleet);
	assert_false(c.controller);
	assert_int_equal(c.hb_timeout_ms, 2000);
	assert_int_equal(c.hb_action, PC_MODE_LOCKDOWN);
	assert_false(c.kernel_deadman);
	assert_int_equal(c.hb_release_after, 3);
	assert_int_equal(c.backoff_ms, 1000);
	pc_config_free(&c);

	/* Heartbeat before fleet in the file: order does not matter. */
	load_ok("policy: p\nhost_id: h\nheartbeat: {timeout: 4s}\nfleet:\n" EP KEYS,
		&c);
	assert_true(c.fleet);
	assert_int_equal(c.hb_timeout_ms, 4000);
	pc_config_free(&c);
}

/* Both sections: their (different) keys end up in the one trusted list. */
static void test_with_controller(void **state)
{
	struct pc_config c;

	load_ok("policy: p\nhost_id: h\ncontroller:\n  keys: [" K1 "]\n"
		"fleet:\n" EP "  key_files: [controller.pub]\n", &c);
	assert_true(c.controller);
	assert_true(c.fleet);
	assert_int_equal(c.nkeys, 2);
	assert_key(c.keys[0], K1);
	assert_key(c.keys[1], K3);
	pc_config_free(&c);
}

static void test_limits_accepted(void **state)
{
	char text[1024], prefix[PC_FLEET_PREFIX_MAX + 1];
	struct pc_config c;

	/* Eight endpoints and eight groups: the limits, not past them. */
	load_ok(HEAD "  endpoints: [" EIGHT_EPS "]\n" KEYS
		"  groups: [" EIGHT_GROUPS "]\n", &c);
	assert_int_equal(c.nendpoints, PC_ETCD_MAX_ENDPOINTS);
	assert_string_equal(c.fleet_endpoints[7], "http://e8:1");
	assert_int_equal(c.ngroups, PC_FLEET_MAX_GROUPS);
	assert_string_equal(c.fleet_groups[7], "g8");
	pc_config_free(&c);

	/* A 57-character host_id and group name fit a signed target. */
	load_ok("policy: p\nhost_id: " NAME57 "\nfleet:\n" EP KEYS
		"  groups: [" NAME57 "]\n", &c);
	assert_string_equal(c.host_id, NAME57);
	assert_string_equal(c.fleet_groups[0], NAME57);
	pc_config_free(&c);

	/* The longest prefix. */
	memset(prefix, 'p', sizeof(prefix));
	prefix[0] = '/';
	prefix[PC_FLEET_PREFIX_MAX] = '\0';
	snprintf(text, sizeof(text), FL "  prefix: %s\n", prefix);
	load_ok(text, &c);
	assert_string_equal(c.fleet_prefix, prefix);
	pc_config_free(&c);

	/* The ends of the duration ranges. */
	load_ok(FL "  report_interval: 1s\n  request_timeout: 100ms\n", &c);
	assert_int_equal(c.fleet_report_ms, 1000);
	assert_int_equal(c.fleet_request_ms, 100);
	pc_config_free(&c);
	load_ok(FL "  report_interval: 1h\n  request_timeout: 60m\n", &c);
	assert_int_equal(c.fleet_report_ms, 3600000);
	assert_int_equal(c.fleet_request_ms, 3600000);
	assert_int_equal(c.fleet_skew_ms, 1000);	/* the default */
	pc_config_free(&c);
	load_ok(FL "  max_skew: 0s\n", &c);
	assert_int_equal(c.fleet_skew_ms, 0);
	pc_config_free(&c);
	load_ok(FL "  max_skew: 1m\n", &c);
	assert_int_equal(c.fleet_skew_ms, 60000);
	pc_config_free(&c);

	/* TLS: paths as given (relative: from the config's directory),
	 * every endpoint https. */
	load_ok(HEAD "  endpoints: [https://e:2379]\n" KEYS
		"  tls: {ca: controller.pub, cert: /dev/null, key: second.pub}\n", &c);
	assert_non_null(c.fleet_tls_ca);
	assert_true(strlen(c.fleet_tls_ca) >= strlen("controller.pub"));
	assert_string_equal(c.fleet_tls_ca + strlen(c.fleet_tls_ca) -
			    strlen("controller.pub"), "controller.pub");
	assert_string_equal(c.fleet_tls_cert, "/dev/null");
	assert_non_null(c.fleet_tls_key);
	pc_config_free(&c);
	load_ok(HEAD "  endpoints: [https://e:2379]\n" KEYS "  tls: {ca: /dev/null}\n", &c);
	assert_string_equal(c.fleet_tls_ca, "/dev/null");
	assert_null(c.fleet_tls_cert);
	assert_null(c.fleet_tls_key);
	pc_config_free(&c);
	load_ok(FL, &c);
	assert_null(c.fleet_tls_ca);
	pc_config_free(&c);

	/* An empty group list is no groups. */
	load_ok(FL "  groups: []\n", &c);
	assert_int_equal(c.ngroups, 0);
	pc_config_free(&c);
}

/*
 * Regression: the "odd bytes" check once started at s + 8, right for
 * "https://" but one past the scheme for "http://", so the first byte of
 * an http host was never looked at: "http:///2379" (no host, a path) and
 * "http://@x:2379" (userinfo) were accepted.
 */
static void test_endpoint_first_byte(void **state)
{
	static const char *const bad[] = {
		"http:///2379", "http://@x:2379", "http://?x:2379", "http://#x:2379",
		"http:// x:2379",
	};
	char text[256], err[ERRLEN];
	struct pc_config c;

	/* The https twins are refused: the check is meant to be there. */
	assert_int_equal(load(HEAD "  endpoints: ['https:///2379']\n" KEYS, &c,
			      err), -EINVAL);
	assert_has(err, "bad etcd endpoint");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), HEAD "  endpoints: ['%s']\n" KEYS,
			 bad[i]);
		if (load(text, &c, err) != -EINVAL) {
			pc_config_free(&c);
			fail_msg("endpoint '%s' accepted", bad[i]);
		}
		assert_prefix(err, NAME ":4:15:");
		assert_has(err, "bad etcd endpoint");
	}
}

/*
 * Regression: the message asks for http://HOST:PORT, but the port and
 * control characters went unchecked: "http://etcd" (no port),
 * "http://etcd:" (empty), "http://etcd:abc" and a value ending in a
 * newline were all accepted.
 */
static void test_endpoint_port(void **state)
{
	static const char *const bad[] = {
		"'http://etcd'", "'http://etcd:'", "'http://etcd:abc'",
		"\"http://etcd:2379\\n\"", "\"http://etcd:23\\r79\"",
	};
	char text[256], err[ERRLEN];
	struct pc_config c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(text, sizeof(text), HEAD "  endpoints: [%s]\n" KEYS,
			 bad[i]);
		if (load(text, &c, err) != -EINVAL) {
			pc_config_free(&c);
			fail_msg("endpoint %s accepted", bad[i]);
		}
		assert_has(err, "bad etcd endpoint");
	}
}

/* ---- malformed configs ---- */

static const struct bad_case bad_cases[] = {
	/* the section */
	{ "fleet not a mapping", "policy: p\nhost_id: h\nfleet: 5\n",
	  NAME ":3:8:", "'fleet' must be a mapping, not a single value" },
	{ "fleet empty", "policy: p\nhost_id: h\nfleet:\n", NAME ":3:7:",
	  "'fleet' must be a mapping, not nothing" },
	{ "unknown fleet key", FL "  endpoint: [http://e:2379]\n", NAME ":6:3:",
	  "unknown key 'endpoint'" },
	{ "duplicate fleet key", FL "  prefix: /a\n  prefix: /b\n", NAME ":7:3:",
	  "duplicate key 'prefix' (first at line 6)" },
	{ "two fleet sections", FL "fleet:\n" EP KEYS, NAME ":6:1:",
	  "duplicate key 'fleet' (first at line 3)" },
	/* endpoints */
	{ "no endpoints", HEAD KEYS, NAME ":3:1:", "a fleet needs 'endpoints'" },
	{ "endpoints not a list", HEAD "  endpoints: http://e:2379\n" KEYS,
	  NAME ":4:14:", "'endpoints' must be a list, not a single value" },
	{ "empty endpoints", HEAD "  endpoints: []\n" KEYS, NAME ":4:14:",
	  "empty 'endpoints' list" },
	{ "endpoint without scheme", HEAD "  endpoints: [etcd:2379]\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint 'etcd:2379' (want http://HOST:PORT" },
	{ "endpoint with a path", HEAD "  endpoints: [http://x/path]\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint 'http://x/path'" },
	{ "endpoint with a trailing slash",
	  HEAD "  endpoints: [http://e:2379, 'https://f:2379/']\n" KEYS,
	  NAME ":4:30:", "bad etcd endpoint 'https://f:2379/'" },
	{ "endpoint with a query", HEAD "  endpoints: ['http://x:1?a=b']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint with userinfo", HEAD "  endpoints: ['http://u@x:1']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint with a space", HEAD "  endpoints: ['http://x :1']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint of another scheme", HEAD "  endpoints: ['ftp://x:1']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint in capitals", HEAD "  endpoints: ['HTTP://x:1']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint scheme only", HEAD "  endpoints: ['http://']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint https scheme only", HEAD "  endpoints: ['https://']\n" KEYS,
	  NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint too long", HEAD "  endpoints: [http://"
	  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
	  "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee:2379]\n"
	  KEYS, NAME ":4:15:", "bad etcd endpoint" },
	{ "endpoint not a value", HEAD "  endpoints: [[http://e:2379]]\n" KEYS,
	  NAME ":4:15:", "'endpoints' must be a single value, not a list" },
	{ "NUL in an endpoint", HEAD "  endpoints: [\"http://e:1\\0/x\"]\n" KEYS,
	  NAME ":4:15:", "NUL byte" },
	{ "nine endpoints",
	  HEAD "  endpoints: [" EIGHT_EPS ", http://e9:1]\n" KEYS,
	  NAME ":4:119:", "too many etcd endpoints: the limit is 8" },
	/* prefix */
	{ "prefix with a trailing slash", FL "  prefix: /pc/\n", NAME ":6:11:",
	  "bad fleet prefix '/pc/'" },
	{ "prefix root", FL "  prefix: /\n", NAME ":6:11:", "bad fleet prefix" },
	{ "prefix relative", FL "  prefix: pc\n", NAME ":6:11:",
	  "bad fleet prefix 'pc' (an absolute key path" },
	{ "prefix empty part", FL "  prefix: //pc\n", NAME ":6:11:",
	  "bad fleet prefix" },
	{ "prefix with a space", FL "  prefix: '/a b'\n", NAME ":6:11:",
	  "bad fleet prefix" },
	{ "prefix empty", FL "  prefix: ''\n", NAME ":6:11:", "bad fleet prefix" },
	{ "prefix too long", FL "  prefix: /"
	  "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp"
	  "pppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp\n",
	  NAME ":6:11:", "at most 128 bytes" },
	{ "prefix not a value", FL "  prefix: [/a]\n", NAME ":6:11:",
	  "'prefix' must be a single value, not a list" },
	/* groups */
	{ "groups not a list", FL "  groups: web\n", NAME ":6:11:",
	  "'groups' must be a list, not a single value" },
	{ "bad group name", FL "  groups: [web, 'a b']\n", NAME ":6:17:",
	  "bad group name 'a b'" },
	{ "group with a slash", FL "  groups: [a/b]\n", NAME ":6:12:",
	  "bad group name 'a/b'" },
	{ "empty group name", FL "  groups: ['']\n", NAME ":6:12:",
	  "bad group name" },
	{ "group starting with '-'", FL "  groups: [web, -db]\n", NAME ":6:17:",
	  "bad group name '-db'" },
	{ "group name too long", FL "  groups: [" NAME58 "]\n", NAME ":6:12:",
	  "bad group name" },
	{ "group not a value", FL "  groups: [{a: b}]\n", NAME ":6:12:",
	  "'groups' must be a single value, not a mapping" },
	{ "group twice", FL "  groups: [web, db, web]\n", NAME ":6:21:",
	  "group 'web' listed twice" },
	{ "nine groups", FL "  groups: [" EIGHT_GROUPS ", g9]\n", NAME ":6:44:",
	  "too many groups: the limit is 8" },
	/* keys */
	{ "no keys", HEAD EP, NAME ":3:1:",
	  "a fleet needs at least one controller key" },
	{ "empty key lists", HEAD EP "  keys: []\n  key_files: []\n", NAME ":3:1:",
	  "a fleet needs at least one controller key" },
	{ "bad key", HEAD EP "  keys: [nope]\n", NAME ":5:10:",
	  "bad controller key 'nope'" },
	{ "key twice", HEAD EP "  keys: [" K1 ", " K1 "]\n", NAME ":5:56:",
	  "controller key listed twice" },
	{ "keys not a list", HEAD EP "  keys: " K1 "\n", NAME ":5:9:",
	  "'keys' must be a list" },
	{ "key file missing", HEAD EP "  key_files: [nope.pub]\n", NAME ":5:15:",
	  "cannot read key file nope.pub" },
	{ "key file not a key", HEAD EP "  key_files: [bad.pub]\n", NAME ":5:15:",
	  "does not hold one public key" },
	/* durations */
	{ "report interval too short", FL "  report_interval: 999ms\n",
	  NAME ":6:20:", "'report_interval' 999ms is out of range (1s..1h)" },
	{ "report interval too long", FL "  report_interval: 61m\n",
	  NAME ":6:20:", "out of range (1s..1h)" },
	{ "report interval zero", FL "  report_interval: 0s\n", NAME ":6:20:",
	  "out of range" },
	{ "report interval without unit", FL "  report_interval: 10\n",
	  NAME ":6:20:", "duration needs a unit" },
	{ "report interval junk", FL "  report_interval: soon\n", NAME ":6:20:",
	  "bad duration 'soon'" },
	{ "request timeout too short", FL "  request_timeout: 99ms\n",
	  NAME ":6:20:", "'request_timeout' 99ms is out of range (100ms..1h)" },
	{ "request timeout too long", FL "  request_timeout: 2h\n", NAME ":6:20:",
	  "out of range" },
	{ "heartbeat skew too long", FL "  max_skew: 61s\n", NAME ":6:13:",
	  "'max_skew' 61s is out of range (0s..1m)" },
	{ "tls without ca", HEAD "  endpoints: [https://e:1]\n" KEYS
	  "  tls: {cert: /dev/null, key: /dev/null}\n", NAME ":6:3:", "'tls' needs 'ca'" },
	{ "tls cert without key", HEAD "  endpoints: [https://e:1]\n" KEYS
	  "  tls: {ca: /dev/null, cert: /dev/null}\n", NAME ":6:3:",
	  "'cert' and 'key' together" },
	{ "tls with an http endpoint", HEAD "  endpoints: [https://e:1, http://f:1]\n"
	  KEYS "  tls: {ca: /dev/null}\n", NAME ":6:3:",
	  "every endpoint must be https:// ('http://f:1' is not)" },
	{ "tls ca unreadable", HEAD "  endpoints: [https://e:1]\n" KEYS
	  "  tls: {ca: /nonexistent/ca.pem}\n", NAME ":6:13:", "cannot read '/nonexistent/ca.pem'" },
	{ "tls not a mapping", FL "  tls: [a]\n", NAME ":6:8:", "'tls' must be a mapping" },
	/* host_id */
	{ "host_id too long for a fleet", "policy: p\nhost_id: " NAME58
	  "\nfleet:\n" EP KEYS, NAME ":3:1:", "cannot name a fleet member" },
	{ "host_id starting with '-' in a fleet",
	  "policy: p\nhost_id: -web\nfleet:\n" EP KEYS, NAME ":3:1:",
	  "host_id '-web' cannot name a fleet member" },
	{ "host_id starting with '.' in a fleet",
	  "policy: p\nhost_id: .web\nfleet:\n" EP KEYS, NAME ":3:1:",
	  "cannot name a fleet member" },
	/* heartbeat still needs a source */
	{ "heartbeat without controller or fleet",
	  "policy: p\nhost_id: h\nheartbeat:\n  timeout: 1s\n", NAME ":3:1:",
	  "needs a 'controller' or 'fleet' section" },
	{ "bad heartbeat with a fleet", FL "heartbeat:\n  timeout: 1\n",
	  NAME ":7:12:", "duration needs a unit" },
};

int main(void)
{
	const struct CMUnitTest parser[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_heartbeat_with_fleet),
		cmocka_unit_test(test_with_controller),
		cmocka_unit_test(test_limits_accepted),
		cmocka_unit_test(test_endpoint_first_byte),
		cmocka_unit_test(test_endpoint_port),
	};
	int failed = 0;

	if (find_configs_dir())
		return 1;
	failed += cmocka_run_group_tests_name("fleet config", parser, NULL,
					      NULL);
	failed += run_bad_cases("malformed fleet configs", bad_cases,
				 sizeof(bad_cases) / sizeof(bad_cases[0]));
	return failed ? 1 : 0;
}

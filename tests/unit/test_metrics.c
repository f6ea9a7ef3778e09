// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for the Prometheus exposition and its HTTP server. A private
 * copy of the datapath is loaded (nothing pinned, so a running agent is
 * never touched), a small policy applied and a few frames run through
 * xdp_ingress; then the exposition must show exactly those counts, pass
 * `promtool check metrics`, and come back over HTTP.
 *
 * Needs root (BPF) and promtool (Debian package prometheus).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cmocka.h>
#include "agent_stats.h"
#include "apply.h"
#include "compile.h"
#include "http_budget.h"
#include "metrics.h"
#include "pins.h"
#include "policy.h"
#include "portcullis.skel.h"

#define XDP_DROP_	1
#define XDP_PASS_	2
#define PROMTOOL	"promtool"
#define HOST_ID		"node-1.example"
#define RENDER_RUNS	200
#define FULL_FLOWS	200000	/* flow entries for the timing of a busy host */

/* Management entry 0, "web" 1, "bad" 2. */
static const char policy[] =
	"defaults: {ingress: deny, egress: allow}\n"
	"management:\n"
	"  - {cidr: 192.0.2.10/32, proto: tcp, ports: 22}\n"
	"rules:\n"
	"  - {name: web, action: allow, direction: ingress, proto: tcp, ports: 80}\n"
	"  - {name: bad, action: deny, direction: both, cidr: 203.0.113.0/24}\n";

/* Every family, and its type: each must have HELP and TYPE. */
static const struct {
	const char *name;
	const char *type;
} families[] = {
	{ "rule_packets_total", "counter" },
	{ "rule_bytes_total", "counter" },
	{ "packets_total", "counter" },
	{ "bytes_total", "counter" },
	{ "egress_denied_initiated_total", "counter" },
	{ "mode", "gauge" },
	{ "deadman_enabled", "gauge" },
	{ "deadman_tripped", "gauge" },
	{ "transitions_total", "counter" },
	{ "transition_failures_total", "counter" },
	{ "time_to_secure_seconds", "histogram" },
	{ "heartbeat_age_seconds", "gauge" },
	{ "heartbeat_timeout_seconds", "gauge" },
	{ "controller_messages_total", "counter" },
	{ "controller_commands_failed_total", "counter" },
	{ "control_refused_total", "counter" },
	{ "audit_write_errors_total", "counter" },
	{ "flows", "gauge" },
	{ "flows_max", "gauge" },
	{ "flow_table_entries", "gauge" },
	{ "flow_table_max", "gauge" },
	{ "flows_embryonic", "gauge" },
	{ "flows_opened_total", "counter" },
	{ "policy_generation", "gauge" },
	{ "policy_last_load_timestamp_seconds", "gauge" },
	{ "policy_rules", "gauge" },
	{ "drop_samples_total", "counter" },
	{ "build_info", "gauge" },
	{ "host_info", "gauge" },
};

struct env {
	struct portcullis_bpf *skel;
	struct pc_maps maps;
	size_t frame_len;
};

static struct env env;

static int libbpf_quiet(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

/* ---- set-up ---- */

/* TCP SYN from 198.51.100.7 to 192.0.2.1:dport. */
static size_t build_frame(unsigned char *buf, __u16 dport)
{
	struct ethhdr *eth = (void *)buf;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp = (void *)(ip + 1);

	memset(buf, 0, 128);
	eth->h_proto = htons(ETH_P_IP);
	ip->version = 4;
	ip->ihl = 5;
	ip->ttl = 64;
	ip->protocol = IPPROTO_TCP;
	ip->tot_len = htons(sizeof(*ip) + sizeof(*tcp));
	ip->saddr = inet_addr("198.51.100.7");
	ip->daddr = inet_addr("192.0.2.1");
	tcp->source = htons(40000);
	tcp->dest = htons(dport);
	tcp->doff = 5;
	tcp->syn = 1;
	return sizeof(*eth) + sizeof(*ip) + sizeof(*tcp);
}

static int run_frames(__u16 dport, int n, __u32 want)
{
	/* Two bytes in, so the IP header after Ethernet's 14 is aligned. */
	__u32 words[34];
	unsigned char *frame = (unsigned char *)words + 2;
	size_t len = build_frame(frame, dport);
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = frame,
		    .data_size_in = len, .repeat = 1);

	env.frame_len = len;
	for (int i = 0; i < n; i++) {
		int err = bpf_prog_test_run_opts(
			bpf_program__fd(env.skel->progs.xdp_ingress), &topts);

		if (err || topts.retval != want) {
			fprintf(stderr, "frame to port %u: err %d, verdict %u\n",
				dport, err, topts.retval);
			return -1;
		}
	}
	return 0;
}

static int apply_policy(void)
{
	struct pc_compiled c;
	struct pc_policy p;
	char err[512];
	__u32 gen;
	int ret;

	ret = pc_policy_load_string(policy, strlen(policy), "test", NULL, &p,
				    err, sizeof(err));
	if (ret) {
		fprintf(stderr, "policy: %s\n", err);
		return ret;
	}
	ret = pc_compile(&p, &c, err, sizeof(err));
	pc_policy_free(&p);
	if (ret) {
		fprintf(stderr, "compile: %s\n", err);
		return ret;
	}
	ret = pc_apply(&env.maps, &c, &gen, err, sizeof(err));
	pc_compiled_free(&c);
	if (ret)
		fprintf(stderr, "apply: %s\n", err);
	return ret;
}

/* No pinning: never reuse or leave behind an agent's maps. */
static int setup(void **state)
{
	struct bpf_map *map;
	int err;

	libbpf_set_print(libbpf_quiet);
	env.skel = portcullis_bpf__open();
	if (!env.skel) {
		fprintf(stderr, "opening the skeleton: %s\n", strerror(errno));
		return -1;
	}
	bpf_object__for_each_map(map, env.skel->obj)
		if (bpf_map__set_pin_path(map, NULL))
			return -1;
	err = portcullis_bpf__load(env.skel);
	if (err) {
		fprintf(stderr, "loading the skeleton (root?): %s\n",
			strerror(-err));
		return -1;
	}
	pc_maps_from_skel(env.skel, &env.maps);
	if (apply_policy())
		return -1;
	/* 3 SYNs to a port nothing allows, 2 to "web". */
	if (run_frames(81, 3, XDP_DROP_) || run_frames(80, 2, XDP_PASS_))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	portcullis_bpf__destroy(env.skel);
	memset(&env, 0, sizeof(env));
	return 0;
}

/* ---- helpers ---- */

static char *render(void)
{
	char *out;
	size_t len;
	int err;

	err = pc_metrics_render(&env.maps, HOST_ID, &out, &len);
	if (err)
		fail_msg("render: %s", strerror(-err));
	assert_int_equal(strlen(out), len);
	return out;
}

/* The whole line, so "... 3" does not match "... 30". */
static void assert_line(const char *text, const char *line)
{
	size_t n = strlen(line);
	const char *p;

	for (p = strstr(text, line); p; p = strstr(p + 1, line))
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return;
	fail_msg("no line '%s' in:\n%s", line, text);
}

static void assert_linef(const char *text, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void assert_linef(const char *text, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	assert_line(text, line);
}

static void assert_no(const char *text, const char *needle)
{
	if (strstr(text, needle))
		fail_msg("'%s' should not be in:\n%s", needle, text);
}

static void stat_set(unsigned int k, __u64 v)
{
	__u32 key = k;

	assert_int_equal(bpf_map_update_elem(env.maps.agent_stats, &key, &v,
					     BPF_ANY), 0);
}

static void deadman_set(__u64 last, __u64 timeout, __u64 action)
{
	__u64 v[PC_DM_COUNT] = {
		[PC_DM_LAST_HB_NS] = last,
		[PC_DM_TIMEOUT_NS] = timeout,
		[PC_DM_ACTION] = action,
	};

	for (__u32 k = 0; k < PC_DM_COUNT; k++)
		assert_int_equal(bpf_map_update_elem(env.maps.deadman, &k,
						     &v[k], BPF_ANY), 0);
}

static __u64 now_boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- the exposition ---- */

static void test_traffic(void **state)
{
	char *out = render();
	unsigned long long len = env.frame_len;

	assert_line(out, "portcullis_packets_total{direction=\"ingress\",reason=\"drop_default\",verdict=\"drop\"} 3");
	assert_linef(out, "portcullis_bytes_total{direction=\"ingress\",reason=\"drop_default\",verdict=\"drop\"} %llu",
		     3 * len);
	assert_line(out, "portcullis_packets_total{direction=\"ingress\",reason=\"pass_rule\",verdict=\"pass\"} 2");
	/* Every reason, both ways, zeros too. */
	assert_line(out, "portcullis_packets_total{direction=\"egress\",reason=\"drop_deadman\",verdict=\"drop\"} 0");
	assert_line(out, "portcullis_packets_total{direction=\"ingress\",reason=\"pass_management\",verdict=\"pass\"} 0");

	assert_line(out, "portcullis_rule_packets_total{rule=\"web\",action=\"allow\",direction=\"ingress\"} 2");
	assert_linef(out, "portcullis_rule_bytes_total{rule=\"web\",action=\"allow\",direction=\"ingress\"} %llu",
		     2 * len);
	assert_line(out, "portcullis_rule_packets_total{rule=\"bad\",action=\"deny\",direction=\"both\"} 0");
	assert_line(out, "portcullis_rule_packets_total{rule=\"mgmt-0\",action=\"management\",direction=\"both\"} 0");

	assert_line(out, "portcullis_policy_generation 1");
	assert_line(out, "portcullis_policy_rules 3");
	/* Both SYNs to port 80 are one flow. */
	assert_line(out, "portcullis_flows 1");
	assert_line(out, "portcullis_flows_opened_total{direction=\"ingress\"} 1");
	assert_linef(out, "portcullis_flows_max %d", 2 * PC_MAX_FLOWS);
	/* The far end opened it, with a SYN nobody answered. */
	assert_line(out, "portcullis_flow_table_entries{opener=\"peer\"} 1");
	assert_line(out, "portcullis_flow_table_entries{opener=\"host\"} 0");
	assert_line(out, "portcullis_flows_embryonic{opener=\"peer\"} 1");
	assert_line(out, "portcullis_flows_embryonic{opener=\"host\"} 0");
	assert_linef(out, "portcullis_flow_table_max{opener=\"peer\"} %d", PC_MAX_FLOWS);
	/* Three drops, each sampled for the drop monitor. */
	assert_line(out, "portcullis_drop_samples_total{result=\"sampled\"} 3");
	assert_line(out, "portcullis_drop_samples_total{result=\"over_budget\"} 0");
	assert_line(out, "portcullis_drop_samples_total{result=\"ring_full\"} 0");

	assert_line(out, "portcullis_mode{mode=\"normal\"} 1");
	assert_line(out, "portcullis_mode{mode=\"lockdown\"} 0");
	assert_line(out, "portcullis_mode{mode=\"quarantine\"} 0");
	assert_line(out, "portcullis_deadman_enabled 0");
	assert_line(out, "portcullis_deadman_tripped 0");
	assert_line(out, "portcullis_build_info{version=\"0.1.0\"} 1");
	assert_line(out, "portcullis_host_info{host_id=\"" HOST_ID "\"} 1");
	/* No agent yet: no controller, no heartbeat age, an empty histogram. */
	assert_no(out, "\nportcullis_heartbeat_age_seconds ");
	assert_line(out, "portcullis_heartbeat_timeout_seconds 0");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"+Inf\"} 0");
	assert_line(out, "portcullis_time_to_secure_seconds_count 0");
	free(out);
}

/* The family a sample line belongs to (histogram suffixes folded). */
static bool sample_has_family(const char *text, const char *line, size_t n)
{
	static const char *const suffixes[] = { "_bucket", "_sum", "_count" };
	char name[128], type[192];
	size_t len = strcspn(line, "{ ");

	if (len >= sizeof(name) || len > n)
		return false;
	memcpy(name, line, len);
	name[len] = '\0';
	snprintf(type, sizeof(type), "# TYPE %s ", name);
	if (strstr(text, type))
		return true;
	for (size_t i = 0; i < 3; i++) {
		size_t sl = strlen(suffixes[i]);

		if (len > sl && !strcmp(name + len - sl, suffixes[i])) {
			name[len - sl] = '\0';
			snprintf(type, sizeof(type), "# TYPE %s histogram", name);
			if (strstr(text, type))
				return true;
		}
	}
	return false;
}

static void test_help_and_type(void **state)
{
	char *out = render(), needle[256];
	const char *line, *end;

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		snprintf(needle, sizeof(needle), "# HELP portcullis_%s ",
			 families[i].name);
		if (!strstr(out, needle))
			fail_msg("no HELP for %s", families[i].name);
		snprintf(needle, sizeof(needle), "# TYPE portcullis_%s %s\n",
			 families[i].name, families[i].type);
		if (!strstr(out, needle))
			fail_msg("no TYPE %s for %s", families[i].type,
				 families[i].name);
	}
	/* And no sample of a family left undeclared. */
	for (line = out; *line; line = end + 1) {
		end = strchr(line, '\n');
		assert_non_null(end);
		if (*line == '#')
			continue;
		if (!sample_has_family(out, line, end - line))
			fail_msg("sample without TYPE: %.*s", (int)(end - line),
				 line);
	}
	free(out);
}

static void test_agent_stats(void **state)
{
	char *out;

	stat_set(PC_AS_HB_ACCEPTED, 5);
	stat_set(PC_AS_HB_REFUSED + PC_MSG_BAD_SIG, 2);
	stat_set(PC_AS_CMD_ACCEPTED, 1);
	stat_set(PC_AS_CMD_REFUSED + PC_MSG_REPLAY, 4);
	stat_set(PC_AS_CMD_FAILED, 1);
	stat_set(PC_AS_AUDIT_ERRORS, 7);
	stat_set(PC_AS_TRANSITION_FAILED, 1);
	stat_set(pc_as_transition(PC_MODE_NORMAL, PC_MODE_LOCKDOWN,
				  PC_TRIG_COMMAND), 2);
	stat_set(pc_as_transition(PC_MODE_LOCKDOWN, PC_MODE_NORMAL,
				  PC_TRIG_BREAK_GLASS), 1);
	/* Three observations: 50 us, 2 ms, 30 s (cumulative buckets). */
	stat_set(PC_AS_TTS_COUNT, 3);
	stat_set(PC_AS_TTS_SUM_NS, 50000ULL + 2000000ULL + 30000000000ULL);
	{
		static const __u64 cum[PC_TTS_BUCKETS] = { 0, 1, 1, 2, 2, 2, 2, 3 };

		for (int i = 0; i < PC_TTS_BUCKETS; i++)
			stat_set(PC_AS_TTS_BUCKET + i, cum[i]);
	}
	stat_set(PC_AS_POLICY_LOADED_MS, 1700000000123ULL);
	stat_set(PC_AS_HB_TIMEOUT_MS, 5000);
	stat_set(PC_AS_LAST_HB_BOOT_NS, now_boot_ns() - 2000000000ULL);

	out = render();
	assert_line(out, "portcullis_controller_messages_total{type=\"heartbeat\",result=\"accepted\"} 5");
	assert_line(out, "portcullis_controller_messages_total{type=\"heartbeat\",result=\"bad_signature\"} 2");
	assert_line(out, "portcullis_controller_messages_total{type=\"heartbeat\",result=\"expired\"} 0");
	assert_line(out, "portcullis_controller_messages_total{type=\"command\",result=\"accepted\"} 1");
	assert_line(out, "portcullis_controller_messages_total{type=\"command\",result=\"replay\"} 4");
	assert_line(out, "portcullis_controller_commands_failed_total 1");
	assert_line(out, "portcullis_audit_write_errors_total 7");
	assert_line(out, "portcullis_transition_failures_total 1");
	assert_line(out, "portcullis_transitions_total{from=\"normal\",to=\"lockdown\",trigger=\"command\"} 2");
	assert_line(out, "portcullis_transitions_total{from=\"lockdown\",to=\"normal\",trigger=\"break_glass\"} 1");
	assert_no(out, "trigger=\"anomaly\"");	/* zero series left out */

	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.00001\"} 0");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.0001\"} 1");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.001\"} 1");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.01\"} 2");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.1\"} 2");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"1\"} 2");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"10\"} 2");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"+Inf\"} 3");
	assert_line(out, "portcullis_time_to_secure_seconds_sum 30.00205");
	assert_line(out, "portcullis_time_to_secure_seconds_count 3");
	/* Buckets in order, +Inf last. */
	assert_true(strstr(out, "le=\"10\"") < strstr(out, "le=\"+Inf\""));
	assert_true(strstr(out, "le=\"0.00001\"") < strstr(out, "le=\"0.0001\""));

	assert_line(out, "portcullis_policy_last_load_timestamp_seconds 1700000000.123");
	assert_line(out, "portcullis_heartbeat_timeout_seconds 5");
	{
		const char *age = strstr(out, "\nportcullis_heartbeat_age_seconds ");
		double v;

		assert_non_null(age);
		v = strtod(age + strlen("\nportcullis_heartbeat_age_seconds "),
			   NULL);
		assert_true(v >= 2.0 && v < 10.0);
	}
	free(out);

	/*
	 * Before the first heartbeat the age counts from the agent's start,
	 * the grace it wrote to pc_deadman: the clock loss is judged by.
	 */
	stat_set(PC_AS_LAST_HB_BOOT_NS, 0);
	deadman_set(now_boot_ns() - 3000000000ULL, 0, 0);
	out = render();
	{
		const char *age = strstr(out, "\nportcullis_heartbeat_age_seconds ");
		double v;

		assert_non_null(age);
		v = strtod(age + strlen("\nportcullis_heartbeat_age_seconds "),
			   NULL);
		assert_true(v >= 3.0 && v < 10.0);
	}
	free(out);
	deadman_set(0, 0, 0);
	stat_set(PC_AS_LAST_HB_BOOT_NS, now_boot_ns() - 2000000000ULL);

	/* Caught mid-update (count ahead of buckets): still a histogram. */
	stat_set(PC_AS_TTS_COUNT, 4);
	stat_set(PC_AS_TTS_BUCKET + 1, 0);
	out = render();
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.0001\"} 0");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"0.001\"} 1");
	assert_line(out, "portcullis_time_to_secure_seconds_bucket{le=\"+Inf\"} 4");
	assert_line(out, "portcullis_time_to_secure_seconds_count 4");
	free(out);
	stat_set(PC_AS_TTS_COUNT, 3);
	stat_set(PC_AS_TTS_BUCKET + 1, 1);
}

static void test_mode_and_deadman(void **state)
{
	__u64 now = now_boot_ns();
	char *out;

	/* Armed, heartbeat fresh: the mode word rules. */
	deadman_set(now, 60000000000ULL, PC_MODE_QUARANTINE);
	assert_int_equal(pc_state_set(&env.maps, PC_STATE_MODE,
				      PC_MODE_LOCKDOWN), 0);
	out = render();
	assert_line(out, "portcullis_deadman_enabled 1");
	assert_line(out, "portcullis_deadman_tripped 0");
	assert_line(out, "portcullis_mode{mode=\"lockdown\"} 1");
	assert_line(out, "portcullis_mode{mode=\"normal\"} 0");
	free(out);

	/* Stale: the datapath enforces the action, the stronger one. */
	deadman_set(now - 10000000000ULL, 1000000000ULL, PC_MODE_QUARANTINE);
	out = render();
	assert_line(out, "portcullis_deadman_tripped 1");
	assert_line(out, "portcullis_mode{mode=\"quarantine\"} 1");
	assert_line(out, "portcullis_mode{mode=\"lockdown\"} 0");
	free(out);

	/* A "normal" action is never weaker than lockdown once tripped. */
	assert_int_equal(pc_state_set(&env.maps, PC_STATE_MODE,
				      PC_MODE_NORMAL), 0);
	deadman_set(now - 10000000000ULL, 1000000000ULL, PC_MODE_NORMAL);
	out = render();
	assert_line(out, "portcullis_mode{mode=\"lockdown\"} 1");
	free(out);

	/* Off, and a mode word the datapath does not know: quarantine. */
	deadman_set(0, 0, 0);
	assert_int_equal(pc_state_set(&env.maps, PC_STATE_MODE, 7), 0);
	out = render();
	assert_line(out, "portcullis_deadman_enabled 0");
	assert_line(out, "portcullis_deadman_tripped 0");
	assert_line(out, "portcullis_mode{mode=\"quarantine\"} 1");
	free(out);
	assert_int_equal(pc_state_set(&env.maps, PC_STATE_MODE,
				      PC_MODE_NORMAL), 0);
}

static void test_label_escaping(void **state)
{
	char *out;
	size_t len;

	assert_int_equal(pc_metrics_render(&env.maps, "a\"b\\c\nd", &out, &len),
			 0);
	assert_line(out, "portcullis_host_info{host_id=\"a\\\"b\\\\c\\nd\"} 1");
	free(out);
	/* No host id: the family stays, without a sample. */
	assert_int_equal(pc_metrics_render(&env.maps, NULL, &out, &len), 0);
	assert_non_null(strstr(out, "# TYPE portcullis_host_info gauge\n"));
	assert_no(out, "portcullis_host_info{");
	free(out);
}

/* promtool reads the exposition on stdin; lint problems fail it too. */
static void promtool_check(const char *text)
{
	char path[] = "/tmp/test_metrics.XXXXXX", cmd[256], buf[4096];
	size_t got = 0, len = strlen(text);
	FILE *p;
	int fd, status;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics < %s 2>&1", path);
	p = popen(cmd, "r");
	assert_non_null(p);
	while (got < sizeof(buf) - 1 && fgets(buf + got, sizeof(buf) - got, p))
		got += strlen(buf + got);
	buf[got] = '\0';
	status = pclose(p);
	unlink(path);
	if (status || got)
		fail_msg("promtool check metrics (status %d):\n%s", status, buf);
}

static void test_promtool(void **state)
{
	char *out;
	size_t len;

	if (system("command -v " PROMTOOL " >/dev/null 2>&1"))
		fail_msg(PROMTOOL " not found: apt-get install prometheus");
	/* With every family filled in (agent counters set above)... */
	out = render();
	promtool_check(out);
	free(out);
	/* ...and with families left without samples. */
	stat_set(PC_AS_LAST_HB_BOOT_NS, 0);
	assert_int_equal(pc_metrics_render(&env.maps, NULL, &out, &len), 0);
	assert_no(out, "\nportcullis_heartbeat_age_seconds ");
	promtool_check(out);
	free(out);
	stat_set(PC_AS_LAST_HB_BOOT_NS, now_boot_ns());
}

/* ---- render time ---- */

static double render_ms(int runs)
{
	double t0 = now_s();

	for (int i = 0; i < runs; i++)
		free(render());
	return (now_s() - t0) * 1000 / runs;
}

static void fill_flows(__u32 n)
{
	struct pc_flow_key *keys = calloc(n, sizeof(*keys));
	struct pc_flow *vals = calloc(n, sizeof(*vals));
	LIBBPF_OPTS(bpf_map_batch_opts, opts);
	__u32 count = n;

	assert_non_null(keys);
	assert_non_null(vals);
	for (__u32 i = 0; i < n; i++) {
		keys[i].family = 4;
		keys[i].proto = IPPROTO_TCP;
		keys[i].lport = htons(443);
		keys[i].rport = htons(1024 + i % 60000);
		memcpy(keys[i].raddr, &i, sizeof(i));
		vals[i].last_ns = now_boot_ns();
	}
	assert_int_equal(bpf_map_update_batch(env.maps.flows, keys, vals, &count,
					      &opts), 0);
	assert_int_equal(count, n);
	free(keys);
	free(vals);
}

/* Zero pc_flow_stats, as a map just created beside older tables. */
static void flow_stats_zero(void)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *v = calloc((size_t)ncpus, sizeof(*v));

	assert_non_null(v);
	for (__u32 k = 0; k < PC_FS_MAX; k++)
		assert_int_equal(bpf_map_update_elem(env.maps.flow_stats, &k, v,
						     BPF_ANY), 0);
	free(v);
}

/* n more in CPU 0's share of pc_flow_stats[key]. */
static void flow_stats_add(__u32 key, __u64 n)
{
	int ncpus = libbpf_num_possible_cpus();
	__u64 *v = calloc((size_t)ncpus, sizeof(*v));

	assert_non_null(v);
	assert_int_equal(bpf_map_lookup_elem(env.maps.flow_stats, &key, v), 0);
	v[0] += n;
	assert_int_equal(bpf_map_update_elem(env.maps.flow_stats, &key, v,
					     BPF_ANY), 0);
	free(v);
}

/* An upgrade: tables with entries no counter saw, seeded to 0 evicted;
 * seeding again (an agent restart) changes nothing. */
static void test_flow_stats_seed(void **state)
{
	struct pc_metrics_snap *s = calloc(1, sizeof(*s));
	char *out;

	assert_non_null(s);
	fill_flows(100);
	flow_stats_zero();
	assert_int_equal(pc_metrics_snapshot(&env.maps, s), 0);
	assert_true(s->flows_in[PC_DIR_EGRESS] >= 100);
	assert_int_equal(s->flows_inserted[PC_DIR_EGRESS], 0);
	assert_int_equal(pc_flow_stats_seed(&env.maps), 0);
	assert_int_equal(pc_metrics_snapshot(&env.maps, s), 0);
	for (int t = 0; t < PC_DIR_COUNT; t++) {
		assert_int_equal(s->flows_inserted[t], s->flows_in[t]);
		assert_int_equal(s->flows_evicted[t], 0);
	}
	/* Counting now, and 5 evicted: a second seed (an agent restart)
	 * must leave the counts alone. */
	flow_stats_add(PC_FS_KEY(PC_DIR_EGRESS, PC_FS_INSERTED), 5);
	assert_int_equal(pc_flow_stats_seed(&env.maps), 0);
	assert_int_equal(pc_metrics_snapshot(&env.maps, s), 0);
	assert_int_equal(s->flows_inserted[PC_DIR_EGRESS],
			 s->flows_in[PC_DIR_EGRESS] + 5);
	assert_int_equal(s->flows_evicted[PC_DIR_EGRESS], 5);
	out = render();
	assert_non_null(strstr(out,
			       "portcullis_flow_evictions_total{opener=\"host\"} 5\n"));
	free(out);
	free(s);
}

/* Created - deleted - live, at 0 below. */
static void test_flow_evictions(void **state)
{
	assert_int_equal(pc_flow_evictions(10, 3, 4), 3);
	assert_int_equal(pc_flow_evictions(7, 3, 4), 0);
	assert_int_equal(pc_flow_evictions(5, 3, 4), 0);
	assert_int_equal(pc_flow_evictions(0, 0, 0), 0);
}

static void test_render_time(void **state)
{
	double small, full;
	char *out;

	small = render_ms(RENDER_RUNS);
	fill_flows(FULL_FLOWS);
	full = render_ms(10);
	out = render();
	/* The LRU may shed a little early (per-CPU free lists): nearly all. */
	{
		const char *p = strstr(out, "\nportcullis_flows ");
		unsigned long n;

		assert_non_null(p);
		n = strtoul(p + strlen("\nportcullis_flows "), NULL, 10);
		assert_true(n >= FULL_FLOWS * 99ULL / 100 && n <= FULL_FLOWS + 1);
	}
	free(out);
	print_message("render: %.3f ms (test policy, 1 flow), %.1f ms with %d flows, %d possible CPUs\n",
		      small, full, FULL_FLOWS, libbpf_num_possible_cpus());
	/* A figure, not a target: timed bounds belong in make bench. */
}

/* ---- the server ---- */

struct reply {
	int status;
	char head[1024];
	char *body;
};

/* A connection to 127.0.0.1:port from src (network order; 0: any). */
static int connect_from(in_addr_t src, int port)
{
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr.s_addr = src };
	struct sockaddr_in sa = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if ((src && bind(fd, (void *)&from, sizeof(from))) ||
	    connect(fd, (void *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static int http_from(in_addr_t src, int port, const char *request,
		     struct reply *r)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap), *sep;
	ssize_t n;
	int fd;

	memset(r, 0, sizeof(*r));
	fd = connect_from(src, port);
	if (fd < 0 || !buf ||
	    write(fd, request, strlen(request)) != (ssize_t)strlen(request))
		goto fail;
	while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
		len += n;
		if (len == cap - 1) {
			char *more = realloc(buf, cap * 2);

			if (!more)
				goto fail;
			buf = more;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	close(fd);
	sep = strstr(buf, "\r\n\r\n");
	if (!sep || sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
		goto fail_closed;
	snprintf(r->head, sizeof(r->head), "%.*s", (int)(sep - buf), buf);
	r->body = strdup(sep + 4);
	free(buf);
	return r->body ? 0 : -1;
fail:
	if (fd >= 0)
		close(fd);
fail_closed:
	free(buf);
	return -1;
}

static int http(int port, const char *request, struct reply *r)
{
	return http_from(0, port, request, r);
}

static void get(int port, const char *method, const char *path,
		struct reply *r)
{
	char req[256];

	snprintf(req, sizeof(req),
		 "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		 "Content-Length: 0\r\n\r\n", method, path);
	if (http(port, req, r))
		fail_msg("%s %s: no HTTP answer", method, path);
}

/*
 * A metric of the server's own from /metrics, ~0 if no answer: polled
 * fast, this host's own closed connections may still hold its 4 slots
 * until MHD's thread has seen them go, and then it is refused.
 */
static unsigned long http_metric(int port, const char *line_head)
{
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n"
				  "Connection: close\r\n\r\n";
	unsigned long v = ~0UL;
	struct reply r;
	const char *p;

	if (http(port, req, &r) || r.status != 200) {
		free(r.body);
		return v;
	}
	p = r.body ? strstr(r.body, line_head) : NULL;
	if (p)
		v = strtoul(p + strlen(line_head), NULL, 10);
	free(r.body);
	return v;
}

static unsigned long http_counter(int port, const char *reason)
{
	char head[128];

	snprintf(head, sizeof(head),
		 "\nportcullis_http_connections_closed_total{reason=\"%s\"} ",
		 reason);
	return http_metric(port, head);
}

/* Waits for a condition, not for a time: the bound is only a bound. */
#define WAIT_STEP_US	20000
#define WAIT_TRIES	500	/* 10 s */

static bool wait_counter(int port, const char *reason, unsigned long want)
{
	for (int t = 0; t < WAIT_TRIES; t++) {
		if (http_counter(port, reason) == want)
			return true;
		usleep(WAIT_STEP_US);
	}
	return false;
}

/* Until the server holds n connections, the asking one included. */
static bool wait_open(int port, unsigned long n)
{
	for (int t = 0; t < WAIT_TRIES; t++) {
		if (http_metric(port, "\nportcullis_http_connections_open ") == n)
			return true;
		usleep(WAIT_STEP_US);
	}
	return false;
}

static void test_server(void **state)
{
	struct pc_metrics_server *s;
	struct reply r;
	int port;

	s = pc_metrics_start("127.0.0.1:0", &env.maps, HOST_ID);
	if (!s)
		skip();	/* pc_metrics_start said why */
	port = pc_metrics_port(s);
	assert_true(port > 0);

	get(port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.head, "\r\nContent-Type: text/plain; version=0.0.4"));
	assert_line(r.body, "portcullis_host_info{host_id=\"" HOST_ID "\"} 1");
	assert_line(r.body, "portcullis_rule_packets_total{rule=\"web\",action=\"allow\",direction=\"ingress\"} 2");
	free(r.body);

	get(port, "HEAD", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "");
	free(r.body);

	get(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	assert_string_equal(r.body, "ok\n");
	free(r.body);

	get(port, "GET", "/", &r);
	assert_int_equal(r.status, 404);
	free(r.body);
	get(port, "GET", "/metrics/x", &r);
	assert_int_equal(r.status, 404);
	free(r.body);

	get(port, "POST", "/metrics", &r);
	assert_int_equal(r.status, 405);
	assert_non_null(strcasestr(r.head, "\r\nAllow: GET, HEAD"));
	free(r.body);
	get(port, "DELETE", "/healthz", &r);
	assert_int_equal(r.status, 405);
	free(r.body);

	pc_metrics_stop(s);
	pc_metrics_stop(NULL);
}

/* The server has its own fds: the caller may close its maps. */
static void test_server_own_fds(void **state)
{
	struct pc_metrics_server *s;
	struct pc_maps dup;
	struct reply r;
	int *fds = (int *)&dup;

	for (size_t i = 0; i < sizeof(dup) / sizeof(int); i++)
		fds[i] = fcntl(((int *)&env.maps)[i], F_DUPFD_CLOEXEC, 3);
	s = pc_metrics_start("127.0.0.1:0", &dup, HOST_ID);
	pc_maps_close(&dup);
	assert_non_null(s);
	get(pc_metrics_port(s), "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_line(r.body, "portcullis_rule_packets_total{rule=\"web\",action=\"allow\",direction=\"ingress\"} 2");
	free(r.body);
	get(pc_metrics_port(s), "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	pc_metrics_stop(s);

	/* IPv6, where there is a loopback (our client speaks IPv4 only). */
	s = pc_metrics_start("[::1]:0", &env.maps, HOST_ID);
	if (s) {
		assert_true(pc_metrics_port(s) > 0);
		pc_metrics_stop(s);
	}
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/*
 * The slow-header attack on one connection: a header byte every 300 ms
 * (MHD's idle timeout alone would never fire). Milliseconds until the
 * server closed it, -1 if it still had not after bound_ms.
 */
/* ms from t0 until the server closed fd; -1 if not within bound_ms. */
static int trickle_until_closed(int fd, int64_t t0, int bound_ms)
{
	char c;
	static const char head[] = "GET /metrics HTTP/1.1\r\nX-Slow: ";

	if (write(fd, head, sizeof(head) - 1) != (ssize_t)(sizeof(head) - 1))
		return -1;
	while (mono_ms() - t0 < bound_ms) {
		struct timeval tv = { .tv_usec = 300000 };
		fd_set r;

		FD_ZERO(&r);
		FD_SET(fd, &r);
		if (select(fd + 1, &r, NULL, NULL, &tv) > 0) {
			if (read(fd, &c, 1) <= 0)
				return mono_ms() - t0;
			continue;
		}
		if (write(fd, "a", 1) != 1)
			return mono_ms() - t0;
	}
	return -1;
}

/* A connection the server closes without a word: read sees EOF at once. */
static bool refused(int fd)
{
	struct timeval tv = { .tv_sec = 10 };	/* a bound; EOF ends it */
	fd_set r;
	char c;

	FD_ZERO(&r);
	FD_SET(fd, &r);
	return select(fd + 1, &r, NULL, NULL, &tv) > 0 && read(fd, &c, 1) <= 0;
}

/* Closed by the server by now (EOF, or a reset): no wait. */
static bool closed_now(int fd)
{
	struct timeval tv = { 0 };
	fd_set r;
	char c;

	FD_ZERO(&r);
	FD_SET(fd, &r);
	return select(fd + 1, &r, NULL, NULL, &tv) > 0 && read(fd, &c, 1) <= 0;
}

#define REMOTE_TRIED	(PC_HTTP_REMOTE + 4)

/*
 * Other hosts (127.0.0.2 and up: not the address they connect to) fill
 * their share and then some; the extra are shut at once, and this host
 * (127.0.0.1 to 127.0.0.1) is still answered.
 */
static void reserve_kept(int port)
{
	int fds[REMOTE_TRIED], shut = 0;
	unsigned long before;
	struct reply r;

	assert_true(wait_open(port, 1));	/* the earlier ones are gone */
	before = http_counter(port, "over_budget");

	for (int i = 0; i < REMOTE_TRIED; i++) {
		fds[i] = connect_from(htonl(INADDR_LOOPBACK + 2 +
					    i / PC_HTTP_PER_CLIENT), port);
		assert_true(fds[i] >= 0);
	}
	/* MHD's thread has taken them all in when it has shut the extra. */
	assert_true(wait_counter(port, "over_budget",
				 before + REMOTE_TRIED - PC_HTTP_REMOTE));
	for (int t = 0; t < WAIT_TRIES && shut < REMOTE_TRIED - PC_HTTP_REMOTE; t++) {
		shut = 0;
		for (int i = 0; i < REMOTE_TRIED; i++)
			shut += closed_now(fds[i]);
		if (shut < REMOTE_TRIED - PC_HTTP_REMOTE)
			usleep(WAIT_STEP_US);
	}
	print_message("%d connections from %d other addresses: %d shut at once\n",
		      REMOTE_TRIED, REMOTE_TRIED / PC_HTTP_PER_CLIENT, shut);
	assert_int_equal(shut, REMOTE_TRIED - PC_HTTP_REMOTE);
	/* The shut ones gone, this host still has its own: answered. */
	assert_true(wait_open(port, PC_HTTP_REMOTE + 1));
	get(port, "GET", "/healthz", &r);
	assert_int_equal(r.status, 200);
	free(r.body);
	for (int i = 0; i < REMOTE_TRIED; i++)
		close(fds[i]);
	/* Until MHD has seen them go, they still count against the budget. */
	assert_true(wait_open(port, 1));
}

/*
 * The budget (http_budget.h): per-client limit, whole-request deadline,
 * and the others' answers while one client holds its share.
 */
static void test_server_budget(void **state)
{
	const in_addr_t other = htonl(INADDR_LOOPBACK + 1);	/* 127.0.0.2 */
	int held[PC_HTTP_PER_CLIENT], extra, port, ms;
	int64_t t0;
	struct pc_metrics_server *s;
	struct reply r;

	s = pc_metrics_start("127.0.0.1:0", &env.maps, HOST_ID);
	if (!s)
		skip();
	port = pc_metrics_port(s);
	for (int i = 0; i < PC_HTTP_PER_CLIENT; i++) {
		held[i] = connect_from(0, port);
		assert_true(held[i] >= 0);
		assert_int_equal(write(held[i], "GET", 3), 3);
	}
	/* One more from the same address: closed at once. */
	extra = connect_from(0, port);
	assert_true(extra >= 0);
	assert_true(refused(extra));
	close(extra);
	/* Another address meanwhile: answered, and told to close. */
	assert_int_equal(http_from(other, port,
				   "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r), 0);
	assert_int_equal(r.status, 200);
	assert_non_null(strcasestr(r.head, "\r\nConnection: close"));
	free(r.body);
	for (int i = 0; i < PC_HTTP_PER_CLIENT; i++)
		close(held[i]);

	reserve_kept(port);

	/* A trickle is closed at the deadline, not kept by its bytes. */
	t0 = mono_ms();		/* before connect: accept comes after it */
	held[0] = connect_from(other, port);
	assert_true(held[0] >= 0);
	ms = trickle_until_closed(held[0], t0, PC_HTTP_DEADLINE_MS * 5);
	close(held[0]);
	print_message("a trickling connection closed after %d ms (deadline %d ms)\n",
		      ms, PC_HTTP_DEADLINE_MS);
	/* Never before the deadline (a 1 ms clock tick apart), and closed. */
	assert_true(ms >= PC_HTTP_DEADLINE_MS - 1);
	get(port, "GET", "/metrics", &r);
	assert_int_equal(r.status, 200);
	assert_line(r.body, "portcullis_http_connections_closed_total{reason=\"deadline\"} 1");
	free(r.body);
	pc_metrics_stop(s);
}

static void test_bad_listen(void **state)
{
	static const char *const bad[] = {
		"localhost:9712", "127.0.0.1", "9712", "::1:9712", "[::1]9712",
		"[127.0.0.1]:9712", "127.0.0.1:", "127.0.0.1:65536",
		"127.0.0.1:-1", "127.0.0.1:97a", "[]:9712", "",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (pc_metrics_start(bad[i], &env.maps, HOST_ID))
			fail_msg("listen '%s' accepted", bad[i]);
	assert_null(pc_metrics_start(NULL, &env.maps, HOST_ID));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_traffic),
		cmocka_unit_test(test_help_and_type),
		cmocka_unit_test(test_agent_stats),
		cmocka_unit_test(test_mode_and_deadman),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_server_own_fds),
		cmocka_unit_test(test_server_budget),
		cmocka_unit_test(test_bad_listen),
		cmocka_unit_test(test_flow_evictions),
		cmocka_unit_test(test_flow_stats_seed),
		cmocka_unit_test(test_render_time),
	};

	return cmocka_run_group_tests_name("metrics", tests, setup, teardown);
}

// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Unit tests for controller.interfaces resolved into pc_ctl_conf
 * (user/ctl_if.c): a named interface missing now is 0, never dropped
 * from the set, so a bound port with its links away is closed, not open
 * on every interface.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "ctl_if.h"

static void cfg_with(struct pc_config *cfg, const char *a, const char *b)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->controller = true;
	cfg->listen_port = 7800;
	if (a)
		strcpy(cfg->ctl_ifaces[cfg->nctl_ifaces++], a);
	if (b)
		strcpy(cfg->ctl_ifaces[cfg->nctl_ifaces++], b);
}

static void test_unbound(void **state)
{
	struct pc_ctl_conf conf;
	struct pc_config cfg;

	cfg_with(&cfg, NULL, NULL);
	pc_ctl_if_conf(&cfg, &conf);
	assert_int_equal(conf.port, 7800);
	assert_int_equal(conf.nbound, 0);
	assert_int_equal(conf.ifindex[0], 0);
}

static void test_no_controller(void **state)
{
	struct pc_ctl_conf conf;
	struct pc_config cfg;

	cfg_with(&cfg, "lo", NULL);
	cfg.controller = false;
	pc_ctl_if_conf(&cfg, &conf);
	assert_int_equal(conf.port, 0);
	assert_int_equal(conf.nbound, 0);
}

/* lo is ifindex 1 in every namespace; pcnothere0 does not exist. */
static void test_missing_stays_bound(void **state)
{
	struct pc_ctl_conf conf;
	struct pc_config cfg;

	cfg_with(&cfg, "pcnothere0", "lo");
	pc_ctl_if_conf(&cfg, &conf);
	assert_int_equal(conf.nbound, 2);
	assert_int_equal(conf.ifindex[0], 0);
	assert_int_equal(conf.ifindex[1], 1);
	cfg_with(&cfg, "pcnothere0", NULL);
	pc_ctl_if_conf(&cfg, &conf);
	assert_int_equal(conf.nbound, 1);
	assert_int_equal(conf.ifindex[0], 0);
}

static void test_names(void **state)
{
	char *attached[] = { "eth0", "lo" };
	struct pc_config cfg;

	cfg_with(&cfg, "lo", "eth1");
	assert_true(pc_ctl_if_names(&cfg, "lo"));
	assert_false(pc_ctl_if_names(&cfg, "eth0"));
	assert_string_equal(pc_ctl_if_unattached(&cfg, attached, 2), "eth1");
	cfg_with(&cfg, "lo", NULL);
	assert_null(pc_ctl_if_unattached(&cfg, attached, 2));
	cfg_with(&cfg, NULL, NULL);
	assert_null(pc_ctl_if_unattached(&cfg, attached, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unbound),
		cmocka_unit_test(test_no_controller),
		cmocka_unit_test(test_missing_stays_bound),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/* The completion cache (cli/complete_cache.c): freshness by TTL, the
 * streaming prefix scan, its caps, and corrupt files ignored. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "complete_cache.h"
#include "fsutil.h"
#include "util.h"

struct fx {
	char dir[64];
	char *path;
};

static int setup(void **state)
{
	struct fx *fx = fl_xcalloc(1, sizeof(*fx));

	fl_strlcpy(fx->dir, "/tmp/test_complete_cache.XXXXXX", sizeof(fx->dir));
	assert_non_null(mkdtemp(fx->dir));
	fx->path = fl_xasprintf("%s/sub/complete-x.devices", fx->dir);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;
	char *cmd = fl_xasprintf("rm -rf '%s'", fx->dir);

	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(fx->path);
	free(fx);
	return 0;
}

/* Scan @path for @prefix into a string (caller frees); *@n the count. */
static char *scan(const char *path, const char *prefix, long *n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	*n = cli_ccache_scan(path, prefix, m);
	fclose(m);
	return buf;
}

static void write_ids(const char *path, json_t *ids)
{
	assert_int_equal(cli_ccache_write(path, ids, NULL), 0);
	json_decref(ids);
}

static void test_prefix_scan(void **state)
{
	struct fx *fx = *state;
	struct stat st;
	long n;
	char *out;

	write_ids(fx->path,
		  json_pack("[s,s,s,s]", "gw-1", "gw-12", "pump-1", "gw-2"));
	assert_int_equal(stat(fx->path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	out = scan(fx->path, "gw-1", &n);
	assert_int_equal(n, 2);
	assert_string_equal(out, "gw-1\ngw-12\n");
	free(out);
	out = scan(fx->path, "", &n);
	assert_int_equal(n, 4);
	free(out);
	out = scan(fx->path, "zz", &n);
	assert_int_equal(n, 0);
	assert_string_equal(out, "");
	free(out);
}

static void test_ttl(void **state)
{
	struct fx *fx = *state;
	struct stat st;

	assert_false(cli_ccache_fresh(fx->path, time(NULL), 60)); /* none */
	write_ids(fx->path, json_pack("[s]", "a"));
	assert_int_equal(stat(fx->path, &st), 0);
	assert_true(cli_ccache_fresh(fx->path, st.st_mtime, 60));
	assert_true(cli_ccache_fresh(fx->path, st.st_mtime + 59, 60));
	assert_false(cli_ccache_fresh(fx->path, st.st_mtime + 60, 60));
	/* written "in the future" (clock stepped back): stale */
	assert_false(cli_ccache_fresh(fx->path, st.st_mtime - 1, 60));
}

/* Ids too long or with bytes a shell could act on are never written,
 * and never offered from a file that holds them anyway. */
static void test_caps(void **state)
{
	struct fx *fx = *state;
	char long_id[CLI_CCACHE_MAX_LINE + 10];
	json_t *ids = json_array();
	long n;
	char *out;

	memset(long_id, 'a', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	json_array_append_new(ids, json_string(long_id));
	json_array_append_new(ids, json_string("a b"));
	json_array_append_new(ids, json_string("a\033[2J"));
	json_array_append_new(ids, json_string("a$(reboot)"));
	json_array_append_new(ids, json_string("a;reboot"));
	json_array_append_new(ids, json_string("a-ok"));
	json_array_append_new(ids, json_integer(7));
	write_ids(fx->path, ids);
	out = scan(fx->path, "a", &n);
	assert_int_equal(n, 1);
	assert_string_equal(out, "a-ok\n");
	free(out);

	/* a file written by something else: the overlong line and the one
	 * with a control byte are skipped, the ones after them offered */
	FILE *f = fopen(fx->path, "w");
	fprintf(f, "%s\n%s\nx-1\nx\t2\nx-3", CLI_CCACHE_HEADER, long_id);
	fclose(f);
	out = scan(fx->path, "", &n);
	assert_int_equal(n, 1);
	assert_string_equal(out, "x-1\n");
	free(out);
}

static void test_max_ids(void **state)
{
	struct fx *fx = *state;
	json_t *ids = json_array();
	char id[32];
	long n;
	char *out;

	for (int i = 0; i < CLI_CCACHE_MAX_IDS + 5; i++) {
		snprintf(id, sizeof(id), "d%d", i);
		json_array_append_new(ids, json_string(id));
	}
	write_ids(fx->path, ids);
	out = scan(fx->path, "", &n);
	assert_int_equal(n, CLI_CCACHE_MAX_IDS);
	free(out);
}

/* No header, a wrong header, a directory, an oversize file: ignored
 * (nothing offered, never fresh). */
static void test_corrupt_ignored(void **state)
{
	struct fx *fx = *state;
	long n;
	char *out, *dir = fl_xasprintf("%s/sub", fx->dir);
	FILE *f;

	assert_int_equal(fl_mkdir_p(dir, 0700, NULL), 0);
	assert_int_equal(
	    fl_write_atomic_str(fx->path, "gw-1\ngw-2\n", 0600, NULL), 0);
	out = scan(fx->path, "", &n);
	assert_int_equal(n, -1);
	assert_string_equal(out, "");
	free(out);
	assert_false(cli_ccache_fresh(fx->path, time(NULL), 60));
	assert_int_equal(fl_write_atomic_str(fx->path, "\0\1\2", 0600, NULL),
			 0);
	assert_int_equal(cli_ccache_scan(fx->path, "", stdout), -1);
	assert_int_equal(cli_ccache_scan(dir, "", stdout), -1);
	f = fopen(fx->path, "w");
	fprintf(f, "%s\n", CLI_CCACHE_HEADER);
	assert_int_equal(ftruncate(fileno(f), CLI_CCACHE_MAX_BYTES + 1), 0);
	fclose(f);
	assert_int_equal(cli_ccache_scan(fx->path, "", stdout), -1);
	assert_false(cli_ccache_fresh(fx->path, time(NULL), 60));
	free(dir);
}

/* Ids out of fleetd's list answers: ids, distinct groups, K=V labels. */
static void test_ids_from_rows(void **state)
{
	json_t *rows = json_pack(
	    "[{s:s, s:s, s:{s:s}}, {s:s, s:s, s:{s:s, s:s}}, {s:s, s:n}]", "id",
	    "gw-1", "group", "north", "labels", "env", "prod", "id", "gw-2",
	    "group", "north", "labels", "env", "prod", "hw", "rpi4", "id",
	    "gw-3", "group");
	json_t *ids;

	(void)state;
	ids = cli_ccache_ids(CLI_KIND_DEVICES, rows);
	assert_int_equal(json_array_size(ids), 3);
	assert_string_equal(json_string_value(json_array_get(ids, 2)), "gw-3");
	json_decref(ids);
	ids = cli_ccache_ids(CLI_KIND_GROUPS, rows);
	assert_int_equal(json_array_size(ids), 1);
	assert_string_equal(json_string_value(json_array_get(ids, 0)), "north");
	json_decref(ids);
	ids = cli_ccache_ids(CLI_KIND_LABELS, rows);
	assert_int_equal(json_array_size(ids), 2);
	assert_string_equal(json_string_value(json_array_get(ids, 1)),
			    "hw=rpi4");
	json_decref(ids);
	json_decref(rows);
}

static void test_kinds_and_path(void **state)
{
	char *p, *q;

	(void)state;
	for (int k = CLI_KIND_NONE + 1; k < CLI_KIND_COUNT; k++)
		assert_int_equal(cli_kind_from_name(cli_kind_name(k)), k);
	assert_int_equal(cli_kind_from_name("tokens"), CLI_KIND_NONE);
	assert_null(cli_kind_name(CLI_KIND_NONE));
	setenv("XDG_CACHE_HOME", "/c", 1);
	p = cli_ccache_path("https://a:1", CLI_KIND_JOBS);
	q = cli_ccache_path("https://b:1", CLI_KIND_JOBS);
	assert_true(fl_startswith(p, "/c/fleet/complete-"));
	assert_int_equal(strlen(p), strlen("/c/fleet/complete-.jobs") + 16);
	assert_string_not_equal(p, q); /* one cache per server */
	free(p);
	free(q);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_prefix_scan, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ttl, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_caps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_max_ids, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_corrupt_ignored, setup,
					    teardown),
	    cmocka_unit_test(test_ids_from_rows),
	    cmocka_unit_test(test_kinds_and_path),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * server-stub/bundles_svc: bundle blob storage without HTTP, on a real
 * state dir with real signed bundles: an upload is stored only once it
 * verified against fleetd's trust root, and a stored bundle opens by id
 * or NAME@VERSION.
 */
#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv_fixture.h"

#include "bundles_svc.h"
#include "jobs.h"
#include "keys.h"
#include "root.h"
#include "store.h"
#include "validate.h"
#include "writer.h"

static const char *const hw[] = {"gw-v1"};

/* A bundle of @size bytes of payload signed by @key at @path. */
static void make_bundle(struct srv_fixture *f, struct fsig_key *key,
			const char *path, size_t size)
{
	char *img = fl_path_join(f->dir, "image");
	char *buf = fl_xcalloc(1, size);
	struct fsig_payload_spec ps = {.path = img, .name = "rootfs"};
	struct fsig_bundle_spec s = {.name = "fw",
				     .version = "1.2.3",
				     .security_version = 1,
				     .hardware = hw,
				     .n_hardware = 1,
				     .payloads = &ps,
				     .n_payloads = 1,
				     .keys = &key,
				     .n_keys = 1};

	for (size_t i = 0; i < size; i++)
		buf[i] = (char)(i * 7);
	assert_int_equal(fl_write_atomic(img, buf, size, 0600, NULL), 0);
	assert_int_equal(fsig_bundle_create(&s, path, NULL), 0);
	free(buf);
	free(img);
}

/* fleetd's trust root: one key for both roles. */
static void push_root(struct srv_fixture *f, struct fsig_key *key)
{
	struct fsig_role_spec rs = {&key, 1, 1};
	struct fsig_root *root = NULL;
	const char *text;

	assert_int_equal(
	    fsig_root_init(&rs, &rs, time(NULL) + 86400, &root, NULL), 0);
	assert_int_equal(fsig_root_sign(root, key, NULL), 0);
	text = fsig_root_text(root, NULL);
	assert_int_equal(srv_store_root_add(f->srv->store, 1, text,
					    time(NULL) + 86400, "test", NULL),
			 0);
	fsig_root_free(root);
}

/* Upload @path in 1000-byte chunks; the code of srv_upload_finish. */
static int upload(struct srv_fixture *f, const char *path,
		  struct srv_bundle_row *ret)
{
	struct srv_upload *u = NULL;
	char buf[1000];
	ssize_t n;
	int fd = open(path, O_RDONLY), rc;

	assert_true(fd >= 0);
	assert_int_equal(srv_upload_begin(f->srv, &u, NULL), 0);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(srv_upload_write(u, buf, (size_t)n, NULL), 0);
	close(fd);
	srv_bundle_row_free(ret);
	rc = srv_upload_finish(f->srv, u, "test", ret, NULL);
	srv_upload_free(u);
	return rc;
}

/* Files in STATE/bundles (temporary ones included). */
static int blob_files(struct srv_fixture *f)
{
	char *dir = fl_path_join(f->state, "bundles");
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.' ||
		     strncmp(e->d_name, ".upload", 7) == 0;
	if (d)
		closedir(d);
	free(dir);
	return n;
}

static void test_store_and_open(void **state)
{
	struct srv_fixture *f = *state;
	char *path = fl_path_join(f->dir, "fw.fwb");
	struct fsig_key *key = NULL;
	struct srv_bundle_row b = {0};
	uint64_t size = 0;
	struct stat st;
	int fd = -1;

	assert_int_equal(fsig_key_generate(FSIG_ALG_ED25519, &key, NULL), 0);
	make_bundle(f, key, path, 5000);
	assert_int_equal(upload(f, path, &b), FL_ECONFLICT); /* no root */
	assert_int_equal(blob_files(f), 0);
	push_root(f, key);
	assert_int_equal(upload(f, path, &b), 0);
	assert_string_equal(b.version, "1.2.3");
	assert_int_equal(srv_bundle_open(f->srv, b.id, &fd, &size, NULL), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(size, (uint64_t)st.st_size);
	close(fd);
	srv_bundle_row_free(&b);
	assert_int_equal(upload(f, path, &b), 0); /* the same one again */
	srv_bundle_row_free(&b);
	assert_int_equal(blob_files(f), 1);
	assert_int_equal(srv_bundle_open(f->srv, "fw@1.2.3", &fd, &size, NULL),
			 0);
	close(fd);
	assert_int_equal(srv_bundle_open(f->srv, "fw@9.9.9", &fd, &size, NULL),
			 FL_ENOTFOUND);
	fsig_key_free(key);
	free(path);
}

/* A bundle signed by a key the root does not name, and a tampered one,
 * are refused and leave nothing behind. */
static void test_refused_leave_nothing(void **state)
{
	struct srv_fixture *f = *state;
	char *path = fl_path_join(f->dir, "fw.fwb");
	struct fsig_key *key = NULL, *other = NULL;
	struct srv_bundle_row b = {0};
	struct srv_bundle_list list = {0};
	struct stat st;
	int fd;

	assert_int_equal(fsig_key_generate(FSIG_ALG_ED25519, &key, NULL), 0);
	assert_int_equal(fsig_key_generate(FSIG_ALG_ED25519, &other, NULL), 0);
	push_root(f, key);
	make_bundle(f, other, path, 5000);
	assert_int_not_equal(upload(f, path, &b), 0);
	unlink(path);
	make_bundle(f, key, path, 5000);
	assert_int_equal(stat(path, &st), 0);
	fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "X", 1, st.st_size - 2000), 1);
	close(fd);
	assert_int_equal(upload(f, path, &b), FL_EVERIFY);
	assert_int_equal(blob_files(f), 0);
	assert_int_equal(srv_store_bundle_list(f->srv->store, &list, NULL), 0);
	assert_int_equal(list.n, 0);
	srv_bundle_list_free(&list);
	fsig_key_free(key);
	fsig_key_free(other);
	free(path);
}

/* A bundle whose file went missing is an I/O error, not a crash. */
static void test_missing_blob(void **state)
{
	struct srv_fixture *f = *state;
	char *path = fl_path_join(f->dir, "fw.fwb"), *blob;
	struct fsig_key *key = NULL;
	struct srv_bundle_row b = {0};
	uint64_t size;
	int fd;

	assert_int_equal(fsig_key_generate(FSIG_ALG_ED25519, &key, NULL), 0);
	push_root(f, key);
	make_bundle(f, key, path, 100);
	assert_int_equal(upload(f, path, &b), 0);
	blob = fl_xasprintf("%s/bundles/%s.fwb", f->state, b.id);
	assert_int_equal(unlink(blob), 0);
	assert_int_equal(srv_bundle_open(f->srv, "fw@1.2.3", &fd, &size, NULL),
			 FL_EIO);
	srv_bundle_row_free(&b);
	free(blob);
	fsig_key_free(key);
	free(path);
}

/* Reopen the fixture's state dir with @conf as its fleetd.conf. */
static int reopen(struct srv_fixture *f, const char *conf)
{
	char *path = fl_path_join(f->state, SRV_CONF_FILE);
	struct fl_error err = {0};
	int rc;

	assert_int_equal(fl_write_atomic(path, conf, strlen(conf), 0600, NULL),
			 0);
	free(path);
	srv_close(f->srv);
	f->srv = NULL;
	rc = srv_open(f->state, &f->srv, &err);
	if (rc)
		assert_non_null(strstr(err.msg, "mirror_url"));
	return rc;
}

/* [bundles] mirror_url is checked when fleetd opens its state: https,
 * no userinfo, query, fragment or "..", a trailing '/', and short
 * enough for a bundle's file name after it. */
static void test_mirror_config(void **state)
{
	static const char *const bad[] = {
	    "http://m.example/b/",	"https://u@m.example/b/",
	    "https://m.example/b/?a=/", "https://m.example/b/#/",
	    "https://m.example/../b/",	"https://m.example/b",
	    "https://m.example",	"ftp://m.example/b/",
	};
	struct srv_fixture *f = *state;
	char conf[SRV_MIRROR_BASE_MAX + 64], *url;
	int n, max;

	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		snprintf(conf, sizeof(conf), "[bundles]\nmirror_url = %s\n",
			 bad[i]);
		assert_int_equal(reopen(f, conf), FL_EINVAL);
	}
	/* "https://m/" + k * 'a' + "/": 11 + k bytes, at most max */
	n = snprintf(conf, sizeof(conf), "[bundles]\nmirror_url = https://m/");
	max = SRV_MIRROR_BASE_MAX;
	memset(conf + n, 'a', max - 10);
	memcpy(conf + n + max - 10, "/\n", 3);
	assert_int_equal(reopen(f, conf), FL_EINVAL); /* one byte too long */
	memcpy(conf + n + max - 11, "/\n", 3);
	assert_int_equal(reopen(f, conf), 0);
	assert_int_equal(reopen(f, "[bundles]\nmirror_url = "
				   "https://127.0.0.1:8443/fw/\n"),
			 0);
	url = srv_bundle_mirror_url(f->srv, "ca4ee575a82a9198");
	assert_string_equal(url,
			    "https://127.0.0.1:8443/fw/ca4ee575a82a9198.fwb");
	free(url);
	assert_int_equal(reopen(f, "[bundles]\nmax_size = 1000000\n"), 0);
	assert_null(srv_bundle_mirror_url(f->srv, "ca4ee575a82a9198"));
}

static json_t *sent;

static int record(void *ctx, const char *device, const char *type, json_t *args,
		  const char *id, struct fl_error *err)
{
	json_decref(sent);
	sent = json_incref(args);
	return 0;
}

/* An update command carries fleetd's url always and the mirror's when
 * fleetd has one. */
static void test_mirror_in_command(void **state)
{
	struct srv_fixture *f = *state;
	struct srv_bundle_row b = {.id = "ca4ee575a82a9198",
				   .name = "fw",
				   .version = "1.2.3",
				   .size = 1000,
				   .sha256 = "00"};
	const json_t *jb;

	f->srv->send_cmd = record;
	assert_int_equal(
	    srv_job_send(f->srv, "gw-1", "update", "j-1", "c-1", &b, NULL), 0);
	jb = json_object_get(sent, "bundle");
	assert_string_equal(json_string_value(json_object_get(jb, "url")),
			    "/api/v1/bundles/ca4ee575a82a9198/download");
	assert_null(json_object_get(jb, "mirror"));
	assert_int_equal(reopen(f, "[bundles]\nmirror_url = "
				   "https://mirror.example/fleet/\n"),
			 0);
	f->srv->send_cmd = record;
	assert_int_equal(
	    srv_job_send(f->srv, "gw-1", "update", "j-1", "c-1", &b, NULL), 0);
	jb = json_object_get(sent, "bundle");
	assert_string_equal(
	    json_string_value(json_object_get(jb, "mirror")),
	    "https://mirror.example/fleet/ca4ee575a82a9198.fwb");
	assert_non_null(json_object_get(jb, "url"));
	json_decref(sent);
	sent = NULL;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_store_and_open, srv_setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_refused_leave_nothing,
					    srv_setup, srv_teardown),
	    cmocka_unit_test_setup_teardown(test_missing_blob, srv_setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_config, srv_setup,
					    srv_teardown),
	    cmocka_unit_test_setup_teardown(test_mirror_in_command, srv_setup,
					    srv_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

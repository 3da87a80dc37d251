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
#include "keys.h"
#include "root.h"
#include "store.h"
#include "writer.h"

static const char *const hw[] = {"gw-v1"};

/* A bundle of @size bytes of payload signed by @key at @path. */
static void make_bundle(struct srv_fixture *f, struct fsig_key *key,
			const char *path, size_t size)
{
	char *img = fl_path_join(f->dir, "image");
	char *buf = fl_xcalloc(1, size);
	struct fsig_payload_spec ps = {.path = img, .name = "rootfs"};
	struct fsig_bundle_spec s = {
		.name = "fw", .version = "1.2.3", .security_version = 1,
		.hardware = hw, .n_hardware = 1, .payloads = &ps,
		.n_payloads = 1, .keys = &key, .n_keys = 1};

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

	assert_int_equal(fsig_root_init(&rs, &rs, time(NULL) + 86400, &root,
					NULL),
			 0);
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
		n += e->d_name[0] != '.' || strncmp(e->d_name, ".upload", 7) == 0;
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
	assert_string_equal(b.version,
			    "1.2.3");
	assert_int_equal(srv_bundle_open(f->srv,
					 b.id,
					 &fd, &size, NULL),
			 0);
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
	blob = fl_xasprintf("%s/bundles/%s.fwb", f->state,
			    b.id);
	assert_int_equal(unlink(blob), 0);
	assert_int_equal(srv_bundle_open(f->srv, "fw@1.2.3", &fd, &size, NULL),
			 FL_EIO);
	srv_bundle_row_free(&b);
	free(blob);
	fsig_key_free(key);
	free(path);
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

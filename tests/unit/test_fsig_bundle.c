/* SPDX-License-Identifier: MIT */
/* Bundle writer and reader: round trips (plain, zstd, several payloads,
 * pipes), spec checks, git provenance, inspect mode, zstd attacks. */
#include <pthread.h>
#include <zstd.h>

#include "fsig_fixture.h"
#include "gitprov.h"

struct ctx {
	char *dir, *out;
	struct fsig_key *rk, *ed, *p256;
	struct fsig_root *root;
};

static int setup(void **state)
{
	struct ctx *c = fl_xcalloc(1, sizeof(*c));
	struct fsig_key *tk[2];

	c->dir = tmpdir_new();
	c->out = tpath(c->dir, "out");
	assert_int_equal(mkdir(c->out, 0755), 0);
	c->rk = new_key(FSIG_ALG_ED25519);
	c->ed = new_key(FSIG_ALG_ED25519);
	c->p256 = new_key(FSIG_ALG_P256);
	tk[0] = c->ed;
	tk[1] = c->p256;
	c->root = make_root(&c->rk, 1, 1, tk, 2, 1);
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct ctx *c = *state;

	tmpdir_free(c->dir);
	free(c->out);
	fsig_key_free(c->rk);
	fsig_key_free(c->ed);
	fsig_key_free(c->p256);
	fsig_root_free(c->root);
	free(c);
	return 0;
}

/* Write @len pattern bytes to DIR/@name; returns the path. */
static char *image(struct ctx *c, const char *name, size_t len, uint32_t seed)
{
	char *path = tpath(c->dir, name);
	unsigned char *data = pattern(len, seed);

	write_file(path, data, len);
	free(data);
	return path;
}

static void assert_same_file(const char *a, const char *b)
{
	size_t la, lb;
	char *da = read_whole(a, &la), *db = read_whole(b, &lb);

	assert_int_equal(la, lb);
	assert_memory_equal(da, db, la);
	free(da);
	free(db);
}

static const char *const hw[] = {"gw-v1", "gw-v2"};

static void spec_init(struct fsig_bundle_spec *s, struct fsig_payload_spec *ps,
		      size_t n, struct fsig_key **keys, size_t nk)
{
	*s = (struct fsig_bundle_spec){.name = "gateway-fw",
				       .version = "2.1.0",
				       .security_version = 7,
				       .hardware = hw,
				       .n_hardware = 2,
				       .payloads = ps,
				       .n_payloads = n,
				       .keys = keys,
				       .n_keys = nk};
}

static void test_round_trip_plain_and_zstd(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "rootfs.img", 1000003, 1);
	char *b = image(c, "app.bin", 0, 2);
	char *z = tpath(c->dir, "zeros.img");
	char *bundle = tpath(c->dir, "x.fwb"), *ea, *ez;
	unsigned char *zeros = fl_xcalloc(1, 2 << 20);
	struct fsig_payload_spec ps[3] = {
	    {.path = a, .type = "rootfs"},
	    {.path = b, .name = "app", .compression = FSIG_COMP_ZSTD},
	    {.path = z, .compression = FSIG_COMP_ZSTD},
	};
	struct fsig_key *keys[] = {c->ed, c->p256};
	struct fsig_policy pol = {.hardware = "gw-v2",
				  .min_security_version = 7};
	struct fsig_manifest *m = NULL;
	struct fsig_bundle_spec s;
	struct stat st;

	write_file(z, zeros, 2 << 20);
	spec_init(&s, ps, 3, keys, 2);
	s.expires = time(NULL) + 3600;
	assert_int_equal(fsig_bundle_create(&s, bundle, NULL), 0);
	assert_int_equal(stat(bundle, &st), 0);
	assert_true(st.st_size < 1000003 + 64 * 1024); /* zeros compressed */
	assert_int_equal(fsig_bundle_verify_file(bundle, c->root, &pol, c->out,
						 &m, NULL, NULL),
			 0);
	assert_string_equal(m->name, "gateway-fw");
	assert_int_equal(m->security_version, 7);
	assert_int_equal(m->n_payloads, 3);
	assert_string_equal(m->payloads[0].name, "rootfs.img");
	assert_string_equal(m->payloads[0].type, "rootfs");
	assert_string_equal(m->payloads[1].name, "app");
	assert_int_equal(m->payloads[1].raw_size, 0);
	assert_int_equal(m->payloads[2].compression, FSIG_COMP_ZSTD);
	assert_int_equal(m->payloads[2].raw_size, 2 << 20);
	assert_true(m->payloads[2].size < 4096);
	assert_true(m->expires > 0);
	assert_false(m->has_provenance);
	ea = tpath(c->out, "rootfs.img");
	ez = tpath(c->out, "zeros.img");
	assert_same_file(a, ea);
	assert_same_file(z, ez);
	fsig_manifest_free(m);
	free(ea);
	free(ez);
	free(zeros);
	free(a);
	free(b);
	free(z);
	free(bundle);
}

/* A sink's begin learns where the payload's bytes start in the bundle
 * (what a resumable install records): there are exactly its bytes. */
struct at_begin {
	struct fsig_reader *r;
	uint64_t off[2];
};

static int note_offset(void *ctx, size_t index, const struct fsig_payload *p,
		       struct fl_error *err)
{
	struct at_begin *b = ctx;

	b->off[index] = fsig_reader_offset(b->r);
	return 0;
}

static int discard(void *ctx, const void *buf, size_t len, struct fl_error *err)
{
	return 0;
}

static void test_payload_offset(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "a.img", 70001, 3), *b = image(c, "b.img", 513, 4);
	char *bundle = tpath(c->dir, "o.fwb"), *img, *data;
	struct fsig_payload_spec ps[2] = {{.path = a}, {.path = b}};
	struct at_begin at = {0};
	struct fsig_sink sink = {
	    .begin = note_offset, .write = discard, .ctx = &at};
	struct fsig_bundle_spec s;
	size_t len, ilen;
	int fd;

	spec_init(&s, ps, 2, &c->ed, 1);
	assert_int_equal(fsig_bundle_create(&s, bundle, NULL), 0);
	fd = open(bundle, O_RDONLY);
	assert_int_equal(fsig_reader_open_fd(fd, &at.r, NULL), 0);
	assert_int_equal(fsig_reader_verify(at.r, c->root, NULL, NULL), 0);
	assert_int_equal(fsig_reader_stream(at.r, &sink, NULL), 0);
	data = read_whole(bundle, &len);
	img = read_whole(a, &ilen);
	assert_true(at.off[0] + ilen <= len);
	assert_memory_equal(data + at.off[0], img, ilen);
	free(img);
	img = read_whole(b, &ilen);
	assert_int_equal(at.off[1], at.off[0] + 70144 + 512);
	assert_memory_equal(data + at.off[1], img, ilen);
	/* the first of the two zero blocks ends the archive */
	assert_int_equal(fsig_reader_offset(at.r), len - 512);
	fsig_reader_free(at.r);
	close(fd);
	free(img);
	free(data);
	free(a);
	free(b);
	free(bundle);
}

/* Writes a bundle into a pipe from a thread while the test reads it. */
struct pipe_job {
	const struct fsig_bundle_spec *spec;
	int fd, rc;
};

static void *pipe_writer(void *arg)
{
	struct pipe_job *j = arg;

	j->rc = fsig_bundle_write(j->spec, j->fd, NULL);
	close(j->fd);
	return NULL;
}

static void bundle_to_pipe(const struct fsig_bundle_spec *s, const char *path)
{
	struct pipe_job job = {.spec = s};
	unsigned char buf[65536];
	int fds[2], out;
	pthread_t t;
	ssize_t n;

	assert_int_equal(pipe(fds), 0);
	job.fd = fds[1];
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(out >= 0);
	assert_int_equal(pthread_create(&t, NULL, pipe_writer, &job), 0);
	while ((n = read(fds[0], buf, sizeof(buf))) > 0)
		assert_int_equal(write(out, buf, (size_t)n), n);
	pthread_join(t, NULL);
	close(fds[0]);
	close(out);
	assert_int_equal(job.rc, 0);
}

/* A pipe gets the same bytes as a file (when nothing needs padding),
 * and a zstd bundle through a pipe verifies. */
static void test_pipe_output(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "a.img", 200000, 3);
	char *f = tpath(c->dir, "file.fwb"), *p = tpath(c->dir, "pipe.fwb");
	struct fsig_payload_spec ps = {.path = a};
	struct fsig_bundle_spec s;

	spec_init(&s, &ps, 1, &c->ed, 1);
	s.created = 1800000000;
	assert_int_equal(fsig_bundle_create(&s, f, NULL), 0);
	bundle_to_pipe(&s, p);
	assert_same_file(f, p);
	ps.compression = FSIG_COMP_ZSTD;
	bundle_to_pipe(&s, p);
	assert_int_equal(
	    fsig_bundle_verify_file(p, c->root, NULL, NULL, NULL, NULL, NULL),
	    0);
	free(a);
	free(f);
	free(p);
}

static void test_spec_checks(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "a.img", 10, 4), *out = tpath(c->dir, "bad.fwb");
	char *missing = tpath(c->dir, "missing.img");
	struct fsig_payload_spec ps[2] = {{.path = a}, {.path = a}};
	const char *badhw[] = {"gw v1"};
	struct fsig_key *pub = NULL;
	struct fsig_bundle_spec s;
	size_t spki_len;
	const unsigned char *spki = fsig_key_spki(c->ed, &spki_len);

	spec_init(&s, ps, 2, &c->ed, 1);
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.n_payloads = 1;
	s.name = "../x";
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.name = "ok";
	s.version = "1.0";
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.version = "1.0.0";
	s.hardware = badhw;
	s.n_hardware = 1;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.n_hardware = 0;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.hardware = hw;
	s.n_hardware = 1;
	s.created = 2000;
	s.expires = 1000;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.created = s.expires = 0;
	s.zstd_level = 22;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.zstd_level = 0;
	assert_int_equal(fsig_key_from_spki(spki, spki_len, &pub, NULL), 0);
	s.keys = &pub;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	s.keys = &c->ed;
	ps[0].path = missing;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_ENOTFOUND);
	ps[0].path = c->dir; /* a directory */
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	/* nothing but the image (and out/) is left behind */
	assert_int_equal(dir_count(c->dir), 2);
	/* an existing non-regular file is never replaced */
	assert_int_equal(symlink(a, out), 0);
	ps[0].path = a;
	assert_int_equal(fsig_bundle_create(&s, out, NULL), FL_EINVAL);
	assert_int_equal(unlink(out), 0);
	assert_int_equal(fsig_bundle_create(&s, out, NULL), 0);
	fsig_key_free(pub);
	free(a);
	free(out);
	free(missing);
}

/* Write errors surface (through the copy thread too) as FL_EIO. */
static void test_write_error(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "a.img", 3 << 20, 9);
	struct fsig_payload_spec ps = {.path = a};
	struct fsig_bundle_spec s;
	struct fl_error err = {0};
	int fd = open("/dev/full", O_WRONLY);

	assert_true(fd >= 0);
	spec_init(&s, &ps, 1, &c->ed, 1);
	assert_int_equal(fsig_bundle_write(&s, fd, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	close(fd);
	free(a);
}

static void git(const char *dir, const char *a1, const char *a2, const char *a3,
		const char *a4)
{
	const char *argv[] = {"git",
			      "-C",
			      dir,
			      "-c",
			      "user.name=t",
			      "-c",
			      "user.email=t@example.org",
			      a1,
			      a2,
			      a3,
			      a4,
			      NULL};

	assert_int_equal(run_quiet(argv), 0);
}

static void test_git_provenance(void **state)
{
	struct ctx *c = *state;
	char *repo = tpath(c->dir, "repo"), *f = tpath(repo, "fw.c");
	char *untracked = tpath(repo, "junk");
	char *bundle = tpath(c->dir, "g.fwb");
	struct fsig_git_info g = {0};
	struct fsig_payload_spec ps = {.path = f};
	struct fsig_provenance pv = {0};
	struct fsig_manifest *m = NULL;
	struct fsig_bundle_spec s;

	assert_int_equal(mkdir(repo, 0755), 0);
	git(repo, "init", "-q", NULL, NULL);
	write_file(f, "int main;\n", 10);
	git(repo, "add", "fw.c", NULL, NULL);
	git(repo, "commit", "-q", "-m", "one");
	git(repo, "tag", "v1.0.0", NULL, NULL);
	git(repo, "remote", "add", "origin",
	    "https://ci:s3cret@example.org/fw.git");
	write_file(untracked, "x", 1); /* untracked: not dirty */
	assert_int_equal(fsig_git_info_read(repo, false, &g, NULL), 0);
	assert_int_equal(strlen(g.commit), 40);
	assert_string_equal(g.describe, "v1.0.0");
	assert_string_equal(g.remote, "https://example.org/fw.git");
	assert_false(g.dirty);

	pv = (struct fsig_provenance){g.commit, g.describe, g.remote, "test",
				      g.dirty};
	spec_init(&s, &ps, 1, &c->ed, 1);
	s.provenance = &pv;
	assert_int_equal(fsig_bundle_create(&s, bundle, NULL), 0);
	assert_int_equal(fsig_bundle_verify_file(bundle, c->root, NULL, NULL,
						 &m, NULL, NULL),
			 0);
	assert_true(m->has_provenance);
	assert_string_equal(m->provenance.commit, g.commit);
	assert_string_equal(m->provenance.builder, "test");
	fsig_manifest_free(m);
	fsig_git_info_release(&g);

	write_file(f, "int main2;\n", 11); /* tracked change: dirty */
	assert_int_equal(fsig_git_info_read(repo, false, &g, NULL),
			 FL_ECONFLICT);
	assert_int_equal(fsig_git_info_read(repo, true, &g, NULL), 0);
	assert_true(g.dirty);
	assert_string_equal(g.describe, "v1.0.0-dirty");
	fsig_git_info_release(&g);
	assert_int_equal(fsig_git_info_read(c->out, true, &g, NULL),
			 FL_ENOTFOUND);
	free(repo);
	free(f);
	free(untracked);
	free(bundle);
}

static void test_url_credentials(void **state)
{
	static const char *const cases[][2] = {
	    {"https://u:p@host/x.git", "https://host/x.git"},
	    {"https://token@host:8443/x", "https://host:8443/x"},
	    {"ssh://git@host/x", "ssh://host/x"},
	    {"https://host/a@b", "https://host/a@b"},
	    {"git@host:x.git", "git@host:x.git"},
	    {"https://a@b@host/x", "https://host/x"},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		char *s = fsig_url_strip_credentials(cases[i][0]);

		assert_string_equal(s, cases[i][1]);
		free(s);
	}
	(void)state;
}

/* Inspection without a root, then an integrity-only stream. */
static void test_inspect(void **state)
{
	struct ctx *c = *state;
	char *a = image(c, "a.img", 5000, 5), *b = tpath(c->dir, "i.fwb");
	struct fsig_payload_spec ps = {.path = a};
	struct fsig_key *keys[] = {c->ed, c->p256};
	struct fsig_reader *r = NULL;
	struct fsig_bundle_spec s;
	json_t *j;
	int fd;

	spec_init(&s, &ps, 1, keys, 2);
	assert_int_equal(fsig_bundle_create(&s, b, NULL), 0);
	fd = open(b, O_RDONLY);
	assert_int_equal(fsig_reader_open_fd(fd, &r, NULL), 0);
	assert_null(fsig_reader_manifest(r));
	assert_int_equal(fsig_reader_stream(r, NULL, NULL), FL_EINVAL);
	assert_int_equal(fsig_reader_inspect(r, NULL), 0);
	/* a second step 1 is refused and keeps the reader usable */
	assert_int_equal(fsig_reader_inspect(r, NULL), FL_EINVAL);
	assert_int_equal(fsig_reader_verify(r, c->root, NULL, NULL), FL_EINVAL);
	assert_false(fsig_reader_verified(r));
	assert_int_equal(fsig_reader_signatures(r)->n, 2);
	assert_string_equal(fsig_reader_signatures(r)->sigs[1].keyid,
			    fsig_key_id(c->p256));
	j = fsig_reader_describe(r);
	assert_string_equal(json_string_value(json_object_get(
				json_object_get(j, "manifest"), "name")),
			    "gateway-fw");
	assert_int_equal(
	    strlen(json_string_value(json_object_get(j, "manifest_sha256"))),
	    64);
	assert_false(json_is_true(json_object_get(j, "verified")));
	json_decref(j);
	assert_int_equal(fsig_reader_stream(r, NULL, NULL), 0);
	assert_int_equal(fsig_reader_stream(r, NULL, NULL), FL_EINVAL);
	fsig_reader_free(r);
	close(fd);
	free(a);
	free(b);
}

/* A hand-made signed bundle with one zstd payload. */
static void zstd_bundle_x(struct ctx *c, const char *path, const void *stored,
			  size_t slen, size_t raw_size, const char *raw_sha,
			  const char *extra)
{
	char sha[65], *m, *sig;
	struct craft e[3];

	sha_hex(stored, slen, sha);
	m = fl_xasprintf("{\"format\": 1, \"name\": \"z\", \"version\": "
			 "\"1.0.0\", \"security_version\": 0, \"hardware\": "
			 "[\"gw\"], \"created\": \"2026-01-01T00:00:00Z\", "
			 "\"payloads\": [{\"name\": \"p\", \"type\": \"t\", "
			 "\"compression\": \"zstd\", \"size\": %zu, "
			 "\"sha256\": \"%s\", \"raw_size\": %zu, "
			 "\"raw_sha256\": \"%s\"%s}]}",
			 slen, sha, raw_size, raw_sha, extra);
	sig = sign_text(m, strlen(m), &c->ed, 1);
	e[0] = (struct craft){
	    .name = "manifest.json", .data = m, .len = strlen(m)};
	e[1] = (struct craft){
	    .name = "manifest.sig", .data = sig, .len = strlen(sig)};
	e[2] = (struct craft){.name = "payload/p", .data = stored, .len = slen};
	craft_tar(path, e, 3);
	free(m);
	free(sig);
}

static void zstd_bundle(struct ctx *c, const char *path, const void *stored,
			size_t slen, size_t raw_size, const char *raw_sha)
{
	zstd_bundle_x(c, path, stored, slen, raw_size, raw_sha, "");
}

static int count_write(void *ctx, const void *buf, size_t len,
		       struct fl_error *err)
{
	(void)buf;
	(void)err;
	*(size_t *)ctx += len;
	return 0;
}

static int stream_count(struct ctx *c, const char *path, size_t *written,
			enum fsig_reason *why)
{
	struct fsig_sink sink = {NULL, count_write, NULL, written};
	struct fsig_reader *r = NULL;
	int fd = open(path, O_RDONLY), rc;

	*written = 0;
	assert_int_equal(fsig_reader_open_fd(fd, &r, NULL), 0);
	assert_int_equal(fsig_reader_verify(r, c->root, NULL, NULL), 0);
	rc = fsig_reader_stream(r, &sink, NULL);
	*why = fsig_reader_reason(r);
	fsig_reader_free(r);
	close(fd);
	return rc;
}

static void test_zstd_attacks(void **state)
{
	struct ctx *c = *state;
	size_t raw_len = 1 << 20, cap = ZSTD_compressBound(raw_len), n;
	unsigned char *raw = fl_xcalloc(1, raw_len), *z = fl_xmalloc(cap);
	char *path = tpath(c->dir, "z.fwb"), raw_sha[65];
	enum fsig_reason why;
	size_t written;

	n = ZSTD_compress(z, cap, raw, raw_len, 3);
	assert_false(ZSTD_isError(n));
	sha_hex(raw, raw_len, raw_sha);
	zstd_bundle(c, path, z, n, raw_len, raw_sha);
	assert_int_equal(stream_count(c, path, &written, &why), 0);
	assert_int_equal(written, raw_len);

	/* a bomb: declares 1000 bytes, inflates to 1 MiB; the sink never
	 * gets more than declared */
	zstd_bundle(c, path, z, n, 1000, raw_sha);
	assert_int_equal(stream_count(c, path, &written, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_PAYLOAD_SIZE);
	assert_true(written <= 1000);

	/* signed garbage is not zstd */
	memset(z, 0x5a, 64);
	zstd_bundle(c, path, z, 64, raw_len, raw_sha);
	assert_int_equal(stream_count(c, path, &written, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_DECOMPRESS);

	/* a cut frame (hash of the cut bytes signed) is incomplete */
	n = ZSTD_compress(z, cap, raw, raw_len, 3);
	zstd_bundle(c, path, z, n - 4, raw_len, raw_sha);
	assert_int_equal(stream_count(c, path, &written, &why), FL_EVERIFY);
	assert_true(why == FSIG_R_DECOMPRESS || why == FSIG_R_PAYLOAD_SIZE);

	/* right frame, wrong declared content hash */
	zstd_bundle(c, path, z, n, raw_len,
		    "0000000000000000000000000000000000000000000000000000000000"
		    "000000");
	assert_int_equal(stream_count(c, path, &written, &why), FL_EVERIFY);
	assert_int_equal(why, FSIG_R_PAYLOAD_HASH);

	/* a delta verifies in step 1 but is not streamed without its base */
	zstd_bundle_x(c, path, z, n, raw_len, raw_sha,
		      ", \"delta_from\": \"0.9.0\"");
	assert_int_equal(stream_count(c, path, &written, &why), FL_EINVAL);
	assert_int_equal(written, 0);
	free(raw);
	free(z);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_round_trip_plain_and_zstd,
					    setup, teardown),
	    cmocka_unit_test_setup_teardown(test_payload_offset, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_pipe_output, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_write_error, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spec_checks, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_git_provenance, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_url_credentials, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_inspect, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zstd_attacks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

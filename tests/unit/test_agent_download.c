/* SPDX-License-Identifier: MIT */
/*
 * agent/download against a real in-process HTTPS server (libmicrohttpd
 * on 127.0.0.1, TLS with a certificate from common/pki) that serves a
 * pseudo-random file with Range support and misbehaves on request:
 * drops the connection mid-body, ignores Range, sends more than the
 * file or another total, answers 404, or nothing at all.  Checks the
 * bytes read, what is kept of a partial file, resumption with Range,
 * retries and their cap, the size cap, the window, checkpoints, ticks
 * and the rate limit.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include <microhttpd.h>
#include <openssl/pem.h>

#include "download.h"
#include "fsutil.h"
#include "pki.h"
#include "util.h"

#define FILE_SIZE (3u * 1024 * 1024 + 4321)

struct server {
	struct MHD_Daemon *d;
	char *url, *cert_pem, *key_pem;
	unsigned char *data;
	size_t size;
	pthread_mutex_t lock;
	/* behaviour */
	bool drop_all;	   /* close before any body byte */
	size_t drop_after; /* close after this many body bytes ... */
	int drops;	   /* ... this many times */
	bool ignore_range; /* always 200 with the whole file */
	size_t extra;	   /* bytes sent after the file */
	bool bad_total;	   /* Content-Range names another size */
	unsigned status;   /* answer this status instead (0: no) */
	/* record */
	int requests;
	char last_range[64];
};

struct fixture {
	char dir[64];
	char *ca_file, *partial;
	struct server s;
};

struct body {
	struct server *s;
	size_t off, end, sent, limit; /* limit 0: none */
};

/* ---- server ---- */

static ssize_t body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct body *b = cls;
	size_t n, from = b->off + (size_t)pos;

	if (b->s->drop_all || (b->limit && b->sent >= b->limit))
		return MHD_CONTENT_READER_END_WITH_ERROR;
	if (from >= b->end)
		return MHD_CONTENT_READER_END_OF_STREAM;
	n = b->end - from < max ? b->end - from : max;
	if (b->limit && n > b->limit - b->sent)
		n = b->limit - b->sent;
	for (size_t i = 0; i < n; i++)
		buf[i] = from + i < b->s->size ? (char)b->s->data[from + i]
					       : 'x'; /* the extra bytes */
	b->sent += n;
	return (ssize_t)n;
}

static enum MHD_Result answer(struct server *s, struct MHD_Connection *c,
			      size_t start, bool partial)
{
	struct body *b = fl_xcalloc(1, sizeof(*b));
	struct MHD_Response *r;
	enum MHD_Result rc;
	char cr[96];

	b->s = s;
	b->off = start;
	b->end = s->size + s->extra;
	pthread_mutex_lock(&s->lock);
	if (s->drops > 0) {
		s->drops--;
		b->limit = s->drop_after;
	}
	pthread_mutex_unlock(&s->lock);
	r = MHD_create_response_from_callback(b->end - start, 16 * 1024,
					      body_cb, b, free);
	if (partial) {
		snprintf(cr, sizeof(cr), "bytes %zu-%zu/%zu", start, b->end - 1,
			 s->bad_total ? s->size + 1 : s->size);
		MHD_add_response_header(r, "Content-Range", cr);
	}
	rc = MHD_queue_response(c, partial ? 206 : 200, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
			       const char *url, const char *method,
			       const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	struct server *s = cls;
	const char *range;
	unsigned long long start = 0;
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	pthread_mutex_lock(&s->lock);
	s->requests++;
	fl_strlcpy(s->last_range, range ? range : "", sizeof(s->last_range));
	pthread_mutex_unlock(&s->lock);
	if (s->status) {
		r = MHD_create_response_from_buffer(
		    strlen("{\"error\":{\"code\":\"not_found\",\"message\":"
			   "\"no such bundle\"}}"),
		    (void *)"{\"error\":{\"code\":\"not_found\",\"message\":"
			    "\"no such bundle\"}}",
		    MHD_RESPMEM_PERSISTENT);
		rc = MHD_queue_response(c, s->status, r);
		MHD_destroy_response(r);
		return rc;
	}
	if (range && !s->ignore_range &&
	    sscanf(range, "bytes=%llu-", &start) == 1 && start < s->size)
		return answer(s, c, (size_t)start, true);
	return answer(s, c, 0, false);
}

static void server_start(struct server *s)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
				    MHD_USE_THREAD_PER_CONNECTION,
				0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR,
				&addr, MHD_OPTION_HTTPS_MEM_KEY, s->key_pem,
				MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
				MHD_OPTION_END);
	assert_non_null(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->url =
	    fl_xasprintf("https://127.0.0.1:%u/bundle", (unsigned)info->port);
}

/* A CA and a server certificate for 127.0.0.1; the CA goes to @ca_file. */
static void make_pki(struct server *s, const char *ca_file)
{
	static const char *const ip = "127.0.0.1";
	struct fl_pki_policy pol = {.kind = FL_PKI_SERVER,
				    .cn = "test",
				    .ips = &ip,
				    .n_ips = 1,
				    .lifetime_s = 3600};
	struct fl_pki_issuer root = {0};
	struct fl_error err = {0};
	EVP_PKEY *key = NULL;
	X509 *leaf = NULL;
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem;
	long n;

	assert_int_equal(fl_pki_keygen_p256(&root.key, &err), 0);
	assert_int_equal(
	    fl_pki_root_create(root.key, "Test", 3600, &root.cert, &err), 0);
	assert_int_equal(fl_pki_cert_save(ca_file, &root.cert, 1, &err), 0);
	assert_int_equal(fl_pki_keygen_p256(&key, &err), 0);
	assert_int_equal(fl_pki_leaf_issue(&root, &pol, key, &leaf, &err), 0);
	assert_int_equal(PEM_write_bio_X509(bio, leaf), 1);
	n = BIO_get_mem_data(bio, &pem);
	s->cert_pem = fl_xmalloc((size_t)n + 1); /* not NUL-terminated */
	memcpy(s->cert_pem, pem, (size_t)n);
	s->cert_pem[n] = '\0';
	assert_int_equal(fl_pki_key_to_pem(key, &s->key_pem, &err), 0);
	BIO_free(bio);
	X509_free(leaf);
	EVP_PKEY_free(key);
	X509_free(root.cert);
	EVP_PKEY_free(root.key);
}

static int setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	uint32_t x = 12345;

	assert_int_equal(test_mkdtemp(f->dir, "dl"), 0);
	f->ca_file = fl_path_join(f->dir, "ca.pem");
	f->partial = fl_path_join(f->dir, "bundle.partial");
	make_pki(&f->s, f->ca_file);
	f->s.size = FILE_SIZE;
	f->s.data = fl_xmalloc(FILE_SIZE);
	for (size_t i = 0; i < FILE_SIZE; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		f->s.data[i] = (unsigned char)x;
	}
	pthread_mutex_init(&f->s.lock, NULL);
	server_start(&f->s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	MHD_stop_daemon(f->s.d);
	pthread_mutex_destroy(&f->s.lock);
	test_rmtree(f->dir);
	free(f->s.url);
	free(f->s.cert_pem);
	fl_free_secret(f->s.key_pem);
	free(f->s.data);
	free(f->ca_file);
	free(f->partial);
	free(f);
	return 0;
}

/* ---- helpers ---- */

struct counters {
	int checkpoints, ticks, stop_after_ticks;
	uint64_t last_durable;
};

static int on_checkpoint(void *user, uint64_t durable, struct fl_error *err)
{
	struct counters *c = user;

	c->checkpoints++;
	assert_true(durable >= c->last_durable);
	c->last_durable = durable;
	return 0;
}

static int on_tick(void *user, struct fl_error *err)
{
	struct counters *c = user;

	c->ticks++;
	if (c->stop_after_ticks && c->ticks >= c->stop_after_ticks)
		return fl_fail(err, FL_ETIMEOUT, "stopped by the test");
	return 0;
}

static struct agent_dl_opts opts(struct fixture *f, struct counters *c)
{
	return (struct agent_dl_opts){
	    .url = f->s.url,
	    .ca_file = f->ca_file,
	    .partial = f->partial,
	    .size = FILE_SIZE,
	    .retries = 3,
	    .backoff_min_ms = 50,
	    .backoff_max_ms = 100,
	    .stall_timeout_s = 5,
	    .checkpoint = on_checkpoint,
	    .tick = on_tick,
	    .user = c,
	};
}

/* Read everything (or until an error); returns the code, *ret the bytes. */
static int read_all(struct agent_dl *dl, unsigned char **ret, size_t *len,
		    struct fl_error *err)
{
	unsigned char *buf = fl_xmalloc(FILE_SIZE + 1);
	size_t got = 0, n;
	int rc;

	for (;;) {
		rc = agent_dl_read(dl, buf + got, got < FILE_SIZE ? 70000 : 1,
				   &n, err);
		if (rc || n == 0)
			break;
		got += n;
		assert_true(got <= FILE_SIZE);
	}
	*ret = buf;
	*len = got;
	return rc;
}

static void write_partial(struct fixture *f, size_t n, const char *junk)
{
	unsigned char *b = fl_xmalloc(n + (junk ? strlen(junk) : 0) + 1);

	memcpy(b, f->s.data, n);
	if (junk)
		memcpy(b + n, junk, strlen(junk));
	assert_int_equal(fl_write_atomic(f->partial, b,
					 n + (junk ? strlen(junk) : 0), 0600,
					 NULL),
			 0);
	free(b);
}

static off_t file_size(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 ? st.st_size : -1;
}

/* ---- tests ---- */

static void test_whole(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	o.checkpoint_ms = 1;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_DEFAULT);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_int_equal(len, FILE_SIZE);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE);
	assert_int_equal(agent_dl_kept(dl), 0);
	assert_int_equal(agent_dl_attempts(dl), 1);
	assert_string_equal(f->s.last_range, "");
	assert_int_equal(file_size(f->partial), FILE_SIZE);
	/* a second handle finds everything there: no request at all */
	agent_dl_free(dl);
	free(got);
	f->s.requests = 0;
	o.trust_file = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_int_equal(len, FILE_SIZE);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_int_equal(agent_dl_fetched(dl), 0);
	assert_int_equal(f->s.requests, 0);
	agent_dl_free(dl);
	free(got);
}

/* A kept partial file is served first, the rest comes with Range. */
static void test_resume_trusted(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;
	char want[64];

	write_partial(f, 1000000, NULL);
	o.trust_file = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(agent_dl_kept(dl), 1000000);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE - 1000000);
	snprintf(want, sizeof(want), "bytes=%d-", 1000000);
	assert_string_equal(f->s.last_range, want);
	agent_dl_free(dl);
	free(got);
}

/* After a power loss only the synced part is kept: the rest is cut. */
static void test_resume_untrusted(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	write_partial(f, 500000, "garbage after the checkpoint");
	o.durable = 400000;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(agent_dl_kept(dl), 400000);
	assert_int_equal(file_size(f->partial), 400000);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_string_equal(f->s.last_range, "bytes=400000-");
	agent_dl_free(dl);
	free(got);
}

/* The connection drops twice mid-body: two more attempts with Range. */
static void test_drops_retried(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.drop_after = 700000;
	f->s.drops = 2;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_DEFAULT);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_int_equal(agent_dl_attempts(dl), 3);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE);
	assert_true(strncmp(f->s.last_range, "bytes=", 6) == 0);
	agent_dl_free(dl);
	free(got);
}

/* Drops without progress use up the retries. */
static void test_retries_capped(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.drop_all = true;
	write_partial(f, 2000000, NULL);
	o.trust_file = true;
	o.retries = 2;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_not_equal(read_all(dl, &got, &len, &err), 0);
	assert_true(err.code == FL_EUNREACH || err.code == FL_ETIMEOUT);
	assert_int_equal(agent_dl_attempts(dl), 3);
	assert_non_null(strstr(err.msg, "giving up"));
	agent_dl_free(dl);
	free(got);
}

/* A server that ignores Range: the repeated prefix is dropped. */
static void test_range_ignored(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.ignore_range = true;
	write_partial(f, 123457, NULL);
	o.trust_file = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	assert_int_equal(agent_dl_fetched(dl), FILE_SIZE - 123457);
	agent_dl_free(dl);
	free(got);
}

/* Never a byte past the expected size. */
static void test_too_long(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.extra = 100000;
	f->s.ignore_range = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_DEFAULT);
	(void)read_all(dl, &got, &len, &err);
	free(got);
	/* everything the reader got was the file; the excess was refused */
	assert_true(agent_dl_have(dl) <= FILE_SIZE);
	assert_true(file_size(f->partial) <= (off_t)FILE_SIZE);
	agent_dl_free(dl);
}

/* A Content-Range with another total: the server's file changed. */
static void test_other_total(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.bad_total = true;
	write_partial(f, 10, NULL);
	o.trust_file = true;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, &got, &len, &err), FL_EVERIFY);
	assert_int_equal(agent_dl_attempts(dl), 1);
	agent_dl_free(dl);
	free(got);
}

static void test_not_found(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.status = 404;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(read_all(dl, &got, &len, &err), FL_ENOTFOUND);
	assert_int_equal(agent_dl_attempts(dl), 1);
	assert_non_null(strstr(err.msg, "no such bundle"));
	agent_dl_free(dl);
	free(got);
}

/* Until the window opens, the network stays close to the reader. */
static void test_window(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char buf[4096];
	size_t n;

	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	assert_int_equal(agent_dl_read(dl, buf, sizeof(buf), &n, &err), 0);
	assert_true(n > 0);
	usleep(200 * 1000);
	assert_int_equal(agent_dl_read(dl, buf, sizeof(buf), &n, &err), 0);
	/* 64 KiB window plus at most one curl buffer */
	assert_true(agent_dl_have(dl) <= 64 * 1024 + 256 * 1024 + 8192);
	assert_true(agent_dl_have(dl) < FILE_SIZE / 4);
	agent_dl_free(dl);
}

/* A tick that says stop ends the read with its code. */
static void test_tick_stops(void **state)
{
	struct fixture *f = *state;
	struct counters c = {.stop_after_ticks = 1};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;

	f->s.status = 0;
	o.rate_limit = 100000; /* slow enough to tick */
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	usleep(150 * 1000);
	assert_int_equal(read_all(dl, &got, &len, &err), FL_ETIMEOUT);
	assert_true(len < FILE_SIZE);
	agent_dl_free(dl);
	free(got);
}

/* rate_limit: 2 MiB at 1 MiB/s takes about two seconds (libcurl lets
 * bursts through, so sometimes less). */
static void test_rate_limit(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;
	unsigned char *got;
	size_t len;
	int64_t t0;

	write_partial(f, FILE_SIZE - 2 * 1024 * 1024, NULL);
	o.trust_file = true;
	o.rate_limit = 1024 * 1024;
	assert_int_equal(agent_dl_open(&o, &dl, &err), 0);
	agent_dl_set_window(dl, AGENT_DL_WINDOW_DEFAULT);
	t0 = fl_now_ms();
	assert_int_equal(read_all(dl, &got, &len, &err), 0);
	fprintf(stderr, "# 2 MiB at 1 MiB/s: %lld ms\n",
		(long long)(fl_now_ms() - t0));
	/* libcurl's limit allows bursts: ask for clearly slower than
	 * unlimited (a few ms here), not for the exact rate */
	assert_true(fl_now_ms() - t0 >= 400);
	assert_memory_equal(got, f->s.data, FILE_SIZE);
	agent_dl_free(dl);
	free(got);
}

static void test_bad_opts(void **state)
{
	struct fixture *f = *state;
	struct counters c = {0};
	struct agent_dl_opts o = opts(f, &c);
	struct fl_error err = {0};
	struct agent_dl *dl = NULL;

	o.url = "http://127.0.0.1:1/x";
	assert_int_equal(agent_dl_open(&o, &dl, &err), FL_EINVAL);
	o = opts(f, &c);
	o.size = 0;
	assert_int_equal(agent_dl_open(&o, &dl, &err), FL_EINVAL);
	assert_null(dl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_whole, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_resume_trusted, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_resume_untrusted, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_drops_retried, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_retries_capped, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_range_ignored, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_too_long, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_other_total, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_not_found, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_window, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_tick_stops, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_rate_limit, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_opts, setup, teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

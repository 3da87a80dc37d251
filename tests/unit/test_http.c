/* SPDX-License-Identifier: MIT */
/*
 * common/http against real in-process HTTPS servers (libmicrohttpd on
 * 127.0.0.1, port 0) whose certificates the test issues with common/pki:
 * JSON round trips, the bearer header, error mapping, caps, TLS trust,
 * unreachable servers, timeouts and streamed uploads.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cmocka.h>

#include "tmpdir.h"
#include <microhttpd.h>

#include "fsutil.h"
#include "http.h"
#include "json.h"
#include "pki.h"
#include "util.h"

#define TOKEN "flt_test-token"
#define BIG_ITEMS 2000

/* One HTTPS server and what it saw of the last request. */
struct server {
	struct MHD_Daemon *d;
	char *url; /* https://127.0.0.1:PORT */
	char *cert_pem, *key_pem;
	pthread_mutex_t lock;
	int hits;
	char *method, *path, *auth, *ctype;
	unsigned char *body;
	size_t body_len;
	struct MHD_Connection *stalled;
	bool stopping;
	int flaky;     /* requests to /flaky/N so far */
	char *keys[8]; /* Idempotency-Key of request n (mod 8), or NULL */
};

struct fixture {
	char dir[64];
	char *ca_file;	     /* root of the fleet CA */
	char *other_ca_file; /* root of an unrelated CA */
	struct server main;  /* leaf + issuing chain, SAN 127.0.0.1 */
	struct server other; /* certificate from the other CA */
	struct server wrong; /* fleet CA, but only SAN DNS fleet.invalid */
};

/* Per-request state kept by MHD between handler calls. */
struct req {
	unsigned char *body;
	size_t len;
	bool resumed;
};

/* ---- server side ---- */

/* A JSON array of BIG_ITEMS strings; the same bytes on every call. */
static char *big_body(size_t *ret_len)
{
	json_t *a = json_array();
	char *s;

	for (int i = 0; i < BIG_ITEMS; i++)
		json_array_append_new(a, json_sprintf("item-%06d-padding", i));
	s = fl_json_dumps(a);
	json_decref(a);
	*ret_len = strlen(s);
	return s;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     const char *ctype, const char *body)
{
	struct MHD_Response *r;
	enum MHD_Result rc;

	r = MHD_create_response_from_buffer(strlen(body), (void *)body,
					    MHD_RESPMEM_MUST_COPY);
	if (!r)
		return MHD_NO;
	if (ctype)
		MHD_add_response_header(r, "Content-Type", ctype);
	rc = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return rc;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status,
				  json_t *j)
{
	char *s = fl_json_dumps(j);
	enum MHD_Result rc = reply(c, status, "application/json", s);

	free(s);
	json_decref(j);
	return rc;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
				   const char *code, const char *msg)
{
	json_t *e = json_pack("{s:s}", "message", msg);

	if (code)
		json_object_set_new(e, "code", json_string(code));
	return reply_json(c, status, json_pack("{s:o}", "error", e));
}

static char *dup_or_null(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

static void clear_record(struct server *s)
{
	free(s->method);
	free(s->path);
	free(s->auth);
	free(s->ctype);
	free(s->body);
	s->method = s->path = s->auth = s->ctype = NULL;
	s->body = NULL;
	s->body_len = 0;
}

static void record(struct server *s, struct MHD_Connection *c, const char *url,
		   const char *method, struct req *r)
{
	pthread_mutex_lock(&s->lock);
	clear_record(s);
	s->hits++;
	s->method = fl_xstrdup(method);
	s->path = fl_xstrdup(url);
	s->auth = dup_or_null(MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION));
	s->ctype = dup_or_null(MHD_lookup_connection_value(
	    c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE));
	free(s->keys[(s->hits - 1) % 8]);
	s->keys[(s->hits - 1) % 8] = dup_or_null(
	    MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Idempotency-Key"));
	s->body = r->body;
	s->body_len = r->len;
	r->body = NULL;
	r->len = 0;
	pthread_mutex_unlock(&s->lock);
}

/* Park the connection until the test (or teardown) resumes it. */
static enum MHD_Result stall(struct server *s, struct MHD_Connection *c,
			     struct req *r)
{
	if (r->resumed)
		return reply(c, 200, "application/json", "{}");
	r->resumed = true;
	pthread_mutex_lock(&s->lock);
	if (s->stopping) {
		pthread_mutex_unlock(&s->lock);
		return reply(c, 200, "application/json", "{}");
	}
	s->stalled = c;
	MHD_suspend_connection(c);
	pthread_mutex_unlock(&s->lock);
	return MHD_YES;
}

static enum MHD_Result route(struct server *s, struct MHD_Connection *c,
			     const char *url, const char *method, struct req *r)
{
	json_t *j;

	if (strcmp(url, "/stall") == 0)
		return stall(s, c, r);
	if (strcmp(url, "/echo") == 0) {
		j = json_loadb((const char *)r->body, r->len, 0, NULL);
		record(s, c, url, method, r);
		pthread_mutex_lock(&s->lock);
		j = json_pack("{s:s,s:s*,s:o*}", "method", method, "auth",
			      s->auth, "body", j);
		pthread_mutex_unlock(&s->lock);
		return reply_json(c, 200, j);
	}
	if (strcmp(url, "/upload") == 0) {
		char hex[65];

		fl_sha256_hex(r->body ? (void *)r->body : (void *)"", r->len,
			      hex);
		j = json_pack("{s:I,s:s}", "size", (json_int_t)r->len, "sha256",
			      hex);
		record(s, c, url, method, r);
		return reply_json(c, 200, j);
	}
	record(s, c, url, method, r);
	if (strcmp(url, "/empty") == 0)
		return reply(c, 204, NULL, "");
	if (strcmp(url, "/empty200") == 0)
		return reply(c, 200, "application/json", "");
	if (strcmp(url, "/text") == 0)
		return reply(c, 200, "text/plain", "hello, not json");
	if (strcmp(url, "/scalar") == 0)
		return reply(c, 200, "application/json", "42");
	if (strcmp(url, "/pending") == 0)
		return reply(c, 202, "application/json",
			     "{\"state\":\"pending\"}");
	if (strcmp(url, "/big") == 0) {
		size_t len;
		char *b = big_body(&len);
		enum MHD_Result rc = reply(c, 200, "application/json", b);

		free(b);
		return rc;
	}
	if (strcmp(url, "/notfound") == 0)
		return reply_error(c, 404, "not_found",
				   "device gw-9 is not known");
	if (strcmp(url, "/verify") == 0)
		return reply_error(c, 422, "verification_failed",
				   "bundle signature does not verify");
	if (fl_startswith(url, "/status/"))
		return reply_error(c, (unsigned)atoi(url + 8), NULL,
				   "plain status");
	if (fl_startswith(url, "/code/"))
		return reply_error(c, 400, url + 6, "coded error");
	if (fl_startswith(url, "/flaky/")) { /* 503 N times, then 201 */
		pthread_mutex_lock(&s->lock);
		int n = ++s->flaky;
		pthread_mutex_unlock(&s->lock);
		if (n <= atoi(url + 7))
			return reply_error(c, 503, "unavailable", "busy");
		return reply_json(c, 201, json_pack("{s:i}", "tries", n));
	}
	if (strcmp(url, "/in-progress") == 0)
		return reply_error(c, 409, "in_progress", "still running");
	if (strcmp(url, "/conflict-text") == 0)
		return reply(c, 409, "text/plain", "already exists");
	if (strcmp(url, "/redirect") == 0) {
		struct MHD_Response *resp = MHD_create_response_from_buffer(
		    0, (void *)"", MHD_RESPMEM_PERSISTENT);
		char *loc = fl_xasprintf("%s/echo", s->url);
		enum MHD_Result rc;

		MHD_add_response_header(resp, "Location", loc);
		rc = MHD_queue_response(c, 302, resp);
		MHD_destroy_response(resp);
		free(loc);
		return rc;
	}
	return reply(c, 404, "text/plain", "no route");
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
			       const char *url, const char *method,
			       const char *version, const char *upload_data,
			       size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;

	if (!r) {
		*con_cls = fl_xcalloc(1, sizeof(*r));
		return MHD_YES;
	}
	if (*upload_data_size) {
		r->body = fl_xrealloc(r->body, r->len + *upload_data_size);
		memcpy(r->body + r->len, upload_data, *upload_data_size);
		r->len += *upload_data_size;
		*upload_data_size = 0;
		return MHD_YES;
	}
	return route(cls, c, url, method, r);
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	struct req *r = *con_cls;

	if (r)
		free(r->body);
	free(r);
	*con_cls = NULL;
}

static void server_start(struct server *s)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	pthread_mutex_init(&s->lock, NULL);
	s->d = MHD_start_daemon(
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_ALLOW_SUSPEND_RESUME,
	    0, NULL, NULL, handler, s, MHD_OPTION_SOCK_ADDR, &addr,
	    MHD_OPTION_HTTPS_MEM_KEY, s->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
	    s->cert_pem, MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	assert_non_null(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	assert_true(info->port > 0);
	s->url = fl_xasprintf("https://127.0.0.1:%u", (unsigned)info->port);
}

/* Resume a parked request, if there is one. */
static void server_resume(struct server *s)
{
	struct MHD_Connection *c;

	pthread_mutex_lock(&s->lock);
	c = s->stalled;
	s->stalled = NULL;
	pthread_mutex_unlock(&s->lock);
	if (c)
		MHD_resume_connection(c);
}

static void server_stop(struct server *s)
{
	if (s->d) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_mutex_unlock(&s->lock);
		server_resume(s);
		MHD_stop_daemon(s->d);
		pthread_mutex_destroy(&s->lock);
	}
	for (int i = 0; i < 8; i++)
		free(s->keys[i]);
	clear_record(s);
	free(s->url);
	free(s->cert_pem);
	fl_free_secret(s->key_pem);
}

/* ---- PKI ---- */

struct ca {
	EVP_PKEY *root_key, *iss_key;
	X509 *root, *iss;
};

static void ca_make(struct ca *ca, const char *name, const char *root_file)
{
	struct fl_error err = {0};
	struct fl_pki_issuer r;
	char cn[64];

	assert_int_equal(fl_pki_keygen_p256(&ca->root_key, &err), 0);
	snprintf(cn, sizeof(cn), "%s Root", name);
	assert_int_equal(
	    fl_pki_root_create(ca->root_key, cn, FL_PKI_DAY, &ca->root, &err),
	    0);
	assert_int_equal(fl_pki_keygen_p256(&ca->iss_key, &err), 0);
	r = (struct fl_pki_issuer){ca->root, ca->root_key};
	snprintf(cn, sizeof(cn), "%s Issuing", name);
	assert_int_equal(fl_pki_issuing_create(&r, ca->iss_key, cn, FL_PKI_DAY,
					       &ca->iss, &err),
			 0);
	assert_int_equal(fl_pki_cert_save(root_file, &ca->root, 1, &err), 0);
}

static void ca_free(struct ca *ca)
{
	EVP_PKEY_free(ca->root_key);
	EVP_PKEY_free(ca->iss_key);
	X509_free(ca->root);
	X509_free(ca->iss);
}

/*
 * Issue a server certificate from @ca's issuing CA, save leaf + issuing
 * CA to @dir/@name.pem (what a TLS server must present), and load that
 * file and the key into @s for MHD.
 */
static void server_cert(struct server *s, struct ca *ca, const char *dir,
			const char *name, const char *ip, const char *dns)
{
	struct fl_pki_issuer iss = {ca->iss, ca->iss_key};
	struct fl_pki_policy pol = {
	    .kind = FL_PKI_SERVER,
	    .cn = "fleetd test",
	    .dns = &dns,
	    .n_dns = dns ? 1 : 0,
	    .ips = &ip,
	    .n_ips = ip ? 1 : 0,
	    .lifetime_s = 3600,
	};
	struct fl_error err = {0};
	EVP_PKEY *key = NULL;
	X509 *chain[2] = {NULL, NULL};
	char *file = fl_xasprintf("%s/%s.pem", dir, name);

	assert_int_equal(fl_pki_keygen_p256(&key, &err), 0);
	assert_int_equal(fl_pki_leaf_issue(&iss, &pol, key, &chain[0], &err),
			 0);
	chain[1] = ca->iss;
	assert_int_equal(fl_pki_cert_save(file, chain, 2, &err), 0);
	assert_int_equal(
	    fl_read_file(file, FL_PKI_PEM_MAX, &s->cert_pem, NULL, &err), 0);
	assert_int_equal(fl_pki_key_to_pem(key, &s->key_pem, &err), 0);
	X509_free(chain[0]);
	EVP_PKEY_free(key);
	free(file);
}

/* ---- fixture ---- */

static int group_setup(void **state)
{
	struct fixture *f = fl_xcalloc(1, sizeof(*f));
	struct ca fleet = {0}, other = {0};

	assert_int_equal(test_mkdtemp(f->dir, "http"), 0);
	f->ca_file = fl_path_join(f->dir, "ca.pem");
	f->other_ca_file = fl_path_join(f->dir, "other-ca.pem");
	ca_make(&fleet, "Fleet", f->ca_file);
	ca_make(&other, "Other", f->other_ca_file);
	server_cert(&f->main, &fleet, f->dir, "main", "127.0.0.1", NULL);
	server_cert(&f->other, &other, f->dir, "other", "127.0.0.1", NULL);
	server_cert(&f->wrong, &fleet, f->dir, "wrong", NULL, "fleet.invalid");
	ca_free(&fleet);
	ca_free(&other);
	server_start(&f->main);
	server_start(&f->other);
	server_start(&f->wrong);
	*state = f;
	return 0;
}

static int group_teardown(void **state)
{
	struct fixture *f = *state;
	int rc;

	server_stop(&f->main);
	server_stop(&f->other);
	server_stop(&f->wrong);
	rc = test_rmtree(f->dir);
	free(f->ca_file);
	free(f->other_ca_file);
	free(f);
	return rc;
}

static struct fl_http *client_opts(const struct fl_http_opts *o)
{
	struct fl_error err = {0};
	struct fl_http *h = NULL;

	assert_int_equal(fl_http_new(o, &h, &err), 0);
	assert_non_null(h);
	return h;
}

static struct fl_http *client(const char *url, const char *ca,
			      const char *token, long timeout_ms,
			      size_t max_response)
{
	return client_opts(&(struct fl_http_opts){
	    .base_url = url,
	    .ca_file = ca,
	    .token = token,
	    .timeout_ms = timeout_ms,
	    .max_response = max_response,
	});
}

static int hits(struct server *s)
{
	int n;

	pthread_mutex_lock(&s->lock);
	n = s->hits;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* ---- tests ---- */

/* The Idempotency-Key request @n (from 1) of @s carried, or NULL. */
static char *key_of(struct server *s, int n)
{
	char *k;

	pthread_mutex_lock(&s->lock);
	k = dup_or_null(s->keys[(n - 1) % 8]);
	pthread_mutex_unlock(&s->lock);
	return k;
}

/* @n requests from request @first on, each with the same 32-hex key
 * (NULL: none). */
static void assert_same_key(struct server *s, int first, int n, bool keyed)
{
	char *k0 = key_of(s, first), *k;

	if (!keyed) {
		assert_null(k0);
		return;
	}
	assert_non_null(k0);
	assert_int_equal(strlen(k0), 32);
	assert_int_equal(strspn(k0, "0123456789abcdef"), 32);
	for (int i = 1; i < n; i++) {
		k = key_of(s, first + i);
		assert_non_null(k);
		assert_string_equal(k, k0);
		free(k);
	}
	free(k0);
}

/* Issue 14: with retries, a request left unanswered (503, 409
 * in_progress) goes again with the same Idempotency-Key, up to 1 +
 * retries times; a definite answer is not retried; a new request has a
 * new key; GETs and clients without retries carry none. */
static void test_retries(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client_opts(&(struct fl_http_opts){
	    .base_url = f->main.url, .ca_file = f->ca_file, .retries = 3});
	struct fl_error err = {0};
	json_t *ret = NULL;
	int h0 = hits(&f->main);
	char *k1, *k2;

	f->main.flaky = 0;
	assert_int_equal(fl_http_json(h, "POST", "/flaky/2", NULL, &ret, &err),
			 0);
	assert_int_equal(json_integer_value(json_object_get(ret, "tries")), 3);
	json_decref(ret);
	assert_int_equal(hits(&f->main), h0 + 3);
	assert_same_key(&f->main, h0 + 1, 3, true);
	k1 = key_of(&f->main, h0 + 1);

	/* past the retries: the last answer's error */
	f->main.flaky = 0;
	assert_int_equal(
	    fl_http_json(h, "DELETE", "/flaky/9", NULL, NULL, &err), FL_ERR);
	assert_int_equal(fl_http_status(h), 503);
	assert_int_equal(hits(&f->main), h0 + 7);
	assert_same_key(&f->main, h0 + 4, 4, true);
	k2 = key_of(&f->main, h0 + 4);
	assert_string_not_equal(k1, k2); /* a new request, a new key */
	free(k1);
	free(k2);

	assert_int_equal(
	    fl_http_json(h, "POST", "/in-progress", NULL, NULL, &err),
	    FL_ECONFLICT);
	assert_int_equal(hits(&f->main), h0 + 11);

	/* a definite answer goes once */
	assert_int_equal(
	    fl_http_json(h, "POST", "/code/conflict", NULL, NULL, &err),
	    FL_ECONFLICT);
	assert_int_equal(hits(&f->main), h0 + 12);

	/* a GET is retried without a key */
	f->main.flaky = 0;
	assert_int_equal(fl_http_json(h, "GET", "/flaky/1", NULL, NULL, &err),
			 0);
	assert_int_equal(hits(&f->main), h0 + 14);
	assert_same_key(&f->main, h0 + 13, 2, false);
	fl_http_free(h);

	/* no retries: one try, no key */
	h = client(f->main.url, f->ca_file, NULL, 0, 0);
	f->main.flaky = 0;
	assert_int_equal(fl_http_json(h, "POST", "/flaky/1", NULL, NULL, &err),
			 FL_ERR);
	assert_int_equal(hits(&f->main), h0 + 15);
	assert_same_key(&f->main, h0 + 15, 1, false);
	fl_http_free(h);
}

static void test_get_json(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	struct fl_error err = {0};
	json_t *ret = NULL;

	assert_int_equal(fl_http_json(h, "GET", "/echo", NULL, &ret, &err), 0);
	assert_int_equal(err.code, 0);
	assert_int_equal(fl_http_status(h), 200);
	assert_true(json_is_object(ret));
	assert_string_equal(json_string_value(json_object_get(ret, "method")),
			    "GET");
	assert_string_equal(json_string_value(json_object_get(ret, "auth")),
			    "Bearer " TOKEN);
	assert_null(json_object_get(ret, "body"));
	json_decref(ret);

	pthread_mutex_lock(&f->main.lock);
	assert_string_equal(f->main.method, "GET");
	assert_string_equal(f->main.path, "/echo");
	assert_string_equal(f->main.auth, "Bearer " TOKEN);
	assert_int_equal(f->main.body_len, 0);
	pthread_mutex_unlock(&f->main.lock);
	fl_http_free(h);
}

static void test_post_json(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	json_t *body =
	    json_pack("{s:s,s:[i,i,i],s:{s:b},s:s}", "name", "gw-01", "list", 1,
		      2, 3, "nested", "ok", 1, "utf8", "h\xc3\xa9");
	struct fl_error err = {0};
	json_t *ret = NULL, *sent;

	assert_int_equal(fl_http_json(h, "POST", "/echo", body, &ret, &err), 0);
	assert_true(json_equal(json_object_get(ret, "body"), body));
	assert_string_equal(json_string_value(json_object_get(ret, "method")),
			    "POST");
	json_decref(ret);

	/* the server got exactly that JSON, typed as JSON, with the token */
	pthread_mutex_lock(&f->main.lock);
	assert_string_equal(f->main.ctype, "application/json");
	assert_string_equal(f->main.auth, "Bearer " TOKEN);
	sent =
	    json_loadb((const char *)f->main.body, f->main.body_len, 0, NULL);
	pthread_mutex_unlock(&f->main.lock);
	assert_true(json_equal(sent, body));
	json_decref(sent);

	/* a NULL @ret is fine: the body is dropped */
	assert_int_equal(fl_http_json(h, "PUT", "/echo", body, NULL, &err), 0);
	json_decref(body);
	fl_http_free(h);
}

static void test_no_token_no_header(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, NULL, 0, 0);
	json_t *ret = NULL;

	assert_int_equal(fl_http_json(h, "GET", "/echo", NULL, &ret, NULL), 0);
	assert_null(json_object_get(ret, "auth"));
	json_decref(ret);
	pthread_mutex_lock(&f->main.lock);
	assert_null(f->main.auth);
	pthread_mutex_unlock(&f->main.lock);
	fl_http_free(h);
}

/* The options' strings are copied. */
static void test_options_copied(void **state)
{
	struct fixture *f = *state;
	char url[64], ca[128], token[32];
	struct fl_http_opts o = {
	    .base_url = url, .ca_file = ca, .token = token};
	struct fl_http *h = NULL;
	json_t *ret = NULL;

	fl_strlcpy(url, f->main.url, sizeof(url));
	fl_strlcpy(ca, f->ca_file, sizeof(ca));
	fl_strlcpy(token, TOKEN, sizeof(token));
	assert_int_equal(fl_http_new(&o, &h, NULL), 0);
	memset(url, 0, sizeof(url));
	memset(ca, 0, sizeof(ca));
	memset(token, 0, sizeof(token));
	assert_int_equal(fl_http_json(h, "GET", "/echo", NULL, &ret, NULL), 0);
	assert_string_equal(json_string_value(json_object_get(ret, "auth")),
			    "Bearer " TOKEN);
	json_decref(ret);
	fl_http_free(h);
	fl_http_free(NULL);
}

static void test_empty_2xx(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	json_t *ret = json_true();

	assert_int_equal(fl_http_json(h, "DELETE", "/empty", NULL, &ret, NULL),
			 0);
	assert_int_equal(fl_http_status(h), 204);
	assert_null(ret);
	ret = json_true();
	assert_int_equal(fl_http_json(h, "POST", "/empty200", NULL, &ret, NULL),
			 0);
	assert_int_equal(fl_http_status(h), 200);
	assert_null(ret);
	fl_http_free(h);
}

static void test_not_found_message(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	json_t *sentinel = json_true(), *ret = sentinel;
	struct fl_error err = {0};

	assert_int_equal(fl_http_json(h, "GET", "/notfound", NULL, &ret, &err),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_int_equal(fl_http_status(h), 404);
	assert_ptr_equal(ret, sentinel);
	/* the server's own message is what the user sees */
	assert_non_null(strstr(err.msg, "device gw-9 is not known"));
	fl_http_free(h);
}

static void test_status_mapping(void **state)
{
	static const struct {
		const char *path;
		long status;
		int want;
	} cases[] = {
	    {"/status/401", 401, FL_EDENIED},
	    {"/status/403", 403, FL_EDENIED},
	    {"/status/404", 404, FL_ENOTFOUND},
	    {"/status/409", 409, FL_ECONFLICT},
	    {"/conflict-text", 409, FL_ECONFLICT},
	    {"/status/413", 413, FL_ELIMIT},
	    {"/status/504", 504, FL_ETIMEOUT},
	    {"/status/500", 500, FL_ERR},
	    {"/status/400", 400, FL_ERR},
	    {"/status/422", 422, FL_ERR}, /* 422 without the code */
	    {"/verify", 422, FL_EVERIFY},
	    {"/code/verification_failed", 400, FL_EVERIFY},
	    {"/code/forbidden", 400, FL_EDENIED},
	    {"/code/unauthorized", 400, FL_EDENIED},
	    {"/code/conflict", 400, FL_ECONFLICT},
	    {"/code/not_found", 400, FL_ENOTFOUND},
	    {"/code/too_large", 400, FL_ELIMIT},
	    {"/code/timeout", 400, FL_ETIMEOUT},
	    {"/code/something_new", 400, FL_ERR},
	    /* not followed: the redirect is an error, /echo is not hit */
	    {"/redirect", 302, FL_ERR},
	};
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		json_t *sentinel = json_true(), *ret = sentinel;
		struct fl_error err = {0};

		assert_int_equal(
		    fl_http_json(h, "POST", cases[i].path, NULL, &ret, &err),
		    cases[i].want);
		assert_int_equal(err.code, cases[i].want);
		assert_int_equal(fl_http_status(h), cases[i].status);
		assert_ptr_equal(ret, sentinel);
		pthread_mutex_lock(&f->main.lock);
		assert_string_equal(f->main.path, cases[i].path);
		pthread_mutex_unlock(&f->main.lock);
	}
	fl_http_free(h);
}

static void test_map_status_table(void **state)
{
	assert_int_equal(fl_err_from_http(403, NULL), FL_EDENIED);
	assert_int_equal(fl_err_from_http(401, NULL), FL_EDENIED);
	assert_int_equal(fl_err_from_http(404, NULL), FL_ENOTFOUND);
	assert_int_equal(fl_err_from_http(409, NULL), FL_ECONFLICT);
	assert_int_equal(fl_err_from_http(422, NULL), FL_ERR);
	assert_int_equal(fl_err_from_http(422, "verification_failed"),
			 FL_EVERIFY);
	assert_int_equal(fl_err_from_http(404, "conflict"), FL_ECONFLICT);
	assert_int_equal(fl_err_from_http(500, "bad_request"), FL_ERR);
	assert_int_equal(fl_err_from_http(500, "unknown"), FL_ERR);
}

static void test_response_cap(void **state)
{
	struct fixture *f = *state;
	size_t len;
	char *expect = big_body(&len);
	struct fl_http *small =
	    client(f->main.url, f->ca_file, TOKEN, 0, len - 1);
	struct fl_http *exact = client(f->main.url, f->ca_file, TOKEN, 0, len);
	json_t *sentinel = json_true(), *ret = sentinel;
	struct fl_error err = {0};

	assert_true(len > 32 * 1024); /* several TLS records */
	assert_int_equal(fl_http_json(small, "GET", "/big", NULL, &ret, &err),
			 FL_ELIMIT);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_ptr_equal(ret, sentinel);

	assert_int_equal(fl_http_json(exact, "GET", "/big", NULL, &ret, NULL),
			 0);
	assert_int_equal(json_array_size(ret), BIG_ITEMS);
	json_decref(ret);
	free(expect);
	fl_http_free(small);
	fl_http_free(exact);
}

static void test_not_json(void **state)
{
	static const char *const paths[] = {"/text", "/scalar"};
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);

	for (size_t i = 0; i < FL_ARRAY_SIZE(paths); i++) {
		json_t *sentinel = json_true(), *ret = sentinel;
		struct fl_error err = {0};

		assert_int_equal(
		    fl_http_json(h, "GET", paths[i], NULL, &ret, &err),
		    FL_EPARSE);
		assert_int_equal(err.code, FL_EPARSE);
		assert_ptr_equal(ret, sentinel);
	}
	fl_http_free(h);
}

/* Certificates the pinned CA did not issue, or for another name. */
static void test_tls_trust(void **state)
{
	struct fixture *f = *state;
	char *missing = fl_path_join(f->dir, "no-such-ca.pem");
	const struct {
		const char *url, *ca;
		int want;
	} cases[] = {
	    {f->other.url, f->ca_file, FL_EDENIED},
	    {f->main.url, f->other_ca_file, FL_EDENIED},
	    {f->wrong.url, f->ca_file, FL_EDENIED},
	    {f->main.url, missing, FL_EDENIED},
	    /* the same servers with the right CA: the check is the CA */
	    {f->other.url, f->other_ca_file, 0},
	    {f->main.url, f->ca_file, 0},
	};
	int before = hits(&f->other) + hits(&f->wrong);

	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		struct fl_http *h =
		    client(cases[i].url, cases[i].ca, TOKEN, 0, 0);
		json_t *ret = NULL;
		struct fl_error err = {0};

		assert_int_equal(
		    fl_http_json(h, "GET", "/echo", NULL, &ret, &err),
		    cases[i].want);
		assert_int_equal(err.code, cases[i].want);
		if (cases[i].want)
			assert_null(ret);
		json_decref(ret);
		fl_http_free(h);
	}
	/* no request reached a server that failed verification */
	assert_int_equal(hits(&f->other) + hits(&f->wrong), before + 1);
	free(missing);
}

static void test_connection_refused(void **state)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	socklen_t alen = sizeof(addr);
	json_t *sentinel = json_true(), *ret = sentinel;
	struct fl_error err = {0};
	struct fixture *f = *state;
	struct fl_http *h;
	char *url;
	int fd;

	/* a bound port that does not listen refuses connections */
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &alen), 0);
	url = fl_xasprintf("https://127.0.0.1:%u", ntohs(addr.sin_port));
	h = client(url, f->ca_file, TOKEN, 5000, 0);
	assert_int_equal(fl_http_json(h, "GET", "/echo", NULL, &ret, &err),
			 FL_EUNREACH);
	assert_int_equal(err.code, FL_EUNREACH);
	assert_ptr_equal(ret, sentinel);
	assert_int_equal(fl_http_status(h), 0);
	fl_http_free(h);
	close(fd);
	free(url);
}

static void test_timeout(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 500, 0);
	json_t *sentinel = json_true(), *ret = sentinel;
	struct fl_error err = {0};
	int64_t start = fl_now_ms(), took;

	assert_int_equal(fl_http_json(h, "GET", "/stall", NULL, &ret, &err),
			 FL_ETIMEOUT);
	took = fl_now_ms() - start;
	assert_int_equal(err.code, FL_ETIMEOUT);
	assert_ptr_equal(ret, sentinel);
	assert_true(took >= 400 && took < 10000);
	server_resume(&f->main);
	fl_http_free(h);
}

static void test_upload(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	char *file = fl_path_join(f->dir, "bundle.fwb");
	size_t n = 300 * 1024 + 17;
	unsigned char *data = fl_xmalloc(n);
	struct fl_error err = {0};
	char hex[65];
	json_t *ret = NULL;

	assert_int_equal(fl_random(data, n, NULL), 0);
	assert_int_equal(fl_write_atomic(file, data, n, 0600, NULL), 0);
	fl_sha256_hex(data, n, hex);
	assert_int_equal(fl_http_upload(h, "PUT", "/upload", file, &ret, &err),
			 0);
	assert_int_equal(json_integer_value(json_object_get(ret, "size")), n);
	assert_string_equal(json_string_value(json_object_get(ret, "sha256")),
			    hex);
	json_decref(ret);

	pthread_mutex_lock(&f->main.lock);
	assert_string_equal(f->main.method, "PUT");
	assert_string_equal(f->main.ctype, "application/octet-stream");
	assert_string_equal(f->main.auth, "Bearer " TOKEN);
	assert_int_equal(f->main.body_len, n);
	assert_memory_equal(f->main.body, data, n);
	pthread_mutex_unlock(&f->main.lock);

	/* an empty file is an empty body */
	assert_int_equal(fl_write_atomic(file, "", 0, 0600, NULL), 0);
	assert_int_equal(fl_http_upload(h, "POST", "/upload", file, &ret, &err),
			 0);
	assert_int_equal(json_integer_value(json_object_get(ret, "size")), 0);
	json_decref(ret);
	free(data);
	free(file);
	fl_http_free(h);
}

static void test_upload_errors(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	char *missing = fl_path_join(f->dir, "missing.fwb");
	char *file = fl_path_join(f->dir, "small.fwb");
	json_t *sentinel = json_true(), *ret = sentinel;
	struct fl_error err = {0};
	int before = hits(&f->main);

	assert_int_equal(
	    fl_http_upload(h, "PUT", "/upload", missing, &ret, &err),
	    FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	fl_error_clear(&err);
	assert_int_equal(
	    fl_http_upload(h, "PUT", "/upload", f->dir, &ret, &err), FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	assert_int_equal(hits(&f->main), before);
	/* the server's answer is mapped as for JSON requests */
	assert_int_equal(fl_write_atomic_str(file, "x", 0600, NULL), 0);
	assert_int_equal(
	    fl_http_upload(h, "PUT", "/status/403", file, &ret, NULL),
	    FL_EDENIED);
	assert_ptr_equal(ret, sentinel);
	free(missing);
	free(file);
	fl_http_free(h);
}

/* The body of @path fetched into a fresh file: its text, or NULL. */
static char *get_file(struct fl_http *h, const char *dir, const char *path,
		      uint64_t max, long *ret_status, int *ret_rc)
{
	char *file = fl_path_join(dir, "got"), *text = NULL;
	int fd = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);

	assert_true(fd >= 0);
	*ret_rc = fl_http_get_file(h, path, fd, max, ret_status, NULL);
	close(fd);
	assert_int_equal(fl_read_file(file, 1 << 20, &text, NULL, NULL), 0);
	unlink(file);
	free(file);
	return text;
}

/* A 200's body goes to the file, whole and capped; a 202's does not;
 * errors map as for JSON calls. */
static void test_get_file(void **state)
{
	struct fixture *f = *state;
	struct fl_http *h = client(f->main.url, f->ca_file, TOKEN, 0, 0);
	size_t len;
	char *expect = big_body(&len), *got;
	long status = 0;
	int rc;

	got = get_file(h, f->dir, "/big", len, &status, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 200);
	assert_string_equal(got, expect);
	free(got);
	got = get_file(h, f->dir, "/big", len - 1, &status, &rc);
	assert_int_equal(rc, FL_ELIMIT);
	free(got);
	status = 0;
	got = get_file(h, f->dir, "/pending", len, &status, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(status, 202);
	assert_string_equal(got, "");
	free(got);
	got = get_file(h, f->dir, "/notfound", len, &status, &rc);
	assert_int_equal(rc, FL_ENOTFOUND);
	assert_string_equal(got, "");
	free(got);
	free(expect);
	fl_http_free(h);
}

static void test_new_refuses(void **state)
{
	struct fixture *f = *state;
	static const char *const urls[] = {
	    "http://127.0.0.1:1",
	    "ftp://127.0.0.1",
	    "127.0.0.1:443",
	    "HTTPS://127.0.0.1",
	    "",
	    NULL,
	};
	struct fl_http *sentinel = (struct fl_http *)&urls, *h;

	for (size_t i = 0; i < FL_ARRAY_SIZE(urls); i++) {
		struct fl_http_opts o = {.base_url = urls[i],
					 .ca_file = f->ca_file};
		struct fl_error err = {0};

		h = sentinel;
		assert_int_equal(fl_http_new(&o, &h, &err), FL_EINVAL);
		assert_int_equal(err.code, FL_EINVAL);
		assert_ptr_equal(h, sentinel);
	}
	{
		struct fl_http_opts o = {.base_url = f->main.url};

		h = sentinel;
		assert_int_equal(fl_http_new(&o, &h, NULL), FL_EINVAL);
		assert_ptr_equal(h, sentinel);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_get_json),
	    cmocka_unit_test(test_post_json),
	    cmocka_unit_test(test_retries),
	    cmocka_unit_test(test_no_token_no_header),
	    cmocka_unit_test(test_options_copied),
	    cmocka_unit_test(test_empty_2xx),
	    cmocka_unit_test(test_not_found_message),
	    cmocka_unit_test(test_status_mapping),
	    cmocka_unit_test(test_map_status_table),
	    cmocka_unit_test(test_response_cap),
	    cmocka_unit_test(test_not_json),
	    cmocka_unit_test(test_tls_trust),
	    cmocka_unit_test(test_connection_refused),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_upload),
	    cmocka_unit_test(test_upload_errors),
	    cmocka_unit_test(test_get_file),
	    cmocka_unit_test(test_new_refuses),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

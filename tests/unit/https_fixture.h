/* SPDX-License-Identifier: MIT */
/*
 * A real in-process HTTPS server for the agent's download tests
 * (libmicrohttpd on 127.0.0.1, TLS, a thread per connection): it serves
 * one buffer at every URL, honours "Range: bytes=N-", records what was
 * asked, and misbehaves on request: drops the connection mid-body,
 * ignores Range, sends more than the file or another total, answers
 * another status.  The buffer is the caller's and may be changed
 * between requests (a file changed on the server).  Included by test
 * files only.
 */
#ifndef FL_TEST_HTTPS_FIXTURE_H
#define FL_TEST_HTTPS_FIXTURE_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <microhttpd.h>
#include <openssl/pem.h>

#include "pki.h"
#include "util.h"

#define HFX static __attribute__((unused))
#define HFX_RANGES 16

struct hfx_server {
	struct MHD_Daemon *d;
	char *url, *cert_pem, *key_pem;
	const unsigned char *data;
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
	char ranges[HFX_RANGES][32]; /* of the first requests ("": none) */
};

struct hfx_body {
	struct hfx_server *s;
	size_t off, end, sent, limit; /* limit 0: none */
};

HFX ssize_t hfx_body_cb(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct hfx_body *b = cls;
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

HFX enum MHD_Result hfx_answer(struct hfx_server *s, struct MHD_Connection *c,
			       size_t start, bool partial)
{
	struct hfx_body *b = fl_xcalloc(1, sizeof(*b));
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
					      hfx_body_cb, b, free);
	if (partial) {
		snprintf(cr, sizeof(cr), "bytes %zu-%zu/%zu", start, b->end - 1,
			 s->bad_total ? s->size + 1 : s->size);
		MHD_add_response_header(r, "Content-Range", cr);
	}
	rc = MHD_queue_response(c, partial ? 206 : 200, r);
	MHD_destroy_response(r);
	return rc;
}

HFX enum MHD_Result hfx_status(struct MHD_Connection *c, unsigned status)
{
	static const char body[] = "{\"error\":{\"code\":\"not_found\","
				   "\"message\":\"no such bundle\"}}";
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result rc = MHD_queue_response(c, status, r);

	MHD_destroy_response(r);
	return rc;
}

HFX enum MHD_Result hfx_handler(void *cls, struct MHD_Connection *c,
				const char *url, const char *method,
				const char *version, const char *upload,
				size_t *upload_size, void **con_cls)
{
	struct hfx_server *s = cls;
	const char *range;
	unsigned long long start = 0;

	if (!*con_cls) {
		*con_cls = (void *)1;
		return MHD_YES;
	}
	range = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Range");
	pthread_mutex_lock(&s->lock);
	if (s->requests < HFX_RANGES)
		fl_strlcpy(s->ranges[s->requests], range ? range : "",
			   sizeof(s->ranges[0]));
	s->requests++;
	fl_strlcpy(s->last_range, range ? range : "", sizeof(s->last_range));
	pthread_mutex_unlock(&s->lock);
	if (s->status)
		return hfx_status(c, s->status);
	if (range && !s->ignore_range &&
	    sscanf(range, "bytes=%llu-", &start) == 1 && start < s->size)
		return hfx_answer(s, c, (size_t)start, true);
	return hfx_answer(s, c, 0, false);
}

/* Serve @data (@size bytes, the caller's) with s->key_pem and
 * s->cert_pem (set before, by hfx_pki or the caller; freed by hfx_stop;
 * a chain may follow the certificate); sets s->url. */
HFX void hfx_start(struct hfx_server *s, const unsigned char *data, size_t size)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	const union MHD_DaemonInfo *info;

	s->data = data;
	s->size = size;
	pthread_mutex_init(&s->lock, NULL);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	s->d = MHD_start_daemon(
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
		MHD_USE_THREAD_PER_CONNECTION,
	    0, NULL, NULL, hfx_handler, s, MHD_OPTION_SOCK_ADDR, &addr,
	    MHD_OPTION_HTTPS_MEM_KEY, s->key_pem, MHD_OPTION_HTTPS_MEM_CERT,
	    s->cert_pem, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	    MHD_OPTION_END);
	assert_non_null(s->d);
	info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->url =
	    fl_xasprintf("https://127.0.0.1:%u/bundle", (unsigned)info->port);
}

/* The port s->url names. */
HFX int hfx_port(const struct hfx_server *s)
{
	return atoi(strrchr(s->url, ':') + 1);
}

/* Forget what was recorded. */
HFX void hfx_reset(struct hfx_server *s)
{
	pthread_mutex_lock(&s->lock);
	s->requests = 0;
	s->last_range[0] = '\0';
	memset(s->ranges, 0, sizeof(s->ranges));
	pthread_mutex_unlock(&s->lock);
}

HFX void hfx_stop(struct hfx_server *s)
{
	MHD_stop_daemon(s->d);
	pthread_mutex_destroy(&s->lock);
	free(s->url);
	free(s->cert_pem);
	fl_free_secret(s->key_pem);
}

/* A CA (saved to @ca_file) and a server certificate for 127.0.0.1 from
 * it into s->cert_pem and s->key_pem, before hfx_start. */
HFX void hfx_pki(struct hfx_server *s, const char *ca_file)
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

#endif

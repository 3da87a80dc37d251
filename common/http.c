/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "fsutil.h"
#include "http.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define DEFAULT_MAX_RESPONSE (4u * 1024 * 1024)

struct fl_http {
	CURL *curl;
	char *base_url, *ca_file, *auth_header, *cert_file, *key_file;
	long connect_timeout_ms, timeout_ms, status;
	size_t max_response;
	int retries;
	char api[32]; /* the error code of the last answer, "" if none */
	fl_http_progress_fn progress;
	void *progress_arg;
};

struct body_buf {
	char *data;
	size_t len, cap, max;
	bool too_big;
};

void fl_curl_secure(CURL *c, const struct fl_curl_tls *t)
{
	curl_easy_setopt(c, CURLOPT_URL, t->url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (t->cert_file) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file);
		curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file);
	}
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 t->connect_timeout_ms ? t->connect_timeout_ms
					       : 10000L);
}

static char *dup_opt(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

int fl_http_new(const struct fl_http_opts *o, struct fl_http **ret,
		struct fl_error *err)
{
	struct fl_http *h;

	if (!o->base_url || !fl_startswith(o->base_url, "https://"))
		return fl_fail(err, FL_EINVAL,
			       "server URL '%s' must start with https://",
			       o->base_url ? o->base_url : "");
	if (!o->ca_file)
		return fl_fail(err, FL_EINVAL,
			       "no CA file to verify the server (use --ca)");
	if (fl_curl_init(err))
		return FL_ERR;
	h = fl_xcalloc(1, sizeof(*h));
	h->curl = curl_easy_init();
	if (!h->curl) {
		free(h);
		return fl_fail(err, FL_ENOMEM, "cannot create a curl handle");
	}
	h->base_url = fl_xstrdup(o->base_url);
	h->ca_file = fl_xstrdup(o->ca_file);
	h->cert_file = dup_opt(o->cert_file);
	h->key_file = dup_opt(o->key_file);
	if (o->token)
		h->auth_header =
		    fl_xasprintf("Authorization: Bearer %s", o->token);
	h->connect_timeout_ms =
	    o->connect_timeout_ms ? o->connect_timeout_ms : 10000;
	h->timeout_ms = o->timeout_ms ? o->timeout_ms : 60000;
	h->max_response =
	    o->max_response ? o->max_response : DEFAULT_MAX_RESPONSE;
	h->retries = o->retries > 0 ? o->retries : 0;
	*ret = h;
	return 0;
}

void fl_http_free(struct fl_http *h)
{
	if (!h)
		return;
	curl_easy_cleanup(h->curl);
	free(h->base_url);
	free(h->ca_file);
	free(h->cert_file);
	free(h->key_file);
	fl_free_secret(h->auth_header);
	free(h);
}

long fl_http_status(const struct fl_http *h)
{
	return h->status;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct body_buf *b = user;
	size_t n = size * nmemb;

	if (b->len + n > b->max) {
		b->too_big = true;
		return 0; /* aborts the transfer */
	}
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->data = fl_xrealloc(b->data, b->cap);
	}
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* A TLS handshake the server cut (reset, as when it is killed): as
 * unreachable as a refused connection, not a TLS problem. */
static bool handshake_cut(CURLcode c, long os_errno)
{
	return c == CURLE_SSL_CONNECT_ERROR &&
	       (os_errno == ECONNRESET || os_errno == EPIPE ||
		os_errno == ECONNABORTED);
}

static int map_curl(CURLcode c, long os_errno, const char *errbuf,
		    const char *url, struct fl_error *err)
{
	const char *why = errbuf[0] ? errbuf : curl_easy_strerror(c);

	if (handshake_cut(c, os_errno))
		return fl_fail(err, FL_EUNREACH, "cannot reach server %s: %s",
			       url, why);
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
		return fl_fail(err, FL_EUNREACH, "cannot reach server %s: %s",
			       url, why);
	case CURLE_OPERATION_TIMEDOUT:
		return fl_fail(err, FL_ETIMEOUT, "server %s timed out: %s", url,
			       why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
		return fl_fail(err, FL_EDENIED,
			       "TLS verification of server %s failed: %s", url,
			       why);
	default:
		return fl_fail(err, FL_ERR, "request to %s failed: %s", url,
			       why);
	}
}

static void setup(struct fl_http *h, const char *method, const char *url,
		  struct curl_slist *hdrs, struct body_buf *resp, char *errbuf)
{
	CURL *c = h->curl;

	h->status = 0;
	h->api[0] = '\0';
	curl_easy_reset(c);
	fl_curl_secure(c, &(struct fl_curl_tls){
			      .url = url,
			      .ca_file = h->ca_file,
			      .cert_file = h->cert_file,
			      .key_file = h->key_file,
			      .connect_timeout_ms = h->connect_timeout_ms,
			  });
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, h->timeout_ms);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, resp);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "fleet/" FLEET_VERSION);
}

/*
 * Turn a finished exchange into the caller's result: parse the JSON body
 * of a 2xx response, or build an error from the server's JSON error.
 */
static int finish(struct fl_http *h, CURLcode cc, const char *errbuf,
		  const char *url, struct body_buf *resp, json_t **ret,
		  struct fl_error *err)
{
	json_t *j = NULL, *e;
	const char *code = NULL, *msg = NULL;
	int rc;

	if (resp->too_big)
		return fl_fail(err, FL_ELIMIT,
			       "response from %s is larger than %zu bytes", url,
			       resp->max);
	if (cc != CURLE_OK) {
		long os_errno = 0;

		curl_easy_getinfo(h->curl, CURLINFO_OS_ERRNO, &os_errno);
		return map_curl(cc, os_errno, errbuf, url, err);
	}
	curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &h->status);
	if (resp->len &&
	    fl_json_parse(resp->data, resp->len, resp->max, &j, NULL) &&
	    h->status < 400)
		return fl_fail(err, FL_EPARSE,
			       "server sent a response that is not JSON");
	if (h->status >= 200 && h->status < 300) {
		if (ret)
			*ret = j;
		else
			json_decref(j);
		return 0;
	}
	e = json_object_get(j, "error");
	code = json_string_value(json_object_get(e, "code"));
	msg = json_string_value(json_object_get(e, "message"));
	fl_strlcpy(h->api, code ? code : "", sizeof(h->api));
	rc = fl_fail(err, fl_err_from_http(h->status, code),
		     "server: %s (HTTP %ld)", msg ? msg : "request failed",
		     h->status);
	json_decref(j);
	return rc;
}

/* Whether the failed try @rc may go again (fl_http_opts.retries). */
static bool may_retry(const struct fl_http *h, int rc)
{
	return rc == FL_EUNREACH || h->status == 502 || h->status == 503 ||
	       (h->status == 409 && strcmp(h->api, "in_progress") == 0);
}

/* The wait before try @i + 2: the server's Retry-After (at most 5 s)
 * or 0.25 s doubled each time (at most 4 s). */
static long backoff_ms(const struct fl_http *h, int i)
{
	curl_off_t ra = 0;

	if (h->status &&
	    curl_easy_getinfo(h->curl, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK &&
	    ra > 0)
		return ra < 5 ? (long)ra * 1000 : 5000;
	return i < 4 ? 250L << i : 4000;
}

/* Run @try until it succeeds, fails for good or has gone
 * 1 + h->retries times. */
static int with_retries(struct fl_http *h,
			int (*try)(struct fl_http *, void *, struct fl_error *),
			void *arg, struct fl_error *err)
{
	for (int i = 0;; i++) {
		int rc = try(h, arg, err);

		if (!rc || i >= h->retries || !may_retry(h, rc))
			return rc;
		fl_debug("%s; trying again", err->msg);
		usleep((useconds_t)backoff_ms(h, i) * 1000);
		fl_error_clear(err);
	}
}

struct json_req {
	const char *method, *url, *payload;
	const char *key_header; /* Idempotency-Key: ..., or NULL */
	json_t **ret;
};

static int json_try(struct fl_http *h, void *arg, struct fl_error *err)
{
	struct json_req *q = arg;
	struct body_buf resp = {.max = h->max_response};
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	int rc;

	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (h->auth_header)
		hdrs = curl_slist_append(hdrs, h->auth_header);
	if (q->key_header)
		hdrs = curl_slist_append(hdrs, q->key_header);
	if (q->payload)
		hdrs =
		    curl_slist_append(hdrs, "Content-Type: application/json");
	setup(h, q->method, q->url, hdrs, &resp, errbuf);
	if (q->payload) {
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, q->payload);
		curl_easy_setopt(h->curl, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)strlen(q->payload));
	}
	cc = curl_easy_perform(h->curl);
	rc = finish(h, cc, errbuf, q->url, &resp, q->ret, err);
	curl_slist_free_all(hdrs);
	free(resp.data);
	return rc;
}

/* "Idempotency-Key: " and 128 random bits, for a request that changes
 * state and may be tried again; NULL otherwise. */
static char *key_header(const struct fl_http *h, const char *method)
{
	unsigned char r[16];
	char hex[33];

	if (!h->retries || !strcmp(method, "GET") || !strcmp(method, "HEAD") ||
	    fl_random(r, sizeof(r), NULL))
		return NULL;
	fl_hex(r, sizeof(r), hex);
	return fl_xasprintf("Idempotency-Key: %s", hex);
}

int fl_http_json(struct fl_http *h, const char *method, const char *path,
		 const json_t *body, json_t **ret, struct fl_error *err)
{
	struct json_req q = {
	    .method = method,
	    .url = fl_xasprintf("%s%s", h->base_url, path),
	    .payload = body ? fl_json_dumps(body) : NULL,
	    .key_header = key_header(h, method),
	    .ret = ret,
	};
	int rc = with_retries(h, json_try, &q, err);

	fl_free_secret((char *)q.payload); /* may carry an enrolment token */
	free((char *)q.key_header);
	free((char *)q.url);
	return rc;
}

void fl_http_set_limits(struct fl_http *h, long timeout_ms, size_t max_response)
{
	h->timeout_ms = timeout_ms ? timeout_ms : 60000;
	h->max_response = max_response ? max_response : DEFAULT_MAX_RESPONSE;
}

/* Where fl_http_get_file puts a body: a 200's into the file, any
 * other (JSON: 202, errors) into @json. */
struct file_sink {
	CURL *curl;
	int fd;
	uint64_t written, max;
	bool too_big, io_error;
	struct body_buf json;
};

static size_t on_file_body(char *ptr, size_t size, size_t nmemb, void *user)
{
	struct file_sink *s = user;
	size_t n = size * nmemb;
	long status = 0;

	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200)
		return on_body(ptr, size, nmemb, &s->json);
	if (s->written + n > s->max) {
		s->too_big = true;
		return 0;
	}
	if (fl_write_all(s->fd, ptr, n, NULL)) {
		s->io_error = true;
		return 0;
	}
	s->written += n;
	return n;
}

void fl_http_set_progress(struct fl_http *h, fl_http_progress_fn fn, void *arg)
{
	h->progress = fn;
	h->progress_arg = arg;
}

static int on_xferinfo(void *arg, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct fl_http *h = arg;

	if (ultotal > 0 || ulnow > 0)
		h->progress(h->progress_arg, (uint64_t)ulnow,
			    (uint64_t)ultotal);
	else
		h->progress(h->progress_arg, (uint64_t)dlnow,
			    (uint64_t)dltotal);
	return 0;
}

/* Report the transfer's progress to h->progress, when one is set. */
static void setup_progress(struct fl_http *h)
{
	if (!h->progress)
		return;
	curl_easy_setopt(h->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
	curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, h);
}

int fl_http_get_file(struct fl_http *h, const char *path, int fd, uint64_t max,
		     long *ret_status, struct fl_error *err)
{
	struct file_sink sink = {.curl = h->curl,
				 .fd = fd,
				 .max = max,
				 .json = {.max = h->max_response}};
	char *url = fl_xasprintf("%s%s", h->base_url, path);
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	int rc;

	if (h->auth_header)
		hdrs = curl_slist_append(hdrs, h->auth_header);
	setup(h, "GET", url, hdrs, &sink.json, errbuf);
	curl_easy_setopt(h->curl, CURLOPT_WRITEFUNCTION, on_file_body);
	curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, &sink);
	setup_progress(h);
	cc = curl_easy_perform(h->curl);
	if (sink.too_big)
		rc = fl_fail(err, FL_ELIMIT, "%s is larger than %llu bytes",
			     url, (unsigned long long)max);
	else if (sink.io_error)
		rc = fl_fail_errno(err, FL_EIO, "writing the body of %s", url);
	else
		rc = finish(h, cc, errbuf, url, &sink.json, NULL, err);
	if (!rc)
		*ret_status = h->status;
	curl_slist_free_all(hdrs);
	free(sink.json.data);
	free(url);
	return rc;
}

struct upload_req {
	const char *method, *url;
	FILE *f;
	curl_off_t size;
	json_t **ret;
};

static int upload_try(struct fl_http *h, void *arg, struct fl_error *err)
{
	struct upload_req *q = arg;
	struct body_buf resp = {.max = h->max_response};
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL;
	CURLcode cc;
	int rc;

	rewind(q->f); /* a retry sends it all again */
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs =
	    curl_slist_append(hdrs, "Content-Type: application/octet-stream");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (h->auth_header)
		hdrs = curl_slist_append(hdrs, h->auth_header);
	setup(h, q->method, q->url, hdrs, &resp, errbuf);
	curl_easy_setopt(h->curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(h->curl, CURLOPT_READDATA, q->f);
	curl_easy_setopt(h->curl, CURLOPT_INFILESIZE_LARGE, q->size);
	curl_easy_setopt(h->curl, CURLOPT_TIMEOUT_MS, 0L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h->curl, CURLOPT_LOW_SPEED_TIME,
			 (h->timeout_ms + 999) / 1000);
	setup_progress(h);
	cc = curl_easy_perform(h->curl);
	rc = finish(h, cc, errbuf, q->url, &resp, q->ret, err);
	curl_slist_free_all(hdrs);
	free(resp.data);
	return rc;
}

int fl_http_upload(struct fl_http *h, const char *method, const char *path,
		   const char *file, json_t **ret, struct fl_error *err)
{
	struct upload_req q = {.method = method, .ret = ret};
	struct stat st;
	int rc;

	q.f = fopen(file, "rb");
	if (!q.f)
		return fl_fail_errno(err,
				     errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				     "cannot open '%s'", file);
	if (fstat(fileno(q.f), &st) < 0 || !S_ISREG(st.st_mode)) {
		fclose(q.f);
		return fl_fail(err, FL_EIO, "'%s' is not a regular file", file);
	}
	q.size = (curl_off_t)st.st_size;
	q.url = fl_xasprintf("%s%s", h->base_url, path);
	rc = with_retries(h, upload_try, &q, err);
	free((char *)q.url);
	fclose(q.f);
	return rc;
}

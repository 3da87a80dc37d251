/* SPDX-License-Identifier: MIT */
#ifndef FL_HTTP_H
#define FL_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>

#include "err.h"

/*
 * HTTPS client over libcurl for fleetctl and the agent.  Only https is
 * allowed, the server is verified against one pinned CA file (the system
 * store is never consulted), redirects are not followed, and response
 * bodies are capped.
 *
 * Failures map to fl_err codes: connection refused / DNS / no route ->
 * FL_EUNREACH; timeouts -> FL_ETIMEOUT; HTTP errors by the server's JSON
 * error code, else by status (401/403 -> FL_EDENIED, 404 -> FL_ENOTFOUND,
 * 409 -> FL_ECONFLICT, 422 verification -> FL_EVERIFY, others FL_ERR).
 */
struct fl_http_opts {
	const char *base_url;	 /* "https://host:port", no trailing slash */
	const char *ca_file;	 /* PEM CA to pin; required */
	const char *token;	 /* bearer token or NULL */
	const char *cert_file;	 /* client certificate (mTLS) or NULL */
	const char *key_file;	 /* its key or NULL */
	long connect_timeout_ms; /* 0 = 10 s */
	long timeout_ms;	 /* whole request; 0 = 60 s */
	size_t max_response;	 /* 0 = 4 MiB */
	/* Times a request goes again after a failure that leaves it
	 * unanswered: the server not reached or cutting the exchange
	 * (FL_EUNREACH), 502/503, or 409 in_progress; 0 = never.  Each
	 * JSON request that changes state then carries a random
	 * Idempotency-Key, the same in each try, so fleetd carries it out
	 * once and a retry gets the first answer.  Uploads are idempotent
	 * by their content.  The waits between tries: 0.25, 0.5, 1, 2...
	 * s (at most 4), or the server's Retry-After (at most 5). */
	int retries;
};

struct fl_http;

/* Create a client; copies the strings in @o. */
int fl_http_new(const struct fl_http_opts *o, struct fl_http **ret,
		struct fl_error *err);

void fl_http_free(struct fl_http *h);

/*
 * @method @path with an optional JSON body.  On 2xx, *ret gets the parsed
 * response (NULL for an empty body).  On an HTTP error the server's
 * message is used.  *ret is written only on success.
 */
int fl_http_json(struct fl_http *h, const char *method, const char *path,
		 const json_t *body, json_t **ret, struct fl_error *err);

/* Stream a file as the request body (application/octet-stream). */
int fl_http_upload(struct fl_http *h, const char *method, const char *path,
		   const char *file, json_t **ret, struct fl_error *err);

/*
 * GET @path, writing the body of a 200 answer to the open file @fd (at
 * most @max bytes: FL_ELIMIT beyond, with part of it written); the body
 * of another 2xx answer (202: not ready yet) is not written.
 * *@ret_status gets the status of a 2xx answer.  Errors as
 * fl_http_json.
 */
int fl_http_get_file(struct fl_http *h, const char *path, int fd, uint64_t max,
		     long *ret_status, struct fl_error *err);

/*
 * Progress of the transfers of fl_http_upload and fl_http_get_file from
 * now on: @fn gets the bytes sent (upload) or received (download) and
 * the total (0 while unknown), a few times a second at most as libcurl
 * calls back.  NULL turns it off.
 */
typedef void (*fl_http_progress_fn)(void *arg, uint64_t done, uint64_t total);
void fl_http_set_progress(struct fl_http *h, fl_http_progress_fn fn, void *arg);

/* Whole-request timeout (0 = 60 s) and response cap (0 = 4 MiB) of the
 * requests made from now on. */
void fl_http_set_limits(struct fl_http *h, long timeout_ms,
			size_t max_response);

/* Status of the last response (0 if none). */
long fl_http_status(const struct fl_http *h);

/*
 * The one TLS setup of every Fleet HTTPS request (fl_http here, the
 * agent's resumable download): https only, the server verified against
 * the pinned @ca_file alone (no system store), optional client
 * certificate, no redirects, no signals, the connect timeout (0 = 10 s).
 * Strings are borrowed until the transfer ends.  @c came from
 * curl_easy_init after fl_curl_init.
 */
struct fl_curl_tls {
	const char *url, *ca_file;
	const char *cert_file, *key_file; /* mTLS; NULL for none */
	long connect_timeout_ms;
};
void fl_curl_secure(CURL *c, const struct fl_curl_tls *t);

/*
 * Load libcurl (it is not linked: common/lazylib.h) and run
 * curl_global_init, once per process (thread-safe).  Before any curl_*
 * call.
 */
int fl_curl_init(struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * The InfluxDB 1.x backend (docs/telemetry.md "Forwarding"): a batch is
 * one POST /write?db=DB&precision=ms of line protocol,
 *
 *     MEASUREMENT,device=ID,metric=NAME value=12.5 1764420000123
 *
 * device and metric are tags (commas, spaces and '=' escaped with a
 * backslash), value the one float field, the timestamp milliseconds.
 * A point InfluxDB writes again with the same series and time replaces
 * itself, so a retried batch stores nothing twice.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "fwd_internal.h"
#include "http.h"
#include "util.h"

struct influx {
	CURL *curl;
	char *write_url;
	char *measurement;
	char *username, *password;
	long timeout_ms;
};

/* What InfluxDB answers, kept for the error message. */
struct reply {
	char text[256];
	size_t n;
};

static size_t on_reply(char *data, size_t size, size_t nmemb, void *arg)
{
	struct reply *r = arg;
	size_t len = size * nmemb, room = sizeof(r->text) - 1 - r->n;

	memcpy(r->text + r->n, data, len < room ? len : room);
	r->n += len < room ? len : room;
	r->text[r->n] = '\0';
	return len;
}

/*
 * A tag value InfluxDB 1.x reads back as written: its parser takes a
 * backslash before any byte as an escape while it scans, but unescapes
 * only "\,", "\ " and "\=", so a backslash is stored verbatim except
 * right before one of those or at the very end.
 */
static bool tag_representable(const char *s)
{
	for (; *s; s++)
		if (*s == '\\' && (!s[1] || strchr(", =", s[1])))
			return false;
	return true;
}

static void put_tag(FILE *b, const char *s)
{
	for (; *s; s++) {
		if (strchr(", =", *s))
			putc('\\', b);
		putc(*s, b);
	}
}

static int build_body(struct influx *ix, struct fwd_pt *const *pts, size_t n,
		      FILE *b, struct fl_error *err)
{
	for (size_t i = 0; i < n; i++) {
		if (!tag_representable(pts[i]->device) ||
		    !tag_representable(pts[i]->metric))
			return fl_fail(err, FWD_BAD_BATCH,
				       "device '%s' metric '%s': a backslash "
				       "before ',', ' ', '=' or at the end "
				       "cannot be written to InfluxDB 1.x",
				       pts[i]->device, pts[i]->metric);
		fprintf(b, "%s,device=", ix->measurement);
		put_tag(b, pts[i]->device);
		fputs(",metric=", b);
		put_tag(b, pts[i]->metric);
		fprintf(b, " value=%.17g %lld\n", pts[i]->value,
			(long long)pts[i]->ts_ms);
	}
	return 0;
}

/*
 * 204: written.  400 (a point InfluxDB cannot parse or a field type
 * conflict) and 413 (too large) are the batch's fault: FWD_BAD_BATCH,
 * halved by the caller.  Anything else (401, 403, 404 database not found,
 * 429, 5xx, no connection) is retried as is.
 */
static int post(struct influx *ix, const char *body, size_t len,
		struct fl_error *err)
{
	struct reply r = {.n = 0};
	long status = 0;
	CURLcode cc;

	curl_easy_setopt(ix->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(ix->curl, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)len);
	curl_easy_setopt(ix->curl, CURLOPT_WRITEDATA, &r);
	cc = curl_easy_perform(ix->curl);
	if (cc != CURLE_OK)
		return fl_fail(err, FL_EUNREACH, "influx: %s",
			       curl_easy_strerror(cc));
	curl_easy_getinfo(ix->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 204 || status == 200)
		return 0;
	r.text[strcspn(r.text, "\r\n")] = '\0';
	return fl_fail(err,
		       status == 400 || status == 413 ? FWD_BAD_BATCH : FL_ERR,
		       "influx: HTTP %ld: %s", status, r.text);
}

static int influx_send(void *ctx, struct fwd_pt *const *pts, size_t n,
		       struct fl_error *err)
{
	struct influx *ix = ctx;
	char *body = NULL;
	size_t len = 0;
	FILE *b = open_memstream(&body, &len);
	int rc;

	if (!b)
		return fl_fail_errno(err, FL_ENOMEM, "influx: open_memstream");
	rc = build_body(ix, pts, n, b, err);
	if (fclose(b) && !rc)
		rc = fl_fail_errno(err, FL_ENOMEM, "influx: building a batch");
	if (!rc)
		rc = post(ix, body, len, err);
	free(body);
	return rc;
}

static void setup_curl(struct influx *ix)
{
	static const char *const hdr =
	    "Content-Type: text/plain; charset=utf-8";
	static struct curl_slist one = {(char *)hdr, NULL};

	curl_easy_setopt(ix->curl, CURLOPT_URL, ix->write_url);
	curl_easy_setopt(ix->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(ix->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(ix->curl, CURLOPT_TIMEOUT_MS, ix->timeout_ms);
	curl_easy_setopt(ix->curl, CURLOPT_CONNECTTIMEOUT_MS, ix->timeout_ms);
	curl_easy_setopt(ix->curl, CURLOPT_HTTPHEADER, &one);
	curl_easy_setopt(ix->curl, CURLOPT_WRITEFUNCTION, on_reply);
	if (ix->username) {
		curl_easy_setopt(ix->curl, CURLOPT_USERNAME, ix->username);
		curl_easy_setopt(ix->curl, CURLOPT_PASSWORD,
				 ix->password ? ix->password : "");
	}
}

static void influx_close(void *ctx)
{
	struct influx *ix = ctx;

	if (!ix)
		return;
	if (ix->curl)
		curl_easy_cleanup(ix->curl);
	free(ix->write_url);
	free(ix->measurement);
	free(ix->username);
	fl_free_secret(ix->password);
	free(ix);
}

/* The password: password_file, else $FLEETD_INFLUX_PASSWORD. */
static int load_password(const struct srv_fwd_config *cfg, struct influx *ix,
			 struct fl_error *err)
{
	const char *env = getenv("FLEETD_INFLUX_PASSWORD");
	int rc = srv_fwd_password(cfg, &ix->password, err);

	if (!rc && !ix->password && env)
		ix->password = fl_xstrdup(env);
	return rc;
}

static int influx_open(const struct srv_fwd_config *cfg, void **ret_ctx,
		       struct fl_error *err)
{
	struct influx *ix;
	char *db;
	int rc = fl_curl_init(err);

	if (rc)
		return rc;
	ix = fl_xcalloc(1, sizeof(*ix));
	ix->curl = curl_easy_init();
	ix->measurement = fl_xstrdup(cfg->measurement);
	ix->username = cfg->username ? fl_xstrdup(cfg->username) : NULL;
	ix->timeout_ms = (long)cfg->timeout_ms;
	rc = load_password(cfg, ix, err);
	if (!rc && !ix->curl)
		rc = fl_fail(err, FL_ENOMEM, "influx: curl_easy_init failed");
	if (rc) {
		influx_close(ix);
		return rc;
	}
	db = curl_easy_escape(ix->curl, cfg->database, 0);
	ix->write_url =
	    fl_xasprintf("%s/write?db=%s&precision=ms", cfg->url, db);
	curl_free(db);
	setup_curl(ix);
	*ret_ctx = ix;
	return 0;
}

const struct fwd_backend srv_fwd_influx = {
    .name = "influx",
    .open = influx_open,
    .send = influx_send,
    .close = influx_close,
};

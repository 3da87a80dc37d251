/* SPDX-License-Identifier: MIT */
/*
 * The bundles and trust root API (issue 4): uploads and downloads go
 * through bundles_svc.c (blob storage); downloads support HTTP Range so
 * agents resume.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "api_json.h"
#include "bundles_svc.h"
#include "http_range.h"
#include "json.h"
#include "log.h"
#include "root.h"
#include "util.h"
#include "validate.h"

static void upload_free(void *p)
{
	srv_upload_free(p);
}

int api_bundle_upload_body(struct srv_req *r, const char *data, size_t len,
			   struct fl_error *err)
{
	if (!r->ctx) {
		struct srv_upload *u = NULL;
		int rc = srv_upload_begin(r->srv, &u, err);

		if (rc)
			return rc;
		r->ctx = u;
		r->ctx_free = upload_free;
	}
	return srv_upload_write(r->ctx, data, len, err);
}

int api_bundle_upload(struct srv_req *r)
{
	struct srv_bundle_row b = {0};
	struct fl_error err = {0};
	json_t *info;

	if (!r->ctx)
		return srv_reply_error(r, 400, "bad_request", "empty upload");
	if (srv_upload_finish(r->srv, r->ctx, srv_req_actor(r), &b, &err)) {
		fl_warn("upload by %s refused: %s", srv_req_actor(r), err.msg);
		return srv_reply_fail(r, &err);
	}
	fl_info("stored bundle %s %s (%s) from %s", b.name, b.version, b.id,
		srv_req_actor(r));
	info = api_bundle_json(&b);
	srv_bundle_row_free(&b);
	return srv_reply_json(r, 201, info);
}

/* A bundle reference: hex id prefix or NAME@VERSION. */
static bool valid_ref(const char *ref)
{
	size_t n = strlen(ref);

	if (strchr(ref, '@'))
		return n < 200 && fl_valid_text(ref, 200) &&
		       !strpbrk(ref, "%_\\/");
	return n >= 6 && n <= 64 && strspn(ref, "0123456789abcdef") == n;
}

int api_bundle_list(struct srv_req *r)
{
	struct srv_bundle_list rows = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_store_bundle_list(r->srv->store, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_bundles_json(&rows);
	srv_bundle_list_free(&rows);
	return srv_reply_json(r, 200, out);
}

int api_bundle_get(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *b;

	if (!valid_ref(r->params[0]))
		return srv_reply_error(r, 400, "bad_request",
				       "bundle reference is an id or NAME@VERSION");
	if (api_bundle_fetch(r->srv->store, r->params[0], &b, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, b);
}

int api_bundle_download(struct srv_req *r)
{
	const char *range = srv_req_header(r, "Range");
	struct fl_error err = {0};
	uint64_t start = 0, end = 0, size = 0;
	char cr[FL_CONTENT_RANGE_MAX];
	int fd = -1, pr;

	if (!valid_ref(r->params[0]))
		return srv_reply_error(r, 400, "bad_request", "bad bundle id");
	if (srv_bundle_open(r->srv, r->params[0], &fd, &size, &err))
		return srv_reply_fail(r, &err);
	pr = fl_range_parse(range, size, &start, &end);
	if (pr < 0) {
		close(fd);
		return srv_reply_error(r, 416, "range_not_satisfiable",
				       "range %s outside %llu bytes", range,
				       (unsigned long long)size);
	}
	if (pr > 0)
		return srv_reply_file(r, 200, fd, 0, size, NULL);
	fl_content_range_format(cr, start, end, size);
	return srv_reply_file(r, 206, fd, start, end - start + 1, cr);
}

/*
 * POST /api/v1/roots with a root.json envelope.  The first root is
 * trusted on the admin's word (it must carry its own threshold); every
 * later one must extend the chain (fsig_root_update).
 */
int api_root_push(struct srv_req *r)
{
	struct fsig_root *cand = NULL, *cur = NULL, *newest = NULL;
	enum fsig_reason why = FSIG_R_NONE;
	struct fl_error err = {0};
	size_t len = 0;
	const char *text;
	int rc;

	if (!srv_req_json(r))
		return 0;
	rc = fsig_root_parse(r->body, r->body_len, &cand, &err);
	if (!rc && (rc = srv_trust_root_current(r->srv, &cur, &err)) == FL_ECONFLICT) {
		fl_error_clear(&err);
		rc = fsig_root_check_self(cand, &why, &err);
		if (!rc && fsig_root_expired(cand, 0))
			rc = fl_fail(&err, FL_EVERIFY, "root has expired");
		newest = rc ? NULL : cand;
		cand = rc ? cand : NULL;
	} else if (!rc && fsig_root_version(cand) <= fsig_root_version(cur)) {
		rc = fl_fail(&err, FL_ECONFLICT,
			     "root version %" PRIu64 " is not newer than the "
			     "trusted version %" PRIu64,
			     fsig_root_version(cand), fsig_root_version(cur));
	} else if (!rc) {
		rc = fsig_root_update(cur, &cand, 1, 0, &newest, &why, &err);
		if (!rc && fsig_root_version(newest) != fsig_root_version(cand))
			rc = fl_fail(&err, FL_ECONFLICT,
				     "root version %" PRIu64 " is not newer than %" PRIu64,
				     fsig_root_version(cand), fsig_root_version(cur));
	}
	if (!rc) {
		text = fsig_root_text(newest, &len);
		rc = srv_store_root_add(r->srv->store, fsig_root_version(newest),
					text, fsig_root_expires(newest),
					srv_req_actor(r), &err);
		/* a concurrent push of the same version won the insert */
		if (rc == FL_ECONFLICT) {
			fl_error_clear(&err);
			rc = fl_fail(&err, FL_ECONFLICT,
				     "root version %" PRIu64 " is already trusted",
				     fsig_root_version(newest));
		}
	}
	if (!rc)
		rc = srv_reply_json(r, 201,
				    json_pack("{s:I}", "version",
					      (json_int_t)fsig_root_version(newest)));
	else
		srv_reply_fail(r, &err);
	fsig_root_free(cand);
	fsig_root_free(cur);
	fsig_root_free(newest);
	return 0;
}

int api_root_list(struct srv_req *r)
{
	struct srv_root_list rows = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_store_root_list(r->srv->store, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_roots_json(&rows);
	srv_root_list_free(&rows);
	return srv_reply_json(r, 200, out);
}

int api_root_get(struct srv_req *r)
{
	struct fl_error err = {0};
	uint64_t v = 0;
	char *text = NULL;
	json_t *j;

	if (!fl_streq(r->params[0], "latest") &&
	    (fl_parse_uint(r->params[0], UINT32_MAX, &v, &err) || v == 0))
		return srv_reply_error(r, 400, "bad_request",
				       "root version is a number or 'latest'");
	if (srv_store_root_get(r->srv->store, v, &text, &err))
		return srv_reply_fail(r, &err);
	j = json_loads(text, 0, NULL);
	free(text);
	return srv_reply_json(r, 200, j);
}

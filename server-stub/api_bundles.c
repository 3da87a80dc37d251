/* SPDX-License-Identifier: MIT */
/*
 * Bundles and the trust root on fleetd (issue 4): uploads stream to a
 * temporary file and are verified against fleetd's trust root before
 * they are stored; downloads support HTTP Range so agents resume.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api.h"
#include "api_json.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "reader.h"
#include "root.h"
#include "util.h"
#include "validate.h"

struct upload {
	int fd;
	char *path;
};

static void upload_free(void *p)
{
	struct upload *u = p;

	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (u->path)
		unlink(u->path);
	free(u->path);
	free(u);
}

static int upload_chunk(struct srv_req *r, const char *data, size_t len,
			struct fl_error *err)
{
	struct upload *u = r->ctx;

	if (!u) {
		char *dir = srv_path(r->srv, "bundles");
		int rc = fl_mkdir_p(dir, 0700, err);

		u = fl_xcalloc(1, sizeof(*u));
		u->fd = -1;
		u->path = fl_xasprintf("%s/.upload.XXXXXX", dir);
		free(dir);
		r->ctx = u;
		r->ctx_free = upload_free;
		if (!rc && (u->fd = mkostemp(u->path, O_CLOEXEC)) < 0)
			rc = fl_fail_errno(err, FL_EIO, "cannot store upload");
		if (rc)
			return rc;
	}
	return fl_write_all(u->fd, data, len, err);
}

/* The newest trust root fleetd has (caller frees). */
static int current_root(struct srv *srv, struct fsig_root **ret,
			struct fl_error *err)
{
	char *text = NULL;
	int rc = srv_store_root_get(srv->store, 0, &text, err);

	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		return fl_fail(err, FL_ECONFLICT,
			       "fleetd has no trust root yet "
			       "(fleetctl root push ROOT.json)");
	}
	if (!rc)
		rc = fsig_root_parse(text, strlen(text), ret, err);
	free(text);
	return rc;
}

/* Verify the uploaded file completely (signatures, layout, hashes). */
static int verify_upload(struct srv *srv, int fd, struct fsig_manifest **ret_m,
			 char sha[65], struct fl_error *err)
{
	struct fsig_root *root = NULL;
	struct fsig_reader *rd = NULL;
	int rc;

	rc = current_root(srv, &root, err);
	if (!rc && lseek(fd, 0, SEEK_SET) < 0)
		rc = fl_fail_errno(err, FL_EIO, "seek");
	if (!rc)
		rc = fsig_reader_open_fd(fd, &rd, err);
	if (!rc)
		rc = fsig_reader_verify(rd, root, NULL, err);
	if (!rc)
		rc = fsig_reader_stream(rd, NULL, err);
	if (!rc) {
		fl_strlcpy(sha, fsig_reader_manifest_sha256(rd), 65);
		*ret_m = fsig_reader_take_manifest(rd);
	}
	fsig_reader_free(rd);
	fsig_root_free(root);
	return rc;
}

/* Move the verified upload into place and record it. */
static int store_bundle(struct srv_req *r, struct upload *u,
			const struct fsig_manifest *m, const char *sha,
			json_t **ret, struct fl_error *err)
{
	char id[17], *dest, *manifest = fl_json_dumps(m->json);
	struct stat st;
	bool existed = false;
	struct srv_bundle b = {.id = id, .sha256 = sha, .name = m->name,
			       .version = m->version,
			       .security_version = m->security_version,
			       .hardware = m->hardware,
			       .n_hardware = m->n_hardware,
			       .manifest = manifest};
	int rc;

	fl_strlcpy(id, sha, sizeof(id));
	dest = fl_xasprintf("%s/bundles/%s.fwb", r->srv->state_dir, id);
	rc = fstat(u->fd, &st) < 0 || fsync(u->fd) < 0
		     ? fl_fail_errno(err, FL_EIO, "cannot sync upload")
		     : 0;
	b.size = (uint64_t)st.st_size;
	if (!rc)
		rc = srv_store_bundle_add(r->srv->store, &b, srv_req_actor(r),
					  &existed, err);
	if (!rc && !existed && rename(u->path, dest) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot store bundle");
	if (!rc && !existed)
		rc = fl_fsync_parent(dest, err);
	if (!rc)
		rc = api_bundle_fetch(r->srv->store, id, ret, err);
	free(manifest);
	free(dest);
	return rc;
}

int api_bundle_upload(struct srv_req *r)
{
	struct upload *u = r->ctx;
	struct fsig_manifest *m = NULL;
	struct fl_error err = {0};
	json_t *info = NULL;
	char sha[65];
	int rc;

	if (!u)
		return srv_reply_error(r, 400, "bad_request", "empty upload");
	rc = verify_upload(r->srv, u->fd, &m, sha, &err);
	if (!rc)
		rc = store_bundle(r, u, m, sha, &info, &err);
	fsig_manifest_free(m);
	if (rc) {
		fl_warn("upload by %s refused: %s", srv_req_actor(r), err.msg);
		return srv_reply_fail(r, &err);
	}
	fl_info("stored bundle %s %s (%s) from %s",
		json_string_value(json_object_get(info, "name")),
		json_string_value(json_object_get(info, "version")),
		json_string_value(json_object_get(info, "id")), srv_req_actor(r));
	return srv_reply_json(r, 201, info);
}

int api_bundle_upload_body(struct srv_req *r, const char *data, size_t len,
			   struct fl_error *err)
{
	return upload_chunk(r, data, len, err);
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

/*
 * "bytes=START-" or "bytes=START-END" (one range).  Returns 0 with the
 * range, 1 when there is none to honour, -1 when unsatisfiable.
 */
static int parse_range(const char *h, uint64_t size, uint64_t *start,
		       uint64_t *end)
{
	char tail;
	unsigned long long a, b;
	int n;

	if (!h || strncmp(h, "bytes=", 6) != 0 || strchr(h, ','))
		return 1;
	n = sscanf(h + 6, "%llu-%llu%c", &a, &b, &tail);
	if (n == 1 && h[strlen(h) - 1] == '-')
		b = size ? size - 1 : 0;
	else if (n != 2)
		return 1;
	if (a >= size || b < a)
		return -1;
	*start = a;
	*end = b < size ? b : size - 1;
	return 0;
}

int api_bundle_download(struct srv_req *r)
{
	const char *range = srv_req_header(r, "Range");
	struct fl_error err = {0};
	uint64_t start = 0, end = 0;
	char *path, cr[96];
	struct srv_bundle_row b = {0};
	struct stat st;
	int fd, pr;

	if (!valid_ref(r->params[0]))
		return srv_reply_error(r, 400, "bad_request", "bad bundle id");
	if (srv_store_bundle_get(r->srv->store, r->params[0], &b, &err))
		return srv_reply_fail(r, &err);
	path = fl_xasprintf("%s/bundles/%s.fwb", r->srv->state_dir, b.id);
	srv_bundle_row_free(&b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return srv_reply_error(r, 500, "internal", "bundle file missing");
	}
	pr = parse_range(range, (uint64_t)st.st_size, &start, &end);
	if (pr < 0) {
		close(fd);
		return srv_reply_error(r, 416, "range_not_satisfiable",
				       "range %s outside %lld bytes", range,
				       (long long)st.st_size);
	}
	if (pr > 0)
		return srv_reply_file(r, 200, fd, 0, (uint64_t)st.st_size, NULL);
	snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%lld", start,
		 end, (long long)st.st_size);
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
	if (!rc && (rc = current_root(r->srv, &cur, &err)) == FL_ECONFLICT) {
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

/* SPDX-License-Identifier: MIT */
/*
 * Bundle blob storage (issue 4, moved out of the HTTP handlers in issue
 * 9 item 2): STATE/bundles holds one ID.fwb per bundle and the
 * temporary files of uploads in flight.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundles_svc.h"
#include "fsutil.h"
#include "json.h"
#include "reader.h"
#include "srv.h"
#include "util.h"

struct srv_upload {
	int fd;
	char *path;
};

int srv_trust_root_current(struct srv *srv, struct fsig_root **ret,
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

/* STATE/bundles/ID.fwb; caller frees. */
static char *blob_path(struct srv *srv, const char *id)
{
	return fl_xasprintf("%s/bundles/%s.fwb", srv->state_dir, id);
}

void srv_upload_free(struct srv_upload *u)
{
	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (u->path)
		unlink(u->path);
	free(u->path);
	free(u);
}

int srv_upload_begin(struct srv *srv, struct srv_upload **ret,
		     struct fl_error *err)
{
	char *dir = srv_path(srv, "bundles");
	struct srv_upload *u = fl_xcalloc(1, sizeof(*u));
	int rc = fl_mkdir_p(dir, 0700, err);

	u->fd = -1;
	u->path = fl_xasprintf("%s/.upload.XXXXXX", dir);
	free(dir);
	if (!rc && (u->fd = mkostemp(u->path, O_CLOEXEC)) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot store upload");
	if (rc) {
		if (u->fd < 0) { /* nothing was created under the name */
			free(u->path);
			u->path = NULL;
		}
		srv_upload_free(u);
		return rc;
	}
	*ret = u;
	return 0;
}

int srv_upload_write(struct srv_upload *u, const void *data, size_t len,
		     struct fl_error *err)
{
	return fl_write_all(u->fd, data, len, err);
}

/* Verify the uploaded file completely (signatures, layout, hashes). */
static int verify(struct srv *srv, int fd, struct fsig_manifest **ret_m,
		  char sha[65], struct fl_error *err)
{
	struct fsig_root *root = NULL;
	struct fsig_reader *rd = NULL;
	int rc;

	rc = srv_trust_root_current(srv, &root, err);
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
static int store(struct srv *srv, struct srv_upload *u,
		 const struct fsig_manifest *m, const char *sha,
		 const char *actor, struct srv_bundle_row *ret,
		 struct fl_error *err)
{
	char id[17], *dest, *manifest = fl_json_dumps(m->json);
	struct stat st;
	bool existed = false;
	struct srv_bundle b = {.id = id,
			       .sha256 = sha,
			       .name = m->name,
			       .version = m->version,
			       .security_version = m->security_version,
			       .hardware = m->hardware,
			       .n_hardware = m->n_hardware,
			       .manifest = manifest};
	int rc;

	fl_strlcpy(id, sha, sizeof(id));
	dest = blob_path(srv, id);
	rc = fstat(u->fd, &st) < 0 || fsync(u->fd) < 0
		 ? fl_fail_errno(err, FL_EIO, "cannot sync upload")
		 : 0;
	b.size = (uint64_t)st.st_size;
	if (!rc)
		rc = srv_store_bundle_add(srv->store, &b, actor, &existed, err);
	if (!rc && !existed && rename(u->path, dest) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot store bundle");
	if (!rc && !existed)
		rc = fl_fsync_parent(dest, err);
	if (!rc)
		rc = srv_store_bundle_get(srv->store, id, ret, err);
	free(manifest);
	free(dest);
	return rc;
}

int srv_upload_finish(struct srv *srv, struct srv_upload *u, const char *actor,
		      struct srv_bundle_row *ret, struct fl_error *err)
{
	struct fsig_manifest *m = NULL;
	char sha[65];
	int rc;

	rc = verify(srv, u->fd, &m, sha, err);
	if (!rc)
		rc = store(srv, u, m, sha, actor, ret, err);
	fsig_manifest_free(m);
	return rc;
}

char *srv_bundle_mirror_url(const struct srv *srv, const char *id)
{
	if (!srv->cfg.mirror_url)
		return NULL;
	return fl_xasprintf("%s%s.fwb", srv->cfg.mirror_url, id);
}

int srv_bundle_open(struct srv *srv, const char *ref, int *ret_fd,
		    uint64_t *ret_size, struct fl_error *err)
{
	struct srv_bundle_row b = {0};
	struct stat st;
	char *path;
	int fd, rc;

	rc = srv_store_bundle_get(srv->store, ref, &b, err);
	if (rc)
		return rc;
	path = blob_path(srv, b.id);
	srv_bundle_row_free(&b);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	free(path);
	if (fd < 0 || fstat(fd, &st) < 0) {
		if (fd >= 0)
			close(fd);
		return fl_fail(err, FL_EIO, "bundle file missing");
	}
	*ret_fd = fd;
	*ret_size = (uint64_t)st.st_size;
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Support bundles uploaded by devices, held for download (diag_bundles.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag_bundles.h"
#include "fsutil.h"
#include "store.h"
#include "util.h"

/* A bundle call this fleetd began (the upload's state is in the store). */
struct entry {
	bool used;
	bool done; /* its call ended: freed at the next tick */
	char id[SRV_DIAG_UPLOAD_ID_MAX];
	struct srv_diag_call *call; /* owned */
};

struct srv_diag_bundles {
	pthread_mutex_t lock;
	char *dir;
	uint64_t max_size;
	struct srv_store *store;
	int64_t expired_ms; /* the last expiry in the store */
	struct entry e[SRV_DIAG_BUNDLES_HELD];
};

struct srv_diag_upload {
	struct srv_diag_bundles *b;
	char id[SRV_DIAG_UPLOAD_ID_MAX];
	char *tmp;
	int fd;
	uint64_t size;
	unsigned char head[2]; /* the gzip magic, once 2 bytes are in */
	bool finished;
};

/* DIR/ID.tar.gz; caller frees. */
static char *bundle_path(const struct srv_diag_bundles *b, const char *id)
{
	return fl_xasprintf("%s/%s.tar.gz", b->dir, id);
}

int srv_diag_bundles_new(const char *dir, uint64_t max_size,
			 struct srv_store *store, struct srv_diag_bundles **ret,
			 struct fl_error *err)
{
	struct srv_diag_bundles *b;

	if (fl_mkdir_p(dir, 0700, err))
		return FL_EIO;
	b = fl_xcalloc(1, sizeof(*b));
	b->dir = fl_xstrdup(dir);
	b->max_size = max_size;
	b->store = store;
	pthread_mutex_init(&b->lock, NULL);
	*ret = b;
	return 0;
}

/* Remove the file of upload @id. */
static void unlink_bundle(const struct srv_diag_bundles *b, const char *id)
{
	char *p = bundle_path(b, id);

	unlink(p);
	free(p);
}

/* Lock held: forget the call @e (its upload stays in the store). */
static void drop(struct entry *e)
{
	srv_diag_call_free(e->call);
	memset(e, 0, sizeof(*e));
}

void srv_diag_bundles_free(struct srv_diag_bundles *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used)
			drop(&b->e[i]);
	pthread_mutex_destroy(&b->lock);
	free(b->dir);
	free(b);
}

int srv_diag_bundles_add(struct srv_diag_bundles *b, const char *device,
			 struct srv_diag_call *call,
			 char ret_id[SRV_DIAG_UPLOAD_ID_MAX],
			 struct fl_error *err)
{
	struct entry *e = NULL;
	unsigned char raw[12];
	char hex[25], id[SRV_DIAG_UPLOAD_ID_MAX];
	int rc;

	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	snprintf(id, sizeof(id), "u-%s", hex);
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; !e && i < SRV_DIAG_BUNDLES_HELD; i++)
		if (!b->e[i].used)
			e = &b->e[i];
	rc = e ? srv_store_upload_add(b->store, id, device, fl_wall_ms(),
				      SRV_DIAG_BUNDLES_HELD, err)
	       : fl_fail(err, FL_ELIMIT,
			 "this fleetd waits for %d support bundles already",
			 SRV_DIAG_BUNDLES_HELD);
	if (!rc) {
		e->used = true;
		memcpy(e->id, id, sizeof(id));
		e->call = call;
		memcpy(ret_id, id, sizeof(id));
	}
	pthread_mutex_unlock(&b->lock);
	return rc;
}

/* Lock held: the entry of the call @c, or NULL. */
static struct entry *find_call(struct srv_diag_bundles *b,
			       const struct srv_diag_call *c)
{
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used && b->e[i].call == c)
			return &b->e[i];
	return NULL;
}

void srv_diag_bundles_remove(struct srv_diag_bundles *b, const char *id)
{
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used && fl_streq(b->e[i].id, id))
			drop(&b->e[i]);
	pthread_mutex_unlock(&b->lock);
	srv_store_upload_drop(b->store, id, NULL);
}

/* What a failed bundle call says went wrong. */
static char *call_error(const struct srv_diag_target *t)
{
	const char *why = json_string_value(json_object_get(t->reply, "error"));

	if (t->state == SRV_DIAG_ANSWERED)
		return fl_xstrdup("the device reported an upload that never "
				  "arrived");
	return fl_xstrdup(why ? why : t->error ? t->error : "failed");
}

void srv_diag_bundles_settle(struct srv_diag_bundles *b,
			     const struct srv_diag_call *c, int64_t now)
{
	const struct srv_diag_target *t = &c->t[0];
	bool timed_out = t->state == SRV_DIAG_TIMED_OUT;
	char id[SRV_DIAG_UPLOAD_ID_MAX] = "", *why;
	struct entry *e;

	pthread_mutex_lock(&b->lock);
	e = find_call(b, c);
	if (e) {
		memcpy(id, e->id, sizeof(id));
		e->done = true;
	}
	pthread_mutex_unlock(&b->lock);
	if (!*id)
		return;
	why = timed_out ? NULL : call_error(t);
	srv_store_upload_settle(
	    b->store, id, timed_out ? SRV_BUNDLE_EXPIRED : SRV_BUNDLE_FAILED,
	    why, now, NULL);
	free(why);
}

int srv_diag_upload_begin(struct srv_diag_bundles *b, const char *device,
			  const char *id, struct srv_diag_upload **ret,
			  struct fl_error *err)
{
	struct srv_diag_upload *u;
	int rc = srv_store_upload_begin(b->store, id, device, err);

	if (rc)
		return rc;
	u = fl_xcalloc(1, sizeof(*u));
	u->b = b;
	fl_strlcpy(u->id, id, sizeof(u->id));
	u->tmp = fl_xasprintf("%s/.%s.XXXXXX", b->dir, id);
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot create a file in %s",
				   b->dir);
		srv_diag_upload_free(u);
		return rc;
	}
	*ret = u;
	return 0;
}

int srv_diag_upload_write(struct srv_diag_upload *u, const void *data,
			  size_t len, struct fl_error *err)
{
	for (size_t i = 0; i < len && u->size + i < sizeof(u->head); i++)
		u->head[u->size + i] = ((const unsigned char *)data)[i];
	if (u->size + len > u->b->max_size)
		return fl_fail(err, FL_ELIMIT, "support bundle over %llu bytes",
			       (unsigned long long)u->b->max_size);
	u->size += len;
	return fl_write_all(u->fd, data, len, err);
}

int srv_diag_upload_finish(struct srv_diag_upload *u, uint64_t *ret_size,
			   int64_t now, struct fl_error *err)
{
	char *path;
	int rc = 0;

	if (u->size < 2 || u->head[0] != 0x1f || u->head[1] != 0x8b)
		return fl_fail(err, FL_EPARSE,
			       "a support bundle is a .tar.gz: "
			       "this is not gzip data");
	path = bundle_path(u->b, u->id);
	if (fsync(u->fd) < 0 || rename(u->tmp, path) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot store %s", path);
	free(path);
	if (rc)
		return rc;
	fl_fsync_parent(u->tmp, NULL);
	rc = srv_store_upload_finish(u->b->store, u->id, u->size, now, err);
	if (rc) {
		unlink_bundle(u->b, u->id);
		return rc;
	}
	u->finished = true;
	*ret_size = u->size;
	return 0;
}

void srv_diag_upload_free(struct srv_diag_upload *u)
{
	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (!u->finished) {
		unlink(u->tmp);
		srv_store_upload_abort(u->b->store, u->id, fl_wall_ms(), NULL);
	}
	free(u->tmp);
	free(u);
}

int srv_diag_bundles_get(struct srv_diag_bundles *b, const char *device,
			 const char *id, enum srv_bundle_state *ret_state,
			 int *ret_fd, uint64_t *ret_size, char **ret_error,
			 struct fl_error *err)
{
	struct srv_upload_row row = {0};
	char *path = NULL;
	int rc = srv_store_upload_get(b->store, id, device, &row, err);

	if (!rc && row.state == SRV_BUNDLE_UPLOADED) {
		path = bundle_path(b, id);
		*ret_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*ret_fd < 0)
			rc = fl_fail_errno(err, FL_EIO, "cannot open %s", path);
		*ret_size = row.size;
	} else if (!rc && row.state == SRV_BUNDLE_FAILED) {
		*ret_error = fl_xstrdup(row.error ? row.error : "failed");
	}
	if (!rc)
		*ret_state = (enum srv_bundle_state)row.state;
	free(row.error);
	free(path);
	return rc;
}

void srv_diag_bundles_tick(struct srv_diag_bundles *b, int64_t now)
{
	struct srv_strv gone = {0};

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used && b->e[i].done)
			drop(&b->e[i]);
	pthread_mutex_unlock(&b->lock);
	if (srv_store_upload_expire(
		b->store, now, SRV_DIAG_BUNDLE_KEEP_S * 1000LL,
		SRV_DIAG_BUNDLE_STALE_S * 1000LL, &gone, NULL))
		return;
	for (size_t i = 0; i < gone.n; i++)
		unlink_bundle(b, gone.v[i]);
	srv_strv_free(&gone);
}

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
#include "util.h"

struct entry {
	bool used;
	char id[SRV_DIAG_UPLOAD_ID_MAX];
	char device[FL_ID_MAX + 1];
	enum srv_bundle_state state;
	char *error;		    /* failed: why */
	uint64_t size;		    /* uploaded */
	int64_t settled_ms;	    /* 0 while pending or arriving */
	bool call_done;		    /* its diag call completed */
	struct srv_diag_call *call; /* owned */
};

struct srv_diag_bundles {
	pthread_mutex_t lock;
	char *dir;
	uint64_t max_size;
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

/* Remove what a previous fleetd left in @dir (the table starts empty). */
static void empty_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d))) {
		char *p;

		if (de->d_name[0] == '.' &&
		    (!de->d_name[1] || fl_streq(de->d_name, "..")))
			continue;
		p = fl_path_join(dir, de->d_name);
		unlink(p);
		free(p);
	}
	closedir(d);
}

int srv_diag_bundles_new(const char *dir, uint64_t max_size,
			 struct srv_diag_bundles **ret, struct fl_error *err)
{
	struct srv_diag_bundles *b;

	if (fl_mkdir_p(dir, 0700, err))
		return FL_EIO;
	empty_dir(dir);
	b = fl_xcalloc(1, sizeof(*b));
	b->dir = fl_xstrdup(dir);
	b->max_size = max_size;
	pthread_mutex_init(&b->lock, NULL);
	*ret = b;
	return 0;
}

/* Lock held: forget @e, its file and its call. */
static void drop(struct srv_diag_bundles *b, struct entry *e)
{
	char *p = bundle_path(b, e->id);

	unlink(p);
	free(p);
	free(e->error);
	srv_diag_call_free(e->call);
	memset(e, 0, sizeof(*e));
}

void srv_diag_bundles_free(struct srv_diag_bundles *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used)
			drop(b, &b->e[i]);
	pthread_mutex_destroy(&b->lock);
	free(b->dir);
	free(b);
}

/* Lock held: the entry @id (of @device unless NULL), or NULL. */
static struct entry *find(struct srv_diag_bundles *b, const char *device,
			  const char *id)
{
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++) {
		struct entry *e = &b->e[i];

		if (e->used && fl_streq(e->id, id) &&
		    (!device || fl_streq(e->device, device)))
			return e;
	}
	return NULL;
}

int srv_diag_bundles_add(struct srv_diag_bundles *b, const char *device,
			 struct srv_diag_call *call,
			 char ret_id[SRV_DIAG_UPLOAD_ID_MAX],
			 struct fl_error *err)
{
	struct entry *e = NULL;
	unsigned char raw[12];
	char hex[25];

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; !e && i < SRV_DIAG_BUNDLES_HELD; i++)
		if (!b->e[i].used)
			e = &b->e[i];
	if (!e) {
		pthread_mutex_unlock(&b->lock);
		return fl_fail(err, FL_ELIMIT,
			       "fleetd holds %d support bundles already (each "
			       "for %d s after it arrived)",
			       SRV_DIAG_BUNDLES_HELD, SRV_DIAG_BUNDLE_KEEP_S);
	}
	fl_random(raw, sizeof(raw), NULL);
	fl_hex(raw, sizeof(raw), hex);
	e->used = true;
	snprintf(e->id, sizeof(e->id), "u-%s", hex);
	fl_strlcpy(e->device, device, sizeof(e->device));
	e->call = call;
	memcpy(ret_id, e->id, sizeof(e->id));
	pthread_mutex_unlock(&b->lock);
	return 0;
}

void srv_diag_bundles_remove(struct srv_diag_bundles *b, const char *id)
{
	struct entry *e;

	pthread_mutex_lock(&b->lock);
	e = find(b, NULL, id);
	if (e)
		drop(b, e);
	pthread_mutex_unlock(&b->lock);
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
	struct entry *e = NULL;

	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; !e && i < SRV_DIAG_BUNDLES_HELD; i++)
		if (b->e[i].used && b->e[i].call == c)
			e = &b->e[i];
	if (e) {
		e->call_done = true;
		if (e->state == SRV_BUNDLE_PENDING) {
			bool timed_out = t->state == SRV_DIAG_TIMED_OUT;

			e->state =
			    timed_out ? SRV_BUNDLE_EXPIRED : SRV_BUNDLE_FAILED;
			e->error = timed_out ? NULL : call_error(t);
			e->settled_ms = now;
		}
	}
	pthread_mutex_unlock(&b->lock);
}

int srv_diag_upload_begin(struct srv_diag_bundles *b, const char *device,
			  const char *id, struct srv_diag_upload **ret,
			  struct fl_error *err)
{
	struct srv_diag_upload *u;
	struct entry *e;

	pthread_mutex_lock(&b->lock);
	e = find(b, device, id);
	if (!e || e->state != SRV_BUNDLE_PENDING) {
		pthread_mutex_unlock(&b->lock);
		return e ? fl_fail(err, FL_ECONFLICT,
				   "upload %s of %s is not pending", id, device)
			 : fl_fail(err, FL_ENOTFOUND,
				   "no upload %s for device %s", id, device);
	}
	e->state = SRV_BUNDLE_UPLOADING;
	pthread_mutex_unlock(&b->lock);
	u = fl_xcalloc(1, sizeof(*u));
	u->b = b;
	fl_strlcpy(u->id, id, sizeof(u->id));
	u->tmp = fl_xasprintf("%s/.%s.XXXXXX", b->dir, id);
	u->fd = mkostemp(u->tmp, O_CLOEXEC);
	if (u->fd < 0) {
		int rc = fl_fail_errno(err, FL_EIO,
				       "cannot create a file in "
				       "%s",
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

/* Lock held: @u's entry (the upload holds it: it cannot go). */
static struct entry *upload_entry(struct srv_diag_upload *u)
{
	return find(u->b, NULL, u->id);
}

int srv_diag_upload_finish(struct srv_diag_upload *u, uint64_t *ret_size,
			   int64_t now, struct fl_error *err)
{
	char *path;
	struct entry *e;
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
	pthread_mutex_lock(&u->b->lock);
	e = upload_entry(u);
	e->state = SRV_BUNDLE_UPLOADED;
	e->size = u->size;
	e->settled_ms = now;
	pthread_mutex_unlock(&u->b->lock);
	u->finished = true;
	*ret_size = u->size;
	return 0;
}

void srv_diag_upload_free(struct srv_diag_upload *u)
{
	struct entry *e;

	if (!u)
		return;
	if (u->fd >= 0)
		close(u->fd);
	if (!u->finished) {
		unlink(u->tmp);
		pthread_mutex_lock(&u->b->lock);
		e = upload_entry(u);
		/* the device may try again while its call waits */
		e->state =
		    e->call_done ? SRV_BUNDLE_EXPIRED : SRV_BUNDLE_PENDING;
		e->settled_ms = e->call_done ? fl_now_ms() : 0;
		pthread_mutex_unlock(&u->b->lock);
	}
	free(u->tmp);
	free(u);
}

int srv_diag_bundles_get(struct srv_diag_bundles *b, const char *device,
			 const char *id, enum srv_bundle_state *ret_state,
			 int *ret_fd, uint64_t *ret_size, char **ret_error,
			 struct fl_error *err)
{
	struct entry *e;
	char *path = NULL;
	int rc = 0;

	pthread_mutex_lock(&b->lock);
	e = find(b, device, id);
	if (!e) {
		rc = fl_fail(err, FL_ENOTFOUND,
			     "no support bundle %s of device %s", id, device);
	} else if (e->state == SRV_BUNDLE_UPLOADED) {
		path = bundle_path(b, id);
		*ret_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (*ret_fd < 0)
			rc = fl_fail_errno(err, FL_EIO, "cannot open %s", path);
		*ret_size = e->size;
	} else if (e->state == SRV_BUNDLE_FAILED) {
		*ret_error = fl_xstrdup(e->error ? e->error : "failed");
	}
	if (!rc)
		*ret_state = e->state;
	pthread_mutex_unlock(&b->lock);
	free(path);
	return rc;
}

void srv_diag_bundles_tick(struct srv_diag_bundles *b, int64_t now)
{
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; i < SRV_DIAG_BUNDLES_HELD; i++) {
		struct entry *e = &b->e[i];

		if (e->used && e->call_done && e->settled_ms &&
		    now - e->settled_ms >= SRV_DIAG_BUNDLE_KEEP_S * 1000LL)
			drop(b, e);
	}
	pthread_mutex_unlock(&b->lock);
}

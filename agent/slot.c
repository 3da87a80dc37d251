/* SPDX-License-Identifier: MIT */
/* Streaming an image into a slot; see slot.h. */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bgwrite.h"
#include "fsutil.h"
#include "slot.h"
#include "util.h"

#define CHUNK (128u * 1024) /* bytes handed to the writer thread at once */
#define DIRECT_ALIGN 4096u  /* offsets, lengths and buffers of direct I/O */

struct agent_slot_writer {
	struct agent_slot_opts o;
	char *path;
	int fd;
	int direct_fd;	      /* the same slot with O_DIRECT, or -1 */
	uint64_t direct_bytes; /* written through it (writer thread) */
	bool is_file;
	uint64_t capacity; /* block device size; UINT64_MAX for files */
	uint64_t written;
	/* [buf_off, buf_off + fill) waits in buf[cur]; the writer thread
	 * has the other buffer */
	struct fl_bgw_fd bgw_fd; /* what the writer thread writes to */
	struct fl_bgw *bgw;
	unsigned char *buf[2];
	int cur;
	size_t fill;
	uint64_t buf_off;
};

static void *aligned_chunk(void)
{
	void *p = NULL;

	if (posix_memalign(&p, DIRECT_ALIGN, CHUNK))
		abort(); /* as fl_xmalloc */
	return p;
}

/*
 * The writer thread's write: whole aligned blocks go through the O_DIRECT
 * descriptor, straight from our buffer to the device with no page cache
 * copy (most of an install's CPU time in a VM, where every fresh page
 * cache page costs); the rest (a chunk cut by a checkpoint or a resume,
 * the tail), and everything where the file system refuses direct I/O
 * (EINVAL: tmpfs, some FUSE), goes through the page cache.  The final
 * fsync covers both.
 */
static int slot_pwrite(void *ctx, const void *buf, size_t len, uint64_t off,
		       struct fl_error *err)
{
	struct agent_slot_writer *w = ctx;

	if (w->direct_fd < 0 || off % DIRECT_ALIGN || len % DIRECT_ALIGN)
		return fl_bgw_pwrite(&w->bgw_fd, buf, len, off, err);
	if (fl_pwrite_all(w->direct_fd, buf, len, off, err)) {
		if (errno != EINVAL)
			return FL_EIO;
		/* refused by the file system: the page cache from now on
		 * (the chunk again from its start: same bytes, same place) */
		fl_error_clear(err);
		close(w->direct_fd);
		w->direct_fd = -1;
		return fl_bgw_pwrite(&w->bgw_fd, buf, len, off, err);
	}
	w->direct_bytes += len;
	return 0;
}

int agent_slot_open(const struct agent_slot_opts *o,
		    struct agent_slot_writer **ret, struct fl_error *err)
{
	struct agent_slot_writer *w;
	struct stat st;
	int fd;

	if (!o->path || !*o->path)
		return fl_fail(err, FL_EINVAL, "no slot path");
	fd = open(o->path, O_WRONLY | O_CREAT | O_CLOEXEC,
		  o->executable ? 0755 : 0644);
	if (fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot open slot '%s'",
				     o->path);
	if (fstat(fd, &st) < 0 ||
	    (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode))) {
		close(fd);
		return fl_fail(err, FL_EINVAL,
			       "slot '%s' is not a file or block device",
			       o->path);
	}
	w = fl_xcalloc(1, sizeof(*w));
	w->o = *o;
	w->path = fl_xstrdup(o->path);
	w->o.path = w->path;
	w->fd = fd;
	w->direct_fd = -1;
	w->is_file = S_ISREG(st.st_mode);
	w->capacity = UINT64_MAX;
	if (!w->is_file && ioctl(fd, BLKGETSIZE64, &w->capacity) < 0) {
		agent_slot_free(w);
		return fl_fail_errno(err, FL_EIO, "cannot size slot '%s'",
				     o->path);
	}
	/* a file is overwritten in place (its blocks are allocated
	 * already, which is faster than new ones) and cut to size at the
	 * end; what it holds meanwhile is untrusted anyway */
	w->bgw_fd = (struct fl_bgw_fd){.fd = fd, .writeback = true};
	w->direct_fd = open(o->path, O_WRONLY | O_DIRECT | O_CLOEXEC);
	if (fl_bgw_start(slot_pwrite, w, &w->bgw, err)) {
		agent_slot_free(w);
		return FL_ERR;
	}
	w->buf[0] = aligned_chunk();
	w->buf[1] = aligned_chunk();
	*ret = w;
	return 0;
}

static int sink_begin(void *ctx, size_t index, const struct fsig_payload *p,
		      struct fl_error *err)
{
	struct agent_slot_writer *w = ctx;

	if (index != 0)
		return fl_fail(err, FL_EINVAL,
			       "a bundle for a slot has one payload");
	if (p->raw_size > w->capacity)
		return fl_fail(err, FL_ELIMIT,
			       "payload '%s' (%llu bytes) is larger than slot "
			       "'%s' (%llu bytes)",
			       p->name, (unsigned long long)p->raw_size,
			       w->path, (unsigned long long)w->capacity);
	return 0;
}

/* Hand the filled buffer to the writer thread (which also starts the
 * kernel's writeback, so the final fsync has little left to do). */
static int submit(struct agent_slot_writer *w, struct fl_error *err)
{
	int rc =
	    fl_bgw_submit(w->bgw, w->buf[w->cur], w->fill, w->buf_off, err);

	if (rc)
		return fl_fail(err, rc, "cannot write slot '%s'", w->path);
	w->buf_off += w->fill;
	w->fill = 0;
	w->cur ^= 1;
	return 0;
}

static int sink_write(void *ctx, const void *buf, size_t len,
		      struct fl_error *err)
{
	struct agent_slot_writer *w = ctx;
	const char *p = buf;
	size_t n;
	int rc;

	if (len > w->capacity - w->written)
		return fl_fail(err, FL_ELIMIT, "slot '%s' is full", w->path);
	if (w->written < w->o.resume) { /* there already */
		n = w->o.resume - w->written < len
			? (size_t)(w->o.resume - w->written)
			: len;
		w->written += n;
		w->buf_off = w->written;
		p += n;
		len -= n;
	}
	w->written += len;
	while (len) {
		/* chunks end on multiples of CHUNK in the slot, so after one
		 * cut short (checkpoint, resume) they are aligned again */
		size_t room = CHUNK - (size_t)((w->buf_off + w->fill) % CHUNK);

		n = room < len ? room : len;
		memcpy(w->buf[w->cur] + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (n == room && (rc = submit(w, err)))
			return rc;
	}
	return w->o.progress ? w->o.progress(w->o.user, w->written, err) : 0;
}

void agent_slot_sink(struct agent_slot_writer *w, struct fsig_sink *ret)
{
	*ret = (struct fsig_sink){
	    .begin = sink_begin,
	    .write = sink_write,
	    .ctx = w,
	};
}

uint64_t agent_slot_written(const struct agent_slot_writer *w)
{
	return w->written;
}

uint64_t agent_slot_direct_bytes(const struct agent_slot_writer *w)
{
	return w->direct_bytes;
}

/* What was handed to the sink, in the slot (not yet synced). */
static int drain(struct agent_slot_writer *w, struct fl_error *err)
{
	int rc = submit(w, err);

	if (!rc)
		rc = fl_bgw_wait(w->bgw, err);
	return rc ? fl_fail(err, rc, "cannot write slot '%s'", w->path) : 0;
}

int agent_slot_sync(struct agent_slot_writer *w, struct fl_error *err)
{
	int rc = drain(w, err);

	if (!rc && fdatasync(w->fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync slot '%s'",
				   w->path);
	return rc;
}

int agent_slot_finish(struct agent_slot_writer *w, struct fl_error *err)
{
	int rc = drain(w, err);

	if (rc)
		return rc;
	if (w->is_file && ftruncate(w->fd, (off_t)w->written) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot size slot '%s'",
				     w->path);
	if (w->is_file && fchmod(w->fd, w->o.executable ? 0755 : 0644) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot chmod slot '%s'",
				     w->path);
	if (fsync(w->fd) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot sync slot '%s'",
				     w->path);
	return w->is_file ? fl_fsync_parent(w->path, err) : 0;
}

void agent_slot_free(struct agent_slot_writer *w)
{
	if (!w)
		return;
	fl_bgw_finish(w->bgw, NULL);
	if (w->fd >= 0)
		close(w->fd);
	if (w->direct_fd >= 0)
		close(w->direct_fd);
	free(w->buf[0]);
	free(w->buf[1]);
	free(w->path);
	free(w);
}

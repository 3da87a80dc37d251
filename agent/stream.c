/* SPDX-License-Identifier: MIT */
/*
 * A bundle from the network into the slot, resumable (see stream.h).
 *
 * The reader pulls the bundle from three places, in order: the head in
 * memory (bytes [0, head_len): what the network delivered first, kept
 * so that step 1 can run again, or the head file of a checkpoint), the
 * slot (bytes [head, from.bytes) of a checkpoint: the payload read back
 * to be hashed again) and the network for the rest.  The sink writes
 * the payload into the slot (skipping what a checkpoint says is there)
 * and takes the checkpoints.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fsutil.h"
#include "log.h"
#include "stream.h"
#include "util.h"

/* What step 1 may have read: the head and the reader's buffer after it. */
#define TEE_MAX (AGENT_STREAM_HEAD_MAX + 64 * 1024)

struct agent_stream {
	struct agent_stream_opts o; /* strings owned */
	struct agent_stream_ckpt from, last;
	struct agent_dl *dl;
	uint64_t dl_fetched; /* by earlier handles */
	size_t window;
	struct fsig_reader *r;
	struct agent_slot_writer *w;
	struct fsig_sink slot_sink;
	int slot_fd;	     /* the slot read back, or -1 */
	unsigned char *head; /* bundle bytes [0, head_len) */
	size_t head_len;
	bool head_saved;     /* the head file holds [0, data_start) */
	uint64_t pos;	     /* the reader's next byte */
	uint64_t data_start; /* the payload's first byte; 0 before it */
	bool resumable;	     /* an uncompressed payload */
	enum agent_stream_fault fault;
	int64_t last_ms; /* of the last checkpoint */
};

/* ------------------------------------------------------------------ */
/* Byte source                                                        */
/* ------------------------------------------------------------------ */

static int from_memory(struct agent_stream *s, void *buf, size_t cap,
		       size_t *ret_len)
{
	size_t n = s->head_len - (size_t)s->pos;

	if (n > cap)
		n = cap;
	memcpy(buf, s->head + s->pos, n);
	*ret_len = n;
	return 0;
}

/* Payload bytes a checkpoint says the slot holds, read back. */
static int from_slot(struct agent_stream *s, void *buf, size_t cap,
		     size_t *ret_len, struct fl_error *err)
{
	uint64_t left = s->from.bytes - s->pos;
	ssize_t n;

	if (s->slot_fd < 0)
		s->slot_fd = open(s->o.slot.path, O_RDONLY | O_CLOEXEC);
	if (s->slot_fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot open slot '%s'",
				     s->o.slot.path);
	if (cap > left)
		cap = (size_t)left;
	do
		n = pread(s->slot_fd, buf, cap,
			  (off_t)(s->pos - s->from.bytes + s->from.slot_bytes));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fl_fail_errno(err, FL_EIO, "cannot read slot '%s'",
				     s->o.slot.path);
	if (n == 0)
		return fl_fail(err, FL_EIO,
			       "slot '%s' holds less than its checkpoint says",
			       s->o.slot.path);
	*ret_len = (size_t)n;
	return 0;
}

/* A download from @pos, replacing one that is elsewhere (step 1 read
 * again from byte 0, and its bytes beyond the head were not kept). */
static int net_at(struct agent_stream *s, struct fl_error *err)
{
	struct agent_dl_opts d = s->o.dl;
	int rc;

	if (s->dl && agent_dl_pos(s->dl) == s->pos)
		return 0;
	if (s->dl)
		s->dl_fetched += agent_dl_fetched(s->dl);
	agent_dl_free(s->dl);
	s->dl = NULL;
	d.offset = s->pos;
	rc = agent_dl_open(&d, &s->dl, err);
	if (!rc)
		agent_dl_set_window(s->dl, s->window);
	return rc;
}

static int from_net(struct agent_stream *s, void *buf, size_t cap,
		    size_t *ret_len, struct fl_error *err)
{
	size_t n, keep;
	int rc;

	*ret_len = 0;
	if (s->pos >= s->o.dl.size)
		return 0;
	rc = net_at(s, err);
	if (!rc)
		rc = agent_dl_read(s->dl, buf, cap, &n, err);
	if (rc)
		return rc;
	if (!s->data_start && s->pos == s->head_len && s->head_len < TEE_MAX) {
		keep = TEE_MAX - s->head_len < n ? TEE_MAX - s->head_len : n;
		memcpy(s->head + s->head_len, buf, keep);
		s->head_len += keep;
	}
	*ret_len = n;
	return s->o.on_read ? s->o.on_read(s->o.user, err) : 0;
}

static int src_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct agent_stream *s = ctx;
	int rc;

	if (s->pos < s->head_len)
		rc = from_memory(s, buf, cap, ret_len);
	else if (s->pos < s->from.bytes)
		rc = from_slot(s, buf, cap, ret_len, err);
	else
		rc = from_net(s, buf, cap, ret_len, err);
	if (!rc)
		s->pos += *ret_len;
	else
		s->fault = AGENT_STREAM_SOURCE;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Checkpoints                                                        */
/* ------------------------------------------------------------------ */

/* What the device holds now: the head, and in the slot what it got. */
static struct agent_stream_ckpt held(const struct agent_stream *s)
{
	uint64_t n = s->resumable ? agent_slot_written(s->w) : 0;

	return (struct agent_stream_ckpt){s->data_start + n, n};
}

static int save_head(struct agent_stream *s, struct fl_error *err)
{
	int rc;

	if (s->head_saved)
		return 0;
	rc = fl_write_atomic(s->o.head_path, s->head, (size_t)s->data_start,
			     0600, err);
	s->head_saved = rc == 0;
	return rc;
}

static int checkpoint_now(struct agent_stream *s, struct fl_error *err)
{
	struct agent_stream_ckpt c = held(s);
	int rc;

	if (c.bytes <= s->last.bytes)
		return 0;
	rc = save_head(s, err);
	if (!rc && c.slot_bytes)
		rc = agent_slot_sync(s->w, err);
	if (!rc)
		rc = s->o.checkpoint(s->o.user, &c, err);
	if (!rc) {
		s->last = c;
		s->last_ms = fl_now_ms();
	}
	return rc;
}

/* Every ckpt_bytes, at most every ckpt_min_ms, at least every
 * ckpt_max_ms while bytes come; the head as soon as ckpt_min_ms allows
 * (all a compressed payload gets). */
static int checkpoint_due(struct agent_stream *s, struct fl_error *err)
{
	uint64_t more = held(s).bytes - s->last.bytes;
	int64_t since = fl_now_ms() - s->last_ms;

	if (!more)
		return 0;
	if (since >= s->o.ckpt_max_ms ||
	    (since >= s->o.ckpt_min_ms &&
	     (more >= s->o.ckpt_bytes || !s->head_saved)))
		return checkpoint_now(s, err);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Sink                                                               */
/* ------------------------------------------------------------------ */

static int sk_begin(void *ctx, size_t index, const struct fsig_payload *p,
		    struct fl_error *err)
{
	struct agent_stream *s = ctx;
	int rc;

	s->data_start = fsig_reader_offset(s->r);
	s->resumable = p->compression == FSIG_COMP_NONE;
	if (s->from.bytes &&
	    (s->from.bytes - s->from.slot_bytes != s->data_start ||
	     (s->from.slot_bytes && !s->resumable)))
		return fl_fail(err, FL_EVERIFY,
			       "the bundle's layout does not match the "
			       "checkpoint");
	rc = s->slot_sink.begin(s->slot_sink.ctx, index, p, err);
	if (rc)
		s->fault = AGENT_STREAM_SLOT;
	return rc;
}

static int sk_write(void *ctx, const void *buf, size_t len,
		    struct fl_error *err)
{
	struct agent_stream *s = ctx;
	int rc = s->slot_sink.write(s->slot_sink.ctx, buf, len, err);

	if (rc)
		s->fault = AGENT_STREAM_SLOT;
	return rc ? rc : checkpoint_due(s, err);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

static char *dup_or_null(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

static void copy_opts(struct agent_stream *s, const struct agent_stream_opts *o)
{
	s->o = *o;
	s->o.dl.url = dup_or_null(o->dl.url);
	s->o.dl.ca_file = dup_or_null(o->dl.ca_file);
	s->o.dl.cert_file = dup_or_null(o->dl.cert_file);
	s->o.dl.key_file = dup_or_null(o->dl.key_file);
	s->o.head_path = dup_or_null(o->head_path);
	s->o.slot.path = dup_or_null(o->slot.path);
	if (!s->o.ckpt_bytes)
		s->o.ckpt_bytes = AGENT_STREAM_CKPT_BYTES;
	if (!s->o.ckpt_min_ms)
		s->o.ckpt_min_ms = AGENT_STREAM_CKPT_MIN_MS;
	if (!s->o.ckpt_max_ms)
		s->o.ckpt_max_ms = AGENT_STREAM_CKPT_MAX_MS;
}

/* The head file of the checkpoint into memory; else start from 0. */
static void load_head(struct agent_stream *s)
{
	uint64_t want = s->from.bytes - s->from.slot_bytes;
	struct fl_error e = {0};
	char *buf = NULL;
	size_t len = 0;

	if (!s->from.bytes)
		return;
	if (s->from.slot_bytes > s->from.bytes ||
	    s->from.bytes >= s->o.dl.size || want > AGENT_STREAM_HEAD_MAX)
		fl_fail(&e, FL_EPARSE,
			"checkpoint at byte %" PRIu64
			" does not fit the bundle",
			s->from.bytes);
	else if (!fl_read_file(s->o.head_path, AGENT_STREAM_HEAD_MAX, &buf,
			       &len, &e) &&
		 len != want)
		fl_fail(&e, FL_EPARSE, "'%s' has %zu bytes, not %" PRIu64,
			s->o.head_path, len, want);
	if (!e.code) {
		memcpy(s->head, buf, len);
		s->head_len = len;
		s->head_saved = true;
	} else {
		fl_warn("%s; the bundle is fetched from byte 0", e.msg);
		s->from = (struct agent_stream_ckpt){0, 0};
	}
	free(buf);
}

int agent_stream_open(const struct agent_stream_opts *o,
		      struct agent_stream **ret, struct fl_error *err)
{
	struct agent_stream *s;

	if (!o->head_path || !o->slot.path || !o->checkpoint || !o->dl.url ||
	    !fl_startswith(o->dl.url, "https://") || !o->dl.ca_file ||
	    !o->dl.size)
		return fl_fail(err, FL_EINVAL,
			       "stream: an https URL, a CA, a size, a head "
			       "file, a slot and a checkpoint are required");
	s = fl_xcalloc(1, sizeof(*s));
	copy_opts(s, o);
	s->slot_fd = -1;
	s->window = 0; /* the download's smallest until step 2 */
	s->head = fl_xmalloc(TEE_MAX);
	s->from = o->from;
	load_head(s);
	s->last = s->from;
	*ret = s;
	return 0;
}

struct agent_stream_ckpt agent_stream_from(const struct agent_stream *s)
{
	return s->from;
}

int agent_stream_verify(struct agent_stream *s, const struct fsig_root *root,
			const struct fsig_policy *pol, struct fl_error *err)
{
	int rc;

	if (s->data_start)
		return fl_fail(err, FL_EINVAL, "the payload has begun");
	fsig_reader_free(s->r);
	s->r = NULL;
	s->pos = 0;
	rc = fsig_reader_open_cb(src_read, s, &s->r, err);
	if (!rc)
		rc = fsig_reader_verify(s->r, root, pol, err);
	return rc;
}

const struct fsig_reader *agent_stream_reader(const struct agent_stream *s)
{
	return s->r;
}

int agent_stream_payload(struct agent_stream *s, struct fl_error *err)
{
	struct agent_slot_opts so = s->o.slot;
	struct fsig_sink sink = {
	    .begin = sk_begin, .write = sk_write, .ctx = s};
	int rc;

	if (!s->r || !fsig_reader_verified(s->r))
		return fl_fail(err, FL_EINVAL, "the bundle is not verified");
	so.resume = s->from.slot_bytes;
	rc = agent_slot_open(&so, &s->w, err);
	if (rc) {
		s->fault = AGENT_STREAM_SLOT;
		return rc;
	}
	agent_slot_sink(s->w, &s->slot_sink);
	s->window = AGENT_DL_WINDOW_MAX;
	if (s->dl)
		agent_dl_set_window(s->dl, s->window);
	s->last_ms = fl_now_ms();
	return fsig_reader_stream(s->r, &sink, err);
}

int agent_stream_checkpoint(struct agent_stream *s, struct fl_error *err)
{
	return s->w && s->data_start ? checkpoint_now(s, err) : 0;
}

int agent_stream_finish(struct agent_stream *s, struct fl_error *err)
{
	return agent_slot_finish(s->w, err);
}

uint64_t agent_stream_have(const struct agent_stream *s)
{
	return s->dl ? agent_dl_have(s->dl) : s->from.bytes;
}

enum agent_stream_fault agent_stream_fault(const struct agent_stream *s)
{
	return s->fault;
}

uint64_t agent_stream_fetched(const struct agent_stream *s)
{
	return s->dl_fetched + (s->dl ? agent_dl_fetched(s->dl) : 0);
}

void agent_stream_free(struct agent_stream *s)
{
	if (!s)
		return;
	agent_dl_free(s->dl);
	fsig_reader_free(s->r);
	agent_slot_free(s->w);
	if (s->slot_fd >= 0)
		close(s->slot_fd);
	free(s->head);
	free((char *)s->o.dl.url);
	free((char *)s->o.dl.ca_file);
	free((char *)s->o.dl.cert_file);
	free((char *)s->o.dl.key_file);
	free((char *)s->o.head_path);
	free((char *)s->o.slot.path);
	free(s);
}

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_STREAM_H
#define AGENT_STREAM_H

/*
 * A bundle streamed from fleetd straight into the inactive slot, and
 * resumable (docs/ota.md, "The install pass").  The bytes go from the
 * network (download.h) through the bundle reader (reader.h: signature
 * and policy on the first bytes, then the payload hashed, and
 * decompressed, on its way) into the slot (slot.h).  Nothing the size
 * of the bundle is kept anywhere but in the slot.
 *
 * A checkpoint says how much of the bundle the device holds durably:
 * its head (every byte before the payload's data: manifest.json,
 * manifest.sig and the tar headers, at most AGENT_STREAM_HEAD_MAX
 * bytes, kept in a small file) and the first @slot_bytes of the payload
 * in the slot, synced.  A stream opened at a checkpoint reads those
 * back, the head from its file and the payload from the slot (hashed
 * again, not written again), and asks the network only for the rest
 * (Range).  The reader checks everything again from byte 0, so nothing
 * read back is trusted: a slot changed behind the agent's back fails
 * the payload hash, and what the slot holds stays untrusted until
 * agent_stream_payload returned 0.
 *
 * Resuming inside the payload needs the bundle's bytes to be the
 * slot's: only an uncompressed payload is checkpointed inside.  A
 * compressed one is checkpointed at its first byte, so a new stream
 * fetches it again from there (zstd cannot go on from the middle of a
 * frame without the decompressor's state, nor can the hash of the
 * compressed bytes be computed again from the slot).
 *
 * One thread (the caller's) drives a stream; the download and the slot
 * writer have a thread each while it runs.
 */
#include <stdint.h>

#include "download.h"
#include "err.h"
#include "manifest.h"
#include "reader.h"
#include "sigs.h"
#include "slot.h"
#include "tar.h"

/* The most bytes a bundle's head can have: three tar headers, the
 * largest manifest and signature file, and their padding. */
#define AGENT_STREAM_HEAD_MAX                                                  \
	(FSIG_MANIFEST_MAX + FSIG_SIGFILE_MAX + 5 * FSIG_TAR_BLOCK)

/* Checkpoint cadence: after this many more bytes, at most once per
 * AGENT_STREAM_CKPT_MIN_MS, and at least every AGENT_STREAM_CKPT_MAX_MS
 * while bytes come. */
#define AGENT_STREAM_CKPT_BYTES (8u * 1024 * 1024)
#define AGENT_STREAM_CKPT_MIN_MS 1000
#define AGENT_STREAM_CKPT_MAX_MS 5000

/* Where a stream failed, beyond what the reader rejected. */
enum agent_stream_fault {
	AGENT_STREAM_OK,
	AGENT_STREAM_SOURCE, /* the download, or reading the slot back */
	AGENT_STREAM_SLOT,   /* opening or writing the slot */
};

struct agent_stream_ckpt {
	uint64_t bytes;	     /* bundle bytes held: the head, then ... */
	uint64_t slot_bytes; /* ... this many payload bytes in the slot */
};

struct agent_stream_opts {
	/* The download; its offset is the stream's business.  Strings are
	 * copied. */
	struct agent_dl_opts dl;
	const char *head_path; /* where the head is kept (0600) */
	/* The target slot; its @resume is the stream's business. */
	struct agent_slot_opts slot;
	struct agent_stream_ckpt from; /* the last checkpoint; {0, 0}:
					* none */
	/* Cadence for tests; 0: the AGENT_STREAM_CKPT_* values. */
	uint64_t ckpt_bytes;
	int64_t ckpt_min_ms, ckpt_max_ms;
	/*
	 * Record @c where the next stream finds it (the journal): the head
	 * file is written and the slot synced before.  A non-zero return
	 * stops the stream with that code.
	 */
	int (*checkpoint)(void *user, const struct agent_stream_ckpt *c,
			  struct fl_error *err);
	/* After each read from the network (may be NULL); a non-zero
	 * return stops the stream with that code. */
	int (*on_read)(void *user, struct fl_error *err);
	void *user;
};

struct agent_stream;

/*
 * Prepare a stream (nothing is read or sent yet).  When @from names a
 * checkpoint, its head file is loaded; a head file that is missing or
 * has another size than the checkpoint says makes the stream start from
 * byte 0 (logged; agent_stream_from tells).  Returns 0 or FL_EINVAL
 * (what agent_dl_open refuses).
 */
int agent_stream_open(const struct agent_stream_opts *o,
		      struct agent_stream **ret, struct fl_error *err);

/* Where this stream starts: the checkpoint it resumes from, or {0, 0}. */
struct agent_stream_ckpt agent_stream_from(const struct agent_stream *s);

/*
 * Step 1 from byte 0 (fsig_reader_verify): signature, trust root,
 * policy.  May be called again (say with a newer root) until
 * agent_stream_payload: the bytes read so far are kept in memory.
 * Returns 0, FL_EVERIFY (the reason: agent_stream_reader), the
 * download's and the head file's codes, FL_EINVAL (too late).
 */
int agent_stream_verify(struct agent_stream *s, const struct fsig_root *root,
			const struct fsig_policy *pol, struct fl_error *err);

/* The reader (manifest, its hash, the rejection reason); NULL before
 * agent_stream_verify.  Owned by @s. */
const struct fsig_reader *agent_stream_reader(const struct agent_stream *s);

/*
 * Step 2: the payload into the slot (which must take exactly one),
 * hashed on the way, checkpoints at the cadence; 0 once every hash
 * matched and the archive ended.  Before, what the slot holds is
 * untrusted.  Returns 0, FL_EVERIFY, and the codes of the download,
 * the slot (slot.h), the checkpoint callback.
 */
int agent_stream_payload(struct agent_stream *s, struct fl_error *err);

/*
 * A checkpoint now, if the payload got further than the last one (a
 * stop: what came so far is kept).  Returns 0, FL_EIO, or the
 * callback's code.
 */
int agent_stream_checkpoint(struct agent_stream *s, struct fl_error *err);

/* After agent_stream_payload returned 0: the slot made durable
 * (agent_slot_finish).  Returns 0 or FL_EIO. */
int agent_stream_finish(struct agent_stream *s, struct fl_error *err);

/* The first bundle byte not here yet: what the network delivered, or
 * the checkpoint before the network started. */
uint64_t agent_stream_have(const struct agent_stream *s);

/* Which part failed, if one did (a rejection of the bundle is none). */
enum agent_stream_fault agent_stream_fault(const struct agent_stream *s);

/* Bytes this stream took from the network. */
uint64_t agent_stream_fetched(const struct agent_stream *s);

/* Stop the download, close the slot (it keeps what was written), free.
 * NULL is fine. */
void agent_stream_free(struct agent_stream *s);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SLOT_H
#define AGENT_SLOT_H

/*
 * Writing an image into the inactive slot (docs/ota.md): a regular file
 * (sim mode, or file-backed slots) or a block device.  The writer is an
 * fsig_sink, so the bundle reader streams the payload straight into the
 * slot while hashing it.  What it writes is untrusted until the reader
 * returns 0; the slot becomes bootable only through the bootloader
 * variables, which the caller changes only after agent_slot_finish.
 *
 * Whole aligned blocks are written with O_DIRECT (no page cache copy,
 * which dominated an install's CPU time); the rest goes through the
 * page cache, whose writeback is started after each write
 * (sync_file_range) so that the final fsync has little left to do.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "reader.h"

struct agent_slot_writer;

struct agent_slot_opts {
	const char *path; /* the slot: regular file or block device */
	bool executable;  /* a regular file gets mode 0755 (sim: the slot
			   * is the firmware program), else 0644 */
	/* The first @resume bytes the sink receives are in the slot
	 * already (a resumed install reads them back from it to hash
	 * them): they are counted, not written again. */
	uint64_t resume;
	/* Called after each write with the bytes written so far (may be
	 * NULL); a non-zero return stops the reader with that code. */
	int (*progress)(void *user, uint64_t written, struct fl_error *err);
	void *user;
};

/*
 * Open the slot for writing.  A regular file is created, or overwritten
 * in place and cut to the written length by agent_slot_finish; a block
 * device is written in place from offset 0.  Other file types are
 * refused (FL_EINVAL).  Returns 0, FL_EINVAL, FL_EIO.
 */
int agent_slot_open(const struct agent_slot_opts *o,
		    struct agent_slot_writer **ret, struct fl_error *err);

/*
 * The sink for fsig_reader_stream: accepts exactly one payload (index
 * 0) whose size fits the slot (a block device's size; FL_ELIMIT).
 * Valid while @w lives.
 */
void agent_slot_sink(struct agent_slot_writer *w, struct fsig_sink *ret);

/* Bytes written so far. */
uint64_t agent_slot_written(const struct agent_slot_writer *w);

/* Of those, the bytes that went to the slot with O_DIRECT, bypassing
 * the page cache (whole aligned blocks, where the file system allows
 * it); exact after agent_slot_sync or agent_slot_finish. */
uint64_t agent_slot_direct_bytes(const struct agent_slot_writer *w);

/*
 * A checkpoint: hand over what is buffered, wait for it and sync, so
 * that the first agent_slot_written() bytes survive a power cut.
 * Returns 0 or FL_EIO.
 */
int agent_slot_sync(struct agent_slot_writer *w, struct fl_error *err);

/*
 * After the reader succeeded: make what was written durable (fsync; a
 * regular file is first cut to the written length).  Returns 0 or
 * FL_EIO.
 */
int agent_slot_finish(struct agent_slot_writer *w, struct fl_error *err);

/* Close and free (the slot keeps what was written).  NULL is fine. */
void agent_slot_free(struct agent_slot_writer *w);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef FSIG_TAR_H
#define FSIG_TAR_H

/*
 * The bundle container: POSIX ustar entries, regular files only.
 *
 * Writing: the writer controls every byte offset (it reserves the
 * manifest region, streams payloads once, then fills the region in; see
 * writer.c), so it emits headers itself.
 *
 * Reading: a strict reader of exactly what a bundle may hold, nothing
 * more (docs/decisions.md, "The bundle reader parses tar itself"): one
 * 512-byte header per entry with a valid checksum and ustar magic, an
 * octal or base-256 size, the entry's data, zero padding to the block,
 * and the end-of-archive block.  Extension headers (pax, GNU long
 * names) and non-regular entries are reported, never interpreted; the
 * bundle reader refuses them.  Any tar tool still lists a bundle.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "err.h"

#define FSIG_TAR_BLOCK 512
#define FSIG_TAR_NAME_MAX 99 /* bytes of an entry name (ustar name field) */
/* Sizes at or above this use the base-256 size encoding (GNU/star). */
#define FSIG_TAR_OCTAL_LIMIT (1ULL << 33)

/*
 * Fill @hdr with a POSIX ustar header for a regular file @name (at most
 * FSIG_TAR_NAME_MAX bytes) of @size bytes, mode 0644, owner 0:0 and
 * modification time @mtime.  Sizes of 8 GiB and more are written in the
 * base-256 form that GNU tar, bsdtar and libarchive read.
 */
void fsig_tar_header(unsigned char hdr[FSIG_TAR_BLOCK], const char *name,
		     uint64_t size, time_t mtime);

/* Zero bytes that follow @size bytes of data to reach a block boundary. */
static inline uint64_t fsig_tar_padding(uint64_t size)
{
	return (FSIG_TAR_BLOCK - size % FSIG_TAR_BLOCK) % FSIG_TAR_BLOCK;
}

/* ------------------------------------------------------------------ */
/* Reading                                                             */

/* Bytes of an entry's full name: ustar prefix, '/', name. */
#define FSIG_TAR_PATH_MAX (155 + 1 + 100)

enum fsig_tar_status {
	FSIG_TAR_OK,
	FSIG_TAR_END,	/* end-of-archive block, or end of input at a header */
	FSIG_TAR_IO,	/* the byte source failed (its error is in err) */
	FSIG_TAR_SHORT, /* input ended inside a header or an entry's data */
	FSIG_TAR_BAD,	/* a header that is not ustar (checksum, magic, size) */
};

struct fsig_tar_entry {
	char name[FSIG_TAR_PATH_MAX + 1];
	char type; /* ustar typeflag; a NUL typeflag reads as '0' */
	uint64_t size;
};

/* The byte source: *ret_len = 0 at its end (fsig_read_fn's shape). */
typedef int (*fsig_tar_fill_fn)(void *ctx, void *buf, size_t cap,
				size_t *ret_len, struct fl_error *err);

struct fsig_tar_in {
	fsig_tar_fill_fn fill;
	void *ctx;
	unsigned char *buf; /* the caller's I/O buffer of @cap bytes */
	size_t cap, pos, len; /* unread input: buf[pos..len) */
	uint64_t left, pad;   /* of the current entry: data, then padding */
	uint64_t off;	      /* input bytes consumed: headers, data, padding */
	bool ended;
	char why[96]; /* what FSIG_TAR_SHORT or FSIG_TAR_BAD found */
};

void fsig_tar_in_init(struct fsig_tar_in *t, fsig_tar_fill_fn fill, void *ctx,
		      unsigned char *buf, size_t cap);

/*
 * The next entry's header into @e, after skipping what is left of the
 * current entry.  FSIG_TAR_END at the end of the archive (and after).
 */
enum fsig_tar_status fsig_tar_next(struct fsig_tar_in *t,
				   struct fsig_tar_entry *e,
				   struct fl_error *err);

/* Input bytes consumed so far: after fsig_tar_next, the offset of the
 * entry's first data byte in the archive. */
static inline uint64_t fsig_tar_offset(const struct fsig_tar_in *t)
{
	return t->off;
}

/*
 * The current entry's next bytes: *ret points into the I/O buffer and
 * stays valid until the next call; *ret_len = 0 once all were read.
 */
enum fsig_tar_status fsig_tar_data(struct fsig_tar_in *t, const void **ret,
				   size_t *ret_len, struct fl_error *err);

#endif

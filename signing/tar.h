/* SPDX-License-Identifier: MIT */
#ifndef FSIG_TAR_H
#define FSIG_TAR_H

/*
 * The few tar pieces the bundle writer needs.  Bundles are written
 * directly rather than through libarchive so that the writer controls
 * every byte offset: it reserves the manifest region, streams payloads
 * once, then fills the region in (see writer.c).  Reading always goes
 * through libarchive.
 */
#include <stdint.h>
#include <time.h>

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

#endif

/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

#include "tar.h"
#include "util.h"

/* Octal digits of @v, zero-padded, into a @width-byte field that ends
 * with NUL. */
static void put_octal(unsigned char *field, size_t width, uint64_t v)
{
	for (size_t i = width - 1; i-- > 0;) {
		field[i] = (unsigned char)('0' + (v & 7));
		v >>= 3;
	}
	field[width - 1] = '\0';
}

/* Base-256: first byte 0x80, then the value big-endian. */
static void put_base256(unsigned char *field, size_t width, uint64_t v)
{
	memset(field, 0, width);
	for (size_t i = width; i-- > 1;) {
		field[i] = (unsigned char)(v & 0xff);
		v >>= 8;
	}
	field[0] = 0x80;
}

void fsig_tar_header(unsigned char hdr[FSIG_TAR_BLOCK], const char *name,
		     uint64_t size, time_t mtime)
{
	unsigned sum = 0;

	memset(hdr, 0, FSIG_TAR_BLOCK);
	fl_strlcpy((char *)hdr, name, FSIG_TAR_NAME_MAX + 1); /* name[100] */
	put_octal(hdr + 100, 8, 0644);			      /* mode */
	put_octal(hdr + 108, 8, 0);			      /* uid */
	put_octal(hdr + 116, 8, 0);			      /* gid */
	if (size < FSIG_TAR_OCTAL_LIMIT)
		put_octal(hdr + 124, 12, size);
	else
		put_base256(hdr + 124, 12, size);
	put_octal(hdr + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
	hdr[156] = '0';		       /* typeflag: regular file */
	memcpy(hdr + 257, "ustar", 6); /* magic with NUL */
	memcpy(hdr + 263, "00", 2);    /* version */
	memset(hdr + 148, ' ', 8);     /* checksum counts as spaces */
	for (size_t i = 0; i < FSIG_TAR_BLOCK; i++)
		sum += hdr[i];
	put_octal(hdr + 148, 7, sum); /* six digits, NUL, space */
	hdr[155] = ' ';
}

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

/* ------------------------------------------------------------------ */
/* Reading                                                             */

void fsig_tar_in_init(struct fsig_tar_in *t, fsig_tar_fill_fn fill, void *ctx,
		      unsigned char *buf, size_t cap)
{
	*t = (struct fsig_tar_in){.fill = fill, .ctx = ctx, .buf = buf,
				  .cap = cap};
}

/* Refill an empty buffer; FSIG_TAR_SHORT at the end of input. */
static enum fsig_tar_status fill(struct fsig_tar_in *t, struct fl_error *err)
{
	size_t n = 0;

	if (t->pos < t->len)
		return FSIG_TAR_OK;
	if (t->fill(t->ctx, t->buf, t->cap, &n, err))
		return FSIG_TAR_IO;
	t->pos = 0;
	t->len = n > t->cap ? t->cap : n;
	return n ? FSIG_TAR_OK : FSIG_TAR_SHORT;
}

static enum fsig_tar_status short_by(struct fsig_tar_in *t, const char *what)
{
	snprintf(t->why, sizeof(t->why), "input ends inside %s", what);
	return FSIG_TAR_SHORT;
}

static enum fsig_tar_status bad(struct fsig_tar_in *t, const char *what)
{
	snprintf(t->why, sizeof(t->why), "%s", what);
	return FSIG_TAR_BAD;
}

/* Consume @n input bytes (into @out unless NULL). */
static enum fsig_tar_status take(struct fsig_tar_in *t, unsigned char *out,
				 uint64_t n, size_t *got, struct fl_error *err)
{
	*got = 0;
	while (n > 0) {
		enum fsig_tar_status st = fill(t, err);
		size_t k = t->len - t->pos;

		if (st)
			return st;
		if (k > n)
			k = (size_t)n;
		if (out)
			memcpy(out + *got, t->buf + t->pos, k);
		t->pos += k;
		t->off += k;
		*got += k;
		n -= k;
	}
	return FSIG_TAR_OK;
}

/*
 * A numeric field: base-256 (first byte 0x80, positive only), or octal
 * digits after optional spaces, ended by NUL or space.  -1 if neither.
 */
static int64_t parse_number(const unsigned char *f, size_t width)
{
	uint64_t v = 0;
	size_t i = 0;

	if (f[0] == 0x80) {
		for (i = 1; i < width; i++) {
			if (v >> 55)
				return -1;
			v = v << 8 | f[i];
		}
		return (int64_t)v;
	}
	while (i < width && f[i] == ' ')
		i++;
	if (i == width || f[i] < '0' || f[i] > '7')
		return -1;
	for (; i < width && f[i] >= '0' && f[i] <= '7'; i++) {
		if (v >> 60)
			return -1;
		v = v << 3 | (uint64_t)(f[i] - '0');
	}
	for (; i < width; i++)
		if (f[i] != '\0' && f[i] != ' ')
			return -1;
	return (int64_t)v;
}

/* The stored checksum matches the unsigned (POSIX) or signed (old) sum. */
static bool checksum_ok(const unsigned char *h)
{
	int64_t want = parse_number(h + 148, 8);
	long usum = 0, ssum = 0;

	for (size_t i = 0; i < FSIG_TAR_BLOCK; i++) {
		unsigned char c = (i >= 148 && i < 156) ? ' ' : h[i];

		usum += c;
		ssum += (signed char)c;
	}
	return want >= 0 && (want == usum || want == ssum);
}

static bool all_zero(const unsigned char *h)
{
	for (size_t i = 0; i < FSIG_TAR_BLOCK; i++)
		if (h[i])
			return false;
	return true;
}

/* Name (with the POSIX ustar prefix), typeflag and size of header @h. */
static enum fsig_tar_status parse_header(struct fsig_tar_in *t,
					 const unsigned char *h,
					 struct fsig_tar_entry *e)
{
	bool posix = memcmp(h + 257, "ustar\0" "00", 8) == 0;
	size_t n = 0, m;
	int64_t size;

	if (!posix && memcmp(h + 257, "ustar  \0", 8) != 0)
		return bad(t, "not a ustar header");
	if (!checksum_ok(h))
		return bad(t, "header checksum mismatch");
	size = parse_number(h + 124, 12);
	if (size < 0)
		return bad(t, "bad size field");
	if (posix && h[345]) {
		n = strnlen((const char *)h + 345, 155);
		memcpy(e->name, h + 345, n);
		e->name[n++] = '/';
	}
	m = strnlen((const char *)h, 100);
	memcpy(e->name + n, h, m);
	e->name[n + m] = '\0';
	e->type = h[156] ? (char)h[156] : '0';
	e->size = (uint64_t)size;
	return FSIG_TAR_OK;
}

enum fsig_tar_status fsig_tar_next(struct fsig_tar_in *t,
				   struct fsig_tar_entry *e,
				   struct fl_error *err)
{
	unsigned char h[FSIG_TAR_BLOCK];
	enum fsig_tar_status st;
	size_t got;

	if (t->ended)
		return FSIG_TAR_END;
	st = take(t, NULL, t->left + t->pad, &got, err);
	if (st)
		return st == FSIG_TAR_SHORT ? short_by(t, "an entry") : st;
	t->left = t->pad = 0;
	st = take(t, h, sizeof(h), &got, err);
	if (st == FSIG_TAR_SHORT && got == 0)
		st = FSIG_TAR_END; /* no end-of-archive block: tolerated */
	else if (st == FSIG_TAR_SHORT)
		return short_by(t, "a header");
	else if (st == FSIG_TAR_OK && all_zero(h))
		st = FSIG_TAR_END;
	if (st == FSIG_TAR_END)
		t->ended = true;
	if (st)
		return st;
	st = parse_header(t, h, e);
	if (!st) {
		t->left = e->size;
		t->pad = fsig_tar_padding(e->size);
	}
	return st;
}

enum fsig_tar_status fsig_tar_data(struct fsig_tar_in *t, const void **ret,
				   size_t *ret_len, struct fl_error *err)
{
	enum fsig_tar_status st;
	size_t k;

	*ret = t->buf + t->pos; /* a valid pointer even for no bytes */
	*ret_len = 0;
	if (t->left == 0)
		return FSIG_TAR_OK;
	st = fill(t, err);
	if (st)
		return st == FSIG_TAR_SHORT ? short_by(t, "an entry") : st;
	k = t->len - t->pos;
	if (k > t->left)
		k = (size_t)t->left;
	*ret = t->buf + t->pos;
	*ret_len = k;
	t->pos += k;
	t->off += k;
	t->left -= k;
	return FSIG_TAR_OK;
}

/* SPDX-License-Identifier: MIT */
/* Range and Content-Range, strictly (http_range.h). */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "http_range.h"

/* Decimal digits at *@p (at least one, no sign, no blank) into *@ret;
 * false on none or overflow.  *@p moves past them. */
static bool digits(const char **p, uint64_t *ret)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return false;
	for (; *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*p = s;
	*ret = v;
	return true;
}

int fl_range_parse(const char *h, uint64_t size, uint64_t *ret_start,
		   uint64_t *ret_end)
{
	uint64_t a, b = UINT64_MAX;
	const char *p = h;

	if (!h || strncmp(h, "bytes=", 6) != 0)
		return 1;
	p += 6;
	if (!digits(&p, &a) || *p++ != '-')
		return 1;
	if (*p && !digits(&p, &b))
		return 1;
	if (*p)
		return 1;
	if (a >= size || b < a)
		return -1;
	*ret_start = a;
	*ret_end = b < size ? b : size - 1;
	return 0;
}

static const char *skip_blanks(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

int fl_content_range_parse(const char *h, uint64_t *ret_start,
			   uint64_t *ret_end, uint64_t *ret_total,
			   struct fl_error *err)
{
	const char *p = h ? skip_blanks(h) : "";
	uint64_t a, b, total;

	if (strncmp(p, "bytes ", 6) != 0)
		goto bad;
	p += 6;
	if (!digits(&p, &a) || *p++ != '-' || !digits(&p, &b) || *p++ != '/' ||
	    !digits(&p, &total) || *skip_blanks(p))
		goto bad;
	if (b < a || b >= total)
		goto bad;
	*ret_start = a;
	*ret_end = b;
	*ret_total = total;
	return 0;
bad:
	return fl_fail(err, FL_EPARSE, "bad Content-Range '%.80s'", h ? h : "");
}

void fl_content_range_format(char buf[static FL_CONTENT_RANGE_MAX],
			     uint64_t start, uint64_t end, uint64_t total)
{
	snprintf(buf, FL_CONTENT_RANGE_MAX,
		 "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, end, total);
}

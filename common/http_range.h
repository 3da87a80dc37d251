/* SPDX-License-Identifier: MIT */
#ifndef FL_HTTP_RANGE_H
#define FL_HTTP_RANGE_H

/*
 * Byte ranges on the bundle download (RFC 9110 §14): fleetd reads the
 * request's Range header, the agent checks the answer's Content-Range.
 * Both parsers are strict: digits only where numbers go, no blanks
 * inside, nothing after the last number.
 */
#include <stdint.h>

#include "err.h"

/* Bytes of the longest Content-Range value, with its NUL. */
#define FL_CONTENT_RANGE_MAX (6 + 3 * 20 + 2 + 1)

/*
 * The request header "Range: bytes=START-" or "bytes=START-END" (one
 * range) against a file of @size bytes.  Returns 0 with *@ret_start and
 * *@ret_end (END clamped to the last byte; START <= END < @size); 1
 * when there is no range to honour, so the whole file is sent (no
 * header, another unit, several ranges, a suffix range "bytes=-N", or
 * anything malformed: RFC 9110 §14.2 lets a server ignore Range); -1
 * when the range is well formed but unsatisfiable (START at or past the
 * end, END before START): 416.
 */
int fl_range_parse(const char *h, uint64_t size, uint64_t *ret_start,
		   uint64_t *ret_end);

/*
 * The response header value "bytes START-END/TOTAL" (blanks around it
 * allowed, exactly one between "bytes" and the range).  Returns 0 with
 * the three numbers (START <= END < TOTAL), FL_EPARSE for anything else,
 * the unsatisfied-range form of a 416 included.  Outputs are written
 * only on success.
 */
int fl_content_range_parse(const char *h, uint64_t *ret_start,
			   uint64_t *ret_end, uint64_t *ret_total,
			   struct fl_error *err);

/* "bytes START-END/TOTAL" into @buf: fleetd's Content-Range for a
 * range fl_range_parse returned. */
void fl_content_range_format(char buf[static FL_CONTENT_RANGE_MAX],
			     uint64_t start, uint64_t end, uint64_t total);

#endif

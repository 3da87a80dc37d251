/* SPDX-License-Identifier: MIT */
#ifndef FSIG_B64_H
#define FSIG_B64_H

/*
 * Base64 (RFC 4648 §4, standard alphabet, with padding) for the JSON
 * formats of libfleetsign.  The decoder is strict: no whitespace, no
 * missing or extra padding, and the unused bits of the last character
 * must be zero, so every byte string has exactly one accepted encoding.
 */
#include <stddef.h>

#include "err.h"

/* Encode @len bytes; returns a NUL-terminated string the caller frees. */
char *fsig_b64_encode(const void *data, size_t len);

/*
 * Decode @slen characters of @s.  On success *ret is a new buffer
 * (caller frees; one spare NUL byte after the data) of *ret_len bytes.
 * FL_EPARSE for malformed input, FL_ELIMIT when the decoded length would
 * exceed @max.
 */
int fsig_b64_decode(const char *s, size_t slen, size_t max, unsigned char **ret,
		    size_t *ret_len, struct fl_error *err);

#endif

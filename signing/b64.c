/* SPDX-License-Identifier: MIT */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "util.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *fsig_b64_encode(const void *data, size_t len)
{
	const unsigned char *in = data;
	char *out = fl_xmalloc((len + 2) / 3 * 4 + 1);
	size_t o = 0, i;

	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 |
			     in[i + 2];

		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = b64_alphabet[(v >> 6) & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18];
		out[o++] = b64_alphabet[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/*
 * Decode one group of four characters into up to three bytes.  Padding
 * is allowed only in the last group (@last), and the bits it hides must
 * be zero, so each byte string has a single encoding.
 */
static int decode_quad(const char *q, bool last, unsigned char *out,
		       size_t *ret_n)
{
	int v[4], pad = 0;
	uint32_t acc;

	if (last && q[3] == '=')
		pad = q[2] == '=' ? 2 : 1;
	for (int k = 0; k < 4 - pad; k++) {
		v[k] = b64_value(q[k]);
		if (v[k] < 0)
			return -1;
	}
	for (int k = 4 - pad; k < 4; k++)
		v[k] = 0;
	acc = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 |
	      (uint32_t)v[2] << 6 | (uint32_t)v[3];
	if ((pad == 1 && (acc & 0xff)) || (pad == 2 && (acc & 0xffff)))
		return -1;
	out[0] = acc >> 16;
	out[1] = (acc >> 8) & 0xff;
	out[2] = acc & 0xff;
	*ret_n = 3 - (size_t)pad;
	return 0;
}

int fsig_b64_decode(const char *s, size_t slen, size_t max, unsigned char **ret,
		    size_t *ret_len, struct fl_error *err)
{
	unsigned char *out;
	size_t o = 0;

	if (slen % 4)
		return fl_fail(err, FL_EPARSE,
			       "base64 text length %zu is not a multiple of 4",
			       slen);
	if (slen / 4 * 3 > max + 2)
		return fl_fail(err, FL_ELIMIT,
			       "base64 data is larger than %zu bytes", max);
	out = fl_xmalloc(slen / 4 * 3 + 1);
	for (size_t i = 0; i < slen; i += 4) {
		size_t n;

		if (decode_quad(s + i, i + 4 == slen, out + o, &n)) {
			free(out);
			return fl_fail(err, FL_EPARSE, "malformed base64 text");
		}
		o += n;
	}
	if (o > max) {
		free(out);
		return fl_fail(err, FL_ELIMIT,
			       "base64 data is larger than %zu bytes", max);
	}
	out[o] = '\0';
	*ret = out;
	*ret_len = o;
	return 0;
}

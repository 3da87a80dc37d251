/* SPDX-License-Identifier: MIT */
#ifndef FL_UTIL_H
#define FL_UTIL_H

/*
 * Small helpers every module uses.  Include project headers after all
 * system headers: this one pulls in banned.h.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "err.h"

#define FL_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/*
 * Allocation helpers that abort on exhaustion (like git's xmalloc): an
 * out-of-memory device daemon cannot do anything better, and checking
 * every allocation hides the real error paths.  See docs/decisions.md.
 */
void *fl_xmalloc(size_t n);
void *fl_xcalloc(size_t nmemb, size_t size);
void *fl_xrealloc(void *p, size_t n);
char *fl_xstrdup(const char *s);
char *fl_xstrndup(const char *s, size_t n);
char *fl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *fl_xvasprintf(const char *fmt, va_list ap);

/* Copy with truncation; always NUL-terminates; returns strlen(src). */
size_t fl_strlcpy(char *dst, const char *src, size_t size);

static inline bool fl_streq(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* True when @s starts with @prefix. */
bool fl_startswith(const char *s, const char *prefix);

/* Free a string after overwriting it (tokens, passwords). */
void fl_free_secret(char *s);

/* Milliseconds on the monotonic clock. */
int64_t fl_now_ms(void);
/* The wall clock, in ms since the epoch. */
int64_t fl_wall_ms(void);

/* *@ret = the CLOCK_REALTIME time @ms milliseconds from now, the form
 * pthread_cond_timedwait takes. */
void fl_deadline(struct timespec *ret, int64_t ms);

/* RFC 3339 UTC timestamp "2026-11-26T03:49:07Z" into @buf (>= 21 bytes). */
void fl_time_rfc3339(time_t t, char buf[static 21]);

/* Parse an RFC 3339 UTC timestamp ("...Z" only). */
int fl_parse_rfc3339(const char *s, time_t *ret, struct fl_error *err);

/*
 * Parse a duration: a number with an optional unit s, m, h, d
 * ("90", "15m", "30d").  Caps at ten years.
 */
int fl_parse_duration(const char *s, int64_t *ret_seconds,
		      struct fl_error *err);

/* Parse a non-negative decimal integer no larger than @max. */
int fl_parse_uint(const char *s, uint64_t max, uint64_t *ret,
		  struct fl_error *err);

/* Lowercase hex of @len bytes into @out (2 * len + 1 bytes). */
void fl_hex(const unsigned char *in, size_t len, char *out);

/* Cryptographically random bytes (OpenSSL RAND_bytes). */
int fl_random(void *buf, size_t len, struct fl_error *err);

/* Random token text: @nbytes random bytes as base64url without padding,
 * prefixed with @prefix.  Caller frees with fl_free_secret. */
char *fl_random_token(const char *prefix, size_t nbytes);

/* SHA-256 of @len bytes as 64 lowercase hex digits plus NUL. */
void fl_sha256_hex(const void *data, size_t len, char out[static 65]);

#include "banned.h"

#endif

/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "util.h"

static void oom(void)
{
	fputs("fatal: out of memory\n", stderr);
	abort();
}

void *fl_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *fl_xcalloc(size_t nmemb, size_t size)
{
	void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *fl_xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *fl_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

char *fl_xstrndup(const char *s, size_t n)
{
	char *p = strndup(s, n);

	if (!p)
		oom();
	return p;
}

char *fl_xvasprintf(const char *fmt, va_list ap)
{
	char *p;

	if (vasprintf(&p, fmt, ap) < 0)
		oom();
	return p;
}

char *fl_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = fl_xvasprintf(fmt, ap);
	va_end(ap);
	return p;
}

size_t fl_strlcpy(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size) {
		size_t c = n < size - 1 ? n : size - 1;

		memcpy(dst, src, c);
		dst[c] = '\0';
	}
	return n;
}

bool fl_startswith(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void fl_free_secret(char *s)
{
	if (!s)
		return;
	OPENSSL_cleanse(s, strlen(s));
	free(s);
}

int64_t fl_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t fl_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Years outside 0000..9999 do not fit the form: clamp them (strftime
 * left @buf unterminated there, and wrote "26" for the year 26). */
void fl_deadline(struct timespec *ret, int64_t ms)
{
	clock_gettime(CLOCK_REALTIME, ret);
	ret->tv_sec += ms / 1000;
	ret->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ret->tv_nsec >= 1000000000) {
		ret->tv_sec++;
		ret->tv_nsec -= 1000000000;
	}
}

void fl_time_rfc3339(time_t t, char buf[static 21])
{
	struct tm tm;

	if (!gmtime_r(&t, &tm) || tm.tm_year < -1900 ||
	    tm.tm_year > 9999 - 1900) {
		fl_strlcpy(buf,
			   t < 0 ? "0000-01-01T00:00:00Z"
				 : "9999-12-31T23:59:59Z",
			   21);
		return;
	}
	snprintf(buf, 21, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

int fl_parse_rfc3339(const char *s, time_t *ret, struct fl_error *err)
{
	struct tm tm = {0};
	const char *end;
	char canon[21];
	time_t t;

	/* strptime accepts "2026-02-30", " 2026-1-5" and two-digit years:
	 * only the canonical text of the parsed time is taken */
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end && !*end) {
		t = timegm(&tm);
		fl_time_rfc3339(t, canon);
		if (strcmp(canon, s) == 0) {
			*ret = t;
			return 0;
		}
	}
	return fl_fail(err, FL_EPARSE,
		       "bad timestamp '%.40s' (want YYYY-MM-DDThh:mm:ssZ)", s);
}

int fl_parse_uint(const char *s, uint64_t max, uint64_t *ret,
		  struct fl_error *err)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9')
		return fl_fail(err, FL_EINVAL, "'%.40s' is not a number",
			       s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return fl_fail(err, FL_EINVAL, "'%.40s' is not a number", s);
	if (v > max)
		return fl_fail(err, FL_EINVAL,
			       "%.40s is over the limit %" PRIu64, s, max);
	*ret = v;
	return 0;
}

int fl_parse_duration(const char *s, int64_t *ret_seconds, struct fl_error *err)
{
	static const struct {
		char unit;
		int64_t mult;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	const int64_t max = 10LL * 366 * 86400;
	char num[32];
	size_t len = s ? strlen(s) : 0;
	int64_t mult = 1;
	uint64_t v;

	if (len == 0 || len >= sizeof(num))
		return fl_fail(err, FL_EINVAL, "bad duration '%.40s'",
			       s ? s : "");
	memcpy(num, s, len + 1);
	for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++) {
		if (num[len - 1] == units[i].unit) {
			mult = units[i].mult;
			num[len - 1] = '\0';
			break;
		}
	}
	if (fl_parse_uint(num, (uint64_t)max, &v, NULL) ||
	    (int64_t)v > max / mult)
		return fl_fail(
		    err, FL_EINVAL,
		    "bad duration '%s' (use e.g. 90s, 15m, 12h, 30d)", s);
	*ret_seconds = (int64_t)v * mult;
	return 0;
}

void fl_hex(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * len] = '\0';
}

int fl_random(void *buf, size_t len, struct fl_error *err)
{
	if (RAND_bytes(buf, (int)len) != 1)
		return fl_fail_ssl(err, FL_ERR, "no random bytes");
	return 0;
}

char *fl_random_token(const char *prefix, size_t nbytes)
{
	static const char b64u[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "abcdefghijklmnopqrstuvwxyz0123456789-_";
	unsigned char raw[64];
	size_t plen = strlen(prefix), bits = 0, o = plen;
	uint32_t acc = 0;
	char *out;

	if (nbytes > sizeof(raw))
		nbytes = sizeof(raw);
	if (RAND_bytes(raw, (int)nbytes) != 1)
		abort(); /* no entropy: nothing safe to hand out */
	out = fl_xmalloc(plen + (nbytes * 4 + 2) / 3 + 1);
	memcpy(out, prefix, plen);
	for (size_t i = 0; i < nbytes; i++) {
		acc = (acc << 8) | raw[i];
		bits += 8;
		while (bits >= 6) {
			bits -= 6;
			out[o++] = b64u[(acc >> bits) & 63];
		}
	}
	if (bits)
		out[o++] = b64u[(acc << (6 - bits)) & 63];
	out[o] = '\0';
	OPENSSL_cleanse(raw, sizeof(raw));
	return out;
}

void fl_sha256_hex(const void *data, size_t len, char out[static 65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;

	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	fl_hex(md, sizeof(md), out);
}

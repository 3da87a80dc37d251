/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the byte ranges of the bundle download: fleetd's Range parser
 * (fl_range_parse) and the agent's Content-Range check
 * (agent_dl_check_content_range, download.c), both in common/http_range.c
 * terms.  Input: "SIZE HAVE\n" (decimal) and the header text.
 *
 * Each parser is held against an independent reading of its grammar
 * (strspn and strtoull here, not the code under test), so a loose parse
 * ("bytes=5x-" taken as "5-") or an off-by-one in the bounds aborts.
 * And the two ends must agree: the Content-Range fleetd writes for a
 * range it honours is one the agent accepts.
 */
#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "download_internal.h"
#include "fuzz.h"
#include "http_range.h"

#define DIGITS "0123456789"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	return 0;
}

/* The @n bytes at @s are 1+ digits whose value fits 64 bits. */
static bool number(const char *s, size_t n, uint64_t *ret)
{
	char buf[24];
	size_t z;
	char *end;

	if (n == 0 || strspn(s, DIGITS) < n)
		return false;
	for (z = 0; z + 1 < n && s[z] == '0'; z++)
		;
	if (n - z > 20)
		return false;
	memcpy(buf, s + z, n - z);
	buf[n - z] = '\0';
	errno = 0;
	*ret = strtoull(buf, &end, 10);
	return errno == 0 && *end == '\0';
}

/* The oracle for Range: 1, -1 or 0 with the range. */
static int expect_range(const char *h, uint64_t size, uint64_t *a, uint64_t *b)
{
	size_t n1, n2;
	uint64_t end = UINT64_MAX;

	if (strncmp(h, "bytes=", 6) != 0)
		return 1;
	h += 6;
	n1 = strspn(h, DIGITS);
	if (!number(h, n1, a) || h[n1] != '-')
		return 1;
	h += n1 + 1;
	n2 = strspn(h, DIGITS);
	if (h[n2] != '\0' || (n2 && !number(h, n2, &end)))
		return 1;
	if (*a >= size || end < *a)
		return -1;
	*b = end < size - 1 ? end : size - 1;
	return 0;
}

/* The oracle for Content-Range: true with the three numbers. */
static bool expect_content_range(const char *h, uint64_t *a, uint64_t *b,
				 uint64_t *t)
{
	size_t n;

	h += strspn(h, " \t");
	if (strncmp(h, "bytes ", 6) != 0)
		return false;
	h += 6;
	n = strspn(h, DIGITS);
	if (!number(h, n, a) || h[n] != '-')
		return false;
	h += n + 1;
	n = strspn(h, DIGITS);
	if (!number(h, n, b) || h[n] != '/')
		return false;
	h += n + 1;
	n = strspn(h, DIGITS);
	if (!number(h, n, t) || h[n + strspn(h + n, " \t")] != '\0')
		return false;
	return *a <= *b && *b < *t;
}

static void check_range(const char *h, uint64_t size)
{
	uint64_t a = 0, b = 0, ea = 0, eb = 0;
	int rc = fl_range_parse(h, size, &a, &b);
	int want = expect_range(h, size, &ea, &eb);
	char cr[FL_CONTENT_RANGE_MAX + 1], again[64];

	FUZZ_ASSERT(rc == want);
	if (rc != 0)
		return;
	FUZZ_ASSERT(a == ea && b == eb && a <= b && b < size);
	/* what we write, we read back */
	snprintf(again, sizeof(again), "bytes=%" PRIu64 "-%" PRIu64, a, b);
	FUZZ_ASSERT(fl_range_parse(again, size, &ea, &eb) == 0 && ea == a &&
		    eb == b);
	/* fleetd's answer to the agent's "bytes=START-" is accepted */
	snprintf(again, sizeof(again), "bytes=%" PRIu64 "-", a);
	FUZZ_ASSERT(fl_range_parse(again, size, &ea, &eb) == 0);
	cr[0] = ' '; /* as curl hands the header over */
	fl_content_range_format(cr + 1, ea, eb, size);
	FUZZ_ASSERT(agent_dl_check_content_range(cr, a, size, NULL) == 0);
}

static void check_content_range(const char *h, uint64_t size, uint64_t have)
{
	uint64_t a = 1, b = 2, t = 3, ea, eb, et;
	bool ok = expect_content_range(h, &ea, &eb, &et);
	int rc = fl_content_range_parse(h, &a, &b, &t, NULL);
	int check = agent_dl_check_content_range(h, have, size, NULL);

	FUZZ_ASSERT((rc == 0) == ok);
	if (!ok) {
		FUZZ_ASSERT(rc == FL_EPARSE && a == 1 && b == 2 && t == 3);
		FUZZ_ASSERT(check == FL_EPARSE);
		return;
	}
	FUZZ_ASSERT(a == ea && b == eb && t == et);
	FUZZ_ASSERT(check == (t != size	  ? FL_EVERIFY
			      : a != have ? FL_EPARSE
					  : 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	char head[64], *h;
	uint64_t fsize, have;
	size_t hlen;

	if (!nl || (size_t)(nl - (const char *)data) >= sizeof(head))
		return 0;
	memcpy(head, data, (size_t)(nl - (const char *)data));
	head[nl - (const char *)data] = '\0';
	if (sscanf(head, "%" SCNu64 " %" SCNu64, &fsize, &have) != 2)
		return 0;
	hlen = size - (size_t)(nl + 1 - (const char *)data);
	h = fuzz_strndup(&(struct fuzz_part){nl + 1, hlen});
	check_range(h, fsize);
	check_content_range(h, fsize, have);
	free(h);
	return 0;
}

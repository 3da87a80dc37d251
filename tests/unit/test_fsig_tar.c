/* SPDX-License-Identifier: MIT */
/*
 * The bundle container's strict tar reader (signing/tar.c), fed from
 * memory in small slices so every header and data run crosses refills.
 * Archives come from its own writer (fsig_tar_header) and from GNU tar,
 * an independent writer.
 */
#include "fsig_fixture.h"
#include "tar.h"

struct src {
	const unsigned char *p;
	size_t len, off, slice;
	bool fail;
};

static int src_fill(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct src *s = ctx;
	size_t n = s->len - s->off;

	if (s->fail)
		return fl_fail(err, FL_EIO, "source failed");
	if (n > s->slice)
		n = s->slice;
	if (n > cap)
		n = cap;
	memcpy(buf, s->p + s->off, n);
	s->off += n;
	*ret_len = n;
	return 0;
}

struct rd {
	struct src s;
	unsigned char buf[700];
	struct fsig_tar_in t;
	struct fsig_tar_entry e;
	struct fl_error err;
};

static void rd_init(struct rd *r, const void *p, size_t len, size_t slice)
{
	memset(r, 0, sizeof(*r));
	r->s = (struct src){.p = p, .len = len, .slice = slice};
	fsig_tar_in_init(&r->t, src_fill, &r->s, r->buf, sizeof(r->buf));
}

/* The current entry's data, all of it, into a new buffer. */
static enum fsig_tar_status slurp(struct rd *r, char **out, size_t *len)
{
	enum fsig_tar_status st;
	const void *p;
	size_t n;

	*out = NULL;
	*len = 0;
	do {
		st = fsig_tar_data(&r->t, &p, &n, &r->err);
		if (st)
			return st;
		*out = fl_xrealloc(*out, *len + n + 1);
		memcpy(*out + *len, p, n);
		*len += n;
	} while (n);
	(*out)[*len] = '\0';
	return FSIG_TAR_OK;
}

/* Append one entry as fsig_tar_header writes it, data and padding. */
static size_t put_entry(unsigned char *a, size_t off, const char *name,
			const char *data)
{
	size_t n = strlen(data);

	fsig_tar_header(a + off, name, n, 1700000000);
	memcpy(a + off + FSIG_TAR_BLOCK, data, n);
	return off + FSIG_TAR_BLOCK + n + fsig_tar_padding(n);
}

/* Recompute the checksum of the header at @h after an edit. */
static void reseal(unsigned char *h)
{
	unsigned sum = 0;

	memset(h + 148, ' ', 8);
	for (size_t i = 0; i < FSIG_TAR_BLOCK; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
}

static void test_round_trip(void **state)
{
	static unsigned char a[8192];
	size_t slices[] = {1, 7, 511, 512, 513, 4096};
	char big[1300];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	size_t off = put_entry(a, 0, "manifest.json", "{\"a\": 1}");
	off = put_entry(a, off, "payload/big", big);
	off = put_entry(a, off, "empty", "");
	off += 2 * FSIG_TAR_BLOCK; /* end-of-archive blocks */
	for (size_t k = 0; k < FL_ARRAY_SIZE(slices); k++) {
		struct rd r;
		char *d;
		size_t n;

		rd_init(&r, a, off, slices[k]);
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
		assert_string_equal(r.e.name, "manifest.json");
		assert_int_equal(r.e.type, '0');
		assert_int_equal(r.e.size, 8);
		assert_int_equal(slurp(&r, &d, &n), FSIG_TAR_OK);
		assert_string_equal(d, "{\"a\": 1}");
		free(d);
		/* the next header skips what is left unread of this one */
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
		assert_int_equal(r.e.size, sizeof(big) - 1);
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
		assert_string_equal(r.e.name, "empty");
		assert_int_equal(slurp(&r, &d, &n), FSIG_TAR_OK);
		assert_int_equal(n, 0);
		free(d);
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_END);
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_END);
	}
}

static void test_sizes(void **state)
{
	unsigned char h[FSIG_TAR_BLOCK];
	struct rd r;

	/* base-256 above 8 GiB, as the writer emits it */
	fsig_tar_header(h, "payload/huge", 9ULL << 30, 0);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_true(r.e.size == 9ULL << 30);
	/* octal with leading spaces and a space terminator */
	fsig_tar_header(h, "a", 0, 0);
	memcpy(h + 124, "      1234 \0", 12);
	reseal(h);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(r.e.size, 01234);
	/* "5x" is not a number: refused, not read as 5 */
	static const char *const bad[] = {"5x", "", "-1", "0000000008",
					  "1 2"};
	for (size_t i = 0; i < FL_ARRAY_SIZE(bad); i++) {
		fsig_tar_header(h, "a", 0, 0);
		memset(h + 124, 0, 12);
		memcpy(h + 124, bad[i], strlen(bad[i]));
		reseal(h);
		rd_init(&r, h, sizeof(h), 512);
		assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err),
				 FSIG_TAR_BAD);
		assert_string_equal(r.t.why, "bad size field");
	}
	/* negative base-256 */
	fsig_tar_header(h, "a", 0, 0);
	memset(h + 124, 0xff, 12);
	reseal(h);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_BAD);
}

static void test_bad_headers(void **state)
{
	unsigned char h[FSIG_TAR_BLOCK];
	struct rd r;

	fsig_tar_header(h, "a", 0, 0);
	h[0] = 'b'; /* checksum no longer matches */
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_BAD);
	assert_string_equal(r.t.why, "header checksum mismatch");
	/* a v7 header (no magic) is not a bundle entry */
	fsig_tar_header(h, "a", 0, 0);
	memset(h + 257, 0, 8);
	reseal(h);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_BAD);
	assert_string_equal(r.t.why, "not a ustar header");
	/* the old signed checksum is accepted, as tar readers do */
	fsig_tar_header(h, "\xe9t\xe9", 0, 0);
	{
		int sum = 0;

		memset(h + 148, ' ', 8);
		for (size_t i = 0; i < FSIG_TAR_BLOCK; i++)
			sum += (signed char)h[i];
		snprintf((char *)h + 148, 8, "%06o", sum);
	}
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	/* the POSIX prefix field is part of the name */
	fsig_tar_header(h, "name", 0, 0);
	memcpy(h + 345, "dir/sub", 7);
	reseal(h);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_string_equal(r.e.name, "dir/sub/name");
	/* a full 100-byte name has no NUL */
	memset(h, 'n', 100);
	memset(h + 345, 0, 155);
	reseal(h);
	rd_init(&r, h, sizeof(h), 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(strlen(r.e.name), 100);
}

static void test_short_input(void **state)
{
	static unsigned char a[2048];
	size_t end = put_entry(a, 0, "m", "0123456789");
	struct rd r;
	char *d;
	size_t n;

	/* empty input: the end, no error (the bundle reader names what is
	 * missing) */
	rd_init(&r, a, 0, 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_END);
	/* inside a header */
	rd_init(&r, a, 100, 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_SHORT);
	assert_string_equal(r.t.why, "input ends inside a header");
	/* inside the data */
	rd_init(&r, a, FSIG_TAR_BLOCK + 4, 3);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(slurp(&r, &d, &n), FSIG_TAR_SHORT);
	free(d);
	/* inside the padding, seen by the next header */
	rd_init(&r, a, FSIG_TAR_BLOCK + 20, 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(slurp(&r, &d, &n), FSIG_TAR_OK);
	free(d);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_SHORT);
	/* no end-of-archive block after the last entry: tolerated */
	rd_init(&r, a, end, 512);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_END);
	/* a failing source is an I/O error with its message */
	rd_init(&r, a, end, 512);
	r.s.fail = true;
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_IO);
	assert_string_equal(r.err.msg, "source failed");
}

/* GNU tar's own archives read the same, types included. */
static void test_gnu_tar(void **state)
{
	char dir[] = "/tmp/fsig-tar-XXXXXX", *cmd, *path;
	static unsigned char a[16384];
	struct rd r;
	FILE *f;
	size_t n;

	assert_non_null(mkdtemp(dir));
	cmd = fl_xasprintf(
	    "cd %s && printf hello > f && ln -s f l && mkdir d && "
	    "tar --format=gnu -cf gnu.tar f l d && "
	    "tar --format=pax -cf pax.tar f", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	path = fl_xasprintf("%s/gnu.tar", dir);
	f = fopen(path, "rb");
	n = fread(a, 1, sizeof(a), f);
	fclose(f);
	rd_init(&r, a, n, 1000);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_string_equal(r.e.name, "f");
	assert_int_equal(r.e.size, 5);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(r.e.type, '2');
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(r.e.type, '5');
	assert_string_equal(r.e.name, "d/");
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_END);
	free(path);
	/* pax: the extended header comes first, as its own entry */
	path = fl_xasprintf("%s/pax.tar", dir);
	f = fopen(path, "rb");
	n = fread(a, 1, sizeof(a), f);
	fclose(f);
	rd_init(&r, a, n, 1000);
	assert_int_equal(fsig_tar_next(&r.t, &r.e, &r.err), FSIG_TAR_OK);
	assert_int_equal(r.e.type, 'x');
	free(path);
	cmd = fl_xasprintf("rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_round_trip),
	    cmocka_unit_test(test_sizes),
	    cmocka_unit_test(test_bad_headers),
	    cmocka_unit_test(test_short_input),
	    cmocka_unit_test(test_gnu_tar),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * common/err: the first recorded error wins, errno and OpenSSL suffixes,
 * prefixes, clearing, NULL reports, the exit-code and HTTP mappings, and
 * the table against fleetctl(1)'s EXIT STATUS.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "err.h"
#include "fsutil.h"
#include "util.h"

static void test_first_wins(void **state)
{
	struct fl_error err = {0};

	assert_int_equal(fl_fail(&err, FL_ENOTFOUND, "inner %d", 1),
			 FL_ENOTFOUND);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_string_equal(err.msg, "inner 1");
	/* a later failure returns its own code but keeps the first report */
	assert_int_equal(fl_fail(&err, FL_EIO, "outer"), FL_EIO);
	errno = EACCES;
	assert_int_equal(fl_fail_errno(&err, FL_EDENIED, "outer"), FL_EDENIED);
	assert_int_equal(fl_fail_ssl(&err, FL_EVERIFY, "outer"), FL_EVERIFY);
	assert_int_equal(err.code, FL_ENOTFOUND);
	assert_string_equal(err.msg, "inner 1");
}

static void test_errno_suffix(void **state)
{
	struct fl_error err = {0};
	char want[FL_ERR_MSG_MAX];

	errno = ENOENT;
	assert_int_equal(fl_fail_errno(&err, FL_EIO, "cannot open '%s'", "x"),
			 FL_EIO);
	assert_int_equal(err.code, FL_EIO);
	snprintf(want, sizeof(want), "cannot open 'x': %s", strerror(ENOENT));
	assert_string_equal(err.msg, want);
	/* errno is read on entry, before formatting can change it */
	fl_error_clear(&err);
	errno = EPERM;
	fl_fail_errno(&err, FL_EIO, "%s", strerror(ENOSPC));
	snprintf(want, sizeof(want), "%s: %s", strerror(ENOSPC),
		 strerror(EPERM));
	assert_string_equal(err.msg, want);
}

static void test_ssl_suffix_clears_queue(void **state)
{
	struct fl_error err = {0};

	/* provoke a real OpenSSL error */
	assert_null(EVP_get_digestbyname("no-such-digest"));
	assert_null(EVP_MD_fetch(NULL, "no-such-digest", NULL));
	assert_int_not_equal(ERR_peek_error(), 0);
	assert_int_equal(fl_fail_ssl(&err, FL_EVERIFY, "sign"), FL_EVERIFY);
	assert_int_equal(err.code, FL_EVERIFY);
	assert_true(fl_startswith(err.msg, "sign: "));
	assert_true(strlen(err.msg) > strlen("sign: "));
	assert_int_equal(ERR_peek_error(), 0);

	/* with an empty queue there is still a suffix */
	fl_error_clear(&err);
	assert_int_equal(fl_fail_ssl(&err, FL_ERR, "x"), FL_ERR);
	assert_true(fl_startswith(err.msg, "x: "));

	/* NULL report: the queue is cleared all the same */
	EVP_MD_free(EVP_MD_fetch(NULL, "no-such-digest", NULL));
	assert_int_not_equal(ERR_peek_error(), 0);
	assert_int_equal(fl_fail_ssl(NULL, FL_ERR, "x"), FL_ERR);
	assert_int_equal(ERR_peek_error(), 0);
}

static void test_prefix(void **state)
{
	struct fl_error err = {0};

	/* nothing recorded: nothing to prefix */
	fl_error_prefix(&err, "loading %s", "a");
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");

	fl_fail(&err, FL_EPARSE, "bad line %d", 3);
	fl_error_prefix(&err, "loading %s", "a.conf");
	assert_int_equal(err.code, FL_EPARSE);
	assert_string_equal(err.msg, "loading a.conf: bad line 3");
	fl_error_prefix(&err, "init");
	assert_string_equal(err.msg, "init: loading a.conf: bad line 3");
	fl_error_prefix(NULL, "x");
}

static void test_long_messages_truncate(void **state)
{
	struct fl_error err = {0};
	char big[2 * FL_ERR_MSG_MAX];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	fl_fail(&err, FL_ELIMIT, "%s", big);
	assert_int_equal(err.code, FL_ELIMIT);
	assert_int_equal(strlen(err.msg), FL_ERR_MSG_MAX - 1);
	fl_error_prefix(&err, "%s", big);
	assert_int_equal(strlen(err.msg), FL_ERR_MSG_MAX - 1);
	fl_error_clear(&err);
	errno = EIO;
	fl_fail_errno(&err, FL_EIO, "%s", big);
	assert_int_equal(strlen(err.msg), FL_ERR_MSG_MAX - 1);
}

static void test_clear(void **state)
{
	struct fl_error err = {0};

	fl_fail(&err, FL_ECONFLICT, "first");
	fl_error_clear(&err);
	assert_int_equal(err.code, 0);
	assert_string_equal(err.msg, "");
	/* after clearing, the next failure is recorded again */
	fl_fail(&err, FL_ETIMEOUT, "second");
	assert_int_equal(err.code, FL_ETIMEOUT);
	assert_string_equal(err.msg, "second");
	fl_error_clear(NULL);
}

static void test_null_err(void **state)
{
	errno = ENOENT;
	assert_int_equal(fl_fail(NULL, FL_EINVAL, "x %d", 1), FL_EINVAL);
	assert_int_equal(fl_fail_errno(NULL, FL_EIO, "x"), FL_EIO);
	assert_int_equal(fl_fail_ssl(NULL, FL_EVERIFY, "x"), FL_EVERIFY);
}

static void test_exit_codes(void **state)
{
	static const int other[] = {FL_EIO,	FL_EPARSE, FL_ELIMIT,
				    FL_ENOMEM,	FL_EINVAL, 9,
				    15,		100,	   -1,
				    INT32_MIN,	INT32_MAX};

	for (int c = 0; c <= 8; c++)
		assert_int_equal(fl_exit_code(c), c);
	assert_int_equal(fl_exit_code(FL_EUSAGE), 2);
	assert_int_equal(fl_exit_code(FL_EUNREACH), 8);
	for (size_t i = 0; i < FL_ARRAY_SIZE(other); i++)
		assert_int_equal(fl_exit_code(other[i]), 1);
}

static void test_names(void **state)
{
	/* every code has its own name; unknown ones fall back */
	static const int codes[] = {
		FL_OK,	     FL_ERR,	   FL_EUSAGE, FL_ENOTFOUND, FL_EDENIED,
		FL_ECONFLICT, FL_EVERIFY,  FL_ETIMEOUT, FL_EUNREACH, FL_EIO,
		FL_EPARSE,   FL_ELIMIT,	   FL_ENOMEM, FL_EINVAL,
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(codes); i++) {
		assert_non_null(fl_err_name(codes[i]));
		for (size_t j = 0; j < i; j++)
			assert_string_not_equal(fl_err_name(codes[i]),
						fl_err_name(codes[j]));
	}
	assert_string_equal(fl_err_name(9), fl_err_name(FL_ERR));
	assert_string_equal(fl_err_name(-3), fl_err_name(FL_ERR));
	assert_string_equal(fl_err_name(1000), fl_err_name(FL_ERR));
}

/* Every code once, in order; each maps to an exit status that is a code
 * documented as its own exit status. */
static void test_table(void **state)
{
	size_t n = 0;
	const struct fl_err_info *t = fl_err_table(&n);

	assert_true(n >= 14);
	for (size_t i = 0; i < n; i++) {
		if (i)
			assert_true(t[i].code > t[i - 1].code);
		assert_string_equal(fl_err_name(t[i].code), t[i].name);
		assert_int_equal(fl_exit_code(t[i].code), t[i].exit);
		assert_true(t[i].exit >= 0 && t[i].exit <= 8);
		assert_true(t[i].exit == t[i].code ? t[i].exit_text != NULL
						   : t[i].exit_text == NULL);
		assert_string_equal(t[t[i].exit].name,
				    fl_err_name(t[i].exit));
	}
}

/* What fleetd answers for a code, and what a client makes of that. */
static void test_http_round_trip(void **state)
{
	static const struct {
		int code, status;
		const char *api;
		int back;
	} want[] = {
		{FL_ENOTFOUND, 404, "not_found", FL_ENOTFOUND},
		{FL_EDENIED, 403, "forbidden", FL_EDENIED},
		{FL_ECONFLICT, 409, "conflict", FL_ECONFLICT},
		{FL_EVERIFY, 422, "verification_failed", FL_EVERIFY},
		{FL_EPARSE, 400, "bad_request", FL_ERR},
		{FL_EINVAL, 400, "bad_request", FL_ERR},
		{FL_EUSAGE, 400, "bad_request", FL_ERR},
		{FL_ELIMIT, 413, "too_large", FL_ELIMIT},
		{FL_ETIMEOUT, 504, "timeout", FL_ETIMEOUT},
		{FL_ERR, 500, "internal", FL_ERR},
		{FL_EIO, 500, "internal", FL_ERR},
		{FL_ENOMEM, 500, "internal", FL_ERR},
		{FL_EUNREACH, 500, "internal", FL_ERR},
		{999, 500, "internal", FL_ERR},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(want); i++) {
		const char *api = NULL;

		assert_int_equal(fl_err_http(want[i].code, &api),
				 want[i].status);
		assert_string_equal(api, want[i].api);
		assert_int_equal(fl_err_from_http(want[i].status, api),
				 want[i].back);
	}
	assert_int_equal(fl_err_http(FL_ENOTFOUND, NULL), 404);
	/* answers fleetd gives outside the table */
	assert_int_equal(fl_err_from_http(401, "unauthorized"), FL_EDENIED);
	assert_int_equal(fl_err_from_http(429, "too_many_requests"), FL_ERR);
	assert_int_equal(fl_err_from_http(429, NULL), FL_ERR);
	assert_int_equal(fl_err_from_http(504, NULL), FL_ETIMEOUT);
	/* a diag request to an offline device ends like a timeout; a
	 * plain 409 stays a conflict, and fleetd's own 409 says conflict */
	assert_int_equal(fl_err_from_http(409, "offline"), FL_ETIMEOUT);
	assert_int_equal(fl_err_from_http(409, NULL), FL_ECONFLICT);
	assert_int_equal(fl_err_from_http(409, "conflict"), FL_ECONFLICT);
	assert_int_equal(fl_err_from_http(413, NULL), FL_ELIMIT);
	assert_int_equal(fl_err_from_http(0, NULL), FL_ERR);
}

/* The text of man/fleetctl.1 (FLEET_SRC, else the current directory). */
static char *man_page(void)
{
	const char *src = getenv("FLEET_SRC");
	char path[4096], *text = NULL;

	snprintf(path, sizeof(path), "%s/man/fleetctl.1", src ? src : ".");
	assert_int_equal(fl_read_file(path, 1 << 20, &text, NULL, NULL), 0);
	return text;
}

/*
 * fleetctl(1) EXIT STATUS lists exactly the exit statuses of the table,
 * in order, each described starting with the table's exit_text (curl
 * test1477): a new code cannot go undocumented, nor a page drift.
 */
static void test_man_exit_status(void **state)
{
	char *text = man_page(), *sec, *end, *line, *save = NULL;
	size_t n = 0, want = 0;
	const struct fl_err_info *t = fl_err_table(&n);
	int last = -1, status = -1;

	sec = strstr(text, "\n.Sh EXIT STATUS\n");
	assert_non_null(sec);
	end = strstr(sec + 1, "\n.Sh ");
	assert_non_null(end);
	*end = '\0';
	for (line = strtok_r(sec, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, ".It ", 4) == 0) {
			assert_int_equal(status, -1); /* the last had text */
			status = atoi(line + 4);
			assert_true(status > last);
			last = status;
			assert_true(status >= 0 && (size_t)status < n);
			assert_int_equal(t[status].code, status);
			assert_non_null(t[status].exit_text);
			want++;
		} else if (line[0] != '.' && status >= 0) {
			/* the first text line after .It */
			assert_memory_equal(line, t[status].exit_text,
					    strlen(t[status].exit_text));
			status = -1;
		}
	}
	assert_int_equal(status, -1);
	for (size_t i = 0; i < n; i++)
		want -= t[i].exit_text != NULL;
	assert_int_equal(want, 0);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_wins),
		cmocka_unit_test(test_errno_suffix),
		cmocka_unit_test(test_ssl_suffix_clears_queue),
		cmocka_unit_test(test_prefix),
		cmocka_unit_test(test_long_messages_truncate),
		cmocka_unit_test(test_clear),
		cmocka_unit_test(test_null_err),
		cmocka_unit_test(test_exit_codes),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_table),
		cmocka_unit_test(test_http_round_trip),
		cmocka_unit_test(test_man_exit_status),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

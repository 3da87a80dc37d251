/* SPDX-License-Identifier: MIT */
/*
 * libcurl, loaded on first use (common/lazylib.h): the functions Fleet
 * calls, each forwarding to the loaded library.
 */
#include <stdarg.h>

#include <curl/curl.h>

#include "http.h"
#include "lazylib.h"

static struct fl_lazylib libcurl = FL_LAZYLIB_INIT(FL_SONAME_LIBCURL, FL_PACKAGE_LIBCURL);
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_init(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

int fl_curl_init(struct fl_error *err)
{
	if (fl_lazylib_load(&libcurl, err))
		return FL_ERR;
	pthread_once(&global_once, global_init);
	return 0;
}

FL_LAZY(libcurl, CURLcode, curl_global_init, (long flags), (flags))
FL_LAZY(libcurl, CURL *, curl_easy_init, (void), ())
FL_LAZY(libcurl, CURLcode, curl_easy_perform, (CURL *c), (c))
FL_LAZY(libcurl, void, curl_easy_cleanup, (CURL *c), (c))
FL_LAZY(libcurl, void, curl_easy_reset, (CURL *c), (c))
FL_LAZY(libcurl, const char *, curl_easy_strerror, (CURLcode cc), (cc))
FL_LAZY(libcurl, char *, curl_easy_escape, (CURL *c, const char *s, int len),
	(c, s, len))
FL_LAZY(libcurl, void, curl_free, (void *p), (p))
FL_LAZY(libcurl, struct curl_slist *, curl_slist_append,
	(struct curl_slist *l, const char *s), (l, s))
FL_LAZY(libcurl, void, curl_slist_free_all, (struct curl_slist *l), (l))

/*
 * The variadic two pass their one argument on by its type, which the
 * option's number range encodes (curl.h, CURLOPTTYPE_* and
 * CURLINFO_TYPEMASK): for getinfo it is always a pointer.
 */
CURLcode(curl_easy_setopt)(CURL *c, CURLoption opt, ...)
{
	__typeof__(curl_easy_setopt) *fn = FL_LAZY_SYM(libcurl, curl_easy_setopt);
	CURLcode cc;
	va_list ap;

	va_start(ap, opt);
	if (opt < CURLOPTTYPE_OBJECTPOINT)
		cc = fn(c, opt, va_arg(ap, long));
	else if (opt < CURLOPTTYPE_FUNCTIONPOINT)
		cc = fn(c, opt, va_arg(ap, void *));
	else if (opt < CURLOPTTYPE_OFF_T)
		cc = fn(c, opt, va_arg(ap, void (*)(void)));
	else if (opt < CURLOPTTYPE_BLOB)
		cc = fn(c, opt, va_arg(ap, curl_off_t));
	else
		cc = fn(c, opt, va_arg(ap, void *));
	va_end(ap);
	return cc;
}

CURLcode(curl_easy_getinfo)(CURL *c, CURLINFO info, ...)
{
	__typeof__(curl_easy_getinfo) *fn = FL_LAZY_SYM(libcurl, curl_easy_getinfo);
	CURLcode cc;
	va_list ap;

	va_start(ap, info);
	cc = fn(c, info, va_arg(ap, void *));
	va_end(ap);
	return cc;
}

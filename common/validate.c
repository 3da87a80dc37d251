/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "validate.h"
#include "util.h"

static bool in_set(char c, const char *extra)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       (c && strchr(extra, c));
}

bool fl_valid_id(const char *s)
{
	size_t n;

	if (!s || !in_set(s[0], ""))
		return false;
	n = strlen(s);
	if (n > FL_ID_MAX)
		return false;
	for (size_t i = 1; i < n; i++)
		if (!in_set(s[i], "._-"))
			return false;
	return true;
}

int fl_check_id(const char *s, const char *what, struct fl_error *err)
{
	if (fl_valid_id(s))
		return 0;
	return fl_fail(err, FL_EINVAL,
		       "invalid %s '%.80s' (want 1-63 of a-z 0-9 . _ -, "
		       "starting with a letter or digit)",
		       what, s ? s : "");
}

bool fl_valid_tech_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > FL_TECH_NAME_MAX || !in_set(s[0], ""))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!in_set(s[i], "_-"))
			return false;
	return true;
}

int fl_check_tech_name(const char *s, struct fl_error *err)
{
	if (fl_valid_tech_name(s))
		return 0;
	return fl_fail(err, FL_EINVAL,
		       "invalid technician name '%.80s' (want 1-%d of a-z 0-9 "
		       "_ -, starting with a letter or digit)",
		       s ? s : "", FL_TECH_NAME_MAX);
}

static bool all_in(const char *s, size_t max, const char *extra)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(c >= 'A' && c <= 'Z') && !in_set(c, extra))
			return false;
	}
	return true;
}

bool fl_valid_filename(const char *s)
{
	return all_in(s, 128, "._+-") && s[0] != '.';
}

bool fl_valid_label(const char *s)
{
	return all_in(s, 64, "._:-");
}

bool fl_valid_metric(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	return n > 0 && n <= FL_METRIC_MAX &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") == n;
}

bool fl_valid_text(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* HOST[:PORT] of a mirror URL, @n bytes at @s. */
static bool valid_origin(const char *s, size_t n)
{
	const char *colon = memchr(s, ':', n);
	size_t h = colon ? (size_t)(colon - s) : n, p = n - h;
	unsigned long port = 0;

	if (h == 0 || h > 253 ||
	    strspn(s, "abcdefghijklmnopqrstuvwxyz"
		      "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789.-") < h)
		return false;
	if (!colon)
		return true;
	if (p < 2 || p > 6 || s[h + 1] == '0')
		return false;
	for (size_t i = h + 1; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		port = port * 10 + (unsigned long)(s[i] - '0');
	}
	return port <= 65535;
}

static bool valid_mirror(const char *s, bool base)
{
	size_t n = s ? strlen(s) : 0;
	const char *o, *path;

	if (!s || n > FL_MIRROR_URL_MAX || !fl_startswith(s, "https://"))
		return false;
	o = s + strlen("https://");
	path = strchr(o, '/');
	if (!path || !valid_origin(o, (size_t)(path - o)))
		return false;
	if (strspn(path, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._~-") !=
		strlen(path) ||
	    strstr(path, "..") || strstr(path, "//"))
		return false;
	return (s[n - 1] == '/') == base;
}

bool fl_valid_mirror_url(const char *s)
{
	return valid_mirror(s, false);
}

bool fl_valid_mirror_base(const char *s)
{
	return valid_mirror(s, true);
}

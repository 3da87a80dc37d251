/* SPDX-License-Identifier: MIT */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "util.h"

int fl_log_threshold = FL_LOG_INFO;

static const char *log_ident = "fleet";
static enum fl_log_format log_format = FL_LOG_TEXT;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"error", "warn", "info", "debug"};
static __thread const char *log_context;

/* fl_log_keep: a ring of the last lines, under log_lock */
struct kept_line {
	char context[65];
	char text[FL_LOG_KEEP_LINE];
};
static struct kept_line *kept;
static size_t kept_cap, kept_n, kept_next;

const char *fl_log_context_set(const char *name)
{
	const char *prev = log_context;

	log_context = name;
	return prev;
}

const char *fl_log_context(void)
{
	return log_context;
}

void fl_log_setup(const char *ident, int level, enum fl_log_format format)
{
	log_ident = ident;
	fl_log_threshold = level;
	log_format = format;
	if (format == FL_LOG_SYSLOG)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

static int parse_name(const char *s, const char *const *names, int n)
{
	for (int i = 0; s && i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

int fl_log_level_parse(const char *s)
{
	return parse_name(s, level_names, 4);
}

int fl_log_format_parse(const char *s)
{
	static const char *const names[] = {"text", "json", "syslog"};

	return parse_name(s, names, 3);
}

static void write_json(int level, const char *func, const char *ts,
		       const char *msg)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "ts", ts, "level",
			      level_names[level], "prog", log_ident, "msg",
			      msg, "func", func);
	char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;

	if (line)
		fprintf(stderr, "%s\n", line);
	free(line);
	json_decref(o);
}

void fl_log_keep(unsigned lines)
{
	struct kept_line *ring = NULL, *old;

	if (lines > FL_LOG_KEEP_MAX)
		lines = FL_LOG_KEEP_MAX;
	if (lines)
		ring = fl_xcalloc(lines, sizeof(*ring));
	pthread_mutex_lock(&log_lock);
	old = kept;
	kept = ring;
	kept_cap = lines;
	kept_n = kept_next = 0;
	pthread_mutex_unlock(&log_lock);
	free(old);
}

/* Remember a line (under log_lock). */
static void keep_line(int level, const char *ts, const char *msg)
{
	struct kept_line *k;

	if (!kept_cap)
		return;
	k = &kept[kept_next];
	kept_next = (kept_next + 1) % kept_cap;
	if (kept_n < kept_cap)
		kept_n++;
	fl_strlcpy(k->context, log_context ? log_context : "",
		   sizeof(k->context));
	snprintf(k->text, sizeof(k->text), "%s %s: %s", ts, level_names[level],
		 msg);
}

size_t fl_log_kept(const char *context, size_t n,
		   void (*fn)(void *user, const char *line), void *user)
{
	size_t *pick, k = 0;

	pthread_mutex_lock(&log_lock);
	pick = fl_xcalloc(kept_n + 1, sizeof(*pick));
	for (size_t i = 0; i < kept_n && k < n; i++) {
		size_t at = (kept_next + kept_cap - 1 - i) % kept_cap;

		if (!context || !kept[at].context[0] ||
		    strcmp(kept[at].context, context) == 0)
			pick[k++] = at;
	}
	for (size_t i = k; i-- > 0;)
		fn(user, kept[pick[i]].text);
	pthread_mutex_unlock(&log_lock);
	free(pick);
	return k;
}

/*
 * Format once (the thread's context first), then write the whole line under a
 * lock so lines from different threads never interleave.  Debug lines carry the
 * function.
 */
void fl_log_write(int level, const char *func, const char *fmt, ...)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[2048], ts[40];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	int n = 0;

	if (level < 0 || level > FL_LOG_DEBUG)
		level = FL_LOG_ERROR;
	if (log_context)
		n = snprintf(msg, sizeof(msg), "%.64s: ", log_context);
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000);
	pthread_mutex_lock(&log_lock);
	keep_line(level, ts, msg);
	if (log_format == FL_LOG_SYSLOG)
		syslog(prio[level], "%s", msg);
	else if (log_format == FL_LOG_JSON)
		write_json(level, func, ts, msg);
	else if (level == FL_LOG_DEBUG)
		fprintf(stderr, "%s %s %s: %s: %s\n", ts, log_ident,
			level_names[level], func, msg);
	else
		fprintf(stderr, "%s %s %s: %s\n", ts, log_ident,
			level_names[level], msg);
	pthread_mutex_unlock(&log_lock);
}

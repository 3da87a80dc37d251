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
	if (log_format == FL_LOG_SYSLOG) {
		syslog(prio[level], "%s", msg);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ",
		 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
		 tm.tm_min, tm.tm_sec, (long)tv.tv_usec / 1000);
	pthread_mutex_lock(&log_lock);
	if (log_format == FL_LOG_JSON)
		write_json(level, func, ts, msg);
	else if (level == FL_LOG_DEBUG)
		fprintf(stderr, "%s %s %s: %s: %s\n", ts, log_ident,
			level_names[level], func, msg);
	else
		fprintf(stderr, "%s %s %s: %s\n", ts, log_ident,
			level_names[level], msg);
	pthread_mutex_unlock(&log_lock);
}

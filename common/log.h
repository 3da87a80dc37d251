/* SPDX-License-Identifier: MIT */
#ifndef FL_LOG_H
#define FL_LOG_H

/*
 * Leveled logging for the daemons: text or JSON lines on stderr, or
 * syslog when run as a service.  fl_log() checks the level before any
 * formatting happens.
 */
enum fl_log_level {
	FL_LOG_ERROR = 0,
	FL_LOG_WARN = 1,
	FL_LOG_INFO = 2,
	FL_LOG_DEBUG = 3,
};

enum fl_log_format {
	FL_LOG_TEXT = 0,
	FL_LOG_JSON = 1,
	FL_LOG_SYSLOG = 2,
};

extern int fl_log_threshold;

/* Set the program name, level and format; call once at start-up. */
void fl_log_setup(const char *ident, int level, enum fl_log_format format);

/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int fl_log_level_parse(const char *s);

/* Parse "text|json|syslog"; returns -1 when unknown. */
int fl_log_format_parse(const char *s);

/*
 * The calling thread's log context: a short name (an agent's device
 * id) that starts every message as "NAME: ...", so several agents can
 * log from one process without formatting their id into each line.
 * @name is borrowed (it must live until the context is set again) and
 * may be NULL for none.  Returns the previous context, which the caller
 * restores when it is done (contexts nest).
 */
const char *fl_log_context_set(const char *name);

/* The calling thread's log context, or NULL. */
const char *fl_log_context(void);

/*
 * Keep the last @lines lines logged (at most FL_LOG_KEEP_MAX; 0 stops
 * and forgets) in memory, whatever the format, so that a running
 * program can show its own recent log (the agent's "logs" diagnostic).
 * Lines are kept as "TIME LEVEL: MESSAGE", cut to FL_LOG_KEEP_LINE
 * bytes, with the thread's log context.  Thread-safe.
 */
#define FL_LOG_KEEP_MAX 4096
#define FL_LOG_KEEP_LINE 320
void fl_log_keep(unsigned lines);

/*
 * Call @fn with each of the last @n kept lines whose context is
 * @context or none (@context NULL: every line), oldest first, under the
 * log's lock (@fn must not log).  Returns how many it passed.
 */
size_t fl_log_kept(const char *context, size_t n,
		   void (*fn)(void *user, const char *line), void *user);

void fl_log_write(int level, const char *func, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define fl_log(level, ...)                                                 \
	do {                                                               \
		if ((level) <= fl_log_threshold)                           \
			fl_log_write((level), __func__, __VA_ARGS__);      \
	} while (0)

#define fl_error(...) fl_log(FL_LOG_ERROR, __VA_ARGS__)
#define fl_warn(...) fl_log(FL_LOG_WARN, __VA_ARGS__)
#define fl_info(...) fl_log(FL_LOG_INFO, __VA_ARGS__)
#define fl_debug(...) fl_log(FL_LOG_DEBUG, __VA_ARGS__)

#endif

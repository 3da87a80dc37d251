/* SPDX-License-Identifier: MIT */
/*
 * The rule file (rules.h, docs/rules.md): INI-like sections [rule "NAME"]
 * and [write "SOURCE.NAME"] of `key = value` lines.  Read here line by
 * line rather than through libinih, whose handler is not told the line
 * number of a key (Debian builds it without INI_HANDLER_LINENO) and which
 * cuts lines at 200 bytes: every error here names its line.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"
#include "util.h"

enum key {
	K_KIND,
	K_METRIC,
	K_ABOVE,
	K_BELOW,
	K_HYST,
	K_WINDOW,
	K_SAMPLES,
	K_MIN_SAMPLES,
	K_AFTER,
	K_TIMEOUT,
	K_EVENT,
	K_WRITE,
	K_EXEC,
	K_MIN,
	K_MAX,
	K_N
};

static const char *const key_names[K_N] = {
    "kind",   "metric",	 "above",	"below", "hysteresis",
    "window", "samples", "min_samples", "after", "timeout",
    "event",  "write",	 "exec",	"min",	 "max"};

/* Keys each kind allows besides kind, metric and the actions. */
static const struct {
	const char *name;
	enum agent_rule_kind kind;
	unsigned keys; /* bits of enum key */
} kinds[] = {
    {"threshold", AGENT_RULE_THRESHOLD,
     1u << K_ABOVE | 1u << K_BELOW | 1u << K_HYST},
    {"rate", AGENT_RULE_RATE,
     1u << K_ABOVE | 1u << K_BELOW | 1u << K_HYST | 1u << K_WINDOW},
    {"stale", AGENT_RULE_STALE, 1u << K_AFTER},
    {"zscore", AGENT_RULE_ZSCORE,
     1u << K_ABOVE | 1u << K_HYST | 1u << K_SAMPLES | 1u << K_MIN_SAMPLES},
};

#define RULE_KEYS                                                              \
	(1u << K_KIND | 1u << K_METRIC | 1u << K_TIMEOUT | 1u << K_EVENT |     \
	 1u << K_WRITE | 1u << K_EXEC)
#define REPEATABLE (1u << K_WRITE | 1u << K_EXEC)

struct parser {
	const char *file;
	const struct agent_rules_opts *o;
	struct agent_rules *r;
	struct agent_rule *rule;	  /* the section being read, */
	struct agent_rule_target *target; /* or this one */
	unsigned line;			  /* the current line */
	unsigned key_line[K_N];		  /* of the section's keys; 0: none */
	struct fl_error *err;
};

static int bad(struct parser *p, unsigned line, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Fail with "FILE:LINE: message". */
static int bad(struct parser *p, unsigned line, int code, const char *fmt, ...)
{
	char msg[FL_ERR_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return fl_fail(p->err, code, "%s:%u: %s", p->file, line, msg);
}

static bool name_ok(const char *s, size_t max, bool dots)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' &&
		    s[i] != '-' && !(dots && (s[i] == '.' || s[i] == ':')))
			return false;
	return n >= 1 && n <= max;
}

static int number(struct parser *p, const char *v, double *ret)
{
	char *end;

	errno = 0;
	*ret = strtod(v, &end);
	if (end == v || *end || errno || !isfinite(*ret))
		return bad(p, p->line, FL_EPARSE, "'%.40s' is not a number", v);
	return 0;
}

/* A duration of 1..@max s, in ms. */
static int duration(struct parser *p, const char *v, int64_t max,
		    int64_t *ret_ms)
{
	int64_t s = 0;

	if (fl_parse_duration(v, &s, NULL) || s < 1 || s > max)
		return bad(p, p->line, FL_EPARSE,
			   "'%.40s' is not a duration of 1 s..%lld s", v,
			   (long long)max);
	*ret_ms = s * 1000;
	return 0;
}

static int count(struct parser *p, const char *v, uint64_t min, uint64_t max,
		 unsigned *ret)
{
	uint64_t n = 0;

	if (fl_parse_uint(v, max, &n, NULL) || n < min)
		return bad(p, p->line, FL_EPARSE,
			   "'%.40s' is not a whole number %llu..%llu", v,
			   (unsigned long long)min, (unsigned long long)max);
	*ret = (unsigned)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Actions                                                            */
/* ------------------------------------------------------------------ */

static struct agent_rule_action *new_action(struct parser *p,
					    enum agent_rule_act kind)
{
	struct agent_rule *r = p->rule;

	if (r->n_act >= AGENT_RULE_ACTIONS_MAX) {
		bad(p, p->line, FL_ELIMIT, "more than %d actions in rule '%s'",
		    AGENT_RULE_ACTIONS_MAX, r->name);
		return NULL;
	}
	r->act[r->n_act].kind = kind;
	r->act[r->n_act].line = p->line;
	return &r->act[r->n_act++];
}

static int act_event(struct parser *p, const char *v)
{
	if (strcmp(v, "yes") && strcmp(v, "true"))
		return bad(p, p->line, FL_EPARSE,
			   "event takes yes (leave it out for none)");
	return new_action(p, AGENT_RULE_EVENT) ? 0 : FL_ELIMIT;
}

/* write = SOURCE.NAME VALUE (checked against its target at the end). */
static int act_write(struct parser *p, const char *v)
{
	const char *sp = strchr(v, ' '), *dot = strchr(v, '.');
	struct agent_rule_action *a;
	size_t n = sp ? (size_t)(sp - v) : 0;

	if (!sp || !dot || dot > sp || dot == v || dot + 1 == sp ||
	    n > AGENT_TLM_METRIC_MAX)
		return bad(p, p->line, FL_EPARSE,
			   "write takes SOURCE.NAME VALUE, not '%.60s'", v);
	if (!(a = new_action(p, AGENT_RULE_WRITE)))
		return FL_ELIMIT;
	memcpy(a->source, v, (size_t)(dot - v));
	memcpy(a->name, dot + 1, (size_t)(sp - dot - 1));
	while (*sp == ' ')
		sp++;
	return number(p, sp, &a->value);
}

/* Is @path directly in @dir ("/a/b" in "/a" or "/a/")? */
static bool in_dir(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && path[n] == '/' &&
	       path[n + 1] != '\0' && !strchr(path + n + 1, '/');
}

/* Absolute, and no empty, "." or ".." component. */
static bool path_clean(const char *path)
{
	const char *c = path;

	if (path[0] != '/')
		return false;
	while (*c == '/') {
		size_t n = strcspn(c + 1, "/");

		if (n == 0 || (n == 1 && c[1] == '.') ||
		    (n == 2 && c[1] == '.' && c[2] == '.'))
			return false;
		c += n + 1;
	}
	return true;
}

static int exec_path(struct parser *p, const char *path)
{
	if (p->o->no_exec)
		return bad(p, p->line, FL_EPARSE,
			   "exec actions are not allowed here (agent.conf "
			   "[rules] exec_dir)");
	if (!path_clean(path))
		return bad(p, p->line, FL_EPARSE,
			   "exec needs an absolute path, not '%.60s'", path);
	if (p->o->exec_dir && !in_dir(path, p->o->exec_dir))
		return bad(p, p->line, FL_EPARSE, "'%.60s' is not in %s", path,
			   p->o->exec_dir);
	return 0;
}

/* exec = /abs/path arg...: words split at spaces, no shell. */
static int act_exec(struct parser *p, const char *v)
{
	struct agent_rule_action *a;
	size_t n = 0;
	char *copy, *save = NULL;

	if (strlen(v) > AGENT_RULE_EXEC_LEN_MAX)
		return bad(p, p->line, FL_ELIMIT, "exec line over %d bytes",
			   AGENT_RULE_EXEC_LEN_MAX);
	if (!(a = new_action(p, AGENT_RULE_EXEC)))
		return FL_ELIMIT;
	copy = fl_xstrdup(v);
	for (char *w = strtok_r(copy, " \t", &save); w;
	     w = strtok_r(NULL, " \t", &save)) {
		if (n == AGENT_RULE_ARGV_MAX) {
			free(copy);
			return bad(p, p->line, FL_ELIMIT,
				   "exec with more than %d words",
				   AGENT_RULE_ARGV_MAX);
		}
		a->argv[n++] = fl_xstrdup(w);
	}
	free(copy);
	return n ? exec_path(p, a->argv[0])
		 : bad(p, p->line, FL_EPARSE, "exec names no program");
}

/* ------------------------------------------------------------------ */
/* Keys                                                               */
/* ------------------------------------------------------------------ */

static int set_kind(struct parser *p, const char *v)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(kinds); i++)
		if (strcmp(kinds[i].name, v) == 0) {
			p->rule->kind = kinds[i].kind;
			return 0;
		}
	return bad(p, p->line, FL_EPARSE,
		   "unknown kind '%.40s' (threshold, rate, stale, zscore)", v);
}

static int rule_key(struct parser *p, enum key k, const char *v)
{
	struct agent_rule *r = p->rule;

	switch (k) {
	case K_KIND:
		return set_kind(p, v);
	case K_METRIC:
		if (!agent_tlm_metric_valid(v))
			return bad(p, p->line, FL_EPARSE,
				   "'%.60s' is not a metric name", v);
		snprintf(r->metric, sizeof(r->metric), "%s", v);
		return 0;
	case K_ABOVE:
	case K_BELOW:
		r->below = k == K_BELOW;
		return number(p, v, &r->limit);
	case K_HYST:
		return number(p, v, &r->hysteresis) ? FL_EPARSE
		       : r->hysteresis < 0
			   ? bad(p, p->line, FL_EPARSE, "hysteresis below 0")
			   : 0;
	case K_WINDOW:
		return duration(p, v, AGENT_RULE_RATE_WINDOW_MAX,
				&r->window_ms);
	case K_SAMPLES:
		return count(p, v, 2, AGENT_RULE_SAMPLES_MAX, &r->samples);
	case K_MIN_SAMPLES:
		return count(p, v, 2, AGENT_RULE_SAMPLES_MAX, &r->min_samples);
	case K_AFTER:
		return duration(p, v, AGENT_RULE_STALE_MAX, &r->after_ms);
	case K_TIMEOUT:
		return duration(p, v, AGENT_RULE_TIMEOUT_MAX, &r->timeout_ms);
	case K_EVENT:
		return act_event(p, v);
	case K_WRITE:
		return act_write(p, v);
	case K_EXEC:
		return act_exec(p, v);
	default: /* min and max: not rule keys (key_line) */
		return 0;
	}
}

static int target_key(struct parser *p, enum key k, const char *v)
{
	return number(p, v, k == K_MIN ? &p->target->min : &p->target->max);
}

static int key_line(struct parser *p, const char *k, const char *v)
{
	unsigned allowed =
	    p->rule ? (1u << K_MIN) - 1 : 1u << K_MIN | 1u << K_MAX;
	size_t i = 0;

	if (!p->rule && !p->target)
		return bad(p, p->line, FL_EPARSE, "'%.40s' outside a section",
			   k);
	while (i < K_N && strcmp(key_names[i], k))
		i++;
	if (i == K_N || !(allowed & 1u << i))
		return bad(p, p->line, FL_EPARSE, "unknown key '%.40s'", k);
	if (p->key_line[i] && !(REPEATABLE & 1u << i))
		return bad(p, p->line, FL_EPARSE, "'%s' given twice (line %u)",
			   k, p->key_line[i]);
	if ((i == K_ABOVE && p->key_line[K_BELOW]) ||
	    (i == K_BELOW && p->key_line[K_ABOVE]))
		return bad(p, p->line, FL_EPARSE,
			   "one of above and below, not both");
	p->key_line[i] = p->line;
	return p->rule ? rule_key(p, (enum key)i, v)
		       : target_key(p, (enum key)i, v);
}

/* ------------------------------------------------------------------ */
/* Sections                                                           */
/* ------------------------------------------------------------------ */

static unsigned kind_keys(enum agent_rule_kind kind)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == kind)
			return kinds[i].keys;
	return 0;
}

/* What a rule of its kind needs, and no key of another kind. */
static int finish_rule(struct parser *p)
{
	struct agent_rule *r = p->rule;
	unsigned allowed = RULE_KEYS | kind_keys(r->kind);

	if (!r->kind)
		return bad(p, r->line, FL_EPARSE, "rule '%s' has no kind",
			   r->name);
	for (size_t i = 0; i < K_N; i++)
		if (p->key_line[i] && !(allowed & 1u << i))
			return bad(p, p->key_line[i], FL_EPARSE,
				   "'%s' is not a key of a %s rule",
				   key_names[i], kinds[r->kind - 1].name);
	if (!r->metric[0])
		return bad(p, r->line, FL_EPARSE, "rule '%s' has no metric",
			   r->name);
	if (r->kind != AGENT_RULE_STALE && !p->key_line[K_ABOVE] &&
	    !p->key_line[K_BELOW])
		return bad(p, r->line, FL_EPARSE,
			   "rule '%s' needs above or below", r->name);
	if (r->kind == AGENT_RULE_RATE && !r->window_ms)
		return bad(p, r->line, FL_EPARSE, "rule '%s' needs a window",
			   r->name);
	if (r->kind == AGENT_RULE_STALE && !r->after_ms)
		return bad(p, r->line, FL_EPARSE, "rule '%s' needs after",
			   r->name);
	if (!r->n_act)
		return bad(p, r->line, FL_EPARSE,
			   "rule '%s' has no action (event, write, exec)",
			   r->name);
	if (r->kind != AGENT_RULE_ZSCORE)
		return 0;
	if (r->limit <= 0)
		return bad(p, p->key_line[K_ABOVE], FL_EPARSE,
			   "a z-score limit must be above 0");
	if (!r->samples)
		return bad(p, r->line, FL_EPARSE, "rule '%s' needs samples",
			   r->name);
	if (r->min_samples > r->samples)
		return bad(p, p->key_line[K_MIN_SAMPLES], FL_EPARSE,
			   "min_samples above samples");
	return 0;
}

static int finish_target(struct parser *p)
{
	struct agent_rule_target *t = p->target;

	if (!p->key_line[K_MIN] || !p->key_line[K_MAX])
		return bad(p, t->line, FL_EPARSE,
			   "write target '%s' needs min and max", t->name);
	if (t->min > t->max)
		return bad(p, p->key_line[K_MAX], FL_EPARSE, "max below min");
	return 0;
}

static int finish_section(struct parser *p)
{
	int rc = 0;

	if (p->rule) {
		rc = finish_rule(p);
		if (!rc && p->rule->kind == AGENT_RULE_ZSCORE &&
		    !p->rule->min_samples)
			p->rule->min_samples =
			    p->rule->samples < 10 ? p->rule->samples : 10;
		if (!rc && !p->rule->timeout_ms)
			p->rule->timeout_ms = AGENT_RULE_TIMEOUT_DEFAULT * 1000;
	} else if (p->target) {
		rc = finish_target(p);
	}
	p->rule = NULL;
	p->target = NULL;
	memset(p->key_line, 0, sizeof(p->key_line));
	return rc;
}

static bool name_taken(const struct agent_rules *r, const char *name, bool rule)
{
	for (size_t i = 0; rule && i < r->n; i++)
		if (strcmp(r->v[i].name, name) == 0)
			return true;
	for (size_t i = 0; !rule && i < r->n_w; i++)
		if (strcmp(r->w[i].name, name) == 0)
			return true;
	return false;
}

static int new_section(struct parser *p, const char *what, const char *name)
{
	bool rule = strcmp(what, "rule") == 0;

	if (!rule && strcmp(what, "write"))
		return bad(p, p->line, FL_EPARSE,
			   "unknown section '%.20s' (rule, write)", what);
	if (!name_ok(name, rule ? AGENT_RULE_NAME_MAX : AGENT_TLM_METRIC_MAX,
		     !rule) ||
	    (!rule && !strchr(name, '.')))
		return bad(p, p->line, FL_EPARSE, "bad %s name '%.70s'", what,
			   name);
	if (name_taken(p->r, name, rule))
		return bad(p, p->line, FL_EPARSE, "%s '%s' twice", what, name);
	if ((rule ? p->r->n : p->r->n_w) >=
	    (rule ? AGENT_RULES_MAX : AGENT_RULES_WRITES_MAX))
		return bad(p, p->line, FL_ELIMIT, "more than %d %s sections",
			   rule ? AGENT_RULES_MAX : AGENT_RULES_WRITES_MAX,
			   what);
	if (rule) {
		p->rule = &p->r->v[p->r->n++];
		snprintf(p->rule->name, sizeof(p->rule->name), "%s", name);
		p->rule->line = p->line;
	} else {
		p->target = &p->r->w[p->r->n_w++];
		snprintf(p->target->name, sizeof(p->target->name), "%s", name);
		p->target->line = p->line;
	}
	return 0;
}

static char *trim(char *s)
{
	char *e = s + strlen(s);

	while (isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* [WHAT "NAME"] */
static int header(struct parser *p, char *s)
{
	char *q1 = strchr(s, '"'), *q2 = q1 ? strchr(q1 + 1, '"') : NULL;
	size_t n = strlen(s);
	int rc;

	if (!q1 || !q2 || s[n - 1] != ']' || q2 != s + n - 2)
		return bad(p, p->line, FL_EPARSE,
			   "a section is [rule \"NAME\"] or [write "
			   "\"SOURCE.NAME\"]");
	*q2 = '\0';
	*q1 = '\0';
	if ((rc = finish_section(p)))
		return rc;
	return new_section(p, trim(s + 1), q1 + 1);
}

/* Cut an inline comment: ';' or '#' after a space or tab. */
static void uncomment(char *s)
{
	for (char *c = s; *c; c++)
		if ((*c == ';' || *c == '#') && c > s &&
		    (c[-1] == ' ' || c[-1] == '\t')) {
			*c = '\0';
			return;
		}
}

static int line(struct parser *p, char *s)
{
	char *eq;

	uncomment(s);
	s = trim(s);
	if (!*s || *s == ';' || *s == '#')
		return 0;
	if (*s == '[')
		return header(p, s);
	if (!(eq = strchr(s, '=')))
		return bad(p, p->line, FL_EPARSE, "expected key = value");
	*eq = '\0';
	return key_line(p, trim(s), trim(eq + 1));
}

/* Each write action names a declared target, within its limits. */
static int check_writes(struct parser *p)
{
	for (size_t i = 0; i < p->r->n; i++)
		for (size_t k = 0; k < p->r->v[i].n_act; k++) {
			const struct agent_rule_action *a = &p->r->v[i].act[k];
			char t[2 * AGENT_TLM_METRIC_MAX + 2];
			size_t w = 0;

			if (a->kind != AGENT_RULE_WRITE)
				continue;
			snprintf(t, sizeof(t), "%s.%s", a->source, a->name);
			while (w < p->r->n_w && strcmp(p->r->w[w].name, t))
				w++;
			if (w == p->r->n_w)
				return bad(p, a->line, FL_EPARSE,
					   "'%s' is not a declared write "
					   "target ([write \"%s\"])",
					   t, t);
			if (a->value < p->r->w[w].min ||
			    a->value > p->r->w[w].max)
				return bad(p, a->line, FL_EPARSE,
					   "%g is outside %s's limits %g..%g",
					   a->value, t, p->r->w[w].min,
					   p->r->w[w].max);
		}
	return 0;
}

static int parse_lines(struct parser *p, char *text)
{
	char *save = NULL;
	int rc = 0;

	p->line = 0;
	for (char *s = text; !rc && s; s = save) {
		char *nl = strchr(s, '\n');

		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		p->line++;
		rc = line(p, s);
	}
	return rc ? rc : finish_section(p);
}

int agent_rules_parse(const char *text, size_t len, const char *file,
		      const struct agent_rules_opts *o,
		      struct agent_rules **ret, struct fl_error *err)
{
	static const struct agent_rules_opts none = {0};
	struct parser p = {.file = file, .o = o ? o : &none, .err = err};
	char *copy;
	int rc;

	if (len > AGENT_RULES_TEXT_MAX)
		return fl_fail(err, FL_ELIMIT, "%s: over %d bytes", file,
			       AGENT_RULES_TEXT_MAX);
	if (memchr(text, '\0', len))
		return fl_fail(err, FL_EPARSE, "%s: holds a NUL byte", file);
	p.r = fl_xcalloc(1, sizeof(*p.r));
	p.r->v = fl_xcalloc(AGENT_RULES_MAX, sizeof(*p.r->v));
	p.r->w = fl_xcalloc(AGENT_RULES_WRITES_MAX, sizeof(*p.r->w));
	copy = fl_xmalloc(len + 1); /* @text need not end in a NUL */
	memcpy(copy, text, len);
	copy[len] = '\0';
	rc = parse_lines(&p, copy);
	if (!rc)
		rc = check_writes(&p);
	free(copy);
	if (rc)
		agent_rules_free(p.r);
	else
		*ret = p.r;
	return rc;
}

void agent_rules_free(struct agent_rules *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < r->v[i].n_act; k++)
			for (char **a = r->v[i].act[k].argv; *a; a++)
				free(*a);
	free(r->v);
	free(r->w);
	free(r);
}

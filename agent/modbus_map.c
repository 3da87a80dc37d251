/* SPDX-License-Identifier: MIT */
/*
 * Modbus register maps (modbus_map.h): libinih reads the text through a
 * reader that counts lines, so every check, also the ones across lines
 * (overlaps, duplicate names), names the line it refuses.
 */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "agent_telemetry.h"
#include "fsutil.h"
#include "modbus_map.h"
#include "util.h"

struct parse {
	const char *name;	    /* the map's, for messages */
	const char *p, *end;	    /* text still to read */
	int line;		    /* of the line libinih works on */
	bool too_long;		    /* a line over libinih's limit */
	char section[INI_MAX_LINE]; /* the one keys last came in */
	struct agent_mb_map *m;
	struct agent_mb_source *cur; /* the source the section is about */
	bool regs;		     /* [registers NAME], else [source] */
	int rc;			     /* the first error: its code, */
	int err_line;		     /* line */
	char msg[256];		     /* and message */
};

static const char *const fn_names[] = {"coil", "discrete", "holding", "input"};
static const char *const type_names[] = {"bit",	  "int16",  "uint16",
					 "int32", "uint32", "float32"};
static const char *const order_names[] = {"abcd", "cdab", "badc", "dcba"};
static const char *const agg_names[] = {"raw", "mean", "min",
					"max", "last", "count"};

const char *agent_mb_fn_name(enum agent_mb_fn fn)
{
	return fn_names[fn];
}

const char *agent_mb_agg_name(enum agent_mb_agg agg)
{
	return agg_names[agg];
}

/* Index of @s in @names (@n of them), or -1. */
static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(names[i], s) == 0)
			return (int)i;
	return -1;
}

static int perr(struct parse *ps, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int perr(struct parse *ps, int code, const char *fmt, ...)
{
	va_list ap;

	if (ps->rc)
		return 0;
	va_start(ap, fmt);
	vsnprintf(ps->msg, sizeof(ps->msg), fmt, ap);
	va_end(ap);
	ps->rc = code;
	ps->err_line = ps->line;
	return 0; /* libinih goes on, handler() ignores the rest */
}

/* ------------------------------------------------------------------ */
/* Values                                                             */
/* ------------------------------------------------------------------ */

/* Names: 1..AGENT_MB_NAME_MAX bytes of [A-Za-z0-9_:-] (metric
 * characters without the dot that joins SOURCE.NAME). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > AGENT_MB_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			 "0123456789_:-") == n;
}

static bool parse_num(const char *s, double *ret)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v))
		return false;
	*ret = v;
	return true;
}

static bool parse_int(const char *s, int64_t min, int64_t max, int64_t *ret)
{
	uint64_t v;

	if (fl_parse_uint(s, (uint64_t)max, &v, NULL) || (int64_t)v < min)
		return false;
	*ret = (int64_t)v;
	return true;
}

/* A duration in milliseconds: N with ms, s (default), m or h. */
static bool parse_ms(const char *s, int64_t *ret)
{
	static const struct {
		const char *suffix;
		int64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
	char num[24];
	size_t n = strspn(s, "0123456789");
	int64_t v;

	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, s, n);
	num[n] = '\0';
	if (!parse_int(num, 0, INT32_MAX, &v))
		return false;
	if (!s[n]) {
		*ret = v * 1000;
		return true;
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(units); i++)
		if (strcmp(s + n, units[i].suffix) == 0) {
			*ret = v * units[i].ms;
			return true;
		}
	return false;
}

/* ------------------------------------------------------------------ */
/* [source NAME]                                                      */
/* ------------------------------------------------------------------ */

static struct agent_mb_source *find_source(struct agent_mb_map *m,
					   const char *name)
{
	for (size_t i = 0; i < m->n_src; i++)
		if (strcmp(m->src[i].name, name) == 0)
			return &m->src[i];
	return NULL;
}

const struct agent_mb_source *agent_mb_source(const struct agent_mb_map *m,
					      const char *name)
{
	return m ? find_source((struct agent_mb_map *)m, name) : NULL;
}

static int new_source(struct parse *ps, const char *name)
{
	struct agent_mb_source *s;

	if (!name_ok(name))
		return perr(ps, FL_EPARSE, "bad source name '%s'", name);
	if (find_source(ps->m, name))
		return perr(ps, FL_EPARSE, "source '%s' defined twice", name);
	if (ps->m->n_src >= AGENT_MB_SOURCES_MAX)
		return perr(ps, FL_ELIMIT, "more than %d sources",
			    AGENT_MB_SOURCES_MAX);
	ps->m->src =
	    fl_xrealloc(ps->m->src, (ps->m->n_src + 1) * sizeof(*ps->m->src));
	s = memset(&ps->m->src[ps->m->n_src++], 0, sizeof(*s));
	fl_strlcpy(s->name, name, sizeof(s->name));
	s->port = 502;
	s->baud = 9600;
	s->parity = 'N';
	s->data_bits = 8;
	s->stop_bits = 1;
	s->unit_id = 1;
	s->interval_ms = 1000;
	s->timeout_ms = 1000;
	s->line = ps->line;
	ps->cur = s;
	return 1;
}

/* An unsigned key of a source within [min, max]. */
static bool src_uint(const char *v, int64_t min, int64_t max, void *dst,
		     size_t size)
{
	int64_t x;

	if (!parse_int(v, min, max, &x))
		return false;
	if (size == 1)
		*(uint8_t *)dst = (uint8_t)x;
	else if (size == 2)
		*(uint16_t *)dst = (uint16_t)x;
	else
		*(uint32_t *)dst = (uint32_t)x;
	return true;
}

static int source_key(struct parse *ps, const char *k, const char *v)
{
	struct agent_mb_source *s = ps->cur;
	bool ok;

	if (!strcmp(k, "host") || !strcmp(k, "device")) {
		char *dst = k[0] == 'h' ? s->host : s->device;

		ok = *v && strlen(v) < sizeof(s->host) && !*dst;
		if (ok)
			fl_strlcpy(dst, v, sizeof(s->host));
	} else if (!strcmp(k, "port")) {
		ok = src_uint(v, 1, 65535, &s->port, 2);
	} else if (!strcmp(k, "unit_id")) {
		ok = src_uint(v, 0, 247, &s->unit_id, 1);
	} else if (!strcmp(k, "baud")) {
		ok = src_uint(v, 50, 4000000, &s->baud, 4);
	} else if (!strcmp(k, "data_bits")) {
		ok = src_uint(v, 5, 8, &s->data_bits, 1);
	} else if (!strcmp(k, "stop_bits")) {
		ok = src_uint(v, 1, 2, &s->stop_bits, 1);
	} else if (!strcmp(k, "parity")) {
		ok = strlen(v) == 1 && strchr("NEO", v[0]);
		s->parity = ok ? v[0] : s->parity;
	} else if (!strcmp(k, "interval")) {
		ok = parse_ms(v, &s->interval_ms) &&
		     s->interval_ms >= AGENT_MB_INTERVAL_MIN &&
		     s->interval_ms <= AGENT_MB_INTERVAL_MAX;
	} else if (!strcmp(k, "timeout")) {
		ok = parse_ms(v, &s->timeout_ms) &&
		     s->timeout_ms >= AGENT_MB_TIMEOUT_MIN &&
		     s->timeout_ms <= AGENT_MB_TIMEOUT_MAX;
	} else {
		return perr(ps, FL_EPARSE, "unknown key '%s' in [source %s]", k,
			    s->name);
	}
	return ok ? 1
		  : perr(ps, FL_EPARSE, "bad %s '%s' (docs/modbus.md)", k, v);
}

/* ------------------------------------------------------------------ */
/* [registers NAME]                                                   */
/* ------------------------------------------------------------------ */

/* One key=value of a register line into @r; NULL or what is wrong. */
static const char *reg_opt(struct agent_mb_reg *r, const char *k, const char *v,
			   int64_t *count, bool *has_min, bool *has_max)
{
	int i;

	if (!strcmp(k, "type")) {
		if ((i = lookup(type_names, FL_ARRAY_SIZE(type_names), v)) < 1)
			return "unknown type";
		r->type = (enum agent_mb_type)i;
	} else if (!strcmp(k, "order")) {
		if ((i = lookup(order_names, FL_ARRAY_SIZE(order_names), v)) <
		    0)
			return "unknown word order";
		r->order = (enum agent_mb_order)i;
	} else if (!strcmp(k, "agg")) {
		if ((i = lookup(agg_names, FL_ARRAY_SIZE(agg_names), v)) < 1)
			return "unknown aggregation";
		r->agg = (enum agent_mb_agg)i;
	} else if (!strcmp(k, "count")) {
		return parse_int(v, 1, 2, count) ? NULL : "bad count";
	} else if (!strcmp(k, "window")) {
		return !fl_parse_duration(v, &r->window_s, NULL) &&
			       r->window_s >= 1 &&
			       r->window_s <= AGENT_MB_WINDOW_MAX
			   ? NULL
			   : "bad window";
	} else if (!strcmp(k, "unit")) {
		return strlen(v) < sizeof(r->unit) &&
			       fl_strlcpy(r->unit, v, sizeof(r->unit))
			   ? NULL
			   : "unit too long";
	} else if (!strcmp(k, "scale")) {
		return parse_num(v, &r->scale) && r->scale != 0 ? NULL
								: "bad scale";
	} else if (!strcmp(k, "offset")) {
		return parse_num(v, &r->offset) ? NULL : "bad offset";
	} else if (!strcmp(k, "min") || !strcmp(k, "max")) {
		bool *has = k[1] == 'i' ? has_min : has_max;

		*has = true;
		return parse_num(v, k[1] == 'i' ? &r->min : &r->max)
			   ? NULL
			   : "bad limit";
	} else {
		return "unknown key";
	}
	return NULL;
}

static bool is_bits(enum agent_mb_fn fn)
{
	return fn == AGENT_MB_COIL || fn == AGENT_MB_DISCRETE;
}

static uint16_t type_count(enum agent_mb_type t)
{
	return t >= AGENT_MB_INT32 ? 2 : 1;
}

/* The checks of one register against itself. */
static int reg_check(struct parse *ps, struct agent_mb_reg *r, int64_t count,
		     bool has_min, bool has_max)
{
	bool bits = is_bits(r->fn);

	if (!r->type)
		r->type = bits ? AGENT_MB_BIT : AGENT_MB_UINT16;
	else if (bits)
		return perr(ps, FL_EPARSE, "a %s has no type", fn_names[r->fn]);
	r->count = type_count(r->type);
	if (count && count != r->count)
		return perr(ps, FL_EPARSE,
			    "count %lld does not match type %s (%u)",
			    (long long)count, type_names[r->type], r->count);
	if (r->count == 1 && r->order != AGENT_MB_ABCD &&
	    r->order != AGENT_MB_BADC)
		return perr(ps, FL_EPARSE, "order %s needs a 32-bit type",
			    order_names[r->order]);
	if ((unsigned)r->addr + r->count > 65536)
		return perr(ps, FL_EPARSE, "address past 65535");
	if ((r->agg != AGENT_MB_RAW) != (r->window_s != 0))
		return perr(ps, FL_EPARSE, "agg and window go together");
	if (r->window_s && r->window_s * 1000 < ps->cur->interval_ms)
		return perr(ps, FL_EPARSE, "window shorter than the interval");
	if (has_min != has_max || (has_min && r->min > r->max))
		return perr(ps, FL_EPARSE,
			    "min and max go together, min <= max");
	if (has_min && (r->fn == AGENT_MB_DISCRETE || r->fn == AGENT_MB_INPUT))
		return perr(ps, FL_EPARSE, "%s is read-only: no min/max",
			    fn_names[r->fn]);
	r->writable = has_min;
	return 1;
}

/* The checks of register @r against the source's others. */
static int reg_against(struct parse *ps, const struct agent_mb_reg *r)
{
	const struct agent_mb_source *s = ps->cur;

	if (s->n_regs >= AGENT_MB_REGS_MAX)
		return perr(ps, FL_ELIMIT, "more than %d registers in %s",
			    AGENT_MB_REGS_MAX, s->name);
	if (!strcmp(r->name, "up"))
		return perr(ps, FL_EPARSE, "'up' is the source's own value");
	if (strlen(s->name) + 1 + strlen(r->name) > AGENT_TLM_METRIC_MAX)
		return perr(ps, FL_EPARSE, "%s.%s: name over %d bytes", s->name,
			    r->name, AGENT_TLM_METRIC_MAX);
	for (size_t i = 0; i < s->n_regs; i++) {
		const struct agent_mb_reg *o = &s->regs[i];

		if (!strcmp(o->name, r->name))
			return perr(ps, FL_EPARSE,
				    "register '%s' twice "
				    "(line %d)",
				    r->name, o->line);
		if (o->fn == r->fn && r->addr < o->addr + o->count &&
		    o->addr < r->addr + r->count)
			return perr(ps, FL_EPARSE, "%s overlaps %s (line %d)",
				    r->name, o->name, o->line);
	}
	return 1;
}

/* Split @v into whitespace-separated tokens, at most @max. */
static size_t split(char *v, char **tok, size_t max)
{
	size_t n = 0;

	for (char *save = NULL, *t = strtok_r(v, " \t", &save); t;
	     t = strtok_r(NULL, " \t", &save))
		if (n < max + 1)
			tok[n++] = t;
	return n;
}

static int reg_line(struct parse *ps, const char *k, const char *v)
{
	struct agent_mb_reg r = {.scale = 1, .line = ps->line};
	char buf[INI_MAX_LINE], *tok[16];
	bool has_min = false, has_max = false;
	int64_t count = 0, addr;
	size_t n;
	int fn;

	if (!name_ok(k))
		return perr(ps, FL_EPARSE, "bad register name '%s'", k);
	fl_strlcpy(r.name, k, sizeof(r.name));
	fl_strlcpy(buf, v, sizeof(buf));
	n = split(buf, tok, FL_ARRAY_SIZE(tok) - 1);
	if (n < 2 || n >= FL_ARRAY_SIZE(tok))
		return perr(ps, FL_EPARSE,
			    "%s: want FUNCTION ADDRESS "
			    "[key=value...]",
			    k);
	if ((fn = lookup(fn_names, FL_ARRAY_SIZE(fn_names), tok[0])) < 0)
		return perr(ps, FL_EPARSE, "unknown function '%s'", tok[0]);
	r.fn = (enum agent_mb_fn)fn;
	if (!parse_int(tok[1], 0, 65535, &addr))
		return perr(ps, FL_EPARSE, "bad address '%s'", tok[1]);
	r.addr = (uint16_t)addr;
	for (size_t i = 2; i < n; i++) {
		char *eq = strchr(tok[i], '=');
		const char *why;

		if (!eq)
			return perr(ps, FL_EPARSE, "'%s': want key=value",
				    tok[i]);
		*eq = '\0';
		why = reg_opt(&r, tok[i], eq + 1, &count, &has_min, &has_max);
		if (why)
			return perr(ps, FL_EPARSE, "%s: %s '%s'", k, why,
				    eq + 1);
	}
	if (!reg_check(ps, &r, count, has_min, has_max) || !reg_against(ps, &r))
		return 0;
	ps->cur->regs =
	    fl_xrealloc(ps->cur->regs, (ps->cur->n_regs + 1) * sizeof(r));
	ps->cur->regs[ps->cur->n_regs++] = r;
	return 1;
}

/* ------------------------------------------------------------------ */
/* The parse                                                          */
/* ------------------------------------------------------------------ */

/* A section whose keys start: [source NAME] or [registers NAME]. */
static int enter_section(struct parse *ps, const char *section)
{
	const char *name = strchr(section, ' ');

	fl_strlcpy(ps->section, section, sizeof(ps->section));
	if (name && !strncmp(section, "source ", 7))
		return new_source(ps, name + 1);
	if (name && !strncmp(section, "registers ", 10)) {
		ps->regs = true;
		ps->cur = find_source(ps->m, name + 1);
		return ps->cur ? 1
			       : perr(ps, FL_EPARSE,
				      "[%s] before its [source "
				      "%s]",
				      section, name + 1);
	}
	return perr(ps, FL_EPARSE, "unknown section [%s]", section);
}

static int handler(void *user, const char *section, const char *k,
		   const char *v)
{
	struct parse *ps = user;

	if (ps->rc) /* libinih reads on after an error: nothing more */
		return 0;
	if (strcmp(section, ps->section) != 0) {
		ps->cur = NULL;
		ps->regs = false;
		if (!enter_section(ps, section))
			return 0;
	}
	if (!ps->cur) /* before any section, or after a broken header */
		return perr(ps, FL_EPARSE, "'%s' outside a section", k);
	return ps->regs ? reg_line(ps, k, v) : source_key(ps, k, v);
}

/* libinih's reader: the next line of the text, counted. */
static char *reader(char *str, int num, void *stream)
{
	struct parse *ps = stream;
	const char *nl;
	size_t n;

	if (ps->p >= ps->end || ps->too_long)
		return NULL;
	nl = memchr(ps->p, '\n', (size_t)(ps->end - ps->p));
	n = nl ? (size_t)(nl - ps->p) + 1 : (size_t)(ps->end - ps->p);
	ps->line++;
	if (n >= (size_t)num) {
		ps->too_long = true;
		return NULL;
	}
	memcpy(str, ps->p, n);
	str[n] = '\0';
	ps->p += n;
	return str;
}

/* A source's checks once all its keys are read. */
static int source_done(struct parse *ps, struct agent_mb_source *s)
{
	ps->line = s->line;
	if (!*s->host == !*s->device)
		return perr(ps, FL_EPARSE, "source %s: give host or device",
			    s->name);
	return 1;
}

static int cmp_reg(const void *a, const void *b, void *arg)
{
	const struct agent_mb_reg *r = arg;
	const struct agent_mb_reg *x = &r[*(const size_t *)a];
	const struct agent_mb_reg *y = &r[*(const size_t *)b];

	if (x->fn != y->fn)
		return (int)x->fn - (int)y->fn;
	return (int)x->addr - (int)y->addr;
}

/* Requests: consecutive registers of one function, up to a read's cap. */
static void make_groups(struct agent_mb_source *s)
{
	struct agent_mb_group *g = NULL;

	s->order = fl_xcalloc(s->n_regs + 1, sizeof(*s->order));
	s->groups = fl_xcalloc(s->n_regs + 1, sizeof(*s->groups));
	for (size_t i = 0; i < s->n_regs; i++)
		s->order[i] = i;
	qsort_r(s->order, s->n_regs, sizeof(*s->order), cmp_reg, s->regs);
	for (size_t i = 0; i < s->n_regs; i++) {
		const struct agent_mb_reg *r = &s->regs[s->order[i]];
		unsigned cap = is_bits(r->fn) ? AGENT_MB_READ_BITS_MAX
					      : AGENT_MB_READ_REGS_MAX;

		if (g && g->fn == r->fn && g->addr + g->count == r->addr &&
		    g->count + r->count <= cap) {
			g->count += r->count;
			g->n++;
			continue;
		}
		g = &s->groups[s->n_groups++];
		*g = (struct agent_mb_group){r->fn, r->addr, r->count, i, 1};
	}
}

/* Parse the text into ps->m: 0 or the first error in ps. */
static int parse_text(struct parse *ps)
{
	int rc = ini_parse_stream(reader, ps, handler, ps);

	if (rc > 0 && (!ps->rc || rc < ps->err_line)) {
		ps->rc = 0; /* a syntax error before the first of ours */
		ps->line = rc;
		perr(ps, FL_EPARSE, "not INI syntax");
	} else if (ps->too_long) {
		perr(ps, FL_EPARSE, "line over %d bytes", INI_MAX_LINE - 2);
	}
	for (size_t i = 0; !ps->rc && i < ps->m->n_src; i++)
		if (source_done(ps, &ps->m->src[i])) {
			make_groups(&ps->m->src[i]);
			ps->m->n_regs += ps->m->src[i].n_regs;
		}
	return ps->rc;
}

int agent_mb_map_parse(const char *name, const char *text, size_t len,
		       struct agent_mb_map **ret, struct fl_error *err)
{
	struct parse ps = {.name = name, .p = text, .end = text + len};
	int rc;

	if (len > AGENT_MB_TEXT_MAX)
		return fl_fail(err, FL_ELIMIT, "%s: over %d bytes", name,
			       AGENT_MB_TEXT_MAX);
	if (memchr(text, '\0', len))
		return fl_fail(err, FL_EPARSE, "%s: a NUL byte", name);
	ps.m = fl_xcalloc(1, sizeof(*ps.m));
	if ((rc = parse_text(&ps))) {
		agent_mb_map_free(ps.m);
		return fl_fail(err, rc, "%s:%d: %s", name, ps.err_line, ps.msg);
	}
	*ret = ps.m;
	return 0;
}

int agent_mb_map_load(const char *path, struct agent_mb_map **ret,
		      struct fl_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc = fl_read_file(path, AGENT_MB_TEXT_MAX, &text, &len, err);

	if (!rc)
		rc = agent_mb_map_parse(path, text, len, ret, err);
	free(text);
	return rc;
}

void agent_mb_map_free(struct agent_mb_map *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->n_src; i++) {
		free(m->src[i].regs);
		free(m->src[i].order);
		free(m->src[i].groups);
	}
	free(m->src);
	free(m);
}

const struct agent_mb_reg *agent_mb_reg(const struct agent_mb_source *s,
					const char *name)
{
	for (size_t i = 0; s && i < s->n_regs; i++)
		if (strcmp(s->regs[i].name, name) == 0)
			return &s->regs[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Values on the wire                                                 */
/* ------------------------------------------------------------------ */

static uint16_t swab16(uint16_t v)
{
	return (uint16_t)(v << 8 | v >> 8);
}

/* The 16 or 32 bits of @r's registers in ABCD order. */
static uint32_t gather(const struct agent_mb_reg *r, const uint16_t *raw)
{
	bool sw = r->order == AGENT_MB_BADC || r->order == AGENT_MB_DCBA;
	uint16_t a = sw ? swab16(raw[0]) : raw[0];
	uint16_t b = r->count == 2 ? (sw ? swab16(raw[1]) : raw[1]) : 0;

	if (r->count == 1)
		return a;
	if (r->order == AGENT_MB_CDAB || r->order == AGENT_MB_DCBA)
		return (uint32_t)b << 16 | a;
	return (uint32_t)a << 16 | b;
}

/* gather's inverse. */
static void scatter(const struct agent_mb_reg *r, uint32_t v, uint16_t *out)
{
	bool sw = r->order == AGENT_MB_BADC || r->order == AGENT_MB_DCBA;
	bool ws = r->order == AGENT_MB_CDAB || r->order == AGENT_MB_DCBA;
	uint16_t hi = (uint16_t)(v >> 16), lo = (uint16_t)v;

	if (r->count == 1) {
		out[0] = sw ? swab16(lo) : lo;
		return;
	}
	out[0] = ws ? lo : hi;
	out[1] = ws ? hi : lo;
	if (sw) {
		out[0] = swab16(out[0]);
		out[1] = swab16(out[1]);
	}
}

double agent_mb_decode(const struct agent_mb_reg *r, const uint16_t *raw)
{
	uint32_t v = r->type == AGENT_MB_BIT ? (raw[0] != 0) : gather(r, raw);
	double x;
	float f;

	switch (r->type) {
	case AGENT_MB_INT16:
		x = (int16_t)v;
		break;
	case AGENT_MB_INT32:
		x = (int32_t)v;
		break;
	case AGENT_MB_FLOAT32:
		memcpy(&f, &v, sizeof(f));
		x = f;
		break;
	default:
		x = v;
	}
	return x * r->scale + r->offset;
}

int agent_mb_encode(const struct agent_mb_reg *r, double value, uint16_t *out,
		    struct fl_error *err)
{
	static const double lo[] = {0, INT16_MIN, 0, INT32_MIN, 0, -FLT_MAX};
	static const double hi[] = {1,	       INT16_MAX,  UINT16_MAX,
				    INT32_MAX, UINT32_MAX, FLT_MAX};
	double raw = (value - r->offset) / r->scale;
	uint32_t v;
	float f;

	if (!r->writable)
		return fl_fail(
		    err, FL_EINVAL, "%s is not writable (%s)", r->name,
		    r->fn == AGENT_MB_COIL || r->fn == AGENT_MB_HOLDING
			? "no min/max in the map"
			: "read-only");
	if (!isfinite(value) || value < r->min || value > r->max)
		return fl_fail(err, FL_EINVAL, "%s: %g outside %g..%g", r->name,
			       value, r->min, r->max);
	if (r->type != AGENT_MB_FLOAT32)
		raw = nearbyint(raw);
	if (!(raw >= lo[r->type] && raw <= hi[r->type]))
		return fl_fail(err, FL_EINVAL, "%s: %g does not fit %s",
			       r->name, value, type_names[r->type]);
	if (r->type == AGENT_MB_FLOAT32) {
		f = (float)raw;
		memcpy(&v, &f, sizeof(v));
	} else if (r->type == AGENT_MB_INT16 || r->type == AGENT_MB_INT32) {
		v = (uint32_t)(int32_t)raw;
	} else {
		v = (uint32_t)raw;
	}
	if (r->type == AGENT_MB_BIT)
		out[0] = (uint16_t)v;
	else
		scatter(r, v, out);
	return 0;
}

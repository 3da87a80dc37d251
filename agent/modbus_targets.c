/* SPDX-License-Identifier: MIT */
/* The Modbus targets a shadow map may name (modbus_targets.h). */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "modbus_targets.h"
#include "util.h"

#define ENTRY_MAX 300

enum kind { T_ADDR, T_NAME, T_PATH };

struct target {
	enum kind kind;
	int family;		/* T_ADDR: AF_INET, AF_INET6 */
	unsigned char addr[16]; /* T_ADDR */
	int bits;		/* T_ADDR: the prefix */
	char text[ENTRY_MAX];	/* T_NAME, T_PATH */
	unsigned port;		/* 0: any */
};

struct agent_mb_targets {
	struct target t[AGENT_MB_TARGETS_MAX];
	size_t n;
};

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 253 &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-") == n &&
	       s[0] != '-' && s[0] != '.';
}

/* @host (no port): an address, a network or a name. */
static bool parse_host(char *host, bool v6, struct target *t)
{
	char *slash = strchr(host, '/');
	long bits = -1;

	if (slash) {
		char *end;

		*slash = '\0';
		bits = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end || bits < 0)
			return false;
	}
	t->family = v6 || strchr(host, ':') ? AF_INET6 : AF_INET;
	if (inet_pton(t->family, host, t->addr) == 1) {
		int max = t->family == AF_INET ? 32 : 128;

		t->kind = T_ADDR;
		t->bits = bits < 0 ? max : (int)bits;
		return bits <= max;
	}
	t->kind = T_NAME;
	fl_strlcpy(t->text, host, sizeof(t->text));
	return !slash && !v6 && valid_name(host);
}

static bool parse_port(const char *s, unsigned *ret)
{
	char *end;
	long p = strtol(s, &end, 10);

	*ret = (unsigned)p;
	return *s && !*end && p >= 1 && p <= 65535;
}

/* One entry (its text is changed). */
static bool parse_entry(char *e, struct target *t)
{
	char *colon;

	*t = (struct target){0};
	if (e[0] == '/') {
		t->kind = T_PATH;
		fl_strlcpy(t->text, e, sizeof(t->text));
		return true;
	}
	if (e[0] == '[') {
		char *close = strchr(e, ']');

		if (!close || (close[1] && (close[1] != ':' ||
					    !parse_port(close + 2, &t->port))))
			return false;
		*close = '\0';
		return parse_host(e + 1, true, t);
	}
	colon = strchr(e, ':');
	if (colon && !strchr(colon + 1, ':')) { /* HOST:PORT */
		*colon = '\0';
		if (!parse_port(colon + 1, &t->port))
			return false;
	}
	return parse_host(e, false, t);
}

int agent_mb_targets_parse(const char *text, struct agent_mb_targets **ret,
			   struct fl_error *err)
{
	struct agent_mb_targets *l = fl_xcalloc(1, sizeof(*l));
	char *copy = fl_xstrdup(text ? text : ""), *save = NULL, *e;
	int rc = 0;

	for (e = strtok_r(copy, ", \t", &save); e && !rc;
	     e = strtok_r(NULL, ", \t", &save)) {
		char entry[ENTRY_MAX];

		fl_strlcpy(entry, e, sizeof(entry));
		if (l->n == AGENT_MB_TARGETS_MAX)
			rc = fl_fail(err, FL_ELIMIT,
				     "more than %d Modbus targets",
				     AGENT_MB_TARGETS_MAX);
		else if (strlen(e) >= sizeof(entry) ||
			 !parse_entry(entry, &l->t[l->n++]))
			rc = fl_fail(err, FL_EPARSE,
				     "'%.64s' is not a Modbus target (ADDRESS,"
				     " ADDRESS/BITS or NAME, each with an"
				     " optional :PORT, or /DEVICE)",
				     e);
	}
	free(copy);
	if (rc) {
		free(l);
		return rc;
	}
	*ret = l;
	return 0;
}

void agent_mb_targets_free(struct agent_mb_targets *t)
{
	free(t);
}

/* Whether the first @bits bits of @a and @b are equal. */
static bool prefix_eq(const unsigned char *a, const unsigned char *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)whole))
		return false;
	return !rest || ((a[whole] ^ b[whole]) & (0xff << (8 - rest))) == 0;
}

static bool admits(const struct target *t, const struct agent_mb_source *s)
{
	unsigned char addr[16];

	if (s->device[0])
		return t->kind == T_PATH && !strcmp(t->text, s->device);
	if (t->port && t->port != s->port)
		return false;
	if (t->kind == T_NAME)
		return !strcasecmp(t->text, s->host);
	return t->kind == T_ADDR && inet_pton(t->family, s->host, addr) == 1 &&
	       prefix_eq(addr, t->addr, t->bits);
}

int agent_mb_targets_check(const struct agent_mb_targets *t,
			   const struct agent_mb_map *m, const char *name,
			   struct fl_error *err)
{
	for (size_t i = 0; m && i < m->n_src; i++) {
		const struct agent_mb_source *s = &m->src[i];
		char where[300];
		bool ok = false;

		for (size_t j = 0; t && j < t->n && !ok; j++)
			ok = admits(&t->t[j], s);
		if (ok)
			continue;
		if (s->device[0])
			snprintf(where, sizeof(where), "%s", s->device);
		else
			snprintf(where, sizeof(where),
				 strchr(s->host, ':') ? "[%s]:%u" : "%s:%u",
				 s->host, s->port);
		return fl_fail(err, FL_EDENIED,
			       "%s:%d: source %s: %s is not in agent.conf's"
			       " [modbus] shadow_targets",
			       name, s->line, s->name, where);
	}
	return 0;
}

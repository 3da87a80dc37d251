/* SPDX-License-Identifier: MIT */
/*
 * [influx] and [postgres] of fleetd.conf (fleetd(8) CONFIGURATION,
 * docs/telemetry.md "Forwarding"): every number capped, the password
 * only from a file (or the client library's environment), never in the
 * config text and never in a message.
 */
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "fwd_internal.h"
#include "util.h"
#include "validate.h"

const struct fl_ini_key srv_fwd_conf_keys[] = {
    {"influx", "url"},
    {"influx", "database"},
    {"influx", "measurement"},
    {"influx", "username"},
    {"influx", "password_file"},
    {"influx", "batch"},
    {"influx", "linger_ms"},
    {"influx", "queue_points"},
    {"influx", "queue_bytes"},
    {"influx", "timeout_ms"},
    {"influx", "retry_min_ms"},
    {"influx", "retry_max_ms"},
    {"postgres", "conninfo"},
    {"postgres", "table"},
    {"postgres", "password_file"},
    {"postgres", "batch"},
    {"postgres", "linger_ms"},
    {"postgres", "queue_points"},
    {"postgres", "queue_bytes"},
    {"postgres", "timeout_ms"},
    {"postgres", "retry_min_ms"},
    {"postgres", "retry_max_ms"},
    {NULL, NULL},
};

void srv_fwd_config_free(struct srv_fwd_config *cfg)
{
	if (!cfg)
		return;
	free(cfg->url);
	free(cfg->database);
	free(cfg->measurement);
	free(cfg->username);
	free(cfg->conninfo);
	free(cfg->table);
	free(cfg->password_file);
	free(cfg);
}

struct num_key {
	const char *key;
	size_t off;
	uint64_t min, max, def;
};

#define NUM(k, lo, hi, d)                                                      \
	{                                                                      \
#k, offsetof(struct srv_fwd_config, k), lo, hi, d              \
	}

static const struct num_key num_keys[] = {
    NUM(batch, 1, SRV_FWD_BATCH_MAX, 500),
    NUM(linger_ms, 0, SRV_FWD_LINGER_MAX, 1000),
    NUM(queue_points, 1, SRV_FWD_QUEUE_POINTS_MAX, 100000),
    NUM(queue_bytes, 4096, SRV_FWD_QUEUE_BYTES_MAX, 64ULL << 20),
    NUM(timeout_ms, 100, SRV_FWD_TIMEOUT_MAX, 10000),
    NUM(retry_min_ms, 10, SRV_FWD_RETRY_MAX, 500),
    NUM(retry_max_ms, 10, SRV_FWD_RETRY_MAX, 60000),
};

static int load_numbers(const struct fl_ini *ini, const char *sec,
			struct srv_fwd_config *cfg, struct fl_error *err)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(num_keys); i++) {
		const struct num_key *k = &num_keys[i];
		uint64_t *v = (uint64_t *)((char *)cfg + k->off);
		int rc =
		    fl_ini_get_uint(ini, sec, k->key, k->max, k->def, v, err);

		if (rc)
			return rc;
		if (*v < k->min)
			return fl_fail(err, FL_EINVAL,
				       "[%s] %s: under the minimum %llu", sec,
				       k->key, (unsigned long long)k->min);
	}
	if (cfg->retry_max_ms < cfg->retry_min_ms)
		return fl_fail(err, FL_EINVAL,
			       "[%s] retry_max_ms is under retry_min_ms", sec);
	return 0;
}

/* A name we put into a query or a line unquoted: [A-Za-z_][A-Za-z0-9_]*
 * of at most 63 bytes (PostgreSQL's identifier length). */
static int check_ident(const char *sec, const char *key, const char *v,
		       struct fl_error *err)
{
	size_t n = strlen(v);
	bool ok = n > 0 && n <= 63 && !(v[0] >= '0' && v[0] <= '9');

	for (size_t i = 0; ok && i < n; i++)
		ok = (v[i] >= 'a' && v[i] <= 'z') ||
		     (v[i] >= 'A' && v[i] <= 'Z') ||
		     (v[i] >= '0' && v[i] <= '9') || v[i] == '_';
	return ok ? 0
		  : fl_fail(err, FL_EINVAL,
			    "[%s] %s: '%.64s' is not a name of 1..63 "
			    "letters, digits and '_'",
			    sec, key, v);
}

static char *get_str(const struct fl_ini *ini, const char *sec, const char *key,
		     const char *def)
{
	const char *v = fl_ini_get(ini, sec, key);

	return v && *v ? fl_xstrdup(v) : def ? fl_xstrdup(def) : NULL;
}

static bool ends_in_slash(const char *s)
{
	size_t n = strlen(s);

	return n > 8 && s[n - 1] == '/';
}

static int load_influx(const struct fl_ini *ini, struct srv_fwd_config *c,
		       struct fl_error *err)
{
	c->kind = SRV_FWD_INFLUX;
	c->database = get_str(ini, "influx", "database", NULL);
	c->measurement = get_str(ini, "influx", "measurement", "telemetry");
	c->username = get_str(ini, "influx", "username", NULL);
	c->password_file = get_str(ini, "influx", "password_file", NULL);
	if (!fl_startswith(c->url, "http://") &&
	    !fl_startswith(c->url, "https://"))
		return fl_fail(err, FL_EINVAL,
			       "[influx] url: not an http:// or https:// URL");
	while (ends_in_slash(c->url))
		c->url[strlen(c->url) - 1] = '\0';
	if (strchr(c->url, '@') || strchr(c->url, '?'))
		return fl_fail(err, FL_EINVAL,
			       "[influx] url: no user, password or query in "
			       "the URL (username, password_file)");
	if (!c->database)
		return fl_fail(err, FL_EINVAL, "[influx] database is not set");
	if (!fl_valid_text(c->database, 64))
		return fl_fail(err, FL_EINVAL,
			       "[influx] database: 1..64 printable bytes");
	return check_ident("influx", "measurement", c->measurement, err);
}

static int load_pg(const struct fl_ini *ini, struct srv_fwd_config *c,
		   struct fl_error *err)
{
	c->kind = SRV_FWD_PG;
	c->table = get_str(ini, "postgres", "table", "telemetry");
	c->password_file = get_str(ini, "postgres", "password_file", NULL);
	return check_ident("postgres", "table", c->table, err);
}

static int load_one(const struct fl_ini *ini, const char *sec,
		    const char *main_key, struct srv_fwd_config **ret,
		    struct fl_error *err)
{
	struct srv_fwd_config *c;
	int rc;

	*ret = NULL;
	if (!fl_ini_get(ini, sec, main_key) || !*fl_ini_get(ini, sec, main_key))
		return 0;
	c = fl_xcalloc(1, sizeof(*c));
	if (strcmp(sec, "influx") == 0) {
		c->url = get_str(ini, sec, main_key, NULL);
		rc = load_influx(ini, c, err);
	} else {
		c->conninfo = get_str(ini, sec, main_key, NULL);
		rc = load_pg(ini, c, err);
	}
	if (!rc)
		rc = load_numbers(ini, sec, c, err);
	if (rc) {
		srv_fwd_config_free(c);
		return rc;
	}
	*ret = c;
	return 0;
}

int srv_fwd_config_load(const struct fl_ini *ini,
			struct srv_fwd_config **ret_influx,
			struct srv_fwd_config **ret_pg, struct fl_error *err)
{
	struct srv_fwd_config *influx, *pg;
	int rc = load_one(ini, "influx", "url", &influx, err);

	if (rc)
		return rc;
	rc = load_one(ini, "postgres", "conninfo", &pg, err);
	if (rc) {
		srv_fwd_config_free(influx);
		return rc;
	}
	*ret_influx = influx;
	*ret_pg = pg;
	return 0;
}

int srv_fwd_password(const struct srv_fwd_config *cfg, char **ret,
		     struct fl_error *err)
{
	char *text;
	int rc;

	*ret = NULL;
	if (!cfg->password_file)
		return 0;
	rc = fl_read_file(cfg->password_file, 1024, &text, NULL, err);
	if (rc)
		return rc;
	text[strcspn(text, "\r\n")] = '\0';
	*ret = text;
	return 0;
}

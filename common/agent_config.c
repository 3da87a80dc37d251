/* SPDX-License-Identifier: MIT */
/*
 * agent.conf: a table of every key (type, field, caps, default) drives
 * loading, the unknown-key check, defaults and rendering, so a new key is
 * one line here and one in fleet-agent(8).
 */
#include <libgen.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "config.h"
#include "fsutil.h"
#include "proto.h"
#include "util.h"
#include "validate.h"

enum kind {
	K_ID,	  /* a device id */
	K_PATH,	  /* a path, resolved against the file's directory */
	K_HTTPS,  /* https:// URL */
	K_MQTTS,  /* mqtts:// URL */
	K_PREFIX, /* MQTT topic prefix: one literal level (proto.h) */
	K_TEXT,	  /* printable text */
	K_DUR,	  /* duration in seconds, "90", "15m", "7d" */
	K_UINT,	  /* unsigned integer */
	K_BOOL,	  /* yes/no */
	K_BOOT,	  /* bootloader backend name */
};

struct spec {
	const char *section, *key;
	enum kind kind;
	size_t off;
	int64_t min, max; /* K_DUR, K_UINT bounds; K_TEXT max length */
	const char *def;  /* default, parsed like a value; NULL: none */
	bool required;
};

#define F(field) offsetof(struct agent_config, field)
#define DAY (24 * 3600)

static const struct spec specs[] = {
    {"device", "id", K_ID, F(id), 0, 0, NULL, true},
    {"device", "state_dir", K_PATH, F(state_dir), 0, 0,
     AGENT_CONFIG_DEFAULT_STATE, false},
    {"device", "hardware", K_TEXT, F(hardware), 0, 64, NULL, false},
    {"server", "url", K_HTTPS, F(server_url), 0, 0, NULL, true},
    {"server", "ca", K_PATH, F(ca_file), 0, 0, NULL, false},
    {"server", "timeout", K_DUR, F(http_timeout_s), 1, 600, "30s", false},
    {"mqtt", "url", K_MQTTS, F(mqtt_url), 0, 0, NULL, true},
    {"mqtt", "topic_prefix", K_PREFIX, F(topic_prefix), 0, 0,
     FL_TOPIC_PREFIX_DEFAULT, false},
    {"mqtt", "keepalive", K_DUR, F(keepalive_s), 5, 3600, "60s", false},
    {"mqtt", "session_expiry", K_DUR, F(session_expiry_s), 0, 365 * DAY, "7d",
     false},
    {"mqtt", "reconnect_min", K_DUR, F(reconnect_min_s), 1, 3600, "1s", false},
    {"mqtt", "reconnect_max", K_DUR, F(reconnect_max_s), 1, DAY, "5m", false},
    {"mqtt", "status_interval", K_DUR, F(status_interval_s), 10, DAY, "5m",
     false},
    {"mqtt", "event_retry", K_DUR, F(event_retry_s), 1, 300, "10s", false},
    {"identity", "auto_renew", K_BOOL, F(auto_renew), 0, 0, "yes", false},
    {"identity", "rotate_timeout", K_DUR, F(rotate_timeout_s), 1, 600, "30s",
     false},
    {"boot", "backend", K_BOOT, F(boot_backend), 0, 0, NULL, false},
    {"boot", "path", K_PATH, F(boot_path), 0, 0, NULL, false},
    {"boot", "default_env", K_PATH, F(boot_default_env), 0, 0, NULL, false},
    {"boot", "editenv", K_PATH, F(boot_editenv), 0, 0, NULL, false},
    {"boot", "bootlimit", K_UINT, F(bootlimit), 1, AGENT_CONFIG_BOOTLIMIT_MAX,
     "3", false},
    {"boot", "reboot_command", K_TEXT, F(reboot_command), 0,
     AGENT_CONFIG_CMD_MAX, NULL, false},
    {"slots", "a", K_PATH, F(slot_a), 0, 0, NULL, false},
    {"slots", "b", K_PATH, F(slot_b), 0, 0, NULL, false},
    {"health", "command", K_TEXT, F(health_command), 0, AGENT_CONFIG_CMD_MAX,
     NULL, false},
    {"health", "timeout", K_DUR, F(health_timeout_s), 1, 3600, "2m", false},
    {"download", "max_download_rate", K_UINT, F(download_rate_limit), 0,
     INT64_MAX, "0", false},
    {"download", "retries", K_UINT, F(download_retries), 0, 1000, "10", false},
    {"update", "mirror_ca", K_PATH, F(mirror_ca), 0, 0, NULL, false},
    {"diag", "checks_dir", K_PATH, F(diag_checks_dir), 0, 0, NULL, false},
    {"diag", "rate_per_min", K_UINT, F(diag_rate_per_min), 1, 6000, "60",
     false},
    {"diag", "concurrent", K_UINT, F(diag_concurrent), 1, 16, "2", false},
    {"diag", "max_timeout", K_DUR, F(diag_max_timeout_s), 1, 300, "2m", false},
    {"diag", "bundle_max", K_UINT, F(diag_bundle_max), 65536,
     1024 * 1024 * 1024, "16777216", false},
    {"outbox", "max_messages", K_UINT, F(outbox_max_messages), 1,
     AGENT_CONFIG_OUTBOX_MSGS_MAX, "10000", false},
    {"outbox", "max_bytes", K_UINT, F(outbox_max_bytes), 1024,
     (int64_t)AGENT_CONFIG_OUTBOX_BYTES_MAX, "16777216", false},
    {"outbox", "max_age", K_DUR, F(outbox_max_age_s), 60, 365 * DAY, "7d",
     false},
    {"telemetry", "interval", K_DUR, F(telemetry_interval_s), 0, DAY, "1m",
     false},
    {"rules", "file", K_PATH, F(rules_file), 0, 0, NULL, false},
    {"rules", "exec_dir", K_PATH, F(rules_exec_dir), 0, 0, NULL, false},
    {"modbus", "map", K_PATH, F(modbus_map), 0, 0, NULL, false},
    {"modbus", "shadow_targets", K_TEXT, F(modbus_shadow_targets), 0, 4096,
     NULL, false},
};

/* The keys of [diag.check.NAME] and [diag.log.NAME] (diag_sections). */
#define DIAG_CHECK "diag.check."
#define DIAG_LOG "diag.log."
static const struct fl_ini_key diag_keys[] = {
    {DIAG_CHECK "*", "args"},
    {DIAG_CHECK "*", "timeout"},
    {DIAG_CHECK "*", "output_max"},
    {DIAG_LOG "*", "path"},
};
#define DIAG_OUTPUT_DEFAULT "16384"

static char **str_field(struct agent_config *c, const struct spec *s)
{
	return (char **)((char *)c + s->off);
}

void agent_config_free(struct agent_config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < FL_ARRAY_SIZE(specs); i++) {
		enum kind k = specs[i].kind;

		if (k != K_DUR && k != K_UINT && k != K_BOOL)
			free(*str_field(cfg, &specs[i]));
	}
	for (size_t i = 0; i < cfg->n_diag_checks; i++)
		free(cfg->diag_checks[i].args);
	for (size_t i = 0; i < cfg->n_diag_logs; i++)
		free(cfg->diag_logs[i].path);
	free(cfg->diag_checks);
	free(cfg->diag_logs);
	free(cfg->path);
	free(cfg->dir);
	free(cfg->mqtt_host);
	free(cfg->sim_dir);
	free(cfg);
}

int agent_config_set_sim(struct agent_config *cfg, const char *dir,
			 struct fl_error *err)
{
	char *abs;

	if (!dir || !*dir || strlen(dir) >= PATH_MAX - 16)
		return fl_fail(err, FL_EINVAL, "bad sim directory");
	abs = realpath(dir, NULL);
	if (!abs)
		abs = fl_xstrdup(dir);
	free(cfg->sim_dir);
	free(cfg->boot_backend);
	free(cfg->boot_path);
	free(cfg->slot_a);
	free(cfg->slot_b);
	cfg->sim_dir = abs;
	cfg->boot_backend = fl_xstrdup("sim");
	cfg->boot_path = fl_xstrdup(abs);
	cfg->slot_a = fl_path_join(abs, "slot-a");
	cfg->slot_b = fl_path_join(abs, "slot-b");
	if (!cfg->hardware)
		cfg->hardware = fl_xstrdup("sim");
	return 0;
}

/* Host and port of "SCHEME://HOST[:PORT]" (@scheme with its "://"),
 * IPv6 literals in brackets. */
int agent_config_split_url(const char *url, const char *scheme, int def_port,
			   char **ret_host, int *ret_port, struct fl_error *err)
{
	const char *h, *end, *colon;
	uint64_t port = (uint64_t)def_port;
	char *host;

	if (!url || !fl_startswith(url, scheme) ||
	    strlen(url) > AGENT_CONFIG_URL_MAX)
		return fl_fail(err, FL_EINVAL, "URL must be %sHOST[:PORT]",
			       scheme);
	h = url + strlen(scheme);
	if (strpbrk(h, "/?#@ \t"))
		return fl_fail(err, FL_EINVAL,
			       "URL '%s' must not have a path or user", url);
	if (*h == '[') {
		end = strchr(h, ']');
		if (!end)
			return fl_fail(err, FL_EINVAL,
				       "bad IPv6 literal in '%s'", url);
		host = fl_xstrndup(h + 1, (size_t)(end - h - 1));
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon) {
			free(host);
			return fl_fail(err, FL_EINVAL, "bad URL '%s'", url);
		}
	} else {
		colon = strchr(h, ':');
		host =
		    colon ? fl_xstrndup(h, (size_t)(colon - h)) : fl_xstrdup(h);
	}
	if (!*host || (colon && fl_parse_uint(colon + 1, 65535, &port, NULL)) ||
	    port == 0) {
		free(host);
		return fl_fail(err, FL_EINVAL, "bad host or port in '%s'", url);
	}
	*ret_host = host;
	*ret_port = (int)port;
	return 0;
}

int agent_config_parse_mqtt_url(const char *url, char **ret_host, int *ret_port,
				struct fl_error *err)
{
	return agent_config_split_url(url, "mqtts://", 8883, ret_host, ret_port,
				      err);
}

static bool valid_https(const char *v)
{
	const char *h = v + strlen("https://");

	return fl_startswith(v, "https://") && *h && *h != '/' &&
	       !strpbrk(h, "?#@ \t") && v[strlen(v) - 1] != '/';
}

static char *resolve(const char *base, const char *v)
{
	if (v[0] == '/' || !base)
		return fl_xstrdup(v);
	if (strcmp(v, ".") == 0)
		return fl_xstrdup(base);
	return fl_path_join(base, v);
}

/* Parse one string-valued key into its field. */
static int set_string(struct agent_config *c, const struct spec *s,
		      const char *v, struct fl_error *err)
{
	char **f = str_field(c, s);

	switch (s->kind) {
	case K_ID:
		if (!fl_valid_id(v))
			goto bad;
		break;
	case K_HTTPS:
		if (strlen(v) > AGENT_CONFIG_URL_MAX || !valid_https(v))
			goto bad;
		break;
	case K_MQTTS:
		if (agent_config_parse_mqtt_url(v, &c->mqtt_host, &c->mqtt_port,
						NULL))
			goto bad;
		break;
	case K_PREFIX:
		if (!fl_topic_prefix_valid(v))
			goto bad;
		break;
	case K_TEXT:
		if (!*v || !fl_valid_text(v, (size_t)s->max))
			goto bad;
		break;
	case K_BOOT:
		if (!fl_streq(v, "uboot") && !fl_streq(v, "grub") &&
		    !fl_streq(v, "sim"))
			return fl_fail(err, FL_EINVAL,
				       "[%s] %s: '%.40s' is not uboot, grub "
				       "or sim",
				       s->section, s->key, v);
		break;
	case K_PATH:
		if (!*v || strlen(v) >= PATH_MAX)
			goto bad;
		*f = resolve(c->dir, v);
		return 0;
	default:
		goto bad;
	}
	*f = fl_xstrdup(v);
	return 0;
bad:
	return fl_fail(err, FL_EINVAL, "[%s] %s: invalid value '%.80s'",
		       s->section, s->key, v);
}

/* A K_DUR, K_UINT or K_BOOL value of @s into @f. */
static int set_scalar(const struct spec *s, const char *section, const char *v,
		      void *f, struct fl_error *err)
{
	uint64_t u;
	int64_t d;

	switch (s->kind) {
	case K_DUR:
		if (fl_parse_duration(v, &d, NULL) || d < s->min || d > s->max)
			return fl_fail(err, FL_EINVAL,
				       "[%s] %s: '%.40s' is not a duration "
				       "from %llds to %llds",
				       section, s->key, v, (long long)s->min,
				       (long long)s->max);
		*(int64_t *)f = d;
		return 0;
	case K_UINT:
		if (fl_parse_uint(v, (uint64_t)s->max, &u, NULL) ||
		    u < (uint64_t)s->min)
			return fl_fail(err, FL_EINVAL,
				       "[%s] %s: '%.40s' is not a number "
				       "from %lld to %lld",
				       section, s->key, v, (long long)s->min,
				       (long long)s->max);
		*(uint64_t *)f = u;
		return 0;
	default:
		if (fl_streq(v, "yes") || fl_streq(v, "true") ||
		    fl_streq(v, "1"))
			*(bool *)f = true;
		else if (fl_streq(v, "no") || fl_streq(v, "false") ||
			 fl_streq(v, "0"))
			*(bool *)f = false;
		else
			return fl_fail(err, FL_EINVAL,
				       "[%s] %s: '%.40s' is not yes or no",
				       section, s->key, v);
		return 0;
	}
}

static int set_value(struct agent_config *c, const struct spec *s,
		     const char *v, struct fl_error *err)
{
	if (s->kind == K_DUR || s->kind == K_UINT || s->kind == K_BOOL)
		return set_scalar(s, s->section, v, (char *)c + s->off, err);
	return set_string(c, s, v, err);
}

/* Refuse unknown keys (typos) and keys given twice. */
static int check_keys(const struct fl_ini *ini, struct fl_error *err)
{
	const size_t n = FL_ARRAY_SIZE(specs), nd = FL_ARRAY_SIZE(diag_keys);
	struct fl_ini_key
	    allowed[FL_ARRAY_SIZE(specs) + FL_ARRAY_SIZE(diag_keys) + 1];
	int rc;

	for (size_t i = 0; i < n; i++)
		allowed[i] =
		    (struct fl_ini_key){specs[i].section, specs[i].key};
	memcpy(&allowed[n], diag_keys, sizeof(diag_keys));
	allowed[n + nd] = (struct fl_ini_key){NULL, NULL};
	rc = fl_ini_check_keys(ini, allowed, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < ini->n; i++)
		for (size_t j = i + 1; j < ini->n; j++)
			if (fl_streq(ini->v[i].section, ini->v[j].section) &&
			    fl_streq(ini->v[i].key, ini->v[j].key))
				return fl_fail(
				    err, FL_EPARSE, "[%s] %s is set twice",
				    ini->v[i].section, ini->v[i].key);
	return 0;
}

/* Cross-field rules and derived defaults. */
static int finish(struct agent_config *c, struct fl_error *err)
{
	if (!c->ca_file)
		c->ca_file = fl_path_join(c->state_dir, "ca.pem");
	if (c->reconnect_min_s > c->reconnect_max_s)
		return fl_fail(err, FL_EINVAL,
			       "[mqtt] reconnect_min is larger than "
			       "reconnect_max");
	if (c->boot_backend && !c->boot_path)
		return fl_fail(err, FL_EINVAL,
			       "[boot] backend needs [boot] path");
	if (!c->boot_backend &&
	    (c->boot_path || c->boot_default_env || c->boot_editenv))
		return fl_fail(err, FL_EINVAL,
			       "[boot] settings without [boot] backend");
	if (!c->slot_a != !c->slot_b)
		return fl_fail(err, FL_EINVAL,
			       "[slots] needs both a and b, or neither");
	return 0;
}

bool agent_diag_name_valid(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > AGENT_DIAG_NAME_MAX)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

int agent_diag_args_compile(const char *ere, regex_t *ret, struct fl_error *err)
{
	char *anchored = fl_xasprintf("^(%s)$", ere);
	int rc = regcomp(ret, anchored, REG_EXTENDED | REG_NOSUB);

	free(anchored);
	if (rc)
		return fl_fail(err, FL_EINVAL, "bad pattern '%.80s'", ere);
	return 0;
}

const struct agent_diag_check *
agent_config_diag_check(const struct agent_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->n_diag_checks; i++)
		if (fl_streq(cfg->diag_checks[i].name, name))
			return &cfg->diag_checks[i];
	return NULL;
}

const struct agent_diag_log *
agent_config_diag_log(const struct agent_config *cfg, const char *name)
{
	for (size_t i = 0; name && i < cfg->n_diag_logs; i++)
		if (fl_streq(cfg->diag_logs[i].name, name))
			return &cfg->diag_logs[i];
	return NULL;
}

/* [diag.check.NAME]: its allow-list compiles, its numbers fit. */
static int add_check(struct agent_config *c, const struct fl_ini *ini,
		     const char *section, struct fl_error *err)
{
	static const struct spec timeout = {
	    .key = "timeout", .kind = K_DUR, .min = 1, .max = 300};
	static const struct spec out = {
	    .key = "output_max", .kind = K_UINT, .max = AGENT_DIAG_OUTPUT_MAX};
	const char *args = fl_ini_get(ini, section, "args");
	const char *t = fl_ini_get(ini, section, "timeout");
	const char *o = fl_ini_get(ini, section, "output_max");
	struct agent_diag_check k = {.timeout_s = c->diag_max_timeout_s};
	regex_t re;
	int rc = 0;

	fl_strlcpy(k.name, section + strlen(DIAG_CHECK), sizeof(k.name));
	if (args && !(rc = agent_diag_args_compile(args, &re, err)))
		regfree(&re);
	if (!rc && t)
		rc = set_scalar(&timeout, section, t, &k.timeout_s, err);
	if (!rc)
		rc = set_scalar(&out, section, o ? o : DIAG_OUTPUT_DEFAULT,
				&k.output_max, err);
	if (rc)
		return rc;
	k.args = args ? fl_xstrdup(args) : NULL;
	c->diag_checks =
	    fl_xrealloc(c->diag_checks, (c->n_diag_checks + 1) * sizeof(k));
	c->diag_checks[c->n_diag_checks++] = k;
	return 0;
}

static int add_log(struct agent_config *c, const struct fl_ini *ini,
		   const char *section, struct fl_error *err)
{
	const char *path = fl_ini_get(ini, section, "path");
	struct agent_diag_log l = {0};

	if (!path || !*path || strlen(path) >= PATH_MAX)
		return fl_fail(err, FL_EINVAL, "[%s] needs a path", section);
	fl_strlcpy(l.name, section + strlen(DIAG_LOG), sizeof(l.name));
	l.path = resolve(c->dir, path);
	c->diag_logs =
	    fl_xrealloc(c->diag_logs, (c->n_diag_logs + 1) * sizeof(l));
	c->diag_logs[c->n_diag_logs++] = l;
	return 0;
}

/* Each [diag.check.NAME] and [diag.log.NAME] once, with a valid NAME
 * and within the caps. */
static int diag_sections(struct agent_config *c, const struct fl_ini *ini,
			 struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < ini->n; i++) {
		const char *sec = ini->v[i].section;
		bool check = fl_startswith(sec, DIAG_CHECK);
		const char *name = sec + strlen(check ? DIAG_CHECK : DIAG_LOG);

		if (!check && !fl_startswith(sec, DIAG_LOG))
			continue;
		if (!agent_diag_name_valid(name))
			return fl_fail(err, FL_EINVAL,
				       "[%s]: a name is 1 to %d of a-z 0-9 _ -",
				       sec, AGENT_DIAG_NAME_MAX);
		if (check ? agent_config_diag_check(c, name) != NULL
			  : agent_config_diag_log(c, name) != NULL)
			continue;
		if (check ? c->n_diag_checks == AGENT_DIAG_CHECKS_MAX
			  : c->n_diag_logs == AGENT_DIAG_LOGS_MAX)
			return fl_fail(err, FL_ELIMIT,
				       "too many [%s*] sections",
				       check ? DIAG_CHECK : DIAG_LOG);
		rc = check ? add_check(c, ini, sec, err)
			   : add_log(c, ini, sec, err);
	}
	return rc;
}

static int apply(struct agent_config *c, const struct fl_ini *ini,
		 struct fl_error *err)
{
	int rc;

	rc = check_keys(ini, err);
	for (size_t i = 0; !rc && i < FL_ARRAY_SIZE(specs); i++) {
		const struct spec *s = &specs[i];
		const char *v = fl_ini_get(ini, s->section, s->key);

		if (!v && s->required)
			return fl_fail(err, FL_EINVAL, "[%s] %s is required",
				       s->section, s->key);
		if (!v)
			v = s->def;
		if (v)
			rc = set_value(c, s, v, err);
	}
	if (!rc)
		rc = diag_sections(c, ini, err);
	return rc ? rc : finish(c, err);
}

int agent_config_parse(const char *text, const char *base_dir,
		       const char *path_for_msgs, struct agent_config **ret,
		       struct fl_error *err)
{
	struct agent_config *c = fl_xcalloc(1, sizeof(*c));
	struct fl_ini *ini = NULL;
	int rc;

	c->path = path_for_msgs ? fl_xstrdup(path_for_msgs) : NULL;
	c->dir = fl_xstrdup(base_dir ? base_dir : ".");
	rc = fl_ini_parse(text, &ini, err);
	if (!rc)
		rc = apply(c, ini, err);
	fl_ini_free(ini);
	if (rc) {
		if (path_for_msgs)
			fl_error_prefix(err, "%s", path_for_msgs);
		agent_config_free(c);
		return rc;
	}
	*ret = c;
	return 0;
}

/* The absolute directory of @path, or its plain dirname. */
static char *dir_of(const char *path)
{
	char *copy = fl_xstrdup(path), *abs;

	abs = realpath(dirname(copy), NULL);
	if (!abs) {
		free(copy);
		copy = fl_xstrdup(path);
		abs = fl_xstrdup(dirname(copy));
	}
	free(copy);
	return abs;
}

int agent_config_load(const char *path, struct agent_config **ret,
		      struct fl_error *err)
{
	char *text = NULL, *dir;
	int rc;

	rc = fl_read_file(path, FL_INI_MAX_BYTES, &text, NULL, err);
	if (rc)
		return rc;
	dir = dir_of(path);
	rc = agent_config_parse(text, dir, path, ret, err);
	free(dir);
	free(text);
	return rc;
}

static int put(struct fl_ini *ini, const char *section, const char *key,
	       const char *value, struct fl_error *err)
{
	return value ? fl_ini_set(ini, section, key, value, err) : 0;
}

int agent_config_render(const struct agent_config_template *t, char **ret_text,
			struct fl_error *err)
{
	struct fl_ini *ini = fl_ini_new();
	struct agent_config *check = NULL;
	char *body = NULL, *text = NULL;
	int rc;

	rc = put(ini, "device", "id", t->id, err);
	if (!rc)
		rc = put(ini, "device", "state_dir",
			 t->state_dir ? t->state_dir : ".", err);
	if (!rc)
		rc = put(ini, "server", "url", t->server_url, err);
	if (!rc)
		rc = put(ini, "server", "ca", t->ca_file, err);
	if (!rc)
		rc = put(ini, "mqtt", "url", t->mqtt_url, err);
	if (!rc)
		rc = put(ini, "mqtt", "topic_prefix", t->topic_prefix, err);
	if (rc)
		goto out;
	body = fl_ini_format(ini);
	text = fl_xasprintf("# fleet-agent configuration, see fleet-agent(8).\n"
			    "# Relative paths are relative to this file's "
			    "directory.\n%s",
			    body);
	rc = agent_config_parse(text, "/", NULL, &check, err);
	if (rc) {
		rc = FL_EINVAL;
		goto out;
	}
	*ret_text = text;
	text = NULL;
out:
	agent_config_free(check);
	fl_ini_free(ini);
	free(body);
	free(text);
	return rc;
}

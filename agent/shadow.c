/* SPDX-License-Identifier: MIT */
/*
 * The device shadow on the agent (issue 13, docs/shadow.md): fleetd's
 * desired document arrives, retained, on PREFIX/ID/shadow/desired; the
 * agent keeps the newest in STATE/shadow.json (atomic write) so that it
 * runs on it after a restart and while offline, applies the keys it
 * knows into its live settings (feature.h), and reports on
 * PREFIX/ID/shadow/reported what it applied and what it refused, why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_modbus.h"
#include "agent_mqtt.h"
#include "feature.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "rules_agent.h"
#include "shadow.h"
#include "util.h"

#define SHADOW_FILE "shadow.json"
#define LEAF "shadow/desired"

struct shadow {
	const struct agent_config *cfg;
	json_t *rules_good;   /* the last "rules" applied; NULL: none */
	char *path;	      /* STATE/shadow.json: the last desired message */
	char *reported;	      /* PREFIX/ID/shadow/reported */
	int log_default;      /* the log level the agent started with */
	int64_t version;      /* of the desired document applied; 0: none */
	json_t *applied;      /* key -> value now in effect */
	json_t *refused;      /* key -> reason */
	struct agent_host *h; /* while applying */
	char why[FL_ERR_MSG_MAX]; /* a reason made up while applying */
};

/* ------------------------------------------------------------------ */
/* The keys the agent knows                                           */
/* ------------------------------------------------------------------ */

/* Apply @v to @live, or say why not in @why. */
typedef bool (*apply_fn)(struct shadow *sh, struct agent_live *live,
			 const json_t *v, const char **why);

static bool set_log_level(struct shadow *sh, struct agent_live *live,
			  const json_t *v, const char **why)
{
	int level = fl_log_level_parse(json_string_value(v));

	if (level < 0) {
		*why = "not one of error, warn, info, debug";
		return false;
	}
	fl_log_threshold = level;
	return true;
}

static bool set_diagnostics(struct shadow *sh, struct agent_live *live,
			    const json_t *v, const char **why)
{
	if (!json_is_boolean(v)) {
		*why = "not true or false";
		return false;
	}
	live->diag_off = json_is_false(v);
	return true;
}

static bool set_download_rate(struct shadow *sh, struct agent_live *live,
			      const json_t *v, const char **why)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		*why = "not a whole number of bytes per second (0: no cap)";
		return false;
	}
	live->rate_set = true;
	live->download_rate = (uint64_t)json_integer_value(v);
	return true;
}

static bool set_telemetry_interval(struct shadow *sh, struct agent_live *live,
				   const json_t *v, const char **why)
{
	json_int_t s = json_integer_value(v);

	if (!json_is_integer(v) || s < 1 || s > 86400) {
		*why = "not a whole number of seconds, 1..86400";
		return false;
	}
	live->telemetry_interval_s = s;
	return true;
}

/* The Modbus map's text (agent_modbus.h): parsed and in force, or
 * refused with the map's own message and the old map kept. */
static bool set_modbus(struct shadow *sh, struct agent_live *live,
		       const json_t *v, const char **why)
{
	struct fl_error err = {0};
	struct agent_modbus *mb =
	    agent_host_feature(sh->h, &agent_feature_modbus);

	if (!json_is_string(v)) {
		*why = "not the text of a Modbus map";
		return false;
	}
	if (agent_modbus_use(mb, json_string_value(v), &err)) {
		snprintf(sh->why, sizeof(sh->why), "%s", err.msg);
		*why = sh->why;
		return false;
	}
	return true;
}

/* "HH:MM-HH:MM", each a valid time of day (the window may wrap
 * midnight). */
static bool window_ok(const char *s)
{
	unsigned h1, m1, h2, m2;
	int n = 0;

	return s && strlen(s) == 11 &&
	       sscanf(s, "%2u:%2u-%2u:%2u%n", &h1, &m1, &h2, &m2, &n) == 4 &&
	       n == 11 && h1 < 24 && h2 < 24 && m1 < 60 && m2 < 60;
}

static bool set_maintenance_window(struct shadow *sh, struct agent_live *live,
				   const json_t *v, const char **why)
{
	const char *s = json_string_value(v);

	if (!window_ok(s)) {
		*why = "not HH:MM-HH:MM";
		return false;
	}
	snprintf(live->maintenance_window, sizeof(live->maintenance_window),
		 "%s", s);
	return true;
}

/* "rules": rule text that parses (rules.h); refused, the rules applied
 * before stay. */
static bool set_rules(struct shadow *sh, struct agent_live *live,
		      const json_t *v, const char **why)
{
	struct agent_rules *r = NULL;
	struct fl_error err = {0};
	const char *text = json_string_value(v);

	if (!text || agent_rules_load_text(sh->cfg, text, true, &r, &err)) {
		snprintf(sh->why, sizeof(sh->why), "%s",
			 text ? err.msg : "not a string of rules");
		*why = sh->why;
		live->rules_text = json_string_value(sh->rules_good);
		return false;
	}
	agent_rules_free(r);
	json_decref(sh->rules_good);
	sh->rules_good = json_incref((json_t *)v);
	live->rules_text = text;
	return true;
}

static const struct {
	const char *key;
	apply_fn apply;
} keys[] = {
    {"diagnostics", set_diagnostics},
    {"download_rate", set_download_rate},
    {"log_level", set_log_level},
    {"maintenance_window", set_maintenance_window},
    {"rules", set_rules},
    {"modbus", set_modbus},
    {"telemetry_interval", set_telemetry_interval},
};

/* Run on @desired (an object): every setting from agent.conf's value,
 * then each known key; the rest refused. */
static void apply(struct shadow *sh, struct agent_host *h,
		  const json_t *desired)
{
	struct agent_live live = {0};
	const char *k, *why;
	json_t *v;

	sh->h = h;
	fl_log_threshold = sh->log_default;
	json_object_clear(sh->applied);
	json_object_clear(sh->refused);
	json_object_foreach((json_t *)desired, k, v)
	{
		size_t i = 0;

		while (i < FL_ARRAY_SIZE(keys) && strcmp(keys[i].key, k))
			i++;
		why = "unknown key";
		if (i < FL_ARRAY_SIZE(keys) &&
		    keys[i].apply(sh, &live, v, &why))
			json_object_set(sh->applied, k, v);
		else
			json_object_set_new(sh->refused, k, json_string(why));
	}
	if (!json_object_get(desired, "rules")) { /* deleted: the file's */
		json_decref(sh->rules_good);
		sh->rules_good = NULL;
	}
	if (!json_object_get(desired, "modbus")) /* agent.conf's map again */
		agent_modbus_use(agent_host_feature(h, &agent_feature_modbus),
				 NULL, NULL);
	*agent_host_live(h) = live;
	fl_info("shadow: desired version %lld applied (%zu keys, %zu refused)",
		(long long)sh->version, json_object_size(sh->applied),
		json_object_size(sh->refused));
}

/* ------------------------------------------------------------------ */
/* Messages                                                           */
/* ------------------------------------------------------------------ */

static void report(struct agent_host *h, struct shadow *sh)
{
	struct fl_error err = {0};
	json_t *msg;
	char *text;

	if (!agent_host_online(h))
		return; /* on_connect reports */
	msg = json_pack("{s:I, s:O, s:O}", "version", (json_int_t)sh->version,
			"state", sh->applied, "refused", sh->refused);
	text = fl_json_dumps(msg);
	if (agent_host_publish(h, sh->reported, text, strlen(text), 1, false,
			       NULL, &err))
		fl_warn("shadow: reporting: %s", err.msg);
	free(text);
	json_decref(msg);
}

/* A desired message: {"version" >= 1, "state": {...}}; FL_EPARSE. */
static int parse(const void *payload, size_t len, json_t **ret,
		 int64_t *ret_version, struct fl_error *err)
{
	json_t *doc = NULL;
	int rc;

	rc = fl_json_parse(payload, len, AGENT_MQTT_MAX_PAYLOAD, &doc, err);
	if (!rc)
		rc =
		    fl_json_int(doc, "version", 1, INT64_MAX, ret_version, err);
	if (!rc)
		rc = fl_shadow_check(json_object_get(doc, "state"), false, err);
	if (rc)
		json_decref(doc);
	else
		*ret = doc;
	return rc;
}

static void on_message(struct agent_host *h, void *state, const char *leaf,
		       const void *payload, size_t len,
		       const struct agent_msg_props *props)
{
	struct shadow *sh = state;
	struct fl_error err = {0};
	int64_t version = 0;
	json_t *doc = NULL;

	if (len == 0)
		return; /* the retained message was cleared */
	if (parse(payload, len, &doc, &version, &err)) {
		fl_warn("shadow: desired message dropped: %s", err.msg);
		return;
	}
	if (version > sh->version) {
		if (fl_json_save_file(doc, sh->path, 0600, &err))
			fl_warn("shadow: keeping version %lld: %s",
				(long long)version, err.msg);
		sh->version = version;
		apply(sh, h, json_object_get(doc, "state"));
	}
	report(h, sh);
	json_decref(doc);
}

static void on_connect(struct agent_host *h, void *state)
{
	report(h, state);
}

/* ------------------------------------------------------------------ */
/* The feature                                                        */
/* ------------------------------------------------------------------ */

/* The desired message kept from before, if any: applied at once. */
static void load(struct agent_host *h, struct shadow *sh)
{
	struct fl_error err = {0};
	int64_t version = 0;
	json_t *doc = NULL;
	char *text = NULL;
	size_t len = 0;

	if (!fl_path_exists(sh->path))
		return;
	if (fl_read_file(sh->path, AGENT_MQTT_MAX_PAYLOAD, &text, &len, &err) ||
	    parse(text, len, &doc, &version, &err)) {
		fl_warn("shadow: ignoring %s: %s", sh->path, err.msg);
	} else {
		sh->version = version;
		apply(sh, h, json_object_get(doc, "state"));
	}
	json_decref(doc);
	free(text);
}

static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	const struct agent_config *cfg = agent_host_config(h);
	struct shadow *sh = fl_xcalloc(1, sizeof(*sh));
	int rc;

	sh->path = fl_path_join(agent_host_state_dir(h), SHADOW_FILE);
	sh->cfg = cfg;
	sh->log_default = fl_log_threshold;
	sh->applied = json_object();
	sh->refused = json_object();
	rc = fl_topic_build(cfg->topic_prefix, cfg->id,
			    FL_TOPIC_SHADOW_REPORTED, NULL, &sh->reported, err);
	if (!rc)
		load(h, sh);
	*ret_state = sh;
	return rc;
}

static void shadow_free(void *state)
{
	struct shadow *sh = state;

	if (!sh)
		return;
	free(sh->path);
	free(sh->reported);
	json_decref(sh->applied);
	json_decref(sh->refused);
	json_decref(sh->rules_good);
	free(sh);
}

const struct agent_feature agent_feature_shadow = {
    .name = "shadow",
    .init = init,
    .on_connect = on_connect,
    .topics = {LEAF, NULL},
    .on_message = on_message,
    .free = shadow_free,
};

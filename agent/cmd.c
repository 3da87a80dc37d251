/* SPDX-License-Identifier: MIT */
/*
 * Command parsing and the persisted command log (the command types are
 * owned by the features: feature.h).
 * The log is a JSON file rewritten atomically on every change; it is
 * small (a few hundred entries of at most AGENT_EVENT_MAX bytes).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "fsutil.h"
#include "json.h"
#include "util.h"
#include "validate.h"

static bool valid_type(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) &&
		    *s != '_' && *s != '-')
			return false;
	return true;
}

void agent_cmd_release(struct agent_cmd *cmd)
{
	if (!cmd)
		return;
	json_decref(cmd->args);
	cmd->args = NULL;
}

int agent_cmd_parse(const void *payload, size_t len, struct agent_cmd *ret,
		    struct fl_error *err)
{
	const char *id, *type;
	json_t *doc = NULL, *args;
	int rc;

	rc = fl_json_parse(payload, len, AGENT_CMD_MAX_PAYLOAD, &doc, err);
	if (!rc)
		rc = fl_json_require_object(doc, "command", err);
	if (!rc)
		rc = fl_json_str(doc, "id", AGENT_CMD_ID_MAX, &id, err);
	if (!rc && !fl_valid_label(id))
		rc = fl_fail(err, FL_EPARSE, "command id has bad characters");
	if (!rc)
		rc = fl_json_str(doc, "type", AGENT_CMD_TYPE_MAX, &type, err);
	if (!rc && !valid_type(type))
		rc = fl_fail(err, FL_EPARSE,
			     "command type has bad characters");
	if (rc)
		goto out;
	args = json_object_get(doc, "args");
	if (args && !json_is_object(args) && !json_is_null(args)) {
		rc = fl_fail(err, FL_EPARSE, "command args is not an object");
		goto out;
	}
	fl_strlcpy(ret->id, id, sizeof(ret->id));
	fl_strlcpy(ret->type, type, sizeof(ret->type));
	ret->args = json_is_object(args) ? json_incref(args) : json_object();
out:
	json_decref(doc);
	return rc;
}

/* ------------------------------------------------------------------ */

struct agent_cmd_log {
	char *path;
	size_t cap;
	json_t *entries; /* array of {id, type, state, event?}, oldest first */
};

void agent_cmd_log_free(struct agent_cmd_log *log)
{
	if (!log)
		return;
	json_decref(log->entries);
	free(log->path);
	free(log);
}

/* Check one stored entry; a corrupt file is refused as a whole. */
static int check_entry(const json_t *e, struct fl_error *err)
{
	const char *id, *type, *state;
	json_t *ev;
	int rc;

	rc = fl_json_require_object(e, "command log entry", err);
	if (!rc)
		rc = fl_json_str(e, "id", AGENT_CMD_ID_MAX, &id, err);
	if (!rc)
		rc = fl_json_str(e, "type", AGENT_CMD_TYPE_MAX, &type, err);
	if (!rc)
		rc = fl_json_str(e, "state", 16, &state, err);
	if (rc)
		return rc;
	ev = json_object_get(e, "event");
	if (fl_streq(state, "done") ? !json_is_object(ev)
				    : !fl_streq(state, "running"))
		return fl_fail(err, FL_EPARSE, "bad command log entry '%s'",
			       id);
	return 0;
}

static int load_entries(struct agent_cmd_log *log, struct fl_error *err)
{
	json_t *doc = NULL, *arr;
	size_t max = log->cap * (AGENT_EVENT_MAX + 512) + 4096, i;
	int rc;

	rc = fl_json_load_file(log->path, max, &doc, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		return 0;
	}
	if (!rc)
		rc = fl_json_array(doc, "commands", AGENT_CMD_LOG_MAX, &arr,
				   err);
	if (rc)
		goto out;
	for (i = 0; i < json_array_size(arr); i++) {
		rc = check_entry(json_array_get(arr, i), err);
		if (rc)
			goto out;
	}
	json_array_extend(log->entries, arr);
	while (json_array_size(log->entries) > log->cap)
		json_array_remove(log->entries, 0);
out:
	json_decref(doc);
	return rc;
}

int agent_cmd_log_open(const char *path, size_t cap,
		       struct agent_cmd_log **ret, struct fl_error *err)
{
	struct agent_cmd_log *log;
	int rc;

	if (cap < 1 || cap > AGENT_CMD_LOG_MAX)
		return fl_fail(err, FL_EINVAL, "command log size %zu", cap);
	log = fl_xcalloc(1, sizeof(*log));
	log->path = fl_xstrdup(path);
	log->cap = cap;
	log->entries = json_array();
	rc = load_entries(log, err);
	if (rc) {
		fl_error_prefix(err, "command log '%s'", path);
		agent_cmd_log_free(log);
		return rc;
	}
	*ret = log;
	return 0;
}

static int save(struct agent_cmd_log *log, struct fl_error *err)
{
	json_t *doc = json_pack("{s:i, s:O}", "version", 1, "commands",
				log->entries);
	int rc = fl_json_save_file(doc, log->path, 0600, err);

	json_decref(doc);
	return rc;
}

static json_t *find(const struct agent_cmd_log *log, const char *id,
		    size_t *ret_index)
{
	size_t i;
	json_t *e;

	json_array_foreach(log->entries, i, e)
	{
		if (fl_streq(json_string_value(json_object_get(e, "id")), id)) {
			if (ret_index)
				*ret_index = i;
			return e;
		}
	}
	return NULL;
}

int agent_cmd_log_get(const struct agent_cmd_log *log, const char *id,
		      enum agent_cmd_state *ret_state,
		      const json_t **ret_event)
{
	json_t *e = find(log, id, NULL);
	bool done;

	if (!e)
		return FL_ENOTFOUND;
	done = fl_streq(json_string_value(json_object_get(e, "state")), "done");
	if (ret_state)
		*ret_state = done ? AGENT_CMD_DONE : AGENT_CMD_RUNNING;
	if (ret_event)
		*ret_event = done ? json_object_get(e, "event") : NULL;
	return 0;
}

/* Forget the oldest finished entry (or the oldest at all) when full. */
static void evict(struct agent_cmd_log *log)
{
	size_t i, victim = 0;
	json_t *e;

	if (json_array_size(log->entries) < log->cap)
		return;
	json_array_foreach(log->entries, i, e)
	{
		if (fl_streq(json_string_value(json_object_get(e, "state")),
			     "done")) {
			victim = i;
			break;
		}
	}
	json_array_remove(log->entries, victim);
}

int agent_cmd_log_begin(struct agent_cmd_log *log, const char *id,
			const char *type, struct fl_error *err)
{
	if (find(log, id, NULL))
		return fl_fail(err, FL_ECONFLICT, "command '%s' already seen",
			       id);
	evict(log);
	json_array_append_new(log->entries,
			      json_pack("{s:s, s:s, s:s}", "id", id, "type",
					type, "state", "running"));
	return save(log, err);
}

int agent_cmd_log_finish(struct agent_cmd_log *log, const char *id,
			 const json_t *event, struct fl_error *err)
{
	json_t *e = find(log, id, NULL);
	char *text;
	size_t len;

	if (!e)
		return fl_fail(err, FL_ENOTFOUND, "unknown command '%s'", id);
	text = fl_json_dumps(event);
	len = strlen(text);
	free(text);
	if (len > AGENT_EVENT_MAX)
		return fl_fail(err, FL_ELIMIT, "event of %zu bytes", len);
	json_object_set_new(e, "state", json_string("done"));
	json_object_set_new(e, "event", json_deep_copy(event));
	return save(log, err);
}

size_t agent_cmd_log_count(const struct agent_cmd_log *log)
{
	return json_array_size(log->entries);
}

const char *agent_cmd_log_next_running(const struct agent_cmd_log *log,
				       size_t *iter, const char **ret_type)
{
	while (*iter < json_array_size(log->entries)) {
		json_t *e = json_array_get(log->entries, (*iter)++);

		if (fl_streq(json_string_value(json_object_get(e, "state")),
			     "running")) {
			if (ret_type)
				*ret_type = json_string_value(
				    json_object_get(e, "type"));
			return json_string_value(json_object_get(e, "id"));
		}
	}
	return NULL;
}

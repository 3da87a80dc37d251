/* SPDX-License-Identifier: MIT */
/*
 * The protocol's words (proto.h): topic names under one prefix, and the
 * job states.  The tables below are the only place they are spelled.
 */
#include <string.h>

#include "proto.h"
#include "util.h"

static const struct fl_topic_info topics[FL_TOPIC_NKINDS] = {
    {FL_TOPIC_PRESENCE, "presence", FL_TOPIC_UP, false},
    {FL_TOPIC_STATUS, "status", FL_TOPIC_UP, false},
    {FL_TOPIC_EVENTS, "events", FL_TOPIC_UP, false},
    {FL_TOPIC_CMD, "cmd", FL_TOPIC_DOWN, false},
    {FL_TOPIC_SHADOW_REPORTED, "shadow/reported", FL_TOPIC_UP, false},
    {FL_TOPIC_SHADOW_DESIRED, "shadow/desired", FL_TOPIC_DOWN, false},
    {FL_TOPIC_DIAG_REQ, "diag/req", FL_TOPIC_DOWN, false},
    {FL_TOPIC_DIAG_RESP, "diag/resp", FL_TOPIC_UP, true},
    {FL_TOPIC_TELEMETRY, "telemetry", FL_TOPIC_UP, false},
};

const struct fl_topic_info *fl_topic_info(enum fl_topic_kind kind)
{
	if ((unsigned)kind >= FL_TOPIC_NKINDS)
		return NULL;
	return &topics[kind];
}

bool fl_topic_prefix_valid(const char *prefix)
{
	size_t n = prefix ? strlen(prefix) : 0;

	return n > 0 && n <= FL_TOPIC_PREFIX_MAX &&
	       strspn(prefix, "abcdefghijklmnopqrstuvwxyz"
			      "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-") == n;
}

int fl_topic_check_prefix(const char *prefix, const char *what,
			  struct fl_error *err)
{
	if (fl_topic_prefix_valid(prefix))
		return 0;
	return fl_fail(err, FL_EINVAL,
		       "%s '%.*s' must be one topic level of 1..%d "
		       "characters A-Z a-z 0-9 _ -",
		       what, FL_TOPIC_PREFIX_MAX + 1, prefix ? prefix : "",
		       FL_TOPIC_PREFIX_MAX);
}

int fl_topic_build(const char *prefix, const char *id, enum fl_topic_kind kind,
		   const char *sub, char **ret, struct fl_error *err)
{
	const struct fl_topic_info *t = fl_topic_info(kind);
	int rc = fl_topic_check_prefix(prefix, "topic prefix", err);

	if (!rc && !t)
		rc = fl_fail(err, FL_EINVAL, "unknown topic kind %d", kind);
	if (!rc)
		rc = fl_check_id(id, "device id in a topic", err);
	if (!rc && t->sub_level)
		rc = fl_check_id(sub, "last topic level", err);
	else if (!rc && sub)
		rc = fl_fail(err, FL_EINVAL, "topic %s has no last level",
			     t->leaf);
	if (rc)
		return rc;
	*ret = sub ? fl_xasprintf("%s/%s/%s/%s", prefix, id, t->leaf, sub)
		   : fl_xasprintf("%s/%s/%s", prefix, id, t->leaf);
	return 0;
}

int fl_topic_filter(const char *prefix, enum fl_topic_kind kind, char **ret,
		    struct fl_error *err)
{
	const struct fl_topic_info *t = fl_topic_info(kind);
	int rc = fl_topic_check_prefix(prefix, "topic prefix", err);

	if (!rc && !t)
		rc = fl_fail(err, FL_EINVAL, "unknown topic kind %d", kind);
	if (rc)
		return rc;
	*ret = fl_xasprintf("%s/+/%s%s", prefix, t->leaf,
			    t->sub_level ? "/+" : "");
	return 0;
}

int fl_topic_all(const char *prefix, char **ret, struct fl_error *err)
{
	int rc = fl_topic_check_prefix(prefix, "topic prefix", err);

	if (!rc)
		*ret = fl_xasprintf("%s/#", prefix);
	return rc;
}

/* The kind whose leaf @rest is, or starts with plus one more level. */
static const struct fl_topic_info *match_kind(const char *rest,
					      const char **ret_sub)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(topics); i++) {
		size_t n = strlen(topics[i].leaf);

		if (strncmp(rest, topics[i].leaf, n) != 0)
			continue;
		if (!topics[i].sub_level && rest[n] == '\0') {
			*ret_sub = NULL;
			return &topics[i];
		}
		if (topics[i].sub_level && rest[n] == '/' &&
		    fl_valid_id(rest + n + 1)) {
			*ret_sub = rest + n + 1;
			return &topics[i];
		}
	}
	return NULL;
}

int fl_topic_parse(const char *prefix, const char *topic,
		   char ret_id[FL_ID_MAX + 1], enum fl_topic_kind *ret_kind,
		   const char **ret_sub, struct fl_error *err)
{
	size_t plen = strlen(prefix), n = strnlen(topic, FL_TOPIC_MAX + 1);
	const struct fl_topic_info *t;
	const char *id, *slash, *sub;
	char buf[FL_ID_MAX + 1];

	if (n > FL_TOPIC_MAX)
		return fl_fail(err, FL_ELIMIT, "topic over %d bytes",
			       FL_TOPIC_MAX);
	if (strncmp(topic, prefix, plen) != 0 || topic[plen] != '/')
		return fl_fail(err, FL_EPARSE,
			       "topic '%.100s' is not under %s/", topic,
			       prefix);
	id = topic + plen + 1;
	slash = strchr(id, '/');
	if (!slash || slash == id || (size_t)(slash - id) > FL_ID_MAX)
		return fl_fail(err, FL_EPARSE,
			       "topic '%.100s' has no device id", topic);
	memcpy(buf, id, (size_t)(slash - id));
	buf[slash - id] = '\0';
	if (!fl_valid_id(buf))
		return fl_fail(err, FL_EPARSE, "topic '%.100s': bad device id",
			       topic);
	t = match_kind(slash + 1, &sub);
	if (!t)
		return fl_fail(err, FL_EPARSE, "topic '%.100s': unknown kind",
			       topic);
	memcpy(ret_id, buf, sizeof(buf));
	*ret_kind = t->kind;
	if (ret_sub)
		*ret_sub = sub;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Job states                                                         */
/* ------------------------------------------------------------------ */

#define DEV FL_JOB_DEVICE
static const struct {
	const char *name;
	unsigned flags;
} states[FL_JOB_STATE_END] = {
    [FL_JOB_QUEUED] = {"queued", DEV | FL_JOB_SERVER},
    [FL_JOB_DOWNLOADING] = {"downloading", DEV},
    [FL_JOB_VERIFYING] = {"verifying", DEV},
    [FL_JOB_INSTALLING] = {"installing", DEV},
    [FL_JOB_INSTALLED] = {"installed", DEV},
    [FL_JOB_REBOOTING] = {"rebooting", DEV},
    [FL_JOB_HEALTH_CHECK] = {"health-check", DEV},
    [FL_JOB_REVERTING] = {"reverting", FL_JOB_LOCAL},
    [FL_JOB_SUCCEEDED] = {"succeeded", DEV | FL_JOB_FINAL},
    [FL_JOB_FAILED] = {"failed", DEV | FL_JOB_SERVER | FL_JOB_FINAL},
    [FL_JOB_ROLLED_BACK] = {"rolled-back", DEV | FL_JOB_FINAL},
    [FL_JOB_CANCELLED] = {"cancelled", FL_JOB_SERVER | FL_JOB_FINAL},
    [FL_JOB_EXPIRED] = {"expired", FL_JOB_SERVER | FL_JOB_FINAL},
};
#undef DEV

const char *fl_job_state_name(enum fl_job_state s)
{
	if ((unsigned)s < FL_ARRAY_SIZE(states) && states[s].name)
		return states[s].name;
	return "unknown";
}

enum fl_job_state fl_job_state_parse(const char *name)
{
	for (size_t i = 1; name && i < FL_ARRAY_SIZE(states); i++)
		if (fl_streq(states[i].name, name))
			return (enum fl_job_state)i;
	return 0;
}

unsigned fl_job_state_flags(enum fl_job_state s)
{
	if ((unsigned)s < FL_ARRAY_SIZE(states))
		return states[s].flags;
	return 0;
}

bool fl_job_state_final(enum fl_job_state s)
{
	return fl_job_state_flags(s) & FL_JOB_FINAL;
}

bool fl_job_state_name_final(const char *name)
{
	return fl_job_state_final(fl_job_state_parse(name));
}

/* SPDX-License-Identifier: MIT */
/*
 * The OTA journal: fixed-size structs to and from a small JSON file,
 * every field validated on the way in.  See journal.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "journal.h"
#include "json.h"
#include "util.h"
#include "validate.h"

#define NUM_MAX ((UINT64_C(1) << 53) - 1) /* exact in JSON */
#define ATTEMPTS_MAX 1000000

const char *agent_job_state_name(enum agent_job_state s)
{
	return fl_job_state_name((enum fl_job_state)s);
}

enum agent_job_state agent_job_state_parse(const char *name)
{
	enum fl_job_state s = fl_job_state_parse(name);

	if (fl_job_state_flags(s) & (FL_JOB_DEVICE | FL_JOB_LOCAL))
		return (enum agent_job_state)s;
	return 0;
}

bool agent_job_state_final(enum agent_job_state s)
{
	return fl_job_state_final((enum fl_job_state)s);
}

const char *agent_job_type_name(enum agent_job_type t)
{
	return t == AGENT_JOB_ROLLBACK ? "rollback" : "update";
}

void agent_job_set_outcome(struct agent_job *job, const char *stage,
			   const char *reason)
{
	fl_strlcpy(job->stage, stage ? stage : "", sizeof(job->stage));
	fl_strlcpy(job->reason, reason ? reason : "", sizeof(job->reason));
	for (char *p = job->reason; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
			*p = '?';
}

struct agent_slot_info *agent_journal_slot(struct agent_journal *j,
					   const char *slot)
{
	if (fl_streq(slot, "a"))
		return &j->slots[0];
	if (fl_streq(slot, "b"))
		return &j->slots[1];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Value checks                                                       */
/* ------------------------------------------------------------------ */

static bool is_hex(const char *s, size_t min, size_t max)
{
	size_t n = strlen(s);

	return n >= min && n <= max && strspn(s, "0123456789abcdef") == n;
}

static bool valid_slot(const char *s)
{
	return fl_streq(s, "a") || fl_streq(s, "b");
}

static bool valid_version(const char *s)
{
	return fsig_valid_semver(s);
}

/* A download path on fleetd: /api/v1/... of plain characters. */
static bool valid_url_path(const char *s)
{
	size_t n = strlen(s);

	return fl_startswith(s, "/api/v1/") && !strstr(s, "..") &&
	       !strstr(s, "//") &&
	       strspn(s, "abcdefghijklmnopqrstuvwxyz"
			 "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-") == n;
}

static bool valid_stage(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && strspn(s, "abcdefghijklmnopqrstuvwxyz-") == n;
}

static bool valid_reason(const char *s)
{
	return fl_valid_text(s, AGENT_REASON_MAX);
}

/* ------------------------------------------------------------------ */
/* Parsing                                                            */
/* ------------------------------------------------------------------ */

/*
 * Copy string member @key into @buf (@size bytes).  With @optional, an
 * absent or null member gives "".  @ok (may be NULL) validates.
 */
static int get_str(const json_t *o, const char *key, char *buf, size_t size,
		   bool optional, bool (*ok)(const char *),
		   struct fl_error *err)
{
	const char *v = NULL;
	int rc;

	rc = optional ? fl_json_str_opt(o, key, size - 1, &v, err)
		      : fl_json_str(o, key, size - 1, &v, err);
	if (rc)
		return rc;
	if (!v) {
		buf[0] = '\0';
		return 0;
	}
	if (ok && !ok(v))
		return fl_fail(err, FL_EPARSE, "journal: bad value of '%s'",
			       key);
	fl_strlcpy(buf, v, size);
	return 0;
}

static int get_num(const json_t *o, const char *key, uint64_t max,
		   uint64_t *ret, struct fl_error *err)
{
	int64_t v;
	int rc = fl_json_int(o, key, 0, (int64_t)max, &v, err);

	if (!rc)
		*ret = (uint64_t)v;
	return rc;
}

/* An optional number: absent or null leaves *@has false. */
static int get_opt_num(const json_t *o, const char *key, bool *has,
		       uint64_t *ret, struct fl_error *err)
{
	json_t *v = json_object_get(o, key);

	*has = false;
	if (!v || json_is_null(v))
		return 0;
	*has = true;
	return get_num(o, key, NUM_MAX, ret, err);
}

static int get_time(const json_t *o, const char *key, time_t *ret,
		    struct fl_error *err)
{
	const char *v;
	int rc = fl_json_str(o, key, 32, &v, err);

	return rc ? rc : fl_parse_rfc3339(v, ret, err);
}

static int parse_slots(const json_t *doc, struct agent_journal *j,
		       struct fl_error *err)
{
	static const char *const names[2] = {"a", "b"};
	json_t *slots = json_object_get(doc, "slots");
	int rc = 0;

	if (!json_is_object(slots))
		return fl_fail(err, FL_EPARSE, "journal: no 'slots' object");
	for (int i = 0; !rc && i < 2; i++) {
		json_t *s = json_object_get(slots, names[i]);
		struct agent_slot_info *si = &j->slots[i];

		rc = fl_json_require_object(s, "journal slot", err);
		if (!rc)
			rc = get_str(s, "version", si->version,
				     sizeof(si->version), true, valid_version,
				     err);
		if (!rc)
			rc = get_opt_num(s, "security_version",
					 &si->has_security_version,
					 &si->security_version, err);
		/* absent (journals before issue 8): not known to be good */
		si->good = json_is_true(json_object_get(s, "good"));
	}
	return rc;
}

static int parse_bundle(const json_t *b, struct agent_job *job,
			struct fl_error *err)
{
	int rc;

	rc = fl_json_require_object(b, "journal bundle", err);
	if (!rc)
		rc = get_str(b, "id", job->bundle_id, sizeof(job->bundle_id),
			     false, NULL, err);
	if (!rc && !is_hex(job->bundle_id, 6, AGENT_BUNDLE_ID_MAX))
		rc = fl_fail(err, FL_EPARSE, "journal: bad bundle id");
	if (!rc)
		rc = get_str(b, "name", job->bundle_name,
			     sizeof(job->bundle_name), false, fsig_valid_name,
			     err);
	if (!rc)
		rc = get_str(b, "sha256", job->sha256, sizeof(job->sha256),
			     false, NULL, err);
	if (!rc && !is_hex(job->sha256, 64, 64))
		rc = fl_fail(err, FL_EPARSE, "journal: bad bundle sha256");
	if (!rc)
		rc = get_num(b, "size", AGENT_BUNDLE_SIZE_MAX, &job->size, err);
	if (!rc && job->size == 0)
		rc = fl_fail(err, FL_EPARSE, "journal: empty bundle");
	if (!rc)
		rc = get_str(b, "url", job->url, sizeof(job->url), false,
			     valid_url_path, err);
	if (!rc)
		rc = get_str(b, "mirror", job->mirror, sizeof(job->mirror),
			     true, fl_valid_mirror_url, err);
	job->mirror_off =
	    *job->mirror && json_is_true(json_object_get(b, "mirror_off"));
	return rc;
}

/* Identity, type and state of the job. */
static int parse_job_head(const json_t *o, struct agent_job *job,
			  struct fl_error *err)
{
	char type[16], state[16];
	int rc;

	rc = get_str(o, "id", job->id, sizeof(job->id), false, fl_valid_label,
		     err);
	if (!rc)
		rc = get_str(o, "cmd", job->cmd, sizeof(job->cmd), false,
			     fl_valid_label, err);
	if (!rc)
		rc = get_str(o, "type", type, sizeof(type), false, NULL, err);
	if (!rc)
		rc =
		    get_str(o, "state", state, sizeof(state), false, NULL, err);
	if (rc)
		return rc;
	if (fl_streq(type, "update"))
		job->type = AGENT_JOB_UPDATE;
	else if (fl_streq(type, "rollback"))
		job->type = AGENT_JOB_ROLLBACK;
	else
		return fl_fail(err, FL_EPARSE, "journal: unknown job type");
	job->state = agent_job_state_parse(state);
	if (!job->state)
		return fl_fail(err, FL_EPARSE, "journal: unknown job state");
	return 0;
}

/* Slots, versions, counters, boot ids, outcome, times. */
static int parse_job_body(const json_t *o, struct agent_job *job,
			  struct fl_error *err)
{
	uint64_t att = 0;
	bool has;
	int rc;

	rc = get_str(o, "from_slot", job->from_slot, sizeof(job->from_slot),
		     false, valid_slot, err);
	if (!rc)
		rc = get_str(o, "target_slot", job->target_slot,
			     sizeof(job->target_slot), false, valid_slot, err);
	if (!rc && fl_streq(job->from_slot, job->target_slot))
		rc =
		    fl_fail(err, FL_EPARSE, "journal: target is the from slot");
	if (!rc)
		rc = get_str(o, "from_version", job->from_version,
			     sizeof(job->from_version), true, valid_version,
			     err);
	if (!rc)
		rc = get_str(o, "to_version", job->to_version,
			     sizeof(job->to_version), true, valid_version, err);
	if (!rc)
		rc = get_num(o, "bytes", NUM_MAX, &job->bytes, err);
	if (!rc)
		rc = get_opt_num(o, "slot_bytes", &has, &job->slot_bytes, err);
	if (!rc)
		rc = get_num(o, "fetched", NUM_MAX, &job->fetched, err);
	if (!rc)
		rc = get_num(o, "attempts", ATTEMPTS_MAX, &att, err);
	job->attempts = (unsigned)att;
	if (!rc)
		rc = get_str(o, "reboot_from", job->reboot_from,
			     sizeof(job->reboot_from), true, fl_valid_label,
			     err);
	if (!rc)
		rc = get_str(o, "stage", job->stage, sizeof(job->stage), true,
			     valid_stage, err);
	if (!rc)
		rc = get_str(o, "reason", job->reason, sizeof(job->reason),
			     true, valid_reason, err);
	if (!rc)
		rc = get_time(o, "started", &job->started, err);
	if (!rc)
		rc = get_time(o, "updated", &job->updated, err);
	return rc;
}

static int parse_job(const json_t *o, struct agent_job *job,
		     struct fl_error *err)
{
	json_t *b = json_object_get(o, "bundle");
	bool has_sv = false;
	int rc;

	rc = fl_json_require_object(o, "journal job", err);
	if (!rc)
		rc = parse_job_head(o, job, err);
	if (!rc && job->type == AGENT_JOB_UPDATE)
		rc = parse_bundle(b, job, err);
	else if (!rc && b && !json_is_null(b))
		rc = fl_fail(err, FL_EPARSE, "journal: rollback with a bundle");
	if (!rc)
		rc = get_opt_num(o, "security_version", &has_sv,
				 &job->security_version, err);
	job->has_security_version = has_sv;
	if (!rc)
		rc = parse_job_body(o, job, err);
	if (!rc && job->type == AGENT_JOB_UPDATE && job->bytes > job->size)
		rc = fl_fail(err, FL_EPARSE,
			     "journal: more bytes than the bundle has");
	if (!rc && job->slot_bytes > job->bytes)
		rc = fl_fail(err, FL_EPARSE,
			     "journal: more bytes in the slot than held");
	return rc;
}

int agent_journal_parse(const char *text, size_t len, struct agent_journal *ret,
			struct fl_error *err)
{
	struct agent_journal *j = fl_xcalloc(1, sizeof(*j));
	json_t *doc = NULL, *job;
	int64_t format;
	int rc;

	rc = fl_json_parse(text, len, AGENT_JOURNAL_MAX, &doc, err);
	if (!rc)
		rc = fl_json_require_object(doc, "journal", err);
	if (!rc)
		rc = fl_json_int(doc, "format", 1, 1, &format, err);
	if (!rc)
		rc = get_num(doc, "floor", NUM_MAX, &j->floor, err);
	if (!rc)
		rc = parse_slots(doc, j, err);
	job = json_object_get(doc, "job");
	if (!rc && job && !json_is_null(job)) {
		j->has_job = true;
		rc = parse_job(job, &j->job, err);
	}
	if (!rc)
		*ret = *j;
	json_decref(doc);
	free(j);
	return rc;
}

int agent_journal_load(const char *path, struct agent_journal *ret,
		       struct fl_error *err)
{
	char *text = NULL;
	size_t len = 0;
	int rc;

	rc = fl_read_file(path, AGENT_JOURNAL_MAX, &text, &len, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		memset(ret, 0, sizeof(*ret));
		return 0;
	}
	if (!rc)
		rc = agent_journal_parse(text, len, ret, err);
	if (rc)
		fl_error_prefix(err, "OTA journal '%s'", path);
	free(text);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Writing                                                            */
/* ------------------------------------------------------------------ */

static json_t *str_or_null(const char *s)
{
	return *s ? json_string(s) : json_null();
}

static json_t *num_or_null(bool has, uint64_t v)
{
	return has ? json_integer((json_int_t)v) : json_null();
}

static json_t *time_json(time_t t)
{
	char buf[21];

	fl_time_rfc3339(t, buf);
	return json_string(buf);
}

static json_t *bundle_json(const struct agent_job *job)
{
	json_t *b;

	if (job->type != AGENT_JOB_UPDATE)
		return json_null();
	b = json_pack("{s:s, s:s, s:s, s:I, s:s}", "id", job->bundle_id, "name",
		      job->bundle_name, "sha256", job->sha256, "size",
		      (json_int_t)job->size, "url", job->url);
	if (*job->mirror) {
		json_object_set_new(b, "mirror", json_string(job->mirror));
		json_object_set_new(b, "mirror_off",
				    json_boolean(job->mirror_off));
	}
	return b;
}

json_t *agent_job_to_json(const struct agent_job *job)
{
	json_t *o = json_pack(
	    "{s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:o, s:o}", "id", job->id,
	    "cmd", job->cmd, "type", agent_job_type_name(job->type), "state",
	    agent_job_state_name(job->state), "bundle", bundle_json(job),
	    "security_version",
	    num_or_null(job->has_security_version, job->security_version),
	    "from_slot", job->from_slot, "target_slot", job->target_slot,
	    "from_version", str_or_null(job->from_version), "to_version",
	    str_or_null(job->to_version));

	json_object_set_new(o, "bytes", json_integer((json_int_t)job->bytes));
	json_object_set_new(o, "slot_bytes",
			    json_integer((json_int_t)job->slot_bytes));
	json_object_set_new(o, "fetched",
			    json_integer((json_int_t)job->fetched));
	json_object_set_new(o, "attempts", json_integer(job->attempts));
	json_object_set_new(o, "reboot_from", str_or_null(job->reboot_from));
	json_object_set_new(o, "stage", str_or_null(job->stage));
	json_object_set_new(o, "reason", str_or_null(job->reason));
	json_object_set_new(o, "started", time_json(job->started));
	json_object_set_new(o, "updated", time_json(job->updated));
	return o;
}

static json_t *slot_json(const struct agent_slot_info *s)
{
	return json_pack(
	    "{s:o, s:o, s:b}", "version", str_or_null(s->version),
	    "security_version",
	    num_or_null(s->has_security_version, s->security_version), "good",
	    s->good);
}

json_t *agent_journal_to_json(const struct agent_journal *j)
{
	return json_pack("{s:i, s:I, s:{s:o, s:o}, s:o}", "format", 1, "floor",
			 (json_int_t)j->floor, "slots", "a",
			 slot_json(&j->slots[0]), "b", slot_json(&j->slots[1]),
			 "job",
			 j->has_job ? agent_job_to_json(&j->job) : json_null());
}

int agent_journal_save(const char *path, struct agent_journal *j,
		       struct fl_error *err)
{
	json_t *doc;
	int rc;

	if (j->has_job) {
		j->job.updated = time(NULL);
		if (!j->job.started)
			j->job.started = j->job.updated;
	}
	doc = agent_journal_to_json(j);
	rc = fl_json_save_file(doc, path, 0600, err);
	json_decref(doc);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The agent core, the host of the features (feature.h): start-up
 * (recovery, identity, command log, seq, the features), the MQTT
 * callbacks (presence, subscriptions, inbox), the step loop, events and
 * command dispatch to the feature that owns the type, and the clean
 * stop.  Every public entry sets the agent's log context (log.h).  The
 * host interface features call is in features.c.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"
#include "evq.h"
#include "fsutil.h"
#include "journal.h"
#include "json.h"
#include "log.h"
#include "proto.h"
#include "sdnotify.h"
#include "util.h"
#include "validate.h"

#define SEQ_MAX (UINT64_C(1) << 53) /* exact in JSON numbers */
#define STOP_TIMEOUT_MS 3000
#define REBOOT_CONNECT_MS 5000 /* wait for the broker before a reboot */

/* Enter and leave an agent's log context around a public entry. */
#define LOG_ENTER(a) const char *log_prev_ = fl_log_context_set((a)->cfg->id)
#define LOG_LEAVE() fl_log_context_set(log_prev_)

static void now_text(char buf[static 21])
{
	fl_time_rfc3339(time(NULL), buf);
}

/* ------------------------------------------------------------------ */
/* seq                                                                */
/* ------------------------------------------------------------------ */

static int seq_load(struct agent *a, struct fl_error *err)
{
	char *text = NULL;
	int rc;

	rc = fl_read_file(a->seq_path, 64, &text, NULL, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		a->seq = 0;
		return 0;
	}
	if (!rc) {
		text[strcspn(text, "\n")] = '\0';
		rc = fl_parse_uint(text, SEQ_MAX, &a->seq, err);
	}
	if (rc)
		fl_error_prefix(err, "event counter '%s'", a->seq_path);
	free(text);
	return rc;
}

/* Take the next seq, durably, before anything carries it. */
static int seq_next(struct agent *a, uint64_t *ret, struct fl_error *err)
{
	char buf[32];
	int rc;

	if (a->seq >= SEQ_MAX)
		return fl_fail(err, FL_ELIMIT, "event counter exhausted");
	snprintf(buf, sizeof(buf), "%llu\n", (unsigned long long)a->seq + 1);
	rc = fl_write_atomic_str(a->seq_path, buf, 0600, err);
	if (rc)
		return rc;
	*ret = ++a->seq;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Publishing                                                         */
/* ------------------------------------------------------------------ */

static void publish_json(struct agent *a, const char *t, const json_t *j,
			 int qos, bool retain)
{
	struct fl_error err = {0};
	char *text = fl_json_dumps(j);

	if (agent_mqtt_publish(a->mqtt, t, text, strlen(text), qos, retain,
			       &err))
		fl_warn("%s", err.msg);
	free(text);
}

/* What the features report for status (feature.h "report"). */
static json_t *features_report(struct agent *a)
{
	json_t *j = json_object();

	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->report)
			a->features[i]->report(a->fstate[i], j);
	return j;
}

static void publish_presence(struct agent *a, bool online)
{
	json_t *r = features_report(a), *fw = json_object_get(r, "firmware");
	char ts[21];
	json_t *j;

	now_text(ts);
	j = json_pack("{s:b, s:s, s:s, s:O}", "online", online, "ts", ts,
		      "agent", FLEET_VERSION, "firmware",
		      fw ? fw : json_null());
	publish_json(a, a->t_presence, j, 1, true);
	json_decref(j);
	json_decref(r);
}

/* Status: the time and the certificate, then what features report. */
void agent_publish_status(struct agent *a)
{
	char ts[21], expires[21];
	json_t *j, *r = features_report(a);

	now_text(ts);
	fl_time_rfc3339(a->cert.not_after, expires);
	j = json_pack("{s:s, s:s, s:s}", "ts", ts, "cert_serial",
		      a->cert.serial, "cert_expires", expires);
	json_object_update(j, r);
	publish_json(a, a->t_status, j, 1, false);
	json_decref(j);
	json_decref(r);
	a->next_status_ms = fl_now_ms() + a->cfg->status_interval_s * 1000;
}

/* ------------------------------------------------------------------ */
/* Events (coalesced progress, finals until fleetd's ack: evq.h)      */
/* ------------------------------------------------------------------ */

/* The event without its seq. */
static json_t *event_new(const char *cmd_id, const char *type,
			 const char *state, const json_t *fields)
{
	char ts[21];
	json_t *ev;

	now_text(ts);
	ev = json_pack("{s:s, s:o, s:s, s:s}", "ts", ts, "cmd",
		       cmd_id ? json_string(cmd_id) : json_null(), "type", type,
		       "state", state);
	if (fields)
		json_object_update_missing(ev, (json_t *)fields);
	return ev;
}

/* The job an event is about (NULL: none, or not one we can match). */
static const char *event_job(const json_t *ev)
{
	const char *job = json_string_value(json_object_get(ev, "job"));

	return job && strlen(job) <= AGENT_JOB_ID_MAX ? job : NULL;
}

static void log_event(const struct agent *a, const json_t *ev, bool again)
{
	const char *type = json_string_value(json_object_get(ev, "type"));
	const char *state = json_string_value(json_object_get(ev, "state"));
	long long seq =
	    (long long)json_integer_value(json_object_get(ev, "seq"));

	if (again)
		fl_debug("event %lld again (not confirmed yet): %s %s", seq,
			 type, state);
	else
		fl_info("event %lld: %s %s", seq, type, state);
}

/* Take the next seq for @ev and publish it (progress, other events). */
static int send_event(struct agent *a, json_t *ev, struct fl_error *err)
{
	uint64_t seq = 0;
	int rc = seq_next(a, &seq, err);

	if (rc)
		return rc;
	json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
	publish_json(a, a->t_events, ev, 1, false);
	log_event(a, ev, false);
	return 0;
}

static int sink_progress(void *user, json_t *ev)
{
	struct agent *a = user;
	struct fl_error err = {0};
	int rc = send_event(a, ev, &err);

	if (rc)
		fl_error("%s", err.msg);
	return rc;
}

static void sink_final(void *user, const json_t *ev, bool again)
{
	struct agent *a = user;

	publish_json(a, a->t_events, ev, 1, false);
	log_event(a, ev, again);
}

void agent_events_flush(struct agent *a, bool force)
{
	const struct agent_evq_sink sink = {a, sink_progress, sink_final};
	unsigned room = 0;
	int inflight;

	if (agent_mqtt_connected(a->mqtt) && !a->in_connect) {
		inflight = agent_mqtt_inflight(a->mqtt);
		room = force ? UINT_MAX
		       : inflight < AGENT_EVENTS_INFLIGHT_MAX
			   ? (unsigned)(AGENT_EVENTS_INFLIGHT_MAX - inflight)
			   : 0;
	}
	agent_evq_flush(a->evq, fl_now_ms(), room, &sink);
}

/*
 * A final job event: its seq now (durable), then kept until fleetd's
 * ack; the flush publishes it when connected.  One too big to keep is
 * published once.
 */
static int final_event(struct agent *a, const char *job, json_t *ev,
		       struct fl_error *err)
{
	struct fl_error kerr = {0};
	uint64_t seq = 0;
	int rc = seq_next(a, &seq, err);

	if (rc)
		return rc;
	json_object_set_new(ev, "seq", json_integer((json_int_t)seq));
	rc = agent_evq_final(a->evq, job, ev, &kerr);
	if (rc)
		fl_warn("event %llu: %s", (unsigned long long)seq, kerr.msg);
	if (rc == FL_ELIMIT) {
		publish_json(a, a->t_events, ev, 1, false);
		log_event(a, ev, false);
	}
	agent_events_flush(a, false);
	return 0;
}

int agent_publish_event(struct agent *a, const char *cmd_id, const char *type,
			const char *state, const json_t *fields,
			json_t **ret_event, struct fl_error *err)
{
	json_t *ev = event_new(cmd_id, type, state, fields);
	const char *job = event_job(ev);
	int rc;

	if (job && !agent_evq_state_final(state)) {
		agent_evq_progress(a->evq, job, ev);
		json_decref(ev);
		agent_events_flush(a, false);
		if (ret_event)
			*ret_event = NULL;
		return 0;
	}
	rc = job ? final_event(a, job, ev, err) : send_event(a, ev, err);
	if (!rc && ret_event)
		*ret_event = ev;
	else
		json_decref(ev);
	return rc;
}

size_t agent_unconfirmed_events(const struct agent *a)
{
	return agent_evq_unconfirmed(a->evq);
}

void agent_cmd_complete(struct agent *a, const char *cmd_id, const char *type,
			const char *state, const char *stage,
			const char *reason, const json_t *fields)
{
	struct fl_error err = {0};
	json_t *extra = fields ? json_deep_copy(fields) : json_object();
	json_t *ev = NULL;

	if (reason)
		fl_warn("command %s (%s) %s at %s: %s", cmd_id ? cmd_id : "-",
			type, state, stage ? stage : "-", reason);
	if (stage)
		json_object_set_new(extra, "stage", json_string(stage));
	if (reason)
		json_object_set_new(extra, "reason", json_string(reason));
	if (agent_publish_event(a, cmd_id, type, state, extra, &ev, &err) ||
	    (cmd_id && agent_cmd_log_finish(a->cmds, cmd_id, ev, &err)))
		fl_error("command %s: %s", cmd_id ? cmd_id : "-", err.msg);
	json_decref(ev);
	json_decref(extra);
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

/* Run a new command through its handler and report the outcome. */
static void dispatch(struct agent *a, const struct agent_cmd *cmd)
{
	const struct agent_feature *f = NULL;
	const struct agent_feature_cmd *h = NULL;
	struct agent_cmd_outcome out = {.fields = json_object()};
	struct fl_error err = {0};
	int rc;

	if (agent_cmd_log_begin(a->cmds, cmd->id, cmd->type, &err)) {
		fl_error("command %s: %s", cmd->id, err.msg);
		goto out;
	}
	fl_info("command %s: %s", cmd->id, cmd->type);
	if (!agent_feature_find_cmd(a->features, a->n_features, cmd->type, &f,
				    &h)) {
		agent_cmd_complete(a, cmd->id, cmd->type, "failed", "dispatch",
				   "unknown command type", NULL);
		goto out;
	}
	rc = h->run(&a->host, agent_feature_state(a, f), cmd, &out, &err);
	if (out.pending)
		goto out;
	if (rc)
		agent_cmd_complete(a, cmd->id, cmd->type, "failed",
				   out.stage ? out.stage : "run", err.msg,
				   out.fields);
	else
		agent_cmd_complete(a, cmd->id, cmd->type, "succeeded", NULL,
				   NULL, out.fields);
out:
	json_decref(out.fields);
}

/*
 * fleetd's "ack" {"seq", "job", "state", "missing"} (docs/protocol.md):
 * not a command (never logged, never answered); it confirms the
 * matching final job event, and one for anything else is ignored.
 * "missing" (optional): the seqs of the final's "history" fleetd has
 * not stored, published again before the final.
 */
/* The ack's optional "missing" into @out (at most AGENT_EVQ_SENT_MAX). */
static int ack_missing(const json_t *args, uint64_t *out, size_t *ret_n,
		       struct fl_error *err)
{
	int64_t seqs[AGENT_EVQ_SENT_MAX];
	int rc =
	    fl_json_seqs(args, "missing", AGENT_EVQ_SENT_MAX, seqs, ret_n, err);

	for (size_t i = 0; !rc && i < *ret_n; i++)
		out[i] = (uint64_t)seqs[i];
	return rc;
}

static void handle_ack(struct agent *a, const struct agent_cmd *cmd)
{
	struct fl_error err = {0};
	uint64_t missing[AGENT_EVQ_SENT_MAX];
	size_t n_missing = 0, resent = 0;
	const char *job = NULL;
	int64_t seq = 0;
	int rc;

	rc = fl_json_int(cmd->args, "seq", 1, (int64_t)SEQ_MAX, &seq, &err);
	if (!rc)
		rc =
		    fl_json_str(cmd->args, "job", AGENT_JOB_ID_MAX, &job, &err);
	if (!rc && !fl_valid_label(job))
		rc = fl_fail(&err, FL_EPARSE, "bad 'job'");
	if (!rc)
		rc = ack_missing(cmd->args, missing, &n_missing, &err);
	if (rc) {
		fl_warn("dropped a bad ack %s: %s", cmd->id, err.msg);
		return;
	}
	rc = agent_evq_ack(a->evq, job, (uint64_t)seq, missing, n_missing,
			   &resent, &err);
	if (rc == FL_ENOTFOUND)
		fl_debug("ack for event %lld of %s matches nothing; "
			 "ignored",
			 (long long)seq, job);
	else if (rc)
		fl_warn("ack for event %lld: %s", (long long)seq, err.msg);
	else if (resent) {
		fl_info("fleetd misses %zu event(s) of %s: publishing them "
			"again, then event %lld",
			resent, job, (long long)seq);
		agent_events_flush(a, false);
	} else
		fl_info("event %lld of %s confirmed by fleetd", (long long)seq,
			job);
}

/*
 * fleet-sim's record of what reached the device: one line "ID TYPE JOB"
 * per command, a repeat too, appended to STATE_DIR/commands.received.
 */
static void record_command(const struct agent *a, const struct agent_cmd *cmd)
{
	const char *job = json_string_value(json_object_get(cmd->args, "job"));
	char *path = fl_path_join(a->cfg->state_dir, AGENT_CMD_RECORD_FILE);
	FILE *f = fopen(path, "a");
	int rc = f ? 0 : -1;

	if (!job || !fl_valid_label(job))
		job = "-";
	if (f && fprintf(f, "%s %s %s\n", cmd->id, cmd->type, job) < 0)
		rc = -1;
	if (f && fclose(f))
		rc = -1;
	if (rc)
		fl_warn("%s: cannot record command %s", path, cmd->id);
	free(path);
}

/* A payload from fleet/ID/cmd: drop bad ones, answer repeats. */
static void handle_command(struct agent *a, const char *payload, size_t len,
			   const struct agent_msg_props *props)
{
	struct agent_cmd cmd = {0};
	struct fl_error err = {0};
	enum agent_cmd_state st;
	const json_t *ev;

	if (agent_cmd_parse(payload, len, &cmd, &err)) {
		fl_warn("dropped a bad command: %s", err.msg);
		return;
	}
	cmd.props = props;
	if (a->cfg->sim_record_commands && !fl_streq(cmd.type, AGENT_ACK_TYPE))
		record_command(a, &cmd);
	if (fl_streq(cmd.type, AGENT_ACK_TYPE))
		handle_ack(a, &cmd);
	else if (agent_cmd_log_get(a->cmds, cmd.id, &st, &ev) == 0) {
		fl_info("command %s seen before%s", cmd.id,
			st == AGENT_CMD_DONE ? ": repeating its outcome" : "");
		if (st == AGENT_CMD_DONE)
			publish_json(a, a->t_events, ev, 1, false);
	} else {
		dispatch(a, &cmd);
	}
	agent_cmd_release(&cmd);
}

bool agent_inbox_has(const struct agent *a, const char *type, const char *key,
		     const char *value)
{
	bool found = false;

	for (size_t i = 0; i < a->n_inbox && !found; i++) {
		struct agent_cmd cmd = {0};

		if (agent_cmd_parse(a->inbox[i].payload, a->inbox[i].len, &cmd,
				    NULL) == 0)
			found = fl_streq(cmd.type, type) &&
				fl_streq(json_string_value(
					     json_object_get(cmd.args, key)),
					 value);
		agent_cmd_release(&cmd);
	}
	return found;
}

static void drain_inbox(struct agent *a)
{
	size_t n = a->n_inbox;
	struct agent_inbox_msg msgs[AGENT_INBOX_MAX];

	/* handlers may step the MQTT loop and queue more: take a copy */
	memcpy(msgs, a->inbox, n * sizeof(msgs[0]));
	a->n_inbox = 0;
	for (size_t i = 0; i < n; i++) {
		handle_command(a, msgs[i].payload, msgs[i].len, &msgs[i].props);
		free(msgs[i].payload);
		agent_msg_props_release(&msgs[i].props);
	}
}

/* Does a feature still carry @id on (feature.h owns_running)? */
static bool carried_on(const struct agent *a, const char *id)
{
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->owns_running &&
		    a->features[i]->owns_running(a->fstate[i], id))
			return true;
	return false;
}

/* Finish commands that a restart interrupted (not those a feature still
 * carries on: a pending rotation, the running update or rollback). */
static void fail_interrupted(struct agent *a)
{
	const char *id, *type;
	size_t it = 0;
	char **ids = NULL, **types = NULL;
	size_t n = 0;

	while ((id = agent_cmd_log_next_running(a->cmds, &it, &type))) {
		if (carried_on(a, id))
			continue;
		ids = fl_xrealloc(ids, (n + 1) * sizeof(*ids));
		types = fl_xrealloc(types, (n + 1) * sizeof(*types));
		ids[n] = fl_xstrdup(id);
		types[n++] = fl_xstrdup(type);
	}
	for (size_t i = 0; i < n; i++) {
		agent_cmd_complete(a, ids[i], types[i], "failed", "restart",
				   "the agent restarted while the command ran",
				   NULL);
		free(ids[i]);
		free(types[i]);
	}
	free(ids);
	free(types);
}

/* ------------------------------------------------------------------ */
/* MQTT callbacks                                                     */
/* ------------------------------------------------------------------ */

/* The features' own topics (QoS 1). */
static void subscribe_features(struct agent *a)
{
	struct fl_error err = {0};

	for (size_t i = 0; i < a->n_features; i++)
		for (size_t k = 0;
		     k < AGENT_FEATURE_TOPICS_MAX && a->f_topics[i][k]; k++)
			if (agent_mqtt_subscribe(a->mqtt, a->f_topics[i][k], 1,
						 &err))
				fl_warn("%s", err.msg);
}

/* A message on a feature's topic goes to its on_message. */
static bool route_to_feature(struct agent *a, const char *t,
			     const void *payload, size_t len,
			     const struct agent_msg_props *props)
{
	for (size_t i = 0; i < a->n_features; i++)
		for (size_t k = 0;
		     k < AGENT_FEATURE_TOPICS_MAX && a->f_topics[i][k]; k++)
			if (fl_streq(t, a->f_topics[i][k])) {
				if (a->features[i]->on_message)
					a->features[i]->on_message(
					    &a->host, a->fstate[i],
					    a->features[i]->topics[k], payload,
					    len, props);
				return true;
			}
	return false;
}

/*
 * A new connection.  Events queued here (a job's current state, the
 * unconfirmed finals) wait for the flush after the MQTT step: libmosquitto
 * resends the events the lost connection left unacknowledged only after
 * this callback returns, and newer events sent here overtook them, so
 * that fleetd refused the older ones as stale and they were missing from
 * the job's history (t4008: the broker killed during a rollout).
 */
static void on_connect(void *user, bool session_present)
{
	struct agent *a = user;
	struct fl_error err = {0};

	a->in_connect = true;
	publish_presence(a, true);
	if (agent_mqtt_subscribe(a->mqtt, a->t_cmd, 2, &err))
		fl_warn("%s", err.msg);
	subscribe_features(a);
	agent_publish_status(a);
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->on_connect)
			a->features[i]->on_connect(&a->host, a->fstate[i]);
	agent_evq_on_connect(a->evq);
	a->in_connect = false;
}

static void on_message(void *user, const char *t, const void *payload,
		       size_t len, const struct agent_msg_props *props)
{
	struct agent *a = user;
	struct agent_inbox_msg *m;

	if (route_to_feature(a, t, payload, len, props))
		return;
	if (!fl_streq(t, a->t_cmd)) {
		fl_debug("ignored a message on '%.80s'", t);
		return;
	}
	if (a->n_inbox == AGENT_INBOX_MAX) {
		fl_warn("too many queued commands; dropped one");
		return;
	}
	m = &a->inbox[a->n_inbox++];
	m->payload = fl_xmalloc(len + 1);
	memcpy(m->payload, payload, len);
	m->payload[len] = '\0';
	m->len = len;
	agent_msg_props_copy(&m->props, props);
}

/* A PUBACK: to the features that publish with a mid (feature.h). */
static void on_publish(void *user, int mid, int reason)
{
	struct agent *a = user;

	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->on_puback)
			a->features[i]->on_puback(&a->host, a->fstate[i], mid,
						  reason < 128);
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

static int make_mqtt(struct agent *a, struct fl_error *err)
{
	const struct agent_config *c = a->cfg;
	struct agent_mqtt_opts o = {
	    .client_id = c->id,
	    .host = c->mqtt_host,
	    .port = c->mqtt_port,
	    .ca_file = c->ca_file,
	    .cert_file = a->cur.cert,
	    .key_file = a->cur.key,
	    .keepalive_s = (int)c->keepalive_s,
	    .session_expiry_s = (uint32_t)c->session_expiry_s,
	    .will_topic = a->t_presence,
	    .will_payload = "{\"online\":false}",
	    .reconnect_min_ms = c->reconnect_min_s * 1000,
	    .reconnect_max_ms = c->reconnect_max_s * 1000,
	    .user = a,
	    .on_connect = on_connect,
	    .on_message = on_message,
	    .on_publish = on_publish,
	};

	return agent_mqtt_new(&o, &a->mqtt, err);
}

/* Paths and topics (PREFIX/ID/KIND, proto.h) from @cfg. */
static int init_fields(struct agent *a, const struct agent_config *cfg,
		       struct fl_error *err)
{
	const char *p = cfg->topic_prefix;
	int rc;

	a->cfg = cfg;
	a->host.a = a;
	agent_identity_paths(cfg->state_dir, false, &a->cur);
	agent_identity_paths(cfg->state_dir, true, &a->staged);
	a->http = (struct agent_http_target){
	    .server_url = cfg->server_url,
	    .ca_file = cfg->ca_file,
	    .timeout_ms = cfg->http_timeout_s * 1000,
	};
	a->seq_path = fl_path_join(cfg->state_dir, AGENT_SEQ_FILE);
	rc = fl_topic_build(p, cfg->id, FL_TOPIC_PRESENCE, NULL, &a->t_presence,
			    err);
	if (!rc)
		rc = fl_topic_build(p, cfg->id, FL_TOPIC_STATUS, NULL,
				    &a->t_status, err);
	if (!rc)
		rc = fl_topic_build(p, cfg->id, FL_TOPIC_EVENTS, NULL,
				    &a->t_events, err);
	if (!rc)
		rc = fl_topic_build(p, cfg->id, FL_TOPIC_CMD, NULL, &a->t_cmd,
				    err);
	return rc;
}

static void release_fields(struct agent *a)
{
	agent_identity_paths_release(&a->cur);
	agent_identity_paths_release(&a->staged);
	free(a->t_presence);
	free(a->t_status);
	free(a->t_events);
	free(a->t_cmd);
	free(a->seq_path);
	for (size_t i = 0; i < AGENT_FEATURES_MAX; i++)
		for (size_t k = 0; k < AGENT_FEATURE_TOPICS_MAX; k++)
			free(a->f_topics[i][k]);
}

/* The unconfirmed final events; a file that does not load is kept
 * aside (logged) and the agent starts with none. */
static int open_evq(struct agent *a, struct fl_error *err)
{
	char *path = fl_path_join(a->cfg->state_dir, AGENT_EVQ_FILE), *aside;
	int64_t retry_ms = a->cfg->event_retry_s * 1000;
	int rc;

	rc = agent_evq_open(path, retry_ms, &a->evq, err);
	if (rc == FL_EPARSE || rc == FL_ELIMIT) {
		aside = fl_xasprintf("%s.corrupt", path);
		fl_error("%s; moved to '%s'", err->msg, aside);
		rename(path, aside);
		free(aside);
		fl_error_clear(err);
		rc = agent_evq_open(path, retry_ms, &a->evq, err);
	}
	free(path);
	return rc;
}

static int open_state(struct agent *a, struct fl_error *err)
{
	const char *dir = a->cfg->state_dir;
	char *log_path = fl_path_join(dir, AGENT_CMD_LOG_FILE);
	bool forward = false;
	int rc;

	rc = agent_identity_recover(dir, &forward, err);
	if (!rc && forward)
		fl_info("finished an interrupted identity swap");
	if (!rc)
		rc = agent_identity_check(dir, a->cfg->id, &a->cert, err);
	if (!rc)
		rc = agent_cmd_log_open(log_path, AGENT_CMD_LOG_DEFAULT,
					&a->cmds, err);
	if (!rc)
		rc = seq_load(a, err);
	if (!rc)
		rc = open_evq(a, err);
	free(log_path);
	return rc;
}

/* PREFIX/ID/LEAF for a feature's @leaf (the prefix is checked at
 * config load; leaves are constants of the feature table). */
static char *feature_topic(const struct agent *a, const char *leaf)
{
	return fl_xasprintf("%s/%s/%s", a->cfg->topic_prefix, a->cfg->id, leaf);
}

/* Start the features in table order (their topics too). */
static int init_features(struct agent *a, const struct agent_feature *const *f,
			 size_t n, struct fl_error *err)
{
	int rc = agent_features_check(f, n, err);

	if (rc)
		return rc;
	a->features = f;
	for (size_t i = 0; i < n && !rc; i++) {
		for (size_t k = 0;
		     k < AGENT_FEATURE_TOPICS_MAX && f[i]->topics[k]; k++)
			a->f_topics[i][k] = feature_topic(a, f[i]->topics[k]);
		a->n_features = i + 1;
		if (f[i]->init)
			rc = f[i]->init(&a->host, &a->fstate[i], err);
		if (rc)
			fl_error_prefix(err, "%s", f[i]->name);
	}
	return rc;
}

static int new_agent(const struct agent_config *cfg,
		     const struct agent_feature *const *features,
		     size_t n_features, struct agent **ret,
		     struct fl_error *err)
{
	struct agent *a = fl_xcalloc(1, sizeof(*a));
	int rc;

	a->wake_fd = -1;
	rc = init_fields(a, cfg, err);
	if (!rc)
		rc = open_state(a, err);
	if (!rc)
		rc = make_mqtt(a, err);
	if (!rc)
		rc = init_features(a, features, n_features, err);
	if (rc) {
		agent_free(a);
		return rc;
	}
	fail_interrupted(a);
	*ret = a;
	return 0;
}

int agent_new_with(const struct agent_config *cfg,
		   const struct agent_feature *const *features,
		   size_t n_features, struct agent **ret, struct fl_error *err)
{
	const char *log_prev_ = fl_log_context_set(cfg->id);
	int rc = new_agent(cfg, features, n_features, ret, err);

	LOG_LEAVE();
	return rc;
}

int agent_new(const struct agent_config *cfg, struct agent **ret,
	      struct fl_error *err)
{
	return agent_new_with(cfg, agent_features, agent_n_features, ret, err);
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	LOG_ENTER(a);
	for (size_t i = a->n_features; i-- > 0;)
		if (a->features[i]->free)
			a->features[i]->free(a->fstate[i]);
	agent_mqtt_free(a->mqtt);
	agent_cmd_log_free(a->cmds);
	agent_evq_free(a->evq);
	for (size_t i = 0; i < a->n_inbox; i++) {
		free(a->inbox[i].payload);
		agent_msg_props_release(&a->inbox[i].props);
	}
	release_fields(a);
	if (a->wake_fd >= 0)
		close(a->wake_fd);
	free(a);
	LOG_LEAVE();
}

void agent_services(struct agent *a)
{
	uint64_t v;

	if (a->wake_fd >= 0 && read(a->wake_fd, &v, sizeof(v)) < 0 &&
	    errno != EAGAIN)
		fl_debug("wake-up: %s", strerror(errno));
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->service)
			a->features[i]->service(&a->host, a->fstate[i]);
}

void agent_step(struct agent *a, int timeout_ms,
		const volatile sig_atomic_t *stop)
{
	LOG_ENTER(a);
	a->stop = stop;
	agent_mqtt_step(a->mqtt, timeout_ms);
	agent_services(a);
	if (a->n_inbox)
		drain_inbox(a);
	if (agent_mqtt_connected(a->mqtt) && fl_now_ms() >= a->next_status_ms)
		agent_publish_status(a);
	agent_events_flush(a, false);
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->tick)
			a->features[i]->tick(&a->host, a->fstate[i]);
	LOG_LEAVE();
}

/* Tell the service manager, if any (a no-op without fl_sd_init). */
static void notify(const char *state)
{
	struct fl_error err = {0};

	if (fl_sd_notify(state, &err))
		fl_warn("%s", err.msg);
}

int agent_run(struct agent *a, const volatile sig_atomic_t *stop,
	      struct fl_error *err)
{
	LOG_ENTER(a);
	fl_info("running (broker %s:%d, server %s)", a->cfg->mqtt_host,
		a->cfg->mqtt_port, a->cfg->server_url);
	notify("READY=1");
	while (!*stop && !a->reboot_requested) {
		agent_step(a, 200, stop);
		fl_sd_watchdog(fl_now_ms());
	}
	notify("STOPPING=1");
	/* before a reboot, let the events of the job get out */
	for (int64_t end = fl_now_ms() + REBOOT_CONNECT_MS;
	     !*stop && a->reboot_requested && !agent_mqtt_connected(a->mqtt) &&
	     fl_now_ms() < end;)
		agent_step(a, 100, stop);
	fl_info("stopping%s", a->reboot_requested ? " to reboot" : "");
	agent_stop(a, STOP_TIMEOUT_MS);
	LOG_LEAVE();
	return 0;
}

/* The first half of a clean stop: what is queued goes out, and the
 * retained offline presence after it.  False when not connected. */
static bool stop_begin(struct agent *a)
{
	if (!agent_mqtt_connected(a->mqtt))
		return false;
	agent_events_flush(a, true);
	publish_presence(a, false);
	return true;
}

int agent_stop(struct agent *a, int timeout_ms)
{
	int rc = 0;
	LOG_ENTER(a);

	if (stop_begin(a)) {
		rc = agent_mqtt_flush(a->mqtt, timeout_ms);
		fl_debug("offline presence %s",
			 rc ? "not acknowledged" : "acknowledged");
	}
	agent_mqtt_disconnect(a->mqtt);
	fl_debug("disconnected");
	LOG_LEAVE();
	return rc;
}

/* ------------------------------------------------------------------ */
/* Driven from an event loop (fleet-sim)                              */
/* ------------------------------------------------------------------ */

int agent_poll_fd(const struct agent *a, short *ret_events)
{
	return agent_mqtt_poll_fd(a->mqtt, ret_events);
}

/*
 * The part of agent_step that never blocks: MQTT as far as the socket
 * allows now (commands land in the inbox), the status timer, queued
 * events.  Commands and the features' due work are agent_step's.
 */
/*
 * What never blocks.  Messages in the inbox wait for agent_step (a
 * worker, in fleet-sim), and so do the events' resends meanwhile: one
 * of those messages may be fleetd's ack of the event, and agent_step
 * applies the inbox before it flushes.  In fleet-sim a device waits
 * for a worker up to a minute at 10,000 devices, and resent finals
 * made up 15 % of fleetd's events.
 */
void agent_service(struct agent *a, short revents, bool may_connect)
{
	LOG_ENTER(a);
	agent_mqtt_service(a->mqtt, revents, may_connect);
	agent_services(a);
	if (agent_mqtt_connected(a->mqtt) && fl_now_ms() >= a->next_status_ms)
		agent_publish_status(a);
	if (!a->n_inbox)
		agent_events_flush(a, false);
	LOG_LEAVE();
}

bool agent_work_due(const struct agent *a)
{
	if (a->n_inbox)
		return true;
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i]->due &&
		    a->features[i]->due(&a->host, a->fstate[i]))
			return true;
	return false;
}

enum agent_link agent_link(const struct agent *a)
{
	if (agent_mqtt_connected(a->mqtt))
		return AGENT_LINK_UP;
	if (agent_mqtt_connecting(a->mqtt))
		return AGENT_LINK_CONNECTING;
	return agent_mqtt_connect_due(a->mqtt) ? AGENT_LINK_DUE
					       : AGENT_LINK_DOWN;
}

void agent_flap(struct agent *a)
{
	LOG_ENTER(a);
	if (agent_mqtt_connected(a->mqtt))
		fl_info("dropping the connection (sim: network flap)");
	agent_mqtt_drop(a->mqtt);
	LOG_LEAVE();
}

bool agent_stop_begin(struct agent *a)
{
	bool rc;
	LOG_ENTER(a);

	rc = stop_begin(a);
	LOG_LEAVE();
	return rc;
}

bool agent_stop_flushed(const struct agent *a)
{
	return !agent_mqtt_connected(a->mqtt) ||
	       agent_mqtt_inflight(a->mqtt) == 0;
}

void agent_stop_finish(struct agent *a)
{
	LOG_ENTER(a);
	agent_mqtt_disconnect_now(a->mqtt);
	fl_debug("disconnected");
	LOG_LEAVE();
}

bool agent_reboot_requested(const struct agent *a)
{
	return a->reboot_requested;
}

bool agent_online(const struct agent *a)
{
	return agent_mqtt_connected(a->mqtt);
}

const struct fl_pki_cert_info *agent_cert(const struct agent *a)
{
	return &a->cert;
}

uint64_t agent_seq(const struct agent *a)
{
	return a->seq;
}

void *agent_feature_state(const struct agent *a, const struct agent_feature *f)
{
	for (size_t i = 0; i < a->n_features; i++)
		if (a->features[i] == f)
			return a->fstate[i];
	return NULL;
}

/* ------------------------------------------------------------------ */
/* fleet-agent status                                                 */
/* ------------------------------------------------------------------ */

/* Final events fleetd has not confirmed yet (null: unreadable file). */
static int events_status(const struct agent_config *cfg,
			 const struct fl_pki_cert_info *cert, json_t *j,
			 struct fl_error *err)
{
	char *path = fl_path_join(cfg->state_dir, AGENT_EVQ_FILE);
	struct agent_evq *q = NULL;

	json_object_set_new(
	    j, "unconfirmed_events",
	    agent_evq_open(path, 1000, &q, NULL) == 0
		? json_integer((json_int_t)agent_evq_unconfirmed(q))
		: json_null());
	agent_evq_free(q);
	free(path);
	return 0;
}

/* The host's own event queue, as a table entry for its status only. */
const struct agent_feature agent_feature_events = {
    .name = "events",
    .status = events_status,
};

int agent_status_json(const struct agent_config *cfg, json_t **ret,
		      struct fl_error *err)
{
	struct fl_pki_cert_info info;
	struct agent a = {0};
	json_t *j = NULL;
	int rc;

	rc = agent_identity_check(cfg->state_dir, cfg->id, &info, err);
	if (rc)
		return rc;
	rc = init_fields(&a, cfg, err);
	if (!rc)
		rc = seq_load(&a, err);
	if (!rc)
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", cfg->id,
			      "state_dir", cfg->state_dir, "server_url",
			      cfg->server_url, "mqtt_url", cfg->mqtt_url,
			      "cert_serial", info.serial, "seq",
			      (json_int_t)a.seq);
	for (size_t i = 0; !rc && i < agent_n_features; i++)
		if (agent_features[i]->status)
			rc = agent_features[i]->status(cfg, &info, j, err);
	if (rc)
		json_decref(j);
	else
		*ret = j;
	release_fields(&a);
	return rc;
}

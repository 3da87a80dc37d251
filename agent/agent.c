/* SPDX-License-Identifier: MIT */
/*
 * The agent core: start-up (recovery, identity, command log, seq), the
 * MQTT callbacks (presence, subscription, inbox), the step loop,
 * events and command dispatch, and the clean stop.  Rotation and
 * renewal live in rotate.c.
 */
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
#include "util.h"
#include "validate.h"

#define SEQ_MAX (UINT64_C(1) << 53) /* exact in JSON numbers */
#define STOP_TIMEOUT_MS 3000
#define REBOOT_CONNECT_MS 5000 /* wait for the broker before a reboot */

uint32_t agent_rand32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms() * 2654435761u;
	return r;
}

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
		fl_warn("%s: %s", a->cfg->id, err.msg);
	free(text);
}

static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static void publish_presence(struct agent *a, bool online)
{
	char ts[21];
	json_t *j;

	now_text(ts);
	j = json_pack("{s:b, s:s, s:s, s:o}", "online", online, "ts", ts,
		      "agent", FLEET_VERSION, "firmware",
		      str_or_null(agent_ota_firmware(a->ota)));
	publish_json(a, a->t_presence, j, 1, true);
	json_decref(j);
}

void agent_publish_status(struct agent *a)
{
	char ts[21], expires[21];
	json_t *j;

	now_text(ts);
	fl_time_rfc3339(a->cert.not_after, expires);
	j = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s, s:o}", "ts", ts,
		      "firmware", str_or_null(agent_ota_firmware(a->ota)),
		      "slot", str_or_null(agent_ota_slot(a->ota)), "health",
		      str_or_null(agent_ota_health(a->ota)), "cert_serial",
		      a->cert.serial, "cert_expires", expires, "job",
		      agent_ota_job_brief(a->ota));
	publish_json(a, a->t_status, j, 1, false);
	json_decref(j);
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
	long long seq = (long long)json_integer_value(json_object_get(ev, "seq"));

	if (again)
		fl_debug("%s: event %lld again (not confirmed yet): %s %s",
			 a->cfg->id, seq, type, state);
	else
		fl_info("%s: event %lld: %s %s", a->cfg->id, seq, type, state);
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
		fl_error("%s: %s", a->cfg->id, err.msg);
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

	if (agent_mqtt_connected(a->mqtt)) {
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
		fl_warn("%s: event %llu: %s", a->cfg->id,
			(unsigned long long)seq, kerr.msg);
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

void agent_cmd_complete(struct agent *a, const char *cmd_id,
			const char *type, const char *state,
			const char *stage, const char *reason,
			const json_t *fields)
{
	struct fl_error err = {0};
	json_t *extra = fields ? json_deep_copy(fields) : json_object();
	json_t *ev = NULL;

	if (reason)
		fl_warn("%s: command %s (%s) %s at %s: %s", a->cfg->id,
			cmd_id ? cmd_id : "-", type, state,
			stage ? stage : "-", reason);
	if (stage)
		json_object_set_new(extra, "stage", json_string(stage));
	if (reason)
		json_object_set_new(extra, "reason", json_string(reason));
	if (agent_publish_event(a, cmd_id, type, state, extra, &ev, &err) ||
	    (cmd_id && agent_cmd_log_finish(a->cmds, cmd_id, ev, &err)))
		fl_error("%s: command %s: %s", a->cfg->id,
			 cmd_id ? cmd_id : "-", err.msg);
	json_decref(ev);
	json_decref(extra);
}

/* ------------------------------------------------------------------ */
/* Commands                                                           */
/* ------------------------------------------------------------------ */

/* Run a new command through its handler and report the outcome. */
static void dispatch(struct agent *a, const struct agent_cmd *cmd)
{
	const struct agent_cmd_handler *h = agent_cmd_find(cmd->type);
	struct agent_cmd_outcome out = {.fields = json_object()};
	struct fl_error err = {0};
	int rc;

	if (agent_cmd_log_begin(a->cmds, cmd->id, cmd->type, &err)) {
		fl_error("%s: command %s: %s", a->cfg->id, cmd->id, err.msg);
		goto out;
	}
	fl_info("%s: command %s: %s", a->cfg->id, cmd->id, cmd->type);
	if (!h) {
		agent_cmd_complete(a, cmd->id, cmd->type, "failed", "dispatch",
				   "unknown command type", NULL);
		goto out;
	}
	rc = h->run(a, cmd, &out, &err);
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
 * fleetd's "ack" {"seq", "job", "state"} (docs/protocol.md): not a
 * command (never logged, never answered); it confirms the matching
 * final job event, and one for anything else is ignored.
 */
static void handle_ack(struct agent *a, const struct agent_cmd *cmd)
{
	struct fl_error err = {0};
	const char *job = NULL;
	int64_t seq = 0;
	int rc;

	rc = fl_json_int(cmd->args, "seq", 1, (int64_t)SEQ_MAX, &seq, &err);
	if (!rc)
		rc = fl_json_str(cmd->args, "job", AGENT_JOB_ID_MAX, &job,
				 &err);
	if (!rc && !fl_valid_label(job))
		rc = fl_fail(&err, FL_EPARSE, "bad 'job'");
	if (rc) {
		fl_warn("%s: dropped a bad ack %s: %s", a->cfg->id, cmd->id,
			err.msg);
		return;
	}
	rc = agent_evq_ack(a->evq, job, (uint64_t)seq, &err);
	if (rc == FL_ENOTFOUND)
		fl_debug("%s: ack for event %lld of %s matches nothing; "
			 "ignored",
			 a->cfg->id, (long long)seq, job);
	else if (rc)
		fl_warn("%s: ack for event %lld: %s", a->cfg->id,
			(long long)seq, err.msg);
	else
		fl_info("%s: event %lld of %s confirmed by fleetd", a->cfg->id,
			(long long)seq, job);
}

/* A payload from fleet/ID/cmd: drop bad ones, answer repeats. */
static void handle_command(struct agent *a, const char *payload, size_t len)
{
	struct agent_cmd cmd = {0};
	struct fl_error err = {0};
	enum agent_cmd_state st;
	const json_t *ev;

	if (agent_cmd_parse(payload, len, &cmd, &err)) {
		fl_warn("%s: dropped a bad command: %s", a->cfg->id, err.msg);
		return;
	}
	if (fl_streq(cmd.type, AGENT_ACK_TYPE))
		handle_ack(a, &cmd);
	else if (agent_cmd_log_get(a->cmds, cmd.id, &st, &ev) == 0) {
		fl_info("%s: command %s seen before%s", a->cfg->id, cmd.id,
			st == AGENT_CMD_DONE ? ": repeating its outcome" : "");
		if (st == AGENT_CMD_DONE)
			publish_json(a, a->t_events, ev, 1, false);
	} else {
		dispatch(a, &cmd);
	}
	agent_cmd_release(&cmd);
}

bool agent_inbox_cancels(const struct agent *a, const char *job)
{
	bool found = false;

	for (size_t i = 0; i < a->n_inbox && !found; i++) {
		struct agent_cmd cmd = {0};

		if (agent_cmd_parse(a->inbox[i].payload, a->inbox[i].len, &cmd,
				    NULL) == 0)
			found = fl_streq(cmd.type, "cancel") &&
				fl_streq(json_string_value(
						 json_object_get(cmd.args, "job")),
					 job);
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
		handle_command(a, msgs[i].payload, msgs[i].len);
		free(msgs[i].payload);
	}
}

/* Finish commands that a restart interrupted (not a pending rotation,
 * not the running update or rollback). */
static void fail_interrupted(struct agent *a)
{
	const char *id, *type;
	size_t it = 0;
	char **ids = NULL, **types = NULL;
	size_t n = 0;

	while ((id = agent_cmd_log_next_running(a->cmds, &it, &type))) {
		if ((a->confirm_pending && fl_streq(id, a->confirm_cmd)) ||
		    agent_ota_owns_cmd(a->ota, id))
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

static void on_connect(void *user, bool session_present)
{
	struct agent *a = user;
	struct fl_error err = {0};

	publish_presence(a, true);
	if (agent_mqtt_subscribe(a->mqtt, a->t_cmd, 2, &err))
		fl_warn("%s: %s", a->cfg->id, err.msg);
	agent_publish_status(a);
	agent_ota_on_connect(a);
	agent_evq_on_connect(a->evq);
	agent_events_flush(a, false);
}

static void on_message(void *user, const char *t, const void *payload,
		       size_t len)
{
	struct agent *a = user;
	struct agent_inbox_msg *m;

	if (!fl_streq(t, a->t_cmd)) {
		fl_debug("%s: ignored a message on '%.80s'", a->cfg->id, t);
		return;
	}
	if (a->n_inbox == AGENT_INBOX_MAX) {
		fl_warn("%s: too many queued commands; dropped one",
			a->cfg->id);
		return;
	}
	m = &a->inbox[a->n_inbox++];
	m->payload = fl_xmalloc(len + 1);
	memcpy(m->payload, payload, len);
	m->payload[len] = '\0';
	m->len = len;
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
	agent_identity_paths(cfg->state_dir, false, &a->cur);
	agent_identity_paths(cfg->state_dir, true, &a->staged);
	a->http = (struct agent_http_target){
	    .server_url = cfg->server_url,
	    .ca_file = cfg->ca_file,
	    .timeout_ms = cfg->http_timeout_s * 1000,
	};
	a->seq_path = fl_path_join(cfg->state_dir, AGENT_SEQ_FILE);
	a->confirm_path = fl_path_join(cfg->state_dir, AGENT_CONFIRM_FILE);
	a->confirm_backoff = (struct agent_backoff){5000, 600000, 0};
	a->renew_backoff = (struct agent_backoff){10000, 3600000, 0};
	rc = fl_topic_build(p, cfg->id, FL_TOPIC_PRESENCE, NULL,
			    &a->t_presence, err);
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
	free(a->confirm_path);
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
		fl_error("%s: %s; moved to '%s'", a->cfg->id, err->msg, aside);
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
		fl_info("%s: finished an interrupted identity swap",
			a->cfg->id);
	if (!rc)
		rc = agent_identity_check(dir, a->cfg->id, &a->cert, err);
	if (!rc)
		rc = agent_cmd_log_open(log_path, AGENT_CMD_LOG_DEFAULT,
					&a->cmds, err);
	if (!rc)
		rc = seq_load(a, err);
	if (!rc)
		rc = agent_confirm_load(a, err);
	if (!rc)
		rc = open_evq(a, err);
	free(log_path);
	return rc;
}

/* Updates: a bootloader that cannot be read disables them (logged),
 * the agent still runs for everything else. */
static void open_ota(struct agent *a)
{
	struct fl_error err = {0};

	if (agent_ota_new(a, &a->ota, &err))
		fl_error("%s: updates are disabled: %s", a->cfg->id, err.msg);
}

int agent_new(const struct agent_config *cfg, struct agent **ret,
	      struct fl_error *err)
{
	struct agent *a = fl_xcalloc(1, sizeof(*a));
	int rc;

	rc = init_fields(a, cfg, err);
	if (!rc)
		rc = open_state(a, err);
	if (!rc)
		rc = make_mqtt(a, err);
	if (rc) {
		agent_free(a);
		return rc;
	}
	open_ota(a);
	agent_schedule_renewal(a);
	agent_ota_reconcile(a);
	fail_interrupted(a);
	*ret = a;
	return 0;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	agent_ota_free(a->ota);
	agent_mqtt_free(a->mqtt);
	agent_cmd_log_free(a->cmds);
	agent_evq_free(a->evq);
	for (size_t i = 0; i < a->n_inbox; i++)
		free(a->inbox[i].payload);
	release_fields(a);
	free(a);
}

void agent_step(struct agent *a, int timeout_ms,
		const volatile sig_atomic_t *stop)
{
	a->stop = stop;
	agent_mqtt_step(a->mqtt, timeout_ms);
	if (a->n_inbox)
		drain_inbox(a);
	if (agent_mqtt_connected(a->mqtt) && fl_now_ms() >= a->next_status_ms)
		agent_publish_status(a);
	agent_events_flush(a, false);
	agent_rotate_tick(a);
	agent_ota_tick(a);
}

int agent_run(struct agent *a, const volatile sig_atomic_t *stop,
	      struct fl_error *err)
{
	fl_info("%s: running (broker %s:%d, server %s)", a->cfg->id,
		a->cfg->mqtt_host, a->cfg->mqtt_port, a->cfg->server_url);
	while (!*stop && !agent_ota_reboot_requested(a->ota))
		agent_step(a, 200, stop);
	/* before a reboot, let the events of the job get out */
	for (int64_t end = fl_now_ms() + REBOOT_CONNECT_MS;
	     !*stop && agent_ota_reboot_requested(a->ota) &&
	     !agent_mqtt_connected(a->mqtt) && fl_now_ms() < end;)
		agent_step(a, 100, stop);
	fl_info("%s: stopping%s", a->cfg->id,
		agent_ota_reboot_requested(a->ota) ? " to reboot" : "");
	agent_stop(a, STOP_TIMEOUT_MS);
	return 0;
}

int agent_stop(struct agent *a, int timeout_ms)
{
	int rc = 0;

	if (agent_mqtt_connected(a->mqtt)) {
		agent_events_flush(a, true);
		publish_presence(a, false);
		rc = agent_mqtt_flush(a->mqtt, timeout_ms);
		fl_debug("%s: offline presence %s", a->cfg->id,
			 rc ? "not acknowledged" : "acknowledged");
	}
	agent_mqtt_disconnect(a->mqtt);
	fl_debug("%s: disconnected", a->cfg->id);
	return rc;
}

bool agent_reboot_requested(const struct agent *a)
{
	return agent_ota_reboot_requested(a->ota);
}

bool agent_online(const struct agent *a)
{
	return agent_mqtt_connected(a->mqtt);
}

const struct fl_pki_cert_info *agent_cert(const struct agent *a)
{
	return &a->cert;
}

time_t agent_renew_at(const struct agent *a)
{
	return a->renew_at;
}

void agent_renew_soon(struct agent *a)
{
	a->renew_at = time(NULL);
	a->renew_next_ms = 0;
}

uint64_t agent_seq(const struct agent *a)
{
	return a->seq;
}

/* ------------------------------------------------------------------ */
/* fleet-agent status                                                 */
/* ------------------------------------------------------------------ */

static void add_time(json_t *j, const char *key, time_t t)
{
	char buf[21];

	fl_time_rfc3339(t, buf);
	json_object_set_new(j, key, json_string(buf));
}

/* Final events fleetd has not confirmed yet (null: unreadable file). */
static void unconfirmed_status(const struct agent_config *cfg, json_t *j)
{
	char *path = fl_path_join(cfg->state_dir, AGENT_EVQ_FILE);
	struct agent_evq *q = NULL;

	json_object_set_new(j, "unconfirmed_events",
			    agent_evq_open(path, 1000, &q, NULL) == 0
				    ? json_integer((json_int_t)
							   agent_evq_unconfirmed(q))
				    : json_null());
	agent_evq_free(q);
	free(path);
}

int agent_status_json(const struct agent_config *cfg, json_t **ret,
		      struct fl_error *err)
{
	struct fl_pki_cert_info info;
	struct agent a = {0};
	json_t *j, *confirm = NULL;
	int rc;

	rc = agent_identity_check(cfg->state_dir, cfg->id, &info, err);
	if (rc)
		return rc;
	rc = init_fields(&a, cfg, err);
	if (!rc)
		rc = seq_load(&a, err);
	if (!rc && fl_path_exists(a.confirm_path))
		rc = fl_json_load_file(a.confirm_path, 4096, &confirm, err);
	if (!rc) {
		j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:o}", "id",
			      cfg->id, "state_dir", cfg->state_dir,
			      "server_url", cfg->server_url, "mqtt_url",
			      cfg->mqtt_url, "cert_serial", info.serial, "seq",
			      (json_int_t)a.seq, "confirm_pending",
			      confirm ? json_incref(confirm) : json_null());
		add_time(j, "cert_not_before", info.not_before);
		add_time(j, "cert_expires", info.not_after);
		add_time(j, "renew_from",
			 agent_identity_renew_at(info.not_before,
						 info.not_after, 0));
		add_time(j, "renew_until",
			 agent_identity_renew_at(info.not_before,
						 info.not_after, UINT32_MAX));
		unconfirmed_status(cfg, j);
		rc = agent_ota_status(cfg, j, err);
		if (rc)
			json_decref(j);
		else
			*ret = j;
	}
	json_decref(confirm);
	release_fields(&a);
	return rc;
}

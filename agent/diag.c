/* SPDX-License-Identifier: MIT */
/*
 * Diagnostics, the feature (diag.h): a request on PREFIX/ID/diag/req
 * is checked on the agent's thread, in this order:
 *
 *   response topic PREFIX/ID/diag/resp/REQ and correlation data
 *                      anything else is dropped (no reply possible)
 *   rate               over [diag] rate_per_min: "busy"
 *   payload            over 4 KiB "too-large", malformed "bad-args"
 *   check              unknown "unknown-check", too many args "bad-args"
 *   concurrency        [diag] concurrent running: "busy"
 *
 * then runs on a thread of its own (fleet-agent) or in the tick
 * (fleet-sim, agent_feature_diag_sim: its worker pool), and the reply
 * goes out from the agent's thread (the service hook; the worker wakes
 * the loop).  A check that has not answered 2 s after its deadline is
 * answered "timeout" by the loop; its thread's late result is dropped.
 * Busy replies are capped too (rate_per_min a minute): a flood past
 * that is dropped, so that the device's own publishing stays within
 * fleetd's per-device limits.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_modbus.h"
#include "diag_internal.h"
#include "feature.h"
#include "json.h"
#include "log.h"
#include "util.h"

#define DIAG_LEAF "diag/req"
#define DIAG_SLOTS_MAX 16 /* [diag] concurrent's cap */
#define DIAG_LATE_MS 2000 /* the loop answers "timeout" this late */
#define WINDOW_MS 60000	  /* the rate's window */
#define WARNS_PER_MIN 10  /* warnings of dropped requests */
#define REQUESTER_CHARS                                                        \
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"

/* ------------------------------------------------------------------ */
/* Requests and replies                                               */
/* ------------------------------------------------------------------ */

static const char *const code_names[] = {
    "ok", "unknown-check", "bad-args", "busy", "timeout", "failed", "too-large",
};

const char *diag_code_name(enum diag_code code)
{
	return (unsigned)code < FL_ARRAY_SIZE(code_names) ? code_names[code]
							  : "failed";
}

enum diag_code diag_code_of(int rc)
{
	switch (rc) {
	case 0:
		return DIAG_OK;
	case FL_EINVAL:
		return DIAG_BAD_ARGS;
	case FL_ETIMEOUT:
		return DIAG_TIMEOUT;
	case FL_ELIMIT:
		return DIAG_TOO_LARGE;
	default:
		return DIAG_FAILED;
	}
}

json_t *diag_json_text(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	char *copy;

	if (j)
		return j;
	/* not UTF-8: keep the ASCII, mark the rest */
	copy = fl_xstrndup(s, len);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	j = json_stringn(copy, len);
	free(copy);
	return j;
}

static int parse_args(const json_t *a, struct diag_req *r, struct fl_error *err)
{
	size_t i, total = 0;
	json_t *v;

	if (!a || json_is_null(a))
		return 0;
	if (!json_is_array(a))
		return fl_fail(err, FL_EPARSE, "'args' must be an array");
	if (json_array_size(a) > DIAG_ARGS_MAX)
		return fl_fail(err, FL_EPARSE, "more than %d arguments",
			       DIAG_ARGS_MAX);
	json_array_foreach(a, i, v)
	{
		size_t n = json_string_length(v);

		if (!json_is_string(v) || strlen(json_string_value(v)) != n)
			return fl_fail(err, FL_EPARSE,
				       "argument %zu is not a string", i + 1);
		total += n;
		if (n > DIAG_ARG_MAX || total > DIAG_ARGS_TOTAL_MAX)
			return fl_fail(err, FL_EPARSE,
				       "arguments over %d bytes each or %d in "
				       "all",
				       DIAG_ARG_MAX, DIAG_ARGS_TOTAL_MAX);
		r->args[r->n_args++] = fl_xstrdup(json_string_value(v));
	}
	return 0;
}

static int parse_timeout(const json_t *j, struct diag_req *r,
			 struct fl_error *err)
{
	const json_t *t = json_object_get(j, "timeout_s");
	int64_t v;

	if (!t || json_is_null(t))
		return 0;
	if (fl_json_int(j, "timeout_s", 1, DIAG_TIMEOUT_MAX_S, &v, err))
		return FL_EPARSE;
	r->timeout_s = (int)v;
	return 0;
}

int diag_req_parse(const void *payload, size_t len, struct diag_req *ret,
		   enum diag_code *ret_code, struct fl_error *err)
{
	const char *check = NULL;
	json_t *j = NULL;
	int rc;

	memset(ret, 0, sizeof(*ret));
	ret->timeout_s = DIAG_TIMEOUT_DEFAULT_S;
	*ret_code = DIAG_TOO_LARGE;
	if (len > DIAG_REQ_MAX)
		return fl_fail(err, FL_ELIMIT,
			       "request of %zu bytes (at most %d)", len,
			       DIAG_REQ_MAX);
	*ret_code = DIAG_BAD_ARGS;
	rc = fl_json_parse(payload, len, DIAG_REQ_MAX, &j, err);
	if (!rc)
		rc = fl_json_require_object(j, "a request", err);
	if (!rc && (fl_json_str(j, "check", 0, &check, err) ||
		    !agent_diag_name_valid(check)))
		rc = fl_fail(err, FL_EPARSE,
			     "'check' must be 1 to %d of a-z 0-9 _ -",
			     AGENT_DIAG_NAME_MAX);
	if (!rc) {
		fl_strlcpy(ret->check, check, sizeof(ret->check));
		rc = parse_args(json_object_get(j, "args"), ret, err);
	}
	if (!rc)
		rc = parse_timeout(j, ret, err);
	json_decref(j);
	if (rc)
		return FL_EPARSE;
	*ret_code = DIAG_OK;
	return 0;
}

void diag_req_release(struct diag_req *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_args; i++)
		free(r->args[i]);
	memset(r, 0, sizeof(*r));
}

bool diag_response_topic_ok(const char *prefix, const char *id,
			    const char *topic, const char **ret_requester)
{
	static const char leaf[] = "/diag/resp/";
	size_t lp = strlen(prefix), li = strlen(id), n;
	const char *req;

	if (!topic || strncmp(topic, prefix, lp) != 0 || topic[lp] != '/' ||
	    strncmp(topic + lp + 1, id, li) != 0 ||
	    strncmp(topic + lp + 1 + li, leaf, strlen(leaf)) != 0)
		return false;
	req = topic + lp + 1 + li + strlen(leaf);
	n = strlen(req);
	if (n == 0 || n > DIAG_REQUESTER_MAX ||
	    strspn(req, REQUESTER_CHARS) != n)
		return false;
	if (ret_requester)
		*ret_requester = req;
	return true;
}

char *diag_reply(const char *check, enum diag_code code, const char *msg,
		 const json_t *result, int64_t elapsed_ms, size_t *ret_len)
{
	json_t *j =
	    json_pack("{s:s, s:b, s:I}", "check", check ? check : "", "ok",
		      code == DIAG_OK, "elapsed_ms", (json_int_t)elapsed_ms);
	char *text, why[96];
	size_t len;

	if (code != DIAG_OK) {
		msg = msg && *msg ? msg : diag_code_name(code);
		json_object_set_new(j, "error",
				    diag_json_text(msg, strlen(msg)));
		json_object_set_new(j, "code",
				    json_string(diag_code_name(code)));
	}
	if (result)
		json_object_set(j, "result", (json_t *)result);
	text = fl_json_dumps(j);
	json_decref(j);
	len = strlen(text);
	if (len > DIAG_REPLY_MAX) {
		snprintf(why, sizeof(why),
			 "the reply of %zu bytes is over the %d-byte cap", len,
			 DIAG_REPLY_MAX);
		free(text);
		return diag_reply(check, DIAG_TOO_LARGE, why, NULL, elapsed_ms,
				  ret_len);
	}
	*ret_len = len;
	return text;
}

/* ------------------------------------------------------------------ */
/* The rate: events in the last minute                                */
/* ------------------------------------------------------------------ */

struct window {
	int64_t *at; /* a ring of the last @cap events' times */
	size_t cap, n, next;
};

static void window_init(struct window *w, size_t cap)
{
	w->at = fl_xcalloc(cap, sizeof(*w->at));
	w->cap = cap;
}

/* Fewer than @cap events in the last minute: count this one, true. */
static bool window_take(struct window *w, int64_t now)
{
	if (w->n == w->cap && now - w->at[w->next] < WINDOW_MS)
		return false;
	if (w->n < w->cap)
		w->n++;
	w->at[w->next] = now;
	w->next = (w->next + 1) % w->cap;
	return true;
}

/* ------------------------------------------------------------------ */
/* The feature's state                                                */
/* ------------------------------------------------------------------ */

enum job_state { JOB_FREE, JOB_QUEUED, JOB_RUNNING, JOB_DONE };

struct diag;

struct diag_job {
	struct diag *d;
	enum job_state state; /* under d->lock while a thread runs */
	struct diag_req req;
	struct diag_run run;
	const struct diag_check *check; /* NULL: an operator check */
	char *topic;			/* the reply's */
	struct agent_msg_props corr;	/* its correlation data */
	int64_t start_ms;
	pthread_t thread;
	bool answered; /* the loop answered "timeout" (agent's thread) */
	char *reply;   /* JOB_DONE */
	size_t reply_len;
};

struct diag {
	struct agent_host *h;
	bool sim; /* agent_feature_diag_sim: run in the tick */
	int64_t up_since_ms;
	pthread_mutex_t lock;
	volatile int cancel; /* the agent goes: checks give up */
	size_t n_slots;
	struct diag_job jobs[DIAG_SLOTS_MAX];
	struct window rate, busy, warns;
};

static enum job_state job_state(struct diag_job *job)
{
	enum job_state st;

	pthread_mutex_lock(&job->d->lock);
	st = job->state;
	pthread_mutex_unlock(&job->d->lock);
	return st;
}

static void job_release(struct diag_job *job)
{
	diag_req_release(&job->req);
	agent_msg_props_release(&job->corr);
	free(job->topic);
	free(job->reply);
	*job = (struct diag_job){.d = job->d};
}

/* ------------------------------------------------------------------ */
/* Replies                                                            */
/* ------------------------------------------------------------------ */

static void publish(struct diag *d, const char *topic,
		    const struct agent_msg_props *corr, const char *text,
		    size_t len)
{
	struct agent_msg_props p = {.correlation = corr->correlation,
				    .correlation_len = corr->correlation_len};
	struct fl_error err = {0};

	if (agent_host_publish(d->h, topic, text, len, 1, false, &p, &err))
		fl_warn("diag: reply to '%s': %s", topic, err.msg);
}

/* An answer without running anything (refusals, busy, late). */
static void answer(struct diag *d, const char *topic,
		   const struct agent_msg_props *corr, const char *check,
		   enum diag_code code, const char *msg, int64_t elapsed_ms)
{
	size_t len;
	char *text = diag_reply(check, code, msg, NULL, elapsed_ms, &len);

	fl_info("diag %s from %s: %s: %s", *check ? check : "-",
		strrchr(topic, '/') + 1, diag_code_name(code), msg);
	publish(d, topic, corr, text, len);
	free(text);
}

/* Run @job's check here and keep its reply. */
static void run_job(struct diag_job *job)
{
	struct fl_error err = {0};
	json_t *result = NULL;
	int64_t ms;
	int rc;

	rc = job->check ? job->check->run(&job->run, &result, &err)
			: diag_exec_run(&job->run, &result, &err);
	if (!rc && !result)
		result = json_object();
	ms = fl_now_ms() - job->start_ms;
	job->reply =
	    diag_reply(job->req.check, diag_code_of(rc), rc ? err.msg : NULL,
		       result, ms, &job->reply_len);
	if (rc)
		fl_info("diag %s: %s after %lld ms: %s", job->req.check,
			diag_code_name(diag_code_of(rc)), (long long)ms,
			err.msg);
	else
		fl_info("diag %s: ok in %lld ms", job->req.check,
			(long long)ms);
	json_decref(result);
}

static void *worker(void *arg)
{
	struct diag_job *job = arg;
	struct diag *d = job->d;
	const char *prev = fl_log_context_set(job->run.cfg->id);

	run_job(job);
	pthread_mutex_lock(&d->lock);
	job->state = JOB_DONE;
	pthread_mutex_unlock(&d->lock);
	agent_host_wake(d->h);
	fl_log_context_set(prev);
	return NULL;
}

/* The reply of a finished job (unless the loop answered already). */
static void deliver(struct diag *d, struct diag_job *job)
{
	if (!job->answered)
		publish(d, job->topic, &job->corr, job->reply, job->reply_len);
	job_release(job);
}

/*
 * On the agent's thread, every turn: replies of finished checks out,
 * threads joined; a check past its deadline answered "timeout" (its
 * thread's result is dropped when it comes).
 */
static void service(struct agent_host *h, void *state)
{
	struct diag *d = state;
	int64_t now = agent_host_now_ms(h);
	char msg[64];

	for (size_t i = 0; i < d->n_slots; i++) {
		struct diag_job *job = &d->jobs[i];
		enum job_state st = job_state(job);

		if (st == JOB_DONE) {
			pthread_join(job->thread, NULL);
			deliver(d, job);
		} else if (st == JOB_RUNNING && !job->answered &&
			   now > job->run.deadline_ms + DIAG_LATE_MS) {
			snprintf(msg, sizeof(msg), "no result within %d s",
				 job->req.timeout_s);
			answer(d, job->topic, &job->corr, job->req.check,
			       DIAG_TIMEOUT, msg, now - job->start_ms);
			job->answered = true;
		}
	}
}

/* fleet-sim: queued checks run here, one after the other. */
static bool sim_due(const struct agent_host *h, const void *state)
{
	const struct diag *d = state;

	for (size_t i = 0; i < d->n_slots; i++)
		if (d->jobs[i].state == JOB_QUEUED)
			return true;
	return false;
}

static void sim_tick(struct agent_host *h, void *state)
{
	struct diag *d = state;

	for (size_t i = 0; i < d->n_slots; i++)
		if (d->jobs[i].state == JOB_QUEUED) {
			run_job(&d->jobs[i]);
			deliver(d, &d->jobs[i]);
		}
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

/* The check @req names, its arguments counted: 0 and *@ret (NULL for
 * an operator check), or a refusal's code and message. */
static enum diag_code find_check(const struct diag *d,
				 const struct diag_req *req,
				 const struct diag_check **ret, char *msg,
				 size_t size)
{
	const struct agent_config *cfg = agent_host_config(d->h);
	const struct diag_check *b = diag_builtin(req->check, d->sim);

	*ret = b;
	if (b && req->n_args > b->max_args) {
		snprintf(msg, size, "'%s' takes at most %u argument%s",
			 req->check, b->max_args, b->max_args == 1 ? "" : "s");
		return DIAG_BAD_ARGS;
	}
	if (b || (!d->sim && diag_exec_exists(cfg, req->check)))
		return DIAG_OK;
	snprintf(msg, size, "unknown check '%s'", req->check);
	return DIAG_UNKNOWN_CHECK;
}

static struct diag_job *free_slot(struct diag *d)
{
	for (size_t i = 0; i < d->n_slots; i++)
		if (job_state(&d->jobs[i]) == JOB_FREE)
			return &d->jobs[i];
	return NULL;
}

/* Take @req into @job and start it (a thread, or the sim's queue). */
static int start(struct diag *d, struct diag_job *job, struct diag_req *req,
		 const struct diag_check *check, const char *topic,
		 const struct agent_msg_props *props)
{
	const struct agent_config *cfg = agent_host_config(d->h);
	int64_t now = agent_host_now_ms(d->h);
	int64_t limit = cfg->diag_max_timeout_s;

	job->req = *req;
	memset(req, 0, sizeof(*req));
	if (job->req.timeout_s > limit)
		job->req.timeout_s = (int)limit;
	job->check = check;
	job->topic = fl_xstrdup(topic);
	agent_msg_props_copy(&job->corr, props);
	job->start_ms = now;
	job->run = (struct diag_run){
	    .cfg = cfg,
	    .req = &job->req,
	    .cert = *agent_host_cert(d->h),
	    .deadline_ms = now + job->req.timeout_s * 1000LL,
	    .up_since_ms = d->up_since_ms,
	    .sim = d->sim,
	    .cancel = &d->cancel,
	    .modbus = agent_host_feature(d->h, &agent_feature_modbus),
	};
	if (d->sim) {
		job->state = JOB_QUEUED;
		return 0;
	}
	job->state = JOB_RUNNING;
	if (pthread_create(&job->thread, NULL, worker, job) == 0)
		return 0;
	job_release(job);
	return FL_ERR;
}

/* A request we can answer: refuse it, or start its check. */
static void take(struct diag *d, const char *topic,
		 const struct agent_msg_props *props, const void *payload,
		 size_t len)
{
	const struct diag_check *check = NULL;
	struct diag_req req = {0};
	struct fl_error err = {0};
	struct diag_job *job;
	enum diag_code code;
	char msg[128];

	if (diag_req_parse(payload, len, &req, &code, &err)) {
		answer(d, topic, props, req.check, code, err.msg, 0);
	} else if (agent_host_live(d->h)->diag_off) {
		answer(d, topic, props, req.check, DIAG_FAILED,
		       "diagnostics are off on this device (shadow key "
		       "'diagnostics')",
		       0);
	} else if ((code = find_check(d, &req, &check, msg, sizeof(msg)))) {
		answer(d, topic, props, req.check, code, msg, 0);
	} else if (!(job = free_slot(d))) {
		snprintf(msg, sizeof(msg), "%zu checks are running",
			 d->n_slots);
		answer(d, topic, props, req.check, DIAG_BUSY, msg, 0);
	} else if (start(d, job, &req, check, topic, props)) {
		answer(d, topic, props, "", DIAG_FAILED,
		       "cannot start a thread", 0);
	} else {
		fl_debug("diag %s from %s: started", job->req.check,
			 strrchr(topic, '/') + 1);
	}
	diag_req_release(&req);
}

static void on_message(struct agent_host *h, void *state, const char *leaf,
		       const void *payload, size_t len,
		       const struct agent_msg_props *props)
{
	const struct agent_config *cfg = agent_host_config(h);
	struct diag *d = state;
	int64_t now = agent_host_now_ms(h);
	char msg[96];

	if (!diag_response_topic_ok(cfg->topic_prefix, cfg->id,
				    props->response_topic, NULL) ||
	    props->correlation_len == 0 ||
	    props->correlation_len > DIAG_CORRELATION_MAX) {
		if (window_take(&d->warns, now))
			fl_warn("diag: dropped a request without a valid "
				"response topic and correlation data "
				"(response topic '%.80s')",
				props->response_topic ? props->response_topic
						      : "");
		return;
	}
	if (window_take(&d->rate, now)) {
		take(d, props->response_topic, props, payload, len);
		return;
	}
	if (!window_take(&d->busy, now)) {
		fl_debug("diag: dropped a request over the rate");
		return;
	}
	snprintf(msg, sizeof(msg), "over %llu requests a minute",
		 (unsigned long long)cfg->diag_rate_per_min);
	answer(d, props->response_topic, props, "", DIAG_BUSY, msg, 0);
}

/* ------------------------------------------------------------------ */
/* The feature                                                        */
/* ------------------------------------------------------------------ */

static struct diag *diag_new(struct agent_host *h, bool sim)
{
	const struct agent_config *cfg = agent_host_config(h);
	struct diag *d = fl_xcalloc(1, sizeof(*d));

	d->h = h;
	d->sim = sim;
	d->up_since_ms = agent_host_now_ms(h);
	pthread_mutex_init(&d->lock, NULL);
	d->n_slots = cfg->diag_concurrent < DIAG_SLOTS_MAX
			 ? (size_t)cfg->diag_concurrent
			 : DIAG_SLOTS_MAX;
	for (size_t i = 0; i < DIAG_SLOTS_MAX; i++)
		d->jobs[i].d = d;
	window_init(&d->rate, cfg->diag_rate_per_min);
	window_init(&d->busy, cfg->diag_rate_per_min);
	window_init(&d->warns, WARNS_PER_MIN);
	return d;
}

static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	*ret_state = diag_new(h, false);
	return agent_host_wake_init(h, err);
}

static int init_sim(struct agent_host *h, void **ret_state,
		    struct fl_error *err)
{
	*ret_state = diag_new(h, true);
	return 0;
}

/* Checks still running are told to give up and waited for. */
static void diag_free(void *state)
{
	struct diag *d = state;

	if (!d)
		return;
	__atomic_store_n(&d->cancel, 1, __ATOMIC_SEQ_CST);
	for (size_t i = 0; i < d->n_slots; i++) {
		if (job_state(&d->jobs[i]) >= JOB_RUNNING)
			pthread_join(d->jobs[i].thread, NULL);
		job_release(&d->jobs[i]);
	}
	pthread_mutex_destroy(&d->lock);
	free(d->rate.at);
	free(d->busy.at);
	free(d->warns.at);
	free(d);
}

const struct agent_feature agent_feature_diag = {
    .name = "diag",
    .init = init,
    .topics = {DIAG_LEAF, NULL},
    .on_message = on_message,
    .service = service,
    .free = diag_free,
};

const struct agent_feature agent_feature_diag_sim = {
    .name = "diag",
    .init = init_sim,
    .topics = {DIAG_LEAF, NULL},
    .on_message = on_message,
    .tick = sim_tick,
    .due = sim_due,
    .free = diag_free,
};

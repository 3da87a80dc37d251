/* SPDX-License-Identifier: MIT */
/*
 * The telemetry feature (telemetry.h, docs/telemetry.md): a sample every
 * interval, local values from the socket and the drop dir, batches into
 * the outbox, and the outbox's delivery: while connected, the oldest
 * messages go out (a few in flight) and each is deleted at its PUBACK;
 * a new connection starts again from the oldest.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "feature.h"
#include "fsutil.h"
#include "log.h"
#include "outbox.h"
#include "proto.h"
#include "agent_telemetry.h"
#include "agent_modbus.h"
#include "rules_agent.h"
#include "util.h"

#define BUILTIN_MAX 32	   /* built-in points a sample */
#define REFUSED_LOG_MAX 16 /* refusal lines logged an interval */
#define SIM_POINTS_MAX 640 /* synthetic points queued a turn */

struct tlm {
	struct agent_outbox *ob; /* NULL: the outbox could not open */
	char *topic, *db_path, *sock_path, *drop_dir;
	int sock;		      /* -1: none */
	struct agent_rules_rt *rules; /* NULL: fleet-sim */
	struct agent_tlm_cpu cpu;
	int64_t next_ms; /* monotonic: the next sample */
	struct agent_tlm_point local[AGENT_TLM_LOCAL_POINTS_MAX];
	size_t n_local, n_names; /* local points and their names */
	int64_t rl_sec;		 /* datagram rate limit: this second, */
	unsigned rl_n;		 /* datagrams read in it */
	unsigned refused_logged;
	double sim_acc; /* fleet-sim: points owed */
	int64_t sim_last_ms;
	int64_t sim_ts; /* the newest sample time given */
	uint64_t sim_n;
};

/* ------------------------------------------------------------------ */
/* Local values                                                       */
/* ------------------------------------------------------------------ */

static void refused(struct tlm *t, const char *src, const char *line,
		    size_t len, const char *why)
{
	if (t->refused_logged++ < REFUSED_LOG_MAX)
		fl_warn("telemetry: refused from %s: '%.*s': %s", src,
			(int)(len > 80 ? 80 : len), line, why);
	else if (t->refused_logged == REFUSED_LOG_MAX + 1)
		fl_warn("telemetry: more refused lines this interval not "
			"logged");
}

/* Room for a point named @metric: the caps on points and names;
 * *@ret_new tells whether the name is a new one this interval. */
static const char *local_room(const struct tlm *t, const char *metric,
			      bool *ret_new)
{
	if (t->n_local >= AGENT_TLM_LOCAL_POINTS_MAX)
		return "too many local points this interval";
	*ret_new = true;
	for (size_t i = 0; i < t->n_local && *ret_new; i++)
		*ret_new = strcmp(t->local[i].metric, metric) != 0;
	return *ret_new && t->n_names >= AGENT_TLM_LOCAL_NAMES_MAX
		   ? "too many local names this interval"
		   : NULL;
}

static void local_line(struct tlm *t, const char *src, const char *line,
		       size_t len)
{
	struct fl_error err = {0};
	struct agent_tlm_point p;
	const char *why;
	bool new_name = false;

	if (agent_tlm_parse_line(line, len, agent_tlm_now_ms(), &p, &err)) {
		refused(t, src, line, len, err.msg);
		return;
	}
	if ((why = local_room(t, p.metric, &new_name))) {
		refused(t, src, line, len, why);
		return;
	}
	t->local[t->n_local++] = p;
	t->n_names += new_name;
	if (t->rules)
		agent_rules_rt_feed(t->rules, &p, 1, fl_now_ms());
}

/* Lines of one datagram or file (empty lines skipped). */
static void local_text(struct tlm *t, const char *src, const char *buf,
		       size_t len)
{
	const char *p = buf, *end = buf + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *e = nl ? nl : end;

		if (e > p)
			local_line(t, src, p, (size_t)(e - p));
		p = e + 1;
	}
}

/* Datagrams waiting on the socket, at most AGENT_TLM_DGRAMS_PER_S a
 * second (the rest wait in the kernel, whose queue is bounded). */
static void read_socket(struct tlm *t, int64_t now_ms)
{
	char buf[AGENT_TLM_DGRAM_MAX + 1];
	ssize_t n;

	if (t->sock < 0)
		return;
	if (now_ms / 1000 != t->rl_sec) {
		t->rl_sec = now_ms / 1000;
		t->rl_n = 0;
	}
	while (t->rl_n < AGENT_TLM_DGRAMS_PER_S &&
	       (n = recv(t->sock, buf, sizeof(buf),
			 MSG_DONTWAIT | MSG_TRUNC)) >= 0) {
		t->rl_n++;
		if ((size_t)n > AGENT_TLM_DGRAM_MAX)
			refused(t, "socket", "", 0, "datagram over 4 KiB");
		else
			local_text(t, "socket", buf, (size_t)n);
	}
}

/* One *.tlm file of the drop dir: read (4 KiB at most) and removed. */
static void read_drop_file(struct tlm *t, const char *name)
{
	char *path = fl_path_join(t->drop_dir, name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	char buf[AGENT_TLM_DGRAM_MAX + 1];
	struct stat sb;
	ssize_t n = -1;

	if (fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode))
		n = read(fd, buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	if (n < 0 || (size_t)n > AGENT_TLM_DGRAM_MAX)
		refused(t, name, "", 0,
			n < 0 ? "not a readable file" : "file over 4 KiB");
	else
		local_text(t, name, buf, (size_t)n);
	if (unlink(path) != 0 && errno != ENOENT)
		fl_warn("telemetry: cannot remove %s: %s", path,
			strerror(errno));
	free(path);
}

static void read_drop_dir(struct tlm *t)
{
	DIR *d = t->drop_dir ? opendir(t->drop_dir) : NULL;
	struct dirent *e;
	int files = 0;

	while (d && files < AGENT_TLM_FILES_MAX && (e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (n > 4 && e->d_name[0] != '.' &&
		    strcmp(e->d_name + n - 4, ".tlm") == 0) {
			read_drop_file(t, e->d_name);
			files++;
		}
	}
	if (d)
		closedir(d);
}

/* ------------------------------------------------------------------ */
/* Sampling and queueing                                              */
/* ------------------------------------------------------------------ */

/* Queue @n points as @kind messages, AGENT_TLM_BATCH a message. */
static void queue_kind(struct tlm *t, enum agent_outbox_kind kind,
		       const struct agent_tlm_point *p, size_t n)
{
	for (size_t i = 0; i < n && t->ob; i += AGENT_TLM_BATCH) {
		size_t k = n - i < AGENT_TLM_BATCH ? n - i : AGENT_TLM_BATCH;
		char *body = agent_tlm_points_json(p + i, k);
		struct fl_error err = {0};
		uint64_t seq = 0;
		int rc = agent_outbox_put(t->ob, kind, body, strlen(body),
					  (unsigned)k, agent_tlm_now_ms(), &seq,
					  &err);

		if (rc)
			fl_warn("telemetry: %s", err.msg);
		else
			fl_debug("telemetry: message %llu queued, %zu points",
				 (unsigned long long)seq, k);
		free(body);
	}
}

static void queue_points(struct tlm *t, const struct agent_tlm_point *p,
			 size_t n)
{
	queue_kind(t, AGENT_OUTBOX_TELEMETRY, p, n);
}

void agent_tlm_submit(struct agent_host *h, const struct agent_tlm_point *p,
		      size_t n, bool event)
{
	struct tlm *t = agent_host_feature(h, &agent_feature_telemetry);

	if (!t)
		return;
	if (t->rules) /* Modbus values (and their SOURCE.up) meet the rules */
		agent_rules_rt_feed(t->rules, p, n, agent_host_now_ms(h));
	queue_kind(t, event ? AGENT_OUTBOX_EVENT : AGENT_OUTBOX_TELEMETRY, p,
		   n);
}

/* The rules' write actions: a Modbus write (agent_modbus.h), through the
 * Modbus feature as it is when the action runs. */
static int modbus_writer(void *ctx, const char *source, const char *name,
			 double value, struct fl_error *err)
{
	struct agent_modbus *mb =
	    agent_host_feature(ctx, &agent_feature_modbus);

	if (!mb)
		return fl_fail(err, FL_ENOTFOUND, "no Modbus sources");
	return agent_modbus_write(mb, source, name, value, err);
}

static void sample(struct agent_host *h, struct tlm *t)
{
	struct agent_tlm_point all[BUILTIN_MAX + AGENT_TLM_LOCAL_POINTS_MAX];
	size_t n;

	read_drop_dir(t);
	n = agent_tlm_sample("", agent_host_state_dir(h), &t->cpu,
			     agent_outbox_depth(t->ob), agent_tlm_now_ms(), all,
			     BUILTIN_MAX);
	if (t->rules)
		agent_rules_rt_feed(t->rules, all, n, agent_host_now_ms(h));
	memcpy(all + n, t->local, t->n_local * sizeof(t->local[0]));
	n += t->n_local;
	t->n_local = 0;
	t->n_names = 0;
	t->refused_logged = 0;
	queue_points(t, all, n);
}

/* The interval in seconds: the shadow's, else agent.conf's (0: off). */
static int64_t interval_s(struct agent_host *h)
{
	int64_t live = agent_host_live(h)->telemetry_interval_s;

	return live > 0 ? live : agent_host_config(h)->telemetry_interval_s;
}

/*
 * A sample time for the next of @owed points due by @now at @rate: spread
 * back over the time they fell due, and always after the previous one, so
 * no two samples of a device share a millisecond (a database keeps one
 * point per device, metric and time).
 */
static int64_t sim_ts(struct tlm *t, int64_t now, double rate, double owed)
{
	int64_t ts = now - (int64_t)((owed - 1.0) * 1000.0 / rate);

	if (ts <= t->sim_ts)
		ts = t->sim_ts + 1;
	return t->sim_ts = ts;
}

/* fleet-sim: the points owed at the configured rate since last time. */
static void sim_points(struct agent_host *h, struct tlm *t, int64_t now)
{
	struct agent_tlm_point p[AGENT_TLM_BATCH];
	double rate = agent_host_config(h)->sim_telemetry_rate;
	int64_t wall = agent_tlm_now_ms();
	size_t n = 0;

	if (t->sim_last_ms)
		t->sim_acc += rate * (double)(now - t->sim_last_ms) / 1000.0;
	t->sim_last_ms = now;
	if (t->sim_acc > SIM_POINTS_MAX)
		t->sim_acc = SIM_POINTS_MAX;
	for (; t->sim_acc >= 1.0; t->sim_acc -= 1.0) {
		snprintf(p[n].metric, sizeof(p[n].metric), "sim.value");
		p[n].value = (double)(++t->sim_n % 1000);
		p[n++].ts_ms = sim_ts(t, wall, rate, floor(t->sim_acc));
		if (n == AGENT_TLM_BATCH) {
			queue_points(t, p, n);
			n = 0;
		}
	}
	if (n)
		queue_points(t, p, n);
}

/* ------------------------------------------------------------------ */
/* Delivery                                                           */
/* ------------------------------------------------------------------ */

/* Publish message @m; false when it has to wait. */
static bool send_one(struct agent_host *h, struct tlm *t,
		     const struct agent_outbox_msg *m)
{
	struct fl_error err = {0};
	char *msg = NULL;
	int mid = 0;

	if (agent_tlm_message(m->seq, m->body, m->len, m->dropped, &msg,
			      &err)) {
		fl_warn("outbox: %s; deleted", err.msg);
		agent_outbox_discard(t->ob, m->seq, NULL);
		return true;
	}
	if (agent_host_publish_mid(h, t->topic, msg, strlen(msg), &mid, &err)) {
		fl_debug("telemetry: %s", err.msg);
		agent_outbox_unsent(t->ob, m->seq);
		free(msg);
		return false;
	}
	agent_outbox_sent(t->ob, m->seq, mid);
	free(msg);
	return true;
}

static void flush(struct agent_host *h, struct tlm *t)
{
	struct agent_outbox_msg m = {0};
	struct fl_error err = {0};
	int rc = FL_ENOTFOUND;

	while (t->ob && agent_host_online(h) &&
	       !(rc = agent_outbox_next(t->ob, agent_tlm_now_ms(), &m, &err))) {
		bool sent = send_one(h, t, &m);

		agent_outbox_msg_release(&m);
		if (!sent)
			return;
	}
	if (t->ob && agent_host_online(h) && rc != FL_ENOTFOUND)
		fl_warn("%s", err.msg);
}

/* ------------------------------------------------------------------ */
/* Hooks                                                              */
/* ------------------------------------------------------------------ */

static void service(struct agent_host *h, void *state)
{
	struct tlm *t = state;
	int64_t now = agent_host_now_ms(h), iv = interval_s(h) * 1000;

	if (t->rules) {
		agent_rules_rt_use(t->rules, agent_host_live(h)->rules_text,
				   now);
		agent_rules_rt_tick(t->rules, now);
	}
	if (!t->ob) /* telemetry off: init said why */
		return;
	if (agent_host_config(h)->sim_telemetry) {
		sim_points(h, t, now);
	} else if (iv > 0) {
		read_socket(t, now);
		if (!t->next_ms || t->next_ms > now + iv)
			t->next_ms = now + iv;
		if (now >= t->next_ms) {
			sample(h, t);
			t->next_ms = now + iv;
		}
	}
	flush(h, t);
}

static void on_connect(struct agent_host *h, void *state)
{
	struct tlm *t = state;

	if (t->ob)
		agent_outbox_rewind(t->ob);
}

static void on_puback(struct agent_host *h, void *state, int mid, bool ok)
{
	struct tlm *t = state;
	struct fl_error err = {0};
	uint64_t seq = 0;
	int rc =
	    t->ob ? agent_outbox_acked(t->ob, mid, &seq, &err) : FL_ENOTFOUND;

	if (rc && rc != FL_ENOTFOUND)
		fl_warn("%s", err.msg);
	else if (!rc && !ok)
		fl_warn("telemetry: the broker refused message %llu; deleted",
			(unsigned long long)seq);
}

/* Open the outbox; a damaged or oversized one is moved aside first. */
static void open_outbox(struct agent_host *h, struct tlm *t)
{
	const struct agent_config *c = agent_host_config(h);
	struct agent_outbox_limits lim = {
	    c->outbox_max_messages, c->outbox_max_bytes, c->outbox_max_age_s};
	struct fl_error err = {0};
	int rc = agent_outbox_open(t->db_path, &lim, &t->ob, &err);

	if (t->db_path && (rc == FL_EPARSE || rc == FL_ELIMIT)) {
		char *aside = fl_xasprintf("%s.bad", t->db_path);

		fl_warn("%s; moved aside to %s, starting an empty outbox",
			err.msg, aside);
		rename(t->db_path, aside);
		for (size_t i = 0; i < 2; i++) {
			char *side = fl_xasprintf("%s%s", t->db_path,
						  i ? "-shm" : "-wal");

			unlink(side);
			free(side);
		}
		free(aside);
		memset(&err, 0, sizeof(err));
		rc = agent_outbox_open(t->db_path, &lim, &t->ob, &err);
	}
	if (rc)
		fl_error("telemetry off: %s", err.msg);
}

/* The local socket, mode 0660 (a stale one from a crash replaced). */
static void open_socket(struct tlm *t)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(t->sock_path) >= sizeof(sa.sun_path)) {
		fl_warn("telemetry: %s: path too long for a socket",
			t->sock_path);
		return;
	}
	memcpy(sa.sun_path, t->sock_path, strlen(t->sock_path) + 1);
	unlink(t->sock_path);
	t->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->sock < 0 || bind(t->sock, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(t->sock_path, 0660)) {
		fl_warn("telemetry: socket %s: %s", t->sock_path,
			strerror(errno));
		if (t->sock >= 0)
			close(t->sock);
		t->sock = -1;
	}
}

static int init(struct agent_host *h, void **ret_state, struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(h);
	const char *dir = agent_host_state_dir(h);
	struct tlm *t = fl_xcalloc(1, sizeof(*t));
	int rc = fl_topic_build(c->topic_prefix, c->id, FL_TOPIC_TELEMETRY,
				NULL, &t->topic, err);

	t->sock = -1;
	*ret_state = t;
	if (rc)
		return rc;
	if (c->sim_telemetry) {
		open_outbox(h, t);
		return 0;
	}
	t->db_path = fl_path_join(dir, AGENT_OUTBOX_FILE);
	t->sock_path = fl_path_join(dir, AGENT_TLM_SOCK);
	t->drop_dir = fl_path_join(dir, AGENT_TLM_DROP_DIR);
	open_outbox(h, t);
	t->rules = agent_rules_rt_new(c, t->ob, agent_host_now_ms(h));
	agent_rules_rt_set_writer(t->rules, modbus_writer, h);
	agent_rules_rt_use(t->rules, agent_host_live(h)->rules_text,
			   agent_host_now_ms(h));
	open_socket(t);
	if (mkdir(t->drop_dir, 0770) != 0 && errno != EEXIST)
		fl_warn("telemetry: %s: %s", t->drop_dir, strerror(errno));
	agent_tlm_sample("", dir, &t->cpu, 0, 0, NULL, 0); /* cpu baseline */
	return 0;
}

static void report(void *state, json_t *into)
{
	struct tlm *t = state;

	if (t->rules)
		agent_rules_rt_report(t->rules, into);
}

static void tlm_free(void *state)
{
	struct tlm *t = state;

	if (!t)
		return;
	if (t->sock >= 0) {
		close(t->sock);
		unlink(t->sock_path);
	}
	agent_rules_rt_free(t->rules);
	agent_outbox_free(t->ob);
	free(t->topic);
	free(t->db_path);
	free(t->sock_path);
	free(t->drop_dir);
	free(t);
}

const struct agent_feature agent_feature_telemetry = {
    .name = "telemetry",
    .init = init,
    .on_connect = on_connect,
    .service = service,
    .on_puback = on_puback,
    .report = report,
    .free = tlm_free,
};

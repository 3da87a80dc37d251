/* SPDX-License-Identifier: MIT */
/*
 * fleet-sim's event loop (sim.h): one epoll set over every running
 * device's MQTT socket, a sweep that gives each device's timers a turn
 * about once a second, a cap on TLS handshakes in flight, the hand-over
 * of devices with blocking work to the worker pool, the counts in
 * DIR/stats.json, and the clean stop of every device at once.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include <jansson.h>

#include "boot.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "ota.h"
#include "sim_internal.h"
#include "util.h"

#define SWEEP_PERIOD_MS 1000 /* every device's timers, about */
#define TURN_MS 50	     /* longest epoll wait */
#define CRASH_OFF_MS 300     /* off time of a power cut */
#define STATS_EVERY_MS 1000
#define SUMMARY_EVERY_MS 10000
#define STOP_WORK_MS 30000 /* running tasks to end at a stop */
#define STOP_FLUSH_MS 3000 /* offline presence acknowledged */
#define FDS_PER_WORKER 16  /* a download, a health check, files */
#define FDS_SPARE 64
#define EVENTS_MAX 256		 /* epoll events per turn */
#define EV_POOL UINT64_MAX	 /* epoll data of the pool's eventfd */
#define EV_WAKE (UINT64_MAX - 1) /* and of the wake-up */

/* ------------------------------------------------------------------ */
/* Connection counts and the connect cap                              */
/* ------------------------------------------------------------------ */

/* The loop's view of @d's connection becomes @l. */
static void set_link(struct sim *s, struct sim_dev *d, enum agent_link l)
{
	if (d->link == AGENT_LINK_CONNECTING)
		s->connecting--;
	d->link = l;
	if (l == AGENT_LINK_CONNECTING && ++s->connecting > s->connecting_peak)
		s->connecting_peak = s->connecting;
}

static void enqueue(struct sim *s, enum sim_queue q, struct sim_dev *d)
{
	struct sim_fifo *f = &s->q[q];

	if (d->in_q[q])
		return;
	d->in_q[q] = true;
	d->q_next[q] = NULL;
	if (f->tail)
		f->tail->q_next[q] = d;
	else
		f->head = d;
	f->tail = d;
	f->n++;
}

static struct sim_dev *dequeue(struct sim *s, enum sim_queue q)
{
	struct sim_fifo *f = &s->q[q];
	struct sim_dev *d = f->head;

	if (d) {
		f->head = d->q_next[q];
		if (!f->head)
			f->tail = NULL;
		d->in_q[q] = false;
		f->n--;
	}
	return d;
}

/* ------------------------------------------------------------------ */
/* The epoll set                                                      */
/* ------------------------------------------------------------------ */

/*
 * A registration carries the device's index and a generation, so that
 * an event of a registration we have since dropped (the kernel keeps
 * one while a forked child still holds the socket) is recognised and
 * ignored.  Sockets come and go inside libmosquitto and on workers, so
 * the loop re-reads a device's socket after each of its turns
 * (poll_sync) and forgets it before a worker takes the device
 * (poll_forget).  A DEL by a number that no longer names our socket
 * fails harmlessly: registrations are keyed by the open socket, not
 * the number.
 */
static uint64_t reg_data(const struct sim *s, const struct sim_dev *d)
{
	return (uint64_t)(d - s->devs) << 32 | d->reg_gen;
}

static uint32_t epoll_events(short ev)
{
	return EPOLLIN | (ev & POLLOUT ? EPOLLOUT : 0);
}

static short poll_events(uint32_t ev)
{
	return (short)((ev & EPOLLIN ? POLLIN : 0) |
		       (ev & EPOLLOUT ? POLLOUT : 0) |
		       (ev & EPOLLERR ? POLLERR : 0) |
		       (ev & EPOLLHUP ? POLLHUP : 0));
}

static void poll_forget(struct sim *s, struct sim_dev *d)
{
	if (d->reg_fd < 0)
		return;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, d->reg_fd, NULL);
	d->reg_fd = -1;
}

static void poll_sync(struct sim *s, struct sim_dev *d)
{
	struct epoll_event e;
	short ev = 0;
	int fd = d->state == SD_ON && d->a ? agent_poll_fd(d->a, &ev) : -1;

	if (d->reg_fd >= 0 && fd != d->reg_fd)
		poll_forget(s, d);
	if (fd < 0 || (fd == d->reg_fd && ev == d->reg_ev))
		return;
	if (fd == d->reg_fd) { /* only the events changed */
		e = (struct epoll_event){epoll_events(ev),
					 {.u64 = reg_data(s, d)}};
		if (!epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &e)) {
			d->reg_ev = ev;
			return;
		}
	}
	d->reg_gen++;
	e = (struct epoll_event){epoll_events(ev), {.u64 = reg_data(s, d)}};
	if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &e) < 0 &&
	    (errno != EEXIST ||
	     epoll_ctl(s->epfd, EPOLL_CTL_MOD, fd, &e) < 0)) {
		fl_warn("epoll: %s", strerror(errno));
		d->reg_fd = -1;
		return;
	}
	d->reg_fd = fd;
	d->reg_ev = ev;
}

/* agent_service for @d (connecting only under the cap; a device held
 * back waits in the connect queue, served as handshakes end). */
static void dev_service(struct sim *s, struct sim_dev *d, short revents)
{
	bool may = s->connecting < s->o.connecting;
	enum agent_link l;

	agent_service(d->a, revents, may);
	l = agent_link(d->a);
	set_link(s, d, l);
	if (l == AGENT_LINK_DUE && !may)
		enqueue(s, SQ_CONNECT, d);
	poll_sync(s, d);
}

/* ------------------------------------------------------------------ */
/* Devices: hand-over to the workers and back                         */
/* ------------------------------------------------------------------ */

static void submit(struct sim *s, struct sim_dev *d, enum sim_task_kind k)
{
	poll_forget(s, d);
	d->busy_online = d->link == AGENT_LINK_UP;
	set_link(s, d, AGENT_LINK_DOWN); /* the worker's, meanwhile */
	d->kind = k;
	d->state = SD_BUSY;
	sim_pool_submit(s->pool, &d->task);
}

/* Count the outcome of a job that became final in this run; note the
 * firmware. */
static void note_job(struct sim *s, struct sim_dev *d)
{
	struct agent_ota_brief b;

	sim_dev_brief(d, &b);
	fl_strlcpy(d->fw, b.firmware ? b.firmware : "", sizeof(d->fw));
	if (!d->job_seen) { /* at the first start: what was, is not news */
		d->job_seen = true;
		if (b.job_id && b.job_final)
			fl_strlcpy(d->counted_job, b.job_id,
				   sizeof(d->counted_job));
		return;
	}
	if (!b.job_id || !b.job_final || fl_streq(b.job_id, d->counted_job))
		return;
	fl_strlcpy(d->counted_job, b.job_id, sizeof(d->counted_job));
	if (b.job_state == AGENT_JOB_SUCCEEDED)
		s->c.succeeded++;
	else if (b.job_state == AGENT_JOB_ROLLED_BACK)
		s->c.rolled_back++;
	else
		s->c.failed++;
}

/* A power cut (--crash-in-soak): no goodbye, the broker publishes the
 * will; the device is off for a moment, then the bootloader counts. */
static void dev_crash(struct sim *s, struct sim_dev *d)
{
	const char *prev = fl_log_context_set(d->id);

	fl_info("sim: power cut during the trial boot (--crash-in-soak)");
	fl_log_context_set(prev);
	poll_forget(s, d);
	set_link(s, d, AGENT_LINK_DOWN);
	agent_free(d->a);
	d->a = NULL;
	d->crash_ms = 0;
	d->state = SD_OFF;
	d->wake_ms = fl_now_ms() + CRASH_OFF_MS;
	s->c.crashes++;
}

/* @d has work for a worker now.  A device whose connection is being
 * set up (or waits for its turn under the cap) finishes that on the
 * loop first: the work after a power-on (the health check) wants the
 * broker, and a worker would only wait for it. */
static bool work_ready(const struct sim *s, const struct sim_dev *d)
{
	return d->state == SD_ON && !s->stopping && !d->crash_ms &&
	       d->link != AGENT_LINK_CONNECTING && !d->in_q[SQ_CONNECT] &&
	       agent_work_due(d->a);
}

/* After a turn of @d on the loop: its crash, or its place in the queue
 * for a worker. */
static void dev_check(struct sim *s, struct sim_dev *d)
{
	if (d->state != SD_ON || s->stopping)
		return;
	if (d->crash_ms && fl_now_ms() >= d->crash_ms) {
		dev_crash(s, d);
		return;
	}
	if (work_ready(s, d))
		enqueue(s, SQ_WORK, d);
}

/* A worker handed @d back. */
static void dev_returned(struct sim *s, struct sim_dev *d)
{
	const struct sim_knobs *k = &s->o.knobs;

	bool enrol_failed = d->kind == TK_START && !d->enrolled_now;

	s->c.power_ons += d->boots;
	d->boots = 0;
	if (d->enrolled_now) {
		s->c.enrolled++;
		d->enrolled = true;
		d->enrolled_now = false;
	}
	if (d->rc) {
		fl_log_context_set(d->id);
		fl_error("%s: %s", enrol_failed ? "enrolment" : "start",
			 d->err.msg);
		fl_log_context_set(NULL);
		if (enrol_failed)
			s->c.enrol_failed++;
		else
			s->c.start_failed++;
		agent_free(d->a);
		d->a = NULL;
		d->state = SD_DEAD;
		return;
	}
	if (!d->a) { /* skipped: the run is stopping */
		d->state = d->kind == TK_START ? SD_NEW : SD_OFF;
		return;
	}
	d->state = SD_ON;
	d->link = AGENT_LINK_DOWN;
	note_job(s, d);
	if (k->flap_every_ms && !d->flap_ms)
		d->flap_ms =
		    fl_now_ms() + sim_spread(sim_hash(k->seed, "flap", d->id),
					     k->flap_every_ms);
	dev_service(s, d, 0);
	dev_check(s, d);
}

static void collect(struct sim *s)
{
	struct sim_task *t;

	while ((t = sim_pool_done(s->pool)))
		dev_returned(s, (struct sim_dev *)t);
}

/* Serve the connect queue while the cap allows. */
static void drain_connects(struct sim *s)
{
	struct sim_dev *d;

	while (s->connecting < s->o.connecting && (d = dequeue(s, SQ_CONNECT)))
		if (d->state == SD_ON && agent_link(d->a) == AGENT_LINK_DUE) {
			dev_service(s, d, 0);
			dev_check(s, d);
		}
}

/*
 * Hand devices with work to the workers while one is free.  A device
 * waits for a worker here, on the loop, with its MQTT session serviced
 * (keepalive, acknowledgements), not in the pool's queue, where nothing
 * would service it: a wave of thousands of devices queued for 16
 * workers outlived its keepalive there, and the broker cut the
 * sessions.  What changed while it waited is checked again.
 */
static void drain_work(struct sim *s)
{
	struct sim_dev *d;

	while (sim_pool_pending(s->pool) < s->o.workers &&
	       (d = dequeue(s, SQ_WORK)))
		if (work_ready(s, d))
			submit(s, d, TK_STEP);
}

/* ------------------------------------------------------------------ */
/* The turn                                                           */
/* ------------------------------------------------------------------ */

/* One device's timers (about once a second). */
static void dev_tick(struct sim *s, struct sim_dev *d, int64_t now)
{
	switch (d->state) {
	case SD_NEW:
		if (!s->stopping)
			submit(s, d, TK_START);
		break;
	case SD_OFF:
		if (!s->stopping && now >= d->wake_ms)
			submit(s, d, TK_POWER_ON);
		break;
	case SD_ON:
		if (d->flap_ms && now >= d->flap_ms && !s->stopping) {
			if (d->link == AGENT_LINK_UP)
				s->c.flaps++;
			agent_flap(d->a);
			d->flap_ms = now + sim_spread(sim_hash(s->o.knobs.seed ^
								   s->c.flaps,
							       "flap", d->id),
						      s->o.knobs.flap_every_ms);
		}
		dev_service(s, d, 0);
		dev_check(s, d);
		break;
	default:
		break;
	}
}

/* The devices whose turn it is: n * elapsed / period of them, round
 * robin, so each comes about once a period whatever n is. */
static void sweep(struct sim *s)
{
	int64_t now = fl_now_ms();
	unsigned k;

	s->sweep_quota +=
	    (double)s->n * (double)(now - s->sweep_ms) / SWEEP_PERIOD_MS;
	s->sweep_ms = now;
	if (s->sweep_quota > s->n)
		s->sweep_quota = s->n;
	k = (unsigned)s->sweep_quota;
	s->sweep_quota -= k;
	for (; k; k--) {
		dev_tick(s, &s->devs[s->sweep_at], now);
		s->sweep_at = (s->sweep_at + 1) % s->n;
	}
}

/* The device an event is for, or NULL (a registration since dropped). */
static struct sim_dev *event_dev(struct sim *s, uint64_t data)
{
	uint64_t i = data >> 32;
	struct sim_dev *d;

	if (i >= s->n)
		return NULL;
	d = &s->devs[i];
	if (d->state != SD_ON || d->reg_fd < 0 || d->reg_gen != (uint32_t)data)
		return NULL;
	return d;
}

/* Wait for events (the pool, the wake-up, the devices' sockets: epoll,
 * so the cost is the number of events, not of devices) and service the
 * devices that have some. */
static void poll_turn(struct sim *s, int timeout_ms)
{
	struct epoll_event ev[EVENTS_MAX];
	int n = epoll_wait(s->epfd, ev, EVENTS_MAX, timeout_ms);
	uint64_t v;

	for (int i = 0; i < n; i++) {
		struct sim_dev *d;

		if (ev[i].data.u64 == EV_POOL)
			continue; /* collect() reads it */
		if (ev[i].data.u64 == EV_WAKE) {
			if (read(s->wake_fd, &v, sizeof(v)) < 0 &&
			    errno != EAGAIN)
				fl_debug("wake-up: %s", strerror(errno));
			continue;
		}
		d = event_dev(s, ev[i].data.u64);
		if (!d)
			continue;
		dev_service(s, d, poll_events(ev[i].events));
		dev_check(s, d);
	}
}

/* ------------------------------------------------------------------ */
/* Counts                                                             */
/* ------------------------------------------------------------------ */

static void count_firmware(json_t *fw, const struct sim_dev *d)
{
	json_t *v;

	if (!*d->fw)
		return;
	v = json_object_get(fw, d->fw);
	json_object_set_new(fw, d->fw,
			    json_integer(v ? json_integer_value(v) + 1 : 1));
}

/* What DIR/stats.json says (docs/sim.md). */
static json_t *stats_json(struct sim *s, bool running)
{
	unsigned st[SD_DEAD + 1] = {0}, online = 0, enrolled = 0;
	json_t *fw = json_object();
	char ts[21];

	for (unsigned i = 0; i < s->n; i++) {
		const struct sim_dev *d = &s->devs[i];

		st[d->state]++;
		enrolled += d->enrolled;
		online += d->state == SD_ON
			      ? d->link == AGENT_LINK_UP
			      : d->state == SD_BUSY && d->busy_online;
		if (d->state == SD_ON || d->state == SD_BUSY)
			count_firmware(fw, d);
	}
	fl_time_rfc3339(time(NULL), ts);
	return json_pack(
	    "{s:s, s:b, s:i, s:I, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i,"
	    " s:o, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:I, s:i, s:i}",
	    "ts", ts, "running", running, "pid", (int)getpid(), "uptime_ms",
	    (json_int_t)(fl_now_ms() - s->started_ms), "devices", (int)s->n,
	    "enrolled", (int)enrolled, "online", (int)online, "connecting",
	    (int)s->connecting, "connecting_peak", (int)s->connecting_peak,
	    "running_devices", (int)st[SD_ON], "busy", (int)st[SD_BUSY], "off",
	    (int)(st[SD_OFF] + st[SD_NEW]), "dead", (int)st[SD_DEAD],
	    "firmware", fw, "jobs", "succeeded", (json_int_t)s->c.succeeded,
	    "failed", (json_int_t)s->c.failed, "rolled-back",
	    (json_int_t)s->c.rolled_back, "enrolled_now",
	    (json_int_t)s->c.enrolled, "enrol_failed",
	    (json_int_t)s->c.enrol_failed, "start_failed",
	    (json_int_t)s->c.start_failed, "power_ons",
	    (json_int_t)s->c.power_ons, "crashes", (json_int_t)s->c.crashes,
	    "flaps", (json_int_t)s->c.flaps, "workers", (int)s->o.workers,
	    "queued", (int)(s->q[SQ_WORK].n + sim_pool_queued(s->pool)));
}

static void write_stats(struct sim *s, bool running, bool summary)
{
	struct fl_error err = {0};
	json_t *j = stats_json(s, running);

	if (fl_json_save_file(j, s->stats_path, 0644, &err))
		fl_warn("%s", err.msg);
	if (summary)
		fl_info("%lld devices: %lld online, %lld busy, %lld off, %lld "
			"failed; jobs: %lld succeeded, %lld failed, %lld "
			"rolled back",
			json_integer_value(json_object_get(j, "devices")),
			json_integer_value(json_object_get(j, "online")),
			json_integer_value(json_object_get(j, "busy")),
			json_integer_value(json_object_get(j, "off")),
			json_integer_value(json_object_get(j, "dead")),
			(long long)s->c.succeeded, (long long)s->c.failed,
			(long long)s->c.rolled_back);
	json_decref(j);
}

static void stats_turn(struct sim *s)
{
	int64_t now = fl_now_ms();
	bool summary = now >= s->next_summary_ms;

	if (now < s->next_stats_ms)
		return;
	s->next_stats_ms = now + STATS_EVERY_MS;
	if (summary)
		s->next_summary_ms = now + SUMMARY_EVERY_MS;
	write_stats(s, true, summary);
}

/* ------------------------------------------------------------------ */
/* Run and stop                                                       */
/* ------------------------------------------------------------------ */

static void turn(struct sim *s)
{
	collect(s);
	drain_connects(s);
	drain_work(s);
	poll_turn(s, TURN_MS);
	collect(s);
	sweep(s);
	drain_work(s);
	stats_turn(s);
}

/* Every running device's offline presence is acknowledged. */
static bool all_flushed(const struct sim *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->devs[i].state == SD_ON &&
		    !agent_stop_flushed(s->devs[i].a))
			return false;
	return true;
}

/*
 * The stop: no new work; running tasks end (they see the stop flag)
 * while the loop keeps everyone's MQTT moving; then every running agent
 * sends its offline presence at once, the loop waits for the broker's
 * acknowledgements, and each disconnects.
 */
static int stop_all(struct sim *s, struct fl_error *err)
{
	int64_t end = fl_now_ms() + STOP_WORK_MS;
	unsigned left;
	int rc = 0;

	s->stopping = true;
	fl_info("stopping %u devices", s->n);
	while ((left = sim_pool_pending(s->pool)) && fl_now_ms() < end)
		turn(s);
	if (left)
		rc = fl_fail(err, FL_ETIMEOUT,
			     "%u devices were still busy after %d s", left,
			     STOP_WORK_MS / 1000);
	for (unsigned i = 0; i < s->n; i++)
		if (s->devs[i].state == SD_ON)
			agent_stop_begin(s->devs[i].a);
	for (end = fl_now_ms() + STOP_FLUSH_MS;
	     !all_flushed(s) && fl_now_ms() < end;)
		poll_turn(s, TURN_MS);
	for (unsigned i = 0; i < s->n; i++) {
		struct sim_dev *d = &s->devs[i];

		if (d->state != SD_ON)
			continue;
		poll_forget(s, d);
		agent_stop_finish(d->a);
		set_link(s, d, AGENT_LINK_DOWN);
		agent_free(d->a);
		d->a = NULL;
		d->state = SD_OFF;
	}
	write_stats(s, false, true);
	return rc;
}

int sim_run(struct sim *s, const volatile sig_atomic_t *stop,
	    struct fl_error *err)
{
	int64_t now = fl_now_ms();

	s->stop = stop;
	s->started_ms = s->sweep_ms = now;
	fl_info("%u devices in '%s', %u workers", s->n, s->o.dir, s->o.workers);
	while (!*stop)
		turn(s);
	return stop_all(s, err);
}

/* ------------------------------------------------------------------ */
/* Set-up                                                             */
/* ------------------------------------------------------------------ */

/* One descriptor per device and a few per worker; the soft limit is
 * raised to the hard one. */
static int raise_nofile(const struct sim_opts *o, struct fl_error *err)
{
	rlim_t need =
	    (rlim_t)o->count + (rlim_t)o->workers * FDS_PER_WORKER + FDS_SPARE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
		return fl_fail_errno(err, FL_ERR, "getrlimit");
	if (rl.rlim_max != RLIM_INFINITY && need > rl.rlim_max)
		return fl_fail(
		    err, FL_ELIMIT,
		    "%u devices need about %llu file descriptors (one "
		    "MQTT socket each, %d per worker, %d spare); the "
		    "hard limit is %llu: raise it (ulimit -Hn, "
		    "systemd LimitNOFILE=) or run fewer devices",
		    o->count, (unsigned long long)need, FDS_PER_WORKER,
		    FDS_SPARE, (unsigned long long)rl.rlim_max);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
			return fl_fail_errno(err, FL_ERR, "setrlimit");
	}
	return 0;
}

static char *dup_opt(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

static void copy_opts(struct sim *s, const struct sim_opts *o)
{
	s->o = *o;
	s->o.dir = fl_xstrdup(o->dir);
	s->o.prefix = fl_xstrdup(o->prefix ? o->prefix : "sim");
	s->o.server_url = dup_opt(o->server_url);
	s->o.ca_file = dup_opt(o->ca_file);
	s->o.token = dup_opt(o->token);
	s->o.image = dup_opt(o->image);
	s->o.stats_file = NULL;
	if (!s->o.bootlimit)
		s->o.bootlimit = 3;
	if (!s->o.workers)
		s->o.workers = SIM_WORKERS_DEFAULT;
	if (!s->o.connecting)
		s->o.connecting = SIM_CONNECTING_DEFAULT;
	s->stats_path = o->stats_file ? fl_xstrdup(o->stats_file)
				      : fl_path_join(o->dir, SIM_STATS_FILE);
}

/* Devices without DIR/ID need what enrolment takes. */
static int check_enrol_opts(struct sim *s, struct fl_error *err)
{
	unsigned todo = 0;

	for (unsigned i = 0; i < s->n; i++)
		todo += s->devs[i].state == SD_NEW;
	if (!todo ||
	    (s->o.server_url && s->o.ca_file && s->o.token && s->o.image))
		return 0;
	return fl_fail(err, FL_EINVAL,
		       "%u of the %u devices are not enrolled yet: that needs "
		       "--server, --ca, a token and --image",
		       todo, s->n);
}

static int open_devices(struct sim *s, struct fl_error *err)
{
	char *lock = fl_path_join(s->o.dir, SIM_LOCK_FILE);
	char last[FL_ID_MAX + 1];
	int rc;

	rc = sim_device_id(s->o.prefix, s->o.count, last, sizeof(last), err);
	if (!rc)
		rc = fl_mkdir_p(s->o.dir, 0755, err);
	if (!rc)
		rc = fl_lock_take(lock, &s->lock_fd, err);
	free(lock);
	if (rc)
		return rc;
	s->n = s->o.count;
	s->devs = fl_xcalloc(s->n, sizeof(*s->devs));
	for (unsigned i = 0; i < s->n; i++) {
		sim_dev_init(s, &s->devs[i], i + 1);
		s->devs[i].reg_fd = -1;
	}
	return check_enrol_opts(s, err);
}

/* The epoll set with the pool's and the wake-up's descriptors. */
static int open_epoll(struct sim *s, struct fl_error *err)
{
	struct epoll_event pool = {EPOLLIN, {.u64 = EV_POOL}};
	struct epoll_event wake = {EPOLLIN, {.u64 = EV_WAKE}};

	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->epfd < 0 ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, sim_pool_fd(s->pool), &pool) ||
	    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->wake_fd, &wake))
		return fl_fail_errno(err, FL_ERR, "epoll");
	return 0;
}

int sim_new(const struct sim_opts *o, struct sim **ret, struct fl_error *err)
{
	struct sim *s;
	int rc;

	if (!o->dir || !*o->dir || o->count < 1 || o->count > SIM_DEVICES_MAX)
		return fl_fail(err, FL_EINVAL,
			       "a directory and 1 to %d devices are needed",
			       SIM_DEVICES_MAX);
	s = fl_xcalloc(1, sizeof(*s));
	s->lock_fd = s->wake_fd = s->epfd = -1;
	copy_opts(s, o);
	sim_dev_features(s);
	rc = open_devices(s, err);
	if (!rc)
		rc = raise_nofile(&s->o, err);
	if (!rc) {
		s->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (s->wake_fd < 0)
			rc = fl_fail_errno(err, FL_ERR, "eventfd");
	}
	if (!rc)
		rc = agent_boot_keep_loaded(err);
	if (!rc)
		rc = sim_pool_new(s->o.workers, &s->pool, err);
	if (!rc)
		rc = open_epoll(s, err);
	if (rc) {
		sim_free(s);
		return rc;
	}
	*ret = s;
	return 0;
}

int sim_wake_fd(const struct sim *s)
{
	return s->wake_fd;
}

void sim_free(struct sim *s)
{
	if (!s)
		return;
	/* a worker still busy after the stop (sim_run said so) keeps
	 * using the simulator: leave it all to the process's exit */
	if (s->pool && sim_pool_pending(s->pool))
		return;
	sim_pool_free(s->pool);
	for (unsigned i = 0; i < s->n; i++)
		sim_dev_release(&s->devs[i]);
	free(s->devs);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->wake_fd >= 0)
		close(s->wake_fd);
	fl_lock_release(s->lock_fd);
	free((char *)s->o.dir);
	free((char *)s->o.prefix);
	free((char *)s->o.server_url);
	free((char *)s->o.ca_file);
	fl_free_secret((char *)s->o.token);
	free((char *)s->o.image);
	free(s->stats_path);
	free(s);
}

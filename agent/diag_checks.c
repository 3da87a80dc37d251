/* SPDX-License-Identifier: MIT */
/*
 * The built-in diagnostic checks (docs/diagnostics.md): ping, sysinfo,
 * net (diag_net.c), slots, logs, cert, config, bundle (diag_bundle.c).
 * Each runs on a check's thread with a snapshot of the agent (struct
 * diag_run) and reads what the device says about itself: /proc, the
 * state dir, the bootloader variables, agent.conf.  Every result is
 * bounded so that the reply fits its 64 KiB.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "agent_modbus.h"
#include "diag_internal.h"
#include "fsutil.h"
#include "log.h"
#include "proc.h"
#include "util.h"

#define PROC_FILE_MAX (256 * 1024) /* bytes read of a /proc file */
#define DISKS_MAX 16		   /* file systems listed */
#define LOG_LINES_DEFAULT 50
#define LOG_LINES_MAX 1000
#define LOG_LINE_MAX 1024	  /* bytes kept of one line */
#define LOG_BYTES_MAX (48 * 1024) /* bytes of lines in a reply */
#define LOG_TAIL_MAX (256 * 1024) /* bytes read from a file's end */
#define REDACTED "(redacted)"

int64_t diag_ms_left(const struct diag_run *r)
{
	int64_t left = r->deadline_ms - fl_now_ms();

	return left > 0 ? left : 0;
}

bool diag_cancelled(const struct diag_run *r)
{
	return __atomic_load_n(r->cancel, __ATOMIC_SEQ_CST) != 0;
}

static json_t *text(const char *s)
{
	return diag_json_text(s, strlen(s));
}

static const char *str_of(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static json_t *time_text(time_t t)
{
	char buf[21];

	fl_time_rfc3339(t, buf);
	return json_string(buf);
}

/* ------------------------------------------------------------------ */
/* ping, cert                                                         */
/* ------------------------------------------------------------------ */

static int check_ping(const struct diag_run *r, json_t **ret,
		      struct fl_error *err)
{
	*ret = json_pack("{s:b, s:o}", "pong", true, "time",
			 time_text(time(NULL)));
	return 0;
}

static int check_cert(const struct diag_run *r, json_t **ret,
		      struct fl_error *err)
{
	const struct fl_pki_cert_info *c = &r->cert;
	time_t now = time(NULL);
	int64_t left = (int64_t)c->not_after - (int64_t)now;

	*ret = json_pack(
	    "{s:s, s:o, s:o, s:o, s:I, s:b, s:s}", "serial", c->serial,
	    "subject", text(c->cn), "not_before", time_text(c->not_before),
	    "not_after", time_text(c->not_after), "days_left",
	    (json_int_t)(left >= 0 ? left / 86400 : -((-left + 86399) / 86400)),
	    "expired", left < 0, "sha256", c->sha256);
	return 0;
}

/* ------------------------------------------------------------------ */
/* sysinfo                                                            */
/* ------------------------------------------------------------------ */

/* The value of line "@key:" of /proc/meminfo text, in kB (-1:
 * absent). */
static json_int_t meminfo(const char *buf, const char *key)
{
	size_t n = strlen(key);
	const char *p = buf;
	long long v;

	while (p) {
		if (strncmp(p, key, n) == 0 && p[n] == ':' &&
		    sscanf(p + n + 1, "%lld", &v) == 1)
			return (json_int_t)v;
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	return -1;
}

static void add_memory(json_t *j)
{
	char *buf = NULL;

	if (fl_read_file("/proc/meminfo", PROC_FILE_MAX, &buf, NULL, NULL))
		return;
	json_object_set_new(j, "mem_total_kb",
			    json_integer(meminfo(buf, "MemTotal")));
	json_object_set_new(j, "mem_avail_kb",
			    json_integer(meminfo(buf, "MemAvailable")));
	free(buf);
}

static void add_load(json_t *j)
{
	double l[3];
	char *buf = NULL;

	if (fl_read_file("/proc/loadavg", PROC_FILE_MAX, &buf, NULL, NULL))
		return;
	if (sscanf(buf, "%lf %lf %lf", &l[0], &l[1], &l[2]) == 3)
		json_object_set_new(j, "load",
				    json_pack("[f, f, f]", l[0], l[1], l[2]));
	free(buf);
}

/* Seconds since the kernel started, or since the agent started on a
 * simulated device. */
static void add_uptime(const struct diag_run *r, json_t *j)
{
	double up;
	char *buf = NULL;

	if (r->sim) {
		json_object_set_new(
		    j, "uptime_s",
		    json_integer((fl_now_ms() - r->up_since_ms) / 1000));
		return;
	}
	if (fl_read_file("/proc/uptime", PROC_FILE_MAX, &buf, NULL, NULL))
		return;
	if (sscanf(buf, "%lf", &up) == 1)
		json_object_set_new(j, "uptime_s",
				    json_integer((json_int_t)up));
	free(buf);
}

static json_t *disk(const char *mount)
{
	struct statvfs s;

	if (statvfs(mount, &s) < 0)
		return NULL;
	return json_pack(
	    "{s:o, s:I, s:I}", "mount", text(mount), "size_kb",
	    (json_int_t)((uint64_t)s.f_blocks * s.f_frsize / 1024), "avail_kb",
	    (json_int_t)((uint64_t)s.f_bavail * s.f_frsize / 1024));
}

static bool listed(const json_t *disks, const char *mount)
{
	for (size_t i = 0; i < json_array_size(disks); i++)
		if (fl_streq(str_of(json_array_get(disks, i), "mount"), mount))
			return true;
	return false;
}

/* "/" and every file system on a block device (/dev/...). */
static json_t *disks(void)
{
	json_t *a = json_array(), *d;
	char *buf = NULL, *line, *save = NULL;
	char dev[256], mnt[256];

	if ((d = disk("/")))
		json_array_append_new(a, d);
	if (fl_read_file("/proc/self/mounts", PROC_FILE_MAX, &buf, NULL, NULL))
		return a;
	for (line = strtok_r(buf, "\n", &save);
	     line && json_array_size(a) < DISKS_MAX;
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%255s %255s", dev, mnt) != 2 ||
		    !fl_startswith(dev, "/dev/") || listed(a, mnt))
			continue;
		if ((d = disk(mnt)))
			json_array_append_new(a, d);
	}
	free(buf);
	return a;
}

static int check_sysinfo(const struct diag_run *r, json_t **ret,
			 struct fl_error *err)
{
	struct utsname u;
	json_t *j;

	if (uname(&u) < 0)
		return fl_fail_errno(err, FL_ERR, "uname");
	j = json_pack("{s:o, s:o, s:o}", "kernel", text(u.release), "machine",
		      text(u.machine), "hostname", text(u.nodename));
	add_uptime(r, j);
	add_load(j);
	add_memory(j);
	if (r->sim)
		json_object_set_new(j, "sim", json_true());
	else
		json_object_set_new(j, "disks", disks());
	*ret = j;
	return 0;
}

/* ------------------------------------------------------------------ */
/* slots                                                              */
/* ------------------------------------------------------------------ */

/* active (booted), trying (booted on trial), failed (a trial the
 * bootloader fell back from), empty, inactive. */
static const char *slot_state(const json_t *boot, const char *slot,
			      const json_t *info)
{
	const char *phase = str_of(boot, "phase");

	if (fl_streq(slot, str_of(boot, "fleet_slot")))
		return fl_streq(phase, "trying") ? "trying" : "active";
	if (fl_streq(slot, str_of(boot, "fleet_try")) &&
	    fl_streq(phase, "fell-back"))
		return "failed";
	return json_is_string(json_object_get(info, "version")) ? "inactive"
								: "empty";
}

static json_t *slot_json(const json_t *st, const char *slot)
{
	const json_t *info =
	    json_object_get(json_object_get(st, "slots"), slot);
	const json_t *v = json_object_get(info, "version");

	return json_pack("{s:O, s:s}", "version", v ? v : json_null(), "state",
			 slot_state(json_object_get(st, "boot"), slot, info));
}

/* What `fleet-agent status` reads (agent_status_json), reshaped. */
static int check_slots(const struct diag_run *r, json_t **ret,
		       struct fl_error *err)
{
	json_t *st = NULL;
	int rc = agent_status_json(r->cfg, &st, err);

	if (rc)
		return rc;
	if (json_is_null(json_object_get(st, "slots"))) {
		json_decref(st);
		return fl_fail(err, FL_ERR,
			       "updates are not configured "
			       "([boot] and [slots])");
	}
	*ret = json_pack("{s:O, s:O, s:{s:o, s:o}, s:O, s:O, s:O}", "booted",
			 json_object_get(st, "slot"), "firmware",
			 json_object_get(st, "firmware"), "slots", "a",
			 slot_json(st, "a"), "b", slot_json(st, "b"), "bootenv",
			 json_object_get(st, "boot"), "security_floor",
			 json_object_get(st, "security_floor"), "last_job",
			 json_object_get(st, "job"));
	json_decref(st);
	return *ret ? 0 : fl_fail(err, FL_ERR, "incomplete agent status");
}

/* ------------------------------------------------------------------ */
/* logs                                                               */
/* ------------------------------------------------------------------ */

/* The last @n lines of @buf (@len bytes), each cut to LOG_LINE_MAX,
 * LOG_BYTES_MAX in all; *@cut when some were left out for it. */
static json_t *tail_lines(const char *buf, size_t len, unsigned n, bool *cut)
{
	json_t *a = json_array();
	const char *end = buf + len, *start;
	size_t bytes = 0;

	while (end > buf && end[-1] == '\n')
		end--;
	while (end > buf && json_array_size(a) < n) {
		size_t l;

		for (start = end; start > buf && start[-1] != '\n';)
			start--;
		l = (size_t)(end - start);
		if (l > LOG_LINE_MAX)
			l = LOG_LINE_MAX;
		bytes += l;
		if (bytes > LOG_BYTES_MAX) {
			*cut = true;
			break;
		}
		json_array_insert_new(a, 0, diag_json_text(start, l));
		end = start > buf ? start - 1 : buf;
	}
	return a;
}

static void append_line(void *user, const char *line)
{
	json_array_append_new(user, text(line));
}

json_t *diag_agent_log(const struct diag_run *r, unsigned lines)
{
	json_t *a = json_array();

	fl_log_kept(r->cfg->id, lines, append_line, a);
	return a;
}

/* The end of a [diag.log.NAME] file (only configured files). */
static int file_tail(const struct diag_run *r, const char *name, unsigned n,
		     json_t **ret, bool *cut, struct fl_error *err)
{
	const struct agent_diag_log *l = agent_config_diag_log(r->cfg, name);
	char *buf, *start;
	off_t size, from;
	ssize_t got;
	int fd;

	if (!l)
		return fl_fail(err, FL_EINVAL,
			       "no log file '%s' in [diag.log.*]", name);
	fd = open(l->path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_fail_errno(err, FL_ERR, "cannot open '%s'", l->path);
	size = lseek(fd, 0, SEEK_END);
	from = size > LOG_TAIL_MAX ? size - LOG_TAIL_MAX : 0;
	buf = fl_xmalloc(LOG_TAIL_MAX + 1);
	got = size < 0 ? -1 : pread(fd, buf, LOG_TAIL_MAX, from);
	close(fd);
	if (got < 0) {
		free(buf);
		return fl_fail_errno(err, FL_ERR, "cannot read '%s'", l->path);
	}
	buf[got] = '\0';
	start = buf;
	if (from > 0) { /* the first line is cut: not a line */
		*cut = true;
		start = strchr(buf, '\n') ? strchr(buf, '\n') + 1 : buf + got;
	}
	*ret = tail_lines(start, (size_t)(buf + got - start), n, cut);
	free(buf);
	return 0;
}

static bool valid_unit(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= 128 && s[0] != '-' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789@._:-") == n;
}

/* journalctl -u NAME -n N --no-pager -o short-iso (argv only). */
static int unit_tail(const struct diag_run *r, const char *unit, unsigned n,
		     json_t **ret, bool *cut, struct fl_error *err)
{
	char lines[16];
	const char *argv[] = {"journalctl", "-u", unit,	       "-n", lines,
			      "--no-pager", "-o", "short-iso", NULL};
	struct agent_proc_capture out = {.max = LOG_TAIL_MAX};
	struct agent_proc_capture errout = {.max = 4096};
	struct agent_proc_opts o = {.argv = argv,
				    .timeout_ms = (int)diag_ms_left(r),
				    .out = &out,
				    .errout = &errout,
				    .kill_group = true};
	struct agent_proc_result res;
	int rc;

	if (!valid_unit(unit))
		return fl_fail(err, FL_EINVAL, "bad unit name");
	snprintf(lines, sizeof(lines), "%u", n);
	rc = agent_proc_run(&o, &res, err);
	if (!rc && res.status != 0)
		rc = fl_fail(
		    err, FL_ERR, "journalctl exited %d: %s", res.status,
		    errout.data ? agent_proc_last_line(errout.data) : "");
	if (!rc)
		*ret = tail_lines(out.data ? out.data : "", out.len, n, cut);
	*cut |= out.truncated;
	free(out.data);
	free(errout.data);
	return rc;
}

/* logs [agent | file:NAME | unit:NAME] [LINES] */
static int check_logs(const struct diag_run *r, json_t **ret,
		      struct fl_error *err)
{
	const char *src = r->req->n_args > 0 ? r->req->args[0] : "agent";
	uint64_t n = LOG_LINES_DEFAULT;
	json_t *lines = NULL;
	bool cut = false;
	int rc = 0;

	if (r->req->n_args > 1 &&
	    (fl_parse_uint(r->req->args[1], LOG_LINES_MAX, &n, NULL) || !n))
		return fl_fail(err, FL_EINVAL, "lines must be 1 to %d",
			       LOG_LINES_MAX);
	if (fl_streq(src, "agent"))
		lines = diag_agent_log(r, (unsigned)n);
	else if (fl_startswith(src, "file:"))
		rc = file_tail(r, src + 5, (unsigned)n, &lines, &cut, err);
	else if (fl_startswith(src, "unit:"))
		rc = unit_tail(r, src + 5, (unsigned)n, &lines, &cut, err);
	else
		rc = fl_fail(err, FL_EINVAL,
			     "the source is agent, file:NAME or unit:NAME");
	if (rc)
		return rc;
	*ret = json_pack("{s:o, s:o, s:b}", "source", text(src), "lines", lines,
			 "truncated", cut);
	return 0;
}

/* ------------------------------------------------------------------ */
/* config                                                             */
/* ------------------------------------------------------------------ */

/* A key whose value is a secret (or might become one). */
static bool secret_key(const char *key)
{
	static const char *const words[] = {"token", "passw",	   "secret",
					    "key",   "credential", "private"};
	char low[64];
	size_t i;

	for (i = 0; key[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32
							       : key[i]);
	low[i] = '\0';
	for (i = 0; i < FL_ARRAY_SIZE(words); i++)
		if (strstr(low, words[i]))
			return true;
	return false;
}

/* agent.conf as loaded, {SECTION: {KEY: VALUE}}, secrets replaced. */
static int check_config(const struct diag_run *r, json_t **ret,
			struct fl_error *err)
{
	struct fl_ini *ini = NULL;
	json_t *settings, *redacted;
	int rc;

	if (!r->cfg->path)
		return fl_fail(err, FL_ERR, "the agent has no agent.conf file");
	rc = fl_ini_load(r->cfg->path, &ini, err);
	if (rc)
		return rc;
	settings = json_object();
	redacted = json_array();
	for (size_t i = 0; i < ini->n; i++) {
		const struct fl_ini_entry *e = &ini->v[i];
		json_t *sec = json_object_get(settings, e->section);
		bool hide = secret_key(e->key);

		if (!sec) {
			sec = json_object();
			json_object_set_new(settings, e->section, sec);
		}
		json_object_set_new(sec, e->key,
				    text(hide ? REDACTED : e->value));
		if (hide)
			json_array_append_new(
			    redacted,
			    json_pack("s++", e->section, ".", e->key));
	}
	fl_ini_free(ini);
	*ret = json_pack("{s:o, s:o, s:o}", "path", text(r->cfg->path),
			 "settings", settings, "redacted", redacted);
	return 0;
}

/* ------------------------------------------------------------------ */
/* modbus                                                             */
/* ------------------------------------------------------------------ */

static int check_modbus(const struct diag_run *r, json_t **ret,
			struct fl_error *err)
{
	if (!r->modbus)
		return fl_fail(err, FL_ERR, "no Modbus feature");
	*ret = agent_modbus_diag(r->modbus);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

static const struct diag_check builtins[] = {
    {"bundle", diag_bundle_run, 1, false}, {"cert", check_cert, 0, true},
    {"config", check_config, 0, true},	   {"logs", check_logs, 2, false},
    {"modbus", check_modbus, 0, false},	   {"net", diag_check_net, 0, false},
    {"ping", check_ping, 0, true},	   {"slots", check_slots, 0, true},
    {"sysinfo", check_sysinfo, 0, true},
};

const struct diag_check *diag_builtin(const char *name, bool sim)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(builtins); i++)
		if (fl_streq(builtins[i].name, name))
			return !sim || builtins[i].sim ? &builtins[i] : NULL;
	return NULL;
}

json_t *diag_builtin_json(const struct diag_run *r, const char *name)
{
	const struct diag_check *c = diag_builtin(name, r->sim);
	struct diag_req none = {0};
	struct diag_run mine = *r;
	struct fl_error err = {0};
	json_t *j = NULL;

	mine.req = &none;
	if (c && c->run(&mine, &j, &err) == 0)
		return j;
	fl_warn("diag %s: %s", name, c ? err.msg : "no such check");
	json_decref(j);
	return NULL;
}

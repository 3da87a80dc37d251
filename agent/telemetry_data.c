/* SPDX-License-Identifier: MIT */
/*
 * Telemetry data (telemetry.h): local lines parsed, points as the wire
 * contract's JSON and read back from the outbox with every rule checked
 * again, and the built-in metrics from /proc, /sys and statvfs.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

#include "fsutil.h"
#include "agent_telemetry.h"
#include "util.h"

#define PROC_READ_MAX 65536 /* bytes read of one /proc or /sys file */
#define ZONES_MAX 16	    /* thermal zones sampled */

int64_t agent_tlm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool agent_tlm_metric_valid(const char *s)
{
	size_t n = strlen(s);

	if (n < 1 || n > AGENT_TLM_METRIC_MAX)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("_.:-", *s))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* Local lines                                                        */
/* ------------------------------------------------------------------ */

/* The next space-separated token of [*@p, @end) in @buf (@size). */
static bool token(const char **p, const char *end, char *buf, size_t size)
{
	const char *s = *p, *e;

	while (s < end && *s == ' ')
		s++;
	for (e = s; e < end && *e != ' '; e++)
		;
	*p = e;
	if (e == s || (size_t)(e - s) >= size)
		return false;
	memcpy(buf, s, (size_t)(e - s));
	buf[e - s] = '\0';
	return true;
}

static int parse_name(const char *tok, struct agent_tlm_point *p,
		      struct fl_error *err)
{
	bool dot = strchr(tok, '.') != NULL;

	if (!agent_tlm_metric_valid(tok))
		return fl_fail(err, FL_EINVAL,
			       "bad name (1..64 of A-Z a-z 0-9 _ . : -)");
	snprintf(p->metric, sizeof(p->metric), "%s%s", dot ? "" : "app.", tok);
	if (!dot && strlen(tok) + 4 > AGENT_TLM_METRIC_MAX)
		return fl_fail(err, FL_EINVAL, "name too long with app.");
	return 0;
}

static int parse_ts(const char *tok, int64_t now_ms, int64_t *ret,
		    struct fl_error *err)
{
	uint64_t v = 0;

	if (fl_parse_uint(tok, INT64_MAX, &v, NULL) ||
	    (int64_t)v < AGENT_TLM_TS_MIN ||
	    (int64_t)v > now_ms + AGENT_TLM_TS_AHEAD)
		return fl_fail(err, FL_EINVAL,
			       "bad timestamp (ms since 1970, from 2020 to "
			       "now + 1 day)");
	*ret = (int64_t)v;
	return 0;
}

int agent_tlm_parse_line(const char *line, size_t len, int64_t now_ms,
			 struct agent_tlm_point *ret, struct fl_error *err)
{
	const char *p = line, *end = line + len;
	char name[AGENT_TLM_METRIC_MAX + 2], val[64], ts[32], extra[2];
	struct agent_tlm_point pt = {.ts_ms = now_ms};
	char *vend = NULL;
	int rc;

	if (memchr(line, '\0', len))
		return fl_fail(err, FL_EINVAL, "NUL in line");
	if (!token(&p, end, name, sizeof(name)) ||
	    !token(&p, end, val, sizeof(val)))
		return fl_fail(err, FL_EINVAL, "not 'name value [ts_ms]'");
	if ((rc = parse_name(name, &pt, err)))
		return rc;
	errno = 0;
	pt.value = strtod(val, &vend);
	if (*vend || errno || !isfinite(pt.value) ||
	    isspace((unsigned char)*val))
		return fl_fail(err, FL_EINVAL, "bad value (a finite number)");
	if (token(&p, end, ts, sizeof(ts)) &&
	    (rc = parse_ts(ts, now_ms, &pt.ts_ms, err)))
		return rc;
	if (p < end && token(&p, end, extra, sizeof(extra)))
		return fl_fail(err, FL_EINVAL, "extra fields");
	while (p < end && *p == ' ')
		p++;
	if (p != end)
		return fl_fail(err, FL_EINVAL, "not 'name value [ts_ms]'");
	*ret = pt;
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */
/* ------------------------------------------------------------------ */

/* A whole value that a double holds exactly goes out as an integer. */
static json_t *number(double v)
{
	if (v == floor(v) && fabs(v) < 9007199254740992.0)
		return json_integer((json_int_t)v);
	return json_real(v);
}

char *agent_tlm_points_json(const struct agent_tlm_point *p, size_t n)
{
	json_t *a = json_array();
	char *s;

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s, s:o, s:I}", "metric",
						   p[i].metric, "value",
						   number(p[i].value), "ts",
						   (json_int_t)p[i].ts_ms));
	s = json_dumps(a, JSON_COMPACT);
	json_decref(a);
	return s;
}

/* One point read back: exactly metric, value, ts, each as the contract
 * says (the upper ts bound is fleetd's: it knows the time it gets it). */
static bool point_valid(const json_t *pt)
{
	const json_t *m = json_object_get(pt, "metric");
	const json_t *v = json_object_get(pt, "value");
	const json_t *ts = json_object_get(pt, "ts");

	return json_is_object(pt) && json_object_size(pt) == 3 &&
	       json_is_string(m) &&
	       agent_tlm_metric_valid(json_string_value(m)) &&
	       json_is_number(v) && isfinite(json_number_value(v)) &&
	       json_is_integer(ts) &&
	       json_integer_value(ts) >= AGENT_TLM_TS_MIN;
}

int agent_tlm_message(uint64_t seq, const char *body, size_t len,
		      uint64_t dropped, char **ret, struct fl_error *err)
{
	json_t *pts = json_loadb(body, len, JSON_REJECT_DUPLICATES, NULL);
	size_t n = json_array_size(pts), i;
	json_t *pt, *msg;

	if (!json_is_array(pts) || n < 1 || n > AGENT_TLM_BATCH || seq < 1) {
		json_decref(pts);
		return fl_fail(err, FL_EPARSE,
			       "telemetry row %" PRIu64 " is not 1..64 points",
			       seq);
	}
	json_array_foreach(pts, i, pt) if (!point_valid(pt))
	{
		json_decref(pts);
		return fl_fail(err, FL_EPARSE,
			       "telemetry row %" PRIu64 ": bad point %zu", seq,
			       i);
	}
	msg = json_pack("{s:I, s:o, s:I}", "seq", (json_int_t)seq, "points",
			pts, "dropped", (json_int_t)dropped);
	*ret = json_dumps(msg, JSON_COMPACT);
	json_decref(msg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Built-in metrics                                                   */
/* ------------------------------------------------------------------ */

static char *read_small(const char *root, const char *path)
{
	char *full = fl_xasprintf("%s%s", root, path);
	char *buf = NULL;
	size_t len = 0;

	if (fl_read_file(full, PROC_READ_MAX, &buf, &len, NULL))
		buf = NULL;
	free(full);
	return buf;
}

static void add(struct agent_tlm_point *out, size_t max, size_t *n,
		const char *metric, double v, int64_t now_ms)
{
	if (*n >= max)
		return;
	snprintf(out[*n].metric, sizeof(out[*n].metric), "%s", metric);
	out[*n].value = v;
	out[(*n)++].ts_ms = now_ms;
}

/* cpu.percent: busy share of the time since the previous sample. */
static void sample_cpu(const char *root, struct agent_tlm_cpu *cpu,
		       struct agent_tlm_point *out, size_t max, size_t *n,
		       int64_t now_ms)
{
	char *s = read_small(root, "/proc/stat");
	uint64_t f[8] = {0}, total = 0, idle;

	if (!s || sscanf(s,
			 "cpu %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
			 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
			 &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6],
			 &f[7]) < 4) {
		free(s);
		return;
	}
	free(s);
	for (int i = 0; i < 8; i++)
		total += f[i];
	idle = f[3] + f[4];
	if (cpu->total && total > cpu->total && idle >= cpu->idle)
		add(out, max, n, "cpu.percent",
		    round(1000.0 *
			  (double)(total - cpu->total - (idle - cpu->idle)) /
			  (double)(total - cpu->total)) /
			10.0,
		    now_ms);
	cpu->total = total;
	cpu->idle = idle;
}

/* A "Key:  N kB" line of /proc/meminfo in bytes, or -1. */
static double meminfo(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	unsigned long long kb;

	if (!p || sscanf(p + strlen(key), ": %llu kB", &kb) != 1)
		return -1;
	return (double)kb * 1024;
}

static void sample_mem(const char *root, struct agent_tlm_point *out,
		       size_t max, size_t *n, int64_t now_ms)
{
	char *s = read_small(root, "/proc/meminfo");
	double total = s ? meminfo(s, "MemTotal") : -1;
	double avail = s ? meminfo(s, "MemAvailable") : -1;

	free(s);
	if (total < 0 || avail < 0 || avail > total)
		return;
	add(out, max, n, "mem.used_bytes", total - avail, now_ms);
	add(out, max, n, "mem.available_bytes", avail, now_ms);
}

/* temp.ZONE_c for /sys/class/thermal/thermal_zoneZONE/temp (m°C). */
static void sample_temp(const char *root, struct agent_tlm_point *out,
			size_t max, size_t *n, int64_t now_ms)
{
	char *dir = fl_xasprintf("%s/sys/class/thermal", root);
	DIR *d = opendir(dir);
	struct dirent *e;
	int zones = 0;

	free(dir);
	while (d && zones < ZONES_MAX && (e = readdir(d))) {
		char path[300], metric[AGENT_TLM_METRIC_MAX + 1], *s;
		unsigned zone;
		long long mc;

		if (sscanf(e->d_name, "thermal_zone%u", &zone) != 1)
			continue;
		snprintf(path, sizeof(path), "/sys/class/thermal/%.200s/temp",
			 e->d_name);
		s = read_small(root, path);
		if (s && sscanf(s, "%lld", &mc) == 1) {
			snprintf(metric, sizeof(metric), "temp.zone%u_c", zone);
			add(out, max, n, metric, (double)mc / 1000.0, now_ms);
			zones++;
		}
		free(s);
	}
	if (d)
		closedir(d);
}

/* net.wifi_link: the link quality of the first interface listed in
 * /proc/net/wireless (after its two header lines). */
static void sample_wifi(const char *root, struct agent_tlm_point *out,
			size_t max, size_t *n, int64_t now_ms)
{
	char *s = read_small(root, "/proc/net/wireless");
	char *p = s;
	double link;

	for (int i = 0; p && i < 2; i++)
		p = (p = strchr(p, '\n')) ? p + 1 : NULL;
	if (p && (p = strchr(p, ':')) &&
	    sscanf(p + 1, " %*x %lf", &link) == 1 && isfinite(link))
		add(out, max, n, "net.wifi_link", link, now_ms);
	free(s);
}

size_t agent_tlm_sample(const char *root, const char *state_dir,
			struct agent_tlm_cpu *cpu, uint64_t outbox_depth,
			int64_t now_ms, struct agent_tlm_point *out, size_t max)
{
	struct statvfs vfs;
	size_t n = 0;

	sample_cpu(root, cpu, out, max, &n, now_ms);
	sample_mem(root, out, max, &n, now_ms);
	if (statvfs(state_dir, &vfs) == 0)
		add(out, max, &n, "disk.state_free_bytes",
		    (double)vfs.f_bavail * (double)vfs.f_frsize, now_ms);
	sample_temp(root, out, max, &n, now_ms);
	sample_wifi(root, out, max, &n, now_ms);
	add(out, max, &n, "agent.outbox_depth", (double)outbox_depth, now_ms);
	return n;
}

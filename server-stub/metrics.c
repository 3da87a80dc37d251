/* SPDX-License-Identifier: MIT */
/*
 * In-memory metrics and the Prometheus text format (metrics.h).  Every
 * count is a relaxed atomic add: the writers never wait for each other or
 * for a scrape, and a scrape reads each value once (a histogram's +Inf
 * bucket and _count come from the same reading, so they always agree).
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "httpd.h"
#include "metrics.h"
#include "util.h"

const double srv_hist_bounds[SRV_HIST_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1,    0.25,  0.5,	   1,	  2.5,	5,     10};

/* The status codes counted by name; any other counts as "other". */
static const int codes[] = {200, 201, 202, 204, 206, 304, 400, 401,
			    403, 404, 405, 409, 410, 413, 414, 416,
			    422, 429, 500, 502, 503, 504};
#define NCODES (FL_ARRAY_SIZE(codes) + 1)

/* Room for every route of the tables; slot 0 counts requests that
 * matched none (and routes beyond the room). */
#define ROUTE_SLOTS 256

struct route_slot {
	const struct srv_route *rt; /* claimed once with a CAS */
	uint64_t code[NCODES];
	struct srv_hist latency;
};

static struct route_slot routes[ROUTE_SLOTS];
static struct srv_hist store_hist;
static uint64_t mqtt_count[2][FL_TOPIC_NKINDS + 1];
static int64_t start_time;

static void add(uint64_t *p, uint64_t n)
{
	__atomic_add_fetch(p, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

uint64_t srv_metrics_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void srv_metrics_start(void)
{
	start_time = (int64_t)time(NULL);
}

void srv_hist_observe(struct srv_hist *h, uint64_t ns)
{
	double s = (double)ns / 1e9;
	size_t i = 0;

	while (i < SRV_HIST_BUCKETS && s > srv_hist_bounds[i])
		i++;
	add(&h->bucket[i], 1);
	add(&h->sum_ns, ns);
}

/* The slot of @rt, claimed on its first request (open addressing). */
static struct route_slot *route_slot(const struct srv_route *rt)
{
	size_t h = ((uintptr_t)rt >> 4) % (ROUTE_SLOTS - 1);

	for (size_t i = 0; rt && i < ROUTE_SLOTS - 1; i++) {
		struct route_slot *s = &routes[1 + (h + i) % (ROUTE_SLOTS - 1)];
		const struct srv_route *cur =
		    __atomic_load_n(&s->rt, __ATOMIC_ACQUIRE);

		if (!cur && __atomic_compare_exchange_n(&s->rt, &cur, rt, false,
							__ATOMIC_ACQ_REL,
							__ATOMIC_ACQUIRE))
			return s;
		if (cur == rt)
			return s;
	}
	return &routes[0];
}

static size_t code_index(int status)
{
	for (size_t i = 0; i < FL_ARRAY_SIZE(codes); i++)
		if (codes[i] == status)
			return i;
	return NCODES - 1;
}

void srv_metrics_http(const struct srv_route *rt, int status, uint64_t ns)
{
	struct route_slot *s = route_slot(rt);

	add(&s->code[code_index(status)], 1);
	srv_hist_observe(&s->latency, ns);
}

void srv_metrics_store(uint64_t ns)
{
	srv_hist_observe(&store_hist, ns);
}

void srv_metrics_mqtt(enum srv_mqtt_dir dir, enum fl_topic_kind kind)
{
	if ((unsigned)kind > FL_TOPIC_NKINDS)
		kind = FL_TOPIC_NKINDS;
	add(&mqtt_count[dir == SRV_MQTT_OUT][kind], 1);
}

/* ------------------------------------------------------------------ */
/* The text format                                                    */
/* ------------------------------------------------------------------ */

/* @s with backslash and newline escaped, and double quotes too when
 * @quote (label values; HELP text keeps them). */
static void put_escaped(FILE *f, const char *s, bool quote)
{
	for (; *s; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else if (*s == '"' && quote)
			fputs("\\\"", f);
		else
			fputc(*s, f);
	}
}

/* The fewest digits (15..17) that read back as @v. */
static const char *shortest(double v, char *buf, size_t len)
{
	for (int prec = 15; prec < 17; prec++) {
		snprintf(buf, len, "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			return buf;
	}
	snprintf(buf, len, "%.17g", v);
	return buf;
}

/* Integers exactly (counts), anything else with full precision. */
static void put_value(FILE *f, double v)
{
	char buf[32];

	if (v == (double)(int64_t)v && v < 9007199254740992.0 &&
	    v > -9007199254740992.0)
		fprintf(f, "%lld", (long long)v);
	else
		fputs(shortest(v, buf, sizeof(buf)), f);
}

void srv_prom_head(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP %s ", name);
	put_escaped(f, help, false);
	fprintf(f, "\n# TYPE %s %s\n", name, type);
}

static void put_labels(FILE *f, const char *const *kv, size_t n, const char *le)
{
	if (!n && !le)
		return;
	fputc('{', f);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s%s=\"", i ? "," : "", kv[2 * i]);
		put_escaped(f, kv[2 * i + 1], true);
		fputc('"', f);
	}
	if (le)
		fprintf(f, "%sle=\"%s\"", n ? "," : "", le);
	fputc('}', f);
}

void srv_prom_sample(FILE *f, const char *name, const char *const *kv, size_t n,
		     double value)
{
	fputs(name, f);
	put_labels(f, kv, n, NULL);
	fputc(' ', f);
	put_value(f, value);
	fputc('\n', f);
}

void srv_prom_hist(FILE *f, const char *name, const char *const *kv, size_t n,
		   const struct srv_hist *h)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t i = 0; i <= SRV_HIST_BUCKETS; i++) {
		cum += get(&h->bucket[i]);
		if (i < SRV_HIST_BUCKETS)
			snprintf(le, sizeof(le), "%g", srv_hist_bounds[i]);
		else
			fl_strlcpy(le, "+Inf", sizeof(le));
		fprintf(f, "%s_bucket", name);
		put_labels(f, kv, n, le);
		fprintf(f, " %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "%s_sum", name);
	put_labels(f, kv, n, NULL);
	fputc(' ', f);
	put_value(f, (double)get(&h->sum_ns) / 1e9);
	fprintf(f, "\n%s_count", name);
	put_labels(f, kv, n, NULL);
	fprintf(f, " %llu\n", (unsigned long long)cum);
}

/* ------------------------------------------------------------------ */
/* What fleetd counted                                                */
/* ------------------------------------------------------------------ */

#define HTTP_TOTAL "fleetd_http_requests_total"
#define HTTP_TIME "fleetd_http_request_duration_seconds"

static void route_labels(const struct route_slot *s, const char *kv[6])
{
	const struct srv_route *rt = __atomic_load_n(&s->rt, __ATOMIC_ACQUIRE);

	kv[0] = "method";
	kv[1] = rt ? rt->method : "";
	kv[2] = "route";
	kv[3] = rt ? rt->pattern : "unmatched";
	kv[4] = "code";
}

static bool slot_used(const struct route_slot *s)
{
	for (size_t i = 0; i < NCODES; i++)
		if (get(&s->code[i]))
			return true;
	return false;
}

static void write_http(FILE *f)
{
	const char *kv[6];
	char code[16];

	srv_prom_head(f, HTTP_TOTAL, "counter",
		      "HTTP requests by route pattern and status code.");
	for (size_t i = 0; i < ROUTE_SLOTS; i++) {
		route_labels(&routes[i], kv);
		for (size_t c = 0; c < NCODES; c++) {
			uint64_t v = get(&routes[i].code[c]);

			if (!v)
				continue;
			if (c < FL_ARRAY_SIZE(codes))
				snprintf(code, sizeof(code), "%d", codes[c]);
			else
				fl_strlcpy(code, "other", sizeof(code));
			kv[5] = code;
			srv_prom_sample(f, HTTP_TOTAL, kv, 3, (double)v);
		}
	}
	srv_prom_head(f, HTTP_TIME, "histogram",
		      "Time from a request's headers to its reply, by route.");
	for (size_t i = 0; i < ROUTE_SLOTS; i++) {
		if (!slot_used(&routes[i]))
			continue;
		route_labels(&routes[i], kv);
		srv_prom_hist(f, HTTP_TIME, kv, 2, &routes[i].latency);
	}
}

static void write_mqtt(FILE *f)
{
	static const char *const dirs[2] = {"fleetd_mqtt_received_total",
					    "fleetd_mqtt_sent_total"};
	static const char *const helps[2] = {
	    "MQTT messages fleetd received, by topic kind.",
	    "MQTT messages fleetd published, by topic kind."};

	for (int d = 0; d < 2; d++) {
		srv_prom_head(f, dirs[d], "counter", helps[d]);
		for (int k = 0; k <= FL_TOPIC_NKINDS; k++) {
			const struct fl_topic_info *t = fl_topic_info(k);
			const char *kv[2] = {"kind", t ? t->leaf : "other"};

			if (t && t->dir != (d ? FL_TOPIC_DOWN : FL_TOPIC_UP))
				continue;
			srv_prom_sample(f, dirs[d], kv, 1,
					(double)get(&mqtt_count[d][k]));
		}
	}
}

/* Resident set size in bytes, from /proc/self/statm; -1 unknown. */
static double rss_bytes(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long long size = 0, rss = 0;
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &size, &rss);
	fclose(f);
	return n == 2 ? (double)rss * (double)sysconf(_SC_PAGESIZE) : -1;
}

static double open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	double n = 0;

	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 3; /* ".", ".." and the directory itself */
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void write_process(FILE *f)
{
	const char *kv[2] = {"version", FLEET_VERSION};

	srv_prom_head(f, "fleetd_build_info", "gauge",
		      "Always 1; the version in a label.");
	srv_prom_sample(f, "fleetd_build_info", kv, 1, 1);
	srv_prom_head(f, "process_start_time_seconds", "gauge",
		      "Start time of the process since the Unix epoch.");
	srv_prom_sample(f, "process_start_time_seconds", NULL, 0,
			(double)start_time);
	srv_prom_head(f, "process_resident_memory_bytes", "gauge",
		      "Resident memory size in bytes.");
	srv_prom_sample(f, "process_resident_memory_bytes", NULL, 0,
			rss_bytes());
	srv_prom_head(f, "process_cpu_seconds_total", "counter",
		      "User and system CPU time spent, in seconds.");
	srv_prom_sample(f, "process_cpu_seconds_total", NULL, 0, cpu_seconds());
	srv_prom_head(f, "process_open_fds", "gauge", "Open file descriptors.");
	srv_prom_sample(f, "process_open_fds", NULL, 0, open_fds());
}

void srv_metrics_write(FILE *f)
{
	write_http(f);
	srv_prom_head(f, "fleetd_store_call_duration_seconds", "histogram",
		      "Time of each call into the store (database).");
	srv_prom_hist(f, "fleetd_store_call_duration_seconds", NULL, 0,
		      &store_hist);
	write_mqtt(f);
	write_process(f);
}

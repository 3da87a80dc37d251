/* SPDX-License-Identifier: MIT */
/*
 * fwd-drive: runs the telemetry forwarders (server-stub/fwd.h) of a
 * fleetd.conf-style file against real databases, scripted on stdin, for
 * tests/e2e/t6101-forward.sh.
 *
 *   fwd-drive CONF STOP_WAIT_MS
 *
 * starts a forwarder for each of [influx] and [postgres] that CONF
 * configures, then reads commands, one a line, fields separated by a
 * tab (in a field, \t \n \\ stand for a tab, a newline, a backslash):
 *
 *   point DEVICE METRIC TS VALUE   add a point to the pending list
 *   gen DEVICE METRIC N TS0        add N points: TS0+i, value i+0.5
 *   submit                         srv_fwd_submit the pending list to
 *                                  every forwarder, empty it
 *   stats FILE                     write every forwarder's counters
 *                                  (a JSON object by backend name, and
 *                                  "submit_max_ms") to FILE, atomically
 *
 * At end of input: srv_fwd_stop(STOP_WAIT_MS) each, print how long the
 * stops took as "stopped_ms N" on stdout, exit 0.  Exit 1 on a setup
 * error, 2 on a usage error or a bad command.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwd.h"
#include "log.h"
#include "util.h"

#define MAX_FWD 2
#define MAX_FIELDS 6

struct drive {
	struct srv_fwd *fwd[MAX_FWD];
	size_t nfwd;
	struct srv_tpoint *pts;
	char **strs; /* the pending points' strings */
	size_t n, cap;
	int64_t submit_max_ms;
};

/* Split @line at tabs into @f, decoding the escapes in place. */
static size_t split(char *line, char **f)
{
	size_t n = 0;
	char *w = line;

	f[n++] = w;
	for (char *r = line; *r; r++) {
		if (*r == '\t' && n < MAX_FIELDS) {
			*w++ = '\0';
			f[n++] = w;
		} else if (*r == '\\' && r[1]) {
			r++;
			*w++ = *r == 't' ? '\t' : *r == 'n' ? '\n' : *r;
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return n;
}

static void add(struct drive *d, const char *dev, const char *metric,
		int64_t ts, double value)
{
	if (d->n == d->cap) {
		d->cap = d->cap ? 2 * d->cap : 256;
		d->pts = fl_xrealloc(d->pts, d->cap * sizeof(*d->pts));
		d->strs = fl_xrealloc(d->strs, 2 * d->cap * sizeof(*d->strs));
	}
	d->strs[2 * d->n] = fl_xstrdup(dev);
	d->strs[2 * d->n + 1] = fl_xstrdup(metric);
	d->pts[d->n] = (struct srv_tpoint){d->strs[2 * d->n],
					   d->strs[2 * d->n + 1], ts, value};
	d->n++;
}

static void submit(struct drive *d)
{
	int64_t t0 = fl_now_ms(), took;

	for (size_t i = 0; i < d->nfwd; i++)
		srv_fwd_submit(d->fwd[i], d->pts, d->n);
	took = fl_now_ms() - t0;
	if (took > d->submit_max_ms)
		d->submit_max_ms = took;
	for (size_t i = 0; i < 2 * d->n; i++)
		free(d->strs[i]);
	d->n = 0;
}

static int write_stats(struct drive *d, const char *path)
{
	json_t *o =
	    json_pack("{s:I}", "submit_max_ms", (json_int_t)d->submit_max_ms);
	char *tmp = fl_xasprintf("%s.tmp", path);
	int rc;

	for (size_t i = 0; i < d->nfwd; i++)
		json_object_set_new(o, srv_fwd_name(d->fwd[i]),
				    srv_fwd_stats_json(d->fwd[i]));
	rc = json_dump_file(o, tmp, JSON_COMPACT) || rename(tmp, path);
	json_decref(o);
	free(tmp);
	return rc ? 1 : 0;
}

static int command(struct drive *d, char **f, size_t n)
{
	if (strcmp(f[0], "point") == 0 && n == 5)
		add(d, f[1], f[2], strtoll(f[3], NULL, 10), strtod(f[4], NULL));
	else if (strcmp(f[0], "gen") == 0 && n == 5)
		for (long i = 0; i < strtol(f[3], NULL, 10); i++)
			add(d, f[1], f[2], strtoll(f[4], NULL, 10) + i,
			    (double)i + 0.5);
	else if (strcmp(f[0], "submit") == 0 && n == 1)
		submit(d);
	else if (strcmp(f[0], "stats") == 0 && n == 2)
		return write_stats(d, f[1]);
	else
		return 2;
	return 0;
}

static int start(struct drive *d, const char *conf)
{
	struct srv_fwd_config *cfg[MAX_FWD] = {NULL, NULL};
	struct fl_error err = {0};
	struct fl_ini *ini = NULL;
	int rc = fl_ini_load(conf, &ini, &err);

	if (!rc)
		rc = fl_ini_check_keys(ini, srv_fwd_conf_keys, &err);
	if (!rc)
		rc = srv_fwd_config_load(ini, &cfg[0], &cfg[1], &err);
	for (size_t i = 0; !rc && i < MAX_FWD; i++)
		if (cfg[i])
			rc = srv_fwd_start(cfg[i], &d->fwd[d->nfwd++], &err);
	for (size_t i = 0; i < MAX_FWD; i++)
		srv_fwd_config_free(cfg[i]);
	fl_ini_free(ini);
	if (rc)
		fprintf(stderr, "fwd-drive: error: %s\n", err.msg);
	return rc;
}

int main(int argc, char **argv)
{
	struct drive d = {0};
	char line[4096], *f[MAX_FIELDS];
	int rc = 0;
	int64_t t0;

	if (argc != 3) {
		fprintf(stderr, "usage: fwd-drive CONF STOP_WAIT_MS\n");
		return 2;
	}
	fl_log_setup("fwd-drive", FL_LOG_DEBUG, FL_LOG_TEXT);
	if (start(&d, argv[1]))
		return 1;
	while (!rc && fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = '\0';
		rc = command(&d, f, split(line, f));
		if (rc)
			fprintf(stderr, "fwd-drive: command failed: %s\n",
				line);
	}
	t0 = fl_now_ms();
	for (size_t i = 0; i < d.nfwd; i++)
		srv_fwd_stop(d.fwd[i], strtoll(argv[2], NULL, 10));
	printf("stopped_ms %lld\n", (long long)(fl_now_ms() - t0));
	for (size_t i = 0; i < 2 * d.n; i++)
		free(d.strs[i]);
	free(d.pts);
	free(d.strs);
	return rc;
}

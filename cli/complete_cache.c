/* SPDX-License-Identifier: MIT */
/*
 * The completion cache of `fleetctl __complete` (complete_cache.h): ids
 * from fleetd's list answers, one per line under a header, so a TAB is
 * a prefix scan of a small file and never a request or a JSON parse.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "complete_cache.h"
#include "fsutil.h"
#include "util.h"

static const char *const kind_names[CLI_KIND_COUNT] = {
    [CLI_KIND_DEVICES] = "devices",   [CLI_KIND_GROUPS] = "groups",
    [CLI_KIND_LABELS] = "labels",     [CLI_KIND_BUNDLES] = "bundles",
    [CLI_KIND_ROLLOUTS] = "rollouts", [CLI_KIND_JOBS] = "jobs",
};

/* fleetd's list of each kind; groups and labels come from the devices */
static const char *const kind_paths[CLI_KIND_COUNT] = {
    [CLI_KIND_DEVICES] = "/api/v1/devices",
    [CLI_KIND_GROUPS] = "/api/v1/devices",
    [CLI_KIND_LABELS] = "/api/v1/devices",
    [CLI_KIND_BUNDLES] = "/api/v1/bundles",
    [CLI_KIND_ROLLOUTS] = "/api/v1/rollouts?limit=1000",
    [CLI_KIND_JOBS] = "/api/v1/jobs?limit=10000",
};

const char *cli_kind_name(int kind)
{
	return kind > CLI_KIND_NONE && kind < CLI_KIND_COUNT ? kind_names[kind]
							     : NULL;
}

int cli_kind_from_name(const char *name)
{
	for (int k = CLI_KIND_NONE + 1; k < CLI_KIND_COUNT; k++)
		if (fl_streq(name, kind_names[k]))
			return k;
	return CLI_KIND_NONE;
}

char *cli_ccache_path(const char *server_url, int kind)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char hash[65];

	fl_sha256_hex(server_url, strlen(server_url), hash);
	hash[16] = '\0';
	if (xdg && *xdg)
		return fl_xasprintf("%s/fleet/complete-%s.%s", xdg, hash,
				    cli_kind_name(kind));
	return fl_xasprintf("%s/.cache/fleet/complete-%s.%s", home ? home : ".",
			    hash, cli_kind_name(kind));
}

/* Open @path if it is a regular file within the size cap whose first
 * line is the header; the stream is then past the header. */
static FILE *open_cache(const char *path, struct stat *st)
{
	char line[sizeof(CLI_CCACHE_HEADER) + 1];
	FILE *f = fopen(path, "re");

	if (!f)
		return NULL;
	if (fstat(fileno(f), st) || !S_ISREG(st->st_mode) ||
	    (unsigned long long)st->st_size > CLI_CCACHE_MAX_BYTES ||
	    !fgets(line, sizeof(line), f) ||
	    strcmp(line, CLI_CCACHE_HEADER "\n")) {
		fclose(f);
		return NULL;
	}
	return f;
}

bool cli_ccache_fresh(const char *path, time_t now, time_t ttl)
{
	struct stat st;
	FILE *f = open_cache(path, &st);

	if (!f)
		return false;
	fclose(f);
	return st.st_mtime <= now && now - st.st_mtime < ttl;
}

/*
 * An id we keep: 1..MAX_LINE-1 bytes a shell takes literally, since
 * bash puts a completion on the command line unquoted ("$(x)" or "; x"
 * from a label value would run).  Ids outside the set are not offered.
 */
static bool id_ok(const char *s, size_t n)
{
	static const char safe[] = "abcdefghijklmnopqrstuvwxyz"
				   "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				   "0123456789._-:=@+,/%";

	if (n == 0 || n >= CLI_CCACHE_MAX_LINE)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(safe, s[i]))
			return false;
	return true;
}

long cli_ccache_scan(const char *path, const char *prefix, FILE *out)
{
	char line[CLI_CCACHE_MAX_LINE + 1];
	size_t plen = strlen(prefix), n;
	bool overlong = false;
	struct stat st;
	FILE *f = open_cache(path, &st);
	long count = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		n = strlen(line);
		if (n == 0 || line[n - 1] != '\n') { /* too long, or last */
			overlong = true;
			continue;
		}
		if (overlong) { /* the rest of an overlong line */
			overlong = false;
			continue;
		}
		if (strncmp(line, prefix, plen) || !id_ok(line, n - 1))
			continue;
		fwrite(line, 1, n, out);
		count++;
	}
	fclose(f);
	return count;
}

/* Add @s to @ids once (@seen: a set of what is in @ids). */
static void add_once(json_t *ids, json_t *seen, const char *s)
{
	if (!s || json_object_get(seen, s))
		return;
	json_object_set_new(seen, s, json_true());
	json_array_append_new(ids, json_string(s));
}

static void add_labels(json_t *ids, json_t *seen, const json_t *labels)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)labels, k, v)
	{
		char *kv = fl_xasprintf(
		    "%s=%s", k,
		    json_string_value(v) ? json_string_value(v) : "");

		add_once(ids, seen, kv);
		free(kv);
	}
}

json_t *cli_ccache_ids(int kind, const json_t *rows)
{
	json_t *ids = json_array(), *seen = json_object(), *row;
	size_t i;

	json_array_foreach(rows, i, row)
	{
		if (kind == CLI_KIND_GROUPS)
			add_once(
			    ids, seen,
			    json_string_value(json_object_get(row, "group")));
		else if (kind == CLI_KIND_LABELS)
			add_labels(ids, seen, json_object_get(row, "labels"));
		else
			add_once(ids, seen,
				 json_string_value(json_object_get(row, "id")));
	}
	json_decref(seen);
	return ids;
}

int cli_ccache_write(const char *path, const json_t *ids, struct fl_error *err)
{
	char *buf = NULL, *dir = fl_xstrdup(path), *slash = strrchr(dir, '/');
	size_t len = 0, i, kept = 0;
	FILE *m = open_memstream(&buf, &len);
	const char *s;
	json_t *v;
	int rc;

	fputs(CLI_CCACHE_HEADER "\n", m);
	json_array_foreach(ids, i, v)
	{
		s = json_string_value(v);
		if (kept == CLI_CCACHE_MAX_IDS)
			break;
		if (!s || !id_ok(s, strlen(s)))
			continue;
		fprintf(m, "%s\n", s);
		kept++;
	}
	fclose(m);
	if (slash)
		*slash = '\0';
	rc = slash ? fl_mkdir_p(dir, 0700, err) : 0;
	if (!rc)
		rc = fl_write_atomic(path, buf, len, 0600, err);
	free(buf);
	free(dir);
	return rc;
}

int cli_ccache_refresh(struct fl_http *h, int kind, const char *path,
		       struct fl_error *err)
{
	json_t *rows = NULL, *ids;
	int rc;

	if (!cli_kind_name(kind))
		return fl_fail(err, FL_EINVAL, "no such completion kind");
	fl_http_set_limits(h, CLI_CCACHE_FETCH_MS, 64u << 20);
	rc = fl_http_json(h, "GET", kind_paths[kind], NULL, &rows, err);
	if (rc)
		return rc;
	if (!json_is_array(rows)) {
		json_decref(rows);
		return fl_fail(err, FL_ERR, "fleetd's list is not an array");
	}
	ids = cli_ccache_ids(kind, rows);
	rc = cli_ccache_write(path, ids, err);
	json_decref(ids);
	json_decref(rows);
	return rc;
}

/* SPDX-License-Identifier: MIT */
/*
 * The support bundle, check "bundle UPLOAD_ID" (docs/diagnostics.md):
 * what a technician wants from a device in one file, gathered into a
 * .tar.gz (libarchive, common/tgz.h) in the state dir and uploaded with
 * the device's own certificate to fleetd,
 * PUT /api/v1/devices/ID/diag-bundles/UPLOAD_ID, which accepts it only
 * from device ID for an upload it is waiting for.  No key ever goes in:
 *
 *   ID/agent.log        the agent's recent log lines
 *   ID/status.json      fleet-agent status (serials and dates, no keys)
 *   ID/agent.conf.json  agent.conf, secrets removed (check "config")
 *   ID/sysinfo.json     check "sysinfo"
 *   ID/net.json         check "net"
 *   ID/ota.json         the update journal
 *   ID/commands.json    the command log
 *   ID/logs/NAME.log    the end of each [diag.log.NAME] file
 *
 * Capped at [diag] bundle_max bytes (compressed); the file is removed
 * after the upload, whatever its outcome.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "cmd.h"
#include "diag_internal.h"
#include "fsutil.h"
#include "http.h"
#include "journal.h"
#include "log.h"
#include "tgz.h"
#include "util.h"

#define BUNDLE_TMP "diag-bundle.tmp"
#define UPLOAD_ID_MAX 64
#define STATE_FILE_MAX (1024 * 1024) /* bytes of a state file taken */
#define LOG_LINES 1000

static bool valid_upload_id(const char *s)
{
	size_t n = strlen(s);

	return n > 0 && n <= UPLOAD_ID_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789_-") == n;
}

/* Add @len bytes as ID/@name. */
static int add(struct fl_tgz *t, const struct diag_run *r, const char *name,
	       const char *data, size_t len, struct fl_error *err)
{
	char *path = fl_xasprintf("%s/%s", r->cfg->id, name);
	int rc = fl_tgz_add(t, path, data, len, 0600, err);

	free(path);
	return rc;
}

/* A JSON document as ID/@name (@j stolen; NULL: left out). */
static int add_json(struct fl_tgz *t, const struct diag_run *r,
		    const char *name, json_t *j, struct fl_error *err)
{
	char *text;
	int rc;

	if (!j)
		return 0;
	text = json_dumps(j, JSON_INDENT(2));
	rc = add(t, r, name, text, strlen(text), err);
	free(text);
	json_decref(j);
	return rc;
}

/* Lines into a text (open_memstream). */
struct text {
	FILE *f;
	char *data;
	size_t len;
};

static void text_open(struct text *t)
{
	t->data = NULL;
	t->len = 0;
	t->f = open_memstream(&t->data, &t->len);
	if (!t->f)
		abort(); /* as fl_xmalloc */
}

static void text_line(void *user, const char *line)
{
	fprintf(((struct text *)user)->f, "%s\n", line);
}

/* Close @t and add it as ID/@name. */
static int add_text(struct fl_tgz *t, const struct diag_run *r,
		    const char *name, struct text *x, struct fl_error *err)
{
	int rc;

	fclose(x->f);
	rc = add(t, r, name, x->data, x->len, err);
	free(x->data);
	return rc;
}

/* A file of the state dir, as it is (absent: left out). */
static int add_state_file(struct fl_tgz *t, const struct diag_run *r,
			  const char *name, struct fl_error *err)
{
	char *path = fl_path_join(r->cfg->state_dir, name), *data = NULL;
	size_t len = 0;
	int rc = 0;

	if (fl_read_file(path, STATE_FILE_MAX, &data, &len, NULL) == 0)
		rc = add(t, r, name, data, len, err);
	free(data);
	free(path);
	return rc;
}

/* The end of a [diag.log.NAME] file, through the logs check. */
static int add_log_file(struct fl_tgz *t, const struct diag_run *r,
			const char *log, struct fl_error *err)
{
	char *src = fl_xasprintf("file:%s", log);
	char *name = fl_xasprintf("logs/%s.log", log);
	const struct diag_check *logs = diag_builtin("logs", false);
	struct diag_req q = {.n_args = 1, .args = {src}};
	struct diag_run mine = *r;
	json_t *res = NULL, *lines;
	struct text x;
	int rc;

	mine.req = &q;
	text_open(&x);
	if (logs->run(&mine, &res, NULL) == 0) {
		lines = json_object_get(res, "lines");
		for (size_t i = 0; i < json_array_size(lines); i++)
			text_line(&x,
				  json_string_value(json_array_get(lines, i)));
	}
	rc = add_text(t, r, name, &x, err);
	json_decref(res);
	free(name);
	free(src);
	return rc;
}

static json_t *status(const struct diag_run *r)
{
	json_t *j = NULL;

	return agent_status_json(r->cfg, &j, NULL) ? NULL : j;
}

static int gather(struct fl_tgz *t, const struct diag_run *r,
		  struct fl_error *err)
{
	struct text log;
	int rc;

	text_open(&log);
	fl_log_kept(r->cfg->id, LOG_LINES, text_line, &log);
	rc = add_text(t, r, "agent.log", &log, err);
	if (!rc)
		rc = add_json(t, r, "status.json", status(r), err);
	if (!rc)
		rc = add_json(t, r, "agent.conf.json",
			      diag_builtin_json(r, "config"), err);
	if (!rc)
		rc = add_json(t, r, "sysinfo.json",
			      diag_builtin_json(r, "sysinfo"), err);
	if (!rc)
		rc = add_json(t, r, "net.json", diag_builtin_json(r, "net"),
			      err);
	if (!rc)
		rc = add_state_file(t, r, AGENT_JOURNAL_FILE, err);
	if (!rc)
		rc = add_state_file(t, r, AGENT_CMD_LOG_FILE, err);
	for (size_t i = 0; !rc && i < r->cfg->n_diag_logs; i++)
		rc = add_log_file(t, r, r->cfg->diag_logs[i].name, err);
	return rc;
}

/* Write the bundle into @path; its size in *@ret_size. */
static int write_bundle(const struct diag_run *r, const char *path,
			off_t *ret_size, struct fl_error *err)
{
	struct fl_tgz *t = NULL;
	struct stat st;
	int fd, rc;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
		  0600);
	if (fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot create '%s'", path);
	rc = fl_tgz_open(fd, &t, err);
	if (!rc)
		rc = fl_tgz_add(t, r->cfg->id, NULL, 0, 0700, err);
	if (!rc)
		rc = gather(t, r, err);
	if (fl_tgz_close(t, err) && !rc)
		rc = FL_EIO;
	if (!rc && fstat(fd, &st) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot stat '%s'", path);
	close(fd);
	if (!rc && (uint64_t)st.st_size > r->cfg->diag_bundle_max)
		rc = fl_fail(err, FL_ELIMIT,
			     "the bundle of %lld bytes is over [diag] "
			     "bundle_max (%llu)",
			     (long long)st.st_size,
			     (unsigned long long)r->cfg->diag_bundle_max);
	if (!rc)
		*ret_size = st.st_size;
	return rc;
}

/* PUT it to fleetd with the device's certificate. */
static int upload(const struct diag_run *r, const char *file,
		  const char *upload_id, struct fl_error *err)
{
	struct agent_identity_paths p;
	struct fl_http *h = NULL;
	json_t *resp = NULL;
	char *path;
	int rc;

	agent_identity_paths(r->cfg->state_dir, false, &p);
	rc = fl_http_new(
	    &(struct fl_http_opts){.base_url = r->cfg->server_url,
				   .ca_file = r->cfg->ca_file,
				   .cert_file = p.cert,
				   .key_file = p.key,
				   .timeout_ms = diag_ms_left(r) + 1,
				   .max_response = 64 * 1024},
	    &h, err);
	path = fl_xasprintf("/api/v1/devices/%s/diag-bundles/%s", r->cfg->id,
			    upload_id);
	if (!rc)
		rc = fl_http_upload(h, "PUT", path, file, &resp, err);
	if (rc)
		fl_error_prefix(err, "upload");
	json_decref(resp);
	fl_http_free(h);
	free(path);
	agent_identity_paths_release(&p);
	return rc;
}

int diag_bundle_run(const struct diag_run *r, json_t **ret,
		    struct fl_error *err)
{
	const char *id = r->req->n_args == 1 ? r->req->args[0] : "";
	char *tmp = fl_path_join(r->cfg->state_dir, BUNDLE_TMP);
	off_t size = 0;
	int rc;

	if (!valid_upload_id(id))
		rc = fl_fail(err, FL_EINVAL,
			     "bundle takes one UPLOAD_ID (1 to %d of A-Z a-z "
			     "0-9 _ -)",
			     UPLOAD_ID_MAX);
	else
		rc = write_bundle(r, tmp, &size, err);
	if (!rc)
		rc = upload(r, tmp, id, err);
	if (unlink(tmp) < 0 && errno != ENOENT)
		fl_warn("cannot remove '%s': %s", tmp, strerror(errno));
	if (!rc)
		*ret = json_pack("{s:s, s:I}", "upload", id, "size",
				 (json_int_t)size);
	free(tmp);
	return rc;
}

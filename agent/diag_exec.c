/* SPDX-License-Identifier: MIT */
/*
 * Operator checks (docs/diagnostics.md): the executables in [diag]
 * checks_dir, named by their file name.  Each argument must match the
 * check's [diag.check.NAME] args pattern whole (a check without one
 * takes no arguments); the program is started with posix_spawn, argv
 * only (never a shell), in its own process group, with a small fixed
 * environment, stdin from /dev/null, stdout and stderr kept apart up to
 * output_max bytes each; the whole group is killed (SIGKILL) when the
 * time is up, when the agent stops, and when the program ends (what it
 * left running in the background goes with it).
 */
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "diag_internal.h"
#include "fsutil.h"
#include "proc.h"
#include "util.h"

#define EXEC_PATH                                                              \
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define OUTPUT_DEFAULT 16384 /* without a [diag.check.NAME] */

bool diag_exec_exists(const struct agent_config *cfg, const char *name)
{
	struct stat st;
	char *p;
	bool ok;

	if (!cfg->diag_checks_dir || !agent_diag_name_valid(name))
		return false;
	p = fl_path_join(cfg->diag_checks_dir, name);
	ok = lstat(p, &st) == 0 && S_ISREG(st.st_mode) &&
	     !(st.st_mode & (S_IWGRP | S_IWOTH)) && access(p, X_OK) == 0;
	free(p);
	return ok;
}

/* Every argument matches the check's pattern whole; FL_EINVAL naming
 * the first one that does not. */
static int allowed(const struct agent_diag_check *k, const struct diag_req *q,
		   struct fl_error *err)
{
	regex_t re;
	int rc = 0;

	if (q->n_args == 0)
		return 0;
	if (!k || !k->args)
		return fl_fail(err, FL_EINVAL, "'%s' takes no arguments",
			       q->check);
	if (agent_diag_args_compile(k->args, &re, err))
		return FL_EINVAL;
	for (size_t i = 0; i < q->n_args && !rc; i++)
		if (regexec(&re, q->args[i], 0, NULL, 0) != 0)
			rc = fl_fail(err, FL_EINVAL,
				     "argument %zu is not allowed for '%s'",
				     i + 1, q->check);
	regfree(&re);
	return rc;
}

static int cancel_tick(void *user, struct fl_error *err)
{
	return diag_cancelled(user)
		   ? fl_fail(err, FL_ERR, "the agent is stopping")
		   : 0;
}

static json_t *stream(const struct agent_proc_capture *c)
{
	return diag_json_text(c->data ? c->data : "", c->len);
}

/* {"exit", "stdout", "stderr", "truncated"}; "exit" null when it was
 * killed before its end. */
static json_t *result(const struct agent_proc_result *res, bool ended,
		      const struct agent_proc_capture *out,
		      const struct agent_proc_capture *errout)
{
	return json_pack("{s:o, s:o, s:o, s:b}", "exit",
			 ended ? json_integer(res->status) : json_null(),
			 "stdout", stream(out), "stderr", stream(errout),
			 "truncated", out->truncated || errout->truncated);
}

int diag_exec_run(const struct diag_run *r, json_t **ret, struct fl_error *err)
{
	const struct diag_req *q = r->req;
	const struct agent_diag_check *k =
	    agent_config_diag_check(r->cfg, q->check);
	int64_t ms = diag_ms_left(r), limit;
	struct agent_proc_capture out = {0}, errout = {0};
	const char *argv[DIAG_ARGS_MAX + 2], *env[4];
	struct agent_proc_result res = {0};
	struct agent_proc_opts o = {0};
	char *path, *id;
	int rc;

	limit = (k ? k->timeout_s : r->cfg->diag_max_timeout_s) * 1000;
	rc = allowed(k, q, err);
	if (rc)
		return rc;
	if (!diag_exec_exists(r->cfg, q->check))
		return fl_fail(err, FL_ERR, "check '%s' is gone", q->check);
	path = fl_path_join(r->cfg->diag_checks_dir, q->check);
	id = fl_xasprintf("FLEET_DEVICE_ID=%s", r->cfg->id);
	argv[0] = path;
	memcpy(&argv[1], q->args, q->n_args * sizeof(*argv));
	argv[q->n_args + 1] = NULL;
	env[0] = EXEC_PATH;
	env[1] = "LC_ALL=C";
	env[2] = id;
	env[3] = NULL;
	out.max = errout.max = k ? k->output_max : OUTPUT_DEFAULT;
	o = (struct agent_proc_opts){
	    .argv = argv,
	    .env = env,
	    .clean_env = true,
	    .timeout_ms = (int)(ms < limit ? ms : limit),
	    .tick = cancel_tick,
	    .user = (void *)r,
	    .out = &out,
	    .errout = &errout,
	    .kill_group = true,
	};
	rc = agent_proc_run(&o, &res, err);
	if (rc != FL_EIO)
		*ret = result(&res, rc == 0, &out, &errout);
	if (!rc && res.status != 0)
		rc = fl_fail(err, FL_ERR, "'%s' exited with status %d",
			     q->check, res.status);
	free(out.data);
	free(errout.data);
	free(path);
	free(id);
	return rc;
}

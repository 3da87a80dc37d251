/* SPDX-License-Identifier: MIT */
#ifndef AGENT_DIAG_INTERNAL_H
#define AGENT_DIAG_INTERNAL_H

/*
 * What the diagnostics files share (diag.c, diag_checks.c,
 * diag_exec.c, diag_bundle.c).  Not for use outside agent/.
 *
 * A check runs off the agent's thread, so it sees the agent only
 * through struct diag_run: a snapshot taken on the agent's thread when
 * the request was accepted (the configuration is read-only and
 * outlives every check: the feature joins its threads before it goes).
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_config.h"
#include "diag.h"
#include "identity.h"
#include "pki.h"

struct diag_run {
	const struct agent_config *cfg;
	const struct diag_req *req;
	struct fl_pki_cert_info cert; /* the certificate in use */
	int64_t deadline_ms;	      /* monotonic: the check's bound */
	int64_t up_since_ms;	      /* monotonic: the agent's start */
	bool sim;		      /* a fleet-sim device */
	const volatile int *cancel;   /* non-zero: give up now */
	struct agent_modbus *modbus;  /* agent_modbus_diag (thread-safe) */
};

/*
 * A check: fills *@ret_result with a new object, or fails with an
 * fl_err code (diag_code_of: FL_EINVAL bad-args, FL_ETIMEOUT timeout,
 * FL_ELIMIT too-large, others failed).  A failing check may leave a
 * result too (an operator check's output); the caller frees it.
 */
typedef int (*diag_check_fn)(const struct diag_run *r, json_t **ret_result,
			     struct fl_error *err);

struct diag_check {
	const char *name;
	diag_check_fn run;
	unsigned max_args;
	bool sim; /* also on fleet-sim's devices */
};

/* diag.c: @len bytes of text as a JSON string; bytes that are not
 * UTF-8 become '?'. */
json_t *diag_json_text(const char *s, size_t len);

/* diag_checks.c: the built-in check @name (@sim: of the simulated
 * devices' set), or NULL. */
const struct diag_check *diag_builtin(const char *name, bool sim);

/* diag_checks.c: milliseconds left before the check's deadline (>= 0). */
int64_t diag_ms_left(const struct diag_run *r);

/* diag_checks.c: the check should give up (the agent is stopping). */
bool diag_cancelled(const struct diag_run *r);

/* diag_checks.c: the built-in @name's result for the support bundle
 * (NULL when it failed; logged). */
json_t *diag_builtin_json(const struct diag_run *r, const char *name);

/* diag_checks.c: the agent's own recent log lines (fl_log_kept), at
 * most @lines, as a JSON array of strings. */
json_t *diag_agent_log(const struct diag_run *r, unsigned lines);

/* diag_net.c: the "net" check (diag_check_fn). */
int diag_check_net(const struct diag_run *r, json_t **ret_result,
		   struct fl_error *err);

/* diag_exec.c: an executable operator check @name in [diag]
 * checks_dir (a regular file, not a link, not writable by group or
 * others). */
bool diag_exec_exists(const struct agent_config *cfg, const char *name);

/* diag_exec.c: run operator check r->req->check (diag_check_fn). */
int diag_exec_run(const struct diag_run *r, json_t **ret_result,
		  struct fl_error *err);

/* diag_bundle.c: the "bundle" check (diag_check_fn). */
int diag_bundle_run(const struct diag_run *r, json_t **ret_result,
		    struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_DIAG_H
#define AGENT_DIAG_H

/*
 * Diagnostics on the device (issue 12; the wire format is
 * docs/protocol.md "Diagnostics", the agent's side
 * docs/diagnostics.md).  A request on PREFIX/ID/diag/req names a check
 * and its arguments and carries an MQTT v5 response topic, which must
 * be PREFIX/ID/diag/resp/REQUESTER, and correlation data; the reply
 * goes there with the correlation data echoed.
 *
 * The feature is agent_feature_diag (diag.c): it checks each request
 * (caps, rate, concurrency: "busy"), runs the check on a thread of its
 * own, never on the agent's loop, and publishes the reply from the
 * loop.  fleet-sim's devices use agent_feature_diag_sim instead: the
 * checks that make sense for a simulated device, run in the feature's
 * tick (fleet-sim's worker pool), no thread per device.
 *
 * Here: the request parser and the reply builder, which take untrusted
 * input and are fuzzed (tests/fuzz/fuzz_diag.c).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "agent_config.h"
#include "err.h"

#define DIAG_REQ_MAX 4096	   /* bytes of a request payload */
#define DIAG_REPLY_MAX (64 * 1024) /* bytes of a reply payload */
#define DIAG_ARGS_MAX 16	   /* arguments of a request */
#define DIAG_ARG_MAX 256	   /* bytes of one argument */
#define DIAG_ARGS_TOTAL_MAX 2048   /* bytes of all arguments */
#define DIAG_TIMEOUT_DEFAULT_S 10  /* a request without timeout_s */
#define DIAG_TIMEOUT_MAX_S 300	   /* timeout_s may ask for */
#define DIAG_REQUESTER_MAX 64	/* bytes of the response topic's last level */
#define DIAG_CORRELATION_MAX 64 /* bytes of correlation data */
#define DIAG_LOG_KEEP 1000	/* log lines fleet-agent run keeps */

/* How a check ended, as the reply's "code" says it (none for ok). */
enum diag_code {
	DIAG_OK = 0,
	DIAG_UNKNOWN_CHECK, /* "unknown-check" */
	DIAG_BAD_ARGS,	    /* "bad-args": a malformed request too */
	DIAG_BUSY,	    /* "busy": over the rate or the concurrency */
	DIAG_TIMEOUT,	    /* "timeout" */
	DIAG_FAILED,	    /* "failed" */
	DIAG_TOO_LARGE,	    /* "too-large": request or reply */
};

/* "unknown-check", ...; "ok" for DIAG_OK. */
const char *diag_code_name(enum diag_code code);

/* The reply code for a check function's fl_err @rc (0: DIAG_OK). */
enum diag_code diag_code_of(int rc);

/* A request: {"check": NAME, "args": [...], "timeout_s": N}. */
struct diag_req {
	char check[AGENT_DIAG_NAME_MAX + 1]; /* "" when unreadable */
	char *args[DIAG_ARGS_MAX];
	size_t n_args;
	int timeout_s;
};

/*
 * Parse and check a request payload of @len bytes (untrusted, not
 * NUL-ended).  Unknown members are ignored.  On failure *@ret_code is
 * DIAG_TOO_LARGE (over DIAG_REQ_MAX) or DIAG_BAD_ARGS, @err says why,
 * and ret->check holds the check's name when it could be read (for the
 * reply); release @ret either way.  Returns 0, FL_ELIMIT, FL_EPARSE.
 */
int diag_req_parse(const void *payload, size_t len, struct diag_req *ret,
		   enum diag_code *ret_code, struct fl_error *err);

/* Free what @r holds and zero it; NULL is fine. */
void diag_req_release(struct diag_req *r);

/*
 * Is @topic the response topic a request for device @id under @prefix
 * may name: PREFIX/ID/diag/resp/REQUESTER, REQUESTER 1..64 bytes of
 * [A-Za-z0-9_-]?  The requester's name in *@ret_requester (a pointer
 * into @topic; may be NULL) when it is.
 */
bool diag_response_topic_ok(const char *prefix, const char *id,
			    const char *topic, const char **ret_requester);

/*
 * The reply text for a check named @check: with DIAG_OK {"check",
 * "ok": true, "elapsed_ms", "result": @result}, else {"check", "ok":
 * false, "elapsed_ms", "error": @msg, "code"} and "result" too when
 * @result is given (an operator check that exited non-zero).  A reply
 * over DIAG_REPLY_MAX becomes a too-large error.  @result is borrowed
 * (may be NULL).  Returns the text (caller frees; never NULL) and its
 * length in *@ret_len.
 */
char *diag_reply(const char *check, enum diag_code code, const char *msg,
		 const json_t *result, int64_t elapsed_ms, size_t *ret_len);

/* The features (diag.c): fleet-agent's, and fleet-sim's. */
struct agent_feature;
extern const struct agent_feature agent_feature_diag_sim;

#endif

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the agent's diagnostics requests (agent/diag.c): the response
 * topic a request names, its payload, and the reply built for it.
 *
 * Input: the response topic, then the request payload, separated by a
 * "%%" line (fuzz.h).  The topic rule is checked against an independent
 * reading (prefix, id, "diag/resp/", 1..64 of [A-Za-z0-9_-]).  A payload
 * that parses must hold within every cap; written back as JSON it must
 * parse to the same request; its reply (the request as the result) must
 * parse to ok, the same check and the same result.  One that does not
 * parse must be refused as too-large exactly when it is over 4 KiB, and
 * its error reply must parse and name the code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"
#include "fuzz.h"
#include "json.h"
#include "util.h"

#define PREFIX "fleet"
#define ID "dev-1"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	return 0;
}

/* The rule, read another way. */
static bool oracle_topic(const char *t)
{
	static const char head[] = PREFIX "/" ID "/diag/resp/";
	size_t n;

	if (strncmp(t, head, strlen(head)) != 0)
		return false;
	t += strlen(head);
	n = strlen(t);
	if (n < 1 || n > 64)
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		      (*t >= '0' && *t <= '9') || *t == '_' || *t == '-'))
			return false;
	return true;
}

static void check_topic(const struct fuzz_part *p)
{
	char *t = fuzz_strndup(p);
	const char *who = NULL;
	bool ok = diag_response_topic_ok(PREFIX, ID, t, &who);

	/* a NUL inside ends the topic for both readings */
	FUZZ_ASSERT(ok == oracle_topic(t));
	FUZZ_ASSERT(!ok || (who > t && strcmp(who, strrchr(t, '/') + 1) == 0));
	free(t);
}

static json_t *req_json(const struct diag_req *r)
{
	json_t *a = json_array();

	for (size_t i = 0; i < r->n_args; i++)
		json_array_append_new(a, json_string(r->args[i]));
	return json_pack("{s:s, s:o, s:i}", "check", r->check, "args", a,
			 "timeout_s", r->timeout_s);
}

static json_t *parse_reply(const char *text, size_t len)
{
	json_t *j = NULL;

	FUZZ_ASSERT(len <= DIAG_REPLY_MAX && strlen(text) == len);
	FUZZ_ASSERT(fl_json_parse(text, len, DIAG_REPLY_MAX, &j, NULL) == 0);
	FUZZ_ASSERT(json_is_object(j));
	return j;
}

/* A request that parsed: caps, round trip, its reply. */
static void check_good(const struct diag_req *r)
{
	json_t *j = req_json(r), *reply;
	struct diag_req again;
	enum diag_code code;
	size_t total = 0, len;
	char *text;

	FUZZ_ASSERT(agent_diag_name_valid(r->check));
	FUZZ_ASSERT(r->n_args <= DIAG_ARGS_MAX);
	FUZZ_ASSERT(r->timeout_s >= 1 && r->timeout_s <= DIAG_TIMEOUT_MAX_S);
	for (size_t i = 0; i < r->n_args; i++) {
		FUZZ_ASSERT(strlen(r->args[i]) <= DIAG_ARG_MAX);
		total += strlen(r->args[i]);
	}
	FUZZ_ASSERT(total <= DIAG_ARGS_TOTAL_MAX);
	text = fl_json_dumps(j);
	/* written back it may grow past 4 KiB (escapes): then too-large */
	if (strlen(text) <= DIAG_REQ_MAX) {
		FUZZ_ASSERT(diag_req_parse(text, strlen(text), &again, &code,
					   NULL) == 0);
		FUZZ_ASSERT(strcmp(again.check, r->check) == 0 &&
			    again.n_args == r->n_args &&
			    again.timeout_s == r->timeout_s);
		for (size_t i = 0; i < r->n_args; i++)
			FUZZ_ASSERT(strcmp(again.args[i], r->args[i]) == 0);
		diag_req_release(&again);
	}
	free(text);
	text = diag_reply(r->check, DIAG_OK, NULL, j, 7, &len);
	reply = parse_reply(text, len);
	FUZZ_ASSERT(json_is_true(json_object_get(reply, "ok")));
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(reply, "check")),
			   r->check) == 0);
	FUZZ_ASSERT(json_equal(json_object_get(reply, "result"), j));
	json_decref(reply);
	json_decref(j);
	free(text);
}

static void check_bad(const struct diag_req *r, enum diag_code code,
		      size_t in_len, const char *msg)
{
	json_t *reply;
	size_t len;
	char *text;

	FUZZ_ASSERT((code == DIAG_TOO_LARGE) == (in_len > DIAG_REQ_MAX));
	FUZZ_ASSERT(code == DIAG_TOO_LARGE || code == DIAG_BAD_ARGS);
	FUZZ_ASSERT(!r->check[0] || agent_diag_name_valid(r->check));
	text = diag_reply(r->check, code, msg, NULL, 0, &len);
	reply = parse_reply(text, len);
	FUZZ_ASSERT(json_is_false(json_object_get(reply, "ok")));
	FUZZ_ASSERT(strcmp(json_string_value(json_object_get(reply, "code")),
			   diag_code_name(code)) == 0);
	FUZZ_ASSERT(json_string_value(json_object_get(reply, "error")));
	json_decref(reply);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[2];
	size_t n = fuzz_split(data, size, parts, 2);
	const struct fuzz_part *payload = &parts[n - 1];
	struct fl_error err = {0};
	struct diag_req r;
	enum diag_code code;
	int rc;

	if (n == 2)
		check_topic(&parts[0]);
	rc = diag_req_parse(payload->p, payload->len, &r, &code, &err);
	if (rc == 0)
		check_good(&r);
	else
		check_bad(&r, code, payload->len, err.msg);
	diag_req_release(&r);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* The bundle trust root on the device; see trust.h. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"
#include "http.h"
#include "json.h"
#include "trust.h"
#include "util.h"

#define ROOT_RESPONSE_MAX (FSIG_ROOT_MAX + 4096)
#define LIST_RESPONSE_MAX (256 * 1024)

int agent_trust_load(const char *state_dir, struct fsig_root **ret,
		     struct fl_error *err)
{
	char *path = fl_path_join(state_dir, AGENT_ROOT_FILE);
	enum fsig_reason why = FSIG_R_NONE;
	int rc;

	if (!fl_path_exists(path))
		rc = fl_fail(err, FL_ENOTFOUND, "no trust root '%s'", path);
	else
		rc = fsig_root_load_trusted(path, ret, &why, err);
	if (rc && rc != FL_ENOTFOUND)
		fl_error_prefix(err, "trust root '%s'", path);
	free(path);
	return rc;
}

/* An mTLS client for fleetd with the device's current identity. */
static int client(const struct agent_http_target *t, const char *state_dir,
		  size_t max, struct fl_http **ret, struct fl_error *err)
{
	struct agent_identity_paths p;
	struct fl_http_opts o = {
	    .base_url = t->server_url,
	    .ca_file = t->ca_file,
	    .timeout_ms = t->timeout_ms,
	    .max_response = max,
	};
	int rc;

	agent_identity_paths(state_dir, false, &p);
	o.cert_file = p.cert;
	o.key_file = p.key;
	rc = fl_http_new(&o, ret, err);
	agent_identity_paths_release(&p);
	return rc;
}

/* GET /api/v1/roots/@version and parse the envelope. */
static int fetch_root(struct fl_http *h, uint64_t version,
		      struct fsig_root **ret, struct fl_error *err)
{
	char *path = fl_xasprintf("/api/v1/roots/%" PRIu64, version);
	json_t *j = NULL;
	char *text = NULL;
	int rc;

	rc = fl_http_json(h, "GET", path, NULL, &j, err);
	if (!rc && !json_is_object(j))
		rc = fl_fail(err, FL_EPARSE, "fleetd sent no root envelope");
	if (!rc) {
		text = fl_json_dumps(j);
		rc = fsig_root_parse(text, strlen(text), ret, err);
	}
	if (!rc && fsig_root_version(*ret) != version) {
		rc = fl_fail(err, FL_EVERIFY,
			     "fleetd answered root %" PRIu64 " for %" PRIu64,
			     fsig_root_version(*ret), version);
		fsig_root_free(*ret);
		*ret = NULL;
	}
	free(text);
	free(path);
	json_decref(j);
	return rc;
}

int agent_trust_fetch_first(const struct agent_http_target *t,
			    const char *state_dir, struct fl_error *err)
{
	char *path = fl_path_join(state_dir, AGENT_ROOT_FILE);
	enum fsig_reason why = FSIG_R_NONE;
	struct fsig_root *root = NULL;
	struct fl_http *h = NULL;
	int rc = 0;

	if (fl_path_exists(path))
		goto out;
	rc = client(t, state_dir, ROOT_RESPONSE_MAX, &h, err);
	if (!rc)
		rc = fetch_root(h, 1, &root, err);
	if (!rc)
		rc = fsig_root_check_self(root, &why, err);
	if (!rc && fsig_root_expired(root, 0))
		rc = fl_fail(err, FL_EVERIFY, "fleetd's root 1 has expired");
	if (!rc)
		rc = fsig_root_save(root, path, err);
out:
	fsig_root_free(root);
	fl_http_free(h);
	free(path);
	return rc;
}

/* The highest version in fleetd's root list (0 when empty). */
static int newest_version(struct fl_http *h, uint64_t *ret,
			  struct fl_error *err)
{
	json_t *list = NULL, *e;
	uint64_t best = 0;
	size_t i;
	int rc;

	rc = fl_http_json(h, "GET", "/api/v1/roots", NULL, &list, err);
	if (!rc && !json_is_array(list))
		rc = fl_fail(err, FL_EPARSE, "fleetd sent no root list");
	json_array_foreach(list, i, e)
	{
		json_int_t v =
		    json_integer_value(json_object_get(e, "version"));

		if (!rc && v > 0 && (uint64_t)v > best)
			best = (uint64_t)v;
	}
	if (!rc)
		*ret = best;
	json_decref(list);
	return rc;
}

/* Fetch versions cur+1 .. newest and walk the chain. */
static int walk(struct fl_http *h, const struct fsig_root *cur, uint64_t newest,
		struct fsig_root **ret, struct fl_error *err)
{
	uint64_t from = fsig_root_version(cur) + 1;
	size_t n = 0, max = (size_t)(newest - from + 1);
	struct fsig_root **cands;
	enum fsig_reason why = FSIG_R_NONE;
	int rc = 0;

	if (max > AGENT_ROOTS_FETCH_MAX)
		return fl_fail(err, FL_ELIMIT,
			       "fleetd has %zu newer roots (at most %d taken)",
			       max, AGENT_ROOTS_FETCH_MAX);
	cands = fl_xcalloc(max, sizeof(*cands));
	for (uint64_t v = from; !rc && v <= newest; v++)
		rc = fetch_root(h, v, &cands[n++], err);
	if (rc)
		n--; /* the failed slot stays NULL */
	if (!rc)
		rc = fsig_root_update(cur, cands, n, 0, ret, &why, err);
	for (size_t i = 0; i < max; i++)
		fsig_root_free(cands[i]);
	free(cands);
	return rc;
}

int agent_trust_update(const struct agent_http_target *t, const char *state_dir,
		       bool *ret_updated, struct fl_error *err)
{
	char *path = fl_path_join(state_dir, AGENT_ROOT_FILE);
	struct fsig_root *cur = NULL, *newest = NULL;
	struct fl_http *h = NULL;
	uint64_t top = 0;
	bool updated = false;
	int rc;

	rc = agent_trust_load(state_dir, &cur, err);
	if (!rc)
		rc = client(t, state_dir, LIST_RESPONSE_MAX, &h, err);
	if (!rc)
		rc = newest_version(h, &top, err);
	if (!rc && top > fsig_root_version(cur)) {
		rc = walk(h, cur, top, &newest, err);
		if (!rc)
			rc = fsig_root_save(newest, path, err);
		updated = rc == 0;
	}
	if (!rc && ret_updated)
		*ret_updated = updated;
	fsig_root_free(cur);
	fsig_root_free(newest);
	fl_http_free(h);
	free(path);
	return rc;
}

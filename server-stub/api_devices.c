/* SPDX-License-Identifier: MIT */
/* Enrolment, re-enrolment, provisioning and the devices API
 * (docs/protocol.md). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "api_json.h"
#include "broker.h"
#include "ca.h"
#include "devices_svc.h"
#include "jobs.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "proto.h"
#include "util.h"
#include "validate.h"

#define CSR_FIELD_MAX (16 * 1024)

/*
 * Device ids fleetd keeps for itself: its broker username and its
 * replicas' ("fleetd.NAME"), and the
 * "tech-" prefix, which names technicians (their certificates' CN is
 * their diag requester: docs/protocol.md "Diagnostics").
 */
static int check_device_id(const char *id, struct fl_error *err)
{
	if (fl_check_id(id, "device id", err))
		return FL_EINVAL;
	if (srv_mqtt_user_is_fleetd(id))
		return fl_fail(err, FL_EINVAL, "device id '%s' is reserved",
			       id);
	if (fl_startswith(id, SRV_TECH_PREFIX))
		return fl_fail(err, FL_EINVAL,
			       "device id '%s' is reserved: ids starting with "
			       "'" SRV_TECH_PREFIX "' name technicians",
			       id);
	return 0;
}

/* Add the URLs, group and (when not the default) topic prefix a device
 * needs to an issue response. */
static void add_urls(struct srv_req *r, json_t *resp, const char *group)
{
	const char *mqtt = r->srv->cfg.mqtt_url;
	const char *prefix = r->srv->cfg.topic_prefix;

	json_object_set_new(resp, "server_url",
			    json_string(srv_public_url(r->srv)));
	json_object_set_new(resp, "mqtt_url", mqtt ? json_string(mqtt)
						   : json_null());
	json_object_set_new(resp, "group", group && *group ? json_string(group)
							    : json_null());
	if (prefix && !fl_streq(prefix, FL_TOPIC_PREFIX_DEFAULT))
		json_object_set_new(resp, "topic_prefix", json_string(prefix));
}

/* Ask the broker to know (and not disable) this client. */
static void broker_allow(struct srv *srv, const char *id)
{
	static const char *const cmds[] = {"createClient", "enableClient"};

	srv_mqtt_dynsec(srv->mqtt, cmds, 2, id, NULL);
}

/*
 * Issue for @id from the CSR in @body and record the device: the common
 * part of enrol and provision.  @token_hash is consumed atomically.
 */
static int issue_and_record(struct srv_req *r, json_t *body, const char *id,
			    const char *group, const char *token_hash)
{
	struct srv_issued iss = {0};
	struct fl_error err = {0};
	const char *csr;
	struct srv_cert c;
	int rc;

	if (fl_json_str(body, "csr", CSR_FIELD_MAX, &csr, &err) ||
	    srv_ca_issue_device(r->srv->ca, csr, strlen(csr), id, false, &iss,
				&err))
		return srv_reply_fail(r, &err);
	c = (struct srv_cert){iss.serial, id, iss.not_before, iss.not_after,
			      iss.sha256[0] ? iss.sha256 : NULL};
	rc = srv_store_device_enroll(r->srv->store, id, group,
				     srv_req_actor(r), token_hash, false, &c,
				     &err);
	if (rc) {
		srv_issued_release(&iss);
		return srv_reply_fail(r, &err);
	}
	broker_allow(r->srv, id);
	add_urls(r, iss.json, group);
	fl_info("enrolled device %s (serial %s) by %s", id, iss.serial,
		srv_req_actor(r));
	rc = srv_reply_json(r, 201, json_incref(iss.json));
	srv_issued_release(&iss);
	return rc;
}

int api_enroll(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct fl_error err = {0};
	const char *token, *id;
	char hash[65], group[64], token_id[17];

	if (!body)
		return 0;
	if (fl_json_str(body, "token", 256, &token, &err) ||
	    fl_json_str(body, "id", FL_ID_MAX, &id, &err) ||
	    check_device_id(id, &err))
		return srv_reply_fail(r, &err);
	fl_sha256_hex(token, strlen(token), hash);
	if (srv_store_enroll_token_check(r->srv->store, hash, token_id, group,
					 sizeof(group), &err))
		return srv_reply_error(r, 401, "unauthorized", "%s", err.msg);
	/* the enrolment token is the caller, for the device row and audit */
	r->who.kind = SRV_TOKEN;
	fl_strlcpy(r->who.id, token_id, sizeof(r->who.id));
	return issue_and_record(r, body, id, group, hash);
}

int api_provision(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct fl_error err = {0};
	const char *id, *group = NULL;

	if (!body)
		return 0;
	if (fl_json_str(body, "id", FL_ID_MAX, &id, &err) ||
	    check_device_id(id, &err) ||
	    fl_json_str_opt(body, "group", FL_ID_MAX, &group, &err) ||
	    (group && fl_check_id(group, "group", &err)))
		return srv_reply_fail(r, &err);
	return issue_and_record(r, body, id, group, NULL);
}

/* Re-enrolment refused by the rate bounds: 429 with Retry-After. */
static int reply_limited(struct srv_req *r, const struct fl_error *err,
			 int64_t retry_after)
{
	if (err->code != FL_ELIMIT || retry_after <= 0)
		return srv_reply_fail(r, err);
	r->retry_after = (unsigned)retry_after;
	return srv_reply_error(r, 429, "too_many_requests", "%s", err->msg);
}

/* Record the certificate in @iss as @r's device's one pending one. */
static int record_pending(struct srv_req *r, const struct srv_issued *iss,
			  int64_t *ret_retry, struct fl_error *err)
{
	struct srv_crl_hook hook = srv_ca_crl_hook(r->srv->ca);
	struct srv_cert c = {iss->serial, r->who.id, iss->not_before,
			     iss->not_after,
			     iss->sha256[0] ? iss->sha256 : NULL};
	struct srv_reenroll re = {&c, r->who.serial, &r->srv->cfg.reenroll,
				  &hook};
	struct srv_strv superseded = {0};
	int rc;

	rc = srv_store_cert_add(r->srv->store, &re, &superseded, ret_retry,
				err);
	if (!rc && superseded.n) {
		fl_info("device %s: pending certificate %s superseded",
			r->who.id, superseded.v[0]);
		srv_broker_reload(r->srv->broker, false);
	}
	srv_strv_free(&superseded);
	return rc;
}

int api_reenroll(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct srv_device_row dev = {0};
	struct srv_issued iss = {0};
	struct fl_error err = {0};
	int64_t retry = 0;
	const char *csr;
	int rc;

	if (!body)
		return 0;
	/* refuse before signing anything: a refused call stays cheap */
	if (srv_store_reenroll_check(r->srv->store, r->who.id,
				     &r->srv->cfg.reenroll, &retry, &err))
		return reply_limited(r, &err, retry);
	if (fl_json_str(body, "csr", CSR_FIELD_MAX, &csr, &err) ||
	    srv_store_device_get(r->srv->store, r->who.id, &dev, &err) ||
	    srv_ca_issue_device(r->srv->ca, csr, strlen(csr), r->who.id, true,
				&iss, &err)) {
		srv_device_row_free(&dev);
		return srv_reply_fail(r, &err);
	}
	rc = record_pending(r, &iss, &retry, &err);
	if (!rc) {
		add_urls(r, iss.json, dev.group);
		fl_info("re-enrolled device %s: new serial %s", r->who.id,
			iss.serial);
		rc = srv_reply_json(r, 201, json_incref(iss.json));
	} else {
		rc = reply_limited(r, &err, retry);
	}
	srv_issued_release(&iss);
	srv_device_row_free(&dev);
	return rc;
}

int api_reenroll_confirm(struct srv_req *r)
{
	struct srv_crl_hook hook = srv_ca_crl_hook(r->srv->ca);
	struct srv_strv revoked = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_store_cert_confirm(r->srv->store, r->who.id, r->who.serial,
				   &hook, &revoked, &err))
		return srv_reply_fail(r, &err);
	/*
	 * A session may still run on a certificate just revoked.  No kick:
	 * the agent's own session on its new certificate (it reconnected
	 * before confirming) holds the same client id, and kicking it lost
	 * its in-flight report (t2101 under the sanitizers).  The reload
	 * makes the broker refuse the old certificate's handshakes, and
	 * fleet_revoke.so deny any session still on it everything.
	 */
	if (revoked.n)
		srv_broker_reload(r->srv->broker, true);
	fl_info("device %s confirmed serial %s; revoked %zu old", r->who.id,
		r->who.serial, revoked.n);
	out = json_pack("{s:o}", "revoked", api_strv_json(&revoked));
	srv_strv_free(&revoked);
	return srv_reply_json(r, 200, out);
}

int api_device_decommission(struct srv_req *r)
{
	const char *id = r->params[0];
	struct srv_strv revoked = {0};
	struct fl_error err = {0};
	json_t *out;

	if (srv_device_decommission(r->srv, id, &revoked, &err))
		return srv_reply_fail(r, &err);
	out = json_pack("{s:s, s:s, s:o}", "id", id, "state", "decommissioned",
			"revoked", api_strv_json(&revoked));
	srv_strv_free(&revoked);
	return srv_reply_json(r, 200, out);
}

int api_device_list(struct srv_req *r)
{
	struct srv_device_filter f = {.online = -1};
	const char *online = srv_req_query(r, "online");
	const char *label = srv_req_query(r, "label");
	struct srv_device_list rows = {0};
	struct fl_error err = {0};
	char key[65] = "";
	json_t *out;

	f.group = srv_req_query(r, "group");
	f.firmware = srv_req_query(r, "version");
	f.include_decommissioned = fl_streq(srv_req_query(r, "all"), "true");
	if (online)
		f.online = fl_streq(online, "true") ? 1 : 0;
	if (label) { /* "key" or "key=value" */
		const char *eq = strchr(label, '=');
		size_t n = eq ? (size_t)(eq - label) : strlen(label);

		if (n == 0 || n >= sizeof(key))
			return srv_reply_error(r, 400, "bad_request",
					       "bad label filter");
		memcpy(key, label, n);
		key[n] = '\0';
		f.label_key = key;
		f.label_value = eq ? eq + 1 : NULL;
	}
	if (srv_store_device_list(r->srv->store, &f, &rows, &err))
		return srv_reply_fail(r, &err);
	out = api_devices_json(&rows);
	srv_device_list_free(&rows);
	return srv_reply_json(r, 200, out);
}

int api_device_get(struct srv_req *r)
{
	struct fl_error err = {0};
	json_t *dev;

	if (api_device_fetch(r->srv->store, r->params[0], &dev, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, dev);
}

/* Labels: {"set": {"k": "v"}, "remove": ["k"]}, keys and values
 * validated before anything is written. */
static int check_labels(const json_t *set, const json_t *remove,
			struct fl_error *err)
{
	const char *k;
	json_t *v;
	size_t i;

	if ((set && !json_is_object(set)) || (remove && !json_is_array(remove)))
		return fl_fail(err, FL_EPARSE,
			       "'set' must be an object, 'remove' an array");
	if (json_object_size(set) > 64 || json_array_size(remove) > 64)
		return fl_fail(err, FL_ELIMIT, "more than 64 labels");
	json_object_foreach((json_t *)set, k, v)
		if (!fl_valid_label(k) || !fl_valid_label(json_string_value(v)))
			return fl_fail(err, FL_EINVAL, "bad label '%.64s'", k);
	json_array_foreach(remove, i, v)
		if (!fl_valid_label(json_string_value(v)))
			return fl_fail(err, FL_EINVAL, "bad label key");
	return 0;
}

/* The validated "set" and "remove" members as the store takes them. */
static void labels_from_json(const json_t *set, const json_t *remove,
			     struct srv_label_list *ret_set,
			     struct srv_strv *ret_remove)
{
	const char *k;
	json_t *v;
	size_t i;

	ret_set->v = fl_xcalloc(json_object_size(set) + 1, sizeof(*ret_set->v));
	json_object_foreach((json_t *)set, k, v)
		ret_set->v[ret_set->n++] = (struct srv_label){
			fl_xstrdup(k), fl_xstrdup(json_string_value(v))};
	ret_remove->v = fl_xcalloc(json_array_size(remove) + 1,
				   sizeof(*ret_remove->v));
	json_array_foreach(remove, i, v)
		ret_remove->v[ret_remove->n++] =
			fl_xstrdup(json_string_value(v));
}

int api_device_labels(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *set, *remove, *dev;
	struct srv_label_list ls = {0};
	struct srv_strv rm = {0};
	struct fl_error err = {0};
	int rc;

	if (!body)
		return 0;
	set = json_object_get(body, "set");
	remove = json_object_get(body, "remove");
	if (check_labels(set, remove, &err))
		return srv_reply_fail(r, &err);
	labels_from_json(set, remove, &ls, &rm);
	rc = srv_store_device_labels(r->srv->store, r->params[0], &ls, &rm,
				     &err);
	srv_label_list_free(&ls);
	srv_strv_free(&rm);
	if (rc || api_device_fetch(r->srv->store, r->params[0], &dev, &err))
		return srv_reply_fail(r, &err);
	return srv_reply_json(r, 200, dev);
}

/* The devices a rotate request names: ids, a group, or all. */
static int rotate_targets(struct srv_req *r, json_t *body,
			  struct srv_device_list *ret, struct fl_error *err)
{
	struct srv_device_filter f = {.online = -1};
	json_t *ids = json_object_get(body, "ids"), *v;
	struct srv_device_list l = {0};
	size_t i;
	int rc;

	rc = fl_json_str_opt(body, "group", FL_ID_MAX, &f.group, err);
	if (rc)
		return rc;
	if (!ids) {
		if (!f.group && !json_is_true(json_object_get(body, "all")))
			return fl_fail(err, FL_EINVAL,
				       "name devices with 'ids', 'group' or 'all'");
		return srv_store_device_list(r->srv->store, &f, ret, err);
	}
	if (!json_is_array(ids) || json_array_size(ids) > 10000)
		return fl_fail(err, FL_EINVAL, "'ids' must be an array of ids");
	l.v = fl_xcalloc(json_array_size(ids) + 1, sizeof(*l.v));
	json_array_foreach(ids, i, v) {
		rc = json_is_string(v)
			     ? srv_store_device_get(r->srv->store,
						    json_string_value(v),
						    &l.v[l.n], err)
			     : fl_fail(err, FL_EINVAL, "bad id");
		if (rc) {
			srv_device_list_free(&l);
			return rc;
		}
		l.n++;
	}
	*ret = l;
	return 0;
}

/*
 * POST /api/v1/rotate: a rotate job per active device named (joining
 * one under way).  The first device whose job cannot start ends the
 * request with its error; the jobs started before it stay.
 */
int api_rotate(struct srv_req *r)
{
	json_t *body = srv_req_json(r), *out, *job;
	struct srv_device_list devs = {0};
	struct fl_error err = {0};
	int rc = 0;

	if (!body)
		return 0;
	if (rotate_targets(r, body, &devs, &err))
		return srv_reply_fail(r, &err);
	out = json_array();
	for (size_t i = 0; i < devs.n && !rc; i++) {
		if (!fl_streq(devs.v[i].state, "active"))
			continue;
		rc = srv_job_rotate(r->srv, &devs.v[i], srv_req_actor(r), &job,
				    &err);
		if (!rc)
			json_array_append_new(out, job);
	}
	srv_device_list_free(&devs);
	if (rc) {
		json_decref(out);
		return srv_reply_fail(r, &err);
	}
	return srv_reply_json(r, 200, json_pack("{s:o}", "commands", out));
}

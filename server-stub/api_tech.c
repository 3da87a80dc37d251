/* SPDX-License-Identifier: MIT */
/*
 * Technicians' certificates (issue 12, docs/diagnostics.md "Direct, on
 * site"): short-lived client certificates, CN "tech-NAME", with which a
 * technician's fleetctl talks to the broker itself.  The broker lets
 * them ask devices for checks and read their own answers, nothing else
 * (broker-plugin/fleet_revoke.c).  Revoked like a device: CRL, broker
 * reload, kick.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "ca.h"
#include "devices_svc.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "util.h"
#include "validate.h"

#define CSR_FIELD_MAX (16 * 1024)

/* The technician's CN from the route's NAME or the body's; FL_EINVAL. */
static int tech_cn(const char *name, char cn[FL_ID_MAX + 1],
		   struct fl_error *err)
{
	if (fl_check_tech_name(name, err))
		return FL_EINVAL;
	snprintf(cn, FL_ID_MAX + 1, SRV_TECH_PREFIX "%s", name);
	return 0;
}

/* Record @iss and let the broker know the client (a technician revoked
 * before was disabled there). */
static int record(struct srv_req *r, const char *cn,
		  const struct srv_issued *iss, struct fl_error *err)
{
	static const char *const allow[] = {"createClient", "enableClient"};
	struct srv_cert c = {iss->serial, cn, iss->not_before, iss->not_after,
			     iss->sha256[0] ? iss->sha256 : NULL};
	int rc = srv_store_tech_add(r->srv->store, &c, err);

	if (!rc)
		srv_mqtt_dynsec(r->srv->mqtt, allow, 2, cn, NULL);
	return rc;
}

/*
 * POST /api/v1/technicians {"name", "csr", "ttl_s"?} -> 201 {"name",
 * "id" (the CN), "cert", "chain", "ca", "serial", "expires", "mqtt_url",
 * "topic_prefix"}.  The key stays with the caller (fleetctl makes it).
 */
int api_tech_issue(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	struct srv_issued iss = {0};
	struct fl_error err = {0};
	int64_t ttl = FL_TECH_TTL_DEFAULT;
	const char *name, *csr;
	char cn[FL_ID_MAX + 1];
	int rc;

	if (!body)
		return 0;
	if (fl_json_str(body, "name", FL_TECH_NAME_MAX, &name, &err) ||
	    tech_cn(name, cn, &err) ||
	    fl_json_str(body, "csr", CSR_FIELD_MAX, &csr, &err) ||
	    (json_object_get(body, "ttl_s") &&
	     fl_json_int(body, "ttl_s", FL_TECH_TTL_MIN, FL_TECH_TTL_MAX, &ttl,
			 &err)))
		return srv_reply_fail(r, &err);
	srv_req_audit(r, json_pack("{s:s, s:I}", "technician", name, "ttl_s",
				   (json_int_t)ttl));
	if (srv_ca_issue_tech(r->srv->ca, csr, strlen(csr), cn, ttl, &iss,
			      &err) ||
	    record(r, cn, &iss, &err)) {
		srv_issued_release(&iss);
		return srv_reply_fail(r, &err);
	}
	srv_req_audit(r,
		      json_pack("{s:s, s:I, s:s}", "technician", name, "ttl_s",
				(json_int_t)ttl, "serial", iss.serial));
	json_object_set_new(iss.json, "name", json_string(name));
	json_object_set_new(iss.json, "mqtt_url",
			    r->srv->cfg.mqtt_url
				? json_string(r->srv->cfg.mqtt_url)
				: json_null());
	json_object_set_new(iss.json, "topic_prefix",
			    json_string(r->srv->cfg.topic_prefix));
	fl_info("technician certificate %s (serial %s, %llds) issued by %s", cn,
		iss.serial, (long long)ttl, srv_req_actor(r));
	rc = srv_reply_json(r, 201, json_incref(iss.json));
	srv_issued_release(&iss);
	return rc;
}

static const char *tech_state(const struct srv_tech_row *t, int64_t now)
{
	if (t->revoked)
		return "revoked";
	return t->not_after <= now ? "expired" : "valid";
}

/* GET /api/v1/technicians -> [{"name", "serial", "issued", "expires",
 * "revoked" (time or null), "state": valid|expired|revoked}] */
int api_tech_list(struct srv_req *r)
{
	struct srv_tech_list l = {0};
	struct fl_error err = {0};
	int64_t now = time(NULL);
	json_t *out = json_array();
	char a[21], b[21], c[21];

	if (srv_store_tech_list(r->srv->store, &l, &err)) {
		json_decref(out);
		return srv_reply_fail(r, &err);
	}
	for (size_t i = 0; i < l.n; i++) {
		const struct srv_tech_row *t = &l.v[i];

		fl_time_rfc3339(t->issued, a);
		fl_time_rfc3339(t->not_after, b);
		fl_time_rfc3339(t->revoked, c);
		json_array_append_new(
		    out,
		    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s}", "name",
			      t->cn + strlen(SRV_TECH_PREFIX), "id", t->cn,
			      "serial", t->serial, "issued", a, "expires", b,
			      "revoked", t->revoked ? c : NULL, "state",
			      tech_state(t, now)));
	}
	srv_tech_list_free(&l);
	return srv_reply_json(r, 200, out);
}

/* POST /api/v1/technicians/:name/revoke -> 200 {"name", "revoked":
 * [serials]}: CRL in the store's transaction, then the broker reloads
 * it and the live session is ended (as a decommission). */
int api_tech_revoke(struct srv_req *r)
{
	struct srv_crl_hook hook = srv_ca_crl_hook(r->srv->ca);
	struct srv_strv revoked = {0};
	struct fl_error err = {0};
	const char *name = r->params[0];
	char cn[FL_ID_MAX + 1];
	json_t *serials;

	if (tech_cn(name, cn, &err) ||
	    srv_store_tech_revoke(r->srv->store, cn, &hook, &revoked, &err))
		return srv_reply_fail(r, &err);
	srv_device_kick(r->srv, cn);
	serials = json_array();
	for (size_t i = 0; i < revoked.n; i++)
		json_array_append_new(serials, json_string(revoked.v[i]));
	srv_strv_free(&revoked);
	srv_req_audit(
	    r, json_pack("{s:s, s:O}", "technician", name, "revoked", serials));
	fl_info("technician %s revoked by %s", cn, srv_req_actor(r));
	return srv_reply_json(
	    r, 200, json_pack("{s:s, s:o}", "name", name, "revoked", serials));
}

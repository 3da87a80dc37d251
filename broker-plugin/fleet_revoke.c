/* fleet_revoke: a Mosquitto 2.0 (plugin API v5) plugin that enforces the
 * CRL after the TLS handshake (docs/broker.md).  mosquitto checks the CRL
 * only in the handshake, and with use_identity_as_username no auth plugin is
 * asked at CONNECT, so a client whose handshake predates a revocation could
 * still CONNECT.  This plugin is asked first on every ACL check (publish,
 * subscribe, delivery): a client whose certificate serial is in the CRL is
 * denied.  It only ever answers "denied" or "defer", never grants, and it
 * kicks nobody: a kick goes by client id, which a valid new connection of
 * the same device (a rotation) may already hold.  A revoked client keeps
 * its socket until its keepalive runs out, and can do nothing with it.
 *
 * Technicians' certificates (CN "tech-NAME", issue 12) are the one case
 * where it grants: the acl_file's per-device patterns would give them
 * PREFIX/tech-NAME/... and none of what they need, so for them this
 * plugin decides every check, granting exactly techacl.h's list and
 * denying the rest (mosquitto asks no later plugin nor the acl_file
 * once one answers).  So are fleetd's replicas (CN "fleetd.NAME", issue
 * 14), each with a client id of its own: fleetd's rights, which the
 * acl_file gives the one username "fleetd".
 *
 *   plugin /path/fleet_revoke.so
 *   plugin_opt_crl_file /state/ca/crl.pem
 *   plugin_opt_topic_prefix fleet
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/x509.h>
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#include "crlset.h"
#include "techacl.h"

struct fr_state {
	mosquitto_plugin_id_t *id;
	char *crl_path;
	char *prefix; /* the fleet's topic prefix */
	struct fr_crlset set;
	bool closed;		/* no good CRL yet: deny everything */
};


static int reload_crl(struct fr_state *st)
{
	struct fr_crlset fresh;
	const char *why = "";

	if (fr_crlset_load(st->crl_path, &fresh, &why)) {
		mosquitto_log_printf(MOSQ_LOG_ERR,
				     "fleet_revoke: %s: %s (keeping %zu "
				     "revoked serials)", st->crl_path, why,
				     st->set.n);
		return -1;
	}
	fr_crlset_free(&st->set);
	st->set = fresh;
	st->closed = false;
	mosquitto_log_printf(MOSQ_LOG_INFO, "fleet_revoke: %zu revoked serials",
			     st->set.n);
	return 0;
}

/* With require_certificate every client had a certificate in its
 * handshake; none now means its socket is already closed and the broker is
 * sending its will.  That is left to the acl_file (a will can only go to
 * the client's own topics). */
static bool client_revoked(struct fr_state *st, const struct mosquitto *c)
{
	X509 *cert = mosquitto_client_certificate(c);
	bool bad;

	if (!cert)
		return false;
	bad = fr_crlset_has(&st->set, X509_get_serialNumber(cert));
	X509_free(cert);
	return bad;
}

static int deny(const struct mosquitto_evt_acl_check *ev, const char *why)
{
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			     "fleet_revoke: denied access %d to %s for "
			     "client %s: %s",
			     ev->access, ev->topic ? ev->topic : "-",
			     mosquitto_client_id(ev->client), why);
	return MOSQ_ERR_ACL_DENIED;
}

static int on_acl(int event, void *data, void *userdata)
{
	struct mosquitto_evt_acl_check *ev = data;
	struct fr_state *st = userdata;
	const char *user = mosquitto_client_username(ev->client);

	if (st->closed)
		return MOSQ_ERR_ACL_DENIED;
	if (client_revoked(st, ev->client))
		return deny(ev, "certificate revoked");
	if (fr_replica_user(user))
		return fr_replica_allowed(st->prefix, ev->topic, ev->access)
			   ? MOSQ_ERR_SUCCESS
			   : deny(ev, "not for fleetd");
	if (!fr_tech_user(user))
		return MOSQ_ERR_PLUGIN_DEFER;
	if (!fr_tech_allowed(st->prefix, user, ev->topic, ev->access,
			     ev->retain))
		return deny(ev, "not for a technician");
	return MOSQ_ERR_SUCCESS;
}

static int on_reload(int event, void *data, void *userdata)
{
	reload_crl(userdata);
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_version(int count, const int *versions)
{
	for (int i = 0; i < count; i++)
		if (versions[i] == 5)
			return 5;
	return -1;
}

static void state_free(struct fr_state *st)
{
	if (!st)
		return;
	fr_crlset_free(&st->set);
	free(st->crl_path);
	free(st->prefix);
	free(st);
}

static const char *opt(struct mosquitto_opt *o, int n, const char *key)
{
	for (int i = 0; i < n; i++)
		if (o[i].key && !strcmp(o[i].key, key))
			return o[i].value;
	return NULL;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *id, void **userdata,
			  struct mosquitto_opt *o, int n)
{
	const char *path = opt(o, n, "crl_file");
	const char *prefix = opt(o, n, "topic_prefix");
	struct fr_state *st = calloc(1, sizeof(*st));

	if (!st)
		return MOSQ_ERR_NOMEM;
	st->id = id;
	if (!path || !(st->crl_path = strdup(path)) ||
	    !(st->prefix = strdup(prefix ? prefix : "fleet"))) {
		mosquitto_log_printf(MOSQ_LOG_ERR, "fleet_revoke: "
				     "plugin_opt_crl_file is required");
		state_free(st);
		return MOSQ_ERR_INVAL;
	}
	/* mosquitto re-inits plugins at every SIGHUP: failing here could
	 * leave the broker running without us, so fail closed instead. */
	st->closed = true;
	if (reload_crl(st))
		mosquitto_log_printf(MOSQ_LOG_ERR, "fleet_revoke: denying all "
				     "access until the CRL can be read");
	if (mosquitto_callback_register(id, MOSQ_EVT_ACL_CHECK, on_acl, NULL,
					st) ||
	    mosquitto_callback_register(id, MOSQ_EVT_RELOAD, on_reload, NULL,
					st)) {
		mosquitto_callback_unregister(id, MOSQ_EVT_ACL_CHECK, on_acl,
					      NULL);
		state_free(st);
		return MOSQ_ERR_UNKNOWN;
	}
	*userdata = st;
	return MOSQ_ERR_SUCCESS;
}

int mosquitto_plugin_cleanup(void *userdata, struct mosquitto_opt *o, int n)
{
	struct fr_state *st = userdata;

	if (st) {
		mosquitto_callback_unregister(st->id, MOSQ_EVT_ACL_CHECK,
					      on_acl, NULL);
		mosquitto_callback_unregister(st->id, MOSQ_EVT_RELOAD,
					      on_reload, NULL);
	}
	state_free(st);
	return MOSQ_ERR_SUCCESS;
}

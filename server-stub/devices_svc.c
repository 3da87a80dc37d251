/* SPDX-License-Identifier: MIT */
/*
 * Device life-cycle services: decommission, the broker kick, provision
 * undo (moved out of api_devices.c and api_provision.c, issue 9 item 2).
 */
#include "devices_svc.h"
#include "broker.h"
#include "ca.h"
#include "log.h"
#include "mqtt.h"
#include "srv.h"

/*
 * Dynsec kicks a client's sessions when it is disabled; the CRL reload
 * (SIGHUP, sent first) runs in the broker's loop before the kicked
 * client can finish a new handshake.
 */
void srv_device_kick(struct srv *srv, const char *id)
{
	static const char *const kick[] = {"createClient", "disableClient"};
	struct fl_error err = {0};

	srv_broker_reload(srv->broker, true);
	if (srv_mqtt_dynsec(srv->mqtt, kick, 2, id, &err))
		fl_warn("device %s: cannot end its broker session: %s", id,
			err.msg);
}

int srv_device_decommission(struct srv *srv, const char *id,
			    struct srv_strv *ret_revoked, struct fl_error *err)
{
	struct srv_crl_hook hook = srv_ca_crl_hook(srv->ca);
	int rc;

	rc = srv_store_device_decommission(srv->store, id, &hook, ret_revoked,
					   err);
	if (rc)
		return rc;
	srv_device_kick(srv, id);
	fl_info("decommissioned device %s", id);
	return 0;
}

int srv_device_provision_undo(struct srv *srv, const char *id,
			      const char *serial, struct fl_error *err)
{
	static const char *const cmds[] = {"createClient", "disableClient"};
	struct fl_error e = {0};
	int rc;

	rc = srv_store_provision_undo(srv->store, id, serial, err);
	if (rc)
		return rc;
	/* the certificate's key was never written out; revoke it anyway */
	if (srv_ca_publish_crl(srv->ca, srv->store, &e))
		fl_warn("provision of %s undone, but the CRL was not "
			"republished: %s", id, e.msg);
	else
		srv_broker_reload(srv->broker, false);
	fl_error_clear(&e);
	if (srv_mqtt_dynsec(srv->mqtt, cmds, 2, id, &e))
		fl_warn("device %s: cannot disable its broker client: %s", id,
			e.msg);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/provision/:id/undo {"serial": S}: fleetctl provision
 * registered the device but could not write its archive (the key is
 * lost with it), so it takes the registration back: the certificate is
 * revoked and the id forgotten, as if nothing had been stored
 * (issue 8 item 12).  Only for a device never seen, shortly after.
 */
#include <string.h>

#include "api.h"
#include "broker.h"
#include "ca.h"
#include "json.h"
#include "log.h"
#include "mqtt.h"
#include "util.h"

int api_provision_undo(struct srv_req *r)
{
	static const char *const cmds[] = {"createClient", "disableClient"};
	json_t *body = srv_req_json(r);
	const char *id = r->params[0], *serial;
	struct fl_error err = {0};

	if (!body)
		return 0;
	if (fl_json_str(body, "serial", 64, &serial, &err) ||
	    srv_store_provision_undo(r->srv->store, id, serial, &err))
		return srv_reply_fail(r, &err);
	/* the certificate's key was never written out; revoke it anyway */
	if (srv_ca_publish_crl(r->srv->ca, r->srv->store, &err))
		fl_warn("provision of %s undone, but the CRL was not "
			"republished: %s", id, err.msg);
	else
		srv_broker_reload(r->srv->broker, false);
	fl_error_clear(&err);
	if (srv_mqtt_dynsec(r->srv->mqtt, cmds, 2, id, &err))
		fl_warn("device %s: cannot disable its broker client: %s", id,
			err.msg);
	fl_info("provision of device %s (serial %s) undone by %s", id, serial,
		srv_req_actor(r));
	return srv_reply_json(r, 200, json_pack("{s:s, s:s}", "id", id,
						"undone", serial));
}

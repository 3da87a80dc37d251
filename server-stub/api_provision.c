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
#include "devices_svc.h"
#include "json.h"
#include "log.h"

int api_provision_undo(struct srv_req *r)
{
	json_t *body = srv_req_json(r);
	const char *id = r->params[0], *serial;
	struct fl_error err = {0};

	if (!body)
		return 0;
	if (fl_json_str(body, "serial", 64, &serial, &err) ||
	    srv_device_provision_undo(r->srv, id, serial, &err))
		return srv_reply_fail(r, &err);
	fl_info("provision of device %s (serial %s) undone by %s", id, serial,
		srv_req_actor(r));
	return srv_reply_json(r, 200, json_pack("{s:s, s:s}", "id", id,
						"undone", serial));
}

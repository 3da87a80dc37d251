/* SPDX-License-Identifier: MIT */
#ifndef SRV_DEVICES_SVC_H
#define SRV_DEVICES_SVC_H

/*
 * Device life-cycle steps that span the store, the CA, the broker and
 * fleetd's MQTT client (issue 9 item 2), so that the HTTP handlers and
 * the rollout engine take them the same way.
 */
#include "err.h"

struct srv;
struct srv_strv;

/*
 * Decommission @id: the device row is marked, its certificates revoked
 * and the CRL published (in one store change, srv_ca_crl_hook), then the
 * broker reloads the CRL and the device's session is ended
 * (srv_device_kick).  *ret_revoked gets the revoked serials (free with
 * srv_strv_free).
 * FL_ENOTFOUND, FL_ECONFLICT (already decommissioned), FL_EIO.
 */
int srv_device_decommission(struct srv *srv, const char *id,
			    struct srv_strv *ret_revoked, struct fl_error *err);

/*
 * End the broker sessions of @id: a CRL reload does not end a live TLS
 * session.  Best effort: failures are logged.
 */
void srv_device_kick(struct srv *srv, const char *id);

/*
 * Take back the registration of @id made by a provision that could not
 * write its archive (certificate @serial): the store forgets it, the
 * CRL is republished and the broker reloaded, its broker client
 * disabled.  Codes of srv_store_provision_undo; the later steps are
 * best effort.
 */
int srv_device_provision_undo(struct srv *srv, const char *id,
			      const char *serial, struct fl_error *err);

#endif

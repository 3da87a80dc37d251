/* SPDX-License-Identifier: MIT */
#ifndef SRV_SERVE_H
#define SRV_SERVE_H

#include <stdbool.h>

#include "err.h"
#include "srv.h"

struct srv_serve_opts {
	const char *listen;      /* HTTPS "HOST:PORT" */
	bool with_broker;        /* run a local mosquitto */
	const char *mqtt_listen; /* its listener; NULL = [broker] listen */
	const char *replica;     /* --replica NAME; NULL: fleetd is alone */
};

/*
 * Run fleetd until SIGTERM or SIGINT: the local broker (optional), the
 * MQTT client, the HTTPS API; SIGHUP republishes the CRL; the CRL is
 * also republished daily so it never expires.  Calls @ready once with
 * the "ready https=URL [mqtt=URL]" line when everything accepts
 * connections.  The caller must have blocked SIGTERM, SIGINT, SIGHUP and
 * SIGCHLD in every thread (srv_block_signals).
 */
int srv_serve(struct srv *srv, const struct srv_serve_opts *o,
	      void (*ready)(const char *line), struct fl_error *err);

/* Block the signals srv_serve waits for; call before any thread. */
void srv_block_signals(void);

#endif

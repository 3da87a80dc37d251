/* SPDX-License-Identifier: MIT */
#ifndef CLI_DIAG_DIRECT_H
#define CLI_DIAG_DIRECT_H

/*
 * fleetctl diag --direct (issue 12, docs/diagnostics.md "Direct, on
 * site"): one check asked of one device straight through the broker,
 * with a technician's certificate bundle, no fleetd.
 */
#include <stdint.h>

#include <jansson.h>

#include "err.h"

struct cli_direct {
	const char *bundle; /* --cert-bundle FILE.tar.gz */
	const char *broker; /* --broker mqtts://HOST:PORT; NULL: the bundle's */
	const char *device, *check;
	char **args; /* @nargs strings */
	int nargs;
	int64_t timeout_s;
};

/*
 * Ask and wait for the answer: *@ret gets the device's reply with
 * "device" and "rtt_ms" added.  FL_ENOTFOUND (bundle, libmosquitto),
 * FL_EPARSE (bundle), FL_EDENIED (certificate expired, or refused by the
 * broker), FL_EUNREACH (no broker), FL_ETIMEOUT (no answer in time: the
 * device is offline or busy).
 */
int cli_diag_direct(const struct cli_direct *d, json_t **ret,
		    struct fl_error *err);

/* libmosquitto, loaded on first use (lazy_mosquitto.c). */
int cli_mosquitto_load(struct fl_error *err);

#endif

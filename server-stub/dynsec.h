/* SPDX-License-Identifier: MIT */
#ifndef SRV_DYNSEC_H
#define SRV_DYNSEC_H

#include <stdbool.h>

#include <jansson.h>

#include "err.h"

/*
 * mosquitto's dynamic-security plugin as fleetd uses it (docs/broker.md):
 * it only kicks and mutes clients; every read and write is decided by the
 * acl_file.  The plugin is asked first, so its default ACL access must
 * defer everything ("allow": false means "no opinion" there): with
 * publishClientReceive true it let any device read every topic, $SYS
 * included, before the acl_file was consulted (issue 8, item 1).
 */

/* Largest dynsec.json fleetd reads (one entry per disabled device). */
#define SRV_DYNSEC_MAX_FILE (64 * 1024 * 1024)

/* The role that denies a muted device every publish (see mqtt.c). */
#define SRV_DYNSEC_MUTED_ROLE "fleet-muted"

/*
 * Set the default ACL access of a parsed dynsec.json @root (an object)
 * to fleetd's policy, leaving clients, groups and roles alone.  Returns
 * true if anything changed.
 */
bool srv_dynsec_apply_policy(json_t *root);

/*
 * Make the dynsec.json at @path follow fleetd's policy: write a fresh one
 * when it does not exist, else rewrite only its default ACL access
 * (atomically, mode 0600), keeping every client (disabled ones from
 * decommissions above all), group and role.  *ret_migrated (may be NULL)
 * says whether an existing file had to be changed.  FL_EPARSE for a file
 * that is not a JSON object, FL_ELIMIT above SRV_DYNSEC_MAX_FILE.
 */
int srv_dynsec_write(const char *path, bool *ret_migrated,
		     struct fl_error *err);

/* The control command that sets the same policy on a running broker
 * (mosquitto keeps its own copy in memory and saves it over the file).
 * Caller owns the result. */
json_t *srv_dynsec_policy_cmd(void);

#endif

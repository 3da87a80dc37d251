/* What a technician's certificate may do on the broker (issue 12): its
 * username (use_identity_as_username: the CN) starts with "tech-". */
#ifndef FLEET_TECHACL_H
#define FLEET_TECHACL_H

#include <stdbool.h>

#define FR_TECH_PREFIX "tech-"

/* Is @user a technician? */
bool fr_tech_user(const char *user);

/*
 * May technician @user do @access (MOSQ_ACL_READ, _WRITE, _SUBSCRIBE,
 * _UNSUBSCRIBE) on @topic under topic prefix @prefix?  Only:
 *   write      PREFIX/ID/diag/req, not retained (ID a device's id)
 *   subscribe  PREFIX/ID/diag/resp/USER or PREFIX/+/diag/resp/USER
 *   read       PREFIX/ID/diag/resp/USER
 *   unsubscribe anything (it only takes away)
 * Everything else is refused, $SYS and the retained diag request that
 * a device would run at each reconnect included.
 */
bool fr_tech_allowed(const char *prefix, const char *user, const char *topic,
		     int access, bool retain);

/* fleetd's replicas (fleetd serve --replica NAME, issue 14): username
 * "fleetd.NAME", which enrolment never gives a device. */
#define FR_REPLICA_PREFIX "fleetd."

/* Is @user one of fleetd's replicas? */
bool fr_replica_user(const char *user);

/*
 * May a replica do @access on @topic?  What the acl_file gives fleetd
 * (broker.c): everything under PREFIX/, the dynamic-security plugin's
 * $CONTROL/dynamic-security/ topics, reading the broker's dropped count;
 * and subscribing to (or leaving) PREFIX/ topics through a shared
 * subscription "$share/GROUP/...".  Nothing else.
 */
bool fr_replica_allowed(const char *prefix, const char *topic, int access);

#endif

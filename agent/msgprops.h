/* SPDX-License-Identifier: MIT */
#ifndef AGENT_MSGPROPS_H
#define AGENT_MSGPROPS_H

/*
 * The MQTT v5 properties of a received message that features see
 * (feature.h): response topic, correlation data, user properties.
 * agent_mqtt.c fills them from libmosquitto's property list, with caps.
 */
#include <stddef.h>

#define AGENT_MSG_PROP_MAX 1024	    /* bytes of one value; longer: dropped */
#define AGENT_MSG_USER_PROPS_MAX 16 /* more are dropped */

struct agent_msg_user_prop {
	char *name, *value;
};

/* What a message carried besides topic and payload; all may be absent
 * (NULL, 0).  Strings are NUL-terminated copies. */
struct agent_msg_props {
	char *response_topic;
	void *correlation; /* correlation data, @correlation_len bytes */
	size_t correlation_len;
	struct agent_msg_user_prop user[AGENT_MSG_USER_PROPS_MAX];
	size_t n_user;
};

/* The value of user property @name (the first one), or NULL. */
const char *agent_msg_user_prop(const struct agent_msg_props *p,
				const char *name);

/* Deep copy of @src (may be NULL: an empty set) into *@dst. */
void agent_msg_props_copy(struct agent_msg_props *dst,
			  const struct agent_msg_props *src);

/* Free what @p holds and zero it; NULL is fine. */
void agent_msg_props_release(struct agent_msg_props *p);

#endif

/* SPDX-License-Identifier: MIT */
/*
 * MQTT v5 properties as features see them (msgprops.h): copies and
 * look-ups.  Filling them from the wire is agent_mqtt.c's job.
 */
#include <stdlib.h>
#include <string.h>

#include "msgprops.h"
#include "util.h"

const char *agent_msg_user_prop(const struct agent_msg_props *p,
				const char *name)
{
	for (size_t i = 0; p && name && i < p->n_user; i++)
		if (strcmp(p->user[i].name, name) == 0)
			return p->user[i].value;
	return NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? fl_xstrdup(s) : NULL;
}

void agent_msg_props_copy(struct agent_msg_props *dst,
			  const struct agent_msg_props *src)
{
	memset(dst, 0, sizeof(*dst));
	if (!src)
		return;
	dst->response_topic = dup_or_null(src->response_topic);
	if (src->correlation_len) {
		dst->correlation = fl_xmalloc(src->correlation_len);
		memcpy(dst->correlation, src->correlation,
		       src->correlation_len);
		dst->correlation_len = src->correlation_len;
	}
	for (size_t i = 0; i < src->n_user; i++) {
		dst->user[i].name = fl_xstrdup(src->user[i].name);
		dst->user[i].value = fl_xstrdup(src->user[i].value);
	}
	dst->n_user = src->n_user;
}

void agent_msg_props_release(struct agent_msg_props *p)
{
	if (!p)
		return;
	free(p->response_topic);
	free(p->correlation);
	for (size_t i = 0; i < p->n_user; i++) {
		free(p->user[i].name);
		free(p->user[i].value);
	}
	memset(p, 0, sizeof(*p));
}

/* SPDX-License-Identifier: MIT */
/*
 * The feature table and the host interface (feature.h): what features
 * may ask of the agent, implemented on struct agent so that they never
 * see it.
 */
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "agent_internal.h"
#include "agent_modbus.h"
#include "rotate.h"
#include "util.h"

/* In this order: status output keeps its key order by it.  modbus
 * before diag (its checks read modbus: freed after diag joined them) and
 * before shadow (which sets its map). */
const struct agent_feature *const agent_features[] = {
    &agent_feature_rotate,
    &agent_feature_events,
    &agent_feature_ota,
    &agent_feature_modbus,
    &agent_feature_diag,
    &agent_feature_shadow,
    &agent_feature_telemetry,
};
const size_t agent_n_features = FL_ARRAY_SIZE(agent_features);

bool agent_feature_find_cmd(const struct agent_feature *const *features,
			    size_t n, const char *type,
			    const struct agent_feature **ret_f,
			    const struct agent_feature_cmd **ret_cmd)
{
	for (size_t i = 0; type && i < n; i++)
		for (const struct agent_feature_cmd *c = features[i]->cmds;
		     c && c->type; c++)
			if (strcmp(c->type, type) == 0) {
				if (ret_f)
					*ret_f = features[i];
				if (ret_cmd)
					*ret_cmd = c;
				return true;
			}
	return false;
}

/* Does any feature of @f[0..n) other than @self own @type? */
static bool owned_elsewhere(const struct agent_feature *const *f, size_t n,
			    const struct agent_feature_cmd *self,
			    const char *type)
{
	for (size_t i = 0; i < n; i++)
		for (const struct agent_feature_cmd *c = f[i]->cmds;
		     c && c->type; c++)
			if (c != self && strcmp(c->type, type) == 0)
				return true;
	return false;
}

int agent_features_check(const struct agent_feature *const *f, size_t n,
			 struct fl_error *err)
{
	if (n > AGENT_FEATURES_MAX)
		return fl_fail(err, FL_ELIMIT, "%zu features (at most %d)", n,
			       AGENT_FEATURES_MAX);
	for (size_t i = 0; i < n; i++) {
		if (!f[i]->name)
			return fl_fail(err, FL_EINVAL, "feature %zu: no name",
				       i);
		for (size_t k = 0; k < i; k++)
			if (strcmp(f[k]->name, f[i]->name) == 0)
				return fl_fail(err, FL_EINVAL,
					       "feature '%s' twice",
					       f[i]->name);
		for (const struct agent_feature_cmd *c = f[i]->cmds;
		     c && c->type; c++) {
			if (!c->run || strcmp(c->type, AGENT_ACK_TYPE) == 0)
				return fl_fail(err, FL_EINVAL,
					       "feature '%s': bad command '%s'",
					       f[i]->name, c->type);
			if (owned_elsewhere(f, n, c, c->type))
				return fl_fail(err, FL_EINVAL,
					       "command '%s' has two owners",
					       c->type);
		}
	}
	return 0;
}

uint32_t agent_rand32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms() * 2654435761u;
	return r;
}

/* ------------------------------------------------------------------ */
/* The host interface                                                 */
/* ------------------------------------------------------------------ */

const struct agent_config *agent_host_config(const struct agent_host *h)
{
	return h->a->cfg;
}

struct agent_live *agent_host_live(struct agent_host *h)
{
	return &h->a->live;
}

const char *agent_host_state_dir(const struct agent_host *h)
{
	return h->a->cfg->state_dir;
}

int64_t agent_host_now_ms(const struct agent_host *h)
{
	return fl_now_ms();
}

time_t agent_host_time(const struct agent_host *h)
{
	return time(NULL);
}

bool agent_host_stopping(const struct agent_host *h)
{
	return h->a->stop && *h->a->stop;
}

bool agent_host_online(const struct agent_host *h)
{
	return agent_mqtt_connected(h->a->mqtt);
}

int agent_host_publish_event(struct agent_host *h, const char *cmd_id,
			     const char *type, const char *state,
			     const json_t *fields, json_t **ret_event,
			     struct fl_error *err)
{
	return agent_publish_event(h->a, cmd_id, type, state, fields, ret_event,
				   err);
}

void agent_host_complete(struct agent_host *h, const char *cmd_id,
			 const char *type, const char *state, const char *stage,
			 const char *reason, const json_t *fields)
{
	agent_cmd_complete(h->a, cmd_id, type, state, stage, reason, fields);
}

int agent_host_cmd_state(const struct agent_host *h, const char *cmd_id,
			 enum agent_cmd_state *ret)
{
	return agent_cmd_log_get(h->a->cmds, cmd_id, ret, NULL);
}

void agent_host_publish_status(struct agent_host *h)
{
	agent_publish_status(h->a);
}

void agent_host_status_soon(struct agent_host *h)
{
	h->a->next_status_ms = 0;
}

int agent_host_publish(struct agent_host *h, const char *topic,
		       const void *payload, size_t len, int qos, bool retain,
		       const struct agent_msg_props *props,
		       struct fl_error *err)
{
	return agent_mqtt_publish_props(h->a->mqtt, topic, payload, len, qos,
					retain, props, err);
}

int agent_host_publish_mid(struct agent_host *h, const char *topic,
			   const void *payload, size_t len, int *ret_mid,
			   struct fl_error *err)
{
	return agent_mqtt_publish_mid(h->a->mqtt, topic, payload, len, ret_mid,
				      err);
}

int agent_host_pump(struct agent_host *h, int timeout_ms, struct fl_error *err)
{
	agent_mqtt_step(h->a->mqtt, timeout_ms);
	agent_services(h->a);
	agent_events_flush(h->a, false);
	if (agent_host_stopping(h))
		return fl_fail(err, FL_ERR, "the agent is stopping");
	return 0;
}

bool agent_host_cmd_waiting(const struct agent_host *h, const char *type,
			    const char *key, const char *value)
{
	return agent_inbox_has(h->a, type, key, value);
}

const struct fl_pki_cert_info *agent_host_cert(const struct agent_host *h)
{
	return &h->a->cert;
}

const struct agent_identity_paths *
agent_host_identity(const struct agent_host *h, bool staged)
{
	return staged ? &h->a->staged : &h->a->cur;
}

const struct agent_http_target *agent_host_http(const struct agent_host *h)
{
	return &h->a->http;
}

int agent_host_use_identity(struct agent_host *h, bool staged, bool reconnect,
			    int timeout_ms, struct fl_error *err)
{
	const struct agent_identity_paths *p = agent_host_identity(h, staged);
	int rc = agent_mqtt_set_identity(h->a->mqtt, p->cert, p->key, reconnect,
					 err);

	if (!rc && reconnect)
		rc = agent_mqtt_connect_wait(h->a->mqtt, timeout_ms, h->a->stop,
					     err);
	return rc;
}

void agent_host_resume(struct agent_host *h)
{
	agent_mqtt_resume(h->a->mqtt);
}

void agent_host_set_cert(struct agent_host *h,
			 const struct fl_pki_cert_info *info)
{
	h->a->cert = *info;
}

int agent_host_wake_init(struct agent_host *h, struct fl_error *err)
{
	if (h->a->wake_fd >= 0)
		return 0;
	h->a->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (h->a->wake_fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot make an eventfd");
	agent_mqtt_set_wake_fd(h->a->mqtt, h->a->wake_fd);
	return 0;
}

void agent_host_wake(struct agent_host *h)
{
	uint64_t one = 1;

	if (h->a->wake_fd >= 0 && write(h->a->wake_fd, &one, sizeof(one)) < 0)
		fl_debug("wake-up: %s", strerror(errno));
}

void agent_host_request_reboot(struct agent_host *h)
{
	h->a->reboot_requested = true;
}

struct agent_host *agent_host_of(struct agent *a)
{
	return &a->host;
}

void *agent_host_feature(const struct agent_host *h,
			 const struct agent_feature *f)
{
	return agent_feature_state(h->a, f);
}

/* ------------------------------------------------------------------ */
/* agent.h calls that belong to a feature                             */
/* ------------------------------------------------------------------ */

time_t agent_renew_at(const struct agent *a)
{
	return agent_rotate_renew_at(
	    agent_feature_state(a, &agent_feature_rotate));
}

void agent_renew_soon(struct agent *a)
{
	agent_rotate_renew_soon(agent_feature_state(a, &agent_feature_rotate));
}

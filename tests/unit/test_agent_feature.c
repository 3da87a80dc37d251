/* SPDX-License-Identifier: MIT */
/*
 * agent/features: the feature table (every command type owned by
 * exactly one feature, a table with a duplicate refused), a fake
 * feature registered next to the built-in ones that gets init,
 * on_connect, ticks, its own topic's messages with their MQTT v5
 * properties, an owned command with properties, and adds to status;
 * and two agents in one process whose log lines carry their own ids.
 * Against a real mosquitto (agent_fixture.h); fleetd is not running.
 */
#include "agent_fixture.h"

#include <jansson.h>

#include "agent.h"
#include "agent_config.h"
#include "feature.h"
#include "json.h"
#include "log.h"

/* ------------------------------------------------------------------ */
/* The table                                                          */
/* ------------------------------------------------------------------ */

static size_t owners(const struct agent_feature *const *f, size_t n,
		     const char *type)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++)
		for (const struct agent_feature_cmd *c = f[i]->cmds;
		     c && c->type; c++)
			k += strcmp(c->type, type) == 0;
	return k;
}

static void test_table_owners(void **state)
{
	static const char *const builtin[] = {"cancel", "rollback", "rotate",
					      "update"};
	const struct agent_feature *f = NULL;
	const struct agent_feature_cmd *c = NULL;
	size_t n = agent_n_features;

	assert_int_equal(agent_features_check(agent_features, n, NULL), 0);
	for (size_t i = 0; i < n; i++)
		for (c = agent_features[i]->cmds; c && c->type; c++) {
			assert_non_null(c->run);
			assert_int_equal(owners(agent_features, n, c->type), 1);
		}
	for (size_t i = 0; i < FL_ARRAY_SIZE(builtin); i++)
		assert_true(agent_feature_find_cmd(agent_features, n,
						   builtin[i], &f, &c));
	assert_true(
	    agent_feature_find_cmd(agent_features, n, "rotate", &f, &c));
	assert_ptr_equal(f, &agent_feature_rotate);
	assert_true(
	    agent_feature_find_cmd(agent_features, n, "update", &f, NULL));
	assert_ptr_equal(f, &agent_feature_ota);
	assert_false(agent_feature_find_cmd(agent_features, n, AGENT_ACK_TYPE,
					    NULL, NULL));
	assert_false(agent_feature_find_cmd(agent_features, n, "self-destruct",
					    NULL, NULL));
	assert_false(agent_feature_find_cmd(agent_features, n, "", NULL, NULL));
	assert_false(
	    agent_feature_find_cmd(agent_features, n, NULL, NULL, NULL));
}

static int nop_cmd(struct agent_host *h, void *state,
		   const struct agent_cmd *cmd, struct agent_cmd_outcome *out,
		   struct fl_error *err)
{
	return 0;
}

static const struct agent_feature_cmd steal_rotate[] = {
    {"rotate", nop_cmd},
    {NULL, NULL},
};
static const struct agent_feature thief = {.name = "thief",
					   .cmds = steal_rotate};
static const struct agent_feature_cmd claim_ack[] = {
    {AGENT_ACK_TYPE, nop_cmd},
    {NULL, NULL},
};
static const struct agent_feature acker = {.name = "acker", .cmds = claim_ack};

static void test_table_refuses_duplicates(void **state)
{
	const struct agent_feature *dup_cmd[] = {&agent_feature_rotate, &thief};
	const struct agent_feature *dup_name[] = {&agent_feature_ota,
						  &agent_feature_ota};
	const struct agent_feature *ack[] = {&acker};
	const struct agent_feature *many[AGENT_FEATURES_MAX + 1];

	for (size_t i = 0; i < FL_ARRAY_SIZE(many); i++)
		many[i] = &thief;
	assert_int_equal(agent_features_check(dup_cmd, 2, NULL), FL_EINVAL);
	assert_int_equal(agent_features_check(dup_name, 2, NULL), FL_EINVAL);
	assert_int_equal(agent_features_check(ack, 1, NULL), FL_EINVAL);
	assert_int_equal(agent_features_check(many, FL_ARRAY_SIZE(many), NULL),
			 FL_ELIMIT);
	assert_int_equal(agent_features_check(dup_cmd, 1, NULL), 0);
}

/* ------------------------------------------------------------------ */
/* Agents against the broker                                          */
/* ------------------------------------------------------------------ */

struct fx {
	struct afx *f;
	struct agent_config *cfg[2];
	struct agent *a[2];
	struct afx_observer obs;
};

/* Enrolled state for @id (dev-1, dev-2) and its configuration. */
static struct agent_config *device(struct afx *f, const char *id)
{
	char *state = afx_path(f, id), *key = fl_xasprintf("%s.key", id);
	char *pem = fl_xasprintf("%s.pem", id), *text;
	struct agent_config *cfg = NULL;

	assert_int_equal(fl_mkdir_p(state, 0700, NULL), 0);
	afx_copy_file(f, key, state, "key.pem", 0600);
	afx_copy_file(f, pem, state, "cert.pem", 0644);
	afx_copy_file(f, "issuing.pem", state, "chain.pem", 0644);
	afx_copy_file(f, "root.pem", state, "ca.pem", 0644);
	text = fl_xasprintf("[device]\nid = %s\nstate_dir = %s\n"
			    "[server]\nurl = https://127.0.0.1:%d\n"
			    "timeout = 2s\n"
			    "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			    "reconnect_min = 1\nreconnect_max = 2\n",
			    id, id, afx_free_port(), f->port);
	assert_int_equal(agent_config_parse(text, f->dir, NULL, &cfg, NULL), 0);
	free(text);
	free(state);
	free(key);
	free(pem);
	return cfg;
}

static void fx_release(struct fx *x)
{
	for (int i = 0; i < 2; i++) {
		agent_free(x->a[i]);
		agent_config_free(x->cfg[i]);
	}
	afx_observer_stop(&x->obs);
}

/* Step the agents and the observer until @pred holds or 10 s pass. */
static bool run_until(struct fx *x, bool (*pred)(struct fx *))
{
	int64_t end = fl_now_ms() + 10000;

	while (!pred(x) && fl_now_ms() < end) {
		for (int i = 0; i < 2; i++)
			if (x->a[i])
				agent_step(x->a[i], 10, NULL);
		agent_mqtt_step(x->obs.m, 5);
	}
	return pred(x);
}

static bool all_online(struct fx *x)
{
	for (int i = 0; i < 2; i++)
		if (x->a[i] && !agent_online(x->a[i]))
			return false;
	return true;
}

/* ------------------------------------------------------------------ */
/* A fake feature                                                     */
/* ------------------------------------------------------------------ */

struct fake {
	int inits, connects, ticks, msgs, cmds, frees;
	char leaf[16], payload[32], response[64], user[32], cmd_response[64];
	char corr[16];
	size_t corr_len;
};

static struct fake seen;

static int fake_init(struct agent_host *h, void **ret, struct fl_error *err)
{
	seen.inits++;
	*ret = &seen;
	return 0;
}

static void fake_on_connect(struct agent_host *h, void *state)
{
	((struct fake *)state)->connects++;
}

static void fake_tick(struct agent_host *h, void *state)
{
	((struct fake *)state)->ticks++;
}

static void copy_str(char *dst, size_t size, const char *src)
{
	fl_strlcpy(dst, src ? src : "", size);
}

/* Record what came and answer on the response topic, correlated. */
static void fake_on_message(struct agent_host *h, void *state, const char *leaf,
			    const void *payload, size_t len,
			    const struct agent_msg_props *props)
{
	struct agent_msg_props reply = {0};
	struct fake *s = state;

	s->msgs++;
	copy_str(s->leaf, sizeof(s->leaf), leaf);
	snprintf(s->payload, sizeof(s->payload), "%.*s", (int)len,
		 (const char *)payload);
	copy_str(s->response, sizeof(s->response), props->response_topic);
	copy_str(s->user, sizeof(s->user), agent_msg_user_prop(props, "k"));
	s->corr_len = props->correlation_len < sizeof(s->corr)
			  ? props->correlation_len
			  : 0;
	memcpy(s->corr, props->correlation, s->corr_len);
	reply.correlation = props->correlation;
	reply.correlation_len = props->correlation_len;
	if (props->response_topic)
		assert_int_equal(agent_host_publish(h, props->response_topic,
						    "pong", 4, 1, false, &reply,
						    NULL),
				 0);
}

static int fake_ping(struct agent_host *h, void *state,
		     const struct agent_cmd *cmd, struct agent_cmd_outcome *out,
		     struct fl_error *err)
{
	struct fake *s = state;

	s->cmds++;
	assert_non_null(cmd->props);
	copy_str(s->cmd_response, sizeof(s->cmd_response),
		 cmd->props->response_topic);
	json_object_set_new(out->fields, "pong", json_true());
	return 0;
}

static void fake_report(void *state, json_t *into)
{
	json_object_set_new(into, "fake", json_true());
}

static void fake_free(void *state)
{
	((struct fake *)state)->frees++;
}

static const struct agent_feature_cmd fake_cmds[] = {
    {"fake-ping", fake_ping},
    {NULL, NULL},
};

static const struct agent_feature fake = {
    .name = "fake",
    .init = fake_init,
    .on_connect = fake_on_connect,
    .topics = {"fake", NULL},
    .on_message = fake_on_message,
    .tick = fake_tick,
    .report = fake_report,
    .cmds = fake_cmds,
    .free = fake_free,
};

static bool fake_got_msg(struct fx *x)
{
	return seen.msgs == 1 &&
	       afx_find(&x->obs, "fleet/dev-1/reply", "pong") >= 0;
}

static bool fake_got_cmd(struct fx *x)
{
	return afx_find(&x->obs, "fleet/dev-1/events", "\"pong\":true") >= 0;
}

static bool fake_in_status(struct fx *x)
{
	return afx_find(&x->obs, "fleet/dev-1/status", "\"fake\":true") >= 0;
}

/* Publish @payload on @topic with a response topic, correlation data
 * and a user property, as a fleetd request would. */
static void request(struct fx *x, const char *topic, const char *payload)
{
	struct agent_msg_props p = {
	    .response_topic = "fleet/dev-1/reply",
	    .correlation = "c-42",
	    .correlation_len = 4,
	    .user = {{"k", "v"}},
	    .n_user = 1,
	};

	assert_int_equal(agent_mqtt_publish_props(x->obs.m, topic, payload,
						  strlen(payload), 1, false, &p,
						  NULL),
			 0);
}

static void test_fake_feature(void **state)
{
	const struct agent_feature *features[AGENT_FEATURES_MAX];
	struct fx x = {.f = *state};
	size_t n = 0;

	memset(&seen, 0, sizeof(seen));
	for (size_t i = 0; i < agent_n_features; i++)
		features[n++] = agent_features[i];
	features[n++] = &fake;
	x.cfg[0] = device(x.f, "dev-1");
	afx_observer_start(x.f, &x.obs, "fleet/#");
	assert_int_equal(agent_new_with(x.cfg[0], features, n, &x.a[0], NULL),
			 0);
	assert_int_equal(seen.inits, 1);
	assert_ptr_equal(agent_feature_state(x.a[0], &fake), &seen);
	assert_true(run_until(&x, all_online));
	assert_true(run_until(&x, fake_in_status));
	assert_int_equal(seen.connects, 1);
	assert_true(seen.ticks > 0);
	/* a message on its topic, with properties; it answers */
	request(&x, "fleet/dev-1/fake", "ping");
	assert_true(run_until(&x, fake_got_msg));
	assert_string_equal(seen.leaf, "fake");
	assert_string_equal(seen.payload, "ping");
	assert_string_equal(seen.response, "fleet/dev-1/reply");
	assert_string_equal(seen.user, "v");
	assert_int_equal(seen.corr_len, 4);
	assert_memory_equal(seen.corr, "c-42", 4);
	/* a command it owns, with properties, through the host */
	request(&x, "fleet/dev-1/cmd",
		"{\"id\":\"f-1\",\"type\":\"fake-ping\"}");
	assert_true(run_until(&x, fake_got_cmd));
	assert_int_equal(seen.cmds, 1);
	assert_string_equal(seen.cmd_response, "fleet/dev-1/reply");
	assert_int_equal(agent_stop(x.a[0], 3000), 0);
	fx_release(&x);
	assert_int_equal(seen.frees, 1);
}

/* ------------------------------------------------------------------ */
/* Log context                                                        */
/* ------------------------------------------------------------------ */

static void test_log_context_nests(void **state)
{
	const char *prev = fl_log_context_set("dev-9");

	assert_null(prev);
	assert_string_equal(fl_log_context(), "dev-9");
	prev = fl_log_context_set("dev-8");
	assert_string_equal(prev, "dev-9");
	fl_log_context_set(prev);
	assert_string_equal(fl_log_context(), "dev-9");
	fl_log_context_set(NULL);
	assert_null(fl_log_context());
}

/* Count lines of @text containing @needle. */
static int lines_with(const char *text, const char *needle)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

static void test_two_agents_log_own_ids(void **state)
{
	struct fx x = {.f = *state};
	char *path = afx_path(x.f, "stderr.log"), *text = NULL;
	int saved = dup(2), fd;

	x.cfg[0] = device(x.f, "dev-1");
	x.cfg[1] = device(x.f, "dev-2");
	afx_observer_start(x.f, &x.obs, "fleet/#");
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0 && saved >= 0);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	assert_int_equal(agent_new(x.cfg[0], &x.a[0], NULL), 0);
	assert_int_equal(agent_new(x.cfg[1], &x.a[1], NULL), 0);
	assert_true(run_until(&x, all_online));
	assert_int_equal(agent_stop(x.a[0], 3000), 0);
	assert_int_equal(agent_stop(x.a[1], 3000), 0);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	assert_int_equal(fl_read_file(path, 1 << 20, &text, NULL, NULL), 0);
	assert_int_equal(lines_with(text, ": dev-1: connected to 127.0.0.1:"),
			 1);
	assert_int_equal(lines_with(text, ": dev-2: connected to 127.0.0.1:"),
			 1);
	assert_int_equal(lines_with(text, "dev-1: dev-1"), 0);
	assert_int_equal(lines_with(text, "dev-2: dev-2"), 0);
	assert_null(fl_log_context()); /* left as it was found */
	free(text);
	free(path);
	fx_release(&x);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_owners),
	    cmocka_unit_test(test_table_refuses_duplicates),
	    cmocka_unit_test(test_log_context_nests),
	    cmocka_unit_test_setup_teardown(test_fake_feature, afx_setup,
					    afx_teardown),
	    cmocka_unit_test_setup_teardown(test_two_agents_log_own_ids,
					    afx_setup, afx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

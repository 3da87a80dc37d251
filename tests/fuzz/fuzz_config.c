/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the INI layer (common/config.c, libinih underneath) and
 * agent.conf (common/agent_config.c), with both round trips we rely on:
 *
 *   - INI: parse -> fl_ini_format -> parse gives the same entries (what
 *     `fleetctl config` and the provisioning archive write back);
 *   - agent.conf: a file that loads renders (agent_config_render, as
 *     `fleet-agent enroll` and `fleetctl provision` write it) from its
 *     values, and the rendered text loads to the same values.
 *
 * Input: an agent.conf text; optionally, after "%%" lines (fuzz.h), the
 * six template fields to render directly: id, server URL, MQTT URL,
 * state_dir, ca, topic_prefix (an empty field means "not given").
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_config.h"
#include "config.h"
#include "fuzz.h"
#include "util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	return 0;
}

static void ini_round_trip(const char *text)
{
	struct fl_ini *ini = NULL, *again = NULL;
	struct fl_error err = {0};
	char *out;
	int rc;

	rc = fl_ini_parse(text, &ini, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		return;
	}
	out = fl_ini_format(ini);
	if (fl_ini_parse(out, &again, &err)) {
		fprintf(stderr, "fuzz: formatted INI does not parse: %s\n%s\n",
			err.msg, out);
		__builtin_trap();
	}
	FUZZ_ASSERT(again->n == ini->n);
	for (size_t i = 0; i < ini->n; i++) {
		FUZZ_ASSERT(strcmp(ini->v[i].section, again->v[i].section) ==
			    0);
		FUZZ_ASSERT(strcmp(ini->v[i].key, again->v[i].key) == 0);
		FUZZ_ASSERT(strcmp(ini->v[i].value, again->v[i].value) == 0);
	}
	fl_ini_free(again);
	fl_ini_free(ini);
	free(out);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Render @t; when that works, the text loads back to @t's values. */
static void render_round_trip(const struct agent_config_template *t)
{
	struct agent_config *c = NULL;
	struct fl_error err = {0};
	char *text = NULL, *ca;
	int rc;

	rc = agent_config_render(t, &text, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EINVAL);
		return;
	}
	if (agent_config_parse(text, "/", NULL, &c, &err)) {
		fprintf(stderr,
			"fuzz: rendered agent.conf does not load: "
			"%s\n%s\n",
			err.msg, text);
		__builtin_trap();
	}
	FUZZ_ASSERT(same(c->id, t->id));
	FUZZ_ASSERT(same(c->server_url, t->server_url));
	FUZZ_ASSERT(same(c->mqtt_url, t->mqtt_url));
	FUZZ_ASSERT(
	    same(c->topic_prefix, t->topic_prefix ? t->topic_prefix : "fleet"));
	/* relative paths are relative to the file's directory, here "/" */
	if (t->state_dir && t->state_dir[0] == '/')
		FUZZ_ASSERT(same(c->state_dir, t->state_dir));
	if (t->ca_file && t->ca_file[0] == '/')
		FUZZ_ASSERT(same(c->ca_file, t->ca_file));
	if (!t->ca_file) {
		ca = fl_path_join(c->state_dir, "ca.pem");
		FUZZ_ASSERT(same(c->ca_file, ca));
		free(ca);
	}
	agent_config_free(c);
	free(text);
}

/* A file that loads renders from its own values, the same again. */
static void config_round_trip(const char *text)
{
	struct agent_config *c = NULL;
	int rc;

	rc = agent_config_parse(text, "/", NULL, &c, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT ||
			    rc == FL_EINVAL);
		return;
	}
	render_round_trip(&(struct agent_config_template){
	    .id = c->id,
	    .server_url = c->server_url,
	    .mqtt_url = c->mqtt_url,
	    .state_dir = c->state_dir,
	    .ca_file = c->ca_file,
	    .topic_prefix = c->topic_prefix,
	});
	agent_config_free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[7];
	size_t n = fuzz_split(data, size, parts, 7);
	char *text = fuzz_strndup(&parts[0]), *f[6];

	ini_round_trip(text);
	config_round_trip(text);
	free(text);
	if (n < 7)
		return 0;
	for (size_t i = 0; i < 6; i++)
		f[i] = parts[i + 1].len ? fuzz_strndup(&parts[i + 1]) : NULL;
	render_round_trip(&(struct agent_config_template){f[0], f[1], f[2],
							  f[3], f[4], f[5]});
	for (size_t i = 0; i < 6; i++)
		free(f[i]);
	return 0;
}

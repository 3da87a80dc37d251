/* SPDX-License-Identifier: MIT */
/*
 * fleetctl provision ID [--group G] --out ID.tar.gz
 *
 * Factory provisioning (DESIGN §3): the key is made here, fleetd signs
 * the CSR, and the device's whole identity goes into one tar.gz:
 * ID/key.pem (0600), cert.pem, chain.pem, ca.pem and a ready agent.conf,
 * so `fleet-agent run --config ID/agent.conf` starts from it unchanged;
 * and root.json, fleetd's first bundle trust root, when it has one.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent_config.h"
#include "cli.h"
#include "fsutil.h"
#include "pki.h"
#include "util.h"
#include "validate.h"

/* The certificate fleetd returned must be for our key. */
static int check_cert(EVP_PKEY *key, const char *pem, struct fl_error *err)
{
	X509 *cert = NULL;
	int rc = fl_pki_cert_from_pem(pem, strlen(pem), &cert, err);

	if (!rc)
		rc = fl_pki_key_matches_cert(key, cert, err);
	X509_free(cert);
	return rc;
}

/*
 * The bundle trust root the device starts from (fleetd's version 1,
 * which every later root chains from), as root.json text; NULL when
 * fleetd has none yet (the agent then fetches it at its first update).
 */
static char *first_root(struct cli_ctx *ctx)
{
	struct fl_error err = {0};
	json_t *j = NULL;
	char *text = NULL;

	if (!fl_http_json(ctx->http, "GET", "/api/v1/roots/1", NULL, &j,
			  &err) &&
	    json_is_object(j))
		text = json_dumps(j, JSON_INDENT(2));
	json_decref(j);
	return text;
}

static int build(struct cli_ctx *ctx, const char *id, struct cli_out_file *out,
		 EVP_PKEY *key, json_t *resp)
{
	const char *cert = json_string_value(json_object_get(resp, "cert"));
	const char *mqtt = json_string_value(json_object_get(resp, "mqtt_url"));
	struct agent_config_template t = {
		.id = id,
		.server_url = json_string_value(json_object_get(resp, "server_url")),
		.mqtt_url = mqtt,
		.topic_prefix =
			json_string_value(json_object_get(resp, "topic_prefix"))};
	char *key_pem = NULL, *conf = NULL, *root = NULL;
	int rc;

	if (!cert || !mqtt)
		return fl_fail(&ctx->err, FL_ERR,
			       "fleetd did not return a certificate and a "
			       "broker URL (is it serving MQTT?)");
	rc = check_cert(key, cert, &ctx->err);
	if (!rc)
		rc = fl_pki_key_to_pem(key, &key_pem, &ctx->err);
	if (!rc)
		rc = agent_config_render(&t, &conf, &ctx->err);
	if (!rc)
		root = first_root(ctx);
	if (!rc) {
		const struct cli_tgz_file files[] = {
			{"key.pem", key_pem, 0600},
			{"cert.pem", cert, 0644},
			{"chain.pem",
			 json_string_value(json_object_get(resp, "chain")), 0644},
			{"ca.pem", json_string_value(json_object_get(resp, "ca")),
			 0644},
			{"agent.conf", conf, 0644},
			{"root.json", root, 0644},
		};

		rc = cli_write_tgz(out, id, files,
				   FL_ARRAY_SIZE(files) - (root ? 0 : 1),
				   &ctx->err);
	}
	fl_free_secret(key_pem);
	free(conf);
	free(root);
	return rc;
}

/*
 * fleetd registered @id but its archive was not written: the key is
 * lost, so take the registration back (the id stays free for a retry).
 */
static void undo(struct cli_ctx *ctx, const char *id, const json_t *resp)
{
	const char *serial = json_string_value(json_object_get(resp, "serial"));
	struct fl_error err = {0};
	json_t *req = json_pack("{s:s?}", "serial", serial), *ans = NULL;
	char *path = fl_xasprintf("/api/v1/provision/%s/undo", id);

	if (fl_http_json(ctx->http, "POST", path, req, &ans, &err))
		fprintf(stderr, "fleetctl: warning: %s stays registered on "
				"fleetd (%s); remove it with 'fleetctl devices "
				"decommission %s'\n", id, err.msg, id);
	else
		cli_note(ctx, "nothing kept: fleetd's registration of %s was "
			      "undone", id);
	json_decref(ans);
	json_decref(req);
	free(path);
}

/* Make the key and CSR, and have fleetd register the device. */
static int request(struct cli_ctx *ctx, const char *id, const char *group,
		   EVP_PKEY **ret_key, json_t **ret_resp)
{
	json_t *req = NULL;
	char *csr = NULL;
	int rc = fl_pki_keygen_p256(ret_key, &ctx->err);

	if (!rc)
		rc = fl_pki_csr_create(*ret_key, id, &csr, &ctx->err);
	if (!rc) {
		req = json_pack("{s:s, s:s, s:s?}", "id", id, "csr", csr,
				"group", group);
		rc = fl_http_json(ctx->http, "POST", "/api/v1/provision", req,
				  ret_resp, &ctx->err);
	}
	json_decref(req);
	free(csr);
	return rc;
}

int cmd_provision(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"group", required_argument, NULL, 'g'},
		{"out", required_argument, NULL, 'O'},
		{"force", no_argument, NULL, 'f'},
		{NULL, 0, NULL, 0},
	};
	const char *group = NULL, *outp = NULL, *id;
	struct cli_out_file out = {.fd = -1};
	EVP_PKEY *key = NULL;
	json_t *resp = NULL;
	bool force = false;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'g')
			group = optarg;
		else if (c == 'O')
			outp = optarg;
		else if (c == 'f')
			force = true;
		else
			return cli_usage(ctx, "unknown option");
	}
	if (optind != argc - 1 || !outp)
		return cli_usage(ctx, "expected a device ID and --out FILE");
	id = argv[optind];
	if (!fl_valid_id(id) || (group && !fl_valid_id(group)))
		return cli_usage(ctx, "invalid device id or group");
	/* the file first: nothing is stored on fleetd if it cannot exist */
	rc = cli_out_open(&out, outp, force, &ctx->err);
	if (!rc)
		rc = request(ctx, id, group, &key, &resp);
	if (!rc) {
		rc = build(ctx, id, &out, key, resp);
		if (rc)
			undo(ctx, id, resp);
	}
	cli_out_close(&out);
	if (!rc)
		cli_note(ctx, "wrote %s: unpack it on the device and run "
			      "'fleet-agent run --config %s/agent.conf'",
			 outp, id);
	if (!rc)
		cli_print_result(ctx, json_pack("{s:s, s:s, s:s?}", "id", id,
						"file", outp, "group", group));
	json_decref(resp);
	EVP_PKEY_free(key);
	return rc;
}

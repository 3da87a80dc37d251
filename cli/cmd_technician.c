/* SPDX-License-Identifier: MIT */
/*
 * fleetctl technician issue NAME [--ttl D] --out FILE.tar.gz [--force]
 * fleetctl technician list
 * fleetctl technician revoke NAME
 *
 * Technicians' certificates for `fleetctl diag --direct` (issue 12,
 * docs/diagnostics.md "Direct, on site").  As for a factory provision
 * the key is made here and never sent: fleetd signs the CSR (CN
 * tech-NAME, short-lived) and the archive holds tech-NAME/key.pem
 * (0600), cert.pem, chain.pem, ca.pem and technician.json (name, broker
 * URL, topic prefix, expiry).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "pki.h"
#include "util.h"
#include "validate.h"

/* technician.json: what diag --direct needs besides the PEM files. */
static char *tech_json(const json_t *resp)
{
	json_t *j = json_pack("{s:O, s:O, s:O?, s:O, s:O, s:O}", "name",
			      json_object_get(resp, "name"), "id",
			      json_object_get(resp, "id"), "broker",
			      json_object_get(resp, "mqtt_url"), "topic_prefix",
			      json_object_get(resp, "topic_prefix"), "serial",
			      json_object_get(resp, "serial"), "expires",
			      json_object_get(resp, "expires"));
	char *text = j ? json_dumps(j, JSON_INDENT(2)) : NULL;

	json_decref(j);
	return text;
}

static const char *member(const json_t *j, const char *key)
{
	return json_string_value(json_object_get(j, key));
}

static int write_bundle(struct cli_ctx *ctx, struct cli_out_file *out,
			EVP_PKEY *key, const json_t *resp)
{
	const char *cert = member(resp, "cert"), *id = member(resp, "id");
	char *key_pem = NULL, *meta = tech_json(resp);
	X509 *x = NULL;
	int rc = 0;

	if (!cert || !id || !fl_valid_id(id) || !member(resp, "chain") ||
	    !member(resp, "ca") || !meta)
		rc = fl_fail(&ctx->err, FL_EPARSE,
			     "fleetd's answer lacks the certificate");
	if (!rc)
		rc = fl_pki_cert_from_pem(cert, strlen(cert), &x, &ctx->err);
	if (!rc)
		rc = fl_pki_key_matches_cert(key, x, &ctx->err);
	if (!rc)
		rc = fl_pki_key_to_pem(key, &key_pem, &ctx->err);
	if (!rc) {
		const struct cli_tgz_file files[] = {
		    {"key.pem", key_pem, 0600},
		    {"cert.pem", cert, 0644},
		    {"chain.pem", member(resp, "chain"), 0644},
		    {"ca.pem", member(resp, "ca"), 0644},
		    {"technician.json", meta, 0644},
		};

		rc = cli_write_tgz(out, id, files, FL_ARRAY_SIZE(files),
				   &ctx->err);
	}
	X509_free(x);
	fl_free_secret(key_pem);
	free(meta);
	return rc;
}

/* Make the key and CSR; fleetd signs. */
static int request(struct cli_ctx *ctx, const char *name, int64_t ttl,
		   EVP_PKEY **ret_key, json_t **ret_resp)
{
	char *cn = fl_xasprintf("tech-%s", name), *csr = NULL;
	json_t *req = NULL;
	int rc = fl_pki_keygen_p256(ret_key, &ctx->err);

	if (!rc)
		rc = fl_pki_csr_create(*ret_key, cn, &csr, &ctx->err);
	if (!rc) {
		req = json_pack("{s:s, s:s, s:I}", "name", name, "csr", csr,
				"ttl_s", (json_int_t)ttl);
		rc = fl_http_json(ctx->http, "POST", "/api/v1/technicians", req,
				  ret_resp, &ctx->err);
	}
	json_decref(req);
	free(csr);
	free(cn);
	return rc;
}

/* The certificate was issued but its archive not written: the key is
 * lost with it, so revoke it (NAME may be issued again at once). */
static void undo(struct cli_ctx *ctx, const char *name)
{
	char *path = fl_xasprintf("/api/v1/technicians/%s/revoke", name);
	struct fl_error err = {0};

	if (fl_http_json(ctx->http, "POST", path, NULL, NULL, &err))
		fprintf(stderr,
			"fleetctl: warning: technician %s holds a certificate "
			"nobody has (%s); revoke it with 'fleetctl technician "
			"revoke %s'\n",
			name, err.msg, name);
	else
		cli_note(ctx, "nothing kept: the certificate of %s was revoked",
			 name);
	free(path);
}

static int parse_issue(struct cli_ctx *ctx, int argc, char **argv, int64_t *ttl,
		       const char **outp, bool *force)
{
	static const struct option opts[] = {
	    {"ttl", required_argument, NULL, 't'},
	    {"out", required_argument, NULL, 'O'},
	    {"force", no_argument, NULL, 'f'},
	    {"output", required_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int c;

	*ttl = FL_TECH_TTL_DEFAULT;
	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (fl_parse_duration(optarg, ttl, NULL) ||
			    *ttl < FL_TECH_TTL_MIN || *ttl > FL_TECH_TTL_MAX)
				return cli_usage(ctx, "--ttl must be %ds..%dh",
						 FL_TECH_TTL_MIN,
						 FL_TECH_TTL_MAX / 3600);
			break;
		case 'O':
			*outp = optarg;
			break;
		case 'f':
			*force = true;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (optind != argc - 1 || !*outp)
		return cli_usage(ctx, "expected a NAME and --out FILE.tar.gz");
	if (fl_check_tech_name(argv[optind], &ctx->err))
		return cli_usage(ctx, "%s", ctx->err.msg);
	return 0;
}

static int cmd_tech_issue(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct cli_out_file out = {.fd = -1};
	const char *outp = NULL, *name;
	EVP_PKEY *key = NULL;
	json_t *resp = NULL;
	bool force = false;
	int64_t ttl;
	int rc;

	if ((rc = parse_issue(ctx, argc, argv, &ttl, &outp, &force)))
		return rc;
	name = argv[optind];
	rc = cli_out_open(&out, outp, force, &ctx->err);
	if (!rc)
		rc = request(ctx, name, ttl, &key, &resp);
	if (!rc)
		rc = write_bundle(ctx, &out, key, resp);
	cli_out_close(&out);
	if (!rc) {
		cli_note(ctx,
			 "wrote %s: valid until %s; use it with 'fleetctl diag "
			 "--direct --cert-bundle %s ID CHECK'",
			 outp, member(resp, "expires"), outp);
		cli_print_result(
		    ctx,
		    json_pack("{s:s, s:O, s:O, s:s}", "name", name, "serial",
			      json_object_get(resp, "serial"), "expires",
			      json_object_get(resp, "expires"), "file", outp));
	} else if (resp) {
		undo(ctx, name);
	}
	json_decref(resp);
	EVP_PKEY_free(key);
	return rc;
}

static int cmd_tech_list(int argc, char **argv, void *arg)
{
	static const struct cli_col cols[] = {{"NAME", "name"},
					      {"STATE", "state"},
					      {"ISSUED", "issued"},
					      {"EXPIRES", "expires"},
					      {"REVOKED", "revoked"},
					      {"SERIAL", "serial"},
					      {NULL, NULL}};
	struct cli_ctx *ctx = arg;
	json_t *rows;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 0, 0, "no arguments")))
		return rc;
	rc = fl_http_json(ctx->http, "GET", "/api/v1/technicians", NULL, &rows,
			  &ctx->err);
	if (rc)
		return rc;
	cli_print_rows(ctx, rows, cols);
	json_decref(rows);
	return 0;
}

static int cmd_tech_revoke(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *resp = NULL;
	char *path;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "a technician NAME")))
		return rc;
	if (fl_check_tech_name(argv[optind], &ctx->err))
		return cli_usage(ctx, "%s", ctx->err.msg);
	path = fl_xasprintf("/api/v1/technicians/%s/revoke", argv[optind]);
	rc = fl_http_json(ctx->http, "POST", path, NULL, &resp, &ctx->err);
	free(path);
	if (!rc) {
		cli_note(ctx,
			 "revoked technician %s: the broker refuses its "
			 "certificate and its session was ended",
			 argv[optind]);
		cli_print_result(ctx, json_incref(resp));
	}
	json_decref(resp);
	return rc;
}

const struct fl_cmd cli_technician_cmds[] = {
    {"issue", cmd_tech_issue, CLI_NEED_SERVER,
     "technician issue NAME [--ttl D] --out FILE.tar.gz [--force] [-o json]",
     "make a short-lived technician certificate for diag --direct (key "
     "made here)",
     "--ttl --out --force --output", NULL},
    {"list", cmd_tech_list, CLI_NEED_SERVER, "technician list [-o json]",
     "list technicians' certificates and their state", "--output", NULL},
    {"revoke", cmd_tech_revoke, CLI_NEED_SERVER,
     "technician revoke NAME [-o json]",
     "revoke a technician's certificate and end its broker session", "--output",
     NULL},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

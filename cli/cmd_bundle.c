/* SPDX-License-Identifier: MIT */
/*
 * fleetctl bundle create|verify|inspect|upload and bundles list|show
 * (issue 4, fleet-bundle(5)).  Verification failures exit 6 with the
 * reason; nothing is extracted unless the whole bundle verified.
 */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "progress.h"
#include "gitprov.h"
#include "reader.h"
#include "root.h"
#include "util.h"
#include "writer.h"

#define MAX_IMAGES FSIG_PAYLOADS_MAX
#define MAX_KEYS 8

struct create_args {
	struct fsig_bundle_spec spec;
	struct fsig_payload_spec images[MAX_IMAGES];
	const char *hardware[FSIG_HARDWARE_MAX];
	struct fsig_key *keys[MAX_KEYS];
	const char *git_dir, *out;
	bool allow_dirty;
	enum fsig_compression comp;
	int64_t expires;
};

static int add_key(struct cli_ctx *ctx, struct create_args *a,
		   const char *spec, bool pkcs11)
{
	struct fsig_key **k = &a->keys[a->spec.n_keys];

	if (a->spec.n_keys == MAX_KEYS)
		return cli_usage(ctx, "more than %d signing keys", MAX_KEYS);
	if ((pkcs11 ? fsig_key_load_pkcs11(spec, k, &ctx->err)
		    : fsig_key_load_private(spec, k, &ctx->err)))
		return ctx->err.code;
	a->spec.n_keys++;
	return 0;
}

static int parse_create_opt(int c, struct cli_ctx *ctx, struct create_args *a)
{
	uint64_t v;

	switch (c) {
	case 'i':
		if (a->spec.n_payloads == MAX_IMAGES)
			return cli_usage(ctx, "more than %d images", MAX_IMAGES);
		a->images[a->spec.n_payloads++].path = optarg;
		return 0;
	case 'H':
		if (a->spec.n_hardware == FSIG_HARDWARE_MAX)
			return cli_usage(ctx, "too many --hardware");
		a->hardware[a->spec.n_hardware++] = optarg;
		return 0;
	case 'n': a->spec.name = optarg; return 0;
	case 'v': a->spec.version = optarg; return 0;
	case 'g': a->git_dir = optarg; return 0;
	case 'D': a->allow_dirty = true; return 0;
	case 'O': a->out = optarg; return 0;
	case 'o': return cli_legacy_out(ctx, optarg, &a->out);
	case 'k': return add_key(ctx, a, optarg, false);
	case 'p': return add_key(ctx, a, optarg, true);
	case 's':
		if (fl_parse_uint(optarg, UINT32_MAX, &v, NULL))
			return cli_usage(ctx, "bad --security-version '%s'", optarg);
		a->spec.security_version = v;
		return 0;
	case 'c':
		if (!fl_streq(optarg, "zstd") && !fl_streq(optarg, "none"))
			return cli_usage(ctx, "--compress takes zstd or none");
		a->comp = fl_streq(optarg, "zstd") ? FSIG_COMP_ZSTD
						   : FSIG_COMP_NONE;
		return 0;
	case 'e':
		if (fl_parse_duration(optarg, &a->expires, &ctx->err))
			return cli_usage(ctx, "%s", ctx->err.msg);
		return 0;
	default:
		return cli_usage(ctx, "unknown option");
	}
}

static int parse_create(int argc, char **argv, struct cli_ctx *ctx,
			struct create_args *a)
{
	static const struct option opts[] = {
		{"image", required_argument, NULL, 'i'},
		{"name", required_argument, NULL, 'n'},
		{"version", required_argument, NULL, 'v'},
		{"security-version", required_argument, NULL, 's'},
		{"hardware", required_argument, NULL, 'H'},
		{"key", required_argument, NULL, 'k'},
		{"pkcs11", required_argument, NULL, 'p'},
		{"git", required_argument, NULL, 'g'},
		{"allow-dirty", no_argument, NULL, 'D'},
		{"compress", required_argument, NULL, 'c'},
		{"expires", required_argument, NULL, 'e'},
		{"out", required_argument, NULL, 'O'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	int c, rc = 0;

	while (!rc && (c = getopt_long(argc, argv, "o:", opts, NULL)) != -1)
		rc = parse_create_opt(c, ctx, a);
	if (rc)
		return rc;
	if (optind != argc || !a->spec.n_payloads || !a->spec.name ||
	    !a->spec.version || !a->spec.n_hardware || !a->spec.n_keys ||
	    !a->out)
		return cli_usage(ctx, "--image, --name, --version, --hardware, "
				      "--key or --pkcs11, and --out are required");
	return 0;
}

static int cmd_bundle_create(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct create_args a = {0};
	struct fsig_git_info git = {0};
	struct fsig_provenance prov = {0};
	char builder[128];
	int rc;

	rc = parse_create(argc, argv, ctx, &a);
	if (!rc && a.git_dir)
		rc = fsig_git_info_read(a.git_dir, a.allow_dirty, &git, &ctx->err);
	if (rc)
		goto out;
	for (size_t i = 0; i < a.spec.n_payloads; i++)
		a.images[i].compression = a.comp;
	snprintf(builder, sizeof(builder), "fleetctl %s", FLEET_VERSION);
	prov = (struct fsig_provenance){git.commit, git.describe, git.remote,
					builder, git.dirty};
	a.spec.provenance = &prov;
	a.spec.payloads = a.images;
	a.spec.hardware = a.hardware;
	a.spec.keys = a.keys;
	a.spec.created = time(NULL);
	a.spec.expires = a.expires ? a.spec.created + a.expires : 0;
	rc = fsig_bundle_create(&a.spec, a.out, &ctx->err);
	if (rc)
		goto out;
	cli_note(ctx, "wrote %s: %s %s, %zu payload(s), %zu signature(s)",
		 a.out, a.spec.name, a.spec.version, a.spec.n_payloads,
		 a.spec.n_keys);
	cli_print_result(ctx, json_pack("{s:s, s:s, s:s, s:I, s:I}", "file",
					a.out, "name", a.spec.name, "version",
					a.spec.version,
					"payloads", (json_int_t)a.spec.n_payloads,
					"signatures", (json_int_t)a.spec.n_keys));
out:
	fsig_git_info_release(&git);
	for (size_t i = 0; i < a.spec.n_keys; i++)
		fsig_key_free(a.keys[i]);
	return rc;
}

struct verify_args {
	const char *root, *extract;
	const char *newer[16];
	size_t n_newer;
	struct fsig_policy pol;
};

/* The trusted root, walked forward through --newer-root files. */
static int trusted_root(struct cli_ctx *ctx, const struct verify_args *a,
			struct fsig_root **ret)
{
	struct fsig_root *base = NULL, *cands[16] = {0};
	enum fsig_reason why;
	int rc = fsig_root_load_trusted(a->root, &base, &why, &ctx->err);

	for (size_t i = 0; !rc && i < a->n_newer; i++)
		rc = fsig_root_load(a->newer[i], &cands[i], &ctx->err);
	if (!rc)
		rc = fsig_root_update(base, cands, a->n_newer, 0, ret, &why,
				      &ctx->err);
	for (size_t i = 0; i < a->n_newer; i++)
		fsig_root_free(cands[i]);
	fsig_root_free(base);
	return rc;
}

static int parse_verify(int argc, char **argv, struct cli_ctx *ctx,
			struct verify_args *a)
{
	static const struct option opts[] = {
		{"root", required_argument, NULL, 'r'},
		{"newer-root", required_argument, NULL, 'N'},
		{"hardware", required_argument, NULL, 'H'},
		{"min-security-version", required_argument, NULL, 's'},
		{"extract", required_argument, NULL, 'x'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->root = optarg; break;
		case 'H': a->pol.hardware = optarg; break;
		case 'x': a->extract = optarg; break;
		case 'N':
			if (a->n_newer == 16)
				return cli_usage(ctx, "too many --newer-root");
			a->newer[a->n_newer++] = optarg;
			break;
		case 's':
			if (fl_parse_uint(optarg, UINT32_MAX, &v, NULL))
				return cli_usage(ctx, "bad --min-security-version");
			a->pol.min_security_version = v;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (optind != argc - 1 || !a->root)
		return cli_usage(ctx, "expected FILE.fwb and --root ROOT.json");
	return 0;
}

static int cmd_bundle_verify(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct verify_args a = {0};
	struct fsig_root *root = NULL;
	struct fsig_manifest *m = NULL;
	enum fsig_reason why = FSIG_R_NONE;
	int rc;

	rc = parse_verify(argc, argv, ctx, &a);
	if (!rc)
		rc = trusted_root(ctx, &a, &root);
	if (!rc)
		rc = fsig_bundle_verify_file(argv[optind], root, &a.pol,
					     a.extract, &m, &why, &ctx->err);
	if (ctx->output == CLI_OUT_JSON && rc != FL_EUSAGE) {
		json_t *j = json_pack("{s:b, s:s, s:s?}", "verified", rc == 0,
				      "reason", fsig_reason_name(why), "error",
				      rc ? ctx->err.msg : NULL);

		if (m)
			json_object_set(j, "manifest", m->json);
		cli_print_json(j);
		json_decref(j);
	} else if (!rc) {
		cli_note(ctx, "%s: verified %s %s", argv[optind], m->name,
			 m->version);
	}
	fsig_manifest_free(m);
	fsig_root_free(root);
	return rc;
}

static int cmd_bundle_inspect(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct fsig_reader *r = NULL;
	json_t *j = NULL;
	int fd, rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one FILE.fwb")))
		return rc;
	fd = open(argv[optind], O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fl_fail_errno(&ctx->err, FL_ENOTFOUND, "cannot open '%s'",
				     argv[optind]);
	rc = fsig_reader_open_fd(fd, &r, &ctx->err);
	if (!rc)
		rc = fsig_reader_inspect(r, &ctx->err);
	if (!rc) {
		char *s;

		j = fsig_reader_describe(r);
		s = json_dumps(j, JSON_INDENT(2));
		if (ctx->output == CLI_OUT_JSON)
			cli_print_json(j);
		else
			printf("%s\n(not verified: use 'bundle verify')\n", s);
		free(s);
	}
	json_decref(j);
	fsig_reader_free(r);
	close(fd);
	return rc;
}

static const struct cli_col bundle_cols[] = {
	{"ID", "id"},		 {"NAME", "name"},
	{"VERSION", "version"},	 {"SECURITY", "security_version"},
	{"HARDWARE", "hardware"}, {"SIZE", "size"},
	{"CREATED", "created"},	 {NULL, NULL}};

static int cmd_bundle_upload(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct cli_progress bar;
	json_t *resp = NULL;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one FILE.fwb")))
		return rc;
	cli_progress_start(ctx, &bar, "upload");
	rc = fl_http_upload(ctx->http, "POST", "/api/v1/bundles", argv[optind],
			    &resp, &ctx->err);
	cli_progress_end(ctx, &bar);
	if (rc)
		return rc;
	if (ctx->output == CLI_OUT_JSON)
		cli_print_json(resp);
	else
		printf("%s\n", json_string_value(json_object_get(resp, "id")));
	cli_note(ctx, "fleetd verified and stored %s %s",
		 json_string_value(json_object_get(resp, "name")),
		 json_string_value(json_object_get(resp, "version")));
	json_decref(resp);
	return 0;
}

static int cmd_bundles_list(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;

	return cli_list_cmd(ctx, argc, argv, "/api/v1/bundles", bundle_cols);
}

static int cmd_bundles_show(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *b;
	char *path;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one bundle ID")))
		return rc;
	if (strpbrk(argv[optind], "/?#%"))
		return cli_usage(ctx, "expected one bundle ID or NAME@VERSION");
	path = fl_xasprintf("/api/v1/bundles/%s", argv[optind]);
	rc = fl_http_json(ctx->http, "GET", path, NULL, &b, &ctx->err);
	free(path);
	if (rc)
		return rc;
	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(b);
	} else {
		static const struct cli_col f[] = {
			{"id", "id"},	  {"name", "name"},
			{"version", "version"},
			{"security version", "security_version"},
			{"hardware", "hardware"}, {"size", "size"},
			{"sha256", "sha256"},	{"created", "created"},
			{"uploaded by", "uploaded_by"}, {NULL, NULL}};

		cli_print_object(ctx, b, f);
	}
	json_decref(b);
	return 0;
}

const struct fl_cmd cli_bundle_cmds[] = {
	{"create", cmd_bundle_create, 0,
	 "bundle create --image F... --name N --version V --security-version S\n"
	 "                     --hardware H... (--key K | --pkcs11 URI)...\n"
	 "                     [--git DIR [--allow-dirty]] [--compress zstd]\n"
	 "                     [--expires D] --out OUT.fwb [-o json]",
	 "build and sign a firmware bundle",
	 "--image --name --version --security-version --hardware --key "
	 "--pkcs11 --git --allow-dirty --compress --expires --out --output",
	 NULL},
	{"inspect", cmd_bundle_inspect, 0, "bundle inspect FILE.fwb [-o json]",
	 "show a bundle's manifest and signers without trusting it",
	 "--output", NULL},
	{"upload", cmd_bundle_upload, CLI_NEED_SERVER,
	 "bundle upload FILE.fwb [-o json]",
	 "stream a bundle to fleetd, which verifies it before storing it",
	 "--output", NULL},
	{"verify", cmd_bundle_verify, 0,
	 "bundle verify FILE.fwb --root ROOT.json [--newer-root R...]\n"
	 "                     [--hardware H] [--min-security-version S]\n"
	 "                     [--extract DIR] [-o json]",
	 "verify signatures, policy and every payload hash (exit 6 if not)",
	 "--root --newer-root --hardware --min-security-version --extract "
	 "--output",
	 NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

const struct fl_cmd cli_bundles_cmds[] = {
	{"list", cmd_bundles_list, CLI_NEED_SERVER, "bundles list [-o json]",
	 "list the bundles fleetd stores", "--output", NULL},
	{"show", cmd_bundles_show, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_BUNDLES),
	 "bundles show ID|NAME@VERSION [-o json]",
	 "show one stored bundle and its manifest", "--output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

/* SPDX-License-Identifier: MIT */
/*
 * fleetctl keys generate, root init|sign|rotate|show|push (issue 4):
 * signing keys and the TUF-style trust root (fleet-bundle(5)).
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "fsutil.h"
#include "json.h"
#include "keys.h"
#include "root.h"
#include "util.h"

#define MAX_KEYS 32

/* A private PEM, a public PEM or a pkcs11: URI. */
static int load_any_key(const char *spec, struct fsig_key **ret,
			struct fl_error *err)
{
	struct fl_error e2 = {0};
	int rc = fsig_key_load_private(spec, ret, &e2);

	if (rc == FL_EPARSE && !fl_startswith(spec, "pkcs11:"))
		rc = fsig_key_load_public(spec, ret, err);
	else if (rc)
		fl_fail(err, rc, "%s", e2.msg);
	return rc;
}

struct keyset {
	struct fsig_key *keys[MAX_KEYS];
	size_t n;
	unsigned threshold;
};

static int keyset_add(struct cli_ctx *ctx, struct keyset *ks,
		      const char *spec)
{
	int rc;

	if (ks->n == MAX_KEYS)
		return cli_usage(ctx, "more than %d keys", MAX_KEYS);
	rc = load_any_key(spec, &ks->keys[ks->n], &ctx->err);
	if (!rc)
		ks->n++;
	return rc;
}

static void keyset_free(struct keyset *ks)
{
	for (size_t i = 0; i < ks->n; i++)
		fsig_key_free(ks->keys[i]);
	ks->n = 0;
}

static struct fsig_role_spec role_of(const struct keyset *ks)
{
	return (struct fsig_role_spec){ks->keys, ks->n,
				       ks->threshold ? ks->threshold : 1};
}

static int cmd_keys_generate(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"alg", required_argument, NULL, 'a'},
		{"out", required_argument, NULL, 'O'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	enum fsig_alg alg = FSIG_ALG_ED25519;
	const char *out = NULL;
	struct fsig_key *key = NULL;
	char *pub;
	int c, rc;

	while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (fsig_alg_parse(optarg, &alg, NULL))
				return cli_usage(ctx, "unknown --alg '%s' "
						      "(ed25519, p256)",
						 optarg);
			break;
		case 'O':
			out = optarg;
			break;
		case 'o':
			if (cli_set_output(ctx, optarg))
				return FL_EUSAGE;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (!out || optind != argc)
		return cli_usage(ctx, "--out FILE is required");
	pub = fl_xasprintf("%s.pub", out);
	rc = fsig_key_generate(alg, &key, &ctx->err);
	if (!rc)
		rc = fsig_key_save_private(key, out, &ctx->err);
	if (!rc)
		rc = fsig_key_save_public(key, pub, &ctx->err);
	if (!rc && ctx->output == CLI_OUT_JSON) {
		json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "keyid",
				      fsig_key_id(key), "alg", fsig_alg_name(alg),
				      "private", out, "public", pub);

		cli_print_json(j);
		json_decref(j);
	} else if (!rc) {
		printf("%s\n", fsig_key_id(key));
		cli_note(ctx, "wrote %s (private, 0600) and %s", out, pub);
	}
	fsig_key_free(key);
	free(pub);
	return rc;
}

/* Options shared by root init and root rotate. */
struct root_args {
	struct keyset root, targets, signers;
	const char *out, *from;
	int64_t expires;
};

static int parse_root_args(int argc, char **argv, struct cli_ctx *ctx,
			   struct root_args *a, bool rotate)
{
	static const struct option opts[] = {
		{"root-key", required_argument, NULL, 'r'},
		{"root-threshold", required_argument, NULL, 'R'},
		{"targets-key", required_argument, NULL, 't'},
		{"targets-threshold", required_argument, NULL, 'T'},
		{"sign-key", required_argument, NULL, 'k'},
		{"expires", required_argument, NULL, 'e'},
		{"from", required_argument, NULL, 'f'},
		{"out", required_argument, NULL, 'O'},
		{NULL, 0, NULL, 0},
	};
	uint64_t v;
	int c, rc = 0;

	a->expires = 365 * 86400;
	while (!rc && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': rc = keyset_add(ctx, &a->root, optarg); break;
		case 't': rc = keyset_add(ctx, &a->targets, optarg); break;
		case 'k': rc = keyset_add(ctx, &a->signers, optarg); break;
		case 'O': a->out = optarg; break;
		case 'f': a->from = optarg; break;
		case 'e':
			rc = fl_parse_duration(optarg, &a->expires, &ctx->err)
				     ? cli_usage(ctx, "%s", ctx->err.msg) : 0;
			break;
		case 'R':
		case 'T':
			if (fl_parse_uint(optarg, MAX_KEYS, &v, NULL) || !v)
				return cli_usage(ctx, "bad threshold '%s'", optarg);
			*(c == 'R' ? &a->root.threshold : &a->targets.threshold) =
				(unsigned)v;
			break;
		default:
			return cli_usage(ctx, "unknown option");
		}
	}
	if (rc)
		return rc;
	if (!a->out || optind != argc || !a->root.n || !a->targets.n ||
	    (rotate && !a->from))
		return cli_usage(ctx, rotate ? "--from, --root-key, --targets-key "
					       "and --out are required"
					     : "--root-key, --targets-key and "
					       "--out are required");
	return 0;
}

/* Sign with every signer that has a private part, then save. */
static int sign_and_save(struct cli_ctx *ctx, struct fsig_root *root,
			 const struct keyset *signers, const char *out)
{
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < signers->n && !rc; i++)
		if (fsig_key_has_private(signers->keys[i])) {
			rc = fsig_root_sign(root, signers->keys[i], &ctx->err);
			n++;
		}
	if (!rc)
		rc = fsig_root_save(root, out, &ctx->err);
	if (rc)
		return rc;
	cli_note(ctx, "wrote %s: root version %llu with %zu signature(s)", out,
		 (unsigned long long)fsig_root_version(root), n);
	cli_print_result(ctx, json_pack("{s:s, s:I, s:I}", "file", out,
					"version",
					(json_int_t)fsig_root_version(root),
					"signed_now", (json_int_t)n));
	return 0;
}

static int cmd_root_init(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct root_args a = {0};
	struct fsig_root *root = NULL;
	struct fsig_role_spec rr, tr;
	int rc;

	rc = parse_root_args(argc, argv, ctx, &a, false);
	rr = role_of(&a.root);
	tr = role_of(&a.targets);
	if (!rc)
		rc = fsig_root_init(&rr, &tr, time(NULL) + a.expires, &root,
				    &ctx->err);
	/* the initial root keys sign it unless --sign-key says otherwise */
	if (!rc)
		rc = sign_and_save(ctx, root, a.signers.n ? &a.signers : &a.root,
				   a.out);
	fsig_root_free(root);
	keyset_free(&a.root);
	keyset_free(&a.targets);
	keyset_free(&a.signers);
	return rc;
}

static int cmd_root_rotate(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct root_args a = {0};
	struct fsig_root *prev = NULL, *next = NULL;
	struct fsig_role_spec rr, tr;
	int rc;

	rc = parse_root_args(argc, argv, ctx, &a, true);
	rr = role_of(&a.root);
	tr = role_of(&a.targets);
	if (!rc)
		rc = fsig_root_load(a.from, &prev, &ctx->err);
	if (!rc)
		rc = fsig_root_rotate(prev, &rr, &tr, time(NULL) + a.expires,
				      &next, &ctx->err);
	if (!rc)
		rc = sign_and_save(ctx, next, &a.signers, a.out);
	fsig_root_free(prev);
	fsig_root_free(next);
	keyset_free(&a.root);
	keyset_free(&a.targets);
	keyset_free(&a.signers);
	return rc;
}

static int cmd_root_sign(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct option opts[] = {
		{"key", required_argument, NULL, 'k'},
		{"out", required_argument, NULL, 'O'},
		{"output", required_argument, NULL, 'o'},
		{NULL, 0, NULL, 0},
	};
	struct keyset ks = {0};
	struct fsig_root *root = NULL;
	const char *out = NULL;
	int c, rc = 0;

	while (!rc && (c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
		if (c == 'k')
			rc = keyset_add(ctx, &ks, optarg);
		else if (c == 'O')
			out = optarg;
		else if (c == 'o')
			rc = cli_set_output(ctx, optarg);
		else
			rc = cli_usage(ctx, "unknown option");
	}
	if (!rc && (optind != argc - 1 || !ks.n))
		rc = cli_usage(ctx, "expected ROOT.json and --key K");
	if (!rc)
		rc = fsig_root_load(argv[optind], &root, &ctx->err);
	if (!rc) /* in place unless --out */
		rc = sign_and_save(ctx, root, &ks, out ? out : argv[optind]);
	fsig_root_free(root);
	keyset_free(&ks);
	return rc;
}

static int cmd_root_show(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	struct fsig_root *root = NULL;
	json_t *j;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one ROOT.json")))
		return rc;
	rc = fsig_root_load(argv[optind], &root, &ctx->err);
	if (rc)
		return rc;
	j = fsig_root_to_json(root);
	if (ctx->output == CLI_OUT_JSON) {
		cli_print_json(j);
	} else {
		char *s = json_dumps(j, JSON_INDENT(2));

		printf("%s\n", s);
		free(s);
	}
	json_decref(j);
	fsig_root_free(root);
	return 0;
}

/* Send a root to fleetd, which accepts only a valid next version. */
static int cmd_root_push(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	json_t *j = NULL, *resp = NULL;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one ROOT.json")))
		return rc;
	rc = fl_json_load_file(argv[optind], FSIG_ROOT_MAX, &j, &ctx->err);
	if (!rc)
		rc = fl_http_json(ctx->http, "POST", "/api/v1/roots", j, &resp,
				  &ctx->err);
	if (!rc) {
		cli_note(ctx, "fleetd now trusts root version %lld",
			 (long long)json_integer_value(
				 json_object_get(resp, "version")));
		cli_print_result(ctx, json_incref(resp));
	}
	json_decref(j);
	json_decref(resp);
	return rc;
}

const struct fl_cmd cli_keys_cmds[] = {
	{"generate", cmd_keys_generate, 0,
	 "keys generate [--alg ed25519|p256] --out FILE [-o json]",
	 "make a signing key pair (FILE, 0600, and FILE.pub)",
	 "--alg --out --output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

const struct fl_cmd cli_root_cmds[] = {
	{"init", cmd_root_init, 0,
	 "root init --root-key K... [--root-threshold N] --targets-key K...\n"
	 "                [--targets-threshold N] [--expires D] --out ROOT.json",
	 "create and sign trust root version 1",
	 "--root-key --root-threshold --targets-key --targets-threshold "
	 "--sign-key --expires --out",
	 NULL},
	{"push", cmd_root_push, CLI_NEED_SERVER, "root push ROOT.json [-o json]",
	 "give fleetd a trust root (the first, or the next version)",
	 "--output", NULL},
	{"rotate", cmd_root_rotate, 0,
	 "root rotate --from OLD.json --root-key K... --targets-key K...\n"
	 "                  [--*-threshold N] [--expires D] --sign-key K... "
	 "--out NEW.json",
	 "make the next root version, signed by old and new root keys",
	 "--from --root-key --root-threshold --targets-key "
	 "--targets-threshold --sign-key --expires --out",
	 NULL},
	{"show", cmd_root_show, 0, "root show ROOT.json [-o json]",
	 "print a root: version, expiry, keys, thresholds, signatures",
	 "--output", NULL},
	{"sign", cmd_root_sign, 0,
	 "root sign ROOT.json --key K... [--out FILE] [-o json]",
	 "add signatures to a root file (in place, or into --out FILE)",
	 "--key --out --output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

/* SPDX-License-Identifier: MIT */
/*
 * fsig-tool: drive libfleetsign from scripts (bench/signing.sh,
 * firmware-sample bundles, fuzz seeds) without fleetctl.  Test helper
 * only; fleetctl keys|root|bundle is the user-facing interface.
 *
 *   fsig-tool keygen [--alg ed25519|p256] OUT          (OUT and OUT.pub)
 *   fsig-tool root-init --root-key K... --targets-key K...
 *             [--root-threshold N] [--targets-threshold N]
 *             [--expires DUR] -o ROOT
 *   fsig-tool root-rotate --prev ROOT --sign K... --root-key K...
 *             --targets-key K... [...] -o NEW
 *   fsig-tool create --key K... --name N --version V [--security-version S]
 *             --hardware H... --image F... [--compress zstd] [--level L]
 *             [--git DIR [--allow-dirty]] [--expires DUR] -o OUT
 *   fsig-tool verify --root ROOT [--update NEWER...] [--hardware H]
 *             [--min-security-version S] [--extract DIR] BUNDLE
 *   fsig-tool inspect BUNDLE
 *
 * Exit status: 0 ok, 6 verification failed, else the error's exit code.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gitprov.h"
#include "keys.h"
#include "reader.h"
#include "root.h"
#include "writer.h"
#include "util.h"

#define MAXN 16

struct opts {
	const char *alg, *out, *name, *version, *git, *root, *prev, *extract;
	const char *hw_one, *expires, *compress;
	const char *keys[MAXN], *root_keys[MAXN], *targets_keys[MAXN];
	const char *hardware[MAXN], *images[MAXN], *updates[MAXN];
	const char *sign[MAXN];
	size_t n_keys, n_root_keys, n_targets_keys, n_hardware, n_images;
	size_t n_updates, n_sign;
	unsigned root_threshold, targets_threshold;
	uint64_t security_version, min_sv;
	int level;
	bool allow_dirty;
};

static void add(const char **list, size_t *n, const char *v)
{
	if (*n >= MAXN) {
		fprintf(stderr, "fsig-tool: error: too many values\n");
		exit(2);
	}
	list[(*n)++] = v;
}

static void parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
	    {"alg", 1, 0, 'a'},
	    {"out", 1, 0, 'o'},
	    {"root-key", 1, 0, 'R'},
	    {"targets-key", 1, 0, 'T'},
	    {"root-threshold", 1, 0, 'r'},
	    {"targets-threshold", 1, 0, 't'},
	    {"expires", 1, 0, 'e'},
	    {"key", 1, 0, 'k'},
	    {"name", 1, 0, 'n'},
	    {"version", 1, 0, 'v'},
	    {"security-version", 1, 0, 's'},
	    {"hardware", 1, 0, 'H'},
	    {"image", 1, 0, 'i'},
	    {"compress", 1, 0, 'c'},
	    {"level", 1, 0, 'l'},
	    {"git", 1, 0, 'g'},
	    {"allow-dirty", 0, 0, 'D'},
	    {"root", 1, 0, 'x'},
	    {"update", 1, 0, 'u'},
	    {"min-security-version", 1, 0, 'm'},
	    {"extract", 1, 0, 'X'},
	    {"prev", 1, 0, 'p'},
	    {"sign", 1, 0, 'S'},
	    {0, 0, 0, 0},
	};
	int c;

	o->root_threshold = o->targets_threshold = 1;
	while ((c = getopt_long(argc, argv, "o:", lo, NULL)) != -1) {
		switch (c) {
		case 'a':
			o->alg = optarg;
			break;
		case 'o':
			o->out = optarg;
			break;
		case 'R':
			add(o->root_keys, &o->n_root_keys, optarg);
			break;
		case 'T':
			add(o->targets_keys, &o->n_targets_keys, optarg);
			break;
		case 'r':
			o->root_threshold = (unsigned)atoi(optarg);
			break;
		case 't':
			o->targets_threshold = (unsigned)atoi(optarg);
			break;
		case 'e':
			o->expires = optarg;
			break;
		case 'k':
			add(o->keys, &o->n_keys, optarg);
			break;
		case 'n':
			o->name = optarg;
			break;
		case 'v':
			o->version = optarg;
			break;
		case 's':
			o->security_version = strtoull(optarg, NULL, 10);
			break;
		case 'H':
			add(o->hardware, &o->n_hardware, optarg);
			o->hw_one = optarg;
			break;
		case 'i':
			add(o->images, &o->n_images, optarg);
			break;
		case 'c':
			o->compress = optarg;
			break;
		case 'l':
			o->level = atoi(optarg);
			break;
		case 'g':
			o->git = optarg;
			break;
		case 'D':
			o->allow_dirty = true;
			break;
		case 'x':
			o->root = optarg;
			break;
		case 'u':
			add(o->updates, &o->n_updates, optarg);
			break;
		case 'm':
			o->min_sv = strtoull(optarg, NULL, 10);
			break;
		case 'X':
			o->extract = optarg;
			break;
		case 'p':
			o->prev = optarg;
			break;
		case 'S':
			add(o->sign, &o->n_sign, optarg);
			break;
		default:
			exit(2);
		}
	}
}

/* Load private (file or pkcs11:) or public keys; exits on failure. */
static void load_keys(const char *const *paths, size_t n, struct fsig_key **out,
		      bool priv)
{
	struct fl_error err = {0};

	for (size_t i = 0; i < n; i++) {
		int rc = priv ? fsig_key_load_private(paths[i], &out[i], &err)
			      : fsig_key_load_public(paths[i], &out[i], &err);

		if (rc == FL_EPARSE && !priv) {
			fl_error_clear(&err);
			rc = fsig_key_load_private(paths[i], &out[i], &err);
		}
		if (rc) {
			fprintf(stderr, "fsig-tool: error: %s\n", err.msg);
			exit(fl_exit_code(rc));
		}
	}
}

static void free_keys(struct fsig_key **k, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fsig_key_free(k[i]);
}

static time_t expiry(const char *dur, int64_t dflt)
{
	int64_t secs = dflt;

	if (dur && fl_parse_duration(dur, &secs, NULL)) {
		fprintf(stderr, "fsig-tool: error: bad duration '%s'\n", dur);
		exit(2);
	}
	return time(NULL) + secs;
}

static int cmd_keygen(struct opts *o, const char *out, struct fl_error *err)
{
	enum fsig_alg alg = FSIG_ALG_ED25519;
	struct fsig_key *k;
	char *pub;
	int rc;

	if (o->alg && (rc = fsig_alg_parse(o->alg, &alg, err)))
		return rc;
	rc = fsig_key_generate(alg, &k, err);
	if (rc)
		return rc;
	pub = fl_xasprintf("%s.pub", out);
	rc = fsig_key_save_private(k, out, err);
	if (!rc)
		rc = fsig_key_save_public(k, pub, err);
	if (!rc)
		printf("%s\n", fsig_key_id(k));
	free(pub);
	fsig_key_free(k);
	return rc;
}

static int build_root(struct opts *o, const struct fsig_root *prev,
		      struct fl_error *err)
{
	struct fsig_key *rk[MAXN], *tk[MAXN], *sk[MAXN];
	struct fsig_role_spec rs = {rk, o->n_root_keys, o->root_threshold};
	struct fsig_role_spec ts = {tk, o->n_targets_keys,
				    o->targets_threshold};
	struct fsig_root *root = NULL;
	time_t exp = expiry(o->expires, 365 * 86400);
	int rc;

	load_keys(o->root_keys, o->n_root_keys, rk, false);
	load_keys(o->targets_keys, o->n_targets_keys, tk, false);
	load_keys(o->sign, o->n_sign, sk, true);
	rc = prev ? fsig_root_rotate(prev, &rs, &ts, exp, &root, err)
		  : fsig_root_init(&rs, &ts, exp, &root, err);
	for (size_t i = 0; !rc && i < o->n_sign; i++)
		rc = fsig_root_sign(root, sk[i], err);
	if (!rc)
		rc = fsig_root_save(root, o->out, err);
	fsig_root_free(root);
	free_keys(rk, o->n_root_keys);
	free_keys(tk, o->n_targets_keys);
	free_keys(sk, o->n_sign);
	return rc;
}

static int cmd_root(struct opts *o, struct fl_error *err)
{
	struct fsig_root *prev = NULL;
	int rc;

	if (!o->out || !o->n_root_keys || !o->n_targets_keys)
		return fl_fail(err, FL_EUSAGE,
			       "need -o, --root-key, "
			       "--targets-key");
	if (!o->prev) {
		/* root-init signs with the root keys themselves */
		for (size_t i = 0; i < o->n_root_keys; i++)
			add(o->sign, &o->n_sign, o->root_keys[i]);
		return build_root(o, NULL, err);
	}
	rc = fsig_root_load(o->prev, &prev, err);
	if (!rc)
		rc = build_root(o, prev, err);
	fsig_root_free(prev);
	return rc;
}

static int cmd_create(struct opts *o, struct fl_error *err)
{
	struct fsig_payload_spec ps[MAXN] = {0};
	struct fsig_provenance prov = {.builder = "fsig-tool " FLEET_VERSION};
	struct fsig_git_info git = {0};
	struct fsig_key *keys[MAXN];
	struct fsig_bundle_spec s = {
	    .name = o->name,
	    .version = o->version,
	    .security_version = o->security_version,
	    .hardware = o->hardware,
	    .n_hardware = o->n_hardware,
	    .payloads = ps,
	    .n_payloads = o->n_images,
	    .keys = keys,
	    .n_keys = o->n_keys,
	    .zstd_level = o->level,
	};
	int rc = 0;

	if (!o->out)
		return fl_fail(err, FL_EUSAGE, "need -o OUT");
	for (size_t i = 0; i < o->n_images; i++) {
		ps[i].path = o->images[i];
		ps[i].compression = fl_streq(o->compress, "zstd")
					? FSIG_COMP_ZSTD
					: FSIG_COMP_NONE;
	}
	if (o->expires)
		s.expires = expiry(o->expires, 0);
	if (o->git) {
		rc = fsig_git_info_read(o->git, o->allow_dirty, &git, err);
		prov.commit = git.commit;
		prov.describe = git.describe;
		prov.remote = git.remote;
		prov.dirty = git.dirty;
		s.provenance = &prov;
	}
	load_keys(o->keys, o->n_keys, keys, true);
	if (!rc)
		rc = strcmp(o->out, "-") == 0
			 ? fsig_bundle_write(&s, 1, err)
			 : fsig_bundle_create(&s, o->out, err);
	free_keys(keys, o->n_keys);
	fsig_git_info_release(&git);
	return rc;
}

/* Trusted root plus --update files walked to the newest. */
static int load_root(struct opts *o, struct fsig_root **ret,
		     struct fl_error *err)
{
	struct fsig_root *trusted, *cand[MAXN] = {0};
	size_t n = 0;
	int rc;

	rc = fsig_root_load_trusted(o->root, &trusted, NULL, err);
	if (rc)
		return rc;
	for (; !rc && n < o->n_updates; n++)
		rc = fsig_root_load(o->updates[n], &cand[n], err);
	if (!rc)
		rc = fsig_root_update(trusted, cand, n, 0, ret, NULL, err);
	for (size_t i = 0; i < n; i++)
		fsig_root_free(cand[i]);
	fsig_root_free(trusted);
	return rc;
}

static int cmd_verify(struct opts *o, const char *path, struct fl_error *err)
{
	struct fsig_policy pol = {.hardware = o->hw_one,
				  .min_security_version = o->min_sv};
	struct fsig_manifest *m = NULL;
	struct fsig_root *root;
	int rc;

	if (!o->root)
		return fl_fail(err, FL_EUSAGE, "need --root ROOT");
	rc = load_root(o, &root, err);
	if (rc)
		return rc;
	rc = fsig_bundle_verify_file(path, root, &pol, o->extract, &m, NULL,
				     err);
	if (!rc)
		printf("%s %s verified\n", m->name, m->version);
	fsig_manifest_free(m);
	fsig_root_free(root);
	return rc;
}

static int cmd_inspect(const char *path, struct fl_error *err)
{
	struct fsig_reader *r = NULL;
	FILE *f = fopen(path, "rb");
	json_t *j;
	int rc;

	if (!f)
		return fl_fail_errno(err, FL_ENOTFOUND, "cannot open '%s'",
				     path);
	rc = fsig_reader_open_fd(fileno(f), &r, err);
	if (!rc)
		rc = fsig_reader_inspect(r, err);
	if (!rc) {
		j = fsig_reader_describe(r);
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
	}
	fsig_reader_free(r);
	fclose(f);
	return rc;
}

int main(int argc, char **argv)
{
	struct fl_error err = {0};
	struct opts o = {0};
	const char *cmd;
	int rc;

	if (argc < 2) {
		fprintf(stderr, "usage: fsig-tool keygen|root-init|root-rotate|"
				"create|verify|inspect ...\n");
		return 2;
	}
	cmd = argv[1];
	parse(argc - 1, argv + 1, &o);
	if (strcmp(cmd, "keygen") == 0 && optind + 2 == argc)
		rc = cmd_keygen(&o, argv[argc - 1], &err);
	else if (strcmp(cmd, "root-init") == 0 ||
		 strcmp(cmd, "root-rotate") == 0)
		rc = cmd_root(&o, &err);
	else if (strcmp(cmd, "create") == 0)
		rc = cmd_create(&o, &err);
	else if (strcmp(cmd, "verify") == 0 && optind + 2 == argc)
		rc = cmd_verify(&o, argv[argc - 1], &err);
	else if (strcmp(cmd, "inspect") == 0 && optind + 2 == argc)
		rc = cmd_inspect(argv[argc - 1], &err);
	else
		rc = fl_fail(&err, FL_EUSAGE, "bad command line");
	if (rc)
		fprintf(stderr, "fsig-tool: error: %s\n", err.msg);
	return fl_exit_code(rc);
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the manifest: parsing with every key (provenance, delta_from,
 * expires, compression), the policy check, semantic versions with
 * pre-release ordering, and the round trip through the writer's
 * serialisation (fsig_manifest_to_json): parse -> write -> parse gives
 * the same values, or the target aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "json.h"
#include "manifest.h"
#include "util.h"

/* Versions every parsed one is ordered against (SemVer 2.0.0 §11's
 * example chain, in order). */
static const char *const ladder[] = {
    "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta",
    "1.0.0-beta",  "1.0.0-beta.2",  "1.0.0-beta.11",
    "1.0.0-rc.1",  "1.0.0",	    "1.0.1-0",
    "1.0.1",	   "2.0.0",	    "10.0.0",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	/* the ladder itself is in order */
	for (size_t i = 0; i + 1 < FL_ARRAY_SIZE(ladder); i++)
		if (fsig_semver_cmp(ladder[i], ladder[i + 1]) >= 0)
			__builtin_trap();
	return 0;
}

static int sign(int c)
{
	return (c > 0) - (c < 0);
}

/*
 * @v (a valid version) against @other and the ladder: reflexive,
 * antisymmetric, and transitive with the ladder (whose rungs rise, so
 * sign(cmp(v, rung)) may only fall along it, and hit 0 at most once).
 */
static void check_order(const char *v, const char *other)
{
	int prev = 2;

	FUZZ_ASSERT(fsig_valid_semver(v));
	FUZZ_ASSERT(fsig_semver_cmp(v, v) == 0);
	if (other) {
		FUZZ_ASSERT(fsig_valid_semver(other));
		FUZZ_ASSERT(sign(fsig_semver_cmp(v, other)) ==
			    -sign(fsig_semver_cmp(other, v)));
	}
	for (size_t i = 0; i < FL_ARRAY_SIZE(ladder); i++) {
		int c = sign(fsig_semver_cmp(v, ladder[i]));

		FUZZ_ASSERT(c == -sign(fsig_semver_cmp(ladder[i], v)));
		FUZZ_ASSERT(c < prev || (c == -1 && prev == -1) ||
			    (c == 1 && prev == 1));
		prev = c;
	}
}

static bool same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void check_same(const struct fsig_manifest *a,
		       const struct fsig_manifest *b)
{
	const struct fsig_provenance *pa = &a->provenance, *pb = &b->provenance;

	FUZZ_ASSERT(a->format == b->format);
	FUZZ_ASSERT(same_str(a->name, b->name));
	FUZZ_ASSERT(same_str(a->version, b->version));
	FUZZ_ASSERT(a->security_version == b->security_version);
	FUZZ_ASSERT(a->n_hardware == b->n_hardware);
	for (size_t i = 0; i < a->n_hardware; i++)
		FUZZ_ASSERT(same_str(a->hardware[i], b->hardware[i]));
	FUZZ_ASSERT(a->created == b->created && a->expires == b->expires);
	FUZZ_ASSERT(a->has_provenance == b->has_provenance);
	FUZZ_ASSERT(same_str(pa->commit, pb->commit) &&
		    same_str(pa->describe, pb->describe) &&
		    same_str(pa->remote, pb->remote) &&
		    same_str(pa->builder, pb->builder) &&
		    pa->dirty == pb->dirty);
	FUZZ_ASSERT(a->n_payloads == b->n_payloads);
	for (size_t i = 0; i < a->n_payloads; i++) {
		const struct fsig_payload *x = &a->payloads[i];
		const struct fsig_payload *y = &b->payloads[i];

		FUZZ_ASSERT(same_str(x->name, y->name) &&
			    same_str(x->type, y->type));
		FUZZ_ASSERT(x->compression == y->compression);
		FUZZ_ASSERT(x->size == y->size && x->raw_size == y->raw_size);
		FUZZ_ASSERT(same_str(x->sha256, y->sha256) &&
			    same_str(x->raw_sha256, y->raw_sha256));
		FUZZ_ASSERT(same_str(x->delta_from, y->delta_from));
	}
}

/* parse -> write -> parse */
static void round_trip(const struct fsig_manifest *m)
{
	json_t *j = fsig_manifest_to_json(m);
	char *text = fl_json_dumps(j);
	struct fsig_manifest *again = NULL;
	struct fl_error err = {0};

	json_decref(j);
	if (fsig_manifest_parse(text, strlen(text), &again, NULL, &err)) {
		fprintf(stderr,
			"fuzz: written manifest does not parse: %s\n%s\n",
			err.msg, text);
		__builtin_trap();
	}
	check_same(m, again);
	fsig_manifest_free(again);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsig_policy pol = {
	    .hardware = "gw", .min_security_version = 3, .now = FUZZ_NOW};
	enum fsig_reason why = FSIG_R_NONE;
	struct fsig_manifest *m = NULL;
	struct fl_error err = {0};
	int rc;

	rc = fsig_manifest_parse(data, size, &m, &why, &err);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		FUZZ_ASSERT(why != FSIG_R_NONE);
		return 0;
	}
	rc = fsig_manifest_check_policy(m, &pol, &why, NULL);
	FUZZ_ASSERT(rc == 0 || rc == FL_EVERIFY);
	for (size_t i = 0; i < m->n_payloads; i++) {
		FUZZ_ASSERT(fsig_manifest_find(m, m->payloads[i].name) ==
			    (int)i);
		check_order(m->version, m->payloads[i].delta_from);
	}
	round_trip(m);
	fsig_manifest_free(m);
	return 0;
}

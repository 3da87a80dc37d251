/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the trust root: envelope and body parsing, the self-signature
 * check, the JSON description, and the rotation chain walk that decides
 * which root fleetd accepts and devices adopt (fsig_root_update and its
 * check_step, signing/root.c).
 *
 * The input is a list of candidate roots separated by "%%" lines
 * (fuzz.h).  The chain is walked from the committed trusted root
 * tests/fuzz/data/root.json (v1), which signed the seed chains
 * (make-seeds.sh: v2, v2+v3, out of order, a gap, a forged step, two
 * different v2s), at the fixed time FUZZ_NOW.  Invariants: a walk that
 * succeeds ends on a root that is a candidate (or the trusted one), is
 * not older, verifies by its own keys and has not expired; what we
 * write, we read back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_data.h"
#include "root.h"
#include "util.h"

#define MAX_CANDIDATES 8

static struct fsig_root *trusted;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	if (fsig_root_parse(fuzz_data_root_json, fuzz_data_root_json_len,
			    &trusted, NULL) ||
	    fsig_root_check_self(trusted, NULL, NULL))
		__builtin_trap(); /* tests/fuzz/data/root.json is broken */
	return 0;
}

/* Parse, describe, and read back what we write. */
static void one_root(const struct fsig_root *root)
{
	struct fsig_root *again = NULL;
	const char *text;
	json_t *show;
	size_t len;

	fsig_root_check_self(root, NULL, NULL);
	show = fsig_root_to_json(root);
	FUZZ_ASSERT(show != NULL);
	json_decref(show);
	text = fsig_root_text(root, &len);
	FUZZ_ASSERT(fsig_root_parse(text, len, &again, NULL) == 0);
	FUZZ_ASSERT(fsig_root_version(again) == fsig_root_version(root));
	FUZZ_ASSERT(fsig_root_expires(again) == fsig_root_expires(root));
	fsig_root_free(again);
}

/* The newest root a successful walk returned. */
static void check_newest(const struct fsig_root *newest,
			 struct fsig_root *const *cand, size_t n)
{
	uint64_t v = fsig_root_version(newest);
	size_t tlen, nlen;
	const char *t = fsig_root_text(newest, &nlen);
	bool found = v == fsig_root_version(trusted);

	FUZZ_ASSERT(v >= fsig_root_version(trusted));
	FUZZ_ASSERT(!fsig_root_expired(newest, FUZZ_NOW));
	FUZZ_ASSERT(fsig_root_check_self(newest, NULL, NULL) == 0);
	for (size_t i = 0; i < n; i++) {
		const char *c = fsig_root_text(cand[i], &tlen);

		/* nothing newer than the result was handed over */
		FUZZ_ASSERT(fsig_root_version(cand[i]) <= v);
		if (fsig_root_version(cand[i]) == v && tlen == nlen &&
		    memcmp(c, t, tlen) == 0)
			found = true;
	}
	FUZZ_ASSERT(found);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_CANDIDATES];
	struct fsig_root *cand[MAX_CANDIDATES], *newest = NULL;
	enum fsig_reason why = FSIG_R_NONE;
	size_t n = fuzz_split(data, size, parts, MAX_CANDIDATES), k = 0;
	int rc;

	for (size_t i = 0; i < n; i++)
		if (fsig_root_parse(parts[i].p, parts[i].len, &cand[k], NULL) ==
		    0)
			one_root(cand[k++]);
	rc = fsig_root_update(trusted, cand, k, FUZZ_NOW, &newest, &why, NULL);
	if (rc == 0) {
		check_newest(newest, cand, k);
		fsig_root_free(newest);
	} else {
		FUZZ_ASSERT(rc == FL_EVERIFY || rc == FL_EPARSE);
		FUZZ_ASSERT(rc != FL_EVERIFY || why != FSIG_R_NONE);
	}
	for (size_t i = 0; i < k; i++)
		fsig_root_free(cand[i]);
	return 0;
}

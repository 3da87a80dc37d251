/* SPDX-License-Identifier: MIT */
#ifndef FSIG_SIGS_H
#define FSIG_SIGS_H

/*
 * Signature lists: the JSON array [{"keyid": HEX, "sig": BASE64}, ...]
 * used both by manifest.sig and by the root envelope, and the threshold
 * check over them.
 */
#include <stddef.h>

#include <jansson.h>

#include "err.h"
#include "keys.h"
#include "reason.h"

#define FSIG_SIGS_MAX 16	     /* signatures in one list */
#define FSIG_SIGFILE_MAX (16 * 1024) /* bytes of a manifest.sig */

struct fsig_sig {
	char keyid[FSIG_KEYID_LEN + 1];
	size_t len;
	unsigned char sig[FSIG_SIG_MAX];
};

struct fsig_siglist {
	size_t n;
	struct fsig_sig sigs[FSIG_SIGS_MAX];
};

/* True for exactly 64 lowercase hex characters. */
bool fsig_valid_keyid(const char *s);

/*
 * Parse a JSON signature array (@arr) into @out.  FL_EPARSE for a bad
 * element (missing fields, key id not 64 lowercase hex, bad base64),
 * FL_ELIMIT for more than FSIG_SIGS_MAX elements or an over-long sig.
 */
int fsig_siglist_from_json(const json_t *arr, struct fsig_siglist *out,
			   struct fl_error *err);

/* As fsig_siglist_from_json, from @len bytes of JSON text. */
int fsig_siglist_parse(const void *buf, size_t len, struct fsig_siglist *out,
		       struct fl_error *err);

/* The list as a new JSON array (caller decrefs). */
json_t *fsig_siglist_to_json(const struct fsig_siglist *list);

/*
 * Sign @data under @domain with @key and append the signature to @list,
 * replacing an earlier signature by the same key.  FL_ELIMIT when full.
 */
int fsig_siglist_add(struct fsig_siglist *list, const struct fsig_key *key,
		     const char *domain, const void *data, size_t len,
		     struct fl_error *err);

/*
 * Count the distinct keys among @keys (@n_keys, the role's keys) whose
 * signature in @list is valid for @domain || NUL || @data; succeed when
 * that count reaches @threshold (>= 1).  Signatures by other keys and
 * repeated key ids are ignored.  On failure returns FL_EVERIFY with
 * *reason (if non-NULL) set to FSIG_R_BAD_SIGNATURE (a role key's
 * signature did not verify), FSIG_R_UNKNOWN_KEY (no role key signed at
 * all but others did) or FSIG_R_THRESHOLD (too few).  *ret_valid, if
 * non-NULL, receives the count of valid signatures either way.
 */
int fsig_siglist_check(const struct fsig_siglist *list, const char *domain,
		       const void *data, size_t len,
		       struct fsig_key *const *keys, size_t n_keys,
		       unsigned threshold, const char *what, size_t *ret_valid,
		       enum fsig_reason *reason, struct fl_error *err);

#endif

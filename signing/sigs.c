/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "json.h"
#include "sigs.h"
#include "util.h"

bool fsig_valid_keyid(const char *s)
{
	size_t i;

	if (!s)
		return false;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return i == FSIG_KEYID_LEN;
}

static int sig_from_json(const json_t *o, struct fsig_sig *out,
			 struct fl_error *err)
{
	const char *keyid, *b64;
	unsigned char *raw;
	size_t len;
	int rc;

	if (!json_is_object(o))
		return fl_fail(err, FL_EPARSE, "signature must be an object");
	rc = fl_json_str(o, "keyid", FSIG_KEYID_LEN, &keyid, err);
	if (rc)
		return rc;
	if (!fsig_valid_keyid(keyid))
		return fl_fail(err, FL_EPARSE,
			       "key id must be 64 lowercase hex digits");
	rc = fl_json_str(o, "sig", (FSIG_SIG_MAX + 2) / 3 * 4, &b64, err);
	if (rc)
		return rc;
	rc = fsig_b64_decode(b64, strlen(b64), FSIG_SIG_MAX, &raw, &len, err);
	if (rc)
		return rc;
	memcpy(out->keyid, keyid, FSIG_KEYID_LEN + 1);
	memcpy(out->sig, raw, len);
	out->len = len;
	free(raw);
	return 0;
}

int fsig_siglist_from_json(const json_t *arr, struct fsig_siglist *out,
			   struct fl_error *err)
{
	size_t i;
	int rc;

	if (!json_is_array(arr))
		return fl_fail(err, FL_EPARSE,
			       "signatures must be a JSON array");
	if (json_array_size(arr) > FSIG_SIGS_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d signatures",
			       FSIG_SIGS_MAX);
	out->n = 0;
	for (i = 0; i < json_array_size(arr); i++) {
		rc = sig_from_json(json_array_get(arr, i), &out->sigs[i], err);
		if (rc) {
			fl_error_prefix(err, "signature %zu", i);
			return rc;
		}
	}
	out->n = i;
	return 0;
}

int fsig_siglist_parse(const void *buf, size_t len, struct fsig_siglist *out,
		       struct fl_error *err)
{
	json_t *j;
	int rc;

	rc = fl_json_parse(buf, len, FSIG_SIGFILE_MAX, &j, err);
	if (rc)
		return rc;
	rc = fsig_siglist_from_json(j, out, err);
	json_decref(j);
	return rc;
}

json_t *fsig_siglist_to_json(const struct fsig_siglist *list)
{
	json_t *arr = json_array();

	for (size_t i = 0; i < list->n; i++) {
		char *b64 =
		    fsig_b64_encode(list->sigs[i].sig, list->sigs[i].len);

		json_array_append_new(arr, json_pack("{s:s, s:s}", "keyid",
						     list->sigs[i].keyid, "sig",
						     b64));
		free(b64);
	}
	return arr;
}

int fsig_siglist_add(struct fsig_siglist *list, const struct fsig_key *key,
		     const char *domain, const void *data, size_t len,
		     struct fl_error *err)
{
	struct fsig_sig s;
	size_t i;
	int rc;

	rc = fsig_sign(key, domain, data, len, s.sig, &s.len, err);
	if (rc)
		return rc;
	memcpy(s.keyid, fsig_key_id(key), sizeof(s.keyid));
	for (i = 0; i < list->n; i++)
		if (strcmp(list->sigs[i].keyid, s.keyid) == 0)
			break;
	if (i == FSIG_SIGS_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d signatures",
			       FSIG_SIGS_MAX);
	list->sigs[i] = s;
	if (i == list->n)
		list->n++;
	return 0;
}

static const struct fsig_key *find_key(struct fsig_key *const *keys, size_t n,
				       const char *keyid)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(fsig_key_id(keys[i]), keyid) == 0)
			return keys[i];
	return NULL;
}

/* True if sigs[0..i) already holds a signature by sigs[i]'s key. */
static bool seen_before(const struct fsig_siglist *list, size_t i)
{
	for (size_t j = 0; j < i; j++)
		if (strcmp(list->sigs[j].keyid, list->sigs[i].keyid) == 0)
			return true;
	return false;
}

int fsig_siglist_check(const struct fsig_siglist *list, const char *domain,
		       const void *data, size_t len,
		       struct fsig_key *const *keys, size_t n_keys,
		       unsigned threshold, const char *what, size_t *ret_valid,
		       enum fsig_reason *reason, struct fl_error *err)
{
	const char *bad = NULL, *unknown = NULL;
	size_t valid = 0;

	for (size_t i = 0; i < list->n; i++) {
		const struct fsig_sig *s = &list->sigs[i];
		const struct fsig_key *k;

		if (seen_before(list, i))
			continue;
		k = find_key(keys, n_keys, s->keyid);
		if (!k)
			unknown = unknown ? unknown : s->keyid;
		else if (fsig_verify(k, domain, data, len, s->sig, s->len,
				     NULL) == 0)
			valid++;
		else
			bad = bad ? bad : s->keyid;
	}
	if (ret_valid)
		*ret_valid = valid;
	if (threshold && valid >= threshold)
		return 0;
	if (bad)
		return fsig_reject(err, reason, FSIG_R_BAD_SIGNATURE,
				   "%s: signature by key %.16s does not match "
				   "(%zu of %u valid)",
				   what, bad, valid, threshold);
	if (unknown && valid == 0)
		return fsig_reject(err, reason, FSIG_R_UNKNOWN_KEY,
				   "%s: signed by key %.16s which the trust "
				   "root does not list for this role",
				   what, unknown);
	return fsig_reject(err, reason, FSIG_R_THRESHOLD,
			   "%s: %zu valid signature(s), %u required", what,
			   valid, threshold);
}

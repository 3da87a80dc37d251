/* SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "fsutil.h"
#include "json.h"
#include "root.h"
#include "util.h"

#define ROOT_TYPE "fleet-root"
#define ROOT_FORMAT 1
#define ROOT_VERSION_MAX ((1LL << 53) - 1)

struct role_info {
	struct fsig_key *keys[FSIG_ROOT_KEYS_MAX]; /* borrowed from keys[] */
	size_t n;
	unsigned threshold;
};

struct fsig_root {
	char *body; /* the exact signed bytes */
	size_t body_len;
	uint64_t version;
	time_t expires;
	size_t n_keys;
	struct fsig_key *keys[FSIG_ROOT_KEYS_MAX];
	struct role_info roles[2];
	struct fsig_siglist sigs;
	char *text; /* the envelope, regenerated after each signature */
	size_t text_len;
};

static const char *const role_names[2] = {"root", "targets"};

/* ------------------------------------------------------------------ */
/* Body parsing                                                        */

static struct fsig_key *root_find_key(const struct fsig_root *r,
				      const char *keyid)
{
	for (size_t i = 0; i < r->n_keys; i++)
		if (strcmp(fsig_key_id(r->keys[i]), keyid) == 0)
			return r->keys[i];
	return NULL;
}

static int parse_key(struct fsig_root *r, const char *keyid, const json_t *v,
		     struct fl_error *err)
{
	const char *alg, *spki_b64;
	unsigned char *der = NULL;
	struct fsig_key *k = NULL;
	size_t len;
	int rc;

	if (!fsig_valid_keyid(keyid))
		return fl_fail(err, FL_EPARSE, "bad key id '%.70s'", keyid);
	rc = fl_json_require_object(v, "key", err);
	if (!rc)
		rc = fl_json_str(v, "alg", 16, &alg, err);
	if (!rc)
		rc = fl_json_str(v, "spki", (FSIG_SPKI_MAX + 2) / 3 * 4,
				 &spki_b64, err);
	if (!rc)
		rc = fsig_b64_decode(spki_b64, strlen(spki_b64), FSIG_SPKI_MAX,
				     &der, &len, err);
	if (!rc)
		rc = fsig_key_from_spki(der, len, &k, err);
	free(der);
	if (rc)
		goto fail;
	if (strcmp(fsig_key_id(k), keyid) != 0)
		rc = fl_fail(err, FL_EPARSE, "key id is not the key's SHA-256");
	else if (!fl_streq(fsig_alg_name(fsig_key_alg(k)), alg))
		rc = fl_fail(err, FL_EPARSE, "key algorithm is not '%s'", alg);
	if (rc)
		goto fail;
	r->keys[r->n_keys++] = k;
	return 0;
fail:
	fsig_key_free(k);
	fl_error_prefix(err, "key %.16s", keyid);
	return rc;
}

static int parse_keys(struct fsig_root *r, const json_t *body,
		      struct fl_error *err)
{
	json_t *keys = json_object_get(body, "keys"), *v;
	const char *keyid;
	int rc;

	if (!json_is_object(keys))
		return fl_fail(err, FL_EPARSE,
			       "field 'keys' must be an object");
	if (json_object_size(keys) > FSIG_ROOT_KEYS_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d keys",
			       FSIG_ROOT_KEYS_MAX);
	json_object_foreach(keys, keyid, v)
	{
		rc = parse_key(r, keyid, v, err);
		if (rc)
			return rc;
	}
	return 0;
}

static int parse_role(struct fsig_root *r, const json_t *roles, int which,
		      struct fl_error *err)
{
	struct role_info *ri = &r->roles[which];
	json_t *o = json_object_get(roles, role_names[which]), *ids;
	int64_t t = 0;
	int rc;

	if (!json_is_object(o))
		return fl_fail(err, FL_EPARSE, "role '%s' missing",
			       role_names[which]);
	rc = fl_json_array(o, "keyids", FSIG_ROOT_KEYS_MAX, &ids, err);
	if (rc)
		return rc;
	for (size_t i = 0; i < json_array_size(ids); i++) {
		const char *id = json_string_value(json_array_get(ids, i));
		struct fsig_key *k = id ? root_find_key(r, id) : NULL;

		if (!k)
			return fl_fail(err, FL_EPARSE,
				       "role '%s' names an unlisted key",
				       role_names[which]);
		for (size_t j = 0; j < ri->n; j++)
			if (ri->keys[j] == k)
				return fl_fail(err, FL_EPARSE,
					       "role '%s' lists a key twice",
					       role_names[which]);
		ri->keys[ri->n++] = k;
	}
	rc = fl_json_int(o, "threshold", 1, (int64_t)ri->n, &t, err);
	if (rc) {
		fl_error_prefix(err, "role '%s' (%zu keys)", role_names[which],
				ri->n);
		return rc;
	}
	ri->threshold = (unsigned)t;
	return 0;
}

static int parse_body(struct fsig_root *r, struct fl_error *err)
{
	const char *type, *expires;
	json_t *body, *roles;
	int64_t v = 0;
	int rc;

	rc = fl_json_parse(r->body, r->body_len, FSIG_ROOT_MAX, &body, err);
	if (rc)
		return rc;
	rc = fl_json_require_object(body, "root body", err);
	if (!rc)
		rc = fl_json_str(body, "type", 32, &type, err);
	if (!rc && strcmp(type, ROOT_TYPE) != 0)
		rc =
		    fl_fail(err, FL_EPARSE, "not a fleet root ('%.32s')", type);
	if (!rc)
		rc = fl_json_int(body, "format", ROOT_FORMAT, ROOT_FORMAT, &v,
				 err);
	if (!rc)
		rc = fl_json_int(body, "version", 1, ROOT_VERSION_MAX, &v, err);
	r->version = (uint64_t)v;
	if (!rc)
		rc = fl_json_str(body, "expires", 32, &expires, err);
	if (!rc)
		rc = fl_parse_rfc3339(expires, &r->expires, err);
	if (!rc)
		rc = parse_keys(r, body, err);
	roles = json_object_get(body, "roles");
	if (!rc)
		rc = parse_role(r, roles, FSIG_ROLE_ROOT, err);
	if (!rc)
		rc = parse_role(r, roles, FSIG_ROLE_TARGETS, err);
	json_decref(body);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Envelope                                                            */

static void make_text(struct fsig_root *r)
{
	char *b64 = fsig_b64_encode(r->body, r->body_len);
	json_t *env = json_pack("{s:s, s:s, s:o}", "payload_type",
				FSIG_ROOT_PAYLOAD_TYPE, "payload", b64,
				"signatures", fsig_siglist_to_json(&r->sigs));
	char *s = json_dumps(env, JSON_INDENT(2));

	if (!s)
		abort(); /* jansson fails only on allocation */
	free(r->text);
	r->text = fl_xasprintf("%s\n", s);
	r->text_len = strlen(r->text);
	free(s);
	free(b64);
	json_decref(env);
}

/* A root from body bytes (copied) and signatures. */
static int root_from_body(const char *body, size_t len,
			  const struct fsig_siglist *sigs,
			  struct fsig_root **ret, struct fl_error *err)
{
	struct fsig_root *r = fl_xcalloc(1, sizeof(*r));
	int rc;

	/* bytes, not a string: a hostile payload may hold NULs */
	r->body = fl_xmalloc(len + 1);
	memcpy(r->body, body, len);
	r->body[len] = '\0';
	r->body_len = len;
	if (sigs)
		r->sigs = *sigs;
	rc = parse_body(r, err);
	if (rc) {
		fl_error_prefix(err, "root");
		fsig_root_free(r);
		return rc;
	}
	make_text(r);
	*ret = r;
	return 0;
}

static int parse_envelope(const json_t *env, unsigned char **ret_body,
			  size_t *ret_len, struct fsig_siglist *sigs,
			  struct fl_error *err)
{
	const char *type, *payload;
	int rc;

	rc = fl_json_require_object(env, "root envelope", err);
	if (!rc)
		rc = fl_json_str(env, "payload_type", 64, &type, err);
	if (!rc && strcmp(type, FSIG_ROOT_PAYLOAD_TYPE) != 0)
		rc = fl_fail(err, FL_EPARSE, "unexpected payload_type '%s'",
			     type);
	if (!rc)
		rc = fl_json_str(env, "payload", FSIG_ROOT_MAX, &payload, err);
	if (!rc)
		rc = fsig_siglist_from_json(json_object_get(env, "signatures"),
					    sigs, err);
	if (!rc)
		rc = fsig_b64_decode(payload, strlen(payload), FSIG_ROOT_MAX,
				     ret_body, ret_len, err);
	return rc;
}

int fsig_root_parse(const void *buf, size_t len, struct fsig_root **ret,
		    struct fl_error *err)
{
	struct fsig_siglist sigs;
	unsigned char *body;
	size_t blen;
	json_t *env;
	int rc;

	rc = fl_json_parse(buf, len, FSIG_ROOT_MAX, &env, err);
	if (rc)
		return rc;
	rc = parse_envelope(env, &body, &blen, &sigs, err);
	json_decref(env);
	if (rc) {
		fl_error_prefix(err, "root");
		return rc;
	}
	rc = root_from_body((const char *)body, blen, &sigs, ret, err);
	free(body);
	return rc;
}

int fsig_root_load(const char *path, struct fsig_root **ret,
		   struct fl_error *err)
{
	char *buf;
	size_t len;
	int rc;

	rc = fl_read_file(path, FSIG_ROOT_MAX, &buf, &len, err);
	if (rc)
		return rc;
	rc = fsig_root_parse(buf, len, ret, err);
	if (rc)
		fl_error_prefix(err, "'%s'", path);
	free(buf);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Creating and signing                                                */

static int check_role_spec(const struct fsig_role_spec *s, const char *name,
			   struct fl_error *err)
{
	if (s->n_keys == 0 || s->n_keys > FSIG_ROOT_KEYS_MAX)
		return fl_fail(err, FL_EINVAL, "role '%s' needs 1 to %d keys",
			       name, FSIG_ROOT_KEYS_MAX);
	if (s->threshold < 1 || s->threshold > s->n_keys)
		return fl_fail(err, FL_EINVAL,
			       "role '%s' threshold %u is not within 1..%zu",
			       name, s->threshold, s->n_keys);
	for (size_t i = 0; i < s->n_keys; i++)
		for (size_t j = 0; j < i; j++)
			if (fl_streq(fsig_key_id(s->keys[i]),
				     fsig_key_id(s->keys[j])))
				return fl_fail(
				    err, FL_EINVAL,
				    "role '%s' lists key %.16s twice", name,
				    fsig_key_id(s->keys[i]));
	return 0;
}

static json_t *key_json(const struct fsig_key *k)
{
	size_t len;
	const unsigned char *der = fsig_key_spki(k, &len);
	char *b64 = fsig_b64_encode(der, len);
	json_t *o = json_pack("{s:s, s:s}", "alg",
			      fsig_alg_name(fsig_key_alg(k)), "spki", b64);

	free(b64);
	return o;
}

static json_t *role_json(const struct fsig_role_spec *s, json_t *keys)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < s->n_keys; i++) {
		const char *id = fsig_key_id(s->keys[i]);

		json_array_append_new(ids, json_string(id));
		if (!json_object_get(keys, id))
			json_object_set_new(keys, id, key_json(s->keys[i]));
	}
	return json_pack("{s:o, s:I}", "keyids", ids, "threshold",
			 (json_int_t)s->threshold);
}

static int build_root(uint64_t version, const struct fsig_role_spec *rs,
		      const struct fsig_role_spec *ts, time_t expires,
		      struct fsig_root **ret, struct fl_error *err)
{
	json_t *keys, *body, *roles;
	char when[21], *text;
	int rc;

	rc = check_role_spec(rs, "root", err);
	if (!rc)
		rc = check_role_spec(ts, "targets", err);
	if (rc)
		return rc;
	if (expires <= time(NULL))
		return fl_fail(err, FL_EINVAL, "root expiry is in the past");
	keys = json_object();
	roles = json_pack("{s:o, s:o}", "root", role_json(rs, keys), "targets",
			  role_json(ts, keys));
	if (json_object_size(keys) > FSIG_ROOT_KEYS_MAX) {
		json_decref(keys);
		json_decref(roles);
		return fl_fail(err, FL_ELIMIT, "more than %d distinct keys",
			       FSIG_ROOT_KEYS_MAX);
	}
	fl_time_rfc3339(expires, when);
	body = json_pack("{s:s, s:i, s:I, s:s, s:o, s:o}", "type", ROOT_TYPE,
			 "format", ROOT_FORMAT, "version", (json_int_t)version,
			 "expires", when, "keys", keys, "roles", roles);
	text = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!text)
		abort();
	rc = root_from_body(text, strlen(text), NULL, ret, err);
	free(text);
	return rc;
}

int fsig_root_init(const struct fsig_role_spec *root_role,
		   const struct fsig_role_spec *targets_role, time_t expires,
		   struct fsig_root **ret, struct fl_error *err)
{
	return build_root(1, root_role, targets_role, expires, ret, err);
}

int fsig_root_rotate(const struct fsig_root *prev,
		     const struct fsig_role_spec *root_role,
		     const struct fsig_role_spec *targets_role, time_t expires,
		     struct fsig_root **ret, struct fl_error *err)
{
	if (prev->version >= (uint64_t)ROOT_VERSION_MAX)
		return fl_fail(err, FL_ELIMIT, "root version at its maximum");
	return build_root(prev->version + 1, root_role, targets_role, expires,
			  ret, err);
}

int fsig_root_sign(struct fsig_root *root, const struct fsig_key *key,
		   struct fl_error *err)
{
	int rc = fsig_siglist_add(&root->sigs, key, FSIG_DOMAIN_ROOT,
				  root->body, root->body_len, err);

	if (!rc)
		make_text(root);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Verification                                                        */

/* @r's signatures against the root role of @by (which may be @r). */
static int check_by(const struct fsig_root *r, const struct fsig_root *by,
		    const char *what, enum fsig_reason *reason,
		    struct fl_error *err)
{
	const struct role_info *ri = &by->roles[FSIG_ROLE_ROOT];

	return fsig_siglist_check(&r->sigs, FSIG_DOMAIN_ROOT, r->body,
				  r->body_len, ri->keys, ri->n, ri->threshold,
				  what, NULL, reason, err);
}

int fsig_root_check_self(const struct fsig_root *root, enum fsig_reason *reason,
			 struct fl_error *err)
{
	char what[64];

	snprintf(what, sizeof(what), "root v%llu",
		 (unsigned long long)root->version);
	return check_by(root, root, what, reason, err);
}

int fsig_root_load_trusted(const char *path, struct fsig_root **ret,
			   enum fsig_reason *reason, struct fl_error *err)
{
	struct fsig_root *r;
	int rc;

	rc = fsig_root_load(path, &r, err);
	if (rc)
		return rc;
	rc = fsig_root_check_self(r, reason, err);
	if (rc) {
		fl_error_prefix(err, "'%s'", path);
		fsig_root_free(r);
		return rc;
	}
	*ret = r;
	return 0;
}

bool fsig_root_expired(const struct fsig_root *root, time_t now)
{
	return root->expires <= (now ? now : time(NULL));
}

/* The candidate with version @v, or NULL; FL_EVERIFY if two differ. */
static int find_version(struct fsig_root *const *c, size_t n, uint64_t v,
			const struct fsig_root **ret, enum fsig_reason *reason,
			struct fl_error *err)
{
	const struct fsig_root *found = NULL;

	for (size_t i = 0; i < n; i++) {
		if (c[i]->version != v)
			continue;
		if (found &&
		    (found->body_len != c[i]->body_len ||
		     memcmp(found->body, c[i]->body, found->body_len) != 0))
			return fsig_reject(err, reason, FSIG_R_ROOT_VERSION,
					   "two different roots claim version "
					   "%llu",
					   (unsigned long long)v);
		found = c[i];
	}
	*ret = found;
	return 0;
}

/* Accept @next on top of @cur, or fail with the reason. */
static int check_step(const struct fsig_root *cur, const struct fsig_root *next,
		      enum fsig_reason *reason, struct fl_error *err)
{
	char what[96];
	int rc;

	snprintf(what, sizeof(what), "root v%llu by v%llu's root keys",
		 (unsigned long long)next->version,
		 (unsigned long long)cur->version);
	rc = check_by(next, cur, what, reason, err);
	if (rc)
		return rc;
	snprintf(what, sizeof(what), "root v%llu by its own root keys",
		 (unsigned long long)next->version);
	return check_by(next, next, what, reason, err);
}

int fsig_root_update(const struct fsig_root *trusted,
		     struct fsig_root *const *candidates, size_t n, time_t now,
		     struct fsig_root **ret_newest, enum fsig_reason *reason,
		     struct fl_error *err)
{
	const struct fsig_root *cur = trusted, *next = NULL;
	char when[21];
	int rc;

	if (n > FSIG_ROOT_CHAIN_MAX)
		return fl_fail(err, FL_ELIMIT, "more than %d roots to walk",
			       FSIG_ROOT_CHAIN_MAX);
	for (;;) {
		rc = find_version(candidates, n, cur->version + 1, &next,
				  reason, err);
		if (rc)
			return rc;
		if (!next)
			break;
		rc = check_step(cur, next, reason, err);
		if (rc)
			return rc;
		cur = next;
	}
	for (size_t i = 0; i < n; i++)
		if (candidates[i]->version > cur->version)
			return fsig_reject(
			    err, reason, FSIG_R_ROOT_VERSION,
			    "root v%llu does not follow v%llu (chain gap)",
			    (unsigned long long)candidates[i]->version,
			    (unsigned long long)cur->version);
	if (fsig_root_expired(cur, now)) {
		fl_time_rfc3339(cur->expires, when);
		return fsig_reject(err, reason, FSIG_R_ROOT_EXPIRED,
				   "root v%llu expired at %s",
				   (unsigned long long)cur->version, when);
	}
	return fsig_root_parse(cur->text, cur->text_len, ret_newest, err);
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

uint64_t fsig_root_version(const struct fsig_root *root)
{
	return root->version;
}

time_t fsig_root_expires(const struct fsig_root *root)
{
	return root->expires;
}

void fsig_root_role(const struct fsig_root *root, enum fsig_role role,
		    struct fsig_key *const **ret_keys, size_t *ret_n,
		    unsigned *ret_threshold)
{
	const struct role_info *ri = &root->roles[role == FSIG_ROLE_TARGETS];

	*ret_keys = ri->keys;
	*ret_n = ri->n;
	*ret_threshold = ri->threshold;
}

const struct fsig_siglist *fsig_root_signatures(const struct fsig_root *r)
{
	return &r->sigs;
}

const char *fsig_root_text(const struct fsig_root *root, size_t *ret_len)
{
	if (ret_len)
		*ret_len = root->text_len;
	return root->text;
}

int fsig_root_save(const struct fsig_root *root, const char *path,
		   struct fl_error *err)
{
	return fl_write_atomic(path, root->text, root->text_len, 0644, err);
}

static json_t *role_show(const struct role_info *ri)
{
	json_t *ids = json_array();

	for (size_t i = 0; i < ri->n; i++)
		json_array_append_new(ids,
				      json_string(fsig_key_id(ri->keys[i])));
	return json_pack("{s:o, s:I}", "keyids", ids, "threshold",
			 (json_int_t)ri->threshold);
}

json_t *fsig_root_to_json(const struct fsig_root *root)
{
	json_t *keys = json_array(), *sigs = json_array();
	char when[21];

	for (size_t i = 0; i < root->n_keys; i++) {
		char *pem = fsig_key_public_pem(root->keys[i]);

		json_array_append_new(
		    keys, json_pack("{s:s, s:s, s:s}", "keyid",
				    fsig_key_id(root->keys[i]), "alg",
				    fsig_alg_name(fsig_key_alg(root->keys[i])),
				    "public", pem));
		free(pem);
	}
	for (size_t i = 0; i < root->sigs.n; i++) {
		const struct fsig_sig *s = &root->sigs.sigs[i];
		const struct fsig_key *k = root_find_key(root, s->keyid);
		bool valid =
		    k && fsig_verify(k, FSIG_DOMAIN_ROOT, root->body,
				     root->body_len, s->sig, s->len, NULL) == 0;

		json_array_append_new(
		    sigs, json_pack("{s:s, s:b, s:b}", "keyid", s->keyid,
				    "listed", k != NULL, "valid", valid));
	}
	fl_time_rfc3339(root->expires, when);
	return json_pack("{s:I, s:s, s:o, s:{s:o, s:o}, s:o}", "version",
			 (json_int_t)root->version, "expires", when, "keys",
			 keys, "roles", "root", role_show(&root->roles[0]),
			 "targets", role_show(&root->roles[1]), "signatures",
			 sigs);
}

void fsig_root_free(struct fsig_root *root)
{
	if (!root)
		return;
	for (size_t i = 0; i < root->n_keys; i++)
		fsig_key_free(root->keys[i]);
	free(root->body);
	free(root->text);
	free(root);
}

/* SPDX-License-Identifier: MIT */
/* Retry-safe requests with Idempotency-Key (idem.h). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "idem.h"
#include "log.h"
#include "srv.h"
#include "store.h"
#include "util.h"

#define KEY_MIN 16
#define KEY_MAX 128
#define IV_LEN 12
#define TAG_LEN 16

struct srv_idem {
	char id_hash[65];
	unsigned char seal[32]; /* AES-256 key, from the Idempotency-Key */
	char *answer;		/* the JSON reply made, owned */
};

static void idem_free(struct srv_idem *i)
{
	if (!i)
		return;
	OPENSSL_cleanse(i->seal, sizeof(i->seal));
	fl_free_secret(i->answer); /* may hold a new token */
	free(i);
}

/* The header's key, without the quotes of its structured-field form;
 * NULL: not a key we take. */
static char *parse_key(const char *v)
{
	size_t n = strlen(v);

	if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
		v++;
		n -= 2;
	}
	if (n < KEY_MIN || n > KEY_MAX ||
	    strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "abcdefghijklmnopqrstuvwxyz"
		      "0123456789-_.:") < n)
		return NULL;
	return fl_xstrndup(v, n);
}

/* The row's name (sender and key), the sealing key, the request's
 * hash (method, path, body). */
static struct srv_idem *idem_new(const struct srv_req *r, const char *key,
				 char request_hash[65])
{
	struct srv_idem *i = fl_xcalloc(1, sizeof(*i));
	char *text = fl_xasprintf("fleet-idem-id\n%d:%s\n%s", (int)r->who.kind,
				  r->who.id, key);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char d[32];
	unsigned int len = 0;

	fl_sha256_hex(text, strlen(text), i->id_hash);
	fl_free_secret(text);
	text = fl_xasprintf("fleet-idem-seal\n%s", key);
	EVP_Digest(text, strlen(text), i->seal, &len, EVP_sha256(), NULL);
	fl_free_secret(text);
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, r->method, strlen(r->method) + 1) ||
	    !EVP_DigestUpdate(md, r->path, strlen(r->path) + 1) ||
	    !EVP_DigestUpdate(md, r->body ? r->body : "", r->body_len)) {
		EVP_MD_CTX_free(md);
		idem_free(i);
		return NULL;
	}
	EVP_DigestFinal_ex(md, d, &len);
	EVP_MD_CTX_free(md);
	fl_hex(d, sizeof(d), request_hash);
	return i;
}

/* hex(iv || tag || AES-256-GCM(@text)), the row's name as AAD; NULL on
 * failure. */
static char *seal(const struct srv_idem *i, const char *text)
{
	size_t n = strlen(text);
	unsigned char *buf = fl_xmalloc(IV_LEN + TAG_LEN + n + 1);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	char *out = NULL;
	int len;

	if (c && !fl_random(buf, IV_LEN, NULL) &&
	    EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, i->seal, buf) &&
	    EVP_EncryptUpdate(c, NULL, &len, (const unsigned char *)i->id_hash,
			      64) &&
	    EVP_EncryptUpdate(c, buf + IV_LEN + TAG_LEN, &len,
			      (const unsigned char *)text, (int)n) &&
	    EVP_EncryptFinal_ex(c, buf + IV_LEN + TAG_LEN + len, &len) &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, TAG_LEN,
				buf + IV_LEN)) {
		out = fl_xmalloc(2 * (IV_LEN + TAG_LEN + n) + 1);
		fl_hex(buf, IV_LEN + TAG_LEN + n, out);
	}
	EVP_CIPHER_CTX_free(c);
	free(buf);
	return out;
}

/* The text sealed in @hex; NULL when it does not open (another key, a
 * changed row). */
static char *unseal(const struct srv_idem *i, const char *hex)
{
	long n = 0;
	unsigned char *buf = OPENSSL_hexstr2buf(hex, &n);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	char *out = NULL, *text;
	int len, ct = (int)n - IV_LEN - TAG_LEN;

	if (!buf || !c || ct < 0)
		goto done;
	text = fl_xmalloc((size_t)ct + 1);
	if (EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, i->seal, buf) &&
	    EVP_DecryptUpdate(c, NULL, &len, (const unsigned char *)i->id_hash,
			      64) &&
	    EVP_DecryptUpdate(c, (unsigned char *)text, &len,
			      buf + IV_LEN + TAG_LEN, ct) &&
	    EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, TAG_LEN,
				buf + IV_LEN) &&
	    EVP_DecryptFinal_ex(c, (unsigned char *)text + len, &len)) {
		text[ct] = '\0';
		out = text;
	} else {
		fl_free_secret(text);
	}
done:
	EVP_CIPHER_CTX_free(c);
	OPENSSL_free(buf);
	return out;
}

/* Answer @r from the row a claim found. */
static void replay(struct srv_req *r, const struct srv_idem *i,
		   const struct srv_idem_row *row, const char *request_hash)
{
	char *text;

	if (strcmp(row->request_hash, request_hash) != 0) {
		srv_reply_error(r, 422, "key_reused",
				"this Idempotency-Key was used for a"
				" different request");
		return;
	}
	if (!row->answered) {
		r->retry_after = 1;
		srv_reply_error(r, 409, "in_progress",
				"a request with this Idempotency-Key is being"
				" carried out");
		return;
	}
	text = row->answer ? unseal(i, row->answer) : NULL;
	if (!text) {
		srv_reply_error(r, 409, "answer_withheld",
				"a request with this Idempotency-Key was"
				" carried out (HTTP %d); its answer was not"
				" kept",
				row->status);
		return;
	}
	r->replayed = true;
	srv_reply_text(r, row->status, "application/json", text);
}

static bool applies(const struct srv_req *r)
{
	return srv_req_changes_state(r) && r->who.kind != SRV_ANON &&
	       !r->route->on_body;
}

bool srv_idem_begin(struct srv_req *r)
{
	const char *v = srv_req_header(r, "Idempotency-Key");
	struct srv_idem_row row = {0};
	struct fl_error err = {0};
	char request_hash[65], *key;
	struct srv_idem *i;
	bool done;

	if (!v || !applies(r))
		return false;
	if (!(key = parse_key(v))) {
		srv_reply_error(r, 400, "bad_request",
				"Idempotency-Key: %d to %d characters of A-Z"
				" a-z 0-9 - _ . :",
				KEY_MIN, KEY_MAX);
		return true;
	}
	i = idem_new(r, key, request_hash);
	fl_free_secret(key);
	if (!i) {
		srv_reply_error(r, 500, "internal", "SHA-256 failed");
		return true;
	}
	if (srv_store_idem_claim(r->srv->store, i->id_hash, request_hash,
				 time(NULL), SRV_IDEM_TTL, &row, &err)) {
		idem_free(i);
		srv_reply_error(r, 503, "unavailable", "%s", err.msg);
		return true;
	}
	done = row.found;
	if (done)
		replay(r, i, &row, request_hash);
	srv_idem_row_free(&row);
	if (done)
		idem_free(i);
	else
		r->idem = i;
	return done;
}

void srv_idem_keep(struct srv_req *r, const char *text)
{
	if (r->idem && !r->idem->answer)
		r->idem->answer = fl_xstrdup(text);
}

void srv_idem_end(struct srv_req *r)
{
	struct srv_idem *i = r->idem;
	struct fl_error err = {0};
	char *sealed = NULL;
	int rc;

	if (!i)
		return;
	r->idem = NULL;
	if (!r->status || r->status == 503)
		rc = srv_store_idem_drop(r->srv->store, i->id_hash, &err);
	else {
		if (i->answer && strlen(i->answer) <= SRV_IDEM_ANSWER_MAX)
			sealed = seal(i, i->answer);
		rc = srv_store_idem_answer(r->srv->store, i->id_hash, r->status,
					   sealed, &err);
	}
	if (rc)
		fl_warn(
		    "%s %s: the answer to its Idempotency-Key is not kept: %s",
		    r->method, r->path, err.msg);
	free(sealed);
	idem_free(i);
}

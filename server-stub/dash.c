/* SPDX-License-Identifier: MIT */
/* The dashboard's session table (dash.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dash.h"
#include "store.h"
#include "util.h"

struct dash_session {
	char id_hash[65];    /* SHA-256 of the session id; "" = free */
	char token_hash[65]; /* SHA-256 of the token that logged in */
	int64_t created;
};

struct srv_dash {
	pthread_mutex_t lock;
	int64_t ttl;
	size_t max;
	struct srv_store *store; /* a replica's: the sessions live there */
	struct dash_session v[];
};

struct srv_dash *srv_dash_new(size_t max, int64_t ttl)
{
	struct srv_dash *d = fl_xcalloc(1, sizeof(*d) + max * sizeof(d->v[0]));

	pthread_mutex_init(&d->lock, NULL);
	d->ttl = ttl;
	d->max = max;
	return d;
}

void srv_dash_use_store(struct srv_dash *d, struct srv_store *store)
{
	d->store = store;
}

void srv_dash_free(struct srv_dash *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	OPENSSL_cleanse(d->v, d->max * sizeof(d->v[0]));
	free(d);
}

static bool live(const struct srv_dash *d, const struct dash_session *s,
		 int64_t now)
{
	return s->id_hash[0] && now >= s->created && now < s->created + d->ttl;
}

/* A free or expired slot, else the oldest session's. */
static struct dash_session *slot_for_new(struct srv_dash *d, int64_t now)
{
	struct dash_session *oldest = &d->v[0];

	for (size_t i = 0; i < d->max; i++) {
		if (!live(d, &d->v[i], now))
			return &d->v[i];
		if (d->v[i].created < oldest->created)
			oldest = &d->v[i];
	}
	return oldest;
}

int srv_dash_login(struct srv_dash *d, const char *token_hash, int64_t now,
		   char ret_id[SRV_DASH_ID_LEN + 1], struct fl_error *err)
{
	unsigned char raw[SRV_DASH_ID_LEN / 2];
	struct dash_session *s;

	if (fl_random(raw, sizeof(raw), err))
		return FL_EIO;
	fl_hex(raw, sizeof(raw), ret_id);
	OPENSSL_cleanse(raw, sizeof(raw));
	if (d->store) {
		char hash[65];

		fl_sha256_hex(ret_id, SRV_DASH_ID_LEN, hash);
		return srv_store_dash_put(d->store, hash, token_hash, now,
					  d->ttl, (int64_t)d->max, err);
	}
	pthread_mutex_lock(&d->lock);
	s = slot_for_new(d, now);
	fl_sha256_hex(ret_id, SRV_DASH_ID_LEN, s->id_hash);
	fl_strlcpy(s->token_hash, token_hash, sizeof(s->token_hash));
	s->created = now;
	pthread_mutex_unlock(&d->lock);
	return 0;
}

/* The session of @id, or NULL; under the lock. */
static struct dash_session *find(struct srv_dash *d, const char *id)
{
	char hash[65];

	if (strlen(id) != SRV_DASH_ID_LEN)
		return NULL;
	fl_sha256_hex(id, SRV_DASH_ID_LEN, hash);
	for (size_t i = 0; i < d->max; i++)
		if (d->v[i].id_hash[0] && strcmp(d->v[i].id_hash, hash) == 0)
			return &d->v[i];
	return NULL;
}

bool srv_dash_lookup(struct srv_dash *d, const char *id, int64_t now,
		     char ret_hash[65])
{
	struct dash_session *s;
	char hash[65];
	bool ok;

	if (d->store) {
		if (strlen(id) != SRV_DASH_ID_LEN)
			return false;
		fl_sha256_hex(id, SRV_DASH_ID_LEN, hash);
		return !srv_store_dash_get(d->store, hash, now, d->ttl,
					   ret_hash, NULL);
	}
	pthread_mutex_lock(&d->lock);
	s = find(d, id);
	ok = s && live(d, s, now);
	if (ok)
		memcpy(ret_hash, s->token_hash, 65);
	pthread_mutex_unlock(&d->lock);
	return ok;
}

void srv_dash_logout(struct srv_dash *d, const char *id)
{
	struct dash_session *s;
	char hash[65];

	if (d->store) {
		if (strlen(id) != SRV_DASH_ID_LEN)
			return;
		fl_sha256_hex(id, SRV_DASH_ID_LEN, hash);
		srv_store_dash_del(d->store, hash, NULL);
		return;
	}
	pthread_mutex_lock(&d->lock);
	s = find(d, id);
	if (s)
		OPENSSL_cleanse(s, sizeof(*s));
	pthread_mutex_unlock(&d->lock);
}

size_t srv_dash_count(struct srv_dash *d, int64_t now)
{
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->max; i++)
		n += live(d, &d->v[i], now);
	pthread_mutex_unlock(&d->lock);
	return n;
}

bool srv_dash_cookie_id(const char *header, char ret_id[SRV_DASH_ID_LEN + 1])
{
	const size_t klen = strlen(SRV_DASH_COOKIE);
	const char *p = header;

	while (p && *p) {
		p += strspn(p, " \t;");
		if (strncmp(p, SRV_DASH_COOKIE, klen) == 0 && p[klen] == '=') {
			const char *v = p + klen + 1;
			size_t n = strcspn(v, "; \t");

			if (n != SRV_DASH_ID_LEN ||
			    strspn(v, "0123456789abcdef") < n)
				return false;
			memcpy(ret_id, v, n);
			ret_id[n] = '\0';
			return true;
		}
		p = strchr(p, ';');
	}
	return false;
}

char *srv_dash_set_cookie(const struct srv_dash *d, const char *id)
{
	return fl_xasprintf("%s=%s; Max-Age=%lld; Path=/; Secure; HttpOnly; "
			    "SameSite=Strict",
			    SRV_DASH_COOKIE, id ? id : "",
			    id ? (long long)d->ttl : 0LL);
}

/* SPDX-License-Identifier: MIT */
/*
 * An HTTPS download read as a stream, from any offset (see download.h).
 *
 * A network thread runs the transfer (libcurl easy interface): each
 * attempt asks for "Range: bytes=HAVE-" (HAVE: the first byte not
 * received yet), the write callback copies what arrives into a ring
 * buffer and publishes the new end (@have).  The reader (the caller's
 * thread, which also keeps MQTT alive through the tick) copies out up
 * to @have.  When the network is a window ahead of the reader, the
 * write callback waits until the reader catches up: a bounded buffer,
 * so memory stays constant whatever the size.  Decrypting on one core
 * while the other hashes and writes the slot is what keeps an install
 * close to the time of the transfer alone.
 *
 * Shared fields are under @lock; the network thread is the only writer
 * of the ring's free part and of @have, the reader the only writer of
 * @pos; the bytes [pos, have) belong to the reader.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "agent_mqtt.h"
#include "download.h"
#include "download_internal.h"
#include "http_range.h"
#include "http.h"
#include "log.h"
#include "tlsid.h"
#include "util.h"

#define TICK_MS 100
#define WINDOW_MIN (64u * 1024)
#define RING AGENT_DL_WINDOW_MAX
#define WAKE (64u * 1024) /* bytes a waiting reader is woken for */
#define ERRBODY_MAX 1024

enum dl_state {
	DL_IDLE,    /* no network thread yet */
	DL_RUNNING, /* the thread is fetching */
	DL_DONE,    /* every byte was received */
	DL_FAILED,  /* the thread gave up: @fail */
};

struct agent_dl {
	struct agent_dl_opts o;
	unsigned char *ring; /* byte OFF at ring[OFF % RING] */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;

	/* shared, under @lock */
	enum dl_state state;
	uint64_t have, pos, fetched;
	size_t window;
	size_t want;	   /* the reader waits for this many bytes */
	bool writer_waits; /* the network thread waits for room */
	unsigned attempts;
	bool cancel;
	struct fl_error fail;

	/* the reader's */
	bool started; /* the network thread runs (or ran) */
	int64_t last_tick_ms;

	/* the network thread's */
	CURL *easy;
	struct agent_backoff backoff;
	unsigned failures;
	char errbuf[CURL_ERROR_SIZE];
	long status;		 /* of the attempt */
	bool checked;		 /* status and range looked at */
	uint64_t skip;		 /* bytes of a 200 answer to drop */
	uint64_t att_bytes;	 /* bytes the attempt delivered */
	int att_rc;		 /* our own reason to abort it */
	struct fl_error att_err; /* and its message */
	char content_range[96];
	char errbody[ERRBODY_MAX + 1];
	size_t errbody_len;
};

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms() * 2654435761u;
	return r;
}

/* ------------------------------------------------------------------ */
/* Network thread: callbacks                                          */
/* ------------------------------------------------------------------ */

static size_t on_header(char *p, size_t sz, size_t nm, void *user)
{
	struct agent_dl *d = user;
	size_t len = sz * nm, n;

	if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) {
		d->content_range[0] = '\0';
		return len;
	}
	if (len > 14 && strncasecmp(p, "Content-Range:", 14) == 0) {
		n = len - 14 < sizeof(d->content_range) - 1
			? len - 14
			: sizeof(d->content_range) - 1;
		memcpy(d->content_range, p + 14, n);
		d->content_range[n] = '\0';
		d->content_range[strcspn(d->content_range, "\r\n")] = '\0';
	}
	return len;
}

/* Abort the attempt for a reason of ours (not retried); returns -1. */
static int att_abort(struct agent_dl *d, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int att_abort(struct agent_dl *d, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->att_err.msg, sizeof(d->att_err.msg), fmt, ap);
	va_end(ap);
	d->att_err.code = code;
	d->att_rc = code;
	return -1;
}

int agent_dl_check_content_range(const char *value, uint64_t have,
				 uint64_t size, struct fl_error *err)
{
	uint64_t a, b, total;

	if (fl_content_range_parse(value, &a, &b, &total, NULL))
		return fl_fail(err, FL_EPARSE,
			       "download: bad Content-Range '%.80s'", value);
	if (total != size)
		return fl_fail(err, FL_EVERIFY,
			       "download: the server's file has %" PRIu64
			       " bytes, not %" PRIu64,
			       total, size);
	if (a != have)
		return fl_fail(err, FL_EPARSE,
			       "download: asked for byte %" PRIu64
			       ", got '%.80s'",
			       have, value);
	return 0;
}

/*
 * The first body bytes of an attempt: is this the answer we asked for?
 * 206 must start at HAVE and name our size; a 200 answer (the server
 * ignored Range) is read from the start and the first HAVE bytes are
 * dropped.  Error bodies are kept (capped) for the message.
 */
static int check_response(struct agent_dl *d, uint64_t have)
{
	struct fl_error e = {0};
	int rc;

	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->status);
	d->checked = true;
	if (d->status == 200) {
		d->skip = have;
		return 0;
	}
	if (d->status != 206)
		return 0; /* an error; its body is collected */
	rc =
	    agent_dl_check_content_range(d->content_range, have, d->o.size, &e);
	return rc ? att_abort(d, rc, "%s", e.msg) : 0;
}

static void keep_errbody(struct agent_dl *d, const char *p, size_t len)
{
	size_t room = ERRBODY_MAX - d->errbody_len;

	if (len > room)
		len = room;
	memcpy(d->errbody + d->errbody_len, p, len);
	d->errbody_len += len;
	d->errbody[d->errbody_len] = '\0';
}

/*
 * @len body bytes into the ring, each piece published to the reader as
 * soon as it is there; waits while the network is a window ahead.  -1
 * when the reader is gone (cancel).
 */
static int put(struct agent_dl *d, const char *p, size_t len)
{
	uint64_t at;
	bool cancel;
	size_t k;

	while (len) {
		pthread_mutex_lock(&d->lock);
		while (!d->cancel && d->have - d->pos >= d->window) {
			d->writer_waits = true;
			pthread_cond_wait(&d->cond, &d->lock);
		}
		d->writer_waits = false;
		cancel = d->cancel;
		at = d->have;
		k = d->window - (size_t)(at - d->pos);
		pthread_mutex_unlock(&d->lock);
		if (cancel)
			return att_abort(d, FL_ERR, "download cancelled");
		if (k > len)
			k = len;
		if (k > RING - at % RING)
			k = RING - at % RING;
		memcpy(d->ring + at % RING, p, k);
		pthread_mutex_lock(&d->lock);
		d->have += k;
		d->fetched += k;
		if (d->want && d->have - d->pos >= d->want)
			pthread_cond_broadcast(&d->cond); /* the reader waits */
		pthread_mutex_unlock(&d->lock);
		d->att_bytes += k;
		p += k;
		len -= k;
	}
	return 0;
}

/*
 * Body bytes: drop what a 200 answer repeats, refuse anything past the
 * expected size, hand the rest to the reader.
 */
static size_t on_write(char *p, size_t sz, size_t nm, void *user)
{
	struct agent_dl *d = user;
	size_t len = sz * nm, drop, n;
	uint64_t have = agent_dl_have(d);

	if (!d->checked && check_response(d, have))
		return 0;
	if (d->status != 200 && d->status != 206) {
		keep_errbody(d, p, len);
		return len;
	}
	drop = len < d->skip ? len : (size_t)d->skip;
	d->skip -= drop;
	n = len - drop;
	if (n > d->o.size - have) {
		att_abort(d, FL_ELIMIT,
			  "download: the server sends more than the %" PRIu64
			  " bytes expected",
			  d->o.size);
		return 0;
	}
	return n && put(d, p + drop, n) ? 0 : len;
}

/* Called by curl while it waits: abort when the reader is gone. */
static int on_progress(void *user, curl_off_t a, curl_off_t b, curl_off_t c,
		       curl_off_t e)
{
	struct agent_dl *d = user;
	bool cancel;

	pthread_mutex_lock(&d->lock);
	cancel = d->cancel;
	pthread_mutex_unlock(&d->lock);
	return cancel;
}

/* ------------------------------------------------------------------ */
/* Network thread: attempts                                           */
/* ------------------------------------------------------------------ */

/* libcurl's TLS context gets the device's identity decoded once
 * (tlsid.h), not read from its files at every download. */
static CURLcode use_identity(CURL *c, void *ssl_ctx, void *user)
{
	struct agent_dl *d = user;
	struct fl_error err = {0};

	if (!agent_tlsid_use(ssl_ctx, d->o.cert_file, d->o.key_file, &err))
		return CURLE_OK;
	fl_warn("%s", err.msg);
	return CURLE_SSL_CERTPROBLEM;
}

static void setup_easy(struct agent_dl *d)
{
	CURL *c = d->easy;

	fl_curl_secure(c, &(struct fl_curl_tls){
			      .url = d->o.url,
			      .ca_file = d->o.ca_file,
			      .connect_timeout_ms = d->o.connect_timeout_ms,
			  });
	if (d->o.cert_file) {
		curl_easy_setopt(c, CURLOPT_SSL_CTX_FUNCTION, use_identity);
		curl_easy_setopt(c, CURLOPT_SSL_CTX_DATA, d);
	}
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 d->o.stall_timeout_s ? d->o.stall_timeout_s : 30L);
	if (d->o.rate_limit)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
				 (curl_off_t)d->o.rate_limit);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, d);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "fleet-agent/" FLEET_VERSION);
}

/* The server's JSON error message, if it sent one. */
static const char *server_message(struct agent_dl *d, char *buf, size_t size)
{
	const char *m = strstr(d->errbody, "\"message\"");
	const char *q = m ? strchr(m + 9, '"') : NULL;
	size_t n;

	if (!q)
		return "";
	n = strcspn(q + 1, "\"");
	if (n >= size)
		n = size - 1;
	memcpy(buf, q + 1, n);
	buf[n] = '\0';
	return buf;
}

/* Map an HTTP error status; *@permanent says whether to retry. */
static int http_failure(struct agent_dl *d, bool *permanent,
			struct fl_error *err)
{
	char msg[200];
	const char *m = server_message(d, msg, sizeof(msg));
	int code;

	*permanent = true;
	switch (d->status) {
	case 404:
		code = FL_ENOTFOUND;
		break;
	case 401:
	case 403:
		code = FL_EDENIED;
		break;
	case 416:
		code = FL_EVERIFY;
		break;
	case 408:
	case 429:
		*permanent = false;
		code = FL_ETIMEOUT;
		break;
	default:
		*permanent = d->status < 500;
		code = FL_ERR;
	}
	return fl_fail(err, code, "download: HTTP %ld from the server%s%s",
		       d->status, *m ? ": " : "", m);
}

/* Map a curl failure; *@permanent says whether to retry. */
static int curl_failure(struct agent_dl *d, CURLcode cc, bool *permanent,
			struct fl_error *err)
{
	const char *why = d->errbuf[0] ? d->errbuf : curl_easy_strerror(cc);

	*permanent = false;
	switch (cc) {
	case CURLE_OPERATION_TIMEDOUT:
		return fl_fail(err, FL_ETIMEOUT, "download stalled: %s", why);
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
		*permanent = true;
		return fl_fail(err, FL_EDENIED, "download: TLS: %s", why);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		*permanent = true;
		return fl_fail(err, FL_EINVAL, "download: %s", why);
	default:
		return fl_fail(err, FL_EUNREACH, "download: %s", why);
	}
}

/* One attempt from the current length.  0 when it got every byte,
 * else the error; *@permanent says whether to try again. */
static int attempt(struct agent_dl *d, bool *permanent, struct fl_error *err)
{
	char range[48];
	uint64_t have;
	CURLcode cc;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	have = d->have;
	d->attempts++;
	pthread_mutex_unlock(&d->lock);
	d->status = 0;
	d->checked = false;
	d->skip = d->att_bytes = 0;
	d->att_rc = 0;
	fl_error_clear(&d->att_err);
	d->content_range[0] = d->errbuf[0] = '\0';
	d->errbody_len = 0;
	snprintf(range, sizeof(range), "%" PRIu64 "-", have);
	curl_easy_setopt(d->easy, CURLOPT_RANGE, have ? range : NULL);
	cc = curl_easy_perform(d->easy);
	*permanent = true;
	pthread_mutex_lock(&d->lock);
	have = d->have;
	pthread_mutex_unlock(&d->lock);
	if (d->att_rc)
		rc = fl_fail(err, d->att_rc, "%s", d->att_err.msg);
	else if (have == d->o.size)
		rc = 0;
	else if (cc == CURLE_OK && d->status != 200 && d->status != 206)
		rc = http_failure(d, permanent, err);
	else if (cc != CURLE_OK)
		rc = curl_failure(d, cc, permanent, err);
	else
		rc = fl_fail(err, (*permanent = false, FL_EUNREACH),
			     "download: the server closed the transfer at "
			     "byte %" PRIu64 " of %" PRIu64,
			     have, d->o.size);
	return rc;
}

/* Sleep @ms unless cancelled; true when cancelled. */
static bool nap(struct agent_dl *d, int64_t ms)
{
	struct timespec ts;
	bool cancel;

	fl_deadline(&ts, ms);
	pthread_mutex_lock(&d->lock);
	while (!d->cancel &&
	       pthread_cond_timedwait(&d->cond, &d->lock, &ts) != ETIMEDOUT)
		;
	cancel = d->cancel;
	pthread_mutex_unlock(&d->lock);
	return cancel;
}

/* Attempts until every byte is here, a permanent error, the retry cap,
 * or cancel. */
static void *net_main(void *arg)
{
	struct agent_dl *d = arg;
	struct fl_error e = {0};
	bool permanent;
	int64_t delay;
	int rc;

	for (;;) {
		fl_error_clear(&e);
		rc = attempt(d, &permanent, &e);
		if (!rc)
			break;
		if (d->att_bytes) { /* progress: the count starts again */
			d->failures = 0;
			agent_backoff_reset(&d->backoff);
		}
		if (permanent || ++d->failures > d->o.retries) {
			if (!permanent)
				fl_strlcpy(e.msg + strlen(e.msg),
					   " (giving up)",
					   sizeof(e.msg) - strlen(e.msg));
			break;
		}
		delay = agent_backoff_next(&d->backoff, rnd32());
		fl_warn("%s (attempt %u); trying again in %lld ms from byte "
			"%" PRIu64,
			e.msg, d->failures, (long long)delay, agent_dl_have(d));
		if (nap(d, delay)) {
			rc = fl_fail(&e, FL_ERR, "download cancelled");
			break;
		}
	}
	pthread_mutex_lock(&d->lock);
	d->state = rc ? DL_FAILED : DL_DONE;
	if (rc)
		d->fail = e;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Reader                                                             */
/* ------------------------------------------------------------------ */

/* The owner's tick, about every TICK_MS. */
static int periodic(struct agent_dl *d, struct fl_error *err)
{
	int64_t now = fl_now_ms();

	if (now - d->last_tick_ms < TICK_MS || !d->o.tick)
		return 0;
	d->last_tick_ms = now;
	return d->o.tick(d->o.user, err);
}

static int start_thread(struct agent_dl *d, struct fl_error *err)
{
	d->easy = curl_easy_init();
	if (!d->easy)
		return fl_fail(err, FL_ENOMEM, "cannot create a curl handle");
	setup_easy(d);
	d->state = DL_RUNNING;
	if (pthread_create(&d->thread, NULL, net_main, d)) {
		d->state = DL_IDLE;
		return fl_fail(err, FL_ERR, "cannot start the download thread");
	}
	d->started = true;
	return 0;
}

/* Wait until @want bytes past the reader arrived (any, on a slow link,
 * once a tick passed), the end, or failure; returns bytes available (0
 * at the end).  The network thread wakes the reader only for @want. */
static int wait_bytes(struct agent_dl *d, size_t want, uint64_t *ret_avail,
		      struct fl_error *err)
{
	struct timespec ts;
	bool late;
	int rc = 0;

	pthread_mutex_lock(&d->lock);
	while (d->have - d->pos < want && d->state == DL_RUNNING) {
		d->want = want;
		fl_deadline(&ts, TICK_MS);
		late = pthread_cond_timedwait(&d->cond, &d->lock, &ts) ==
		       ETIMEDOUT;
		pthread_mutex_unlock(&d->lock);
		rc = periodic(d, err);
		pthread_mutex_lock(&d->lock);
		if (rc || (late && d->have > d->pos)) /* a slow link */
			break;
	}
	d->want = 0;
	if (!rc && d->pos == d->have && d->state == DL_FAILED)
		rc = fl_fail(err, d->fail.code, "%s", d->fail.msg);
	*ret_avail = d->have - d->pos;
	pthread_mutex_unlock(&d->lock);
	return rc;
}

int agent_dl_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		  struct fl_error *err)
{
	struct agent_dl *d = ctx;
	uint64_t avail, pos;
	int rc;

	rc = periodic(d, err);
	if (!rc && !d->started)
		rc = start_thread(d, err);
	if (!rc)
		rc = wait_bytes(d, cap < WAKE ? cap : WAKE, &avail, err);
	if (rc)
		return rc;
	pos = agent_dl_pos(d);
	if (cap > avail)
		cap = (size_t)avail;
	if (cap > RING - pos % RING)
		cap = RING - pos % RING;
	memcpy(buf, d->ring + pos % RING, cap);
	pthread_mutex_lock(&d->lock);
	d->pos += cap;
	if (d->writer_waits && d->have - d->pos <= d->window - d->window / 4)
		pthread_cond_broadcast(&d->cond); /* room for the network */
	pthread_mutex_unlock(&d->lock);
	*ret_len = cap; /* 0: every byte was read, the end */
	return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

static void copy_opts(struct agent_dl *d, const struct agent_dl_opts *o)
{
	d->o = *o;
	d->o.url = fl_xstrdup(o->url);
	d->o.ca_file = fl_xstrdup(o->ca_file);
	d->o.cert_file = o->cert_file ? fl_xstrdup(o->cert_file) : NULL;
	d->o.key_file = o->key_file ? fl_xstrdup(o->key_file) : NULL;
	d->backoff = (struct agent_backoff){
	    o->backoff_min_ms ? o->backoff_min_ms : 1000,
	    o->backoff_max_ms ? o->backoff_max_ms : 60000, 0};
}

int agent_dl_open(const struct agent_dl_opts *o, struct agent_dl **ret,
		  struct fl_error *err)
{
	struct agent_dl *d;

	if (!o->url || !fl_startswith(o->url, "https://") || !o->ca_file ||
	    o->offset >= o->size)
		return fl_fail(err, FL_EINVAL,
			       "download: an https URL, a CA and an offset "
			       "below the size are required");
	if (fl_curl_init(err))
		return FL_ERR;
	d = fl_xcalloc(1, sizeof(*d));
	copy_opts(d, o);
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->window = WINDOW_MIN;
	d->ring = fl_xmalloc(RING);
	d->have = d->pos = o->offset;
	d->last_tick_ms = fl_now_ms();
	*ret = d;
	return 0;
}

void agent_dl_set_window(struct agent_dl *dl, size_t bytes)
{
	pthread_mutex_lock(&dl->lock);
	dl->window = bytes < WINDOW_MIN ? WINDOW_MIN
		     : bytes > RING	? RING
					: bytes;
	pthread_cond_broadcast(&dl->cond);
	pthread_mutex_unlock(&dl->lock);
}

/* A shared counter, read under the lock. */
static uint64_t locked_u64(const struct agent_dl *dl, const uint64_t *v)
{
	uint64_t r;

	pthread_mutex_lock((pthread_mutex_t *)&dl->lock);
	r = *v;
	pthread_mutex_unlock((pthread_mutex_t *)&dl->lock);
	return r;
}

uint64_t agent_dl_have(const struct agent_dl *dl)
{
	return locked_u64(dl, &dl->have);
}

uint64_t agent_dl_pos(const struct agent_dl *dl)
{
	return locked_u64(dl, &dl->pos);
}

uint64_t agent_dl_fetched(const struct agent_dl *dl)
{
	return locked_u64(dl, &dl->fetched);
}

unsigned agent_dl_attempts(const struct agent_dl *dl)
{
	unsigned r;

	pthread_mutex_lock((pthread_mutex_t *)&dl->lock);
	r = dl->attempts;
	pthread_mutex_unlock((pthread_mutex_t *)&dl->lock);
	return r;
}

void agent_dl_free(struct agent_dl *dl)
{
	if (!dl)
		return;
	if (dl->started) {
		pthread_mutex_lock(&dl->lock);
		dl->cancel = true;
		pthread_cond_broadcast(&dl->cond);
		pthread_mutex_unlock(&dl->lock);
		pthread_join(dl->thread, NULL);
	}
	curl_easy_cleanup(dl->easy);
	pthread_mutex_destroy(&dl->lock);
	pthread_cond_destroy(&dl->cond);
	free(dl->ring);
	free((char *)dl->o.url);
	free((char *)dl->o.ca_file);
	free((char *)dl->o.cert_file);
	free((char *)dl->o.key_file);
	free(dl);
}

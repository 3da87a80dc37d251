/* SPDX-License-Identifier: MIT */
/*
 * Resumable download into a partial file, read back as a stream (see
 * download.h).  One curl easy handle in a multi handle; each attempt
 * asks for "Range: bytes=HAVE-" and appends what arrives.  The write
 * callback pauses the transfer when it is a window ahead of the reader,
 * and agent_dl_read resumes it when the reader has caught up.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>

#include "agent_mqtt.h"
#include "download.h"
#include "util.h"

#define TICK_MS 100
#define WINDOW_MIN (64u * 1024)
#define ERRBODY_MAX 1024
#define CURL_BUF (256L * 1024)

enum att_state {
	ATT_IDLE,    /* no attempt running; start one at next_ms */
	ATT_RUNNING, /* the easy handle is in the multi handle */
	ATT_DONE,    /* all bytes are here */
};

struct agent_dl {
	struct agent_dl_opts o;
	CURLM *multi;
	CURL *easy;
	int fd;
	uint64_t have, pos, kept, fetched;
	size_t window;
	bool paused;
	enum att_state state;
	int64_t next_ms, last_tick_ms, last_checkpoint_ms;
	uint64_t durable;
	struct agent_backoff backoff;
	unsigned failures, attempts;
	char errbuf[CURL_ERROR_SIZE];

	/* the attempt's response */
	long status;
	bool checked;		 /* status and range looked at */
	uint64_t skip;		 /* bytes of a 200 answer to drop */
	uint64_t att_bytes;	 /* bytes it delivered */
	int att_rc;		 /* our own reason to abort it */
	struct fl_error att_err; /* and its message */
	char content_range[96];
	char errbody[ERRBODY_MAX + 1];
	size_t errbody_len;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static uint32_t rnd32(void)
{
	uint32_t r = 0;

	if (fl_random(&r, sizeof(r), NULL))
		r = (uint32_t)fl_now_ms() * 2654435761u;
	return r;
}

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
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

/*
 * The first body bytes of an attempt: is this the answer we asked for?
 * 206 must start at HAVE and name our size; a 200 answer (the server
 * ignored Range) is read from the start and the first HAVE bytes are
 * dropped.  Error bodies are kept (capped) for the message.
 */
static int check_response(struct agent_dl *d)
{
	unsigned long long a, b, total;

	curl_easy_getinfo(d->easy, CURLINFO_RESPONSE_CODE, &d->status);
	d->checked = true;
	if (d->status == 200) {
		d->skip = d->have;
		return 0;
	}
	if (d->status != 206)
		return 0; /* an error; its body is collected */
	if (sscanf(d->content_range, " bytes %llu-%llu/%llu", &a, &b, &total) !=
	    3)
		return att_abort(d, FL_EPARSE,
				 "download: bad Content-Range "
				 "'%s'",
				 d->content_range);
	if (total != d->o.size)
		return att_abort(d, FL_EVERIFY,
				 "download: the server's file has %llu bytes, "
				 "not %" PRIu64,
				 total, d->o.size);
	if (a != d->have)
		return att_abort(d, FL_EPARSE,
				 "download: asked for byte %" PRIu64
				 ", got '%s'",
				 d->have, d->content_range);
	return 0;
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

static int append(struct agent_dl *d, const char *p, size_t len)
{
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = pwrite(d->fd, p + done, len - done,
			   (off_t)(d->have + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return att_abort(d, FL_EIO, "cannot write '%s': %s",
					 d->o.partial, strerror(errno));
		done += (size_t)n;
	}
	d->have += len;
	d->fetched += len;
	d->att_bytes += len;
	return 0;
}

/*
 * Body bytes: pause when the reader is a window behind (curl hands the
 * same chunk again after the pause), drop what a 200 answer repeats,
 * refuse anything past the expected size, append the rest.
 */
static size_t on_write(char *p, size_t sz, size_t nm, void *user)
{
	struct agent_dl *d = user;
	size_t len = sz * nm, drop;

	if (!d->checked && check_response(d))
		return 0;
	if (d->status != 200 && d->status != 206) {
		keep_errbody(d, p, len);
		return len;
	}
	if (d->have - d->pos >= d->window) {
		d->paused = true;
		return CURL_WRITEFUNC_PAUSE;
	}
	drop = len < d->skip ? len : (size_t)d->skip;
	d->skip -= drop;
	if (len - drop > d->o.size - d->have) {
		att_abort(d, FL_ELIMIT,
			  "download: the server sends more than the %" PRIu64
			  " bytes expected",
			  d->o.size);
		return 0;
	}
	if (len > drop && append(d, p + drop, len - drop))
		return 0;
	return len;
}

/* ------------------------------------------------------------------ */
/* Attempts                                                           */
/* ------------------------------------------------------------------ */

static void setup_easy(struct agent_dl *d)
{
	CURL *c = d->easy;

	curl_easy_setopt(c, CURLOPT_URL, d->o.url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_CAINFO, d->o.ca_file);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	if (d->o.cert_file) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, d->o.cert_file);
		curl_easy_setopt(c, CURLOPT_SSLKEY, d->o.key_file);
	}
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 d->o.connect_timeout_ms ? d->o.connect_timeout_ms
						 : 10000L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME,
			 d->o.stall_timeout_s ? d->o.stall_timeout_s : 30L);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, CURL_BUF);
	if (d->o.rate_limit)
		curl_easy_setopt(c, CURLOPT_MAX_RECV_SPEED_LARGE,
				 (curl_off_t)d->o.rate_limit);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, d->errbuf);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "fleet-agent/" FLEET_VERSION);
}

static int start_attempt(struct agent_dl *d, struct fl_error *err)
{
	char range[48];

	d->status = 0;
	d->checked = false;
	d->skip = 0;
	d->att_rc = 0;
	d->att_bytes = 0;
	fl_error_clear(&d->att_err);
	d->content_range[0] = '\0';
	d->errbody_len = 0;
	d->errbuf[0] = '\0';
	d->paused = false;
	snprintf(range, sizeof(range), "%" PRIu64 "-", d->have);
	curl_easy_setopt(d->easy, CURLOPT_RANGE, d->have ? range : NULL);
	if (curl_multi_add_handle(d->multi, d->easy) != CURLM_OK)
		return fl_fail(err, FL_ERR, "cannot start the download");
	d->state = ATT_RUNNING;
	d->attempts++;
	return 0;
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

/*
 * An attempt ended (@cc).  Returns 0 when every byte is here or another
 * attempt is scheduled, else the error.
 */
static int end_attempt(struct agent_dl *d, CURLcode cc, struct fl_error *err)
{
	struct fl_error e = {0};
	bool permanent = false;
	int rc;

	curl_multi_remove_handle(d->multi, d->easy);
	d->state = ATT_IDLE;
	d->paused = false;
	if (d->have == d->o.size) {
		d->state = ATT_DONE;
		return 0;
	}
	if (d->att_rc)
		return fl_fail(err, d->att_rc, "%s", d->att_err.msg);
	if (d->att_bytes) { /* progress: the count starts again */
		d->failures = 0;
		agent_backoff_reset(&d->backoff);
	}
	if (cc == CURLE_OK && d->status != 200 && d->status != 206)
		rc = http_failure(d, &permanent, &e);
	else if (cc != CURLE_OK)
		rc = curl_failure(d, cc, &permanent, &e);
	else
		rc = fl_fail(&e, FL_EUNREACH,
			     "download: the server closed the transfer at "
			     "byte %" PRIu64 " of %" PRIu64,
			     d->have, d->o.size);
	if (permanent || ++d->failures > d->o.retries)
		return fl_fail(err, rc, "%s%s", e.msg,
			       permanent ? "" : " (giving up)");
	d->next_ms = fl_now_ms() + agent_backoff_next(&d->backoff, rnd32());
	return 0;
}

/* ------------------------------------------------------------------ */
/* Driving the transfer                                               */
/* ------------------------------------------------------------------ */

static int checkpoint(struct agent_dl *d, struct fl_error *err)
{
	int rc;

	rc = agent_dl_sync(d, NULL, err);
	if (!rc && d->o.checkpoint)
		rc = d->o.checkpoint(d->o.user, d->durable, err);
	d->last_checkpoint_ms = fl_now_ms();
	return rc;
}

/* The periodic work: the owner's tick and the checkpoint. */
static int periodic(struct agent_dl *d, struct fl_error *err)
{
	int64_t now = fl_now_ms();
	int64_t every = d->o.checkpoint_ms ? d->o.checkpoint_ms : 5000;
	int rc = 0;

	if (now - d->last_tick_ms >= TICK_MS) {
		d->last_tick_ms = now;
		if (d->o.tick)
			rc = d->o.tick(d->o.user, err);
	}
	if (!rc && now - d->last_checkpoint_ms >= every && d->have > d->durable)
		rc = checkpoint(d, err);
	return rc;
}

/* Let curl read what the socket has, without waiting. */
static int perform(struct agent_dl *d, struct fl_error *err)
{
	int running, left;
	CURLMsg *msg;

	if (d->paused && d->have - d->pos < d->window / 2) {
		d->paused = false;
		curl_easy_pause(d->easy, CURLPAUSE_CONT);
	}
	curl_multi_perform(d->multi, &running);
	while ((msg = curl_multi_info_read(d->multi, &left)))
		if (msg->msg == CURLMSG_DONE)
			return end_attempt(d, msg->data.result, err);
	return 0;
}

/* Block until the partial file grows past the reader, or fail. */
static int wait_bytes(struct agent_dl *d, struct fl_error *err)
{
	int rc = 0;

	while (!rc && d->pos == d->have && d->state != ATT_DONE) {
		if (d->state == ATT_IDLE && fl_now_ms() >= d->next_ms)
			rc = start_attempt(d, err);
		if (!rc && d->state == ATT_RUNNING)
			rc = perform(d, err);
		if (rc || d->pos < d->have || d->state == ATT_DONE)
			break;
		if (d->state == ATT_RUNNING)
			curl_multi_poll(d->multi, NULL, 0, TICK_MS, NULL);
		else
			poll(NULL, 0, TICK_MS);
		rc = periodic(d, err);
	}
	return rc;
}

int agent_dl_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		  struct fl_error *err)
{
	struct agent_dl *d = ctx;
	uint64_t avail;
	ssize_t n;
	int rc;

	rc = periodic(d, err);
	if (!rc && d->state == ATT_RUNNING)
		rc = perform(d, err);
	if (!rc && d->pos == d->have && d->have < d->o.size)
		rc = wait_bytes(d, err);
	if (rc)
		return rc;
	avail = d->have - d->pos;
	if (avail == 0) {
		*ret_len = 0; /* exactly size bytes: the end */
		return 0;
	}
	if (cap > avail)
		cap = (size_t)avail;
	do
		n = pread(d->fd, buf, cap, (off_t)d->pos);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return fl_fail_errno(err, FL_EIO, "cannot read '%s'",
				     d->o.partial);
	d->pos += (uint64_t)n;
	*ret_len = (size_t)n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

/* Open the partial file and decide how much of it to keep. */
static int open_partial(struct agent_dl *d, struct fl_error *err)
{
	struct stat st;
	uint64_t keep;

	d->fd = open(d->o.partial, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (d->fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot open '%s'",
				     d->o.partial);
	if (fstat(d->fd, &st) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot stat '%s'",
				     d->o.partial);
	keep = (uint64_t)st.st_size;
	if (!d->o.trust_file && keep > d->o.durable)
		keep = d->o.durable;
	if (keep > d->o.size)
		keep = d->o.size;
	if (keep != (uint64_t)st.st_size && ftruncate(d->fd, (off_t)keep) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot truncate '%s'",
				     d->o.partial);
	d->have = d->kept = keep;
	d->durable = d->o.trust_file ? 0 : keep;
	return 0;
}

static void copy_opts(struct agent_dl *d, const struct agent_dl_opts *o)
{
	d->o = *o;
	d->o.url = fl_xstrdup(o->url);
	d->o.ca_file = fl_xstrdup(o->ca_file);
	d->o.cert_file = o->cert_file ? fl_xstrdup(o->cert_file) : NULL;
	d->o.key_file = o->key_file ? fl_xstrdup(o->key_file) : NULL;
	d->o.partial = fl_xstrdup(o->partial);
	d->backoff = (struct agent_backoff){
	    o->backoff_min_ms ? o->backoff_min_ms : 1000,
	    o->backoff_max_ms ? o->backoff_max_ms : 60000, 0};
}

int agent_dl_open(const struct agent_dl_opts *o, struct agent_dl **ret,
		  struct fl_error *err)
{
	struct agent_dl *d;
	int rc;

	if (!o->url || !fl_startswith(o->url, "https://") || !o->ca_file ||
	    !o->partial || !o->size)
		return fl_fail(err, FL_EINVAL,
			       "download: an https URL, a CA, a partial file "
			       "and a size are required");
	pthread_once(&curl_once, curl_init_once);
	d = fl_xcalloc(1, sizeof(*d));
	d->fd = -1;
	copy_opts(d, o);
	d->window = WINDOW_MIN;
	d->last_tick_ms = d->last_checkpoint_ms = fl_now_ms();
	d->multi = curl_multi_init();
	d->easy = curl_easy_init();
	if (!d->multi || !d->easy) {
		agent_dl_free(d);
		return fl_fail(err, FL_ENOMEM, "cannot create a curl handle");
	}
	setup_easy(d);
	rc = open_partial(d, err);
	if (rc) {
		agent_dl_free(d);
		return rc;
	}
	if (d->have == d->o.size)
		d->state = ATT_DONE;
	*ret = d;
	return 0;
}

void agent_dl_set_window(struct agent_dl *dl, size_t bytes)
{
	dl->window = bytes < WINDOW_MIN ? WINDOW_MIN : bytes;
}

void agent_dl_rewind(struct agent_dl *dl)
{
	dl->pos = 0;
}

uint64_t agent_dl_have(const struct agent_dl *dl)
{
	return dl->have;
}

uint64_t agent_dl_pos(const struct agent_dl *dl)
{
	return dl->pos;
}

uint64_t agent_dl_kept(const struct agent_dl *dl)
{
	return dl->kept;
}

uint64_t agent_dl_fetched(const struct agent_dl *dl)
{
	return dl->fetched;
}

unsigned agent_dl_attempts(const struct agent_dl *dl)
{
	return dl->attempts;
}

int agent_dl_sync(struct agent_dl *dl, uint64_t *ret_durable,
		  struct fl_error *err)
{
	if (fdatasync(dl->fd) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot sync '%s'",
				     dl->o.partial);
	dl->durable = dl->have;
	if (ret_durable)
		*ret_durable = dl->durable;
	return 0;
}

void agent_dl_free(struct agent_dl *dl)
{
	if (!dl)
		return;
	if (dl->state == ATT_RUNNING)
		curl_multi_remove_handle(dl->multi, dl->easy);
	curl_easy_cleanup(dl->easy);
	curl_multi_cleanup(dl->multi);
	if (dl->fd >= 0)
		close(dl->fd);
	free((char *)dl->o.url);
	free((char *)dl->o.ca_file);
	free((char *)dl->o.cert_file);
	free((char *)dl->o.key_file);
	free((char *)dl->o.partial);
	free(dl);
}

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_DOWNLOAD_H
#define AGENT_DOWNLOAD_H

/*
 * A resumable HTTPS download that a pull-based consumer reads as a byte
 * stream (docs/ota.md).  Every byte read from the network is appended
 * to a partial file first; agent_dl_read hands out bytes from that file,
 * so after a restart the bytes already there are read back locally (and
 * verified again by the consumer) and only the rest comes from the
 * network, with an HTTP Range request.
 *
 * libcurl pushes and the consumer (fsig_reader) pulls: the transfer is
 * driven with the multi interface from inside agent_dl_read and paused
 * (CURL_WRITEFUNC_PAUSE) whenever it runs more than a window ahead of
 * the consumer, so memory stays constant; the bytes in between sit in
 * the partial file.  The server is verified against a pinned CA and the
 * client presents its certificate (mTLS).  The transfer never accepts a
 * byte past the expected size, resumes after network errors with capped
 * exponential backoff, and may be rate-limited.
 *
 * Single-threaded; one handle per download; nothing global besides
 * curl_global_init (done once, as fl_http does).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGENT_DL_WINDOW_DEFAULT (8u * 1024 * 1024)

struct agent_dl;

struct agent_dl_opts {
	const char *url;       /* https://HOST:PORT/PATH */
	const char *ca_file;   /* pinned CA; required */
	const char *cert_file; /* client certificate, or NULL */
	const char *key_file;  /* its key */
	const char *partial;   /* the partial file (created 0600) */
	uint64_t size;	       /* exact size of the whole download, > 0 */
	/*
	 * What to keep of an existing partial file: with @trust_file its
	 * whole length (the page cache survived: same kernel boot), else
	 * only the first @durable bytes (synced before a power loss).
	 * Anything beyond is cut off.
	 */
	bool trust_file;
	uint64_t durable;
	uint64_t rate_limit;	 /* bytes per second; 0: none */
	unsigned retries;	 /* failed attempts in a row allowed */
	int64_t backoff_min_ms;	 /* 0: 1 s */
	int64_t backoff_max_ms;	 /* 0: 60 s */
	long connect_timeout_ms; /* 0: 10 s */
	long stall_timeout_s;	 /* no byte for this long fails an
				  * attempt; 0: 30 s */
	int64_t checkpoint_ms;	 /* sync the partial file and call
				  * @checkpoint at most this often; 0: 5 s */
	/* After the partial file was synced up to @durable bytes (may be
	 * NULL).  A non-zero return stops the download with that code. */
	int (*checkpoint)(void *user, uint64_t durable, struct fl_error *err);
	/* Called about every 100 ms while reads go on (may be NULL).  A
	 * non-zero return stops the read with that code (the agent uses it
	 * to keep MQTT alive and to stop on SIGTERM). */
	int (*tick)(void *user, struct fl_error *err);
	void *user;
};

/*
 * Open the partial file, cut it to what may be kept (see @trust_file)
 * and prepare the transfer (nothing is sent yet).  Copies the strings.
 * Returns 0, FL_EINVAL (no URL, CA, size, or not https), FL_EIO.
 */
int agent_dl_open(const struct agent_dl_opts *o, struct agent_dl **ret,
		  struct fl_error *err);

/*
 * fsig_read_fn: fill up to @cap bytes of @buf from position
 * agent_dl_pos(): the partial file while it has them, else the network
 * (started or resumed with Range: bytes=HAVE-).  *@ret_len is 0 at the
 * end (exactly @size bytes).  Blocks until bytes arrive.
 * Returns 0, FL_EUNREACH, FL_ETIMEOUT (network, after the retries),
 * FL_ENOTFOUND (404), FL_EDENIED (401/403, TLS verification),
 * FL_EVERIFY (the server's size differs: 416, Content-Range), FL_ELIMIT
 * (the server sends more than @size bytes), FL_EIO (partial file), FL_ERR,
 * or what a callback returned.
 */
int agent_dl_read(void *dl, void *buf, size_t cap, size_t *ret_len,
		  struct fl_error *err);

/* How far (bytes) the network may run ahead of the reader; 64 KiB
 * minimum.  Small until the consumer has checked the bundle's
 * signature, so a refused bundle is not downloaded. */
void agent_dl_set_window(struct agent_dl *dl, size_t bytes);

/* Read again from byte 0 (the partial file serves what it has; a
 * running transfer goes on).  For a second look at the start. */
void agent_dl_rewind(struct agent_dl *dl);

/* Bytes in the partial file. */
uint64_t agent_dl_have(const struct agent_dl *dl);

/* Bytes handed to the reader. */
uint64_t agent_dl_pos(const struct agent_dl *dl);

/* Bytes the partial file held when opened (kept from before). */
uint64_t agent_dl_kept(const struct agent_dl *dl);

/* Bytes taken from the network through this handle. */
uint64_t agent_dl_fetched(const struct agent_dl *dl);

/* Network attempts started through this handle. */
unsigned agent_dl_attempts(const struct agent_dl *dl);

/* Sync the partial file; *@ret_durable (may be NULL) gets its length.
 * Returns 0 or FL_EIO. */
int agent_dl_sync(struct agent_dl *dl, uint64_t *ret_durable,
		  struct fl_error *err);

/* Stop any transfer, close the file (it stays), free.  NULL is fine. */
void agent_dl_free(struct agent_dl *dl);

#endif

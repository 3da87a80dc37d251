/* SPDX-License-Identifier: MIT */
#ifndef AGENT_DOWNLOAD_H
#define AGENT_DOWNLOAD_H

/*
 * An HTTPS download that a pull-based consumer reads as a byte stream
 * (docs/ota.md), from any offset of the file: an install that resumes
 * asks for "Range: bytes=OFFSET-" and never sees the bytes before.
 *
 * libcurl pushes and the consumer (fsig_reader) pulls: the transfer
 * runs in its own thread and hands the body over through a ring buffer
 * in memory, waiting whenever it is a window ahead of the consumer, so
 * memory stays constant whatever the size and nothing is written to
 * disk on the way.  The server is verified against a pinned CA and the
 * client presents its certificate (mTLS).  The transfer never accepts a
 * byte past the expected size, resumes after network errors with Range
 * and capped exponential backoff, and may be rate-limited.
 *
 * One consumer thread per handle; nothing global besides
 * curl_global_init (done once, as fl_http does).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* The largest window, and the ring buffer's size. */
#define AGENT_DL_WINDOW_MAX (1024u * 1024)

struct agent_dl;

struct agent_dl_opts {
	const char *url;	 /* https://HOST:PORT/PATH */
	const char *ca_file;	 /* pinned CA; required */
	const char *cert_file;	 /* client certificate, or NULL */
	const char *key_file;	 /* its key */
	uint64_t size;		 /* exact size of the whole file, > 0 */
	uint64_t offset;	 /* first byte to fetch, < @size */
	uint64_t rate_limit;	 /* bytes per second; 0: none */
	unsigned retries;	 /* failed attempts in a row allowed */
	int64_t backoff_min_ms;	 /* 0: 1 s */
	int64_t backoff_max_ms;	 /* 0: 60 s */
	long connect_timeout_ms; /* 0: 10 s */
	long stall_timeout_s;	 /* no byte for this long fails an
				  * attempt; 0: 30 s */
	/* Called about every 100 ms while reads go on (may be NULL).  A
	 * non-zero return stops the read with that code (the agent uses it
	 * to keep MQTT alive and to stop on SIGTERM). */
	int (*tick)(void *user, struct fl_error *err);
	void *user;
};

/*
 * Prepare the transfer (nothing is sent before the first read).
 * Copies the strings.  Returns 0, or FL_EINVAL (no URL, CA, size, not
 * https, an offset not below the size).
 */
int agent_dl_open(const struct agent_dl_opts *o, struct agent_dl **ret,
		  struct fl_error *err);

/*
 * fsig_read_fn: the next up to @cap bytes, from @offset on (the first
 * read starts the transfer, with "Range: bytes=OFFSET-" unless the
 * offset is 0).  *@ret_len is 0 at the end (byte @size - 1 was read).
 * Blocks until bytes arrive.
 * Returns 0, FL_EUNREACH, FL_ETIMEOUT (network, after the retries),
 * FL_ENOTFOUND (404), FL_EDENIED (401/403, TLS verification),
 * FL_EVERIFY (the server's size differs: 416, Content-Range), FL_ELIMIT
 * (the server sends more than @size bytes), FL_ERR, or what the tick
 * returned.
 */
int agent_dl_read(void *dl, void *buf, size_t cap, size_t *ret_len,
		  struct fl_error *err);

/* How far (bytes) the network may run ahead of the reader: 64 KiB to
 * AGENT_DL_WINDOW_MAX.  Small until the consumer has checked the
 * bundle's signature, so a refused bundle is not downloaded. */
void agent_dl_set_window(struct agent_dl *dl, size_t bytes);

/* The offset of the first byte not received yet (@offset at first). */
uint64_t agent_dl_have(const struct agent_dl *dl);

/* The offset of the next byte for the reader (@offset at first). */
uint64_t agent_dl_pos(const struct agent_dl *dl);

/* Bytes taken from the network through this handle. */
uint64_t agent_dl_fetched(const struct agent_dl *dl);

/* Network attempts started through this handle. */
unsigned agent_dl_attempts(const struct agent_dl *dl);

/* Stop any transfer and free.  NULL is fine. */
void agent_dl_free(struct agent_dl *dl);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef SRV_HTTP_GUARD_H
#define SRV_HTTP_GUARD_H

/*
 * Bounds fleetd's HTTPS side puts on each client, beyond what
 * libmicrohttpd does itself (connection counts, idle timeout):
 *
 *  - deadlines: a connection must send its request headers within
 *    [http] header_timeout of connecting (or of the previous reply on a
 *    kept-alive connection), and the whole request within
 *    request_timeout (upload_timeout for bundle uploads).  MHD's own
 *    timeout only counts idle time, which one byte every few seconds
 *    beats.  A reaper thread shuts down the socket of a connection past
 *    its deadline, whatever phase it is in (TLS handshake, headers,
 *    body); MHD then closes it.
 *  - audit rows for refused anonymous requests: at most
 *    SRV_AUDIT_PER_ADDR per source address and SRV_AUDIT_GLOBAL in all
 *    per SRV_AUDIT_WINDOW_S; the rest are counted and written as one
 *    summary row per address when its window ends.
 *
 * Internal to httpd.c.
 */
#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "srv.h"

#define SRV_AUDIT_WINDOW_S 60
#define SRV_AUDIT_PER_ADDR 10
#define SRV_AUDIT_GLOBAL 100

struct srv_http;
struct srv_conn;

/* Start the guard (and its reaper thread) for @srv; sets srv->http. */
int srv_guard_start(struct srv *srv, struct fl_error *err);

/* Stop the reaper, flush pending audit summaries and free srv->http.
 * Call after MHD_stop_daemon (no connection may remain). */
void srv_guard_stop(struct srv *srv);

/* A new connection on socket @fd: its header deadline starts now.
 * Returns the connection state (never NULL). */
struct srv_conn *srv_guard_conn_new(struct srv_http *h, int fd);

/* The connection closed; frees @c (NULL is fine). */
void srv_guard_conn_free(struct srv_http *h, struct srv_conn *c);

/* The request's headers are in: the whole request must be in within
 * @secs of its start.  False when that deadline has passed already. */
bool srv_guard_headers_done(struct srv_http *h, struct srv_conn *c,
			    int64_t secs);

/* Still within the request deadline? */
bool srv_guard_in_time(struct srv_http *h, struct srv_conn *c);

/* The request is in and the handler runs: no deadline while the reply is
 * sent (MHD's idle timeout still applies). */
void srv_guard_request_done(struct srv_http *h, struct srv_conn *c);

/* The reply went out; a kept-alive connection gets a new header deadline. */
void srv_guard_reply_done(struct srv_http *h, struct srv_conn *c);

/* May a refused anonymous request from @remote get its own audit row?
 * When not, it is counted; *ret_marker (may be NULL) is set on the first
 * refusal not recorded, for the caller to record that the limit was
 * reached. */
bool srv_guard_audit_allowed(struct srv_http *h, const char *remote,
			     bool *ret_marker);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef SRV_HTTPD_INTERNAL_H
#define SRV_HTTPD_INTERNAL_H

/*
 * httpd.c's two libmicrohttpd callbacks, for the fuzz target that serves
 * requests through them without TLS or a socket of its own
 * (tests/fuzz/fuzz_http.c); not for other callers.  @cls is the struct
 * srv.  Everything a request meets happens in them: routing, the
 * bearer token, role checks, body caps, the handler, the audit row.
 */
#include <stddef.h>

#include <microhttpd.h>

enum MHD_Result srv_http_on_request(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *data,
				    size_t *data_size, void **con_cls);

void srv_http_on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			   enum MHD_RequestTerminationCode toe);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef FLEET_AGENT_TLSID_H
#define FLEET_AGENT_TLSID_H

/*
 * Device identities decoded once per process.  OpenSSL 3.0 takes 1-2 ms
 * of CPU to decode a P-256 key from PEM and about 0.5 ms to make an
 * SSL_CTX; fleet-sim's devices start thousands of times (every power
 * cycle is a new struct agent, every connection a new TLS context), so
 * the key, the certificate and a client SSL_CTX made from them are kept
 * here, keyed by the key file's path, and reused while the files are
 * unchanged (same device, inode, size and modification time: the agent
 * replaces them by rename, so new content is a new inode).  fleet-agent
 * holds one identity; the cache costs it nothing.  Thread-safe.
 */
#include <stdbool.h>

#include <openssl/ssl.h>

#include "err.h"

/* Identities the cache keeps at most; past it, they are decoded anew. */
#define AGENT_TLSID_MAX 100000

/*
 * New references to the key in @key_file and the first certificate in
 * @cert_file (the caller frees both).  Codes as fl_pki_key_load and
 * fl_pki_cert_load.
 */
int agent_tlsid_pair(const char *cert_file, const char *key_file,
		     EVP_PKEY **ret_key, X509 **ret_cert, struct fl_error *err);

/*
 * A new reference to a client SSL_CTX (the caller frees it): TLS 1.2 or
 * later, the server verified against the certificates in @ca_file and
 * checked for @host (a DNS name or an IP address), @cert_file and
 * @key_file as the client's identity.  Made once for the identity and
 * the CA file, and made again when either changes.  FL_ENOTFOUND,
 * FL_EPARSE, FL_EVERIFY (the key does not belong to the certificate),
 * FL_ERR.
 */
int agent_tlsid_client_ctx(const char *ca_file, const char *cert_file,
			   const char *key_file, const char *host,
			   SSL_CTX **ret, struct fl_error *err);

/* Put the identity of @cert_file and @key_file into @ctx (a TLS
 * context libcurl made).  Codes as agent_tlsid_pair. */
int agent_tlsid_use(SSL_CTX *ctx, const char *cert_file, const char *key_file,
		    struct fl_error *err);

/* Counts for tests: decodes of a key file, SSL_CTX made. */
struct agent_tlsid_stats {
	unsigned long decodes, contexts;
};
void agent_tlsid_stats(struct agent_tlsid_stats *ret);

#endif

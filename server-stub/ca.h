/* SPDX-License-Identifier: MIT */
#ifndef SRV_CA_H
#define SRV_CA_H

#include <stddef.h>

#include "err.h"

/*
 * fleetd's private CA (DESIGN §3, docs/pki.md).  Files in the state dir:
 *
 *   ca/root.pem  ca/root.key        root CA (key may be exported and
 *                                   removed: only issuing needs it)
 *   ca/issuing.pem  ca/issuing.key  issuing CA: signs leaves and the CRL
 *   ca/crl.pem                      CRL of the issuing CA
 *   ca.pem                          root certificate: what clients pin
 *   tls/server.key  tls/server.pem  HTTPS + broker certificate (leaf
 *                                   followed by the issuing CA)
 */
#define SRV_CA_ROOT_CERT "ca/root.pem"
#define SRV_CA_ROOT_KEY "ca/root.key"
#define SRV_CA_ISSUING_CERT "ca/issuing.pem"
#define SRV_CA_ISSUING_KEY "ca/issuing.key"
#define SRV_CA_CRL "ca/crl.pem"

/*
 * Create the CA hierarchy, the server certificate (SANs localhost,
 * 127.0.0.1, ::1 and @sans: DNS names or IP literals) and an empty CRL
 * in @state_dir.
 */
int srv_ca_init(const char *state_dir, const char *const *sans, size_t nsans,
		struct fl_error *err);

#endif

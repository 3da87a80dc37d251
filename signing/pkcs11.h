/* SPDX-License-Identifier: MIT */
#ifndef FSIG_PKCS11_H
#define FSIG_PKCS11_H

/*
 * Internal to libfleetsign: the only code that touches OpenSSL's
 * deprecated ENGINE API (see pkcs11.c for why).  Use
 * fsig_key_load_pkcs11() from keys.h instead.
 */
#include <openssl/types.h>

#include "err.h"

/*
 * Load the private key named by PKCS#11 @uri.  On success *ret_pkey is
 * the key and *ret_engine the initialised engine that backs it; release
 * the key first, then the engine with fsig_pkcs11_release().
 */
int fsig_pkcs11_load(const char *uri, EVP_PKEY **ret_pkey, ENGINE **ret_engine,
		     struct fl_error *err);

/* Finish and free an engine from fsig_pkcs11_load (NULL is fine). */
void fsig_pkcs11_release(ENGINE *engine);

#endif

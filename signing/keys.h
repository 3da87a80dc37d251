/* SPDX-License-Identifier: MIT */
#ifndef FSIG_KEYS_H
#define FSIG_KEYS_H

/*
 * Signing keys for libfleetsign: Ed25519 (the default) and ECDSA P-256.
 *
 * A struct fsig_key holds either a key pair (private key from a PEM file
 * or a PKCS#11 token) or a public key only.  Every key has a key id: the
 * lowercase hex SHA-256 of its DER SubjectPublicKeyInfo, 64 characters.
 *
 * Signatures are always domain separated: the signed message is the
 * domain string including its terminating NUL, followed by the data, so a
 * signature made for one purpose ("fleet-manifest-v1") can never be
 * replayed as another ("fleet-root-v1").  Ed25519 signs that message
 * directly (PureEdDSA, 64-byte signatures); P-256 signs its SHA-256 and
 * produces a DER-encoded ECDSA-Sig-Value (at most 72 bytes).
 *
 * All functions return 0 or an enum fl_err code and record a message in
 * @err (may be NULL).  Out-parameters are written only on success.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"

/* Domain strings (the NUL is part of the signed message). */
#define FSIG_DOMAIN_MANIFEST "fleet-manifest-v1"
#define FSIG_DOMAIN_ROOT "fleet-root-v1"

#define FSIG_KEYID_LEN 64	 /* hex characters, without NUL */
#define FSIG_SIG_MAX 128	 /* largest raw signature of any algorithm */
#define FSIG_SPKI_MAX 256	 /* largest DER SubjectPublicKeyInfo accepted */
#define FSIG_DATA_MAX (1u << 20) /* largest message fsig_sign accepts */

enum fsig_alg {
	FSIG_ALG_ED25519 = 1,
	FSIG_ALG_P256 = 2,
};

struct fsig_key;

/* "ed25519" or "p256" (NULL for an unknown value). */
const char *fsig_alg_name(enum fsig_alg alg);

/* Parse "ed25519" or "p256" (also "ecdsa-p256", "prime256v1").
 * FL_EINVAL for anything else. */
int fsig_alg_parse(const char *s, enum fsig_alg *ret, struct fl_error *err);

/* Generate a fresh key pair.  Caller frees with fsig_key_free. */
int fsig_key_generate(enum fsig_alg alg, struct fsig_key **ret,
		      struct fl_error *err);

/*
 * Load a private key.  @spec is either a path to an unencrypted PEM
 * private key (PKCS#8 or traditional) or a PKCS#11 URI starting with
 * "pkcs11:" (see fsig_key_load_pkcs11).  The key must be Ed25519 or
 * P-256, else FL_EINVAL.  FL_ENOTFOUND when the file does not exist,
 * FL_EPARSE when it holds no usable key.
 */
int fsig_key_load_private(const char *spec, struct fsig_key **ret,
			  struct fl_error *err);

/*
 * Load a private key from a PKCS#11 token through OpenSSL's "pkcs11"
 * engine (libengine-pkcs11-openssl).  @uri is an RFC 7512 URI such as
 * "pkcs11:token=ci;object=fleet-sign;type=private?pin-value=1234".
 * The query attribute "module-path=/path/to/module.so" selects the
 * PKCS#11 module and is removed before the URI reaches the engine;
 * without it FLEET_PKCS11_MODULE is used, else the engine's default
 * (p11-kit).  A PIN may come from "pin-value=" in the URI or from the
 * environment variable FLEET_PKCS11_PIN.  Only P-256 keys are supported
 * here (the engine has no EdDSA).  FL_EINVAL for a malformed URI,
 * FL_ENOTFOUND when the engine or key cannot be loaded.
 */
int fsig_key_load_pkcs11(const char *uri, struct fsig_key **ret,
			 struct fl_error *err);

/* Load a public key from a PEM file ("-----BEGIN PUBLIC KEY-----"). */
int fsig_key_load_public(const char *path, struct fsig_key **ret,
			 struct fl_error *err);

/* Public key from DER SubjectPublicKeyInfo bytes (at most FSIG_SPKI_MAX).
 * FL_EPARSE when malformed, FL_EINVAL for an unsupported algorithm. */
int fsig_key_from_spki(const unsigned char *der, size_t len,
		       struct fsig_key **ret, struct fl_error *err);

/* Public key from PEM text in memory (at most 4 KiB). */
int fsig_key_from_public_pem(const char *pem, size_t len, struct fsig_key **ret,
			     struct fl_error *err);

/*
 * Write the private key as PKCS#8 PEM to @path (mode 0600, atomically,
 * refusing to replace an existing file: FL_ECONFLICT).  FL_EINVAL for a
 * public-only or token key.
 */
int fsig_key_save_private(const struct fsig_key *key, const char *path,
			  struct fl_error *err);

/* Write the public key as PEM to @path (mode 0644, atomically). */
int fsig_key_save_public(const struct fsig_key *key, const char *path,
			 struct fl_error *err);

/* The public key as PEM text; caller frees. */
char *fsig_key_public_pem(const struct fsig_key *key);

/* The key id: 64 lowercase hex characters, owned by @key. */
const char *fsig_key_id(const struct fsig_key *key);

/* The key's algorithm. */
enum fsig_alg fsig_key_alg(const struct fsig_key *key);

/* True when @key can sign (file or PKCS#11 private key). */
bool fsig_key_has_private(const struct fsig_key *key);

/* DER SubjectPublicKeyInfo of @key, owned by @key, *ret_len bytes. */
const unsigned char *fsig_key_spki(const struct fsig_key *key, size_t *ret_len);

/* Largest signature @key can produce, in bytes. */
size_t fsig_key_sig_max(const struct fsig_key *key);

/*
 * Sign @len bytes of @data (at most FSIG_DATA_MAX) under @domain.  Writes
 * the raw signature into @sig (FSIG_SIG_MAX bytes) and its length into
 * *ret_len.  FL_EINVAL when @key has no private part.
 */
int fsig_sign(const struct fsig_key *key, const char *domain, const void *data,
	      size_t len, unsigned char sig[FSIG_SIG_MAX], size_t *ret_len,
	      struct fl_error *err);

/*
 * Check @sig over @domain || NUL || @data with @key.  Returns 0 when
 * valid and FL_EVERIFY (naming the key id) when not.
 */
int fsig_verify(const struct fsig_key *key, const char *domain,
		const void *data, size_t len, const unsigned char *sig,
		size_t siglen, struct fl_error *err);

/* Free a key (wiping private material).  NULL is fine. */
void fsig_key_free(struct fsig_key *key);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef FL_PKI_H
#define FL_PKI_H

/*
 * PKI helpers for Fleet's private CA (DESIGN §3, docs/pki.md): P-256
 * keys, a self-signed root, an issuing CA, server and client leaf
 * certificates built from server policy, CSRs, CRLs and a thread-safe
 * verifier.  OpenSSL 3 non-deprecated APIs only.
 *
 * Ownership, everywhere in this header:
 *  - `EVP_PKEY **ret_*`, `X509 **ret_*`, `X509_CRL **ret_*`: on success
 *    the caller owns one new reference and frees it with EVP_PKEY_free,
 *    X509_free or X509_CRL_free; `STACK_OF(X509) **ret_chain` is freed
 *    with fl_pki_chain_free.  Out-parameters are written only on
 *    success and left untouched on failure (one exception: @ret_verr of
 *    the verify calls, which also reports why verification failed).
 *  - `EVP_PKEY *`, `X509 *`, `X509_CRL *` and struct fl_pki_issuer
 *    arguments are borrowed: the function neither frees them nor keeps a
 *    pointer after returning.  Where only a public key is needed
 *    (@pubkey) a full key pair may be passed; only its public half is
 *    read.
 *  - `char **ret_pem`, `unsigned char **ret_der`: allocated with
 *    fl_xmalloc, the caller frees with free() (fl_free_secret for
 *    private keys).
 * Every function returns 0 or an enum fl_err code and records a message
 * in @err (may be NULL).  Allocation failures inside OpenSSL are
 * reported as FL_ERR, not as aborts.
 *
 * Thread safety: all functions are safe to call from several threads on
 * different objects.  EVP_PKEY and X509 objects may be shared read-only
 * between threads (OpenSSL 3 guarantees this for signing and
 * verifying).  A struct fl_pki_verifier may be used by any number of
 * threads at once, including while it is reloaded.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "err.h"

/* Size caps for untrusted or on-disk input. */
#define FL_PKI_PEM_MAX (64 * 1024)	      /* key, cert, chain, CA files */
#define FL_PKI_CSR_MAX (16 * 1024)	      /* a CSR in PEM */
#define FL_PKI_DER_MAX (16 * 1024)	      /* one DER certificate */
#define FL_PKI_CRL_FILE_MAX (8 * 1024 * 1024) /* a CRL file */
#define FL_PKI_CRL_ENTRIES_MAX 100000	      /* revoked serials per CRL */
#define FL_PKI_CHAIN_MAX 8		      /* certificates per file */
#define FL_PKI_SAN_MAX 32		      /* DNS + IP names per cert */
#define FL_PKI_DNS_MAX 253		      /* one DNS name */

/* Text sizes: FL_PKI_CN_MAX excludes the NUL, the others include it. */
#define FL_PKI_CN_MAX 64	 /* longest CN in bytes (X.520 ub) */
#define FL_PKI_SERIAL_HEX_MAX 41 /* serials up to 20 bytes, as hex */
#define FL_PKI_FPR_HEX 65	 /* SHA-256 fingerprint, hex */

/* Lifetimes in seconds: defaults for fleetd's policy (docs/pki.md). */
#define FL_PKI_DAY (24 * 60 * 60)
#define FL_PKI_ROOT_LIFETIME (20 * 365 * (int64_t)FL_PKI_DAY)
#define FL_PKI_ISSUING_LIFETIME (5 * 365 * (int64_t)FL_PKI_DAY)
#define FL_PKI_SERVER_LIFETIME (365 * (int64_t)FL_PKI_DAY)
#define FL_PKI_DEVICE_LIFETIME (30 * (int64_t)FL_PKI_DAY)
#define FL_PKI_CRL_LIFETIME (30 * (int64_t)FL_PKI_DAY)
#define FL_PKI_LIFETIME_MAX (30 * 365 * (int64_t)FL_PKI_DAY)

/*
 * notBefore is set this far before "now" to absorb clock skew between
 * the issuer and the verifier; notAfter is always now + lifetime, so a
 * two-minute certificate is usable for two minutes after issue.
 */
#define FL_PKI_BACKDATE_LEAF 60 /* seconds, leaves and CRL thisUpdate */
#define FL_PKI_BACKDATE_CA 3600 /* seconds, root and issuing CA */

/* ------------------------------------------------------------------ */
/* Keys                                                               */
/* ------------------------------------------------------------------ */

/* Generate a new ECDSA P-256 key pair into *@ret_key.  FL_ERR on
 * failure. */
int fl_pki_keygen_p256(EVP_PKEY **ret_key, struct fl_error *err);

/* True when @key is an EC key on the P-256 (prime256v1) curve. */
bool fl_pki_key_is_p256(const EVP_PKEY *key);

/*
 * Write @key's private key to @path as unencrypted PEM PKCS#8
 * ("BEGIN PRIVATE KEY"), atomically (fl_write_atomic) with mode 0600.
 * Intermediate buffers are wiped.  FL_EINVAL when @key has no private
 * part, FL_EIO on write failure.
 */
int fl_pki_key_save(const char *path, EVP_PKEY *key, struct fl_error *err);

/* The same PEM as a NUL-terminated string in *@ret_pem (for archives).
 * Free it with fl_free_secret(). */
int fl_pki_key_to_pem(EVP_PKEY *key, char **ret_pem, struct fl_error *err);

/*
 * Load an unencrypted PEM private key (PKCS#8 or traditional EC) from
 * @path (at most FL_PKI_PEM_MAX bytes) or from @len bytes at @pem.
 * Encrypted keys are refused (never prompts).  FL_ENOTFOUND, FL_EIO,
 * FL_ELIMIT from reading; FL_EPARSE when no key can be decoded.
 */
int fl_pki_key_load(const char *path, EVP_PKEY **ret_key, struct fl_error *err);
int fl_pki_key_from_pem(const char *pem, size_t len, EVP_PKEY **ret_key,
			struct fl_error *err);

/* Load a PEM public key ("BEGIN PUBLIC KEY") from @path.  Codes as
 * fl_pki_key_load. */
int fl_pki_pubkey_load(const char *path, EVP_PKEY **ret_key,
		       struct fl_error *err);

/* Write @key's public key as PEM to @path atomically, mode 0644. */
int fl_pki_pubkey_save(const char *path, EVP_PKEY *key, struct fl_error *err);

/*
 * 0 when @key's public half equals @cert's public key (so a private key
 * belongs to the certificate); FL_EVERIFY when it does not.  Only public
 * halves are compared: a public-only @key that matches also returns 0.
 */
int fl_pki_key_matches_cert(EVP_PKEY *key, X509 *cert, struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Certificates: files, PEM and DER                                   */
/* ------------------------------------------------------------------ */

/*
 * Load the first PEM certificate from @path (at most FL_PKI_PEM_MAX
 * bytes) or from @len bytes at @pem.  FL_ENOTFOUND, FL_EIO, FL_ELIMIT
 * from reading; FL_EPARSE when there is no certificate.
 */
int fl_pki_cert_load(const char *path, X509 **ret_cert, struct fl_error *err);
int fl_pki_cert_from_pem(const char *pem, size_t len, X509 **ret_cert,
			 struct fl_error *err);

/*
 * Load every PEM certificate in @path (a chain or CA bundle, in file
 * order) into a new stack in *@ret_chain; free it with
 * fl_pki_chain_free().  FL_EPARSE when the file holds none or a
 * malformed one, FL_ELIMIT for more than FL_PKI_CHAIN_MAX.
 */
int fl_pki_chain_load(const char *path, STACK_OF(X509) **ret_chain,
		      struct fl_error *err);
int fl_pki_chain_from_pem(const char *pem, size_t len,
			  STACK_OF(X509) **ret_chain, struct fl_error *err);

/* Free a stack from fl_pki_chain_load and every certificate in it;
 * NULL is fine. */
void fl_pki_chain_free(STACK_OF(X509) *chain);

/* @cert as PEM ("BEGIN CERTIFICATE"), NUL-terminated, in *@ret_pem. */
int fl_pki_cert_to_pem(X509 *cert, char **ret_pem, struct fl_error *err);

/* Write @n (1..FL_PKI_CHAIN_MAX, else FL_EINVAL) certificates as
 * concatenated PEM to @path atomically with mode 0644 (a single cert:
 * @n = 1; a chain or CA bundle: leaf or issuing CA first). */
int fl_pki_cert_save(const char *path, X509 *const *certs, size_t n,
		     struct fl_error *err);

/*
 * Decode one DER certificate of @len bytes (at most FL_PKI_DER_MAX;
 * FL_ELIMIT above).  Trailing bytes after the certificate are refused
 * (FL_EPARSE), as is anything that does not decode.
 */
int fl_pki_cert_from_der(const unsigned char *der, size_t len, X509 **ret_cert,
			 struct fl_error *err);

/* The DER encoding of @cert in *@ret_der (free()), length in *@ret_len. */
int fl_pki_cert_to_der(X509 *cert, unsigned char **ret_der, size_t *ret_len,
		       struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Certificate information                                            */
/* ------------------------------------------------------------------ */

struct fl_pki_cert_info {
	/* Serial as lowercase hex, two digits per byte, no leading zero
	 * bytes ("0a" for 10); the form fl_pki_crl_build accepts. */
	char serial[FL_PKI_SERIAL_HEX_MAX];
	/* The subject's single commonName, UTF-8. */
	char cn[FL_PKI_CN_MAX + 1];
	time_t not_before, not_after;
	/* SHA-256 of the DER certificate, 64 lowercase hex digits. */
	char sha256[FL_PKI_FPR_HEX];
	/* basicConstraints CA:TRUE. */
	bool is_ca;
};

/*
 * Fill *@ret with @cert's serial, CN, validity, fingerprint and CA flag.
 * FL_EPARSE when the subject has no CN, more than one CN, a CN with a
 * NUL byte or longer than FL_PKI_CN_MAX, or the serial is negative or
 * longer than 20 bytes.
 */
int fl_pki_cert_info(X509 *cert, struct fl_pki_cert_info *ret,
		     struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Certificate authority                                              */
/* ------------------------------------------------------------------ */

/*
 * A CA able to sign: its certificate and private key.  Both pointers
 * are owned by whoever filled the struct: fl_pki_issuer_load fills it
 * with new references that fl_pki_issuer_release frees; a caller that
 * fills it by hand keeps ownership and must not call release.
 */
struct fl_pki_issuer {
	X509 *cert;
	EVP_PKEY *key;
};

/*
 * Load a CA certificate and its private key and check that they match
 * and that the certificate is a CA allowed to sign certificates and
 * CRLs.  FL_EVERIFY when the key does not match, FL_EINVAL when the
 * certificate is not a CA; loading codes as fl_pki_cert_load.
 */
int fl_pki_issuer_load(const char *cert_path, const char *key_path,
		       struct fl_pki_issuer *ret, struct fl_error *err);

/* Free what fl_pki_issuer_load loaded and zero *@issuer; NULL is fine. */
void fl_pki_issuer_release(struct fl_pki_issuer *issuer);

/*
 * Create a self-signed root CA certificate for @key (P-256 with private
 * part) with subject CN=@cn (printable, 1..64 bytes), valid from now -
 * FL_PKI_BACKDATE_CA to now + @lifetime_s (1..FL_PKI_LIFETIME_MAX).
 * Extensions: basicConstraints critical CA:TRUE, pathlen:1; keyUsage
 * critical keyCertSign, cRLSign; subjectKeyIdentifier;
 * authorityKeyIdentifier (keyid).  Random serial (see docs/pki.md).
 * FL_EINVAL for a bad key, CN or lifetime.
 */
int fl_pki_root_create(EVP_PKEY *key, const char *cn, int64_t lifetime_s,
		       X509 **ret_cert, struct fl_error *err);

/*
 * Create an issuing (intermediate) CA certificate for @pubkey (P-256;
 * only its public part is used), signed by @root: CN=@cn, CA:TRUE
 * critical with pathlen:0, keyUsage critical keyCertSign, cRLSign, SKI,
 * AKI.  notAfter is capped at the root's notAfter.  Codes as
 * fl_pki_root_create.
 */
int fl_pki_issuing_create(const struct fl_pki_issuer *root, EVP_PKEY *pubkey,
			  const char *cn, int64_t lifetime_s, X509 **ret_cert,
			  struct fl_error *err);

enum fl_pki_kind {
	FL_PKI_SERVER = 1, /* TLS server: HTTPS API, MQTT broker */
	FL_PKI_CLIENT = 2, /* TLS client: devices, fleetd's MQTT client */
};

/*
 * What a leaf certificate contains, decided by the server alone.  All
 * pointers are borrowed for the duration of the call.
 */
struct fl_pki_policy {
	enum fl_pki_kind kind;
	/* Subject CN.  FL_PKI_CLIENT: must pass fl_valid_id (it becomes the
	 * broker username, DESIGN §5).  FL_PKI_SERVER: printable ASCII,
	 * 1..64 bytes. */
	const char *cn;
	/* subjectAltName entries: @n_dns DNS names (letters, digits, '-'
	 * and '.' labels, at most FL_PKI_DNS_MAX bytes; "localhost" is
	 * fine; no wildcards) and @n_ips IPv4/IPv6 literals ("127.0.0.1",
	 * "::1").  At most FL_PKI_SAN_MAX in total.  With none, the
	 * certificate has no SAN extension. */
	const char *const *dns;
	size_t n_dns;
	const char *const *ips;
	size_t n_ips;
	/* 1..FL_PKI_LIFETIME_MAX seconds from now (FL_PKI_DEVICE_LIFETIME,
	 * tests use 120). */
	int64_t lifetime_s;
};

/*
 * Issue a leaf certificate for @pubkey (P-256; the public part of a key
 * or the key from fl_pki_csr_parse) signed by @ca (the issuing CA; the
 * root is not needed).  Subject is CN=@pol->cn only.  Extensions come
 * from the policy only: basicConstraints critical CA:FALSE; keyUsage
 * critical digitalSignature, keyAgreement; extendedKeyUsage serverAuth
 * (FL_PKI_SERVER) or clientAuth (FL_PKI_CLIENT); subjectAltName when
 * names are given; SKI; AKI.  Validity: now - FL_PKI_BACKDATE_LEAF to
 * now + lifetime, capped at @ca's notAfter.  Random serial.  FL_EINVAL
 * for a bad key, kind, CN, name or lifetime; FL_ELIMIT over
 * FL_PKI_SAN_MAX names.
 */
int fl_pki_leaf_issue(const struct fl_pki_issuer *ca,
		      const struct fl_pki_policy *pol, EVP_PKEY *pubkey,
		      X509 **ret_cert, struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Certificate signing requests                                       */
/* ------------------------------------------------------------------ */

/*
 * Create a PEM CSR ("BEGIN CERTIFICATE REQUEST") with subject CN=@cn
 * (printable, 1..64 bytes) and no extensions, signed with @key (any key
 * type OpenSSL signs with; fleetd accepts only P-256).  Used by the
 * agent and `fleetctl provision`.
 */
int fl_pki_csr_create(EVP_PKEY *key, const char *cn, char **ret_pem,
		      struct fl_error *err);

/* Flags for fl_pki_csr_parse. */
#define FL_PKI_CSR_DEVICE_ID 0x1u /* the CN must pass fl_valid_id */

/*
 * Parse an untrusted PEM CSR of @len bytes and check it, in this order:
 *   FL_ELIMIT   @len > FL_PKI_CSR_MAX
 *   FL_EPARSE   not a PEM CSR (garbage, truncated, wrong PEM type)
 *   FL_EINVAL   the key is not P-256 or not a valid point
 *   FL_EVERIFY  the self-signature does not verify
 *   FL_EINVAL   no CN, several CNs, an empty, over-long or NUL-bearing
 *               CN; with FL_PKI_CSR_DEVICE_ID a CN that is not a valid
 *               device id; with @want_cn != NULL a CN different from
 *               @want_cn (a CSR for another device)
 * On success the CN is copied to @ret_cn and, if @ret_pubkey is not
 * NULL, the public key is returned in *@ret_pubkey (caller frees).
 * Nothing else from the CSR (other subject attributes, requested
 * extensions, attributes) is returned or ever used.
 */
int fl_pki_csr_parse(const char *pem, size_t len, const char *want_cn,
		     unsigned flags, char ret_cn[static FL_PKI_CN_MAX + 1],
		     EVP_PKEY **ret_pubkey, struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Certificate revocation lists                                       */
/* ------------------------------------------------------------------ */

struct fl_pki_revoked {
	const char *serial; /* hex, 1..40 digits, either case, non-zero */
	time_t when;	    /* revocation time */
};

/*
 * Build a v2 CRL signed by @ca (the issuing CA key and cert only) that
 * lists @n entries (at most FL_PKI_CRL_ENTRIES_MAX; @list may be NULL
 * when @n is 0, giving an empty CRL).  thisUpdate = now -
 * FL_PKI_BACKDATE_LEAF, nextUpdate = now + @next_update_s (1 s ..
 * FL_PKI_LIFETIME_MAX); crlNumber = @crl_number, which must grow with
 * every CRL fleetd publishes; authorityKeyIdentifier from @ca.
 * Verifiers refuse every certificate once nextUpdate has passed, so
 * regenerate well before then.  FL_EINVAL for a bad serial, number or
 * period, FL_ELIMIT for too many entries.
 */
int fl_pki_crl_build(const struct fl_pki_issuer *ca,
		     const struct fl_pki_revoked *list, size_t n,
		     uint64_t crl_number, int64_t next_update_s,
		     X509_CRL **ret_crl, struct fl_error *err);

/* Write @crl as PEM ("BEGIN X509 CRL") to @path atomically, mode 0644
 * (the form mosquitto's `crlfile` reads). */
int fl_pki_crl_save(const char *path, X509_CRL *crl, struct fl_error *err);

/* Load a PEM CRL from @path (at most FL_PKI_CRL_FILE_MAX bytes).
 * Codes as fl_pki_cert_load. */
int fl_pki_crl_load(const char *path, X509_CRL **ret_crl, struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Verification                                                       */
/* ------------------------------------------------------------------ */

enum fl_pki_purpose {
	FL_PKI_PURPOSE_CLIENT = 1, /* requires extendedKeyUsage clientAuth */
	FL_PKI_PURPOSE_SERVER = 2, /* requires extendedKeyUsage serverAuth */
};

/* Opaque: trusted CA certificates and an optional CRL, loaded once. */
struct fl_pki_verifier;

/*
 * Load the CA certificates in @ca_file (PEM, the issuing CA and the root
 * certificate; every one is trusted) and, when @crl_file is not NULL,
 * every PEM CRL in it (at most FL_PKI_CHAIN_MAX: one per issuing CA),
 * and enable revocation checking of the leaf (X509_V_FLAG_CRL_CHECK):
 * a leaf whose issuer has no CRL in the file is then refused.  Each
 * CRL's signature must verify against one of the CA certificates
 * (FL_EVERIFY otherwise).  Chains must end at a
 * self-signed root in @ca_file: a file with only the issuing CA makes
 * every verification fail ("unable to get issuer certificate"), as it
 * does for mosquitto's cafile (docs/pki.md).  Free with
 * fl_pki_verifier_free().  Loading codes as fl_pki_chain_load and
 * fl_pki_crl_load.
 */
int fl_pki_verifier_new(const char *ca_file, const char *crl_file,
			struct fl_pki_verifier **ret_verifier,
			struct fl_error *err);

/* Free a verifier (no thread may be using it); NULL is fine. */
void fl_pki_verifier_free(struct fl_pki_verifier *v);

/*
 * Re-read the CA and CRL files and switch to them atomically: calls in
 * progress finish with the old set, later calls use the new one.  On
 * failure the old set stays in use and the load error is returned.
 * Call it after writing a new CRL.
 */
int fl_pki_verifier_reload(struct fl_pki_verifier *v, struct fl_error *err);

/*
 * As fl_pki_verifier_reload, but only when either file's inode, size or
 * mtime changed since the last load (fl_write_atomic replaces the inode).
 * Costs two stat() calls when nothing changed; *@ret_reloaded (may be
 * NULL) tells whether a reload happened.
 */
int fl_pki_verifier_refresh(struct fl_pki_verifier *v, bool *ret_reloaded,
			    struct fl_error *err);

/*
 * Verify as if the time were @at from now on (0: the current time, the
 * default).  For tests, which inject time instead of sleeping, and for
 * asking "is it still valid then?".  Thread-safe.
 */
void fl_pki_verifier_set_time(struct fl_pki_verifier *v, time_t at);

/*
 * Verify @cert against the verifier's CAs (and CRL) at the current time
 * (or the one fl_pki_verifier_set_time set) for @purpose, with strict X.509 checks.  Returns 0 when valid, or
 * FL_EDENIED with OpenSSL's reason in @err ("certificate revoked",
 * "certificate has expired", "unable to get local issuer certificate",
 * "unsupported certificate purpose", "CRL has expired", ...).  When
 * @ret_verr is not NULL it receives the X509_V_ERR_* code (X509_V_OK on
 * success; set on FL_EDENIED too).  FL_EINVAL for an unknown @purpose,
 * FL_ERR for internal failures.
 * Thread-safe and cheap: no file I/O.
 */
int fl_pki_verify_cert(struct fl_pki_verifier *v, X509 *cert,
		       enum fl_pki_purpose purpose, int *ret_verr,
		       struct fl_error *err);

/*
 * fl_pki_verify_cert on a DER certificate (as a TLS library hands it
 * over), then, when @ret_info is not NULL, fl_pki_cert_info on it, so
 * the caller learns the verified device id from ret_info->cn.  Adds
 * FL_EPARSE / FL_ELIMIT from fl_pki_cert_from_der.
 */
int fl_pki_verify_der(struct fl_pki_verifier *v, const unsigned char *der,
		      size_t len, enum fl_pki_purpose purpose,
		      struct fl_pki_cert_info *ret_info, int *ret_verr,
		      struct fl_error *err);

#endif

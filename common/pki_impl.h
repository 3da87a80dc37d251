/* SPDX-License-Identifier: MIT */
#ifndef FL_PKI_IMPL_H
#define FL_PKI_IMPL_H

/*
 * Helpers shared by pki.c, pki_ca.c and pki_crl.c.  Not part of the
 * pki.h contract: include this header only from those files.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/x509.h>

#include "err.h"
#include "pki.h"

/* PEM passphrase callback that always fails: never prompt. */
int fl_pki__no_passphrase(char *buf, int size, int rwflag, void *u);

/* A read-only memory BIO over @len bytes (FL_ELIMIT over INT_MAX). */
int fl_pki__mem_bio(const void *data, size_t len, BIO **ret,
		    struct fl_error *err);

/* A memory BIO's content as a new NUL-terminated string (free()). */
char *fl_pki__bio_str(BIO *b, size_t *ret_len);

/* Read @path (at most @max bytes), parse it with @parse, wipe the
 * buffer; errors are prefixed with the path. */
int fl_pki__load_file(const char *path, size_t max,
		      int (*parse)(const char *, size_t, void **,
				   struct fl_error *),
		      void **ret, struct fl_error *err);

/* Encode @obj with @write_fn into memory and write it atomically. */
int fl_pki__save_pem(const char *path, mode_t mode,
		     int (*write_fn)(BIO *, const void *), const void *obj,
		     struct fl_error *err);

/* The single commonName of @name; failures return @code. */
int fl_pki__get_cn(const X509_NAME *name, char out[FL_PKI_CN_MAX + 1], int code,
		   struct fl_error *err);

/* An ASN1_TIME as time_t (FL_EPARSE when malformed). */
int fl_pki__time(const ASN1_TIME *t, time_t *ret, struct fl_error *err);

/* A CN we put into certificates or CSRs: printable ASCII, 1..64. */
bool fl_pki__valid_cn(const char *cn);

/* 1 s .. FL_PKI_LIFETIME_MAX, else FL_EINVAL. */
int fl_pki__check_lifetime(int64_t s, struct fl_error *err);

/* An issuer with a P-256 key matching its certificate, else FL_EINVAL. */
int fl_pki__check_issuer(const struct fl_pki_issuer *ca, struct fl_error *err);

#endif

/* CRL file -> sorted set of revoked serials (see crlset.h). */
#include "crlset.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

static int cmp_serial(const void *a, const void *b)
{
	return ASN1_INTEGER_cmp(*(ASN1_INTEGER *const *)a,
				*(ASN1_INTEGER *const *)b);
}

void fr_crlset_free(struct fr_crlset *s)
{
	for (size_t i = 0; i < s->n; i++)
		ASN1_INTEGER_free(s->serials[i]);
	free(s->serials);
	s->serials = NULL;
	s->n = 0;
}

static X509_CRL *read_crl(const char *path, const char **why)
{
	struct stat st;
	X509_CRL *crl = NULL;
	FILE *f = fopen(path, "r");

	if (!f) {
		*why = "cannot open the CRL file";
		return NULL;
	}
	if (fstat(fileno(f), &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > FR_CRL_MAX_BYTES)
		*why = "the CRL file is not a regular file or is too big";
	else if (!(crl = PEM_read_X509_CRL(f, NULL, NULL, NULL)))
		*why = "the CRL file is not a PEM CRL";
	fclose(f);
	return crl;
}

static int copy_serials(X509_CRL *crl, struct fr_crlset *out,
			const char **why)
{
	STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
	int n = rev ? sk_X509_REVOKED_num(rev) : 0;

	if (n > FR_CRL_MAX_ENTRIES) {
		*why = "the CRL has too many entries";
		return -1;
	}
	out->serials = calloc(n ? (size_t)n : 1, sizeof(*out->serials));
	if (!out->serials) {
		*why = "out of memory";
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const ASN1_INTEGER *sn =
			X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(rev, i));
		if (!(out->serials[out->n] = ASN1_INTEGER_dup(sn))) {
			*why = "out of memory";
			return -1;
		}
		out->n++;
	}
	qsort(out->serials, out->n, sizeof(*out->serials), cmp_serial);
	return 0;
}

int fr_crlset_load(const char *path, struct fr_crlset *out, const char **why)
{
	X509_CRL *crl;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!(crl = read_crl(path, why)))
		return -1;
	rc = copy_serials(crl, out, why);
	X509_CRL_free(crl);
	if (rc)
		fr_crlset_free(out);
	return rc;
}

int fr_crlset_has(const struct fr_crlset *s, const ASN1_INTEGER *serial)
{
	if (!serial || !s->n)
		return 0;
	return bsearch(&serial, s->serials, s->n, sizeof(*s->serials),
		       cmp_serial) != NULL;
}

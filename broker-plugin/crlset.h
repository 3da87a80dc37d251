/* The set of revoked serials of one CRL file, for the broker plugin.
 * Bounded: files over FR_CRL_MAX_BYTES or with more than FR_CRL_MAX_ENTRIES
 * entries are refused (the caller keeps its previous set). */
#ifndef FLEET_CRLSET_H
#define FLEET_CRLSET_H

#include <stddef.h>
#include <openssl/asn1.h>

#define FR_CRL_MAX_BYTES (32L * 1024 * 1024)
#define FR_CRL_MAX_ENTRIES 250000

struct fr_crlset {
	ASN1_INTEGER **serials;	/* sorted by ASN1_INTEGER_cmp */
	size_t n;
};

/* Load @path (PEM CRL) into @out; 0 on success, -1 on any error (then @out
 * is left empty).  @why gets a short static reason on error. */
int fr_crlset_load(const char *path, struct fr_crlset *out, const char **why);
int fr_crlset_has(const struct fr_crlset *s, const ASN1_INTEGER *serial);
void fr_crlset_free(struct fr_crlset *s);

#endif

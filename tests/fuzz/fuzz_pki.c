/* SPDX-License-Identifier: MIT */
/*
 * Fuzz certificate handling (common/pki*.c) where its input is
 * untrusted: the CSR a device sends to enrol or re-enrol, which fleetd
 * turns into a certificate from its own policy (srv_ca_issue_device,
 * server-stub/ca.c); the client certificate fleetd's HTTPS side checks
 * in DER (fl_pki_verify_der); PEM certificates, chains and keys the
 * agent and fleetctl load; and the CRL files the verifier reads.
 *
 * Input, separated by "%%" lines (fuzz.h): PEM text, a DER certificate,
 * optionally a device id to enrol as (default: the CSR's CN).
 *
 * Two CAs: a fleetd state dir made at start-up (srv_init_state) issues
 * the certificates
 * (what we issue, our verifier must accept), and the committed fleetd
 * CA of tests/fuzz/data/pki-*.pem (with its CRL, at the time in
 * data/pki-now) judges the DER certificates, so that the seed device
 * certificates it issued verify, and its revoked one is refused.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ca.h"
#include "fuzz.h"
#include "fuzz_data.h"
#include "pki.h"
#include "srv.h"
#include "util.h"
#include "validate.h"

static struct srv_ca *ca;	      /* issues */
static struct fl_pki_verifier *judge; /* the committed CA */
static char *ca_file, *crl_file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_tmpdir();
	char *state = fl_path_join(dir, "state");
	struct fl_error err = {0};
	char *now, *token = NULL;

	(void)argc;
	(void)argv;
	fuzz_log_setup();
	ca_file = fl_path_join(dir, "pki-ca.pem");
	crl_file = fl_path_join(dir, "pki-crl.pem");
	fuzz_write_file(ca_file, fuzz_data_pki_ca_pem,
			fuzz_data_pki_ca_pem_len);
	fuzz_write_file(crl_file, fuzz_data_pki_crl_pem,
			fuzz_data_pki_crl_pem_len);
	now =
	    fl_xstrndup((const char *)fuzz_data_pki_now, fuzz_data_pki_now_len);
	if (fl_pki_verifier_new(ca_file, crl_file, &judge, &err) ||
	    srv_init_state(state, NULL, 0, NULL, &token, &err) ||
	    srv_ca_open(state, FL_PKI_DEVICE_LIFETIME, NULL, &ca, &err)) {
		fprintf(stderr, "fuzz_pki: %s\n", err.msg);
		abort();
	}
	fl_pki_verifier_set_time(judge, (time_t)strtoll(now, NULL, 10));
	free(now);
	free(state);
	fl_free_secret(token);
	return 0;
}

static void check_info(X509 *cert)
{
	struct fl_pki_cert_info info;

	if (fl_pki_cert_info(cert, &info, NULL))
		return;
	FUZZ_ASSERT(strlen(info.cn) <= FL_PKI_CN_MAX);
	FUZZ_ASSERT(strlen(info.serial) < FL_PKI_SERIAL_HEX_MAX);
	FUZZ_ASSERT(strlen(info.sha256) == 64);
}

/* An enrolment: CSR in, certificate out, and it verifies. */
static void enrol(const char *pem, size_t len, const char *want_id)
{
	char cn[FL_PKI_CN_MAX + 1];
	const char *id = want_id, *text;
	struct srv_issued iss = {0};
	struct fl_pki_cert_info info;
	unsigned char *der = NULL;
	size_t dlen = 0;
	X509 *cert = NULL;
	int rc;

	if (!memmem(pem, len, "REQUEST-----", 12))
		return; /* see pem_things */
	rc = fl_pki_csr_parse(pem, len, NULL, 0, cn, NULL, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_EINVAL ||
			    rc == FL_EVERIFY || rc == FL_ELIMIT);
		return;
	}
	FUZZ_ASSERT(fl_valid_text(cn, FL_PKI_CN_MAX));
	if (!id)
		id = cn;
	if (!fl_valid_id(id))
		return; /* the API refuses it before the CA sees it */
	rc = srv_ca_issue_device(ca, pem, len, id, false, &iss, NULL);
	if (rc) {
		FUZZ_ASSERT(rc == FL_EINVAL && !fl_streq(cn, id));
		return;
	}
	FUZZ_ASSERT(fl_streq(cn, id));
	/* the certificate we issue is one we accept, for that device */
	text = json_string_value(json_object_get(iss.json, "cert"));
	FUZZ_ASSERT(text != NULL);
	FUZZ_ASSERT(fl_pki_cert_from_pem(text, strlen(text), &cert, NULL) == 0);
	FUZZ_ASSERT(fl_pki_cert_to_der(cert, &der, &dlen, NULL) == 0);
	FUZZ_ASSERT(fl_pki_verify_der(ca->verifier, der, dlen,
				      FL_PKI_PURPOSE_CLIENT, &info, NULL,
				      NULL) == 0);
	FUZZ_ASSERT(fl_streq(info.cn, id) && fl_streq(info.serial, iss.serial));
	free(der);
	X509_free(cert);
	srv_issued_release(&iss);
}

/* PEM certificates, chains, keys, CRLs. */
static void pem_things(const char *pem, size_t len)
{
	STACK_OF(X509) *chain = NULL;
	struct fl_pki_verifier *v = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;

	/* OpenSSL 3's PEM readers set up its decoders on every call, which
	 * costs more than the parse: only ask those that can find their
	 * label (they look for it first anyway) */
	if (!memmem(pem, len, "-----BEGIN ", 11))
		return;
	if (memmem(pem, len, "KEY-----", 8) &&
	    fl_pki_key_from_pem(pem, len, &key, NULL) == 0)
		EVP_PKEY_free(key);
	if (!memmem(pem, len, "CERTIFICATE-----", 16))
		goto crl;
	if (fl_pki_cert_from_pem(pem, len, &cert, NULL) == 0) {
		check_info(cert);
		X509_free(cert);
	}
	if (fl_pki_chain_from_pem(pem, len, &chain, NULL) == 0) {
		FUZZ_ASSERT(sk_X509_num(chain) > 0 &&
			    sk_X509_num(chain) <= FL_PKI_CHAIN_MAX);
		for (int i = 0; i < sk_X509_num(chain); i++)
			check_info(sk_X509_value(chain, i));
		fl_pki_chain_free(chain);
	}
crl:
	if (memmem(pem, len, "X509 CRL", 8)) {
		fuzz_write_file(crl_file, pem, len);
		if (fl_pki_verifier_new(ca_file, crl_file, &v, NULL) == 0)
			fl_pki_verifier_free(v);
		fuzz_write_file(crl_file, fuzz_data_pki_crl_pem,
				fuzz_data_pki_crl_pem_len);
	}
}

/* A client certificate as the TLS layer hands it over. */
static void client_cert(const unsigned char *der, size_t len)
{
	struct fl_pki_cert_info info;
	X509 *cert = NULL;
	int rc;

	if (fl_pki_cert_from_der(der, len, &cert, NULL) == 0) {
		check_info(cert);
		X509_free(cert);
	}
	rc = fl_pki_verify_der(judge, der, len, FL_PKI_PURPOSE_CLIENT, &info,
			       NULL, NULL);
	if (rc == 0)
		FUZZ_ASSERT(fl_valid_id(info.cn)); /* our CA's leaves only */
	else
		FUZZ_ASSERT(rc == FL_EDENIED || rc == FL_EPARSE ||
			    rc == FL_ELIMIT);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[3];
	size_t n = fuzz_split(data, size, parts, 3);
	char *pem = fuzz_strndup(&parts[0]), *id = NULL;

	if (n > 2)
		id = fuzz_strndup(&parts[2]);
	enrol(pem, parts[0].len, id);
	pem_things(pem, parts[0].len);
	if (n > 1)
		client_cert((const unsigned char *)parts[1].p, parts[1].len);
	free(pem);
	free(id);
	return 0;
}

/* SPDX-License-Identifier: MIT */
#ifndef SRV_CA_H
#define SRV_CA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <jansson.h>

#include "err.h"
#include "pki.h"
#include "store.h"

/*
 * fleetd's private CA (DESIGN §3, docs/pki.md).  Files in the state dir:
 *
 *   ca/root.pem  ca/root.key        root CA (key may be exported and
 *                                   removed: only issuing needs it)
 *   ca/issuing.pem  ca/issuing.key  issuing CA: signs leaves and the CRL
 *   ca/crl.pem                      CRL of the issuing CA
 *   ca/trust.pem                    issuing + root: what verifiers trust
 *   ca.pem                          root certificate: what clients pin
 *   tls/server.key  tls/server.pem  HTTPS + broker certificate (leaf
 *                                   followed by the issuing CA)
 *   mqtt/fleetd.key  mqtt/fleetd.pem  fleetd's own MQTT client identity
 */
#define SRV_CA_ROOT_CERT "ca/root.pem"
#define SRV_CA_ROOT_KEY "ca/root.key"
#define SRV_CA_ISSUING_CERT "ca/issuing.pem"
#define SRV_CA_ISSUING_KEY "ca/issuing.key"
#define SRV_CA_CRL "ca/crl.pem"
#define SRV_CA_TRUST "ca/trust.pem"
#define SRV_MQTT_CERT "mqtt/fleetd.pem"
#define SRV_MQTT_KEY "mqtt/fleetd.key"

/* fleetd's broker username; never a device id (enrolment refuses it). */
#define SRV_MQTT_USER "fleetd"
/* A replica's username is "fleetd.NAME" (fleetd serve --replica NAME):
 * a client id of its own, the rights of SRV_MQTT_USER (the broker
 * plugin grants them); enrolment refuses such ids too. */
#define SRV_MQTT_REPLICA_PREFIX SRV_MQTT_USER "."

/* Is @id fleetd's username or a replica's? */
static inline bool srv_mqtt_user_is_fleetd(const char *id)
{
	return strcmp(id, SRV_MQTT_USER) == 0 ||
	       strncmp(id, SRV_MQTT_REPLICA_PREFIX,
		       sizeof(SRV_MQTT_REPLICA_PREFIX) - 1) == 0;
}
/* Technicians' certificate CNs start with it; never a device id's start
 * (issue 12: their diag requester is their CN). */
#define SRV_TECH_PREFIX "tech-"

/* The running CA: the issuing CA's key and a verifier for client
 * certificates (issuing + root, current CRL). */
struct srv_ca {
	struct fl_pki_issuer issuing;
	struct fl_pki_verifier *verifier;
	char *root_pem;	 /* ca.pem text, for enrolment responses */
	char *chain_pem; /* issuing CA text */
	char *crl_path;
	int64_t device_lifetime;
	pthread_mutex_t crl_lock;
	/* Test failpoint, compiled only into fleetd-test (make check's
	 * -DFLEET_TEST_HOOKS build; NULL otherwise):
	 * FLEETD_FAILPOINTS="reenroll-bad-cert=ID" gives the re-enrolment
	 * of device ID a certificate from a throwaway CA, so tests can show
	 * that a bad new certificate is never adopted. */
	char *bad_cert_for;
};

/*
 * Create the CA hierarchy, the server certificate (SANs localhost,
 * 127.0.0.1, ::1 and @sans: DNS names or IP literals), fleetd's MQTT
 * client certificate and an empty CRL in @state_dir.
 */
int srv_ca_init(const char *state_dir, const char *const *sans, size_t nsans,
		struct fl_error *err);

/*
 * Reissue the server certificate (tls/server.pem, new key in
 * tls/server.key) from the issuing CA, with the default SANs and @sans,
 * the complete list of extra names (as srv_ca_init).  The issuing CA's
 * key must be present (the root key need not be).  The running fleetd
 * and its broker use the new certificate after a restart.
 */
int srv_ca_reissue_server(const char *state_dir, const char *const *sans,
			  size_t nsans, struct fl_error *err);

/*
 * Offline root: write the root CA's key and certificate to @out (one PEM
 * file, mode 0600, never overwriting) and, with @remove, delete the key
 * from the state dir afterwards.  fleetd never needs the root key to
 * run: the issuing CA signs certificates and CRLs.  FL_ENOTFOUND when the
 * key is already gone, FL_ECONFLICT when @out exists.
 */
int srv_ca_export_root(const char *state_dir, const char *out, bool remove,
		       struct fl_error *err);

/* Load the issuing CA and the verifier from @state_dir; the CRL is
 * written to @shared_crl instead of the state dir's when not NULL
 * ([ca] shared_crl: replicas share one), seeded from the state dir's
 * when it is not there yet. */
int srv_ca_open(const char *state_dir, int64_t device_lifetime,
		const char *shared_crl, struct srv_ca **ret,
		struct fl_error *err);
void srv_ca_close(struct srv_ca *ca);

/* An issued device certificate, as the API returns it. */
struct srv_issued {
	char serial[FL_PKI_SERIAL_HEX_MAX];
	char sha256[FL_PKI_FPR_HEX]; /* of the DER; "" when not our CA's */
	time_t not_before, not_after;
	json_t *json; /* {"id", "cert", "chain", "ca", "serial", "expires"} */
};

/*
 * Check an untrusted PEM CSR for device @id (P-256, self-signature, CN =
 * @id) and issue a client certificate from policy.  Its digest is set
 * only when fleetd's issuing CA signed it (always, but for a test
 * build's rogue issuer): a certificate the store knows by its digest is
 * accepted without verifying it again.  Codes of fl_pki_csr_parse
 * (FL_EPARSE, FL_EINVAL, FL_EVERIFY, FL_ELIMIT).
 */
int srv_ca_issue_device(struct srv_ca *ca, const char *csr_pem, size_t len,
			const char *id, bool reenroll, struct srv_issued *ret,
			struct fl_error *err);

/*
 * As srv_ca_issue_device for a technician's certificate (issue 12): CN
 * @cn ("tech-NAME"), living @lifetime_s seconds from now.
 */
int srv_ca_issue_tech(struct srv_ca *ca, const char *csr_pem, size_t len,
		      const char *cn, int64_t lifetime_s,
		      struct srv_issued *ret, struct fl_error *err);

/* Free what srv_ca_issue_device put in @iss. */
void srv_issued_release(struct srv_issued *iss);

/*
 * The store's CRL hook for this CA: builds and signs the CRL of the
 * entries it is given, writes it atomically and reloads the verifier
 * (serialised by a lock).  Store changes that revoke take it, so they
 * commit only once the CRL is published.
 */
struct srv_crl_hook srv_ca_crl_hook(struct srv_ca *ca);

/*
 * Rebuild the CRL from the store's revoked certificates, write it
 * atomically and reload the verifier.
 */
int srv_ca_publish_crl(struct srv_ca *ca, struct srv_store *store,
		       struct fl_error *err);

/*
 * The MQTT identity of fleetd's CN @cn (SRV_MQTT_USER, or a replica's
 * "fleetd.NAME"): its certificate and key paths, relative to
 * @state_dir (caller frees both), issued by @ca into mqtt/CN.pem and
 * mqtt/CN.key when not there yet.
 */
int srv_ca_mqtt_identity(const struct srv_ca *ca, const char *state_dir,
			 const char *cn, char **ret_cert, char **ret_key,
			 struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_IDENTITY_H
#define AGENT_IDENTITY_H

/*
 * The device's identity in its state dir (DESIGN §3, docs/protocol.md):
 *
 *   key.pem    P-256 private key, mode 0600; never leaves the device
 *   cert.pem   device certificate, CN = device id
 *   chain.pem  issuing CA certificate(s), as fleetd sent them
 *   ca.pem     trust anchor (the root) for fleetd and the broker
 *
 * A new identity is staged next to the current one as key.pem.new,
 * cert.pem.new, chain.pem.new (and ca.pem.new at enrolment), checked,
 * and committed by renames under a roll-forward marker (identity.commit):
 * after a crash agent_identity_recover either finishes the renames (the
 * marker exists: the new set was complete) or deletes the staged files
 * (it does not), so key and certificate always belong together.
 *
 * All functions take the state dir path; none keeps state between
 * calls, so any number of agents in one process can use them.
 */
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "err.h"
#include "pki.h"

#define AGENT_KEY_FILE "key.pem"
#define AGENT_CERT_FILE "cert.pem"
#define AGENT_CHAIN_FILE "chain.pem"
#define AGENT_CA_FILE "ca.pem"
#define AGENT_NEW_SUFFIX ".new"
#define AGENT_COMMIT_FILE "identity.commit"

/* Staged or current identity files (paths allocated; release frees). */
struct agent_identity_paths {
	char *key, *cert, *chain, *ca;
};

/* The paths of the current (@staged false) or staged identity in
 * @state_dir. */
void agent_identity_paths(const char *state_dir, bool staged,
			  struct agent_identity_paths *ret);
void agent_identity_paths_release(struct agent_identity_paths *p);

/*
 * Check the current identity: cert.pem and key.pem load, the key is
 * P-256 and belongs to the certificate, and the CN is @id.  Fills *@ret
 * (may be NULL) with the certificate's serial, CN and validity.
 * Returns 0, FL_ENOTFOUND (not enrolled: no cert.pem or key.pem),
 * FL_EPARSE, FL_ELIMIT, FL_EIO (unreadable files), FL_EVERIFY (key does
 * not match, or CN is not @id).
 */
int agent_identity_check(const char *state_dir, const char *id,
			 struct fl_pki_cert_info *ret, struct fl_error *err);

/*
 * Start a new identity: delete stale staged files, generate a P-256 key,
 * write it to key.pem.new (0600) and return a PEM CSR with CN=@id in
 * *@ret_csr (caller frees).  Returns 0, FL_EIO, FL_ERR.
 */
int agent_identity_stage_key(const char *state_dir, const char *id,
			     char **ret_csr, struct fl_error *err);

/*
 * Check fleetd's answer to enroll/reenroll (@resp: an object with "cert"
 * and "chain" PEM strings of at most FL_PKI_PEM_MAX bytes) and stage it:
 * the certificate must verify for client use through the chain to a
 * trust anchor in @ca_file at the current time, belong to key.pem.new,
 * and have CN = @id.  Writes cert.pem.new and chain.pem.new and fills
 * *@ret (may be NULL).  Returns 0, FL_EPARSE (missing or malformed
 * fields), FL_ELIMIT, FL_EVERIFY (chain, key or CN check failed),
 * FL_ENOTFOUND (no staged key), FL_EIO.
 */
int agent_identity_stage_cert(const char *state_dir, const char *id,
			      const char *ca_file, const json_t *resp,
			      struct fl_pki_cert_info *ret,
			      struct fl_error *err);

/* Stage a copy of the trust anchor file @ca_file as ca.pem.new (enrol:
 * the CA the operator pinned).  Codes as fl_pki_chain_load, FL_EIO. */
int agent_identity_stage_ca(const char *state_dir, const char *ca_file,
			    struct fl_error *err);

/*
 * Make the staged identity current: write the marker, rename every
 * staged file over its current name, sync the directory, remove the
 * marker.  Returns 0, FL_ENOTFOUND (nothing staged), FL_EIO.
 */
int agent_identity_commit(const char *state_dir, struct fl_error *err);

/* Delete the staged files (a failed enrolment or rotation).  Best
 * effort; never fails. */
void agent_identity_discard(const char *state_dir);

/*
 * Crash recovery, at start-up: with the marker, finish the commit; else
 * delete staged files.  *@ret_rolled_forward (may be NULL) tells which.
 * Returns 0 or FL_EIO.
 */
int agent_identity_recover(const char *state_dir, bool *ret_rolled_forward,
			   struct fl_error *err);

/*
 * When to renew a certificate valid from @not_before to @not_after: at
 * 2/3 of its life, moved by up to ±10 % of that offset by @rnd (a
 * random number; 0 gives the earliest, UINT32_MAX the latest time):
 * not_before + 2/3 * life * (0.9 .. 1.1).
 */
time_t agent_identity_renew_at(time_t not_before, time_t not_after,
			       uint32_t rnd);

/* HTTPS access to fleetd for the identity calls. */
struct agent_http_target {
	const char *server_url; /* https://HOST:PORT */
	const char *ca_file;	/* pinned trust anchor */
	long timeout_ms;	/* 0: fl_http's default */
};

/*
 * Claim-token enrolment (POST /api/v1/enroll): the key is made in
 * @state_dir (created 0700 if missing), the CSR and @token go to fleetd,
 * the answer is checked and the identity committed together with a copy
 * of @t->ca_file as ca.pem.  On success *@ret_resp (may be NULL) holds
 * fleetd's JSON answer (server_url, mqtt_url, group, ...; json_decref).
 * On failure nothing is left staged.  Returns 0, FL_ECONFLICT (already
 * enrolled: cert.pem exists), FL_EINVAL, the fl_http codes (FL_EDENIED
 * for a bad token, FL_EUNREACH, ...), the agent_identity_stage_* codes.
 */
int agent_enroll(const struct agent_http_target *t, const char *state_dir,
		 const char *id, const char *token, json_t **ret_resp,
		 struct fl_error *err);

/*
 * Re-enrolment, first half of a rotation: stage a new key, POST its CSR
 * to /api/v1/reenroll authenticated with the current certificate, check
 * and stage the answer.  The current identity is untouched; the caller
 * commits or discards.  Fills *@ret (may be NULL) with the new
 * certificate's information.  Codes as agent_enroll.
 */
int agent_reenroll(const struct agent_http_target *t, const char *state_dir,
		   const char *id, struct fl_pki_cert_info *ret,
		   struct fl_error *err);

/*
 * POST /api/v1/reenroll/confirm with the current (just committed)
 * certificate: fleetd revokes the device's other certificates.
 * Returns 0 or the fl_http codes.
 */
int agent_reenroll_confirm(const struct agent_http_target *t,
			   const char *state_dir, struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef FLEET_FUZZ_SRV_H
#define FLEET_FUZZ_SRV_H

/*
 * A fleetd for the fleetd fuzz targets (fuzz_http, fuzz_mqtt): a state
 * dir made by fleetd's own srv_init_state in the target's temporary
 * directory, opened as `fleetd serve` opens it, with an MQTT side that
 * is never connected (mqtt_internal.h: commands wait in the client), and
 * something to work on, made through the same services the API calls:
 *
 *   - the committed trusted root (tests/fuzz/data/root.json) and the
 *     bundle it verifies (data/bundle.fwb, fw@1.0.0);
 *   - devices dev-1, dev-2, dev-3 in group g1, enrolled from CSRs;
 *   - open jobs: an update of dev-1, a rollback of dev-2, a rotation of
 *     dev-3;
 *   - a token for each role and an enrolment token.
 *
 * Secrets and ids are random, so inputs name them by placeholder and
 * fuzz_srv_subst puts the real text in: @admin@ @operator@ @technician@
 * @viewer@ @ci@ @enroll@ (tokens), @job1@ @job2@ @job3@ (the jobs above),
 * @bundle@ (the bundle's id).
 */
#include "bundles_svc.h"
#include "ca.h"
#include "fuzz.h"
#include "fuzz_data.h"
#include "jobs.h"
#include "mqtt.h"
#include "mqtt_internal.h"
#include "pki.h"
#include "srv.h"
#include "store.h"
#include "util.h"

enum { FUZZ_SRV_SUBST = 10 };

struct fuzz_srv {
	char *dir;
	struct srv *srv;
	const char *names[FUZZ_SRV_SUBST]; /* "@admin@"... */
	char *values[FUZZ_SRV_SUBST];
	unsigned generation;
};

static inline void fuzz_srv_fail(const char *what, const struct fl_error *err)
{
	fprintf(stderr, "fuzz: fleetd set-up: %s: %s\n", what, err->msg);
	abort();
}

static inline void fuzz_srv_token(struct fuzz_srv *f, int slot,
				  const char *name, int role, bool enroll)
{
	struct srv_token_spec spec = {.name = name,
				      .role = role,
				      .enroll = enroll,
				      .group = "g1",
				      .uses = 1000000};
	struct fl_error err = {0};
	json_t *info = NULL;

	if (srv_token_create(f->srv, &spec, "fuzz", &f->values[slot], &info,
			     &err))
		fuzz_srv_fail("token", &err);
	json_decref(info);
}

static inline void fuzz_srv_device(struct fuzz_srv *f, const char *id)
{
	struct fl_error err = {0};
	struct srv_issued iss = {0};
	struct srv_cert c;
	EVP_PKEY *key = NULL;
	char *csr = NULL;

	if (fl_pki_keygen_p256(&key, &err) ||
	    fl_pki_csr_create(key, id, &csr, &err) ||
	    srv_ca_issue_device(f->srv->ca, csr, strlen(csr), id, false, &iss,
				&err))
		fuzz_srv_fail("device certificate", &err);
	c = (struct srv_cert){iss.serial, id, iss.not_before, iss.not_after,
			      iss.sha256};
	if (srv_store_device_enroll(f->srv->store, id, "g1", "fuzz", NULL,
				    false, &c, &err))
		fuzz_srv_fail("enrol", &err);
	srv_issued_release(&iss);
	EVP_PKEY_free(key);
	free(csr);
}

static inline void fuzz_srv_job(struct fuzz_srv *f, int slot,
				const char *device, const char *type,
				const struct srv_bundle_row *b)
{
	struct fl_error err = {0};
	json_t *job = NULL;

	if (srv_job_start(f->srv, device, type, b, NULL, "fuzz", 0, &job, &err))
		fuzz_srv_fail("job", &err);
	f->values[slot] =
	    fl_xstrdup(json_string_value(json_object_get(job, "job")));
	json_decref(job);
}

static inline void fuzz_srv_bundle(struct fuzz_srv *f, int slot)
{
	struct srv_bundle_row b = {0};
	struct srv_upload *u = NULL;
	struct fl_error err = {0};
	struct fsig_root *root = NULL;

	if (fsig_root_parse(fuzz_data_root_json, fuzz_data_root_json_len, &root,
			    &err) ||
	    srv_store_root_add(f->srv->store, 1,
			       (const char *)fuzz_data_root_json,
			       fsig_root_expires(root), "fuzz", &err) ||
	    srv_upload_begin(f->srv, &u, &err) ||
	    srv_upload_write(u, fuzz_data_bundle_fwb, fuzz_data_bundle_fwb_len,
			     &err) ||
	    srv_upload_finish(f->srv, u, "fuzz", &b, &err))
		fuzz_srv_fail("bundle", &err);
	srv_upload_free(u);
	fsig_root_free(root);
	f->values[slot] = fl_xstrdup(b.id);
	fuzz_srv_job(f, 6, "dev-1", "update", &b);
	srv_bundle_row_free(&b);
}

/* A fresh fleetd; @conf is the text of its fleetd.conf. */
static inline void fuzz_srv_open(struct fuzz_srv *f, const char *conf)
{
	static const char *const names[FUZZ_SRV_SUBST] = {
	    "@admin@",	"@operator@", "@technician@", "@viewer@", "@ci@",
	    "@enroll@", "@job1@",     "@job2@",	      "@job3@",	  "@bundle@"};
	struct fl_error err = {0};
	char *path;

	memcpy(f->names, names, sizeof(names));
	f->dir = fl_xasprintf("%s/state-%u", fuzz_tmpdir(), f->generation++);
	if (srv_init_state(f->dir, NULL, 0, NULL, &f->values[0], &err))
		fuzz_srv_fail("init", &err);
	path = fl_path_join(f->dir, SRV_CONF_FILE);
	fuzz_write_file(path, conf, strlen(conf));
	free(path);
	if (srv_open(f->dir, &f->srv, &err) ||
	    srv_mqtt_new(f->srv, &f->srv->mqtt, &err))
		fuzz_srv_fail("open", &err);
	fuzz_srv_token(f, 1, "operator", SRV_ROLE_OPERATOR, false);
	fuzz_srv_token(f, 2, "technician", SRV_ROLE_TECHNICIAN, false);
	fuzz_srv_token(f, 3, "viewer", SRV_ROLE_VIEWER, false);
	fuzz_srv_token(f, 4, "ci", SRV_ROLE_CI, false);
	fuzz_srv_token(f, 5, "enroll", 0, true);
	fuzz_srv_device(f, "dev-1");
	fuzz_srv_device(f, "dev-2");
	fuzz_srv_device(f, "dev-3");
	fuzz_srv_bundle(f, 9); /* and the update job of dev-1 */
	fuzz_srv_job(f, 7, "dev-2", "rollback", NULL);
	fuzz_srv_job(f, 8, "dev-3", "rotate", NULL);
}

static inline void fuzz_srv_close(struct fuzz_srv *f)
{
	char *cmd;

	srv_mqtt_stop(f->srv->mqtt);
	f->srv->mqtt = NULL;
	srv_close(f->srv);
	f->srv = NULL;
	fl_free_secret(f->values[0]);
	for (int i = 1; i < FUZZ_SRV_SUBST; i++)
		free(f->values[i]);
	memset(f->values, 0, sizeof(f->values));
	cmd = fl_xasprintf("rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		abort();
	free(cmd);
	free(f->dir);
}

/* @len bytes at @p with every placeholder replaced (caller frees; the
 * result is NUL-terminated, *@ret_len its length). */
static inline char *fuzz_srv_subst(const struct fuzz_srv *f, const char *p,
				   size_t len, size_t *ret_len)
{
	size_t cap = len + 1, n = 0;
	char *out = fl_xmalloc(cap);

	for (size_t i = 0; i < len;) {
		const char *v = NULL;
		size_t k = 0, vl;

		for (int s = 0; p[i] == '@' && s < FUZZ_SRV_SUBST && !v; s++) {
			k = strlen(f->names[s]);
			if (i + k <= len && memcmp(p + i, f->names[s], k) == 0)
				v = f->values[s];
		}
		if (!v) {
			v = p + i;
			k = 1;
		}
		vl = v == p + i ? 1 : strlen(v);
		if (n + vl + 1 > cap) {
			cap = (n + vl + 1) * 2;
			out = fl_xrealloc(out, cap);
		}
		memcpy(out + n, v, vl);
		n += vl;
		i += k;
	}
	out[n] = '\0';
	*ret_len = n;
	return out;
}

#endif

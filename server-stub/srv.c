/* SPDX-License-Identifier: MIT */
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca.h"
#include "config.h"
#include "devlimit.h"
#include "diag_relay.h"
#include "fsutil.h"
#include "fwd.h"
#include "ingest.h"
#include "proto.h"
#include "srv.h"
#include "shadow.h"
#include "util.h"
#include "validate.h"

static const struct fl_ini_key conf_keys[] = {
    {"server", "public_url"},
    {"ca", "device_lifetime"},
    {"mqtt", "url"},
    {"broker", "listen"},
    {"broker", "mosquitto"},
    {"bundles", "max_size"},
    {"bundles", "mirror_url"},
    {"ca", "reenroll_per_hour"},
    {"ca", "reenroll_max_revoked"},
    {"ca", "shared_crl"},
    {"jobs", "expire"},
    {"mqtt", "device_rate"},
    {"mqtt", "device_burst"},
    {"mqtt", "device_mute"},
    {"mqtt", "ingest_queue"},
    {"mqtt", "ingest_batch"},
    {"mqtt", "topic_prefix"},
    {"http", "max_connections"},
    {"http", "max_connections_per_ip"},
    {"http", "header_timeout"},
    {"http", "request_timeout"},
    {"http", "upload_timeout"},
    {"http", "idle_timeout"},
    {"diag", "max_pending"},
    {"diag", "max_pending_per_caller"},
    {"diag", "bundle_max"},
    {"diag", "bundle_dir"},
    {"shadow", "max_size"},
    {"telemetry", "keep_points"},
    {"telemetry", "keep_hours"},
    {"store", "url"},
    {NULL, NULL},
};

/* Fail naming the first key of @ini that is neither in conf_keys nor
 * one of the forwarders' (fwd.h). */
static int check_conf_keys(const struct fl_ini *ini, struct fl_error *err)
{
	size_t n = FL_ARRAY_SIZE(conf_keys) - 1, m = 0;
	struct fl_ini_key *all;
	int rc;

	while (srv_fwd_conf_keys[m].section)
		m++;
	all = fl_xcalloc(n + m + 1, sizeof(*all));
	memcpy(all, conf_keys, n * sizeof(*all));
	memcpy(all + n, srv_fwd_conf_keys, (m + 1) * sizeof(*all));
	rc = fl_ini_check_keys(ini, all, err);
	free(all);
	return rc;
}

static char *conf_str(const struct fl_ini *ini, const char *sec,
		      const char *key, const char *def)
{
	const char *v = fl_ini_get(ini, sec, key);

	return v ? fl_xstrdup(v) : def ? fl_xstrdup(def) : NULL;
}

/* A duration key of [@sec] in 1 s..@max s; @def when absent. */
static int conf_secs(const struct fl_ini *ini, const char *sec, const char *key,
		     int64_t def, int64_t max, int64_t *ret,
		     struct fl_error *err)
{
	const char *v = fl_ini_get(ini, sec, key);
	int rc;

	*ret = def;
	if (!v)
		return 0;
	rc = fl_parse_duration(v, ret, err);
	if (!rc && (*ret < 1 || *ret > max))
		rc = fl_fail(err, FL_EINVAL, "[%s] %s: %s not in 1s..%llds",
			     sec, key, v, (long long)max);
	return rc;
}

/* [ca] reenroll_per_hour (default 6) and reenroll_max_revoked (16),
 * both at least 1: the bounds on one device's re-enrolments. */
static int load_reenroll_limits(const struct fl_ini *ini,
				struct srv_reenroll_limits *lim,
				struct fl_error *err)
{
	uint64_t per_hour = 0, revoked = 0;
	int rc;

	rc = fl_ini_get_uint(ini, "ca", "reenroll_per_hour", 3600, 6, &per_hour,
			     err);
	if (!rc)
		rc = fl_ini_get_uint(ini, "ca", "reenroll_max_revoked", 10000,
				     16, &revoked, err);
	if (!rc && (per_hour == 0 || revoked == 0))
		rc = fl_fail(err, FL_EINVAL,
			     "reenroll_per_hour and reenroll_max_revoked must"
			     " be at least 1");
	lim->per_hour = (int64_t)per_hour;
	lim->max_revoked = (int64_t)revoked;
	return rc;
}

/* [mqtt] device_rate, device_burst, device_mute (devlimit.h). */
static int load_mqtt_limits(struct srv *srv, const struct fl_ini *ini,
			    struct fl_error *err)
{
	int rc = conf_secs(ini, "mqtt", "device_mute", SRV_DEVLIMIT_MUTE_S,
			   86400, &srv->cfg.device_mute, err);

	if (!rc)
		rc = fl_ini_get_uint(ini, "mqtt", "device_rate", 1000000,
				     SRV_DEVLIMIT_RATE, &srv->cfg.device_rate,
				     err);
	if (!rc)
		rc = fl_ini_get_uint(ini, "mqtt", "device_burst", 1000000,
				     SRV_DEVLIMIT_BURST, &srv->cfg.device_burst,
				     err);
	if (!rc && (!srv->cfg.device_rate || !srv->cfg.device_burst))
		rc = fl_fail(err, FL_EINVAL,
			     "[mqtt] device_rate and device_burst must be at "
			     "least 1");
	if (!rc)
		rc = fl_ini_get_uint(
		    ini, "mqtt", "ingest_queue", SRV_INGEST_QUEUE_MAX,
		    SRV_INGEST_QUEUE_DEFAULT, &srv->cfg.ingest_queue, err);
	if (!rc)
		rc = fl_ini_get_uint(ini, "mqtt", "ingest_batch", 10000,
				     SRV_INGEST_BATCH, &srv->cfg.ingest_batch,
				     err);
	if (!rc && (!srv->cfg.ingest_queue || !srv->cfg.ingest_batch))
		rc = fl_fail(err, FL_EINVAL,
			     "[mqtt] ingest_queue and ingest_batch must be at "
			     "least 1");
	return rc;
}

/* [http]: connection limits and deadlines (fleetd(8) LIMITS). */
static int load_http_limits(const struct fl_ini *ini, struct srv_http_limits *l,
			    struct fl_error *err)
{
	int rc = fl_ini_get_uint(ini, "http", "max_connections", 100000, 1000,
				 &l->max_connections, err);

	if (!rc)
		rc = fl_ini_get_uint(ini, "http", "max_connections_per_ip",
				     100000, 64, &l->max_connections_per_ip,
				     err);
	if (!rc && (l->max_connections < 8 || l->max_connections_per_ip < 1 ||
		    l->max_connections_per_ip > l->max_connections))
		rc = fl_fail(err, FL_EINVAL,
			     "[http] max_connections must be at least 8 and "
			     "max_connections_per_ip 1..max_connections");
	if (!rc)
		rc = conf_secs(ini, "http", "header_timeout", 10, 86400,
			       &l->header_timeout, err);
	if (!rc)
		rc = conf_secs(ini, "http", "request_timeout", 60, 86400,
			       &l->request_timeout, err);
	if (!rc)
		rc = conf_secs(ini, "http", "upload_timeout", 3600, 86400,
			       &l->upload_timeout, err);
	if (!rc)
		rc = conf_secs(ini, "http", "idle_timeout", 60, 86400,
			       &l->idle_timeout, err);
	return rc;
}

/* [diag]: the diag relay's bounds (fleetd(8) LIMITS). */
static int load_diag_limits(const struct fl_ini *ini, struct srv_diag_config *d,
			    struct fl_error *err)
{
	int rc = fl_ini_get_uint(ini, "diag", "max_pending", 100000,
				 SRV_DIAG_MAX_CALLS, &d->max_pending, err);

	if (!rc)
		rc = fl_ini_get_uint(ini, "diag", "max_pending_per_caller",
				     100000, SRV_DIAG_MAX_PER_CALLER,
				     &d->max_per_caller, err);
	if (!rc)
		rc = fl_ini_get_uint(ini, "diag", "bundle_max", 1ULL << 30,
				     SRV_DIAG_BUNDLE_MAX, &d->bundle_max, err);
	if (!rc && (!d->max_pending || !d->max_per_caller ||
		    d->max_per_caller > d->max_pending || !d->bundle_max))
		rc = fl_fail(err, FL_EINVAL,
			     "[diag] max_pending, bundle_max must be at least "
			     "1 and max_pending_per_caller 1..max_pending");
	return rc;
}

/* [telemetry] keep_points (1..1,000,000) and keep_hours (1..8760): the
 * window of points kept per device (store.h). */
static int load_telemetry(const struct fl_ini *ini,
			  struct srv_telemetry_window *w, struct fl_error *err)
{
	uint64_t points = 0, hours = 0;
	int rc = fl_ini_get_uint(ini, "telemetry", "keep_points",
				 SRV_TELEMETRY_KEEP_POINTS_MAX,
				 SRV_TELEMETRY_KEEP_POINTS, &points, err);

	if (!rc)
		rc = fl_ini_get_uint(ini, "telemetry", "keep_hours",
				     SRV_TELEMETRY_KEEP_HOURS_MAX,
				     SRV_TELEMETRY_KEEP_HOURS, &hours, err);
	if (!rc && (!points || !hours))
		rc = fl_fail(err, FL_EINVAL,
			     "[telemetry] keep_points and keep_hours must be "
			     "at least 1");
	w->keep_points = (int64_t)points;
	w->keep_ms = (int64_t)hours * 3600 * 1000;
	return rc;
}

/* [bundles] mirror_url (validate.h), at most SRV_MIRROR_BASE_MAX bytes. */
static int load_mirror(const struct fl_ini *ini, char **ret,
		       struct fl_error *err)
{
	const char *v = fl_ini_get(ini, "bundles", "mirror_url");

	if (v && (!fl_valid_mirror_base(v) || strlen(v) > SRV_MIRROR_BASE_MAX))
		return fl_fail(err, FL_EINVAL,
			       "[bundles] mirror_url '%.80s': want "
			       "https://HOST[:PORT]/PATH/ ending with '/', "
			       "no user, query or fragment, a path of "
			       "A-Z a-z 0-9 / . _ ~ - without '..', at most "
			       "%d bytes",
			       v, SRV_MIRROR_BASE_MAX);
	*ret = v ? fl_xstrdup(v) : NULL;
	return 0;
}

/* [SECTION] KEY: an absolute path whose parent directory exists (shared
 * storage for replicas: [ca] shared_crl, [diag] bundle_dir); NULL when
 * not set. */
static int load_shared_path(const struct fl_ini *ini, const char *section,
			    const char *key, char **ret, struct fl_error *err)
{
	const char *v = fl_ini_get(ini, section, key);
	struct stat st;
	char *dir;
	bool ok;

	*ret = NULL;
	if (!v)
		return 0;
	dir = fl_xstrdup(v);
	ok = v[0] == '/' && strlen(v) < 4096 && stat(dirname(dir), &st) == 0 &&
	     S_ISDIR(st.st_mode);
	free(dir);
	if (!ok)
		return fl_fail(err, FL_EINVAL,
			       "[%s] %s '%.80s': want an absolute path in a"
			       " directory that exists",
			       section, key, v);
	*ret = fl_xstrdup(v);
	return 0;
}

/* Read STATE/fleetd.conf; a missing file means all defaults. */
static int load_config(struct srv *srv, struct fl_error *err)
{
	char *path = srv_path(srv, SRV_CONF_FILE);
	struct fl_ini *ini = NULL;
	const char *life;
	int rc;

	rc = fl_ini_load(path, &ini, err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(err);
		ini = fl_ini_new();
		rc = 0;
	}
	if (!rc)
		rc = check_conf_keys(ini, err);
	srv->cfg.device_lifetime = 30 * 86400;
	life = fl_ini_get(ini, "ca", "device_lifetime");
	if (!rc && life)
		rc = fl_parse_duration(life, &srv->cfg.device_lifetime, err);
	if (!rc && srv->cfg.device_lifetime < 60)
		rc = fl_fail(err, FL_EINVAL, "device_lifetime under 60 s");
	if (!rc)
		rc = fl_ini_get_uint(ini, "bundles", "max_size", UINT64_MAX / 2,
				     4ULL << 30, &srv->cfg.max_bundle, err);
	if (!rc)
		rc = load_mirror(ini, &srv->cfg.mirror_url, err);
	if (!rc)
		rc = load_shared_path(ini, "ca", "shared_crl",
				      &srv->cfg.shared_crl, err);
	if (!rc)
		rc = load_shared_path(ini, "diag", "bundle_dir",
				      &srv->cfg.diag.bundle_dir, err);
	if (!rc)
		rc = load_reenroll_limits(ini, &srv->cfg.reenroll, err);
	if (!rc)
		rc = conf_secs(ini, "jobs", "expire", SRV_JOB_EXPIRE_DEFAULT,
			       SRV_JOB_EXPIRE_MAX, &srv->cfg.job_expire, err);
	if (!rc)
		rc = load_mqtt_limits(srv, ini, err);
	if (!rc)
		rc = load_http_limits(ini, &srv->cfg.http, err);
	if (!rc)
		rc = load_diag_limits(ini, &srv->cfg.diag, err);
	if (!rc)
		rc = fl_ini_get_uint(
		    ini, "shadow", "max_size", FL_SHADOW_MAX_DEFAULT,
		    FL_SHADOW_MAX_DEFAULT, &srv->cfg.shadow_max, err);
	if (!rc && srv->cfg.shadow_max < 256)
		rc = fl_fail(err, FL_EINVAL, "[shadow] max_size under 256");
	if (!rc)
		rc = load_telemetry(ini, &srv->cfg.telemetry, err);
	if (!rc)
		rc = srv_fwd_config_load(ini, &srv->cfg.fwd_influx,
					 &srv->cfg.fwd_pg, err);
	srv->cfg.public_url = conf_str(ini, "server", "public_url", NULL);
	srv->cfg.store_url = conf_str(ini, "store", "url", NULL);
	srv->cfg.mqtt_url = conf_str(ini, "mqtt", "url", NULL);
	srv->cfg.topic_prefix =
	    conf_str(ini, "mqtt", "topic_prefix", FL_TOPIC_PREFIX_DEFAULT);
	if (!rc)
		rc = fl_topic_check_prefix(srv->cfg.topic_prefix,
					   "[mqtt] topic_prefix", err);
	srv->cfg.broker_listen =
	    conf_str(ini, "broker", "listen", "127.0.0.1:8883");
	srv->cfg.mosquitto =
	    conf_str(ini, "broker", "mosquitto", "/usr/sbin/mosquitto");
	if (rc)
		fl_error_prefix(err, "%s", path);
	fl_ini_free(ini);
	free(path);
	return rc;
}

const char *srv_public_url(const struct srv *srv)
{
	return srv->cfg.public_url ? srv->cfg.public_url : srv->https_url;
}

char *srv_path(const struct srv *srv, const char *name)
{
	return fl_path_join(srv->state_dir, name);
}

/* "HOST:/abs/state/dir": one fleetd serves a state dir at a time
 * (fleetd.lock), so a restarted fleetd takes its own lease back at once
 * and another fleetd on a shared database waits for it to expire. */
static char *engine_id(const char *state_dir)
{
	char host[256] = "localhost", *abs = realpath(state_dir, NULL);
	char *id;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	id = fl_xasprintf("%s:%s", host, abs ? abs : state_dir);
	free(abs);
	return id;
}

/* The database @srv opens: @store, [store] url, or fleetd.db; caller
 * frees.  An initialised state dir has fleetd.db or, on another
 * database, ca.pem. */
static int store_of(struct srv *srv, const char *store, char **ret,
		    struct fl_error *err)
{
	const char *url = store ? store : srv->cfg.store_url;
	char *mark = srv_path(srv, url ? SRV_CA_FILE : SRV_DB_FILE);
	bool ok = fl_path_exists(mark);

	free(mark);
	if (!ok)
		return fl_fail(err, FL_ENOTFOUND,
			       "'%s' is not an initialised state dir "
			       "(run 'fleetd init --state %s')",
			       srv->state_dir, srv->state_dir);
	*ret = url ? fl_xstrdup(url) : srv_path(srv, SRV_DB_FILE);
	return 0;
}

int srv_open(const char *state_dir, struct srv **ret, struct fl_error *err)
{
	return srv_open_store(state_dir, NULL, ret, err);
}

int srv_open_store(const char *state_dir, const char *store, struct srv **ret,
		   struct fl_error *err)
{
	struct srv *srv = fl_xcalloc(1, sizeof(*srv));
	char *db = NULL;
	int rc;

	srv->state_dir = fl_xstrdup(state_dir);
	srv->max_json_body = SRV_MAX_JSON_BODY;
	pthread_mutex_init(&srv->rollouts_lock, NULL);
	pthread_mutex_init(&srv->shadow_lock, NULL);
	rc = load_config(srv, err);
	if (!rc)
		rc = store_of(srv, store, &db, err);
	srv->max_upload = srv->cfg.max_bundle;
	srv->engine_id = engine_id(state_dir);
	if (!rc)
		rc = srv_store_open(db, &srv->store, err);
	if (!rc)
		srv_store_telemetry_window(srv->store, &srv->cfg.telemetry);
	if (!rc)
		rc = srv_ca_open(state_dir, srv->cfg.device_lifetime,
				 srv->cfg.shared_crl, &srv->ca, err);
	free(db);
	if (rc) {
		srv_close(srv);
		return rc;
	}
	*ret = srv;
	return 0;
}

void srv_close(struct srv *srv)
{
	if (!srv)
		return;
	srv_store_close(srv->store);
	srv_ca_close(srv->ca);
	free(srv->cfg.public_url);
	free(srv->cfg.mirror_url);
	free(srv->cfg.shared_crl);
	free(srv->cfg.diag.bundle_dir);
	free(srv->cfg.store_url);
	free(srv->cfg.mqtt_url);
	free(srv->cfg.topic_prefix);
	free(srv->cfg.broker_listen);
	free(srv->cfg.mosquitto);
	srv_fwd_config_free(srv->cfg.fwd_influx);
	srv_fwd_config_free(srv->cfg.fwd_pg);
	free(srv->https_url);
	free(srv->engine_id);
	free(srv->state_dir);
	pthread_mutex_destroy(&srv->rollouts_lock);
	pthread_mutex_destroy(&srv->shadow_lock);
	free(srv);
}

int srv_token_create(struct srv *srv, const struct srv_token_spec *spec,
		     const char *created_by, char **ret_secret,
		     json_t **ret_info, struct fl_error *err)
{
	struct srv_token t = {.role = spec->enroll ? 0 : spec->role,
			      .uses_left = spec->enroll ? spec->uses : -1};
	unsigned char idraw[8];
	char hash[65], expires[21] = "";
	char *secret;
	int rc;

	rc = fl_random(idraw, sizeof(idraw), err);
	if (rc)
		return rc;
	fl_hex(idraw, sizeof(idraw), t.id);
	fl_strlcpy(t.name, spec->name, sizeof(t.name));
	fl_strlcpy(t.kind, spec->enroll ? "enroll" : "operator",
		   sizeof(t.kind));
	t.expires = spec->ttl ? time(NULL) + spec->ttl : 0;
	secret = fl_random_token(spec->enroll ? "fle_" : "flt_", 32);
	fl_sha256_hex(secret, strlen(secret), hash);
	rc = srv_store_token_add(srv->store, &t, hash, spec->group, created_by,
				 err);
	if (rc) {
		fl_free_secret(secret);
		return rc;
	}
	if (t.expires)
		fl_time_rfc3339(t.expires, expires);
	*ret_info = json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "id", t.id, "name",
			      spec->name, "kind", t.kind, "expires",
			      t.expires ? expires : NULL, "group", spec->group);
	if (spec->enroll)
		json_object_set_new(*ret_info, "uses",
				    spec->uses < 0 ? json_null()
						   : json_integer(spec->uses));
	else
		json_object_set_new(*ret_info, "role",
				    json_string(srv_role_name(spec->role)));
	*ret_secret = secret;
	return 0;
}

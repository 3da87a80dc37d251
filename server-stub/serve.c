/* SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "broker.h"
#include "ca.h"
#include "diag_bundles.h"
#include "diag_svc.h"
#include "fsutil.h"
#include "fwd.h"
#include "httpd.h"
#include "jobs.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "rollouts.h"
#include "sdnotify.h"
#include "serve.h"
#include "util.h"

#define CRL_REPUBLISH_S (24 * 3600)

static void stop_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGCHLD);
}

void srv_block_signals(void)
{
	sigset_t set;

	stop_signals(&set);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static void republish_crl(struct srv *srv)
{
	struct fl_error err = {0};

	if (srv_ca_publish_crl(srv->ca, srv->store, &err))
		fl_error("%s", err.msg);
	else
		srv_broker_reload(srv->broker, false);
}

/* Wait for signals; keep the broker alive and the CRL fresh; tick the
 * rollout engine; each pass tells the service manager's watchdog that
 * the loop is alive. */
static void loop(struct srv *srv)
{
	struct timespec tick = {.tv_sec = 1};
	int64_t last_crl = fl_now_ms();
	sigset_t set;

	stop_signals(&set);
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT) {
			fl_info("signal %d: shutting down", sig);
			fl_sd_notify("STOPPING=1", NULL);
			return;
		}
		if (sig == SIGHUP) {
			fl_info("SIGHUP: republishing the CRL");
			republish_crl(srv);
		}
		srv_broker_supervise(srv->broker);
		if (srv_mqtt_take_subscribed(srv->mqtt))
			srv_broker_save(srv->broker);
		srv_jobs_expire_tick(srv);
		srv_rollouts_tick(srv, time(NULL));
		srv_diag_bundles_tick(srv->bundles, fl_wall_ms());
		if (fl_now_ms() - last_crl > CRL_REPUBLISH_S * 1000LL) {
			republish_crl(srv);
			last_crl = fl_now_ms();
		}
		fl_sd_watchdog(fl_now_ms());
	}
}

/* Local broker: write its config, start it, advertise its URL. */
static int start_broker(struct srv *srv, const struct srv_serve_opts *o,
			struct fl_error *err)
{
	char *url = NULL;
	int rc;

	rc = srv_broker_write_config(
	    srv, o->mqtt_listen ? o->mqtt_listen : srv->cfg.broker_listen, &url,
	    err);
	if (!rc)
		rc = srv_broker_start(srv, &srv->broker, err);
	if (!rc && !srv->cfg.mqtt_url)
		srv->cfg.mqtt_url = url;
	else
		free(url);
	return rc;
}

/* The ingest writer's hook: every stored point to each forwarder. */
static void forward_points(void *arg, const struct srv_tpoint *pts, size_t n)
{
	struct srv *srv = arg;

	if (srv->fwd_influx)
		srv_fwd_submit(srv->fwd_influx, pts, n);
	if (srv->fwd_pg)
		srv_fwd_submit(srv->fwd_pg, pts, n);
}

/* Start the forwarders fleetd.conf names; before the MQTT side, whose
 * writer calls the hook. */
static int start_forwarders(struct srv *srv, struct fl_error *err)
{
	int rc = 0;

	if (srv->cfg.fwd_influx)
		rc = srv_fwd_start(srv->cfg.fwd_influx, &srv->fwd_influx, err);
	if (!rc && srv->cfg.fwd_pg)
		rc = srv_fwd_start(srv->cfg.fwd_pg, &srv->fwd_pg, err);
	if (!rc && (srv->fwd_influx || srv->fwd_pg)) {
		srv->on_points = forward_points;
		srv->on_points_arg = srv;
	}
	return rc;
}

/* After the MQTT side: what is queued gets SRV_FWD_STOP_MS to go out. */
static void stop_forwarders(struct srv *srv)
{
	srv->on_points = NULL;
	srv_fwd_stop(srv->fwd_influx, SRV_FWD_STOP_MS);
	srv_fwd_stop(srv->fwd_pg, SRV_FWD_STOP_MS);
	srv->fwd_influx = srv->fwd_pg = NULL;
}

int srv_serve(struct srv *srv, const struct srv_serve_opts *o,
	      void (*ready)(const char *line), struct fl_error *err)
{
	char *line, *lock = srv_path(srv, "fleetd.lock");
	int rc, lock_fd = -1;

	/* one serving fleetd per state dir, or each marks the other's
	 * devices offline */
	rc = fl_lock_take(lock, &lock_fd, err);
	free(lock);
	if (rc)
		return rc;
	srv_metrics_start();
	srv->replica = o->replica;
	/* alone, fleetd re-learns presence from the retained messages; a
	 * replica does too, but the others keep the store's view meanwhile */
	if (!srv->replica)
		rc = srv_store_devices_all_offline(srv->store, err);
	/* the CRL from the database, before the broker loads it: a migration
	 * may have revoked, or a commit failed after the CRL was written */
	if (!rc && srv_ca_publish_crl(srv->ca, srv->store, err)) {
		fl_error("%s (keeping the CRL file as it is)", err->msg);
		fl_error_clear(err);
	}
	if (!rc && o->with_broker)
		rc = start_broker(srv, o, err);
	/* before the MQTT client: its session may hold replies already */
	if (!rc)
		rc = srv_diag_svc_start(srv, err);
	if (!rc)
		rc = start_forwarders(srv, err);
	if (!rc && srv->cfg.mqtt_url)
		rc = srv_mqtt_start(srv, srv->cfg.mqtt_url, &srv->mqtt, err);
	if (!rc && srv->broker)
		rc = srv_mqtt_wait_connected(srv->mqtt, 10000, err);
	if (!rc)
		rc = srv_http_start(srv, o->listen, err);
	if (!rc) {
		fl_info("listening on %s", srv->https_url);
		line = srv->cfg.mqtt_url
			   ? fl_xasprintf("ready https=%s mqtt=%s",
					  srv->https_url, srv->cfg.mqtt_url)
			   : fl_xasprintf("ready https=%s", srv->https_url);
		ready(line);
		free(line);
		loop(srv);
		srv_rollouts_release(srv, time(NULL));
	}
	/* waiting diag requests are answered first: MHD cannot stop with
	 * a suspended connection */
	srv_diag_svc_stop(srv);
	srv_http_stop(srv);
	srv_mqtt_stop(srv->mqtt);
	srv->mqtt = NULL;
	stop_forwarders(srv);
	srv_diag_svc_free(srv);
	srv_broker_stop(srv->broker);
	srv->broker = NULL;
	fl_lock_release(lock_fd);
	return rc;
}

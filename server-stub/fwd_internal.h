/* SPDX-License-Identifier: MIT */
#ifndef SRV_FWD_INTERNAL_H
#define SRV_FWD_INTERNAL_H

/* The forwarder's backends (fwd_influx.c, fwd_pg.c) and what they
 * share with fwd.c. */
#include "fwd.h"

/* A queued point: one allocation, device and metric after it. */
struct fwd_pt {
	int64_t ts_ms;
	double value;
	const char *metric; /* inside text[] */
	char device[];	    /* "device\0metric\0" */
};

/*
 * send's results besides 0 (sent): FWD_BAD_BATCH when the database
 * refused the batch's content (the caller halves it, then drops a lone
 * point), any other code a transient failure (retried as is).
 */
#define FWD_BAD_BATCH FL_EVERIFY

struct fwd_backend {
	const char *name;
	/* Load the client library; check @cfg.  No connection yet. */
	int (*open)(const struct srv_fwd_config *cfg, void **ret_ctx,
		    struct fl_error *err);
	/* Send @n points in one request or transaction. */
	int (*send)(void *ctx, struct fwd_pt *const *pts, size_t n,
		    struct fl_error *err);
	void (*close)(void *ctx);
};

extern const struct fwd_backend srv_fwd_influx;
extern const struct fwd_backend srv_fwd_pg;

/* The password of @cfg's password_file (first line), or NULL when
 * none is set; free with fl_free_secret. */
int srv_fwd_password(const struct srv_fwd_config *cfg, char **ret,
		     struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef SRV_DIAG_H
#define SRV_DIAG_H

/*
 * fleetd's diagnostics relay (issue 12; docs/diagnostics.md "Through
 * fleetd"): the table of diag requests fleetd has sent to devices and
 * is waiting on.
 *
 * A call is one API request: one device, or a fan-out to many, under one
 * random 16-byte correlation id, with a deadline.  Replies arrive on
 * PREFIX/ID/diag/resp/fleetd with that correlation data; the device is
 * the topic's.  A reply that matches no pending call (unknown or late
 * correlation id), names a device the call did not ask, or repeats an
 * answer is ignored and counted.  A call completes when every device it
 * asked has answered, at its deadline (the others time out), or when the
 * relay stops; then it leaves the table and its done callback runs,
 * once, with no lock held, from the thread that completed it.
 *
 * Bounded: at most max_calls calls wait at once and max_per_caller of
 * one caller (srv_diag_begin refuses more), and a call keeps at most
 * max_bytes of reply payloads (later results are dropped, their state
 * kept).  Finding a call is a scan of at most max_calls entries and a
 * device within it a binary search, so a fan-out of n devices costs
 * O(n log n) whatever n.
 *
 * The table has no clock of its own: callers pass the time, so the unit
 * tests drive it (tests/unit/test_diag.c).  srv_diag_start_timer runs a
 * thread that expires calls on time.  Thread-safe.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"
#include "validate.h"

#define SRV_DIAG_CORR_LEN 16
#define SRV_DIAG_CHECK_MAX 32 /* bytes of a check name */

/* Defaults of fleetd.conf [diag] (fleetd(8)). */
#define SRV_DIAG_MAX_CALLS 64
#define SRV_DIAG_MAX_PER_CALLER 4
#define SRV_DIAG_CALL_BYTES (8u << 20)
#define SRV_DIAG_BUNDLE_MAX (16u << 20)

enum srv_diag_state {
	SRV_DIAG_PENDING = 0,
	SRV_DIAG_ANSWERED,  /* it replied "ok": true */
	SRV_DIAG_FAILED,    /* it replied "ok": false or garbage, or the
			     * request could not be sent */
	SRV_DIAG_OFFLINE,   /* offline when the call began: never asked */
	SRV_DIAG_TIMED_OUT, /* no reply by the deadline */
};

/* "pending", "answered", "failed", "offline", "timed-out". */
const char *srv_diag_state_name(enum srv_diag_state s);

struct srv_diag_target {
	char device[FL_ID_MAX + 1];
	bool ask; /* set by srv_diag_begin: send it the request */
	enum srv_diag_state state;
	int64_t last_seen; /* offline ones: when last seen (0: never) */
	json_t *reply;	   /* the device's reply object, or NULL */
	char *error;	   /* failed or dropped without a reply: why */
	int64_t reply_ms;  /* when the reply came (0: none) */
};

struct srv_diag;
struct srv_diag_call;

/* Runs once when @c completes; @c is out of the table then. */
typedef void (*srv_diag_done_fn)(struct srv_diag_call *c, void *arg);

/*
 * One call.  Its creator fills the targets (srv_diag_call_new) and may
 * read everything once done has run; in between the table owns it.
 */
struct srv_diag_call {
	unsigned char corr[SRV_DIAG_CORR_LEN];
	char caller[80];
	char check[SRV_DIAG_CHECK_MAX + 1];
	int64_t start_ms, deadline_ms;
	size_t n, pending;
	size_t bytes;		   /* reply payload bytes kept */
	struct srv_diag_target *t; /* sorted by device once begun */
	bool stopped;		   /* completed because the relay stopped */
	srv_diag_done_fn done;
	void *arg;
	/* the table's: its table until it completes */
	struct srv_diag *d;
	bool in_table;
};

struct srv_diag_limits {
	size_t max_calls;      /* calls waiting at once */
	size_t max_per_caller; /* of them, one caller's */
	size_t max_bytes;      /* reply bytes one call keeps */
};

struct srv_diag_stats {
	size_t calls;	  /* waiting now */
	uint64_t replies; /* matched */
	uint64_t ignored; /* unknown, late, stray or repeated */
};

struct srv_diag *srv_diag_new(const struct srv_diag_limits *l);

/* Stop (as srv_diag_stop) and free; NULL is fine. */
void srv_diag_free(struct srv_diag *d);

/*
 * A call of @caller running @check on @n devices, not begun: the
 * targets' devices are filled by the caller (t[i].device; any order;
 * state OFFLINE with last_seen for those not to be asked).  @done runs
 * with @arg when it completes.  Free with srv_diag_call_free.
 */
struct srv_diag_call *srv_diag_call_new(const char *caller, const char *check,
					size_t n, srv_diag_done_fn done,
					void *arg);

/*
 * Free @c; one still in the table is taken out first (done does not
 * run then).  A completed call no longer refers to its table, so it may
 * outlive it.  NULL is fine.
 */
void srv_diag_call_free(struct srv_diag_call *c);

enum srv_diag_admit {
	SRV_DIAG_ADMITTED = 0,
	SRV_DIAG_CALLER_BUSY, /* @caller has max_per_caller calls waiting */
	SRV_DIAG_FULL,	      /* max_calls calls are waiting */
	SRV_DIAG_STOPPING,    /* the relay stopped */
	SRV_DIAG_BAD_CALL,    /* a device named twice, or no device */
};

/*
 * Give @c a fresh correlation id and a deadline @timeout_ms after @now,
 * sort its targets, and put it in the table, unless a bound refuses it.
 * A call with no target to ask (all offline) is not put in the table:
 * its done runs before this returns.  The targets to send the request
 * to are marked "ask" (srv_diag_fail for one that cannot be sent); "ask"
 * and "device" do not change afterwards, so the sender reads them
 * without a lock.
 */
enum srv_diag_admit srv_diag_begin(struct srv_diag *d, struct srv_diag_call *c,
				   int64_t now, int64_t timeout_ms);

/*
 * Target @i of @c (pending) could not be asked: it fails with @why.
 * The call completes when it was the last one pending.
 */
void srv_diag_fail(struct srv_diag *d, struct srv_diag_call *c, size_t i,
		   const char *why, int64_t now);

enum srv_diag_match {
	SRV_DIAG_MATCHED = 0,
	SRV_DIAG_UNKNOWN,  /* no waiting call has this correlation id */
	SRV_DIAG_STRANGER, /* the call did not ask this device */
	SRV_DIAG_REPEATED, /* the device answered already */
};

/*
 * A reply @payload (@len bytes, untrusted) from @device with correlation
 * data @corr (@corr_len bytes).  A matched reply is kept: "ok": true
 * makes the target ANSWERED, anything else (ok false, not JSON, no
 * "ok", another check's name) FAILED with the reason.
 */
enum srv_diag_match srv_diag_reply(struct srv_diag *d, const char *device,
				   const void *corr, size_t corr_len,
				   const char *payload, size_t len,
				   int64_t now);

/* Complete every call whose deadline is at or before @now. */
void srv_diag_expire(struct srv_diag *d, int64_t now);

/*
 * Refuse new calls and complete every waiting one (stopped, pending
 * targets timed out), waiting for completions other threads are running.
 * When this returns, every done callback has returned.
 */
void srv_diag_stop(struct srv_diag *d);

/* Run a thread that calls srv_diag_expire on time, until stop. */
int srv_diag_start_timer(struct srv_diag *d, struct fl_error *err);

/* The counters (fleetctl status); zeros for a NULL @d. */
void srv_diag_stats(struct srv_diag *d, struct srv_diag_stats *ret);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef FL_PROTO_H
#define FL_PROTO_H

/*
 * The protocol's words, in one place for the agent, fleetd and the broker
 * ACL writer (docs/protocol.md, issue 9 item 3): the MQTT topics under
 * one configurable prefix, and the job states with which of them are
 * final.  Nothing here allocates except the topic builders.
 */
#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "validate.h"

/* ------------------------------------------------------------------ */
/* Topics: PREFIX/ID/KIND                                             */
/* ------------------------------------------------------------------ */

#define FL_TOPIC_PREFIX_DEFAULT "fleet"
#define FL_TOPIC_PREFIX_MAX 64 /* bytes of a prefix */
#define FL_TOPIC_LEAF_MAX 32   /* bytes of a kind's leaf ("shadow/desired") */
/* bytes of any topic fleet uses: PREFIX/ID/LEAF[/ID] */
#define FL_TOPIC_MAX                                                           \
	(FL_TOPIC_PREFIX_MAX + 1 + FL_ID_MAX + 1 + FL_TOPIC_LEAF_MAX + 1 +     \
	 FL_ID_MAX)

enum fl_topic_kind {
	FL_TOPIC_PRESENCE,
	FL_TOPIC_STATUS,
	FL_TOPIC_EVENTS,
	FL_TOPIC_CMD,
	FL_TOPIC_SHADOW_REPORTED,
	FL_TOPIC_SHADOW_DESIRED,
	FL_TOPIC_DIAG_REQ,
	FL_TOPIC_DIAG_RESP, /* one more level follows: the requester */
	FL_TOPIC_TELEMETRY,
	FL_TOPIC_NKINDS
};

/* Who publishes on a kind of topic (DESIGN §5). */
enum fl_topic_dir {
	FL_TOPIC_UP = 1,   /* the device publishes, fleetd reads */
	FL_TOPIC_DOWN = 2, /* fleetd publishes, the device reads */
};

struct fl_topic_info {
	enum fl_topic_kind kind;
	const char *leaf; /* "presence", "shadow/reported", "diag/resp" */
	enum fl_topic_dir dir;
	bool sub_level; /* a last level follows the leaf (diag/resp/REQ) */
};

/* The kind's row; NULL for a value out of range. */
const struct fl_topic_info *fl_topic_info(enum fl_topic_kind kind);

/*
 * A topic prefix: exactly one topic level of 1..FL_TOPIC_PREFIX_MAX bytes
 * of [A-Za-z0-9_-] ("fleet", "acme-prod").  No '/', no wildcards, no '$'
 * (the broker's own tree).
 */
bool fl_topic_prefix_valid(const char *prefix);

/* As fl_topic_prefix_valid, failing with FL_EINVAL naming @what. */
int fl_topic_check_prefix(const char *prefix, const char *what,
			  struct fl_error *err);

/*
 * "PREFIX/ID/LEAF" for device @id into *@ret (caller frees).  @id must
 * be fl_valid_id (never a wildcard or '/'), @prefix valid.  For
 * FL_TOPIC_DIAG_RESP @sub names the last level (an id, fl_valid_id);
 * otherwise @sub must be NULL.  Returns 0, FL_EINVAL.
 */
int fl_topic_build(const char *prefix, const char *id, enum fl_topic_kind kind,
		   const char *sub, char **ret, struct fl_error *err);

/*
 * The subscription filter for @kind of every device: "PREFIX/+/LEAF"
 * ("PREFIX/+/diag/resp/+"), into *@ret (caller frees).  Returns 0,
 * FL_EINVAL (bad prefix or kind).
 */
int fl_topic_filter(const char *prefix, enum fl_topic_kind kind, char **ret,
		    struct fl_error *err);

/* "PREFIX/#": every topic of the fleet, into *@ret (caller frees).
 * Returns 0, FL_EINVAL. */
int fl_topic_all(const char *prefix, char **ret, struct fl_error *err);

/*
 * Split @topic (as received; untrusted) under @prefix into the device id
 * (copied to @ret_id) and kind; for FL_TOPIC_DIAG_RESP *@ret_sub points
 * at the last level inside @topic (NULL for other kinds; @ret_sub may be
 * NULL).  Outputs are written only on success.  Returns 0, FL_ELIMIT
 * (over FL_TOPIC_MAX), FL_EPARSE (another prefix, a bad id, an unknown
 * kind, wildcards or empty levels).
 */
int fl_topic_parse(const char *prefix, const char *topic,
		   char ret_id[FL_ID_MAX + 1], enum fl_topic_kind *ret_kind,
		   const char **ret_sub, struct fl_error *err);

/* ------------------------------------------------------------------ */
/* Job states                                                         */
/* ------------------------------------------------------------------ */

/*
 * Every state a job can be in, in the order an update goes through
 * them (docs/protocol.md).  Values are stable within one build only
 * (the journal and the database keep the names).
 */
enum fl_job_state {
	FL_JOB_QUEUED = 1,
	FL_JOB_DOWNLOADING,
	FL_JOB_VERIFYING,
	FL_JOB_INSTALLING,
	FL_JOB_INSTALLED,
	FL_JOB_REBOOTING,
	FL_JOB_HEALTH_CHECK,
	FL_JOB_REVERTING, /* the agent's journal only, never on the wire */
	FL_JOB_SUCCEEDED,
	FL_JOB_FAILED,
	FL_JOB_ROLLED_BACK,
	FL_JOB_CANCELLED, /* fleetd only */
	FL_JOB_EXPIRED,	  /* fleetd only */
	FL_JOB_STATE_END
};

/* What a state is, as bit flags. */
enum {
	FL_JOB_FINAL = 1 << 0,	/* nothing follows it */
	FL_JOB_DEVICE = 1 << 1, /* a device reports it on its events */
	FL_JOB_SERVER = 1 << 2, /* fleetd sets it itself */
	FL_JOB_LOCAL = 1 << 3,	/* the agent's journal only */
};

/* "queued", ..., "health-check", ..., "expired"; "unknown" otherwise. */
const char *fl_job_state_name(enum fl_job_state s);

/* The state named @name (NULL allowed); 0 for an unknown name. */
enum fl_job_state fl_job_state_parse(const char *name);

/* The FL_JOB_* flags of @s; 0 for an unknown state. */
unsigned fl_job_state_flags(enum fl_job_state s);

/* succeeded, failed, rolled-back, cancelled, expired. */
bool fl_job_state_final(enum fl_job_state s);

/* As fl_job_state_final for a name; false for unknown names and NULL. */
bool fl_job_state_name_final(const char *name);

#endif

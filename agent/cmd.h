/* SPDX-License-Identifier: MIT */
#ifndef AGENT_CMD_H
#define AGENT_CMD_H

/*
 * Commands from fleetd on fleet/ID/cmd (docs/protocol.md):
 *
 *   {"id": CMD_ID, "type": TYPE, "args": {...}, "ts": ...}
 *
 * Parsing with caps and the command log
 * that makes commands idempotent: a bounded set of handled ids, persisted
 * in the state dir, each with the outcome event it produced, so a
 * repeated id is answered with the stored event instead of acting again.
 */
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "err.h"

#define AGENT_CMD_MAX_PAYLOAD (64 * 1024) /* bytes of one command */
#define AGENT_CMD_ID_MAX 64		  /* bytes of a command id */
#define AGENT_CMD_TYPE_MAX 32		  /* bytes of a command type */
#define AGENT_CMD_LOG_DEFAULT 256	  /* ids remembered */
#define AGENT_CMD_LOG_MAX 4096		  /* largest log accepted */
#define AGENT_EVENT_MAX (8 * 1024)	  /* bytes of one stored event */
#define AGENT_CMD_LOG_FILE "commands.json"
/* fleetd's confirmation of a final job event on the command topic; not
 * a command: never dispatched, logged or answered (issue 17) */
#define AGENT_ACK_TYPE "ack"

struct agent_cmd {
	char id[AGENT_CMD_ID_MAX + 1];	   /* [A-Za-z0-9._:-], 1..64 */
	char type[AGENT_CMD_TYPE_MAX + 1]; /* [a-z0-9_-], 1..32 */
	json_t *args;			   /* owned: an object, maybe empty */
	/* the message's MQTT v5 properties (borrowed; NULL: none known) */
	const struct agent_msg_props *props;
};

/*
 * Parse an untrusted command payload of @len bytes.  On success fills
 * *@ret (release with agent_cmd_release).  Returns 0, FL_ELIMIT (over
 * AGENT_CMD_MAX_PAYLOAD, over-long id or type), FL_EPARSE (not a JSON
 * object, missing or malformed id or type, args not an object).  An
 * unknown type is not a parse error: the feature table tells
 * (agent_feature_find_cmd, feature.h).
 */
int agent_cmd_parse(const void *payload, size_t len, struct agent_cmd *ret,
		    struct fl_error *err);

/* Drop the args reference; the struct may be reused.  NULL is fine. */
void agent_cmd_release(struct agent_cmd *cmd);

struct agent_msg_props;

/*
 * What a handler reports besides its return code.  @fields starts as an
 * empty object owned by the caller; the handler adds the event fields it
 * wants published ("serial", ...).  On failure it may set @stage (a
 * static string naming the step that failed); the error message becomes
 * the event's "reason".  A handler that finishes later (rotation waiting
 * for fleetd's confirmation) sets @pending and publishes the outcome
 * itself with agent_host_complete.  Handlers (struct agent_feature_cmd,
 * feature.h) return 0 for success, else an fl_err code with @err
 * saying why.
 */
struct agent_cmd_outcome {
	json_t *fields;
	const char *stage;
	bool pending;
};

/* ------------------------------------------------------------------ */
/* Command log (idempotency)                                          */
/* ------------------------------------------------------------------ */

enum agent_cmd_state {
	AGENT_CMD_RUNNING = 1, /* started, no outcome yet */
	AGENT_CMD_DONE = 2,    /* outcome event stored */
};

struct agent_cmd_log;

/*
 * Open the log stored at @path (created on first write), remembering at
 * most @cap ids (1..AGENT_CMD_LOG_MAX); when full, the oldest finished
 * entry is forgotten.  Returns 0, FL_EINVAL (bad @cap), FL_EPARSE or
 * FL_ELIMIT (a corrupt or oversized file: the caller may delete it and
 * start empty), FL_EIO.
 */
int agent_cmd_log_open(const char *path, size_t cap,
		       struct agent_cmd_log **ret, struct fl_error *err);

/* Free the in-memory log (the file stays); NULL is fine. */
void agent_cmd_log_free(struct agent_cmd_log *log);

/*
 * Look up @id.  Returns 0 and fills *@ret_state and *@ret_event (the
 * stored outcome event for DONE, else NULL; borrowed, valid until the
 * log changes), each may be NULL; FL_ENOTFOUND when @id is unknown.
 */
int agent_cmd_log_get(const struct agent_cmd_log *log, const char *id,
		      enum agent_cmd_state *ret_state,
		      const json_t **ret_event);

/* Record @id (type @type) as running and persist.  FL_ECONFLICT when
 * @id is already known; FL_EIO. */
int agent_cmd_log_begin(struct agent_cmd_log *log, const char *id,
			const char *type, struct fl_error *err);

/* Store @event (copied; at most AGENT_EVENT_MAX bytes serialised, else
 * FL_ELIMIT) as @id's outcome and persist.  FL_ENOTFOUND for an unknown
 * id; FL_EIO. */
int agent_cmd_log_finish(struct agent_cmd_log *log, const char *id,
			 const json_t *event, struct fl_error *err);

/* Number of remembered ids. */
size_t agent_cmd_log_count(const struct agent_cmd_log *log);

/*
 * Iterate over RUNNING entries (those a restart interrupted): start with
 * *@iter = 0; returns the next running id (borrowed) and its type in
 * *@ret_type, or NULL at the end.
 */
const char *agent_cmd_log_next_running(const struct agent_cmd_log *log,
				       size_t *iter, const char **ret_type);

#endif

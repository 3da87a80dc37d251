/* SPDX-License-Identifier: MIT */
#ifndef CLI_ROLLOUT_H
#define CLI_ROLLOUT_H

/*
 * fleetctl's rollouts: the commands (cmd_rollout.c) and how a rollout is
 * shown and followed (rollout_view.c).
 */
#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "cli.h"

/* GET /api/v1/rollouts/@id (with its device rows) into *@ret. */
int cli_rollout_get(struct cli_ctx *ctx, const char *id, bool devices,
		    json_t **ret);

/* POST /api/v1/rollouts/@id/@verb (pause, resume, abort, rollback). */
int cli_rollout_act(struct cli_ctx *ctx, const char *id, const char *verb,
		    json_t **ret);

/* A plan (POST /api/v1/rollouts/plan's answer): one row per device and
 * wave, then the excluded devices; notes on stderr.  JSON with -o json. */
void cli_rollout_print_plan(struct cli_ctx *ctx, const json_t *plan);

/* A rollout: its summary, gate, waves and latest failures (and its
 * device rows with @devices).  JSON with -o json. */
void cli_rollout_print(struct cli_ctx *ctx, const json_t *r, bool devices);

/* GET /api/v1/rollouts's answer as a table, or JSON. */
void cli_rollout_print_list(struct cli_ctx *ctx, const json_t *rows);

/*
 * Follow rollout @id until it is completed, rolled back, aborted or
 * paused, polling every @interval seconds for at most @timeout (0: no
 * bound; while fleetd is unreachable, a restart, it keeps trying): a
 * live view on a TTY, a plain line per change otherwise (stderr with
 * -o json, which prints the last state as one document).
 * 0 when it ends in state @want; else FL_ERR (rolled back, unless that
 * was wanted), FL_ECONFLICT (aborted, paused), FL_ETIMEOUT.
 */
int cli_rollout_follow(struct cli_ctx *ctx, const char *id, int64_t timeout,
		       int64_t interval, const char *want);

int cmd_rollout_watch(int argc, char **argv, void *arg);

#endif

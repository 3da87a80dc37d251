/* SPDX-License-Identifier: MIT */
#ifndef CLI_H
#define CLI_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <jansson.h>

#include "complete_cache.h"
#include "err.h"
#include "http.h"
#include "subcmd.h"

/*
 * fleetctl's shared command context and command tables (STYLE.md: one
 * sorted table per level, like git.c).  Commands return 0 or an fl_err
 * code with the message in ctx->err; main prints it and exits with the
 * code (DESIGN §8).
 */
enum cli_output { CLI_OUT_TABLE = 0, CLI_OUT_JSON = 1 };

struct cli_ctx {
	/* global options, then environment, then the config context */
	const char *server, *token, *ca, *context, *config_path;
	const char *token_file; /* --token-file: a file or "-" (stdin) */
	char *token_buf;	/* the token read from a file, wiped at exit */
	enum cli_output output;
	bool quiet;
	struct fl_http *http; /* set for commands flagged CLI_NEED_SERVER */
	struct fl_error err;
};

/* fleetctl's flags in its command tables (common/subcmd.h) */
enum {
	CLI_NEED_SERVER = FL_CMD_PROG, /* connect (server, CA, token) first */
	CLI_HIDDEN = FL_CMD_HIDDEN,    /* not listed in help */
	CLI_ARG_SHIFT = 12,	       /* bits 12-15: CLI_ARG */
};

/* A command's positional arguments are ids of @kind (enum cli_arg_kind,
 * cli/complete_cache.h): shell completion offers them. */
#define CLI_ARG(kind) ((unsigned)(kind) << CLI_ARG_SHIFT)
#define CLI_ARG_KIND(flags) ((int)(((flags) >> CLI_ARG_SHIFT) & 0xfu))

/* fleetctl as common/subcmd.c sees it: its name, help and connect hook */
extern const struct fl_cmd_prog cli_prog;

/* Usage error: prints the message and the command's usage; FL_EUSAGE. */
int cli_usage(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * For commands whose only option is -o/--output: parse it, then require
 * @min..@max positional arguments (from argv[optind]), else a usage
 * error "expected @what".
 */
int cli_args(struct cli_ctx *ctx, int argc, char **argv, int min, int max,
	     const char *what);

/* Handle a command-level "-o table|json"; FL_EUSAGE when unknown. */
int cli_set_output(struct cli_ctx *ctx, const char *value);

/*
 * A server URL from the command line, environment or config: https://
 * only (else FL_EUSAGE with a message in ctx->err), any trailing '/'
 * dropped.  *@ret is a new string.
 */
int cli_server_url(struct cli_ctx *ctx, const char *url, char **ret);

/*
 * Settle ctx->token from --token, --token-file (or "-" for stdin),
 * FLEET_TOKEN or FLEET_TOKEN_FILE, in that order; it stays NULL when none
 * is given (the config context may still have one).  FL_EUSAGE for both
 * --token and --token-file, or an empty file.
 */
int cli_token(struct cli_ctx *ctx);

/* Load context settings and create ctx->http. */
int cli_connect(struct cli_ctx *ctx);

/* The server URL cli_connect would use (*@ret a new string), without
 * connecting or reading the token.  FL_EUSAGE when there is none. */
int cli_server(struct cli_ctx *ctx, char **ret);

/* Release what the context holds. */
void cli_ctx_release(struct cli_ctx *ctx);

/* stderr message unless -q. */
void cli_note(struct cli_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* --- output (cli/out.c) --- */

struct cli_col {
	const char *header;
	const char *key; /* member of each row object */
};

/* One JSON document on stdout. */
void cli_print_json(const json_t *j);

/* Rows as an aligned table with @cols, or JSON with -o json. */
void cli_print_rows(struct cli_ctx *ctx, const json_t *rows,
		    const struct cli_col *cols);

/* A list command with no arguments: GET @path, its rows as
 * cli_print_rows prints them.  0 or the error's code. */
int cli_list_cmd(struct cli_ctx *ctx, int argc, char **argv, const char *path,
		 const struct cli_col *cols);

/* An object as "key: value" lines, or JSON with -o json. */
void cli_print_object(struct cli_ctx *ctx, const json_t *obj,
		      const struct cli_col *fields);

/*
 * What a command that acts (writes a file, revokes, switches context)
 * did: with -o json one JSON document on stdout; in table mode nothing
 * (its note goes to stderr).  Takes ownership of @j (NULL is fine).
 */
void cli_print_result(struct cli_ctx *ctx, json_t *j);

/*
 * -o of a command that once took "-o FILE" for its output file: "table"
 * and "json" are the output format, as everywhere (never file names);
 * anything else is the deprecated FILE (use --out): warn, set *@ret_out.
 * 0 or FL_EUSAGE.
 */
int cli_legacy_out(struct cli_ctx *ctx, const char *value,
		   const char **ret_out);

/* A --group G ('g') or --label K[=V] ('l') value fleetd could ever
 * match. */
bool cli_filter_ok(int c, const char *v);

/* Text of a JSON scalar for tables ("-" for null/absent). */
const char *cli_cell(const json_t *v, char *buf, size_t len);

/* --- files written with --out (cli/out_file.c) --- */

/*
 * The file a command writes: a fresh 0600 temp file next to @path, moved
 * there only by cli_out_commit (link(2): never over an existing file;
 * with @force rename(2)).  cli_out_open fails before anything is asked
 * of fleetd: FL_EUSAGE for no file name, FL_ECONFLICT when @path exists
 * and not @force, FL_EIO.
 */
struct cli_out_file {
	const char *path; /* borrowed */
	char *tmp;
	int fd; /* write here */
	bool force;
};
int cli_out_open(struct cli_out_file *o, const char *path, bool force,
		 struct fl_error *err);
/* Sync and move into place, then close: FL_ECONFLICT, FL_EIO. */
int cli_out_commit(struct cli_out_file *o, struct fl_error *err);
/* Close and remove the temp file (after a failure; after a commit it
 * does nothing). */
void cli_out_close(struct cli_out_file *o);

/* An entry of an archive written by cli_write_tgz. */
struct cli_tgz_file {
	const char *name;
	const char *data; /* text */
	mode_t mode;
};

/*
 * Write @files under directory @dir (0700) as a .tar.gz into @o, then
 * commit it (cli_out_commit).  FL_ENOTFOUND (no libarchive), FL_EIO,
 * FL_ECONFLICT.
 */
int cli_write_tgz(struct cli_out_file *o, const char *dir,
		  const struct cli_tgz_file *files, size_t n,
		  struct fl_error *err);

/* --- config file (cli/config.c) --- */

/* The config file path: FLEETCTL_CONFIG, else
 * $XDG_CONFIG_HOME/fleetctl/config, else ~/.config/fleetctl/config. */
char *cli_config_path(void);

/* Section name of a context: 'context "NAME"'. */
char *cli_context_section(const char *name);

/* --- command tables and handlers, one file per area --- */
extern const struct fl_cmd cli_commands[];
extern const struct fl_cmd cli_token_cmds[];
extern const struct fl_cmd cli_config_cmds[];
extern const struct fl_cmd cli_devices_cmds[];
extern const struct fl_cmd cli_keys_cmds[];
extern const struct fl_cmd cli_root_cmds[];
extern const struct fl_cmd cli_bundle_cmds[];
extern const struct fl_cmd cli_bundles_cmds[];
extern const struct fl_cmd cli_jobs_cmds[];
extern const struct fl_cmd cli_rollout_cmds[];
extern const struct fl_cmd cli_shadow_cmds[];
extern const struct fl_cmd cli_technician_cmds[];

int cmd_version(int argc, char **argv, void *arg);
int cmd_whoami(int argc, char **argv, void *arg);
int cmd_status(int argc, char **argv, void *arg);
int cmd_login(int argc, char **argv, void *arg);
int cmd_completion(int argc, char **argv, void *arg);
int cmd_complete(int argc, char **argv, void *arg);
int cmd_rotate(int argc, char **argv, void *arg);
int cmd_provision(int argc, char **argv, void *arg);
int cmd_update(int argc, char **argv, void *arg);
int cmd_rollback(int argc, char **argv, void *arg);
int cmd_diag(int argc, char **argv, void *arg);
int cmd_telemetry(int argc, char **argv, void *arg);
extern const struct fl_cmd cli_diag_cmds[];

#endif

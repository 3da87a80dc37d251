/* SPDX-License-Identifier: MIT */
#ifndef FL_SUBCMD_H
#define FL_SUBCMD_H

/*
 * One subcommand mechanism for fleetctl, fleetd and fleet-agent
 * (STYLE.md "one table, like git.c"): a sorted table per level, dispatch
 * by name, "--help" for every level and leaf, usage errors (exit 2) that
 * repeat the command's usage, and the "--list-commands" lines that the
 * completions and the docs test are generated from.  The dispatcher
 * prints (help and usage errors go to the user); it never exits.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

#include "err.h"

enum {
	FL_CMD_HIDDEN = 1 << 0, /* not in help or completions */
	FL_CMD_PROG = 1 << 8,	/* first bit the program may use */
};

struct fl_cmd {
	const char *name;
	/* argv[0] is the command's own name; @ctx is the program's */
	int (*fn)(int argc, char **argv, void *ctx);
	unsigned flags;
	const char *usage;   /* after the program name: "token create NAME" */
	const char *summary; /* one line */
	const char *options; /* its long options, "--role --ttl"; "" none */
	/* next level, {NULL} ends.  With fn too, the command runs itself
	 * unless its first argument names one of these ("diag ID CHECK"
	 * and "diag bundle ID"); it then needs usage and options too. */
	const struct fl_cmd *sub;
};

/* What differs between the programs. */
struct fl_cmd_prog {
	const char *name;	/* "fleetd" */
	const char *page;	/* "fleetd(8)" */
	const char *list_usage; /* after "usage: NAME PREFIX ": "COMMAND ..." */
	int width;		/* of the command column in lists */
	bool help_word;		/* "NAME help" lists the commands too */
	/* after a leaf's usage and summary in --help (fleetctl's options) */
	void (*help_extra)(const struct fl_cmd *c);
	/* before a leaf runs; 0 or the code to return instead */
	int (*prepare)(const struct fl_cmd *c, void *ctx);
};

/*
 * Run the command argv[0] of @table (argv[0] "--help" or "-h", and at
 * the top "help" with prog->help_word, lists the table on stdout; at the
 * top "--list-commands" is fl_cmd_list on stdout, FL_ERR for a bad table).  No command or an unknown one: a message
 * and the list on stderr, FL_EUSAGE.  A leaf given --help or -h (before
 * any "--") prints its usage and summary and returns 0.  Otherwise what
 * the command's fn returns.  getopt is reset (optind = 0) before fn.
 */
int fl_cmd_dispatch(const struct fl_cmd_prog *prog,
		    const struct fl_cmd *table, int argc, char **argv,
		    void *ctx);

/*
 * A usage error: "NAME: error: MSG" on stderr, then "usage: NAME USAGE"
 * of the leaf running now (none before dispatch, e.g. for a global
 * option).  Returns FL_EUSAGE.
 */
int fl_cmd_usage(const struct fl_cmd_prog *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int fl_cmd_vusage(const struct fl_cmd_prog *prog, const char *fmt,
		  va_list ap);

/* The leaf running now, or NULL. */
const struct fl_cmd *fl_cmd_current(void);

/*
 * "--list-commands": one line per leaf and per branch with a function,
 * hidden ones too: its path, then its options ("token create --role
 * --ttl").  Refuses a bad table
 * (fl_cmd_check) with FL_ERR and prints nothing then.
 */
int fl_cmd_list(const struct fl_cmd *table, FILE *f, struct fl_error *err);

/*
 * The table's rules: names sorted (strcmp) and unique per level, every
 * entry has a name and summary, a leaf has fn, usage and options (maybe
 * ""), a branch has a non-empty sub-table and, when it has fn too, usage
 * and options like a leaf.  0 or FL_ERR naming the first entry that
 * breaks one.
 */
int fl_cmd_check(const struct fl_cmd *table, struct fl_error *err);

#endif

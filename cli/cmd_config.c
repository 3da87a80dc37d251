/* SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "util.h"

static int load(struct cli_ctx *ctx, char **ret_path, struct fl_ini **ret)
{
	char *path = cli_config_path();
	int rc = fl_ini_load(path, ret, &ctx->err);

	if (rc == FL_ENOTFOUND) {
		fl_error_clear(&ctx->err);
		*ret = fl_ini_new();
		rc = 0;
	}
	if (rc)
		free(path);
	else
		*ret_path = path;
	return rc;
}

/* Context name from a section 'context "NAME"', or NULL. */
static char *context_name(const char *section)
{
	size_t n = strlen(section);

	if (strncmp(section, "context \"", 9) != 0 || n < 11 ||
	    section[n - 1] != '"')
		return NULL;
	return fl_xstrndup(section + 9, n - 10);
}

static json_t *contexts_json(const struct fl_ini *ini)
{
	const char *cur = fl_ini_get(ini, "fleetctl", "current-context");
	json_t *arr = json_array();

	for (size_t i = 0; i < ini->n; i++) {
		char *name = context_name(ini->v[i].section);

		if (name && strcmp(ini->v[i].key, "server") == 0)
			json_array_append_new(
				arr,
				json_pack("{s:s, s:s, s:s?, s:b, s:b}", "name",
					  name, "server", ini->v[i].value,
					  "ca",
					  fl_ini_get(ini, ini->v[i].section,
						     "ca"),
					  "token_set",
					  fl_ini_get(ini, ini->v[i].section,
						     "token") != NULL,
					  "current", fl_streq(cur, name)));
		free(name);
	}
	return arr;
}

static int cmd_config_show(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;
	static const struct cli_col cols[] = {
		{"CURRENT", "current"}, {"NAME", "name"}, {"SERVER", "server"},
		{"CA", "ca"},	     {NULL, NULL}};
	struct fl_ini *ini;
	char *path;
	json_t *arr;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 0, 0, "no arguments")))
		return rc;
	rc = load(ctx, &path, &ini);
	if (rc)
		return rc;
	arr = contexts_json(ini);
	cli_print_rows(ctx, arr, cols);
	json_decref(arr);
	fl_ini_free(ini);
	free(path);
	return 0;
}

/* config use NAME / config delete NAME */
static int edit(int argc, char **argv, struct cli_ctx *ctx, bool del)
{
	struct fl_ini *ini;
	char *path, *section;
	const char *name;
	int rc;

	if ((rc = cli_args(ctx, argc, argv, 1, 1, "one context name")))
		return rc;
	name = argv[optind];
	rc = load(ctx, &path, &ini);
	if (rc)
		return rc;
	section = cli_context_section(name);
	if (!fl_ini_get(ini, section, "server"))
		rc = fl_fail(&ctx->err, FL_ENOTFOUND, "no context '%s' in %s",
			     name, path);
	else if (del)
		fl_ini_remove_section(ini, section);
	if (!rc && (!del || fl_streq(fl_ini_get(ini, "fleetctl",
						 "current-context"),
				      name)))
		rc = fl_ini_set(ini, "fleetctl", "current-context",
				del ? NULL : name, &ctx->err);
	if (!rc)
		rc = fl_ini_save(ini, path, 0600, &ctx->err);
	if (!rc)
		cli_print_result(ctx, json_pack("{s:s, s:s?, s:s}",
						del ? "deleted" : "used", name,
						"current_context",
						fl_ini_get(ini, "fleetctl",
							   "current-context"),
						"config", path));
	free(section);
	fl_ini_free(ini);
	free(path);
	return rc;
}

static int cmd_config_use(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;

	return edit(argc, argv, ctx, false);
}

static int cmd_config_delete(int argc, char **argv, void *arg)
{
	struct cli_ctx *ctx = arg;

	return edit(argc, argv, ctx, true);
}

const struct fl_cmd cli_config_cmds[] = {
	{"delete", cmd_config_delete, 0, "config delete NAME [-o json]",
	 "remove a context", "--output", NULL},
	{"show", cmd_config_show, 0, "config show [-o json]",
	 "list the contexts (tokens are never shown)", "--output", NULL},
	{"use", cmd_config_use, 0, "config use NAME [-o json]",
	 "make NAME the current context", "--output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

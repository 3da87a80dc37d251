/* SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "fsutil.h"
#include "util.h"

char *cli_config_path(void)
{
	const char *p = getenv("FLEETCTL_CONFIG"), *xdg, *home;

	if (p && *p)
		return fl_xstrdup(p);
	xdg = getenv("XDG_CONFIG_HOME");
	if (xdg && *xdg)
		return fl_xasprintf("%s/fleetctl/config", xdg);
	home = getenv("HOME");
	return fl_xasprintf("%s/.config/fleetctl/config", home ? home : ".");
}

char *cli_context_section(const char *name)
{
	return fl_xasprintf("context \"%s\"", name);
}

static const char *pick(const char *flag, const char *env_name,
			const struct fl_ini *ini, const char *section,
			const char *key)
{
	const char *v = getenv(env_name);

	if (flag)
		return flag;
	if (v && *v)
		return v;
	return fl_ini_get(ini, section, key);
}

int cli_token(struct cli_ctx *ctx)
{
	const char *file = ctx->token_file, *env = getenv("FLEET_TOKEN");
	int rc;

	if (ctx->token_buf) /* already read */
		return 0;
	if (ctx->token && file)
		return fl_fail(&ctx->err, FL_EUSAGE,
			       "give --token or --token-file, not both");
	if (ctx->token)
		return 0;
	if (!file && env && *env) {
		ctx->token = env;
		return 0;
	}
	if (!file)
		file = getenv("FLEET_TOKEN_FILE");
	if (!file || !*file)
		return 0;
	rc = fl_read_secret(file, &ctx->token_buf, &ctx->err);
	if (!rc)
		ctx->token = ctx->token_buf;
	return rc;
}

/*
 * The config file and the section of the chosen context: --context,
 * else FLEET_CONTEXT, else the file's current-context, else "default".
 * *@ini may be NULL (no file).
 */
static int load_context(struct cli_ctx *ctx, struct fl_ini **ini,
			char **section)
{
	char *path = cli_config_path();
	const char *name;
	int rc;

	rc = fl_ini_load(path, ini, &ctx->err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(&ctx->err);
		rc = 0;
	}
	if (rc)
		goto out;
	name = ctx->context ? ctx->context : getenv("FLEET_CONTEXT");
	if (!name || !*name)
		name = fl_ini_get(*ini, "fleetctl", "current-context");
	*section = cli_context_section(name && *name ? name : "default");
	if (ctx->context && !fl_ini_get(*ini, *section, "server"))
		rc = fl_fail(&ctx->err, FL_EUSAGE,
			     "no context '%s' in %s (see 'fleetctl login')",
			     name, path);
out:
	free(path);
	return rc;
}

/* The server URL of @ini's @section, flags and environment first. */
static int server_url(struct cli_ctx *ctx, const struct fl_ini *ini,
		      const char *section, char **ret)
{
	const char *s =
	    pick(ctx->server, "FLEET_SERVER", ini, section, "server");

	if (!s)
		return fl_fail(&ctx->err, FL_EUSAGE,
			       "no server configured (use 'fleetctl login', "
			       "--server or FLEET_SERVER)");
	return cli_server_url(ctx, s, ret);
}

int cli_server(struct cli_ctx *ctx, char **ret)
{
	struct fl_ini *ini = NULL;
	char *section = NULL;
	int rc = load_context(ctx, &ini, &section);

	if (!rc)
		rc = server_url(ctx, ini, section, ret);
	fl_ini_free(ini);
	free(section);
	return rc;
}

/* Settings come from, in order: global flags, FLEET_* environment, the
 * chosen context of the config file (load_context). */
int cli_connect(struct cli_ctx *ctx)
{
	struct fl_http_opts o = {0};
	struct fl_ini *ini = NULL;
	char *section = NULL, *url = NULL;
	int rc;

	rc = load_context(ctx, &ini, &section);
	if (!rc)
		rc = server_url(ctx, ini, section, &url);
	if (!rc)
		rc = cli_token(ctx);
	if (rc)
		goto out;
	o.base_url = url;
	o.token = pick(ctx->token, "FLEET_TOKEN", ini, section, "token");
	o.ca_file = pick(ctx->ca, "FLEET_CA", ini, section, "ca");
	o.retries = 3; /* safe: fleetd keeps the answer of each key */
	rc = fl_http_new(&o, &ctx->http, &ctx->err);
out:
	free(url);
	fl_ini_free(ini);
	free(section);
	return rc;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	fl_http_free(ctx->http);
	ctx->http = NULL;
	fl_free_secret(ctx->token_buf);
	ctx->token_buf = NULL;
}

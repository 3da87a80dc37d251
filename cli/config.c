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
 * Settings come from, in order: global flags, FLEET_* environment, the
 * chosen context of the config file.  The context is --context, else
 * FLEET_CONTEXT, else the file's current-context, else "default".
 */
int cli_connect(struct cli_ctx *ctx)
{
	struct fl_http_opts o = {0};
	struct fl_ini *ini = NULL;
	char *path = cli_config_path(), *section = NULL, *url = NULL;
	const char *name;
	int rc;

	rc = fl_ini_load(path, &ini, &ctx->err);
	if (rc == FL_ENOTFOUND) {
		fl_error_clear(&ctx->err);
		rc = 0;
	}
	if (rc)
		goto out;
	name = ctx->context ? ctx->context : getenv("FLEET_CONTEXT");
	if (!name || !*name)
		name = fl_ini_get(ini, "fleetctl", "current-context");
	section = cli_context_section(name && *name ? name : "default");
	if (ctx->context && !fl_ini_get(ini, section, "server")) {
		rc = fl_fail(&ctx->err, FL_EUSAGE,
			     "no context '%s' in %s (see 'fleetctl login')",
			     name, path);
		goto out;
	}
	o.base_url = pick(ctx->server, "FLEET_SERVER", ini, section, "server");
	rc = cli_token(ctx);
	if (rc)
		goto out;
	o.token = pick(ctx->token, "FLEET_TOKEN", ini, section, "token");
	o.ca_file = pick(ctx->ca, "FLEET_CA", ini, section, "ca");
	if (!o.base_url) {
		rc = fl_fail(&ctx->err, FL_EUSAGE,
			     "no server configured (use 'fleetctl login', "
			     "--server or FLEET_SERVER)");
		goto out;
	}
	rc = cli_server_url(ctx, o.base_url, &url);
	o.base_url = url;
	if (!rc)
		rc = fl_http_new(&o, &ctx->http, &ctx->err);
out:
	free(url);
	fl_ini_free(ini);
	free(section);
	free(path);
	return rc;
}

void cli_ctx_release(struct cli_ctx *ctx)
{
	fl_http_free(ctx->http);
	ctx->http = NULL;
	fl_free_secret(ctx->token_buf);
	ctx->token_buf = NULL;
}

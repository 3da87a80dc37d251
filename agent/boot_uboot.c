/* SPDX-License-Identifier: MIT */
/*
 * The "uboot" and "sim" backends: libubootenv on the devices named by a
 * fw_env.config.  "sim" is the same code on two plain files in a
 * directory (a redundant environment), plus the fw_env.config describing
 * them, so fw_printenv/fw_setenv work on a simulated device too.
 *
 * libubootenv keeps two copies when the config has two lines: a store
 * writes the copy that is not current, with its flags byte one higher,
 * and fsyncs it.  A torn write fails its CRC and the loader keeps the
 * older copy, so each store is atomic.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libuboot.h>

#include "boot_internal.h"
#include "fsutil.h"
#include "util.h"

#define SIM_ENV_SIZE 0x2000
#define SIM_ENV1 "uboot.env"
#define SIM_ENV2 "uboot-redund.env"
#define SIM_CONFIG "fw_env.config"

struct uboot_priv {
	char *config;	   /* fw_env.config path */
	char *default_env; /* "uboot" only, optional */
	char *env[2];	   /* "sim" only: the two environment files */
	size_t env_size;   /* of the config's first device; 0: unknown */
};

/*
 * A libubootenv context for @config, not yet opened; the library is
 * mapped from here to ctx_free (agent/lazy_ubootenv.c).
 */
static int ctx_new(const char *config, struct uboot_ctx **ret,
		   struct fl_error *err)
{
	struct uboot_ctx *ctx = NULL;
	int r;

	if (boot_ubootenv_hold(err))
		return FL_ERR;
	r = libuboot_initialize(&ctx, NULL);
	if (r < 0) {
		boot_ubootenv_drop();
		return fl_fail(err, FL_EIO,
			       "libubootenv: cannot initialise: %s",
			       strerror(-r));
	}
	r = libuboot_read_config(ctx, config);
	if (r < 0) {
		libuboot_exit(ctx);
		boot_ubootenv_drop();
		return fl_fail(err, FL_EPARSE,
			       "libubootenv rejects '%s' (or cannot open the "
			       "devices it names): %s",
			       config, strerror(-r));
	}
	*ret = ctx;
	return 0;
}

static void ctx_free(struct uboot_ctx *ctx, bool opened)
{
	if (opened)
		libuboot_close(ctx);
	libuboot_exit(ctx);
	boot_ubootenv_drop();
}

/* Open the stored environment; FL_EPARSE when no copy is valid. */
static int ctx_open(struct uboot_ctx *ctx, const char *config,
		    struct fl_error *err)
{
	int r = libuboot_open(ctx);

	if (r == 0)
		return 0;
	if (r == -ENODATA || r == -EIO)
		return fl_fail(err, FL_EPARSE,
			       "no valid U-Boot environment on the devices of "
			       "'%s'",
			       config);
	return fl_fail(err, FL_EIO,
		       "cannot read the U-Boot environment of "
		       "'%s': %s",
		       config, strerror(-r));
}

static int uboot_load(struct agent_boot *b, struct boot_vars *ret,
		      struct fl_error *err)
{
	struct uboot_priv *p = b->priv;
	struct boot_vars vars = {0};
	struct uboot_ctx *ctx;
	int rc;

	rc = ctx_new(p->config, &ctx, err);
	if (rc)
		return rc;
	rc = ctx_open(ctx, p->config, err);
	if (rc)
		goto out_ctx;
	for (size_t i = 0; i < BOOT_NVARS; i++)
		vars.v[i] = libuboot_get_env(ctx, boot_var_names[i]);
	*ret = vars;
	rc = 0;
out_ctx:
	ctx_free(ctx, true);
	return rc;
}

/*
 * Start a fresh environment when none is valid: from the default env file
 * when one is configured ("uboot"), else empty ("sim").
 */
static int start_fresh(struct uboot_ctx *ctx, const struct uboot_priv *p,
		       struct fl_error *err)
{
	int r;

	if (p->env[0])
		return 0;
	if (!p->default_env)
		return fl_fail(err, FL_EPARSE,
			       "no valid U-Boot environment on the devices of "
			       "'%s' and no default environment to start from",
			       p->config);
	r = libuboot_load_file(ctx, p->default_env);
	if (r < 0)
		return fl_fail(err, FL_EIO,
			       "cannot load default environment '%s': %s",
			       p->default_env, strerror(-r));
	return 0;
}

static int sim_make_files(const struct uboot_priv *p, struct fl_error *err);

/*
 * The environment size of the first device line of fw_env.config
 * ("device offset size ..."; libubootenv reads the size as hex), or 0.
 */
static size_t config_env_size(const char *config)
{
	char *text = NULL, *line, *save = NULL;
	size_t size = 0;

	if (fl_read_file(config, 64 * 1024, &text, NULL, NULL))
		return 0;
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		line += strspn(line, " \t");
		if (*line == '#' || *line == '\0')
			continue;
		if (sscanf(line, "%*s %*s %zx", &size) != 1)
			size = 0;
		break;
	}
	free(text);
	return size;
}

/*
 * Refuse a store whose variables do not fit the environment before
 * libubootenv sees it: its libuboot_env_store (0.3.2) returns -ENOMEM
 * for that without freeing its image buffer (a leak per attempt, found
 * by fuzz_bootenv).  Each variable takes name=value and a NUL; the list
 * ends with one more NUL, after the CRC and the redundant flags byte.
 */
static int check_fits(struct uboot_ctx *ctx, const struct uboot_priv *p,
		      struct fl_error *err)
{
	size_t size = p->env_size, need = 1 + 5;
	void *e = NULL;

	while ((e = libuboot_iterator(ctx, e)))
		need += strlen(libuboot_getname(e)) +
			strlen(libuboot_getvalue(e)) + 2;
	if (size && need > size)
		return fl_fail(err, FL_ELIMIT,
			       "the U-Boot environment of '%s' is full: its "
			       "variables need %zu bytes of its %zu",
			       p->config, need, size);
	return 0;
}

static int uboot_store(struct agent_boot *b, const struct boot_vars *vars,
		       bool fresh, struct fl_error *err)
{
	struct uboot_priv *p = b->priv;
	struct fl_error lerr = {0};
	struct uboot_ctx *ctx;
	int rc, r;

	if (fresh && p->env[0]) {
		rc = sim_make_files(p, err);
		if (rc)
			return rc;
	}
	rc = ctx_new(p->config, &ctx, err);
	if (rc)
		return rc;
	rc = ctx_open(ctx, p->config, &lerr);
	if (rc == FL_EPARSE && fresh)
		rc = start_fresh(ctx, p, &lerr);
	if (rc) {
		rc = fl_fail(err, rc, "%s", lerr.msg);
		goto out_ctx;
	}
	for (size_t i = 0; i < BOOT_NVARS; i++) {
		r = libuboot_set_env(ctx, boot_var_names[i], vars->v[i]);
		if (r < 0) {
			rc = fl_fail(err, FL_EIO,
				     "cannot set U-Boot variable "
				     "%s: %s",
				     boot_var_names[i], strerror(-r));
			goto out_ctx;
		}
	}
	rc = check_fits(ctx, p, err);
	if (rc)
		goto out_ctx;
	r = libuboot_env_store(ctx);
	if (r < 0) {
		rc = fl_fail(err, FL_EIO,
			     "cannot store the U-Boot environment "
			     "of '%s': %s",
			     p->config, strerror(-r));
		goto out_ctx;
	}
	rc = 0;
out_ctx:
	ctx_free(ctx, true);
	return rc;
}

static void uboot_close(struct agent_boot *b)
{
	struct uboot_priv *p = b->priv;

	if (!p)
		return;
	free(p->config);
	free(p->default_env);
	free(p->env[0]);
	free(p->env[1]);
	free(p);
	b->priv = NULL;
}

/* Check that libubootenv accepts the configuration. */
static int check_config(const char *config, struct fl_error *err)
{
	struct uboot_ctx *ctx;
	int rc;

	rc = ctx_new(config, &ctx, err);
	if (rc)
		return rc;
	ctx_free(ctx, false);
	return 0;
}

static int uboot_open(struct agent_boot *b, const struct agent_boot_opts *o,
		      struct fl_error *err)
{
	struct uboot_priv *p = fl_xcalloc(1, sizeof(*p));
	int rc;

	p->config = fl_xstrdup(o->path);
	if (o->default_env)
		p->default_env = fl_xstrdup(o->default_env);
	b->priv = p;
	rc = check_config(p->config, err);
	p->env_size = config_env_size(p->config);
	if (rc)
		uboot_close(b);
	return rc;
}

/*
 * Create one environment file as erased flash (zeros), or extend a short
 * (damaged) one to the environment size so a fresh store can use it.
 */
static int sim_make_env(const char *path, struct fl_error *err)
{
	struct stat sb;
	int fd, rc = 0;

	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return fl_fail_errno(err, FL_EIO, "cannot create '%s'", path);
	if (fstat(fd, &sb) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot stat '%s'", path);
	else if (sb.st_size < SIM_ENV_SIZE &&
		 (ftruncate(fd, SIM_ENV_SIZE) < 0 || fsync(fd) < 0))
		rc = fl_fail_errno(err, FL_EIO, "cannot size '%s'", path);
	close(fd);
	if (!rc && sb.st_size == 0)
		rc = fl_fsync_parent(path, err);
	return rc;
}

/* The sim directory's fw_env.config and environment files. */
static int sim_make_files(const struct uboot_priv *p, struct fl_error *err)
{
	char *text, *cur = NULL;
	int rc;

	for (int i = 0; i < 2; i++) {
		rc = sim_make_env(p->env[i], err);
		if (rc)
			return rc;
	}
	text = fl_xasprintf("# fleet-agent sim: redundant U-Boot environment\n"
			    "%s 0x0 0x%x\n%s 0x0 0x%x\n",
			    p->env[0], SIM_ENV_SIZE, p->env[1], SIM_ENV_SIZE);
	rc = 0;
	if (fl_read_file(p->config, 4096, &cur, NULL, NULL) ||
	    !fl_streq(cur, text))
		rc = fl_write_atomic_str(p->config, text, 0644, err);
	free(cur);
	free(text);
	return rc;
}

static int sim_open(struct agent_boot *b, const struct agent_boot_opts *o,
		    struct fl_error *err)
{
	struct uboot_priv *p;
	char dir[PATH_MAX];
	int rc;

	if (strpbrk(o->path, " \t\n#"))
		return fl_fail(err, FL_EINVAL,
			       "sim directory '%s' has a blank or '#' that "
			       "fw_env.config cannot hold",
			       o->path);
	rc = fl_mkdir_p(o->path, 0755, err);
	if (rc)
		return rc;
	if (!realpath(o->path, dir))
		return fl_fail_errno(err, FL_EIO, "cannot resolve '%s'",
				     o->path);
	if (strpbrk(dir, " \t\n#"))
		return fl_fail(err, FL_EINVAL,
			       "sim directory '%s' has a blank or '#' that "
			       "fw_env.config cannot hold",
			       dir);
	p = fl_xcalloc(1, sizeof(*p));
	b->priv = p;
	p->config = fl_path_join(dir, SIM_CONFIG);
	p->env[0] = fl_path_join(dir, SIM_ENV1);
	p->env[1] = fl_path_join(dir, SIM_ENV2);
	rc = sim_make_files(p, err);
	if (!rc)
		rc = check_config(p->config, err);
	p->env_size = SIM_ENV_SIZE;
	if (rc)
		uboot_close(b);
	return rc;
}

const struct boot_ops boot_uboot_ops = {
    .name = "uboot",
    .open = uboot_open,
    .close = uboot_close,
    .load = uboot_load,
    .store = uboot_store,
};

const struct boot_ops boot_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .close = uboot_close,
    .load = uboot_load,
    .store = uboot_store,
};

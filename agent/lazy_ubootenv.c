/* SPDX-License-Identifier: MIT */
/*
 * libubootenv, mapped only during an access to the U-Boot environment
 * (common/lazylib.h, held libraries): the agent reads or writes it at
 * start and at a few steps of an update, and an idle agent maps neither
 * it nor the zlib it brings.
 */
#include <stddef.h>

#include <libuboot.h>

#include "boot.h"
#include "boot_internal.h"
#include "lazylib.h"

static struct fl_lazylib libubootenv =
    FL_LAZYLIB_INIT(FL_SONAME_LIBUBOOTENV, FL_PACKAGE_LIBUBOOTENV);

int boot_ubootenv_hold(struct fl_error *err)
{
	return fl_lazylib_hold(&libubootenv, err);
}

void boot_ubootenv_drop(void)
{
	fl_lazylib_drop(&libubootenv);
}

/* One hold that is never dropped (boot.h). */
int agent_boot_keep_loaded(struct fl_error *err)
{
	return fl_lazylib_hold(&libubootenv, err);
}

FL_LAZY_HELD(libubootenv, int, libuboot_initialize,
	     (struct uboot_ctx **out, struct uboot_env_device *devs),
	     (out, devs))
FL_LAZY_HELD(libubootenv, int, libuboot_read_config,
	     (struct uboot_ctx *ctx, const char *config), (ctx, config))
FL_LAZY_HELD(libubootenv, void, libuboot_exit, (struct uboot_ctx *ctx), (ctx))
FL_LAZY_HELD(libubootenv, void, libuboot_close, (struct uboot_ctx *ctx),
	     (ctx))
FL_LAZY_HELD(libubootenv, int, libuboot_open, (struct uboot_ctx *ctx), (ctx))
FL_LAZY_HELD(libubootenv, char *, libuboot_get_env,
	     (struct uboot_ctx *ctx, const char *name), (ctx, name))
FL_LAZY_HELD(libubootenv, int, libuboot_load_file,
	     (struct uboot_ctx *ctx, const char *file), (ctx, file))
FL_LAZY_HELD(libubootenv, int, libuboot_set_env,
	     (struct uboot_ctx *ctx, const char *name, const char *value),
	     (ctx, name, value))
FL_LAZY_HELD(libubootenv, void *, libuboot_iterator,
	     (struct uboot_ctx *ctx, void *next), (ctx, next))
FL_LAZY_HELD(libubootenv, const char *, libuboot_getname, (void *entry),
	     (entry))
FL_LAZY_HELD(libubootenv, const char *, libuboot_getvalue, (void *entry),
	     (entry))
FL_LAZY_HELD(libubootenv, int, libuboot_env_store, (struct uboot_ctx *ctx),
	     (ctx))

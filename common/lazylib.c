/* SPDX-License-Identifier: MIT */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

#include "lazylib.h"
#include "util.h"

/* pthread_once takes no argument: the library being loaded. */
static __thread struct fl_lazylib *loading;

static void load_once(void)
{
	struct fl_lazylib *lib = loading;
	const char *e;

	lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
	if (!lib->handle) {
		e = dlerror();
		fl_strlcpy(lib->why, e ? e : "unknown error", sizeof(lib->why));
	}
}

int fl_lazylib_load(struct fl_lazylib *lib, struct fl_error *err)
{
	loading = lib;
	pthread_once(&lib->once, load_once);
	loading = NULL;
	if (lib->handle)
		return 0;
	return fl_fail(err, FL_ERR,
		       "cannot load %s (%s): install the package %s",
		       lib->soname, lib->why, lib->package);
}

static _Noreturn void die(const char *msg)
{
	fprintf(stderr, "fleet: %s\n", msg);
	exit(1);
}

static void *must_sym(struct fl_lazylib *lib, void *handle, const char *name)
{
	void *sym = dlsym(handle, name);
	char msg[FL_ERR_MSG_MAX];

	if (sym)
		return sym;
	snprintf(msg, sizeof(msg),
		 "%s has no symbol %s: install the version of %s this "
		 "program was built for",
		 lib->soname, name, lib->package);
	die(msg);
}

void *fl_lazylib_sym(struct fl_lazylib *lib, const char *name)
{
	struct fl_error err = {0};

	if (fl_lazylib_load(lib, &err))
		die(err.msg);
	return must_sym(lib, lib->handle, name);
}

int fl_lazylib_hold(struct fl_lazylib *lib, struct fl_error *err)
{
	const char *e;
	int rc = 0;

	pthread_mutex_lock(&lib->lock);
	if (lib->holds == 0) {
		lib->handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
		if (!lib->handle) {
			e = dlerror();
			rc = fl_fail(err, FL_ERR,
				     "cannot load %s (%s): install the package "
				     "%s",
				     lib->soname, e ? e : "unknown error",
				     lib->package);
		}
	}
	if (!rc)
		lib->holds++;
	pthread_mutex_unlock(&lib->lock);
	return rc;
}

void fl_lazylib_drop(struct fl_lazylib *lib)
{
	pthread_mutex_lock(&lib->lock);
	if (lib->holds > 0 && --lib->holds == 0) {
		dlclose(lib->handle);
		lib->handle = NULL;
	}
	pthread_mutex_unlock(&lib->lock);
}

void *fl_lazylib_sym_held(struct fl_lazylib *lib, const char *name)
{
	void *handle;
	char msg[FL_ERR_MSG_MAX];

	pthread_mutex_lock(&lib->lock);
	handle = lib->holds ? lib->handle : NULL;
	pthread_mutex_unlock(&lib->lock);
	if (handle)
		return must_sym(lib, handle, name);
	snprintf(msg, sizeof(msg), "%s called outside a session of %s", name,
		 lib->soname);
	die(msg);
}

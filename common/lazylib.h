/* SPDX-License-Identifier: MIT */
#ifndef FL_LAZYLIB_H
#define FL_LAZYLIB_H

/*
 * Libraries loaded when a command first needs them, not when a program
 * starts (docs/decisions.md, "Heavy libraries load on first use").
 *
 * Debian's libcurl, libarchive and libgit2 each bring a chain of other
 * libraries (Kerberos, LDAP, GnuTLS, ICU, libxml2, libssh2, ...) that
 * cost megabytes of memory in every process that maps them, whether it
 * uses them or not: an idle agent never downloads, `fleetctl bundle
 * verify` never talks HTTP.  So no program links them; instead a shim
 * (common/lazy_curl.c, signing/lazy_git2.c, cli/lazy_archive.c) defines
 * each function the code calls, with the library header's own
 * prototype (the compiler checks every one), and forwards it to the
 * symbol that dlopen() found.  Callers are unchanged; they call
 * fl_lazylib_load() where a missing library should be a clean error
 * rather than the abort of a shim called before it.
 *
 * The library stays loaded until the process ends, except one used in
 * short sessions by a long-running process: between fl_lazylib_hold()
 * and fl_lazylib_drop() its FL_LAZY_HELD functions may be called, and
 * the last drop unmaps it (the agent's U-Boot environment: a few
 * accesses per update, none while idle).
 */
#include <pthread.h>

#include "err.h"

struct fl_lazylib {
	const char *soname;  /* what dlopen() loads, e.g. "libcurl.so.4" */
	const char *package; /* the Debian package that ships it */
	pthread_once_t once;
	pthread_mutex_t lock; /* held libraries: holds, handle */
	unsigned holds;
	void *handle;
	char why[256]; /* dlerror() of a failed load */
};

#define FL_LAZYLIB_INIT(so, pkg)                                               \
	{.soname = (so),                                                       \
	 .package = (pkg),                                                     \
	 .once = PTHREAD_ONCE_INIT,                                            \
	 .lock = PTHREAD_MUTEX_INITIALIZER}

/* Load @lib once (thread-safe); FL_ENOTFOUND naming the package if the
 * library cannot be loaded. */
int fl_lazylib_load(struct fl_lazylib *lib, struct fl_error *err);

/* Symbol @name of @lib, loading it first; a load failure or a missing
 * symbol ends the process with a message (a packaging error). */
void *fl_lazylib_sym(struct fl_lazylib *lib, const char *name);

/* The loaded symbol @name of @lib, typed as the header declares it;
 * looked up once per call site. */
#define FL_LAZY_SYM(lib, name)                                                 \
	__extension__({                                                        \
		static __typeof__(name) *fn_;                                  \
		__typeof__(name) *f_ = __atomic_load_n(&fn_, __ATOMIC_ACQUIRE); \
		if (!f_) {                                                     \
			f_ = (__typeof__(name) *)fl_lazylib_sym(&(lib), #name); \
			__atomic_store_n(&fn_, f_, __ATOMIC_RELEASE);          \
		}                                                              \
		f_;                                                            \
	})

/*
 * Define function @name of @lib, of the prototype the library's header
 * declares, as a forwarder: FL_LAZY(lib, int, git_libgit2_init, (void),
 * ()).  @params must match the header (conflicting types otherwise).
 */
#define FL_LAZY(lib, ret, name, params, args)                                  \
	ret(name) params { return FL_LAZY_SYM(lib, name) args; }

/* Map @lib for a session (counted); FL_ENOTFOUND-style error as
 * fl_lazylib_load.  Never mix with fl_lazylib_load on one library. */
int fl_lazylib_hold(struct fl_lazylib *lib, struct fl_error *err);
/* End a session; the last one unmaps the library. */
void fl_lazylib_drop(struct fl_lazylib *lib);
/* Symbol @name of a held @lib; not held or missing ends the process. */
void *fl_lazylib_sym_held(struct fl_lazylib *lib, const char *name);

/* FL_LAZY for a held library: looked up on every call, never cached. */
#define FL_LAZY_HELD(lib, ret, name, params, args)                             \
	ret(name) params                                                       \
	{                                                                      \
		return ((__typeof__(name) *)fl_lazylib_sym_held(&(lib), #name)) \
		    args;                                                      \
	}

#endif

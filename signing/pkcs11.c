/* SPDX-License-Identifier: MIT */
/*
 * PKCS#11 private keys through OpenSSL's "pkcs11" ENGINE (libp11's
 * libengine-pkcs11-openssl).
 *
 * OpenSSL 3 deprecates the ENGINE API in favour of providers, but the
 * PKCS#11 provider is not packaged for Debian 12 while the engine is,
 * and the engine is what HSM-backed CI setups use today.  Deprecated
 * calls are therefore confined to this one file, compiled with
 * OPENSSL_SUPPRESS_DEPRECATED so -Werror stays on everywhere else.  A
 * provider-based loader (OSSL_STORE with "pkcs11:" URIs) can replace
 * this file without touching its callers.
 */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <stdlib.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include "pkcs11.h"
#include "util.h"

#define URI_MAX 1024

/*
 * Split the "module-path=" attribute out of the query part of @uri:
 * libp11 does not understand it, so it is handed to the engine as its
 * MODULE_PATH control instead.  Writes the remaining URI into @out and
 * the module path (or "") into @module.
 */
static int split_module_path(const char *uri, char *out, size_t outlen,
			     char *module, size_t modlen, struct fl_error *err)
{
	const char *q = strchr(uri, '?');
	size_t o;

	module[0] = '\0';
	if (strlen(uri) >= outlen)
		return fl_fail(err, FL_EINVAL, "PKCS#11 URI is too long");
	if (!q) {
		fl_strlcpy(out, uri, outlen);
		return 0;
	}
	o = (size_t)(q - uri);
	memcpy(out, uri, o);
	out[o] = '\0';
	for (const char *a = q + 1; *a;) {
		size_t n = strcspn(a, "&");

		if (n > 12 && strncmp(a, "module-path=", 12) == 0) {
			if (n - 12 >= modlen)
				return fl_fail(err, FL_EINVAL,
					       "PKCS#11 module path too long");
			memcpy(module, a + 12, n - 12);
			module[n - 12] = '\0';
		} else if (n) {
			o += (size_t)snprintf(out + o, outlen - o, "%c%.*s",
					      strchr(out, '?') ? '&' : '?',
					      (int)n, a);
		}
		a += n + (a[n] == '&');
	}
	return 0;
}

static int engine_setup(ENGINE *e, const char *module, struct fl_error *err)
{
	const char *pin = getenv("FLEET_PKCS11_PIN");

	if (!module[0])
		module = getenv("FLEET_PKCS11_MODULE");
	if (module && *module &&
	    !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0))
		return fl_fail_ssl(err, FL_ENOTFOUND,
				   "cannot set PKCS#11 module '%s'", module);
	if (pin && *pin && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0))
		return fl_fail_ssl(err, FL_EINVAL, "cannot set PKCS#11 PIN");
	if (!ENGINE_init(e))
		return fl_fail_ssl(err, FL_ENOTFOUND,
				   "cannot initialise the pkcs11 engine");
	return 0;
}

int fsig_pkcs11_load(const char *uri, EVP_PKEY **ret_pkey, ENGINE **ret_engine,
		     struct fl_error *err)
{
	char clean[URI_MAX], module[URI_MAX];
	EVP_PKEY *pkey;
	ENGINE *e;
	int rc;

	rc = split_module_path(uri, clean, sizeof(clean), module,
			       sizeof(module), err);
	if (rc)
		return rc;
	ENGINE_load_builtin_engines();
	e = ENGINE_by_id("pkcs11");
	if (!e)
		return fl_fail_ssl(err, FL_ENOTFOUND,
				   "OpenSSL pkcs11 engine not available "
				   "(install libengine-pkcs11-openssl)");
	rc = engine_setup(e, module, err);
	if (rc) {
		ENGINE_free(e);
		return rc;
	}
	pkey = ENGINE_load_private_key(e, clean, NULL, NULL);
	if (!pkey) {
		/* never echo the query: it may hold pin-value */
		rc = fl_fail_ssl(err, FL_ENOTFOUND,
				 "cannot load PKCS#11 key '%.*s'",
				 (int)strcspn(clean, "?"), clean);
		fsig_pkcs11_release(e);
		return rc;
	}
	*ret_pkey = pkey;
	*ret_engine = e;
	return 0;
}

void fsig_pkcs11_release(ENGINE *engine)
{
	if (!engine)
		return;
	ENGINE_finish(engine);
	ENGINE_free(engine);
}

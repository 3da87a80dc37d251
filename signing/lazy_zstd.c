/* SPDX-License-Identifier: MIT */
/*
 * libzstd, loaded on first use (common/lazylib.h): only bundles with
 * compressed payloads need it, and an idle agent needs none.
 */
#include <zstd.h>

#include "lazylib.h"
#include "reader.h"

static struct fl_lazylib libzstd =
    FL_LAZYLIB_INIT(FL_SONAME_LIBZSTD, FL_PACKAGE_LIBZSTD);

int fsig_zstd_load(struct fl_error *err)
{
	return fl_lazylib_load(&libzstd, err);
}

FL_LAZY(libzstd, unsigned, ZSTD_isError, (size_t code), (code))
FL_LAZY(libzstd, const char *, ZSTD_getErrorName, (size_t code), (code))
FL_LAZY(libzstd, ZSTD_CCtx *, ZSTD_createCCtx, (void), ())
FL_LAZY(libzstd, size_t, ZSTD_freeCCtx, (ZSTD_CCtx *c), (c))
FL_LAZY(libzstd, size_t, ZSTD_CStreamOutSize, (void), ())
FL_LAZY(libzstd, size_t, ZSTD_CCtx_reset, (ZSTD_CCtx *c, ZSTD_ResetDirective r),
	(c, r))
FL_LAZY(libzstd, size_t, ZSTD_CCtx_setParameter,
	(ZSTD_CCtx *c, ZSTD_cParameter p, int v), (c, p, v))
FL_LAZY(libzstd, size_t, ZSTD_CCtx_setPledgedSrcSize,
	(ZSTD_CCtx *c, unsigned long long n), (c, n))
FL_LAZY(libzstd, size_t, ZSTD_compressStream2,
	(ZSTD_CCtx *c, ZSTD_outBuffer *o, ZSTD_inBuffer *i,
	 ZSTD_EndDirective e),
	(c, o, i, e))
FL_LAZY(libzstd, ZSTD_DCtx *, ZSTD_createDCtx, (void), ())
FL_LAZY(libzstd, size_t, ZSTD_freeDCtx, (ZSTD_DCtx *d), (d))
FL_LAZY(libzstd, size_t, ZSTD_DStreamOutSize, (void), ())
FL_LAZY(libzstd, size_t, ZSTD_DCtx_reset, (ZSTD_DCtx *d, ZSTD_ResetDirective r),
	(d, r))
FL_LAZY(libzstd, size_t, ZSTD_DCtx_setParameter,
	(ZSTD_DCtx *d, ZSTD_dParameter p, int v), (d, p, v))
FL_LAZY(libzstd, size_t, ZSTD_decompressStream,
	(ZSTD_DStream *d, ZSTD_outBuffer *o, ZSTD_inBuffer *i), (d, o, i))

/* SPDX-License-Identifier: MIT */
#ifndef FL_PQ_H
#define FL_PQ_H

#include "err.h"

/*
 * libpq, loaded on first use (common/lazylib.h, common/lazy_pq.c): call
 * before any PQ function; FL_ENOTFOUND naming the Debian package when
 * the library is missing.
 */
int fl_pq_load(struct fl_error *err);

#endif

/* SPDX-License-Identifier: MIT */
#ifndef AGENT_DOWNLOAD_INTERNAL_H
#define AGENT_DOWNLOAD_INTERNAL_H

/*
 * download.c's check of a 206 answer, exposed for its unit test and
 * fuzz target (tests/fuzz/fuzz_range.c); not for other callers.
 */
#include <stdint.h>

#include "err.h"

/*
 * Is @value (the Content-Range header value of a 206 answer to
 * "Range: bytes=@have-") the part we asked for of a file of @size
 * bytes?  0 when it is well formed (fl_content_range_parse), starts at
 * @have and names @size as the total; FL_EPARSE when malformed or
 * starting elsewhere, FL_EVERIFY when the total differs (the server's
 * file is not the one the manifest describes).
 */
int agent_dl_check_content_range(const char *value, uint64_t have,
				 uint64_t size, struct fl_error *err);

#endif

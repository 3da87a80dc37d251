/* SPDX-License-Identifier: MIT */
#ifndef CLI_PROGRESS_H
#define CLI_PROGRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cli_ctx;

/*
 * A progress bar on stderr for an upload or a download of fleetctl's
 * client (fl_http_set_progress), drawn only when stderr is a terminal
 * and -q was not given: a pipe, a file or a CI log never gets one.  The
 * line is redrawn at most every 100 ms with a carriage return and no
 * escape codes, and blanked at the end.
 */
struct cli_progress {
	const char *label;
	int64_t start_ms, drawn_ms;
	uint64_t drawn_done; /* the bytes the line shows */
	size_t drawn_len;    /* characters on the line now */
};

/* Start one for @ctx's next transfers; false (nothing set) when no bar
 * is wanted. */
bool cli_progress_start(struct cli_ctx *ctx, struct cli_progress *p,
			const char *label);

/* Stop reporting and blank the line. */
void cli_progress_end(struct cli_ctx *ctx, struct cli_progress *p);

/*
 * The bar's text, at most @width columns (ASCII): LABEL, a bar when the
 * total is known, the percentage, bytes done of total, the rate.  Total
 * 0 means unknown (no bar, no percentage).  Returns the length.
 */
size_t cli_progress_line(char *buf, size_t len, const char *label,
			 uint64_t done, uint64_t total, double bytes_per_s,
			 int width);

#endif

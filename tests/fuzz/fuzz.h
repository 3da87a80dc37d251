/* SPDX-License-Identifier: MIT */
#ifndef FLEET_FUZZ_H
#define FLEET_FUZZ_H

/*
 * What the libFuzzer targets in tests/fuzz/ share: the fixed time they
 * judge expiry at, splitting one input into several parts, a private
 * temporary directory, and the committed seed material (tests/fuzz/data/,
 * embedded at build time into fuzz_data.h by tests/fuzz/embed.sh).
 *
 * Every target aborts (__builtin_trap) when an invariant it checks does
 * not hold, so libFuzzer reports it like a crash.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fsutil.h"
#include "log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * The time every target checks expiry at (2027-01-15 08:00 UTC): after
 * the seeds were made (make-seeds.sh refuses to run later than 30 days
 * before it) and before the seed roots expire, so the results do not
 * depend on the day the fuzzer runs.
 */
#define FUZZ_NOW ((time_t)1800000000)

/* Separates the parts of a multi-part input (a root chain, a request
 * and its headers...): a line holding only "%%". */
#define FUZZ_SEP "\n%%\n"

struct fuzz_part {
	const char *p;
	size_t len;
};

/* Split @data at FUZZ_SEP into at most @max parts (the last one takes
 * the rest); returns the count (>= 1). */
static inline size_t fuzz_split(const uint8_t *data, size_t size,
				struct fuzz_part *parts, size_t max)
{
	const char *p = (const char *)data, *end = p + size;
	const size_t sl = strlen(FUZZ_SEP);
	size_t n = 0;

	while (n + 1 < max) {
		const char *s = memmem(p, (size_t)(end - p), FUZZ_SEP, sl);

		if (!s)
			break;
		parts[n++] = (struct fuzz_part){p, (size_t)(s - p)};
		p = s + sl;
	}
	parts[n++] = (struct fuzz_part){p, (size_t)(end - p)};
	return n;
}

/* A NUL-terminated copy of a part (caller frees). */
static inline char *fuzz_strndup(const struct fuzz_part *part)
{
	char *s = malloc(part->len + 1);

	if (!s)
		abort();
	memcpy(s, part->p, part->len);
	s[part->len] = '\0';
	return s;
}

/* Abort with a message: an invariant of the code under test broke. */
#define FUZZ_ASSERT(cond)                                                      \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "fuzz: %s:%d: %s does not hold\n",     \
				__FILE__, __LINE__, #cond);                    \
			__builtin_trap();                                      \
		}                                                              \
	} while (0)

/*
 * Quiet logging unless FUZZ_LOG names a level (fl_log_level_parse):
 * the code under test logs what it refuses, and millions of lines a
 * minute would only slow the fuzzer down.
 */
static inline void fuzz_log_setup(void)
{
	const char *lv = getenv("FUZZ_LOG");

	fl_log_setup("fuzz", lv ? fl_log_level_parse(lv) : -1, FL_LOG_TEXT);
}

/*
 * A private directory under $TMPDIR (default /tmp), removed at exit.
 * Targets that need files (the agent's state, fleetd's store) keep them
 * here; a crash leaves it behind for a post-mortem.
 */
static char fuzz_tmp_path[256];

static inline void fuzz_tmp_cleanup(void)
{
	char cmd[300];

	if (fuzz_tmp_path[0] && !getenv("FUZZ_KEEP_TMP")) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_tmp_path);
		if (system(cmd) != 0)
			fprintf(stderr, "fuzz: cannot remove %s\n",
				fuzz_tmp_path);
	}
}

static inline const char *fuzz_tmpdir(void)
{
	const char *base = getenv("TMPDIR");

	if (fuzz_tmp_path[0])
		return fuzz_tmp_path;
	snprintf(fuzz_tmp_path, sizeof(fuzz_tmp_path), "%s/fleet-fuzz.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(fuzz_tmp_path)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(fuzz_tmp_cleanup);
	return fuzz_tmp_path;
}

/* Write @len bytes to @path (replacing it); aborts on failure. */
static inline void fuzz_write_file(const char *path, const void *buf,
				   size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || (len && fwrite(buf, 1, len, f) != len) || fclose(f) != 0) {
		perror(path);
		abort();
	}
}

#endif

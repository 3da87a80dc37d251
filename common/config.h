/* SPDX-License-Identifier: MIT */
#ifndef FL_CONFIG_H
#define FL_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/*
 * INI files (agent.conf, fleetctl's config) parsed with libinih into an
 * ordered list of (section, key, value), so they can also be edited and
 * written back.  Caps: 1 MiB per file, 1,000 entries, 199 bytes per
 * line (libinih's own line limit, checked before parsing so a long line
 * is an error rather than a silent split).
 */
#define FL_INI_MAX_BYTES (1024 * 1024)
#define FL_INI_MAX_ENTRIES 1000
#define FL_INI_MAX_LINE 199

struct fl_ini_entry {
	char *section;
	char *key;
	char *value;
};

struct fl_ini {
	struct fl_ini_entry *v;
	size_t n, cap;
};

/* A key a schema allows.  A section ending in '*' matches by prefix. */
struct fl_ini_key {
	const char *section;
	const char *key;
};

/* Parse INI text.  FL_EPARSE names the line of the first error. */
int fl_ini_parse(const char *text, struct fl_ini **ret, struct fl_error *err);

/* Load a file; FL_ENOTFOUND when it does not exist. */
int fl_ini_load(const char *path, struct fl_ini **ret, struct fl_error *err);

/* An empty list. */
struct fl_ini *fl_ini_new(void);

void fl_ini_free(struct fl_ini *ini);

/* The last value of section.key, or NULL.  Borrowed. */
const char *fl_ini_get(const struct fl_ini *ini, const char *section,
		       const char *key);

/* Set (replace) or, with @value NULL, delete section.key.  FL_EINVAL if
 * the value holds a control character or if the section, key or value
 * would not read back the same (comment markers, over-long lines). */
int fl_ini_set(struct fl_ini *ini, const char *section, const char *key,
	       const char *value, struct fl_error *err);

/* Remove every key of @section. */
void fl_ini_remove_section(struct fl_ini *ini, const char *section);

/* Unsigned integer value within [0, max]; @def when absent. */
int fl_ini_get_uint(const struct fl_ini *ini, const char *section,
		    const char *key, uint64_t max, uint64_t def,
		    uint64_t *ret, struct fl_error *err);

/* Boolean value (true/false/yes/no/1/0); @def when absent. */
int fl_ini_get_bool(const struct fl_ini *ini, const char *section,
		    const char *key, bool def, bool *ret,
		    struct fl_error *err);

/* Fail with FL_EPARSE naming the first section.key not in @allowed
 * (terminated by a {NULL, NULL} entry). */
int fl_ini_check_keys(const struct fl_ini *ini,
		      const struct fl_ini_key *allowed, struct fl_error *err);

/* Serialise and write atomically with @mode. */
int fl_ini_save(const struct fl_ini *ini, const char *path, mode_t mode,
		struct fl_error *err);

/* Serialise into a new string (caller frees). */
char *fl_ini_format(const struct fl_ini *ini);

#endif

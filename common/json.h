/* SPDX-License-Identifier: MIT */
#ifndef FL_JSON_H
#define FL_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "err.h"

/*
 * JSON helpers over jansson with caps and errors that name the field.
 * All getters return 0 or an fl_err code and write their out-parameter
 * only on success.  Strings returned are borrowed from the json_t.
 */

/* Parse @len bytes (not necessarily NUL-terminated).  Fails with
 * FL_ELIMIT when @len > @max, FL_EPARSE on bad JSON or duplicate keys.
 * The result must be a JSON object or array. */
int fl_json_parse(const char *buf, size_t len, size_t max, json_t **ret,
		  struct fl_error *err);

/* Read and parse a file of at most @max bytes. */
int fl_json_load_file(const char *path, size_t max, json_t **ret,
		      struct fl_error *err);

/* Require @obj to be an object. */
int fl_json_require_object(const json_t *obj, const char *what,
			   struct fl_error *err);

/* String member @key; FL_EPARSE if absent, not a string, empty or
 * containing NUL; FL_ELIMIT if longer than @maxlen bytes (0 = no cap). */
int fl_json_str(const json_t *obj, const char *key, size_t maxlen,
		const char **ret, struct fl_error *err);

/* As fl_json_str, but an absent or null member yields NULL and 0. */
int fl_json_str_opt(const json_t *obj, const char *key, size_t maxlen,
		    const char **ret, struct fl_error *err);

/* Integer member within [min, max]. */
int fl_json_int(const json_t *obj, const char *key, int64_t min, int64_t max,
		int64_t *ret, struct fl_error *err);

/* Boolean member. */
int fl_json_bool(const json_t *obj, const char *key, bool *ret,
		 struct fl_error *err);

/* Array member with at most @maxlen elements. */
int fl_json_array(const json_t *obj, const char *key, size_t maxlen,
		  json_t **ret, struct fl_error *err);

/* Event sequence numbers: 1 .. 2^53 (exact in a JSON double). */
#define FL_JSON_SEQ_MAX (INT64_C(1) << 53)

/* Optional array member of at most @max sequence numbers into @out
 * (*@ret_n of them; 0 when absent); FL_EPARSE or FL_ELIMIT otherwise. */
int fl_json_seqs(const json_t *obj, const char *key, size_t max, int64_t *out,
		 size_t *ret_n, struct fl_error *err);

/* Compact serialisation; caller frees.  Never NULL. */
char *fl_json_dumps(const json_t *j);

/* Write @j pretty-printed to a file atomically with @mode. */
int fl_json_save_file(const json_t *j, const char *path, unsigned mode,
		      struct fl_error *err);

#endif

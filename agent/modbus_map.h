/* SPDX-License-Identifier: MIT */
#ifndef AGENT_MODBUS_MAP_H
#define AGENT_MODBUS_MAP_H

/*
 * Modbus register maps (issue 16, docs/modbus.md): the text of a map
 * file parsed (libinih) and checked into sources and their registers.
 * Pure: no I/O besides reading the text it is given, so the unit tests
 * and the fuzz target drive it directly.
 *
 *   [source plc1]                 ; connection and poll settings
 *   host = 10.0.0.5               ; TCP (port = 502) or
 *   ; device = /dev/ttyUSB0       ; RTU: baud, parity, data_bits, stop_bits
 *   unit_id = 1
 *   interval = 1s
 *   timeout = 500ms
 *
 *   [registers plc1]              ; NAME = FUNCTION ADDRESS [key=value...]
 *   temp = holding 100 type=float32 order=cdab scale=0.1 unit=C
 *   pump = coil 5 min=0 max=1
 *
 * Errors are "NAME:LINE: message" (FL_EPARSE, FL_ELIMIT for the caps).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define AGENT_MB_SOURCES_MAX 64	  /* sources in one map */
#define AGENT_MB_REGS_MAX 256	  /* registers of one source */
#define AGENT_MB_NAME_MAX 32	  /* bytes of a source or register name */
#define AGENT_MB_TEXT_MAX 262144  /* bytes of a map */
#define AGENT_MB_INTERVAL_MIN 100 /* ms between polls, at least */
#define AGENT_MB_INTERVAL_MAX 86400000
#define AGENT_MB_TIMEOUT_MIN 10 /* ms of a response timeout */
#define AGENT_MB_TIMEOUT_MAX 10000
#define AGENT_MB_WINDOW_MAX 86400   /* s of an aggregation window */
#define AGENT_MB_READ_REGS_MAX 125  /* registers one read request asks */
#define AGENT_MB_READ_BITS_MAX 2000 /* coils or inputs one request asks */

enum agent_mb_fn {
	AGENT_MB_COIL,
	AGENT_MB_DISCRETE,
	AGENT_MB_HOLDING,
	AGENT_MB_INPUT
};
enum agent_mb_type {
	AGENT_MB_BIT,
	AGENT_MB_INT16,
	AGENT_MB_UINT16,
	AGENT_MB_INT32,
	AGENT_MB_UINT32,
	AGENT_MB_FLOAT32
};
/* bytes A B C D of a 32-bit value as the two registers carry them */
enum agent_mb_order {
	AGENT_MB_ABCD,
	AGENT_MB_CDAB,
	AGENT_MB_BADC,
	AGENT_MB_DCBA
};
enum agent_mb_agg {
	AGENT_MB_RAW,
	AGENT_MB_MEAN,
	AGENT_MB_MIN,
	AGENT_MB_MAX,
	AGENT_MB_LAST,
	AGENT_MB_COUNT
};

struct agent_mb_reg {
	char name[AGENT_MB_NAME_MAX + 1];
	enum agent_mb_fn fn;
	uint16_t addr, count; /* registers (or bits) it spans */
	enum agent_mb_type type;
	enum agent_mb_order order;
	double scale, offset; /* value = raw * scale + offset */
	char unit[17];
	bool writable;	 /* min and max given (coil, holding) */
	double min, max; /* the values a write may set */
	enum agent_mb_agg agg;
	int64_t window_s; /* agg's window; 0 with AGENT_MB_RAW */
	int line;
};

/* Consecutive registers of one function read by one request. */
struct agent_mb_group {
	enum agent_mb_fn fn;
	uint16_t addr, count;
	size_t first, n; /* its registers: regs[order[first .. first+n)] */
};

struct agent_mb_source {
	char name[AGENT_MB_NAME_MAX + 1];
	char host[256];	   /* TCP; "" for RTU */
	uint16_t port;	   /* 502 */
	char device[256];  /* RTU; "" for TCP */
	uint32_t baud;	   /* 9600 */
	char parity;	   /* 'N', 'E', 'O' */
	uint8_t data_bits; /* 8 */
	uint8_t stop_bits; /* 1 */
	uint8_t unit_id;   /* 1 */
	int64_t interval_ms, timeout_ms;
	struct agent_mb_reg *regs;
	size_t n_regs;
	size_t *order; /* regs sorted by function and address */
	struct agent_mb_group *groups;
	size_t n_groups;
	int line;
};

struct agent_mb_map {
	struct agent_mb_source *src;
	size_t n_src;
	size_t n_regs; /* all sources' */
};

/*
 * Parse @len bytes of @text (a map named @name in messages) into *@ret
 * (free with agent_mb_map_free).  Returns 0, FL_EPARSE or FL_ELIMIT with
 * "NAME:LINE: message".  An empty map is valid (no sources).
 */
int agent_mb_map_parse(const char *name, const char *text, size_t len,
		       struct agent_mb_map **ret, struct fl_error *err);

/* Read and parse the map file @path (at most AGENT_MB_TEXT_MAX bytes);
 * codes of agent_mb_map_parse, FL_EIO. */
int agent_mb_map_load(const char *path, struct agent_mb_map **ret,
		      struct fl_error *err);

void agent_mb_map_free(struct agent_mb_map *m);

/* The source named @name, or NULL; the register @name of @s, or NULL. */
const struct agent_mb_source *agent_mb_source(const struct agent_mb_map *m,
					      const char *name);
const struct agent_mb_reg *agent_mb_reg(const struct agent_mb_source *s,
					const char *name);

/* The value of @r from its @raw registers (r->count of them; a bit is
 * raw[0] 0/1), decoded by type and order, then scaled. */
double agent_mb_decode(const struct agent_mb_reg *r, const uint16_t *raw);

/*
 * The registers (r->count) that write @value into @r: unscaled, rounded
 * to the type, encoded by order.  FL_EINVAL when @r is read-only or
 * @value is outside its min..max or the type's range.
 */
int agent_mb_encode(const struct agent_mb_reg *r, double value, uint16_t *out,
		    struct fl_error *err);

/* Names of the enums as the map spells them. */
const char *agent_mb_fn_name(enum agent_mb_fn fn);
const char *agent_mb_agg_name(enum agent_mb_agg agg);

#endif

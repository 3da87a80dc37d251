/* SPDX-License-Identifier: MIT */
/*
 * agent/modbus_map: a good map (defaults, groups of consecutive
 * registers under the read caps), every refusal with its line, the
 * caps, and values through decode/encode in each type and word order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "modbus_map.h"
#include "util.h"

#define SRC "[source plc]\nhost = 127.0.0.1\n"

static int parse(const char *text, struct agent_mb_map **m,
		 struct fl_error *err)
{
	return agent_mb_map_parse("m.conf", text, strlen(text), m, err);
}

static void test_good(void **state)
{
	const char *text =
	    "; a comment\n"
	    "[source plc]\nhost = 127.0.0.1   ; inline comment\nport = 1502\n"
	    "unit_id = 7\n"
	    "interval = 250ms\ntimeout = 100ms\n"
	    "[registers plc]\n"
	    "b = holding 11 type=float32 order=cdab\n"
	    "a = holding 10\n"
	    "c = holding 13 type=int16 scale=0.1 offset=-40 unit=C\n"
	    "far = holding 200 type=uint32 agg=mean window=10s\n"
	    "pump = coil 5 min=0 max=1\n"
	    "[source rtu]\ndevice = /dev/ttyUSB0\nbaud = 19200\nparity = E\n"
	    "stop_bits = 2\n";
	struct agent_mb_map *m = NULL;
	const struct agent_mb_source *s;
	const struct agent_mb_reg *r;

	assert_int_equal(parse(text, &m, NULL), 0);
	assert_int_equal(m->n_src, 2);
	assert_int_equal(m->n_regs, 5);
	s = agent_mb_source(m, "plc");
	assert_non_null(s);
	assert_string_equal(s->host, "127.0.0.1");
	assert_int_equal(s->port, 1502);
	assert_int_equal(s->unit_id, 7);
	assert_int_equal(s->interval_ms, 250);
	assert_int_equal(s->timeout_ms, 100);
	r = agent_mb_reg(s, "b");
	assert_int_equal(r->count, 2);
	assert_int_equal(r->order, AGENT_MB_CDAB);
	r = agent_mb_reg(s, "far");
	assert_int_equal(r->agg, AGENT_MB_MEAN);
	assert_int_equal(r->window_s, 10);
	assert_true(agent_mb_reg(s, "pump")->writable);
	assert_false(agent_mb_reg(s, "a")->writable);
	/* coil 5; holding 10..13 in one read; holding 200 alone */
	assert_int_equal(s->n_groups, 3);
	assert_int_equal(s->groups[0].fn, AGENT_MB_COIL);
	assert_int_equal(s->groups[1].addr, 10);
	assert_int_equal(s->groups[1].count, 4);
	assert_int_equal(s->groups[1].n, 3);
	assert_int_equal(s->groups[2].addr, 200);
	s = agent_mb_source(m, "rtu");
	assert_string_equal(s->device, "/dev/ttyUSB0");
	assert_int_equal(s->baud, 19200);
	assert_int_equal(s->parity, 'E');
	assert_int_equal(s->stop_bits, 2);
	assert_int_equal(s->port, 502);
	assert_int_equal(s->interval_ms, 1000);
	agent_mb_map_free(m);
	assert_int_equal(parse("", &m, NULL), 0);
	assert_int_equal(m->n_src, 0);
	agent_mb_map_free(m);
}

/* 130 consecutive registers: a read of 125, then one of 5. */
static void test_groups_cap(void **state)
{
	char *text = fl_xstrdup(SRC "[registers plc]\n");
	struct agent_mb_map *m = NULL;

	for (int i = 0; i < 130; i++) {
		char *t = fl_xasprintf("%sr%d = input %d\n", text, i, 1000 + i);

		free(text);
		text = t;
	}
	assert_int_equal(parse(text, &m, NULL), 0);
	assert_int_equal(m->src[0].n_groups, 2);
	assert_int_equal(m->src[0].groups[0].count, 125);
	assert_int_equal(m->src[0].groups[1].addr, 1125);
	assert_int_equal(m->src[0].groups[1].count, 5);
	agent_mb_map_free(m);
	free(text);
}

/* @text is refused with @code and a message starting "m.conf:@line:". */
static void refused(const char *text, int code, int line)
{
	struct agent_mb_map *m = NULL;
	struct fl_error err = {0};
	char want[32];

	snprintf(want, sizeof(want), "m.conf:%d:", line);
	assert_int_equal(parse(text, &m, &err), code);
	assert_null(m);
	if (strncmp(err.msg, want, strlen(want)) != 0)
		fail_msg("'%s' does not start with '%s'", err.msg, want);
}

static void test_refused(void **state)
{
	refused(SRC "[registers plc]\na = holding 1 type=float32\n"
		    "b = holding 2\n",
		FL_EPARSE, 5); /* overlap */
	refused(SRC "[registers plc]\na = input 1\nb = holding 1\n"
		    "c = input 1\n",
		FL_EPARSE, 6); /* overlap in the same function only */
	refused(SRC "[registers plc]\na = holding 1 type=double\n", FL_EPARSE,
		4);
	refused(SRC "[registers plc]\na = holding 1 type=float32 count=1\n",
		FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = holding 1\na = holding 2\n",
		FL_EPARSE, 5);
	refused(SRC "[registers plc]\nb.x = holding 1\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\nup = holding 1\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = input 1 min=0 max=4\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = holding 1 min=0\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = coil 1 type=int16\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = holding 1 order=cdab\n", FL_EPARSE,
		4);
	refused(SRC "[registers plc]\na = holding 65535 type=int32\n",
		FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = holding 1 agg=mean\n", FL_EPARSE, 4);
	refused(SRC "interval = 20s\n[registers plc]\n"
		    "a = holding 1 agg=mean window=10s\n",
		FL_EPARSE, 5);
	refused(SRC "[registers plc]\na = holding\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = fifo 1\n", FL_EPARSE, 4);
	refused(SRC "[registers plc]\na = holding 1 colour=red\n", FL_EPARSE,
		4);
	refused("[registers plc]\na = holding 1\n", FL_EPARSE, 2);
	refused(SRC "[source plc]\nhost = x\n", FL_EPARSE, 4);
	refused("[source plc]\nport = 1\n", FL_EPARSE, 2); /* no host */
	refused(SRC "host = other\n", FL_EPARSE, 3);
	refused(SRC "interval = 50ms\n", FL_EPARSE, 3);
	refused(SRC "interval = 2d\n", FL_EPARSE, 3);
	refused(SRC "timeout = 20s\n", FL_EPARSE, 3);
	refused(SRC "unit_id = 248\n", FL_EPARSE, 3);
	refused(SRC "parity = X\n", FL_EPARSE, 3);
	refused(SRC "colour = red\n", FL_EPARSE, 3);
	refused(SRC "[plc]\nx = 1\n", FL_EPARSE, 4);
	refused("a = 1\n", FL_EPARSE, 1);
	refused("[source x\nhost = h\n", FL_EPARSE, 1); /* no ']' */
	/* keys go on after the error: the rest is not read */
	refused("[plc]\nx = 1\ny = 2\n", FL_EPARSE, 2);
	refused("[registers nosuch]\na = holding 1\nb = holding 2\n", FL_EPARSE,
		2);
	refused(SRC "[source bad.name]\nhost = x\n", FL_EPARSE, 4);
	refused(SRC "no equals sign here\n", FL_EPARSE, 3);
}

static void test_caps(void **state)
{
	char *text = fl_xstrdup("");
	char line[300];

	for (int i = 0; i <= AGENT_MB_SOURCES_MAX; i++) {
		char *t = fl_xasprintf("%s[source s%d]\nhost = h\n", text, i);

		free(text);
		text = t;
	}
	refused(text, FL_ELIMIT, 2 * AGENT_MB_SOURCES_MAX + 2);
	free(text);
	text = fl_xstrdup(SRC "[registers plc]\n");
	for (int i = 0; i <= AGENT_MB_REGS_MAX; i++) {
		char *t = fl_xasprintf("%sr%d = holding %d\n", text, i, i);

		free(text);
		text = t;
	}
	refused(text, FL_ELIMIT, 4 + AGENT_MB_REGS_MAX);
	free(text);
	memset(line, 'x', sizeof(line));
	memcpy(line, SRC "a = ", strlen(SRC "a = "));
	line[sizeof(line) - 1] = '\0';
	refused(line, FL_EPARSE, 3);
	text = fl_xcalloc(1, AGENT_MB_TEXT_MAX + 2);
	memset(text, '\n', AGENT_MB_TEXT_MAX + 1);
	assert_int_equal(agent_mb_map_parse("m", text, AGENT_MB_TEXT_MAX + 1,
					    &(struct agent_mb_map *){NULL},
					    NULL),
			 FL_ELIMIT);
	free(text);
}

/* Register @spec of a one-register map (freed with the map). */
static struct agent_mb_map *one(const char *spec)
{
	struct agent_mb_map *m = NULL;
	char *text = fl_xasprintf(SRC "[registers plc]\n%s\n", spec);

	assert_int_equal(parse(text, &m, NULL), 0);
	free(text);
	return m;
}

static void test_decode(void **state)
{
	static const struct {
		const char *spec;
		uint16_t raw[2];
		double want;
	} c[] = {
	    {"v = holding 0 type=uint16", {0xfffe}, 65534},
	    {"v = holding 0 type=int16", {0xfffe}, -2},
	    {"v = holding 0 type=int16 order=badc", {0xfeff}, -2},
	    {"v = holding 0 type=int16 scale=0.5 offset=10", {0xfffe}, 9},
	    {"v = input 0 type=uint32", {0x0001, 0x0002}, 65538},
	    {"v = input 0 type=uint32 order=cdab", {0x0002, 0x0001}, 65538},
	    {"v = input 0 type=uint32 order=badc", {0x0100, 0x0200}, 65538},
	    {"v = input 0 type=uint32 order=dcba", {0x0200, 0x0100}, 65538},
	    {"v = input 0 type=int32", {0xffff, 0xfffe}, -2},
	    /* 1.5f = 0x3fc00000 */
	    {"v = input 0 type=float32", {0x3fc0, 0x0000}, 1.5},
	    {"v = input 0 type=float32 order=cdab", {0x0000, 0x3fc0}, 1.5},
	    {"v = input 0 type=float32 order=badc", {0xc03f, 0x0000}, 1.5},
	    {"v = input 0 type=float32 order=dcba", {0x0000, 0xc03f}, 1.5},
	    {"v = coil 0", {1}, 1},
	    {"v = discrete 0", {0}, 0},
	};

	for (size_t i = 0; i < FL_ARRAY_SIZE(c); i++) {
		struct agent_mb_map *m = one(c[i].spec);

		if (agent_mb_decode(&m->src[0].regs[0], c[i].raw) != c[i].want)
			fail_msg("%s: %g, want %g", c[i].spec,
				 agent_mb_decode(&m->src[0].regs[0], c[i].raw),
				 c[i].want);
		agent_mb_map_free(m);
	}
}

static void test_encode(void **state)
{
	static const char *const specs[] = {
	    "v = holding 0 type=int16 scale=0.1 min=-100 max=100",
	    "v = holding 0 type=uint32 order=dcba min=0 max=100000",
	    "v = holding 0 type=float32 order=cdab min=-5 max=5",
	    "v = holding 0 type=int32 order=badc offset=-3.5 min=-100 max=100",
	};
	uint16_t raw[2];

	for (size_t i = 0; i < FL_ARRAY_SIZE(specs); i++) {
		struct agent_mb_map *m = one(specs[i]);
		const struct agent_mb_reg *r = &m->src[0].regs[0];

		assert_int_equal(
		    agent_mb_encode(r, -2.5 + 2.5 * (i == 1), raw, NULL), 0);
		assert_true(agent_mb_decode(r, raw) == -2.5 + 2.5 * (i == 1));
		assert_int_equal(agent_mb_encode(r, 1e9, raw, NULL), FL_EINVAL);
		agent_mb_map_free(m);
	}
}

static void test_encode_refused(void **state)
{
	static const char *const ro[] = {"v = input 0", "v = discrete 0",
					 "v = holding 0", "v = coil 0"};
	struct agent_mb_map *m;
	uint16_t raw[2];

	for (size_t i = 0; i < FL_ARRAY_SIZE(ro); i++) {
		m = one(ro[i]);
		assert_int_equal(
		    agent_mb_encode(&m->src[0].regs[0], 0, raw, NULL),
		    FL_EINVAL);
		agent_mb_map_free(m);
	}
	m = one("v = holding 0 type=uint16 min=-10 max=10");
	assert_int_equal(agent_mb_encode(&m->src[0].regs[0], -1, raw, NULL),
			 FL_EINVAL); /* within limits, not within the type */
	assert_int_equal(agent_mb_encode(&m->src[0].regs[0], 10, raw, NULL), 0);
	assert_int_equal(raw[0], 10);
	agent_mb_map_free(m);
	m = one("v = coil 3 min=0 max=1");
	assert_int_equal(agent_mb_encode(&m->src[0].regs[0], 1, raw, NULL), 0);
	assert_int_equal(raw[0], 1);
	assert_int_equal(agent_mb_encode(&m->src[0].regs[0], 2, raw, NULL),
			 FL_EINVAL);
	agent_mb_map_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_good),
	    cmocka_unit_test(test_groups_cap),
	    cmocka_unit_test(test_refused),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_decode),
	    cmocka_unit_test(test_encode),
	    cmocka_unit_test(test_encode_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * server-stub/rollout_plan: which devices a rollout takes (matching,
 * exclusions), their order (checked against SHA-256 computed here),
 * canaries, the waves with percent and count stops, rounding and the
 * empty waves dropped, and every refusal.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/sha.h>

#include "rollout_plan.h"
#include "util.h"

/* A device row: id, state, group, firmware, then "k=v" labels, NULL. */
static void add(struct srv_device_list *l, const char *id, const char *state,
		const char *group, const char *fw, ...)
{
	struct srv_device_row *d;
	const char *kv;
	va_list ap;

	l->v = fl_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	d = &l->v[l->n++];
	*d = (struct srv_device_row){.id = fl_xstrdup(id),
				     .state = fl_xstrdup(state),
				     .group = group ? fl_xstrdup(group) : NULL,
				     .firmware = fw ? fl_xstrdup(fw) : NULL};
	va_start(ap, fw);
	while ((kv = va_arg(ap, const char *))) {
		const char *eq = strchr(kv, '=');

		d->labels.v = fl_xrealloc(d->labels.v, (d->labels.n + 1) *
							   sizeof(*d->labels.v));
		d->labels.v[d->labels.n++] = (struct srv_label){
			fl_xstrndup(kv, (size_t)(eq - kv)), fl_xstrdup(eq + 1)};
	}
	va_end(ap);
}

/* @n active devices d00.. in group g on 1.0.0 */
static void fleet(struct srv_device_list *l, size_t n)
{
	char id[16];

	for (size_t i = 0; i < n; i++) {
		snprintf(id, sizeof(id), "d%02zu", i);
		add(l, id, "active", "g", "1.0.0", NULL);
	}
}

static struct srv_rollout_spec spec_of(json_t **keep, const char *text)
{
	struct srv_rollout_spec s = {0};
	struct fl_error err = {0};

	*keep = json_loads(text, 0, NULL);
	if (!*keep || srv_rollout_spec_parse(*keep, &s, &err))
		fail_msg("spec %s: %s", text, err.msg);
	return s;
}

struct keyed {
	unsigned char h[32];
	const char *id;
};

static int cmp(const void *a, const void *b)
{
	const struct keyed *x = a, *y = b;

	return memcmp(x->h, y->h, 32);
}

/* The order as DESIGN §7 defines it, computed here independently. */
static void reference(const char *rollout, char **ids, size_t n,
		      struct keyed *out)
{
	for (size_t i = 0; i < n; i++) {
		char buf[200];
		size_t a = strlen(rollout) + 1, b = strlen(ids[i]);

		memcpy(buf, rollout, a);
		memcpy(buf + a, ids[i], b);
		SHA256((unsigned char *)buf, a + b, out[i].h);
		out[i].id = ids[i];
	}
	qsort(out, n, sizeof(*out), cmp);
}

static void test_order(void **state)
{
	struct srv_device_list l = {0};
	struct srv_rollout_plan p = {0}, p2 = {0}, p3 = {0};
	struct srv_rollout_spec s;
	struct keyed ref[50];
	char *ids[50];
	json_t *keep;
	size_t same = 0;

	(void)state;
	fleet(&l, 50);
	s = spec_of(&keep, "{\"bundle\": \"b\", \"waves\": [\"100%\"]}");
	assert_int_equal(srv_rollout_plan_make(&s, "r-1", "1.1.0", &l, &p, NULL),
			 0);
	assert_int_equal(p.n, 50);
	for (size_t i = 0; i < 50; i++)
		ids[i] = l.v[i].id;
	reference("r-1", ids, 50, ref);
	for (size_t i = 0; i < 50; i++)
		assert_string_equal(p.order[i], ref[i].id);
	/* the same id gives the same order whatever the input order */
	for (size_t i = 0; i < 25; i++) {
		struct srv_device_row t = l.v[i];

		l.v[i] = l.v[49 - i];
		l.v[49 - i] = t;
	}
	assert_int_equal(
	    srv_rollout_plan_make(&s, "r-1", "1.1.0", &l, &p2, NULL), 0);
	for (size_t i = 0; i < 50; i++)
		assert_string_equal(p.order[i], p2.order[i]);
	/* another id, another order */
	assert_int_equal(
	    srv_rollout_plan_make(&s, "r-2", "1.1.0", &l, &p3, NULL), 0);
	for (size_t i = 0; i < 50; i++)
		same += strcmp(p.order[i], p3.order[i]) == 0;
	assert_true(same < 10);
	srv_rollout_plan_free(&p);
	srv_rollout_plan_free(&p2);
	srv_rollout_plan_free(&p3);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	srv_device_list_free(&l);
}

/* Wave sizes of a plan of @n devices, as "1,4,20,25"; notes counted. */
static char *sizes(const char *spec, size_t n, size_t *ret_notes)
{
	struct srv_device_list l = {0};
	struct srv_rollout_plan p = {0};
	struct srv_rollout_spec s;
	char buf[256] = "";
	size_t o = 0, total = 0;
	json_t *keep;

	fleet(&l, n);
	s = spec_of(&keep, spec);
	assert_int_equal(srv_rollout_plan_make(&s, "r-w", "1.1.0", &l, &p, NULL),
			 0);
	for (size_t k = 0; k < p.n_waves; k++) {
		assert_int_equal(p.waves[k].first, total);
		assert_true(p.waves[k].count >= 1);
		total += p.waves[k].count;
		o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s%zu",
				      k ? "," : "", p.waves[k].count);
		for (size_t i = p.waves[k].first; i < total; i++)
			assert_int_equal(srv_rollout_plan_wave_of(&p, i), k);
	}
	assert_int_equal(total, n);
	assert_int_equal(srv_rollout_plan_wave_of(&p, n), p.n_waves);
	*ret_notes = p.notes.n;
	srv_rollout_plan_free(&p);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	srv_device_list_free(&l);
	return fl_xstrdup(buf);
}

static void test_waves(void **state)
{
	static const struct {
		const char *waves;
		size_t n;
		const char *sizes;
		size_t notes;
	} cases[] = {
		{"\"2%\", \"10%\", \"50%\", \"100%\"", 50, "1,4,20,25", 0},
		{"\"2%\", \"10%\", \"50%\", \"100%\"", 3, "1,1,1", 1},
		{"\"2%\", \"10%\", \"50%\", \"100%\"", 1, "1", 3},
		{"\"2%\", \"10%\", \"50%\", \"100%\"", 10000, "200,800,4000,5000", 0},
		{"\"33.33%\", \"100%\"", 3, "1,2", 0},
		{"1, 5, \"100%\"", 3, "1,2", 1},
		{"1, 5, \"100%\"", 20, "1,4,15", 0},
		{"2, 4", 4, "2,2", 0},
		{"5, \"2%\", 10, \"100%\"", 20, "5,5,10", 1},
		{"\"100%\"", 7, "7", 0},
	};

	(void)state;
	for (size_t i = 0; i < FL_ARRAY_SIZE(cases); i++) {
		char *spec = fl_xasprintf("{\"bundle\": \"b\", \"waves\": [%s]}",
					  cases[i].waves);
		size_t notes;
		char *got = sizes(spec, cases[i].n, &notes);

		if (strcmp(got, cases[i].sizes) || notes != cases[i].notes)
			fail_msg("[%s] of %zu: waves %s (%zu notes), want %s "
				 "(%zu)",
				 cases[i].waves, cases[i].n, got, notes,
				 cases[i].sizes, cases[i].notes);
		free(got);
		free(spec);
	}
}

static void test_canaries(void **state)
{
	struct srv_device_list l = {0};
	struct srv_rollout_plan p = {0};
	struct srv_rollout_spec s;
	json_t *keep;

	(void)state;
	fleet(&l, 50);
	s = spec_of(&keep, "{\"bundle\": \"b\", \"canaries\": [\"d07\", \"d03\","
			   " \"d44\"], \"waves\": [\"2%\", \"10%\", \"100%\"]}");
	assert_int_equal(srv_rollout_plan_make(&s, "r-c", "1.1.0", &l, &p, NULL),
			 0);
	assert_string_equal(p.order[0], "d07");
	assert_string_equal(p.order[1], "d03");
	assert_string_equal(p.order[2], "d44");
	for (size_t i = 3; i < 50; i++)
		assert_true(strcmp(p.order[i], "d07") && strcmp(p.order[i], "d03") &&
			    strcmp(p.order[i], "d44"));
	assert_int_equal(p.n_waves, 3);
	assert_int_equal(p.waves[0].count, 3); /* 2% of 50 is 1: the canaries */
	assert_int_equal(p.waves[1].count, 2); /* up to 10% */
	assert_int_equal(p.waves[2].count, 45);
	srv_rollout_plan_free(&p);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	srv_device_list_free(&l);
}

static void test_matching(void **state)
{
	struct srv_device_list l = {0};
	struct srv_rollout_plan p = {0};
	struct srv_rollout_spec s;
	json_t *keep;

	(void)state;
	add(&l, "a", "active", "g", "1.0.0", "site=x", "hardware=rpi", NULL);
	add(&l, "b", "active", "g", "1.0.0", "site=y", "hardware=rpi", NULL);
	add(&l, "c", "active", "g", "1.1.0", "site=x", "hardware=rpi", NULL);
	add(&l, "d", "active", "g", "0.9.0", "site=x", "hardware=rpi", NULL);
	add(&l, "e", "active", "g", "1.0.0", "site=x", NULL);
	add(&l, "f", "decommissioned", "g", "1.0.0", "site=x", "hardware=rpi",
	    NULL);
	add(&l, "h", "active", "other", "1.0.0", "site=x", "hardware=rpi", NULL);
	add(&l, "i", "active", "g", NULL, "site=x", "hardware=rpi", NULL);
	/* filters: group, label, hardware, version; c is excluded, listed */
	s = spec_of(&keep, "{\"bundle\": \"b\", \"target\": {\"group\": \"g\","
			   " \"labels\": {\"site\": \"x\"}, \"hardware\": \"rpi\"},"
			   " \"waves\": [\"100%\"]}");
	assert_int_equal(srv_rollout_plan_make(&s, "r-m", "1.1.0", &l, &p, NULL),
			 0);
	assert_int_equal(p.n, 3); /* a, d, i */
	assert_int_equal(p.n_excluded, 1);
	assert_string_equal(p.excluded[0].device, "c");
	assert_string_equal(p.excluded[0].reason, "already on 1.1.0");
	srv_rollout_plan_free(&p);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	/* version too: only a */
	s = spec_of(&keep, "{\"bundle\": \"b\", \"target\": {\"group\": \"g\","
			   " \"labels\": {\"site\": \"x\"}, \"hardware\": \"rpi\","
			   " \"version\": \"1.0.0\"}, \"waves\": [\"100%\"]}");
	assert_int_equal(srv_rollout_plan_make(&s, "r-m", "1.1.0", &l, &p, NULL),
			 0);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.order[0], "a");
	assert_int_equal(p.n_excluded, 0); /* c does not run 1.0.0 */
	srv_rollout_plan_free(&p);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	/* named devices: each one left out is listed with its reason */
	s = spec_of(&keep, "{\"bundle\": \"b\", \"target\": {\"devices\": [\"a\","
			   " \"b\", \"c\", \"e\", \"f\", \"h\"], \"group\": \"g\","
			   " \"labels\": {\"site\": \"x\"}, \"hardware\": \"rpi\"},"
			   " \"waves\": [\"100%\"]}");
	assert_int_equal(srv_rollout_plan_make(&s, "r-m", "1.1.0", &l, &p, NULL),
			 0);
	assert_int_equal(p.n, 1);
	assert_string_equal(p.order[0], "a");
	assert_int_equal(p.n_excluded, 5);
	assert_string_equal(p.excluded[0].reason, "no label site=x");
	assert_string_equal(p.excluded[1].reason, "already on 1.1.0");
	assert_string_equal(p.excluded[2].reason, "hardware is not rpi");
	assert_string_equal(p.excluded[3].reason, "decommissioned");
	assert_string_equal(p.excluded[4].reason, "not in group g");
	srv_rollout_plan_free(&p);
	srv_rollout_spec_release(&s);
	json_decref(keep);
	srv_device_list_free(&l);
}

/* A refusal: the spec over a fixed small fleet fails with @code. */
static void refused(const char *text, int code, const char *msg)
{
	struct srv_device_list l = {0};
	struct srv_rollout_plan p = {.n = 77};
	struct srv_rollout_spec s;
	struct fl_error err = {0};
	json_t *keep;

	fleet(&l, 8);
	add(&l, "new", "active", "g", "1.1.0", NULL);
	add(&l, "gone", "decommissioned", "g", "1.0.0", NULL);
	s = spec_of(&keep, text);
	assert_int_equal(srv_rollout_plan_make(&s, "r-x", "1.1.0", &l, &p, &err),
			 code);
	if (!strstr(err.msg, msg))
		fail_msg("%s: '%s' lacks '%s'", text, err.msg, msg);
	assert_int_equal(p.n, 77); /* untouched */
	srv_rollout_spec_release(&s);
	json_decref(keep);
	srv_device_list_free(&l);
}

static void test_refusals(void **state)
{
	(void)state;
	refused("{\"bundle\": \"b\", \"target\": {\"group\": \"none\"}}",
		FL_EINVAL, "empty target: no active device matches");
	refused("{\"bundle\": \"b\", \"target\": {\"devices\": [\"new\"]}}",
		FL_EINVAL, "1 device(s) match, all excluded (1 already on 1.1.0)");
	refused("{\"bundle\": \"b\", \"target\": {\"devices\": [\"gone\"]}}",
		FL_EINVAL, "all excluded (0 already on");
	refused("{\"bundle\": \"b\", \"target\": {\"devices\": [\"d01\","
		" \"nosuch\"]}}",
		FL_ENOTFOUND, "no device 'nosuch'");
	refused("{\"bundle\": \"b\", \"waves\": [1, 5]}", FL_EINVAL,
		"do not add up: the last one stops at 5 of 8 devices");
	refused("{\"bundle\": \"b\", \"canaries\": [\"zz\"]}", FL_EINVAL,
		"canary zz is not in the target");
	refused("{\"bundle\": \"b\", \"canaries\": [\"new\"]}", FL_EINVAL,
		"canary new is excluded: already on 1.1.0");
	refused("{\"bundle\": \"b\", \"canaries\": [\"gone\"]}", FL_EINVAL,
		"canary gone is not in the target");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order),
		cmocka_unit_test(test_waves),
		cmocka_unit_test(test_canaries),
		cmocka_unit_test(test_matching),
		cmocka_unit_test(test_refusals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

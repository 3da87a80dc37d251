/* SPDX-License-Identifier: MIT */
/*
 * server-stub/metrics: the Prometheus text exposition writer (escaping,
 * label sets, cumulative histogram buckets whose +Inf equals _count) and
 * the in-memory counters behind fleetd's /metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "httpd.h"
#include "metrics.h"

/* What @fn wrote, as one string (free it). */
#define CAPTURE(text, fn)                                                      \
	do {                                                                   \
		size_t len_ = 0;                                               \
		FILE *f_ = open_memstream(&(text), &len_);                     \
		assert_non_null(f_);                                           \
		fn;                                                            \
		assert_int_equal(fclose(f_), 0);                               \
	} while (0)

static void test_label_values_escaped(void **state)
{
	const char *kv[4] = {"version", "1.0\"beta\\2\nx", "site", "plain"};
	char *text = NULL;

	(void)state;
	CAPTURE(text, srv_prom_sample(f_, "m", kv, 2, 3));
	assert_string_equal(
	    text, "m{version=\"1.0\\\"beta\\\\2\\nx\",site=\"plain\"} 3\n");
	free(text);
}

static void test_help_escaped_type_named(void **state)
{
	char *text = NULL;

	(void)state;
	CAPTURE(text, srv_prom_head(f_, "m_total", "counter",
				    "a \"quoted\" back\\slash\nline"));
	/* HELP escapes backslash and newline only; quotes stay */
	assert_string_equal(text, "# HELP m_total a \"quoted\" back\\\\slash"
				  "\\nline\n# TYPE m_total counter\n");
	free(text);
}

static void test_values(void **state)
{
	char *text = NULL;

	(void)state;
	CAPTURE(text, srv_prom_sample(f_, "a", NULL, 0, 12345678901.0);
		srv_prom_sample(f_, "b", NULL, 0, 0.25);
		srv_prom_sample(f_, "c", NULL, 0, -1));
	assert_string_equal(text, "a 12345678901\nb 0.25\nc -1\n");
	free(text);
}

/* Buckets are cumulative, end with +Inf == _count, and the sum is in
 * seconds. */
static void test_histogram_cumulative(void **state)
{
	struct srv_hist h = {0};
	const char *kv[2] = {"route", "/x"};
	char *text = NULL;

	(void)state;
	srv_hist_observe(&h, 100000);	      /* 0.0001 s: le 0.0005 */
	srv_hist_observe(&h, 3000000);	      /* 0.003 s: le 0.005 */
	srv_hist_observe(&h, 3000000);	      /* again */
	srv_hist_observe(&h, 5000000);	      /* exactly 0.005: le 0.005 */
	srv_hist_observe(&h, 20000000000ull); /* 20 s: only +Inf */
	CAPTURE(text, srv_prom_hist(f_, "t", kv, 1, &h));
	assert_string_equal(text, "t_bucket{route=\"/x\",le=\"0.0005\"} 1\n"
				  "t_bucket{route=\"/x\",le=\"0.001\"} 1\n"
				  "t_bucket{route=\"/x\",le=\"0.0025\"} 1\n"
				  "t_bucket{route=\"/x\",le=\"0.005\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.01\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.025\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.05\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.1\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.25\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"0.5\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"1\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"2.5\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"5\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"10\"} 4\n"
				  "t_bucket{route=\"/x\",le=\"+Inf\"} 5\n"
				  "t_sum{route=\"/x\"} 20.0111\n"
				  "t_count{route=\"/x\"} 5\n");
	free(text);
}

/* Does @text hold the line @line? */
static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static const struct srv_route devices = {
    "GET", "/api/v1/devices/:id", 0, NULL, 0, NULL, NULL};
static const struct srv_route tokens = {
    "POST", "/api/v1/tokens", 0, NULL, 0, NULL, NULL};

/* Requests by route pattern (never the path) and status; one latency
 * histogram per route whose _count is its requests; unknown statuses
 * and unmatched paths count under fixed labels. */
static void test_http_counts(void **state)
{
	char *text = NULL;

	(void)state;
	srv_metrics_http(&devices, 200, 1000000);
	srv_metrics_http(&devices, 200, 1000000);
	srv_metrics_http(&devices, 404, 1000000);
	srv_metrics_http(&tokens, 201, 1000000);
	srv_metrics_http(&tokens, 299, 1000000);
	srv_metrics_http(NULL, 404, 1000);
	CAPTURE(text, srv_metrics_write(f_));
	assert_true(has_line(text,
			     "fleetd_http_requests_total{method=\"GET\","
			     "route=\"/api/v1/devices/:id\",code=\"200\"} 2"));
	assert_true(has_line(text,
			     "fleetd_http_requests_total{method=\"GET\","
			     "route=\"/api/v1/devices/:id\",code=\"404\"} 1"));
	assert_true(has_line(text,
			     "fleetd_http_requests_total{method=\"POST\","
			     "route=\"/api/v1/tokens\",code=\"other\"} 1"));
	assert_true(has_line(text, "fleetd_http_requests_total{method=\"\","
				   "route=\"unmatched\",code=\"404\"} 1"));
	assert_true(
	    has_line(text, "fleetd_http_request_duration_seconds_count{"
			   "method=\"GET\",route=\"/api/v1/devices/:id\"} 3"));
	assert_true(has_line(text,
			     "fleetd_http_request_duration_seconds_bucket{"
			     "method=\"GET\",route=\"/api/v1/devices/:id\","
			     "le=\"0.001\"} 3"));
	assert_true(has_line(text, "# TYPE fleetd_http_request_duration_seconds"
				   " histogram"));
	free(text);
}

static void test_mqtt_and_store(void **state)
{
	char *text = NULL;

	(void)state;
	srv_metrics_mqtt(SRV_MQTT_IN, FL_TOPIC_EVENTS);
	srv_metrics_mqtt(SRV_MQTT_IN, FL_TOPIC_EVENTS);
	srv_metrics_mqtt(SRV_MQTT_IN, FL_TOPIC_NKINDS);
	srv_metrics_mqtt(SRV_MQTT_OUT, FL_TOPIC_CMD);
	srv_metrics_store(2000000);
	CAPTURE(text, srv_metrics_write(f_));
	assert_true(
	    has_line(text, "fleetd_mqtt_received_total{kind=\"events\"} 2"));
	assert_true(
	    has_line(text, "fleetd_mqtt_received_total{kind=\"other\"} 1"));
	assert_true(
	    has_line(text, "fleetd_mqtt_received_total{kind=\"status\"} 0"));
	assert_true(has_line(text, "fleetd_mqtt_sent_total{kind=\"cmd\"} 1"));
	/* each direction lists only its own kinds */
	assert_false(strstr(text, "fleetd_mqtt_sent_total{kind=\"events\"}"));
	assert_true(
	    has_line(text, "fleetd_store_call_duration_seconds_count 1"));
	assert_true(has_line(
	    text,
	    "fleetd_store_call_duration_seconds_bucket{le=\"0.0025\"} 1"));
	assert_true(has_line(
	    text, "fleetd_store_call_duration_seconds_bucket{le=\"0.001\"} 0"));
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_label_values_escaped),
	    cmocka_unit_test(test_help_escaped_type_named),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_histogram_cumulative),
	    cmocka_unit_test(test_http_counts),
	    cmocka_unit_test(test_mqtt_and_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

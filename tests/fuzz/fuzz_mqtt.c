/* SPDX-License-Identifier: MIT */
/*
 * Fuzz fleetd's MQTT message handler (server-stub/mqtt.c's message
 * callback, srv_mqtt_on_message): the topic split (fl_topic_parse), the
 * per-device budget, the broker's $SYS counter, and what devices report
 * on presence, status and events, parsed and checked by the ingest
 * queue (ingest.c) and applied by its writer to a real SQLite store,
 * where each event meets its job's state machine (jobs.c).
 *
 * Input: up to 8 messages separated by "%%" lines (fuzz.h), each its
 * topic, a newline, the payload; placeholders as fuzz_srv.h says
 * (@job1@ is dev-1's open update job...).  The fleetd of fuzz_srv.h has
 * a budget too large to drop anything (drops would depend on the clock)
 * and batches of one message; it is made afresh every RESET inputs.
 *
 * Invariants: every message taken is accounted for once (stored,
 * duplicate, rejected, stale or illegal), the database never refuses a
 * write, and every job stays in a state its type knows.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api_json.h"
#include "fuzz.h"
#include "fuzz_srv.h"
#include "proto.h"

#define MAX_MSGS 8
#define RESET 2000

static const char conf[] = "[mqtt]\n"
			   "device_rate = 1000000\n"
			   "device_burst = 1000000\n"
			   "ingest_batch = 1\n";

static struct fuzz_srv fs;
static unsigned runs;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	fuzz_srv_open(&fs, conf);
	return 0;
}

static void deliver(const struct fuzz_part *p)
{
	const char *nl = memchr(p->p, '\n', p->len);
	struct mosquitto_message msg = {0};
	char *text;
	size_t len;

	if (!nl)
		return;
	text = fuzz_srv_subst(&fs, p->p, p->len, &len);
	nl = strchr(text, '\n');
	if (nl) {
		*(char *)nl = '\0';
		msg.topic = text;
		msg.payload = (void *)(nl + 1);
		msg.payloadlen = (int)(len - (size_t)(nl + 1 - text));
		msg.qos = 1;
		srv_mqtt_on_message(fs.srv->mqtt, &msg, NULL);
	}
	free(text);
}

static void check_jobs(void)
{
	for (int i = 6; i <= 8; i++) {
		json_t *job = NULL;
		const char *state;

		FUZZ_ASSERT(api_job_fetch(fs.srv->store, fs.values[i], &job,
					  NULL) == 0);
		state = json_string_value(json_object_get(job, "state"));
		FUZZ_ASSERT(fl_job_state_parse(state) != 0);
		json_decref(job);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_MSGS];
	size_t n = fuzz_split(data, size, parts, MAX_MSGS);
	struct srv_mqtt_stats st;
	const struct srv_ingest_stats *q = &st.ingest;

	if (++runs % RESET == 0) {
		fuzz_srv_close(&fs);
		fuzz_srv_open(&fs, conf);
	}
	for (size_t i = 0; i < n; i++)
		deliver(&parts[i]);
	FUZZ_ASSERT(srv_mqtt_drain(fs.srv->mqtt, 10000));
	srv_mqtt_stats(fs.srv->mqtt, &st);
	FUZZ_ASSERT(st.over_budget == 0);
	FUZZ_ASSERT(q->failed == 0);
	FUZZ_ASSERT(q->received == q->stored + q->duplicates + q->rejected +
				       q->job_stale + q->job_illegal);
	check_jobs();
	return 0;
}

/* SPDX-License-Identifier: MIT */
/*
 * agent/outbox: the rules of the store-and-forward queue on real SQLite
 * files in a temp dir: order, the bounds by count, bytes and age with the
 * oldest telemetry dropped first and never an event, the dropped count
 * carried by the next message, persistence across a reopen (kill -9 is
 * a close without anything else), delete only on the PUBACK's mid and
 * only once, rewind on reconnect, and a damaged or oversized db refused
 * so the caller can move it aside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "fsutil.h"
#include "outbox.h"
#include "tmpdir.h"
#include "util.h"

#define T0 1764420000000LL /* ms */
#define TS "1764420000000"
#define TLM AGENT_OUTBOX_TELEMETRY
#define EVT AGENT_OUTBOX_EVENT

static char *db_path(void **state)
{
	struct tmpdir_fixture *f = *state;

	return fl_path_join(f->dir, AGENT_OUTBOX_FILE);
}

static struct agent_outbox *open_ob(const char *path, uint64_t msgs,
				    uint64_t bytes, int64_t age_s)
{
	struct agent_outbox_limits lim = {msgs, bytes, age_s};
	struct agent_outbox *ob = NULL;

	assert_int_equal(agent_outbox_open(path, &lim, &ob, NULL), 0);
	return ob;
}

/* Queue "tN" (@w points) at T0 + @dt seconds; its seq. */
static uint64_t put(struct agent_outbox *ob, enum agent_outbox_kind kind, int n,
		    unsigned w, int64_t dt)
{
	char body[32];
	uint64_t seq = 0;
	int len =
	    snprintf(body, sizeof(body), "%c%d", kind == TLM ? 't' : 'e', n);

	assert_int_equal(agent_outbox_put(ob, kind, body, (size_t)len, w,
					  T0 + dt * 1000, &seq, NULL),
			 0);
	return seq;
}

/* The next message's body must be @want; publish it as @mid. */
static uint64_t next_is(struct agent_outbox *ob, const char *want, int mid,
			uint64_t *ret_dropped)
{
	struct agent_outbox_msg m = {0};
	uint64_t seq;

	assert_int_equal(agent_outbox_next(ob, T0, &m, NULL), 0);
	assert_string_equal(m.body, want);
	if (ret_dropped)
		*ret_dropped = m.dropped;
	seq = m.seq;
	agent_outbox_msg_release(&m);
	agent_outbox_sent(ob, seq, mid);
	return seq;
}

static void next_none(struct agent_outbox *ob)
{
	struct agent_outbox_msg m = {0};

	assert_int_equal(agent_outbox_next(ob, T0, &m, NULL), FL_ENOTFOUND);
}

static void test_order_and_ack(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 100, 65536, 3600);
	uint64_t seq = 0;

	for (int i = 1; i <= 3; i++)
		assert_int_equal(put(ob, TLM, i, 1, 0), (uint64_t)i);
	assert_int_equal(next_is(ob, "t1", 11, NULL), 1);
	assert_int_equal(next_is(ob, "t2", 12, NULL), 2);
	/* only the PUBACK of a mid in flight deletes, once */
	assert_int_equal(agent_outbox_acked(ob, 99, NULL, NULL), FL_ENOTFOUND);
	assert_int_equal(agent_outbox_acked(ob, 12, &seq, NULL), 0);
	assert_int_equal(seq, 2);
	assert_int_equal(agent_outbox_acked(ob, 12, NULL, NULL), FL_ENOTFOUND);
	assert_int_equal(agent_outbox_depth(ob), 2);
	/* reconnect: from the oldest row again */
	agent_outbox_rewind(ob);
	assert_int_equal(agent_outbox_acked(ob, 11, NULL, NULL), FL_ENOTFOUND);
	assert_int_equal(next_is(ob, "t1", 21, NULL), 1);
	assert_int_equal(next_is(ob, "t3", 22, NULL), 3);
	next_none(ob);
	assert_int_equal(agent_outbox_acked(ob, 21, NULL, NULL), 0);
	assert_int_equal(agent_outbox_acked(ob, 22, NULL, NULL), 0);
	assert_int_equal(agent_outbox_depth(ob), 0);
	assert_int_equal(agent_outbox_bytes(ob), 0);
	/* seqs are never reused */
	assert_int_equal(put(ob, TLM, 4, 1, 0), 4);
	agent_outbox_free(ob);
	free(path);
}

static void test_window(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 100, 65536, 3600);
	struct agent_outbox_msg m = {0};

	for (int i = 1; i <= AGENT_OUTBOX_WINDOW + 1; i++)
		put(ob, TLM, i, 1, 0);
	for (int i = 1; i <= AGENT_OUTBOX_WINDOW; i++) {
		assert_int_equal(agent_outbox_next(ob, T0, &m, NULL), 0);
		agent_outbox_sent(ob, m.seq, i);
		agent_outbox_msg_release(&m);
	}
	next_none(ob);
	assert_int_equal(agent_outbox_acked(ob, 1, NULL, NULL), 0);
	/* an unsent one goes out again next */
	assert_int_equal(agent_outbox_next(ob, T0, &m, NULL), 0);
	assert_int_equal(m.seq, AGENT_OUTBOX_WINDOW + 1);
	agent_outbox_unsent(ob, m.seq);
	agent_outbox_msg_release(&m);
	assert_int_equal(agent_outbox_next(ob, T0, &m, NULL), 0);
	assert_int_equal(m.seq, AGENT_OUTBOX_WINDOW + 1);
	agent_outbox_msg_release(&m);
	agent_outbox_free(ob);
	free(path);
}

/* Past the count bound the oldest telemetry goes, never an event; the
 * next message queued reports the points dropped. */
static void test_count_bound(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 3, 65536, 3600);
	uint64_t dropped = 99;

	put(ob, EVT, 1, 0, 0);
	put(ob, TLM, 2, 5, 0);
	put(ob, TLM, 3, 7, 0);
	put(ob, TLM, 4, 1, 0); /* drops t2 (5 points) */
	assert_int_equal(agent_outbox_depth(ob), 3);
	/* t4 took the 5 points of t2 with it */
	assert_int_equal(agent_outbox_dropped(ob), 0);
	put(ob, EVT, 5, 0, 0); /* drops t3 (7) */
	assert_int_equal(agent_outbox_dropped(ob), 7);
	put(ob, EVT, 6, 0, 0); /* drops t4: its 1 and the 5 it carried */
	/* only events left: telemetry refused, events kept over the bound */
	assert_int_equal(agent_outbox_put(ob, TLM, "t7", 2, 2, T0, NULL, NULL),
			 FL_ELIMIT);
	put(ob, EVT, 8, 0, 0);
	assert_int_equal(agent_outbox_depth(ob), 4);
	assert_int_equal(agent_outbox_dropped(ob), 15);
	next_is(ob, "e1", 1, &dropped);
	assert_int_equal(dropped, 0);
	next_is(ob, "e5", 2, NULL);
	next_is(ob, "e6", 3, NULL);
	next_is(ob, "e8", 4, NULL);
	for (int mid = 1; mid <= 4; mid++)
		assert_int_equal(agent_outbox_acked(ob, mid, NULL, NULL), 0);
	/* room again: the next telemetry carries the 15 dropped points */
	put(ob, TLM, 9, 1, 0);
	assert_int_equal(agent_outbox_dropped(ob), 0);
	next_is(ob, "t9", 5, &dropped);
	assert_int_equal(dropped, 15);
	agent_outbox_free(ob);
	free(path);
}

static void test_bytes_bound(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 100, 6, 3600);
	char big[8] = "tttttttt";
	uint64_t dropped = 0;

	put(ob, TLM, 1, 1, 0); /* "t1": 2 bytes */
	put(ob, EVT, 2, 0, 0);
	put(ob, TLM, 3, 1, 0);
	assert_int_equal(agent_outbox_bytes(ob), 6);
	put(ob, TLM, 4, 1, 0); /* drops t1, carries its point */
	assert_int_equal(agent_outbox_bytes(ob), 6);
	assert_int_equal(agent_outbox_dropped(ob), 0);
	/* larger than the bound by itself: refused, nothing dropped for it */
	assert_int_equal(agent_outbox_put(ob, TLM, big, 8, 3, T0, NULL, NULL),
			 FL_ELIMIT);
	assert_int_equal(agent_outbox_dropped(ob), 3);
	assert_int_equal(agent_outbox_depth(ob), 3);
	next_is(ob, "e2", 1, NULL);
	next_is(ob, "t3", 2, NULL);
	next_is(ob, "t4", 3, &dropped);
	assert_int_equal(dropped, 1);
	agent_outbox_free(ob);
	free(path);
}

static void test_age_bound(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 100, 65536, 60);
	uint64_t dropped = 0;

	put(ob, TLM, 1, 2, -120);
	put(ob, EVT, 2, 0, -120);
	put(ob, TLM, 3, 3, -115);
	put(ob, TLM, 4, 1, -30); /* t1, t3 older than 60 s now: dropped */
	assert_int_equal(agent_outbox_depth(ob), 2);
	next_is(ob, "e2", 1, NULL);
	next_is(ob, "t4", 2, &dropped);
	assert_int_equal(dropped, 5);
	/* and when read: t5 is past max_age at T0 */
	agent_outbox_rewind(ob);
	put(ob, TLM, 5, 4, -100);
	next_is(ob, "e2", 1, NULL);
	next_is(ob, "t4", 2, NULL);
	next_none(ob);
	assert_int_equal(agent_outbox_dropped(ob), 4);
	put(ob, TLM, 6, 1, 0);
	next_is(ob, "t6", 3, &dropped);
	assert_int_equal(dropped, 4);
	agent_outbox_free(ob);
	free(path);
}

/* Everything, the counter and the dropped count included, survives a
 * close without acks (kill -9: nothing runs but SQLite's recovery). */
static void test_restart(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 2, 65536, 3600);
	uint64_t dropped = 0;

	put(ob, TLM, 1, 4, 0);
	put(ob, TLM, 2, 1, 0);
	put(ob, TLM, 3, 1, 0); /* drops t1 */
	next_is(ob, "t2", 7, NULL);
	assert_int_equal(agent_outbox_acked(ob, 7, NULL, NULL), 0);
	put(ob, TLM, 4, 1, 0); /* after the ack: nothing dropped */
	agent_outbox_free(ob);

	ob = open_ob(path, 2, 65536, 3600);
	assert_int_equal(agent_outbox_depth(ob), 2);
	next_is(ob, "t3", 1, &dropped);
	assert_int_equal(dropped, 4);
	next_is(ob, "t4", 2, &dropped);
	assert_int_equal(dropped, 0);
	assert_int_equal(put(ob, TLM, 5, 1, 0), 5);
	agent_outbox_free(ob);
	free(path);
}

/* Rows written behind the outbox's back (a damaged db) are deleted
 * when read, never handed out. */
static void test_bad_rows(void **state)
{
	char *path = db_path(state);
	struct agent_outbox *ob = open_ob(path, 100, 65536, 3600);
	sqlite3 *db = NULL;

	put(ob, TLM, 1, 1, 0);
	put(ob, TLM, 2, 1, 0);
	put(ob, TLM, 3, 1, 0);
	agent_outbox_free(ob);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(db,
			 "UPDATE msg SET kind = 9 WHERE seq = 1;"
			 "UPDATE msg SET weight = 65 WHERE seq = 2;"
			 "INSERT INTO msg VALUES (4, 1, 1, " TS ", -1, 'x');"
			 "INSERT INTO msg VALUES (5, 1, 1, " TS ", 0,"
			 " zeroblob(70000));"
			 "INSERT INTO msg VALUES (6, 1, 1, " TS ", 0, '');",
			 NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	ob = open_ob(path, 100, 1024 * 1024, 3600);
	next_is(ob, "t3", 1, NULL);
	next_none(ob);
	assert_int_equal(agent_outbox_depth(ob), 1);
	agent_outbox_free(ob);
	free(path);
}

static int open_rc(const char *path, uint64_t bytes)
{
	struct agent_outbox_limits lim = {10, bytes, 60};
	struct agent_outbox *ob = NULL;
	int rc = agent_outbox_open(path, &lim, &ob, NULL);

	agent_outbox_free(ob);
	return rc;
}

static void test_bad_files(void **state)
{
	char *path = db_path(state);
	char junk[4096];
	sqlite3 *db = NULL;

	memset(junk, 'x', sizeof(junk));
	assert_int_equal(fl_write_atomic(path, junk, sizeof(junk), 0600, NULL),
			 0);
	assert_int_equal(open_rc(path, 1024), FL_EPARSE);
	remove(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_exec(db, "PRAGMA user_version = 7; CREATE TABLE x (y);", NULL,
		     NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(open_rc(path, 1024), FL_EPARSE);
	remove(path);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_exec(db,
		     "CREATE TABLE meta (k TEXT PRIMARY KEY, v INTEGER);"
		     "INSERT INTO meta VALUES ('seq', -5), ('dropped', 0);",
		     NULL, NULL, NULL);
	sqlite3_close(db);
	assert_int_equal(open_rc(path, 1024), FL_EPARSE);
	assert_int_equal(open_rc(NULL, 0), FL_EINVAL);
	free(path);
}

static void test_oversized_file(void **state)
{
	char *path = db_path(state);
	size_t n = AGENT_OUTBOX_FILE_SLACK + 4096;
	char *junk = fl_xcalloc(1, n);

	assert_int_equal(fl_write_atomic(path, junk, n, 0600, NULL), 0);
	assert_int_equal(open_rc(path, 1024), FL_ELIMIT);
	free(junk);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_order_and_ack, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_window, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_count_bound, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_bytes_bound, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_age_bound, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_restart, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_rows, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_bad_files, tmpdir_setup,
					    tmpdir_teardown),
	    cmocka_unit_test_setup_teardown(test_oversized_file, tmpdir_setup,
					    tmpdir_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

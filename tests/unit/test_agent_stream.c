/* SPDX-License-Identifier: MIT */
/*
 * agent/stream: a signed bundle from a real HTTPS server
 * (https_fixture.h) straight into a slot file, killed at several
 * offsets and resumed from its last checkpoint.  Checks the slot's
 * bytes, the Range each resumed pass asks for and what it fetches, that
 * the slot is read back and hashed again (a byte changed in it behind
 * the stream's back is caught), a tampered payload, a lost head file, a
 * zstd payload (resumed from its first byte), a bundle refused on its
 * first bytes and step 1 again with another root.
 */
#include <inttypes.h>
#include <signal.h>

#include "fsig_fixture.h"
#include "https_fixture.h"

#include "stream.h"

#define IMAGE_SIZE (3u * 1024 * 1024 + 777)
#define CKPT (256u * 1024)

struct sfx {
	char *dir, *ca, *slot, *head, *bundle_path;
	struct fsig_key *key, *other;
	struct fsig_root *root, *other_root;
	unsigned char *image, *bundle;
	size_t bundle_len;
	struct hfx_server s;
	/* the pass in progress */
	struct agent_stream *st;
	uint64_t stop_at;	     /* a read past this fails: a kill */
	struct agent_stream_ckpt ck; /* the "journal" */
	int ckpts;
};

/* Sign the image (zstd or not) and serve the bundle. */
static void make_bundle(struct sfx *f, enum fsig_compression comp)
{
	static const char *const hw[] = {"sim"};
	struct fsig_payload_spec ps = {.path = NULL, .compression = comp};
	struct fsig_bundle_spec spec = {.name = "fw",
					.version = "1.0.0",
					.security_version = 1,
					.hardware = hw,
					.n_hardware = 1,
					.payloads = &ps,
					.n_payloads = 1,
					.keys = &f->key,
					.n_keys = 1};
	char *img = tpath(f->dir, "image");

	write_file(img, f->image, IMAGE_SIZE);
	ps.path = img;
	assert_int_equal(fsig_bundle_create(&spec, f->bundle_path, NULL), 0);
	free(f->bundle);
	f->bundle = (unsigned char *)read_whole(f->bundle_path, &f->bundle_len);
	free(img);
	f->s.data = f->bundle;
	f->s.size = f->bundle_len;
}

static int setup(void **state)
{
	struct sfx *f = fl_xcalloc(1, sizeof(*f));

	f->dir = tmpdir_new();
	f->ca = tpath(f->dir, "ca.pem");
	f->slot = tpath(f->dir, "slot-b");
	f->head = tpath(f->dir, "bundle.head");
	f->bundle_path = tpath(f->dir, "b.fwb");
	f->key = new_key(FSIG_ALG_ED25519);
	f->other = new_key(FSIG_ALG_ED25519);
	f->root = make_root(&f->key, 1, 1, &f->key, 1, 1);
	f->other_root = make_root(&f->other, 1, 1, &f->other, 1, 1);
	f->image = pattern(IMAGE_SIZE, 7);
	hfx_pki(&f->s, f->ca);
	make_bundle(f, FSIG_COMP_NONE);
	hfx_start(&f->s, f->bundle, f->bundle_len);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct sfx *f = *state;

	hfx_stop(&f->s);
	tmpdir_free(f->dir);
	free(f->ca);
	free(f->slot);
	free(f->head);
	free(f->bundle_path);
	fsig_key_free(f->key);
	fsig_key_free(f->other);
	fsig_root_free(f->root);
	fsig_root_free(f->other_root);
	free(f->image);
	free(f->bundle);
	free(f);
	return 0;
}

/* ---- a pass ---- */

static int on_ckpt(void *user, const struct agent_stream_ckpt *c,
		   struct fl_error *err)
{
	struct sfx *f = user;

	/* the head file and the slot hold what the checkpoint says */
	assert_true(c->bytes > f->ck.bytes);
	f->ck = *c;
	f->ckpts++;
	return 0;
}

static int on_read(void *user, struct fl_error *err)
{
	struct sfx *f = user;

	if (f->stop_at && agent_stream_have(f->st) >= f->stop_at)
		return fl_fail(err, FL_ETIMEOUT, "killed by the test");
	return 0;
}

static struct agent_stream_opts opts(struct sfx *f)
{
	return (struct agent_stream_opts){
	    .dl = {.url = f->s.url,
		   .ca_file = f->ca,
		   .size = f->bundle_len,
		   .retries = 1,
		   .backoff_min_ms = 50,
		   .backoff_max_ms = 100,
		   .stall_timeout_s = 5},
	    .head_path = f->head,
	    .slot = {.path = f->slot},
	    .from = f->ck,
	    .ckpt_bytes = CKPT,
	    .ckpt_min_ms = 1,
	    .ckpt_max_ms = 60000,
	    .checkpoint = on_ckpt,
	    .on_read = on_read,
	    .user = f,
	};
}

/*
 * One pass from the last checkpoint with @root, killed once the network
 * brought @stop_at (0: never); @clean: a stop with a last checkpoint.
 * Returns the code; *@fetched what it took from the network.
 */
static int pass(struct sfx *f, const struct fsig_root *root, uint64_t stop_at,
		bool clean, uint64_t *fetched)
{
	struct agent_stream_opts o = opts(f);
	struct fl_error err = {0};
	int rc;

	f->stop_at = stop_at;
	hfx_reset(&f->s);
	assert_int_equal(agent_stream_open(&o, &f->st, &err), 0);
	rc = agent_stream_verify(f->st, root, NULL, &err);
	if (!rc)
		rc = agent_stream_payload(f->st, &err);
	if (!rc)
		rc = agent_stream_finish(f->st, &err);
	if (rc)
		rc = err.code; /* the reader reports a source's failure as
				* FL_EIO; its message and code are in err */
	if (rc && clean)
		assert_int_equal(agent_stream_checkpoint(f->st, &err), 0);
	if (fetched)
		*fetched = agent_stream_fetched(f->st);
	if (rc == FL_EVERIFY)
		assert_int_equal(agent_stream_fault(f->st), AGENT_STREAM_OK);
	agent_stream_free(f->st);
	f->st = NULL;
	return rc;
}

static void assert_slot_is_image(struct sfx *f)
{
	size_t len;
	char *got = read_whole(f->slot, &len);

	assert_int_equal(len, IMAGE_SIZE);
	assert_memory_equal(got, f->image, IMAGE_SIZE);
	free(got);
}

/* The Range the pass's first request asked for. */
static void assert_first_range(struct sfx *f, uint64_t from)
{
	char want[32] = "";

	if (from)
		snprintf(want, sizeof(want), "bytes=%" PRIu64 "-", from);
	assert_string_equal(f->s.ranges[0], want);
}

/* ---- tests ---- */

/* From nothing: the slot gets the image; each checkpoint holds the head
 * (in its file, exactly the bundle's bytes before the payload) and the
 * payload so far. */
static void test_fresh(void **state)
{
	struct sfx *f = *state;
	uint64_t fetched;
	size_t len;
	char *head;

	assert_int_equal(pass(f, f->root, 0, false, &fetched), 0);
	assert_slot_is_image(f);
	assert_int_equal(fetched, f->bundle_len);
	assert_int_equal(f->s.requests, 1);
	assert_first_range(f, 0);
	assert_true(f->ckpts > 1); /* every 256 KiB, at most one a ms */
	head = read_whole(f->head, &len);
	assert_int_equal(f->ck.bytes - f->ck.slot_bytes, len);
	assert_memory_equal(head, f->bundle, len);
	assert_memory_equal(f->bundle + len, f->image, 4096); /* payload */
	free(head);
}

/*
 * Killed at several offsets (no last checkpoint, like kill -9), and
 * stopped once cleanly: each pass asks for the byte after the last
 * checkpoint and fetches only from there; the slot ends with the image.
 */
static void test_kill_and_resume(void **state)
{
	struct sfx *f = *state;
	const uint64_t kills[] = {400000, 1500000, 1510000, 2900000};
	uint64_t fetched, total = 0, from;

	for (size_t i = 0; i < sizeof(kills) / sizeof(kills[0]); i++) {
		from = f->ck.bytes;
		assert_int_equal(pass(f, f->root, kills[i], false, &fetched),
				 FL_ETIMEOUT);
		assert_first_range(f, from);
		assert_true(f->ck.bytes >= from);
		assert_true(f->ck.bytes <= kills[i]);
		/* at most the read ahead beyond the kill */
		assert_true(fetched >= kills[i] - from);
		assert_true(fetched <=
			    kills[i] - from + AGENT_DL_WINDOW_MAX + 512 * 1024);
		total += fetched;
	}
	assert_true(f->ck.slot_bytes > 1000000);
	/* a clean stop keeps what the slot got: the network was at most a
	 * window and the reader's buffer ahead of it */
	assert_int_equal(pass(f, f->root, 3100000, true, &fetched),
			 FL_ETIMEOUT);
	assert_true(f->ck.bytes >= 3100000 - AGENT_DL_WINDOW_MAX - 128 * 1024);
	from = f->ck.bytes;
	assert_int_equal(pass(f, f->root, 0, false, &fetched), 0);
	assert_first_range(f, from);
	assert_int_equal(f->s.requests, 1);
	assert_int_equal(fetched, f->bundle_len - from);
	assert_slot_is_image(f);
}

/* What a checkpoint says the slot holds is read back and hashed: a byte
 * changed there before the resume fails the payload hash. */
static void test_slot_hashed_again(void **state)
{
	struct sfx *f = *state;
	uint64_t from;
	int fd;

	assert_int_equal(pass(f, f->root, 2500000, false, NULL), FL_ETIMEOUT);
	assert_true(f->ck.slot_bytes > 300002);
	fd = open(f->slot, O_WRONLY);
	assert_int_equal(pwrite(fd, "\xff\x00", 2, 300000), 2);
	close(fd);
	from = f->ck.bytes;
	assert_int_equal(pass(f, f->root, 0, false, NULL), FL_EVERIFY);
	assert_first_range(f, from);
}

/* A payload byte changed on the server: refused at the end, after the
 * slot got the rest (untrusted: the caller makes nothing bootable). */
static void test_tampered_payload(void **state)
{
	struct sfx *f = *state;

	f->bundle[f->bundle_len - 1024 - 600000] ^= 1;
	assert_int_equal(pass(f, f->root, 0, false, NULL), FL_EVERIFY);
}

/* A checkpoint whose head file is gone: the stream starts from 0. */
static void test_head_lost(void **state)
{
	struct sfx *f = *state;
	struct agent_stream_opts o;
	struct agent_stream *st = NULL;

	assert_int_equal(pass(f, f->root, 2000000, false, NULL), FL_ETIMEOUT);
	assert_true(f->ck.bytes > 0);
	assert_int_equal(truncate(f->head, 100), 0);
	o = opts(f);
	assert_int_equal(agent_stream_open(&o, &st, NULL), 0);
	assert_int_equal(agent_stream_from(st).bytes, 0);
	agent_stream_free(st);
	f->ck = (struct agent_stream_ckpt){0, 0};
	assert_int_equal(pass(f, f->root, 0, false, NULL), 0);
	assert_first_range(f, 0);
	assert_slot_is_image(f);
}

/* zstd: checkpointed at the payload's first byte only; a new pass
 * fetches the payload from there. */
static void test_zstd_restarts_payload(void **state)
{
	struct sfx *f = *state;
	uint64_t fetched, head;

	make_bundle(f, FSIG_COMP_ZSTD);
	assert_int_equal(pass(f, f->root, f->bundle_len / 2, false, NULL),
			 FL_ETIMEOUT);
	assert_int_equal(f->ck.slot_bytes, 0);
	head = f->ck.bytes;
	assert_true(head > 0 && head < 4096);
	assert_int_equal(pass(f, f->root, 0, false, &fetched), 0);
	assert_first_range(f, head);
	assert_int_equal(fetched, f->bundle_len - head);
	assert_slot_is_image(f);
}

/* Refused on the first bytes: a small part fetched, the slot never
 * opened; with the right root, step 1 again from memory, one request. */
static void test_refused_then_verified(void **state)
{
	struct sfx *f = *state;
	struct agent_stream_opts o = opts(f);
	struct fl_error err = {0};
	struct agent_stream *st = NULL;

	assert_int_equal(agent_stream_open(&o, &st, &err), 0);
	assert_int_equal(agent_stream_verify(st, f->other_root, NULL, &err),
			 FL_EVERIFY);
	assert_int_equal(fsig_reader_reason(agent_stream_reader(st)),
			 FSIG_R_UNKNOWN_KEY);
	assert_true(agent_stream_fetched(st) < 512 * 1024);
	assert_int_equal(access(f->slot, F_OK), -1);
	assert_int_equal(agent_stream_verify(st, f->root, NULL, &err), 0);
	assert_int_equal(agent_stream_payload(st, &err), 0);
	assert_int_equal(agent_stream_finish(st, &err), 0);
	assert_int_equal(agent_stream_fetched(st), f->bundle_len);
	assert_int_equal(f->s.requests, 1);
	agent_stream_free(st);
	assert_slot_is_image(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_fresh, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_kill_and_resume, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_slot_hashed_again, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_tampered_payload, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_head_lost, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_zstd_restarts_payload, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_refused_then_verified, setup,
					    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

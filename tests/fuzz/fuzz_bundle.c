/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the bundle reader: the tar walk, manifest.json and manifest.sig
 * parsing, signature checking, the policy checks that follow a good
 * signature, and payload streaming with hashing and zstd.
 *
 * The trusted root is the committed tests/fuzz/data/root.json, whose
 * targets keys signed the seed bundles (make-seeds.sh): a seed and any
 * mutation that leaves its manifest bytes alone pass the signature
 * check, so the hardware, floor and expiry checks and the payload
 * stream run on them.  The policy is hardware "gw", floor 2 and the
 * fixed time FUZZ_NOW.  Each input is read twice: verified against the
 * root, and in inspection mode, whose integrity-only streaming reaches
 * the payload code whatever the signatures.  The input arrives in
 * chunks whose sizes come from its first byte, so the reader's
 * buffering is exercised too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_data.h"
#include "reader.h"
#include "root.h"
#include "util.h"

static struct fsig_root *root;
static const struct fsig_policy policy = {
    .hardware = "gw", .min_security_version = 2, .now = FUZZ_NOW};

struct mem {
	const uint8_t *p;
	size_t left, chunk;
};

static int mem_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct mem *m = ctx;
	size_t n = m->left < cap ? m->left : cap;

	(void)err;
	if (n > m->chunk)
		n = m->chunk;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	*ret_len = n;
	return 0;
}

/* What the sink saw, checked against the manifest. */
struct seen {
	const struct fsig_manifest *m;
	size_t begun, ended;
	uint64_t bytes; /* of the current payload */
};

static int sink_begin(void *ctx, size_t index, const struct fsig_payload *p,
		      struct fl_error *err)
{
	struct seen *s = ctx;

	(void)err;
	FUZZ_ASSERT(index == s->begun && index < s->m->n_payloads);
	FUZZ_ASSERT(p == &s->m->payloads[index]);
	s->begun++;
	s->bytes = 0;
	return 0;
}

static int sink_write(void *ctx, const void *buf, size_t len,
		      struct fl_error *err)
{
	struct seen *s = ctx;

	(void)buf;
	(void)err;
	FUZZ_ASSERT(s->begun > 0);
	s->bytes += len;
	/* never more than the manifest declares */
	FUZZ_ASSERT(s->bytes <= s->m->payloads[s->begun - 1].raw_size);
	return 0;
}

static int sink_end(void *ctx, size_t index, const struct fsig_payload *p,
		    struct fl_error *err)
{
	struct seen *s = ctx;

	(void)err;
	FUZZ_ASSERT(index + 1 == s->begun && s->bytes == p->raw_size);
	s->ended++;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	if (fsig_root_parse(fuzz_data_root_json, fuzz_data_root_json_len, &root,
			    NULL) ||
	    fsig_root_check_self(root, NULL, NULL) ||
	    fsig_root_expired(root, FUZZ_NOW))
		__builtin_trap(); /* tests/fuzz/data/root.json is broken */
	return 0;
}

/* A verified bundle satisfies the policy it was verified under. */
static void check_policy_held(const struct fsig_manifest *m)
{
	bool hw = false;

	for (size_t i = 0; i < m->n_hardware; i++)
		hw |= strcmp(m->hardware[i], policy.hardware) == 0;
	FUZZ_ASSERT(hw);
	FUZZ_ASSERT(m->security_version >= policy.min_security_version);
	FUZZ_ASSERT(!m->expires || m->expires > policy.now);
}

static void read_once(const uint8_t *data, size_t size, bool verify)
{
	struct mem mem = {data, size, size ? 1 + data[0] * 97u : 1};
	struct seen seen = {0};
	struct fsig_sink sink = {sink_begin, sink_write, sink_end, &seen};
	struct fsig_reader *r = NULL;
	const struct fsig_manifest *m;
	json_t *j;
	int rc;

	if (fsig_reader_open_cb(mem_read, &mem, &r, NULL))
		__builtin_trap();
	rc = verify ? fsig_reader_verify(r, root, &policy, NULL)
		    : fsig_reader_inspect(r, NULL);
	if (rc == 0) {
		m = fsig_reader_manifest(r);
		FUZZ_ASSERT(m != NULL);
		FUZZ_ASSERT(fsig_reader_verified(r) == verify);
		FUZZ_ASSERT(fsig_reader_reason(r) == FSIG_R_NONE);
		if (verify)
			check_policy_held(m);
		j = fsig_reader_describe(r);
		json_decref(j);
		seen.m = m;
		rc = fsig_reader_stream(r, &sink, NULL);
		if (rc == 0)
			FUZZ_ASSERT(seen.ended == m->n_payloads);
		else
			FUZZ_ASSERT(rc == FL_EVERIFY || rc == FL_EINVAL);
	} else {
		/* content problems are FL_EVERIFY, with a reason */
		FUZZ_ASSERT(rc == FL_EVERIFY || rc == FL_EIO);
		FUZZ_ASSERT(rc != FL_EVERIFY ||
			    fsig_reader_reason(r) != FSIG_R_NONE);
	}
	fsig_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_once(data, size, true);
	read_once(data, size, false);
	return 0;
}

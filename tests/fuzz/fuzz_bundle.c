/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the bundle reader: the tar walk, manifest.json and manifest.sig
 * parsing, signature checking against a root, and payload streaming with
 * hashing and zstd.  Signatures stop random input early, so each input
 * is read twice: verified against a root made at start-up, and in
 * inspection mode, whose integrity-only streaming reaches the payload
 * code.  The input arrives in chunks whose sizes come from its first
 * byte, so libarchive's buffering is exercised too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "keys.h"
#include "reader.h"
#include "root.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static struct fsig_root *root;

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

static int sink_write(void *ctx, const void *buf, size_t len,
		      struct fl_error *err)
{
	(void)ctx;
	(void)buf;
	(void)len;
	(void)err;
	return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct fsig_key *k = NULL;
	struct fsig_role_spec rs = {&k, 1, 1};

	(void)argc;
	(void)argv;
	if (fsig_key_generate(FSIG_ALG_ED25519, &k, NULL) ||
	    fsig_root_init(&rs, &rs, time(NULL) + 86400, &root, NULL) ||
	    fsig_root_sign(root, k, NULL))
		__builtin_trap();
	fsig_key_free(k);
	return 0;
}

static void read_once(const uint8_t *data, size_t size, bool verify)
{
	struct mem m = {data, size, size ? 1 + data[0] * 97u : 1};
	struct fsig_sink sink = {NULL, sink_write, NULL, NULL};
	struct fsig_policy pol = {.hardware = "gw"};
	struct fsig_reader *r = NULL;
	json_t *j;
	int rc;

	if (fsig_reader_open_cb(mem_read, &m, &r, NULL))
		__builtin_trap();
	rc = verify ? fsig_reader_verify(r, root, &pol, NULL)
		    : fsig_reader_inspect(r, NULL);
	if (rc == 0) {
		if (!fsig_reader_manifest(r))
			__builtin_trap();
		j = fsig_reader_describe(r);
		json_decref(j);
		fsig_reader_stream(r, &sink, NULL);
	} else if (rc != FL_EVERIFY && rc != FL_EIO) {
		__builtin_trap(); /* content problems are FL_EVERIFY */
	}
	fsig_reader_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	read_once(data, size, true);
	read_once(data, size, false);
	return 0;
}

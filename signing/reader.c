/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zstd.h>

#include "reader.h"
#include "tar.h"
#include "util.h"

#define IOBUF (64 * 1024)
#define ZSTD_WINDOW_LOG_MAX 23 /* 8 MiB: what writer levels <= 19 use */
#define SINK_CHUNK (64 * 1024)

enum reader_state {
	ST_OPEN,   /* nothing read yet */
	ST_META,   /* step 1 done */
	ST_DONE,   /* step 2 done */
	ST_FAILED, /* a step failed; the reader is unusable */
};

struct fsig_reader {
	struct fsig_tar_in tar;
	struct fsig_tar_entry ent; /* the current entry */
	fsig_read_fn read_fn;
	void *read_ctx;
	int fd;
	unsigned char *iobuf;
	int io_rc; /* the byte source's failure (fl_err), 0: none */
	enum reader_state state;
	bool verified;
	enum fsig_reason reason;
	char *mbytes; /* exact manifest.json bytes */
	size_t mlen;
	char msha[65];
	struct fsig_siglist sigs;
	struct fsig_manifest *m;
	ZSTD_DCtx *dctx;
	unsigned char *zout;
	size_t zout_len;
};

/* ------------------------------------------------------------------ */
/* Byte sources                                                        */

static int fd_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		   struct fl_error *err)
{
	int fd = *(int *)ctx;
	ssize_t n;

	do
		n = read(fd, buf, cap);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fl_fail_errno(err, FL_EIO, "cannot read bundle");
	*ret_len = (size_t)n;
	return 0;
}

/* The tar reader's byte source: the caller's, with its failure kept. */
static int tar_fill(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct fsig_reader *r = ctx;
	int rc = r->read_fn(r->read_ctx, buf, cap, ret_len, err);

	if (rc) {
		r->io_rc = rc;
		if (!err->code)
			fl_fail(err, rc, "cannot read bundle");
	}
	return rc;
}

static int reader_new(fsig_read_fn fn, void *ctx, int fd,
		      struct fsig_reader **ret, struct fl_error *err)
{
	struct fsig_reader *r = fl_xcalloc(1, sizeof(*r));

	r->read_fn = fn;
	r->read_ctx = ctx;
	r->fd = fd;
	if (fn == fd_read)
		r->read_ctx = &r->fd;
	r->iobuf = fl_xmalloc(IOBUF);
	fsig_tar_in_init(&r->tar, tar_fill, r, r->iobuf, IOBUF);
	*ret = r;
	return 0;
}

int fsig_reader_open_fd(int fd, struct fsig_reader **ret, struct fl_error *err)
{
	return reader_new(fd_read, NULL, fd, ret, err);
}

int fsig_reader_open_cb(fsig_read_fn fn, void *ctx, struct fsig_reader **ret,
			struct fl_error *err)
{
	return reader_new(fn, ctx, -1, ret, err);
}

/* ------------------------------------------------------------------ */
/* Entries                                                             */

/* The byte source's own failure (a timeout stays a timeout). */
#define IO_RC(r) ((r)->io_rc ? (r)->io_rc : FL_EIO)

/* Reject with @reason (FL_EVERIFY) unless an I/O error came first. */
#define REJECT(r, err, why, ...)                                               \
	((r)->io_rc ? (r)->io_rc                                               \
		    : fsig_reject(err, &(r)->reason, why, __VA_ARGS__))

/* Name of the entry expected at position @pos (0 manifest, 1 sig, 2+ a
 * payload) into @buf. */
static void expected_name(const struct fsig_reader *r, size_t pos, char *buf,
			  size_t len)
{
	if (pos == 0)
		fl_strlcpy(buf, "manifest.json", len);
	else if (pos == 1)
		fl_strlcpy(buf, "manifest.sig", len);
	else if (r->m && pos - 2 < r->m->n_payloads)
		snprintf(buf, len, "payload/%s", r->m->payloads[pos - 2].name);
	else
		buf[0] = '\0';
}

/* Position of a well-formed entry @name: 0, 1, 2 + payload index, or
 * -1 for an unknown payload, -2 for a payload when none is known. */
static long entry_position(const struct fsig_reader *r, const char *name)
{
	int i;

	if (strcmp(name, "manifest.json") == 0)
		return 0;
	if (strcmp(name, "manifest.sig") == 0)
		return 1;
	if (!r->m)
		return -2;
	i = fsig_manifest_find(r->m, name + strlen("payload/"));
	return i < 0 ? -1 : 2 + i;
}

/* True for the names a bundle may contain at all. */
static bool name_well_formed(const char *name)
{
	if (strcmp(name, "manifest.json") == 0 ||
	    strcmp(name, "manifest.sig") == 0)
		return true;
	return fl_startswith(name, "payload/") &&
	       fsig_valid_name(name + strlen("payload/"));
}

/* A plain top-level name that is merely unexpected (not an attack on
 * paths): no '/', no leading '.', nothing but safe characters. */
static bool name_plain(const char *name)
{
	return fsig_valid_name(name);
}

/* Classify entry @name found where position @pos was expected. */
static int check_name(struct fsig_reader *r, const char *name, size_t pos,
		      struct fl_error *err)
{
	char want[FSIG_NAME_MAX + 16];
	long at;

	expected_name(r, pos, want, sizeof(want));
	if (strcmp(name, want) == 0)
		return 0;
	if (!name_well_formed(name))
		return name_plain(name)
			   ? REJECT(r, err, FSIG_R_EXTRA,
				    "entry '%.80s' is not part of a bundle",
				    name)
			   : REJECT(r, err, FSIG_R_BAD_NAME,
				    "entry name '%.80s' is not allowed", name);
	at = entry_position(r, name);
	if (at >= 0 && (size_t)at < pos)
		return REJECT(r, err, FSIG_R_DUPLICATE,
			      "entry '%.80s' appears twice", name);
	if (at == -1)
		return REJECT(r, err, FSIG_R_EXTRA,
			      "entry '%.80s' is not listed in the manifest",
			      name);
	return REJECT(r, err, FSIG_R_ORDER, "entry '%.80s' where '%s' belongs",
		      name, want[0] ? want : "the end of the archive");
}

/* Tar extension headers (pax, GNU long names): never in a bundle. */
static bool type_is_extension(char type)
{
	return type == 'x' || type == 'g' || type == 'L' || type == 'K';
}

static int check_type(struct fsig_reader *r, const struct fsig_tar_entry *e,
		      struct fl_error *err)
{
	const char *what = e->type == '1'   ? "a hard link"
			   : e->type == '2' ? "a symbolic link"
			   : e->type == 'S' ? "a sparse file"
					    : "not a regular file";

	if (e->type == '0')
		return 0;
	return REJECT(r, err, FSIG_R_ENTRY_TYPE, "entry '%.80s' is %s",
		      e->name, what);
}

/* The tar reader's verdict on a header as a rejection (or I/O error). */
static int tar_failed(struct fsig_reader *r, enum fsig_tar_status st,
		      size_t pos, struct fl_error *err)
{
	if (st == FSIG_TAR_IO)
		return IO_RC(r);
	if (pos == 0)
		return REJECT(r, err, FSIG_R_NOT_BUNDLE,
			      "not a bundle (tar): %s", r->tar.why);
	return REJECT(r, err,
		      st == FSIG_TAR_BAD ? FSIG_R_MALFORMED : FSIG_R_TRUNCATED,
		      "entry %zu: %s", pos + 1, r->tar.why);
}

/*
 * Read the header of the entry at position @pos into r->ent and check
 * its name and type.  *ret is NULL at the end of the archive.
 */
static int next_entry(struct fsig_reader *r, size_t pos,
		      const struct fsig_tar_entry **ret, struct fl_error *err)
{
	enum fsig_tar_status st = fsig_tar_next(&r->tar, &r->ent, err);

	*ret = NULL;
	if (st == FSIG_TAR_END)
		return 0;
	if (st)
		return tar_failed(r, st, pos, err);
	if (type_is_extension(r->ent.type))
		return REJECT(r, err, FSIG_R_ENTRY_TYPE,
			      "entry %zu is a tar extension header ('%c'); "
			      "bundles hold plain ustar entries",
			      pos + 1, r->ent.type);
	*ret = &r->ent;
	if (check_name(r, r->ent.name, pos, err))
		return FL_EVERIFY;
	return check_type(r, &r->ent, err);
}

/* The next entry must exist (else: truncated). */
static int need_entry(struct fsig_reader *r, size_t pos,
		      const struct fsig_tar_entry **ret, struct fl_error *err)
{
	char want[FSIG_NAME_MAX + 16];
	int rc = next_entry(r, pos, ret, err);

	if (rc || *ret)
		return rc;
	expected_name(r, pos, want, sizeof(want));
	return REJECT(r, err, pos == 0 ? FSIG_R_NOT_BUNDLE : FSIG_R_TRUNCATED,
		      "archive ends before '%s'", want);
}

/* Read a whole small entry of @size (already capped) into a buffer. */
static int read_small(struct fsig_reader *r, const char *name, size_t size,
		      char **ret, struct fl_error *err)
{
	char *buf = fl_xmalloc(size + 1);
	size_t got = 0, n = 1;
	const void *p;

	while (n > 0) {
		enum fsig_tar_status st = fsig_tar_data(&r->tar, &p, &n, err);

		if (st) {
			free(buf);
			return st == FSIG_TAR_IO
				   ? IO_RC(r)
				   : REJECT(r, err, FSIG_R_TRUNCATED,
					    "'%s' ends after %zu of %zu bytes",
					    name, got, size);
		}
		memcpy(buf + got, p, n);
		got += n;
	}
	buf[size] = '\0';
	*ret = buf;
	return 0;
}

static int read_capped(struct fsig_reader *r, size_t pos, size_t cap,
		       char **ret, size_t *ret_len, struct fl_error *err)
{
	const struct fsig_tar_entry *e;
	const char *name;
	int rc;

	rc = need_entry(r, pos, &e, err);
	if (rc)
		return rc;
	name = pos == 0 ? "manifest.json" : "manifest.sig";
	if (e->size > cap)
		return REJECT(r, err, FSIG_R_TOO_LARGE,
			      "'%s' is %llu bytes, over the %zu byte cap", name,
			      (unsigned long long)e->size, cap);
	*ret_len = (size_t)e->size;
	return read_small(r, name, (size_t)e->size, ret, err);
}

/* ------------------------------------------------------------------ */
/* Step 1                                                              */

static int read_meta(struct fsig_reader *r, struct fl_error *err)
{
	struct fl_error why = {0};
	unsigned char md[32];
	char *sig = NULL;
	size_t slen;
	int rc;

	rc = read_capped(r, 0, FSIG_MANIFEST_MAX, &r->mbytes, &r->mlen, err);
	if (!rc)
		rc = read_capped(r, 1, FSIG_SIGFILE_MAX, &sig, &slen, err);
	if (!rc && fsig_siglist_parse(sig, slen, &r->sigs, &why))
		rc = REJECT(r, err, FSIG_R_MALFORMED, "manifest.sig: %s",
			    why.msg);
	free(sig);
	if (rc)
		return rc;
	EVP_Digest(r->mbytes, r->mlen, md, NULL, EVP_sha256(), NULL);
	fl_hex(md, sizeof(md), r->msha);
	return 0;
}

/* Parse the manifest; its parse errors become rejections. */
static int parse_meta(struct fsig_reader *r, struct fl_error *err)
{
	enum fsig_reason why = FSIG_R_MALFORMED;
	struct fl_error perr = {0};

	if (fsig_manifest_parse(r->mbytes, r->mlen, &r->m, &why, &perr))
		return REJECT(r, err, why, "%s", perr.msg);
	return 0;
}

static int check_signatures(struct fsig_reader *r, const struct fsig_root *root,
			    const struct fsig_policy *pol, struct fl_error *err)
{
	struct fsig_key *const *keys;
	unsigned threshold;
	char when[21];
	size_t n;

	if (fsig_root_expired(root, pol ? pol->now : 0)) {
		fl_time_rfc3339(fsig_root_expires(root), when);
		return REJECT(r, err, FSIG_R_ROOT_EXPIRED,
			      "trust root v%llu expired at %s",
			      (unsigned long long)fsig_root_version(root),
			      when);
	}
	fsig_root_role(root, FSIG_ROLE_TARGETS, &keys, &n, &threshold);
	return fsig_siglist_check(&r->sigs, FSIG_DOMAIN_MANIFEST, r->mbytes,
				  r->mlen, keys, n, threshold, "manifest.sig",
				  NULL, &r->reason, err);
}

static int step1_end(struct fsig_reader *r, int rc)
{
	r->state = rc ? ST_FAILED : ST_META;
	return rc;
}

int fsig_reader_verify(struct fsig_reader *r, const struct fsig_root *root,
		       const struct fsig_policy *pol, struct fl_error *err)
{
	static const struct fsig_policy none = {0};
	int rc;

	if (r->state != ST_OPEN) /* a second call leaves the state alone */
		return fl_fail(err, FL_EINVAL, "bundle metadata already read");
	rc = read_meta(r, err);
	if (!rc)
		rc = check_signatures(r, root, pol, err);
	if (!rc)
		rc = parse_meta(r, err);
	if (!rc)
		rc = fsig_manifest_check_policy(r->m, pol ? pol : &none,
						&r->reason, err);
	r->verified = rc == 0;
	return step1_end(r, rc);
}

int fsig_reader_inspect(struct fsig_reader *r, struct fl_error *err)
{
	int rc;

	if (r->state != ST_OPEN)
		return fl_fail(err, FL_EINVAL, "bundle metadata already read");
	rc = read_meta(r, err);
	if (!rc)
		rc = parse_meta(r, err);
	return step1_end(r, rc);
}

/* ------------------------------------------------------------------ */
/* Step 2                                                              */

struct pl_run {
	const struct fsig_payload *p;
	const struct fsig_sink *sink;
	EVP_MD_CTX *stored, *raw;
	uint64_t stored_n, raw_n;
	size_t zret; /* last ZSTD_decompressStream result: 0 = frame done */
};

/* Hand decompressed or plain bytes to the sink, never past raw_size. */
static int deliver(struct fsig_reader *r, struct pl_run *run, const void *buf,
		   size_t len, struct fl_error *err)
{
	if (len > run->p->raw_size - run->raw_n)
		return REJECT(r, err, FSIG_R_PAYLOAD_SIZE,
			      "payload '%s' is longer than its declared "
			      "%llu bytes",
			      run->p->name,
			      (unsigned long long)run->p->raw_size);
	run->raw_n += len;
	/* uncompressed: delivered bytes are the stored ones, hashed once */
	if (run->p->compression != FSIG_COMP_NONE)
		EVP_DigestUpdate(run->raw, buf, len);
	if (!run->sink || !len)
		return 0;
	return run->sink->write(run->sink->ctx, buf, len, err);
}

static int zstd_block(struct fsig_reader *r, struct pl_run *run,
		      const void *buf, size_t len, struct fl_error *err)
{
	ZSTD_inBuffer ib = {buf, len, 0};
	int rc;

	while (ib.pos < ib.size) {
		ZSTD_outBuffer ob = {r->zout, r->zout_len, 0};
		size_t z = ZSTD_decompressStream(r->dctx, &ob, &ib);

		if (ZSTD_isError(z))
			return REJECT(r, err, FSIG_R_DECOMPRESS,
				      "payload '%s': %s", run->p->name,
				      ZSTD_getErrorName(z));
		run->zret = z;
		rc = deliver(r, run, r->zout, ob.pos, err);
		if (rc)
			return rc;
	}
	return 0;
}

/*
 * After the last input byte: flush what zstd still holds, and require
 * that the last frame ended (an empty payload must be one empty frame).
 */
static int zstd_finish(struct fsig_reader *r, struct pl_run *run,
		       struct fl_error *err)
{
	while (run->zret != 0) {
		ZSTD_inBuffer ib = {NULL, 0, 0};
		ZSTD_outBuffer ob = {r->zout, r->zout_len, 0};
		size_t z = ZSTD_decompressStream(r->dctx, &ob, &ib);
		int rc;

		if (ZSTD_isError(z))
			return REJECT(r, err, FSIG_R_DECOMPRESS,
				      "payload '%s': %s", run->p->name,
				      ZSTD_getErrorName(z));
		run->zret = z;
		rc = deliver(r, run, r->zout, ob.pos, err);
		if (rc)
			return rc;
		if (z != 0 && ob.pos < ob.size)
			return REJECT(r, err, FSIG_R_DECOMPRESS,
				      "payload '%s': incomplete zstd frame",
				      run->p->name);
	}
	return 0;
}

static int zstd_setup(struct fsig_reader *r, struct fl_error *err)
{
	if (!r->dctx) {
		if (fsig_zstd_load(err))
			return FL_ERR;
		r->dctx = ZSTD_createDCtx();
		r->zout_len = ZSTD_DStreamOutSize();
		r->zout = fl_xmalloc(r->zout_len);
		if (!r->dctx)
			return fl_fail(err, FL_ENOMEM, "cannot create zstd");
	}
	ZSTD_DCtx_reset(r->dctx, ZSTD_reset_session_and_parameters);
	ZSTD_DCtx_setParameter(r->dctx, ZSTD_d_windowLogMax,
			       ZSTD_WINDOW_LOG_MAX);
	return 0;
}

/* Pump the entry's data blocks through hashing (and zstd) to the sink. */
static int pump(struct fsig_reader *r, struct pl_run *run, struct fl_error *err)
{
	bool z = run->p->compression == FSIG_COMP_ZSTD;
	enum fsig_tar_status st;
	const void *buf;
	size_t len;
	int rc;

	for (;;) {
		st = fsig_tar_data(&r->tar, &buf, &len, err);
		if (st == FSIG_TAR_IO)
			return IO_RC(r);
		if (st) /* payload_check names the shortfall */
			return 0;
		if (len == 0)
			return 0;
		run->stored_n += len;
		EVP_DigestUpdate(run->stored, buf, len);
		rc = z ? zstd_block(r, run, buf, len, err)
		       : deliver(r, run, buf, len, err);
		if (rc)
			return rc;
	}
}

static bool digest_is(EVP_MD_CTX *ctx, const char *hex)
{
	unsigned char md[32];
	char got[65];

	EVP_DigestFinal_ex(ctx, md, NULL);
	fl_hex(md, sizeof(md), got);
	return strcmp(got, hex) == 0;
}

/* After the data: counts and hashes, stored then delivered bytes. */
static int payload_check(struct fsig_reader *r, struct pl_run *run,
			 struct fl_error *err)
{
	const struct fsig_payload *p = run->p;

	if (run->stored_n != p->size)
		return REJECT(r, err, FSIG_R_TRUNCATED,
			      "payload '%s' ends after %llu of %llu bytes",
			      p->name, (unsigned long long)run->stored_n,
			      (unsigned long long)p->size);
	if (!digest_is(run->stored, p->sha256))
		return REJECT(r, err, FSIG_R_PAYLOAD_HASH,
			      "payload '%s' does not match its SHA-256",
			      p->name);
	if (run->raw_n != p->raw_size)
		return REJECT(r, err, FSIG_R_PAYLOAD_SIZE,
			      "payload '%s' decompressed to %llu bytes, "
			      "not %llu",
			      p->name, (unsigned long long)run->raw_n,
			      (unsigned long long)p->raw_size);
	if (p->compression != FSIG_COMP_NONE &&
	    !digest_is(run->raw, p->raw_sha256))
		return REJECT(r, err, FSIG_R_PAYLOAD_HASH,
			      "payload '%s' decompressed data does not match "
			      "its SHA-256",
			      p->name);
	return 0;
}

static int stream_one(struct fsig_reader *r, size_t i,
		      const struct fsig_sink *sink, struct fl_error *err)
{
	struct pl_run run = {.p = &r->m->payloads[i], .sink = sink, .zret = 1};
	const struct fsig_tar_entry *e;
	int rc;

	if (run.p->delta_from)
		return fl_fail(err, FL_EINVAL,
			       "payload '%s' is a delta from %s; this reader "
			       "cannot apply deltas",
			       run.p->name, run.p->delta_from);
	rc = need_entry(r, 2 + i, &e, err);
	if (rc)
		return rc;
	if (e->size != run.p->size)
		return REJECT(r, err, FSIG_R_PAYLOAD_SIZE,
			      "payload '%s' entry has %llu bytes, the manifest "
			      "says %llu",
			      run.p->name, (unsigned long long)e->size,
			      (unsigned long long)run.p->size);
	if (run.p->compression == FSIG_COMP_ZSTD && (rc = zstd_setup(r, err)))
		return rc;
	run.stored = EVP_MD_CTX_new();
	run.raw = EVP_MD_CTX_new();
	EVP_DigestInit_ex(run.stored, EVP_sha256(), NULL);
	EVP_DigestInit_ex(run.raw, EVP_sha256(), NULL);
	rc = sink && sink->begin ? sink->begin(sink->ctx, i, run.p, err) : 0;
	if (!rc)
		rc = pump(r, &run, err);
	if (!rc && run.p->compression == FSIG_COMP_ZSTD)
		rc = zstd_finish(r, &run, err);
	if (!rc)
		rc = payload_check(r, &run, err);
	if (!rc && sink && sink->end)
		rc = sink->end(sink->ctx, i, run.p, err);
	EVP_MD_CTX_free(run.stored);
	EVP_MD_CTX_free(run.raw);
	return rc;
}

int fsig_reader_stream(struct fsig_reader *r, const struct fsig_sink *sink,
		       struct fl_error *err)
{
	const struct fsig_tar_entry *e;
	int rc = 0;

	if (r->state != ST_META)
		return fl_fail(err, FL_EINVAL,
			       "bundle payloads can be read once, after its "
			       "manifest");
	for (size_t i = 0; !rc && i < r->m->n_payloads; i++)
		rc = stream_one(r, i, sink, err);
	if (!rc)
		rc = next_entry(r, 2 + r->m->n_payloads, &e, err);
	if (!rc && e)
		rc = REJECT(r, err, FSIG_R_EXTRA,
			    "entry '%.80s' follows the last payload", e->name);
	r->state = rc ? ST_FAILED : ST_DONE;
	return rc;
}

/* ------------------------------------------------------------------ */
/* Accessors                                                           */

const struct fsig_manifest *fsig_reader_manifest(const struct fsig_reader *r)
{
	return r->state == ST_META || r->state == ST_DONE ? r->m : NULL;
}

const struct fsig_siglist *fsig_reader_signatures(const struct fsig_reader *r)
{
	return &r->sigs;
}

const char *fsig_reader_manifest_sha256(const struct fsig_reader *r)
{
	return r->msha;
}

uint64_t fsig_reader_offset(const struct fsig_reader *r)
{
	return fsig_tar_offset(&r->tar);
}

bool fsig_reader_verified(const struct fsig_reader *r)
{
	return r->verified;
}

enum fsig_reason fsig_reader_reason(const struct fsig_reader *r)
{
	return r->reason;
}

json_t *fsig_reader_describe(const struct fsig_reader *r)
{
	json_t *sigs = json_array();

	for (size_t i = 0; i < r->sigs.n; i++)
		json_array_append_new(
		    sigs, json_pack("{s:s}", "keyid", r->sigs.sigs[i].keyid));
	return json_pack("{s:O?, s:s, s:I, s:o, s:b}", "manifest",
			 r->m ? r->m->json : NULL, "manifest_sha256", r->msha,
			 "manifest_size", (json_int_t)r->mlen, "signatures",
			 sigs, "verified", r->verified);
}

struct fsig_manifest *fsig_reader_take_manifest(struct fsig_reader *r)
{
	struct fsig_manifest *m = r->m;

	r->m = NULL;
	r->state = ST_FAILED;
	return m;
}

void fsig_reader_free(struct fsig_reader *r)
{
	if (!r)
		return;
	fsig_manifest_free(r->m);
	if (r->dctx)
		ZSTD_freeDCtx(r->dctx);
	free(r->zout);
	free(r->mbytes);
	free(r->iobuf);
	free(r);
}

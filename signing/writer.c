/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "bgwrite.h"
#include "fsutil.h"
#include "sigs.h"
#include "tar.h"
#include "util.h"
#include "validate.h"
#include "reader.h"
#include "writer.h"

#define CHUNK (256 * 1024)
#define ZSTD_LEVEL_DEFAULT 3
#define ZSTD_LEVEL_MAX 19

/* Per payload: the open image and what streaming it found out. */
struct pl_state {
	const struct fsig_payload_spec *spec;
	const char *name, *type;
	int fd;
	uint64_t raw_size; /* image size, known before streaming */
	uint64_t size;	   /* stored bytes, known after streaming */
	char sha256[65], raw_sha256[65];
	bool streamed;
};

/* Where bytes go: pwrite at an offset, write() to a pipe, or nowhere. */
struct out {
	int fd;
	bool seekable, discard;
	off_t base;
	uint64_t off;
};

struct writer {
	const struct fsig_bundle_spec *spec;
	time_t created;
	struct pl_state pl[FSIG_PAYLOADS_MAX];
	struct out out;
	unsigned char *buf, *buf2, *zbuf;
	size_t zbuf_len;
	ZSTD_CCtx *cctx;
};

static const unsigned char zeros[2 * FSIG_TAR_BLOCK];

static int out_write(struct out *o, const void *buf, size_t len,
		     struct fl_error *err)
{
	const char *p = buf;
	size_t done = 0;

	if (o->discard || len == 0) {
		o->off += len;
		return 0;
	}
	if (!o->seekable) {
		if (fl_write_all(o->fd, buf, len, err))
			return FL_EIO;
		o->off += len;
		return 0;
	}
	while (done < len) {
		ssize_t n = pwrite(o->fd, p + done, len - done,
				   o->base + (off_t)(o->off + done));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fl_fail_errno(err, FL_EIO,
					     "cannot write bundle");
		done += (size_t)n;
	}
	o->off += len;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Checking the spec and opening images                                */

static int check_spec(const struct fsig_bundle_spec *s, struct fl_error *err)
{
	if (!fsig_valid_name(s->name))
		return fl_fail(err, FL_EINVAL,
			       "bad bundle name '%.80s' (1-64 of A-Z a-z 0-9 "
			       ". _ + -, not starting with '.')",
			       s->name ? s->name : "");
	if (!fsig_valid_semver(s->version))
		return fl_fail(err, FL_EINVAL,
			       "version '%.80s' is not a semantic version",
			       s->version ? s->version : "");
	if (s->security_version > FSIG_SECURITY_VERSION_MAX)
		return fl_fail(err, FL_EINVAL, "security version too large");
	if (s->n_hardware < 1 || s->n_hardware > FSIG_HARDWARE_MAX)
		return fl_fail(err, FL_EINVAL, "need 1 to %d hardware names",
			       FSIG_HARDWARE_MAX);
	for (size_t i = 0; i < s->n_hardware; i++)
		if (!fl_valid_label(s->hardware[i]))
			return fl_fail(err, FL_EINVAL,
				       "bad hardware name '%.80s'",
				       s->hardware[i] ? s->hardware[i] : "");
	if (s->n_payloads < 1 || s->n_payloads > FSIG_PAYLOADS_MAX)
		return fl_fail(err, FL_EINVAL, "need 1 to %d payloads",
			       FSIG_PAYLOADS_MAX);
	if (s->n_keys < 1 || s->n_keys > FSIG_SIGS_MAX)
		return fl_fail(err, FL_EINVAL, "need 1 to %d signing keys",
			       FSIG_SIGS_MAX);
	for (size_t i = 0; i < s->n_keys; i++)
		if (!fsig_key_has_private(s->keys[i]))
			return fl_fail(err, FL_EINVAL,
				       "key %.16s cannot sign (public only)",
				       fsig_key_id(s->keys[i]));
	if (s->zstd_level < 0 || s->zstd_level > ZSTD_LEVEL_MAX)
		return fl_fail(err, FL_EINVAL, "zstd level must be 1..%d",
			       ZSTD_LEVEL_MAX);
	return 0;
}

static int image_size(int fd, const char *path, uint64_t *ret,
		      struct fl_error *err)
{
	struct stat st;
	off_t end;

	if (fstat(fd, &st) < 0)
		return fl_fail_errno(err, FL_EIO, "cannot stat '%s'", path);
	if (S_ISREG(st.st_mode)) {
		*ret = (uint64_t)st.st_size;
	} else if (S_ISBLK(st.st_mode)) {
		end = lseek(fd, 0, SEEK_END);
		if (end < 0)
			return fl_fail_errno(err, FL_EIO, "cannot size '%s'",
					     path);
		*ret = (uint64_t)end;
	} else {
		return fl_fail(err, FL_EINVAL,
			       "'%s' is not a regular file or block device",
			       path);
	}
	if (*ret > FSIG_PAYLOAD_SIZE_MAX)
		return fl_fail(err, FL_ELIMIT, "'%s' is larger than %lld bytes",
			       path, (long long)FSIG_PAYLOAD_SIZE_MAX);
	return 0;
}

static int open_payload(struct writer *w, size_t i, struct fl_error *err)
{
	const struct fsig_payload_spec *ps = &w->spec->payloads[i];
	struct pl_state *p = &w->pl[i];

	p->spec = ps;
	p->fd = -1;
	p->type = ps->type ? ps->type : "image";
	p->name = ps->name;
	if (!p->name) {
		const char *slash = strrchr(ps->path, '/');

		p->name = slash ? slash + 1 : ps->path;
	}
	if (!fsig_valid_name(p->name))
		return fl_fail(err, FL_EINVAL,
			       "bad payload name '%.80s' (1-64 of A-Z a-z 0-9 "
			       ". _ + -, not starting with '.')",
			       p->name);
	if (!fl_valid_label(p->type) || strlen(p->type) > FSIG_TYPE_MAX)
		return fl_fail(err, FL_EINVAL, "bad payload type '%.40s'",
			       p->type);
	for (size_t j = 0; j < i; j++)
		if (strcmp(w->pl[j].name, p->name) == 0)
			return fl_fail(err, FL_EINVAL,
				       "two payloads are named '%s'", p->name);
	p->fd = open(ps->path, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return fl_fail_errno(err,
				     errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
				     "cannot open '%s'", ps->path);
	posix_fadvise(p->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	return image_size(p->fd, ps->path, &p->raw_size, err);
}

/* ------------------------------------------------------------------ */
/* Manifest and signature file text                                    */

static const char placeholder_hash[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

/* One payload as the manifest describes it; the placeholder (for the
 * reserved length) has the largest size and zero digests. */
static void payload_view(const struct pl_state *p, bool placeholder,
			 struct fsig_payload *ret)
{
	bool z = p->spec->compression == FSIG_COMP_ZSTD;

	*ret = (struct fsig_payload){
	    .name = p->name,
	    .type = p->type,
	    .compression = p->spec->compression,
	    .size = placeholder ? (z ? FSIG_PAYLOAD_SIZE_MAX : p->raw_size)
				: p->size,
	    .raw_size = p->raw_size,
	    .sha256 = placeholder ? placeholder_hash : p->sha256,
	    .raw_sha256 = placeholder ? placeholder_hash : p->raw_sha256,
	};
}

/* The manifest through fsig_manifest_to_json, the one serialisation
 * that a parsed manifest also goes through (fuzz_manifest checks that
 * it reads back the same). */
static json_t *manifest_json(const struct writer *w, bool placeholder)
{
	const struct fsig_bundle_spec *s = w->spec;
	struct fsig_manifest *m = fl_xcalloc(1, sizeof(*m));
	json_t *j;

	m->format = FSIG_FORMAT;
	m->name = s->name;
	m->version = s->version;
	m->security_version = s->security_version;
	m->n_hardware = s->n_hardware;
	for (size_t i = 0; i < s->n_hardware; i++)
		m->hardware[i] = s->hardware[i];
	m->created = w->created;
	m->expires = s->expires;
	m->has_provenance = s->provenance != NULL;
	if (s->provenance)
		m->provenance = *s->provenance;
	m->n_payloads = s->n_payloads;
	for (size_t i = 0; i < s->n_payloads; i++)
		payload_view(&w->pl[i], placeholder, &m->payloads[i]);
	j = fsig_manifest_to_json(m);
	free(m);
	return j;
}

/*
 * Serialise @j (two-space indent) padded with spaces to exactly @want
 * bytes including the final newline, or unpadded when @want is 0.
 * FL_ELIMIT when the text exceeds @max (or @want).
 */
static int render(json_t *j, size_t want, size_t max, char **ret,
		  size_t *ret_len, struct fl_error *err)
{
	char *s = json_dumps(j, JSON_INDENT(2));
	size_t n, total;
	char *out;

	json_decref(j);
	if (!s)
		abort(); /* jansson fails only on allocation */
	n = strlen(s);
	total = want ? want : n + 1;
	if (n + 1 > total || total > max) {
		free(s);
		return fl_fail(err, FL_ELIMIT,
			       "metadata of %zu bytes is over its %zu byte cap",
			       n + 1, want && want < max ? want : max);
	}
	out = fl_xmalloc(total + 1);
	memcpy(out, s, n);
	memset(out + n, ' ', total - n - 1);
	out[total - 1] = '\n';
	out[total] = '\0';
	free(s);
	*ret = out;
	*ret_len = total;
	return 0;
}

/* Signature file text for @manifest, or its placeholder (max sizes). */
static int sig_text(const struct writer *w, const char *manifest, size_t mlen,
		    size_t want, char **ret, size_t *ret_len,
		    struct fl_error *err)
{
	struct fsig_siglist list = {0};
	int rc;

	for (size_t i = 0; i < w->spec->n_keys && manifest; i++) {
		rc =
		    fsig_siglist_add(&list, w->spec->keys[i],
				     FSIG_DOMAIN_MANIFEST, manifest, mlen, err);
		if (rc)
			return rc;
	}
	for (size_t i = 0; !manifest && i < w->spec->n_keys; i++) {
		struct fsig_sig *s = &list.sigs[list.n++];

		memcpy(s->keyid, fsig_key_id(w->spec->keys[i]),
		       sizeof(s->keyid));
		s->len = fsig_key_sig_max(w->spec->keys[i]);
		memset(s->sig, 0xff, s->len);
	}
	return render(fsig_siglist_to_json(&list), want, FSIG_SIGFILE_MAX, ret,
		      ret_len, err);
}

/* ------------------------------------------------------------------ */
/* Streaming payloads                                                  */

static int read_chunk(struct pl_state *p, uint64_t off, unsigned char *buf,
		      size_t want, struct fl_error *err)
{
	size_t got = 0;

	while (got < want) {
		ssize_t n =
		    pread(p->fd, buf + got, want - got, (off_t)(off + got));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return fl_fail_errno(err, FL_EIO, "cannot read '%s'",
					     p->spec->path);
		if (n == 0)
			return fl_fail(err, FL_ECONFLICT,
				       "'%s' shrank while being bundled",
				       p->spec->path);
		got += (size_t)n;
	}
	return 0;
}

/* Compress @len bytes (@end: the last input) and emit the output. */
static int zstd_feed(struct writer *w, EVP_MD_CTX *stored, const void *in,
		     size_t len, bool end, uint64_t *stored_size,
		     struct fl_error *err)
{
	ZSTD_inBuffer ib = {in, len, 0};
	size_t left;
	int rc;

	do {
		ZSTD_outBuffer ob = {w->zbuf, w->zbuf_len, 0};

		left = ZSTD_compressStream2(w->cctx, &ob, &ib,
					    end ? ZSTD_e_end : ZSTD_e_continue);
		if (ZSTD_isError(left))
			return fl_fail(err, FL_ERR, "zstd: %s",
				       ZSTD_getErrorName(left));
		EVP_DigestUpdate(stored, w->zbuf, ob.pos);
		*stored_size += ob.pos;
		rc = out_write(&w->out, w->zbuf, ob.pos, err);
		if (rc)
			return rc;
	} while (end ? left != 0 : ib.pos < ib.size);
	return 0;
}

static int zstd_start(struct writer *w, const struct pl_state *p,
		      struct fl_error *err)
{
	int level =
	    w->spec->zstd_level ? w->spec->zstd_level : ZSTD_LEVEL_DEFAULT;

	if (!w->cctx) {
		if (fsig_zstd_load(err))
			return FL_ERR;
		w->cctx = ZSTD_createCCtx();
		w->zbuf_len = ZSTD_CStreamOutSize();
		w->zbuf = fl_xmalloc(w->zbuf_len);
	}
	ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_and_parameters);
	if (ZSTD_isError(ZSTD_CCtx_setParameter(
		w->cctx, ZSTD_c_compressionLevel, level)) ||
	    ZSTD_isError(ZSTD_CCtx_setPledgedSrcSize(w->cctx, p->raw_size)))
		return fl_fail(err, FL_ERR, "cannot set up zstd");
	return 0;
}

static int bgw_write(void *ctx, const void *buf, size_t len,
			uint64_t off, struct fl_error *err)
{
	return out_write(ctx, buf, len, err);
}

/*
 * An uncompressed payload: this thread reads and hashes while a writer
 * thread writes the previous buffer, alternating two buffers, so the
 * cost is about max(hash, copy) rather than their sum.
 */
static int stream_plain(struct writer *w, struct pl_state *p, EVP_MD_CTX *raw,
			struct fl_error *err)
{
	unsigned char *bufs[2] = {w->buf, w->buf2};
	struct fl_bgw *cp = NULL;
	uint64_t off = 0;
	int k = 0, rc = 0, rc2;

	if (!w->out.discard && p->raw_size > CHUNK)
		rc = fl_bgw_start(bgw_write, &w->out, &cp, err);
	while (!rc && off < p->raw_size) {
		size_t n =
		    p->raw_size - off < CHUNK ? p->raw_size - off : CHUNK;

		rc = read_chunk(p, off, bufs[k], n, err);
		if (!rc)
			rc = cp ? fl_bgw_submit(cp, bufs[k], n, off, err)
				: out_write(&w->out, bufs[k], n, err);
		if (rc)
			break;
		EVP_DigestUpdate(raw, bufs[k], n);
		off += n;
		k ^= 1;
	}
	rc2 = fl_bgw_finish(cp, err);
	p->size = off;
	return rc ? rc : rc2;
}

/* Read, hash, maybe compress and emit the data of one payload. */
static int stream_data(struct writer *w, struct pl_state *p, EVP_MD_CTX *raw,
		       EVP_MD_CTX *stored, struct fl_error *err)
{
	uint64_t off = 0;
	int rc;

	p->size = 0;
	if (p->spec->compression == FSIG_COMP_NONE)
		return stream_plain(w, p, raw, err);
	rc = zstd_start(w, p, err);
	while (!rc) {
		size_t n =
		    p->raw_size - off < CHUNK ? p->raw_size - off : CHUNK;

		rc = read_chunk(p, off, w->buf, n, err);
		if (rc)
			break;
		EVP_DigestUpdate(raw, w->buf, n);
		off += n;
		rc = zstd_feed(w, stored, w->buf, n, off == p->raw_size,
			       &p->size, err);
		if (off == p->raw_size)
			break;
	}
	if (!rc && p->size > FSIG_PAYLOAD_SIZE_MAX)
		rc = fl_fail(err, FL_ELIMIT, "compressed '%s' is too large",
			     p->name);
	return rc;
}

static void digest_hex(EVP_MD_CTX *ctx, char out[65])
{
	unsigned char md[32];

	EVP_DigestFinal_ex(ctx, md, NULL);
	fl_hex(md, sizeof(md), out);
}

/*
 * Emit one payload entry: header, data, padding.  The header is written
 * first when the stored size is known (uncompressed, or a second pass)
 * and patched afterwards otherwise (seekable output only).  The hashes
 * land in @p, or are compared with @p's when it was streamed before.
 */
static int stream_payload(struct writer *w, struct pl_state *p,
			  struct fl_error *err)
{
	EVP_MD_CTX *raw = EVP_MD_CTX_new(), *stored = EVP_MD_CTX_new();
	bool known = p->streamed || p->spec->compression == FSIG_COMP_NONE;
	uint64_t hdr_off = w->out.off, old_size = p->size;
	unsigned char hdr[FSIG_TAR_BLOCK];
	char name[FSIG_TAR_NAME_MAX + 1], sha[65], raw_sha[65];
	int rc;

	snprintf(name, sizeof(name), "payload/%s", p->name);
	fsig_tar_header(hdr, name,
			known ? (p->streamed ? p->size : p->raw_size) : 0,
			w->created);
	EVP_DigestInit_ex(raw, EVP_sha256(), NULL);
	EVP_DigestInit_ex(stored, EVP_sha256(), NULL);
	rc = out_write(&w->out, hdr, sizeof(hdr), err);
	if (!rc)
		rc = stream_data(w, p, raw, stored, err);
	if (rc)
		goto out;
	digest_hex(raw, raw_sha);
	if (p->spec->compression == FSIG_COMP_ZSTD)
		digest_hex(stored, sha);
	else
		memcpy(sha, raw_sha, sizeof(sha));
	if (p->streamed && (old_size != p->size || strcmp(sha, p->sha256))) {
		rc = fl_fail(err, FL_ECONFLICT,
			     "'%s' changed while being bundled", p->spec->path);
		goto out;
	}
	memcpy(p->sha256, sha, sizeof(sha));
	memcpy(p->raw_sha256, raw_sha, sizeof(raw_sha));
	p->streamed = true;
	rc = out_write(&w->out, zeros, fsig_tar_padding(p->size), err);
	if (!rc && !known && w->out.seekable && !w->out.discard) {
		struct out at = w->out;

		at.off = hdr_off;
		fsig_tar_header(hdr, name, p->size, w->created);
		rc = out_write(&at, hdr, sizeof(hdr), err);
	}
out:
	EVP_MD_CTX_free(raw);
	EVP_MD_CTX_free(stored);
	return rc;
}

/* ------------------------------------------------------------------ */
/* The metadata region                                                 */

static size_t region_size(size_t mlen, size_t slen)
{
	return 2 * FSIG_TAR_BLOCK + mlen + fsig_tar_padding(mlen) + slen +
	       fsig_tar_padding(slen);
}

/* Header + data + padding of one small entry into @buf at *off. */
static void put_entry(unsigned char *buf, size_t *off, const char *name,
		      const char *data, size_t len, time_t mtime)
{
	fsig_tar_header(buf + *off, name, len, mtime);
	*off += FSIG_TAR_BLOCK;
	memcpy(buf + *off, data, len);
	*off += len;
	memset(buf + *off, 0, fsig_tar_padding(len));
	*off += fsig_tar_padding(len);
}

/*
 * Render the final manifest (padded to @mlen, 0: exact), sign it, and
 * write manifest.json + manifest.sig at offset 0 of the bundle.
 */
static int write_region(struct writer *w, size_t mlen, size_t slen,
			struct fl_error *err)
{
	char *manifest = NULL, *sig = NULL;
	unsigned char *buf = NULL;
	struct out at = w->out;
	size_t ml, sl, off = 0;
	int rc;

	rc = render(manifest_json(w, false), mlen, FSIG_MANIFEST_MAX, &manifest,
		    &ml, err);
	if (!rc)
		rc = sig_text(w, manifest, ml, slen, &sig, &sl, err);
	if (rc)
		goto out;
	buf = fl_xmalloc(region_size(ml, sl));
	put_entry(buf, &off, "manifest.json", manifest, ml, w->created);
	put_entry(buf, &off, "manifest.sig", sig, sl, w->created);
	at.off = 0;
	at.discard = false;
	rc = out_write(&at, buf, off, err);
	if (!w->out.seekable)
		w->out.off = at.off;
out:
	free(buf);
	free(manifest);
	free(sig);
	return rc;
}

/* Reserved lengths of manifest.json and manifest.sig. */
static int reserve(struct writer *w, size_t *ret_mlen, size_t *ret_slen,
		   struct fl_error *err)
{
	char *m, *s;
	int rc;

	rc = render(manifest_json(w, true), 0, FSIG_MANIFEST_MAX, &m, ret_mlen,
		    err);
	if (rc)
		return rc;
	free(m);
	rc = sig_text(w, NULL, 0, 0, &s, ret_slen, err);
	free(s);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Top level                                                           */

static int stream_all(struct writer *w, struct fl_error *err)
{
	int rc = 0;

	for (size_t i = 0; !rc && i < w->spec->n_payloads; i++)
		rc = stream_payload(w, &w->pl[i], err);
	if (!rc)
		rc = out_write(&w->out, zeros, sizeof(zeros), err);
	return rc;
}

/* Seekable output: one pass over every image. */
static int write_seekable(struct writer *w, struct fl_error *err)
{
	size_t mlen, slen;
	int rc;

	rc = reserve(w, &mlen, &slen, err);
	if (rc)
		return rc;
	w->out.off = region_size(mlen, slen);
	rc = stream_all(w, err);
	if (!rc)
		rc = write_region(w, mlen, slen, err);
	if (!rc && ftruncate(w->out.fd, w->out.base + (off_t)w->out.off) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot truncate bundle");
	return rc;
}

/* Pipe: hash every image first, then write everything in order. */
static int write_stream(struct writer *w, struct fl_error *err)
{
	int rc;

	w->out.discard = true;
	rc = stream_all(w, err);
	w->out.discard = false;
	w->out.off = 0;
	if (!rc)
		rc = write_region(w, 0, 0, err);
	if (!rc)
		rc = stream_all(w, err);
	return rc;
}

static void writer_release(struct writer *w)
{
	for (size_t i = 0; i < w->spec->n_payloads; i++)
		if (w->pl[i].fd >= 0)
			close(w->pl[i].fd);
	if (w->cctx)
		ZSTD_freeCCtx(w->cctx);
	free(w->buf);
	free(w->buf2);
	free(w->zbuf);
}

int fsig_bundle_write(const struct fsig_bundle_spec *spec, int fd,
		      struct fl_error *err)
{
	struct writer w = {.spec = spec};
	struct stat st;
	int rc;

	rc = check_spec(spec, err);
	if (rc)
		return rc;
	w.created = spec->created ? spec->created : time(NULL);
	if (spec->expires && spec->expires <= w.created)
		return fl_fail(err, FL_EINVAL, "expiry is not after creation");
	for (size_t i = 0; i < spec->n_payloads; i++)
		w.pl[i].fd = -1;
	for (size_t i = 0; !rc && i < spec->n_payloads; i++)
		rc = open_payload(&w, i, err);
	w.out.fd = fd;
	w.out.base = lseek(fd, 0, SEEK_CUR);
	w.out.seekable =
	    fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && w.out.base >= 0;
	w.buf = fl_xmalloc(CHUNK);
	w.buf2 = fl_xmalloc(CHUNK);
	if (!rc)
		rc = w.out.seekable ? write_seekable(&w, err)
				    : write_stream(&w, err);
	writer_release(&w);
	return rc;
}

int fsig_bundle_create(const struct fsig_bundle_spec *spec, const char *path,
		       struct fl_error *err)
{
	struct stat st;
	char *tmp;
	int fd, rc;

	/* never replace a device or symlink (think -o /dev/stdout) */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return fl_fail(err, FL_EINVAL,
			       "'%s' exists and is not a regular file "
			       "(write pipes with fsig_bundle_write)",
			       path);
	tmp = fl_xasprintf("%s.tmp.XXXXXX", path);
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0) {
		rc = fl_fail_errno(err, FL_EIO, "cannot create '%s'", tmp);
		free(tmp);
		return rc;
	}
	rc = fsig_bundle_write(spec, fd, err);
	if (!rc && fchmod(fd, 0644) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot chmod '%s'", tmp);
	if (!rc && spec->sync && fsync(fd) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot sync '%s'", tmp);
	close(fd);
	if (!rc && rename(tmp, path) < 0)
		rc = fl_fail_errno(err, FL_EIO, "cannot rename to '%s'", path);
	if (rc)
		unlink(tmp);
	else if (spec->sync)
		rc = fl_fsync_parent(path, err);
	free(tmp);
	return rc;
}

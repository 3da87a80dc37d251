/* SPDX-License-Identifier: MIT */
/*
 * The install pipeline of an update (docs/ota.md): one pass that
 * downloads the bundle into the partial file and, through the same
 * bytes, checks its signature and policy (before any payload byte is
 * fetched: the download runs only a small window ahead until then) and
 * streams the payload into the inactive slot while hashing it.  After a
 * restart the pass starts again from byte 0: the bytes already in the
 * partial file are verified and written again locally, and only the
 * rest is fetched, with Range.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "download.h"
#include "log.h"
#include "ota_internal.h"
#include "reader.h"
#include "slot.h"
#include "trust.h"
#include "util.h"

#define PROGRESS_MS 1000
#define BLOCK 512

struct install {
	struct agent_ota *o;
	struct agent_dl *dl;
	struct fsig_root *root;
	struct fsig_reader *r;
	struct agent_slot_writer *w;
	struct fsig_sink slot_sink;
	const char *stage; /* where a failure is reported */
	uint64_t fetched_base;
	bool stopped, source_failed, sink_failed, verified, all_in;
};

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
/* ------------------------------------------------------------------ */

/*
 * Bytes the network added to the partial file for this job, counted up
 * to @upto, which is what the journal's "bytes" says at the same time
 * (what a checkpoint made durable; everything once installed): each
 * attempt resumes at the file's length, so that is what came from the
 * network beyond what the file held when this pass opened it.  After a
 * kill, begin_download adds what the file holds beyond "bytes".
 */
static void count_fetched(struct install *in, uint64_t upto)
{
	uint64_t kept = agent_dl_kept(in->dl);

	in->o->j.job.fetched =
	    in->fetched_base + (upto > kept ? upto - kept : 0);
}

static int dl_tick(void *user, struct fl_error *err)
{
	struct install *in = user;
	struct agent_ota *o = in->o;
	int64_t now = agent_host_now_ms(o->h);
	json_t *f;
	int rc;

	rc = ota_pump(o, err);
	if (rc) {
		in->stopped = true;
		return rc;
	}
	o->progress = agent_dl_have(in->dl);
	if (now - o->last_progress_ms >= PROGRESS_MS && !in->all_in) {
		o->last_progress_ms = now;
		f = json_pack("{s:I}", "bytes",
			      (json_int_t)agent_dl_have(in->dl));
		ota_event(o, "downloading", f);
		json_decref(f);
	}
	return 0;
}

static int dl_checkpoint(void *user, uint64_t durable, struct fl_error *err)
{
	struct install *in = user;

	in->o->j.job.bytes = durable;
	count_fetched(in, durable);
	return ota_save(in->o, err);
}

/* Every byte is in the partial file: it is synced, and the job says
 * "verifying" while the reader reaches its verdict. */
static int all_in(struct install *in, struct fl_error *err)
{
	struct agent_job *job = &in->o->j.job;
	int rc;

	/* not synced: after a power cut the bytes since the last
	 * checkpoint come again, and syncing would cost as much as the
	 * rest of the install */
	in->all_in = true;
	in->o->progress = agent_dl_have(in->dl);
	(void)job;
	rc = ota_enter(in->o, AGENT_JOB_VERIFYING, err);
	if (!rc)
		ota_failpoint(in->o, "verifying");
	return rc;
}

static int src_read(void *ctx, void *buf, size_t cap, size_t *ret_len,
		    struct fl_error *err)
{
	struct install *in = ctx;
	int rc;

	rc = agent_dl_read(in->dl, buf, cap, ret_len, err);
	if (rc) {
		in->source_failed = true;
		return rc;
	}
	ota_failpoint_at(in->o, "bytes", agent_dl_have(in->dl));
	if (in->verified && !in->all_in &&
	    agent_dl_have(in->dl) == in->o->j.job.size)
		rc = all_in(in, err);
	return rc;
}

static int sk_begin(void *ctx, size_t index, const struct fsig_payload *p,
		    struct fl_error *err)
{
	struct install *in = ctx;
	int rc = in->slot_sink.begin(in->slot_sink.ctx, index, p, err);

	in->sink_failed = rc != 0;
	return rc;
}

static int sk_write(void *ctx, const void *buf, size_t len,
		    struct fl_error *err)
{
	struct install *in = ctx;
	int rc = in->slot_sink.write(in->slot_sink.ctx, buf, len, err);

	in->sink_failed = rc != 0 && !in->stopped;
	return rc;
}

static int slot_progress(void *user, uint64_t written, struct fl_error *err)
{
	struct install *in = user;

	ota_failpoint_at(in->o, "written", written);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Phases                                                             */
/* ------------------------------------------------------------------ */

/* Open the download (keeping what may be kept) and say "downloading". */
static int begin_download(struct install *in, struct fl_error *err)
{
	struct agent_ota *o = in->o;
	const struct agent_config *c = agent_host_config(o->h);
	const struct agent_identity_paths *id =
	    agent_host_identity(o->h, false);
	struct agent_job *job = &o->j.job;
	char *url = fl_xasprintf("%s%s", c->server_url, job->url);
	struct agent_dl_opts d = {
	    .url = url,
	    .ca_file = c->ca_file,
	    .cert_file = id->cert,
	    .key_file = id->key,
	    .partial = o->partial_path,
	    .size = job->size,
	    .trust_file = *job->partial_boot &&
			  fl_streq(job->partial_boot, o->kernel_boot),
	    .durable = job->bytes,
	    .rate_limit = c->download_rate_limit,
	    .retries = (unsigned)c->download_retries,
	    .stall_timeout_s = (long)c->http_timeout_s,
	    .checkpoint = dl_checkpoint,
	    .tick = dl_tick,
	    .user = in,
	};
	uint64_t kept;
	int rc;

	rc = agent_dl_open(&d, &in->dl, err);
	free(url);
	if (!rc && d.trust_file)
		rc = agent_dl_sync(in->dl, NULL, err);
	if (rc)
		return rc;
	kept = agent_dl_kept(in->dl);
	if (kept > job->bytes) /* fetched before, after the checkpoint */
		job->fetched += kept - job->bytes;
	job->bytes = kept;
	o->progress = kept;
	in->fetched_base = job->fetched;
	fl_strlcpy(job->partial_boot, o->kernel_boot,
		   sizeof(job->partial_boot));
	rc = ota_enter(o, AGENT_JOB_DOWNLOADING, err);
	if (rc)
		return rc;
	fl_info("job %s: bundle of %" PRIu64 " bytes, %" PRIu64
		" already here (download resumes at byte %" PRIu64 ")",
		job->id, job->size, kept, kept);
	o->last_progress_ms = agent_host_now_ms(o->h);
	ota_failpoint(o, "downloading");
	return 0;
}

/* The device's root; fetched from fleetd the first time (TOFU). */
static int load_root(struct install *in, struct fl_error *err)
{
	struct agent_host *h = in->o->h;
	int rc;

	fsig_root_free(in->root);
	in->root = NULL;
	rc = agent_trust_load(agent_host_state_dir(h), &in->root, err);
	if (rc != FL_ENOTFOUND)
		return rc;
	fl_error_clear(err);
	fl_info("no trust root yet: fetching version 1 from fleetd");
	rc = agent_trust_fetch_first(agent_host_http(h),
				     agent_host_state_dir(h), err);
	if (!rc)
		rc = agent_trust_load(agent_host_state_dir(h), &in->root, err);
	if (rc)
		fl_error_prefix(err, "no trust root");
	return rc;
}

/* Step 1 from byte 0 of the download. */
static int verify_once(struct install *in, struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(in->o->h);
	struct fsig_policy pol = {
	    .hardware = c->hardware,
	    .min_security_version = in->o->j.floor,
	};
	int rc;

	fsig_reader_free(in->r);
	in->r = NULL;
	agent_dl_rewind(in->dl);
	rc = fsig_reader_open_cb(src_read, in, &in->r, err);
	if (!rc)
		rc = fsig_reader_verify(in->r, in->root, &pol, err);
	return rc;
}

/* Would a newer trust root help with this rejection? */
static bool root_may_help(enum fsig_reason why)
{
	return why == FSIG_R_UNKNOWN_KEY || why == FSIG_R_THRESHOLD ||
	       why == FSIG_R_ROOT_EXPIRED;
}

/* Signature and policy; with a newer root from fleetd when needed. */
static int verify_meta(struct install *in, struct fl_error *err)
{
	struct agent_host *h = in->o->h;
	struct fl_error e2 = {0};
	bool updated = false;
	int rc;

	in->stage = "verifying";
	rc = load_root(in, err);
	if (!rc)
		rc = verify_once(in, err);
	if (rc != FL_EVERIFY || !root_may_help(fsig_reader_reason(in->r)))
		return rc;
	if (agent_trust_update(agent_host_http(h), agent_host_state_dir(h),
			       &updated, &e2)) {
		fl_warn("cannot update the trust root: %s", e2.msg);
		return rc;
	}
	if (!updated)
		return rc;
	fl_error_clear(err);
	rc = load_root(in, err);
	if (!rc) {
		fl_info("trust root is now version %" PRIu64
			"; checking the bundle again",
			fsig_root_version(in->root));
		rc = verify_once(in, err);
	}
	return rc;
}

/* The most bytes a bundle with manifest @m can take (tar overhead). */
static uint64_t size_bound(const struct fsig_manifest *m)
{
	uint64_t b = 2 * (FSIG_MANIFEST_MAX + 4 * BLOCK) + 64 * 1024;

	for (size_t i = 0; i < m->n_payloads; i++)
		b += (m->payloads[i].size + BLOCK - 1) / BLOCK * BLOCK +
		     4 * BLOCK;
	return b;
}

/* What the device needs beyond a valid signature. */
static int check_manifest(struct install *in, struct fl_error *err)
{
	struct agent_job *job = &in->o->j.job;
	const struct fsig_manifest *m = fsig_reader_manifest(in->r);
	const char *sha = fsig_reader_manifest_sha256(in->r);

	if (!fl_streq(sha, job->sha256))
		return fl_fail(err, FL_EVERIFY,
			       "manifest sha256 %.12s... is not the %.12s... "
			       "the command named",
			       sha, job->sha256);
	if (!fl_streq(m->version, job->to_version))
		return fl_fail(err, FL_EVERIFY,
			       "bundle version %s is not the %s the command "
			       "named",
			       m->version, job->to_version);
	if (m->n_payloads != 1)
		return fl_fail(err, FL_EVERIFY,
			       "bundle has %zu payloads; a slot takes one",
			       m->n_payloads);
	if (m->payloads[0].delta_from)
		return fl_fail(err, FL_EVERIFY,
			       "delta payloads cannot be installed yet");
	if (job->size > size_bound(m))
		return fl_fail(err, FL_EVERIFY,
			       "bundle size %" PRIu64
			       " is more than its manifest allows",
			       job->size);
	job->has_security_version = true;
	job->security_version = m->security_version;
	return ota_save(in->o, err);
}

/* Step 2: the payload into the inactive slot, hashed on the way. */
static int stream_slot(struct install *in, struct fl_error *err)
{
	struct agent_ota *o = in->o;
	struct agent_slot_opts so = {
	    .path = ota_slot_path(o, o->j.job.target_slot),
	    .executable = agent_host_config(o->h)->sim_dir != NULL,
	    .progress = slot_progress,
	    .user = in,
	};
	struct fsig_sink sink = {
	    .begin = sk_begin,
	    .write = sk_write,
	    .ctx = in,
	};
	int rc;

	in->stage = "installing";
	rc = agent_slot_open(&so, &in->w, err);
	if (rc)
		return rc;
	agent_slot_sink(in->w, &in->slot_sink);
	agent_dl_set_window(in->dl, AGENT_DL_WINDOW_DEFAULT);
	in->stage = "downloading";
	rc = fsig_reader_stream(in->r, &sink, err);
	if (!rc && !in->all_in)
		rc = all_in(in, err);
	return rc;
}

/* Every hash matched: make the slot durable and record what it holds. */
static int finish_install(struct install *in, struct fl_error *err)
{
	struct agent_ota *o = in->o;
	struct agent_job *job = &o->j.job;
	struct agent_slot_info *si;
	int rc;

	in->stage = "installing";
	rc = ota_enter(o, AGENT_JOB_INSTALLING, err);
	if (!rc) {
		ota_failpoint(o, "installing");
		rc = agent_slot_finish(in->w, err);
	}
	if (rc)
		return rc;
	si = agent_journal_slot(&o->j, job->target_slot);
	fl_strlcpy(si->version, job->to_version, sizeof(si->version));
	job->bytes = agent_dl_have(in->dl); /* no resume needed any more */
	count_fetched(in, job->bytes);
	si->has_security_version = true;
	si->security_version = job->security_version;
	rc = ota_enter(o, AGENT_JOB_INSTALLED, err);
	if (rc)
		return rc;
	unlink(o->partial_path);
	fl_info("job %s: slot %s holds %s (%" PRIu64
		" bytes from the network for this job)",
		job->id, job->target_slot, job->to_version, job->fetched);
	ota_failpoint(o, "installed");
	return 0;
}

/* Where did it fail?  Verification wins over the step it showed in. */
static const char *failure_stage(const struct install *in, int rc)
{
	if (rc == FL_EVERIFY && !in->sink_failed)
		return "verifying";
	if (in->sink_failed)
		return "installing";
	if (in->source_failed)
		return "downloading";
	return in->stage;
}

int ota_install(struct agent_ota *o, struct fl_error *err)
{
	struct install in = {.o = o, .stage = "downloading"};
	int rc;

	o->installing = true;
	rc = begin_download(&in, err);
	if (!rc)
		rc = verify_meta(&in, err);
	if (!rc) {
		in.verified = true;
		rc = check_manifest(&in, err);
	}
	if (!rc)
		rc = stream_slot(&in, err);
	if (!rc)
		rc = finish_install(&in, err);
	in.stopped |= rc && agent_host_stopping(o->h);
	if (rc && in.dl) /* going on later: what is durable; failed: all */
		count_fetched(&in, in.stopped ? o->j.job.bytes
					      : agent_dl_have(in.dl));
	agent_slot_free(in.w);
	fsig_reader_free(in.r);
	fsig_root_free(in.root);
	agent_dl_free(in.dl);
	o->installing = false;
	if (o->cancel) { /* fleetd cancelled it meanwhile; not switched */
		ota_finish(o, AGENT_JOB_FAILED,
			   rc ? failure_stage(&in, rc) : "installed",
			   OTA_CANCELLED);
		return 0;
	}
	if (rc && in.stopped) {
		ota_save(o, NULL);
		fl_info("job %s: stopped; it goes on at the next start",
			o->j.job.id);
		return rc;
	}
	if (rc)
		ota_finish(o, AGENT_JOB_FAILED, failure_stage(&in, rc),
			   err ? err->msg : "install failed");
	return 0;
}

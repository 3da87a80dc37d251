/* SPDX-License-Identifier: MIT */
/*
 * The install pipeline of an update (docs/ota.md): one pass that
 * streams the bundle from fleetd straight into the inactive slot
 * (stream.h), checking its signature and policy on the first bytes
 * (before any payload byte is fetched: the download runs only a small
 * window ahead until then) and hashing the payload on its way.  The
 * pass checkpoints into the journal; after a restart it starts from the
 * last checkpoint: the bytes the device holds are read back and checked
 * again, and only the rest is fetched, with Range.  A job whose command
 * names a mirror downloads from it until it fails once, then from
 * fleetd again from byte 0 (docs/ota.md "Mirrors").
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ota_internal.h"
#include "reader.h"
#include "stream.h"
#include "trust.h"
#include "util.h"

#define PROGRESS_MS 1000
#define BLOCK 512

struct install {
	struct agent_ota *o;
	struct agent_stream *s;
	struct fsig_root *root;
	const char *stage;	       /* where a failure is reported */
	uint64_t fetched_base;	       /* job's fetched when the pass began */
	struct agent_stream_ckpt from; /* where the pass began */
	bool stopped, verified, all_in;
};

/* ------------------------------------------------------------------ */
/* Callbacks                                                          */
/* ------------------------------------------------------------------ */

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
	o->progress = agent_stream_have(in->s);
	if (now - o->last_progress_ms >= PROGRESS_MS && !in->all_in) {
		o->last_progress_ms = now;
		f = json_pack("{s:I}", "bytes", (json_int_t)o->progress);
		ota_event(o, "downloading", f);
		json_decref(f);
	}
	return 0;
}

/*
 * The device holds the bundle up to @c durably: the journal says so.
 * "fetched" counts what the network brought for the job up to there:
 * the bytes it brought after a checkpoint and before a kill are fetched
 * again by the next pass and counted once.
 */
static int st_checkpoint(void *user, const struct agent_stream_ckpt *c,
			 struct fl_error *err)
{
	struct install *in = user;
	struct agent_job *job = &in->o->j.job;
	int rc;

	job->bytes = c->bytes;
	job->slot_bytes = c->slot_bytes;
	job->fetched = in->fetched_base + (c->bytes - in->from.bytes);
	rc = ota_save(in->o, err);
	if (!rc)
		ota_failpoint_at(in->o, "checkpoint", c->bytes);
	return rc;
}

/* Every byte came: the job says "verifying" while the reader reaches
 * its verdict. */
static int all_in(struct install *in, struct fl_error *err)
{
	int rc;

	in->all_in = true;
	in->o->progress = agent_stream_have(in->s);
	rc = ota_enter(in->o, AGENT_JOB_VERIFYING, err);
	if (!rc)
		ota_failpoint(in->o, "verifying");
	return rc;
}

static int st_read(void *user, struct fl_error *err)
{
	struct install *in = user;
	uint64_t have = agent_stream_have(in->s);

	ota_failpoint_at(in->o, "bytes", have);
	if (in->verified && !in->all_in && have == in->o->j.job.size)
		return all_in(in, err);
	return 0;
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

/* Does this pass download from the mirror?  Until it failed once. */
static bool use_mirror(const struct agent_job *job)
{
	return *job->mirror && !job->mirror_off;
}

/* Open the stream from the journal's checkpoint; say "downloading".
 * The mirror gets no retry: its first failed attempt ends the pass. */
static int begin_download(struct install *in, struct fl_error *err)
{
	struct agent_ota *o = in->o;
	const struct agent_config *c = agent_host_config(o->h);
	const struct agent_live *live = agent_host_live(o->h);
	const struct agent_identity_paths *id =
	    agent_host_identity(o->h, false);
	struct agent_job *job = &o->j.job;
	bool mirror = use_mirror(job);
	char *url = mirror ? fl_xstrdup(job->mirror)
			   : fl_xasprintf("%s%s", c->server_url, job->url);
	struct agent_stream_opts so = {
	    .dl =
		{
		    .url = url,
		    .ca_file =
			mirror && c->mirror_ca ? c->mirror_ca : c->ca_file,
		    .cert_file = id->cert,
		    .key_file = id->key,
		    .size = job->size,
		    .rate_limit = live->rate_set ? live->download_rate
						 : c->download_rate_limit,
		    .retries = mirror ? 0 : (unsigned)c->download_retries,
		    .stall_timeout_s = (long)c->http_timeout_s,
		    .tick = dl_tick,
		    .user = in,
		},
	    .head_path = o->head_path,
	    .slot =
		{
		    .path = ota_slot_path(o, job->target_slot),
		    .executable = c->sim_dir != NULL,
		    .progress = slot_progress,
		    .user = in,
		},
	    .from = {job->bytes, job->slot_bytes},
	    .checkpoint = st_checkpoint,
	    .on_read = st_read,
	    .user = in,
	};
	int rc;

	rc = agent_stream_open(&so, &in->s, err);
	free(url);
	if (rc)
		return rc;
	in->from = agent_stream_from(in->s);
	job->bytes = in->from.bytes;
	job->slot_bytes = in->from.slot_bytes;
	o->progress = job->bytes;
	in->fetched_base = job->fetched;
	rc = ota_enter(o, AGENT_JOB_DOWNLOADING, err);
	if (rc)
		return rc;
	fl_info("job %s: bundle of %" PRIu64 " bytes, %" PRIu64
		" held (%" PRIu64
		" in slot %s; download resumes at byte %" PRIu64 " from %s)",
		job->id, job->size, job->bytes, job->slot_bytes,
		job->target_slot, job->bytes, mirror ? job->mirror : "fleetd");
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

/* Step 1 from byte 0 of the bundle. */
static int verify_once(struct install *in, struct fl_error *err)
{
	const struct agent_config *c = agent_host_config(in->o->h);
	struct fsig_policy pol = {
	    .hardware = c->hardware,
	    .min_security_version = in->o->j.floor,
	};

	return agent_stream_verify(in->s, in->root, &pol, err);
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
	if (rc != FL_EVERIFY || !agent_stream_reader(in->s) ||
	    !root_may_help(fsig_reader_reason(agent_stream_reader(in->s))))
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
	const struct fsig_reader *r = agent_stream_reader(in->s);
	const struct fsig_manifest *m = fsig_reader_manifest(r);
	const char *sha = fsig_reader_manifest_sha256(r);

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
	int rc;

	in->stage = "downloading";
	rc = agent_stream_payload(in->s, err);
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
		rc = agent_stream_finish(in->s, err);
	}
	if (rc)
		return rc;
	si = agent_journal_slot(&o->j, job->target_slot);
	fl_strlcpy(si->version, job->to_version, sizeof(si->version));
	job->bytes = job->size; /* no resume needed any more */
	job->fetched = in->fetched_base + (job->size - in->from.bytes);
	si->has_security_version = true;
	si->security_version = job->security_version;
	rc = ota_enter(o, AGENT_JOB_INSTALLED, err);
	if (rc)
		return rc;
	unlink(o->head_path);
	fl_info("job %s: slot %s holds %s (%" PRIu64
		" bytes from the network for this job)",
		job->id, job->target_slot, job->to_version, job->fetched);
	ota_failpoint(o, "installed");
	return 0;
}

/* Where did it fail?  Verification wins over the step it showed in. */
static const char *failure_stage(const struct install *in, int rc)
{
	enum agent_stream_fault f =
	    in->s ? agent_stream_fault(in->s) : AGENT_STREAM_OK;

	if (rc == FL_EVERIFY && f != AGENT_STREAM_SLOT)
		return "verifying";
	if (f == AGENT_STREAM_SLOT)
		return "installing";
	if (f == AGENT_STREAM_SOURCE)
		return "downloading";
	return in->stage;
}

/* The phases, until one fails. */
static int run(struct install *in, struct fl_error *err)
{
	int rc;

	rc = begin_download(in, err);
	if (!rc)
		rc = verify_meta(in, err);
	if (!rc) {
		in->verified = true;
		rc = check_manifest(in, err);
	}
	if (!rc)
		rc = stream_slot(in, err);
	if (!rc)
		rc = finish_install(in, err);
	return rc;
}

/* Did the mirror fail this pass?  Any failure of a mirror pass but a
 * stop, a cancel or the device's own slot: fleetd's bytes decide. */
static bool mirror_failed(const struct install *in)
{
	struct agent_ota *o = in->o;

	return use_mirror(&o->j.job) && !in->stopped && !o->cancel &&
	       !agent_host_stopping(o->h) &&
	       (!in->s || agent_stream_fault(in->s) != AGENT_STREAM_SLOT);
}

/*
 * The mirror failed: the rest of the job downloads from fleetd, from
 * byte 0 (nothing the mirror gave is kept, not even bytes before a
 * checkpoint), and the job's event says why.
 */
static int fall_back(struct install *in, struct fl_error *err)
{
	struct agent_ota *o = in->o;
	struct agent_job *job = &o->j.job;
	char *detail = fl_xasprintf("mirror failed (%s); downloading from "
				    "fleetd",
				    err && *err->msg ? err->msg : "error");
	json_t *f;

	if (in->s)
		job->fetched = in->fetched_base + agent_stream_fetched(in->s);
	agent_stream_free(in->s);
	fsig_root_free(in->root);
	*in = (struct install){.o = o, .stage = "downloading"};
	job->mirror_off = true;
	job->bytes = job->slot_bytes = 0;
	unlink(o->head_path);
	fl_warn("job %s: %s", job->id, detail);
	fl_error_clear(err);
	if (strlen(detail) > AGENT_REASON_MAX)
		detail[AGENT_REASON_MAX] = '\0';
	f = json_pack("{s:s, s:s}", "source", "fleetd", "detail", detail);
	ota_event(o, "downloading", f);
	json_decref(f);
	free(detail);
	return ota_save(o, err);
}

/* Stopped (SIGTERM): keep what came so far with a last checkpoint. */
static void stop_checkpoint(struct install *in)
{
	struct fl_error e = {0};

	if (in->s && agent_stream_checkpoint(in->s, &e))
		fl_warn("job %s: no checkpoint at the stop: %s",
			in->o->j.job.id, e.msg);
}

int ota_install(struct agent_ota *o, struct fl_error *err)
{
	struct install in = {.o = o, .stage = "downloading"};
	const char *stage;
	int rc;

	o->installing = true;
	rc = run(&in, err);
	if (rc && mirror_failed(&in)) {
		rc = fall_back(&in, err);
		if (!rc)
			rc = run(&in, err);
	}
	stage = rc ? failure_stage(&in, rc) : "installed";
	in.stopped |= rc && agent_host_stopping(o->h);
	if (rc && in.stopped && !o->cancel)
		stop_checkpoint(&in);
	else if (rc && in.s) /* failed: every byte it took counts */
		o->j.job.fetched = in.fetched_base + agent_stream_fetched(in.s);
	agent_stream_free(in.s);
	fsig_root_free(in.root);
	o->installing = false;
	if (o->cancel) { /* fleetd cancelled it meanwhile; not switched */
		ota_finish(o, AGENT_JOB_FAILED, stage, OTA_CANCELLED);
		return 0;
	}
	if (rc && in.stopped) {
		ota_save(o, NULL);
		fl_info("job %s: stopped; it goes on at the next start",
			o->j.job.id);
		return rc;
	}
	if (rc)
		ota_finish(o, AGENT_JOB_FAILED, stage,
			   err ? err->msg : "install failed");
	return 0;
}

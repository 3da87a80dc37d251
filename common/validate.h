/* SPDX-License-Identifier: MIT */
#ifndef FL_VALIDATE_H
#define FL_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"

#define FL_ID_MAX 63

/*
 * Device ids, group names and token names: ^[a-z0-9][a-z0-9._-]{0,62}$.
 * MQTT wildcards (+ #), '/' and uppercase can never appear, so an id is
 * always one literal topic level (DESIGN §3).
 */
bool fl_valid_id(const char *s);

/* As fl_valid_id, failing with FL_EINVAL and a message naming @what. */
int fl_check_id(const char *s, const char *what, struct fl_error *err);

/*
 * A technician's name (issue 12): ^[a-z0-9][a-z0-9_-]{0,31}$.  Its
 * certificate's CN is "tech-" NAME, which is both a valid id and a diag
 * requester (no '.', which a response topic's last level may not hold).
 */
#define FL_TECH_NAME_MAX 32
bool fl_valid_tech_name(const char *s);

/* A technician certificate's life, seconds: short by design. */
#define FL_TECH_TTL_MIN 10
#define FL_TECH_TTL_MAX (24 * 3600)
#define FL_TECH_TTL_DEFAULT (8 * 3600)

/* As fl_valid_tech_name, failing with FL_EINVAL and the rule. */
int fl_check_tech_name(const char *s, struct fl_error *err);

/*
 * A single file name taken from untrusted input (bundle payload names,
 * archive entries): 1..128 bytes of [A-Za-z0-9._+-], not "." or "..",
 * not starting with '.', never '/'.
 */
bool fl_valid_filename(const char *s);

/* Label key or value: 1..64 bytes of [A-Za-z0-9._:-]. */
bool fl_valid_label(const char *s);

/* Printable ASCII without control characters, at most @max bytes. */
bool fl_valid_text(const char *s, size_t max);

/* A telemetry metric name (docs/protocol.md "Telemetry"): 1..64 bytes
 * of [A-Za-z0-9_.:-]. */
#define FL_METRIC_MAX 64
bool fl_valid_metric(const char *s);

/*
 * A bundle mirror's URL (docs/ota.md "Mirrors"): https://HOST[:PORT]/PATH
 * of at most FL_MIRROR_URL_MAX bytes; HOST of [A-Za-z0-9.-] (a name or
 * an IPv4 address), PORT 1..65535, PATH starting with '/' of
 * [A-Za-z0-9/._~-] without ".." or "//".  So no userinfo ('@'), query,
 * fragment, percent-escapes or IPv6 literals.  fl_valid_mirror_url: a
 * file (an update command's `mirror`), PATH not ending with '/';
 * fl_valid_mirror_base: a directory (fleetd's [bundles] mirror_url),
 * PATH ending with '/'.
 */
#define FL_MIRROR_URL_MAX 512
bool fl_valid_mirror_url(const char *s);
bool fl_valid_mirror_base(const char *s);

#endif

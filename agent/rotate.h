/* SPDX-License-Identifier: MIT */
#ifndef AGENT_ROTATE_H
#define AGENT_ROTATE_H

/*
 * Certificate rotation and renewal, a feature (feature.h:
 * agent_feature_rotate).  These reach into its state for agent.h's
 * agent_renew_at and agent_renew_soon.
 */
#include <time.h>

/* When the certificate renews (wall clock); 0 for a NULL state. */
time_t agent_rotate_renew_at(const void *state);

/* Renew at the next tick.  NULL is fine. */
void agent_rotate_renew_soon(void *state);

#endif

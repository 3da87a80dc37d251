/* SPDX-License-Identifier: MIT */
/*
 * Fuzz Modbus register maps (agent/modbus_map.c, libinih underneath):
 * a map either loads or is refused with FL_EPARSE/FL_ELIMIT; one that
 * loads has every register in exactly one read request, requests under
 * the read caps, and every writable register takes its own min and max
 * through encode and decode, or refuses them as outside its type.
 *
 * Input: a map text.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "modbus_map.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	return 0;
}

static void check_source(const struct agent_mb_source *s)
{
	size_t covered = 0;

	for (size_t g = 0; g < s->n_groups; g++) {
		const struct agent_mb_group *gr = &s->groups[g];

		FUZZ_ASSERT(gr->count <= (gr->fn <= AGENT_MB_DISCRETE
					      ? AGENT_MB_READ_BITS_MAX
					      : AGENT_MB_READ_REGS_MAX));
		FUZZ_ASSERT(gr->first == covered);
		covered += gr->n;
	}
	FUZZ_ASSERT(covered == s->n_regs);
	for (size_t i = 0; i < s->n_regs; i++) {
		const struct agent_mb_reg *r = &s->regs[i];
		uint16_t raw[2];

		if (!r->writable)
			continue;
		if (agent_mb_encode(r, r->min, raw, NULL) == 0)
			FUZZ_ASSERT(isfinite(agent_mb_decode(r, raw)));
		if (agent_mb_encode(r, r->max, raw, NULL) == 0)
			FUZZ_ASSERT(isfinite(agent_mb_decode(r, raw)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct agent_mb_map *m = NULL;
	int rc = agent_mb_map_parse("fuzz", (const char *)data, size, &m, NULL);

	if (rc) {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ELIMIT);
		return 0;
	}
	for (size_t i = 0; i < m->n_src; i++)
		check_source(&m->src[i]);
	agent_mb_map_free(m);
	return 0;
}

/* SPDX-License-Identifier: MIT */
/* Fuzz the manifest parser, the policy check and semver comparison. */
#include <stddef.h>
#include <stdint.h>

#include "manifest.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsig_policy pol = {
	    .hardware = "gw", .min_security_version = 3, .now = 1800000000};
	enum fsig_reason why = FSIG_R_NONE;
	struct fsig_manifest *m = NULL;
	struct fl_error err = {0};

	if (fsig_manifest_parse(data, size, &m, &why, &err))
		return 0;
	fsig_manifest_check_policy(m, &pol, NULL, NULL);
	if (fsig_semver_cmp(m->version, "1.0.0") == 0 &&
	    !fsig_valid_semver(m->version))
		__builtin_trap();
	for (size_t i = 0; i < m->n_payloads; i++)
		if (fsig_manifest_find(m, m->payloads[i].name) != (int)i)
			__builtin_trap();
	fsig_manifest_free(m);
	return 0;
}

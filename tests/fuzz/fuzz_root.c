/* SPDX-License-Identifier: MIT */
/* Fuzz the trust root envelope and body parser, self-signature check,
 * chain walking and the JSON description. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "root.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fsig_root *root = NULL, *newest = NULL, *again = NULL;
	json_t *show;
	size_t len;
	const char *text;

	if (fsig_root_parse(data, size, &root, NULL))
		return 0;
	fsig_root_check_self(root, NULL, NULL);
	show = fsig_root_to_json(root);
	json_decref(show);
	/* a root never follows itself */
	if (fsig_root_update(root, &root, 1, 1, &newest, NULL, NULL) == 0)
		fsig_root_free(newest);
	/* what we write, we read back */
	text = fsig_root_text(root, &len);
	if (fsig_root_parse(text, len, &again, NULL))
		__builtin_trap();
	if (fsig_root_version(again) != fsig_root_version(root))
		__builtin_trap();
	fsig_root_free(again);
	fsig_root_free(root);
	return 0;
}

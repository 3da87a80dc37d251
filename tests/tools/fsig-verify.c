/* SPDX-License-Identifier: MIT */
/*
 * fsig-verify: verify one bundle with nothing else linked in, as a
 * device-side verifier would (bench/signing.sh also builds it with
 * libarchive linked statically to show the memory floor).
 *
 *   fsig-verify ROOT BUNDLE [HARDWARE]
 *
 * Exit status: 0 verified, 6 rejected, else the error's exit code.
 */
#include <stdio.h>

#include "reader.h"
#include "root.h"
#include "util.h"

int main(int argc, char **argv)
{
	struct fsig_policy pol = {.hardware = argc > 3 ? argv[3] : NULL};
	struct fsig_root *root = NULL;
	struct fl_error err = {0};
	int rc;

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: fsig-verify ROOT BUNDLE [HARDWARE]\n");
		return 2;
	}
	rc = fsig_root_load_trusted(argv[1], &root, NULL, &err);
	if (!rc)
		rc = fsig_bundle_verify_file(argv[2], root, &pol, NULL, NULL,
					     NULL, &err);
	if (rc)
		fprintf(stderr, "fsig-verify: error: %s\n", err.msg);
	fsig_root_free(root);
	return fl_exit_code(rc);
}

/* SPDX-License-Identifier: MIT */
/*
 * Fuzz the bootloader environment readers (agent/boot_grub.c,
 * agent/boot_uboot.c) and the validation on top (agent/boot.c): what
 * the agent believes about its slots after a power cut comes from here.
 *
 * Input, separated by "%%" lines (fuzz.h):
 *   1. a grubenv file, read through the "grub" backend (writing needs
 *      grub-editenv, a program, so only reading is fuzzed there);
 *   2. and 3. the two copies of a redundant U-Boot environment, each as
 *      its flags byte and data ("name=value\0...\0\0"); the harness
 *      writes the CRC-32 libubootenv checks, unless bit 0x80 of the
 *      flags byte asks for a corrupt one (a torn write);
 *   4. a default environment file ("name=value" lines) for a device
 *      with no valid copy.
 * The U-Boot side is then read, stepped once as a bootloader would
 * (agent_boot_sim_step, a store through libubootenv) and read again;
 * with no valid copy it is initialised from the default file.  Every
 * state read must be one the protocol allows (boot.h).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "boot.h"
#include "fuzz.h"
#include "util.h"

#define ENV_SIZE 0x1000 /* bytes of each copy */

static char *grubenv, *config, *env[2], *defenv;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_tmpdir();
	char *text;

	(void)argc;
	(void)argv;
	fuzz_log_setup();
	grubenv = fl_path_join(dir, "grubenv");
	config = fl_path_join(dir, "fw_env.config");
	env[0] = fl_path_join(dir, "uboot.env");
	env[1] = fl_path_join(dir, "uboot-redund.env");
	defenv = fl_path_join(dir, "default.env");
	text = fl_xasprintf("%s 0x0 0x%x\n%s 0x0 0x%x\n", env[0], ENV_SIZE,
			    env[1], ENV_SIZE);
	fuzz_write_file(config, text, strlen(text));
	free(text);
	return 0;
}

/* CRC-32 (IEEE 802.3, as zlib's crc32), bitwise: small and slow enough. */
static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

/* One copy: CRC (little endian), flags, data padded with NULs. */
static void write_copy(const char *path, const struct fuzz_part *part)
{
	unsigned char buf[ENV_SIZE] = {0};
	unsigned char flags = part->len ? (unsigned char)part->p[0] : 0;
	size_t n = part->len > 1 ? part->len - 1 : 0;
	uint32_t crc;

	if (n > ENV_SIZE - 5)
		n = ENV_SIZE - 5;
	buf[4] = flags & 0x7f;
	if (n)
		memcpy(buf + 5, part->p + 1, n);
	crc = flags & 0x80 ? 0 : crc32_ieee(buf + 5, ENV_SIZE - 5);
	for (int i = 0; i < 4; i++)
		buf[i] = (unsigned char)(crc >> (8 * i));
	fuzz_write_file(path, buf, sizeof(buf));
}

/* What the protocol allows (boot.h) of a validated state. */
static void check_state(const struct agent_boot_state *st)
{
	FUZZ_ASSERT(agent_boot_valid_slot(st->slot));
	FUZZ_ASSERT(!st->try_slot[0] || agent_boot_valid_slot(st->try_slot));
	FUZZ_ASSERT(st->bootcount <= AGENT_BOOT_COUNT_MAX);
	FUZZ_ASSERT(st->bootlimit <= AGENT_BOOT_LIMIT_MAX);
	FUZZ_ASSERT(agent_boot_phase(st) <= AGENT_BOOT_FELL_BACK);
}

static void read_grub(const struct fuzz_part *file)
{
	struct agent_boot_opts o = {.backend = "grub", .path = grubenv};
	struct agent_boot_state st;
	struct agent_boot *b = NULL;
	int rc;

	fuzz_write_file(grubenv, file->p, file->len);
	FUZZ_ASSERT(agent_boot_open(&o, &b, NULL) == 0);
	rc = agent_boot_read(b, &st, NULL);
	if (rc == 0)
		check_state(&st);
	else
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ENOTFOUND ||
			    rc == FL_ELIMIT);
	agent_boot_close(b);
}

/* One power-on: the bootloader's counting, then what the agent reads. */
static void step(struct agent_boot *b, const struct agent_boot_state *before)
{
	struct agent_boot_state after;
	struct agent_boot_step s;

	int rc = agent_boot_sim_step(b, &s, NULL);

	/* a full environment cannot take the count: refused, not lost */
	FUZZ_ASSERT(rc == 0 || rc == FL_ELIMIT);
	if (rc)
		return;
	FUZZ_ASSERT(agent_boot_read(b, &after, NULL) == 0);
	check_state(&after);
	FUZZ_ASSERT(fl_streq(s.booted, after.slot));
	if (!before->upgrade_available) {
		FUZZ_ASSERT(!s.fell_back && fl_streq(after.slot, before->slot));
		return;
	}
	if (s.fell_back)
		FUZZ_ASSERT(!after.upgrade_available && after.bootcount == 0 &&
			    !fl_streq(after.slot, before->slot));
	else
		FUZZ_ASSERT(after.upgrade_available &&
			    fl_streq(after.slot, before->slot) &&
			    after.bootcount >= before->bootcount);
}

static void read_uboot(const struct fuzz_part *parts, size_t n)
{
	struct agent_boot_opts o = {.backend = "uboot", .path = config};
	struct agent_boot_state st;
	struct agent_boot *b = NULL;
	int rc;

	write_copy(env[0], &parts[0]);
	write_copy(env[1], n > 1 ? &parts[1] : &(struct fuzz_part){"", 0});
	if (n > 2) {
		fuzz_write_file(defenv, parts[2].p, parts[2].len);
		o.default_env = defenv;
	}
	FUZZ_ASSERT(agent_boot_open(&o, &b, NULL) == 0);
	rc = agent_boot_read(b, &st, NULL);
	if (rc == 0) {
		check_state(&st);
		step(b, &st);
	} else if ((rc == FL_EPARSE || rc == FL_ENOTFOUND) && n > 2) {
		/* provisioning: fleet_slot missing, or no valid copy (then
		 * from the default environment) */
		rc = agent_boot_init(b, "a", 3, NULL);
		FUZZ_ASSERT(rc == 0 || rc == FL_EPARSE || rc == FL_EIO ||
			    rc == FL_ELIMIT);
		if (rc == 0) {
			FUZZ_ASSERT(agent_boot_read(b, &st, NULL) == 0);
			check_state(&st);
			FUZZ_ASSERT(st.bootlimit > 0);
		}
	} else {
		FUZZ_ASSERT(rc == FL_EPARSE || rc == FL_ENOTFOUND);
	}
	agent_boot_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[4];
	size_t n = fuzz_split(data, size, parts, 4);

	read_grub(&parts[0]);
	if (n > 1)
		read_uboot(parts + 1, n - 1);
	return 0;
}

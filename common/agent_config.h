/* SPDX-License-Identifier: MIT */
#ifndef AGENT_CONFIG_H
#define AGENT_CONFIG_H

/*
 * agent.conf: the agent's INI configuration (DESIGN §6, fleet-agent(8)).
 * Loaded once, validated completely (unknown keys are typos and refused,
 * every value has a cap), and held read-only by struct agent.
 *
 * Relative paths in agent.conf are relative to the directory that holds
 * agent.conf, so an unpacked provisioning archive (agent.conf next to
 * key.pem, cert.pem, chain.pem and ca.pem, with "state_dir = .") runs
 * unchanged wherever it is unpacked.  Every path in struct agent_config
 * is already resolved (absolute when the file's directory is).
 *
 * The file is named agent_config.h, not config.h, because common/config.h
 * (the INI parser) is included by that name.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* Caps on values. */
#define AGENT_CONFIG_URL_MAX 512       /* server and MQTT URLs */
#define AGENT_CONFIG_CMD_MAX 1024      /* health command */
#define AGENT_CONFIG_BOOTLIMIT_MAX 100 /* as AGENT_BOOT_LIMIT_MAX */
#define AGENT_CONFIG_OUTBOX_MSGS_MAX 1000000
#define AGENT_CONFIG_OUTBOX_BYTES_MAX (1024ull * 1024 * 1024)

#define AGENT_DIAG_NAME_MAX 32	 /* bytes of a check or log name */
#define AGENT_DIAG_CHECKS_MAX 64 /* [diag.check.NAME] sections */
#define AGENT_DIAG_LOGS_MAX 32	 /* [diag.log.NAME] sections */
#define AGENT_DIAG_OUTPUT_MAX                                                  \
	(48 * 1024) /* output_max cap: the reply                               \
		     * must fit 64 KiB */

/* Defaults. */
#define AGENT_CONFIG_DEFAULT_PATH "/etc/fleet/agent.conf"
#define AGENT_CONFIG_DEFAULT_STATE "/var/lib/fleet-agent"

/* [diag.check.NAME]: how an operator check may be run. */
struct agent_diag_check {
	char name[AGENT_DIAG_NAME_MAX + 1];
	char *args;	     /* POSIX ERE each argument must match whole;
			      * NULL: the check takes no arguments */
	int64_t timeout_s;   /* its bound (the request's is clamped to it) */
	uint64_t output_max; /* bytes kept of stdout, and of stderr */
};

/* [diag.log.NAME]: a file the "logs" check may read (file:NAME). */
struct agent_diag_log {
	char name[AGENT_DIAG_NAME_MAX + 1];
	char *path;
};

struct agent_config {
	char *path; /* agent.conf as given */
	char *dir;  /* its directory: base of relative paths */

	/* [device] */
	char *id;	 /* device id (fl_valid_id), the certificate CN */
	char *state_dir; /* key, certificate, journals */
	char *hardware;	 /* bundles must list it; NULL: any ("sim" in
			  * sim mode) */

	/* [server] */
	char *server_url; /* https://HOST[:PORT] */
	char *ca_file;	  /* trust anchor for fleetd and the broker */
	int64_t http_timeout_s;

	/* [mqtt] */
	char *mqtt_url;		  /* mqtts://HOST[:PORT] */
	char *mqtt_host;	  /* parsed from mqtt_url */
	int mqtt_port;		  /* parsed from mqtt_url, default 8883 */
	char *topic_prefix;	  /* "fleet" */
	int64_t keepalive_s;	  /* MQTT keepalive */
	int64_t session_expiry_s; /* persistent session lifetime */
	int64_t reconnect_min_s, reconnect_max_s; /* backoff bounds */
	int64_t status_interval_s; /* periodic status publishing */
	int64_t event_retry_s;	   /* first delay before a final job event
				    * without fleetd's ack goes out again */

	/* [identity] */
	bool auto_renew;	  /* renew at 2/3 of the certificate life */
	int64_t rotate_timeout_s; /* bound on the new-certificate connect */

	/* [boot] (used by the OTA code, issue 5) */
	char *boot_backend; /* "uboot", "grub", "sim" or NULL */
	char *boot_path;    /* fw_env.config, grubenv or sim directory */
	char *boot_default_env;
	char *boot_editenv;
	uint64_t bootlimit;
	char *reboot_command; /* NULL: sync and reboot(2) */

	/* [slots] */
	char *slot_a, *slot_b;

	/* [health] */
	char *health_command;
	int64_t health_timeout_s;

	/* [download] */
	uint64_t download_rate_limit; /* bytes per second, 0 = unlimited */
	uint64_t download_retries;    /* failed attempts in a row allowed */

	/* [update] */
	char *mirror_ca; /* trust anchor for bundle mirrors; NULL: ca_file */

	/* [diag] */
	char *diag_checks_dir;		      /* operator checks; NULL: none */
	uint64_t diag_rate_per_min;	      /* requests answered a minute */
	uint64_t diag_concurrent;	      /* checks running at once */
	int64_t diag_max_timeout_s;	      /* bound on any check */
	uint64_t diag_bundle_max;	      /* bytes of a support bundle */
	struct agent_diag_check *diag_checks; /* [diag.check.NAME] */
	size_t n_diag_checks;
	struct agent_diag_log *diag_logs; /* [diag.log.NAME] */
	size_t n_diag_logs;

	/* [outbox] */
	uint64_t outbox_max_messages;
	uint64_t outbox_max_bytes;
	int64_t outbox_max_age_s; /* telemetry older than this is dropped */

	/* [telemetry] */
	int64_t telemetry_interval_s; /* 0: no sampling (the shadow's
				       * telemetry_interval overrides) */

	/* [rules] (agent/rules.h, docs/rules.md) */
	char *rules_file;     /* local rules; NULL: none */
	char *rules_exec_dir; /* exec actions only from here; NULL: any
			       * absolute path in rules_file, none in the
			       * shadow's rules */
	/* [modbus] */
	char *modbus_map; /* register map file (docs/modbus.md); NULL: none */
	/* what a map from the shadow may poll (modbus_targets.h); NULL:
	 * nothing */
	char *modbus_shadow_targets;

	/* not in the file: `--sim DIR` (agent_config_set_sim) */
	char *sim_dir;
	/* not in the file: fleet-sim's --install-delay, how long an
	 * installed update waits before the switch (0: none) */
	int64_t sim_install_delay_ms;
	/* not in the file: fleet-sim appends each command the device
	 * receives to STATE_DIR/commands.received (agent.h), so a test can
	 * count deliveries on the device side */
	bool sim_record_commands;
	/* not in the file: a fleet-sim device, whose telemetry is synthetic
	 * (sim_telemetry_rate points a second, 0: none) in an in-memory
	 * outbox (telemetry.h) */
	bool sim_telemetry;
	double sim_telemetry_rate;
};

/*
 * Load and validate @path.  On success *@ret is a new config (free with
 * agent_config_free).  Returns 0, FL_ENOTFOUND (no such file), FL_EIO,
 * FL_ELIMIT (file, line or entry caps), FL_EPARSE (syntax, unknown
 * key), FL_EINVAL (a value out of range or malformed; the message names
 * [section] key).
 */
int agent_config_load(const char *path, struct agent_config **ret,
		      struct fl_error *err);

/*
 * As agent_config_load on @text, with relative paths resolved against
 * @base_dir ("." when NULL).  @path_for_msgs names the source in
 * messages and becomes ->path (may be NULL).
 */
int agent_config_parse(const char *text, const char *base_dir,
		       const char *path_for_msgs, struct agent_config **ret,
		       struct fl_error *err);

/*
 * Sim mode (`fleet-agent run --sim DIR`): the bootloader is the "sim"
 * backend in @dir, the slots are DIR/slot-a and DIR/slot-b (the sample
 * firmware programs), the health check runs the booted slot with
 * --selftest unless [health] command is set, and [device] hardware
 * defaults to "sim".  Overrides [boot] and [slots].  Returns 0 or
 * FL_EINVAL (an empty or over-long @dir).
 */
int agent_config_set_sim(struct agent_config *cfg, const char *dir,
			 struct fl_error *err);

/* A diagnostic check or log name: 1..AGENT_DIAG_NAME_MAX bytes of
 * [a-z0-9_-]. */
bool agent_diag_name_valid(const char *s);

/*
 * Compile @ere, the args allow-list of a [diag.check.NAME], anchored so
 * that an argument must match it whole ("^(ERE)$", POSIX extended,
 * REG_NOSUB) into *@ret (regfree it).  Returns 0 or FL_EINVAL.
 */
#include <regex.h>
int agent_diag_args_compile(const char *ere, regex_t *ret,
			    struct fl_error *err);

/* The [diag.check.NAME] or [diag.log.NAME] of @cfg, or NULL. */
const struct agent_diag_check *
agent_config_diag_check(const struct agent_config *cfg, const char *name);
const struct agent_diag_log *
agent_config_diag_log(const struct agent_config *cfg, const char *name);

/* Free a config; NULL is fine. */
void agent_config_free(struct agent_config *cfg);

/*
 * What a rendered agent.conf says.  Strings are borrowed.  NULL optional
 * fields are left out of the file, so their defaults apply.
 */
struct agent_config_template {
	const char *id;		  /* required, fl_valid_id */
	const char *server_url;	  /* required, https:// */
	const char *mqtt_url;	  /* required, mqtts:// */
	const char *state_dir;	  /* NULL: "." (the file's own directory) */
	const char *ca_file;	  /* NULL: STATE_DIR/ca.pem */
	const char *topic_prefix; /* NULL: "fleet" */
};

/*
 * Render an agent.conf text for @t (for `fleet-agent enroll` and for
 * `fleetctl provision`, whose archive holds agent.conf next to key.pem,
 * cert.pem, chain.pem and ca.pem: the default template values fit it).
 * The text is parsed back before it is returned, so it always loads.
 * *@ret_text is allocated; the caller frees it.  Returns 0 or FL_EINVAL
 * (a value agent_config_load would refuse).
 */
int agent_config_render(const struct agent_config_template *t, char **ret_text,
			struct fl_error *err);

/*
 * Split "mqtts://HOST[:PORT]" ("[v6]:PORT" for IPv6) into a new host
 * string (caller frees) and port (8883 when absent).  FL_EINVAL for any
 * other scheme, a path, user info, an empty host or a bad port.
 */
int agent_config_parse_mqtt_url(const char *url, char **ret_host, int *ret_port,
				struct fl_error *err);

/* As agent_config_parse_mqtt_url for "SCHEME://HOST[:PORT]" (@scheme
 * with its "://", e.g. "https://"), @def_port when absent. */
int agent_config_split_url(const char *url, const char *scheme, int def_port,
			   char **ret_host, int *ret_port,
			   struct fl_error *err);

#endif

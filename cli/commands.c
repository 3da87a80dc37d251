/* SPDX-License-Identifier: MIT */
#include <stddef.h>

#include "cli.h"

static const struct fl_cmd completion_cmds[] = {
	{"bash", cmd_completion, 0, "completion bash",
	 "print the bash completion script", "", NULL},
	{"fish", cmd_completion, 0, "completion fish",
	 "print the fish completion script", "", NULL},
	{"zsh", cmd_completion, 0, "completion zsh",
	 "print the zsh completion script", "", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

/*
 * fleetctl's commands, sorted by name (DESIGN §8).  Second-level verbs
 * live in the area's own file.  `fleetctl --list-commands`, the shell
 * completions and a test (t9001) are all driven by this table.
 */
const struct fl_cmd cli_commands[] = {
	{"__complete", cmd_complete, CLI_HIDDEN, "__complete KIND [PREFIX]",
	 "ids for shell completion, from a local cache (KIND: devices, "
	 "groups, labels, bundles, rollouts, jobs)",
	 "", NULL},
	{"bundle", NULL, 0, "bundle create|verify|inspect|upload",
	 "build, sign, check and upload firmware bundles", NULL,
	 cli_bundle_cmds},
	{"bundles", NULL, 0, "bundles list|show",
	 "the bundles stored on fleetd", NULL, cli_bundles_cmds},
	{"completion", NULL, 0, "completion bash|zsh|fish",
	 "print a shell completion script", NULL, completion_cmds},
	{"config", NULL, 0, "config show|use|delete",
	 "show and switch saved contexts", NULL, cli_config_cmds},
	{"devices", NULL, 0, "devices list|show|label|decommission",
	 "list, inspect, label and decommission devices", NULL,
	 cli_devices_cmds},
	{"diag", cmd_diag, CLI_ARG(CLI_KIND_DEVICES),
	 "diag ID CHECK [ARG...] | diag --group G|--label K=V|--all CHECK "
	 "[ARG...]\n       | diag --direct --cert-bundle F.tar.gz "
	 "[--broker URL] ID CHECK [ARG...]\n       [--timeout D] [-o json]",
	 "run a diagnostic check on devices, relayed by fleetd or direct",
	 "--group --label --all --direct --broker --cert-bundle --timeout "
	 "--output",
	 cli_diag_cmds},
	{"jobs", NULL, 0, "jobs list|show|cancel", "update and rollback jobs",
	 NULL,
	 cli_jobs_cmds},
	{"keys", NULL, 0, "keys generate", "make signing keys", NULL,
	 cli_keys_cmds},
	{"login", cmd_login, 0,
	 "login --server URL --ca FILE --token-file F|- [--context NAME] "
	 "[-o json]",
	 "check a server and token, then save them as a context",
	 "--server --ca --token-file --token --context --output", NULL},
	{"provision", cmd_provision, CLI_NEED_SERVER,
	 "provision ID [--group G] --out FILE.tar.gz [--force]",
	 "make a device identity for a factory image (key made here)",
	 "--group --out --force", NULL},
	{"rollback", cmd_rollback, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_ROLLOUTS),
	 "rollback ROLLOUT | --device ID [--wait] [--timeout D] [--expire D]",
	 "roll back every device a rollout updated, or one device",
	 "--device --wait --timeout --expire --output", NULL},
	{"rollout", NULL, 0,
	 "rollout plan|create|list|status|watch|pause|resume|abort",
	 "staged rollouts of a bundle, in waves behind a failure gate", NULL,
	 cli_rollout_cmds},
	{"root", NULL, 0, "root init|sign|rotate|show|push",
	 "the trust root that says who may sign bundles", NULL,
	 cli_root_cmds},
	{"rotate", cmd_rotate, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "rotate ID... | --group G | --all [--wait] [--timeout DURATION]",
	 "give devices new keys and certificates, then revoke the old ones",
	 "--group --all --wait --timeout --output", NULL},
	{"shadow", NULL, 0, "shadow get|set",
	 "a device's desired and reported state (device shadow)", NULL,
	 cli_shadow_cmds},
	{"status", cmd_status, CLI_NEED_SERVER, "status [-o json]",
	 "show fleetd's MQTT side: connection, messages taken in and stored",
	 "--output", NULL},
	{"technician", NULL, 0, "technician issue|list|revoke",
	 "certificates for technicians' diag --direct", NULL,
	 cli_technician_cmds},
	{"telemetry", cmd_telemetry,
	 CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "telemetry ID [--since T] [--metric M] [--limit N] [-o json]",
	 "a device's recent telemetry, oldest first",
	 "--since --metric --limit --output", NULL},
	{"token", NULL, 0, "token create|list|revoke",
	 "manage operator tokens", NULL, cli_token_cmds},
	{"update", cmd_update, CLI_NEED_SERVER | CLI_ARG(CLI_KIND_DEVICES),
	 "update DEVICE... --bundle ID|NAME@VERSION [--wait] [--timeout D]"
	 " [--expire D]",
	 "install a stored bundle on devices; --wait follows each job",
	 "--bundle --wait --timeout --expire --output", NULL},
	{"version", cmd_version, 0, "version [-o json]",
	 "print fleetctl's version", "--output", NULL},
	{"whoami", cmd_whoami, CLI_NEED_SERVER, "whoami [-o json]",
	 "show the token's identity and role", "--output", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

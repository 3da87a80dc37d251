/* SPDX-License-Identifier: MIT */
/*
 * fleet-agent: the on-device daemon.  This file parses the command line,
 * prints, and handles signals; the logic lives in libfleetagent.a.
 */
#include <ctype.h>
#include <getopt.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "agent_config.h"
#include "diag.h"
#include "enroll.h"
#include "fsutil.h"
#include "identity.h"
#include "json.h"
#include "log.h"
#include "simdev.h"
#include "reboot.h"
#include "sdnotify.h"
#include "subcmd.h"
#include "util.h"
#include "validate.h"

/* What a command's arguments may be (its table entry is in cmds[]). */
struct args {
	const int *opts; /* options it takes, 0-terminated */
	int nargs;	 /* positional arguments it takes */
};

static const struct fl_cmd_prog prog = {
	.name = "fleet-agent",
	.page = "fleet-agent(8)",
	.list_usage = "COMMAND [OPTIONS]",
	.width = 10,
	.help_word = true,
};

/* Options every command may take; unused ones stay NULL. */
struct opts {
	const char *config, *server, *ca, *token, *token_file, *id, *state;
	const char *mqtt, *sim, *image, *arg;
	uint64_t bootlimit;
	int level, format;
	bool json;
};

/* The command line as given, for the restart of a simulated reboot. */
static char **saved_argv;

enum {
	O_CONFIG = 'c',
	O_OUTPUT = 'o',
	O_SERVER = 256,
	O_CA,
	O_TOKEN,
	O_TOKEN_FILE,
	O_ID,
	O_STATE,
	O_MQTT,
	O_LEVEL,
	O_FORMAT,
	O_SIM,
	O_IMAGE,
	O_BOOTLIMIT,
};

static const struct option long_opts[] = {
    {"config", required_argument, NULL, O_CONFIG},
    {"output", required_argument, NULL, O_OUTPUT},
    {"server", required_argument, NULL, O_SERVER},
    {"ca", required_argument, NULL, O_CA},
    {"token", required_argument, NULL, O_TOKEN},
    {"token-file", required_argument, NULL, O_TOKEN_FILE},
    {"id", required_argument, NULL, O_ID},
    {"state", required_argument, NULL, O_STATE},
    {"mqtt", required_argument, NULL, O_MQTT},
    {"log-level", required_argument, NULL, O_LEVEL},
    {"log-format", required_argument, NULL, O_FORMAT},
    {"sim", required_argument, NULL, O_SIM},
    {"image", required_argument, NULL, O_IMAGE},
    {"bootlimit", required_argument, NULL, O_BOOTLIMIT},
    {NULL, 0, NULL, 0},
};

static int cmd_enroll(int argc, char **argv, void *ctx);
static int cmd_run(int argc, char **argv, void *ctx);
static int cmd_sim_init(int argc, char **argv, void *ctx);
static int cmd_status(int argc, char **argv, void *ctx);
static int cmd_version(int argc, char **argv, void *ctx);

static const struct args enroll_args = {
	(const int[]){O_CONFIG, O_OUTPUT, O_SERVER, O_CA, O_TOKEN, O_TOKEN_FILE,
		      O_ID, O_STATE, O_MQTT, O_LEVEL, O_FORMAT, 0},
	0};
static const struct args run_args = {
	(const int[]){O_CONFIG, O_LEVEL, O_FORMAT, O_SIM, 0}, 0};
static const struct args sim_init_args = {
	(const int[]){O_IMAGE, O_BOOTLIMIT, 0}, 1};
static const struct args status_args = {
	(const int[]){O_CONFIG, O_OUTPUT, O_SIM, 0}, 0};
static const struct args no_args = {(const int[]){0}, 0};

/* options: the long ones its usage shows (completions, t9001) */
static const struct fl_cmd cmds[] = {
    {"enroll", cmd_enroll, 0,
     "enroll --server URL --ca FILE (--token-file F|- | --token T)\n"
     "                   [--id ID] [--state DIR] [--mqtt URL] [--config FILE]\n"
     "                   [-o text|json] [--log-level L] [--log-format F]",
     "create the device key, enrol with a claim token, write agent.conf",
     "--server --ca --token-file --token --id --state --mqtt --config "
     "--log-level --log-format", NULL},
    {"run", cmd_run, 0,
     "run [--config FILE] [--sim DIR] [--log-level LEVEL]\n"
     "                [--log-format text|json|syslog]",
     "run the daemon: MQTT session, commands, updates, certificate renewal",
     "--config --sim --log-level --log-format", NULL},
    {"sim-init", cmd_sim_init, 0,
     "sim-init DIR --image FW [--bootlimit N]",
     "make DIR a simulated device whose slot a holds firmware FW",
     "--image --bootlimit", NULL},
    {"status", cmd_status, 0,
     "status [--config FILE] [--sim DIR] [-o text|json]",
     "show the device identity, slots, bootloader state and current job",
     "--config --sim", NULL},
    {"version", cmd_version, 0, "version", "print the version", "", NULL},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("fleet-agent: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return fl_exit_code(code);
}

static int usage_err(const char *msg)
{
	return fl_cmd_usage(&prog, "%s", msg);
}

/* Does @c take option @o? */
static bool takes(const struct args *c, int o)
{
	for (const int *p = c->opts; *p; p++)
		if (*p == o)
			return true;
	return false;
}

static int set_opt(struct opts *o, int c, const char *arg)
{
	switch (c) {
	case O_CONFIG: o->config = arg; break;
	case O_SERVER: o->server = arg; break;
	case O_CA: o->ca = arg; break;
	case O_TOKEN: o->token = arg; break;
	case O_TOKEN_FILE: o->token_file = arg; break;
	case O_ID: o->id = arg; break;
	case O_STATE: o->state = arg; break;
	case O_MQTT: o->mqtt = arg; break;
	case O_SIM: o->sim = arg; break;
	case O_IMAGE: o->image = arg; break;
	case O_BOOTLIMIT:
		return fl_parse_uint(arg, AGENT_BOOT_LIMIT_MAX, &o->bootlimit,
				     NULL) || !o->bootlimit ? -1 : 0;
	case O_OUTPUT:
		if (!fl_streq(arg, "json") && !fl_streq(arg, "text"))
			return -1;
		o->json = fl_streq(arg, "json");
		break;
	case O_LEVEL:
		o->level = fl_log_level_parse(arg);
		return o->level < 0 ? -1 : 0;
	case O_FORMAT:
		o->format = fl_log_format_parse(arg);
		return o->format < 0 ? -1 : 0;
	default:
		return -1;
	}
	return 0;
}

/* Parse @argv for @c; 0 or a usage error. */
static int parse(int argc, char **argv, const struct args *c, struct opts *o)
{
	int ch;

	*o = (struct opts){.config = AGENT_CONFIG_DEFAULT_PATH,
			   .level = FL_LOG_INFO, .bootlimit = 3};
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:o:", long_opts, NULL)) != -1) {
		if (ch == '?' || !takes(c, ch))
			return usage_err("unknown option or missing value");
		if (set_opt(o, ch, optarg))
			return usage_err("bad option value");
	}
	if (argc - optind > c->nargs)
		return usage_err("unexpected argument");
	if (argc - optind < c->nargs)
		return usage_err("missing argument");
	if (c->nargs)
		o->arg = argv[optind];
	fl_log_setup("fleet-agent", o->level, (enum fl_log_format)o->format);
	return 0;
}

/* ------------------------------------------------------------------ */
/* enroll                                                             */
/* ------------------------------------------------------------------ */

/* The enrolment token given in the environment, or NULL. */
static const char *env_token(void)
{
	const char *t = getenv("FLEET_ENROLL_TOKEN");

	return t && *t ? t : NULL;
}

/* --token, else --token-file ("-" is stdin), else FLEET_ENROLL_TOKEN. */
static int read_token(const struct opts *o, char **ret, struct fl_error *err)
{
	if (o->token) {
		*ret = fl_xstrdup(o->token);
		return 0;
	}
	if (o->token_file)
		return fl_read_secret(o->token_file, ret, err);
	*ret = fl_xstrdup(env_token());
	return 0;
}

static void print_enrolled(const struct opts *o, const char *id,
			   const struct agent_enroll_result *r)
{
	const char *state = r->state_dir;
	const json_t *resp = r->resp;
	bool wrote_config = r->wrote_config;
	const char *group = json_string_value(json_object_get(resp, "group"));
	const char *serial = json_string_value(json_object_get(resp, "serial"));
	const char *exp = json_string_value(json_object_get(resp, "expires"));
	json_t *j;
	char *s;

	if (!o->json) {
		printf("enrolled %s%s%s\nserial: %s\nexpires: %s\nstate: %s\n",
		       id, group ? " in group " : "", group ? group : "",
		       serial ? serial : "-", exp ? exp : "-", state);
		if (wrote_config)
			printf("config: %s\n", o->config);
		return;
	}
	j = json_pack("{s:s, s:o, s:o, s:o, s:s, s:s}", "id", id, "group",
		      json_string(group ? group : "") , "serial",
		      json_string(serial ? serial : ""), "expires",
		      json_string(exp ? exp : ""), "state_dir", state,
		      "config", o->config);
	s = fl_json_dumps(j);
	printf("%s\n", s);
	free(s);
	json_decref(j);
}

/* Settings for enrol: flags first, then an existing agent.conf. */
struct enroll_plan {
	char id[FL_ID_MAX + 2];
	char *state;
	const char *server, *ca;
};

static int plan_enroll(const struct opts *o, const struct agent_config *cfg,
		       struct enroll_plan *p)
{
	if (agent_enroll_pick_id(o->id, cfg, p->id, sizeof(p->id)))
		return usage_err("no valid device id (use --id ID)");
	p->server = o->server ? o->server : cfg ? cfg->server_url : NULL;
	p->ca = o->ca;
	if (!p->server || !p->ca || (!o->token && !o->token_file && !env_token()))
		return usage_err("--server, --ca and a token are needed");
	if (o->token && o->token_file)
		return usage_err("give --token or --token-file, not both");
	if (o->state)
		p->state = fl_xstrdup(o->state);
	else
		p->state = fl_xstrdup(cfg ? cfg->state_dir
					  : AGENT_CONFIG_DEFAULT_STATE);
	return 0;
}

/* The trust root came with the enrolment, or why not (never fatal;
 * docs/ota.md). */
static void note_trust_root(const struct agent_enroll_result *r)
{
	if (r->trust_rc == FL_ENOTFOUND)
		fprintf(stderr, "fleet-agent: note: fleetd has no trust root "
				"yet; it is fetched with the first update\n");
	else if (r->trust_rc)
		fprintf(stderr,
			"fleet-agent: warning: trust root not "
			"fetched: %s\n",
			r->trust_err.msg);
}

static int enroll_with(const struct opts *o, const struct agent_config *cfg,
		       const struct enroll_plan *p)
{
	struct agent_enroll_req req = {
	    .id = p->id,
	    .server_url = p->server,
	    .ca_file = p->ca,
	    .state_dir = p->state,
	    .mqtt_url = o->mqtt,
	    .config_path = cfg ? NULL : o->config,
	};
	struct agent_enroll_result r = {0};
	struct fl_error err = {0};
	char *token = NULL;
	int rc;

	rc = read_token(o, &token, &err);
	req.token = token;
	if (!rc)
		rc = agent_enroll_device(&req, &r, &err);
	fl_free_secret(token);
	if (r.enrolled)
		note_trust_root(&r);
	if (!rc)
		print_enrolled(o, p->id, &r);
	if (rc && r.enrolled)
		rc = die(rc, "enrolled, but agent.conf: %s", err.msg);
	else if (rc)
		rc = die(rc, "%s", err.msg);
	agent_enroll_result_release(&r);
	return rc;
}

static int cmd_enroll(int argc, char **argv, void *ctx)
{
	struct enroll_plan p = {0};
	struct agent_config *cfg = NULL;
	struct fl_error err = {0};
	struct opts o;
	int rc;

	rc = parse(argc, argv, &enroll_args, &o);
	if (rc)
		return rc;
	rc = agent_config_load(o.config, &cfg, &err);
	if (rc && rc != FL_ENOTFOUND)
		return die(rc, "%s", err.msg);
	rc = plan_enroll(&o, cfg, &p);
	if (!rc)
		rc = enroll_with(&o, cfg, &p);
	free(p.state);
	agent_config_free(cfg);
	return rc;
}

/* ------------------------------------------------------------------ */
/* run, status, version                                               */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
	stop_requested = 1;
}

/* SIGTERM/SIGINT set the flag and interrupt blocking calls (no
 * SA_RESTART), so the loop notices at once. */
static void install_signals(void)
{
	struct sigaction sa = {0};

	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

/* agent.conf, with the sim overrides of --sim DIR. */
static int load_config(const struct opts *o, struct agent_config **ret,
		       struct fl_error *err)
{
	int rc = agent_config_load(o->config, ret, err);

	if (!rc && o->sim)
		rc = agent_config_set_sim(*ret, o->sim, err);
	return rc;
}

/* Sim mode: each start is a power-on; the bootloader step comes first. */
static int sim_power_on(const struct agent_config *cfg, struct fl_error *err)
{
	struct agent_simdev_boot b;
	int rc = agent_simdev_power_on(cfg->sim_dir, &b, err);

	if (!rc)
		fl_info("sim: power-on %llu: booted slot %s%s (bootcount %u)",
			b.boot, b.step.booted,
			b.step.fell_back ? " after falling back" : "",
			b.step.bootcount);
	return rc;
}

/*
 * One agent per state dir: a second one on the same identity would kick
 * the first off the broker (same client id) over and over.  Held until
 * exit; close-on-exec, so a simulated reboot's exec takes it anew.
 */
static int take_lock(const struct agent_config *cfg, int *ret_fd,
		     struct fl_error *err)
{
	char *path;
	int rc;

	if (!fl_path_exists(cfg->state_dir))
		return fl_fail(err, FL_ENOTFOUND, "no state directory '%s'",
			       cfg->state_dir);
	path = fl_path_join(cfg->state_dir, "agent.lock");
	rc = fl_lock_take(path, ret_fd, err);

	free(path);
	return rc;
}

static int cmd_run(int argc, char **argv, void *ctx)
{
	struct agent_config *cfg = NULL;
	struct agent *a = NULL;
	struct fl_error err = {0};
	bool reboot = false;
	int rc, lock_fd = -1;
	struct opts o;

	rc = parse(argc, argv, &run_args, &o);
	if (rc)
		return rc;
	fl_log_keep(DIAG_LOG_KEEP); /* for the "logs" check and bundles */
	/* the environment stays: a simulated reboot's exec is the same
	 * service; other children cannot notify (NotifyAccess=main) */
	fl_sd_init(false);
	install_signals();
	rc = load_config(&o, &cfg, &err);
	if (!rc)
		rc = take_lock(cfg, &lock_fd, &err);
	if (!rc && cfg->sim_dir)
		rc = sim_power_on(cfg, &err);
	if (!rc)
		rc = agent_new(cfg, &a, &err);
	if (!rc)
		rc = agent_run(a, &stop_requested, &err);
	reboot = agent_reboot_due(a, rc, stop_requested);
	agent_free(a);
	if (reboot) /* the exec of a sim reboot closes the lock */
		rc = agent_reboot(cfg, saved_argv, &err);
	fl_lock_release(lock_fd);
	agent_config_free(cfg);
	if (rc == FL_ENOTFOUND)
		return die(rc, "%s (run 'fleet-agent enroll' first)", err.msg);
	return rc ? die(rc, "%s", err.msg) : 0;
}

static int cmd_sim_init(int argc, char **argv, void *ctx)
{
	struct fl_error err = {0};
	struct opts o;
	int rc;

	rc = parse(argc, argv, &sim_init_args, &o);
	if (rc)
		return rc;
	if (!o.image)
		return usage_err("--image FW is required");
	rc = agent_simdev_init(o.arg, o.image, (unsigned)o.bootlimit, &err);
	if (rc)
		return die(rc, "%s", err.msg);
	printf("simulated device %s: slot a holds %s, bootlimit %llu\n", o.arg,
	       o.image, (unsigned long long)o.bootlimit);
	return 0;
}

static void print_status_text(const json_t *j)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)j, key, v)
	{
		char *s = json_is_string(v) ? NULL : fl_json_dumps(v);

		if (json_is_null(v))
			printf("%-16s -\n", key);
		else
			printf("%-16s %s\n", key,
			       s ? s : json_string_value(v));
		free(s);
	}
}

static int cmd_status(int argc, char **argv, void *ctx)
{
	struct agent_config *cfg = NULL;
	struct fl_error err = {0};
	json_t *j = NULL;
	struct opts o;
	char *s;
	int rc;

	rc = parse(argc, argv, &status_args, &o);
	if (rc)
		return rc;
	rc = load_config(&o, &cfg, &err);
	if (!rc)
		rc = agent_status_json(cfg, &j, &err);
	agent_config_free(cfg);
	if (rc)
		return die(rc, "%s", err.msg);
	if (o.json) {
		s = fl_json_dumps(j);
		printf("%s\n", s);
		free(s);
	} else {
		print_status_text(j);
	}
	json_decref(j);
	return 0;
}

static int cmd_version(int argc, char **argv, void *ctx)
{
	struct opts o;
	int rc = parse(argc, argv, &no_args, &o);

	if (rc)
		return rc;
	printf("fleet-agent %s\n", FLEET_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	/* one malloc arena: the download and writer threads allocate
	 * little, and their own arenas would only add resident memory */
	mallopt(M_ARENA_MAX, 1);
	saved_argv = argv;
	if (argc >= 2 && fl_streq(argv[1], "--version")) {
		printf("fleet-agent %s\n", FLEET_VERSION);
		return 0;
	}
	return fl_cmd_dispatch(&prog, cmds, argc - 1, argv + 1, NULL);
}

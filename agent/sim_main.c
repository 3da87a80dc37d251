/* SPDX-License-Identifier: MIT */
/*
 * fleet-sim: many simulated devices in one process (sim.h).  This file
 * parses the command line, prints, and handles signals; the simulator
 * lives in libfleetagent.a.
 */
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent_mqtt.h"
#include "fsutil.h"
#include "json.h"
#include "log.h"
#include "sim.h"
#include "sim_nopair.h"
#include "sim_pool.h"
#include "subcmd.h"
#include "util.h"

static const struct fl_cmd_prog prog = {
	.name = "fleet-sim",
	.page = "fleet-sim(1)",
	.list_usage = "COMMAND [OPTIONS]",
	.width = 8,
	.help_word = true,
};

enum {
	O_OUTPUT = 'o',
	O_COUNT = 256,
	O_DIR,
	O_SERVER,
	O_CA,
	O_TOKEN,
	O_TOKEN_FILE,
	O_PREFIX,
	O_IMAGE,
	O_FAIL_RATE,
	O_INSTALL_DELAY,
	O_FLAP_EVERY,
	O_TELEMETRY_RATE,
	O_CRASH,
	O_SEED,
	O_WORKERS,
	O_CONNECTING,
	O_BOOTLIMIT,
	O_STATS_FILE,
	O_LEVEL,
	O_FORMAT,
};

static const struct option long_opts[] = {
    {"output", required_argument, NULL, O_OUTPUT},
    {"count", required_argument, NULL, O_COUNT},
    {"dir", required_argument, NULL, O_DIR},
    {"server", required_argument, NULL, O_SERVER},
    {"ca", required_argument, NULL, O_CA},
    {"token", required_argument, NULL, O_TOKEN},
    {"token-file", required_argument, NULL, O_TOKEN_FILE},
    {"prefix", required_argument, NULL, O_PREFIX},
    {"image", required_argument, NULL, O_IMAGE},
    {"fail-rate", required_argument, NULL, O_FAIL_RATE},
    {"install-delay", required_argument, NULL, O_INSTALL_DELAY},
    {"flap-every", required_argument, NULL, O_FLAP_EVERY},
    {"telemetry-rate", required_argument, NULL, O_TELEMETRY_RATE},
    {"crash-in-soak", required_argument, NULL, O_CRASH},
    {"seed", required_argument, NULL, O_SEED},
    {"workers", required_argument, NULL, O_WORKERS},
    {"max-connecting", required_argument, NULL, O_CONNECTING},
    {"bootlimit", required_argument, NULL, O_BOOTLIMIT},
    {"stats-file", required_argument, NULL, O_STATS_FILE},
    {"log-level", required_argument, NULL, O_LEVEL},
    {"log-format", required_argument, NULL, O_FORMAT},
    {NULL, 0, NULL, 0},
};

/* What the command line gave. */
struct opts {
	struct sim_opts sim;
	const char *token_file;
	int level, format;
	bool json;
};

static int cmd_run(int argc, char **argv, void *ctx);
static int cmd_status(int argc, char **argv, void *ctx);
static int cmd_version(int argc, char **argv, void *ctx);

static const int run_opts[] = {
    O_COUNT,	   O_DIR,	  O_SERVER,	O_CA,	     O_TOKEN,
    O_TOKEN_FILE,  O_PREFIX,	  O_IMAGE,	O_FAIL_RATE, O_INSTALL_DELAY,
    O_FLAP_EVERY,  O_CRASH,	  O_SEED,	O_WORKERS,   O_CONNECTING,
    O_BOOTLIMIT,   O_STATS_FILE, O_LEVEL,	O_FORMAT,    O_TELEMETRY_RATE,
    0};
static const int status_opts[] = {O_DIR, O_STATS_FILE, O_OUTPUT, 0};
static const int no_opts[] = {0};

static const struct fl_cmd cmds[] = {
    {"run", cmd_run, 0,
     "run --count N --dir DIR [--server URL --ca FILE\n"
     "                (--token T | --token-file F|-) --image FW]\n"
     "                [--prefix ID] [--fail-rate PCT] [--install-delay DUR]\n"
     "                [--flap-every DUR] [--crash-in-soak PCT] [--seed S]\n"
     "                [--telemetry-rate PTS_PER_S]\n"
     "                [--workers N] [--max-connecting N] [--bootlimit N]\n"
     "                [--stats-file F] [--log-level L] [--log-format F]",
     "run N simulated devices until SIGTERM, enrolling the missing ones",
     "--count --dir --server --ca --token --token-file --prefix --image "
     "--fail-rate --install-delay --flap-every --crash-in-soak --seed "
     "--telemetry-rate "
     "--workers --max-connecting --bootlimit --stats-file --log-level "
     "--log-format",
     NULL},
    {"status", cmd_status, 0,
     "status --dir DIR [--stats-file F] [-o text|json]",
     "show the counts a running (or the last) fleet-sim wrote",
     "--dir --stats-file", NULL},
    {"version", cmd_version, 0, "version", "print the version", "", NULL},
    {NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("fleet-sim: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return fl_exit_code(code);
}

/* ------------------------------------------------------------------ */
/* Options                                                            */
/* ------------------------------------------------------------------ */

static int parse_uint_opt(const char *arg, uint64_t min, uint64_t max,
			  unsigned *ret)
{
	uint64_t v;

	if (fl_parse_uint(arg, max, &v, NULL) || v < min)
		return -1;
	*ret = (unsigned)v;
	return 0;
}

/* Options that set a knob (sim_knobs.h). */
static int set_knob(struct sim_knobs *k, int c, const char *arg)
{
	switch (c) {
	case O_FAIL_RATE:
		return sim_parse_pct(arg, &k->fail_pct, NULL);
	case O_CRASH:
		return sim_parse_pct(arg, &k->crash_pct, NULL);
	case O_INSTALL_DELAY:
		return sim_parse_duration_ms(arg, &k->install_delay_ms, NULL);
	case O_FLAP_EVERY:
		if (sim_parse_duration_ms(arg, &k->flap_every_ms, NULL))
			return -1;
		return k->flap_every_ms >= 100 ? 0 : -1;
	case O_TELEMETRY_RATE:
		return sim_parse_rate(arg, &k->telemetry_rate, NULL);
	case O_SEED:
		return fl_parse_uint(arg, UINT64_MAX - 1, &k->seed, NULL) ? -1
									   : 0;
	default:
		return -1;
	}
}

static int set_opt(struct opts *o, int c, const char *arg)
{
	struct sim_opts *s = &o->sim;

	switch (c) {
	case O_COUNT:
		return parse_uint_opt(arg, 1, SIM_DEVICES_MAX, &s->count);
	case O_WORKERS:
		return parse_uint_opt(arg, 1, SIM_POOL_WORKERS_MAX,
				      &s->workers);
	case O_CONNECTING:
		return parse_uint_opt(arg, 1, 10000, &s->connecting);
	case O_BOOTLIMIT:
		return parse_uint_opt(arg, 1, 100, &s->bootlimit);
	case O_DIR: s->dir = arg; break;
	case O_SERVER: s->server_url = arg; break;
	case O_CA: s->ca_file = arg; break;
	case O_TOKEN: s->token = arg; break;
	case O_TOKEN_FILE: o->token_file = arg; break;
	case O_PREFIX: s->prefix = arg; break;
	case O_IMAGE: s->image = arg; break;
	case O_STATS_FILE: s->stats_file = arg; break;
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
		return set_knob(&s->knobs, c, arg);
	}
	return 0;
}

static bool takes(const int *allowed, int c)
{
	for (const int *p = allowed; *p; p++)
		if (*p == c)
			return true;
	return false;
}

static int parse(int argc, char **argv, const int *allowed, struct opts *o)
{
	int ch;

	*o = (struct opts){.level = FL_LOG_WARN};
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "o:", long_opts, NULL)) != -1) {
		if (ch == '?' || !takes(allowed, ch))
			return fl_cmd_usage(&prog,
					    "unknown option or missing value");
		if (set_opt(o, ch, optarg))
			return fl_cmd_usage(&prog, "bad value for %s",
					    argv[optind - 1]);
	}
	if (optind < argc)
		return fl_cmd_usage(&prog, "unexpected argument '%s'",
				    argv[optind]);
	fl_log_setup("fleet-sim", o->level, (enum fl_log_format)o->format);
	return 0;
}

/* ------------------------------------------------------------------ */
/* run                                                                */
/* ------------------------------------------------------------------ */

static volatile sig_atomic_t stop_requested;
static int wake_fd = -1;

static void on_stop(int sig)
{
	uint64_t one = 1;

	stop_requested = 1;
	if (wake_fd >= 0 && write(wake_fd, &one, sizeof(one)) < 0)
		stop_requested = 1; /* nothing else is safe here */
}

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

/* --token, else --token-file ("-": stdin), else FLEET_ENROLL_TOKEN. */
static int read_token(struct opts *o, char **ret, struct fl_error *err)
{
	const char *env = getenv("FLEET_ENROLL_TOKEN");

	*ret = NULL;
	if (o->token_file)
		return fl_read_secret(o->token_file, ret, err);
	if (o->sim.token)
		*ret = fl_xstrdup(o->sim.token);
	else if (env && *env)
		*ret = fl_xstrdup(env);
	return 0;
}

static int cmd_run(int argc, char **argv, void *ctx)
{
	struct fl_error err = {0};
	struct sim *s = NULL;
	char *token = NULL;
	struct opts o;
	int rc;

	rc = parse(argc, argv, run_opts, &o);
	if (rc)
		return rc;
	if (!o.sim.count || !o.sim.dir)
		return fl_cmd_usage(&prog, "--count N and --dir DIR are needed");
	if (o.sim.token && o.token_file)
		return fl_cmd_usage(&prog,
				    "give --token or --token-file, not both");
	rc = read_token(&o, &token, &err);
	if (rc)
		return die(rc, "%s", err.msg);
	o.sim.token = token;
	install_signals();
	agent_mqtt_set_client_hook(agent_sim_nopair_hook);
	rc = sim_new(&o.sim, &s, &err);
	fl_free_secret(token);
	if (rc == FL_EINVAL)
		return fl_cmd_usage(&prog, "%s", err.msg);
	if (rc)
		return die(rc, "%s", err.msg);
	wake_fd = sim_wake_fd(s);
	if (stop_requested) /* a signal before wake_fd was set */
		on_stop(SIGTERM);
	rc = sim_run(s, &stop_requested, &err);
	wake_fd = -1;
	sim_free(s);
	return rc ? die(rc, "%s", err.msg) : 0;
}

/* ------------------------------------------------------------------ */
/* status, version                                                    */
/* ------------------------------------------------------------------ */

static void print_text(const json_t *j)
{
	const char *key;
	json_t *v;

	json_object_foreach((json_t *)j, key, v)
	{
		char *s = json_is_string(v) ? NULL : fl_json_dumps(v);

		printf("%-16s %s\n", key, s ? s : json_string_value(v));
		free(s);
	}
}

static int cmd_status(int argc, char **argv, void *ctx)
{
	struct fl_error err = {0};
	json_t *j = NULL;
	char *path, *text;
	struct opts o;
	int rc;

	rc = parse(argc, argv, status_opts, &o);
	if (rc)
		return rc;
	if (!o.sim.dir && !o.sim.stats_file)
		return fl_cmd_usage(&prog, "--dir DIR is needed");
	path = o.sim.stats_file ? fl_xstrdup(o.sim.stats_file)
				: fl_path_join(o.sim.dir, SIM_STATS_FILE);
	rc = fl_json_load_file(path, 1 << 20, &j, &err);
	free(path);
	if (rc == FL_ENOTFOUND)
		return die(rc, "%s (has fleet-sim run there?)", err.msg);
	if (rc)
		return die(rc, "%s", err.msg);
	if (o.json) {
		text = fl_json_dumps(j);
		printf("%s\n", text);
		free(text);
	} else {
		print_text(j);
	}
	json_decref(j);
	return 0;
}

static int cmd_version(int argc, char **argv, void *ctx)
{
	struct opts o;
	int rc = parse(argc, argv, no_opts, &o);

	if (rc)
		return rc;
	printf("fleet-sim %s\n", FLEET_VERSION);
	return 0;
}

int main(int argc, char **argv)
{
	/* the workers allocate a little each; more arenas would only add
	 * resident memory */
	mallopt(M_ARENA_MAX, 2);
	if (argc >= 2 && fl_streq(argv[1], "--version")) {
		printf("fleet-sim %s\n", FLEET_VERSION);
		return 0;
	}
	return fl_cmd_dispatch(&prog, cmds, argc - 1, argv + 1, NULL);
}

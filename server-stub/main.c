/* SPDX-License-Identifier: MIT */
/*
 * fleetd: Fleet's management server.  This file only parses the command
 * line; the logic lives in libfleetd.a.
 */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "ca.h"
#include "httpd.h"
#include "log.h"
#include "sdnotify.h"
#include "serve.h"
#include "srv.h"
#include "subcmd.h"
#include "util.h"
#include "validate.h"

#define MAX_SANS 16

static const struct fl_cmd_prog prog = {
	.name = "fleetd",
	.page = "fleetd(8)",
	.list_usage = "COMMAND [OPTIONS]",
	.width = 14,
	.help_word = true,
};

static int die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("fleetd: error: ", stderr);
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

/* --state DIR [--san NAME]... from optind on: the options of init and
 * cert server.  A usage error (exit 2) when DIR is missing. */
struct state_sans {
	const char *state, *store, *sans[MAX_SANS];
	size_t nsans;
	bool allow_store; /* init takes --store */
};

static int parse_state_sans(int argc, char **argv, struct state_sans *ret)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"san", required_argument, NULL, 'n'},
		{"store", required_argument, NULL, 'd'},
		{NULL, 0, NULL, 0},
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			ret->state = optarg;
		else if (c == 'd' && ret->allow_store)
			ret->store = optarg;
		else if (c == 'n' && ret->nsans < MAX_SANS)
			ret->sans[ret->nsans++] = optarg;
		else
			return usage_err(c == 'n' ? "too many --san"
							: "bad option");
	}
	if (!ret->state || optind != argc)
		return usage_err("--state DIR is required");
	return 0;
}

static int cmd_init(int argc, char **argv, void *ctx)
{
	struct state_sans o = {.allow_store = true};
	struct fl_error err = {0};
	char *token = NULL;

	if (parse_state_sans(argc, argv, &o))
		return FL_EUSAGE;
	if (srv_init_state(o.state, o.sans, o.nsans, o.store, &token, &err))
		return die(err.code, "%s", err.msg);
	printf("initialised %s\nclients pin the CA in %s/ca.pem\n", o.state,
	       o.state);
	printf("admin token: %s\n", token);
	fl_free_secret(token);
	return 0;
}

static int check_listen(const char *listen)
{
	struct fl_error err = {0};

	return srv_http_check_listen(listen, &err) ? usage_err(err.msg) : 0;
}

struct serve_opts {
	struct srv_serve_opts s;
	const char *state, *store;
	int level, format;
};

static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"with-broker", no_argument, NULL, 'b'},
		{"mqtt-listen", required_argument, NULL, 'm'},
		{"log-level", required_argument, NULL, 'v'},
		{"log-format", required_argument, NULL, 'f'},
		{"store", required_argument, NULL, 'd'},
		{"replica", required_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct serve_opts){.s.listen = "127.0.0.1:8443",
				 .level = FL_LOG_INFO};
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's': o->state = optarg; break;
		case 'd': o->store = optarg; break;
		case 'l': o->s.listen = optarg; break;
		case 'b': o->s.with_broker = true; break;
		case 'm': o->s.mqtt_listen = optarg; break;
		case 'r':
			if (!fl_valid_tech_name(optarg))
				return usage_err("bad --replica (want 1-32 of "
						 "a-z 0-9 _ -)");
			o->s.replica = optarg;
			break;
		case 'v':
			o->level = fl_log_level_parse(optarg);
			if (o->level < 0)
				return usage_err("bad --log-level");
			break;
		case 'f':
			o->format = fl_log_format_parse(optarg);
			if (o->format < 0)
				return usage_err("bad --log-format");
			break;
		default:
			return usage_err("bad option");
		}
	}
	if (!o->state || optind != argc)
		return usage_err("--state DIR is required");
	return check_listen(o->s.listen) ?:
		       (o->s.mqtt_listen ? check_listen(o->s.mqtt_listen)
					 : 0);
}

/* Serving: the API listens and the store is open; tell whoever waits
 * for the line, and systemd (Type=notify). */
static void print_ready(const char *line)
{
	struct fl_error err = {0};

	printf("%s\n", line);
	fflush(stdout);
	if (fl_sd_notify("READY=1", &err))
		fl_error("%s", err.msg);
}

static int cmd_serve(int argc, char **argv, void *ctx)
{
	struct fl_error err = {0};
	struct serve_opts o;
	struct srv *srv = NULL;
	int rc;

	rc = parse_serve(argc, argv, &o);
	if (rc)
		return rc;
	fl_log_setup("fleetd", o.level, (enum fl_log_format)o.format);
	fl_sd_init(true); /* the broker must not notify in fleetd's name */
	srv_block_signals();
	rc = srv_open_store(o.state, o.store, &srv, &err);
	if (!rc)
		rc = srv_serve(srv, &o.s, print_ready, &err);
	srv_close(srv);
	return rc ? die(rc, "%s", err.msg) : 0;
}

static int cmd_broker_config(int argc, char **argv, void *ctx)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL, *listen = NULL;
	struct fl_error err = {0};
	struct srv *srv = NULL;
	char *url = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c == 'l')
			listen = optarg;
		else
			return usage_err("bad option");
	}
	if (!state || optind != argc)
		return usage_err("--state DIR is required");
	if (listen && check_listen(listen))
		return FL_EUSAGE;
	rc = srv_open(state, &srv, &err);
	if (!rc)
		rc = srv_broker_write_config(
			srv, listen ? listen : srv->cfg.broker_listen, &url,
			&err);
	if (!rc)
		printf("wrote %s/broker/mosquitto.conf, acl and dynsec.json "
		       "for %s\n",
		       state, url);
	free(url);
	srv_close(srv);
	return rc ? die(rc, "%s", err.msg) : 0;
}

/* fleetd ca export-root --state DIR --out FILE [--remove] */
static int cmd_ca(int argc, char **argv, void *ctx)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"out", required_argument, NULL, 'o'},
		{"remove", no_argument, NULL, 'r'},
		{NULL, 0, NULL, 0},
	};
	const char *state = NULL, *out = NULL;
	struct fl_error err = {0};
	bool remove = false;
	int c;

	if (argc < 2 || strcmp(argv[1], "export-root") != 0)
		return usage_err("the only ca command is export-root");
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c == 'o')
			out = optarg;
		else if (c == 'r')
			remove = true;
		else
			return usage_err("bad option");
	}
	if (!state || !out || optind != argc)
		return usage_err("--state DIR and --out FILE are required");
	if (srv_ca_export_root(state, out, remove, &err))
		return die(err.code, "%s", err.msg);
	printf("wrote the root CA key and certificate to %s%s\n", out,
	       remove ? "; removed the key from the state dir" : "");
	return 0;
}

/*
 * fleetd cert server --state DIR [--san NAME]...: a new server
 * certificate with other names, for a server that moved or gained a
 * name after init.
 */
static int cmd_cert(int argc, char **argv, void *ctx)
{
	struct state_sans o = {0};
	struct fl_error err = {0};

	if (argc < 2 || strcmp(argv[1], "server") != 0)
		return usage_err("the only cert command is server");
	optind = 2;
	if (parse_state_sans(argc, argv, &o))
		return FL_EUSAGE;
	if (srv_ca_reissue_server(o.state, o.sans, o.nsans, &err))
		return die(err.code, "%s", err.msg);
	printf("wrote %s/tls/server.pem for localhost, 127.0.0.1, ::1",
	       o.state);
	for (size_t i = 0; i < o.nsans; i++)
		printf(", %s", o.sans[i]);
	printf("\nrestart 'fleetd serve' to use it\n");
	return 0;
}

/*
 * fleetd token create --state DIR [--role ROLE] [--name NAME] [--ttl DUR]
 * The local recovery path: mints an operator token straight into the
 * store (fleetd may be running; SQLite arbitrates).  Prints the secret.
 */
static int cmd_token(int argc, char **argv, void *ctx)
{
	static const struct option opts[] = {
		{"state", required_argument, NULL, 's'},
		{"role", required_argument, NULL, 'r'},
		{"name", required_argument, NULL, 'n'},
		{"ttl", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	struct srv_token_spec spec = {.name = "recovery",
				      .role = SRV_ROLE_ADMIN};
	const char *state = NULL;
	struct fl_error err = {0};
	struct srv *srv = NULL;
	char *secret = NULL;
	json_t *info = NULL;
	int c, rc;

	if (argc < 2 || strcmp(argv[1], "create") != 0)
		return usage_err("the only token command is create");
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 's')
			state = optarg;
		else if (c == 'r' && (spec.role = srv_role_parse(optarg)))
			continue;
		else if (c == 'n' && !fl_check_id(optarg, "token name", NULL))
			spec.name = optarg;
		else if (c == 't' && !fl_parse_duration(optarg, &spec.ttl,
							NULL) && spec.ttl >= 60)
			continue;
		else
			return usage_err("bad option or value");
	}
	if (!state || optind != argc)
		return usage_err("--state DIR is required");
	rc = srv_open(state, &srv, &err);
	if (!rc)
		rc = srv_token_create(srv, &spec, "local:fleetd", &secret,
				      &info, &err);
	srv_close(srv);
	if (rc)
		return die(rc, "%s", err.msg);
	fprintf(stderr, "created %s token %s (%s)\n",
		srv_role_name(spec.role),
		json_string_value(json_object_get(info, "id")), spec.name);
	printf("%s\n", secret);
	fl_free_secret(secret);
	json_decref(info);
	return 0;
}

static int cmd_migrate(int argc, char **argv, void *ctx)
{
	static const struct option opts[] = {
		{"from", required_argument, NULL, 'f'},
		{"to", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0},
	};
	const char *from = NULL, *to = NULL;
	struct srv_store *src = NULL, *dst = NULL;
	struct fl_error err = {0};
	long rows = 0;
	int c, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'f')
			from = optarg;
		else if (c == 't')
			to = optarg;
		else
			return usage_err("bad option");
	}
	if (!from || !to || optind != argc)
		return usage_err("--from URL and --to URL are required");
	rc = srv_store_open(from, &src, &err);
	if (!rc)
		rc = srv_store_open(to, &dst, &err);
	if (!rc)
		rc = srv_store_copy(dst, src, &rows, &err);
	srv_store_close(dst);
	srv_store_close(src);
	if (rc)
		return die(rc, "%s", err.msg);
	printf("copied %ld rows\n", rows);
	return 0;
}

static int cmd_version(int argc, char **argv, void *ctx)
{
	printf("fleetd %s\n", FLEET_VERSION);
	return 0;
}

static const struct fl_cmd cmds[] = {
	{"broker-config", cmd_broker_config, 0,
	 "broker-config --state DIR [--listen HOST:PORT]",
	 "write mosquitto.conf, ACL and dynsec.json into DIR/broker",
	 "--state --listen", NULL},
	{"ca", cmd_ca, 0, "ca export-root --state DIR --out FILE [--remove]",
	 "export the root CA key for offline keeping (and remove it)",
	 "--state --out --remove", NULL},
	{"cert", cmd_cert, 0, "cert server --state DIR [--san NAME]...",
	 "reissue the server certificate with other names (SANs)",
	 "--state --san", NULL},
	{"init", cmd_init, 0, "init --state DIR [--san NAME]... [--store URL]",
	 "create a state dir: database, CA, TLS certificate, admin token",
	 "--state --san --store", NULL},
	{"migrate", cmd_migrate, 0, "migrate --from URL --to URL",
	 "copy a store into a new database (sqlite:PATH to postgresql://...)",
	 "--from --to", NULL},
	{"serve", cmd_serve, 0,
	 "serve --state DIR [--listen HOST:PORT] [--with-broker]\n"
	 "             [--mqtt-listen HOST:PORT] [--log-level LEVEL]\n"
	 "             [--log-format text|json] [--store URL]\n"
	 "             [--replica NAME]",
	 "run the HTTPS API (and a supervised local mosquitto)",
	 "--state --listen --with-broker --mqtt-listen --log-level "
	 "--log-format --store --replica",
	 NULL},
	{"token", cmd_token, 0,
	 "token create --state DIR [--role ROLE] [--name NAME]\n"
	 "             [--ttl DURATION]",
	 "mint an operator token locally (recovery; default role admin)",
	 "--state --role --name --ttl", NULL},
	{"version", cmd_version, 0, "version", "print the version", "", NULL},
	{NULL, NULL, 0, NULL, NULL, NULL, NULL},
};

int main(int argc, char **argv)
{
	umask(077); /* state files hold keys and tokens */
	if (argc >= 2 && fl_streq(argv[1], "--version"))
		return cmd_version(0, NULL, NULL);
	return fl_cmd_dispatch(&prog, cmds, argc - 1, argv + 1, NULL);
}

/* SPDX-License-Identifier: MIT */
/*
 * Shared fixture for the agent's MQTT tests: a private CA made with
 * common/pki, certificates for the broker and some clients, a real
 * mosquitto on 127.0.0.1 and a free port (TLS, require_certificate,
 * use_identity_as_username, use_username_as_clientid), and an observer
 * that records what it receives.  Included by test files only.
 */
#ifndef FL_TEST_AGENT_FIXTURE_H
#define FL_TEST_AGENT_FIXTURE_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_mqtt.h"
#include "fsutil.h"
#include "pki.h"
#include "util.h"

#define AFX static __attribute__((unused))
#define AFX_MSGS 64

struct afx_msg {
	char *topic;
	char *payload;
};

/* Collects messages for assertions. */
struct afx_observer {
	struct agent_mqtt *m;
	struct afx_msg msgs[AFX_MSGS];
	size_t n;
	bool connected, session_present;
	int connects;
};

struct afx {
	char dir[64];
	struct fl_pki_issuer root, iss;
	int port;
	pid_t broker;
	char *conf, *log;
};

AFX char *afx_path(struct afx *f, const char *name)
{
	return fl_path_join(f->dir, name);
}

/* Issue a leaf (key + cert files NAME.key, NAME.pem; @chain adds the
 * issuing CA to the certificate file) from @ca. */
AFX void afx_leaf(struct afx *f, const struct fl_pki_issuer *ca,
		  enum fl_pki_kind kind, const char *cn, const char *name,
		  const char *san_dns, bool chain)
{
	static const char *const ips[] = {"127.0.0.1"};
	struct fl_pki_policy pol = {kind, cn, NULL, 0, NULL, 0, 3600};
	struct fl_error err = {0};
	EVP_PKEY *k = NULL;
	X509 *certs[2] = {NULL, f->iss.cert};
	char *kp, *cp, *file = fl_xasprintf("%s.key", name);

	static const char *const local[] = {"localhost"};

	if (kind == FL_PKI_SERVER && san_dns) {
		pol.dns = &san_dns;
		pol.n_dns = 1;
	} else if (kind == FL_PKI_SERVER) {
		pol.dns = local;
		pol.n_dns = 1;
		pol.ips = ips;
		pol.n_ips = 1;
	}
	kp = afx_path(f, file);
	free(file);
	file = fl_xasprintf("%s.pem", name);
	cp = afx_path(f, file);
	assert_int_equal(fl_pki_keygen_p256(&k, &err), 0);
	assert_int_equal(fl_pki_leaf_issue(ca, &pol, k, &certs[0], &err), 0);
	assert_int_equal(fl_pki_key_save(kp, k, &err), 0);
	assert_int_equal(fl_pki_cert_save(cp, certs, chain ? 2 : 1, &err), 0);
	X509_free(certs[0]);
	EVP_PKEY_free(k);
	free(kp);
	free(cp);
	free(file);
}

AFX void afx_save(struct afx *f, const char *name, X509 *a, X509 *b)
{
	X509 *certs[2] = {a, b};
	struct fl_error err = {0};
	char *p = afx_path(f, name);

	assert_int_equal(fl_pki_cert_save(p, certs, b ? 2 : 1, &err), 0);
	free(p);
}

/* Root + issuing CA, a rogue root, and the certificate files:
 * root.pem (clients pin it), broker-ca.pem (issuing + root),
 * server.{key,pem} (SAN 127.0.0.1), noname.{key,pem} (SAN another name),
 * dev-1, observer, rogue (dev-1 from the rogue CA). */
AFX void afx_pki(struct afx *f)
{
	struct fl_error err = {0};
	struct fl_pki_issuer rogue = {0};

	assert_int_equal(fl_pki_keygen_p256(&f->root.key, &err), 0);
	assert_int_equal(fl_pki_root_create(f->root.key, "Test Root", 86400,
					    &f->root.cert, &err),
			 0);
	assert_int_equal(fl_pki_keygen_p256(&f->iss.key, &err), 0);
	assert_int_equal(fl_pki_issuing_create(&f->root, f->iss.key,
					       "Test Issuing", 86400,
					       &f->iss.cert, &err),
			 0);
	afx_save(f, "root.pem", f->root.cert, NULL);
	afx_save(f, "issuing.pem", f->iss.cert, NULL);
	afx_save(f, "broker-ca.pem", f->iss.cert, f->root.cert);
	afx_leaf(f, &f->iss, FL_PKI_SERVER, "broker", "server", NULL, true);
	afx_leaf(f, &f->iss, FL_PKI_SERVER, "broker", "noname",
		 "elsewhere.invalid", true);
	afx_leaf(f, &f->iss, FL_PKI_CLIENT, "dev-1", "dev-1", NULL, false);
	afx_leaf(f, &f->iss, FL_PKI_CLIENT, "dev-2", "dev-2", NULL, false);
	afx_leaf(f, &f->iss, FL_PKI_CLIENT, "observer", "observer", NULL,
		 false);
	assert_int_equal(fl_pki_keygen_p256(&rogue.key, &err), 0);
	assert_int_equal(fl_pki_root_create(rogue.key, "Rogue", 86400,
					    &rogue.cert, &err),
			 0);
	afx_leaf(f, &rogue, FL_PKI_CLIENT, "dev-1", "rogue", NULL, false);
	X509_free(rogue.cert);
	EVP_PKEY_free(rogue.key);
}

/* Copy the fixture file @from to DIR/@to with @mode (enrolled state). */
AFX void afx_copy_file(struct afx *f, const char *from, const char *dir,
		       const char *to, mode_t mode)
{
	char *src = afx_path(f, from), *dst = fl_path_join(dir, to), *buf;
	size_t len;

	assert_int_equal(fl_read_file(src, 1 << 20, &buf, &len, NULL), 0);
	assert_int_equal(fl_write_atomic(dst, buf, len, mode, NULL), 0);
	free(buf);
	free(src);
	free(dst);
}

AFX int afx_free_port(void)
{
	struct sockaddr_in sa = {.sin_family = AF_INET};
	socklen_t len = sizeof(sa);
	int s = socket(AF_INET, SOCK_STREAM, 0), port;

	assert_true(s >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &len), 0);
	port = ntohs(sa.sin_port);
	close(s);
	return port;
}

AFX bool afx_port_open(int port)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)port)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	bool ok;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = connect(s, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(s);
	return ok;
}

/* Start mosquitto on f->port with certificate @server (NAME.pem/.key). */
AFX void afx_broker_start(struct afx *f, const char *server)
{
	char *text;
	pid_t pid;
	int fd;

	text = fl_xasprintf(
	    "per_listener_settings false\n"
	    "listener %d 127.0.0.1\n"
	    "cafile %s/broker-ca.pem\ncertfile %s/%s.pem\nkeyfile %s/%s.key\n"
	    "require_certificate true\nuse_identity_as_username true\n"
	    "use_username_as_clientid true\n"
	    "persistence false\nuser root\n"
	    "log_dest stderr\nlog_type error\nlog_type warning\n"
	    "log_type notice\n",
	    f->port, f->dir, f->dir, server, f->dir, server);
	assert_int_equal(fl_write_atomic_str(f->conf, text, 0600, NULL), 0);
	free(text);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(f->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("mosquitto", "mosquitto", "-c", f->conf, (char *)NULL);
		_exit(127);
	}
	f->broker = pid;
	for (int i = 0; i < 100 && !afx_port_open(f->port); i++)
		poll(NULL, 0, 100);
	assert_true(afx_port_open(f->port));
}

AFX void afx_broker_stop(struct afx *f)
{
	int status;

	if (f->broker <= 0)
		return;
	kill(f->broker, SIGTERM);
	waitpid(f->broker, &status, 0);
	f->broker = 0;
}

AFX int afx_rm(const char *p, const struct stat *st, int type,
	       struct FTW *ftw)
{
	return remove(p);
}

AFX int afx_setup(void **state)
{
	struct afx *f = fl_xcalloc(1, sizeof(*f));

	signal(SIGPIPE, SIG_IGN);
	fl_strlcpy(f->dir, "/tmp/fleet-agentmq-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	f->conf = afx_path(f, "mosquitto.conf");
	f->log = afx_path(f, "mosquitto.log");
	afx_pki(f);
	f->port = afx_free_port();
	afx_broker_start(f, "server");
	*state = f;
	return 0;
}

AFX int afx_teardown(void **state)
{
	struct afx *f = *state;

	afx_broker_stop(f);
	if (!getenv("KEEP_TMP"))
		nftw(f->dir, afx_rm, 8, FTW_DEPTH | FTW_PHYS);
	X509_free(f->root.cert);
	EVP_PKEY_free(f->root.key);
	X509_free(f->iss.cert);
	EVP_PKEY_free(f->iss.key);
	free(f->conf);
	free(f->log);
	free(f);
	return 0;
}

/* Options for a client @name (files NAME.pem/.key) of the broker. */
AFX struct agent_mqtt_opts afx_opts(struct afx *f, const char *id,
				    const char *name, char **paths)
{
	struct agent_mqtt_opts o = {0};
	char *c = fl_xasprintf("%s.pem", name), *k = fl_xasprintf("%s.key", name);

	paths[0] = afx_path(f, "root.pem");
	paths[1] = afx_path(f, c);
	paths[2] = afx_path(f, k);
	free(c);
	free(k);
	o.client_id = id;
	o.host = "127.0.0.1";
	o.port = f->port;
	o.ca_file = paths[0];
	o.cert_file = paths[1];
	o.key_file = paths[2];
	o.keepalive_s = 30;
	o.session_expiry_s = 3600;
	o.reconnect_min_ms = 200;
	o.reconnect_max_ms = 800;
	return o;
}

AFX void afx_free_paths(char **paths)
{
	for (int i = 0; i < 3; i++)
		free(paths[i]);
}

AFX void afx_obs_connect(void *user, bool session_present)
{
	struct afx_observer *o = user;

	o->connected = true;
	o->session_present = session_present;
	o->connects++;
}

AFX void afx_obs_message(void *user, const char *topic, const void *payload,
			 size_t len, const struct agent_msg_props *props)
{
	struct afx_observer *o = user;

	if (o->n == AFX_MSGS)
		return;
	o->msgs[o->n].topic = fl_xstrdup(topic);
	o->msgs[o->n].payload = fl_xstrndup(payload, len);
	o->n++;
}

AFX void afx_obs_clear(struct afx_observer *o)
{
	for (size_t i = 0; i < o->n; i++) {
		free(o->msgs[i].topic);
		free(o->msgs[i].payload);
	}
	o->n = 0;
}

/* Step @m (and @other, may be NULL) until *@flag or @ms pass. */
AFX bool afx_pump_until(struct agent_mqtt *m, struct agent_mqtt *other,
			const bool *flag, int ms)
{
	int64_t end = fl_now_ms() + ms;

	while (!*flag && fl_now_ms() < end) {
		agent_mqtt_step(m, 20);
		if (other)
			agent_mqtt_step(other, 20);
	}
	return *flag;
}

/* Step for @ms regardless. */
AFX void afx_pump(struct agent_mqtt *m, struct agent_mqtt *other, int ms)
{
	bool never = false;

	afx_pump_until(m, other, &never, ms);
}

/* The index of the first message on @topic containing @needle, or -1. */
AFX int afx_find(const struct afx_observer *o, const char *topic,
		 const char *needle)
{
	for (size_t i = 0; i < o->n; i++)
		if (fl_streq(o->msgs[i].topic, topic) &&
		    (!needle || strstr(o->msgs[i].payload, needle)))
			return (int)i;
	return -1;
}

/* Connect an observer (client id "observer") subscribed to @sub. */
AFX void afx_observer_start(struct afx *f, struct afx_observer *obs,
			    const char *sub)
{
	struct fl_error err = {0};
	char *paths[3];
	struct agent_mqtt_opts o = afx_opts(f, "observer", "observer", paths);

	o.user = obs;
	o.on_connect = afx_obs_connect;
	o.on_message = afx_obs_message;
	o.session_expiry_s = 0;
	assert_int_equal(agent_mqtt_new(&o, &obs->m, &err), 0);
	afx_free_paths(paths);
	assert_int_equal(agent_mqtt_connect_wait(obs->m, 10000, NULL, &err), 0);
	assert_int_equal(agent_mqtt_subscribe(obs->m, sub, 2, &err), 0);
	afx_pump(obs->m, NULL, 200);
}

AFX void afx_observer_stop(struct afx_observer *obs)
{
	if (obs->m)
		agent_mqtt_disconnect(obs->m);
	agent_mqtt_free(obs->m);
	obs->m = NULL;
	afx_obs_clear(obs);
}

#endif

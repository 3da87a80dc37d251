/* SPDX-License-Identifier: MIT */
/*
 * agent/diag_bundle: the support bundle gathered and uploaded to an
 * in-process HTTPS server (libmicrohttpd, 127.0.0.1) that asks for a
 * client certificate, as fleetd does: the PUT goes to
 * /api/v1/devices/dev-1/diag-bundles/UPLOAD_ID with the device's own
 * certificate; the body is a tar.gz (read back here with libarchive's
 * reader) holding the agent's log, status, configuration, sysinfo, net,
 * the state files and the configured logs, and no key; the reported
 * size is the body's; the temp file is gone.  Refusals: a bad upload
 * id, a bundle over [diag] bundle_max (nothing sent).
 */
#include "agent_fixture.h"

#include <archive.h>
#include <archive_entry.h>
#include <gnutls/gnutls.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>

#include "agent_config.h"
#include "diag_internal.h"
#include "json.h"
#include "log.h"

#define BODY_MAX (32 * 1024 * 1024)

struct server {
	struct MHD_Daemon *d;
	int port;
	pthread_mutex_t lock;
	int requests;
	char method[8], url[256], peer[80];
	char *body;
	size_t len;
};

struct bx {
	struct afx f; /* PKI only: no broker */
	char *state, *conf;
	struct agent_config *cfg;
	struct server s;
	volatile int cancel;
};

/* ---- server ---- */

/* The client certificate's CN, or "". */
static void peer_cn(struct MHD_Connection *c, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	const gnutls_datum_t *der;
	struct fl_pki_cert_info info;
	const unsigned char *p;
	unsigned n = 0;
	X509 *x;

	buf[0] = '\0';
	if (!ci || !(der = gnutls_certificate_get_peers(ci->tls_session, &n)) ||
	    !n)
		return;
	p = der[0].data;
	x = d2i_X509(NULL, &p, der[0].size);
	if (x && fl_pki_cert_info(x, &info, NULL) == 0)
		fl_strlcpy(buf, info.cn, size);
	X509_free(x);
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *c,
			       const char *url, const char *method,
			       const char *version, const char *upload,
			       size_t *upload_size, void **con_cls)
{
	static const char ok[] = "{\"stored\":true}";
	struct server *s = cls;
	struct MHD_Response *r;
	enum MHD_Result rc;

	if (!*con_cls) {
		*con_cls = (void *)1;
		pthread_mutex_lock(&s->lock);
		s->requests++;
		fl_strlcpy(s->method, method, sizeof(s->method));
		fl_strlcpy(s->url, url, sizeof(s->url));
		peer_cn(c, s->peer, sizeof(s->peer));
		pthread_mutex_unlock(&s->lock);
		return MHD_YES;
	}
	if (*upload_size) {
		pthread_mutex_lock(&s->lock);
		if (s->len + *upload_size <= BODY_MAX) {
			s->body = fl_xrealloc(s->body, s->len + *upload_size);
			memcpy(s->body + s->len, upload, *upload_size);
			s->len += *upload_size;
		}
		pthread_mutex_unlock(&s->lock);
		*upload_size = 0;
		return MHD_YES;
	}
	r = MHD_create_response_from_buffer(strlen(ok), (void *)ok,
					    MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	rc = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return rc;
}

static char *file_text(struct afx *f, const char *name)
{
	char *p = afx_path(f, name), *t = NULL;

	assert_int_equal(fl_read_file(p, 1 << 20, &t, NULL, NULL), 0);
	free(p);
	return t;
}

/* TLS with server.pem (SAN 127.0.0.1), client certificates verified
 * against the issuing CA and the root. */
static void server_start(struct bx *x)
{
	struct sockaddr_in addr = {.sin_family = AF_INET};
	char *key = file_text(&x->f, "server.key");
	char *cert = file_text(&x->f, "server.pem");
	char *trust = file_text(&x->f, "broker-ca.pem");
	const union MHD_DaemonInfo *info;

	pthread_mutex_init(&x->s.lock, NULL);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	x->s.d = MHD_start_daemon(
	    MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL,
	    handler, &x->s, MHD_OPTION_SOCK_ADDR, &addr,
	    MHD_OPTION_HTTPS_MEM_KEY, key, MHD_OPTION_HTTPS_MEM_CERT, cert,
	    MHD_OPTION_HTTPS_MEM_TRUST, trust, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)30, MHD_OPTION_END);
	assert_non_null(x->s.d);
	info = MHD_get_daemon_info(x->s.d, MHD_DAEMON_INFO_BIND_PORT);
	x->s.port = info->port;
	free(key);
	free(cert);
	free(trust);
}

/* ---- fixture ---- */

static void load(struct bx *x, const char *extra)
{
	char *text =
	    fl_xasprintf("[device]\nid = dev-1\nstate_dir = state\n"
			 "[server]\nurl = https://127.0.0.1:%d\n"
			 "[mqtt]\nurl = mqtts://127.0.0.1:%d\n"
			 "[diag.log.app]\npath = app.log\n%s",
			 x->s.port, afx_free_port(), extra ? extra : "");

	assert_int_equal(fl_write_atomic_str(x->conf, text, 0600, NULL), 0);
	agent_config_free(x->cfg);
	x->cfg = NULL;
	assert_int_equal(agent_config_load(x->conf, &x->cfg, NULL), 0);
	free(text);
}

static int setup(void **state)
{
	struct bx *x = fl_xcalloc(1, sizeof(*x));
	char *app;

	fl_strlcpy(x->f.dir, "/tmp/fleet-diagbundle-XXXXXX", sizeof(x->f.dir));
	assert_non_null(mkdtemp(x->f.dir));
	afx_pki(&x->f);
	x->state = afx_path(&x->f, "state");
	x->conf = afx_path(&x->f, "agent.conf");
	assert_int_equal(fl_mkdir_p(x->state, 0700, NULL), 0);
	afx_copy_file(&x->f, "dev-1.key", x->state, "key.pem", 0600);
	afx_copy_file(&x->f, "dev-1.pem", x->state, "cert.pem", 0644);
	afx_copy_file(&x->f, "issuing.pem", x->state, "chain.pem", 0644);
	afx_copy_file(&x->f, "root.pem", x->state, "ca.pem", 0644);
	afx_copy_file(&x->f, "root.pem", x->state, "commands.json", 0600);
	app = afx_path(&x->f, "app.log");
	assert_int_equal(fl_write_atomic_str(app, "boot\nready\n", 0644, NULL),
			 0);
	free(app);
	server_start(x);
	load(x, NULL);
	fl_log_keep(100);
	*state = x;
	return 0;
}

static int teardown(void **state)
{
	struct bx *x = *state;

	fl_log_keep(0);
	MHD_stop_daemon(x->s.d);
	pthread_mutex_destroy(&x->s.lock);
	free(x->s.body);
	agent_config_free(x->cfg);
	if (!getenv("KEEP_TMP"))
		nftw(x->f.dir, afx_rm, 8, FTW_DEPTH | FTW_PHYS);
	X509_free(x->f.root.cert);
	EVP_PKEY_free(x->f.root.key);
	X509_free(x->f.iss.cert);
	EVP_PKEY_free(x->f.iss.key);
	free(x->state);
	free(x->conf);
	free(x);
	return 0;
}

static int run(struct bx *x, const char *upload_id, json_t **ret)
{
	struct diag_req q = {.check = "bundle",
			     .n_args = upload_id ? 1 : 0,
			     .args = {(char *)upload_id},
			     .timeout_s = 30};
	struct diag_run r = {.cfg = x->cfg,
			     .req = &q,
			     .deadline_ms = fl_now_ms() + 30000,
			     .cancel = &x->cancel};
	const struct diag_check *c = diag_builtin("bundle", false);
	struct fl_error err = {0};
	int rc;

	assert_non_null(c);
	*ret = NULL;
	rc = c->run(&r, ret, &err);
	if (rc)
		fprintf(stderr, "# bundle: %s\n", err.msg);
	return rc;
}

/* The entries of the uploaded tar.gz: name -> content. */
static json_t *entries(struct server *s)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	json_t *j = json_object();
	char buf[65536];

	archive_read_support_filter_gzip(a);
	archive_read_support_format_tar(a);
	assert_int_equal(archive_read_open_memory(a, s->body, s->len),
			 ARCHIVE_OK);
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		la_ssize_t n = archive_read_data(a, buf, sizeof(buf) - 1);

		buf[n > 0 ? n : 0] = '\0';
		json_object_set_new(j, archive_entry_pathname(e),
				    json_string(buf));
	}
	archive_read_free(a);
	return j;
}

static const char *entry(const json_t *j, const char *name)
{
	const char *v = json_string_value(json_object_get(j, name));

	if (!v)
		fail_msg("no entry '%s' in the bundle", name);
	return v;
}

static void test_bundle_uploaded(void **state)
{
	struct bx *x = *state;
	json_t *res, *tar, *status = NULL, *v;
	const char *name;
	char *tmp = fl_path_join(x->state, "diag-bundle.tmp");

	fl_log_context_set("dev-1");
	fl_info("a line of the agent's own log");
	fl_log_context_set(NULL);
	assert_int_equal(run(x, "up-42_X", &res), 0);
	assert_int_equal(x->s.requests, 1);
	assert_string_equal(x->s.method, "PUT");
	assert_string_equal(x->s.url,
			    "/api/v1/devices/dev-1/diag-bundles/up-42_X");
	assert_string_equal(x->s.peer, "dev-1"); /* the device's own cert */
	assert_string_equal(json_string_value(json_object_get(res, "upload")),
			    "up-42_X");
	assert_int_equal(json_integer_value(json_object_get(res, "size")),
			 x->s.len);
	assert_false(fl_path_exists(tmp));
	tar = entries(&x->s);
	assert_non_null(strstr(entry(tar, "dev-1/agent.log"),
			       "a line of the agent's own log"));
	assert_int_equal(fl_json_parse(entry(tar, "dev-1/status.json"),
				       strlen(entry(tar, "dev-1/status.json")),
				       1 << 20, &status, NULL),
			 0);
	assert_string_equal(json_string_value(json_object_get(status, "id")),
			    "dev-1");
	assert_non_null(
	    strstr(entry(tar, "dev-1/agent.conf.json"), "\"settings\""));
	assert_non_null(strstr(entry(tar, "dev-1/sysinfo.json"), "kernel"));
	assert_non_null(strstr(entry(tar, "dev-1/net.json"), "interfaces"));
	assert_non_null(
	    strstr(entry(tar, "dev-1/commands.json"), "BEGIN CERTIFICATE"));
	assert_string_equal(entry(tar, "dev-1/logs/app.log"), "boot\nready\n");
	/* no key, whatever the entry */
	json_object_foreach(tar, name, v)
	    assert_null(strstr(json_string_value(v), "PRIVATE KEY"));
	json_decref(status);
	json_decref(tar);
	json_decref(res);
	free(tmp);
}

static void test_bundle_refusals(void **state)
{
	struct bx *x = *state;
	char long_id[70], *big, *p;
	json_t *res;

	memset(long_id, 'a', 65);
	long_id[65] = '\0';
	assert_int_equal(run(x, NULL, &res), FL_EINVAL);
	assert_int_equal(run(x, "a/b", &res), FL_EINVAL);
	assert_int_equal(run(x, "../x", &res), FL_EINVAL);
	assert_int_equal(run(x, long_id, &res), FL_EINVAL);
	assert_int_equal(x->s.requests, 0);
	/* over [diag] bundle_max (a state file that does not compress):
	 * nothing goes out */
	big = fl_xmalloc(200 * 1024);
	assert_int_equal(fl_random(big, 200 * 1024, NULL), 0);
	p = fl_path_join(x->state, "commands.json");
	assert_int_equal(fl_write_atomic(p, big, 200 * 1024, 0600, NULL), 0);
	load(x, "[diag]\nbundle_max = 65536\n");
	assert_int_equal(run(x, "up-1", &res), FL_ELIMIT);
	assert_null(res);
	assert_int_equal(x->s.requests, 0);
	free(p);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_bundle_uploaded, setup,
					    teardown),
	    cmocka_unit_test_setup_teardown(test_bundle_refusals, setup,
					    teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

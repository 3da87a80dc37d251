/* SPDX-License-Identifier: MIT */
/*
 * Fuzz fleetd's HTTP side end to end, minus TLS: libmicrohttpd parses
 * each request and hands it to httpd.c's own callbacks (httpd_internal.h)
 * as `fleetd serve` does, so routing (routes.c's table), bearer tokens
 * and role checks, body caps, every handler's JSON body parsing
 * (api_*.c), the Range header of bundle downloads, uploads and the audit
 * rows all run on a real store, in the fleetd of fuzz_srv.h.
 *
 * Input: up to 4 requests separated by "%%" lines (fuzz.h), each as on
 * the wire ("POST /api/v1/tokens HTTP/1.1", headers, a blank line, the
 * body), with fuzz_srv.h's placeholders ("Authorization: Bearer
 * @admin@", "/api/v1/jobs/@job1@").  The harness sets Content-Length to
 * the body's real length (unless the request says Transfer-Encoding),
 * adds a Host header when there is none and Connection: close, and
 * sends each request on its own connection (a socket pair handed to
 * libmicrohttpd).  Devices authenticate by client certificate, which
 * needs TLS: their routes answer 401 here.  The fleetd is made afresh
 * every RESET inputs.
 *
 * Invariants: every complete request gets one well-formed response, and
 * none is a 500 (an internal error is a bug, whatever the input).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#include "fuzz.h"
#include "fuzz_srv.h"
#include "httpd_internal.h"

#define MAX_REQS 4
#define RESET 1000
#define IDLE_ROUNDS 64
#define RESP_MAX (256 * 1024)

static struct fuzz_srv fs;
static struct MHD_Daemon *mhd;
static unsigned runs;

static void quiet(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	(void)fmt;
	(void)ap;
}

static void start(void)
{
	fuzz_srv_open(&fs, "");
	mhd = MHD_start_daemon(
	    MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ERROR_LOG, 0, NULL, NULL,
	    srv_http_on_request, fs.srv, MHD_OPTION_NOTIFY_COMPLETED,
	    srv_http_on_completed, fs.srv, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)(32 * 1024), MHD_OPTION_EXTERNAL_LOGGER, quiet, NULL,
	    MHD_OPTION_END);
	if (!mhd)
		abort();
}

static void stop(void)
{
	MHD_stop_daemon(mhd);
	fuzz_srv_close(&fs);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_log_setup();
	start();
	return 0;
}

static bool header_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);

	return len > n && strncasecmp(line, name, n) == 0 && line[n] == ':';
}

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const void *p, size_t len)
{
	if (b->len + len + 1 > b->cap) {
		b->cap = (b->len + len + 1) * 2;
		b->p = fl_xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, len);
	b->len += len;
	b->p[b->len] = '\0';
}

/* The request as sent: the input's head with the harness's headers. */
static void build(const char *in, size_t len, struct buf *out)
{
	const char *end = memmem(in, len, "\r\n\r\n", 4), *body;
	const char *p = in, *nl;
	size_t blen;
	bool host = false, te = false;
	char cl[48];

	body = end ? end + 4 : in + len;
	blen = (size_t)(in + len - body);
	if (!end)
		end = in + len;
	for (bool first = true; p < end; first = false) {
		size_t l;

		nl = memmem(p, (size_t)(end - p), "\r\n", 2);
		l = (size_t)((nl ? nl : end) - p);
		if (first || !(header_is(p, l, "Content-Length") ||
			       header_is(p, l, "Connection"))) {
			put(out, p, l);
			put(out, "\r\n", 2);
		}
		host |= header_is(p, l, "Host");
		te |= header_is(p, l, "Transfer-Encoding");
		p = nl ? nl + 2 : end;
	}
	if (!host)
		put(out, "Host: fleetd\r\n", 14);
	if (!te) {
		snprintf(cl, sizeof(cl), "Content-Length: %zu\r\n", blen);
		put(out, cl, strlen(cl));
	}
	put(out, "Connection: close\r\n\r\n", 21);
	put(out, body, blen);
}

/* Send @req on a new connection; the response (cut at RESP_MAX) into
 * @resp.  True when the server closed the connection (it answered, or
 * refused to). */
static bool exchange(const struct buf *req, struct buf *resp)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons(40000),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	size_t off = 0;
	int sv[2], idle = 0;
	bool shut = false, eof = false;
	char chunk[16384];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	if (MHD_add_connection(mhd, sv[1], (struct sockaddr *)&sa,
			       sizeof(sa)) != MHD_YES)
		abort();
	while (!eof && idle < 2 * IDLE_ROUNDS) {
		ssize_t n;
		bool progress = false;

		if (off < req->len) {
			n = write(sv[0], req->p + off, req->len - off);
			if (n > 0) {
				off += (size_t)n;
				progress = true;
			}
		}
		MHD_run(mhd);
		while ((n = read(sv[0], chunk, sizeof(chunk))) > 0) {
			if (resp->len + (size_t)n <= RESP_MAX)
				put(resp, chunk, (size_t)n);
			progress = true;
		}
		eof = n == 0;
		idle = progress ? 0 : idle + 1;
		if (!shut && off == req->len && idle >= IDLE_ROUNDS) {
			/* an incomplete request: the client gives up */
			shutdown(sv[0], SHUT_WR);
			shut = true;
		}
	}
	close(sv[0]);
	for (int i = 0; i < 100; i++) {
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(
		    mhd, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);

		if (!di || di->num_connections == 0)
			break;
		MHD_run(mhd);
	}
	return eof && !shut;
}

static void check_response(const struct buf *resp)
{
	int status = 0;

	if (resp->len == 0)
		return; /* closed without a word: MHD refused the request */
	FUZZ_ASSERT(sscanf(resp->p, "HTTP/1.%*1[01] %3d ", &status) == 1);
	FUZZ_ASSERT(status >= 100 && status <= 599);
	if (status == 500) {
		fprintf(stderr, "fuzz: 500 from fleetd:\n%.2000s\n", resp->p);
		__builtin_trap();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_part parts[MAX_REQS];
	size_t n = fuzz_split(data, size, parts, MAX_REQS);

	if (++runs % RESET == 0) {
		stop();
		start();
	}
	for (size_t i = 0; i < n; i++) {
		struct buf req = {0}, resp = {0};
		size_t len;
		char *in = fuzz_srv_subst(&fs, parts[i].p, parts[i].len, &len);

		build(in, len, &req);
		if (exchange(&req, &resp))
			check_response(&resp);
		free(in);
		free(req.p);
		free(resp.p);
	}
	return 0;
}

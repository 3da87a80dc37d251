/* SPDX-License-Identifier: MIT */
/*
 * modbus-sim: Modbus TCP and RTU devices for tests, the demo and the
 * bench (issue 16), on libmodbus's server API.
 *
 *   modbus-sim --port P [--devices N] [--control FILE]
 *   modbus-sim --rtu DEVICE [--unit ID] [--control FILE]
 *
 * Serves N devices (default 1) on 127.0.0.1 ports P..P+N-1 (any unit
 * id), or one device as unit ID (default 1) on the serial line DEVICE
 * at 9600 8N1 (RTU: a request to another unit is not answered; a pty
 * pair of socat stands for the line in t7005).  Each has the same
 * registers:
 *
 *   holding 0       uint16  1234
 *   holding 1       int16   -1234
 *   holding 2..9    uint32  305419896 (0x12345678) in abcd, cdab, badc,
 *                           dcba (two registers each, in that order)
 *   holding 10..17  float32 21.5 in abcd, cdab, badc, dcba
 *   holding 18..19  int32   -100000 abcd
 *   holding 100..199 uint16 the register's index (100..199), for the bench
 *   holding 300..309 uint16 writable, 0 at start
 *   input 0         uint16  ramp: whole seconds since the epoch % 100
 *   input 1         int16   sine: round(1000 sin(2 pi t / 20 s))
 *   input 2..5      uint16  the ramp again (aggregation tests: one read
 *                           gives the raw ramp and its copies)
 *   coil 0          square: 1 in the first half of each 10 s, else 0
 *   coils 1..15     writable, 0 at start
 *   discrete 0      1
 *
 * Faults on demand: FILE (re-read before every reply) holds one word:
 * "ok" (or no file), "silent" (requests are read and never answered),
 * "exception N" (every request gets Modbus exception N), "wrong" (the
 * answer carries another function code).  SIGTERM or SIGINT ends it.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <modbus.h>

#define DEVICES_MAX 200

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Two registers of 32 bits @v in @order ("abcd", ...) at @r. */
static void put32(uint16_t *r, uint32_t v, const char *order)
{
	uint16_t hi = (uint16_t)(v >> 16), lo = (uint16_t)v;
	int ws = order[0] == 'c' || order[0] == 'd';
	int bs = order[0] == 'b' || order[0] == 'd';

	r[0] = ws ? lo : hi;
	r[1] = ws ? hi : lo;
	if (bs) {
		r[0] = (uint16_t)(r[0] << 8 | r[0] >> 8);
		r[1] = (uint16_t)(r[1] << 8 | r[1] >> 8);
	}
}

static void constants(modbus_mapping_t *m)
{
	static const char *const orders[] = {"abcd", "cdab", "badc", "dcba"};
	float f = 21.5f;
	uint32_t fb;

	memcpy(&fb, &f, sizeof(fb));
	m->tab_registers[0] = 1234;
	m->tab_registers[1] = (uint16_t)(int16_t)-1234;
	for (int i = 0; i < 4; i++) {
		put32(m->tab_registers + 2 + 2 * i, 305419896u, orders[i]);
		put32(m->tab_registers + 10 + 2 * i, fb, orders[i]);
	}
	put32(m->tab_registers + 18, (uint32_t)(int32_t)-100000, "abcd");
	for (int i = 100; i < 200; i++)
		m->tab_registers[i] = (uint16_t)i;
	m->tab_input_bits[0] = 1;
}

/* The waveforms at the present time. */
static void waves(modbus_mapping_t *m)
{
	struct timeval tv;
	double t;

	gettimeofday(&tv, NULL);
	t = (double)tv.tv_sec + tv.tv_usec / 1e6;
	for (int i = 0; i < 6; i++)
		m->tab_input_registers[i] = (uint16_t)(tv.tv_sec % 100);
	m->tab_input_registers[1] =
	    (uint16_t)(int16_t)lround(1000 * sin(2 * M_PI * t / 20));
	m->tab_bits[0] = (tv.tv_sec % 10) < 5;
}

/* The fault FILE asks for: 0 none, 1 silent, 2 wrong, 100+N exception. */
static int fault(const char *path)
{
	char word[32] = "";
	int n = 0;
	FILE *f = path ? fopen(path, "r") : NULL;

	if (!f)
		return 0;
	if (fscanf(f, "%31s %d", word, &n) < 1)
		word[0] = '\0';
	fclose(f);
	if (!strcmp(word, "silent"))
		return 1;
	if (!strcmp(word, "wrong"))
		return 2;
	if (!strcmp(word, "exception") && n > 0 && n < 100)
		return 100 + n;
	return 0;
}

/* Answer the request @q (@len bytes) on @ctx as the fault says. */
static void answer(modbus_t *ctx, uint8_t *q, int len, modbus_mapping_t *m,
		   const char *control)
{
	int hl = modbus_get_header_length(ctx);
	int f = fault(control);

	if (f == 1)
		return;
	if (f >= 100) {
		modbus_reply_exception(ctx, q, (unsigned)(f - 100));
		return;
	}
	if (f == 2 && q[hl] == MODBUS_FC_READ_HOLDING_REGISTERS)
		q[hl] = MODBUS_FC_READ_INPUT_REGISTERS;
	else if (f == 2)
		q[hl] = MODBUS_FC_READ_HOLDING_REGISTERS;
	waves(m);
	modbus_reply(ctx, q, len, m);
}

struct dev {
	modbus_t *ctx;
	int listen_fd; /* TCP; -1: RTU, the line is the one client */
};

/* After a failed receive on a serial line: a bad or partial frame
 * (dropped by libmodbus) or a gone line (a pty whose other end closed). */
static int line_ok(int e)
{
	return e == ETIMEDOUT || e >= MODBUS_ENOBASE;
}

/* Serve until a signal: accept on the listening sockets, answer on the
 * clients (each client's socket set into its device's context). */
static int serve(struct dev *d, int n, modbus_mapping_t *m, const char *ctl)
{
	int owner[FD_SETSIZE];
	fd_set all, rd;
	int maxfd = 0;

	FD_ZERO(&all);
	for (int i = 0; i < n; i++) {
		int fd = d[i].listen_fd >= 0 ? d[i].listen_fd
					     : modbus_get_socket(d[i].ctx);

		FD_SET(fd, &all);
		owner[fd] = i;
		maxfd = fd > maxfd ? fd : maxfd;
	}
	while (!stop) {
		struct timeval tv = {0, 200000};

		rd = all;
		if (select(maxfd + 1, &rd, NULL, NULL, &tv) < 0) {
			if (errno == EINTR)
				continue;
			perror("modbus-sim: select");
			return 1;
		}
		for (int fd = 0; fd <= maxfd; fd++) {
			uint8_t q[MODBUS_TCP_MAX_ADU_LENGTH];
			int i, len;

			if (!FD_ISSET(fd, &rd))
				continue;
			i = owner[fd];
			if (fd == d[i].listen_fd) {
				int c = accept(fd, NULL, NULL);

				if (c >= 0 && c < FD_SETSIZE) {
					FD_SET(c, &all);
					owner[c] = i;
					maxfd = c > maxfd ? c : maxfd;
				} else if (c >= 0) {
					close(c);
				}
				continue;
			}
			modbus_set_socket(d[i].ctx, fd);
			len = modbus_receive(d[i].ctx, q);
			if (len > 0) {
				answer(d[i].ctx, q, len, m, ctl);
			} else if (len < 0 && d[i].listen_fd >= 0) {
				close(fd);
				FD_CLR(fd, &all);
			} else if (len < 0 && !line_ok(errno)) {
				perror("modbus-sim: the line");
				return 1;
			}
		}
	}
	return 0;
}

/* Listen on 127.0.0.1 ports @port..@port+@n-1. */
static int open_tcp(struct dev *d, int port, int n)
{
	for (int i = 0; i < n; i++) {
		d[i].ctx = modbus_new_tcp("127.0.0.1", port + i);
		d[i].listen_fd =
		    d[i].ctx ? modbus_tcp_listen(d[i].ctx, 16) : -1;
		if (d[i].listen_fd < 0 || d[i].listen_fd >= FD_SETSIZE) {
			fprintf(stderr, "modbus-sim: port %d: %s\n", port + i,
				modbus_strerror(errno));
			return -1;
		}
	}
	printf("modbus-sim: %d devices on 127.0.0.1:%d\n", n, port);
	return 0;
}

/* Open the serial line @dev as unit @unit. */
static int open_rtu(struct dev *d, const char *dev, int unit)
{
	d->listen_fd = -1;
	d->ctx = modbus_new_rtu(dev, 9600, 'N', 8, 1);
	if (!d->ctx || modbus_set_slave(d->ctx, unit) != 0 ||
	    modbus_connect(d->ctx) != 0 ||
	    modbus_get_socket(d->ctx) >= FD_SETSIZE) {
		fprintf(stderr, "modbus-sim: %s: %s\n", dev,
			modbus_strerror(errno));
		return -1;
	}
	printf("modbus-sim: unit %d on %s (RTU)\n", unit, dev);
	return 0;
}

int main(int argc, char **argv)
{
	struct dev d[DEVICES_MAX] = {0};
	const char *control = NULL, *rtu = NULL;
	int port = 0, n = 1, unit = 1, rc;
	modbus_mapping_t *m;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--port"))
			port = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--devices"))
			n = atoi(argv[i + 1]);
		else if (!strcmp(argv[i], "--control"))
			control = argv[i + 1];
		else if (!strcmp(argv[i], "--rtu"))
			rtu = argv[i + 1];
		else if (!strcmp(argv[i], "--unit"))
			unit = atoi(argv[i + 1]);
	}
	if ((rtu ? port || n != 1 || unit < 1 || unit > 247
		 : port <= 0 || n < 1 || n > DEVICES_MAX || port + n > 65536) ||
	    argc % 2 == 0) {
		fprintf(stderr, "usage: modbus-sim --port P [--devices N] "
				"[--control FILE]\n"
				"       modbus-sim --rtu DEVICE [--unit ID] "
				"[--control FILE]\n");
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	signal(SIGPIPE, SIG_IGN);
	m = modbus_mapping_new(16, 1, 400, 6);
	constants(m);
	if (rtu ? open_rtu(d, rtu, unit) : open_tcp(d, port, n))
		return 1;
	fflush(stdout);
	rc = serve(d, n, m, control);
	for (int i = 0; i < n; i++) {
		if (d[i].listen_fd >= 0)
			close(d[i].listen_fd);
		else
			modbus_close(d[i].ctx); /* the line's settings back */
		modbus_free(d[i].ctx);
	}
	modbus_mapping_free(m);
	return rc;
}

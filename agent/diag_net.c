/* SPDX-License-Identifier: MIT */
/*
 * The "net" check (docs/diagnostics.md): the interfaces and their
 * addresses (getifaddrs), the IPv4 default route (/proc/net/route), the
 * DNS servers (/etc/resolv.conf), and whether fleetd and the broker
 * take a TCP connection now, with the time it took (no TLS, no data:
 * the path, not the service).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "diag_internal.h"
#include "fsutil.h"
#include "util.h"

#define IFACES_MAX 32
#define ADDRS_MAX 16
#define DNS_MAX 8
#define REACH_MS_MAX 3000 /* one connection attempt, at most */
#define NET_FILE_MAX (256 * 1024)

/* ------------------------------------------------------------------ */
/* Interfaces                                                         */
/* ------------------------------------------------------------------ */

/* The entry of interface @name in @list, added if new (NULL: over the
 * cap). */
static json_t *iface(json_t *list, const struct ifaddrs *i)
{
	json_t *e;

	for (size_t k = 0; k < json_array_size(list); k++) {
		e = json_array_get(list, k);
		if (fl_streq(json_string_value(json_object_get(e, "name")),
			     i->ifa_name))
			return e;
	}
	if (json_array_size(list) == IFACES_MAX)
		return NULL;
	e = json_pack("{s:o, s:b, s:[]}", "name",
		      diag_json_text(i->ifa_name, strlen(i->ifa_name)), "up",
		      (i->ifa_flags & IFF_UP) != 0, "addrs");
	json_array_append_new(list, e);
	return e;
}

static unsigned prefix_len(const unsigned char *mask, size_t len)
{
	unsigned n = 0;

	for (size_t i = 0; i < len; i++)
		n += (unsigned)__builtin_popcount(mask[i]);
	return n;
}

/* "ADDR/PREFIX" of an IPv4 or IPv6 entry; false for other families. */
static bool addr_text(const struct ifaddrs *i, char *buf, size_t size)
{
	const void *a, *m = NULL;
	char ip[INET6_ADDRSTRLEN];
	int fam = i->ifa_addr->sa_family;
	size_t mlen;

	if (fam == AF_INET) {
		a = &((const struct sockaddr_in *)i->ifa_addr)->sin_addr;
		if (i->ifa_netmask)
			m = &((const struct sockaddr_in *)i->ifa_netmask)
				 ->sin_addr;
		mlen = 4;
	} else if (fam == AF_INET6) {
		a = &((const struct sockaddr_in6 *)i->ifa_addr)->sin6_addr;
		if (i->ifa_netmask)
			m = &((const struct sockaddr_in6 *)i->ifa_netmask)
				 ->sin6_addr;
		mlen = 16;
	} else {
		return false;
	}
	if (!inet_ntop(fam, a, ip, sizeof(ip)))
		return false;
	snprintf(buf, size, "%s/%u", ip, m ? prefix_len(m, mlen) : 0);
	return true;
}

static json_t *interfaces(void)
{
	struct ifaddrs *all = NULL;
	json_t *list = json_array(), *e, *addrs;
	char buf[INET6_ADDRSTRLEN + 8];

	if (getifaddrs(&all) < 0)
		return list;
	for (const struct ifaddrs *i = all; i; i = i->ifa_next) {
		e = iface(list, i);
		if (!e || !i->ifa_addr || !addr_text(i, buf, sizeof(buf)))
			continue;
		addrs = json_object_get(e, "addrs");
		if (json_array_size(addrs) < ADDRS_MAX)
			json_array_append_new(addrs, json_string(buf));
	}
	freeifaddrs(all);
	return list;
}

/* ------------------------------------------------------------------ */
/* Route and DNS                                                      */
/* ------------------------------------------------------------------ */

/* The IPv4 default route {"iface", "gateway"}, or null. */
static json_t *default_route(void)
{
	char *buf = NULL, *line, *save = NULL, ifn[IF_NAMESIZE + 1];
	char gw[INET_ADDRSTRLEN];
	unsigned dest, gate, flags, mask;
	json_t *j = json_null();

	if (fl_read_file("/proc/net/route", NET_FILE_MAX, &buf, NULL, NULL))
		return j;
	for (line = strtok_r(buf, "\n", &save); line && json_is_null(j);
	     line = strtok_r(NULL, "\n", &save)) {
		if (sscanf(line, "%16s %x %x %x %*d %*d %*d %x", ifn, &dest,
			   &gate, &flags, &mask) != 5 ||
		    dest != 0 || mask != 0)
			continue;
		/* the kernel prints the address as it is in memory */
		inet_ntop(AF_INET, &(struct in_addr){.s_addr = gate}, gw,
			  sizeof(gw));
		j = json_pack("{s:o, s:s}", "iface",
			      diag_json_text(ifn, strlen(ifn)), "gateway", gw);
	}
	free(buf);
	return j;
}

static json_t *dns(void)
{
	char *buf = NULL, *line, *save = NULL, addr[64];
	json_t *a = json_array();

	if (fl_read_file("/etc/resolv.conf", NET_FILE_MAX, &buf, NULL, NULL))
		return a;
	for (line = strtok_r(buf, "\n", &save);
	     line && json_array_size(a) < DNS_MAX;
	     line = strtok_r(NULL, "\n", &save))
		if (sscanf(line, " nameserver %63s", addr) == 1)
			json_array_append_new(
			    a, diag_json_text(addr, strlen(addr)));
	free(buf);
	return a;
}

/* ------------------------------------------------------------------ */
/* Reachability                                                       */
/* ------------------------------------------------------------------ */

/* One TCP connection to @ai within @ms; 0 or an errno. */
static int try_connect(const struct addrinfo *ai, int ms)
{
	int fd = socket(ai->ai_family,
			ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			ai->ai_protocol);
	struct pollfd p = {fd, POLLOUT, 0};
	socklen_t len = sizeof(int);
	int e = 0;

	if (fd < 0)
		return errno;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		e = errno;
		if (e == EINPROGRESS) {
			e = poll(&p, 1, ms) == 1 ? 0 : ETIMEDOUT;
			if (!e &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) < 0)
				e = errno;
		}
	}
	close(fd);
	return e;
}

/* {"what", "host", "port", "ok", "ms", "error"?} for @host:@port. */
static json_t *reach(const struct diag_run *r, const char *what,
		     const char *host, int port)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
				 .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int64_t start = fl_now_ms(), left = diag_ms_left(r);
	char serv[8];
	const char *why = NULL;
	int e = EHOSTUNREACH, gai;
	json_t *j;

	snprintf(serv, sizeof(serv), "%d", port);
	gai = getaddrinfo(host, serv, &hints, &ai);
	if (gai)
		why = gai_strerror(gai);
	for (const struct addrinfo *i = ai; !gai && i && e; i = i->ai_next)
		e = try_connect(
		    i, (int)(left < REACH_MS_MAX ? left : REACH_MS_MAX));
	if (!gai && e)
		why = strerror(e);
	if (ai)
		freeaddrinfo(ai);
	j = json_pack("{s:s, s:o, s:i, s:b, s:I}", "what", what, "host",
		      diag_json_text(host, strlen(host)), "port", port, "ok",
		      why == NULL, "ms", (json_int_t)(fl_now_ms() - start));
	if (why)
		json_object_set_new(j, "error", json_string(why));
	return j;
}

int diag_check_net(const struct diag_run *r, json_t **ret, struct fl_error *err)
{
	json_t *reached = json_array();
	char *host = NULL;
	int port = 0;

	if (!agent_config_split_url(r->cfg->server_url, "https://", 443, &host,
				    &port, NULL))
		json_array_append_new(reached, reach(r, "fleetd", host, port));
	free(host);
	json_array_append_new(
	    reached, reach(r, "broker", r->cfg->mqtt_host, r->cfg->mqtt_port));
	*ret = json_pack("{s:o, s:o, s:o, s:o}", "interfaces", interfaces(),
			 "default_route", default_route(), "dns", dns(),
			 "reach", reached);
	return 0;
}

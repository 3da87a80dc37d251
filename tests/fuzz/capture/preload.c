/* SPDX-License-Identifier: MIT */
/*
 * LD_PRELOAD shim for tests/fuzz/capture-seeds.sh: while the end-to-end
 * tests run, record the real traffic of Fleet's programs so the fuzz
 * seeds are what the programs really exchange.  Inert unless
 * FLEET_CAPTURE_DIR is set, and only in fleetd, fleetctl, fleet-agent,
 * fleet-sim and curl (the e2e tests' stand-in for an agent):
 *
 *   ssl-COMM-PID-N.raw   every byte a client wrote on one TLS
 *                        connection (SSL_write): its HTTP requests, or
 *                        MQTT packets
 *   mqtt-COMM-PID-N.msg  a publish (mosquitto_publish_v5): the topic,
 *                        a newline, the payload
 *   file-NAME-PID-N      a state file as written (rename over
 *                        ota.json, commands.json, agent.conf, ...)
 *
 * Test helper only: never linked into a program.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *dir;
static char comm[32];
static unsigned long seq;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Files the agent and fleetctl write atomically that make good seeds. */
static const char *const state_files[] = {
    "ota.json", "commands.json", "agent.conf", "unconfirmed.json",
    "confirm.json", "fleetctl.conf",
};

__attribute__((constructor)) static void init(void)
{
	static const char *const progs[] = {"fleetd", "fleetctl", "fleet-agent",
					    "fleet-sim", "curl"};
	FILE *f = fopen("/proc/self/comm", "r");

	if (f) {
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]); i++)
		if (strncmp(comm, progs[i], strlen(progs[i])) == 0)
			dir = getenv("FLEET_CAPTURE_DIR");
}

static void save(const char *name, const void *a, size_t alen, const void *b,
		 size_t blen, int flags)
{
	char path[512];
	int fd, saved = errno;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
	if (fd >= 0) {
		if ((alen && write(fd, a, alen) < 0) ||
		    (blen && write(fd, b, blen) < 0))
			perror(path);
		close(fd);
	}
	errno = saved;
}

int SSL_write(void *ssl, const void *buf, int num)
{
	static int (*real)(void *, const void *, int);
	char name[128];

	if (!real)
		real = (int (*)(void *, const void *, int))dlsym(RTLD_NEXT,
								 "SSL_write");
	if (dir && num > 0 && strncmp(comm, "fleetd", 6) != 0) {
		snprintf(name, sizeof(name), "ssl-%s-%d-%p.raw", comm,
			 (int)getpid(), ssl);
		pthread_mutex_lock(&lock);
		save(name, buf, (size_t)num, NULL, 0, O_APPEND);
		pthread_mutex_unlock(&lock);
	}
	return real(ssl, buf, num);
}

int mosquitto_publish_v5(void *mosq, int *mid, const char *topic,
			 int payloadlen, const void *payload, int qos,
			 _Bool retain, const void *props)
{
	static int (*real)(void *, int *, const char *, int, const void *,
			   int, _Bool, const void *);
	char name[128], *head;

	if (!real)
		real = (int (*)(void *, int *, const char *, int, const void *,
				int, _Bool, const void *))
		    dlsym(RTLD_NEXT, "mosquitto_publish_v5");
	if (dir && topic) {
		pthread_mutex_lock(&lock);
		snprintf(name, sizeof(name), "mqtt-%s-%d-%lu.msg", comm,
			 (int)getpid(), seq++);
		pthread_mutex_unlock(&lock);
		if (asprintf(&head, "%s\n", topic) > 0) {
			save(name, head, strlen(head), payload,
			     payloadlen > 0 ? (size_t)payloadlen : 0,
			     O_TRUNC);
			free(head);
		}
	}
	return real(mosq, mid, topic, payloadlen, payload, qos, retain, props);
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	const char *base = to ? strrchr(to, '/') : NULL;
	char name[128], buf[65536];
	ssize_t n;
	int fd;

	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT,
								  "rename");
	base = base ? base + 1 : to;
	for (size_t i = 0; dir && base &&
			   i < sizeof(state_files) / sizeof(state_files[0]);
	     i++) {
		if (strcmp(base, state_files[i]) != 0)
			continue;
		fd = open(from, O_RDONLY | O_CLOEXEC);
		n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
		if (fd >= 0)
			close(fd);
		pthread_mutex_lock(&lock);
		snprintf(name, sizeof(name), "file-%s-%d-%lu", base,
			 (int)getpid(), seq++);
		pthread_mutex_unlock(&lock);
		if (n > 0)
			save(name, buf, (size_t)n, NULL, 0, O_TRUNC);
	}
	return real(from, to);
}

/* SPDX-License-Identifier: MIT */
/* socketpair() refused inside mosquitto_new() for fleet-sim; see
 * sim_nopair.h. */
#include <errno.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sim_nopair.h"

/* Declared by <sys/socket.h>; this definition interposes libc's for
 * the shared libraries the program loads. */
int socketpair(int domain, int type, int protocol, int sv[2]);

static __thread bool refuse;

int socketpair(int domain, int type, int protocol, int sv[2])
{
	if (refuse) {
		errno = EMFILE;
		return -1;
	}
	return (int)syscall(SYS_socketpair, domain, type, protocol, sv);
}

void agent_sim_nopair_hook(bool entering)
{
	refuse = entering;
}

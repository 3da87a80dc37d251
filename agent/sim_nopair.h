/* SPDX-License-Identifier: MIT */
#ifndef AGENT_SIM_NOPAIR_H
#define AGENT_SIM_NOPAIR_H

/*
 * One file descriptor per simulated device (fleet-sim).
 *
 * libmosquitto 2.0 opens a socket pair in every mosquitto_new() so that
 * its own network thread (mosquitto_loop_start) can be woken when
 * another thread publishes.  fleet-sim never uses that thread: its loop
 * polls the MQTT sockets itself (agent_mqtt_service).  The pair would
 * still cost two descriptors per device, three in all, and 10,000
 * devices would need 30,000.  libmosquitto treats a failed socketpair()
 * as harmless (it logs "Unable to open socket pair" and goes on without
 * it; nothing else uses the pair when its loop is not started), so
 * fleet-sim makes it fail: this file defines socketpair(), which the
 * dynamic linker then resolves libmosquitto's calls to (the program's
 * own symbol comes first), and it refuses with EMFILE only while
 * agent_sim_nopair_hook(true) is in effect on the calling thread;
 * otherwise it is the system call.  Only programs that link this file
 * (fleet-sim, the unit tests) carry it; fleet-agent does not.
 */
#include <stdbool.h>

/* The agent_mqtt_set_client_hook for fleet-sim: refuse socketpair() on
 * this thread between true and false. */
void agent_sim_nopair_hook(bool entering);

#endif

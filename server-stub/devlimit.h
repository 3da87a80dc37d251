/* SPDX-License-Identifier: MIT */
#ifndef SRV_DEVLIMIT_H
#define SRV_DEVLIMIT_H

#include <stdbool.h>
#include <stdint.h>

/*
 * Per-device message budget for what devices publish to fleetd (issue 8,
 * item 5; docs/broker.md): a token bucket per device id (@rate messages
 * a second, up to @burst at once).  A message over budget is dropped
 * before it is parsed; a device that has @mute_after messages dropped
 * within one 10 s window is muted for @mute_ms (mqtt.c then denies it
 * every publish at the broker, so its flood stops at the source).
 * Not thread-safe: the MQTT network thread owns it.  Time is passed in,
 * in milliseconds of a monotonic clock.
 */
struct srv_devlimit_cfg {
	uint64_t rate;       /* messages per second, >= 1 */
	uint64_t burst;      /* bucket size, >= 1 */
	uint64_t mute_after; /* drops within a window that mute, >= 1 */
	int64_t mute_ms;     /* how long a mute lasts */
};

/* Defaults (fleetd.conf [mqtt] device_rate, device_burst, device_mute). */
#define SRV_DEVLIMIT_RATE 20
#define SRV_DEVLIMIT_BURST 500
#define SRV_DEVLIMIT_MUTE_AFTER 100
#define SRV_DEVLIMIT_MUTE_S 300
#define SRV_DEVLIMIT_WINDOW_MS 10000
/* Devices tracked at most; messages of further ids are dropped. */
#define SRV_DEVLIMIT_MAX_DEVICES (1u << 20)

enum srv_devlimit_verdict {
	SRV_DEVLIMIT_PASS, /* handle the message */
	SRV_DEVLIMIT_DROP, /* drop it */
	SRV_DEVLIMIT_MUTE, /* drop it and mute the device now (once) */
};

struct srv_devlimit;

/* A new, empty table; @cfg is copied.  Never NULL. */
struct srv_devlimit *srv_devlimit_new(const struct srv_devlimit_cfg *cfg);
void srv_devlimit_free(struct srv_devlimit *l);

/* Account one message of device @id (a valid id) at @now_ms. */
enum srv_devlimit_verdict srv_devlimit_take(struct srv_devlimit *l,
					    const char *id, int64_t now_ms);

/* Messages of @id dropped so far (0 for an unknown id). */
uint64_t srv_devlimit_dropped(const struct srv_devlimit *l, const char *id);

/*
 * End the mutes that are over at @now_ms, calling @fn(id, dropped, arg)
 * for each; @clear_all ends every mute (the broker forgot them: fleetd
 * reconnected and reset the mute role) without calling @fn.  Cheap when
 * nobody is muted.
 */
void srv_devlimit_expire(struct srv_devlimit *l, int64_t now_ms,
			 bool clear_all,
			 void (*fn)(const char *id, uint64_t dropped, void *arg),
			 void *arg);

#endif

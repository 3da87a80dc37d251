/* SPDX-License-Identifier: MIT */
/*
 * libmosquitto, loaded on first use (common/lazylib.h): only `fleetctl
 * diag --direct` talks MQTT, so fleetctl does not link it.  The
 * functions diag_direct.c calls, each forwarding to the loaded library.
 */
#include <mosquitto.h>

#include "diag_direct.h"
#include "lazylib.h"

static struct fl_lazylib libmosquitto =
    FL_LAZYLIB_INIT(FL_SONAME_LIBMOSQUITTO, FL_PACKAGE_LIBMOSQUITTO);
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void lib_init(void)
{
	mosquitto_lib_init();
}

int cli_mosquitto_load(struct fl_error *err)
{
	if (fl_lazylib_load(&libmosquitto, err))
		return FL_ENOTFOUND;
	pthread_once(&init_once, lib_init);
	return 0;
}

FL_LAZY(libmosquitto, int, mosquitto_lib_init, (void), ())
FL_LAZY(libmosquitto, struct mosquitto *, mosquitto_new,
	(const char *id, bool clean, void *obj), (id, clean, obj))
FL_LAZY(libmosquitto, void, mosquitto_destroy, (struct mosquitto * m), (m))
FL_LAZY(libmosquitto, int, mosquitto_int_option,
	(struct mosquitto * m, enum mosq_opt_t o, int v), (m, o, v))
FL_LAZY(libmosquitto, int, mosquitto_void_option,
	(struct mosquitto * m, enum mosq_opt_t o, void *v), (m, o, v))
FL_LAZY(libmosquitto, int, mosquitto_connect_bind_async,
	(struct mosquitto * m, const char *host, int port, int keepalive,
	 const char *bind),
	(m, host, port, keepalive, bind))
FL_LAZY(libmosquitto, int, mosquitto_disconnect_v5,
	(struct mosquitto * m, int reason, const mosquitto_property *p),
	(m, reason, p))
FL_LAZY(libmosquitto, int, mosquitto_subscribe_v5,
	(struct mosquitto * m, int *mid, const char *sub, int qos, int options,
	 const mosquitto_property *p),
	(m, mid, sub, qos, options, p))
FL_LAZY(libmosquitto, int, mosquitto_publish_v5,
	(struct mosquitto * m, int *mid, const char *topic, int len,
	 const void *payload, int qos, bool retain,
	 const mosquitto_property *p),
	(m, mid, topic, len, payload, qos, retain, p))
FL_LAZY(libmosquitto, int, mosquitto_loop,
	(struct mosquitto * m, int timeout, int max_packets),
	(m, timeout, max_packets))
FL_LAZY(libmosquitto, void, mosquitto_connect_v5_callback_set,
	(struct mosquitto * m, void (*cb)(struct mosquitto *, void *, int, int,
					  const mosquitto_property *)),
	(m, cb))
FL_LAZY(libmosquitto, void, mosquitto_subscribe_v5_callback_set,
	(struct mosquitto * m,
	 void (*cb)(struct mosquitto *, void *, int, int, const int *,
		    const mosquitto_property *)),
	(m, cb))
FL_LAZY(libmosquitto, void, mosquitto_message_v5_callback_set,
	(struct mosquitto * m, void (*cb)(struct mosquitto *, void *,
					  const struct mosquitto_message *,
					  const mosquitto_property *)),
	(m, cb))
FL_LAZY(libmosquitto, const char *, mosquitto_strerror, (int e), (e))
FL_LAZY(libmosquitto, const char *, mosquitto_reason_string, (int r), (r))
FL_LAZY(libmosquitto, int, mosquitto_property_add_int32,
	(mosquitto_property * *l, int id, uint32_t v), (l, id, v))
FL_LAZY(libmosquitto, int, mosquitto_property_add_binary,
	(mosquitto_property * *l, int id, const void *v, uint16_t len),
	(l, id, v, len))
FL_LAZY(libmosquitto, int, mosquitto_property_add_string,
	(mosquitto_property * *l, int id, const char *v), (l, id, v))
FL_LAZY(libmosquitto, const mosquitto_property *,
	mosquitto_property_read_binary,
	(const mosquitto_property *l, int id, void **v, uint16_t *len,
	 bool skip_first),
	(l, id, v, len, skip_first))
FL_LAZY(libmosquitto, void, mosquitto_property_free_all,
	(mosquitto_property * *l), (l))

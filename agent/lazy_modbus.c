/* SPDX-License-Identifier: MIT */
/*
 * libmodbus, mapped while the agent has Modbus sources (common/lazylib.h,
 * held libraries): agent/modbus.c holds it from starting its pollers to
 * stopping them, so an agent without a map never maps it.
 */
#include <stddef.h>
#include <stdint.h>

#include <modbus.h>

#include "lazylib.h"
#include "agent_modbus.h"

static struct fl_lazylib libmodbus =
    FL_LAZYLIB_INIT(FL_SONAME_LIBMODBUS, FL_PACKAGE_LIBMODBUS);

int agent_modbus_lib_hold(struct fl_error *err)
{
	return fl_lazylib_hold(&libmodbus, err);
}

void agent_modbus_lib_drop(void)
{
	fl_lazylib_drop(&libmodbus);
}

FL_LAZY_HELD(libmodbus, modbus_t *, modbus_new_tcp_pi,
	     (const char *node, const char *service), (node, service))
FL_LAZY_HELD(libmodbus, modbus_t *, modbus_new_rtu,
	     (const char *device, int baud, char parity, int data_bit,
	      int stop_bit),
	     (device, baud, parity, data_bit, stop_bit))
FL_LAZY_HELD(libmodbus, int, modbus_set_slave, (modbus_t * ctx, int slave),
	     (ctx, slave))
FL_LAZY_HELD(libmodbus, int, modbus_set_response_timeout,
	     (modbus_t * ctx, uint32_t to_sec, uint32_t to_usec),
	     (ctx, to_sec, to_usec))
FL_LAZY_HELD(libmodbus, int, modbus_connect, (modbus_t * ctx), (ctx))
FL_LAZY_HELD(libmodbus, void, modbus_close, (modbus_t * ctx), (ctx))
FL_LAZY_HELD(libmodbus, void, modbus_free, (modbus_t * ctx), (ctx))
FL_LAZY_HELD(libmodbus, const char *, modbus_strerror, (int errnum), (errnum))
FL_LAZY_HELD(libmodbus, int, modbus_read_bits,
	     (modbus_t * ctx, int addr, int nb, uint8_t *dest),
	     (ctx, addr, nb, dest))
FL_LAZY_HELD(libmodbus, int, modbus_read_input_bits,
	     (modbus_t * ctx, int addr, int nb, uint8_t *dest),
	     (ctx, addr, nb, dest))
FL_LAZY_HELD(libmodbus, int, modbus_read_registers,
	     (modbus_t * ctx, int addr, int nb, uint16_t *dest),
	     (ctx, addr, nb, dest))
FL_LAZY_HELD(libmodbus, int, modbus_read_input_registers,
	     (modbus_t * ctx, int addr, int nb, uint16_t *dest),
	     (ctx, addr, nb, dest))
FL_LAZY_HELD(libmodbus, int, modbus_write_bit,
	     (modbus_t * ctx, int coil_addr, int status),
	     (ctx, coil_addr, status))
FL_LAZY_HELD(libmodbus, int, modbus_write_registers,
	     (modbus_t * ctx, int addr, int nb, const uint16_t *data),
	     (ctx, addr, nb, data))

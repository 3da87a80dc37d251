#!/usr/bin/env python3
"""A TCP load balancer for the replica tests (issue 14): listens on
127.0.0.1:PORT and hands each connection to the first backend that
accepts it, in the order given, so a dead replica's clients reach the
next one, as behind a real TCP balancer with health checks.  Prints
"listening" once it accepts connections.

    tcp_failover.py PORT HOST:PORT [HOST:PORT...]
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def handle(client_r, client_w, backends):
    for host, port in backends:
        try:
            r, w = await asyncio.open_connection(host, port)
            break
        except OSError:
            continue
    else:
        client_w.close()
        return
    await asyncio.gather(pipe(client_r, w), pipe(r, client_w))


async def main():
    port = int(sys.argv[1])
    backends = [(a.rsplit(":", 1)[0], int(a.rsplit(":", 1)[1]))
                for a in sys.argv[2:]]
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, backends), "127.0.0.1", port)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if len(sys.argv) < 3:
    sys.exit("usage: tcp_failover.py PORT HOST:PORT [HOST:PORT...]")
asyncio.run(main())

#!/usr/bin/env python3
"""A TLS front for fleetd that loses answers (issue 14, retry-safe
requests): listens on 127.0.0.1:PORT with fleetd's own certificate, takes
one HTTP request per connection, hands it to fleetd and reads the whole
answer; for the first try of the first LOSE requests that change state
(not GET/HEAD; a try is the first with its Idempotency-Key or, without
one, its method and path) it then closes the client's connection without
sending that answer, as a load balancer or a network cut after the server
did the work would.
Every request is logged to LOG: "METHOD PATH KEY lost|sent STATUS".
Prints "listening" once it accepts connections.

    tls_lose_reply.py PORT BACKEND_PORT CERT KEY LOSE LOG
"""
import asyncio
import ssl
import sys

MAX_HEAD = 64 * 1024
MAX_BODY = 8 * 1024 * 1024


async def read_request(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    if len(head) > MAX_HEAD:
        raise ValueError("header too large")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    if n > MAX_BODY:
        raise ValueError("body too large")
    body = await reader.readexactly(n) if n else b""
    return method, path, headers, lines, body


async def handle(cr, cw, state):
    try:
        method, path, headers, lines, body = await asyncio.wait_for(
            read_request(cr), 20)
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        br, bw = await asyncio.open_connection("127.0.0.1", state["backend"],
                                               ssl=ctx)
        kept = [l for l in lines[1:] if l and
                not l.lower().startswith("connection:")]
        bw.write(("\r\n".join([lines[0]] + kept + ["Connection: close"])
                  + "\r\n\r\n").encode("latin-1") + body)
        await bw.drain()
        answer = await asyncio.wait_for(br.read(-1), 60)
        bw.close()
        status = answer.split(b" ", 2)[1].decode() if answer else "-"
        first = headers.get("idempotency-key", method + " " + path)
        lose = False
        if method not in ("GET", "HEAD") and first not in state["seen"]:
            lose = len(state["seen"]) < state["lose"]
            state["seen"].add(first)
        if not lose:
            cw.write(answer)
            await cw.drain()
        with open(state["log"], "a") as f:
            f.write("%s %s %s %s %s\n" % (
                method, path, headers.get("idempotency-key", "-"),
                "lost" if lose else "sent", status))
    except (OSError, ValueError, asyncio.IncompleteReadError,
            asyncio.TimeoutError, asyncio.LimitOverrunError):
        pass
    finally:
        cw.close()


async def main():
    port, backend, cert, key, lose, log = sys.argv[1:7]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    state = {"backend": int(backend), "lose": int(lose), "log": log,
             "seen": set()}
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, state), "127.0.0.1", int(port), ssl=ctx,
        limit=MAX_HEAD)
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


if len(sys.argv) != 7:
    sys.exit("usage: tls_lose_reply.py PORT BACKEND_PORT CERT KEY LOSE LOG")
asyncio.run(main())

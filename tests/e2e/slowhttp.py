#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Slow HTTPS clients for the e2e tests (python3 standard library only).

slowhttp.py request URL PATH --ca CA [--cert C --key K] [--header H]...
        [--method M] [--body-file F] --ready-file R --go-file G
    Send the request line, the headers and the first half of the body,
    create R, wait (at most 60 s) until G exists, send the rest and print
    "STATUS BODY" of the reply on one line.

slowhttp.py hold URL --ca CA --count N [--source ADDR] --status-file S
        [--max-time SECS] [--body]
    Open N TLS connections one after the other, each sending an
    unfinished request (with --body: complete headers announcing a body,
    which then trickles); write "accepted=A refused=R" to S once all are
    tried; then trickle one header byte every 0.5 s on each open
    connection until the server has closed them all (or --max-time runs
    out) and print one JSON line: accepted, refused, closed (by the
    server), alive, max_open_s (longest a connection stayed open).
"""
import argparse
import json
import os
import select
import socket
import ssl
import sys
import time
import urllib.parse


def tls_context(args):
    ctx = ssl.create_default_context(cafile=args.ca)
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    return ctx


def connect(args, host, port, source=None, timeout=10):
    raw = socket.create_connection((host, port), timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        s = tls_context(args).wrap_socket(raw, server_hostname=host)
    except Exception:
        raw.close()
        raise
    return s


def read_reply(s):
    data = b""
    s.settimeout(30)
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLError, OSError):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = None
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v.strip())
            if length is not None and len(body) >= length:
                break
    if not data:
        return "000 connection closed without a reply"
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    return status + " " + body.decode(errors="replace").replace("\n", " ")


def cmd_request(args):
    u = urllib.parse.urlsplit(args.url)
    body = open(args.body_file, "rb").read() if args.body_file else b""
    s = connect(args, u.hostname, u.port)
    head = "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n" % (
        args.method, args.path, u.netloc, len(body))
    head += "Content-Type: application/json\r\n"
    for h in args.header:
        head += h + "\r\n"
    half = len(body) // 2
    s.sendall(head.encode() + b"\r\n" + body[:half])
    open(args.ready_file, "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(args.go_file):
        if time.monotonic() > deadline:
            print("000 go file never appeared")
            return 1
        time.sleep(0.05)
    try:
        s.sendall(body[half:])
    except OSError as e:
        print("000 send failed: %s" % e)
        return 0
    print(read_reply(s))
    return 0


def server_closed(s):
    r, _, _ = select.select([s], [], [], 0)
    if not r:
        return False
    try:
        return s.recv(4096) == b""
    except ssl.SSLWantReadError:
        return False
    except (ssl.SSLError, OSError):
        return True


def cmd_hold(args):
    u = urllib.parse.urlsplit(args.url)
    conns, refused = [], 0
    t0 = time.monotonic()
    for _ in range(args.count):
        try:
            s = connect(args, u.hostname, u.port, args.source, timeout=5)
            s.sendall(b"POST /api/v1/enroll HTTP/1.1\r\nHost: x\r\n" +
                      (b"Content-Length: 60000\r\n\r\n" if args.body else b""))
            s.setblocking(False)
            conns.append([s, time.monotonic(), None])
        except (ssl.SSLError, OSError):
            refused += 1
    with open(args.status_file + ".tmp", "w") as f:
        f.write("accepted=%d refused=%d open_s=%.1f\n" % (
            len(conns), refused, time.monotonic() - t0))
    os.rename(args.status_file + ".tmp", args.status_file)
    end = time.monotonic() + args.max_time
    while time.monotonic() < end and any(c[2] is None for c in conns):
        for c in conns:
            if c[2] is not None:
                continue
            try:
                if server_closed(c[0]):
                    c[2] = time.monotonic()
                    continue
                c[0].send(b"X")
            except ssl.SSLWantWriteError:
                pass
            except (ssl.SSLError, OSError):
                c[2] = time.monotonic()
        time.sleep(0.5)
    now = time.monotonic()
    closed = [c for c in conns if c[2] is not None]
    print(json.dumps({
        "accepted": len(conns), "refused": refused, "closed": len(closed),
        "alive": len(conns) - len(closed),
        "max_open_s": round(max([(c[2] or now) - c[1] for c in conns],
                                default=0), 1),
        "min_open_s": round(min([(c[2] or now) - c[1] for c in conns],
                                default=0), 1)}))
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("request")
    r.add_argument("url")
    r.add_argument("path")
    r.add_argument("--method", default="POST")
    r.add_argument("--body-file")
    r.add_argument("--header", action="append", default=[])
    r.add_argument("--ready-file", required=True)
    r.add_argument("--go-file", required=True)
    h = sub.add_parser("hold")
    h.add_argument("url")
    h.add_argument("--count", type=int, required=True)
    h.add_argument("--source")
    h.add_argument("--status-file", required=True)
    h.add_argument("--max-time", type=float, default=30)
    h.add_argument("--body", action="store_true")
    for q in (r, h):
        q.add_argument("--ca", required=True)
        q.add_argument("--cert")
        q.add_argument("--key")
    args = p.parse_args()
    return cmd_request(args) if args.cmd == "request" else cmd_hold(args)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""An MQTT 3.1.1 client that finishes its TLS handshake, then waits for a
file to appear before it sends CONNECT (issue 8: a certificate revoked in
between must not get in).  Then SUBSCRIBE SUB, PUBLISH PUB (QoS 0) and print
one line per event until the broker closes or LISTEN seconds pass:
  connack RC | suback RC | msg TOPIC PAYLOAD | closed | timeout

usage: mqtt_late.py HOST PORT CA CERT KEY ID READY GO SUB PUB PAYLOAD LISTEN
"""
import os, socket, ssl, struct, sys, time


def enc_len(n):
    out = b""
    while True:
        b, n = n % 128, n // 128
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out


def s(x):
    x = x.encode()
    return struct.pack("!H", len(x)) + x


def pkt(t, body):
    return bytes([t]) + enc_len(len(body)) + body


def read_pkt(sock):
    h = sock.recv(1)
    if not h:
        return None, None
    n, mul = 0, 1
    while True:
        b = sock.recv(1)
        if not b:
            return None, None
        n += (b[0] & 0x7F) * mul
        mul *= 128
        if not b[0] & 0x80:
            break
    body = b""
    while len(body) < n:
        c = sock.recv(n - len(body))
        if not c:
            return None, None
        body += c
    return h[0], body


def main():
    (host, port, ca, cert, key, cid, ready, go, sub, pub, payload,
     listen) = sys.argv[1:13]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2  # no post-handshake tickets
    raw = socket.create_connection((host, int(port)), timeout=10)
    sock = ctx.wrap_socket(raw)
    open(ready, "w").close()
    deadline = time.time() + 120
    while not os.path.exists(go):
        if time.time() > deadline:
            print("no go", flush=True)
            return 1
        time.sleep(0.05)
    sock.sendall(pkt(0x10, s("MQTT") + bytes([4, 0x02]) + struct.pack("!H", 60)
                     + s(cid)))
    sock.sendall(pkt(0x82, struct.pack("!H", 1) + s(sub) + b"\x00"))
    sock.sendall(pkt(0x30, s(pub) + payload.encode()))
    sock.settimeout(float(listen))
    end = time.time() + float(listen)
    try:
        while time.time() < end:
            t, body = read_pkt(sock)
            if t is None:
                print("closed", flush=True)
                return 0
            if t >> 4 == 2:
                print("connack %d" % body[1], flush=True)
            elif t >> 4 == 9:
                print("suback %d" % body[2], flush=True)
            elif t >> 4 == 3:
                n = struct.unpack("!H", body[:2])[0]
                print("msg %s %s" % (body[2:2 + n].decode(),
                                     body[2 + n:].decode(errors="replace")),
                      flush=True)
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    print("timeout" if time.time() >= end else "closed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

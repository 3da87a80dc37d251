#!/usr/bin/env python3
"""Run one shell command in the VM over its command channel (the second
serial port, a unix socket on the host; tests/vm/mkimage.sh's init reads
it).  Prints the command's output and exits with its status; exits 124
when no answer came within the bound.

    vmsh.py SOCKET TIMEOUT_S COMMAND
"""
import re
import socket
import sys
import time

path, limit, cmd = sys.argv[1], float(sys.argv[2]), sys.argv[3]
end = time.monotonic() + limit
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(limit)
s.connect(path)
s.sendall(cmd.encode() + b"\n")
buf = b""
while True:
    m = re.search(rb"@@rc=(\d+)\r?\n", buf)
    if m:
        sys.stdout.write(buf[: m.start()].decode(errors="replace"))
        sys.exit(int(m.group(1)))
    left = end - time.monotonic()
    if left <= 0:
        break
    s.settimeout(left)
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    buf += chunk
sys.stdout.write(buf.decode(errors="replace"))
sys.exit(124)

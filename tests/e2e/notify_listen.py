#!/usr/bin/env python3
"""notify_listen.py PATH: stand in for systemd's notify socket.

Binds an AF_UNIX datagram socket at PATH (sd_notify(3)) and prints one
line per datagram, "TIME PID MESSAGE", with the sender's pid as the
kernel reports it (SCM_CREDENTIALS), as systemd checks NotifyAccess=main.
"""
import socket
import struct
import sys
import time

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
s.bind(sys.argv[1])
creds = struct.calcsize("3i")
while True:
    msg, anc, _, _ = s.recvmsg(4096, socket.CMSG_SPACE(creds))
    pid = "?"
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("3i", data[:creds])[0]
    text = msg.decode(errors="replace").replace("\n", " ")
    print(f"{time.time():.3f} {pid} {text}", flush=True)

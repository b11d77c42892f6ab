#!/usr/bin/python3
"""swap_poll.py PORT OLD_VERSION PID — sends SIGHUP to PID, then opens 16 fresh
connections to PORT (spread over the workers by SO_REUSEPORT), each asking
`ping`, until none answers OLD_VERSION; prints the milliseconds from the
signal. Started before the signal, so its own start-up is not counted."""
import os
import signal
import socket
import sys
import time

import msgpack

port, old, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
t0 = time.monotonic()
os.kill(pid, signal.SIGHUP)
deadline = t0 + 30
while time.monotonic() < deadline:
    seen = set()
    for _ in range(16):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(msgpack.packb([0, 1, "ping", []]))
        u = msgpack.Unpacker(raw=False)
        msg = None
        while msg is None:
            data = s.recv(4096)
            if not data:
                break
            u.feed(data)
            msg = next(iter(u), None)
        s.close()
        if msg:
            seen.add(msg[3]["version"])
    if seen and old not in seen:
        break
    time.sleep(0.005)
print(int((time.monotonic() - t0) * 1000))

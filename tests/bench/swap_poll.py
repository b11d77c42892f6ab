#!/usr/bin/python3
"""swap_poll.py PORT OLD_VERSION PID — sends SIGHUP to PID, then, in rounds,
opens 16 fresh connections to PORT at once (spread over the workers by
SO_REUSEPORT), asks `ping` on each and reads the 16 answers, until a round
in which none answers OLD_VERSION; prints the milliseconds from the signal
to the end of that round. Started before the signal, so its own start-up is
not counted. The 16 requests of a round are in flight together, so a round
lasts about one request's latency (asked one after another, as before, a
round took 16 of them: 20-60 ms more per swap on a loaded machine)."""
import os
import signal
import socket
import sys
import time

import msgpack

port, old, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
PING = msgpack.packb([0, 1, "ping", []])


def round_versions():
    socks = []
    try:
        for _ in range(16):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(PING)
            socks.append(s)
        seen = set()
        for s in socks:
            u = msgpack.Unpacker(raw=False)
            msg = None
            while msg is None:
                data = s.recv(4096)
                if not data:
                    break
                u.feed(data)
                msg = next(iter(u), None)
            if msg:
                seen.add(msg[3]["version"])
        return seen
    finally:
        for s in socks:
            s.close()


t0 = time.monotonic()
os.kill(pid, signal.SIGHUP)
deadline = t0 + 30
while time.monotonic() < deadline:
    seen = round_versions()
    if seen and old not in seen:
        break
    time.sleep(0.001)
print(int((time.monotonic() - t0) * 1000))

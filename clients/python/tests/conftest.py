"""The real daemon ($VARIANTD_BUILD/variantd, default build/) on free loopback
ports, stopped by its pid after each test; a non-zero exit fails the test."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))
BUILD = Path(os.environ.get("VARIANTD_BUILD", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD

SEGMENTS = [
    {"id": "gold", "match": {"attr": "attr.tier", "op": "eq", "value": "gold"}},
    {"id": "everyone", "match": {"all": []}},
]
CONTENT = [
    {"slot": "home.hero", "rules": [{"segment": "gold", "variant": "hero-gold"}],
     "default": "hero-generic", "variants": {"hero-gold": {"t": "gold"}, "hero-generic": {"t": "generic"}}},
    {"slot": "ab", "rules": [{"segment": "everyone", "split": [
        {"variant": "ab-a", "weight": 50}, {"variant": "ab-b", "weight": 50}]}],
     "default": "ab-a", "variants": {"ab-a": None, "ab-b": None}},
]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Daemon:
    def __init__(self, tmp, port=None, stats_port=None, args=()):
        self.port = port or free_port()
        self.stats_port = stats_port or free_port()
        self.log_path = tmp / f"variantd-{self.port}.log"
        self.log = open(self.log_path, "ab")
        start = self.log.tell()   # a restart on the same port appends to the same log
        self.proc = subprocess.Popen(
            [str(BUILD / "variantd"), "--listen", f"127.0.0.1:{self.port}",
             "--stats-listen", f"127.0.0.1:{self.stats_port}",
             "--segments", str(tmp / "segments"), "--content-map", str(tmp / "content-map"), *args],
            stdout=self.log, stderr=subprocess.STDOUT)
        # The decision port opens before the stats port is bound and before
        # SIGTERM is handled: the start-up lines say when both are done.
        deadline = time.time() + 15
        while True:
            assert self.proc.poll() is None, self.log_path.read_text()
            log = self.log_path.read_bytes()[start:].decode(errors="replace")
            if "(MessagePack-RPC: " in log and "stats port " in log:
                break
            assert time.time() < deadline, "variantd did not listen:\n" + log
            time.sleep(0.02)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.stats_port}/metrics", timeout=5) as r:
            out = {}
            for line in r.read().decode().splitlines():
                if line and not line.startswith("#"):
                    k, _, v = line.rpartition(" ")
                    out[k] = float(v)
            return out


@pytest.fixture
def defs(tmp_path):
    for name, data in (("segments", SEGMENTS), ("content-map", CONTENT)):
        (tmp_path / name).mkdir()
        (tmp_path / name / "all.json").write_text(json.dumps(data))
    return tmp_path


@pytest.fixture
def start_daemon(defs):
    started = []

    def start(**kw):
        d = Daemon(defs, **kw)
        started.append(d)
        return d

    yield start
    for d in started:
        rc = d.stop()
        assert rc == 0, f"variantd exited with {rc}:\n{d.log_path.read_text()[-3000:]}"

"""Integration harness: starts the real variantd on a free loopback port and
talks to it with Debian's python3-msgpack (a MessagePack implementation that
is not ours). Every daemon started here is stopped by its pid at the end of
its test, and a non-zero exit (an ASan/LSan report in the sanitizer build) fails
that test."""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import msgpack
import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / os.environ.get("VARIANTD_BUILD", "build")
VARIANTD = BUILD / "variantd"
VARIANTCTL = BUILD / "variantctl"
DEMO_DB = BUILD / "demo-city.mmdb"
SHARED = Path(os.environ.get("VD_SHARED_DIR", ROOT.parent / "shared"))


_ports_given = set()


def free_port():
    """A loopback port nothing listens on, never one handed out before in this
    run: the kernel may offer a just-closed port again, and a daemon given the
    same port twice now refuses to start rather than share it."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _ports_given:
            _ports_given.add(port)
            return port


class Daemon:
    def __init__(self, tmp_path, args=(), segments=None, content_map=None, geo=True,
                 http=False, stats=False, env=None):
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        self.env = env or {}
        self.http_port = free_port() if http else None
        self.stats_port = free_port() if stats else None
        self.log_path = tmp_path / f"variantd-{self.port}.log"
        self.args = [str(VARIANTD), "--listen", self.addr,
                     "--segments", str(segments or ROOT / "segments"),
                     "--content-map", str(content_map or ROOT / "content-map")]
        if geo:
            self.args += ["--geoip-db", str(DEMO_DB)]
        if http:
            self.args += ["--http-listen", f"127.0.0.1:{self.http_port}"]
        if stats:
            self.args += ["--stats-listen", f"127.0.0.1:{self.stats_port}"]
        self.args += list(args)
        self.proc = None

    def start(self, expect_ready=True, timeout=15):
        self.log = open(self.log_path, "wb")
        env = dict(os.environ)
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.update(self.env)
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     cwd=ROOT, env=env)
        if not expect_ready:
            return self
        deadline = time.time() + timeout
        listening = False
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"variantd exited with {self.proc.returncode}:\n{self.read_log()}")
            if not listening:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                    listening = True
                except OSError:
                    time.sleep(0.05)
                    continue
            # The decision port opens before the daemon handles SIGTERM and
            # before the stats port is bound: its start-up lines say when both
            # are done (a probe connection would count in the port's stats).
            log = self.read_log()
            if "(MessagePack-RPC: " in log and (not self.stats_port or "stats port " in log):
                return self
            time.sleep(0.02)
        raise AssertionError(f"variantd did not listen within {timeout}s:\n{self.read_log()}")

    def read_log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("variantd did not stop within 15 s of SIGTERM")
        finally:
            self.log.close()

    def client(self, **kw):
        return Client(self.port, **kw)

    def http(self, method, path, body=None, headers=None, port=None, timeout=10):
        """One HTTP request on a fresh connection: (status, headers dict, body bytes)."""
        return http_request(port or self.http_port, method, path, body, headers, timeout)

    def stats_get(self, path):
        return http_request(self.stats_port, "GET", path)

    def metrics(self):
        status, _, body = self.stats_get("/metrics")
        assert status == 200
        return parse_metrics(body.decode())


def http_request(port, method, path, body=None, headers=None, timeout=10):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            import json
            body = json.dumps(body)
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def parse_metrics(text):
    """Prometheus text -> {'name{labels}': float}; HELP/TYPE lines under '#'."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        out[key] = float(val)
    return out


class Client:
    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.packer = msgpack.Packer(use_bin_type=True)
        self.unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        self.msgid = 0

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, obj):
        self.sock.sendall(self.packer.pack(obj))

    def request(self, method, params, msgid=None):
        if msgid is None:
            self.msgid += 1
            msgid = self.msgid
        self.send([0, msgid, method, params])
        return msgid

    def recv(self):
        """Next reply, or None if the daemon closed the connection."""
        while True:
            for obj in self.unpacker:
                return obj
            try:
                data = self.sock.recv(1 << 16)
            except ConnectionResetError:
                return None
            if not data:
                return None
            self.unpacker.feed(data)

    def call(self, method, params):
        msgid = self.request(method, params)
        reply = self.recv()
        assert reply is not None, "connection closed"
        assert reply[0] == 1 and reply[1] == msgid, reply
        return reply[2], reply[3]

    def decide(self, **req):
        err, res = self.call("decide", [req])
        assert err is None, err
        return res

    def closed(self, timeout=5):
        """True once the daemon has closed this connection."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(1 << 16)
                if not data:
                    return True
                self.unpacker.feed(data)
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


class RawHttp:
    """A raw HTTP connection: send any bytes, read responses one by one."""

    def __init__(self, port, timeout=10):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def _fill(self):
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        self.buf += data
        return bool(data)

    def response(self, timeout=10):
        """(status, headers, body) of the next response, or None if the
        connection closed first."""
        self.sock.settimeout(timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                return None
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        n = int(headers.get("content-length", "0"))
        self.buf = rest
        while len(self.buf) < n:
            if not self._fill():
                break
        body, self.buf = self.buf[:n], self.buf[n:]
        return status, headers, body

    def closed(self, timeout=5):
        """True once the daemon has closed the connection (after any data)."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


@pytest.fixture
def start_daemon(tmp_path):
    started = []

    def _start(*args, expect_ready=True, **kw):
        d = Daemon(tmp_path, args=args, **kw)
        started.append(d)
        return d.start(expect_ready=expect_ready)

    yield _start
    for d in started:
        rc = d.stop()
        assert rc == 0, f"variantd exited with {rc}:\n{d.read_log()[-4000:]}"


@pytest.fixture
def daemon(start_daemon):
    return start_daemon()


def write_defs(tmp_path, segments, content_map, name="defs"):
    """Writes a definition set (lists of objects) as two folders."""
    import json
    base = tmp_path / name
    (base / "segments").mkdir(parents=True, exist_ok=True)
    (base / "content-map").mkdir(parents=True, exist_ok=True)
    (base / "segments" / "all.json").write_text(json.dumps(segments, indent=1))
    (base / "content-map" / "all.json").write_text(json.dumps(content_map, indent=1))
    return base / "segments", base / "content-map"


# ---- Redis mode (tests/integration/test_redis.py) ----

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    """A throwaway redis-server on a free loopback port, no persistence, in
    tmp_path. stop()/kill()/start() keep the port so daemons can reconnect."""

    def __init__(self, tmp_path, port=None, extra=(), password=None):
        self.extra = list(extra)
        self.password = password
        self.port = port or free_port()
        self.dir = tmp_path / f"redis-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None
        self.log = None

    def start(self, timeout=10):
        import redis
        self.log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", str(self.dir), *self.extra],
            stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                if redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5,
                               password=self.password).ping():
                    return self
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def client(self, raw=False):
        """raw: values as bytes (profile scores are binary, docs/PROFILES.md)."""
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=not raw,
                           socket_timeout=5, password=self.password)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def _end(self, sig):
        if not self.running():
            return
        self.proc.send_signal(signal.SIGCONT)
        self.proc.send_signal(sig)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def stop(self):
        self._end(signal.SIGTERM)

    def kill(self):
        self._end(signal.SIGKILL)

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def redis_server(tmp_path):
    servers = []

    def _start(port=None, **kw):
        r = RedisServer(tmp_path, port=port, **kw).start()
        servers.append(r)
        return r

    yield _start
    for r in servers:
        r.stop()


def variantctl(*args, check=True, timeout=30):
    """Runs build/variantctl; returns (rc, stdout, stderr)."""
    p = subprocess.run([str(VARIANTCTL), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, cwd=ROOT)
    if check:
        assert p.returncode == 0, f"variantctl {args}: rc={p.returncode}\n{p.stdout}\n{p.stderr}"
    return p.returncode, p.stdout, p.stderr


def publish(redis_url, segments, content_map, *extra):
    """variantctl publish; returns the new version."""
    _, out, _ = variantctl("publish", segments, content_map, "--redis", redis_url, *extra)
    line = [l for l in out.splitlines() if l.startswith("published ")]
    assert line, out
    return line[0].split()[1]


def wait_for(pred, timeout=5, step=0.01):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()

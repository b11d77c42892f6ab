"""systemd: the unit verifies and is hardened, the example config covers every
setting, `make install` lays out the files, and sd_notify messages (READY,
STATUS, WATCHDOG, RELOADING, STOPPING) arrive on a NOTIFY_SOCKET we listen on."""
import os
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from conftest import BUILD, ROOT, VARIANTD, write_defs

UNIT = ROOT / "systemd" / "variantd.service"
CONF = ROOT / "systemd" / "variantd.conf"


def local_unit(tmp_path):
    """The unit with ExecStart pointing at the binary under test."""
    text = UNIT.read_text().replace("/usr/local/bin/variantd", str(VARIANTD))
    p = tmp_path / "variantd.service"
    p.write_text(text)
    return p


def need_systemd_analyze():
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze missing (Debian package systemd: scripts/deps.sh test)")


def test_unit_verifies(tmp_path):
    need_systemd_analyze()
    r = subprocess.run(["systemd-analyze", "verify", "--man=no", str(local_unit(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and re.search(r"bus|not been booted|Failed to (connect|initialize)", r.stderr):
        pytest.skip("systemd-analyze verify cannot run in this container: " + r.stderr[-300:])
    assert r.returncode == 0, r.stderr


def test_unit_is_hardened(tmp_path):
    unit = UNIT.read_text()
    for line in ["Type=notify", "ExecReload=/bin/kill -HUP $MAINPID", "DynamicUser=yes",
                 "ProtectSystem=strict", "StateDirectory=variantd", "NoNewPrivileges=yes",
                 "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
                 "SystemCallFilter=@system-service", "CapabilityBoundingSet=\n",
                 "MemoryDenyWriteExecute=yes", "WatchdogSec="]:
        assert line in unit, line
    need_systemd_analyze()
    r = subprocess.run(["systemd-analyze", "security", "--offline=true", str(local_unit(tmp_path))],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0 and "Overall exposure" not in r.stdout:
        pytest.skip("systemd-analyze security --offline cannot run here: " + r.stderr[-300:])
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    assert m, r.stdout[-500:]
    print(f"systemd-analyze security exposure: {m.group(1)}")
    assert float(m.group(1)) <= 2.0


def test_example_config_has_every_setting_and_loads(tmp_path):
    help_text = subprocess.run([str(VARIANTD), "--help"], capture_output=True, text=True).stdout
    settings = re.findall(r"^  --([a-z-]+) ", help_text, re.M)
    assert len(settings) >= 20
    conf = CONF.read_text()
    for s in settings:
        m = re.search(rf"^{re.escape(s)}(\s.*)?$", conf, re.M)
        assert m, f"setting {s} missing from systemd/variantd.conf"
        # and a comment right above it
        before = conf[:m.start()].rstrip("\n").splitlines()[-1]
        assert before.startswith("#"), f"setting {s} has no comment"
    seg, cm = write_defs(tmp_path, [{"id": "everyone", "match": {"all": []}}],
                         [{"slot": "s", "rules": [], "default": "a", "variants": {"a": None}}])
    r = subprocess.run([str(VARIANTD), "-c", str(CONF), "--segments", str(seg), "--content-map", str(cm),
                        "--check"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_make_install_honours_prefix_and_destdir(tmp_path):
    dest = tmp_path / "root"
    env = dict(os.environ)
    args = ["make", "-s", "-C", str(ROOT), "install", f"DESTDIR={dest}", "PREFIX=/usr"]
    if BUILD.name == "build-asan":
        args.append("SANITIZE=1")
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    assert os.access(dest / "usr/bin/variantd", os.X_OK)
    assert os.access(dest / "usr/bin/variantctl", os.X_OK)
    unit = (dest / "usr/lib/systemd/system/variantd.service").read_text()
    assert "ExecStart=/usr/bin/variantd -c /etc/variantd/variantd.conf" in unit
    assert "/usr/local" not in unit
    assert (dest / "etc/variantd/variantd.conf").read_text() == CONF.read_text()
    assert (dest / "usr/share/doc/variantd/OPERATIONS.md").exists()
    assert (dest / "usr/share/doc/variantd/nginx-auth-request.conf").exists()
    # An existing config is never overwritten.
    (dest / "etc/variantd/variantd.conf").write_text("listen 127.0.0.1:1\n")
    r = subprocess.run(args, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0
    assert (dest / "etc/variantd/variantd.conf").read_text() == "listen 127.0.0.1:1\n"


class NotifySocket:
    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, pred, timeout=10):
        """Collects datagrams until one satisfies pred; returns it."""
        deadline = time.time() + timeout
        for m in self.messages:
            if pred(m):
                return m
        while time.time() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.time()))
            try:
                m = self.sock.recv(4096).decode()
            except socket.timeout:
                break
            self.messages.append(m)
            if pred(m):
                return m
        raise AssertionError(f"no matching sd_notify message in {self.messages}")

    def close(self):
        self.sock.close()


def test_sd_notify_ready_status_watchdog_reload_stopping(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, [{"id": "everyone", "match": {"all": []}}],
                         [{"slot": "s", "rules": [], "default": "a", "variants": {"a": None}}])
    ns = NotifySocket(tmp_path / "notify.sock")
    try:
        d = start_daemon(segments=seg, content_map=cm, stats=True, expect_ready=False,
                         env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "400000"})
        ready = ns.wait_for(lambda m: "READY=1" in m)
        # Ready means served: the ruleset is named, and every port answers now.
        assert re.search(r"STATUS=serving ruleset f-[0-9a-f]+ from files", ready), ready
        version = re.search(r"ruleset (f-[0-9a-f]+)", ready).group(1)
        st, _, body = d.stats_get("/readyz")
        assert st == 200
        assert d.client().call("ping", [])[1]["version"] == version
        # Keep-alives every WATCHDOG_USEC/2 from the event loop.
        t0 = time.time()
        for _ in range(3):
            ns.wait_for(lambda m: m == "WATCHDOG=1", timeout=2)
            ns.messages.remove("WATCHDOG=1")
        assert time.time() - t0 < 2
        # Reload: RELOADING=1, then READY=1 with the new status.
        (seg / "more.json").write_text('{"id": "x", "match": {"all": []}}')
        d.signal(signal.SIGHUP)
        ns.wait_for(lambda m: m.startswith("RELOADING=1"))
        again = ns.wait_for(lambda m: "READY=1" in m and "reloads 2" in m)
        assert version not in again
        d.signal(signal.SIGTERM)
        stopping = ns.wait_for(lambda m: "STOPPING=1" in m)
        assert "STATUS=draining" in stopping
        assert d.proc.wait(10) == 0
    finally:
        ns.close()


def test_no_ready_when_definitions_are_invalid(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, [{"id": "a", "match": {"attr": "nope.attr", "op": "eq", "value": 1}}],
                         [{"slot": "s", "rules": [], "default": "a", "variants": {"a": None}}])
    ns = NotifySocket(tmp_path / "notify.sock")
    try:
        env = dict(os.environ, NOTIFY_SOCKET=ns.path)
        r = subprocess.run([str(VARIANTD), "--listen", "127.0.0.1:0", "--segments", str(seg),
                            "--content-map", str(cm)], capture_output=True, text=True, env=env,
                           timeout=30)
        assert r.returncode == 1
        ns.sock.settimeout(0.3)
        msgs = []
        try:
            while True:
                msgs.append(ns.sock.recv(4096).decode())
        except socket.timeout:
            pass
        assert not any("READY=1" in m for m in msgs), msgs
    finally:
        ns.close()


def _thread_id(pid, name, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for tid in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{tid}/comm") as f:
                    if f.read().strip() == name:
                        return int(tid)
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no thread named {name} in {pid}")


class StoppedThread:
    """Stops one thread of another process (ptrace SEIZE + INTERRUPT stop only
    that thread; SIGSTOP would stop them all) until resume()."""
    PTRACE_DETACH, PTRACE_SEIZE, PTRACE_INTERRUPT = 17, 0x4206, 0x4207

    def __init__(self, tid):
        import ctypes
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.tid = tid
        if self.libc.ptrace(self.PTRACE_SEIZE, tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "ptrace(SEIZE)")
        if self.libc.ptrace(self.PTRACE_INTERRUPT, tid, None, None) != 0:
            raise OSError(ctypes.get_errno(), "ptrace(INTERRUPT)")
        os.waitpid(tid, 0x40000000)   # __WALL: the thread is now in a ptrace stop

    def resume(self):
        self.libc.ptrace(self.PTRACE_DETACH, self.tid, None, None)


def test_a_stuck_worker_withholds_the_watchdog_keep_alive(tmp_path, start_daemon):
    """The keep-alive is sent from the control loop only while every decision
    worker's loop still turns, so systemd restarts a daemon with a stuck
    worker; when the worker runs again the keep-alives resume."""
    seg, cm = write_defs(tmp_path, [{"id": "everyone", "match": {"all": []}}],
                         [{"slot": "s", "rules": [], "default": "a", "variants": {"a": None}}])
    ns = NotifySocket(tmp_path / "notify.sock")
    stopped = None
    try:
        d = start_daemon("--workers", "2", segments=seg, content_map=cm, expect_ready=False,
                         env={"NOTIFY_SOCKET": ns.path, "WATCHDOG_USEC": "1000000"})
        ns.wait_for(lambda m: "READY=1" in m)
        ns.wait_for(lambda m: m == "WATCHDOG=1", timeout=3)
        tid = _thread_id(d.proc.pid, "vd-worker-1")
        try:
            stopped = StoppedThread(tid)
        except OSError as e:
            pytest.skip(f"cannot ptrace a thread here: {e}")
        # Stall threshold: 3 s (WatchdogSec/2 = 0.5 s is shorter).
        deadline = time.time() + 8
        while "worker 1 has not run its event loop" not in d.read_log():
            assert time.time() < deadline, d.read_log()
            time.sleep(0.1)
        def drain():
            ns.sock.settimeout(0.01)
            while True:
                try:
                    ns.messages.append(ns.sock.recv(4096).decode())
                except socket.timeout:
                    return
        drain()               # keep-alives sent before the stall was noticed
        ns.messages.clear()
        time.sleep(1.5)       # three keep-alive periods
        drain()
        assert "WATCHDOG=1" not in ns.messages, ns.messages
        stopped.resume()
        stopped = None
        ns.wait_for(lambda m: m == "WATCHDOG=1", timeout=4)
        assert "watchdog keep-alives resumed" in d.read_log()
        # Both workers answer again.
        for _ in range(4):
            assert d.client().call("ping", [])[1]["ready"] is True
    finally:
        if stopped:
            stopped.resume()
        ns.close()

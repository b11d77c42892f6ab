"""Listening ports: every worker binds with SO_REUSEPORT, so the daemon
itself must make sure a port is not already taken (by another variantd or by
one of its own other ports) and must give all workers one concrete port when
asked for port 0."""
import re
import subprocess
import time

from conftest import ROOT, VARIANTD, free_port


def run_variantd(*args):
    return subprocess.run([str(VARIANTD), "--segments", str(ROOT / "segments"),
                           "--content-map", str(ROOT / "content-map"), *args],
                          capture_output=True, text=True, timeout=30)


def listeners(port):
    """Number of listening sockets on 127.0.0.1:port (from /proc/net/tcp)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and local == f"0100007F:{port:04X}":
                n += 1
    return n


def test_a_second_daemon_on_a_taken_port_is_refused_and_the_first_keeps_serving(start_daemon):
    daemon = start_daemon("--workers", "2")
    for args in (["--listen", daemon.addr],
                 ["--listen", f"0.0.0.0:{daemon.port}"],
                 ["--listen", f"127.0.0.1:{free_port()}", "--http-listen", daemon.addr]):
        r = run_variantd(*args)
        assert r.returncode == 1, r.stderr
        assert "address already in use (another variantd" in r.stderr
    c = daemon.client()
    err, res = c.call("ping", [])
    assert err is None and res["ready"] is True
    assert listeners(daemon.port) == 2      # its two workers, no one else


def test_two_of_our_own_ports_may_not_overlap():
    port = free_port()
    r = run_variantd("--listen", f"127.0.0.1:{port}", "--http-listen", f"127.0.0.1:{port}")
    assert r.returncode == 1
    assert (f"decision port (--listen) 127.0.0.1:{port} and edge port (--http-listen) "
            f"127.0.0.1:{port} take the same connections") in r.stderr
    r = run_variantd("--listen", f"127.0.0.1:{free_port()}", "--http-listen", f"0.0.0.0:{port}",
                     "--stats-listen", f"127.0.0.1:{port}")
    assert r.returncode == 1 and "take the same connections" in r.stderr
    # an IPv4-mapped IPv6 address is the IPv4 address; [::] covers IPv4 too
    for other in (f"[::ffff:127.0.0.1]:{port}", f"[::]:{port}"):
        r = run_variantd("--listen", f"127.0.0.1:{port}", "--http-listen", other)
        assert r.returncode == 1 and "take the same connections" in r.stderr, (other, r.stderr)


def test_port_zero_is_one_port_for_every_worker(start_daemon):
    d = start_daemon("--workers", "2", "--http-listen", "127.0.0.1:0", expect_ready=False)
    deadline = time.time() + 15
    while time.time() < deadline and "edge port" not in d.read_log():
        time.sleep(0.05)
    log = d.read_log()
    m = re.search(r"edge port 127\.0\.0\.1:(\d+) ", log)
    assert m, log
    port = int(m.group(1))
    assert port != 0
    assert listeners(port) == 2
    from conftest import http_request
    for _ in range(10):
        st, _, _ = http_request(port, "GET", "/v1/decide?slot=home.hero")
        assert st == 200


def test_three_ports_zero_get_three_ports(start_daemon):
    """Each port-0 claim stays bound until the workers bind, so the kernel
    cannot hand two of our ports the same number."""
    d = start_daemon("--workers", "2", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
                     "--stats-listen", "127.0.0.1:0", expect_ready=False)
    # Until the three start-up lines are complete (a line may be read half-written).
    pattern = {what: re.compile(rf"{what} port 127\.0\.0\.1:(\d+) ") for what in ("decision", "edge", "stats")}
    deadline = time.time() + 15
    while time.time() < deadline and not all(p.search(d.read_log()) for p in pattern.values()):
        time.sleep(0.05)
    log = d.read_log()
    assert all(p.search(log) for p in pattern.values()), log
    ports = [int(pattern[what].search(log).group(1)) for what in ("decision", "edge", "stats")]
    assert len(set(ports)) == 3 and 0 not in ports, ports
    from conftest import Client, http_request
    err, res = Client(ports[0]).call("ping", [])
    assert err is None and res["pong"] is True
    assert http_request(ports[1], "GET", "/v1/decide?slot=home.hero")[0] == 200
    assert http_request(ports[2], "GET", "/healthz")[0] == 200

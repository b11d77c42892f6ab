"""Redis high availability through Sentinel: `--redis redis-sentinel://...`
asks the sentinels for the master, follows `+switch-master` and keeps
syncing releases from the new master. Real Debian redis-sentinel processes,
a master and a replica, all started here on free loopback ports."""
import subprocess
import threading
import time

import pytest
import redis

from conftest import Daemon, RedisServer, free_port, publish, variantctl, wait_for
from test_profiles import P, SECRET, write_profile_defs
from test_redis import Stream, defs, serving

REDIS_SENTINEL = "/usr/bin/redis-sentinel"
MASTER = "mymaster"


class Sentinel:
    def __init__(self, tmp_path, master_port):
        self.port = free_port()
        self.dir = tmp_path / f"sentinel-{self.port}"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf = self.dir / "sentinel.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\ndaemonize no\ndir {self.dir}\n"
            f"sentinel monitor {MASTER} 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds {MASTER} 2000\n"
            f"sentinel failover-timeout {MASTER} 10000\n"
            f"sentinel parallel-syncs {MASTER} 1\n")
        self.log = open(self.dir / "sentinel.log", "ab")
        self.proc = subprocess.Popen([REDIS_SENTINEL, str(self.conf)], stdout=self.log,
                                     stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-sentinel did not start")

    def client(self):
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    def master_port(self):
        addr = self.client().execute_command("SENTINEL", "get-master-addr-by-name", MASTER)
        return int(addr[1]) if addr else None

    def replicas_ok(self):
        reps = self.client().execute_command("SENTINEL", "replicas", MASTER)
        for r in reps:
            d = dict(zip(r[::2], r[1::2])) if isinstance(r, list) else r
            if "s_down" not in d.get("flags", "") and d.get("master-link-status") == "ok":
                return True
        return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def ha(tmp_path):
    """A master, a replica and two sentinels."""
    started = []
    master = RedisServer(tmp_path).start()
    started.append(master)
    replica = RedisServer(tmp_path, extra=["--replicaof", "127.0.0.1", str(master.port)])
    replica.start()
    started.append(replica)
    assert wait_for(lambda: replica.client().info("replication").get("master_link_status") == "up", 10)
    sentinels = []
    try:
        for _ in range(2):
            s = Sentinel(tmp_path, master.port)
            sentinels.append(s)
        assert wait_for(lambda: all(s.replicas_ok() for s in sentinels), 20, 0.1)
        yield master, replica, sentinels
    finally:
        for s in sentinels:
            s.stop()
        for r in started:
            r.stop()


def role(port):
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=2,
                       decode_responses=True).execute_command("ROLE")[0]


def test_forced_failover_under_load(tmp_path, start_daemon, ha):
    master, replica, sentinels = ha
    dead = free_port()          # a sentinel that is not there: the next one is tried
    url = (f"redis-sentinel://127.0.0.1:{dead},127.0.0.1:{sentinels[0].port},"
           f"127.0.0.1:{sentinels[1].port}/{MASTER}")
    # variantctl resolves the master through the sentinels too.
    v1 = publish(url, *defs(tmp_path, "a", "v1", nseg=50))
    assert master.client().get("variantd:current") == v1
    d = start_daemon("--redis", url, "--redis-poll-interval", "200", "--redis-timeout", "500",
                     geo=False)
    assert wait_for(serving(d, v1), 10)
    assert f"master '{MASTER}' is at 127.0.0.1:{master.port}" in d.read_log()

    s = Stream(d.port)
    s.start()
    time.sleep(0.5)
    sentinels[1].client().execute_command("SENTINEL", "FAILOVER", MASTER)
    assert wait_for(lambda: all(x.master_port() == replica.port for x in sentinels), 30, 0.1)
    assert wait_for(lambda: role(replica.port) == "master", 30, 0.1)
    # The daemon follows: releases now come from the new master.
    assert wait_for(lambda: f"moved to 127.0.0.1:{replica.port}" in d.read_log(), 15, 0.1), d.read_log()
    v2 = publish(url, *defs(tmp_path, "b", "v2", nseg=50))
    assert redis.Redis(host="127.0.0.1", port=replica.port, decode_responses=True).get(
        "variantd:current") == v2
    assert wait_for(serving(d, v2), 10), d.read_log()
    time.sleep(0.3)
    s.stop_flag.set()
    s.join(10)
    # Under decision load the whole time: every request answered, none failed.
    assert not s.errors, s.errors[:5]
    assert len(s.versions) == s.sent and s.sent > 500
    assert set(s.versions) == {v1, v2}
    first_new = s.versions.index(v2)
    assert all(v == v2 for v in s.versions[first_new:])
    # variantctl status lists the daemon on the new master.
    _, out, _ = variantctl("status", "--redis", url)
    assert v2 in out
    assert d.stop() == 0


def test_sentinels_all_down_then_back(tmp_path, start_daemon, ha):
    """No sentinel answers at start: the daemon is up, not ready, and keeps
    trying; once one answers it syncs."""
    master, _, sentinels = ha
    v1 = publish(master.url, *defs(tmp_path, "a", "v1"))
    dead1, dead2 = free_port(), free_port()
    url = f"redis-sentinel://127.0.0.1:{dead1},127.0.0.1:{dead2}/{MASTER}"
    d = start_daemon("--redis", url, "--redis-poll-interval", "200", "--redis-timeout", "300",
                     geo=False)
    c = d.client()
    assert c.call("ping", [])[1]["ready"] is False
    c.close()
    rc, _, err = variantctl("publish", *defs(tmp_path, "b", "v2"), "--redis", url, check=False)
    assert rc != 0 and "no sentinel named master" in err
    # A daemon given a live sentinel after a dead one syncs.
    url2 = f"redis-sentinel://127.0.0.1:{dead1},127.0.0.1:{sentinels[0].port}/{MASTER}"
    d2 = start_daemon("--redis", url2, "--redis-poll-interval", "200", "--redis-timeout", "300",
                      geo=False)
    assert wait_for(serving(d2, v1), 10), d2.read_log()
    assert "trying the next sentinel" in d2.read_log()
    assert d.stop() == 0


def test_profiles_follow_a_failover(tmp_path, start_daemon, ha):
    """--profiles redis-sentinel://: the workers connect to the master the
    sentinels name, follow +switch-master, and the profiles (written before
    the failover, replicated) continue on the new master. Decisions never
    fail meanwhile: at worst they go without their profile for a moment."""
    master, replica, sentinels = ha
    url = (f"redis-sentinel://127.0.0.1:{sentinels[0].port},127.0.0.1:{sentinels[1].port}"
           f"/{MASTER}")
    segs, cmap = write_profile_defs(tmp_path)
    d = start_daemon("--profiles", url, "--profile-key-secret", SECRET, "--workers", "1",
                     "--profile-timeout", "500", "--redis-timeout", "500",
                     "--redis-poll-interval", "200", segments=segs, content_map=cmap, stats=True,
                     geo=False)
    c = d.client()

    def events(vid):
        err, r = c.call("explain", [P(slots=["events"], vid=vid)])
        assert err is None, err
        return r["profile"], r["context"].get("visitor.events.add_to_cart")

    assert wait_for(lambda: c.decide(slots=["visits"], vid="ha-v", **P())["profile"] == "ok", 10), \
        d.read_log()
    for _ in range(2):
        err, res = c.call("track", [P(event="add_to_cart", category="sneakers", vid="ha-v")])
        assert err is None and res == {"ok": True}, err
    assert events("ha-v") == ("ok", 2)
    assert master.client().dbsize() > 0          # written on the master
    assert master.client().execute_command("WAIT", 1, 5000) >= 1   # and replicated

    # Decisions the whole time on their own connection: none fails.
    seen, errors, stop = [], [], threading.Event()

    def load():
        lc = d.client()
        while not stop.is_set():
            err, r = lc.call("decide", [P(slots=["visits", "plain"], vid="load-v")])
            if err is not None:
                errors.append(err)
            else:
                seen.append(r.get("profile"))
            time.sleep(0.01)

    t = threading.Thread(target=load)
    t.start()
    try:
        time.sleep(0.3)
        sentinels[1].client().execute_command("SENTINEL", "FAILOVER", MASTER)
        assert wait_for(lambda: all(x.master_port() == replica.port for x in sentinels), 30, 0.1)
        assert wait_for(lambda: role(replica.port) == "master", 30, 0.1)
        # The daemon follows: profiles work again, on the new master.
        assert wait_for(lambda: c.decide(slots=["visits"], vid="ha-v", **P())["profile"] == "ok",
                        20, 0.1), d.read_log()
        time.sleep(0.3)
    finally:
        stop.set()
        t.join(10)
    assert not errors, errors[:5]
    assert len(seen) > 20 and set(seen) <= {"ok", "timeout", "unavailable"}, set(seen)
    assert seen[-1] == "ok"
    # The count continues from the events written before the failover.
    err, res = c.call("track", [P(event="add_to_cart", category="sneakers", vid="ha-v")])
    assert err is None and res == {"ok": True}, err
    assert events("ha-v") == ("ok", 3)
    new = redis.Redis(host="127.0.0.1", port=replica.port, decode_responses=True)
    assert [new.hget(k, "e:add_to_cart") for k in new.scan_iter("vdp1:*")].count("3") == 1
    assert f"new master 127.0.0.1:{replica.port}" in d.read_log(), d.read_log()


def test_profiles_malformed_sentinel_address(tmp_path):
    """A Sentinel URL without the master's name is refused with a clear error."""
    d = Daemon(tmp_path, args=["--profiles", "redis-sentinel://127.0.0.1:26379",
                               "--profile-key-secret", SECRET])
    d.start(expect_ready=False)
    try:
        assert d.proc.wait(15) == 2
    finally:
        d.log.close()
    assert "profiles: redis-sentinel:// needs the master name" in d.read_log()

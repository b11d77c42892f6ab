"""SIGHUP reloads file definitions; an invalid set is rejected whole and the
running ruleset keeps serving."""
import json
import signal
import time

from conftest import write_defs

SEG = [{"id": "berlin", "match": {"attr": "geo.city", "op": "eq", "value": "Berlin"}}]
CM = [{"slot": "hero", "rules": [{"segment": "berlin", "variant": "a"}], "default": "b",
       "variants": {"a": {"v": 1}, "b": {"v": 2}}}]


def wait_for(pred, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    return pred()


def test_sighup_good_then_bad_set(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, SEG, CM)
    d = start_daemon(segments=seg, content_map=cm)
    c = d.client()
    v1 = c.call("ping", [])[1]["version"]
    assert c.decide(slots=["hero"], ip="1.0.0.7")["slots"]["hero"]["variant"] == "a"

    # A good change: Berlin now gets "c".
    cm2 = json.loads(json.dumps(CM))
    cm2[0]["rules"][0]["variant"] = "c"
    cm2[0]["variants"]["c"] = {"v": 3}
    (cm / "all.json").write_text(json.dumps(cm2))
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: c.call("ping", [])[1]["version"] != v1)
    v2 = c.call("ping", [])[1]["version"]
    res = c.decide(slots=["hero"], ip="1.0.0.7")
    assert res["version"] == v2 and res["slots"]["hero"]["variant"] == "c"

    # A bad change (rule names a missing segment, and a segment has a bad op):
    # rejected whole, v2 keeps serving, the error is logged with the file.
    cm3 = json.loads(json.dumps(cm2))
    cm3[0]["rules"].append({"segment": "nope", "variant": "a"})
    (cm / "all.json").write_text(json.dumps(cm3))
    seg2 = SEG + [{"id": "x", "match": {"attr": "geo.city", "op": "like", "value": "B"}}]
    (seg / "all.json").write_text(json.dumps(seg2))
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: "reload rejected" in d.read_log())
    log = d.read_log()
    assert "all.json" in log and "nope" in log and "like" in log
    res = c.decide(slots=["hero"], ip="1.0.0.7")
    assert res["version"] == v2 and res["slots"]["hero"]["variant"] == "c"

    # Garbage JSON: same.
    (seg / "all.json").write_text("{ this is not json")
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: d.read_log().count("reload rejected") >= 2)
    assert c.decide(slots=["hero"], ip="1.0.0.7")["version"] == v2


def test_start_with_invalid_set_fails_with_message(tmp_path, start_daemon):
    seg, cm = write_defs(tmp_path, [{"id": "a", "match": {"segment": "a"}}], CM)
    d = start_daemon(segments=seg, content_map=cm, expect_ready=False)
    rc = d.proc.wait(15)
    assert rc != 0
    log = d.read_log()
    assert "cycle" in log and "all.json" in log
    d.proc = None


def thread_nice(pid, name):
    """Nice value of the daemon's thread called name (/proc/PID/task/TID/stat,
    field 19), or None."""
    import os
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        if comm == name:
            return int(stat[stat.rindex(")") + 2:].split()[16])
    return None


def test_compile_nice_sets_the_reload_threads_priority(tmp_path, start_daemon):
    # The reload thread compiles at compile-nice; the workers keep nice 0.
    seg, cm = write_defs(tmp_path, SEG, CM)
    d = start_daemon("--compile-nice", "7", "--workers", "2", segments=seg, content_map=cm)
    assert wait_for(lambda: thread_nice(d.proc.pid, "vd-reload") == 7), thread_nice(d.proc.pid, "vd-reload")
    assert thread_nice(d.proc.pid, "variantd") == 0
    # A reload still works at that priority.
    c = d.client()
    v1 = c.call("ping", [])[1]["version"]
    (seg / "all.json").write_text(json.dumps(SEG + [{"id": "paris", "match": {"all": []}}]))
    d.signal(signal.SIGHUP)
    assert wait_for(lambda: c.call("ping", [])[1]["version"] != v1)

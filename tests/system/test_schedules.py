"""Schedules end to end: a real scheduler on a testing clock (a file that
holds the time its schedules see, WEFT_TEST_CLOCK), the CLI, and real
restarts. Fire times, catch-up, backfill, pause, versions, crash safety.
"""
import json
import random
import re
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from weftproc import wait_for


def ms(iso):
    """Epoch ms of an ISO 8601 time ("2026-03-01T01:00:00Z")."""
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def iso_ms(t):
    """The scheduler's own form of epoch ms T: 2026-03-01T01:00:00.000Z."""
    d = datetime.fromtimestamp(t / 1000, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t % 1000:03d}Z"


class Clock:
    """The testing clock file of one cluster."""

    def __init__(self, path, start):
        self.path = Path(path)
        self.now = None
        self.set(start)

    def set(self, iso):
        """Sets the time (atomically: the scheduler re-reads the file
        every 100 ms); returns it in epoch ms."""
        self.now = ms(iso)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(f"{self.now}\n")
        tmp.replace(self.path)
        return self.now


def write(path, text):
    path = Path(path)
    path.write_text(text)
    return path


def start(cluster, clock):
    cluster.start_scheduler(clock=clock.path)
    return cluster


def tick(cluster, clock, iso):
    """Moves the clock to ISO and waits until the scheduler has seen it."""
    want = f"-> {iso_ms(ms(iso))}"
    seen = cluster.sched.output().count(want)
    clock.set(iso)
    wait_for(lambda: cluster.sched.output().count(want) > seen, timeout=10,
             what=f"the scheduler to read the clock {iso}")
    # The log line is written before that pass commits: one call more
    # is served after it.
    cluster.weft("dags", "--json", check=0)


def runs(cluster, dag):
    r = cluster.weft("runs", "--dag", dag, "--limit", "100000", "--json", check=0)
    return sorted(json.loads(r.stdout), key=lambda x: int(x["run_id"].rsplit(".", 1)[1]))


def logical(rs):
    return [r["logical_time"] for r in rs]


def dag_info(cluster, name):
    r = cluster.weft("dags", "--json", check=0)
    return next(d for d in json.loads(r.stdout) if d["name"] == name)


def wait_nruns(cluster, dag, n, timeout=20):
    return wait_for(lambda: (lambda rs: rs if len(rs) >= n else None)(runs(cluster, dag)),
                    timeout=timeout, what=f"{n} runs of {dag}")


HOURLY = """
name: hourly
schedule: "0 * * * *"
{extra}
tasks:
  a:
    run: "true"
"""


def test_one_run_per_fire_time_on_the_testing_clock(cluster, tmp_path):
    clock = Clock(tmp_path / "clock", "2026-03-01T00:00:30Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "h.yaml", HOURLY.format(extra="")), check=0)
    d = dag_info(cluster, "hourly")
    # start defaults to the submission: 00:00 is before it.
    assert d["next_fire_at"] == "2026-03-01T01:00:00.000Z"
    assert d["next_fire_local"] == "2026-03-01T01:00:00+00:00"
    assert d["paused"] is False and d["schedule"] == "0 * * * *"
    tick(cluster, clock, "2026-03-01T00:59:59Z")
    assert runs(cluster, "hourly") == []
    tick(cluster, clock, "2026-03-01T01:00:00Z")
    rs = wait_nruns(cluster, "hourly", 1)
    assert logical(rs) == ["2026-03-01T01:00:00.000Z"]
    tick(cluster, clock, "2026-03-01T01:30:00Z")
    tick(cluster, clock, "2026-03-01T02:00:00.300Z")
    rs = wait_nruns(cluster, "hourly", 2)
    assert logical(rs) == ["2026-03-01T01:00:00.000Z", "2026-03-01T02:00:00.000Z"]
    d = dag_info(cluster, "hourly")
    assert d["next_fire_at"] == "2026-03-01T03:00:00.000Z"
    assert d["last_run_id"] == "hourly.2"
    # A manual run is not a fire time: it takes no slot and blocks none.
    cluster.weft("trigger", "hourly", check=0)
    tick(cluster, clock, "2026-03-01T03:00:00Z")
    rs = wait_nruns(cluster, "hourly", 4)
    assert logical(rs)[3] == "2026-03-01T03:00:00.000Z"
    # The clock goes back, then forward again: the cursor follows it back,
    # and the fire times that ran do not run twice.
    tick(cluster, clock, "2026-03-01T01:30:00Z")
    assert dag_info(cluster, "hourly")["next_fire_at"] == "2026-03-01T02:00:00.000Z"
    tick(cluster, clock, "2026-03-01T02:00:00Z")
    tick(cluster, clock, "2026-03-01T03:30:00Z")
    assert len(runs(cluster, "hourly")) == 4
    assert dag_info(cluster, "hourly")["next_fire_at"] == "2026-03-01T04:00:00.000Z"


def test_runs_use_the_fire_time_in_the_dags_zone(cluster, tmp_path):
    # Midnight in Berlin is 23:00 UTC the day before; {{ ds }} is the
    # Berlin date, {{ ts }} the UTC time.
    clock = Clock(tmp_path / "clock", "2026-03-27T12:00:00Z")
    start(cluster, clock)
    cluster.start_worker("w1", slots=2)
    cluster.wait_workers(1)
    cluster.weft("submit", write(tmp_path / "b.yaml", """
name: berlin
schedule: "0 0 * * *"
timezone: Europe/Berlin
tasks:
  a:
    run: echo "ds={{ ds }}" >> $WEFT_OUTPUT && echo "ts={{ ts }}" >> $WEFT_OUTPUT
"""), check=0)
    d = dag_info(cluster, "berlin")
    assert d["next_fire_at"] == "2026-03-27T23:00:00.000Z"
    assert d["next_fire_local"] == "2026-03-28T00:00:00+01:00"
    tick(cluster, clock, "2026-03-27T23:00:01Z")
    rs = wait_nruns(cluster, "berlin", 1)
    doc = cluster.wait_run(rs[0]["run_id"])
    assert doc["state"] == "success", doc
    out = doc["tasks"][0]["outputs"]
    assert out["ds"] == "2026-03-28"
    assert out["ts"].startswith("2026-03-27T23:00:00")
    # Across the spring-forward change, midnight is 22:00 UTC.
    d = dag_info(cluster, "berlin")
    assert d["next_fire_at"] == "2026-03-28T23:00:00.000Z"
    tick(cluster, clock, "2026-03-29T12:00:00Z")
    d = dag_info(cluster, "berlin")
    assert d["next_fire_at"] == "2026-03-29T22:00:00.000Z"
    assert d["next_fire_local"] == "2026-03-30T00:00:00+02:00"


def test_catchup_false_after_downtime_runs_only_the_latest(cluster, tmp_path):
    clock = Clock(tmp_path / "clock", "2026-03-01T00:00:30Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "h.yaml", HOURLY.format(extra="")), check=0)
    tick(cluster, clock, "2026-03-01T01:00:00Z")
    wait_nruns(cluster, "hourly", 1)
    cluster.sched.kill()
    clock.set("2026-03-01T05:30:00Z")
    start(cluster, clock)
    rs = wait_nruns(cluster, "hourly", 2)
    assert logical(rs) == ["2026-03-01T01:00:00.000Z", "2026-03-01T05:00:00.000Z"]
    # Restarting again owes nothing.
    cluster.sched.stop()
    start(cluster, clock)
    assert dag_info(cluster, "hourly")["next_fire_at"] == "2026-03-01T06:00:00.000Z"
    assert len(runs(cluster, "hourly")) == 2


def test_catchup_true_kill_anywhere_runs_each_slot_once(cluster, tmp_path):
    # Kill -9 the scheduler at random moments around fire times; every
    # fire time since start gets exactly one run, oldest first.
    clock = Clock(tmp_path / "clock", "2026-04-01T00:00:00Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "h.yaml", HOURLY.format(
        extra="catchup: true\nstart: 2026-03-31T20:00:00Z\nmax_active_runs: 2")), check=0)
    # 20:00 .. 00:00: five slots since start.
    rs = wait_nruns(cluster, "hourly", 5)
    rng = random.Random(7)
    t = ms("2026-04-01T00:00:00Z")
    for _ in range(6):
        t += rng.choice([1, 2, 3]) * 3600_000 + rng.randrange(0, 3600_000)
        clock.set(iso_ms(t))
        time.sleep(rng.choice([0, 0.05, 0.15]))
        cluster.sched.kill()
        start(cluster, clock)
    last = t - t % 3600_000
    want = [iso_ms(x) for x in range(ms("2026-03-31T20:00:00Z"), last + 1, 3600_000)]
    rs = wait_nruns(cluster, "hourly", len(want))
    assert logical(rs) == want  # in order of creation, each once
    # No more than max_active_runs run at once; the rest wait queued.
    states = [r["state"] for r in rs]
    assert states.count("running") <= 2
    assert dag_info(cluster, "hourly")["next_fire_at"] == iso_ms(last + 3600_000)


def test_backfill_is_idempotent_and_reads_the_dags_zone(cluster, tmp_path):
    clock = Clock(tmp_path / "clock", "2026-04-05T12:00:00Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "n.yaml", """
name: nightly
schedule: "0 3 * * *"
timezone: Europe/Berlin
max_active_runs: 2
tasks:
  a:
    run: "true"
"""), check=0)
    # A date without a time is midnight (Berlin): --to names the last
    # fire time, included.
    r = cluster.weft("backfill", "nightly", "--from", "2026-03-27", "--to", "2026-03-31T03:00",
                     check=0)
    assert "5 fire times" in r.stdout and "5 runs created" in r.stdout, r.stdout
    want = ["2026-03-27T02:00:00.000Z", "2026-03-28T02:00:00.000Z",
            "2026-03-29T01:00:00.000Z", "2026-03-30T01:00:00.000Z",
            "2026-03-31T01:00:00.000Z"]
    assert logical(runs(cluster, "nightly")) == want
    # Twice: nothing new. An overlapping range adds only what is missing.
    r = cluster.weft("backfill", "nightly", "--from", "2026-03-27", "--to", "2026-03-31T03:00",
                     "--json", check=0)
    doc = json.loads(r.stdout)
    assert (doc["fire_times"], doc["created"], doc["present"], doc["pending"]) == (5, 0, 5, 0)
    assert doc["first_fire_local"] == "2026-03-27T03:00:00+01:00"
    assert doc["last_fire_local"] == "2026-03-31T03:00:00+02:00"
    r = cluster.weft("backfill", "nightly", "--from", "2026-03-30T12:00:00Z",
                     "--to", "2026-04-01T04:00", "--json", check=0)
    doc = json.loads(r.stdout)
    assert (doc["fire_times"], doc["created"], doc["present"]) == (2, 1, 1)
    assert logical(runs(cluster, "nightly")) == want + ["2026-04-01T01:00:00.000Z"]
    # A manual run does not count as a fire time.
    cluster.weft("trigger", "nightly", check=0)
    # Mistakes.
    assert cluster.weft("backfill", "nightly", "--from", "yesterday", "--to",
                        "2026-03-31").returncode == 2
    assert cluster.weft("backfill", "nightly", "--from", "2026-03-01").returncode == 2
    r = cluster.weft("backfill", "nope", "--from", "2026-03-01", "--to", "2026-03-02")
    assert r.returncode == 1 and "no DAG named 'nope'" in r.stderr
    r = cluster.weft("backfill", "nightly", "--from", "2026-03-31", "--to", "2026-03-01")
    assert r.returncode == 1 and "after" in r.stderr
    # An explicit start bounds backfills, and the output says so.
    cluster.weft("submit", write(tmp_path / "s.yaml", """
name: started
schedule: "0 3 * * *"
start: 2026-03-29
tasks:
  a:
    run: "true"
"""), check=0)
    r = cluster.weft("backfill", "started", "--from", "2026-03-27", "--to", "2026-03-30", check=0)
    assert "1 fire time from 2026-03-29T03:00:00+00:00" in r.stdout, r.stdout
    assert "the DAG's start, 2026-03-29T00:00:00+00:00, bounds backfills" in r.stdout
    # Beyond now: left to the schedule.
    r = cluster.weft("backfill", "nightly", "--from", "2026-04-05", "--to", "2026-04-30",
                     "--json", check=0)
    doc = json.loads(r.stdout)
    assert doc["fire_times"] == 1 and doc["after_now"] is True


def test_a_long_backfill_is_created_a_window_at_a_time(cluster, tmp_path):
    # 300 minutely fire times, max_active_runs 4: at most 4 + 100 runs
    # exist unfinished; the rest come as earlier runs end.
    clock = Clock(tmp_path / "clock", "2026-05-02T00:00:30Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "m.yaml", """
name: minutely
schedule: "* * * * *"
max_active_runs: 4
tasks:
  a:
    run: "true"
"""), check=0)
    r = cluster.weft("backfill", "minutely", "--from", "2026-05-01T00:00:00Z",
                     "--to", "2026-05-01T04:59:00Z", "--json", check=0)
    doc = json.loads(r.stdout)
    assert doc["fire_times"] == 300
    assert doc["created"] == 104 and doc["pending"] == 196
    assert len(runs(cluster, "minutely")) == 104
    # A worker runs them; they all get created, each once, oldest first.
    cluster.start_worker("w1", slots=4)
    rs = wait_nruns(cluster, "minutely", 300, timeout=120)
    assert logical(rs) == [iso_ms(ms("2026-05-01T00:00:00Z") + k * 60_000) for k in range(300)]


def test_pause_and_unpause(cluster, tmp_path):
    clock = Clock(tmp_path / "clock", "2026-03-01T00:00:30Z")
    start(cluster, clock)
    cluster.weft("submit", write(tmp_path / "h.yaml", HOURLY.format(extra="")), check=0)
    cluster.weft("submit", write(tmp_path / "c.yaml", HOURLY.format(extra="catchup: true").replace(
        "name: hourly", "name: caught")), check=0)
    for name in ("hourly", "caught"):
        r = cluster.weft("pause", name, check=0)
        assert r.stdout.strip() == f"{name} paused"
    assert cluster.weft("pause", "hourly", check=0).stdout.strip() == "hourly was already paused"
    d = dag_info(cluster, "hourly")
    assert d["paused"] is True and d["next_fire_at"] is None
    tick(cluster, clock, "2026-03-01T03:30:00Z")
    assert runs(cluster, "hourly") == [] and runs(cluster, "caught") == []
    # Manual runs still work while paused.
    r = cluster.weft("trigger", "hourly", check=0)
    assert r.stdout.strip() == "hourly.1"
    # catchup false resumes from now; true owes the hours missed.
    r = cluster.weft("unpause", "hourly", check=0)
    assert "next fire time 2026-03-01T04:00:00+00:00" in r.stdout
    cluster.weft("unpause", "caught", check=0)
    rs = wait_nruns(cluster, "caught", 3)
    assert logical(rs) == ["2026-03-01T01:00:00.000Z", "2026-03-01T02:00:00.000Z",
                           "2026-03-01T03:00:00.000Z"]
    assert len(runs(cluster, "hourly")) == 1
    assert dag_info(cluster, "hourly")["next_fire_at"] == "2026-03-01T04:00:00.000Z"
    # Paused survives a restart.
    cluster.weft("pause", "hourly", check=0)
    cluster.sched.stop()
    start(cluster, clock)
    assert dag_info(cluster, "hourly")["paused"] is True
    r = cluster.weft("unpause", "nope")
    assert r.returncode == 1


def test_new_versions_and_end(cluster, tmp_path):
    clock = Clock(tmp_path / "clock", "2026-06-01T00:10:00Z")
    start(cluster, clock)
    f = write(tmp_path / "v.yaml", HOURLY.format(extra="end: 2026-06-01T05:00:00Z"))
    assert cluster.weft("submit", f, check=0).stdout.strip() == "hourly version 1"
    tick(cluster, clock, "2026-06-01T01:00:00Z")
    rs = wait_nruns(cluster, "hourly", 1)
    assert rs[0]["dag_version"] == 1
    # Identical: no-op. Changed schedule: applies from the next fire time.
    assert cluster.weft("submit", f, check=0).stdout.strip() == "hourly version 1"
    f.write_text(f.read_text().replace('"0 * * * *"', '"*/20 * * * *"'))
    assert cluster.weft("submit", f, check=0).stdout.strip() == "hourly version 2"
    assert dag_info(cluster, "hourly")["next_fire_at"] == "2026-06-01T01:20:00.000Z"
    tick(cluster, clock, "2026-06-01T01:20:00Z")
    rs = wait_nruns(cluster, "hourly", 2)
    assert rs[1]["logical_time"] == "2026-06-01T01:20:00.000Z"
    assert rs[1]["dag_version"] == 2 and rs[0]["dag_version"] == 1
    # `end` stops scheduling.
    tick(cluster, clock, "2026-06-01T04:50:00Z")
    tick(cluster, clock, "2026-06-01T05:10:00Z")
    rs = runs(cluster, "hourly")
    assert rs[-1]["logical_time"] == "2026-06-01T05:00:00.000Z"
    assert dag_info(cluster, "hourly")["next_fire_at"] is None
    tick(cluster, clock, "2026-06-01T09:00:00Z")
    assert len(runs(cluster, "hourly")) == len(rs)


def test_the_real_clock_fires_within_a_second(cluster, tmp_path):
    cluster.start_scheduler()
    cluster.weft("submit", write(tmp_path / "e.yaml", """
name: every
schedule: "@every 2s"
max_active_runs: 5
tasks:
  a:
    run: "true"
"""), check=0)
    rs = wait_nruns(cluster, "every", 2, timeout=15)
    for r in rs[:2]:
        late = ms(r["created_at"]) - ms(r["logical_time"])
        assert 0 <= late < 1000, r
    assert ms(rs[1]["logical_time"]) - ms(rs[0]["logical_time"]) == 2000


def test_an_embedded_scheduler_creates_no_scheduled_runs(cluster, tmp_path):
    # `weft ... --data DIR` with no daemon serves DIR from a scheduler
    # inside the CLI: reading must not start the schedule's work.
    cluster.start_scheduler()
    cluster.weft("submit", write(tmp_path / "e.yaml", """
name: every
schedule: "@every 1s"
max_active_runs: 50
tasks:
  a:
    run: "true"
"""), check=0)
    wait_nruns(cluster, "every", 1)
    cluster.sched.stop()

    def local(*args):
        # Stopped schedulers (the daemon, and each embedded one) leave
        # scheduler.addr behind, and the CLI then spends 5 s dialling it
        # before reading DIR itself: not what this test is about.
        addr = cluster.data / "scheduler.addr"
        if addr.exists():
            addr.unlink()
        return json.loads(cluster.weft(*args, "--data", cluster.data, "--json",
                                       check=0).stdout)

    n = len(local("runs"))
    for _ in range(3):
        time.sleep(0.6)  # fire times pass while only embedded ones run
        assert local("dags")[0]["name"] == "every"
    assert len(local("runs")) == n


def test_doc_examples_are_valid(weft, root, tmp_path):
    """The DAGs in docs/schedules.md validate."""
    md = (root / "docs" / "schedules.md").read_text()
    blocks = [b for b in re.findall(r"^```yaml\n(.*?)^```", md, flags=re.S | re.M)
              if b.startswith("name:")]
    assert len(blocks) >= 4
    paths = []
    for i, b in enumerate(blocks):
        (tmp_path / f"b{i}.yaml").write_text(b)
        paths.append(f"b{i}.yaml")
    r = weft("validate", *paths, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, "")

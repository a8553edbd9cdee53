"""Retention: `weft scheduler --keep-runs N` keeps the newest N finished runs
of each DAG; older ones disappear with their task records and logs, and
`weft show`/`weft logs` of one say that retention deleted it.
"""
import json

import pytest

from weftproc import wait_for

DAG = """\
name: keep
max_active_runs: 4
tasks:
  a:
    run: echo hello
  b:
    run: "true"
    needs: [a]
"""


def run_ids(cluster, dag="keep"):
    r = cluster.weft("runs", "--dag", dag, "--json", check=0)
    return [r["run_id"] for r in json.loads(r.stdout)]


def trigger_and_wait(cluster, n):
    """Triggers N runs and waits for the last to end (the older ones may
    be pruned as soon as they end, so only the last is waited for)."""
    ids = []
    for _ in range(n):
        r = cluster.weft("trigger", "keep", check=0)
        ids.append(r.stdout.strip())
    # max_active_runs 4 and FIFO starts: when the last has ended, so has
    # every earlier one... unless one is still running: wait for all that
    # are still listed.
    assert cluster.wait_run(ids[-1])["state"] == "success"
    for rid in ids[:-1]:
        def ended_or_pruned():
            # A run may be pruned between two looks at it.
            r = cluster.weft("show", rid, "--json")
            if r.returncode != 0:
                assert "deleted by the retention policy" in r.stderr, r.stderr
                return True
            state = json.loads(r.stdout)["state"]
            assert state in ("queued", "running", "success"), state
            return state == "success"
        wait_for(ended_or_pruned, timeout=60, interval=0.1,
                 what=f"run {rid} to end")
    return ids


def test_only_the_newest_runs_stay(cluster, tmp_path):
    cluster.start_scheduler(extra=("--keep-runs", "2"))
    cluster.start_worker("w1", slots=2)
    dag = tmp_path / "keep.yaml"
    dag.write_text(DAG)
    cluster.weft("submit", dag, check=0)
    ids = trigger_and_wait(cluster, 5)
    assert ids == [f"keep.{k}" for k in range(1, 6)]
    # Pruning runs from the loop, a batch per iteration: wait for it.
    wait_for(lambda: run_ids(cluster) == ["keep.5", "keep.4"],
             what="only keep.5 and keep.4 listed")
    logs = cluster.data / "logs"
    wait_for(lambda: not (logs / "keep.3").exists(), what="keep.3's logs gone")
    for old in ("keep.1", "keep.2", "keep.3"):
        assert not (logs / old).exists()
        r = cluster.weft("show", old)
        assert r.returncode == 1
        assert "deleted by the retention policy" in r.stderr, r.stderr
        assert "newest 2" in r.stderr, r.stderr
        r = cluster.weft("logs", old, "a")
        assert r.returncode == 1
        assert "retention" in r.stderr, r.stderr
    # What stays is whole.
    doc = cluster.show("keep.4")
    assert [t["state"] for t in doc["tasks"]] == ["success", "success"]
    r = cluster.weft("logs", "keep.4", "a", check=0)
    assert r.stdout == "hello\n"
    # A run that never existed is still just unknown.
    r = cluster.weft("show", "keep.9")
    assert r.returncode != 0 and "retention" not in r.stderr

    # After a restart the window moves on from where it was.
    cluster.sched.stop()
    cluster.start_scheduler(listen=cluster.addr, extra=("--keep-runs", "2"))
    trigger_and_wait(cluster, 1)
    wait_for(lambda: run_ids(cluster) == ["keep.6", "keep.5"],
             what="only keep.6 and keep.5 listed")


def test_keep_runs_zero_keeps_everything(cluster, tmp_path):
    cluster.start_scheduler(extra=("--keep-runs", "0"))
    cluster.start_worker("w1", slots=2)
    dag = tmp_path / "keep.yaml"
    dag.write_text(DAG)
    cluster.weft("submit", dag, check=0)
    trigger_and_wait(cluster, 3)
    assert len(run_ids(cluster)) == 3


def test_bad_retention_flags_are_usage_errors(cluster, weft):
    for args in (("--keep-runs", "-1"), ("--keep-runs", "x"),
                 ("--keep-days", "soon"), ("--keep-days", "-2")):
        r = weft("scheduler", "--data", cluster.data, *args)
        assert r.returncode == 2, (args, r.stderr)
        assert args[0] in r.stderr

"""Storage faults: the scheduler's data dir on a small tmpfs that a test
fills up. New work is refused with a message that says the disk is full,
the scheduler keeps answering and keeps what it runs, and all is well once
space returns (docs/operations.md, docs/storage.md).
"""
import errno
import json
import os
import subprocess

import pytest

from weftproc import Cluster, wait_for


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs at TMP/disk (root only), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    disk = tmp_path / "disk"
    disk.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)],
        capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield disk
    r = subprocess.run(["umount", str(disk)], capture_output=True, text=True)
    if r.returncode != 0:  # something still holds it: detach it anyway
        subprocess.run(["umount", "-l", str(disk)])


@pytest.fixture
def cluster(tmp_path, small_disk):
    # Depends on small_disk: every process stops before the unmount.
    c = Cluster(tmp_path)
    c.data = small_disk / "data"
    yield c
    c.stop()
    print(c.logs())


def fill(path):
    """Writes PATH until the disk refuses; returns the bytes written."""
    n = 0
    chunk = b"\0" * (1 << 16)
    with open(path, "wb") as f:
        try:
            while True:
                f.write(chunk)
                f.flush()
                n += len(chunk)
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return n


def refused_for_disk(r):
    assert r.returncode == 1, (
        f"exit {r.returncode}, wanted 1\nstdout:\n{r.stdout}\n"
        f"stderr:\n{r.stderr}")
    msg = r.stderr.lower()
    assert "full" in msg or "no space left" in msg, r.stderr


# Each task leaves 30 KB of outputs: stored in its task record, they need
# new database pages, which a full disk cannot give.
BIG = """
name: big
tasks:
"""
BIG_TASK = """  t{i}:
    run: sleep 0.3 && {{ printf blob=; head -c 30000 /dev/zero | tr '\\0' x; echo; }} >> $WEFT_OUTPUT
"""


def big_dag(path, n=6):
    text = BIG
    for i in range(n):
        text += BIG_TASK.format(i=i)
        if i > 0:
            text += f"    needs: t{i - 1}\n"
    path.write_text(text)
    return path


def small_dag(path, name):
    path.write_text(f"name: {name}\ntasks:\n  one:\n    run: echo {name}\n")
    return path


def task_states(cluster, run_id):
    r = cluster.weft("show", run_id, "--json", check=0)
    doc = json.loads(r.stdout)
    assert doc["state"] in ("queued", "running"), doc
    return {t["id"]: t["state"] for t in doc["tasks"]}


def test_full_disk_refuses_new_work_and_recovers(cluster, tmp_path,
                                                 small_disk):
    sched = cluster.start_scheduler()
    worker = cluster.start_worker("w1", slots=2)
    cluster.wait_workers(1)
    cluster.weft("submit", big_dag(tmp_path / "big.yaml"), check=0)
    run_id = cluster.weft("trigger", "big", check=0).stdout.strip()
    wait_for(lambda: task_states(cluster, run_id)["t0"] == "success",
             timeout=30, what="the first task")

    filler = small_disk / "filler"
    fill(filler)
    # The next task's result cannot be committed.
    wait_for(lambda: "commit failed" in sched.output(), timeout=30,
             what="a failed commit")
    other = small_dag(tmp_path / "other.yaml", "other")
    refused_for_disk(cluster.weft("submit", other, timeout=30))
    refused_for_disk(cluster.weft("trigger", "big", timeout=30))
    # It keeps running, and answers what it can without writing.
    assert sched.alive()
    r = cluster.weft("workers", "--json", timeout=30, check=0)
    assert [w["name"] for w in json.loads(r.stdout)] == ["w1"]
    cluster.weft("show", run_id, "--json", timeout=30, check=0)
    # A full disk lasts: long enough for the worker's calls to time out
    # (replies that wait for a commit reach nobody).
    wait_for(lambda: "lost the scheduler" in worker.output(), timeout=30,
             what="the worker's call to time out")
    assert "commit failed" in sched.output() and sched.alive()

    # Space returns: the run in progress completes, nothing lost.
    filler.unlink()
    doc = cluster.wait_run(run_id, timeout=60)
    assert doc["state"] == "success", doc
    assert [t["state"] for t in doc["tasks"]] == ["success"] * 6
    assert all(len(t["outputs"]["blob"]) == 30000 for t in doc["tasks"])
    assert "database writable again" in sched.output()
    cluster.weft("submit", other, check=0)
    other_run = cluster.weft("trigger", "other", check=0).stdout.strip()
    assert cluster.wait_run(other_run)["state"] == "success"

    # A full disk with nothing to commit: refused up front all the same.
    fill(filler)
    refused_for_disk(cluster.weft(
        "submit", small_dag(tmp_path / "third.yaml", "third"), timeout=30))
    refused_for_disk(cluster.weft("trigger", "other", timeout=30))
    assert sched.alive()
    filler.unlink()
    again = cluster.weft("trigger", "other", check=0).stdout.strip()
    assert cluster.wait_run(again)["state"] == "success"
    assert sched.alive()


def test_weft_run_pauses_on_a_full_disk_and_completes(tmp_path, small_disk):
    """`weft run` on a full disk: its scheduler commits on a thread of its
    own (scheduler/commit.c), and its worker's spool is in the data dir
    too. Whichever fails first (a batch is kept and committed again first;
    a worker that cannot write its spool takes no work), the run pauses
    and completes once space returns."""
    from conftest import WEFT_BIN
    # Long names: every success adds a learned duration under a new key,
    # so the database must grow while the disk is full.
    text = "name: pause\ntasks:\n"
    for i in range(40):
        text += f"  t{i:02d}_{'x' * 80}:\n    run: sleep 0.05\n"
        if i > 0:
            text += f"    needs: t{i - 1:02d}_{'x' * 80}\n"
    dag = tmp_path / "pause.yaml"
    dag.write_text(text)
    data = small_disk / "data"
    err_path = tmp_path / "run.err"

    def paused():
        t = err_path.read_text()
        return "commit failed" in t or "cannot write the spool" in t

    with open(err_path, "w") as err:
        p = subprocess.Popen([WEFT_BIN, "run", str(dag), "--workers", "1",
                              "--data", str(data)],
                             stdout=subprocess.DEVNULL, stderr=err)
        try:
            # The run's spool directory: its first attempt has started.
            wait_for(lambda: (data / "worker-spool" / "pause.1").exists(),
                     timeout=60, what="the run to start")
            filler = small_disk / "filler"
            fill(filler)
            wait_for(paused, timeout=30, what="a failed commit")
            assert p.poll() is None, err_path.read_text()
            filler.unlink()
            assert p.wait(timeout=120) == 0, err_path.read_text()
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
    r = subprocess.run([WEFT_BIN, "show", "pause.1", "--data", str(data),
                        "--json"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["state"] == "success", doc
    # What the worker held when its spool failed it handed back (one lost
    # attempt, no retry used), and it took nothing more until it could
    # write again (before, the scheduler sent the task back at once and it
    # was lost four times).
    assert all(t["state"] == "success" and t["attempts"] <= 2
               for t in doc["tasks"]), doc

"""A worker's results outlive the worker: they are committed to its spool
database before they are reported, and a worker started again with the same
name and spool dir reports what it had not got acknowledged.
"""
import time
from pathlib import Path

import pytest

from weftproc import wait_for


def alive(pid):
    """True while PID runs (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def task_doc(cluster, run_id, task):
    doc = cluster.show(run_id)
    return next(t for t in doc["tasks"] if t["id"] == task)


def test_result_finished_while_all_were_down_is_recorded_once(cluster, tmp_path):
    listen = f"ipc://{tmp_path}/sched.sock"  # the same address after restarts
    cluster.start_scheduler(listen=listen)
    worker = cluster.start_worker("w1", slots=1)
    cluster.wait_workers(1)
    marks = tmp_path / "marks"
    dag = tmp_path / "slow.yaml"
    dag.write_text(f"""
name: slow
tasks:
  slow:
    run: echo start >> {marks}; sleep 2; echo done
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "slow", check=0).stdout.strip()
    wait_for(lambda: task_doc(cluster, run_id, "slow")["state"] == "running",
             what="the task to run")

    # The scheduler goes away; the task finishes while it is down.
    assert cluster.sched.stop() == 0
    wait_for(lambda: "slow attempt 1: exited 0" in worker.output(),
             timeout=10, what="the attempt to end")
    # The result is committed within a loop iteration of the end (and the
    # worker has nobody to report it to): give it that, then kill the
    # worker outright, as a crash would.
    time.sleep(0.5)
    worker.kill()
    spool = tmp_path / "work-w1" / ".weft-worker" / "w1"
    assert (spool / "results" / "data.mdb").exists()

    # The worker comes back first, then the scheduler.
    worker = cluster.start_worker("w1", slots=1)
    wait_for(lambda: "result kept from before the worker restarted"
             in worker.output(), timeout=10, what="the kept result")
    cluster.start_scheduler(listen=listen)
    doc = cluster.wait_run(run_id, timeout=60)
    assert doc["state"] == "success", doc
    t = doc["tasks"][0]
    assert t["state"] == "success" and t["attempts"] == 1, t
    assert t["exit_code"] == 0
    # It ran once, and its whole log reached the scheduler.
    assert marks.read_text() == "start\n"
    logs = cluster.weft("logs", run_id, "slow", check=0)
    assert logs.stdout == "done\n"
    # Acknowledged: the attempt's files leave the spool.
    wait_for(lambda: not list(spool.glob("slow.1/*/*")), timeout=10,
             what="the spool to empty")


def test_attempt_running_when_the_worker_died_runs_again(cluster, tmp_path):
    listen = f"ipc://{tmp_path}/sched.sock"
    cluster.start_scheduler(listen=listen)
    worker = cluster.start_worker("w1", slots=1)
    cluster.wait_workers(1)
    marks = tmp_path / "marks"
    dag = tmp_path / "long.yaml"
    dag.write_text(f"""
name: long
tasks:
  long:
    run: echo $$ >> {marks}; sleep 1.5; echo done
    retries: 0
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "long", check=0).stdout.strip()
    wait_for(lambda: marks.exists() and marks.read_text().count("\n") == 1,
             what="the first attempt to start")
    time.sleep(0.3)  # its start record is committed
    worker.kill()
    first = int(marks.read_text().split()[0])
    # Attempts run in their own process groups: it outlived the worker.
    assert alive(first)
    worker = cluster.start_worker("w1", slots=1)
    wait_for(lambda: not alive(first), timeout=10,
             what="the orphaned attempt to be killed")
    # The new worker kills what the old one left running and reports the
    # attempt lost: it runs again without using up a retry (retries: 0).
    doc = cluster.wait_run(run_id, timeout=60)
    assert doc["state"] == "success", doc
    t = doc["tasks"][0]
    assert t["state"] == "success" and t["attempts"] == 2, t
    pids = [int(x) for x in marks.read_text().split()]
    assert len(pids) == 2 and pids[0] == first
    assert "was running when the worker stopped" in worker.output()
    assert "killed what was left of it" in worker.output()

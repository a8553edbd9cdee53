"""Crash testing: the scheduler or a worker dies at every named fault point
(common/fault.h, docs/operations.md), is killed with SIGKILL at random
moments, or freezes; every run still completes, nothing is lost, and each
task's success is recorded exactly once (execution is at-least-once).
"""
import json
import os
import random
import signal
import time

import pytest

from weftproc import ipc_addr, wait_for

FAULT_EXIT = 86

# A diamond/chain mix of 10 tasks:
#   a -> b1, b2, b3;  b1, b2 -> c;  b3 -> d;  c, d -> e;  e -> f, g;  f, g -> h
EDGES = {
    "a": [],
    "b1": ["a"], "b2": ["a"], "b3": ["a"],
    "c": ["b1", "b2"], "d": ["b3"],
    "e": ["c", "d"],
    "f": ["e"], "g": ["e"],
    "h": ["f", "g"],
}

# Fault points and the hit that kills the process. Before the fault can
# hit, the test submits and triggers with no worker connected (1 commit
# and 1 reply each), so counts past 2 fall inside the run, which has at
# least 10 assignments, 10 results and a commit and a reply for each.
SCHED_POINTS = [
    ("store.before_commit", 6),
    ("store.after_commit", 6),
    ("sched.before_reply", 6),
    ("sched.after_reply", 6),
    ("dispatch.assigned", 4),
    ("dispatch.result", 4),
]
# Worker points, armed in the only worker: 10 spawns, 10 results.
WORKER_POINTS = [
    ("worker.spawned", 4),
    ("worker.before_report", 4),
    ("worker.after_report", 4),
]


def diamond_dag(path, marks, sleep="0.15"):
    lines = ["name: crashy", "tasks:"]
    for task, needs in EDGES.items():
        lines.append(f"  {task}:")
        if needs:
            lines.append(f"    needs: [{', '.join(needs)}]")
        lines.append(f"    run: echo \"$WEFT_TASK $WEFT_ATTEMPT\" >> {marks}"
                     f" && sleep {sleep}")
    path.write_text("\n".join(lines) + "\n")
    return path


def read_marks(marks):
    """{task: number of executions} from the marks file."""
    counts = {}
    if not marks.exists():
        return counts
    for line in marks.read_text().splitlines():
        if line.strip():
            task = line.split()[0]
            counts[task] = counts.get(task, 0) + 1
    return counts


def wait_exit(proc, timeout, what):
    """Waits for PROC to exit; returns its exit code."""
    wait_for(lambda: not proc.alive(), timeout=timeout, interval=0.05,
             what=what)
    return proc.p.returncode


def check_recorded_once(doc, tasks, marks):
    """The run succeeded, every task is recorded once as a success, and
    every task ran at least once; returns the tasks that ran more than
    once."""
    assert doc["state"] == "success", json.dumps(doc, indent=1)
    by_id = {t["id"]: t for t in doc["tasks"]}
    assert sorted(by_id) == sorted(tasks), "tasks lost or invented"
    assert len(doc["tasks"]) == len(tasks), "a task recorded twice"
    for tid, t in by_id.items():
        assert t["state"] == "success", t
        assert t["attempts"] >= 1, t
    ran = read_marks(marks)
    missing = [t for t in tasks if ran.get(t, 0) < 1]
    assert not missing, f"never executed: {missing}"
    return {t: n for t, n in ran.items() if n > 1}


@pytest.mark.parametrize("point,nth", SCHED_POINTS,
                         ids=[p for p, _ in SCHED_POINTS])
def test_scheduler_dies_at_fault_point(cluster, tmp_path, point, nth):
    addr = ipc_addr(tmp_path)
    marks = tmp_path / "marks"
    dag = diamond_dag(tmp_path / "crashy.yaml", marks)
    sched = cluster.start_scheduler(
        listen=addr, env={"WEFT_FAULT": f"{point}:{nth}"})
    # Submit and trigger before any worker exists: these hits are known.
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "crashy", check=0).stdout.strip()
    cluster.start_worker("w1", slots=2)
    code = wait_exit(sched, 40, f"the scheduler to die at {point}")
    assert code == FAULT_EXIT, f"scheduler exited {code}, not at the fault"
    assert f"fault point {point} reached" in sched.output()
    # Mid-run: the last task had not started yet.
    assert "h" not in read_marks(marks), "the fault hit after the run"
    cluster.start_scheduler(listen=addr)
    assert cluster.addr == addr
    doc = cluster.wait_run(run_id, timeout=60)
    again = check_recorded_once(doc, EDGES, marks)
    print(f"{point}:{nth}: ran more than once: {again or 'none'}")


@pytest.mark.parametrize("point,nth", WORKER_POINTS,
                         ids=[p for p, _ in WORKER_POINTS])
def test_worker_dies_at_fault_point(cluster, tmp_path, point, nth):
    addr = ipc_addr(tmp_path)
    marks = tmp_path / "marks"
    dag = diamond_dag(tmp_path / "crashy.yaml", marks)
    cluster.start_scheduler(listen=addr)
    w = cluster.start_worker("w1", slots=2,
                             env={"WEFT_FAULT": f"{point}:{nth}"})
    cluster.wait_workers(1)
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "crashy", check=0).stdout.strip()
    code = wait_exit(w, 40, f"the worker to die at {point}")
    assert code == FAULT_EXIT, f"worker exited {code}, not at the fault"
    assert f"fault point {point} reached" in w.output()
    assert "h" not in read_marks(marks), "the fault hit after the run"
    # The same worker comes back: its HELLO no longer lists what died
    # with it, so the scheduler runs those attempts again at once.
    cluster.start_worker("w1", slots=2)
    doc = cluster.wait_run(run_id, timeout=60)
    again = check_recorded_once(doc, EDGES, marks)
    print(f"{point}:{nth}: ran more than once: {again or 'none'}")


def layered_dag(path, marks, layers=10, width=30, seed=7):
    """LAYERS x WIDTH tasks; each needs two of the layer above (seeded)."""
    rng = random.Random(seed)
    lines = ["name: chaos", "tasks:"]
    ids = []
    for layer in range(layers):
        for k in range(width):
            tid = f"l{layer}_{k}"
            lines.append(f"  {tid}:")
            if layer > 0:
                ups = rng.sample(range(width), 2)
                lines.append("    needs: [" + ", ".join(
                    f"l{layer - 1}_{u}" for u in ups) + "]")
            lines.append(f"    run: echo $WEFT_TASK >> {marks}")
            ids.append(tid)
    path.write_text("\n".join(lines) + "\n")
    return ids


def count_lines(path):
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_chaos_scheduler_sigkill(cluster, tmp_path):
    """300 tasks on 2 workers while the scheduler is SIGKILLed ~10 times
    at random moments (seeded) and restarted on the same dir and address."""
    seed = int(os.environ.get("WEFT_CHAOS_SEED", "20261127"))
    rng = random.Random(seed)
    addr = ipc_addr(tmp_path)
    marks = tmp_path / "marks"
    ids = layered_dag(tmp_path / "chaos.yaml", marks)
    lease = ["--lease", "5s"]
    cluster.start_scheduler(listen=addr, extra=lease)
    cluster.start_worker("w1", slots=4)
    cluster.start_worker("w2", slots=4)
    cluster.wait_workers(2)
    cluster.weft("submit", tmp_path / "chaos.yaml", check=0)
    run_id = cluster.weft("trigger", "chaos", check=0).stdout.strip()
    deadline = time.monotonic() + 75
    kills = 0
    while kills < 10 and time.monotonic() < deadline:
        # Kill after a random amount of progress, and a random instant.
        target = count_lines(marks) + rng.randint(3, 25)
        try:
            wait_for(lambda: count_lines(marks) >= target, timeout=15,
                     interval=0.01, what="progress")
        except AssertionError:
            break  # the run may be over
        time.sleep(rng.uniform(0, 0.05))
        cluster.sched.kill()
        kills += 1
        if count_lines(marks) >= len(ids):
            cluster.start_scheduler(listen=addr, extra=lease)
            break
        cluster.start_scheduler(listen=addr, extra=lease)
    if not cluster.sched.alive():
        cluster.start_scheduler(listen=addr, extra=lease)
    left = max(10.0, deadline + 10 - time.monotonic())
    doc = cluster.wait_run(run_id, timeout=left)
    again = check_recorded_once(doc, ids, marks)
    print(f"chaos seed {seed}: {kills} scheduler kills, {len(ids)} tasks, "
          f"{len(again)} ran more than once "
          f"({sum(again.values()) - len(again)} extra executions)")
    assert kills >= 3, "the run ended before the chaos began"


def marks_by_worker(marks):
    """[(task, attempt, worker, pid)] from marks written by tracked tasks."""
    out = []
    if marks.exists():
        for line in marks.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                out.append((parts[0], int(parts[1]), parts[2], int(parts[3])))
    return out


def tracked_dag(path, marks, tasks, slow_first="1.5", slow_rest="0.3"):
    """Independent TASKS and a join; each writes 'task attempt worker pid'.
    First attempts take SLOW_FIRST seconds, later ones SLOW_REST."""
    lines = ["name: tracked", "tasks:"]
    for t in tasks:
        lines += [f"  {t}:",
                  "    run: echo \"$WEFT_TASK $WEFT_ATTEMPT $(basename $PWD)"
                  f" $$\" >> {marks}; if [ $WEFT_ATTEMPT = 1 ]; then "
                  f"sleep {slow_first}; else sleep {slow_rest}; fi"]
    lines += ["  join:", f"    needs: [{', '.join(tasks)}]",
              f"    run: echo \"join 1 $(basename $PWD) $$\" >> {marks}"]
    path.write_text("\n".join(lines) + "\n")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purpose (its parent has not reaped it yet).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_worker_sigkill_mid_run(cluster, tmp_path):
    """A worker killed with SIGKILL: after the lease its attempts run on the
    other worker and the run completes."""
    marks = tmp_path / "marks"
    tasks = [f"t{k}" for k in range(4)]
    tracked_dag(tmp_path / "tracked.yaml", marks, tasks, slow_first="3")
    cluster.start_scheduler(extra=["--lease", "2s"])
    w1 = cluster.start_worker("w1", slots=4)
    cluster.wait_workers(1)
    cluster.weft("submit", tmp_path / "tracked.yaml", check=0)
    run_id = cluster.weft("trigger", "tracked", check=0).stdout.strip()
    # Every first attempt starts on w1 (the only worker), then w2 joins.
    wait_for(lambda: len(marks_by_worker(marks)) >= len(tasks), timeout=20,
             what="w1 to start every task")
    cluster.start_worker("w2", slots=4)
    cluster.wait_workers(2)
    os.kill(w1.p.pid, signal.SIGKILL)
    w1.p.wait(10)
    t0 = time.monotonic()
    doc = cluster.wait_run(run_id, timeout=30)
    took = time.monotonic() - t0
    check_recorded_once(doc, tasks + ["join"], marks)
    by_id = {t["id"]: t for t in doc["tasks"]}
    for t in tasks:
        assert by_id[t]["worker"] == "w2", by_id[t]
        assert by_id[t]["attempts"] >= 2, by_id[t]
    ws = {w["name"]: w for w in json.loads(
        cluster.weft("workers", "--json", check=0).stdout)}
    assert ws["w1"]["state"] == "lost", ws
    print(f"run finished {took:.1f}s after the worker was killed")
    # The dead worker's attempts are orphans now: end them.
    for _, _, worker, pid in marks_by_worker(marks):
        if worker == "work-w1" and pid_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_frozen_worker(cluster, tmp_path):
    """A worker and its attempts frozen with SIGSTOP: the scheduler declares
    it lost after the lease and the run completes on the other worker; after
    SIGCONT the stale worker is fenced off (told to HELLO again, its
    attempts cancelled) and its task processes are killed."""
    marks = tmp_path / "marks"
    tasks = ["s1", "s2"]
    tracked_dag(tmp_path / "tracked.yaml", marks, tasks, slow_first="60")
    cluster.start_scheduler(extra=["--lease", "2s"])
    w1 = cluster.start_worker("w1", slots=2)
    cluster.wait_workers(1)
    cluster.weft("submit", tmp_path / "tracked.yaml", check=0)
    run_id = cluster.weft("trigger", "tracked", check=0).stdout.strip()
    wait_for(lambda: len(marks_by_worker(marks)) >= 2, timeout=20,
             what="w1 to start both tasks")
    frozen = [pid for _, _, wk, pid in marks_by_worker(marks)
              if wk == "work-w1"]
    assert len(frozen) == 2
    cluster.start_worker("w2", slots=2)
    cluster.wait_workers(2)
    # Freeze the machine: the worker and each attempt's process group.
    os.kill(w1.p.pid, signal.SIGSTOP)
    for pid in frozen:
        os.killpg(pid, signal.SIGSTOP)
    try:
        doc = cluster.wait_run(run_id, timeout=30)
        check_recorded_once(doc, tasks + ["join"], marks)
        by_id = {t["id"]: t for t in doc["tasks"]}
        for t in tasks:
            assert by_id[t]["worker"] == "w2", by_id[t]
            assert by_id[t]["attempts"] == 2, by_id[t]
        ws = {w["name"]: w for w in json.loads(
            cluster.weft("workers", "--json", check=0).stdout)}
        assert ws["w1"]["state"] == "lost", ws
        assert all(pid_alive(p) for p in frozen)
    finally:
        for pid in frozen:
            try:
                os.killpg(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        os.kill(w1.p.pid, signal.SIGCONT)
    # Thawed, w1 is told to HELLO again; its attempts are not current, so
    # the scheduler cancels them and the worker kills their groups.
    t0 = time.monotonic()
    wait_for(lambda: not any(pid_alive(p) for p in frozen), timeout=20,
             what="the stale attempts to be killed")
    took = time.monotonic() - t0
    wait_for(lambda: "asks for HELLO again" in w1.output(), timeout=10,
             what="w1 to be fenced off")
    assert "cancelled by the scheduler" in w1.output()
    # Their results reach the scheduler (it acknowledges them, so that the
    # worker stops sending) and change nothing.
    for t in tasks:
        wait_for(lambda: f"{run_id} {t} attempt 1: acknowledged"
                 in w1.output(), timeout=10,
                 what=f"the stale result of {t} to be acknowledged")
    # Its late results changed nothing.
    doc = cluster.show(run_id)
    by_id = {t["id"]: t for t in doc["tasks"]}
    for t in tasks:
        assert by_id[t]["state"] == "success" and by_id[t]["worker"] == "w2"
        assert by_id[t]["attempts"] == 2, by_id[t]
    print(f"stale attempts killed {took:.1f}s after SIGCONT")

"""Work sent ahead (docs/architecture.md, "Work sent ahead"): with short
tasks the scheduler gives a worker the next task of a chain before the
current one ends, and a few ready tasks more than its free slots. These
tests check what must stay true: a task sent ahead runs only after its
parent succeeded, never when the parent failed, and crashes of the
scheduler or the worker lose nothing and break no order.
"""
import json
import os
import random
import signal
import time

import pytest

from conftest import run_weft
from weftproc import ipc_addr, wait_for


def write(path, text):
    path.write_text(text)
    return path


def chain_yaml(name, n, marks, tail=""):
    """A chain t000 -> t001 -> ... of N short tasks, each appending its
    name to MARKS, then TAIL (more YAML tasks)."""
    lines = [f"name: {name}", "tasks:"]
    for i in range(n):
        lines.append(f"  t{i:03d}:")
        if i > 0:
            lines.append(f"    needs: [t{i - 1:03d}]")
        lines.append(f"    run: echo $WEFT_TASK >> {marks}")
    return "\n".join(lines) + "\n" + tail


def first_lines(marks):
    """The order in which tasks first ran."""
    seen, order = set(), []
    for line in marks.read_text().split():
        if line not in seen:
            seen.add(line)
            order.append(line)
    return order


def test_failed_parent_stops_what_was_sent_ahead(tmp_path):
    marks = tmp_path / "marks"
    ran = tmp_path / "after-ran"
    dag = write(tmp_path / "chain.yaml", chain_yaml("ahead", 30, marks, f"""\
  bad:
    needs: [t029]
    run: exit 3
  after:
    needs: [bad]
    run: touch {ran}
  after2:
    needs: [after]
    run: touch {ran}
"""))
    env = dict(os.environ, WEFT_LOG_LEVEL="debug")
    r = run_weft("run", dag, "--workers", "1", "--data", tmp_path / "d",
                 "--json", env=env, timeout=120)
    assert r.returncode == 1, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    states = {t["id"]: t["state"] for t in doc["tasks"]}
    assert states["bad"] == "failed"
    assert states["after"] == "upstream_failed"
    assert states["after2"] == "upstream_failed"
    assert all(states[f"t{i:03d}"] == "success" for i in range(30))
    assert not ran.exists(), "a task sent ahead ran after its parent failed"
    assert first_lines(marks) == [f"t{i:03d}" for i in range(30)]
    # The mechanism was in use (short tasks on one worker).
    assert "(ahead)" in r.stderr


def test_layered_graph_runs_whole_and_in_order(tmp_path):
    """Short tasks with two random parents each: work is sent ahead for
    slots and for parents, the worker's and the scheduler's views of what
    runs keep crossing, and still everything runs once, after its
    parents, and nothing is handed back."""
    rng = random.Random(11)
    marks = tmp_path / "marks"
    layers, width = 12, 40
    lines = ["name: layered", "tasks:"]
    parents = {}
    for layer in range(layers):
        for k in range(width):
            tid = f"l{layer:02d}_{k:02d}"
            lines.append(f"  {tid}:")
            if layer > 0:
                ups = [f"l{layer - 1:02d}_{u:02d}"
                       for u in rng.sample(range(width), 2)]
                parents[tid] = ups
                lines.append(f"    needs: [{', '.join(ups)}]")
            lines.append(f"    run: echo $WEFT_TASK >> {marks}")
    dag = write(tmp_path / "layered.yaml", "\n".join(lines) + "\n")
    env = dict(os.environ, WEFT_LOG_LEVEL="debug")
    r = run_weft("run", dag, "--workers", "2", "--data", tmp_path / "d",
                 "--json", env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    assert all(t["state"] == "success" and t["attempts"] == 1
               for t in doc["tasks"])
    assert "handed back" not in r.stderr
    assert "(ahead)" in r.stderr
    ran = marks.read_text().split()
    assert sorted(ran) == sorted(t["id"] for t in doc["tasks"])
    pos = {t: i for i, t in enumerate(ran)}
    for tid, ups in parents.items():
        assert all(pos[u] < pos[tid] for u in ups), (tid, ups)


def test_retried_parent_runs_its_follower_once(tmp_path):
    flag = tmp_path / "failed-once"
    count = tmp_path / "count"
    dag = write(tmp_path / "retry.yaml", f"""\
name: retry
tasks:
  warm1: {{run: 'true'}}
  warm2: {{run: 'true', needs: [warm1]}}
  warm3: {{run: 'true', needs: [warm2]}}
  flaky:
    needs: [warm3]
    retries: 1
    retry_delay: 100ms
    run: test -e {flag} || {{ touch {flag}; exit 1; }}
  follow:
    needs: [flaky]
    retries: 0
    run: echo "$WEFT_ATTEMPT" >> {count}
""")
    r = run_weft("run", dag, "--workers", "1", "--data", tmp_path / "d",
                 "--json", timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(r.stdout)
    states = {t["id"]: t["state"] for t in doc["tasks"]}
    assert states == {"warm1": "success", "warm2": "success",
                      "warm3": "success", "flaky": "success",
                      "follow": "success"}
    # It ran once, after the retry, as its attempt 1, although it was
    # probably sent ahead of flaky's failed first attempt (and withdrawn).
    assert count.read_text().split() == ["1"]
    follow = next(t for t in doc["tasks"] if t["id"] == "follow")
    assert follow["attempts"] == 1


@pytest.mark.parametrize("victim", ["scheduler", "worker"])
def test_sigkill_during_a_chain_sent_ahead(cluster, tmp_path, victim):
    """A chain of 150 short tasks on one worker while the scheduler (or
    the worker) is SIGKILLed three times at random moments and restarted:
    the run succeeds, and no task ever ran before its parent."""
    rng = random.Random(int(os.environ.get("WEFT_CHAOS_SEED", "20261127")))
    addr = ipc_addr(tmp_path)
    marks = tmp_path / "marks"
    n = 150
    write(tmp_path / "chain.yaml", chain_yaml("chain", n, marks))
    lease = ["--lease", "3s"]
    cluster.start_scheduler(listen=addr, extra=lease)
    worker = cluster.start_worker("w1", slots=1)
    cluster.wait_workers(1)
    cluster.weft("submit", tmp_path / "chain.yaml", check=0)
    run_id = cluster.weft("trigger", "chain", check=0).stdout.strip()
    for _ in range(3):
        before = len(first_lines(marks)) if marks.exists() else 0
        wait_for(lambda: marks.exists() and
                 len(first_lines(marks)) >= before + rng.randint(5, 25),
                 timeout=60, what="progress")
        if victim == "scheduler":
            cluster.sched.signal(signal.SIGKILL)
            wait_for(lambda: not cluster.sched.alive(), what="kill")
            cluster.start_scheduler(listen=addr, extra=lease)
        else:
            worker.signal(signal.SIGKILL)
            wait_for(lambda: not worker.alive(), what="kill")
            worker = cluster.start_worker("w1", slots=1)
    doc = cluster.wait_run(run_id, timeout=120)
    assert doc["state"] == "success", json.dumps(doc, indent=1)
    assert all(t["state"] == "success" for t in doc["tasks"])
    assert first_lines(marks) == [f"t{i:03d}" for i in range(n)]


def test_cancel_frees_what_was_held_ahead(cluster, tmp_path):
    """Cancelling a run whose short tasks are held ahead on the worker:
    the worker drops them without a word, and the scheduler must not go
    on counting them against the worker's slots."""
    marks = tmp_path / "marks"
    lines = ["name: many", "tasks:"]
    for i in range(400):
        lines.append(f"  t{i:03d}: {{run: sleep 0.008; echo $WEFT_TASK >> {marks}}}")
    write(tmp_path / "many.yaml", "\n".join(lines) + "\n")
    write(tmp_path / "after.yaml",
          "name: after\ntasks:\n  a: {run: 'true'}\n  b: {run: 'true'}\n")
    cluster.start_scheduler()
    cluster.start_worker("w1", slots=2)
    cluster.wait_workers(1)
    cluster.weft("submit", tmp_path / "many.yaml", check=0)
    cluster.weft("submit", tmp_path / "after.yaml", check=0)
    run_id = cluster.weft("trigger", "many", check=0).stdout.strip()
    wait_for(lambda: marks.exists() and len(marks.read_text().split()) > 60,
             timeout=60, what="progress")
    cluster.weft("cancel", run_id, check=0)
    assert cluster.wait_run(run_id)["state"] == "cancelled"

    def idle():
        ws = json.loads(cluster.weft("workers", "--json", check=0).stdout)
        return ws[0]["slots_used"] == 0
    wait_for(idle, timeout=15, what="the worker's slots to be free")
    second = cluster.weft("trigger", "after", check=0).stdout.strip()
    assert cluster.wait_run(second, timeout=30)["state"] == "success"

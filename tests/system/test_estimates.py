"""Learned estimates: a task without `estimate` is ordered by the durations
its earlier runs took (table `durations`), so that the second run of a DAG
starts its longest path first. One worker slot makes the order visible in
the tasks' start times.
"""
import json
from datetime import datetime

from conftest import run_weft

# Two independent branches. Without estimates every task counts the same
# (1 s), so the two-task chain looks longer and goes first; what it really
# takes is a few ms against 600 ms for `long`.
DAG = """\
name: est
tasks:
  short1:
    run: "true"
  short2:
    run: "true"
    needs: [short1]
  long:
    run: sleep 0.6
"""

RUN_KEYS = {"run_id", "dag", "dag_version", "state", "logical_time", "params",
            "created_at", "started_at", "ended_at", "tasks"}
TASK_KEYS = {"id", "state", "attempts", "exit_code", "worker", "started_at",
             "ended_at", "outputs", "error"}


def ts(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def run_once(tmp_path, dag, data):
    r = run_weft("run", dag, "--workers", "1", "--data", data, "--json",
                 timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    # Nothing learned shows in the spec's JSON: same fields as ever.
    assert set(doc) == RUN_KEYS
    for t in doc["tasks"]:
        assert set(t) == TASK_KEYS
    return {t["id"]: t for t in doc["tasks"]}, doc


def first_started(tasks, a, b):
    return a if ts(tasks[a]["started_at"]) < ts(tasks[b]["started_at"]) else b


def test_second_run_starts_the_long_branch_first(tmp_path):
    dag = tmp_path / "est.yaml"
    dag.write_text(DAG)
    data = tmp_path / "data"
    tasks, doc = run_once(tmp_path, dag, data)
    assert doc["run_id"] == "est.1"
    # No history yet: the longer chain by count goes first.
    assert first_started(tasks, "short1", "long") == "short1"
    tasks, doc = run_once(tmp_path, dag, data)
    assert doc["run_id"] == "est.2"
    assert first_started(tasks, "short1", "long") == "long"
    # And it stays learned.
    tasks, doc = run_once(tmp_path, dag, data)
    assert first_started(tasks, "short1", "long") == "long"


def test_an_explicit_estimate_wins_over_history(tmp_path):
    # `long` learns 600 ms, but the estimates say the chain is longer.
    dag = tmp_path / "est.yaml"
    dag.write_text(DAG)
    data = tmp_path / "data"
    run_once(tmp_path, dag, data)
    run_once(tmp_path, dag, data)
    dag.write_text(DAG.replace('  short2:\n', '  short2:\n    estimate: 5s\n'))
    tasks, _ = run_once(tmp_path, dag, data)
    assert first_started(tasks, "short1", "long") == "short1"


def test_matrix_expansions_share_their_task_history(tmp_path):
    # The expansions of `long` learn together: each of them outranks the
    # chain on the second run, including a value that never ran before.
    dag = tmp_path / "est.yaml"
    dag.write_text(DAG.replace(
        "  long:\n    run: sleep 0.6\n",
        "  long:\n    matrix: {n: [1]}\n    run: sleep 0.6\n"))
    data = tmp_path / "data"
    tasks, _ = run_once(tmp_path, dag, data)
    assert first_started(tasks, "short1", "long[n=1]") == "short1"
    dag.write_text(DAG.replace(
        "  long:\n    run: sleep 0.6\n",
        "  long:\n    matrix: {n: [2]}\n    run: sleep 0.6\n"))
    tasks, _ = run_once(tmp_path, dag, data)
    assert first_started(tasks, "short1", "long[n=2]") == "long[n=2]"

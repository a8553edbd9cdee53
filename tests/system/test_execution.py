"""The execution core end to end: a real scheduler, real workers and the
CLI, on real sockets and a real LMDB in a temp dir.
"""
import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from conftest import WEFT_BIN, run_weft
from weftproc import wait_for


def write(path, text):
    path = Path(path)
    path.write_text(text)
    return path


def started_cluster(cluster, workers=2, slots=2, listen="tcp://127.0.0.1:0"):
    cluster.start_scheduler(listen=listen)
    for k in range(workers):
        cluster.start_worker(f"w{k + 1}", slots=slots)
    cluster.wait_workers(workers)
    return cluster


def tasks_by_id(doc):
    return {t["id"]: t for t in doc["tasks"]}


def test_submit_versions_and_a_successful_run(cluster, tmp_path):
    started_cluster(cluster)
    dag = write(tmp_path / "hello.yaml", """
name: hello
params: {who: world}
tasks:
  greet:
    run: echo "hello {{ params.who }}" && echo "greeting=hi {{ params.who }}" >> $WEFT_OUTPUT
  shout:
    needs: greet
    run: ["sh", "-c", "echo got $0", "{{ tasks.greet.outputs.greeting }}"]
""")
    r = cluster.weft("submit", dag, check=0)
    assert r.stdout.strip() == "hello version 1"
    # An unchanged file keeps its version; a changed one gets a new one.
    r = cluster.weft("submit", dag, check=0)
    assert r.stdout.strip() == "hello version 1"
    dag.write_text(dag.read_text() + "\n# changed\n")
    r = cluster.weft("submit", dag, check=0)
    assert r.stdout.strip() == "hello version 2"

    r = cluster.weft("trigger", "hello", "--param", "who=weft", check=0)
    run_id = r.stdout.strip()
    assert run_id == "hello.1"
    doc = cluster.wait_run(run_id)
    assert doc["state"] == "success", doc
    assert doc["dag"] == "hello" and doc["dag_version"] == 2
    assert doc["params"] == {"who": "weft"}
    for key in ("created_at", "started_at", "ended_at", "logical_time"):
        assert doc[key].endswith("Z"), key
    t = tasks_by_id(doc)
    assert [x["id"] for x in doc["tasks"]] == ["greet", "shout"]
    assert t["greet"]["outputs"] == {"greeting": "hi weft"}
    assert t["greet"]["exit_code"] == 0 and t["greet"]["attempts"] == 1
    assert t["greet"]["error"] is None
    assert t["shout"]["worker"] in ("w1", "w2")
    logs = cluster.weft("logs", run_id, "shout", check=0)
    assert logs.stdout == "got hi weft\n"

    # An unknown param is refused, and creates no run.
    r = cluster.weft("trigger", "hello", "--param", "nope=1", check=1)
    assert "nope" in r.stderr
    runs = json.loads(cluster.weft("runs", "--json", check=0).stdout)
    assert [x["run_id"] for x in runs] == ["hello.1"]


def test_failures_retries_and_trigger_rules(cluster, tmp_path):
    started_cluster(cluster)
    counter = tmp_path / "count"
    dag = write(tmp_path / "rules.yaml", f"""
name: rules
tasks:
  flaky:
    retries: 2
    retry_delay: 100ms
    run: n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; test $n -ge 3
  broken:
    run: exit 7
  after_broken:
    needs: broken
    run: "true"
  cleanup:
    needs: [broken]
    trigger: all_done
    run: "true"
  alert:
    needs: [flaky, broken]
    trigger: one_failed
    run: echo paging
  gated:
    needs: flaky
    when: tasks.flaky.outputs.nothing == 'x'
    run: "true"
""")
    cluster.weft("submit", dag, check=0)
    r = cluster.weft("trigger", "rules", "--wait", check=1, timeout=120)
    run_id = r.stdout.strip().splitlines()[0]
    doc = cluster.show(run_id)
    t = tasks_by_id(doc)
    assert doc["state"] == "failed"
    assert t["flaky"]["state"] == "success" and t["flaky"]["attempts"] == 3
    assert t["broken"]["state"] == "failed" and t["broken"]["exit_code"] == 7
    assert t["broken"]["error"] is None
    assert t["after_broken"]["state"] == "upstream_failed"
    assert t["after_broken"]["attempts"] == 0
    assert t["cleanup"]["state"] == "success"
    assert t["alert"]["state"] == "success"
    # A condition naming an output the task did not set fails the task.
    assert t["gated"]["state"] == "failed" and "nothing" in t["gated"]["error"]


def test_when_false_skips_and_skips_propagate(cluster, tmp_path):
    started_cluster(cluster)
    dag = write(tmp_path / "gate.yaml", """
name: gate
params: {threshold: 0.85}
tasks:
  evaluate:
    run: echo auc=0.80 >> $WEFT_OUTPUT
  deploy:
    needs: evaluate
    when: tasks.evaluate.outputs.auc >= params.threshold
    run: "true"
  announce:
    needs: deploy
    run: "true"
  report:
    needs: deploy
    trigger: none_failed
    run: "true"
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "gate", check=0).stdout.strip()
    doc = cluster.wait_run(run_id)
    t = tasks_by_id(doc)
    assert doc["state"] == "success"
    assert t["deploy"]["state"] == "skipped"
    assert t["announce"]["state"] == "skipped"
    assert t["report"]["state"] == "success"
    run2 = cluster.weft("trigger", "gate", "--param", "threshold=0.5",
                        check=0).stdout.strip()
    assert tasks_by_id(cluster.wait_run(run2))["deploy"]["state"] == "success"


def test_timeout_kills_the_attempt(cluster, tmp_path):
    started_cluster(cluster, workers=1)
    dag = write(tmp_path / "slow.yaml", """
name: slow
tasks:
  sleepy:
    timeout: 1s
    run: sleep 60
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "slow", check=0).stdout.strip()
    doc = cluster.wait_run(run_id, timeout=30)
    t = tasks_by_id(doc)["sleepy"]
    assert t["state"] == "failed"
    assert "timed out" in t["error"]


def test_cancel_kills_the_whole_process_group(cluster, tmp_path):
    started_cluster(cluster, workers=1)
    pids = tmp_path / "pids"
    dag = write(tmp_path / "long.yaml", f"""
name: long
tasks:
  hang:
    run: sleep 300 & echo $! >> {pids}; sleep 300 & echo $! >> {pids}; wait
  never:
    needs: hang
    run: "true"
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "long", check=0).stdout.strip()
    wait_for(lambda: pids.exists() and len(pids.read_text().split()) == 2,
             what="task processes")
    children = [int(p) for p in pids.read_text().split()]
    r = cluster.weft("cancel", run_id, check=0)
    assert "cancelled" in r.stdout
    doc = cluster.wait_run(run_id)
    assert doc["state"] == "cancelled"
    assert {t["state"] for t in doc["tasks"]} == {"cancelled"}

    def gone():
        for pid in children:
            try:
                os.kill(pid, 0)
                return False
            except ProcessLookupError:
                pass
        return True

    wait_for(gone, timeout=20, what="the task's processes to die")


def test_retry_reruns_only_what_failed(cluster, tmp_path):
    started_cluster(cluster)
    flag = tmp_path / "fixed"
    prep = tmp_path / "prep-count"
    dag = write(tmp_path / "fix.yaml", f"""
name: fix
tasks:
  prepare:
    run: echo x >> {prep}
  train:
    needs: prepare
    run: test -e {flag}
  evaluate:
    needs: train
    run: "true"
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "fix", check=0).stdout.strip()
    doc = cluster.wait_run(run_id)
    assert doc["state"] == "failed"
    assert tasks_by_id(doc)["evaluate"]["state"] == "upstream_failed"
    flag.touch()
    r = cluster.weft("retry", run_id, check=0)
    assert "retrying 2 tasks" in r.stdout
    doc = cluster.wait_run(run_id)
    t = tasks_by_id(doc)
    assert doc["state"] == "success"
    assert t["train"]["attempts"] == 2 and t["evaluate"]["attempts"] == 1
    assert prep.read_text() == "x\n"  # prepare did not run again
    # Both attempts' logs are kept.
    cluster.weft("logs", run_id, "train", "--attempt", "1", check=0)
    cluster.weft("logs", run_id, "train", "--attempt", "3", check=1)


def test_scheduler_restart_mid_run_loses_nothing(cluster, tmp_path):
    listen = f"ipc://{tmp_path}/sched.sock"
    started_cluster(cluster, listen=listen)
    marks = tmp_path / "marks"
    marks.mkdir()
    tasks = "\n".join(
        f"  t{i}:\n    run: sleep 0.3; touch {marks}/t{i}\n"
        + (f"    needs: t{i - 1}\n" if i % 4 else "")
        for i in range(12))
    dag = write(tmp_path / "chain.yaml",
                f"name: chain\nparams: {{tag: x}}\ntasks:\n{tasks}")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "chain", "--param", "tag=y",
                          check=0).stdout.strip()
    wait_for(lambda: len(list(marks.iterdir())) >= 3, what="some progress")
    assert cluster.sched.stop() == 0  # SIGTERM: clean shutdown, exit 0
    cluster.start_scheduler(listen=listen)
    doc = cluster.wait_run(run_id, timeout=90)
    assert doc["state"] == "success", doc
    assert doc["params"] == {"tag": "y"}  # overrides survive recovery
    assert all(t["state"] == "success" for t in doc["tasks"])
    assert len(list(marks.iterdir())) == 12


def test_logs_outlive_the_worker(cluster, tmp_path):
    started_cluster(cluster, workers=1)
    dag = write(tmp_path / "talk.yaml", """
name: talk
tasks:
  talk:
    run: for i in 1 2 3; do echo out $i; echo err $i >&2; done
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "talk", check=0).stdout.strip()
    cluster.wait_run(run_id)
    for p in cluster.procs[1:]:
        assert p.stop() == 0  # SIGTERM drains and exits 0
    out = cluster.weft("logs", run_id, "talk", check=0).stdout
    assert out.count("out ") == 3 and out.count("err ") == 3
    r = cluster.weft("logs", run_id, "nope", check=1)
    assert "no task" in r.stderr


def test_bad_input_is_refused_cleanly(cluster, tmp_path):
    started_cluster(cluster, workers=1)
    r = cluster.weft("show", "nope.1", check=1)
    assert r.stderr.startswith("weft: error:")
    cluster.weft("trigger", "nope", check=1)
    cluster.weft("show", check=2)
    cluster.weft("runs", "--limit", "zero", check=2)
    cluster.weft("runs", "--bogus", check=2)
    r = cluster.weft("runs", "--state", "done", check=2)
    assert "unknown run state 'done'" in r.stderr
    r = cluster.weft("runs", "--dag", "nope", check=1)
    assert r.stderr.startswith("weft: error: no DAG named 'nope'")
    bad = write(tmp_path / "bad.yaml", "name: bad\ntasks:\n  a: {run: x, retires: 2}\n")
    r = cluster.weft("submit", bad, check=1)
    assert "bad.yaml:3:" in r.stderr and "retries" in r.stderr
    assert json.loads(cluster.weft("dags", "--json", check=0).stdout) == []

    dag = write(tmp_path / "hostile.yaml", """
name: hostile
tasks:
  flood:
    run: head -c 10000000 /dev/zero | tr '\\0' 'a' > $WEFT_OUTPUT
  missing:
    run: [no-such-program-weft, arg]
  missing_sh:
    run: no-such-program-weft
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "hostile", check=0).stdout.strip()
    doc = cluster.wait_run(run_id)
    t = tasks_by_id(doc)
    assert t["flood"]["state"] == "failed" and "WEFT_OUTPUT" in t["flood"]["error"]
    assert t["missing"]["state"] == "failed"
    assert "no-such-program-weft" in t["missing"]["error"]
    assert t["missing_sh"]["state"] == "failed"
    assert t["missing_sh"]["exit_code"] == 127
    # The scheduler is still fine.
    cluster.weft("runs", check=0)


@pytest.mark.parametrize("args,says", [
    (["runs", "--scheduler", "bogus"], "--scheduler 'bogus': not an address"),
    (["runs", "--scheduler", "http://h:80"], "unknown transport 'http://'"),
    (["runs", "--scheduler", "tcp://127.0.0.1"], "no port"),
    (["show", "x.1", "--scheduler", "tcp://127.0.0.1:notaport"], "port 'notaport'"),
    (["worker", "--connect", "tcp://:7070", "--work-dir", "{d}"],
     "--connect 'tcp://:7070': no host"),
    (["scheduler", "--listen", "tcp://127.0.0.1:70000", "--data", "{d}"],
     "--listen 'tcp://127.0.0.1:70000'"),
    (["scheduler", "--listen", "udp://0.0.0.0:1", "--data", "{d}"],
     "unknown transport 'udp://'"),
])
def test_malformed_addresses_are_usage_errors(tmp_path, args, says):
    # Before anything dials or listens (NNG would only say "invalid
    # argument", or fail to connect in puzzling ways), or makes a dir.
    args = [a.replace("{d}", str(tmp_path / "d")) for a in args]
    r = run_weft(*args, timeout=30)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("weft: error: "), r.stderr
    assert says in r.stderr.splitlines()[0], r.stderr
    assert not (tmp_path / "d").exists()


def test_a_malformed_weft_scheduler_variable_is_named(tmp_path):
    env = dict(os.environ, WEFT_SCHEDULER="tcp://host")
    for args in (["runs"], ["worker", "--work-dir", str(tmp_path)]):
        r = run_weft(*args, env=env, timeout=30)
        assert r.returncode == 2, r.stderr
        assert "$WEFT_SCHEDULER 'tcp://host': no port" in r.stderr


def test_unreachable_scheduler_exits_3_quickly(tmp_path):
    t0 = time.monotonic()
    r = run_weft("runs", "--scheduler", "tcp://127.0.0.1:9")
    assert r.returncode == 3
    assert "cannot reach" in r.stderr
    assert time.monotonic() - t0 < 15


def test_queues_resources_and_gpus(cluster, tmp_path):
    cluster.start_scheduler()
    cluster.start_worker("cpu", slots=2)
    cluster.start_worker("gpu", slots=2,
                         extra=["--queues", "default,gpu", "--resources", "cpus=4,gpus=2"])
    cluster.wait_workers(2)
    dag = write(tmp_path / "gpu.yaml", """
name: gpu
tasks:
  train:
    queue: gpu
    resources: {gpus: 1}
    run: echo "dev=$CUDA_VISIBLE_DEVICES" >> $WEFT_OUTPUT
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "gpu", check=0).stdout.strip()
    doc = cluster.wait_run(run_id)
    t = tasks_by_id(doc)["train"]
    assert doc["state"] == "success"
    assert t["worker"] == "gpu"
    assert t["outputs"]["dev"] in ("0", "1")
    ws = {w["name"]: w for w in json.loads(cluster.weft("workers", "--json", check=0).stdout)}
    assert ws["gpu"]["queues"] == ["default", "gpu"]
    assert ws["gpu"]["resources"]["gpus"] == 2
    for key in ("name", "state", "address", "queues", "slots", "slots_used",
                "resources", "last_seen_at"):
        assert key in ws["cpu"]


def test_weft_run_embedded_then_read_the_data_dir(tmp_path):
    dag = write(tmp_path / "local.yaml", """
name: local
tasks:
  a:
    run: echo hi from a; echo n=1 >> $WEFT_OUTPUT
  b:
    needs: a
    run: echo "b sees {{ tasks.a.outputs.n }}"
""")
    data = tmp_path / "state"
    r = run_weft("run", dag, "--workers", "2", "--data", data, "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run_id"] == "local.1" and doc["state"] == "success"
    assert [t["id"] for t in doc["tasks"]] == ["a", "b"]
    r = run_weft("show", "local.1", "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "success"
    r = run_weft("logs", "local.1", "b", "--data", data)
    assert r.returncode == 0 and r.stdout == "b sees 1\n"
    # A failing DAG exits 1 and still prints its table.
    bad = write(tmp_path / "fail.yaml", "name: fail\ntasks:\n  x: {run: exit 3}\n")
    r = run_weft("run", bad, "--workers", "1", "--data", data, timeout=60)
    assert r.returncode == 1
    assert "failed" in r.stdout


def test_priority_orders_ready_tasks(cluster, tmp_path):
    cluster.start_scheduler()
    cluster.start_worker("solo", slots=1)
    cluster.wait_workers(1)
    order = tmp_path / "order"
    dag = write(tmp_path / "prio.yaml", f"""
name: prio
tasks:
  low:    {{priority: 1,  run: echo low >> {order}}}
  high:   {{priority: 10, run: echo high >> {order}}}
  middle: {{priority: 5,  run: echo middle >> {order}}}
  plain:  {{run: echo plain >> {order}}}
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "prio", check=0).stdout.strip()
    assert cluster.wait_run(run_id)["state"] == "success"
    assert order.read_text().split() == ["high", "middle", "low", "plain"]


def test_logs_follow_streams_until_the_attempt_ends(cluster, tmp_path):
    started_cluster(cluster, workers=1)
    go = tmp_path / "go"
    dag = write(tmp_path / "slowlog.yaml", f"""
name: slowlog
tasks:
  talk:
    run: echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second
""")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "slowlog", check=0).stdout.strip()
    wait_for(lambda: cluster.weft("logs", run_id, "talk").stdout == "first\n",
             what="the first line")
    env = dict(os.environ, WEFT_SCHEDULER=cluster.addr)
    follow = subprocess.Popen(
        [WEFT_BIN, "logs", run_id, "talk", "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    go.touch()
    out, err = follow.communicate(timeout=30)
    assert follow.returncode == 0, err
    assert out == "first\nsecond\n"


def test_weft_run_relative_data_dir_and_workdir(tmp_path):
    # $WEFT_OUTPUT must resolve from a task's own workdir, also when the
    # data dir (and so the local worker's spool) was given relative.
    (tmp_path / "sub").mkdir()
    dag = write(tmp_path / "wd.yaml", """
name: wd
tasks:
  a:
    workdir: sub
    run: pwd > where; echo n=1 >> $WEFT_OUTPUT
""")
    r = run_weft("run", dag.name, "--workers", "1", "--data", "state",
                 "--json", cwd=tmp_path, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["tasks"][0]["outputs"] == {"n": "1"}
    assert (tmp_path / "sub" / "where").read_text().strip() == str(tmp_path / "sub")


def test_weft_run_with_its_stdio_closed(tmp_path):
    """A `weft run` started with stdin and stderr closed: the descriptors
    it opens first (a log, /dev/null) may then be 0 or 2, which a task's
    set-up would take for its own stdio. The task's output still goes to
    its log, and its stdin is /dev/null."""
    dag = write(tmp_path / "io.yaml",
                "name: io\ntasks:\n  t:\n    run: echo out; echo err >&2; cat\n")
    data = tmp_path / "data"

    def close_in():
        os.close(0)
        os.close(2)

    r = subprocess.run([WEFT_BIN, "run", str(dag), "--workers", "1",
                        "--data", str(data), "--json"],
                       stdout=subprocess.PIPE, text=True, timeout=60,
                       preexec_fn=close_in)
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["state"] == "success"
    logs = subprocess.run([WEFT_BIN, "logs", "io.1", "t", "--data",
                           str(data)], capture_output=True, text=True,
                          timeout=60)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout == "out\nerr\n"


def test_scheduler_with_its_stdio_closed_stops_cleanly(tmp_path):
    """The daemon too, started with stdin and stderr closed, serves and
    stops on SIGTERM with status 0 (it used to abort in libuv on the way
    out, on a descriptor of its own numbered 0-2)."""
    import signal
    from weftproc import ipc_addr
    addr = ipc_addr(tmp_path)

    def close_in():
        os.close(0)
        os.close(2)

    p = subprocess.Popen([WEFT_BIN, "scheduler", "--data",
                          str(tmp_path / "data"), "--listen", addr],
                         stdout=subprocess.DEVNULL, preexec_fn=close_in)
    try:
        wait_for(lambda: (tmp_path / "s.ipc").exists(), timeout=30,
                 what="the scheduler to listen")
        r = subprocess.run([WEFT_BIN, "runs", "--scheduler", addr],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_worker_with_its_stdio_closed(tmp_path):
    """`weft worker` started with stdin and stderr closed runs a task whose
    output reaches its log and whose stdin is /dev/null, and stops on
    SIGTERM with status 0 (main() opens /dev/null on a closed 0-2 first:
    libuv aborts on a descriptor of its own numbered 0-2)."""
    import signal
    from weftproc import Cluster
    c = Cluster(tmp_path)
    p = None
    try:
        c.start_scheduler()
        work = tmp_path / "work"
        work.mkdir()

        def close_in():
            os.close(0)
            os.close(2)

        p = subprocess.Popen([WEFT_BIN, "worker", "--connect", c.addr,
                              "--name", "quiet", "--work-dir", str(work)],
                             stdout=subprocess.DEVNULL, preexec_fn=close_in)
        c.wait_workers(1)
        dag = write(tmp_path / "io.yaml",
                    "name: io\ntasks:\n  t:\n    run: echo out; echo err >&2; cat\n")
        c.weft("submit", dag, check=0)
        run_id = c.weft("trigger", "io", check=0).stdout.strip()
        assert c.wait_run(run_id)["state"] == "success"
        assert c.weft("logs", run_id, "t", check=0).stdout == "out\nerr\n"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=30) == 0
    finally:
        if p is not None and p.poll() is None:
            p.kill()
            p.wait()
        c.stop()

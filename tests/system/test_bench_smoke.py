"""The benchmark suite's own code: bench/gen-workload's DAGs validate and
match their .edges and Makefile twins, make parses the Makefiles, the W5
makespan is computed right on a tiny graph run for real, and the drivers
run end to end at toy sizes. No timing is asserted beyond what sleep
guarantees (a makespan is at least the critical path)."""
import importlib.machinery
import importlib.util
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ROOT, WEFT_BIN

BENCH = ROOT / "bench"
GEN = BENCH / "gen-workload"

# A hand-made STG graph: 5 real tasks between the dummies 0 and 6.
#   1 (3) -> 3 (4) -> 5 (2)
#   2 (1) -> 4 (5) -> 5
#   1 -> 4
# Critical path 1 -> 4 -> 5 = 3 + 5 + 2 = 10 units; total work 15.
TINY_STG = """\
5
0 0 0
1 3 1 0
2 1 1 0
3 4 1 1
4 5 2 1 2
5 2 2 3 4
6 0 1 5
# a comment, as in the real set
"""
TINY_TIMES = {"t001": 3, "t002": 1, "t003": 4, "t004": 5, "t005": 2}
TINY_PARENTS = {"t001": [], "t002": [], "t003": ["t001"],
                "t004": ["t001", "t002"], "t005": ["t003", "t004"]}
TINY_CP = 10


def load_script(name):
    """Imports an extension-less bench script as a module."""
    path = str(BENCH / name)
    loader = importlib.machinery.SourceFileLoader(name.replace("-", "_"), path)
    spec = importlib.util.spec_from_loader(loader.name, loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def gen(tmp_path, name, *args):
    """Runs bench/gen-workload; returns the output prefix."""
    prefix = tmp_path / name
    subprocess.run([sys.executable, str(GEN), *map(str, args),
                    "--out", str(prefix)], check=True)
    return prefix


def read_edges(path):
    tasks, edges = [], set()
    for line in path.read_text().splitlines():
        p = line.split()
        if p[0] == "task":
            tasks.append(p[1])
        else:
            assert p[0] == "edge", line
            edges.add((p[1], p[2]))
    return tasks, edges


def graph_edges(weft, yaml):
    """The DAG's tasks and edges as weft itself reads them (`weft graph`)."""
    r = weft("graph", yaml)
    assert r.returncode == 0, r.stderr
    tasks, edges = [], set()
    for line in r.stdout.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        tid, _, needs = line.partition("  needs: ")
        tid = tid.strip()
        tasks.append(tid)
        for p in filter(None, needs.split(", ")):
            edges.add((p.strip(), tid))
    return tasks, edges


def make_edges(mk):
    """Targets and prerequisites as written in a generated Makefile."""
    tasks, edges = [], set()
    for line in mk.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*):(.*)$", line)
        if not m or m.group(1) == "all":
            continue
        tasks.append(m.group(1))
        for p in m.group(2).split():
            edges.add((p, m.group(1)))
    return tasks, edges


def check_twins(weft, prefix, tmp_path):
    """The .yaml validates and has exactly the .edges DAG; the .mk has it
    too, and make parses it and would run one recipe per task."""
    yaml, mk = f"{prefix}.yaml", prefix.with_suffix(".mk")
    r = weft("validate", yaml)
    assert r.returncode == 0, r.stdout + r.stderr
    tasks, edges = read_edges(prefix.with_suffix(".edges"))
    gt, ge = graph_edges(weft, yaml)
    assert sorted(gt) == sorted(tasks)
    assert ge == edges
    mt, me = make_edges(mk)
    assert sorted(mt) == sorted(tasks)
    assert me == edges
    # Not as a sub-make of `make test`: its MAKEFLAGS would add "Entering
    # directory" lines.
    env = {k: v for k, v in os.environ.items()
           if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    r = subprocess.run(["make", "-n", "-r", "-f", str(mk)], cwd=tmp_path,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) == len(tasks)
    return tasks, edges


def test_w1_w2_shapes(weft, tmp_path):
    tasks, edges = check_twins(weft, gen(tmp_path, "w1", "w1", "--tasks", 50),
                               tmp_path)
    assert len(tasks) == 50 and not edges
    tasks, edges = check_twins(weft, gen(tmp_path, "w2", "w2", "--tasks", 40),
                               tmp_path)
    assert len(tasks) == 40
    assert edges == {(tasks[i], tasks[i + 1]) for i in range(39)}


def test_w3_layers_seeded(weft, tmp_path):
    args = ("w3", "--layers", 4, "--width", 30, "--parents", 2)
    p1 = gen(tmp_path, "a", *args, "--seed", 7)
    tasks, edges = check_twins(weft, p1, tmp_path)
    assert len(tasks) == 120
    layer = {t: i // 30 for i, t in enumerate(tasks)}
    parents = {t: [p for p, c in edges if c == t] for t in tasks}
    for t in tasks:
        if layer[t] == 0:
            assert parents[t] == []
        else:
            assert len(parents[t]) == 2
            assert all(layer[p] == layer[t] - 1 for p in parents[t])
    # Reproducible for a seed, different for another.
    p2 = gen(tmp_path, "b", *args, "--seed", 7)
    p3 = gen(tmp_path, "c", *args, "--seed", 8)
    assert p1.with_suffix(".edges").read_text() == \
        p2.with_suffix(".edges").read_text()
    assert p1.with_suffix(".edges").read_text() != \
        p3.with_suffix(".edges").read_text()


def test_edges_names_sanitised(weft, tmp_path):
    src = tmp_path / "odd.edges"
    src.write_text("task a:b 1.5\ntask a_b 2\ntask -x 0.1\ntask " +
                   "n" * 140 + " 1\nedge a:b a_b\nedge a_b -x\n"
                   "edge -x " + "n" * 140 + "\n")
    prefix = gen(tmp_path, "odd", "edges", src, "--name", "odd")
    tasks, edges = check_twins(weft, prefix, tmp_path)
    assert len(set(tasks)) == 4
    assert len(edges) == 3


def test_wfcommons_traces_convert(weft, tmp_path, shared):
    files = sorted((shared / "workloads/wfcommons/edges").glob("*.edges"))
    assert files
    for f in files:
        prefix = gen(tmp_path, f.stem, "edges", f)
        tasks, edges = check_twins(weft, prefix, tmp_path)
        src_tasks, src_edges = read_edges(f)
        assert len(tasks) == len(src_tasks)
        assert len(edges) == len(src_edges)


def test_stg_convert(weft, tmp_path):
    src = tmp_path / "tiny.stg"
    src.write_text(TINY_STG)
    prefix = gen(tmp_path, "tiny", "stg", src, "--sleep-scale", 0.01)
    tasks, edges = check_twins(weft, prefix, tmp_path)
    assert sorted(tasks) == sorted(TINY_TIMES)
    assert edges == {(p, c) for c, ps in TINY_PARENTS.items() for p in ps}
    yaml = prefix.with_suffix(".yaml").read_text()
    assert 'run: ["sleep", "0.05"]\n    estimate: 50ms' in yaml


def test_makespan_of_a_real_run(weft, tmp_path):
    scale = 0.05
    src = tmp_path / "tiny.stg"
    src.write_text(TINY_STG)
    prefix = gen(tmp_path, "tiny", "stg", src, "--sleep-scale", scale,
                 "--name", "tiny")
    data = tmp_path / "data"
    r = weft("run", f"{prefix}.yaml", "--workers", 2, "--data", data,
             "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    ms = load_script("makespan")
    span = ms.makespan(run)
    # The same value from `weft show --json` on the data dir.
    r = weft("show", run["run_id"], "--data", data, "--json")
    assert r.returncode == 0, r.stderr
    assert ms.makespan(json.loads(r.stdout)) == span
    times = {t["id"]: (ms.parse_time(t["started_at"]),
                       ms.parse_time(t["ended_at"])) for t in run["tasks"]}
    assert set(times) == set(TINY_TIMES)
    assert span == pytest.approx(max(e for _, e in times.values()) -
                                 min(s for s, _ in times.values()))
    # Sleep guarantees these, whatever the machine's load.
    for t, (s, e) in times.items():
        assert e - s >= TINY_TIMES[t] * scale - 0.002
        for p in TINY_PARENTS[t]:
            assert s >= times[p][1] - 0.001
    assert span >= TINY_CP * scale - 0.002
    assert span >= sum(TINY_TIMES.values()) * scale / 2 - 0.002
    # A task that has not ended is refused, not counted.
    run["tasks"][0]["state"] = "failed"
    with pytest.raises(ValueError):
        ms.makespan(run)


def test_makespan_driver(tmp_path):
    # bench/makespan end to end on the tiny graph, with its own optimal.tsv
    # (P=2: 15 units of work on 2 slots with a 10-unit critical path: 10).
    stg = tmp_path / "shared/workloads/stg"
    (stg / "50").mkdir(parents=True)
    (stg / "50/tiny.stg").write_text(TINY_STG)
    (stg / "optimal.tsv").write_text(
        "graph\ttasks\topt_P2\topt_P4\topt_P8\topt_P16\tnote\n"
        "50/tiny.stg\t5\t10\t10\t10..10\t10\t\n")
    env = dict(os.environ, WEFT=WEFT_BIN,
               WEFT_SHARED=str(tmp_path / "shared"))
    r = subprocess.run([sys.executable, str(BENCH / "makespan"), "--scale",
                        "10", "--procs", "2,4", "--verbose"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 graphs" in r.stdout
    rows = [ln for ln in r.stdout.splitlines() if re.match(r"^[24]\s+1\s", ln)]
    assert len(rows) == 2, r.stdout
    # Every gap is a percentage over an optimum a real run cannot beat.
    for ln in rows:
        for g in re.findall(r"(-?[0-9.]+)%", ln):
            assert float(g) >= -2.0, ln


def test_throughput_driver_toy(tmp_path):
    env = dict(os.environ, WEFT=WEFT_BIN)
    r = subprocess.run([sys.executable, str(BENCH / "throughput"),
                        "--only", "w1,w2,w3", "--tasks", "20", "--chain", "10",
                        "--layers", "2", "--width", "10", "--no-dask",
                        "--no-celery"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    hdr = [ln for ln in r.stdout.splitlines() if ln.startswith("workload")]
    assert hdr[0].split() == ["workload", "tasks", "weft/s", "make/s",
                              "dask/s", "celery/s", "weft/make", "weft/dask",
                              "weft/celery", "weft-RSS"]
    for label in ("W1 independent", "W2 chain", "W3 2x10 layered"):
        row = [ln for ln in r.stdout.splitlines() if ln.startswith(label)]
        assert len(row) == 1, r.stdout
        # The table stays aligned: every row as wide as the header.
        assert len(row[0]) == len(hdr[0])
        cols = row[0][len(label):].split()
        assert cols[0] in ("20", "10")
        assert float(cols[1]) > 0 and float(cols[2]) > 0
        assert cols[3] == "-" and cols[4] == "-"
        assert cols[6] == "-" and cols[7] == "-"
    assert "per dependent hop" in r.stdout
    assert "celery: - = not run (--no-celery)" in r.stdout


@pytest.mark.skipif(subprocess.run(["/usr/bin/python3", "-c",
                                    "import distributed"],
                                   capture_output=True).returncode != 0,
                    reason="python3-distributed not installed")
def test_dask_run(tmp_path):
    prefix = gen(tmp_path, "w3", "w3", "--layers", 3, "--width", 5)
    r = subprocess.run(["/usr/bin/python3", str(BENCH / "dask-run"),
                        f"{prefix}.edges"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tasks"] == 15
    assert out["seconds"] > 0


def celery_missing():
    if subprocess.run(["which", "redis-server"],
                      capture_output=True).returncode != 0:
        return True
    return subprocess.run(["/usr/bin/python3", "-c", "import celery, redis"],
                          capture_output=True).returncode != 0


needs_celery = pytest.mark.skipif(
    celery_missing(),
    reason="python3-celery, python3-redis or redis-server not installed")


@pytest.fixture
def scratch():
    """A TMPDIR for bench/celery-run, short enough for its redis socket's
    path (a long one, as tmp_path can be, it would leave for /tmp, out of
    the test's sight); removed afterwards."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="wcr-", dir="/tmp"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def procs_under(path):
    """The processes whose command line mentions path (bench/celery-run's
    redis-server and worker name their temp dir, made under TMPDIR)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(path) in cmd:
            found.append((int(pid), cmd))
    return found


def wait_gone(path, timeout=20):
    """Processes that mention path and are still there after timeout
    (zombies reparented to init may take a moment to be reaped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = procs_under(path)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


@needs_celery
def test_celery_run(tmp_path, scratch):
    # A DAG with fan-in: every task of a layer after the first needs two
    # of the previous, so the client's dependency driving is exercised.
    prefix = gen(tmp_path, "w3", "w3", "--layers", 3, "--width", 5)
    env = dict(os.environ, TMPDIR=str(scratch))
    r = subprocess.run(["/usr/bin/python3", str(BENCH / "celery-run"),
                        f"{prefix}.edges"], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tasks"] == 15
    assert out["seconds"] > 0 and out["rss_kb"] > 0
    # redis-server and the worker are gone, their temp dir too.
    assert wait_gone(scratch) == []
    assert list(scratch.iterdir()) == []


@needs_celery
def test_celery_run_sigterm_cleans_up(tmp_path, scratch):
    prefix = gen(tmp_path, "w2", "w2", "--tasks", 100000)
    env = dict(os.environ, TMPDIR=str(scratch))
    p = subprocess.Popen(["/usr/bin/python3", str(BENCH / "celery-run"),
                          f"{prefix}.edges"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env)
    try:
        # Wait for redis-server, the worker and its 2 pool processes.
        deadline = time.monotonic() + 60
        while len(procs_under(scratch)) < 4:
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline, procs_under(scratch)
            time.sleep(0.1)
        p.terminate()
        _, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 130, err
    assert "interrupted" in err
    assert wait_gone(scratch) == []
    assert list(scratch.iterdir()) == []


@needs_celery
def test_throughput_celery_column(tmp_path):
    env = dict(os.environ, WEFT=WEFT_BIN)
    r = subprocess.run([sys.executable, str(BENCH / "throughput"),
                        "--only", "w1,w3", "--tasks", "12", "--layers", "2",
                        "--width", "6", "--no-dask"],
                       env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stdout + r.stderr
    hdr = [ln for ln in r.stdout.splitlines() if ln.startswith("workload")][0]
    for label, n in (("W1 independent", "12"), ("W3 2x6 layered", "12")):
        row = [ln for ln in r.stdout.splitlines() if ln.startswith(label)]
        assert len(row) == 1, r.stdout
        assert len(row[0]) == len(hdr)
        cols = row[0][len(label):].split()
        assert cols[0] == n
        assert cols[3] == "-" and cols[6] == "-"
        # celery/s, and weft/celery = weft/s / celery/s (rounded).
        assert float(cols[4]) > 0
        assert float(cols[7]) == pytest.approx(
            float(cols[1]) / float(cols[4]), rel=0.1, abs=0.02)
    assert "celery: - = not run" not in r.stdout

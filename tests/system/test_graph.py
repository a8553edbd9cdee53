"""`weft graph`: the expanded DAG as text and as Graphviz, checked against the
DAG the test itself expands, and the real WfCommons workflows converted to
DAG files."""
import itertools
import re
import shutil
import subprocess

import pytest

SWEEP = """\
name: sweep
params:
  threshold: 0.5
tasks:
  prepare:
    run: echo prepare
  train:
    needs: prepare
    matrix:
      lr: [0.1, 0.01]
      depth: [3, 5, 7]
    resources: { cpus: 2, memory: 4G }
    run: echo {{ matrix.lr }} {{ matrix.depth }}
  baseline:
    needs: prepare
    queue: gpu
    run: echo baseline
  evaluate:
    needs: [train, baseline]
    run: echo auc=0.9 >> "$WEFT_OUTPUT"
  deploy:
    needs: evaluate
    when: tasks.evaluate.outputs.auc >= params.threshold
    run: echo deploy
  alert:
    needs: [train, deploy]
    trigger: one_failed
    run: echo alert
"""

# The same DAG expanded by hand: train[lr=..,depth=..] in the order written.
TRAIN = [f"train[lr={lr},depth={d}]" for lr, d in itertools.product(["0.1", "0.01"], ["3", "5", "7"])]
SWEEP_EDGES = (
    {("prepare", t) for t in TRAIN}
    | {("prepare", "baseline"), ("baseline", "evaluate"), ("evaluate", "deploy"), ("deploy", "alert")}
    | {(t, "evaluate") for t in TRAIN}
    | {(t, "alert") for t in TRAIN}
)
SWEEP_TASKS = {"prepare", "baseline", "evaluate", "deploy", "alert", *TRAIN}


def dot_tokens(text):
    """Tokens of a DOT text: quoted IDs (unescaped), bare IDs and punctuation."""
    tok = re.compile(r'\s+|//[^\n]*|"((?:[^"\\]|\\.)*)"|(->|[{}\[\];=,])|([A-Za-z0-9_.]+)', re.S)
    pos, out = 0, []
    while pos < len(text):
        m = tok.match(text, pos)
        assert m, f"bad DOT at {pos}: {text[pos:pos + 40]!r}"
        pos = m.end()
        if m[1] is not None:
            s = re.sub(r"\\(.)", lambda e: "\n" if e[1] == "n" else e[1], m[1], flags=re.S)
            out.append(("id", s))
        elif m[2]:
            out.append(("p", m[2]))
        elif m[3]:
            out.append(("id", m[3]))
    return out


def parse_dot(text):
    """A minimal DOT reader: returns (graph name, nodes, edges, clusters), where
    clusters maps a subgraph's name to the nodes declared in it. Fails on
    anything it does not understand, so that malformed output fails the test."""
    toks = dot_tokens(text)
    i = 0

    def take(kind=None, value=None):
        nonlocal i
        t = toks[i]
        assert kind is None or t[0] == kind, (t, toks[i - 3:i + 3])
        assert value is None or t[1] == value, (t, value, toks[i - 3:i + 3])
        i += 1
        return t[1]

    def attrs():
        if i < len(toks) and toks[i] == ("p", "["):
            take()
            while toks[i] != ("p", "]"):
                take("id")
                take("p", "=")
                take("id")
                if toks[i] == ("p", ","):
                    take()
            take("p", "]")

    assert take("id") == "digraph"
    name = take("id")
    take("p", "{")
    nodes, edges, clusters, stack = set(), [], {}, []
    while True:
        t = toks[i]
        if t == ("p", "}"):
            take()
            if not stack:
                break
            stack.pop()
            continue
        if t == ("id", "subgraph"):
            take()
            sub = take("id")
            take("p", "{")
            clusters[sub] = set()
            stack.append(sub)
            continue
        first = take("id")
        if toks[i] == ("p", "="):  # graph attribute
            take()
            take("id")
        elif first in ("node", "edge", "graph"):
            attrs()
        elif toks[i] == ("p", "->"):
            take()
            second = take("id")
            attrs()
            edges.append((first, second))
        else:
            attrs()
            nodes.add(first)
            if stack:
                clusters[stack[-1]].add(first)
        take("p", ";")
    assert i == len(toks), "text after the graph"
    return name, nodes, edges, clusters


def test_dot_matches_expansion(weft, dag_file):
    r = weft("graph", dag_file(SWEEP), "--format", "dot")
    assert r.returncode == 0 and r.stderr == "", r.stderr
    name, nodes, edges, clusters = parse_dot(r.stdout)
    assert name == "sweep"
    assert nodes == SWEEP_TASKS
    assert len(edges) == len(set(edges)), "an edge is written twice"
    assert set(edges) == SWEEP_EDGES
    # Matrix expansions are grouped in one cluster per group, and nothing else is.
    assert clusters == {"cluster_train": set(TRAIN)}


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_dot_is_accepted_by_graphviz(weft, dag_file):
    r = weft("graph", dag_file(SWEEP), "--format", "dot")
    g = subprocess.run(["dot", "-Tsvg"], input=r.stdout, capture_output=True, text=True)
    assert g.returncode == 0 and "<svg" in g.stdout, g.stderr


def test_dot_quotes_hostile_ids(weft, dag_file):
    # Matrix values end up inside task ids: quotes, backslashes, braces,
    # arrows and semicolons must stay inside one quoted DOT id. (Commas are
    # refused by the loader: they separate the values in an id.)
    text = r"""
        name: "q.x-1"
        tasks:
          a:
            matrix:
              v: ['say "hi"', 'back\slash\', '} -> x; {', "semi;colon=1"]
            run: echo {{ matrix.v }}
          b:
            needs: a
            run: echo b
        """
    r = weft("graph", dag_file(text), "--format", "dot")
    assert r.returncode == 0, r.stderr
    name, nodes, edges, clusters = parse_dot(r.stdout)
    ids = {'a[v=say "hi"]', "a[v=back\\slash\\]", "a[v=} -> x; {]", "a[v=semi;colon=1]"}
    assert name == "q.x-1"
    assert nodes == ids | {"b"}
    assert set(edges) == {(i, "b") for i in ids}
    assert clusters == {"cluster_a": ids}


def text_lines(out):
    """Task lines of the text format (the first line is a # summary)."""
    lines = out.splitlines()
    assert lines[0].startswith("# ")
    return lines[1:]


def test_text_format(weft, dag_file):
    r = weft("graph", dag_file(SWEEP))
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.splitlines()[0] == f"# sweep: {len(SWEEP_TASKS)} tasks, {len(SWEEP_EDGES)} edges"
    lines = text_lines(r.stdout)
    ids = [ln.split("  ")[0].strip() if "  " in ln else ln for ln in lines]
    assert sorted(ids) == sorted(SWEEP_TASKS)
    # Topological: every task after what it needs.
    for parent, child in SWEEP_EDGES:
        assert ids.index(parent) < ids.index(child), (parent, child)
    by_id = dict(zip(ids, lines))
    assert by_id["prepare"] == "prepare"
    assert by_id[TRAIN[0]].split()[1:] == ["needs:", "prepare", "resources:", "cpus=2", "memory=4G"]
    assert re.search(r"needs: prepare  queue: gpu$", by_id["baseline"])
    # A need on every expansion of a matrix task reads as group[*].
    assert re.search(r"needs: train\[\*\], baseline$|needs: baseline, train\[\*\]$", by_id["evaluate"])
    assert by_id["deploy"].endswith("needs: evaluate  when: tasks.evaluate.outputs.auc >= params.threshold")
    assert re.search(r"needs: (train\[\*\], deploy|deploy, train\[\*\])  trigger: one_failed$", by_id["alert"])
    # The id column is aligned.
    starts = {ln.index("needs:") for ln in lines if "needs:" in ln}
    assert len(starts) == 1, lines


def test_text_group_shorthand_only_for_whole_groups(weft, dag_file):
    # needs on some expansions only, or on the single expansion of a
    # one-value matrix, lists their ids; only a need on every expansion of
    # a larger group reads as group[*].
    text = """
        name: parts
        tasks:
          t:
            matrix: {x: [1, 2, 3]}
            run: echo {{ matrix.x }}
          one:
            matrix: {y: [a]}
            run: echo {{ matrix.y }}
          some:
            needs: ["t[x=1]", "t[x=3]", one]
            run: echo some
          all:
            needs: [t, one]
            run: echo all
        """
    r = weft("graph", dag_file(text))
    assert r.returncode == 0, r.stderr
    assert text_lines(r.stdout) == [
        "t[x=1]",
        "t[x=2]",
        "t[x=3]",
        "one[y=a]",
        "some      needs: t[x=1], t[x=3], one[y=a]",
        "all       needs: t[*], one[y=a]",
    ]


def test_schedule_in_summary(weft, dag_file):
    text = """
        name: nightly
        schedule: "30 2 * * *"
        timezone: Europe/Berlin
        tasks:
          a:
            run: echo a
        """
    r = weft("graph", dag_file(text))
    assert r.returncode == 0, r.stderr
    assert r.stdout == '# nightly: 1 task, 0 edges, schedule "30 2 * * *" in Europe/Berlin\na\n'


def test_invalid_file(weft, dag_file):
    path = dag_file("name: d\ntasks:\n  a:\n    needs: zz\n    run: echo\n")
    for fmt in ("text", "dot"):
        r = weft("graph", path, "--format", fmt)
        assert r.returncode == 1 and r.stdout == ""
        assert re.match(rf"^{re.escape(str(path))}:4:12: error: .*zz", r.stderr), r.stderr


def test_usage_errors(weft, dag_file):
    path = dag_file(SWEEP)
    for args in [("graph",), ("graph", path, "--format", "svg"), ("graph", path, path),
                 ("graph", path, "--format"), ("graph", path, "--bogus")]:
        r = weft(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stdout == "" and r.stderr.startswith("weft: error:"), (args, r.stderr)
    r = weft("graph", "/nonexistent/x.yaml")
    assert r.returncode == 1
    assert r.stderr == "weft: error: cannot read /nonexistent/x.yaml: No such file or directory\n"


def read_edges(path):
    """Tasks (in file order) and edges of a WfCommons .edges file."""
    tasks, edges = [], []
    for line in path.read_text().splitlines():
        f = line.split()
        if f and f[0] == "task":
            tasks.append(f[1])
        elif f and f[0] == "edge":
            edges.append((f[1], f[2]))
    return tasks, edges


def edges_to_dag(name, tasks, edges):
    """DAG YAML with one task per workflow task and `needs` from the edges."""
    parents = {t: [] for t in tasks}
    for p, c in edges:
        parents[c].append(p)
    out = [f"name: {name}", "tasks:"]
    for t in tasks:
        out.append(f"  {t}:")
        out.append("    run: 'true'")
        if parents[t]:
            out.append(f"    needs: [{', '.join(parents[t])}]")
    return "\n".join(out) + "\n"


def edges_files(shared):
    files = sorted((shared / "workloads" / "wfcommons" / "edges").glob("*.edges"))
    assert len(files) == 10, files
    return files


def test_wfcommons_workflows(weft, shared, tmp_path):
    for path in edges_files(shared):
        tasks, edges = read_edges(path)
        dag = tmp_path / (path.stem + ".yaml")
        dag.write_text(edges_to_dag(path.stem[:100], tasks, edges))
        r = weft("validate", dag)
        assert (r.returncode, r.stderr) == (0, ""), (path.name, r.stderr[:2000])
        r = weft("graph", dag, "--format", "dot")
        assert r.returncode == 0, (path.name, r.stderr[:2000])
        _, nodes, got, clusters = parse_dot(r.stdout)
        assert (len(nodes), len(got)) == (len(set(tasks)), len(set(edges))), path.name
        assert set(got) == set(edges), path.name
        assert clusters == {}
        r = weft("graph", dag)
        assert r.returncode == 0
        head = r.stdout.splitlines()[0]
        assert head == f"# {path.stem[:100]}: {len(tasks)} tasks, {len(edges)} edges", head

"""`weft validate`: every problem reported as FILE:LINE:COLUMN: error: MESSAGE
at the offending YAML node, exit codes 0/1/2, several files, --json, and the
examples and documentation blocks that must stay valid."""
import json
import re

import pytest

DIAG = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<col>\d+): error: (?P<msg>.+)$")


def where(text, needle, nth=0):
    """(line, column), 1-based, of the NTH occurrence of NEEDLE in TEXT."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def diags(stderr):
    """Parses stderr into (file, line, col, msg) tuples; fails on any other line."""
    out = []
    for raw in stderr.splitlines():
        m = DIAG.match(raw)
        assert m, f"not a FILE:LINE:COLUMN: error: line: {raw!r}"
        out.append((m["file"], int(m["line"]), int(m["col"]), m["msg"]))
    return out


def validate_text(weft, tmp_path, text, name="dag.yaml"):
    """Writes TEXT to NAME in TMP_PATH and validates it from there."""
    (tmp_path / name).write_text(text)
    return weft("validate", name, cwd=tmp_path)


VALID = """\
name: churn-retrain
description: nightly retraining of the churn model
schedule: "0 3 * * *"
timezone: Europe/Berlin
start: 2026-11-01
catchup: false
max_active_runs: 1
params:
  threshold: 0.85
env:
  DATA_DIR: /srv/data
defaults:
  retries: 2
  retry_delay: 10s
  timeout: 1h
tasks:
  prepare:
    run: python3 prepare.py --date {{ ds }}
  train:
    needs: [prepare]
    matrix: { lr: [0.1, 0.01], depth: [3, 5] }
    run: python3 train.py --lr {{ matrix.lr }} --depth {{ matrix.depth }}
    resources: { cpus: 2, memory: 4G, gpus: 0 }
  evaluate:
    needs: [train]
    run: python3 evaluate.py
  deploy:
    needs: [evaluate]
    when: tasks.evaluate.outputs.auc >= params.threshold
    run: [./deploy.sh, "{{ tasks.evaluate.outputs.auc }}"]
  alert:
    needs: [train, evaluate, deploy]
    trigger: one_failed
    run: ./page-oncall.sh
"""


def test_valid_file_prints_nothing(weft, tmp_path):
    r = validate_text(weft, tmp_path, VALID)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_several_valid_files(weft, tmp_path):
    for i in range(3):
        (tmp_path / f"d{i}.yaml").write_text(VALID.replace("churn-retrain", f"d{i}"))
    r = weft("validate", "d0.yaml", "d1.yaml", "d2.yaml", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


# One DAG per class of error the contract names. Each: the file, where the
# error must point, and a pattern the message must match. A place is a
# substring whose first character is the offending node (or, inside a
# template or condition, the offending reference), a (substring, nth) pair,
# or a (line, column) pair.
TASK = "tasks:\n  a:\n    run: echo a\n"
ERRORS = {
    "unknown_top_key": (
        "name: d\nretires: 2\n" + TASK, ["retires"], r"retires"),
    "unknown_task_key": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    retires: 2\n",
        ["retires"], r"retires"),
    "wrong_type_scalar": (
        "name: d\nmax_active_runs: many\n" + TASK, ["many"], r"max_active_runs.*integer"),
    "wrong_type_list": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    retries: [1]\n",
        ["[1]"], r"retries.*integer"),
    "wrong_type_tasks": (
        "name: d\ntasks: [a, b]\n", ["[a, b]"], r"tasks|map"),
    "env_not_string": (
        "name: d\nenv:\n  X: {a: 1}\n" + TASK, ["{a: 1}"], r"X|env|string|scalar"),
    "duplicate_task": (
        "name: d\ntasks:\n  a:\n    run: echo 1\n  b:\n    run: echo 2\n  a:\n    run: echo 3\n",
        [(7, 3)], r"duplicate.*\ba\b.*line 3"),
    "needs_unknown": (
        "name: d\ntasks:\n  prepare:\n    run: echo p\n  train:\n    needs: [prepare, trian]\n    run: echo t\n",
        ["trian"], r"trian"),
    "needs_unknown_scalar": (
        "name: d\ntasks:\n  a:\n    needs: nope\n    run: echo a\n", ["nope"], r"nope"),
    "bad_cron_value": (
        'name: d\nschedule: "61 * * * *"\n' + TASK, ['"61'], r"minute.*61"),
    "bad_cron_fields": (
        'name: d\nschedule: "0 0 3 * * *"\n' + TASK, ['"0 0'], r"6 fields"),
    "bad_cron_extension": (
        'name: d\nschedule: "0 0 L * *"\n' + TASK, ['"0 0'], r"'L'"),
    "bad_every": (
        'name: d\nschedule: "@every soon"\n' + TASK, ['"@every'], r"soon|duration"),
    "bad_macro": (
        'name: d\nschedule: "@fortnightly"\n' + TASK, ['"@fort'], r"fortnightly"),
    "bad_timezone": (
        "name: d\ntimezone: Mars/Olympus\n" + TASK, ["Mars"], r"Mars/Olympus"),
    "bad_start": (
        "name: d\nstart: yesterday\n" + TASK, ["yesterday"], r"yesterday|date|time"),
    "bad_duration": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    timeout: 5 minutes\n",
        ["5 minutes"], r"duration|5 minutes"),
    "negative_retries": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    retries: -1\n", ["-1"], r"retries|-1|negative|>= 0"),
    "bad_size": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    resources: {memory: 4Q}\n",
        ["4Q"], r"4Q|size"),
    "bad_resource_key": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    resources: {tpus: 4}\n",
        ["tpus"], r"tpus"),
    "bad_trigger": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    trigger: sometimes\n",
        ["sometimes"], r"sometimes"),
    "bad_name": (
        'name: "no spaces!"\n' + TASK, ['"no spaces'], r"name"),
    "bad_task_id": (
        'name: d\ntasks:\n  "bad id!":\n    run: echo a\n', ['"bad id'], r"bad id!|id"),
    "empty_tasks": (
        "name: d\ntasks: {}\n", ["{}"], r"task"),
    "missing_run": (
        "name: d\ntasks:\n  a:\n    retries: 1\n", ["a:"], r"run"),
    "empty_matrix_list": (
        "name: d\ntasks:\n  a:\n    matrix: {lr: []}\n    run: echo {{ matrix.lr }}\n",
        ["[]"], r"lr.*empty"),
    "template_unknown_param": (
        "name: d\ntasks:\n  a:\n    run: echo {{ params.nope }}\n",
        ["{{ params"], r"nope"),
    "template_bad_reference": (
        "name: d\ntasks:\n  a:\n    run: echo {{ parms.x }}\n",
        ["parms.x"], r"parms.*params\.x"),
    "template_matrix_not_in_task": (
        "name: d\ntasks:\n  a:\n    matrix: {lr: [1, 2]}\n    run: echo {{ matrix.depth }}\n",
        ["{{ matrix.depth"], r"depth"),
    "template_not_ancestor": (
        "name: d\ntasks:\n  a:\n    run: echo a\n  b:\n    run: echo {{ tasks.a.outputs.x }}\n",
        ["{{ tasks"], r"\ba\b.*upstream"),
    "template_unclosed": (
        "name: d\ntasks:\n  a:\n    run: echo {{ params.x\n",
        ["{{ params"], r"unclosed"),
    "template_in_env": (
        "name: d\ntasks:\n  a:\n    run: echo a\n    env: {X: \"{{ params.nope }}\"}\n",
        ["{{ params"], r"nope"),
    "condition_unknown_param": (
        "name: d\ntasks:\n  a:\n    when: params.nope > 1\n    run: echo a\n",
        ["params.nope"], r"nope"),
    "condition_syntax": (
        "name: d\nparams: {x: 1}\ntasks:\n  a:\n    when: params.x >\n    run: echo a\n",
        [(5, 21)], r"operand"),
    "condition_not_ancestor": (
        "name: d\ntasks:\n  a:\n    run: echo a\n  b:\n    when: tasks.a.outputs.ok == 1\n    run: echo b\n",
        ["tasks.a.outputs"], r"\ba\b.*upstream"),
    "params_not_scalar": (
        "name: d\nparams:\n  x: [1, 2]\n" + TASK, ["[1, 2]"], r"x|scalar"),
}


def expected_positions(text, anchors):
    out = set()
    for a in anchors:
        if isinstance(a, tuple) and isinstance(a[0], int):
            out.add(a)
        else:
            needle, nth = a if isinstance(a, tuple) else (a, 0)
            out.add(where(text, needle, nth))
    return out


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_error_points_at_node(weft, tmp_path, case):
    text, anchors, pattern = ERRORS[case]
    r = validate_text(weft, tmp_path, text)
    assert r.returncode == 1, r.stderr
    assert r.stdout == ""
    found = diags(r.stderr)
    assert found, "no diagnostic"
    want = expected_positions(text, anchors)
    hits = [d for d in found if (d[1], d[2]) in want and re.search(pattern, d[3])]
    assert hits, f"wanted an error at one of {sorted(want)} matching {pattern!r}; got {found}"
    assert all(d[0] == "dag.yaml" for d in found)


def test_missing_name_and_tasks(weft, tmp_path):
    r = validate_text(weft, tmp_path, "description: nothing else\n")
    assert r.returncode == 1
    msgs = " | ".join(d[3] for d in diags(r.stderr))
    assert "name" in msgs and "tasks" in msgs, msgs


def test_cycle_names_its_tasks(weft, tmp_path):
    text = (
        "name: d\ntasks:\n"
        "  start:\n    run: echo s\n"
        "  a:\n    needs: [start, c]\n    run: echo a\n"
        "  b:\n    needs: a\n    run: echo b\n"
        "  c:\n    needs: b\n    run: echo c\n"
    )
    r = validate_text(weft, tmp_path, text)
    assert r.returncode == 1
    found = diags(r.stderr)
    rotations = ["a -> b -> c -> a", "b -> c -> a -> b", "c -> a -> b -> c"]
    cyc = [d for d in found if any(x in d[3] for x in rotations)]
    assert cyc, found
    # It points into the cycle, not at an innocent task.
    lines = {where(text, f"  {t}:")[0] for t in "abc"} | {
        where(text, "c]")[0], where(text, "needs: a")[0], where(text, "needs: b")[0]}
    assert cyc[0][1] in lines | {ln + 1 for ln in lines}, cyc


def test_self_cycle(weft, tmp_path):
    r = validate_text(weft, tmp_path, "name: d\ntasks:\n  a:\n    needs: a\n    run: echo\n")
    assert r.returncode == 1
    assert any("a -> a" in d[3] for d in diags(r.stderr)), r.stderr


@pytest.mark.parametrize("text,line,col", [
    # libyaml's own positions for these (its problem mark)
    ("name: d\ntasks:\n  a:\n    run: echo a\n      oops: 1\n", 5, 11),
    ("name: d\ntasks:\n  a:\n    run: [echo, unclosed\n  b:\n    run: echo b\n", 5, 4),
    ("name: d\ntasks:\n\ta:\n\t\trun: echo\n", 3, 1),
])
def test_yaml_syntax_error(weft, tmp_path, text, line, col):
    r = validate_text(weft, tmp_path, text)
    assert r.returncode == 1
    found = diags(r.stderr)
    assert found and found[0][1:3] == (line, col), found


def test_every_error_in_a_file_is_reported_in_order(weft, tmp_path):
    text = (
        "name: d\n"
        "retires: 2\n"                      # unknown key
        'schedule: "99 * * * *"\n'          # bad cron
        "tasks:\n"
        "  a:\n"
        "    run: echo {{ params.nope }}\n"  # unknown param
        "    timeout: soon\n"               # bad duration
        "  b:\n"
        "    needs: [a, zzz]\n"             # unknown task
        "    run: echo b\n"
    )
    r = validate_text(weft, tmp_path, text)
    assert r.returncode == 1
    found = diags(r.stderr)
    lines = [d[1] for d in found]
    assert lines == sorted(lines), found
    for needle in ["retires", '"99', "soon", "zzz"]:
        ln, col = where(text, needle)
        assert any(d[1] == ln and d[2] == col for d in found), (needle, found)
    assert any(d[1] == where(text, "echo {{")[0] for d in found), found
    assert len(found) >= 5


def test_several_files_all_checked(weft, tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad1.yaml").write_text("name: d\nretires: 1\n" + TASK)
    (tmp_path / "bad2.yaml").write_text("name: d\ntasks:\n  a:\n    needs: x\n    run: echo\n")
    r = weft("validate", "bad1.yaml", "good.yaml", "bad2.yaml", cwd=tmp_path)
    assert r.returncode == 1
    files = [d[0] for d in diags(r.stderr)]
    assert "bad1.yaml" in files and "bad2.yaml" in files and "good.yaml" not in files
    # Files are reported in the order given.
    assert files.index("bad1.yaml") < files.index("bad2.yaml")


def test_unreadable_files(weft, tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "dir.yaml").mkdir()
    r = weft("validate", "missing.yaml", "good.yaml", "dir.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stdout == ""
    lines = r.stderr.splitlines()
    assert "weft: error: cannot read missing.yaml: No such file or directory" in lines
    assert "weft: error: cannot read dir.yaml: Is a directory" in lines
    assert len(lines) == 2


def test_usage_errors(weft, tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    r = weft("validate")
    assert r.returncode == 2 and r.stderr.startswith("weft: error:")
    r = weft("validate", "--frobnicate", "good.yaml", cwd=tmp_path)
    assert r.returncode == 2 and r.stderr.startswith("weft: error:")
    assert "--frobnicate" in r.stderr


def test_stdin(weft):
    r = weft("validate", "-", input=VALID)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")
    r = weft("validate", "-", input="name: d\nretires: 1\n" + TASK)
    assert r.returncode == 1
    assert diags(r.stderr)[0][:3] == ("<stdin>", 2, 1)


def test_json(weft, tmp_path):
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text('name: d\nretires: 1\nschedule: "x"\n' + TASK)
    r = weft("validate", "--json", "good.yaml", cwd=tmp_path)
    assert (r.returncode, json.loads(r.stdout), r.stderr) == (0, [], "")
    r = weft("validate", "good.yaml", "bad.yaml", "nope.yaml", "--json", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert all(set(p) == {"file", "line", "column", "message"} for p in doc)
    bad = [p for p in doc if p["file"] == "bad.yaml"]
    assert [(p["line"], p["column"]) for p in bad][:2] == [(2, 1), (3, 11)]
    nope = [p for p in doc if p["file"] == "nope.yaml"]
    assert len(nope) == 1 and nope[0]["line"] is None
    assert "No such file" in nope[0]["message"]
    # The same problems as the text form, in the same order.
    t = weft("validate", "bad.yaml", cwd=tmp_path)
    assert [(p["line"], p["column"], p["message"]) for p in bad] == [
        d[1:] for d in diags(t.stderr)]


@pytest.mark.parametrize("content", [
    # a key with a quote, a backslash, a tab and a control character
    b'name: d\n"we\\"ird\\\\key\\t\\x01": 1\n' + TASK.encode(),
    # bytes that are not UTF-8
    b"name: d\nbytes\xff\xfe: 2\n" + TASK.encode(),
])
def test_json_escapes_hostile_text(weft, tmp_path, content):
    (tmp_path / "bad.yaml").write_bytes(content)
    r = weft("validate", "--json", "bad.yaml", cwd=tmp_path)
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc and all(p["file"] == "bad.yaml" and p["line"] == 2 for p in doc), doc


HOSTILE = [
    b"",
    b"\n\n# only a comment\n",
    b"just a string\n",
    b"- a\n- list\n",
    b"name: d\n---\nname: e\ntasks: {a: {run: echo}}\n",
    b"\x00\x01\x02binary\xff\xfe",
    b"[" * 10000,
    b"name: d\ntasks:\n" + b"".join(b"  t%d:\n    run: echo\n    needs: [t%d]\n" % (i, i + 1) for i in range(300)),
    b"name: &a d\ntasks: *a\n",
    b"name: d\ntasks:\n  a: &x {run: echo, env: *x}\n",
    b"name: d\n" + b"k: " * 50000 + b"\n",
    # a billion laughs: aliases that would expand to 10**9 strings
    b"name: d\na: &a [x, x, x, x, x, x, x, x, x, x]\n"
    + b"".join(b"%c: &%c [%s]\n" % (98 + i, 98 + i, b", ".join([b"*%c" % (97 + i)] * 10)) for i in range(8))
    + b"tasks: {t: {run: echo, env: {X: *i}}}\n",
]


@pytest.mark.parametrize("content", HOSTILE, ids=[f"hostile{i}" for i in range(len(HOSTILE))])
def test_hostile_input_is_an_error_not_a_crash(weft, tmp_path, content):
    (tmp_path / "x.yaml").write_bytes(content)
    r = weft("validate", "x.yaml", cwd=tmp_path, timeout=30)
    assert r.returncode == 1, (r.returncode, r.stderr[-2000:])
    assert diags(r.stderr), r.stderr[-2000:]


def test_examples_are_valid(weft, root):
    files = sorted((root / "examples").glob("*.yaml"))
    assert len(files) >= 3, files
    r = weft("validate", *files)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


@pytest.mark.parametrize("example,params,outputs", [
    ("hello.yaml", [], {"greet": "greeting"}),
    ("sweep.yaml", ["epochs=30", "results_root={tmp}"], {"pick": "best"}),
    ("nightly-retrain.yaml", ["root={tmp}"], {"evaluate": "auc"}),
])
def test_examples_run(weft, root, tmp_path, example, params, outputs):
    """The examples' commands really work: each runs to success with
    `weft run`, its files under the test's temp dir."""
    args = ["run", root / "examples" / example, "--data", tmp_path / "data",
            "--workers", "2", "--json"]
    for p in params:
        args += ["--param", p.format(tmp=tmp_path)]
    r = weft(*args, cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    run = json.loads(r.stdout)
    assert run["state"] == "success"
    tasks = {t["id"]: t for t in run["tasks"]}
    for task, key in outputs.items():
        assert tasks[task]["outputs"].get(key), tasks[task]


def doc_dag_blocks(md_text):
    """The ```yaml blocks of a Markdown text that are complete DAGs: by the
    convention of docs/dag-format.md, those whose first line is a `name:` key."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", md_text, flags=re.S | re.M)
    return [b for b in blocks if b.startswith("name:")]


def test_doc_examples_are_valid(weft, root, tmp_path):
    blocks = doc_dag_blocks((root / "docs" / "dag-format.md").read_text())
    assert len(blocks) >= 5, "docs/dag-format.md lost its complete examples"
    paths = []
    for i, b in enumerate(blocks):
        p = tmp_path / f"block{i}.yaml"
        p.write_text(b)
        paths.append(p.name)
    r = weft("validate", *paths, cwd=tmp_path)
    assert (r.returncode, r.stderr) == (0, ""), "\n\n".join(
        f"--- block{i}\n{b}" for i, b in enumerate(blocks)) + "\n" + r.stderr


def test_doc_error_sample_matches(weft, root, tmp_path):
    """docs/dag-format.md shows a broken file and what `weft validate` prints
    for it: the two must agree."""
    md = (root / "docs" / "dag-format.md").read_text()
    m = re.search(r"```yaml\n# broken\.yaml\n(.*?)^```.*?```console\n\$ weft validate broken\.yaml\n(.*?)^```",
                  md, flags=re.S | re.M)
    assert m, "the errors section of docs/dag-format.md lost its sample"
    (tmp_path / "broken.yaml").write_text("# broken.yaml\n" + m[1])
    r = weft("validate", "broken.yaml", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr == m[2]


def test_doc_console_samples_match(weft, root, tmp_path):
    """Every `$ weft graph NAME.yaml` and `$ weft cron ...` sample in
    docs/dag-format.md prints what the page shows. The file of a graph sample
    is the page's complete DAG whose name is NAME."""
    import shlex

    md = (root / "docs" / "dag-format.md").read_text()
    dags = {re.match(r"name: (\S+)", b)[1]: b for b in doc_dag_blocks(md)}
    samples = 0
    for block in re.findall(r"^```console\n(.*?)^```", md, flags=re.S | re.M):
        cmd, *expected = block.splitlines()
        args = shlex.split(cmd.lstrip("$ "))
        if args[:2] == ["weft", "graph"]:
            name = args[2].removesuffix(".yaml")
            (tmp_path / args[2]).write_text(dags[name])
        elif args[:2] != ["weft", "cron"]:
            continue
        r = weft(*args[1:], cwd=tmp_path)
        assert (r.returncode, r.stderr) == (0, ""), (cmd, r.stderr)
        assert r.stdout.splitlines() == expected, cmd
        samples += 1
    assert samples >= 3


def test_readme_samples_match(weft, root, tmp_path):
    """The README's `$ build/weft ...` samples print what it shows. Its yaml
    blocks whose first line is `# FILE` are written to FILE first."""
    import shlex

    md = (root / "README.md").read_text()
    for block in re.findall(r"^```yaml\n(.*?)^```", md, flags=re.S | re.M):
        m = re.match(r"# (\S+\.yaml)\n", block)
        if m:
            (tmp_path / m[1]).write_text(block)
    (tmp_path / "examples").symlink_to(root / "examples")
    samples = 0
    for block in re.findall(r"^```console\n(.*?)^```", md, flags=re.S | re.M):
        for sample in re.split(r"^(?=\$ )", block, flags=re.M):
            if not sample:
                continue
            cmd, *expected = sample.splitlines()
            args = shlex.split(cmd[2:])
            if args[0] != "build/weft":
                continue
            r = weft(*args[1:], cwd=tmp_path)
            assert (r.stdout + r.stderr).splitlines() == expected, cmd
            samples += 1
    assert samples >= 3

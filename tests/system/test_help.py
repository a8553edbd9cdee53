"""Help and usage errors of every subcommand: `weft --help`, `weft help CMD`,
`weft CMD --help`, unknown commands and flags."""
import re

import pytest
from conftest import ROOT, run_weft


def command_table():
    """(name, handler) of each entry of cli/main.c's subcommand table."""
    src = (ROOT / "cli" / "main.c").read_text()
    table = src[src.index("commands[] = {"):src.index("#define NCOMMANDS")]
    entries = re.split(r'^\t\{"', table, flags=re.M)[1:]
    return [(e.split('"', 1)[0], re.findall(r"(\w+)\},", e)[-1]) for e in entries]


def commands_in_help():
    out = run_weft("--help").stdout
    section = out[out.index("Commands:\n") + len("Commands:\n"):].split("\n\n")[0]
    return [line.split()[0] for line in section.splitlines()]


COMMANDS = [name for name, _ in command_table()]
# Subcommands that are implemented parse their flags; the others
# (not_yet) still answer --help, and say that they are not available yet.
IMPLEMENTED = [name for name, handler in command_table() if handler != "not_yet"]


def test_source_table_was_read():
    assert len(COMMANDS) >= 17 and {"run", "validate", "graph", "cron", "workers"} <= set(COMMANDS)
    assert {"validate", "graph", "cron"} <= set(IMPLEMENTED)


def test_main_help_lists_every_command(weft):
    r = weft("--help")
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout.startswith("usage: weft COMMAND")
    assert commands_in_help() == COMMANDS
    for flag in ("-h", "help"):
        assert weft(flag).stdout == r.stdout


def test_no_arguments_is_a_usage_error(weft):
    r = weft()
    assert r.returncode == 2 and r.stdout == ""
    assert "usage: weft" in r.stderr


def test_version(weft):
    r = weft("--version")
    assert r.returncode == 0 and re.fullmatch(r"weft \d+\.\d+\.\d+\n", r.stdout)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_command_help(weft, cmd):
    usage = re.compile(rf"^usage: weft {re.escape(cmd)}\b")
    outs = []
    for args in (("help", cmd), (cmd, "--help"), (cmd, "-h"), (cmd, "x", "--help")):
        r = weft(*args)
        assert (r.returncode, r.stderr) == (0, ""), (args, r.stderr)
        assert usage.match(r.stdout), (args, r.stdout)
        outs.append(r.stdout)
    assert len(set(outs)) == 1


def test_unknown_command(weft):
    for args in (("frobnicate",), ("help", "frobnicate"), ("--frobnicate",)):
        r = weft(*args)
        assert r.returncode == 2, args
        assert r.stdout == ""
        assert r.stderr.startswith("weft: error:"), (args, r.stderr)
        assert "frobnicate" in r.stderr.splitlines()[0]


@pytest.mark.parametrize("cmd", IMPLEMENTED)
def test_unknown_flag(weft, cmd):
    for flag in ("--frobnicate", "-Z"):
        r = weft(cmd, flag, "x")
        assert r.returncode == 2, (cmd, flag, r.stderr)
        assert r.stdout == ""
        assert r.stderr.startswith("weft: error:") and flag in r.stderr, r.stderr


@pytest.mark.parametrize("cmd", ["validate", "graph", "cron"])
def test_missing_argument(weft, cmd):
    r = weft(cmd)
    assert r.returncode == 2 and r.stderr.startswith("weft: error:"), r.stderr


@pytest.mark.parametrize("cmd,usage", [
    ("show", "usage: weft show RUN"),
    ("submit", "usage: weft submit FILE..."),
    ("cancel", "usage: weft cancel RUN"),
    ("trigger", "usage: weft trigger DAG"),
    ("pause", "usage: weft pause DAG"),
])
def test_a_missing_argument_shows_the_usage_line(weft, cmd, usage):
    # Before any scheduler is called: WEFT_SCHEDULER points nowhere.
    r = weft(cmd)
    assert r.returncode == 2, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith("weft: error: missing ") and usage in first, r.stderr

"""Fixtures for system tests: they drive the real `weft` binary.

WEFT_BIN (set by tests/run) names the binary under test; WEFT_SHARED the
shared/ folder with outside workloads.
"""
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEFT_BIN = os.environ.get("WEFT_BIN", str(ROOT / "build" / "weft"))
SHARED = Path(os.environ.get("WEFT_SHARED", str(ROOT.parent / "shared")))


def run_weft(*args, input=None, cwd=None, env=None, timeout=60):
    """Runs weft with ARGS; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    return subprocess.run(
        [WEFT_BIN, *map(str, args)],
        input=input,
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        timeout=timeout,
    )


@pytest.fixture
def weft():
    """weft(*args, **kw) -> CompletedProcess of the real binary."""
    return run_weft


@pytest.fixture
def shared():
    """Path of ../shared (outside workloads); skips when absent."""
    if not SHARED.is_dir():
        pytest.skip(f"shared workloads not found at {SHARED}")
    return SHARED


@pytest.fixture
def root():
    """Path of the project's checkout (examples/, docs/)."""
    return ROOT


@pytest.fixture
def dag_file(tmp_path):
    """dag_file(text, name="dag.yaml") -> Path of TEXT, dedented, in a temp dir."""

    def write(text, name="dag.yaml"):
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    return write


@pytest.fixture
def cluster(tmp_path):
    """A Cluster (weftproc.py) in TMP_PATH, stopped after the test; its
    logs are printed, which pytest shows for tests that failed. Modules
    whose processes need more (a disk to unmount, a link to heal) define
    their own."""
    from weftproc import Cluster  # weftproc imports this module
    c = Cluster(tmp_path)
    yield c
    c.stop()
    print(c.logs())

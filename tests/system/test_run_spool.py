"""`weft run`'s worker spool is committed without flushing to disk
(worker/spoolboot.c): a crash of the process loses nothing (the page cache
keeps it); a crash of the machine kills every attempt, and a spool marked
as written unsynced during an earlier boot is then discarded. These tests
kill a real `weft run`, look at the mark, and fake a restart of the machine
by changing the boot id in it."""
import json
import os
import signal
import subprocess
import uuid

from conftest import WEFT_BIN
from weftproc import wait_for

BOOT_ID = open("/proc/sys/kernel/random/boot_id").read().strip()


def write_dag(tmp_path):
    # The first attempt waits long (killed with `weft run`); any later one
    # finds the flag and succeeds at once.
    flag = tmp_path / "flag"
    dag = tmp_path / "one.yaml"
    dag.write_text(
        "name: one\ntasks:\n  slow:\n    run: >-\n"
        f"      if [ -e {flag} ]; then exit 0; fi; touch {flag}; sleep 60\n")
    return dag


def start_and_kill(tmp_path, data, dag):
    """Starts `weft run DAG`, waits for its task to run, SIGKILLs it and
    the task's process group (as a machine restart would); returns the
    spool dir."""
    spool = data / "worker-spool"
    err = open(tmp_path / "first.err", "w")
    p = subprocess.Popen([WEFT_BIN, "run", str(dag), "--workers", "1",
                          "--data", str(data)],
                         stdout=subprocess.DEVNULL, stderr=err,
                         start_new_session=True)
    try:
        wait_for(lambda: (tmp_path / "flag").exists(), timeout=60,
                 what="the task to start")
        marker = spool / "results" / "unsynced"
        assert marker.read_text() == BOOT_ID
    finally:
        p.kill()
        p.wait()
        err.close()
    # The task leads its own process group: find it by its command line.
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if str(tmp_path / "flag").encode() in cmd:
            try:
                os.killpg(int(pid), signal.SIGKILL)
            except ProcessLookupError:
                pass
    return spool


def run_again(tmp_path, data, dag):
    r = subprocess.run([WEFT_BIN, "run", str(dag), "--workers", "1",
                        "--data", str(data), "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["state"] == "success"
    return r


def test_spool_after_a_machine_restart_is_discarded(tmp_path):
    data = tmp_path / "data"
    dag = write_dag(tmp_path)
    spool = start_and_kill(tmp_path, data, dag)
    marker = spool / "results" / "unsynced"
    # What the killed run left: its attempt's log, and a file of ours
    # beside it, which only discarding the spool removes.
    run_dirs = [d for d in spool.iterdir() if d.name != "results"]
    assert len(run_dirs) == 1, list(spool.iterdir())
    assert any(f.suffix == ".log" for f in run_dirs[0].iterdir())
    (run_dirs[0] / "sentinel").write_text("x")
    marker.write_text(str(uuid.uuid4()))  # another boot

    r = run_again(tmp_path, data, dag)
    assert "the machine restarted since its spool was last written" in \
        r.stderr, r.stderr
    assert not (run_dirs[0] / "sentinel").exists()
    # A clean exit flushed the spool: no mark left.
    assert not marker.exists()


def test_spool_after_a_process_crash_is_kept(tmp_path):
    data = tmp_path / "data"
    dag = write_dag(tmp_path)
    spool = start_and_kill(tmp_path, data, dag)
    run_dirs = [d for d in spool.iterdir() if d.name != "results"]
    assert len(run_dirs) == 1
    (run_dirs[0] / "sentinel").write_text("x")

    r = run_again(tmp_path, data, dag)
    assert "machine restarted" not in r.stderr, r.stderr
    assert (run_dirs[0] / "sentinel").exists()
    assert not (spool / "results" / "unsynced").exists()

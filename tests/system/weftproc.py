"""Real weft daemons for system tests: a scheduler on a free port with its
own data dir, workers connected to it, and the CLI pointed at it.

Waits are bounded polls (never bare sleeps); every process is stopped at
the end of the test, killed if it does not stop in time.
"""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from conftest import WEFT_BIN


def wait_for(pred, timeout=20.0, interval=0.05, what="condition"):
    """Polls PRED until it returns a true value; returns it, or fails."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A weft daemon process with its log in a file."""

    def __init__(self, args, log_path, env=None, cwd=None):
        self.args = args
        self.log_path = Path(log_path)
        full_env = dict(os.environ)
        full_env.setdefault("WEFT_LOG_LEVEL", "debug")
        if env:
            full_env.update(env)
        self.log = open(self.log_path, "ab")
        self.p = subprocess.Popen(
            [WEFT_BIN, *map(str, args)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )

    def alive(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def stop(self, timeout=15):
        """SIGTERM, wait; returns the exit code (kills after TIMEOUT)."""
        if self.alive():
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()
        return self.p.returncode

    def kill(self):
        if self.alive():
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(10)

    def output(self):
        return self.log_path.read_text(errors="replace")


class Cluster:
    """A scheduler and workers in TMP; call .weft(...) to use the CLI."""

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.data = self.tmp / "data"
        self.procs = []
        self.sched = None
        self.addr = None
        # More environment for every CLI call (e.g. WEFT_TOKEN).
        self.client_env = {}

    def start_scheduler(self, listen="tcp://127.0.0.1:0", clock=None,
                        env=None, extra=()):
        """CLOCK: a file holding the epoch ms that schedules see (a testing
        clock, WEFT_TEST_CLOCK; docs/schedules.md), or None for real time.
        ENV: more environment (e.g. WEFT_FAULT); EXTRA: more arguments."""
        addr_file = self.data / "scheduler.addr"
        if addr_file.exists():
            addr_file.unlink()
        full_env = dict(env or {})
        if clock:
            full_env["WEFT_TEST_CLOCK"] = str(clock)
        self.sched = Proc(
            ["scheduler", "--data", self.data, "--listen", listen, *extra],
            self.tmp / "scheduler.log",
            env=full_env or None,
        )
        self.procs.append(self.sched)

        def ready():
            if not self.sched.alive():
                raise AssertionError("scheduler died:\n" + self.sched.output())
            return addr_file.exists() and addr_file.read_text().strip()

        self.addr = wait_for(ready, what="scheduler.addr")
        return self.sched

    def start_worker(self, name, slots=2, extra=(), cwd=None, env=None):
        work = self.tmp / f"work-{name}"
        work.mkdir(exist_ok=True)
        w = Proc(
            ["worker", "--connect", self.addr, "--name", name,
             "--slots", slots, "--work-dir", work, *extra],
            self.tmp / f"worker-{name}.log",
            env=env,
            cwd=cwd,
        )
        self.procs.append(w)
        return w

    def weft(self, *args, timeout=60, check=None):
        env = dict(os.environ)
        env["WEFT_SCHEDULER"] = self.addr or ""
        env.update(self.client_env)
        r = subprocess.run(
            [WEFT_BIN, *map(str, args)],
            capture_output=True, text=True, env=env, timeout=timeout,
        )
        if check is not None:
            assert r.returncode == check, (
                f"weft {' '.join(map(str, args))} exited {r.returncode}, "
                f"wanted {check}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def show(self, run_id):
        r = self.weft("show", run_id, "--json", check=0)
        return json.loads(r.stdout)

    def wait_run(self, run_id, timeout=60):
        """Waits for RUN_ID to end; returns its JSON."""
        def done():
            doc = self.show(run_id)
            return doc if doc["state"] in ("success", "failed", "cancelled") else None

        return wait_for(done, timeout=timeout, interval=0.1, what=f"run {run_id}")

    def wait_workers(self, n, timeout=20):
        def ready():
            r = self.weft("workers", "--json")
            if r.returncode != 0:
                return None
            ws = [w for w in json.loads(r.stdout) if w["state"] == "ready"]
            return ws if len(ws) >= n else None

        return wait_for(ready, timeout=timeout, what=f"{n} workers")

    def stop(self):
        # Workers first: a draining worker waits for the scheduler to hear
        # about it (a scheduler restarted in a test comes later in procs).
        workers = [p for p in self.procs if p.args[0] == "worker"]
        for p in reversed(workers):
            p.stop()
        for p in reversed(self.procs):
            if p not in workers:
                p.stop()

    def logs(self):
        return "\n".join(f"== {p.log_path.name}\n{p.output()}" for p in self.procs)


def ipc_addr(tmp_path):
    """An ipc:// address in TMP_PATH that a restarted scheduler can bind
    again (a tcp port 0 would change)."""
    path = tmp_path / "s.ipc"
    assert len(str(path)) < 100, "socket path too long for sun_path"
    return f"ipc://{path}"

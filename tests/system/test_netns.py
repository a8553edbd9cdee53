"""Workers on other hosts (issue 4): a worker in its own network namespace,
joined to the scheduler's by a veth pair, as a worker on another machine
would be. The scheduler listens on the veth address with a token. A link
cut longer than the lease makes the far worker lost, its attempt runs on a
worker beside the scheduler, and after the link heals the far worker's
result is refused as stale, its attempt was killed, and it rejoins and
gets work. A cut shorter than the lease loses nothing and re-runs nothing.

Needs root (ip netns add); skipped with a message where that is not
permitted. The cut is 100% packet loss (tc netem) on both ends of the
link, which leaves the TCP connection up and silent, like a real network
partition; where netem is missing the links are set down instead.
"""
import base64
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import WEFT_BIN
from weftproc import Cluster, Proc, wait_for

SLOW = """\
name: far
tasks:
  slow:
    run: |
      echo "start $WEFT_ATTEMPT $$" >> {marks}
      if [ "$WEFT_ATTEMPT" = 1 ]; then sleep {first}; else sleep {second}; fi
      echo "end $WEFT_ATTEMPT" >> {marks}
"""

QUICK = """\
name: quick
tasks:
  a:
    run: echo a=1 >> $WEFT_OUTPUT
  b:
    needs: a
    run: echo "b after {{ tasks.a.outputs.a }}"
"""

_seq = [0]


def sh(*args, check=True):
    return subprocess.run(list(map(str, args)), capture_output=True, text=True,
                          timeout=30, check=check)


class Link:
    """A network namespace NS and a veth pair: HOST_IF (in the root
    namespace, HOST_IP) to NS_IF (in NS, NS_IP)."""

    def __init__(self):
        _seq[0] += 1
        tag = f"{os.getpid() % 100000}{_seq[0]}"
        self.ns = f"weft{tag}"
        self.host_if = f"wfh{tag}"[:15]
        self.ns_if = f"wfn{tag}"[:15]
        net = f"10.{200 + (os.getpid() % 50)}.{_seq[0] % 250}"
        self.host_ip = f"{net}.1"
        self.ns_ip = f"{net}.2"
        self.netem = None
        self.cut_now = False

    def up(self):
        r = sh("ip", "netns", "add", self.ns, check=False)
        if r.returncode != 0:
            pytest.skip("cannot make a network namespace here (`ip netns add` "
                        f"is not permitted: {r.stderr.strip()}); this test needs "
                        "root with CAP_SYS_ADMIN")
        sh("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.ns_if)
        sh("ip", "link", "set", self.ns_if, "netns", self.ns)
        sh("ip", "addr", "add", f"{self.host_ip}/30", "dev", self.host_if)
        sh("ip", "link", "set", self.host_if, "up")
        sh("ip", "-n", self.ns, "addr", "add", f"{self.ns_ip}/30", "dev", self.ns_if)
        sh("ip", "-n", self.ns, "link", "set", self.ns_if, "up")
        sh("ip", "-n", self.ns, "link", "set", "lo", "up")

    def _qdisc(self, op):
        a = sh("tc", "qdisc", op, "dev", self.host_if, "root",
               *(("netem", "loss", "100%") if op == "add" else ()), check=False)
        b = sh("ip", "netns", "exec", self.ns, "tc", "qdisc", op, "dev", self.ns_if,
               "root", *(("netem", "loss", "100%") if op == "add" else ()), check=False)
        return a.returncode == 0 and b.returncode == 0

    def cut(self):
        if self.netem is None:
            self.netem = self._qdisc("add")
            if not self.netem:
                self._qdisc("del")
        elif self.netem:
            assert self._qdisc("add")
        if not self.netem:
            sh("ip", "link", "set", self.host_if, "down")
            sh("ip", "-n", self.ns, "link", "set", self.ns_if, "down")
        self.cut_now = True

    def heal(self):
        if self.netem:
            self._qdisc("del")
        else:
            sh("ip", "link", "set", self.host_if, "up", check=False)
            sh("ip", "-n", self.ns, "link", "set", self.ns_if, "up", check=False)
        self.cut_now = False

    def down(self):
        """Removes everything, whatever state it is in."""
        r = sh("ip", "netns", "pids", self.ns, check=False)
        for pid in r.stdout.split():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass
        sh("ip", "link", "del", self.host_if, check=False)
        sh("ip", "netns", "del", self.ns, check=False)


class NsProc(Proc):
    """A weft daemon run inside network namespace NS."""

    def __init__(self, ns, args, log_path, env=None):
        self.args = args
        self.log_path = Path(log_path)
        full_env = dict(os.environ)
        full_env.setdefault("WEFT_LOG_LEVEL", "debug")
        if env:
            full_env.update(env)
        self.log = open(self.log_path, "ab")
        # `ip netns exec` execs weft itself: the pid is the worker's.
        self.p = subprocess.Popen(
            ["ip", "netns", "exec", ns, WEFT_BIN, *map(str, args)],
            stdout=self.log, stderr=subprocess.STDOUT, env=full_env,
            start_new_session=True)


@pytest.fixture
def link():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (ip netns add); not root here")
    lk = Link()
    try:
        lk.up()
        yield lk
    finally:
        lk.down()


@pytest.fixture
def cluster(tmp_path, link):
    c = Cluster(tmp_path)
    yield c
    # Heal first: a worker draining across a cut link would wait for it.
    if link.cut_now:
        link.heal()
    c.stop()
    print(c.logs())


def start(cluster, link, tmp_path, lease):
    tok = tmp_path / "token"
    tok.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    tok.chmod(0o600)
    cluster.start_scheduler(listen=f"tcp://{link.host_ip}:0",
                            extra=("--token-file", tok, "--lease", lease))
    assert cluster.addr.startswith(f"tcp://{link.host_ip}:")
    cluster.client_env = {"WEFT_TOKEN": tok.read_text().strip()}
    return tok


def start_far(cluster, link, tok, tmp_path):
    work = tmp_path / "work-far"
    work.mkdir(exist_ok=True)
    w = NsProc(link.ns, ["worker", "--connect", cluster.addr, "--name", "far",
                         "--slots", 1, "--work-dir", work, "--token-file", tok],
               tmp_path / "worker-far.log")
    cluster.procs.append(w)
    return w


def workers(cluster):
    r = cluster.weft("workers", "--json", check=0)
    return {w["name"]: w for w in json.loads(r.stdout)}


def marks_of(path):
    return path.read_text().splitlines() if path.exists() else []


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def run_on(cluster, tmp_path, text, dag):
    p = tmp_path / f"{dag}.yaml"
    p.write_text(text)
    cluster.weft("submit", p, check=0)
    return cluster.weft("trigger", dag, check=0).stdout.strip()


def test_a_cut_longer_than_the_lease(cluster, link, tmp_path):
    tok = start(cluster, link, tmp_path, "2s")
    far = start_far(cluster, link, tok, tmp_path)
    wait_for(lambda: workers(cluster).get("far", {}).get("state") == "ready",
             what="the far worker")
    doc = cluster.wait_run(run_on(cluster, tmp_path, QUICK, "quick"))
    assert doc["state"] == "success"
    assert {t["worker"] for t in doc["tasks"]} == {"far"}

    marks = tmp_path / "marks"
    # Attempt 2 runs long enough for the link to heal while it runs: the
    # far worker's result then meets a run that is still going.
    run_id = run_on(cluster, tmp_path, SLOW.format(marks=marks, first=12, second=6),
                    "far")
    wait_for(lambda: marks_of(marks), what="attempt 1 to start")
    task = cluster.show(run_id)["tasks"][0]
    assert task["state"] == "running" and task["worker"] == "far", task
    first_pid = int(marks_of(marks)[0].split()[2])

    link.cut()
    # A worker beside the scheduler, there to take the attempt over.
    cluster.start_worker("near", slots=1, extra=("--token-file", tok))
    wait_for(lambda: workers(cluster).get("far", {}).get("state") == "lost",
             timeout=20, what="the far worker to be declared lost")
    assert "worker far lost" in cluster.sched.output()
    wait_for(lambda: "start 2" in " ".join(marks_of(marks)), timeout=20,
             what="attempt 2 to start on the near worker")
    # The far worker heard nothing for most of the lease and stopped its
    # attempt itself, so that it does not race the copy.
    wait_for(lambda: "stopping 1 running attempt" in far.output(), timeout=20,
             what="the far worker to stop its attempt")
    wait_for(lambda: not pid_alive(first_pid), timeout=20,
             what="attempt 1's process to be killed")

    link.heal()
    # It comes back, its stale result is refused (fenced by the attempt
    # number), and it is ready again; attempt 2 is not disturbed.
    wait_for(lambda: "far.1 slow attempt 1: stale result ignored" in cluster.sched.output(),
             timeout=30, what="the stale result of attempt 1 to be refused")
    wait_for(lambda: workers(cluster).get("far", {}).get("state") == "ready",
             timeout=30, what="the far worker to rejoin")
    doc = cluster.wait_run(run_id, timeout=40)
    assert doc["state"] == "success", doc
    task = doc["tasks"][0]
    assert task["worker"] == "near" and task["attempts"] == 2, task
    ms = marks_of(marks)
    assert "end 1" not in ms, ms            # killed, never finished
    assert [m.split()[:2] for m in ms] == [["start", "1"], ["start", "2"], ["end", "2"]], ms
    doc = cluster.show(run_id)
    assert doc["state"] == "success" and doc["tasks"][0]["attempts"] == 2

    # The healed worker gets work again (the near one is gone).
    near = [p for p in cluster.procs if p.args[:5] == ["worker", "--connect",
                                                       cluster.addr, "--name", "near"]][0]
    assert near.stop() == 0
    doc = cluster.wait_run(run_on(cluster, tmp_path, QUICK, "quick"), timeout=30)
    assert doc["state"] == "success"
    assert {t["worker"] for t in doc["tasks"]} == {"far"}, doc


def test_a_cut_shorter_than_the_lease(cluster, link, tmp_path):
    tok = start(cluster, link, tmp_path, "6s")
    far = start_far(cluster, link, tok, tmp_path)
    wait_for(lambda: workers(cluster).get("far", {}).get("state") == "ready",
             what="the far worker")
    marks = tmp_path / "marks"
    run_id = run_on(cluster, tmp_path, SLOW.format(marks=marks, first=4, second=0),
                    "far")
    wait_for(lambda: marks_of(marks), what="attempt 1 to start")
    link.cut()
    time.sleep(1.5)  # the fault: well under the lease (6 s)
    link.heal()
    doc = cluster.wait_run(run_id, timeout=40)
    assert doc["state"] == "success", doc
    task = doc["tasks"][0]
    assert task["worker"] == "far" and task["attempts"] == 1, task
    assert marks_of(marks) == [marks_of(marks)[0], "end 1"]
    assert workers(cluster)["far"]["state"] == "ready"
    assert "lost" not in cluster.sched.output()
    assert "stopping" not in far.output()
    assert "stale result" not in cluster.sched.output()

"""Token authentication with real daemons (docs/operations.md,
"Authentication"): clients and workers prove a shared secret with an HMAC
over each CALL and HELLO; a wrong or missing token gets exit 3 or no work;
the workers' token is refused for client calls; the secret never appears
on the wire; a captured request cannot be replayed.
"""
import base64
import json
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import WEFT_BIN
from weftproc import Cluster, wait_for

HANDSHAKE_REQ = b"\x00SP\x00\x00\x30\x00\x00"
HANDSHAKE_REP = b"\x00SP\x00\x00\x31\x00\x00"
# REPLY [1, 6, OK, "", nil]
REPLY_OK = b"\x95\x01\x06\x00\xa0\xc0"
AUTH_LEN = 48


def new_secret():
    return base64.b64encode(os.urandom(32)).decode()


def token_file(path, *secrets):
    path.write_text("".join(s + "\n" for s in secrets))
    path.chmod(0o600)
    return path


@pytest.fixture
def tokens(tmp_path):
    """The clients' and the workers' token files (separate roles)."""
    ct = token_file(tmp_path / "client.token", new_secret())
    wt = token_file(tmp_path / "worker.token", new_secret())
    return ct, wt


def start_secure(cluster, tokens, listen="tcp://127.0.0.1:0"):
    ct, wt = tokens
    cluster.start_scheduler(listen=listen, extra=(
        "--token-file", ct, "--worker-token-file", wt))
    cluster.client_env = {"WEFT_TOKEN": ct.read_text().strip()}


def no_token(cluster, *args):
    env = dict(cluster.client_env)
    cluster.client_env = {"WEFT_TOKEN": ""}
    try:
        return cluster.weft(*args)
    finally:
        cluster.client_env = env


def test_non_loopback_needs_a_token_or_insecure(tmp_path, weft, tokens):
    r = weft("scheduler", "--data", tmp_path / "d1", "--listen",
             "tcp://0.0.0.0:0", timeout=20)
    assert r.returncode == 1
    assert "refusing to listen on tcp://0.0.0.0:0 without authentication" in r.stderr
    # With a token it starts (and serves, checked through the client).
    c = Cluster(tmp_path)
    try:
        start_secure(c, tokens, listen="tcp://0.0.0.0:0")
        r = c.weft("workers", "--json", check=0)
        assert json.loads(r.stdout) == []
        assert "must prove their tokens" in c.sched.output()
    finally:
        c.stop()


def test_clients_need_the_clients_token(cluster, tokens, tmp_path):
    ct, wt = tokens
    start_secure(cluster, tokens)
    # The right token, from a file or from WEFT_TOKEN.
    cluster.weft("workers", check=0)
    r = no_token(cluster, "runs", "--token-file", ct)
    assert r.returncode == 0, r.stderr

    r = no_token(cluster, "runs")
    assert r.returncode == 3
    assert r.stderr.strip() == ("weft: error: authentication failed: this "
                                "scheduler needs a token (--token-file or "
                                "WEFT_TOKEN)")
    # Through --data: the scheduler holding the dir answers, and its
    # refusal is the answer (the dir is not read behind its back).
    r = no_token(cluster, "runs", "--data", cluster.data)
    assert r.returncode == 3
    assert "authentication failed: this scheduler needs a token" in r.stderr
    assert no_token(cluster, "runs", "--data", cluster.data,
                    "--token-file", ct).returncode == 0
    wrong = token_file(tmp_path / "wrong.token", new_secret())
    r = no_token(cluster, "runs", "--token-file", wrong)
    assert r.returncode == 3
    assert "authentication failed: wrong token" in r.stderr
    # The workers' token cannot make client calls (submit, trigger, ...).
    dag = tmp_path / "d.yaml"
    dag.write_text("name: d\ntasks:\n  a: {run: 'true'}\n")
    r = no_token(cluster, "submit", dag, "--token-file", wt)
    assert r.returncode == 3
    assert "this token belongs to workers" in r.stderr
    r = cluster.weft("dags", "--json", check=0)
    assert json.loads(r.stdout) == []
    # A token file others can read is used, with a warning.
    ct.chmod(0o644)
    r = no_token(cluster, "runs", "--token-file", ct)
    assert r.returncode == 0
    assert "can be read by others" in r.stderr
    # An unreadable token file is a usage error, not a silent "no token".
    r = no_token(cluster, "runs", "--token-file", tmp_path / "missing")
    assert r.returncode == 2
    assert "cannot read token file" in r.stderr


def test_rotation_accepts_every_listed_secret(cluster, tmp_path):
    old, new = new_secret(), new_secret()
    ct = token_file(tmp_path / "client.token", new, old)
    cluster.start_scheduler(extra=("--token-file", ct))
    for s in (old, new):
        cluster.client_env = {"WEFT_TOKEN": s}
        cluster.weft("runs", check=0)
    cluster.client_env = {"WEFT_TOKEN": new_secret()}
    assert cluster.weft("runs").returncode == 3
    # Without --worker-token-file, workers prove the same secret (the
    # first line, as clients do).
    cluster.client_env = {"WEFT_TOKEN": new}
    wt = token_file(tmp_path / "w.token", new)
    cluster.start_worker("w", extra=("--token-file", wt))
    cluster.wait_workers(1)


def test_worker_without_the_workers_token_gets_no_work(cluster, tokens, tmp_path):
    ct, wt = tokens
    start_secure(cluster, tokens)
    wrong = token_file(tmp_path / "wrong.token", new_secret())
    bad = cluster.start_worker("bad", extra=("--token-file", wrong))
    clienttok = cluster.start_worker("clienttok", extra=("--token-file", ct))
    notok = cluster.start_worker("notok", env={"WEFT_TOKEN": ""})
    dag = tmp_path / "d.yaml"
    dag.write_text("name: d\ntasks:\n  a: {run: 'echo ran'}\n")
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "d", check=0).stdout.strip()

    for w, why in ((bad, "wrong token"),
                   (clienttok, "this token belongs to clients"),
                   (notok, "this scheduler needs a token")):
        wait_for(lambda: "refused us: authentication failed: " + why in w.output(),
                 timeout=15, what=f"{w.args} to be refused")
    # Give them time they would have used to take the task.
    time.sleep(1.5)
    task = cluster.show(run_id)["tasks"][0]
    assert task["state"] == "queued", task
    assert task["attempts"] == 0, task
    r = cluster.weft("workers", "--json", check=0)
    assert json.loads(r.stdout) == []
    for w in (bad, clienttok, notok):
        assert w.alive()  # they keep trying, with backoff
    assert "worker bad (" in cluster.sched.output()

    cluster.start_worker("good", extra=("--token-file", wt))
    doc = cluster.wait_run(run_id)
    assert doc["state"] == "success"
    assert doc["tasks"][0]["worker"] == "good"
    names = [w["name"] for w in json.loads(cluster.weft("workers", "--json", check=0).stdout)]
    assert names == ["good"]


class FakeScheduler:
    """A REP peer on a TCP port that records the first request of each
    connection and answers it with an OK REPLY."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(4)
        self.srv.settimeout(20)
        self.port = self.srv.getsockname()[1]
        self.requests = []
        self.t = threading.Thread(target=self.serve, daemon=True)
        self.t.start()

    def serve(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(20)
            data = b""
            try:
                while len(data) < 8:
                    data += conn.recv(8 - len(data))
                assert data == HANDSHAKE_REQ
                conn.sendall(HANDSHAKE_REP)
                head = b""
                while len(head) < 8:
                    head += conn.recv(8 - len(head))
                n = struct.unpack(">Q", head)[0]
                msg = b""
                while len(msg) < n:
                    msg += conn.recv(n - len(msg))
                self.requests.append(msg)
                reply = msg[:4] + REPLY_OK
                conn.sendall(struct.pack(">Q", len(reply)) + reply)
                time.sleep(0.5)
            except OSError:
                pass

    def close(self):
        self.srv.close()


def test_the_secret_is_never_on_the_wire(tmp_path):
    secret = new_secret()
    tf = token_file(tmp_path / "t", secret)
    # A client's CALL.
    fake = FakeScheduler()
    env = dict(os.environ, WEFT_SCHEDULER=f"tcp://127.0.0.1:{fake.port}")
    env.pop("WEFT_TOKEN", None)
    r = subprocess.run([WEFT_BIN, "runs", "--token-file", tf, "--json"],
                       capture_output=True, text=True, env=env, timeout=30)
    fake.t.join(10)
    fake.close()
    assert len(fake.requests) == 1, r.stderr
    call = fake.requests[0][4:]  # after the request id
    assert call[:3] == b"\x96\x01\x05"  # [1, CALL, cmd, token, args, auth]
    assert secret.encode() not in call
    assert secret[:12].encode() not in call
    assert call[-AUTH_LEN - 2:-AUTH_LEN] == b"\xc4\x30"  # the 48-byte proof
    assert b"\xa0" in call[:12]  # the legacy token field is empty

    # A worker's HELLO.
    fake = FakeScheduler()
    p = subprocess.Popen(
        [WEFT_BIN, "worker", "--connect", f"tcp://127.0.0.1:{fake.port}",
         "--name", "w", "--work-dir", tmp_path, "--token-file", tf],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env=dict(env, WEFT_TOKEN=""), start_new_session=True)
    try:
        fake.t.join(15)
    finally:
        p.kill()
        p.wait(10)
        fake.close()
    assert len(fake.requests) == 1
    hello = fake.requests[0][4:]
    assert hello[:3] == b"\x9a\x01\x01"  # [1, HELLO, 7 fields, auth]
    assert secret.encode() not in hello
    assert hello[-AUTH_LEN - 2:-AUTH_LEN] == b"\xc4\x30"


def sp_request(port, body, rid=0x80000001):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(HANDSHAKE_REQ)
        assert s.recv(8) == HANDSHAKE_REP
        msg = struct.pack(">I", rid) + body
        s.sendall(struct.pack(">Q", len(msg)) + msg)
        n = struct.unpack(">Q", s.recv(8, socket.MSG_WAITALL))[0]
        return s.recv(n, socket.MSG_WAITALL)[4:]
    finally:
        s.close()


def test_a_captured_call_cannot_be_replayed_or_altered(cluster, tmp_path):
    ct = token_file(tmp_path / "client.token", new_secret())
    cluster.start_scheduler(extra=("--token-file", ct))
    port = int(cluster.addr.rsplit(":", 1)[1])
    # Capture a valid CALL as the CLI sends it.
    fake = FakeScheduler()
    env = dict(os.environ, WEFT_SCHEDULER=f"tcp://127.0.0.1:{fake.port}")
    subprocess.run([WEFT_BIN, "workers", "--token-file", ct, "--json"],
                   capture_output=True, env=env, timeout=30)
    fake.t.join(10)
    fake.close()
    call = fake.requests[0][4:]

    # One byte of the command changed ("workers" -> "workerz"): refused.
    altered = call.replace(b"workers", b"workerz", 1)
    reply = sp_request(port, altered)
    assert reply[:3] == b"\x95\x01\x06" and reply[3] != 0
    assert b"wrong token" in reply
    # The genuine bytes are accepted once, then refused as a replay.
    assert sp_request(port, call)[:4] == b"\x95\x01\x06\x00"
    reply = sp_request(port, call, rid=0x80000002)
    assert b"already seen" in reply
    assert "call workers refused: authentication failed" in cluster.sched.output()

"""The CLI's call timeout (cli/client.c, docs/cli.md): a scheduler that
takes a call and does not answer in time gives exit 3 and a message that
says the call may still be carried out and how to check; the wait grows
with the size of the request, and $WEFT_CALL_TIMEOUT sets its base."""
import os
import socket
import subprocess
import threading

from conftest import WEFT_BIN

HANDSHAKE_REQ = b"\x00SP\x00\x00\x30\x00\x00"
HANDSHAKE_REP = b"\x00SP\x00\x00\x31\x00\x00"


class SilentScheduler:
    """A REP peer that completes the SP handshake, reads whatever it is
    sent, and never answers."""

    def __init__(self):
        self.srv = socket.socket()
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        self.received = 0
        self.conns = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        try:
            data = b""
            while len(data) < 8:
                chunk = conn.recv(8 - len(data))
                if not chunk:
                    return
                data += chunk
            assert data == HANDSHAKE_REQ
            conn.sendall(HANDSHAKE_REP)
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                self.received += len(chunk)
        except OSError:
            pass

    def close(self):
        self.srv.close()
        for c in self.conns:
            c.close()


def call(fake, *args, base="0.3"):
    env = dict(os.environ, WEFT_SCHEDULER=f"tcp://127.0.0.1:{fake.port}",
               WEFT_CALL_TIMEOUT=base)
    env.pop("WEFT_TOKEN", None)
    return subprocess.run([WEFT_BIN, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=60)


def test_a_call_that_times_out_says_what_to_do():
    fake = SilentScheduler()
    try:
        r = call(fake, "dags")
    finally:
        fake.close()
    assert r.returncode == 3, r.stderr
    err = r.stderr
    # "timed out" is what scripts (bench/scale.sh) look for.
    assert "timed out" in err, err
    assert "no answer to 'dags' in 0.3 s" in err, err
    assert "try again" in err and "WEFT_CALL_TIMEOUT" in err, err
    # Not the message for a scheduler that is not there.
    assert "is 'weft scheduler' running" not in err, err


def test_a_big_submit_waits_longer_and_points_to_weft_dags(tmp_path):
    # 256 KiB of YAML: the base 0.3 s plus 4 s per MiB sent = 1.3 s.
    f = tmp_path / "big.yaml"
    lines = ["name: big", "tasks:"]
    size = 0
    k = 0
    while size < 256 * 1024:
        line = f"  t{k:06d}:\n    run: \"echo {'x' * 40}\""
        lines.append(line)
        size += len(line) + 1
        k += 1
    f.write_text("\n".join(lines) + "\n")
    fake = SilentScheduler()
    try:
        r = call(fake, "submit", f)
    finally:
        fake.close()
    assert r.returncode == 3, r.stderr
    assert "no answer to 'submit' in 1.3 s" in r.stderr, r.stderr
    assert "'weft dags'" in r.stderr, r.stderr
    assert fake.received >= 256 * 1024


def test_a_bad_weft_call_timeout_is_said_and_ignored():
    # A value that is not seconds: a warning, and the default base (5 s).
    fake = SilentScheduler()
    try:
        r = call(fake, "workers", base="soon")
    finally:
        fake.close()
    assert r.returncode == 3, r.stderr
    assert "ignoring WEFT_CALL_TIMEOUT=soon" in r.stderr, r.stderr
    assert "no answer to 'workers' in 5.0 s" in r.stderr, r.stderr

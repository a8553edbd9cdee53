"""Hostile bytes against a real scheduler (issue 4): junk, oversized frames,
malformed msgpack, floods of half-open and reset connections. After each
attack, and during the floods, real clients still work, the scheduler is
alive and its RSS stays bounded.

The attacks speak NNG's SP-over-TCP framing with raw sockets: each side
first sends 8 bytes, 0x00 'S' 'P' 0x00, its own 16-bit protocol number
(REQ0 0x30, REP0 0x31), 0x00 0x00; then every message is a 64-bit
big-endian length and that many bytes. A REQ message starts with a 32-bit
request id with its high bit set, which the REP reply echoes before its
body. Everything is bounded in count and time, and loopback only.
"""
import json
import os
import random
import re
import resource
import select
import socket
import struct
import threading
import time

import pytest

from weftproc import Cluster, wait_for

HANDSHAKE_REQ = b"\x00SP\x00\x00\x30\x00\x00"
HANDSHAKE_REP = b"\x00SP\x00\x00\x31\x00\x00"
MSG_MAX = 16 << 20        # WF_MSG_MAX
RSS_SLACK_KB = 200 << 10  # the scheduler may grow this much over its start
EPROTO = 2                # common/err.def: OK, INVAL, PROTO, VERSION, ...
EVERSION = 3
FLOOD_WANT = 2000

DAG = """\
name: hostile
tasks:
  a:
    run: echo ok && echo n=1 >> $WEFT_OUTPUT
  b:
    needs: a
    run: echo "{{ tasks.a.outputs.n }}"
"""

# Peaks seen by every check, printed at the end (pytest -s shows them).
RSS_LOG = []


# --- msgpack, just enough to build requests and read replies ---------------

def mp(v):
    """Packs V (None, bool, int, str, bytes, list, dict) as msgpack."""
    if v is None:
        return b"\xc0"
    if v is True:
        return b"\xc3"
    if v is False:
        return b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if -32 <= v < 0:
            return struct.pack("b", v)
        if v >= 0:
            return b"\xcf" + struct.pack(">Q", v)
        return b"\xd3" + struct.pack(">q", v)
    if isinstance(v, float):
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode()
        return (bytes([0xa0 | len(b)]) if len(b) < 32
                else b"\xdb" + struct.pack(">I", len(b))) + b
    if isinstance(v, bytes):
        return b"\xc6" + struct.pack(">I", len(v)) + v
    if isinstance(v, list):
        return b"\xdd" + struct.pack(">I", len(v)) + b"".join(map(mp, v))
    if isinstance(v, dict):
        return (b"\xdf" + struct.pack(">I", len(v)) +
                b"".join(mp(k) + mp(x) for k, x in v.items()))
    raise TypeError(type(v))


def unmp(buf, pos=0):
    """Unpacks one msgpack value at POS; returns (value, next position)."""
    b = buf[pos]
    pos += 1
    if b <= 0x7f:
        return b, pos
    if b >= 0xe0:
        return b - 256, pos
    if 0x80 <= b <= 0x8f or b in (0xde, 0xdf):
        n, pos = ((b & 0x0f, pos) if b <= 0x8f else
                  (int.from_bytes(buf[pos:pos + (2 if b == 0xde else 4)], "big"),
                   pos + (2 if b == 0xde else 4)))
        d = {}
        for _ in range(n):
            k, pos = unmp(buf, pos)
            d[k], pos = unmp(buf, pos)
        return d, pos
    if 0x90 <= b <= 0x9f or b in (0xdc, 0xdd):
        n, pos = ((b & 0x0f, pos) if b <= 0x9f else
                  (int.from_bytes(buf[pos:pos + (2 if b == 0xdc else 4)], "big"),
                   pos + (2 if b == 0xdc else 4)))
        out = []
        for _ in range(n):
            x, pos = unmp(buf, pos)
            out.append(x)
        return out, pos
    if 0xa0 <= b <= 0xbf or b in (0xd9, 0xda, 0xdb, 0xc4, 0xc5, 0xc6):
        if b <= 0xbf:
            n = b & 0x1f
        else:
            w = {0xd9: 1, 0xda: 2, 0xdb: 4, 0xc4: 1, 0xc5: 2, 0xc6: 4}[b]
            n = int.from_bytes(buf[pos:pos + w], "big")
            pos += w
        raw = bytes(buf[pos:pos + n])
        return (raw if b in (0xc4, 0xc5, 0xc6) else
                raw.decode("utf-8", "replace")), pos + n
    fixed = {0xc0: (0, None), 0xc2: (0, False), 0xc3: (0, True)}
    if b in fixed:
        return fixed[b][1], pos
    ints = {0xcc: ">B", 0xcd: ">H", 0xce: ">I", 0xcf: ">Q",
            0xd0: ">b", 0xd1: ">h", 0xd2: ">i", 0xd3: ">q",
            0xca: ">f", 0xcb: ">d"}
    if b in ints:
        f = ints[b]
        n = struct.calcsize(f)
        return struct.unpack(f, buf[pos:pos + n])[0], pos + n
    raise ValueError(f"unexpected msgpack byte 0x{b:02x}")


def call(cmd, args=None, token=""):
    """A CALL message: [1, 5, cmd, token, args]."""
    return mp([1, 5, cmd, token, args])


# --- the SP framing --------------------------------------------------------

def frame(body):
    return struct.pack(">Q", len(body)) + body


def recv_exact(s, n):
    data = bytearray()
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise ConnectionError(f"closed after {len(data)} of {n} bytes")
        data += chunk
    return bytes(data)


def sp_connect(port, timeout=10.0):
    """A TCP connection that completed the SP handshake as a REQ peer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(HANDSHAKE_REQ)
    assert recv_exact(s, 8) == HANDSHAKE_REP
    return s


class Req:
    """A REQ peer on one raw connection: numbered requests, checked replies."""

    def __init__(self, port):
        self.s = sp_connect(port)
        self.next_id = 0x80000001

    def send_raw(self, body, header=None):
        rid = self.next_id
        self.next_id += 1
        hdr = header if header is not None else struct.pack(">I", rid)
        self.s.sendall(frame(hdr + body))
        return hdr

    def recv_frame(self, timeout=15.0):
        self.s.settimeout(timeout)
        n = struct.unpack(">Q", recv_exact(self.s, 8))[0]
        assert n <= MSG_MAX + 64, f"reply frame of {n} bytes"
        return recv_exact(self.s, n)

    def request(self, body, header=None):
        """Sends BODY; returns the decoded reply [1, 6, status, msg, body]."""
        hdr = self.send_raw(body, header)
        data = self.recv_frame()
        assert data[:len(hdr)] == hdr, "reply to another request"
        reply, end = unmp(data, len(hdr))
        assert end == len(data), "trailing bytes after the reply"
        assert isinstance(reply, list) and reply[:2] == [1, 6], reply
        return reply

    def close(self):
        self.s.close()


def closed_by_peer(s, timeout):
    """True when the server closes S (EOF or reset) within TIMEOUT
    seconds; whatever it sends first (a handshake) is read and ignored."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not r:
            break
        try:
            if not s.recv(65536):
                return True
        except (ConnectionResetError, BrokenPipeError):
            return True
    return False


def reset(s):
    """Closes S with a RST (SO_LINGER 0) instead of a FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


# --- the cluster and its health --------------------------------------------

def proc_status(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


def nofile_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])
    raise KeyError("Max open files")


class Hostile:
    def __init__(self, cluster, dag_path, flood):
        self.c = cluster
        self.dag_path = dag_path
        self.flood = flood
        self.pid = cluster.sched.p.pid
        self.port = int(cluster.addr.rsplit(":", 1)[1])
        self.base_rss = None
        self.base_fds = None
        self.runs_done = 0

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def check(self, what, full=True):
        """The scheduler is alive, answers `weft runs`, runs a DAG to
        success on the worker (FULL), and its RSS is within bounds."""
        assert self.c.sched.alive(), f"scheduler died ({what})"
        r = self.c.weft("runs", "--json", timeout=30)
        assert r.returncode == 0, f"weft runs failed ({what}): {r.stderr}"
        assert isinstance(json.loads(r.stdout), list)
        if full:
            self.c.weft("submit", self.dag_path, check=0, timeout=30)
            r = self.c.weft("trigger", "hostile", check=0, timeout=30)
            doc = self.c.wait_run(r.stdout.strip(), timeout=30)
            assert doc["state"] == "success", (what, doc)
            self.runs_done += 1
        rss = self.rss()
        RSS_LOG.append((what, rss, proc_status(self.pid, "VmHWM")))
        assert rss - self.base_rss < RSS_SLACK_KB, (
            f"scheduler RSS {rss} kB after {what}, "
            f"started at {self.base_rss} kB")
        assert self.c.sched.alive(), f"scheduler died ({what})"


@pytest.fixture(scope="module")
def h(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("hostile")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    cap = hard if hard != resource.RLIM_INFINITY else 1 << 20
    # Room for a flood plus Python's own descriptors.
    mine = min(cap, max(soft, FLOOD_WANT + 512))
    resource.setrlimit(resource.RLIMIT_NOFILE, (mine, hard))
    flood = min(FLOOD_WANT, mine - 256)
    # The scheduler starts with the usual soft limit of 1024: the server
    # must raise its own to take a flood of connections.
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, cap), hard))
    # Under ASan, freed memory waits in a quarantine of 256 MB by default,
    # which would read as growth: keep it small (no effect otherwise).
    asan = os.environ.get("ASAN_OPTIONS")
    os.environ["ASAN_OPTIONS"] = (asan + ":" if asan else "") + "quarantine_size_mb=16"
    c = Cluster(tmp)
    try:
        c.start_scheduler()
        c.start_worker("w1", slots=2)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (mine, hard))
        if asan is None:
            del os.environ["ASAN_OPTIONS"]
        else:
            os.environ["ASAN_OPTIONS"] = asan
    dag_path = tmp / "hostile.yaml"
    dag_path.write_text(DAG)
    hs = Hostile(c, dag_path, flood)
    try:
        c.wait_workers(1)
        hs.base_rss = hs.rss()
        hs.check("start")
        # Baseline after one whole run: what a warm scheduler holds.
        hs.base_rss = hs.rss()
        hs.base_fds = hs.fds()
        yield hs
    finally:
        alive = c.sched.alive()
        peak = proc_status(hs.pid, "VmHWM") if alive else None
        for p in reversed(c.procs[1:]):  # workers first: they drain
            p.stop()
        code = c.sched.stop()
        print(f"\nscheduler RSS: start {hs.base_rss} kB, peak (VmHWM) "
              f"{peak} kB, flood size {flood}, DAG runs {hs.runs_done}")
        for what, rss, hwm in RSS_LOG:
            print(f"  {what:40s} RSS {rss:7d} kB  HWM {hwm:7d} kB")
        print(c.logs()[-20000:])
        assert alive and code == 0, f"scheduler exit code {code}"


# --- the attacks -------------------------------------------------------------

def test_framing_speaks_to_the_real_server(h):
    # The raw peer is right about the framing: a ping is answered with OK,
    # so the refusals below are the server's, not a misunderstanding.
    r = Req(h.port)
    try:
        reply = r.request(call("ping"))
        assert reply[2] == 0, reply
        reply = r.request(call("runs", {"limit": 5}))
        assert reply[2] == 0 and isinstance(reply[4]["runs"], list), reply
    finally:
        r.close()


def test_junk_and_bad_handshakes_are_cut_off(h):
    rnd = random.Random(4)
    attacks = {
        "junk": bytes(rnd.getrandbits(8) for _ in range(65536)),
        "http": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 20,
        "tls hello": bytes.fromhex("160301020001") + b"\x00" * 512,
        "zeros": b"\x00" * 4096,
        "rep peer": HANDSHAKE_REP,                      # REP talking to REP
        "pair peer": b"\x00SP\x00\x00\x11\x00\x00",
        "reserved bytes": b"\x00SP\x00\x00\x30\x01\x00",
        "bad magic": b"\x00SQ\x00\x00\x30\x00\x00",
        "half a header": b"\x00SP\x00",                 # then silence
        "nothing": b"",                                 # never says a word
    }
    socks = {}
    for name, data in attacks.items():
        s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
        try:
            if data:
                s.sendall(data)
        except OSError:
            pass  # cut off while sending: all the better
        socks[name] = s
    # Every one of them is dropped: at once for bad bytes, after NNG's
    # 10 s negotiation timeout for silence. Meanwhile clients are served.
    h.check("junk connections open")
    for name, s in socks.items():
        assert closed_by_peer(s, 15), f"{name}: connection still open"
        s.close()
    h.check("junk and bad handshakes")


def test_oversized_frames_are_refused(h):
    socks = {}
    for name, length in {
        "1 GiB": 1 << 30,
        "2^64-1": (1 << 64) - 1,
        "2^63": 1 << 63,
        "just over WF_MSG_MAX": MSG_MAX + 4096,
    }.items():
        s = sp_connect(h.port)
        s.sendall(struct.pack(">Q", length) + b"\x80\x00\x00\x01")
        socks[name] = s
    for name, s in socks.items():
        assert closed_by_peer(s, 5), f"{name}: frame not refused"
        s.close()
    # The same with a trickle after the header: refused all the same.
    s = sp_connect(h.port)
    s.sendall(struct.pack(">Q", 1 << 30))
    cut = False
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            s.sendall(b"\x91")
        except OSError:
            cut = True
            break
        if closed_by_peer(s, 0.05):
            cut = True
            break
    s.close()
    assert cut, "a 1 GiB frame trickling in was not refused"
    h.check("oversized frames")


def test_announced_frames_cost_nothing_until_sent(h):
    # One whole message of the maximum size, answered with an error...
    r = Req(h.port)
    big = (b"\x95\x01\x05\xc6" + struct.pack(">I", MSG_MAX - 10) +
           b"\x00" * (MSG_MAX - 10) + b"\xc0\xc0")
    assert len(big) == MSG_MAX
    reply = r.request(big)
    assert reply[2] == EPROTO and "cmd" in reply[3], reply
    r.close()
    del big
    # ...then a crowd of peers that announce frames just as large and
    # send only the request id: NNG allocates each buffer on the header
    # alone. Those buffers must not cost memory until the bytes arrive.
    n = min(300, h.flood)
    socks = []
    try:
        for k in range(n):
            s = sp_connect(h.port)
            size = MSG_MAX if k % 2 == 0 else (1 << 20) + 7
            s.sendall(struct.pack(">Q", size) + struct.pack(">I", 0x80000000 | k))
            socks.append(s)
        time.sleep(0.5)
        h.check(f"{n} announced 16 MiB/1 MiB frames")
    finally:
        for s in socks:
            reset(s)
    h.check("announced frames closed", full=False)


MALFORMED = {
    # Nesting far deeper than WF_MSG_MAX_DEPTH.
    "10000 nested arrays": b"\x91" * 10000 + b"\xc0",
    "10000 nested maps": b"\x81\xc0" * 10000 + b"\xc0",
    "deep nesting inside a call": b"\x95\x01\x05\xa4ping\xa0" + b"\x91" * 5000 + b"\xc0",
    # Claimed lengths far beyond the bytes present.
    "array32 of 2^32-1": b"\xdd\xff\xff\xff\xff",
    "map32 of 2^32-1": b"\xdf\xff\xff\xff\xff" + b"\xc0" * 64,
    "str32 of 1 GiB": b"\xdb\x40\x00\x00\x00" + b"x" * 64,
    "bin32 of 4 GiB-1": b"\xc6\xff\xff\xff\xff" + b"x" * 64,
    "ext32 of 4 GiB-1": b"\xc9\xff\xff\xff\xff\x01" + b"x" * 64,
    "array16 of 65535 nils, 10 present": b"\xdc\xff\xff" + b"\xc0" * 10,
    "str in a call claiming 1 GiB": b"\x95\x01\x05\xdb\x40\x00\x00\x00ping",
    "list of 100001 in a call": b"\x95\x01\x05\xa4ping\xa0\xdd\x00\x01\x86\xa1" + b"\xc0" * 100001,
    # Not msgpack at all, or not one value.
    "empty": b"",
    "never-used byte": b"\xc1",
    "two values": mp([1, 5, "ping", "", None]) + b"\xc0",
    "junk text": b"hello, scheduler",
    # msgpack, but not a message.
    "a bare integer": mp(7),
    "an empty array": mp([]),
    "version only": mp([1]),
    "negative version": mp([-1, 5, "ping", "", None]),
    "type 0": mp([1, 0]),
    "type 99": mp([1, 99, "x"]),
    "type as a string": mp([1, "5", "ping", "", None]),
    "type as a float": mp([1, 5.0, "ping", "", None]),
    "huge type": mp([1, (1 << 64) - 1]),
    # A CALL with its fields of the wrong types or missing.
    "call without fields": mp([1, 5]),
    "call with 2 fields": mp([1, 5, "ping", ""]),
    "cmd as an integer": mp([1, 5, 42, "", None]),
    "cmd as binary": mp([1, 5, b"ping", "", None]),
    "cmd with a NUL": mp([1, 5, "pi\x00ng", "", None]),
    "token as a map": mp([1, 5, "ping", {}, None]),
    "args as a string": mp([1, 5, "runs", "", "limit=5"]),
    "args as a list": mp([1, 5, "runs", "", [1, 2]]),
    "cmd of 2 MiB": mp([1, 5, "x" * (2 << 20), "", None]),
    # Worker messages with the wrong types.
    "hello of nils": mp([1, 1, None, None, None, None, None, None, None]),
    "hello with resources as a string": mp([1, 1, "w", 1, [], "cpus", [], 1, "h"]),
    "sync with attempt 0": mp([1, 3, 1, 1, 0, 0, [[1, 0, 0]], [], [], False]),
    "sync with a negative count": mp([1, 3, 1, 1, -5, 0, [], [], [], False]),
    "sync with results of strings": mp([1, 3, 1, 1, 0, 0, [], ["x"], [], False]),
    "sync with a 2^32 wait": mp([1, 3, 1, 1, 1 << 32, 0, [], [], [], False]),
    # Messages only the scheduler sends.
    "a welcome": mp([1, 2, 1, 1, 1000, 100]),
    "a work": mp([1, 4, [], [], [], [], False]),
    "a reply": mp([1, 6, 0, "", None]),
}


def test_malformed_msgpack_gets_an_error_reply(h):
    r = Req(h.port)
    try:
        for name, body in MALFORMED.items():
            reply = r.request(body)
            status, message = reply[2], reply[3]
            assert status == EPROTO, (name, reply)
            assert isinstance(message, str) and message, (name, reply)
            assert reply[4] is None, (name, reply)
        # Another version is told so, whatever follows.
        for body in (mp([2, 5, "ping", "", None]), mp([(1 << 64) - 1, "x"])):
            reply = r.request(body)
            assert reply[2] == EVERSION and reply[3], reply
        # The connection is still good for real work.
        assert r.request(call("ping"))[2] == 0
    finally:
        r.close()
    h.check("malformed msgpack")


def test_wrong_argument_types_are_refused(h):
    r = Req(h.port)
    try:
        run_id = json.loads(h.c.weft("runs", "--json", check=0).stdout)[0]["run_id"]
        # Ignored arguments of the wrong type: any well-formed reply.
        for args in ({"limit": "x"}, {"state": 7}, {"dag": ["x"]},
                     {"limit": -(1 << 63)}, {"limit": (1 << 64) - 1}):
            reply = r.request(call("runs", args))
            assert isinstance(reply[3], str), (args, reply)
        # Refused.
        cases = {
            "unknown call": call("frobnicate"),
            "a 31-byte call": call("x" * 31),
            "runs with an unknown state": call("runs", {"state": "x" * 20}),
            "trigger without a dag": call("trigger", {}),
            "trigger with dag 5": call("trigger", {"dag": 5}),
            "trigger of a 10 KiB name": call("trigger", {"dag": "d" * 10240}),
            "submit without files": call("submit", None),
            "submit with files as a map": call("submit", {"files": {"a": 1}}),
            "submit with a file of nils": call("submit", {"files": [None]}),
            "submit of YAML junk": call("submit", {"files": [
                {"name": "x.yaml", "source": b"\x00\xff: [: {"}]}),
            "show with run as a list": call("show", {"run": []}),
            "show of a missing run": call("show", {"run": "nope.99"}),
            "logs of a missing task": call("logs", {"run": run_id, "task": "zz"}),
            "logs with attempt 2^62": call("logs", {"run": run_id, "task": "a",
                                                    "attempt": 1 << 62}),
            "cancel with run 7": call("cancel", {"run": 7}),
            "retry with tasks as ints": call("retry", {"run": "nope.1", "tasks": [1]}),
        }
        for name, body in cases.items():
            reply = r.request(body)
            assert reply[2] != 0, (name, reply)
            assert isinstance(reply[3], str) and reply[3], (name, reply)
        # A negative offset reads nothing; a huge one reads nothing.
        for offset in (-1, (1 << 63) - 1):
            reply = r.request(call("logs", {"run": run_id, "task": "a",
                                            "offset": offset}))
            assert reply[2] == 0 and reply[4]["data"] == b"", (offset, reply)
    finally:
        r.close()
    h.check("wrong argument types")


def test_logs_without_a_task_names_no_garbage(h):
    # The error for a missing task must not quote whatever was on the
    # scheduler's stack (it once did: an uninitialised buffer).
    r = Req(h.port)
    try:
        run_id = json.loads(h.c.weft("runs", "--json", check=0).stdout)[0]["run_id"]
        for args in ({"run": run_id}, {"run": run_id, "task": 5}):
            reply = r.request(call("logs", args))
            message = reply[3]
            assert reply[2] != 0, reply
            assert "task" in message, reply
            assert message.isascii() and message.isprintable(), reply
    finally:
        r.close()


def test_truncated_and_random_bodies(h):
    rnd = random.Random(44)
    good = [
        call("runs", {"limit": 3, "dag": "hostile"}),
        mp([1, 3, 7, 9, 1000, 2, [[1, 2, 3]], [[[1, 0, 1], 1, 0, 0, 1, 2,
            {"k": "v"}, ""]], [[[1, 0, 1], 0, b"log", True]], False]),
        # A queue no task uses: a flipped HELLO that still decodes
        # registers a worker that must never be given the test's tasks.
        mp([1, 1, "evil", 4, ["zzz"], [1000, 1 << 30, 0], [], 1, "h"]),
    ]
    bodies = []
    for g in good:
        bodies += [g[:k] for k in range(len(g))]   # every truncation
        for _ in range(60):                        # bit flips
            b = bytearray(g)
            for _ in range(rnd.randint(1, 4)):
                b[rnd.randrange(len(b))] ^= 1 << rnd.randrange(8)
            bodies.append(bytes(b))
    for _ in range(300):                           # plain random bytes
        bodies.append(bytes(rnd.getrandbits(8)
                            for _ in range(rnd.choice((1, 5, 40, 700)))))
    r = Req(h.port)
    try:
        statuses = {}
        for body in bodies:
            # A flipped HELLO may still be a valid HELLO: any reply will
            # do (a WELCOME, or a REPLY), as long as it comes.
            hdr = r.send_raw(body)
            data = r.recv_frame()
            assert data[:4] == hdr
            msg, _ = unmp(data, 4)
            assert msg[0] == 1 and msg[1] in (2, 4, 6), msg
            if msg[1] == 6:
                statuses[msg[2]] = statuses.get(msg[2], 0) + 1
        assert statuses.get(EPROTO, 0) > len(bodies) // 2, statuses
    finally:
        r.close()
    h.check("truncated and random bodies")


def test_bad_request_headers(h):
    # A frame too short to hold a request id makes NNG drop the peer.
    s = sp_connect(h.port)
    s.sendall(frame(b"\x80\x00"))
    assert closed_by_peer(s, 5), "a 2-byte request was not refused"
    s.close()
    # A request whose id never sets the high bit (a backtrace longer than
    # NNG's TTL) is dropped; the connection keeps working.
    r = Req(h.port)
    try:
        r.s.sendall(frame(b"\x00\x00\x00\x01" * 20 + call("ping")))
        # Two hops (as through a device): the reply echoes both.
        hdr = b"\x00\x00\x00\x07\x80\x00\x00\x09"
        reply = r.request(call("ping"), header=hdr)
        assert reply[2] == 0, reply
        reply = r.request(call("ping"))
        assert reply[2] == 0, reply
    finally:
        r.close()
    h.check("bad request headers", full=False)


def open_many(port, n, handshake, partial=False):
    """N connections held open: bare TCP, or after the SP handshake (and
    with PARTIAL, half a frame)."""
    socks = []
    try:
        for k in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            socks.append(s)
            if handshake:
                s.sendall(HANDSHAKE_REQ)
                if partial:
                    s.sendall(struct.pack(">Q", 1000 + k) + b"\x80\x00\x00\x01"
                              + b"\x90" * (k % 100))
        if handshake:
            for s in socks:
                assert recv_exact(s, 8) == HANDSHAKE_REP
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


def test_flood_of_half_open_connections(h):
    # Connections that never say a word (NNG drops them after 10 s)...
    socks = open_many(h.port, h.flood, handshake=False)
    try:
        h.check(f"{h.flood} silent connections")
    finally:
        for s in socks:
            s.close()
    # ...and connections that complete the handshake and then hang, some
    # in the middle of a frame: NNG keeps these forever, so only enough
    # file descriptors keep the scheduler reachable.
    assert nofile_limit(h.pid) >= h.flood + 64, "the scheduler's fd limit"
    socks = open_many(h.port, h.flood // 2, handshake=True)
    socks += open_many(h.port, h.flood - h.flood // 2, handshake=True,
                       partial=True)
    try:
        assert h.fds() >= h.base_fds + h.flood, "the flood is not held"
        h.check(f"{h.flood} handshaken idle connections")
    finally:
        for s in socks:
            s.close()
    # Every descriptor is given back.
    wait_for(lambda: h.fds() <= h.base_fds + 16, timeout=20,
             what="the scheduler to close the flood's connections")
    h.check("after the half-open floods", full=False)


def test_flood_of_reset_connections(h):
    # A thread opens and resets connections at various stages, as fast as
    # it can, while real clients use the scheduler.
    stop = threading.Event()
    done = {"n": 0, "errors": 0}

    def flood():
        deadline = time.monotonic() + 40
        k = 0
        while done["n"] < h.flood and time.monotonic() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", h.port), timeout=5)
                stage = k % 5
                if stage >= 1:
                    s.sendall(HANDSHAKE_REQ)
                if stage >= 2:
                    recv_exact(s, 8)
                if stage == 3:
                    s.sendall(struct.pack(">Q", 1 << 20) + b"\x80\x00\x00\x01")
                if stage == 4:
                    s.sendall(frame(b"\x80\x00\x00\x01" + call("runs")))
                reset(s)
                done["n"] += 1
            except OSError:
                done["errors"] += 1
            k += 1
        stop.set()

    t = threading.Thread(target=flood, daemon=True)
    t.start()
    checks = 0
    try:
        while not stop.is_set() or checks == 0:
            h.check(f"during the reset flood ({done['n']} so far)")
            checks += 1
    finally:
        stop.wait(60)
        t.join(5)
    assert done["n"] >= h.flood, done
    assert done["errors"] < h.flood // 100, done
    wait_for(lambda: h.fds() <= h.base_fds + 16, timeout=20,
             what="the scheduler to close the reset connections")
    h.check("after the reset flood")


LOUD = """\
name: loud
tasks:
  shout:
    run: head -c 300000 /dev/zero | tr '\\\\0' x
"""


def pipeline(port, body, n):
    """Sends N copies of BODY as requests on one connection as fast as
    possible and never reads a reply; returns the socket."""
    s = sp_connect(port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    batch = b"".join(frame(struct.pack(">I", 0x80000000 | k) + body)
                     for k in range(500))
    s.settimeout(30)
    try:
        for _ in range(n // 500):
            s.sendall(batch)
    except OSError:
        pass  # cut off already
    return s


def test_peers_that_never_read_their_replies(h, tmp_path):
    # Each request gets a context until its reply is sent; a reply waits
    # behind the one before it on the same connection. A peer that sends
    # thousands of requests and reads nothing must not take every context
    # (locking everyone out) nor keep every reply in memory.
    s = pipeline(h.port, call("runs", {"limit": 1000}), 20000)
    try:
        h.check("a peer sending 20000 requests, reading none")
        assert closed_by_peer(s, 30), "the peer that reads nothing was kept"
    finally:
        reset(s)
    # The same with replies of 256 KiB each (a log), which would add up to
    # gigabytes.
    dag = tmp_path / "loud.yaml"
    dag.write_text(LOUD)
    h.c.weft("submit", dag, check=0)
    run_id = h.c.weft("trigger", "loud", check=0).stdout.strip()
    assert h.c.wait_run(run_id)["state"] == "success"
    body = call("logs", {"run": run_id, "task": "shout"})
    r = Req(h.port)
    try:
        reply = r.request(body)
        assert reply[2] == 0 and len(reply[4]["data"]) == 256 << 10, reply[:4]
    finally:
        r.close()
    socks = [pipeline(h.port, body, 1000) for _ in range(3)]
    try:
        h.check("3 peers asking for 1000 logs of 256 KiB, reading none")
        for s in socks:
            assert closed_by_peer(s, 30), "a peer that reads nothing was kept"
    finally:
        for s in socks:
            reset(s)
    h.check("after the peers that read nothing")


def summaries(text, what):
    """The counts of the ratelog summaries for WHAT in TEXT."""
    pat = re.compile(r"\.\.\. and ([\d,]+) more " + re.escape(what) + r" in the last \d+ s")
    return [int(m.group(1).replace(",", "")) for m in pat.finditer(text)]


def test_a_flood_of_bad_messages_keeps_the_log_small(h):
    # Every malformed request is refused and answered, but a peer that
    # sends thousands must not write thousands of log lines: a few a
    # second, then one line with the count (common/ratelog.h).
    # Small batches: a peer that leaves hundreds of replies unread is
    # shed (test_peers_that_never_read_their_replies), not this one.
    n, batch = 6000, 20
    log = h.c.sched.log_path
    start = log.stat().st_size
    bad = mp([1, 5, "ping"])  # a CALL missing its fields
    r = Req(h.port)
    t0 = time.monotonic()
    try:
        for _ in range(n // batch):
            hdrs = {r.send_raw(bad) for _ in range(batch)}
            # Replies to pipelined requests may come in any order.
            for _ in range(batch):
                data = r.recv_frame()
                hdrs.remove(data[:4])
                reply, _ = unmp(data, 4)
                assert reply[2] == EPROTO, reply
            assert not hdrs
    finally:
        r.close()
    secs = time.monotonic() - t0
    h.check("a flood of malformed requests", full=False)
    grown = log.read_bytes()[start:].decode(errors="replace")
    lines = [l for l in grown.splitlines() if "malformed request dropped" in l]
    # 5 a second per kind at most (and one window started before t0).
    assert 5 <= len(lines) <= 5 * (int(secs) + 2), (len(lines), secs)
    assert len(grown) < 64 << 10, f"the log grew by {len(grown)} bytes"
    # The rest is summed up within the summary interval (10 s) and a tick
    # of the scheduler; earlier tests' leftovers may be in the count too.
    def summed():
        text = log.read_bytes()[start:].decode(errors="replace")
        got = sum(summaries(text, "malformed requests dropped"))
        return got if got >= n - len(lines) else None
    total = wait_for(summed, timeout=30, interval=0.5,
                     what="the summary of the malformed requests")
    print(f"\n{n} malformed requests in {secs:.1f} s: {len(lines)} lines, "
          f"then {total} summed up; the log grew {len(grown)} bytes")
    h.check("after the flood of malformed requests")

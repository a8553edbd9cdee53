"""`status` with wait_ms (docs/protocol.md): held until the run ends, or
answered with the counts so far when the wait is over; `weft run` uses it.
Spoken on the wire with test_hostile's minimal REQ peer."""
import time

from test_hostile import Req, call
from weftproc import Cluster

DAG = """
name: waiter
tasks:
  slow:
    run: sleep 1.5
"""


def status(req, run_id, wait_ms):
    reply = req.request(call("status", {"run": run_id, "wait_ms": wait_ms}))
    assert reply[2] == 0, reply
    return reply[4]


def test_status_wait(tmp_path):
    c = Cluster(tmp_path)
    try:
        c.start_scheduler()
        c.start_worker("w1", slots=1)
        dag = tmp_path / "waiter.yaml"
        dag.write_text(DAG)
        c.weft("submit", dag, check=0)
        run_id = c.weft("trigger", "waiter", check=0).stdout.strip()
        req = Req(int(c.addr.rsplit(":", 1)[1]))
        try:
            # A short wait on a run that goes on: the counts so far.
            body = status(req, run_id, 100)
            assert body["run"]["state"] in ("queued", "running"), body
            # A long wait: answered when the run ends, well before the
            # wait is over (the task sleeps 1.5 s; the wait is 10 s).
            t0 = time.monotonic()
            body = status(req, run_id, 10000)
            took = time.monotonic() - t0
            assert body["run"]["state"] == "success", body
            assert body["counts"]["success"] == 1, body
            assert took < 9, took
            # A finished run is answered at once, whatever the wait.
            body = status(req, run_id, 10000)
            assert body["run"]["state"] == "success", body
            # A wait of a wrong type is refused like any bad argument,
            # or ignored; never held forever.
            reply = req.request(call("status", {"run": run_id,
                                                "wait_ms": "soon"}))
            assert reply[:2] == [1, 6], reply
        finally:
            req.close()
    finally:
        c.stop()

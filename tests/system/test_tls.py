"""TLS with real daemons (docs/operations.md, "TLS"): a scheduler on
tls+tcp:// with a certificate, a token and required client certificates;
a worker and the CLI run a DAG over it. A client that trusts another CA, a
plain tcp:// client and junk handshakes fail without harming the
scheduler; bad certificate files are usage errors with a clear message.

Certificates are made here with /usr/bin/openssl: a CA, a server
certificate for 127.0.0.1 and localhost, client certificates, and a second
CA that signs nothing the scheduler trusts.
"""
import base64
import os
import random
import socket
import subprocess
import time
from pathlib import Path

import pytest

from weftproc import Cluster, wait_for

OPENSSL = "/usr/bin/openssl"

DAG = """\
name: tlsdag
tasks:
  a:
    run: echo n=7 >> $WEFT_OUTPUT
  b:
    needs: a
    run: echo "got {{ tasks.a.outputs.n }}"
"""


def ossl(*args, cwd):
    r = subprocess.run([OPENSSL, *map(str, args)], cwd=cwd,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(map(str, args))}:\n{r.stderr}"


def make_ca(d, name):
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", f"{name}.key",
         "-out", f"{name}.crt", "-days", "30", "-subj", f"/CN={name}", cwd=d)


def make_cert(d, ca, name, ext):
    """A key and certificate NAME signed by CA, with extensions EXT."""
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
         "-subj", f"/CN={name}", cwd=d)
    (d / f"{name}.ext").write_text(ext + "\n")
    ossl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey",
         f"{ca}.key", "-CAcreateserial", "-out", f"{name}.crt", "-days", "30",
         "-extfile", f"{name}.ext", cwd=d)
    (d / f"{name}.key").chmod(0o600)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    if not os.access(OPENSSL, os.X_OK):
        pytest.skip(f"{OPENSSL} is needed to make test certificates")
    d = tmp_path_factory.mktemp("pki")
    make_ca(d, "ca")
    make_ca(d, "other-ca")
    # mbedTLS 2 matches the URL's host against DNS names only: the IP
    # address is listed as both (docs/operations.md says why).
    make_cert(d, "ca", "server",
              "subjectAltName=IP:127.0.0.1,DNS:127.0.0.1,DNS:localhost\n"
              "extendedKeyUsage=serverAuth")
    make_cert(d, "ca", "client", "extendedKeyUsage=clientAuth")
    make_cert(d, "ca", "elsewhere", "subjectAltName=DNS:elsewhere.example\n"
              "extendedKeyUsage=serverAuth")
    make_cert(d, "other-ca", "stranger", "extendedKeyUsage=clientAuth")
    return d


@pytest.fixture
def token(tmp_path):
    p = tmp_path / "token"
    p.write_text(base64.b64encode(os.urandom(32)).decode() + "\n")
    p.chmod(0o600)
    return p


def start_tls(cluster, pki, token, client_certs=True):
    """A scheduler on tls+tcp://127.0.0.1:PORT with PKI's server
    certificate and TOKEN; with CLIENT_CERTS it requires client
    certificates signed by PKI's CA. The CLI is given the CA, the client
    certificate and the token through the environment."""
    extra = ["--tls-cert", pki / "server.crt", "--tls-key", pki / "server.key",
             "--token-file", token]
    if client_certs:
        extra += ["--tls-ca", pki / "ca.crt"]
    cluster.start_scheduler(listen="tls+tcp://127.0.0.1:0", extra=extra)
    assert cluster.addr.startswith("tls+tcp://127.0.0.1:")
    cluster.client_env = {
        "WEFT_TOKEN": token.read_text().strip(),
        "WEFT_TLS_CA": str(pki / "ca.crt"),
        "WEFT_TLS_CERT": str(pki / "client.crt"),
        "WEFT_TLS_KEY": str(pki / "client.key"),
    }


def client_with(cluster, env, *args):
    """The CLI with CLUSTER's environment changed by ENV (None: unset)."""
    saved = cluster.client_env
    full = dict(saved)
    for k, v in env.items():
        if v is None:
            full.pop(k, None)
        else:
            full[k] = v
    cluster.client_env = full
    try:
        return cluster.weft(*args)
    finally:
        cluster.client_env = saved


def port_of(addr):
    return int(addr.rsplit(":", 1)[1])


def test_a_dag_runs_over_tls(cluster, pki, token, tmp_path):
    start_tls(cluster, pki, token)
    cluster.start_worker("tw", extra=(
        "--tls-ca", pki / "ca.crt", "--tls-cert", pki / "client.crt",
        "--tls-key", pki / "client.key", "--token-file", token))
    cluster.wait_workers(1)
    dag = tmp_path / "d.yaml"
    dag.write_text(DAG)
    cluster.weft("submit", dag, check=0)
    run_id = cluster.weft("trigger", "tlsdag", check=0).stdout.strip()
    doc = cluster.wait_run(run_id)
    assert doc["state"] == "success", doc
    r = cluster.weft("logs", run_id, "b", check=0)
    assert "got 7" in r.stdout
    # The same through --flags instead of the environment, and by the
    # name localhost, which the certificate also carries.
    localhost = cluster.addr.replace("127.0.0.1", "localhost")
    r = client_with(cluster, {"WEFT_TLS_CA": None, "WEFT_TLS_CERT": None,
                              "WEFT_TLS_KEY": None},
                    "runs", "--scheduler", localhost, "--tls-ca", pki / "ca.crt",
                    "--tls-cert", pki / "client.crt", "--tls-key", pki / "client.key")
    assert r.returncode == 0, r.stderr
    assert run_id in r.stdout


def test_a_client_trusting_another_ca_is_refused(cluster, pki, token):
    start_tls(cluster, pki, token, client_certs=False)
    cluster.weft("runs", check=0)
    r = client_with(cluster, {"WEFT_TLS_CA": str(pki / "other-ca.crt")}, "runs")
    assert r.returncode == 3, r.stderr
    assert r.stderr.startswith(f"weft: error: cannot reach the scheduler at {cluster.addr}: "
                               "the TLS handshake failed: the scheduler's certificate "
                               "is not signed by the CA we trust"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_certificate_for_another_name_is_refused(tmp_path, pki, token):
    # Signed by the right CA, but for another host than the URL's.
    c = Cluster(tmp_path)
    try:
        c.start_scheduler(listen="tls+tcp://127.0.0.1:0", extra=(
            "--tls-cert", pki / "elsewhere.crt", "--tls-key", pki / "elsewhere.key",
            "--token-file", token))
        c.client_env = {"WEFT_TOKEN": token.read_text().strip(),
                        "WEFT_TLS_CA": str(pki / "ca.crt")}
        r = c.weft("runs")
        assert r.returncode == 3
        assert "the TLS handshake failed" in r.stderr
        assert "does not name the host of the URL" in r.stderr
    finally:
        c.stop()


def test_client_certificates_are_required_when_the_scheduler_has_a_ca(cluster, pki, token):
    start_tls(cluster, pki, token)
    r = client_with(cluster, {"WEFT_TLS_CERT": None, "WEFT_TLS_KEY": None}, "runs")
    assert r.returncode == 3
    assert "the TLS handshake failed" in r.stderr
    # A certificate from another CA is no better.
    r = client_with(cluster, {"WEFT_TLS_CERT": str(pki / "stranger.crt"),
                              "WEFT_TLS_KEY": str(pki / "stranger.key")}, "runs")
    assert r.returncode == 3
    assert "the TLS handshake failed" in r.stderr
    # A worker without a client certificate never gets in, and says why
    # (once), rather than only that it waits.
    w = cluster.start_worker("nocert", extra=(
        "--tls-ca", pki / "ca.crt", "--token-file", token))
    wait_for(lambda: "the TLS handshake failed" in w.output(), timeout=20,
             what="the worker to say why it cannot connect")
    time.sleep(1.5)
    assert w.alive()
    assert w.output().count("cannot connect to the scheduler at") == 1, w.output()
    assert cluster.weft("workers", "--json", check=0).stdout.strip() == "[]"
    # The token is still checked behind TLS.
    r = client_with(cluster, {"WEFT_TOKEN": ""}, "runs")
    assert r.returncode == 3
    assert "authentication failed: this scheduler needs a token" in r.stderr


def test_a_plain_tcp_client_fails_cleanly(cluster, pki, token):
    start_tls(cluster, pki, token)
    plain = cluster.addr.replace("tls+tcp://", "tcp://")
    r = client_with(cluster, {"WEFT_TLS_CA": None, "WEFT_TLS_CERT": None,
                              "WEFT_TLS_KEY": None}, "runs", "--scheduler", plain)
    assert r.returncode == 3
    assert r.stderr.startswith(f"weft: error: cannot reach the scheduler at {plain}")
    assert "tls+tcp://" in r.stderr, r.stderr
    assert cluster.sched.alive()
    cluster.weft("runs", check=0)


def test_junk_handshakes_do_not_harm_the_scheduler(cluster, pki, token):
    start_tls(cluster, pki, token)
    port = port_of(cluster.addr)
    rng = random.Random(4)
    junk = [
        b"\x00SP\x00\x00\x30\x00\x00",                 # SP over plain TCP
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        bytes(rng.randrange(256) for _ in range(4096)),
        # A TLS record header announcing a 16 KiB handshake, then garbage.
        b"\x16\x03\x01\x40\x00" + bytes(rng.randrange(256) for _ in range(300)),
        # A ClientHello header whose inner length lies.
        b"\x16\x03\x01\x00\x30\x01\xff\xff\xff" + b"\x03\x03" + b"\x00" * 40,
        b"",                                            # connect and close
    ]
    socks = []
    for i in range(60):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        payload = junk[i % len(junk)]
        if payload:
            try:
                s.sendall(payload)
            except OSError:
                pass
        socks.append(s)
        if i % 3 == 0:
            s.close()
    # Real clients are served while junk connections are still open.
    for _ in range(3):
        cluster.weft("runs", check=0)
    for s in socks:
        s.close()
    assert cluster.sched.alive()
    cluster.weft("workers", check=0)


def test_bad_tls_setups_are_usage_errors(tmp_path, weft, pki, token):
    d = tmp_path / "data"
    common = ["scheduler", "--data", d, "--listen", "tls+tcp://127.0.0.1:0"]

    r = weft(*common, timeout=20)
    assert r.returncode == 2
    assert "--listen tls+tcp://127.0.0.1:0 needs --tls-cert FILE and --tls-key FILE" in r.stderr

    r = weft(*common, "--tls-cert", tmp_path / "missing.crt", "--tls-key",
             pki / "server.key", timeout=20)
    assert r.returncode == 2
    assert f"TLS certificate {tmp_path / 'missing.crt'}: cannot read it: No such file" in r.stderr

    r = weft(*common, "--tls-cert", pki / "server.crt", "--tls-key",
             pki / "client.key", timeout=20)
    assert r.returncode == 2
    assert (f"TLS key {pki / 'client.key'} does not belong to the certificate "
            f"{pki / 'server.crt'}") in r.stderr

    notpem = tmp_path / "notpem.crt"
    notpem.write_bytes(os.urandom(100))
    r = weft(*common, "--tls-cert", notpem, "--tls-key", pki / "server.key", timeout=20)
    assert r.returncode == 2
    assert "not a PEM file" in r.stderr

    ossl("pkey", "-in", pki / "server.key", "-aes256", "-passout", "pass:secret",
         "-out", tmp_path / "enc.key", cwd=tmp_path)
    r = weft(*common, "--tls-cert", pki / "server.crt", "--tls-key",
             tmp_path / "enc.key", timeout=20)
    assert r.returncode == 2
    assert "it is encrypted with a passphrase" in r.stderr

    r = weft("scheduler", "--data", d, "--listen", "tcp://127.0.0.1:0",
             "--tls-cert", pki / "server.crt", "--tls-key", pki / "server.key", timeout=20)
    assert r.returncode == 2
    assert "are for a tls+tcp:// --listen address" in r.stderr
    # None of them started anything.
    assert not (d / "scheduler.addr").exists()

    # Clients and workers: a tls+tcp:// URL needs the CA.
    env = {"WEFT_TLS_CA": "", "WEFT_TLS_CERT": "", "WEFT_TLS_KEY": ""}
    r = weft("runs", "--scheduler", "tls+tcp://127.0.0.1:1", env=env)
    assert r.returncode == 2
    assert "TLS needs the CA that signed the scheduler's certificate" in r.stderr
    r = weft("worker", "--connect", "tls+tcp://127.0.0.1:1", "--work-dir", tmp_path,
             env=env, timeout=20)
    assert r.returncode == 2
    assert "TLS needs the CA" in r.stderr
    r = weft("runs", "--scheduler", "tls+tcp://127.0.0.1:1", "--tls-ca", pki / "ca.crt",
             "--tls-cert", pki / "client.crt", env=env)
    assert r.returncode == 2
    assert "needs its key" in r.stderr
    r = weft("runs", "--scheduler", "tcp://127.0.0.1:1", "--tls-ca", pki / "ca.crt", env=env)
    assert r.returncode == 2
    assert "are for tls+tcp:// addresses" in r.stderr
    r = weft("runs", "--scheduler", "tls+tcp://127.0.0.1:1", "--tls-ca",
             pki / "server.key", env=env)
    assert r.returncode == 2
    assert "TLS CA file" in r.stderr and "no certificate could be read" in r.stderr

"""Hardening: TLS and mutual TLS, Prometheus metrics, JSON logs with job ids, SIGTERM drain."""

from __future__ import annotations

import json
import signal
import urllib.request
from pathlib import Path

import pytest

from genfx.client import Client, GenFXError
from genfx.local_server import LocalServer
from genfx.proto import genfx_pb2 as pb
from genfx.shot import Shot

from .conftest import small_request
from .tls_certs import Pem, make_ca, make_leaf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Pem]:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = make_ca(folder)
    other_ca, other_cert, other_key = make_ca(folder, "Stranger CA")
    return {
        "ca": ca,
        "server": make_leaf(folder, "server", ca_cert, ca_key, server=True),
        "client": make_leaf(folder, "client", ca_cert, ca_key, server=False),
        "stranger": make_leaf(folder, "stranger", other_cert, other_key, server=False),
    }


def test_tls_and_mutual_tls(tmp_path: Path, pki: dict[str, Pem], shot: Shot) -> None:
    ca, srv, cli, stranger = (pki[k] for k in ("ca", "server", "client", "stranger"))
    args = ("--tls-cert", str(srv.cert), "--tls-key", str(srv.key), "--tls-client-ca", str(ca.cert))
    with LocalServer(tmp_path / "data", extra_args=args) as server:
        ca_pem = ca.cert.read_bytes()
        # A client with a certificate from our CA gets in and can run a job over TLS.
        with Client(
            server.address,
            root_certificates=ca_pem,
            private_key=cli.key.read_bytes(),
            certificate_chain=cli.cert.read_bytes(),
            timeout=60,
        ) as c:
            job = c.wait(c.submit(small_request(shot, frames=1)).id)
            assert job.state == pb.JOB_STATE_SUCCEEDED
            assert c.fetch_frame(job.id, job.frames[0], tmp_path / "f.exr").stat().st_size > 0
        # No client certificate, or one from another CA: the handshake fails.
        for key, chain in ((None, None), (stranger.key.read_bytes(), stranger.cert.read_bytes())):
            with (
                Client(
                    server.address,
                    root_certificates=ca_pem,
                    private_key=key,
                    certificate_chain=chain,
                    timeout=10,
                ) as c,
                pytest.raises(GenFXError) as info,
            ):
                c.info()
            assert info.value.code == "UNAVAILABLE"
        # Plaintext to a TLS port fails too.
        with Client(server.address, timeout=10) as c, pytest.raises(GenFXError):
            c.info()


def test_metrics_and_json_logs(tmp_path: Path, shot: Shot) -> None:
    data = tmp_path / "data"
    with LocalServer(data, extra_args=("--metrics-port", "0", "--log-format", "json")) as server:
        with Client(server.address, timeout=60) as c:
            job = c.wait(c.submit(small_request(shot, frames=2, steps=3)).id)
            assert job.state == pb.JOB_STATE_SUCCEEDED
        assert server.metrics_port
        body = (
            urllib.request.urlopen(f"http://127.0.0.1:{server.metrics_port}/metrics", timeout=10)
            .read()
            .decode()
        )
    samples = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in body.splitlines()
        if line and not line.startswith("#")
    }
    assert samples["genfx_frames_total"] == 2
    assert samples['genfx_jobs{state="succeeded"}'] == 1
    assert samples["genfx_queue_depth"] == 0
    assert samples["genfx_step_seconds_count"] == 4  # 2 frames x (3 steps - the first, which includes set-up)
    assert samples["genfx_frames_per_second"] > 0
    lines = [json.loads(line) for line in server.log_path.read_text().splitlines() if line.startswith("{")]
    assert lines, "the server wrote no JSON log lines"
    about_job = [entry for entry in lines if entry.get("job_id") == job.id]
    assert any("queued" in entry["message"] for entry in about_job)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in lines)


def test_sigterm_drains_and_the_job_resumes_after_restart(tmp_path: Path, shot: Shot) -> None:
    data = tmp_path / "data"
    req = small_request(shot, frames=4, steps=8)
    server = LocalServer(data).start()
    try:
        with Client(server.address, timeout=60) as c:
            job = c.submit(req)
            for event in c.watch(job.id):
                if event.WhichOneof("kind") == "frame_done":
                    break
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(60) == 0  # clean exit
    finally:
        server.kill()
    assert "shutting down" in server.log_path.read_text()
    with LocalServer(data) as again, Client(again.address, timeout=60) as c:
        events = list(c.watch(job.id))
        requeue = next(
            i
            for i, e in enumerate(events)
            if e.WhichOneof("kind") == "state"
            and e.state.state == pb.JOB_STATE_QUEUED
            and "shutting down" in e.state.message
        )
        # The frame under way when SIGTERM came was finished before the job went back to the queue.
        assert events[requeue - 1].WhichOneof("kind") == "frame_done", events[requeue - 1]
        final = c.get_job(job.id)
        assert final.state == pb.JOB_STATE_SUCCEEDED
        assert list(final.frames) == list(range(1001, 1005))

"""The agent API under a real gunicorn process (agent.server.serve) over real HTTP on loopback.

Pins: the post_worker_init callback ran in the worker that serves (health is ok only there), /health and
/metrics answer over the wire, errors are JSON, gunicorn's own log lines arrive through the standard
logging tree, and SIGTERM stops it gracefully with the worker-exit callback run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from sim.proc import free_port, kill_group, start_group, stop_group, wait_for_port
from tests.support.wait import wait_until

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "tests" / "integration" / "gunicorn_test_app.py"
HOST = "127.0.0.1"


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    base: str
    marker: Path
    log: Path


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port(HOST)
    marker, log = tmp_path / "marker.txt", tmp_path / "server.log"
    proc = start_group([sys.executable, str(APP), HOST, str(port), str(marker)], log_path=log, cwd=ROOT)
    try:
        wait_for_port(HOST, port, timeout_s=20, proc=proc)
        yield Served(proc, f"http://{HOST}:{port}", marker, log)
    finally:
        kill_group(proc)


def test_health_is_ok_because_the_worker_callback_ran_in_the_serving_worker(served):
    started = lambda: served.marker.exists() and "started" in served.marker.read_text()  # noqa: E731
    wait_until(started, 10.0, "worker start", interval_s=0.05)
    started_pid = int(served.marker.read_text().split()[1])
    resp = requests.get(f"{served.base}/health", timeout=5)
    assert resp.status_code == 200, resp.text
    assert resp.json()["detail"] == f"loops started in pid {started_pid}, serving from pid {started_pid}"
    assert started_pid != served.proc.pid  # the worker is a child of the arbiter
    local = requests.get(f"{served.base}/api/v1/local", timeout=5).json()
    assert local["worker_pid"] == started_pid


def test_metrics_and_json_errors_over_real_http(served):
    resp = requests.get(f"{served.base}/metrics", timeout=5)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    assert "memgraph_ha_leader 1.0" in resp.text  # set by the worker callback
    assert "# TYPE memgraph_ha_prestop_requests_total counter" in resp.text
    missing = requests.get(f"{served.base}/nope", timeout=5)
    assert missing.status_code == 404 and missing.json()["error"] == "not-found"
    wrong = requests.put(f"{served.base}/health", timeout=5)
    assert wrong.status_code == 405 and wrong.json()["error"] == "method-not-allowed"


def test_prestop_over_loopback_reaches_the_services(served):
    resp = requests.post(f"{served.base}/api/v1/prestop", json={"pod": "memgraph-0", "uid": "u"}, timeout=5)
    assert resp.status_code == 200
    assert resp.json()["safe_to_stop"] is True


def test_gunicorn_logs_go_through_standard_logging_and_sigterm_is_graceful(served):
    requests.get(f"{served.base}/health", timeout=5)
    code = stop_group(served.proc, term_timeout_s=10)
    assert code == 0
    text = served.log.read_text()
    assert "testfmt logger=gunicorn.error level=INFO msg=Booting worker with pid" in text
    assert 'testfmt logger=gunicorn.access level=INFO msg=method=GET path="/health" status=200' in text
    assert "testfmt logger=agent.server level=INFO msg=agent worker started" in text
    assert "testfmt logger=gunicorn.error level=INFO msg=Shutting down: Master" in text
    lines = served.marker.read_text().split("\n")
    pid = lines[0].split()[1]
    assert lines[:2] == [f"started {pid}", f"exited {pid}"]
    assert not [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("testfmt ")], \
        "gunicorn wrote lines outside the standard logging format"

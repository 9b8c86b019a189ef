"""`helm test`: the test pod asks the agent Service for the status; its script fails unless healthy.

The script (charts/memgraph/files/helm_test_status.py, standard library only) is run here against a local
HTTP server on 127.0.0.1 (port 0) that plays the agent, with a fake clock for its retry deadline.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.chart import render as r

SCRIPT = r.CHART_DIR / "files" / "helm_test_status.py"


def _script() -> Any:
    return r.load_chart_script("helm_test_status")


class _Agent(http.server.BaseHTTPRequestHandler):
    answers: list[tuple[int, dict[str, Any]]] = []
    seen_auth: list[str | None] = []

    def do_GET(self) -> None:
        type(self).seen_auth.append(self.headers.get("Authorization"))
        code, doc = type(self).answers.pop(0) if len(type(self).answers) > 1 else type(self).answers[0]
        body = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return


@pytest.fixture
def agent() -> Iterator[type[_Agent]]:
    handler = type("Agent", (_Agent,), {"answers": [], "seen_auth": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    handler.url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/status"  # type: ignore[attr-defined]
    try:
        yield handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


FakeClock = r.FakeClock


HEALTHY = {
    "cluster": {
        "healthy": True,
        "main": "memgraph-0",
        "sync_replica": "memgraph-1",
        "leader": "memgraph-0",
        "ready_replicas": ["memgraph-1", "memgraph-2"],
        "expected_replicas": 2,
    }
}
UNHEALTHY = {
    "cluster": {"healthy": False, "main": "memgraph-0", "problems": ["memgraph-2 replica status recovery"]}
}


def test_script_passes_once_the_cluster_is_healthy(agent, capsys) -> None:
    agent.answers = [(503, {"error": "no-leader"}), (200, UNHEALTHY), (200, HEALTHY)]
    clock = FakeClock()
    code = _script().main({"STATUS_URL": agent.url, "TIMEOUT_SECONDS": "60"}, clock, clock.sleep)
    assert code == 0
    out = capsys.readouterr().out
    assert "attempt 1: HTTP 503" in out and "NOT healthy" in out and "attempt 3: healthy" in out


def test_script_fails_when_the_cluster_stays_unhealthy_past_the_timeout(agent, capsys) -> None:
    agent.answers = [(200, UNHEALTHY)]
    clock = FakeClock()
    code = _script().main({"STATUS_URL": agent.url, "TIMEOUT_SECONDS": "10"}, clock, clock.sleep)
    assert code == 1
    assert clock.now <= 10
    assert "memgraph-2 replica status recovery" in capsys.readouterr().err


def test_script_fails_when_the_agent_is_unreachable(capsys) -> None:
    clock = FakeClock()
    code = _script().main(
        {"STATUS_URL": "http://127.0.0.1:9/api/v1/status", "TIMEOUT_SECONDS": "3"}, clock, clock.sleep
    )
    assert code == 1


def test_script_sends_the_token_as_a_bearer_header(agent) -> None:
    agent.answers = [(200, HEALTHY)]
    clock = FakeClock()
    assert _script().main({"STATUS_URL": agent.url, "HA_API_TOKEN": "t0ken"}, clock, clock.sleep) == 0
    assert agent.seen_auth == ["Bearer t0ken"]


def test_test_pod_asks_the_agent_service_and_runs_the_shipped_script() -> None:
    values = r.VALUE_SETS["everything-on"]
    pod = r.find(r.hooks(values), "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    ctr = pod["spec"]["containers"][0]
    env = r.env_entries(ctr)
    agent_svc = r.find(r.render(values), "Service", "memgraph-agent")
    assert env["STATUS_URL"]["value"] == "http://memgraph-agent.db.svc:8080/api/v1/status"
    assert agent_svc["spec"]["ports"][0]["port"] == 8080
    assert env["HA_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {"name": "mg-ha-token", "key": "token"}
    script = r.find(r.hooks(values), "ConfigMap")["data"]["helm_test_status.py"]
    assert script.strip() == SCRIPT.read_text().strip()
    assert ctr["command"] == ["python3", "/etc/memgraph-ha/test/helm_test_status.py"]


def test_without_ha_the_test_pod_runs_a_bolt_query_through_the_client_service(default_docs) -> None:
    pod = r.find(r.hooks({}), "Pod")
    assert "mgconsole" in pod["spec"]["containers"][0]["args"][0]
    assert "--host memgraph.db.svc --port 7687" in pod["spec"]["containers"][0]["args"][0]


def test_chart_yaml_has_kube_version_and_icon() -> None:
    import yaml

    chart = yaml.safe_load((r.CHART_DIR / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == ">=1.28.0-0"
    assert chart["icon"].startswith("https://")

"""Bearer token auth and the fault controls: outages, latency, injected errors, request counters."""

from __future__ import annotations

import json
import socket
import time
import urllib.request

import pytest
import urllib3
from kubernetes import client

from sim.kube.server import KubeEmulator

from .conftest import NS, Collector, FakeClock, pod_body, status_of, wait_until

TRANSPORT_ERRORS = (urllib3.exceptions.MaxRetryError, urllib3.exceptions.HTTPError)


def admin(emu: KubeEmulator, method: str, path: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        f"{emu.admin_url}{path}", data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        return json.loads(resp.read())


def test_token_required_401_status_without_it_and_ok_with_it():
    emu = KubeEmulator(token="s3cret").start()
    try:
        no_token = client.Configuration(host=emu.url)
        no_token.ssl_ca_cert = str(emu.tls.ca_file)
        with pytest.raises(client.ApiException) as exc:
            client.CoreV1Api(client.ApiClient(no_token)).list_namespaced_pod(NS)
        body = status_of(exc)
        assert exc.value.status == 401 and body["reason"] == "Unauthorized" and body["kind"] == "Status"
        wrong = client.Configuration(host=emu.url)
        wrong.ssl_ca_cert = str(emu.tls.ca_file)
        wrong.api_key = {"BearerToken": "Bearer nope"}
        with pytest.raises(client.ApiException) as exc:
            client.CoreV1Api(client.ApiClient(wrong)).list_namespaced_pod(NS)
        assert exc.value.status == 401
        assert client.CoreV1Api(emu.api_client()).list_namespaced_pod(NS).items == []
    finally:
        emu.stop()


def test_refuse_outage_refuses_connections_and_admin_still_answers(core, emu):
    core.list_namespaced_pod(NS)  # leaves a keep-alive connection in the pool
    emu.outage("refuse")
    with pytest.raises(TRANSPORT_ERRORS):
        core.list_namespaced_pod(NS)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", emu.port), timeout=1).close()
    assert admin(emu, "GET", "/state")["outage"]["mode"] == "refuse"
    emu.clear_outage()
    assert core.list_namespaced_pod(NS).items == []


def test_outage_window_ends_on_the_injected_clock(core, emu, clock: FakeClock):
    admin(emu, "POST", "/outage", {"mode": "refuse", "seconds": 10})
    with pytest.raises(TRANSPORT_ERRORS):
        core.list_namespaced_pod(NS)
    clock.advance(9)
    time.sleep(0.1)
    assert admin(emu, "GET", "/state")["outage"]["mode"] == "refuse"
    clock.advance(1)
    wait_until(lambda: admin(emu, "GET", "/state")["outage"] is None, what="outage window over")
    assert core.list_namespaced_pod(NS).items == []


def test_503_outage_answers_service_unavailable_status(core, emu):
    admin(emu, "POST", "/outage", {"mode": "503"})
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_pod("x", NS)
    assert exc.value.status == 503 and status_of(exc)["reason"] == "ServiceUnavailable"
    admin(emu, "DELETE", "/outage")
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_pod("x", NS)
    assert exc.value.status == 404


def test_hang_outage_times_out_the_client_and_freezes_open_watches(core, emu):
    col = Collector(core.list_namespaced_pod, NS, timeout_seconds=10)
    try:
        time.sleep(0.2)
        emu.outage("hang")
        emu.create(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "during-hang"},
                "spec": {"containers": [{"name": "c", "image": "i:1"}]},
            }
        )
        started = time.monotonic()
        with pytest.raises(TRANSPORT_ERRORS):
            core.list_namespaced_pod(NS, _request_timeout=0.5)
        assert 0.4 < time.monotonic() - started < 2.0
        assert col.types() == []  # the watch saw nothing while the API hung
        emu.clear_outage()
        wait_until(lambda: col.types() == ["ADDED"], what="held event delivered after the hang")
        assert [p.metadata.name for p in core.list_namespaced_pod(NS).items] == ["during-hang"]
    finally:
        emu.clear_outage()
        col.close()


def test_latency_applies_to_the_chosen_path_prefix_only(core, coord, emu):
    core.create_namespaced_pod(NS, pod_body("memgraph-0"))
    emu.set_latency(300, "/apis/coordination.k8s.io")
    started = time.monotonic()
    with pytest.raises(client.ApiException):
        coord.read_namespaced_lease("memgraph-ha", NS)
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    core.read_namespaced_pod("memgraph-0", NS)
    assert time.monotonic() - started < 0.25
    emu.clear_latency()
    started = time.monotonic()
    with pytest.raises(client.ApiException):
        coord.read_namespaced_lease("memgraph-ha", NS)
    assert time.monotonic() - started < 0.25


def test_injected_409_and_403_hit_the_next_matching_requests_only(core, coord, emu):
    lease = coord.create_namespaced_lease(
        NS, client.V1Lease(metadata=client.V1ObjectMeta(name="memgraph-ha"))
    )
    admin(emu, "POST", "/inject", {"code": 409, "verb": "update", "path": "/leases/memgraph-ha$", "count": 1})
    lease.spec = client.V1LeaseSpec(holder_identity="memgraph-0")
    with pytest.raises(client.ApiException) as exc:
        coord.replace_namespaced_lease("memgraph-ha", NS, lease)
    body = status_of(exc)
    assert exc.value.status == 409 and body["reason"] == "Conflict"
    assert "the object has been modified" in body["message"]
    assert coord.replace_namespaced_lease("memgraph-ha", NS, lease).spec.holder_identity == "memgraph-0"
    emu.inject(403, verb="list", path_regex=r"/pods$", count=2)
    for _ in range(2):
        with pytest.raises(client.ApiException) as exc:
            core.list_namespaced_pod(NS)
        forbidden = status_of(exc)
        assert exc.value.status == 403 and forbidden["reason"] == "Forbidden"
        assert (
            'cannot list resource "pods" in API group "" in the namespace "default"' in forbidden["message"]
        )
    coord.read_namespaced_lease("memgraph-ha", NS)  # a get is not a list: not hit
    assert core.list_namespaced_pod(NS).items == []


def test_request_counters_by_user_agent_and_verb_and_reset(emu):
    agent = client.CoreV1Api(emu.api_client(user_agent="memgraph-ha-agent/0.1"))
    ctl = client.CoreV1Api(emu.api_client(user_agent="memgraph-ha-cli/0.1"))
    emu.reset_counters()
    agent.create_namespaced_pod(NS, pod_body("memgraph-0"))
    for _ in range(3):
        agent.read_namespaced_pod("memgraph-0", NS)
    ctl.list_namespaced_pod(NS)
    assert admin(emu, "GET", "/counters") == {
        "memgraph-ha-agent/0.1": {"create": 1, "get": 3},
        "memgraph-ha-cli/0.1": {"list": 1},
    }
    admin(emu, "DELETE", "/counters")
    assert emu.counters() == {}

"""agent/api.py through Flask's test client with a fake AgentServices: every route, auth, loopback,
errors as JSON, forwarding to the leader (with `responses`), preStop idempotency and metrics."""

from __future__ import annotations

import json
import threading

import pytest
import requests
import responses

from agent.api import FORWARD_HEADER
from tests.support.wait import wait_until

AUTH = {"Authorization": "Bearer s3cret-token"}
LEADER = "http://memgraph-0.memgraph-headless:8080"


def error_of(resp) -> tuple[int, str]:
    doc = resp.get_json()
    assert resp.content_type == "application/json"
    assert set(doc) == {"error", "detail"} and doc["detail"], doc
    return resp.status_code, doc["error"]


# ---- probes and local state ------------------------------------------------------------------------


def test_health_reports_ok_and_failing(client, services):
    resp = client.get("/health")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "pod": "memgraph-1", "detail": "loops ran 0.4s ago"}
    services.healthy = (False, "reconcile loop silent for 31s")
    resp = client.get("/health")
    assert resp.status_code == 503
    assert resp.get_json()["detail"] == "reconcile loop silent for 31s"


def test_ready_reports_services_verdict(client, services):
    assert client.get("/ready").status_code == 200
    services.is_ready = (False, "rogue MAIN: record names memgraph-0")
    resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "failing"


def test_ready_check_that_raises_is_not_ready_not_500(client, services, monkeypatch):
    monkeypatch.setattr(services, "ready", lambda: 1 / 0)
    resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.get_json()["detail"] == "ready check raised ZeroDivisionError"


def test_ready_does_not_consult_leader_or_cluster(client, services, monkeypatch):
    def boom():
        raise AssertionError("readiness must not depend on the leader (I7)")

    monkeypatch.setattr(services, "leader_url", boom)
    monkeypatch.setattr(services, "cluster_status", boom)
    assert client.get("/ready").status_code == 200
    assert client.get("/health").status_code == 200


def test_local_state_includes_the_pod(client):
    resp = client.get("/api/v1/local")
    assert resp.status_code == 200
    assert resp.get_json() == {"pod": "memgraph-1", "role": "replica", "replica_status": "ready"}


def test_unexpected_exception_is_500_json_and_logged(client, services, caplog):
    services.local_raises = True
    resp = client.get("/api/v1/local")
    assert error_of(resp) == (500, "internal")
    assert "state not built yet" not in resp.get_data(as_text=True)
    assert any("unexpected error on GET /api/v1/local" in r.getMessage() for r in caplog.records)


# ---- errors ----------------------------------------------------------------------------------------


def test_unknown_route_is_404_json(client):
    assert error_of(client.get("/api/v2/nothing")) == (404, "not-found")


def test_wrong_method_is_405_json_with_allow(client):
    resp = client.delete("/api/v1/status")
    assert error_of(resp) == (405, "method-not-allowed")
    assert "GET" in resp.headers["Allow"]
    assert error_of(client.get("/api/v1/prestop"))[0] == 405


def test_oversized_body_is_413_json(client):
    resp = client.post("/api/v1/prestop", data=b"{" + b" " * 70000 + b"}", content_type="application/json")
    assert error_of(resp) == (413, "request-entity-too-large")


# ---- status and forwarding --------------------------------------------------------------------------


def test_status_on_the_leader_answers_itself(client):
    resp = client.get("/api/v1/status")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["main"] == "memgraph-0" and doc["answered_by"] == "memgraph-1"
    assert "via" not in doc


@responses.activate
def test_status_on_a_non_leader_is_forwarded_with_via(client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", json={"main": "memgraph-0", "answered_by": "memgraph-0"})
    resp = client.get("/api/v1/status")
    assert resp.status_code == 200
    assert resp.get_json() == {"main": "memgraph-0", "answered_by": "memgraph-0", "via": "memgraph-1"}
    call = responses.calls[0].request
    assert call.headers[FORWARD_HEADER] == "memgraph-1"
    assert call.req_kwargs["timeout"] == 2.0  # type: ignore[attr-defined]


@responses.activate
def test_forwarded_answer_without_answered_by_names_the_leader_host(client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", json={"main": "memgraph-0"})
    assert client.get("/api/v1/status").get_json()["answered_by"] == "memgraph-0.memgraph-headless"


@responses.activate
def test_status_when_leader_is_down_is_503_json(client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", body=requests.ConnectionError("refused"))
    assert error_of(client.get("/api/v1/status")) == (503, "leader-unreachable")


@responses.activate
def test_status_when_leader_times_out_is_503_json(client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", body=requests.ReadTimeout("slow"))
    assert error_of(client.get("/api/v1/status")) == (503, "leader-unreachable")


@responses.activate
def test_status_when_leader_answers_garbage_is_502_json(client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", body="<html>proxy error</html>", status=200)
    assert error_of(client.get("/api/v1/status")) == (502, "bad-leader-answer")


def test_status_from_an_agent_that_just_stopped_leading_is_503(client, services, monkeypatch):
    monkeypatch.setattr(services, "cluster_status", lambda: None)
    assert error_of(client.get("/api/v1/status")) == (503, "not-leader")


def test_status_without_a_known_leader_is_503_json(client, services):
    services.leader, services.leader_base = False, None
    assert error_of(client.get("/api/v1/status")) == (503, "no-leader")


def test_forwarded_request_reaching_a_non_leader_is_not_forwarded_again(client, services):
    services.leader = False
    resp = client.get("/api/v1/status", headers={FORWARD_HEADER: "memgraph-2"})
    assert error_of(resp) == (503, "not-leader")


# ---- operator routes: auth, validation, forwarding ----------------------------------------------------


@pytest.mark.parametrize("path", ["/api/v1/switchover", "/api/v1/pause", "/api/v1/resume"])
def test_operator_routes_auth_matrix(client, services, path):
    assert error_of(client.post(path, headers={"Authorization": "Bearer wrong"})) == (401, "unauthorized")
    assert error_of(client.post(path)) == (401, "unauthorized")
    basic = {"Authorization": "Basic s3cret-token"}
    assert error_of(client.post(path, headers=basic)) == (401, "unauthorized")
    resp = client.post(path, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["answered_by"] == "memgraph-1"
    services.token = None
    assert error_of(client.post(path, headers=AUTH)) == (403, "disabled")
    resp = client.post(path)  # no credentials at all: 401 even when disabled (RFC 6750), saying why
    assert error_of(resp) == (401, "unauthorized") and "disabled" in resp.get_json()["detail"]
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_switchover_runs_on_the_leader_with_target(client, services):
    resp = client.post("/api/v1/switchover", json={"to": "memgraph-2"}, headers=AUTH)
    assert resp.status_code == 200
    assert resp.get_json()["new_main"] == "memgraph-2"
    assert client.post("/api/v1/switchover", headers=AUTH).status_code == 200
    assert services.switchover_calls == ["memgraph-2", None]


def test_switchover_to_null_lets_the_coordinator_pick_as_when_absent(client, services):
    assert client.post("/api/v1/switchover", json={"to": None}, headers=AUTH).status_code == 200
    assert client.post("/api/v1/switchover", json={}, headers=AUTH).status_code == 200
    assert services.switchover_calls == [None, None]


def test_switchover_to_unknown_pod_is_404(client, services):
    resp = client.post("/api/v1/switchover", json={"to": "memgraph-9"}, headers=AUTH)
    assert error_of(resp) == (404, "unknown-pod")
    assert services.switchover_calls == []


@pytest.mark.parametrize("data", [b"{not json", b"[1, 2]", b'"memgraph-2"', b'{"to": 3}', b'{"to": ""}',
                                  b'{"to": "a b"}'])
def test_switchover_bad_body_is_400(client, services, data):
    resp = client.post("/api/v1/switchover", data=data, content_type="application/json", headers=AUTH)
    assert error_of(resp)[0] == 400
    assert services.switchover_calls == []


def test_bad_token_is_checked_before_the_body(client):
    resp = client.post("/api/v1/switchover", data=b"{not json", headers={"Authorization": "Bearer x"})
    assert error_of(resp) == (401, "unauthorized")


@responses.activate
def test_switchover_on_a_non_leader_is_forwarded_with_the_token(client, services):
    services.leader = False
    responses.post(f"{LEADER}/api/v1/switchover", status=409,
                   json={"error": "no-safe-target", "detail": "memgraph-2 is 7 behind",
                         "answered_by": "memgraph-0"})
    resp = client.post("/api/v1/switchover", json={"to": "memgraph-2"}, headers=AUTH)
    assert resp.status_code == 409
    assert resp.get_json()["via"] == "memgraph-1"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer s3cret-token"
    assert sent.body == b'{"to": "memgraph-2"}'
    assert services.switchover_calls == []


@responses.activate
def test_pause_on_a_non_leader_is_forwarded_and_leader_down_is_503(client, services):
    services.leader = False
    responses.post(f"{LEADER}/api/v1/pause", json={"paused": True, "answered_by": "memgraph-0"})
    resp = client.post("/api/v1/pause", headers=AUTH)
    assert resp.get_json() == {"paused": True, "answered_by": "memgraph-0", "via": "memgraph-1"}
    responses.post(f"{LEADER}/api/v1/resume", body=requests.ConnectionError("down"))
    assert error_of(client.post("/api/v1/resume", headers=AUTH)) == (503, "leader-unreachable")
    assert services.paused == []


def test_pause_and_resume_on_the_leader_call_the_services(client, services):
    assert client.post("/api/v1/pause", headers=AUTH).get_json()["paused"] is True
    assert client.post("/api/v1/resume", headers=AUTH).get_json()["paused"] is False
    assert services.paused == [True, False]


# ---- prestop ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("addr", ["127.0.0.1", "127.3.2.1", "::1", "::ffff:127.0.0.1"])
def test_prestop_accepted_from_loopback(local_client, addr):
    resp = local_client(addr).post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1", "budget_s": 30})
    assert resp.status_code == 200
    assert resp.get_json()["safe_to_stop"] is True


@pytest.mark.parametrize("addr", ["10.0.0.5", "192.168.1.1", "::ffff:10.0.0.5", "fe80::1", "garbage", ""])
def test_prestop_refused_from_elsewhere(local_client, services, addr):
    resp = local_client(addr).post("/api/v1/prestop", json={"pod": "memgraph-1"})
    assert error_of(resp) == (403, "forbidden")
    assert services.prestop_calls == []


@pytest.mark.parametrize(("data", "error"), [
    (b"{oops", "bad-json"),
    (b"[]", "bad-json"),
    (b'{"pod": "memgraph-1", "budget_s": -1}', "bad-request"),
    (b'{"pod": "memgraph-1", "budget_s": true}', "bad-request"),
    (b'{"pod": 7}', "bad-request"),
    (b'{"pod": ""}', "bad-request"),
    (b'{"pod": "Memgraph_1"}', "bad-request"),
    (b'{"pod": null}', "bad-request"),
    (b'{"uid": null}', "bad-request"),
    (b'{"uid": "' + b"u" * 129 + b'"}', "bad-request"),
    (b'{"budget_s": 86400.5}', "bad-request"),
])
def test_prestop_bad_body_is_400(client, services, data, error):
    resp = client.post("/api/v1/prestop", data=data, content_type="application/json")
    assert error_of(resp) == (400, error)
    assert services.prestop_calls == []


def test_prestop_for_another_well_formed_pod_is_403_which_the_hook_does_not_retry(client, services):
    resp = client.post("/api/v1/prestop", json={"pod": "memgraph-2", "budget_s": 86399})
    assert error_of(resp) == (403, "wrong-pod")
    assert services.prestop_calls == []
    from hooks.prestop import interpret

    assert interpret(1, 403, resp.get_data(), 0.01).final


def test_prestop_accepts_the_longest_uid_and_the_largest_budget(client, services):
    resp = client.post("/api/v1/prestop", json={"uid": "u" * 128, "budget_s": 86400})
    assert resp.status_code == 200
    assert services.prestop_calls[0].budget_s == 86400.0


def test_confirmed_prestop_answers_are_remembered_for_a_bounded_number_of_uids(client, services):
    for i in range(40):
        assert client.post("/api/v1/prestop", json={"uid": f"u{i}"}).status_code == 200
    assert len(services.prestop_calls) == 40
    client.post("/api/v1/prestop", json={"uid": "u39"})  # recent: answered from memory
    client.post("/api/v1/prestop", json={"uid": "u0"})  # forgotten: run again
    assert [r.uid for r in services.prestop_calls[40:]] == ["u0"]


def test_prestop_passes_a_typed_request(client, services):
    client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u-9", "budget_s": 42.5})
    req = services.prestop_calls[0]
    assert (req.pod, req.uid, req.budget_s) == ("memgraph-1", "u-9", 42.5)


def test_concurrent_prestops_join_one_run(app, services):
    services.prestop_gate = threading.Event()
    services.prestop_results = [(503, {"retry_after_s": 2, "detail": "target not caught up"})]
    join = app.extensions["memgraph_ha_prestop_join"]
    answers: list = []

    def call() -> None:
        resp = app.test_client().post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"})
        answers.append((resp.status_code, resp.get_json()))

    threads = [threading.Thread(target=call) for _ in range(2)]
    try:
        threads[0].start()
        assert services.prestop_entered.wait(5)
        threads[1].start()
        wait_until(lambda: join.waiters == 1, 5.0, "the second call to join", interval_s=0.01)
    finally:
        services.prestop_gate.set()
        for t in threads:
            t.join(10)
    assert len(services.prestop_calls) == 1  # the services ran once for both calls
    assert answers == [(503, {"retry_after_s": 2, "detail": "target not caught up"})] * 2
    # a non-final answer is not remembered: the hook's retry runs the services again
    services.prestop_gate = None
    resp = app.test_client().post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"})
    assert resp.status_code == 200
    assert len(services.prestop_calls) == 2


def test_confirmed_prestop_is_answered_again_without_rerun(client, services):
    first = client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"})
    second = client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"})
    assert first.get_json() == second.get_json()
    assert len(services.prestop_calls) == 1


def test_joined_call_whose_budget_ends_first_gets_202(app, services):
    services.prestop_gate = threading.Event()
    first: list = []
    t = threading.Thread(target=lambda: first.append(
        app.test_client().post("/api/v1/prestop", json={"pod": "memgraph-1"}).status_code))
    try:
        t.start()
        assert services.prestop_entered.wait(5)
        resp = app.test_client().post("/api/v1/prestop", json={"pod": "memgraph-1", "budget_s": 0.2})
        assert resp.status_code == 202
        assert resp.get_json()["retry_after_s"] == 1
    finally:
        services.prestop_gate.set()
        t.join(10)
    assert first == [200]
    assert len(services.prestop_calls) == 1


def test_prestop_handler_that_raises_is_500_and_can_run_again(client, services, caplog):
    services.prestop_raises = RuntimeError("kube api gone")
    resp = client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"})
    assert error_of(resp) == (500, "internal")
    assert "kube api gone" not in resp.get_data(as_text=True)
    assert any("prestop handler raised" in r.getMessage() for r in caplog.records)
    services.prestop_raises = None
    assert client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "u1"}).status_code == 200
    assert len(services.prestop_calls) == 2


# ---- metrics ----------------------------------------------------------------------------------------------


def test_metrics_exposition_has_every_name_and_counts_prestop_outcomes(client):
    client.post("/api/v1/prestop", json={"pod": "memgraph-1", "uid": "a"})
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.content_type.startswith("text/plain")
    text = resp.get_data(as_text=True)
    for name in ("memgraph_ha_role", "memgraph_ha_leader",
                 "memgraph_ha_failovers_total", "memgraph_ha_switchovers_total",
                 "memgraph_ha_switchover_duration_seconds", "memgraph_ha_reconcile_duration_seconds",
                 "memgraph_ha_prestop_requests_total", "memgraph_ha_lease_transitions_total"):
        assert f"# TYPE {name} " in text, name
    # cluster-wide gauges come from the leader only; this agent does not lead
    assert "memgraph_ha_replicas" not in text and "memgraph_ha_diverged_pods" not in text
    assert 'memgraph_ha_prestop_requests_total{outcome="switchover-done"} 1.0' in text


# ---- HA_STATUS_AUTH=token: the status and local routes ask for the API token -----------------------------


@pytest.mark.parametrize("path", ["/api/v1/status", "/api/v1/local"])
def test_status_auth_token_makes_the_read_routes_need_the_bearer_token(client, token_client, path):
    assert client.get(path).status_code == 200  # HA_STATUS_AUTH=open (default)
    assert error_of(token_client.get(path)) == (401, "unauthorized")
    wrong = {"Authorization": "Bearer wrong"}
    assert error_of(token_client.get(path, headers=wrong)) == (401, "unauthorized")
    assert token_client.get(path, headers=AUTH).status_code == 200


@responses.activate
def test_status_auth_token_forwards_the_token_to_the_leader(token_client, services):
    services.leader = False
    responses.get(f"{LEADER}/api/v1/status", json={"main": "memgraph-0", "answered_by": "memgraph-0"})
    assert token_client.get("/api/v1/status", headers=AUTH).status_code == 200
    assert responses.calls[0].request.headers["Authorization"] == "Bearer s3cret-token"


def test_status_auth_token_leaves_probes_and_metrics_open(token_client):
    for path in ("/health", "/ready", "/metrics"):
        assert token_client.get(path).status_code == 200, path


@pytest.mark.parametrize("path", ["/api/v1/pause", "/api/v1/resume", "/api/v1/switchover"])
def test_an_optional_body_of_whitespace_only_is_rejected_as_bad_json(client, path):
    resp = client.post(path, data=b"\n", content_type="application/json", headers=AUTH)
    assert error_of(resp) == (400, "bad-json")
    assert client.post(path, headers=AUTH).status_code == 200  # no body at all: allowed


def test_purge_needs_the_token_and_a_plain_archive_name(client, services) -> None:
    body = {"pod": "memgraph-2", "archive": "20261130T203000.000000Z-g3"}
    assert client.post("/api/v1/diverged/purge", json=body).status_code == 401
    auth = {"Authorization": f"Bearer {services.token}"}
    for bad in ("../etc", "a,b", ".."):
        resp = client.post("/api/v1/diverged/purge", json={**body, "archive": bad}, headers=auth)
        assert resp.status_code == 400, bad
    resp = client.post("/api/v1/diverged/purge", json=body, headers=auth)
    assert resp.status_code == 202 and resp.get_json()["pending"] == ["memgraph-2/20261130T203000.000000Z-g3"]


# ---- fence (issue 16 item 5) -----------------------------------------------------------------------------

FENCE = {"pod": "memgraph-1", "uid": "uid-1", "generation": 3}


def test_fence_needs_the_token_before_anything_reaches_the_agent(client, services):
    assert error_of(client.post("/api/v1/fence", json=FENCE)) == (401, "unauthorized")
    bad = {"Authorization": "Bearer nope"}
    assert error_of(client.post("/api/v1/fence", json=FENCE, headers=bad)) == (401, "unauthorized")
    assert services.fence_calls == []


def test_fence_body_must_name_pod_uid_and_generation(client, services):
    assert error_of(client.post("/api/v1/fence", headers=AUTH)) == (400, "bad-request")
    body = {"pod": "memgraph-1", "uid": "uid-1"}
    assert error_of(client.post("/api/v1/fence", json=body, headers=AUTH)) == (400, "bad-request")
    assert services.fence_calls == []


def test_fence_passes_the_request_to_the_agent_and_its_answer_back(client, services):
    resp = client.post("/api/v1/fence", json=FENCE, headers=AUTH)
    assert error_of(resp) == (409, "main-healthy")
    assert [(r.pod, r.uid, r.generation) for r in services.fence_calls] == [("memgraph-1", "uid-1", 3)]


def test_fence_is_never_forwarded_to_the_leader(client, services):
    services.leader = False
    client.post("/api/v1/fence", json=FENCE, headers=AUTH)
    assert len(services.fence_calls) == 1  # answered here: each agent fences only its own Memgraph


def test_the_fence_token_opens_the_fence_route_alone(client, services):
    """Review defect b: the chart generates HA_FENCE_TOKEN, so fencing works with its defaults, while the
    operator routes (switchover, pause, resume) stay disabled without an operator token."""
    services.token, services.fencing_token = None, "fence-only"
    fence_auth = {"Authorization": "Bearer fence-only"}
    assert client.post("/api/v1/fence", json=FENCE, headers=fence_auth).status_code == 409
    assert len(services.fence_calls) == 1
    for route in ("/api/v1/pause", "/api/v1/resume", "/api/v1/switchover"):
        assert error_of(client.post(route, json={}, headers=fence_auth)) == (403, "disabled")
    assert error_of(client.post("/api/v1/fence", json=FENCE)) == (401, "unauthorized")
    assert error_of(client.post("/api/v1/fence", json=FENCE, headers=AUTH)) == (401, "unauthorized")
    assert len(services.fence_calls) == 1


def test_with_both_tokens_the_operator_routes_refuse_the_fence_token(client, services):
    services.fencing_token = "fence-only"
    fence_auth = {"Authorization": "Bearer fence-only"}
    assert error_of(client.post("/api/v1/pause", json={}, headers=fence_auth)) == (401, "unauthorized")
    assert client.post("/api/v1/fence", json=FENCE, headers=AUTH).status_code == 409


# ---- hand-over asked by the terminating MAIN's agent (issue 16 item 10) -------------------------------

HANDOVER = {"pod": "memgraph-0", "uid": "uid-0", "budget_s": 12}


def test_handover_needs_a_token_and_a_well_formed_body_before_anything_reaches_the_agent(client, services):
    assert error_of(client.post("/api/v1/handover", json=HANDOVER)) == (401, "unauthorized")
    nope = {"Authorization": "Bearer nope"}
    assert error_of(client.post("/api/v1/handover", json=HANDOVER, headers=nope)) == (401, "unauthorized")
    assert error_of(client.post("/api/v1/handover", headers=AUTH)) == (400, "bad-request")
    no_uid = {"pod": "memgraph-0"}
    assert error_of(client.post("/api/v1/handover", json=no_uid, headers=AUTH)) == (400, "bad-request")
    assert services.handover_calls == []


def test_the_fence_token_opens_the_handover_route_on_the_leader(client, services):
    services.token, services.fencing_token = None, "fence-only"
    resp = client.post("/api/v1/handover", json=HANDOVER, headers={"Authorization": "Bearer fence-only"})
    assert (resp.status_code, resp.get_json()) == (409, {"error": "not-terminating", "detail": "fake",
                                                         "answered_by": "memgraph-1"})
    assert [(r.pod, r.uid, r.budget_s) for r in services.handover_calls] == [("memgraph-0", "uid-0", 12.0)]


@responses.activate
def test_handover_on_a_non_leader_is_forwarded_once_with_the_callers_token(client, services):
    services.leader, services.fencing_token = False, "fence-only"
    responses.post(f"{LEADER}/api/v1/handover", json={
        "outcome": "switchover-done", "old_main": "memgraph-0", "new_main": "memgraph-2", "duration_s": 1.1,
        "answered_by": "memgraph-0"})
    resp = client.post("/api/v1/handover", json=HANDOVER, headers={"Authorization": "Bearer fence-only"})
    assert resp.status_code == 200 and resp.get_json()["via"] == "memgraph-1"
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer fence-only"
    assert json.loads(sent.body) == HANDOVER
    assert services.handover_calls == []
    again = client.post("/api/v1/handover", json=HANDOVER,
                        headers={"Authorization": "Bearer fence-only", FORWARD_HEADER: "memgraph-2"})
    assert error_of(again) == (503, "not-leader") and len(responses.calls) == 1

"""The real agents on the emulated 3-pod cluster: the HTTP API, probes, the preStop path, failover, secrets.

Real pieces: three `python -m agent` processes under gunicorn, three Memgraph emulator processes with
authentication, the Kubernetes API emulator, the real preStop hook, the neo4j driver for the writer.
One cluster serves the whole module (starting one costs ~10 s); every test first waits until the cluster
is healthy, so each test holds on its own whatever ran before it. The secret scan runs last and does its
own switchover and failover, so it also reads whatever the earlier tests made the agents log.

Must never: leave a process behind (the fixture stops the cluster in a `finally`), assert a speed target
(write pauses are printed, bounds are functional with generous slack), or loop without a bound.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import neo4j
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sim import faults
from sim.cluster import ClusterConfig, SimCluster
from sim.runs import max_pause_between
from sim.workload import Writer, collect_final_ids
from tests.support.cluster import healthy_cluster

USER = "memgraph"
PASSWORD = "Pw-9f3Kq-distinctive-secret"  # a test value that must never reach a log
TOKEN = "tok-7Hh2-distinctive-api-token"
ROLE_LABEL = "memgraph-ha.io/role"
HEALTHY_S = 60.0
SLACK_S = 20.0  # generous: 2 shared cores


def failover_bound(c: SimCluster) -> float:
    """A lost node's pod is not Ready after the node grace (plus a monitor period), a frozen leader's Lease
    expires, then failoverAfter; with slack."""
    t = c.timings
    return t.node_grace_s + t.node_monitor_period_s + t.lease_duration_s + t.failover_after_s + SLACK_S


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimCluster]:
    cfg = ClusterConfig(
        replicas=3,
        seed=23,
        memgraph_auth=(USER, PASSWORD),
        extra_agent_env={"HA_API_TOKEN": TOKEN},
    )
    with healthy_cluster(tmp_path_factory.mktemp("agent-cluster"), cfg, HEALTHY_S) as c:
        yield c


# ---- helpers ------------------------------------------------------------------------------------------


def http(method: str, url: str, body: dict[str, Any] | None = None, token: str | None = None,
         timeout_s: float = 30.0) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        return exc.code, json.loads(raw) if raw else {}


def healthy(c: SimCluster) -> dict[str, Any]:
    """Wait until the cluster is healthy and no pod is terminating; the leader's status document."""
    c.wait_for(lambda: c.healthy() and all(c.pod_ready(p) for p in c.pod_names()), HEALTHY_S, "healthy")
    return c.status()["cluster"]


def url(c: SimCluster, pod: str) -> str:
    return c.runtime(pod).agent_url


def non_leader(c: SimCluster, leader: str, avoid: str | None = None) -> str:
    others = [p for p in c.pod_names() if p not in (leader, avoid)]
    return others[0] if others else next(p for p in c.pod_names() if p != leader)


def metrics(c: SimCluster, pod: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(url(c, pod) + "/metrics", timeout=5) as resp:
        text = resp.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def agent_log(c: SimCluster, pod: str) -> str:
    uid = c.runtime(pod).uid
    return (c.workdir / "logs" / f"{pod}.{uid[:8]}.agent.log").read_text(errors="replace")


def bolt(c: SimCluster, pod: str) -> tuple[str, int]:
    return c.runtime(pod).ip, c.ports["bolt"]


def run_cypher(c: SimCluster, pod: str, query: str) -> None:
    host, port = bolt(c, pod)
    with neo4j.GraphDatabase.driver(f"bolt://{host}:{port}", auth=(USER, PASSWORD),
                                    connection_timeout=2.0) as driver, driver.session() as session:
        session.run(query).consume()


# ---- status and metrics -----------------------------------------------------------------------------


def test_status_from_a_non_leader_is_the_leaders_document(cluster: SimCluster) -> None:
    st = healthy(cluster)
    leader = st["leader"]
    other = non_leader(cluster, leader)
    code, doc = http("GET", url(cluster, other) + "/api/v1/status")
    assert code == 200, doc
    assert doc["answered_by"] == leader and doc["via"] == other
    assert doc["cluster"]["leader"] == leader and doc["cluster"]["main"] == st["main"]
    assert {p["name"] for p in doc["pods"]} == set(cluster.pod_names())
    code, direct = http("GET", url(cluster, leader) + "/api/v1/status")
    assert code == 200 and direct["answered_by"] == leader and "via" not in direct


def test_metrics_on_the_leader(cluster: SimCluster) -> None:
    st = healthy(cluster)
    leader, main = st["leader"], st["main"]
    roles = {p["name"]: p["role"] for p in cluster.status()["pods"]}
    m = metrics(cluster, leader)
    assert m[("memgraph_ha_leader", ())] == 1
    assert m[("memgraph_ha_role", (("role", roles[leader]),))] == 1
    assert m[("memgraph_ha_reconcile_duration_seconds_count", ())] > 0
    assert m[("memgraph_ha_lease_transitions_total", (("change", "acquired"),))] >= 1
    # replica counts come from the MAIN's own SHOW REPLICAS (on the leader when it is the MAIN)
    cluster.wait_for(
        lambda: metrics(cluster, main)[("memgraph_ha_replicas", (("status", "ready"),))] == 2,
        10, "MAIN agent reports 2 ready replicas",
    )
    for pod in cluster.pod_names():
        if pod != leader:
            assert metrics(cluster, pod)[("memgraph_ha_leader", ())] == 0


# ---- probes: I7 and the guard -----------------------------------------------------------------------


def test_readiness_and_writes_survive_an_api_server_outage(cluster: SimCluster) -> None:
    st = healthy(cluster)
    main, leader = st["main"], st["leader"]
    leader_log_at = len(agent_log(cluster, leader))
    labels_before = cluster.labels()
    writer = Writer(cluster.resolve_main, USER, PASSWORD, label="O", rate_hz=40).start()
    failures: list[str] = []
    try:
        assert writer.wait_acks(20, 20)
        t0 = time.monotonic()
        cluster.kube.outage("hang")  # longer than the Lease: the leader loses it
        try:
            while time.monotonic() - t0 < 6.0:
                for pod in cluster.pod_names():
                    rt = cluster.runtime(pod)
                    for probe in ("/ready", "/health"):
                        if not rt.http_ok(probe, timeout_s=2.0):
                            failures.append(f"{pod}{probe}")
                roles = cluster.roles()
                if roles[main].role != "main" or roles[main].label != "main" or not roles[main].ready:
                    failures.append(f"MAIN changed during the outage: {roles[main]}")
                time.sleep(0.2)
        finally:
            cluster.kube.clear_outage()
        t1 = time.monotonic()
        time.sleep(0.5)
    finally:
        writer.stop()
    during = [a for a in writer.attempts if t0 <= a.t_start and a.t_end <= t1]
    errors = [a for a in during if not a.acked]
    print(f"\nAPI outage 6 s: {len(during)} writes, {len(errors)} errors, probe failures {len(failures)}")
    assert not failures, failures[:10]
    assert len(during) > 50 and not errors, errors[:3]
    assert cluster.labels()[main].get(ROLE_LABEL) == labels_before[main].get(ROLE_LABEL) == "main"
    # the outage was real for the agents: the leader could not renew and stopped leading
    assert "leadership lost or released" in agent_log(cluster, leader)[leader_log_at:]
    healthy(cluster)


def test_rogue_main_is_demoted_by_its_guard_and_not_ready_meanwhile(cluster: SimCluster) -> None:
    st = healthy(cluster)
    main, sync, generation = st["main"], st["sync_replica"], st["generation"]
    rogue = next(p for p in cluster.pod_names() if p not in (main, sync))  # the ASYNC replica
    rt = cluster.runtime(rogue)
    run_cypher(cluster, rogue, "SET REPLICATION ROLE TO MAIN")
    t0 = time.monotonic()
    answers: list[tuple[int, str]] = []
    labels: set[str | None] = set()
    demoted_after = None
    while time.monotonic() - t0 < 20:
        code, doc = http("GET", rt.agent_url + "/ready", timeout_s=2.0)
        answers.append((code, str(doc.get("detail"))))
        if len(answers) % 10 == 0:
            labels.add(cluster.labels()[rogue].get(ROLE_LABEL))
        role = cluster.roles()[rogue].role
        if demoted_after is None and role == "replica" and any(c == 503 for c, _ in answers):
            demoted_after = time.monotonic() - t0
        if demoted_after is not None and code == 200:
            break
        time.sleep(0.02)
    print(f"\nrogue MAIN {rogue}: demoted after {demoted_after}s; /ready answers {len(answers)}")
    assert demoted_after is not None, answers[-5:]
    not_ready = [d for c, d in answers if c == 503]
    assert any("cluster record" in d and main in d for d in not_ready), not_ready
    assert not any(c == 200 and d.endswith("is main") for c, d in answers), "Ready while a rogue MAIN"
    assert answers[-1][0] == 200
    assert "main" not in labels
    assert "guard: demoting local Memgraph" in agent_log(cluster, rogue)
    after = healthy(cluster)
    assert after["main"] == main and after["generation"] == generation


# ---- the operator API --------------------------------------------------------------------------------


def test_switchover_through_a_non_leader_and_its_access_control(cluster: SimCluster) -> None:
    st = healthy(cluster)
    leader, main = st["leader"], st["main"]
    via = non_leader(cluster, leader)
    base = url(cluster, via)
    assert http("POST", base + "/api/v1/switchover", {})[0] == 401
    assert http("POST", base + "/api/v1/switchover", {}, token=TOKEN + "x")[0] == 401
    code, doc = http("POST", base + "/api/v1/switchover", {"to": "memgraph-9"}, token=TOKEN)
    assert code == 404, doc

    code, doc = http("POST", base + "/api/v1/switchover", {}, token=TOKEN)
    assert code == 200, doc
    assert doc["via"] == via and doc["answered_by"] == leader
    assert doc["old_main"] == main and doc["new_main"] not in (None, main)
    first = doc["new_main"]
    st = healthy(cluster)
    assert st["main"] == first and st["generation"] > 0

    # an explicit target, asked through a non-leader again (the leader may have changed)
    target = next(p for p in cluster.pod_names() if p != first)
    via = non_leader(cluster, st["leader"], avoid=None)
    code, doc = http("POST", url(cluster, via) + "/api/v1/switchover", {"to": target}, token=TOKEN)
    assert code == 200, doc
    assert doc["new_main"] == target and doc.get("via") == via
    assert healthy(cluster)["main"] == target
    roles = cluster.roles()
    assert roles[first].role == "replica" and roles[target].role == "main"


def test_new_main_is_not_demoted_by_its_own_guard_on_a_stale_record(cluster: SimCluster) -> None:
    """Regression (agent/guard.py `confirm`): a switchover writes the record naming the target just before
    it promotes it, and the target's agent holds a copy of the record up to one retry period old, so its
    guard saw "MAIN, but the record names the old MAIN" and demoted the new MAIN. Here the agents' Lease
    reads fail for a while (injected 500s), which keeps that copy stale for certain: the guard must
    confirm with a fresh read before it demotes, and hold off when it cannot read."""
    st = healthy(cluster)
    leader, main, generation = st["leader"], st["main"], st["generation"]
    target = next(p for p in cluster.pod_names() if p != main)
    log_at = len(agent_log(cluster, target))
    lease = f"/apis/coordination.k8s.io/v1/namespaces/{cluster.cfg.namespace}/leases/{cluster.cfg.name}-ha"
    cluster.kube.inject(500, verb="get", path_regex=re.escape(lease) + "$", count=100_000)
    try:
        code, doc = http("POST", url(cluster, leader) + "/api/v1/switchover", {"to": target}, token=TOKEN)
        assert code == 200 and doc["new_main"] == target, doc
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            assert cluster.roles()[target].role == "main", "the new MAIN was demoted"
            time.sleep(0.05)
    finally:
        cluster.kube.clear_injections()
    assert "guard: demoting" not in agent_log(cluster, target)[log_at:]
    st = healthy(cluster)
    assert st["main"] == target and st["generation"] == generation + 1


def test_pause_stops_reconciliation_and_resume_restarts_it(cluster: SimCluster) -> None:
    st = healthy(cluster)
    leader, main = st["leader"], st["main"]
    via = non_leader(cluster, leader)
    victim = next(p for p in cluster.pod_names() if p != main)
    assert cluster.labels()[victim].get(ROLE_LABEL) == "replica"
    assert http("POST", url(cluster, via) + "/api/v1/pause", {})[0] == 401
    code, doc = http("POST", url(cluster, via) + "/api/v1/pause", {}, token=TOKEN)
    assert code == 200 and doc["paused"] is True and doc["via"] == via, doc
    try:
        cluster.wait_for(lambda: cluster.status()["cluster"]["paused"] is True, 10, "status says paused")
        cluster.kube.patch("Pod", cluster.cfg.namespace, victim, {"metadata": {"labels": {ROLE_LABEL: None}}})
        t0 = time.monotonic()
        while time.monotonic() - t0 < 4 * cluster.timings.reconcile_interval_s + 1.0:
            assert cluster.labels()[victim].get(ROLE_LABEL) is None, "repaired while paused"
            time.sleep(0.1)
        assert cluster.status()["cluster"]["verdict"].startswith("paused")
    finally:
        code, doc = http("POST", url(cluster, via) + "/api/v1/resume", {}, token=TOKEN)
    assert code == 200 and doc["paused"] is False, doc
    cluster.wait_for(lambda: cluster.labels()[victim].get(ROLE_LABEL) == "replica", 15, "label repaired")
    assert healthy(cluster)["paused"] is False


# ---- the preStop path ---------------------------------------------------------------------------------


def test_deleting_the_main_pod_hands_over_without_losing_writes(cluster: SimCluster) -> None:
    st = healthy(cluster)
    old = st["main"]
    old_uid = cluster.pod_uid(old)
    writer = Writer(cluster.resolve_main, USER, PASSWORD, label="D", rate_hz=50).start()
    try:
        assert writer.wait_acks(30, 20)
        t0 = time.monotonic()
        cluster.delete_pod(old)
        cluster.wait_for(lambda: cluster.main() not in (None, old), 40, "a new MAIN")
        cluster.wait_for(
            lambda: cluster.pod_uid(old) not in (None, old_uid) and cluster.pod_ready(old), 60, f"{old} back"
        )
        st = healthy(cluster)
        t1 = time.monotonic()
        acked_before = len(writer.acked_ids())
        assert writer.wait_acks(acked_before + 20, 20)
    finally:
        writer.stop()
    new = st["main"]
    assert new != old
    assert cluster.roles()[old].role == "replica"
    pause = max_pause_between(writer, t0, t1)
    acked = writer.acked_ids()
    addresses = {p: bolt(cluster, p) for p in cluster.pod_names()}
    ids = collect_final_ids(addresses, acked, label="D", user=USER, password=PASSWORD, catch_up_s=15)
    lost = acked - ids[new]
    print(f"\nswitchover by pod deletion {old} -> {new}: write pause {pause:.3f}s, "
          f"{len(acked)} acked, {len(lost)} lost, errors {len(writer.attempts) - len(acked)}")
    assert not lost, sorted(lost)[:10]
    for pod in cluster.pod_names():
        assert acked <= ids[pod], f"{pod} misses {len(acked - ids[pod])} acknowledged writes"
    # the hook ran, and its record (on the old pod's log volume) shows the hand-over
    rec = [t for t in cluster.terminations if t.pod == old][-1]
    assert rec.hook_exit == 0 and not rec.killed
    record = (cluster.workdir / "pvc" / old / "log").glob(f"prestop-{old_uid}_*.log")
    text = "".join(p.read_text() for p in record)
    assert "START PreStop hook" in text and "END PreStop hook (exit=0)" in text, text
    assert "NOT safe to stop" not in text, text


# ---- secrets: run last --------------------------------------------------------------------------------


def test_no_secret_in_any_log_after_switchover_and_failover(cluster: SimCluster) -> None:
    st = healthy(cluster)
    # a switchover through the API
    code, doc = http("POST", url(cluster, st["leader"]) + "/api/v1/switchover", {}, token=TOKEN)
    assert code == 200, doc
    st = healthy(cluster)
    old = st["main"]
    # a failover: the MAIN's node stops answering (its agent too, maybe the leader)
    t0 = time.monotonic()
    with faults.node_loss(cluster, old, "freeze"):
        cluster.wait_for(lambda: cluster.main() not in (None, old), failover_bound(cluster), "failover")
        print(f"\nfailover away from frozen {old} after {time.monotonic() - t0:.1f}s")
    cluster.wait_for(lambda: cluster.roles()[old].role == "replica", 30, f"{old} demoted after thaw")
    st = healthy(cluster)
    assert st["main"] != old and st["last_failover"] is not None

    # API answers an operator could paste into a ticket
    texts = {
        "status": json.dumps(cluster.status()),
        **{f"{p}/local": json.dumps(http("GET", url(cluster, p) + "/api/v1/local")[1])
           for p in cluster.pod_names()},
        **{f"{p}/metrics": str(metrics(cluster, p)) for p in cluster.pod_names()},
        # Kubernetes objects the agents wrote: Events, the Lease record, pod labels and annotations
        **{kind: json.dumps(list(cluster.kube.list(kind, cluster.cfg.namespace)), default=str)
           for kind in ("Event", "Lease", "Pod")},
    }
    # agent logs, hook stderr, preStop records; and the Memgraph emulators' logs, which would show a
    # query text carrying a secret (the emulator's own command line is not logged there)
    files = [*(cluster.workdir / "logs").glob("*"), *(cluster.workdir / "pvc").glob("*/log/*"),
             *(cluster.workdir / "pvc").glob("*.log"), *(cluster.workdir / "pvc").glob("*/lib/*.log")]
    for f in files:
        texts[str(f.relative_to(cluster.workdir))] = f.read_text(errors="replace")
    assert sum(1 for k in texts if k.endswith(".agent.log")) >= 4  # the restarted pod's new agent too
    assert any("prestop-" in k for k in texts)
    assert any(k.endswith("mg_data.log") for k in texts)
    leaks = [(name, secret) for name, text in texts.items() for secret in (PASSWORD, TOKEN) if secret in text]
    assert not leaks, leaks
    # the agents did log work with these credentials in play (the scan read real content)
    joined = "".join(v for k, v in texts.items() if k.endswith(".agent.log"))
    assert "switchover" in joined and "promote" in joined and "guard" in joined

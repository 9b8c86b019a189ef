"""The real agents on the emulated cluster run as the chart's ServiceAccount, under the chart's Role.

The emulated cluster renders `charts/memgraph` with Helm, applies its ServiceAccount, Role, RoleBinding
and PodDisruptionBudget, and gives each agent a token bound to its pod (a kubeconfig reading a token
file, as a projected token is read). One test drives the agents through election, labels, a
switchover by the preStop of the MAIN's pod, pause/resume and Events, and finds no request denied;
the other takes one verb the agents need away from the Role and shows the 403 reaching the agent, the
agent logging it and staying up.

Must never: leave a process behind (clusters stop in a `finally`), or loop without a bound.
"""

from __future__ import annotations

import json
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim import manifests
from sim.cluster import ClusterConfig, SimCluster

NS = "default"
SA_USER = f"system:serviceaccount:{NS}:memgraph"
TOKEN = "tok-rbac-test-token"
AGENT_UA = "memgraph-ha-agent/"


def start(tmp_path: Path, replicas: int, **cfg: Any) -> SimCluster:
    config = ClusterConfig(
        replicas=replicas,
        seed=5,
        extra_agent_env={"HA_API_TOKEN": TOKEN},
        **cfg,
    )
    c = SimCluster(tmp_path, config)
    try:
        c.start(wait_ready_s=90)
    except BaseException:
        c.stop()
        raise
    return c


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[SimCluster]:
    c = start(tmp_path, 3)
    try:
        yield c
    finally:
        c.stop()


def post(url: str) -> int:
    req = urllib.request.Request(url, data=b"{}", method="POST", headers={"Authorization": f"Bearer {TOKEN}"})
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return int(resp.status)


def test_agents_run_as_the_charts_service_account_and_the_rendered_role_covers_all_they_do(cluster):
    c = cluster
    c.wait_for(c.healthy, 60, "cluster healthy")
    leader = c.status()["cluster"]["leader"]
    leader_url = c.runtime(leader).agent_url
    assert post(leader_url + "/api/v1/pause") == 200 and post(leader_url + "/api/v1/resume") == 200
    main = c.main()
    assert main is not None
    c.restart_pod(main, timeout_s=90)  # preStop switchover; the new pod's agent gets a new token
    c.wait_for(lambda: c.healthy() and c.main() not in (None, main), 60, "healthy after the switchover")

    assert c.kube.denials() == []
    by_agents: Counter[str] = Counter()
    for (user, user_agent), n in c.kube.identities().items():
        if user_agent.startswith(AGENT_UA):
            by_agents[user] += n
    assert set(by_agents) == {SA_USER} and by_agents[SA_USER] > 50
    events = {e["reason"] for e in c.kube.list("Event", NS)}
    assert "Switchover" in events
    role = c.kube.get("Role", NS, "memgraph-ha-agent")
    rendered = next(o for o in manifests.chart_identity(c.cfg) if o["kind"] == "Role")
    assert role["rules"] == rendered["rules"]  # the chart's rules, as rendered
    kubeconfig = json.loads(Path(c.runtime(main).extra_env["KUBECONFIG"]).read_text())
    assert set(kubeconfig["users"][0]["user"]) == {"tokenFile"}


def drop_verb(resource: str, verb: str) -> Any:
    def edit(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        role = next(o for o in objs if o["kind"] == "Role")
        for rule in role["rules"]:
            if resource in rule["resources"] and verb in rule["verbs"]:
                rule["verbs"].remove(verb)
        return objs

    return edit


def test_role_without_pods_patch_makes_the_label_patch_fail_with_403_and_the_agent_logs_it(tmp_path):
    c = start(tmp_path, 2, edit_identity=drop_verb("pods", "patch"))
    try:
        denied = c.wait_for(
            lambda: any(d["verb"] == "patch" and d["resource"] == "pods" for d in c.kube.denials(SA_USER)),
            60,
            "a denied label patch",
        )
        assert denied >= 0
        denial = next(d for d in c.kube.denials(SA_USER) if d["verb"] == "patch")
        assert denial["message"] == (
            f'pods "{denial["name"]}" is forbidden: User "{SA_USER}" cannot patch resource "pods" '
            f'in API group "" in the namespace "{NS}"'
        )
        logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*.agent.log"))
        assert "ForbiddenException: (403)" in logs and "cannot patch resource" in logs
        for rt in c.runtimes.values():  # the agents logged it and carry on
            assert rt.agent is not None and rt.agent.poll() is None and rt.http_ok("/health")
        assert all("memgraph-ha.io/role" not in labels for labels in c.labels().values())
    finally:
        c.stop()

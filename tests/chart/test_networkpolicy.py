"""The optional NetworkPolicy: clients reach Bolt; only this cluster's pods reach the replication and agent
ports (plus labelled agent clients); egress only to DNS, the cluster's pods and the API server."""

from __future__ import annotations

from typing import Any

from tests.chart import render as r

POD_SELECTOR = {
    "podSelector": {
        "matchLabels": {"app.kubernetes.io/name": "memgraph", "app.kubernetes.io/instance": "memgraph"}
    }
}


def _policy(values: dict[str, Any]) -> dict[str, Any]:
    return r.find(r.render(values), "NetworkPolicy")["spec"]


def _ingress_by_port(spec: dict[str, Any]) -> dict[int, list[Any]]:
    """port -> the `from` lists that open it (None: from anywhere)."""
    out: dict[int, list[Any]] = {}
    for rule in spec["ingress"]:
        for port in rule["ports"]:
            out.setdefault(port["port"], []).append(rule.get("from"))
    return out


def test_network_policy_is_off_by_default(default_docs) -> None:
    assert not [d for d in r.render_set("ha") + default_docs if d["kind"] == "NetworkPolicy"]


def test_bolt_is_open_to_clients_and_replication_only_to_the_cluster_pods() -> None:
    spec = _policy({"haAgent": {"enabled": True}, "networkPolicy": {"enabled": True}})
    assert spec["podSelector"] == {"matchLabels": POD_SELECTOR["podSelector"]["matchLabels"]}
    ports = _ingress_by_port(spec)
    assert ports[7687] == [None]  # no clients configured: any source
    assert ports[10000] == [[POD_SELECTOR]]
    assert ports[8080] == [
        [POD_SELECTOR],
        [{"podSelector": {"matchLabels": {"memgraph-ha.io/agent-client": "true"}}}],
    ]


def test_clients_and_agent_clients_narrow_the_sources() -> None:
    clients = [{"namespaceSelector": {"matchLabels": {"team": "app"}}}]
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    spec = _policy(
        {
            "haAgent": {"enabled": True},
            "networkPolicy": {"enabled": True, "clients": clients, "agentClients": [scraper]},
        }
    )
    ports = _ingress_by_port(spec)
    assert ports[7687] == [[*clients, POD_SELECTOR]]
    assert scraper in ports[8080][1]


def test_egress_allows_dns_the_cluster_pods_and_the_api_server() -> None:
    spec = _policy(
        {
            "haAgent": {"enabled": True},
            "networkPolicy": {"enabled": True, "egress": {"apiServerCIDRs": ["10.0.0.1/32"]}},
        }
    )
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    dns, pods, api = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53} and "to" not in dns
    assert pods["to"] == [POD_SELECTOR] and {p["port"] for p in pods["ports"]} == {7687, 10000, 8080}
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert [p["port"] for p in api["ports"]] == [443, 6443]


def test_egress_can_be_left_open() -> None:
    spec = _policy(
        {"haAgent": {"enabled": True}, "networkPolicy": {"enabled": True, "egress": {"enabled": False}}}
    )
    assert spec["policyTypes"] == ["Ingress"] and "egress" not in spec


def test_helm_test_pod_and_rollout_job_carry_the_agent_client_label() -> None:
    values = r.VALUE_SETS["everything-on"]
    test_pod = r.find(r.hooks(values), "Pod")
    assert test_pod["metadata"]["labels"]["memgraph-ha.io/agent-client"] == "true"
    job = r.find(r.render(values), "CronJob")["spec"]["jobTemplate"]["spec"]["template"]
    assert job["metadata"]["labels"]["memgraph-ha.io/agent-client"] == "true"

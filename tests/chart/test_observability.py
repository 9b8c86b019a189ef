"""Observability shipped: the PrometheusRule (the alerts of docs/operations.md), the Grafana dashboard and
its ConfigMap, the ServiceMonitor's labels; every expression parses as PromQL (promql-parser, the Rust
parser's Python binding) and names only series the agent exports (agent.metrics.AgentMetrics)."""

from __future__ import annotations

import json
import re
from typing import Any

import promql_parser
import pytest

from agent.metrics import AgentMetrics
from tests.chart import render as r

VALUES = r.VALUE_SETS["everything-on"]
DASHBOARD = r.CHART_DIR / "files" / "dashboards" / "memgraph-ha.json"
OPERATIONS = (r.REPO / "docs" / "operations.md").read_text()
GRAFANA_VARS = {"$__rate_interval": "5m", "$namespace": "db", "$job": "memgraph-pods"}


def exported_series() -> set[str]:
    """Every sample name an agent can expose (a leader that has seen replicas, lag and divergence)."""
    m = AgentMetrics()
    m.set_leader(True)
    m.set_cluster(replica_counts={"ready": 1}, behind={"memgraph_1": 0}, diverged=["memgraph-2"])
    m.switchover(True, 0.3)
    m.reconcile(0.01)
    m.prestop("confirmed")
    text = m.exposition().decode()
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def selectors(node: Any) -> list[str]:
    """Metric names of every vector or matrix selector in a parsed PromQL expression."""
    name = type(node).__name__
    if name == "VectorSelector":
        return [node.name]
    if name == "MatrixSelector":
        return selectors(node.vector_selector)
    found: list[str] = []
    for attr in ("lhs", "rhs", "expr", "args", "param"):
        child = getattr(node, attr, None)
        if child is None:
            continue
        for item in child if isinstance(child, list | tuple) else [child]:
            if hasattr(item, "__class__") and type(item).__module__ == "promql_parser":
                found += selectors(item)
    return found


def _rules() -> list[dict[str, Any]]:
    rule = r.find(r.render(VALUES), "PrometheusRule")
    return [x for group in rule["spec"]["groups"] for x in group["rules"]]


def test_prometheus_rule_renders_the_alerts_of_the_runbook() -> None:
    names = [x["alert"] for x in _rules()]
    assert names == [
        "MemgraphHANoLeader",
        "MemgraphHADivergedPods",
        "MemgraphHAReplicaNotReady",
        "MemgraphHADegraded",
        "MemgraphHAFailover",
    ]
    for name in names:
        assert name in OPERATIONS, f"{name} is not in docs/operations.md"
    rule = r.find(r.render(VALUES), "PrometheusRule")
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_every_rule_parses_and_names_only_exported_series() -> None:
    exported = exported_series()
    for rule in _rules():
        names = selectors(promql_parser.parse(rule["expr"]))
        assert names, rule["alert"]
        assert set(names) <= exported, (rule["alert"], set(names) - exported)
        assert 'namespace="db",job="memgraph-pods"' in rule["expr"]


def test_no_leader_alert_fires_when_the_series_is_absent() -> None:
    """`sum(x) < 1` alone is empty when no agent is scraped; the rule must also fire on absent(x)."""
    rule = next(x for x in _rules() if x["alert"] == "MemgraphHANoLeader")
    expr = promql_parser.parse(rule["expr"])
    assert type(expr).__name__ == "BinaryExpr" and str(expr.op).lower().endswith("or")
    rhs = expr.rhs
    assert type(rhs).__name__ == "Call" and rhs.func.name == "absent"
    assert selectors(rhs) == ["memgraph_ha_leader"]


def test_dashboard_is_grafana_json_whose_queries_parse_and_name_exported_series() -> None:
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] == "memgraph-ha"
    assert [v["name"] for v in dash["templating"]["list"]] == ["datasource", "namespace", "job"]
    exported = exported_series()
    targets = [t for p in dash["panels"] for t in p["targets"]]
    assert len(targets) >= 10
    for target in targets:
        expr = target["expr"]
        for var, value in GRAFANA_VARS.items():
            expr = expr.replace(var, value)
        names = selectors(promql_parser.parse(expr))
        assert names and set(names) <= exported, target["expr"]
    assert {p["datasource"]["uid"] for p in dash["panels"]} == {"${datasource}"}


def test_dashboard_configmap_is_labelled_for_the_grafana_sidecar() -> None:
    cm = r.find(r.render(VALUES), "ConfigMap", "memgraph-ha-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["memgraph-ha.json"]) == json.loads(DASHBOARD.read_text())
    moved = r.render(
        {
            **VALUES,
            "haAgent": {
                **VALUES["haAgent"],
                "grafanaDashboard": {
                    "enabled": True,
                    "namespace": "monitoring",
                    "label": "dash",
                    "labelValue": "yes",
                },
            },
        }
    )
    cm = r.find(moved, "ConfigMap", "memgraph-ha-dashboard")
    assert cm["metadata"]["namespace"] == "monitoring" and cm["metadata"]["labels"]["dash"] == "yes"


def test_service_monitor_carries_the_labels_value() -> None:
    monitor = r.find(r.render(VALUES), "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"


@pytest.mark.parametrize("kind", ["PrometheusRule", "ConfigMap"])
def test_rule_and_dashboard_are_off_by_default(kind: str) -> None:
    names = [d["metadata"]["name"] for d in r.render_set("ha") if d["kind"] == kind]
    assert "memgraph-ha" not in names and "memgraph-ha-dashboard" not in names


def test_the_diverged_alert_waits_for_a_reseed_under_auto_and_fires_at_once_under_manual() -> None:
    """Under divergence.reseed=auto a diverged pod is re-created with its files archived within minutes
    (the mark clears then, before the catch-up), so only a re-seed that does not end alerts; under manual
    a human has to act at once (docs/operations.md "Alerts")."""
    def diverged_rule(reseed: str) -> dict[str, Any]:
        values = {**VALUES, "haAgent": {**VALUES["haAgent"], "divergence": {"reseed": reseed}}}
        rule = r.find(r.render(values), "PrometheusRule")
        rules = [x for group in rule["spec"]["groups"] for x in group["rules"]]
        return next(x for x in rules if x["alert"] == "MemgraphHADivergedPods")

    assert diverged_rule("auto")["for"] == "15m"
    assert "for" not in diverged_rule("manual")
    row = ("| `MemgraphHADivergedPods` | `max(memgraph_ha_diverged_pods) > 0` | "
           "15m with `divergence.reseed=auto`")
    assert row in OPERATIONS


def test_the_archive_sizes_are_a_leader_only_series_with_a_unit() -> None:
    m = AgentMetrics()
    m.set_cluster(replica_counts={}, behind={}, diverged=["memgraph-2"], archives={"memgraph-2": {"a-g3": 7}})
    assert "memgraph_ha_diverged_archive_bytes" in m.exposition().decode()
    assert "| `memgraph_ha_diverged_archive_bytes{pod,archive}` | gauge | leader only |" in OPERATIONS
    m.set_leader(False)
    assert "memgraph_ha_diverged_archive_bytes" not in m.exposition().decode()

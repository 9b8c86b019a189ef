"""ctl.rollout_strategy: strategy detection on the real chart's render and the emulated
StatefulSet, the grace periods, the connection facts, the restart order and the result table."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ctl.rollout_strategy import (
    AGENT_MANAGED,
    MANUAL,
    PodResult,
    RolloutOptions,
    cluster_facts,
    detect_strategy,
    plan_steps,
    restart_order,
    results_table,
)
from sim import manifests
from sim.chart import pod_from_chart
from sim.cluster import ClusterConfig
from sim.kubelet import PodTemplate
from sim.timescale import TimeScale
from tests.chart import render as chart


def sim_sts(**template: Any) -> dict[str, Any]:
    cfg = ClusterConfig(template=PodTemplate(**template), time_scale=TimeScale(1.0))
    pod = pod_from_chart(cfg.chart_values(), cfg.name, cfg.namespace, cfg.time_scale)
    objs = manifests.objects(cfg, pod, {"bolt": 7777, "replication": 10000, "agent": 8181})
    return next(o for o in objs if o["kind"] == "StatefulSet")


def chart_sts(values: dict[str, Any]) -> dict[str, Any]:
    return chart.find(chart.render(values), "StatefulSet")


def test_chart_with_ha_agent_is_agent_managed_with_its_budget_and_grace() -> None:
    sts = chart_sts({"replicaCount": 3, "haAgent": {"enabled": True, "prestopBudgetSeconds": 120},
                     "container": {"terminationGracePeriodSeconds": 200}})
    s = detect_strategy(sts)
    assert s.name == AGENT_MANAGED
    assert s.has_hook and s.has_agent and s.native_sidecar
    assert s.hook_budget_s == 120 and s.pod_grace_s == 200
    assert s.delete_grace_s() == 180  # budget + 60
    assert "prestop.py" in s.reason and "native sidecar" in s.reason


def test_chart_with_ordinary_sidecar_is_agent_managed() -> None:
    s = detect_strategy(chart.find(chart.render_set("ha-ordinary-sidecar"), "StatefulSet"))
    assert s.name == AGENT_MANAGED and s.has_agent and not s.native_sidecar
    assert "as a container" in s.reason


def test_chart_without_ha_is_manual_and_says_why() -> None:
    s = detect_strategy(chart_sts({}))
    assert s.name == MANUAL and not s.has_agent and not s.has_hook
    assert s.reason == "no agent and no preStop hook in the pod template"
    assert s.delete_grace_s() <= 30


def test_chart_facts_follow_the_values() -> None:
    f = cluster_facts(chart.find(chart.render_set("ha-tuned"), "StatefulSet"))
    assert f.bolt_port == 7688 and f.agent_port == 9090
    assert f.lease_name == "graph-election" and f.replicas == 5
    assert f.headless_service == "" and f.selector.count("=") >= 2


def test_headless_service_comes_from_the_agent_env_not_from_service_name() -> None:
    """The official chart's serviceName is a ClusterIP Service (no per-pod DNS): never an address."""
    assert cluster_facts(chart_sts({"replicaCount": 3, "haAgent": {"enabled": True}})).headless_service == ""
    sts = sim_sts()
    agent = sts["spec"]["template"]["spec"]["initContainers"][0]
    agent["env"] = [{"name": "HA_HEADLESS_SERVICE", "value": "mg-headless"}]
    assert cluster_facts(sts).headless_service == "mg-headless"


@pytest.mark.parametrize(
    ("template", "expected", "why"),
    [
        ({}, AGENT_MANAGED, "native sidecar"),
        ({"native_sidecar": False}, AGENT_MANAGED, "as a container"),
        ({"with_hook": False}, MANUAL, "has no preStop hook"),
        ({"with_agent": False}, MANUAL, "no agent runs in the pod"),
        ({"with_agent": False, "with_hook": False}, MANUAL, "no agent and no preStop hook"),
    ],
)
def test_sim_statefulsets(template: dict[str, Any], expected: str, why: str) -> None:
    s = detect_strategy(sim_sts(**template))
    assert s.name == expected
    assert why in s.reason


def test_budget_defaults_to_600_and_bad_values_are_said() -> None:
    sts = sim_sts()
    mg = sts["spec"]["template"]["spec"]["containers"][0]
    mg["env"] = []
    assert detect_strategy(sts).hook_budget_s == 600
    assert detect_strategy(sts).delete_grace_s() == 660
    mg["env"] = [{"name": "PRESTOP_TIMEOUT_SECONDS", "value": "soon"}]
    s = detect_strategy(sts)
    assert s.hook_budget_s == 600 and "unparsable 'soon'" in s.reason


def test_a_foreign_prestop_hook_is_not_ours() -> None:
    sts = copy.deepcopy(sim_sts())
    mg = sts["spec"]["template"]["spec"]["containers"][0]
    mg["lifecycle"] = {"preStop": {"exec": {"command": ["/bin/sh", "-c", "sleep 10"]}}}
    s = detect_strategy(sts)
    assert s.name == MANUAL and "sleep 10" in s.reason


def test_an_init_container_that_is_not_a_sidecar_is_not_the_agent() -> None:
    sts = sim_sts()
    spec = sts["spec"]["template"]["spec"]
    spec["initContainers"][0].pop("restartPolicy")  # a plain init container exits before memgraph runs
    s = detect_strategy(sts)
    assert s.name == MANUAL and not s.has_agent


def test_sim_facts() -> None:
    f = cluster_facts(sim_sts())
    assert (f.bolt_port, f.agent_port, f.lease_name, f.replicas) == (7777, 8181, "memgraph-ha", 3)
    assert f.headless_service == ""  # the agent declares no HA_HEADLESS_SERVICE: replicas go by pod IP
    assert f.selector == "app.kubernetes.io/instance=memgraph,app.kubernetes.io/name=memgraph"
    assert cluster_facts(sim_sts(with_agent=False)).agent_port is None


@pytest.mark.parametrize(
    ("pods", "main", "order"),
    [
        (["mg-0", "mg-1", "mg-2"], "mg-0", ["mg-2", "mg-1", "mg-0"]),
        (["mg-0", "mg-1", "mg-2"], "mg-2", ["mg-1", "mg-0", "mg-2"]),
        (["mg-0", "mg-1", "mg-2", "mg-10"], "mg-1", ["mg-10", "mg-2", "mg-0", "mg-1"]),
        (["mg-1", "mg-0"], None, ["mg-1", "mg-0"]),
        (["mg-1"], "mg-0", ["mg-1"]),
    ],
)
def test_restart_order_highest_ordinal_first_main_last(
    pods: list[str], main: str | None, order: list[str]
) -> None:
    assert restart_order(pods, main) == order


def test_results_table_and_json() -> None:
    ok = PodResult("mg-2", MANUAL, True, 1.234)
    moved = PodResult("mg-0", MANUAL, True, 5.0, was_main=True, old_main="mg-0", new_main="mg-1")
    bad = PodResult("mg-1", MANUAL, False, 30.0, error="timed out waiting for mg-1 recreated and Ready")
    lines = results_table([ok, moved, bad])
    assert lines[0].split() == ["POD", "STRATEGY", "RESULT", "DURATION", "MAIN", "MOVED", "ERROR"]
    assert "mg-0 -> mg-1" in lines[2] and "FAILED" in lines[3] and lines[3].endswith("recreated and Ready")
    assert ok.to_json() == {"pod": "mg-2", "strategy": MANUAL, "success": True, "duration_s": 1.234,
                            "error": None, "was_main": False, "old_main": None, "new_main": None}


def test_plan_in_words_per_strategy() -> None:
    order = ["memgraph-2", "memgraph-1", "memgraph-0"]
    managed = plan_steps(detect_strategy(sim_sts()), order, "memgraph-0")
    assert [s["action"] for s in managed] == [
        "delete with grace 660s",
        "delete with grace 660s",
        "delete with grace 660s; the preStop hook hands over",
    ]
    with_agents = plan_steps(detect_strategy(sim_sts(with_hook=False)), order, "memgraph-0")
    assert with_agents[-1] == {"pod": "memgraph-0", "is_main": True,
                               "action": "switchover away from it (agent API), then delete with grace 30s"}
    bare = plan_steps(detect_strategy(sim_sts(with_agent=False, with_hook=False)), order, "memgraph-0")
    assert "this command under the Lease" in bare[-1]["action"] and not bare[0]["is_main"]


def test_options_never_show_secrets() -> None:
    text = repr(RolloutOptions(token="tok-secret-1", memgraph_password="pw-secret-2"))
    assert "tok-secret-1" not in text and "pw-secret-2" not in text

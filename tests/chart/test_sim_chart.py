"""The emulated cluster reads its probes and timings from the rendered chart (sim/chart.py)."""

from __future__ import annotations

from typing import Any

import yaml

from sim.chart import pod_from_chart
from sim.probes import ProbeType
from sim.timescale import TimeScale
from tests.chart.render import CHART_DIR

HA = {"haAgent": {"enabled": True}, "replicaCount": 3, "fullnameOverride": "memgraph"}


def chart_defaults() -> dict[str, Any]:
    values: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    return values


def test_probes_are_the_values_of_the_chart() -> None:
    v = chart_defaults()
    pod = pod_from_chart(HA, "memgraph", "db")
    for kind, key in ((ProbeType.READINESS, "readinessProbe"), (ProbeType.LIVENESS, "livenessProbe"),
                      (ProbeType.STARTUP, "startupProbe")):
        mg, want = pod.memgraph.probes[kind], v["container"][key]
        assert (mg.period_s, mg.failure_threshold, mg.timeout_s) == (
            want["periodSeconds"], want["failureThreshold"], want["timeoutSeconds"]), key
        assert mg.action == "tcp" and mg.port == 7687
        assert pod.agent is not None
        if kind is ProbeType.READINESS:  # the agent never gates the pod's Ready (issue 16 item 1)
            assert kind not in pod.agent.probes
            continue
        agent, want = pod.agent.probes[kind], v["haAgent"][key]
        assert (agent.period_s, agent.failure_threshold, agent.timeout_s) == (
            want["periodSeconds"], want["failureThreshold"], want["timeoutSeconds"]), key
        assert agent.action == "http" and agent.port == v["haAgent"]["port"]


def test_agent_timings_grace_and_hook_budget_come_from_the_values() -> None:
    v = chart_defaults()
    pod = pod_from_chart(HA, "memgraph", "db")
    ha = v["haAgent"]
    assert pod.agent_seconds("HA_FAILOVER_AFTER_SECONDS") == ha["failoverAfterSeconds"]
    assert pod.agent_seconds("HA_LEASE_DURATION_SECONDS") == ha["leaseDurationSeconds"]
    assert pod.prestop_budget_s == ha["prestopBudgetSeconds"]
    assert pod.grace_s == v["container"]["terminationGracePeriodSeconds"]


def test_a_value_set_for_the_cluster_reaches_the_timings() -> None:
    values = {**HA, "haAgent": {"enabled": True, "failoverAfterSeconds": 9}}
    assert pod_from_chart(values, "memgraph", "db").agent_seconds("HA_FAILOVER_AFTER_SECONDS") == 9.0


def test_scaled_pod_scales_every_duration_and_no_threshold() -> None:
    pod = pod_from_chart(HA, "memgraph", "db")
    small = pod.scaled(TimeScale(0.5))
    assert small.grace_s == pod.grace_s / 2
    assert small.agent_seconds("HA_RETRY_PERIOD_SECONDS") == pod.agent_seconds("HA_RETRY_PERIOD_SECONDS") / 2
    r, r2 = pod.memgraph.probes[ProbeType.READINESS], small.memgraph.probes[ProbeType.READINESS]
    assert (r2.period_s, r2.failure_threshold) == (r.period_s / 2, r.failure_threshold)
    assert small.agent_env()["HA_SYNC_MODE"] == pod.agent_env()["HA_SYNC_MODE"]


def test_native_sidecar_and_ordinary_container_are_told_apart() -> None:
    native = pod_from_chart(HA, "memgraph", "db")
    ordinary = pod_from_chart({**HA, "haAgent": {"enabled": True, "nativeSidecar": False}}, "memgraph", "db")
    assert native.agent is not None and native.agent.sidecar
    assert ordinary.agent is not None and not ordinary.agent.sidecar
    assert native.memgraph.prestop and not native.memgraph.sidecar


def test_without_the_agent_there_is_only_memgraph() -> None:
    pod = pod_from_chart({"replicaCount": 3}, "memgraph", "db")
    assert list(pod.containers) == ["memgraph"] and pod.agent is None and not pod.memgraph.prestop

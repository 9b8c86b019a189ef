"""coordinator.core.defaults is the one source of each default; the copies that cannot import it agree.

The chart's values.yaml (what a cluster gets without tuning) and the preStop hook (standard library
only, copied into the chart) carry their own literal defaults: these tests fail when one drifts.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from coordinator.core import defaults
from coordinator.core.lease_rules import ElectionConfig
from coordinator.core.model import Policy, ReplicaMode
from coordinator.edge.settings import load_settings
from hooks import prestop as hook

REPO = Path(__file__).resolve().parents[2]
MINIMAL_ENV = {
    "POD_NAME": "memgraph-0", "POD_NAMESPACE": "db", "POD_UID": "u", "POD_IP": "10.0.0.1",
    "HA_STATEFULSET": "memgraph", "HA_POD_SELECTOR": "app=memgraph",
    "HA_HEADLESS_SERVICE": "memgraph-headless",
}


def _chart_agent_values() -> dict:
    values = yaml.safe_load((REPO / "charts" / "memgraph" / "values.yaml").read_text())
    return values["haAgent"]


def test_the_chart_defaults_are_the_products_defaults() -> None:
    v = _chart_agent_values()
    assert (v["leaseDurationSeconds"], v["renewDeadlineSeconds"], v["retryPeriodSeconds"]) == (
        defaults.LEASE_DURATION_S, defaults.RENEW_DEADLINE_S, defaults.RETRY_PERIOD_S)
    assert (v["reconcileIntervalSeconds"], v["failoverAfterSeconds"]) == (
        defaults.RECONCILE_INTERVAL_S, defaults.FAILOVER_AFTER_S)
    assert (v["syncMode"], v["allowAsyncFailover"]) == (defaults.SYNC_MODE, defaults.ALLOW_ASYNC_FAILOVER)
    assert (v["prestopBudgetSeconds"], v["drainSeconds"]) == (defaults.PRESTOP_BUDGET_S, defaults.DRAIN_S)
    assert (v["port"], v["replicationPort"]) == (defaults.AGENT_PORT, defaults.REPLICATION_PORT)
    assert (v["logFormat"], v["logLevel"]) == (defaults.LOG_FORMAT, defaults.LOG_LEVEL)
    assert v["statusAuth"] == defaults.STATUS_AUTH
    assert (v["divergence"]["reseed"], v["divergence"]["reserveBytes"]) == (
        defaults.RESEED, defaults.RESEED_RESERVE_BYTES)


def test_the_hook_defaults_are_the_products_defaults() -> None:
    assert hook.DEFAULT_BUDGET_S == defaults.PRESTOP_BUDGET_S
    assert hook.DEFAULT_LOG_DIR == defaults.LOG_DIR
    assert f"http://127.0.0.1:{defaults.AGENT_PORT}" == hook.DEFAULT_AGENT_URL


def test_settings_the_elector_and_the_policy_start_from_the_same_defaults() -> None:
    s = load_settings(MINIMAL_ENV)
    e = ElectionConfig()
    assert (s.election.lease_duration_s, s.election.renew_deadline_s, s.election.retry_period_s) == (
        e.lease_duration_s, e.renew_deadline_s, e.retry_period_s)
    assert s.planner_policy() == Policy(headless_service="memgraph-headless")
    assert s.policy.sync_mode is ReplicaMode.STRICT_SYNC and s.election.lease_name == "memgraph-ha"

"""agent/metrics.py (private registry, one method per fact) and agent/server.py's gunicorn settings."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent.metrics import AgentMetrics
from agent.server import StdlibLogger, bind_address, server_options


def samples(m: AgentMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.exposition().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_two_agents_in_one_process_do_not_share_metrics():
    a, b = AgentMetrics(), AgentMetrics()
    a.failover(ok=True)
    assert samples(a)[("memgraph_ha_failovers_total", (("result", "ok"),))] == 1
    assert samples(b)[("memgraph_ha_failovers_total", (("result", "ok"),))] == 0


def test_role_is_one_hot_and_unknown_values_map_to_unknown():
    m = AgentMetrics()
    m.set_role("main")
    s = samples(m)
    assert [s[("memgraph_ha_role", (("role", r),))] for r in ("main", "replica", "unknown")] == [1, 0, 0]
    m.set_role("weird")
    s = samples(m)
    assert [s[("memgraph_ha_role", (("role", r),))] for r in ("main", "replica", "unknown")] == [0, 0, 1]


def test_replica_lag_drops_replicas_no_longer_listed():
    m = AgentMetrics()
    m.set_cluster({}, {"memgraph_1": 3, "memgraph_2": 0}, [])
    m.set_cluster({}, {"memgraph_2": 5}, [])
    lag = {k[1]: v for k, v in samples(m).items() if k[0] == "memgraph_ha_replica_behind_transactions"}
    assert lag == {(("replica", "memgraph_2"),): 5}


def test_replica_counts_report_every_status():
    m = AgentMetrics()
    m.set_cluster({"ready": 2, "invalid": 1}, {}, [])
    counts = {k[1][0][1]: v for k, v in samples(m).items() if k[0] == "memgraph_ha_replicas"}
    assert counts == {"ready": 2, "replicating": 0, "recovery": 0, "invalid": 1, "diverged": 0, "unknown": 0}


CLUSTER_SERIES = (
    "memgraph_ha_replicas",
    "memgraph_ha_replica_behind_transactions",
    "memgraph_ha_diverged_pods",
)


def test_cluster_wide_gauges_exist_only_while_set_and_vanish_when_leadership_is_lost():
    m = AgentMetrics()
    assert not [k for k in samples(m) if k[0] in CLUSTER_SERIES]  # a non-leader exports none
    m.set_leader(True)
    m.set_cluster({"ready": 2}, {"memgraph_1": 0}, ["memgraph-2"])
    assert {k[0] for k in samples(m)} >= set(CLUSTER_SERIES)
    m.set_leader(False)
    assert not [k for k in samples(m) if k[0] in CLUSTER_SERIES]


def test_no_created_series_and_every_name_has_its_unit():
    m = AgentMetrics()
    m.set_cluster({"ready": 1}, {"memgraph_1": 0}, [])
    m.switchover(ok=True, duration_s=1.0)
    names = {k[0] for k in samples(m)}
    assert not [n for n in names if n.endswith("_created")]
    text = m.exposition().decode()
    assert "_created" not in text
    assert "memgraph_ha_replica_behind_transactions" in names and "memgraph_ha_replica_behind" not in names
    assert "memgraph_ha_switchover_duration_seconds_count" in names


def test_switchover_and_reconcile_durations_and_counters():
    m = AgentMetrics()
    m.switchover(ok=True, duration_s=3.2)
    m.switchover(ok=False, duration_s=600.0)
    m.reconcile(0.02)
    m.lease_transition(acquired=True)
    m.prestop("x" * 500)
    m.set_leader(True)
    m.set_cluster({}, {}, ["memgraph-2", "memgraph-2"])
    s = samples(m)
    assert s[("memgraph_ha_switchovers_total", (("result", "ok"),))] == 1
    assert s[("memgraph_ha_switchovers_total", (("result", "failed"),))] == 1
    assert s[("memgraph_ha_switchover_duration_seconds_bucket", (("le", "5.0"),))] == 1
    assert s[("memgraph_ha_switchover_duration_seconds_count", ())] == 2
    assert s[("memgraph_ha_reconcile_duration_seconds_bucket", (("le", "0.025"),))] == 1
    assert s[("memgraph_ha_lease_transitions_total", (("change", "acquired"),))] == 1
    assert s[("memgraph_ha_prestop_requests_total", (("outcome", "x" * 64),))] == 1  # trimmed label
    assert s[("memgraph_ha_leader", ())] == 1
    assert s[("memgraph_ha_diverged_pods", ())] == 1


def test_server_runs_one_gthread_worker_without_control_socket():
    opts = server_options("127.0.0.1", 8080, threads=6, graceful_timeout=7.5)
    assert opts["workers"] == 1 and opts["worker_class"] == "gthread" and opts["threads"] == 6
    assert opts["bind"] == ["127.0.0.1:8080"]
    assert opts["graceful_timeout"] == 8
    assert opts["timeout"] == 0  # no worker watchdog: it killed the agent after every long pod freeze
    assert opts["control_socket_disable"] is True
    assert opts["accesslog"] is None
    assert opts["logger_class"] is StdlibLogger
    assert server_options("0.0.0.0", 1, access_log=True)["accesslog"] == "-"


def test_server_rejects_zero_threads():
    with pytest.raises(ValueError, match="threads"):
        server_options("127.0.0.1", 8080, threads=0)


def test_bind_address_brackets_ipv6():
    assert bind_address("::", 8080) == "[::]:8080"
    assert bind_address("[::1]", 80) == "[::1]:80"
    assert bind_address("0.0.0.0", 8080) == "0.0.0.0:8080"


def test_worker_callbacks_call_the_agent():
    calls: list[str] = []
    opts = server_options("127.0.0.1", 1, on_worker_start=lambda: calls.append("start"),
                          on_worker_exit=lambda: calls.append("exit"))

    class Worker:
        pid = 4242

    opts["post_worker_init"](Worker())
    opts["worker_exit"](None, Worker())
    assert calls == ["start", "exit"]


def test_degraded_gauge_follows_the_leaders_decision():
    m = AgentMetrics()
    assert samples(m)[("memgraph_ha_degraded", ())] == 0
    m.set_degraded(True)
    assert samples(m)[("memgraph_ha_degraded", ())] == 1
    m.set_degraded(False)
    assert samples(m)[("memgraph_ha_degraded", ())] == 0


def test_archive_sizes_are_leader_only_per_pod_and_archive_and_vanish_when_purged():
    m = AgentMetrics()
    m.set_leader(True)
    m.set_cluster({}, {}, [], {"memgraph-2": {"a-g3": 4096, "b-g5": 10}})
    m.set_cluster({}, {}, [], {"memgraph-2": {"b-g5": 10}})
    text = m.exposition().decode()
    assert 'memgraph_ha_diverged_archive_bytes{archive="b-g5",pod="memgraph-2"} 10.0' in text
    assert 'archive="a-g3"' not in text
    m.set_leader(False)
    assert "memgraph_ha_diverged_archive_bytes" not in m.exposition().decode()

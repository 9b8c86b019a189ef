"""Scenario: a MAIN whose Bolt workers are all busy, as long analytical queries make them (`busy_workers`).

Memgraph serves Bolt with `--bolt-num-workers` workers (default: the cores, 2 here) plus one high-priority
worker: while every worker runs a long query, writes and SHOW STORAGE INFO queue, and SHOW REPLICATION ROLE
and SHOW REPLICAS are still answered (sim/memgraph/workers.py, reference memgraph-replication section 7).
A busy MAIN is slow, not lost: the agents must not fail it over, and the cluster is whole afterwards.
"""

from __future__ import annotations

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running


def test_main_with_every_bolt_worker_busy_is_not_failed_over(scenario: MakeScenario) -> None:
    sc = scenario(seed=31)
    old = sc.main()
    busy_s = 4 * sc.cluster.timings.failover_after_s + 4.0  # several failover delays and reconcile rounds
    faults.busy_workers(sc.cluster, old, busy_s, flog=sc.flog)
    memgraph = sc.cluster.runtime(old).memgraph
    sc.cluster.wait_for(lambda: memgraph.state()["workers"]["busy"] > 0, SLACK_S, "workers busy")
    sc.cluster.wait_for(lambda: memgraph.state()["workers"]["busy"] == 0, busy_s + SLACK_S, "workers free")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert not ev.timeline.failovers, f"a busy MAIN was failed over: {ev.timeline.failovers}"
    assert sc.main() == old

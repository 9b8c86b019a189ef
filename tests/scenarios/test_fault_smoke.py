"""Smoke use of the remaining faults of sim/faults.py on one cluster, judged by the I1-I7 checker:
API latency, a slow replica, a replica's node lost (NotReady after a grace, then back), a replica cut
off from the others, kill -9 of a replica's Memgraph and agent, and a replica pod deleted with and
without its preStop hook. None of them may move the MAIN or lose an acknowledged write.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 30.0


@pytest.mark.long  # the slowest scenario of the suite; every fault family has a quicker one
@pytest.mark.timeout(300)
def test_replica_faults_leave_the_main_alone(scenario: MakeScenario) -> None:
    sc = scenario(seed=11)
    main = sc.main()
    a, b = sc.replicas()
    c, f = sc.cluster, sc.flog
    with faults.api_latency(c, 300, flog=f):
        sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    with faults.slow_replication(c, main, 100, flog=f):
        sc.wait_acks_after(time.monotonic(), 10, SLACK_S)
    with faults.node_loss(c, b, "freeze", flog=f):
        grace = c.timings.node_grace_s + c.timings.node_monitor_period_s
        c.wait_for(lambda: not c.pod_ready(b), grace + SLACK_S, f"{b} not Ready after its node was lost")
        sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    sc.converge(final=False)
    with faults.cut_off(c, a, flog=f):
        # on the namespaced bed the cut is silent: when `a` is the STRICT_SYNC replica, the write in flight
        # waits for Memgraph's PrepareCommit timeout (reference memgraph-replication 7.4) before any other
        prepare_s = sc.cfg.template.memgraph_timings.prepare_timeout_s
        sc.wait_acks_after(time.monotonic(), 20, prepare_s + SLACK_S)
    sc.converge(final=False)
    faults.kill_memgraph(c, a, flog=f)
    faults.kill_agent(c, b, flog=f)
    sc.converge(final=False)
    uid = c.pod_uid(a)
    faults.delete_pod(c, a, run_hook=False, flog=f)
    c.wait_for(lambda: c.pod_uid(a) not in (None, uid) and c.pod_ready(a), 60.0, f"{a} re-created")
    uid = c.pod_uid(b)
    faults.delete_pod(c, b, flog=f)
    c.wait_for(lambda: c.pod_uid(b) not in (None, uid) and c.pod_ready(b), 60.0, f"{b} re-created")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() == main and not ev.timeline.failovers, "replica faults never move the MAIN"
    # converged is 1 MAIN + ready replicas; healthy also needs the STRICT_SYNC replica re-registered
    # after the last deletion, which the leader does in its next cycles
    c.wait_for(lambda: c.status()["cluster"]["healthy"], SLACK_S, "the status says healthy")

"""Scenarios of the kubelet at the chart's timings: Memgraph crashing on the MAIN (restarted by the
kubelet, once and in a crash loop), Memgraph hung on the MAIN, the MAIN's agent killed once and
crash-looping, and the kubelet of the MAIN's node dead.

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py), on the
chart's timings at the suite's time scale (tests/conftest.py). A scenario that shows a product defect is
a strict xfail naming the behaviour: the fix belongs to the HA-defects issue.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from sim.cluster import SimCluster
from sim.runs import RunEvidence
from sim.timeline import OutageWindow
from sim.timescale import TimeScale
from tests.scenarios.conftest import MakeScenario
from tests.scenarios.harness import Scenario

SLACK_S = 30.0  # real seconds: process starts on 2 shared cores


def restarts(c: SimCluster, pod: str, container: str) -> int:
    inc = next(i for i in c.incarnations() if i.runtime.name == pod)
    return inc.worker.restarts()[container]


def wait_running_again(sc: Scenario, pod: str, container: str, count: int, timeout_s: float) -> None:
    c = sc.cluster
    c.wait_for(lambda: restarts(c, pod, container) >= count and c.runtime(pod).container_running(container),
               timeout_s, f"{container} of {pod} restarted {count} time(s)")


def test_memgraph_crash_on_main_restarted_inside_failover_after_keeps_the_main(
        scenario: MakeScenario) -> None:
    # the chart's own timings: the kubelet's restart (a process start, which no time scale shrinks) must
    # fall inside failoverAfter (5 s) as it does on a real cluster
    sc = scenario(seed=21, time_scale=TimeScale(1.0))
    old = sc.main()
    t0 = time.monotonic()
    faults.kill_memgraph(sc.cluster, old, flog=sc.flog)
    wait_running_again(sc, old, "memgraph", 1, SLACK_S)
    sc.flog.add(f"the kubelet restarted memgraph of {old} after {time.monotonic() - t0:.1f}s")
    sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() == old, "a Memgraph back inside failoverAfter keeps the MAIN role"
    assert not ev.timeline.failovers


def test_memgraph_crash_loop_on_main_fails_over_and_the_old_main_rejoins(scenario: MakeScenario) -> None:
    sc = scenario(seed=22)
    old, sync = sc.main(), sc.sync_replica()
    t = sc.cluster.timings
    for n in range(1, 4):  # killed again as soon as it runs: 0 s, then the back-off (10 s, 20 s) each time
        faults.kill_memgraph(sc.cluster, old, flog=sc.flog)
        if n < 3:
            wait_running_again(sc, old, "memgraph", n, t.backoff_initial_s * 2**n + SLACK_S)
    bound = t.backoff_initial_s * 4 + SLACK_S
    new = sc.wait_main(lambda m: m != old, bound, "failover during the crash loop")
    assert new == sync, f"failover went to {new}, not to the STRICT_SYNC replica {sync}"
    sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    wait_running_again(sc, old, "memgraph", 3, t.backoff_initial_s * 8 + SLACK_S)
    sc.converge(timeout_s=t.backoff_initial_s * 8 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica", "the old MAIN rejoined as a replica"
    assert restarts(sc.cluster, old, "memgraph") == 3


def test_memgraph_hung_on_main_is_failed_over(scenario: MakeScenario) -> None:
    sc = scenario(seed=23)
    old, sync = sc.main(), sc.sync_replica()
    t = sc.cluster.timings
    with faults.hang(sc.cluster, old, "memgraph", flog=sc.flog):
        # only the agent's readiness (its local Memgraph silent) can take the pod out: tcpSocket passes
        new = sc.wait_main(lambda m: m != old, t.lease_duration_s + t.failover_after_s + SLACK_S,
                           "failover away from the hung MAIN")
        assert new == sync
        sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica"


def _agent_outage(sc: Scenario, start: float) -> None:
    sc.timeline.outages.append(OutageWindow(start, time.monotonic(), "agent", main_healthy=True))


def assert_main_stayed_in_the_service(ev: RunEvidence, main: str, start: float, end: float) -> None:
    """The MAIN's pod stayed Ready in every sample of [start, end] (its Memgraph never stopped): the
    property the agent faults break today, whatever the machine's speed (the I7 check after it judges
    the write outage, whose length does depend on how fast the agent restarts)."""
    out = [s.t - start for s in ev.timeline.samples if s.pod == main and start <= s.t <= end and not s.ready]
    assert not out, (f"{main}, a healthy MAIN, was out of the Service (not Ready) in {len(out)} samples, "
                     f"from {min(out):.1f}s to {max(out):.1f}s after the fault")


@pytest.mark.xfail(strict=True, reason="the MAIN's agent crash takes the MAIN out of the Service: the "
                   "agent's readiness gates pod Ready, so writes stop until the agent is back (I7)")
def test_main_agent_killed_once_costs_no_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=24)
    main = sc.main()
    t0 = time.monotonic()
    faults.kill_agent(sc.cluster, main, flog=sc.flog)
    wait_running_again(sc, main, "agent", 1, SLACK_S)
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(main), SLACK_S, f"{main} Ready again")
    t1 = time.monotonic()
    _agent_outage(sc, t0)
    sc.converge()
    ev = sc.finish()
    assert_main_stayed_in_the_service(ev, main, t0, t1)
    assert sc.main() == main and not ev.timeline.failovers
    assert ev.lost_acked_writes == 0
    assert ev.report.ok, sc.failure_text(ev)


@pytest.mark.long
@pytest.mark.xfail(strict=True, reason="a crash-looping agent on the MAIN keeps the MAIN out of the Service "
                   "for its whole back-off: the agent's readiness gates pod Ready (I7)")
def test_main_agent_crash_looping_costs_no_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=25)
    main = sc.main()
    t = sc.cluster.timings
    t0 = time.monotonic()
    for n in range(1, 4):  # killed as soon as it runs again: restarts after 0 s, 10 s, 20 s of back-off
        faults.kill_agent(sc.cluster, main, flog=sc.flog)
        wait_running_again(sc, main, "agent", n, t.backoff_initial_s * 2**n + SLACK_S)
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(main), SLACK_S, f"{main} Ready again")
    t1 = time.monotonic()
    _agent_outage(sc, t0)
    sc.converge()
    ev = sc.finish()
    assert_main_stayed_in_the_service(ev, main, t0, t1)
    assert ev.lost_acked_writes == 0
    assert ev.report.ok, sc.failure_text(ev)


@pytest.mark.xfail(strict=True, reason="with the kubelet of the MAIN's node dead, the node controller "
                   "marks the MAIN's pod not Ready after the node grace: the Service drops a healthy MAIN "
                   "and nothing fails over (its Memgraph still answers), so writes stop until eviction (I7)")
def test_kubelet_dead_on_the_mains_node_costs_no_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=26)
    main = sc.main()
    t = sc.cluster.timings
    t0 = time.monotonic()
    with faults.kubelet_down(sc.cluster, main, flog=sc.flog):
        bound = t.node_grace_s + t.node_monitor_period_s + SLACK_S
        sc.cluster.wait_for(lambda: not sc.cluster.pod_ready(main), bound, f"{main} marked not Ready")
        sc.flog.add(f"{main} not Ready (node unreachable) after {time.monotonic() - t0:.1f}s")
        time.sleep(t.lease_duration_s + t.failover_after_s + t.reconcile_interval_s * 2)
        assert sc.cluster.runtime(main).container_running("memgraph"), "the containers run on"
    _agent_outage(sc, t0)
    sc.converge()
    ev = sc.finish()
    assert ev.lost_acked_writes == 0
    assert ev.report.ok, sc.failure_text(ev)

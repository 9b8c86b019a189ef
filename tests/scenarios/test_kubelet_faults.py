"""Scenarios of the kubelet at the chart's timings: Memgraph crashing on the MAIN (restarted by the
kubelet, once and in a crash loop), Memgraph hung on the MAIN, the MAIN's agent killed once and
crash-looping, and the kubelet of the MAIN's node dead.

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py), on the
chart's timings at the suite's time scale (tests/conftest.py). A scenario that shows a product defect is
a strict xfail naming the behaviour: the fix belongs to the HA-defects issue. The agent and kubelet
faults cost no write since issue 16 item 1 (the client Service follows the role label and publishes
not-ready addresses, the agent has no readiness probe): they pin that.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from sim.cluster import SimCluster
from sim.runs import RunEvidence
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
    # The client follows docs/operations.md (reconnect on "forbidden on the replica"). The fence kills the
    # hung MAIN, its kubelet restarts it at once, and a connection the writer opens in the EndpointSlice
    # delay after the label moved reaches it: it is demoted by its guard a moment later and a pooled
    # connection then stays pinned to it (the pinned-connection defect, test_pooled_clients.py's strict
    # xfail; seen here in 2 of 13 runs with the default writer). This scenario judges the failover.
    sc = scenario(seed=23, reconnect_on_read_only=True)
    old, sync = sc.main(), sc.sync_replica()
    t = sc.cluster.timings
    with faults.hang(sc.cluster, old, "memgraph", flog=sc.flog):
        # its tcpSocket probes pass (the kernel accepts for a stopped process) and the pod stays in the
        # Service by its label: only the leader, its Memgraph silent, moves the MAIN
        new = sc.wait_main(lambda m: m != old, t.lease_duration_s + t.failover_after_s + SLACK_S,
                           "failover away from the hung MAIN")
        assert new == sync
        sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica"


def assert_main_kept_taking_writes(ev: RunEvidence, main: str, start: float, end: float) -> None:
    """While only the MAIN's agent was down, the MAIN kept its role and its `main` label in every sample
    (the client Service routes by the label and publishes not-ready addresses: the pod may be NotReady,
    a container not running) and no write sent in [start, end] failed."""
    off = [round(s.t - start, 2) for s in ev.timeline.samples
           if s.pod == main and start <= s.t <= end and (s.role != "main" or s.label != "main")]
    assert not off, f"{main} lost its role or label while only its agent was down: {off[:5]} s in"
    during = [a for a in ev.timeline.attempts if start <= a.t_start and a.t_end <= end]
    failed = [a for a in during if not a.acked]
    assert during and not failed, (f"{len(failed)} of {len(during)} writes failed while only the MAIN's "
                                   f"agent was down: {[(a.error_class, a.message[:80]) for a in failed[:5]]}")


def assert_agent_outage_cost_nothing(sc: Scenario, main: str, start: float, end: float) -> None:
    """After the MAIN's agent (or its node's kubelet) was down in [start, end]: the cluster converges,
    I1-I7 hold, no acknowledged write is lost, the MAIN kept taking writes throughout, and it is still the
    MAIN, with no failover."""
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert_main_kept_taking_writes(ev, main, start, end)
    assert sc.main() == main and not ev.timeline.failovers


def test_main_agent_killed_once_costs_no_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=24)
    main = sc.main()
    assert sc.writer is not None
    acked0 = len(sc.writer.acked_ids())
    t0 = time.monotonic()
    faults.kill_agent(sc.cluster, main, flog=sc.flog)
    wait_running_again(sc, main, "agent", 1, SLACK_S)
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(main), SLACK_S, f"{main} Ready again")
    # the agent may be back within tens of milliseconds: the window runs on until writes were sent in it
    assert sc.writer.wait_acks(acked0 + 10, SLACK_S), "the writer acknowledged 10 writes after the kill"
    assert_agent_outage_cost_nothing(sc, main, t0, time.monotonic())


@pytest.mark.long
def test_main_agent_crash_looping_costs_no_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=25)
    main = sc.main()
    t = sc.cluster.timings
    t0 = time.monotonic()
    for n in range(1, 4):  # killed as soon as it runs again: restarts after 0 s, 10 s, 20 s of back-off
        faults.kill_agent(sc.cluster, main, flog=sc.flog)
        wait_running_again(sc, main, "agent", n, t.backoff_initial_s * 2**n + SLACK_S)
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(main), SLACK_S, f"{main} Ready again")
    assert_agent_outage_cost_nothing(sc, main, t0, time.monotonic())


def test_kubelet_dead_on_the_mains_node_costs_no_write(scenario: MakeScenario) -> None:
    """The node controller marks the MAIN's pod not Ready after the node grace (its kubelet reports
    nothing), its containers run on: the client Service keeps routing by the role label (it publishes
    not-ready addresses) and nobody fails over a MAIN whose Memgraph answers."""
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
    assert_agent_outage_cost_nothing(sc, main, t0, time.monotonic())

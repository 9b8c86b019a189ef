"""Scenarios: the rolling restart, kill -9 of the MAIN's Memgraph, kill -9 of the leader's agent.

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py) and
asserts the report and the scenario's own outcome. Fixed seeds; the chart's timings on the suite's time
scale (tests/conftest.py).
"""

from __future__ import annotations

import time

from sim import faults
from sim.runs import rolling_restart
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running


def test_rolling_restart_keeps_every_acked_write(scenario: MakeScenario) -> None:
    sc = scenario(seed=1)
    old_main = sc.main()
    steps = rolling_restart(sc.cluster, sc.writer, progress=lambda line: sc.flog.add(line.strip()))
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert [s.pod for s in steps] == list(reversed(sc.cluster.pod_names()))
    moved = [s for s in steps if s.main_before != s.main_after]
    assert [s.main_before for s in moved] == [old_main], "the MAIN moved once, off the restarted MAIN"
    assert len(sc.timeline.prestops) >= 3 and all(r.exit_code == 0 for r in sc.timeline.prestops)


def test_kill_main_fails_over_to_the_strict_sync_replica(scenario: MakeScenario) -> None:
    sc = scenario(seed=2)
    old, sync = sc.main(), sc.sync_replica()
    assert str(sc.cluster.status()["cluster"]["sync_mode"]).upper() == "STRICT_SYNC"
    faults.kill_memgraph(sc.cluster, old, hold=True, flog=sc.flog)  # CrashLoopBackOff keeps it down
    new = sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S, "failover")
    assert new == sync, f"failover went to {new}, not to the STRICT_SYNC replica {sync}"
    sc.wait_acks_after(time.monotonic(), 10, SLACK_S)
    faults.release(sc.cluster, old, flog=sc.flog)  # the kubelet restarts the old MAIN's container
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica", "the old MAIN rejoined as a replica"
    assert old in sc.cluster.status()["cluster"]["ready_replicas"]


def test_kill_leader_agent_another_agent_takes_over(scenario: MakeScenario) -> None:
    # the killed agent's pod is NotReady at once (a container not running); writes go on regardless
    sc = scenario(seed=3)
    leader = sc.cluster.status()["cluster"]["leader"]
    main = sc.main()
    killed_at = time.monotonic()
    faults.kill_agent(sc.cluster, leader, hold=True, flog=sc.flog)  # kept down until another agent leads

    def new_leader() -> bool:
        return sc.cluster.status(timeout_s=1.0)["cluster"]["leader"] not in (None, leader)

    bound = sc.cluster.timings.lease_duration_s + SLACK_S
    took = sc.cluster.wait_for(new_leader, bound, "another agent leads")
    sc.flog.add(f"another agent leads after {took:.1f}s")
    led_at = time.monotonic()
    faults.release(sc.cluster, leader, flog=sc.flog)  # the kubelet restarts the agent container
    sc.wait_acks_after(led_at, 20, SLACK_S)
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() == main, "losing the leader's agent does not move the MAIN"
    assert not ev.timeline.failovers
    acked_leaderless = [a for a in ev.timeline.attempts if a.acked and killed_at <= a.t_end <= led_at]
    assert acked_leaderless, "writes went on while no agent led"

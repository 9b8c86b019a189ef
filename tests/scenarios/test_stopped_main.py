"""Scenario: the MAIN's Memgraph is stopped (SIGSTOP: a frozen process, a stunned VM); pod and agent alive.

A stopped Memgraph is dead for failover purposes (issue 16 item 4): it answers no Bolt query, not even
SHOW REPLICATION ROLE on its high-priority worker, so the leader sees it unreachable. Its kernel still
accepts TCP on the Bolt port, so the pod's readiness probe passes and the pod stays Ready: after
failoverAfter the leader asks the old MAIN's agent to fence it; the agent sees every thread of the process
in state `T` through the pod's shared process namespace, SIGKILLs it and confirms, and only then is the
sync replica promoted. The agents fence each other with the token the chart generates (HA_FENCE_TOKEN;
the emulated cluster does the same): nothing is configured here. Bound: docs/architecture.md "Liveness:
slow is not down" -- failoverAfter plus one reconcile interval, the observation's bound and the fence; the
scenario allows generous slack on top.
"""

from __future__ import annotations

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running


def test_main_whose_memgraph_is_stopped_is_fenced_and_failed_over(scenario: MakeScenario) -> None:
    sc = scenario(seed=33)
    old = sc.main()
    t = sc.cluster.timings
    # docs/architecture.md: failoverAfter + reconcile interval + the observation's bound (2 x 1.5 s + 0.5 s)
    # + the fence of a stopped process (< 1 s); the pod stays Ready (its TCP port accepts) all along
    bound = t.failover_after_s + t.reconcile_interval_s + 3.5 + 1.0
    faults.pause_memgraph(sc.cluster, old, flog=sc.flog)
    new = sc.wait_main(lambda m: m != old, bound + SLACK_S, "failover from the stopped MAIN")
    seen: list[str] = []

    def failover_reported() -> bool:  # the status document follows the record within a cycle or two
        seen.append((sc.cluster.status()["cluster"].get("last_failover") or {}).get("text", ""))
        return bool(seen[-1])

    sc.cluster.wait_for(failover_reported, SLACK_S, "the failover in the status document")
    assert "fence: confirmed" in seen[-1], f"the failover did not confirm the fence of {old}: {seen[-1]!r}"
    assert not sc.cluster.runtime(old).memgraph.stopped, "the fenced Memgraph is still a stopped process"
    faults.resume_memgraph(sc.cluster, old, flog=sc.flog)  # a no-op on the restarted process
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() == new

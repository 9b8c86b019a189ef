"""Scenarios of replica registration after a failover (issue 16 item 2): an unreachable pod that is not
the old MAIN is no reason to withhold a REGISTER by the record's MAIN.

Memgraph's main-UUID rule (reference memgraph-replication.md 3.3): a replica accepts SwapMainUUID from
whoever registers it, so a REGISTER by the record's MAIN takes the replica from any other MAIN. Waiting for
a crash-looping third pod instead leaves the new MAIN with no replica: it acknowledges writes that exist
nowhere else, and a second loss has no candidate.
"""

from __future__ import annotations

import time

import pytest

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 20.0  # generous: 2 shared cores, other suites running
CYCLES = 2  # the bound: the returning old MAIN is a ready replica within two reconcile cycles


@pytest.mark.long
def test_crash_looping_third_pod_does_not_keep_the_old_main_unregistered(scenario: MakeScenario) -> None:
    sc = scenario(seed=16)
    old, sync = sc.main(), sc.sync_replica()
    third = next(p for p in sc.replicas() if p != sync)
    faults.kill_memgraph(sc.cluster, third, hold=True, flog=sc.flog)  # CrashLoopBackOff: stays down
    sc.cluster.wait_for(lambda: not sc.cluster.pod_ready(third), SLACK_S, f"{third} NotReady")
    faults.kill_memgraph(sc.cluster, old, hold=True, flog=sc.flog)
    new = sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S, "failover")
    assert new == sync, f"failover went to {new}, not to the STRICT_SYNC replica {sync}"
    faults.release(sc.cluster, old, flog=sc.flog)  # the old MAIN's container restarts; the third does not
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(old), SLACK_S, f"{old} back and Ready")
    back = time.monotonic()

    def old_main_is_the_ready_sync_replica() -> bool:
        c = sc.cluster.status(timeout_s=1.0)["cluster"]
        return c.get("sync_replica") == old and old in (c.get("ready_replicas") or [])

    bound = CYCLES * sc.cluster.timings.reconcile_interval_s + SLACK_S
    took = sc.cluster.wait_for(old_main_is_the_ready_sync_replica, bound,
                               f"{old} registered on {new} as its ready sync replica while {third} is down")
    sc.flog.add(f"{old} ready sync replica {took:.1f}s after its pod was Ready")
    sc.wait_acks_after(time.monotonic(), 10, SLACK_S)
    faults.release(sc.cluster, third, flog=sc.flog)
    sc.converge()
    ev = sc.finish(extra={"old_main_ready_sync_after_s": round(took, 3), "pod_ready_at_s": back - sc.t0})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert str(sc.cluster.status()["cluster"]["sync_mode"]).upper() == "STRICT_SYNC"

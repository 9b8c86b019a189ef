"""Scenarios of replica registration: after a failover (issue 16 item 2), an unreachable pod that is not
the old MAIN is no reason to withhold a REGISTER by the record's MAIN; and a departing replica is dropped
while its Memgraph still answers, never later at its silent old address (memgraph#1526).

Memgraph's main-UUID rule (reference memgraph-replication.md 3.3): a replica accepts SwapMainUUID from
whoever registers it, so a REGISTER by the record's MAIN takes the replica from any other MAIN. Waiting for
a crash-looping third pod instead leaves the new MAIN with no replica: it acknowledges writes that exist
nowhere else, and a second loss has no candidate.
"""

from __future__ import annotations

import time

import pytest

from coordinator.core.model import replica_name
from sim import faults
from sim.memgraph import audit as memgraph_audit
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


def test_a_departing_replica_is_dropped_while_its_memgraph_still_answers(scenario: MakeScenario) -> None:
    # The rolling restart's write pause on every ASYNC replica (1.2-2.4 s): the leader kept the departing
    # replica's row until its next incarnation came back at a new address, then dropped the old, silent
    # address, and that DROP held the MAIN's commits (memgraph#1526). Now the row goes while the pod is
    # terminating and its Memgraph still answers; the new incarnation is registered fresh.
    sc = scenario(seed=17)
    main, sync = sc.main(), sc.sync_replica()
    departing = next(p for p in sc.replicas() if p != sync)
    old = sc.cluster.runtime(departing)
    old_uid, old_ip, main_audit = old.uid, old.ip, sc.cluster.runtime(main).memgraph.audit_file
    assert main_audit is not None
    deleted = time.monotonic()
    faults.delete_pod(sc.cluster, departing, flog=sc.flog)
    faults.wait_pod_gone(sc.cluster, departing, old_uid, SLACK_S)
    gone = time.monotonic()  # the old incarnation's Memgraph had stopped by now
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    row = replica_name(departing)
    cmds = [c for c in memgraph_audit.read(main_audit) if c.t > deleted and not c.error]
    drops = [c.t - deleted for c in cmds if c.command == f"DROP REPLICA {row}"]
    registers = [c for c in cmds if c.command.startswith(f"REGISTER REPLICA {row} ")]
    assert drops, f"{row} was never dropped from {main}: {[c.command for c in cmds]}"
    assert all(t < gone - deleted for t in drops), (
        f"DROP REPLICA {row} at {drops} s after the deletion; its old incarnation was gone at "
        f"{gone - deleted:.2f} s: a DROP of a silent address holds the MAIN's commits")
    new = sc.cluster.runtime(departing)
    new_ip, port = new.ip, new.ports["replication"]
    assert new_ip != old_ip and registers and registers[-1].command.endswith(f"TO {new_ip}:{port}"), (
        f"the new incarnation ({new_ip}) was not registered: {[c.command for c in registers]}")

"""Scenarios with volumes that outlive their pods: several failovers in a row where the old MAIN comes
back with writes no later MAIN has (prior art 001 issue 7), and a pod re-created with an empty volume
that starts as MAIN (Memgraph's default) while a failover is pending (prior art 001 issue 5).

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py).
"""

from __future__ import annotations

import time
from typing import Any

from sim import faults
from sim.timeline import DivergenceReport
from sim.timescale import TimeScale
from sim.workload import read_ids
from tests.scenarios.conftest import MakeScenario
from tests.scenarios.harness import Scenario

SLACK_S = 30.0


def _diverged(sc_status: dict[str, Any]) -> list[str]:
    return list(sc_status.get("cluster", {}).get("diverged") or [])


def test_failovers_in_a_row_old_main_returns_diverged(scenario: MakeScenario) -> None:
    sc = scenario(seed=8, reseed="manual")  # the quarantine under `manual`; test_reseed.py covers `auto`
    first, sync = sc.main(), sc.sync_replica()
    third = next(p for p in sc.cluster.pod_names() if p not in (first, sync))
    # failover 1: the MAIN's Memgraph dies and stays down (CrashLoopBackOff); the sync replica takes over
    faults.kill_memgraph(sc.cluster, first, hold=True, flog=sc.flog)
    sc.wait_main(lambda m: m == sync, sc.cluster.timings.failover_after_s + SLACK_S, f"failover 1 to {sync}")
    # meanwhile the old MAIN's volume gets writes no later MAIN sees (an old MAIN that kept writing)
    unique = [f"old-main-{i}" for i in range(5)]
    held = faults.write_offline(sc.cluster, first, unique, flog=sc.flog)
    sc.timeline.injected_divergence.append(first)
    sc.timeline.diverged_ids_before[first] = tuple(sorted(held))
    faults.release(sc.cluster, first, flog=sc.flog)  # the old MAIN returns with its unique writes
    sc.cluster.wait_for(lambda: first in _diverged(sc.cluster.status()), SLACK_S,
                        f"{first} reported diverged")
    sc.timeline.divergence_reports.append(DivergenceReport(time.monotonic(), first, "status"))
    # failover 2: the next sync replica is designated and ready, then the second MAIN dies too
    sc.cluster.wait_for(lambda: sc.cluster.status()["cluster"]["sync_replica"] == third, SLACK_S,
                        f"{third} designated sync replica")
    sc.cluster.wait_for(lambda: third in sc.cluster.status()["cluster"]["ready_replicas"], SLACK_S,
                        f"{third} ready")
    faults.kill_memgraph(sc.cluster, sync, hold=True, flog=sc.flog)
    bound = sc.cluster.timings.failover_after_s + SLACK_S
    sc.wait_main(lambda m: m == third, bound, f"failover 2 to {third}")
    faults.release(sc.cluster, sync, flog=sc.flog)
    sc.converge(pods=[p for p in sc.cluster.pod_names() if p != first])
    registers_before = _register_lines(sc, first)
    time.sleep(3.0)  # several reconcile cycles: a register loop would show here
    registers_after = _register_lines(sc, first)
    rt = sc.cluster.runtime(first)
    on_old = read_ids(rt.ip, sc.cluster.ports["bolt"])
    ev = sc.finish(extra={"register_attempts_of_diverged": registers_after})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    full = sc.cluster.status()
    status = full["cluster"]
    assert status["main"] == third and first in _diverged(full)
    assert first not in status["ready_replicas"]
    assert set(unique) <= on_old, "the diverged pod's own writes were not deleted"
    assert registers_after - registers_before <= 1, f"register loop on {first}: {registers_after} attempts"


def _register_lines(sc: Scenario, pod: str) -> int:
    """REGISTER attempts of `pod` logged by every agent (`msg="act" action=register replica=<name> `)."""
    logs = sc.cluster.workdir / "logs"
    needle = f'msg="act" action=register replica={pod.replace("-", "_")} '
    return sum(p.read_text(errors="replace").count(needle) for p in logs.glob("*.agent.log"))


def test_empty_pod_starting_as_main_while_a_failover_is_pending(scenario: MakeScenario) -> None:
    # the failover is still pending when the new pod is up: failoverAfter 8 s on the suite's time scale
    sc = scenario(seed=9, values={"haAgent": {"failoverAfterSeconds": round(TimeScale.from_env().real(8.0))}})
    old, sync = sc.main(), sc.sync_replica()
    uid = sc.cluster.pod_uid(old)
    faults.delete_pod(sc.cluster, old, run_hook=False, grace_s=0, hold=True, flog=sc.flog)
    faults.wait_pod_gone(sc.cluster, old, uid, SLACK_S)
    sc.cluster.wipe_pvc(old)
    sc.flog.add(f"volume of {old} wiped: its next Memgraph starts empty, as MAIN")
    faults.release(sc.cluster, old, flog=sc.flog)
    bound = sc.cluster.timings.failover_after_s + SLACK_S
    new = sc.wait_main(lambda m: m != old, bound, "failover to the sync replica")
    assert new == sync
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica"
    assert not sc.cluster.dual_main_seen

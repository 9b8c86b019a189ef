"""Diverged pods repair themselves (issue 17, I4): the emulated cluster under `divergence.reseed=auto`, a
writer through the client Service and the I1-I7 checker, which reads the archives on the volumes (a
diverged pod's history must be kept there, never deleted).

- the MAIN killed at each step of the STRICT_SYNC two-phase commit (the emulator's commit control,
  reference 7.1-7.2): after the failover the old MAIN comes back clean or diverged; either way the cluster
  returns to full redundancy (every pod a ready replica, `behind` 0) with no operator;
- a re-seed refused for lack of space: the pod stays quarantined, the reason is in the status, nothing is
  moved or deleted.

Must never: loop without a bound, leave a process behind (the fixture tears the cluster down), or assert
a speed target (bounds here are functional, with generous slack on 2 cores).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sim import faults
from sim.archives import archive_dirs
from tests.scenarios.conftest import MakeScenario
from tests.scenarios.harness import Scenario

SLACK_S = 60.0
REDUNDANCY_S = 120.0


def _status(sc: Scenario) -> dict[str, Any]:
    return sc.cluster.status(timeout_s=2.0)


def full_redundancy(sc: Scenario) -> bool:
    """No divergence, no re-seed under way, every pod but the MAIN a ready replica with behind 0, and the
    designated sync replica among them."""
    try:
        doc = _status(sc)
    except Exception:
        return False
    c = doc.get("cluster", {})
    rows = [p.get("replica") or {} for p in doc.get("pods", []) if p.get("name") != c.get("main")]
    return (not c.get("diverged") and not c.get("reseed") and bool(c.get("sync_replica"))
            and len(rows) == sc.cfg.replicas - 1
            and all(r.get("status") == "ready" and r.get("behind") == 0 for r in rows))


def _volume(sc: Scenario, pod: str) -> Any:
    return sc.cluster.workdir / "pvc" / pod / "lib"


@pytest.mark.parametrize("step", ["wal_written", "votes_in", "local_commit", "finalized"])
def test_main_killed_at_a_step_of_the_commit_comes_back_a_full_replica_with_no_operator(
        scenario: MakeScenario, step: str) -> None:
    sc = scenario(seed=17)
    old = sc.main()
    rt = sc.cluster.runtime(old)
    rt.held.add("memgraph")  # the kubelet restarts it only once the failover is done (release below)
    faults.commit_fault(sc.cluster, old, step, "crash", flog=sc.flog)
    sc.cluster.wait_for(lambda: not rt.memgraph.alive, 10.0, f"{old} crashed at {step}")
    sc.wait_main(lambda m: m != old, sc.cfg.failover_after_s + SLACK_S, f"failover from {old}")
    faults.release(sc.cluster, old, flog=sc.flog)
    sc.cluster.wait_for(lambda: full_redundancy(sc), REDUNDANCY_S, "full redundancy again")
    sc.converge()
    ev = sc.finish(extra={"step": step, "archives": [d.name for d in archive_dirs(_volume(sc, old))]})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0


def test_reseed_refused_for_lack_of_space_keeps_the_pod_quarantined_and_says_why(
        scenario: MakeScenario) -> None:
    # the reserve asks for more free space than any volume has: every re-seed is refused
    sc = scenario(seed=18, extra_agent_env={"HA_RESEED_RESERVE_BYTES": str(1 << 60)})
    old = sc.main()
    rt = sc.cluster.runtime(old)
    rt.held.add("memgraph")
    faults.commit_fault(sc.cluster, old, "local_commit", "crash", flog=sc.flog)
    sc.cluster.wait_for(lambda: not rt.memgraph.alive, 10.0, f"{old} crashed after its local commit")
    sc.wait_main(lambda m: m != old, sc.cfg.failover_after_s + SLACK_S, f"failover from {old}")
    faults.release(sc.cluster, old, flog=sc.flog)
    # the emulator keeps the unanswered transaction (7.2), so the old MAIN comes back diverged
    sc.cluster.wait_for(lambda: old in (_status(sc)["cluster"].get("diverged") or []), SLACK_S,
                        f"{old} reported diverged")
    refused = {}

    def said_why() -> bool:
        pod = next(p for p in _status(sc)["pods"] if p["name"] == old)
        refused.update(pod.get("data") or {})
        return refused.get("outcome") == "refused"

    sc.cluster.wait_for(said_why, SLACK_S, f"the re-seed of {old} refused with the reason")
    time.sleep(3.0)  # several cycles: a refused re-seed is not retried in a loop
    doc = _status(sc)
    assert old in doc["cluster"]["diverged"] and doc["cluster"]["reseed"]["step"] == "halted"
    assert "bytes free, a fresh copy needs" in str(refused["reason"])
    assert archive_dirs(_volume(sc, old)) == []  # nothing moved
    sc.converge(pods=[p for p in sc.cluster.pod_names() if p != old])
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)

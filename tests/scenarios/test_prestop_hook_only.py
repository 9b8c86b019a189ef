"""Scenario of issue 16 item 10: the switchover of a deleted MAIN pod driven by its preStop hook alone.

In every pod deletion seen before this scenario the leader's pod watch showed the MAIN's deletionTimestamp
and finished the switchover before the hook's request reached the MAIN's agent, so the hook-driven path
never ran. With it, the MAIN's agent (which does not lead) asks the leader (`POST /api/v1/handover`,
agent/handover.py), which reads the pod from the API server and runs the switchover at once.
Here the leader learns of pod changes late: the API emulator's stale view (sim.kube.faults, keyed by the
leader's pod address on the namespaced bed) delays its pod LIST and WATCH by DELAY_S, far longer than a
switchover takes. The MAIN's pod (not the leader's) is deleted; its preStop hook calls its agent at once.
Expected (DESIGN "Switchover" step 1: "for the MAIN's pod it asks the coordinator for a switchover and
waits"): the MAIN moves within the same pause as other switchovers -- long before the leader's late view
can show the deletion -- with no acknowledged write lost and I1-I7 holding. The write pause through the
Service is measured and reported (not asserted).
"""

from __future__ import annotations

import datetime
import time
from pathlib import Path

import pytest

from sim import faults
from sim.runs import max_pause_between
from tests.scenarios.conftest import MakeScenario, needs_partitions

pytestmark = needs_partitions  # per-pod source addresses need the namespaced bed

SLACK_S = 30.0
DELAY_S = 30.0  # the leader's pod view is this late: a switchover takes ~1-3 s here


def _leader(sc) -> str:  # type: ignore[no-untyped-def]
    return str(sc.cluster.status(timeout_s=2.0)["cluster"]["leader"] or "")


def _wall(stamp: object) -> float:
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()


def _registered_before_recreated(sc, pod: str, since_wall: float) -> list[str]:  # type: ignore[no-untyped-def]
    """ReplicaRegistered Events of `pod` from `since_wall` until its re-created incarnation was created:
    registrations of the departing incarnation, whose address goes silent once it is gone."""
    ns = sc.cfg.namespace
    created = _wall(sc.cluster.kube.get("Pod", ns, pod)["metadata"]["creationTimestamp"])
    return [f"{e.get('firstTimestamp')}: {e.get('message')}" for e in sc.cluster.kube.list("Event", ns)
            if e.get("reason") == "ReplicaRegistered" and e["involvedObject"].get("name") == pod
            and since_wall <= _wall(e.get("firstTimestamp")) < created]


def _hook_record(log_dir: Path) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted(log_dir.glob("prestop-*.log")))


@pytest.mark.long
@pytest.mark.timeout(360)
def test_main_pod_deletion_with_the_leaders_pod_view_late_is_switched_over_by_the_hook(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=71)  # the chart's preStop budget (600 s x the time scale) is far above DELAY_S
    c, main = sc.cluster, sc.main()
    leader = _leader(sc)
    if leader == main:  # the MAIN's own agent leads: move leadership off it. Held down until another
        # agent leads: a restarted agent of the same pod is the same election identity and renews its Lease
        faults.kill_agent(c, main, hold=True, flog=sc.flog)
        c.wait_for(lambda: _leader(sc) not in ("", main), c.timings.lease_duration_s + SLACK_S,
                   "another agent leads")
        faults.release(c, main, flog=sc.flog)
        sc.converge(final=False)
        leader = _leader(sc)
    sc.flog.add(f"leader {leader}, MAIN {main}")
    leader_ip = c.runtime(leader).ip
    log_dir = c.workdir / "pvc" / main / "log"
    c.kube.set_stale_view(leader_ip, DELAY_S)
    sc.flog.add(f"the leader's pod list and watch are {DELAY_S:g}s late (stale view of {leader_ip})")
    try:
        with sc.planned_change():
            deleted_wall, deleted_at = time.time(), time.monotonic()
            faults.delete_pod(c, main, flog=sc.flog)
            new = sc.wait_main(lambda m: m != main, DELAY_S + SLACK_S, "a new MAIN after the deletion")
            moved_after = time.monotonic() - deleted_at
        sc.flog.add(f"new MAIN {new} {moved_after:.1f}s after the deletion")
    finally:
        c.kube.clear_stale_view(leader_ip)
        sc.flog.add("the leader's pod view is current again")
    c.wait_for(lambda: c.pod_ready(main), 60.0, f"{main} re-created and Ready")
    sc.converge()
    back = sc.wait_acks_after(deleted_at + moved_after, 1, SLACK_S) + deleted_at + moved_after
    pause = max_pause_between(sc.writer, deleted_at, back)
    record = _hook_record(log_dir)
    ev = sc.finish(extra={"moved_after_delete_s": round(moved_after, 3), "write_pause_s": round(pause, 3),
                          "leader_view_delay_s": DELAY_S})
    print(f"\nhook-driven switchover: MAIN moved {moved_after:.3f}s after the deletion, write pause "
          f"{pause:.3f}s (the leader's pod view {DELAY_S:g}s late)")
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert "START" in record and "MAIN moved to" in record, f"the hook's record shows no hand-over:\n{record}"
    hooks = [r for r in ev.timeline.prestops if r.pod == main]
    assert hooks and hooks[0].end_wall is not None
    # the leader's late watch still shows the departing pod as it was: the hand-over's quorum read must
    # keep it from being registered on the new MAIN (its re-created incarnation has a new address, and the
    # DROP REPLICA of the old, silent one stalls the MAIN's commits: reference memgraph#1526)
    early = _registered_before_recreated(sc, main, deleted_wall)
    assert not early, f"the departing {main} was registered as a replica of {new}: {early}"
    assert "asked the leader for the hand-over: done" in record, f"the request did not move it:\n{record}"
    assert moved_after < DELAY_S, (
        f"the MAIN moved {moved_after:.1f}s after the deletion, once the leader's {DELAY_S:g}s-late pod view "
        f"could show it, not on the hook's request; write pause {pause:.2f}s; hook record:\n{record}")

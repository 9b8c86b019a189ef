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
from neo4j import GraphDatabase

from sim import faults
from sim.archives import archive_dirs
from tests.scenarios.conftest import MakeScenario
from tests.scenarios.harness import Scenario

SLACK_S = 60.0
REDUNDANCY_S = 120.0


def _status(sc: Scenario) -> dict[str, Any]:
    return sc.cluster.status(timeout_s=2.0)


def full_redundancy(sc: Scenario) -> bool:
    """Healthy (every other pod a ready replica of the MAIN, a ready sync replica, no divergence) with no
    re-seed under way: a re-seed ends only once its pod was ready with behind 0."""
    try:
        c = _status(sc).get("cluster", {})
    except Exception:
        return False
    return bool(c.get("healthy")) and not c.get("diverged") and not c.get("reseed")


def _volume(sc: Scenario, pod: str) -> Any:
    return sc.cluster.workdir / "pvc" / pod / "lib"


# a cluster start, a failover and a re-seed on 2 loaded cores. Every scenario but the refusal (about 30 s)
# is `long`: `make scenarios` runs them, `make test` only the refusal.
pytestmark = pytest.mark.timeout(420)


@pytest.mark.long  # minutes: run by `make scenarios`
@pytest.mark.parametrize("step", ["wal_written", "votes_in", "local_commit", "finalized"])
def test_main_killed_at_a_step_of_the_commit_comes_back_a_full_replica_with_no_operator(
        scenario: MakeScenario, step: str) -> None:
    sc = scenario(seed=17)
    old = sc.main()
    rt = sc.cluster.runtime(old)
    rt.held.add("memgraph")  # the kubelet restarts it only once the failover is done (release below)
    faults.commit_fault(sc.cluster, old, step, "crash", flog=sc.flog)
    sc.cluster.wait_for(lambda: not rt.memgraph.alive, 10.0, f"{old} crashed at {step}")
    sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S, f"failover from {old}")
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
    sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S, f"failover from {old}")
    faults.release(sc.cluster, old, flog=sc.flog)
    # the emulator keeps the unanswered transaction (7.2), so the old MAIN comes back diverged
    sc.cluster.wait_for(lambda: old in (_status(sc)["cluster"].get("diverged") or []), SLACK_S,
                        f"{old} reported diverged")
    refused: dict[str, Any] = {}

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
    # the refused re-seed deleted the incarnation; its successor kept the files and runs as a quarantined
    # replica once its agent (a native sidecar) and then Memgraph started: seconds on loaded cores, and the
    # checker's I5 counts it (an unlabelled ready replica), so the run ends only once it is there
    def quarantined_replica() -> bool:
        role = sc.cluster.roles().get(old)
        return role is not None and role.role == "replica" and sc.cluster.pod_ready(old)

    sc.cluster.wait_for(quarantined_replica, SLACK_S, f"{old} runs again, a quarantined replica")
    sc.converge(pods=[p for p in sc.cluster.pod_names() if p != old])
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)


def _diverge_offline(sc: Scenario, pods: list[str]) -> None:
    """Give `pods` (replicas) a history no MAIN has: writes committed into their volumes while their
    Memgraph is held down (an old MAIN that kept writing); they come back diverged."""
    for pod in pods:
        faults.kill_memgraph(sc.cluster, pod, hold=True, flog=sc.flog)
    for pod in pods:
        held = faults.write_offline(sc.cluster, pod, [f"{pod}-own-{i}" for i in range(3)], flog=sc.flog,
                                    new_epoch=True)
        sc.timeline.injected_divergence.append(pod)
        sc.timeline.diverged_ids_before[pod] = tuple(sorted(held))
    for pod in pods:
        faults.release(sc.cluster, pod, flog=sc.flog)


@pytest.mark.long  # minutes: run by `make scenarios`
def test_two_diverged_pods_are_reseeded_one_at_a_time(scenario: MakeScenario) -> None:
    sc = scenario(seed=19)
    replicas = [p for p in sc.cluster.pod_names() if p != sc.main()]
    _diverge_offline(sc, replicas)
    seen: list[tuple[str, ...]] = []
    # the status still shows the healthy cluster of before until the leader observes the restarts
    sc.cluster.wait_for(lambda: bool(_status(sc)["cluster"].get("diverged")), SLACK_S, "divergence reported")

    def healed() -> bool:
        reseed = _status(sc)["cluster"].get("reseed") or {}
        busy = (reseed["pod"],) if reseed.get("step") in ("archive", "catchup") else ()
        if busy and (not seen or seen[-1] != busy):
            seen.append(busy)
        return full_redundancy(sc)

    sc.cluster.wait_for(healed, 2 * REDUNDANCY_S, "both diverged pods re-seeded")
    assert all(len(b) == 1 for b in seen) and {b[0] for b in seen} == set(replicas), seen
    for pod in replicas:
        assert archive_dirs(_volume(sc, pod)), f"{pod}: no archive"
    sc.converge()
    ev = sc.finish(extra={"reseed_order": [b[0] for b in seen]})
    assert ev.report.ok, sc.failure_text(ev)  # I4: each pod's own writes are in its archive


@pytest.mark.long  # minutes: run by `make scenarios`
def test_leader_killed_in_the_middle_of_a_reseed_the_next_leader_finishes_it(scenario: MakeScenario) -> None:
    sc = scenario(seed=20)
    pod = next(p for p in sc.cluster.pod_names() if p != sc.main())
    _diverge_offline(sc, [pod])
    def under_way() -> bool:
        return (_status(sc)["cluster"].get("reseed") or {}).get("step") in ("archive", "catchup")

    sc.cluster.wait_for(under_way, SLACK_S, f"re-seed of {pod} under way")
    leader = _status(sc)["cluster"]["leader"]
    faults.kill_agent(sc.cluster, leader, flog=sc.flog)  # the kubelet restarts it; another agent leads
    sc.cluster.wait_for(lambda: full_redundancy(sc), REDUNDANCY_S, "full redundancy after the leader died")
    sc.converge()
    ev = sc.finish(extra={"killed_leader": leader})
    assert ev.report.ok, sc.failure_text(ev)


@pytest.mark.long  # minutes: run by `make scenarios`
def test_new_main_restarting_before_its_first_write_never_takes_the_old_main_as_a_replica(
        scenario: MakeScenario) -> None:
    """Reference 7.2: the old MAIN keeps one unanswered transaction; the new MAIN crash-restarts before its
    first write. Its epoch may be lost, so the old MAIN must be re-seeded, never registered as it is."""
    sc = scenario(seed=21)
    assert sc.writer is not None
    sc.writer.stop()
    old = sc.main()
    rt = sc.cluster.runtime(old)
    rt.held.add("memgraph")
    host, port = rt.ip, sc.cluster.ports["bolt"]
    faults.commit_fault(sc.cluster, old, "local_commit", "crash", flog=sc.flog)
    with GraphDatabase.driver(f"bolt://{host}:{port}", auth=None, connection_timeout=3.0) as d, \
            pytest.raises(Exception), d.session() as s:  # noqa: B017 - the crash answers the client nothing
        s.run("CREATE (:W {id: 'unanswered-1', at: 0.0})").consume()
    # this test makes the old MAIN diverge on purpose (its unanswered write, outside the writer's record):
    # the checker expects it there and finds that write kept in its archive (I4: never deleted)
    sc.timeline.injected_divergence.append(old)
    sc.timeline.diverged_ids_before[old] = ("unanswered-1",)
    new = sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S,
                       f"failover from {old}")
    faults.kill_memgraph(sc.cluster, new, flog=sc.flog)  # before any write: the kubelet restarts it
    faults.release(sc.cluster, old, flog=sc.flog)
    sc.cluster.wait_for(lambda: full_redundancy(sc), REDUNDANCY_S, "full redundancy")
    ids_new = sc.cluster.runtime(sc.main()).ip
    with GraphDatabase.driver(f"bolt://{ids_new}:{port}", auth=None, connection_timeout=3.0) as d, \
            d.session() as s:
        on_main = {r["id"] for r in s.run("MATCH (n:W) RETURN n.id AS id")}
    assert "unanswered-1" not in on_main
    assert archive_dirs(_volume(sc, old)), f"{old} was not re-seeded"
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)

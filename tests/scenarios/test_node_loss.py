"""Scenarios of the MAIN's node lost, as the node lifecycle controller sees it: both variants (`freeze`:
the node stops, processes and kubelet; `partition`: it runs on, cut off, its kubelet reporting nothing),
with and without a force delete of the MAIN's pod.

Kubernetes' side (sim/nodes.py): the pod keeps its last status until the node-monitor grace period has
passed without a heartbeat, then it is marked not Ready; a delete leaves it Terminating (only its kubelet
removes it), so the StatefulSet makes no replacement until a force delete; the replacement then waits for
the volume until the old incarnation is gone (its node back) or the volume is force-detached (6 min).

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py), on the
chart's timings at the suite's time scale (tests/conftest.py).
"""

from __future__ import annotations

import time

import pytest

from coordinator.core.identity import pod_of
from sim import faults, leader_acts
from sim.archives import archive_dirs
from sim.bench_recovery import OldMainWatch
from sim.check_leaders import Actor, judge
from sim.kubelet import PodRuntime
from sim.nodes import NodeEvent
from tests.scenarios.conftest import MakeScenario, needs_partitions
from tests.scenarios.harness import Scenario

SLACK_S = 30.0  # real seconds: process starts on 2 shared cores


def failover_bound(sc: Scenario) -> float:
    t = sc.cluster.timings
    return t.node_grace_s + t.node_monitor_period_s + t.lease_duration_s + t.failover_after_s + SLACK_S


def marked_unreachable(sc: Scenario, node: str) -> bool:
    return any(n == node and e is NodeEvent.UNREACHABLE for _, n, e in sc.cluster.nodes.events)


def lose_the_main(sc: Scenario, old: str, sync: str) -> None:
    """Inside a node loss: the pod goes not Ready only through the node controller, then a failover."""
    node = sc.cluster.node_of(old)
    new = sc.wait_main(lambda m: m != old, failover_bound(sc), f"failover away from {old}")
    assert new == sync, f"failover went to {new}, not to the STRICT_SYNC replica {sync}"
    assert marked_unreachable(sc, node), f"{old} turned not Ready only once {node} was declared unreachable"
    sc.wait_acks_after(time.monotonic(), 20, SLACK_S)


@pytest.mark.parametrize("variant", ["freeze", pytest.param("partition", marks=pytest.mark.long)])
def test_main_node_lost_then_back_the_old_main_rejoins(scenario: MakeScenario, variant: str) -> None:
    sc = scenario(seed=31 if variant == "freeze" else 32)
    old, sync = sc.main(), sc.sync_replica()
    uid = sc.cluster.pod_uid(old)
    with faults.node_loss(sc.cluster, old, variant, flog=sc.flog):
        lose_the_main(sc, old, sync)
        assert sc.cluster.pod_uid(old) == uid, "no replacement while the pod object exists"
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.pod_uid(old) == uid, "the same incarnation came back"
    assert sc.cluster.roles()[old].role == "replica", "the old MAIN rejoined as a replica"


def test_main_node_frozen_deleted_pod_stays_terminating_until_force_delete(scenario: MakeScenario) -> None:
    sc = scenario(seed=33)
    c = sc.cluster
    old, sync = sc.main(), sc.sync_replica()
    uid = c.pod_uid(old)
    with faults.node_loss(c, old, "freeze", flog=sc.flog):
        lose_the_main(sc, old, sync)
        faults.delete_pod(c, old, flog=sc.flog)
        time.sleep(c.timings.node_grace_s)  # nothing can finish the deletion: no kubelet
        assert c.pod_uid(old) == uid, "a deleted pod on a lost node stays Terminating"
        faults.force_delete(c, old, flog=sc.flog)
        c.wait_for(lambda: c.pod_uid(old) not in (None, uid), SLACK_S, "the StatefulSet replaces it")
        new_uid = c.pod_uid(old)
        time.sleep(2.0)
        assert not c.pod_ready(old), "the replacement waits for the volume the lost incarnation holds"
    # the node is back: its kubelet kills what the API no longer has; the volume is free again
    c.wait_for(lambda: c.pod_ready(old), SLACK_S * 2, f"the replacement of {old} Ready")
    if c.pod_uid(old) != new_uid:
        # the frozen MAIN's last commit can be on its disk and nowhere else (frozen between its local WAL
        # write and the replicas' votes: reference memgraph-replication 7.2); the replacement then starts
        # diverged and the leader re-seeds it: deletes that incarnation, whose successor archives the files
        assert archive_dirs(c.workdir / "pvc" / old / "lib"), f"{old} replaced again without a re-seed"
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert not c.orphans(), "the lost incarnation's containers are gone"
    assert sc.cluster.roles()[old].role == "replica"


@pytest.mark.long
@pytest.mark.timeout(480)  # the force detach alone is 360 s x the time scale, after the node grace
def test_main_node_partitioned_force_deleted_replacement_starts_after_the_force_detach(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=34)
    c = sc.cluster
    old, sync = sc.main(), sc.sync_replica()
    uid = c.pod_uid(old)
    with faults.node_loss(c, old, "partition", flog=sc.flog):
        lose_the_main(sc, old, sync)
        faults.force_delete(c, old, flog=sc.flog)
        c.wait_for(lambda: c.pod_uid(old) not in (None, uid), SLACK_S, "the StatefulSet replaces it")
        assert [o.runtime.uid for o in c.orphans()] == [uid], "the cut-off incarnation runs on"
        c.wait_for(lambda: c.pod_ready(old), c.timings.force_detach_s + SLACK_S * 2,
                   f"the replacement of {old} Ready after the volume's force detach")
        assert not any(o.runtime.container_running("memgraph") for o in c.orphans()), (
            "the force detach ended the old incarnation's Memgraph")
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.cluster.roles()[old].role == "replica"


# ---- one leader per pod incarnation (issue 16 item 3) ----------------------------------------------------


def lease_holder(sc: Scenario) -> str:
    leases = sc.cluster.kube.list("Lease", sc.cfg.namespace)
    assert len(leases) == 1, f"one election Lease expected, saw {[x['metadata']['name'] for x in leases]}"
    return str((leases[0].get("spec") or {}).get("holderIdentity") or "")


def lease_writes_from(sc: Scenario, ip: str) -> int:
    """Successful Lease writes from address `ip`, as the API server's audit log has them."""
    records = sc.cluster.kube.audit_records()
    return sum(1 for r in records if r.resource == "leases" and r.ok and r.source_ip == ip)


def last_lease_writer(sc: Scenario) -> str:
    writes = [r.source_ip for r in sc.cluster.kube.audit_records() if r.resource == "leases" and r.ok]
    return writes[-1] if writes else ""


def lead_from(sc: Scenario, pod: str, renewals: int = 10) -> str:
    """Make the agent of `pod`'s current incarnation the leader -- the Lease names the pod and its last
    write came from this incarnation's address (whatever the identity's form) -- holding every other agent
    down until it is, and let it lead for `renewals` renewals. Returns the holder identity."""
    c = sc.cluster
    ip = c.runtime(pod).ip

    def leads() -> bool:
        return pod_of(lease_holder(sc)) == pod and last_lease_writer(sc) == ip

    if not leads():
        others = [p for p in c.pod_names() if p != pod]
        for other in others:
            faults.kill_agent(c, other, hold=True, flog=sc.flog)
        try:
            c.wait_for(leads, 2 * c.timings.lease_duration_s + SLACK_S, f"{pod} ({ip}) leads")
        finally:
            for other in others:
                faults.release(c, other, flog=sc.flog)
        c.wait_for(lambda: all(c.runtime(o).container_running("agent") for o in others), SLACK_S,
                   "the other agents back")
    done = lease_writes_from(sc, ip) + renewals
    c.wait_for(lambda: lease_writes_from(sc, ip) >= done, renewals * c.timings.retry_period_s + SLACK_S,
               f"{renewals} renewals by {pod} ({ip})")
    holder = lease_holder(sc)
    sc.flog.add(f"{holder} leads, from {ip}")
    return holder


def agent_runs_on(rt: PodRuntime, seconds: float) -> None:
    """Check, every half second for `seconds`, that the agent process of runtime `rt` runs (bounded)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert rt.container_running("agent"), f"the agent of {rt.name} ({rt.uid[:8]}) ended"
        time.sleep(0.5)


@needs_partitions  # one source address per incarnation: the actions are told apart by it
@pytest.mark.long
@pytest.mark.timeout(600)  # the force detach alone is 360 s x the time scale, after the node grace
def test_an_old_incarnation_back_from_a_partition_never_coordinates_beside_its_replacement(
        scenario: MakeScenario) -> None:
    """The MAIN's pod leads; its node is cut off; the pod is force-deleted and re-created (new UID) while
    the old incarnation runs on; the replacement starts after the volume's force detach and is made the
    leader; then the network heals while the old incarnation's agent still runs (its kubelet acts again
    only later, as when its pod watch reconnects late; meanwhile that kubelet may have restarted the
    agent, whose liveness probe still reaches it). At most one coordinator acts at any instant, counted
    per incarnation from the emulators' records (sim.leader_acts, sim.check_leaders)."""
    sc = scenario(seed=35)
    c, t = sc.cluster, sc.cluster.timings
    old, sync = sc.main(), sc.sync_replica()
    old_identity = lead_from(sc, old)
    old_rt, uid = c.runtime(old), c.pod_uid(old)
    with faults.kubelet_unreachable(c, old, flog=sc.flog):
        with faults.partition(c, old, "all", node=True, flog=sc.flog):
            lose_the_main(sc, old, sync)
            faults.force_delete(c, old, flog=sc.flog)
            c.wait_for(lambda: c.pod_uid(old) not in (None, uid), SLACK_S, "the StatefulSet replaces it")
            assert [o.runtime.uid for o in c.orphans()] == [uid], "the cut-off incarnation runs on"
            c.wait_for(lambda: c.pod_ready(old), t.force_detach_s + SLACK_S * 2,
                       f"the replacement of {old} Ready after the volume's force detach")
            assert not old_rt.container_running("memgraph"), "the force detach ended the old Memgraph"
            assert old_rt.container_running("agent"), "the old incarnation's agent runs on"
            assert c.runtime(old).ip != old_rt.ip, "each incarnation has its own address"
            new_identity = lead_from(sc, old)
        healed_at = time.monotonic()
        assert old_rt.http_ok("/health", timeout_s=5.0), "the old agent answers across the healed network"
        agent_runs_on(old_rt, max(4 * t.lease_duration_s, 10.0))
    c.wait_for(lambda: not c.orphans(), SLACK_S, "the old incarnation ended by its kubelet")
    sc.converge(timeout_s=60 + SLACK_S)
    gathered = leader_acts.gather(c)
    verdict = judge(gathered.acts, t.lease_duration_s)
    counts = {str(s.actor): s.api + s.memgraph for s in verdict.actors}
    ev = sc.finish(extra={"heal_at_s": round(healed_at - sc.t0, 2), "coordinator_actions": counts,
                          "identities": [old_identity, new_identity],
                          "leaders": verdict.render(sc.t0).splitlines()})
    assert verdict.ok, verdict.render(sc.t0)
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    old_actor, new_actor = Actor(old, uid or ""), Actor(old, c.pod_uid(old) or "")
    assert counts.get(str(old_actor)), f"the old incarnation led before the cut: {verdict.render(sc.t0)}"
    assert counts.get(str(new_actor)), f"the replacement led at the heal: {verdict.render(sc.t0)}"
    late = [a for a in gathered.acts if a.actor == old_actor and a.t >= healed_at]
    assert not late, f"the old incarnation acted after the heal: {[a.text(sc.t0) for a in late]}"


FREEZE_PAST_GUNICORN_TIMEOUT_S = 35.0  # real seconds: more than gunicorn's default worker timeout, 30 s


def test_a_thawed_main_is_demoted_at_its_agents_first_check(scenario: MakeScenario) -> None:
    """The MAIN's node freezes (a paused VM: every process of the pod stops, the kubelet too) for longer
    than 30 s; the STRICT_SYNC replica is promoted; the node thaws. The old Memgraph carries on as MAIN
    until its agent's guard demotes it, at its first check after the thaw, not seconds later:
    - the agent's copy of the cluster record is as old as the freeze and still names it; the guard reads
      the record afresh when its copy is that old (before: it trusted the copy and demoted only at its
      next check, once the elector had re-read the Lease);
    - the thawed MAIN's own writes in flight (their replicas refuse them now) hold the replication-state
      lock, so Memgraph refuses the first SET REPLICATION ROLE ("Couldn't set role to replica!"); the
      guard retries it at once while the instance still reports MAIN, as the switchover does (before: it
      waited a whole guard interval, 1 s);
    - gunicorn's arbiter, thawed with its worker, counted the freeze as the worker's silence: with its
      30 s worker timeout it killed the agent's worker at once ("WORKER TIMEOUT") and the new worker
      demoted the MAIN only after its boot (the bench's 1.9-3.4 s at scale 1.0). The agent's watchdog
      is the kubelet's liveness probe; gunicorn's is off (agent/server.py).
    Measured as the bench measures it (`sim.bench_recovery.OldMainWatch`: the role polled every 20 ms
    through the emulator's admin channel) and judged against one retry period: the agent's second
    check."""
    sc = scenario(seed=36)
    old, sync = sc.main(), sc.sync_replica()
    period = sc.cluster.timings.retry_period_s
    rt = sc.cluster.runtime(old)
    agent_log = rt.logs / f"{old}.{rt.uid[:8]}.agent.log"
    watch = OldMainWatch(sc.cluster, old, bound_s=failover_bound(sc) + FREEZE_PAST_GUNICORN_TIMEOUT_S)
    with faults.node_loss(sc.cluster, old, "freeze", flog=sc.flog):
        frozen_at = time.monotonic()
        lose_the_main(sc, old, sync)
        time.sleep(max(0.0, frozen_at + FREEZE_PAST_GUNICORN_TIMEOUT_S - time.monotonic()))
        watch.start()  # polls from just before the thaw
    window = watch.result()
    sc.flog.add(f"the thawed {old} answered as MAIN for {window}s (retry period {period}s)")
    assert window is not None, f"{old} was not seen back and demoted within {watch.bound_s:.0f}s"
    restarts = agent_log.read_text(encoding="utf-8", errors="replace").count("msg=\"agent starting")
    assert restarts == 1, f"the agent of {old} started {restarts} times: its worker was restarted on the thaw"
    assert window < period, f"the thawed {old} answered as MAIN for {window:.2f}s, a retry period or more"
    sc.converge(timeout_s=60 + SLACK_S)
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0

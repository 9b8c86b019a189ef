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

from sim import faults
from sim.nodes import NodeEvent
from tests.scenarios.conftest import MakeScenario
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
    assert c.pod_uid(old) == new_uid
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

"""The node lifecycle controller on explicit times (sim/nodes.py)."""

from __future__ import annotations

import random

from sim.nodes import KubeletState, NodeController, NodeEvent, NodeTimings
from sim.timescale import TimeScale

T = NodeTimings()


def controller(seed: int = 0) -> NodeController:
    nc = NodeController(T, start=0.0, rng=random.Random(seed))
    nc.add("node-0", 0.0)
    nc.add("node-1", 0.0)
    return nc


def events_until(nc: NodeController, end: float) -> list[tuple[float, str, NodeEvent]]:
    return events_until_from(nc, 0.0, end)


def test_healthy_nodes_never_turn_unreachable() -> None:
    assert events_until(controller(), 600.0) == []


def test_lost_node_is_unreachable_between_grace_minus_renew_and_grace_plus_monitor_period() -> None:
    for seed in range(30):
        nc = controller(seed)
        nc.tick(100.0)
        nc.set_kubelet("node-0", KubeletState.FROZEN, 100.0)
        evs = [(t, e) for t, n, e in events_until_from(nc, 100.0, 200.0) if n == "node-0"]
        t_unknown = next(t for t, e in evs if e is NodeEvent.UNREACHABLE)
        # the last heartbeat was up to one renewal before the loss; the controller looks every 5 s
        latest = 100.0 + T.grace_s + T.monitor_period_s + 0.5
        assert 100.0 + T.grace_s - T.lease_renew_s <= t_unknown <= latest
        assert nc.nodes["node-1"].reachable


def events_until_from(nc: NodeController, start: float, end: float) -> list[tuple[float, str, NodeEvent]]:
    out, t = [], start
    while t <= end:
        out += [(t, n, e) for n, e in nc.tick(t)]
        t += 0.5
    return out


def test_every_kubelet_state_but_running_stops_the_heartbeats() -> None:
    for state in (KubeletState.FROZEN, KubeletState.PARTITIONED, KubeletState.DEAD):
        nc = controller()
        nc.set_kubelet("node-1", state, 0.0)
        assert any(n == "node-1" and e is NodeEvent.UNREACHABLE for _, n, e in events_until(nc, 60.0)), state


def test_partitioned_kubelet_still_acts_locally_a_dead_or_frozen_one_does_not() -> None:
    nc = controller()
    for state, acts in ((KubeletState.PARTITIONED, True), (KubeletState.DEAD, False),
                        (KubeletState.FROZEN, False), (KubeletState.RUNNING, True)):
        nc.set_kubelet("node-0", state, 0.0)
        assert nc.nodes["node-0"].acts is acts, state
        assert nc.nodes["node-0"].reports is (state is KubeletState.RUNNING)


def test_pods_of_an_unreachable_node_are_evicted_after_the_toleration() -> None:
    nc = controller()
    nc.set_kubelet("node-0", KubeletState.DEAD, 0.0)
    evs = [(t, e) for t, n, e in events_until(nc, 400.0) if n == "node-0"]
    (t_unknown, _), (t_evict, e_evict) = evs
    assert e_evict is NodeEvent.EVICT
    assert T.eviction_s <= t_evict - t_unknown < T.eviction_s + T.monitor_period_s


def test_a_node_whose_heartbeats_return_is_reachable_again() -> None:
    nc = controller()
    nc.set_kubelet("node-0", KubeletState.PARTITIONED, 0.0)
    events_until(nc, 60.0)
    assert not nc.nodes["node-0"].reachable and "node-0" not in nc.schedulable()
    nc.set_kubelet("node-0", KubeletState.RUNNING, 60.0)
    evs = events_until_from(nc, 60.0, 70.0)
    assert [(n, e) for _, n, e in evs] == [("node-0", NodeEvent.REACHABLE)]
    assert nc.schedulable() == ["node-0", "node-1"]


def test_scaled_timings_scale_the_grace() -> None:
    t = T.scaled(TimeScale(0.25))
    assert (t.grace_s, t.monitor_period_s, t.lease_renew_s, t.eviction_s) == (10.0, 1.25, 2.5, 75.0)

"""Volumes and scheduling of the node lifecycle side (sim/nodeloop.py), on explicit times."""

from __future__ import annotations

from typing import Any

from sim.nodeloop import NodeLifecycle
from sim.nodes import KubeletState, NodeTimings


class NoKube:
    """The API emulator is not needed for volumes and scheduling decisions."""


def lifecycle(pods: list[Any] | None = None) -> NodeLifecycle:
    return NodeLifecycle(NoKube(), "default", lambda: list(pods or []),  # type: ignore[arg-type]
                         ["node-0", "node-1", "node-2", "node-3"], NodeTimings(), seed=1)


def bound(name: str, node: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"nodeName": node}}


def test_a_new_incarnation_waits_while_the_old_one_is_in_the_api() -> None:
    nl = lifecycle()
    nl.claim("memgraph-0", "old")
    assert nl.attach_wait("memgraph-0", "old", 0.0) == 0.0, "its own volume"
    assert nl.attach_wait("memgraph-0", "new", 0.0) is None, "held: no detach has started"


def test_after_a_force_delete_the_volume_is_force_detached_after_six_minutes() -> None:
    nl = lifecycle()
    nl.claim("memgraph-0", "old")
    nl.released("memgraph-0", "old", now=100.0)
    assert nl.attach_wait("memgraph-0", "new", now=100.0) == 360.0
    assert not nl.force_detach_due("memgraph-0", "new", now=459.0)
    assert nl.force_detach_due("memgraph-0", "new", now=460.0)


def test_a_detached_volume_is_free_at_once() -> None:
    nl = lifecycle()
    nl.claim("memgraph-0", "old")
    nl.detached("memgraph-0", "old")
    assert nl.attach_wait("memgraph-0", "new", 0.0) == 0.0


def test_scheduling_prefers_the_node_without_a_pod_of_the_set() -> None:
    nl = lifecycle([bound("memgraph-1", "node-1"), bound("memgraph-2", "node-2"),
                    bound("memgraph-0", "node-0")])
    assert nl.schedule("memgraph-0") == "node-0", "its own old place counts for nothing: node-0 is free"
    nl.set_kubelet("node-0", KubeletState.FROZEN)
    nl.tick(1000.0)  # far past the grace: node-0 unreachable
    assert nl.schedule("memgraph-0") == "node-3"


def test_pods_scheduled_before_their_objects_exist_go_to_different_nodes() -> None:
    # Parallel pod management schedules the next pod before the previous one's object is in the API
    nl = lifecycle()
    nodes = [nl.schedule(f"memgraph-{i}") for i in range(3)]
    assert len(set(nodes)) == 3, f"pods of the set stacked on one node: {nodes}"

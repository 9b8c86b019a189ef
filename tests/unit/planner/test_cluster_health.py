"""cluster_health: the one check shared by the status document and `memgraph-ha rollout`."""

from __future__ import annotations

import pytest

from coordinator.core.health import cluster_health
from coordinator.core.model import ClusterRecord, Snapshot
from tests.unit.planner.builders import down, healthy, main, rec, replica, row, snap

STRICT = "strict_sync"

CASES = [
    ("converged_cluster_is_healthy", healthy(), rec(), True, []),
    ("replica_invalid_with_behind_0_is_not_ready",
     snap({0: main(row(1, STRICT), row(2, status="invalid", behind=0)), 1: replica(), 2: replica()}), rec(),
     False, ["memgraph-2 replica status invalid (behind 0)"]),
    ("unreachable_main_is_unhealthy",
     snap({0: down(), 1: replica(), 2: replica()}), rec(), False, ["memgraph-0 (MAIN) unreachable"]),
    ("second_main_is_dual_main",
     snap({0: main(row(1, STRICT)), 1: replica(), 2: main()}), rec(),
     False, ["memgraph-2 reports MAIN too (dual MAIN)", "memgraph-2 reports main, not replica"]),
    ("missing_pod_is_a_problem",
     snap({0: main(row(1, STRICT)), 1: replica()}), rec(), False, ["memgraph-2 missing"]),
    ("unregistered_replica_is_a_problem",
     snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}), rec(),
     False, ["memgraph-2 not registered on memgraph-0"]),
    ("diverged_replica_is_a_problem",
     snap({0: main(row(1, STRICT)), 1: replica(), 2: replica()}), rec(diverged=(2,)),
     False, ["memgraph-2 diverged"]),
    ("no_sync_replica_is_degraded",
     snap({0: main(row(1), row(2)), 1: replica(), 2: replica()}), rec(sync=None),
     False, ["no sync replica designated (degraded)"]),
    ("terminating_replica_is_not_ready",
     healthy(terminating=(2,)), rec(), False, ["memgraph-2 terminating"]),
    ("no_record_is_unhealthy",
     snap({0: main(), 1: main(), 2: main()}), ClusterRecord(), False, ["no MAIN designated in the record"]),
]


@pytest.mark.parametrize(
    ("snapshot", "record", "ok", "problems"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_cluster_health(snapshot: Snapshot, record: ClusterRecord, ok: bool, problems: list[str]) -> None:
    health = cluster_health(snapshot, record)
    assert health.healthy is ok
    assert health.problems == problems


def test_health_counts_ready_replicas_and_reports_the_main() -> None:
    s = snap({0: main(row(1, STRICT), row(2, status="recovery")), 1: replica(), 2: replica()})
    h = cluster_health(s, rec())
    assert (h.main, h.ready_replicas, h.expected_replicas) == ("memgraph-0", ("memgraph-1",), 2)


def test_health_lists_replicas_the_main_shows_diverged() -> None:
    s = snap({0: main(row(1, STRICT), row(2, status="diverged")), 1: replica(), 2: replica()})
    h = cluster_health(s, rec())
    assert h.diverged == ("memgraph-2",)
    assert not h.healthy


def test_health_has_no_main_when_the_record_main_reports_replica() -> None:
    h = cluster_health(snap({0: replica(), 1: replica(), 2: replica()}), rec())
    assert h.main == ""
    assert h.problems[0] == "memgraph-0 (MAIN in the record) reports replica"

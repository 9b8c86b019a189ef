"""Short safety run of sim.bench_election: 5 electors, random kills, restarts, releases, outages and
409/403 injections for ~16 s of chaos; no two leadership intervals may overlap and leaders come back
within the bounds."""

from __future__ import annotations

import pytest

pytest.importorskip("sim.kube.server")

from coordinator.core.lease_rules import ElectionConfig
from sim.bench_election import run


@pytest.mark.slow
def test_safety_run_no_overlapping_leaders_and_bounded_gaps():
    report = run(seconds=15, electors=5, seed=7, config=ElectionConfig(2.0, 1.0, 0.25), steady_s=3.0)
    assert report["violations"] == []
    assert report["overlaps"] == 0 and report["callback_overlaps"] == 0
    assert report["leadership_intervals"] >= 2  # leadership did change hands under the chaos
    assert sum(report["episodes"].values()) >= 8
    for per_min in report["steady_requests_per_min"].values():  # one request per retry period, +1 at the edge
        assert per_min <= report["steady_bound_per_min"] + 60 / 3.0
    assert report["ok"]

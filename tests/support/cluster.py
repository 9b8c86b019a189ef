"""The emulated cluster as a fixture's body: started, healthy, and stopped whatever happens.

Role: the one way the integration tests that share one cluster per module bring it up and tear it down
(every process group of the emulated pods ends in `SimCluster.stop`, also when the start fails).
Must never: leave a cluster running, or wait without a bound.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sim.cluster import ClusterConfig, SimCluster


@contextmanager
def healthy_cluster(
    workdir: Path, cfg: ClusterConfig, healthy_s: float, wait_ready_s: float = 90.0
) -> Iterator[SimCluster]:
    """A started SimCluster, healthy within `healthy_s` after its pods are ready; stopped on exit."""
    c = SimCluster(workdir, cfg)
    try:
        c.start(wait_ready_s=wait_ready_s)
        c.wait_for(c.healthy, healthy_s, "cluster healthy after start")
        yield c
    finally:
        c.stop()

"""Fixtures of the scenario suite: `scenario(seed, ...)` starts a `Scenario` that is always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sim import netns, partition
from sim.cluster import ClusterConfig
from sim.kubelet import PodTemplate
from tests.scenarios.harness import Scenario

MakeScenario = Callable[..., Scenario]
PARTITIONS_REASON = netns.probe() or partition.nft_reason()
needs_partitions = pytest.mark.skipif(
    PARTITIONS_REASON is not None,
    reason=f"silent partitions need network namespaces and nftables: {PARTITIONS_REASON}")


@pytest.fixture
def scenario(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[MakeScenario]:
    """`scenario(seed, template={...}, values={...}, **ClusterConfig fields)` -> a started, healthy
    Scenario. The timings are the chart's (`values` changes them as `helm --set` would), on the suite's
    time scale (tests/conftest.py)."""
    made: list[Scenario] = []

    def make(seed: int, template: dict[str, Any] | None = None, rate_hz: float = 20.0,
             writer_threads: int = 1, reader: bool = False, reconnect_on_read_only: bool = False,
             **config: Any) -> Scenario:
        config.setdefault("pod_management", "Parallel")  # faster start; the chart uses OrderedReady
        cfg = ClusterConfig(seed=seed, template=PodTemplate(**(template or {})), **config)
        sc = Scenario(tmp_path, request.node.name.replace("[", "_").replace("]", ""), cfg, rate_hz,
                      writer_threads, reader, reconnect_on_read_only)
        made.append(sc)
        sc.__enter__()
        return sc

    try:
        yield make
    finally:
        for sc in made:
            sc.close()

"""tests/e2e reads the real status schema: its reader is fed the example document of docs/api.md (which
tests/unit/test_status.py keeps equal to what coordinator/core/status.py produces)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.e2e.cluster import topology_from_status

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _example() -> dict:
    block = re.search(r"```json\n(.*?)\n```", DOC.read_text(), re.S)
    assert block, "docs/api.md has no JSON example"
    return json.loads(block.group(1))


def test_e2e_reads_main_and_ready_replicas_from_the_documented_status() -> None:
    doc = _example()
    topo = topology_from_status(doc)
    assert topo is not None
    assert topo.main == doc["cluster"]["main"]
    assert list(topo.ready_replicas) == sorted(doc["cluster"]["ready_replicas"])


def test_e2e_sees_no_topology_before_bootstrap() -> None:
    assert topology_from_status({"cluster": {"main": None, "ready_replicas": []}}) is None

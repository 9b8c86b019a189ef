"""The status document (/api/v1/status): fields, types, legacy fields, and that docs/api.md matches it."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from coordinator.core.datadir import Archive, DataOutcome, DataReport
from coordinator.core.history import Transition, append_transition
from coordinator.core.outcomes import TransitionKind
from coordinator.core.planner import PlannerMemory, decide
from coordinator.core.status import build_status
from tests.unit.planner.builders import POLICY, down, healthy, main, rec, replica, row, snap

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def _status(s: Any, record: Any, **kw: Any) -> dict[str, Any]:
    decision = decide(s, record, POLICY, PlannerMemory(leader="memgraph-0"))
    return build_status(s, record, decision, "memgraph-0", kw or None)


def test_healthy_cluster_document_names_main_sync_and_every_pod() -> None:
    doc = _status(healthy(), rec())
    c = doc["cluster"]
    assert (c["main"], c["sync_replica"], c["sync_mode"], c["generation"], c["leader"]) == (
        "memgraph-0", "memgraph-1", "strict_sync", 3, "memgraph-0")
    flags = (c["healthy"], c["degraded"], c["paused"], c["problems"], c["last_failover"])
    assert flags == (True, False, False, [], None)
    assert c["verdict"] == "no action: memgraph-0 is MAIN, 2/2 replicas ready"
    assert [p["name"] for p in doc["pods"]] == ["memgraph-0", "memgraph-1", "memgraph-2"]
    assert doc["pods"][0]["replica"] is None and doc["pods"][0]["role"] == "main"
    assert doc["pods"][1]["replica"] == {"mode": "strict_sync", "status": "ready", "ts": 10, "behind": 0}
    assert json.loads(json.dumps(doc)) == doc


def test_legacy_fields_of_the_earlier_controller_are_present() -> None:
    doc = _status(healthy(), rec())
    assert doc["current_sync_replica"] == "memgraph-1"
    assert doc["sync_replica_healthy"] is True
    assert [p["is_sync_replica"] for p in doc["pods"]] == [False, True, False]


def test_sync_replica_down_makes_the_document_unhealthy_and_degraded() -> None:
    s = snap({0: main(row(1, "strict_sync", "invalid", behind=-3), row(2, status="invalid")), 1: down(),
              2: replica()}, unreachable={1: 3.0})
    doc = _status(s, rec())
    assert doc["sync_replica_healthy"] is False
    assert doc["cluster"]["healthy"] is False
    assert doc["cluster"]["degraded"] is True
    assert doc["cluster"]["verdict"].startswith("degraded: sync replica memgraph-1 not ready")
    pod1 = doc["pods"][1]
    assert (pod1["memgraph_reachable"], pod1["role"], pod1["error"]) == (False, None, "connection refused")


def test_last_failover_carries_its_duration() -> None:
    record = replace(rec(1, None, 4), last_failover="memgraph-0->memgraph-1 at 50.000 after 5.2s",
                     last_failover_from="memgraph-0", last_failover_to="memgraph-1", last_failover_at=50.0,
                     last_failover_duration_s=5.2)
    doc = _status(snap({0: replica(), 1: main(row(0), row(2)), 2: replica()}), record)
    assert doc["cluster"]["last_failover"] == {
        "from": "memgraph-0", "to": "memgraph-1", "at": 50.0, "duration_s": 5.2,
        "text": "memgraph-0->memgraph-1 at 50.000 after 5.2s"}


def test_diverged_and_terminating_pods_are_flagged() -> None:
    s = snap({0: main(row(1, "strict_sync"), row(2, status="diverged")), 1: replica(), 2: replica()},
             terminating=(1,))
    doc = _status(s, rec())
    assert [p["diverged"] for p in doc["pods"]] == [False, False, True]
    assert [p["terminating"] for p in doc["pods"]] == [False, True, False]
    assert doc["cluster"]["diverged"] == ["memgraph-2"]


def test_status_before_the_first_decision_says_starting() -> None:
    doc = build_status(healthy(), rec(), None, "memgraph-0", None)
    assert doc["cluster"]["verdict"] == "starting"
    assert doc["cluster"]["blocked_by"] is None


def test_extra_fields_are_added_but_never_override_the_document() -> None:
    doc = _status(healthy(), rec(), version="1.2.3", cluster="spoofed")
    assert doc["version"] == "1.2.3"
    assert isinstance(doc["cluster"], dict)


def _codes(doc: dict[str, Any]) -> list[str]:
    return [w["code"] for w in doc["cluster"]["warnings"]]


def test_a_healthy_cluster_has_no_warnings() -> None:
    assert _status(healthy(), rec())["cluster"]["warnings"] == []


def test_warnings_name_each_condition_the_page_flags() -> None:
    no_replica_ready = snap({0: main(row(1, "strict_sync", "invalid", behind=-3), row(2, status="invalid")),
                             1: down(), 2: replica()}, unreachable={1: 3.0})
    assert _codes(_status(no_replica_ready, rec()))[0] == "degraded"  # the planner dropped its registration
    lagging = snap({0: main(row(1, "strict_sync", "recovery", behind=-40), row(2)), 1: replica(),
                    2: replica()})
    doc = _status(lagging, rec())
    assert _codes(doc) == ["no-sync-replica", "unhealthy"]
    assert doc["cluster"]["warnings"][0]["text"] == "the sync replica memgraph-1 is not ready"
    assert _codes(_status(healthy(), rec(paused=True))) == ["paused"]
    flagged = _status(healthy(), rec(diverged=(2,)))
    assert "diverged" in _codes(flagged)
    assert "memgraph-2" in next(w["text"] for w in flagged["cluster"]["warnings"] if w["code"] == "diverged")


def test_api_server_failures_of_the_leader_are_a_warning() -> None:
    decision = decide(healthy(), rec(), POLICY, PlannerMemory(leader="memgraph-0"))
    doc = build_status(healthy(), rec(), decision, "memgraph-0", api_failing_s=4.25)
    text = "the leader's Kubernetes API calls have been failing for 4.2s"
    assert doc["cluster"]["warnings"] == [{"code": "api-server-unreachable", "text": text}]


def test_observation_age_and_history_come_with_the_document() -> None:
    record = replace(rec(), history=append_transition("", Transition(
        TransitionKind.SWITCHOVER, "memgraph-1", "memgraph-0", 3, 1_760_000_000.0, 0.31, 0.22)))
    decision = decide(healthy(now=1000.0), record, POLICY, PlannerMemory(leader="memgraph-0"))
    doc = build_status(healthy(now=1000.0), record, decision, "memgraph-0", now=1001.5)
    assert doc["observation_age_s"] == 1.5
    assert doc["cluster"]["history"] == [{
        "kind": "switchover", "from": "memgraph-1", "to": "memgraph-0", "generation": 3,
        "at": 1_760_000_000.0, "duration_s": 0.31, "write_pause_s": 0.22, "outcome": "done"}]
    assert build_status(healthy(), record, decision, "memgraph-0")["observation_age_s"] is None


def _doc_example() -> dict[str, Any]:
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "docs/api.md has no json example"
    return json.loads(blocks[0])


AGENT_ADDED = {"prestop_records", "prestop_records_age_s", "answered_by"}  # by agent/runtime.py and api.py


def test_docs_api_example_has_exactly_the_fields_build_status_produces() -> None:
    real = _status(healthy(), rec())
    example = _doc_example()
    assert set(example) - AGENT_ADDED == set(real) and set(example) >= AGENT_ADDED
    assert set(example["cluster"]) == set(real["cluster"])
    assert set(example["pods"][0]) == set(real["pods"][0])
    replica_entry = next(p["replica"] for p in example["pods"] if p["replica"] is not None)
    assert set(replica_entry) == {"mode", "status", "ts", "behind"}


ARCHIVE_G3 = "20261130T203000.000000Z-g3"


def reseed_document() -> dict[str, Any]:
    """A leader's document while memgraph-2 is re-seeded (its files archived, 3 older archives left out of
    its report) and memgraph-1's re-seed was refused for lack of space: for the status, OpenAPI and page
    tests."""
    archived = DataReport(DataOutcome.ARCHIVED, generation=3, durable_files=0, free_bytes=9000,
                          archives=(Archive(ARCHIVE_G3, 4096, 3, "2026-11-30T20:30:00Z",
                                            ("snapshots", "wal", "replication")),),
                          archives_omitted=3, archived_bytes=3 * 2**20 + 4096)
    refused = DataReport(DataOutcome.REFUSED, generation=3, durable_files=4, free_bytes=1024,
                         reason="volume has 1024 bytes free, a fresh copy needs 4096")
    s = snap({0: main(row(1, "strict_sync")), 1: replica(), 2: replica(data=0)},
             data={1: refused, 2: archived})
    record = replace(rec(diverged=(1, 2)), reseed_pod="memgraph-2", reseed_step="catchup",
                     reseed_generation=3, reseed_incarnation="uid-2/0")
    return _status(s, record)


def test_archives_and_the_reseed_in_progress_are_in_the_status() -> None:
    doc = reseed_document()
    assert doc["cluster"]["reseed"] == {"pod": "memgraph-2", "step": "catchup", "generation": 3,
                                        "incarnation": "uid-2/0"}
    data = doc["pods"][2]["data"]
    archived = (data["outcome"], data["durable_files"], data["archived_bytes"])
    assert archived == ("archived", 0, 3 * 2**20 + 4096)
    assert data["archives"][0]["name"] == ARCHIVE_G3 and data["archives_omitted"] == 3
    assert data["archives"][0]["holds"] == ["snapshots", "wal", "replication"]
    assert data["archives"][0]["beyond_main"] is None
    assert doc["pods"][1]["data"]["reason"] == "volume has 1024 bytes free, a fresh copy needs 4096"
    assert doc["pods"][0]["data"] is None
    warning = next(w["text"] for w in doc["cluster"]["warnings"] if w["code"] == "diverged")
    assert warning == "diverged (quarantined): memgraph-1, memgraph-2; re-seed of memgraph-2: catchup"

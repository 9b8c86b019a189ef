"""The last preStop record: summarised by each agent from its log volume, gathered by the leader."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from agent.peer_records import PeerPrestopRecords
from agent.prestop_summary import TAIL_BYTES, last_record, summarize
from hooks.prestop import format_line, record_path

T0 = 1_760_000_000.0


def write_record(log_dir: Path, uid: str, ip: str, lines: list[tuple[float, str]], mtime: float) -> Path:
    path = Path(record_path(str(log_dir), uid, ip))
    path.write_text("".join(format_line(text, T0 + dt) for dt, text in lines))
    os.utime(path, (mtime, mtime))
    return path


HOOK_RUN = [
    (0.0, "START PreStop hook (pod=memgraph-0 budget=600s)"),
    (0.01, "Attempt 1: POST http://127.0.0.1:8080/api/v1/prestop"),
    (0.02, "agent: prestop on memgraph-0: local role main, record main memgraph-0"),
    (0.30, "agent: switchover switchover-done in 0.280s: memgraph-0 -> memgraph-2"),
    (0.41, "Attempt 1: SUCCESS (status=200, duration=0.400s) outcome=switchover-done new_main=memgraph-2"),
    (0.53, "END PreStop hook (exit=0)"),
]


def test_the_newest_record_is_summarised_from_its_last_hook_run(tmp_path: Path) -> None:
    write_record(tmp_path, "old-uid", "10.0.0.1", HOOK_RUN[:2], mtime=T0 - 100)
    write_record(tmp_path, "uid-2", "10.0.0.7", [
        (-50.0, "START PreStop hook (pod=memgraph-0 budget=600s)"), (-49.0, "END PreStop hook (exit=1)"),
        *HOOK_RUN], mtime=T0)
    (tmp_path / "memgraph.log").write_text("not a record\n")
    summary = last_record(str(tmp_path))
    assert summary == {
        "file": "prestop-uid-2_10.0.0.7.log", "hook_started": True, "started": "2025-10-09T08:53:20.000Z",
        "ended": "2025-10-09T08:53:20.530Z", "exit_code": 0, "duration_s": 0.53, "attempts": 1,
        "last_verdict": "SUCCESS", "last_line": "END PreStop hook (exit=0)",
    }


def test_a_hook_that_never_ended_and_agent_lines_without_a_hook_are_shown_as_such() -> None:
    unfinished = summarize([format_line(text, T0 + dt) for dt, text in HOOK_RUN[:3]])
    assert unfinished is not None
    assert (unfinished["ended"], unfinished["exit_code"], unfinished["duration_s"]) == (None, None, None)
    agent_only = summarize([format_line("agent: prestop on memgraph-1: local role replica", T0),
                            "garbage line"])
    assert agent_only is not None and agent_only["hook_started"] is False
    assert summarize(["", "no timestamps here"]) is None


def test_no_directory_or_no_record_is_none_and_a_huge_record_is_read_from_its_tail(tmp_path: Path) -> None:
    assert last_record(str(tmp_path / "missing")) is None
    assert last_record(str(tmp_path)) is None
    filler = [(0.0, "agent: " + "x" * 200)] * (TAIL_BYTES // 100)
    write_record(tmp_path, "u", "10.0.0.2", filler + HOOK_RUN, mtime=T0)
    summary = last_record(str(tmp_path))
    assert summary is not None and summary["exit_code"] == 0 and summary["attempts"] == 1


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _wait(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + 5.0
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


PODS = [("memgraph-0", "10.0.0.1"), ("memgraph-1", "10.0.0.2"), ("memgraph-2", "")]


def test_the_leader_gathers_records_in_the_background_once_per_ttl() -> None:
    clock, calls = FakeClock(), []
    gate = threading.Event()

    def fetch(url: str, timeout_s: float) -> dict[str, Any]:
        calls.append((url, timeout_s))
        assert gate.wait(5)
        if "10.0.0.2" in url:
            raise ConnectionRefusedError("agent down")
        return {"prestop_last": {"file": "prestop-a_b.log", "exit_code": 0}}

    peers = PeerPrestopRecords("memgraph-0", lambda: {"file": "own.log"}, 8080, None, ttl_s=5.0,
                               clock=clock, fetch=fetch)
    assert peers.view(PODS) == ([], None)  # nothing yet; a round started, the request did not wait for it
    assert peers.view(PODS) == ([], None)  # one round at a time
    gate.set()
    _wait(lambda: peers.view(PODS)[1] is not None, "the first round")
    entries, age = peers.view(PODS)
    assert age == 0.0
    assert entries == [
        {"pod": "memgraph-0", "record": {"file": "own.log"}, "error": None},
        {"pod": "memgraph-1", "record": None, "error": "ConnectionRefusedError asking its agent"},
        {"pod": "memgraph-2", "record": None, "error": "pod has no IP"},
    ]
    assert calls == [("http://10.0.0.2:8080/api/v1/local", 1.0)]  # own record read locally, no IP: no call
    clock.now += 4.0
    assert peers.view(PODS)[1] == 4.0 and len(calls) == 1  # fresh enough: no new round
    clock.now += 1.0
    peers.view(PODS)
    _wait(lambda: len(calls) == 2, "the second round")

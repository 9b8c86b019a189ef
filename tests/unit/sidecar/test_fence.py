"""agent/procfs.py and agent/fence.py: finding this pod's Memgraph among several, telling stopped from
running, and the fence's refusals and kill confirmation (a fake process table; one real /proc test)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from agent.fence import FenceRequest, fence, parse
from agent.procfs import MemgraphProcesses, ProcFS, names_data_dir, state_of
from coordinator.core.model import ClusterRecord

DIR = "/var/lib/memgraph/mg_data"


@dataclass
class FakeTable:
    procs: dict[int, tuple[list[str], list[str]]] = field(default_factory=dict)  # pid -> (argv, states)
    killed: list[tuple[int, int]] = field(default_factory=list)
    dies_on_kill: bool = True

    def pids(self) -> list[int]:
        return sorted(self.procs)

    def cmdline(self, pid: int) -> list[str] | None:
        return self.procs[pid][0] if pid in self.procs else None

    def thread_states(self, pid: int) -> list[str]:
        return self.procs[pid][1] if pid in self.procs else []

    def kill(self, pid: int, sig: int) -> None:
        self.killed.append((pid, sig))
        if self.dies_on_kill:
            argv, _ = self.procs[pid]
            self.procs[pid] = (argv, ["Z"])  # a zombie until the parent reaps it


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


def procs_of(table: FakeTable) -> MemgraphProcesses:
    clock = Clock()
    return MemgraphProcesses(DIR, table, me=1, kill=table.kill, clock=clock, sleep=clock.sleep)


def cluster_host() -> FakeTable:
    """Three pods' Memgraphs on one host (the emulated cluster) and an unrelated process."""
    return FakeTable({
        10: (["memgraph", "--data-directory=/pvc/a/lib/mg_data"], ["S"]),
        11: (["python", "-m", "sim.memgraph", "--data-directory", DIR + "/"], ["S", "R"]),
        12: (["memgraph", "--data-directory", "/pvc/c/lib/mg_data"], ["S"]),
        13: (["sleep", DIR], ["S"]),
    })


def test_the_process_naming_this_pods_data_directory_is_found_among_several() -> None:
    assert procs_of(cluster_host()).find() == [11]


def test_data_directory_flag_matches_both_spellings_and_only_the_exact_path() -> None:
    assert names_data_dir(["m", f"--data-directory={DIR}"], DIR)
    assert names_data_dir(["m", "--data-directory", DIR], DIR + "/")
    assert not names_data_dir(["m", "--data-directory", DIR + "2"], DIR)
    assert not names_data_dir(["m", DIR], DIR)
    assert not names_data_dir(["m", "--data-directory"], DIR)


def test_a_process_is_stopped_only_when_every_live_thread_is_stopped() -> None:
    assert state_of(["T", "T"]) == "stopped"
    assert state_of(["T", "S"]) == "running"
    assert state_of(["Z"]) == "gone"
    assert state_of([]) == "gone"
    assert state_of(["T", "Z"]) == "stopped"


def test_kill_sends_sigkill_to_this_pods_memgraph_only_and_confirms_it_gone() -> None:
    table = cluster_host()
    gone, pids = procs_of(table).kill_and_confirm()
    assert (gone, pids) == (True, (11,))
    assert table.killed == [(11, signal.SIGKILL)]


def test_a_process_that_outlives_sigkill_is_not_confirmed_within_the_bound() -> None:
    table = cluster_host()
    table.dies_on_kill = False
    gone, pids = procs_of(table).kill_and_confirm(timeout_s=1.0)
    assert (gone, pids) == (False, (11,))


def test_a_new_memgraph_started_after_the_kill_does_not_hold_the_confirmation() -> None:
    table = cluster_host()

    def kill_and_restart(pid: int, sig: int) -> None:
        FakeTable.kill(table, pid, sig)
        table.procs[99] = (["memgraph", f"--data-directory={DIR}"], ["R"])  # the kubelet's restart

    procs = MemgraphProcesses(DIR, table, me=1, kill=kill_and_restart, clock=Clock(), sleep=lambda s: None)
    assert procs.kill_and_confirm() == (True, (11,))


def test_procfs_reads_a_real_process_and_sees_it_stopped_then_running(tmp_path) -> None:
    data = str(tmp_path / "mg_data")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)", "--data-directory", data])
    try:
        procs = MemgraphProcesses(data, ProcFS())
        for _ in range(500):  # bounded: until the child has exec'd, /proc shows the parent's command line
            if procs.find():
                break
            time.sleep(0.01)
        assert procs.find() == [child.pid]
        assert procs.view().state == "running"
        child.send_signal(signal.SIGSTOP)
        for _ in range(200):  # bounded: the group stop is asynchronous
            if procs.view().state == "stopped":
                break
            time.sleep(0.01)
        assert procs.view().state == "stopped"
        gone, pids = procs.kill_and_confirm(timeout_s=5.0)
        assert (gone, pids) == (True, (child.pid,))
    finally:
        child.kill()
        child.wait(5)


# ---- the fence decision ------------------------------------------------------------------------------


@dataclass
class Target:
    pod_name: str = "memgraph-0"
    pod_uid: str = "uid-0"
    rec: ClusterRecord | None = field(default_factory=lambda: ClusterRecord(main="memgraph-0", generation=4))
    answers: bool = False

    def record(self) -> ClusterRecord | None:
        return self.rec

    def local_answers(self) -> bool:
        return self.answers


REQ = FenceRequest("memgraph-0", "uid-0", 4)


def one_memgraph(states: list[str]) -> FakeTable:
    return FakeTable({11: (["memgraph", f"--data-directory={DIR}"], states)})


def test_fence_kills_a_stopped_main_and_confirms() -> None:
    table = one_memgraph(["T", "T"])
    status, doc = fence(REQ, Target(), procs_of(table))
    assert status == 200 and doc["outcome"] == "fenced" and doc["state_before"] == "stopped"
    assert table.killed == [(11, signal.SIGKILL)]


def test_fence_refuses_a_running_main_that_answers_a_busy_main_included() -> None:
    table = one_memgraph(["S", "R"])
    status, doc = fence(REQ, Target(answers=True), procs_of(table))
    assert (status, doc["error"]) == (409, "main-healthy")
    assert table.killed == []


def test_fence_kills_a_running_main_that_does_not_answer() -> None:
    table = one_memgraph(["S"])
    assert fence(REQ, Target(answers=False), procs_of(table))[0] == 200
    assert table.killed


@pytest.mark.parametrize("req, target, error", [
    (FenceRequest("memgraph-1", "uid-0", 4), Target(), "wrong-pod"),
    (FenceRequest("memgraph-0", "uid-old", 4), Target(), "wrong-incarnation"),
    (FenceRequest("memgraph-0", "uid-0", 3), Target(), "not-the-failed-main"),
    (REQ, Target(rec=ClusterRecord(main="memgraph-1", generation=4)), "not-the-failed-main"),
])
def test_fence_refuses_any_other_pod_incarnation_or_generation(req: FenceRequest, target: Target,
                                                               error: str) -> None:
    table = one_memgraph(["T"])
    status, doc = fence(req, target, procs_of(table))
    assert doc["error"] == error and status in (403, 409)
    assert table.killed == []


def test_fence_without_a_view_of_the_process_is_unavailable_not_confirmed() -> None:
    assert fence(REQ, Target(), None)[1]["error"] == "fence-unavailable"
    empty = procs_of(FakeTable())
    assert fence(REQ, Target(), empty)[1]["error"] == "fence-unavailable"  # never seen: no view


def test_fence_confirms_no_process_once_the_process_was_seen_before() -> None:
    table = one_memgraph(["S"])
    procs = procs_of(table)
    assert procs.find() == [11]
    del table.procs[11]  # crashed meanwhile
    status, doc = fence(REQ, Target(), procs)
    assert (status, doc["outcome"]) == (200, "no-process")


def test_fence_that_cannot_confirm_answers_503() -> None:
    table = one_memgraph(["T"])
    table.dies_on_kill = False
    status, doc = fence(REQ, Target(), procs_of(table))
    assert (status, doc["error"]) == (503, "fence-failed")


@pytest.mark.parametrize("doc", [
    {}, {"pod": "memgraph-0", "uid": "u"}, {"pod": "memgraph-0", "uid": "u", "generation": 0},
    {"pod": "memgraph-0", "uid": "u", "generation": True}, {"pod": "", "uid": "u", "generation": 1},
    {"pod": "memgraph-0", "uid": "u", "generation": 2.5},
    {"pod": "memgraph-0", "uid": "u", "generation": 1e300},
    {"pod": "memgraph-0", "uid": "", "generation": 1}, {"pod": 3, "uid": "u", "generation": 1},
])
def test_fence_body_must_name_pod_uid_and_generation(doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        parse(doc, ValueError)


def test_fence_generation_is_a_json_schema_integer_so_210_0_is_210() -> None:
    assert parse({"pod": "memgraph-0", "uid": "u", "generation": 210.0}, ValueError).generation == 210

"""Pure parts of the Memgraph emulator: Memgraph's timing defaults, the replication error text, the Bolt
worker pool's priorities, and the data directory's WAL/epoch recovery (reference memgraph-replication 7)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sim.memgraph.__main__ import build_parser
from sim.memgraph.commit import format_replication_error
from sim.memgraph.durability import Durability
from sim.memgraph.replica_client import NOT_IN_SYNC, TIMEOUT
from sim.memgraph.storage import Storage
from sim.memgraph.timings import MemgraphTimings
from sim.memgraph.workers import BoltWorkers, Priority

BASE = ["--host", "127.0.0.1", "--bolt-port", "0", "--replication-port", "1", "--data-dir", "/tmp/x"]


def test_timings_default_to_memgraphs_values_and_the_flags_round_trip() -> None:
    t = MemgraphTimings()
    assert (t.check_frequency_s, t.connect_timeout_s, t.frequent_heartbeat_timeout_s, t.heartbeat_timeout_s,
            t.swap_uuid_timeout_s, t.prepare_timeout_s, t.finalize_timeout_s) == (1, 5, 5, 10, 10, 30, 10)
    assert t.args() == []
    short = MemgraphTimings(check_frequency_s=0.2, prepare_timeout_s=1.0)
    parsed = MemgraphTimings.from_flags(build_parser().parse_args([*BASE, *short.args()]))
    assert parsed == short
    assert MemgraphTimings.from_flags(build_parser().parse_args(BASE)) == t
    with pytest.raises(ValueError):
        MemgraphTimings(heartbeat_timeout_s=0)


def test_the_replication_server_binds_all_addresses_by_default_as_memgraph_does() -> None:
    assert build_parser().parse_args(BASE).sim_replication_bind_address == "0.0.0.0"


def test_old_check_frequency_flag_name_still_works() -> None:
    args = build_parser().parse_args([*BASE, "--replica-check-frequency-sec", "0.2"])
    assert MemgraphTimings.from_flags(args).check_frequency_s == 0.2


def test_data_directory_is_memgraphs_flag_name_and_data_dir_its_alias() -> None:
    memgraphs = build_parser().parse_args([*BASE[:-2], "--data-directory", "/tmp/y"])
    assert str(memgraphs.data_dir) == "/tmp/y"
    assert str(build_parser().parse_args(BASE).data_dir) == "/tmp/x"


def test_replication_error_groups_failures_by_mode_and_reason_as_memgraph_formats_them() -> None:
    two = format_replication_error([("a", "SYNC", NOT_IN_SYNC), ("b", "SYNC", NOT_IN_SYNC)], committed=True)
    assert two == ("Replication Exception: Failed to replicate to SYNC replicas 'a' and 'b': replicas are "
                   "not reachable or not in sync with the main. Replicas will be recovered automatically. "
                   "Transaction is still committed on the main instance and other alive replicas. Check the "
                   "status of the replicas using 'SHOW REPLICAS' query.")
    timed = format_replication_error([("s", "STRICT_SYNC", TIMEOUT)], committed=False)
    assert "'s': RPC timeout while replicating. Replica will be recovered automatically. Transaction was " \
           "aborted on all instances. Main reached an RPC timeout while replicating to [s]." in timed


def test_low_priority_work_never_takes_the_high_priority_worker() -> None:
    pool = BoltWorkers(1)
    with pool.task(Priority.LOW):
        got: list[bool] = []
        t = threading.Thread(target=lambda: got.append(pool.task(Priority.LOW).__enter__().hp), daemon=True)
        t.start()
        t.join(timeout=0.5)
        assert t.is_alive() and pool.stats()["queued"] == 1 and not pool.stats()["high_priority_busy"]
    t.join(timeout=5.0)
    assert got == [False]


def test_high_priority_work_gets_a_free_mixed_worker_first() -> None:
    pool = BoltWorkers(2)
    with pool.task(Priority.LOW), pool.task(Priority.HIGH) as high:
        assert high.hp is False and pool.stats()["busy"] == 2


def test_wal_recovery_skips_uncommitted_transactions_and_takes_the_epoch_of_files_with_commits(
        tmp_path: Path) -> None:
    d = Durability(tmp_path)
    d.recover(True)
    d.write_txn("E1", 2, [{"op": "create", "labels": ["N"], "props": {}}], committed=True)
    d.write_txn("E1", 4, [{"op": "create", "labels": ["N"], "props": {}}], committed=False)
    d.finalize_wal()
    d.write_txn("E2", 6, [], committed=False)  # a new epoch whose only transaction never committed
    d.close()
    rec = Durability(tmp_path).recover(True)
    assert [t.ts for t in rec.txns] == [2]  # replay skips commit=false (wal.cpp:2261)
    # durability.cpp: the newest file's epoch first, then every file WITH commits sets it: E1 wins
    assert rec.epoch == "E1" and rec.history == [("E1", 2)]
    flipped = Durability(tmp_path / "other")
    flipped.recover(True)
    f, offset = flipped.write_txn("E1", 2, [], committed=False)
    f.flip(offset)  # a two-phase commit decided yes: the flag flipped in place
    flipped.close()
    assert [t.ts for t in Durability(tmp_path / "other").recover(True).txns] == [2]


def test_promotion_epoch_reaches_disk_only_with_the_next_commit_or_a_snapshot(tmp_path: Path) -> None:
    s = Storage(tmp_path)
    s.recover()
    s.begin()
    s.commit([{"op": "create", "labels": ["N"], "props": {}}], s.next_commit_ts())
    old = s.epoch
    s.new_epoch()
    s.close()
    again = Storage(tmp_path)
    again.recover()
    assert again.epoch == old  # promoted, then restarted before any write: the old epoch (7.2)
    new = again.new_epoch()
    again.create_snapshot(force=True)
    again.close()
    third = Storage(tmp_path)
    third.recover()
    assert third.epoch == new and third.history[-1] == (old, 2)

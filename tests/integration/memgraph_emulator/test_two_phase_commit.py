"""The STRICT_SYNC two-phase commit and its crash windows, as reference memgraph-replication 7.1-7.2 read them
in Memgraph's source, driven by the real neo4j driver and the emulator's commit controls (crash or freeze
the MAIN at a chosen step; `sim/memgraph/controls.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from neo4j.exceptions import ClientError

from sim.memgraph.control import MemgraphProcess
from sim.memgraph.durability import read_wal
from sim.memgraph.timings import MemgraphTimings

from .helpers import (
    FAST,
    Background,
    Cluster,
    client_error,
    count,
    forget,
    make_replica,
    register,
    replicas,
    run,
    status,
    values,
    wait_until,
)

STRICT_SYNC_ABORTED = ("Replication Exception: Failed to replicate to STRICT_SYNC replica 'r1': replica is "
                       "not reachable or not in sync with the main. Replica will be recovered automatically. "
                       "Transaction was aborted on all instances. Check the status of the replicas using "
                       "'SHOW REPLICAS' query.")


def wal_flags(data_dir: Path) -> dict[int, int]:
    """commit timestamp -> commit flag of every transaction in the WAL files of `data_dir`."""
    flags: dict[int, int] = {}
    for path in sorted((data_dir / "wal").glob("wal_*")):
        for rec in read_wal(path)[1]:
            flags[int(rec["ts"])] = int(rec["c"])
    return flags


def strict_pair(c: Cluster, timings: MemgraphTimings = FAST) -> tuple[MemgraphProcess, MemgraphProcess]:
    main, rep = c.start("main", timings=timings), c.start("r1", timings=timings)
    make_replica(c, rep)
    register(c, main, "r1", "STRICT_SYNC", rep)
    return main, rep


def test_strict_sync_commit_writes_the_local_wal_uncommitted_before_asking_for_votes(
        cluster: Cluster) -> None:
    main, rep = strict_pair(cluster)
    main.arm_commit_fault("wal_written", "stop")
    write = Background(main, "CREATE (:N {k: 1})")
    main.wait_stopped()
    assert wal_flags(main.data_dir) == {2: 0}  # 7.1 step 3: in the WAL with commit=false
    assert rep.state()["prepared_commit_ts"] is None  # nothing shipped yet
    main.resume()
    assert write.outcome() is None
    assert wal_flags(main.data_dir) == {2: 1}  # step 5: the flag flipped in place
    assert values(cluster, rep) == [1]


def test_main_paused_between_votes_and_local_commit_acks_a_write_the_promoted_replica_aborted(
        cluster: Cluster) -> None:
    main, rep = strict_pair(cluster)
    main.arm_commit_fault("votes_in", "stop")
    write = Background(main, "CREATE (:N {k: 'late'})")
    main.wait_stopped()
    assert rep.state()["prepared_commit_ts"] == 2  # voted yes, holds it invisibly
    assert count(cluster, rep) == 0
    run(cluster, rep, "SET REPLICATION ROLE TO MAIN")  # failover while the MAIN is frozen
    assert rep.state()["prepared_commit_ts"] is None  # the promotion aborted it (7.2)
    main.resume()
    assert write.outcome() is None  # acknowledged: the failed finalize is not reported (7.1 step 8)
    assert values(cluster, main) == ["late"]
    assert count(cluster, rep) == 0  # an acknowledged write that exists only on the old MAIN


def test_main_killed_between_votes_and_local_commit_keeps_nothing_and_a_restarted_replica_neither(
        cluster: Cluster) -> None:
    main, rep = strict_pair(cluster)
    main.arm_commit_fault("votes_in", "crash")
    write = Background(main, "CREATE (:N {k: 1})")
    assert main.wait_exit() == -9
    assert write.outcome() is not None  # the client lost its connection, no answer
    assert rep.state()["prepared_commit_ts"] == 2
    rep.restart(kill=True)
    assert rep.state()["prepared_commit_ts"] is None and wal_flags(rep.data_dir) == {2: 0}
    main.start()
    forget(cluster, main)
    forget(cluster, rep)
    assert count(cluster, main) == 0 and count(cluster, rep) == 0  # replay skips commit=false (7.2)


def test_main_killed_after_its_local_commit_keeps_the_unanswered_write_and_the_replica_gets_it_by_recovery(
        cluster: Cluster) -> None:
    main, rep = strict_pair(cluster)
    main.arm_commit_fault("local_commit", "crash")
    write = Background(main, "CREATE (:N {k: 1})")
    assert main.wait_exit() == -9
    assert write.outcome() is not None
    assert rep.state()["prepared_commit_ts"] == 2 and count(cluster, rep) == 0  # never finalized
    main.start()
    forget(cluster, main)
    assert values(cluster, main) == [1]  # replay applies commit=true
    wait_until(lambda: status(cluster, main, "r1") == "ready", 10.0)  # restored: behind -> recovery -> ready
    assert values(cluster, rep) == [1]


def test_a_new_prepare_aborts_the_older_prepared_transaction_on_the_replica(cluster: Cluster) -> None:
    main, rep = strict_pair(cluster)
    main.arm_commit_fault("votes_in", "crash")
    Background(main, "CREATE (:N {k: 'orphan'})").outcome()
    main.wait_exit()
    main.start()
    forget(cluster, main)
    wait_until(lambda: status(cluster, main, "r1") == "ready", 10.0)
    run(cluster, main, "CREATE (:N {k: 'next'})")
    assert values(cluster, rep) == ["next"]
    assert rep.state()["prepared_commit_ts"] is None


def test_a_failed_finalize_is_not_reported_and_leaves_the_replica_ready_until_the_next_commit(
        cluster: Cluster) -> None:
    # frequent checks off (Memgraph: a frequency of 0), so only the commit path changes the replica's state
    main, rep = strict_pair(cluster, MemgraphTimings(check_frequency_s=0))
    main.arm_commit_fault("local_commit", "stop")
    write = Background(main, "CREATE (:N {k: 1})")
    main.wait_stopped()
    rep.kill()
    main.resume()
    assert write.outcome() is None
    assert status(cluster, main, "r1") == "ready"  # SendFinalizeCommitRpc changes no state
    with client_error("^Replication Exception: Failed to replicate to STRICT_SYNC replica 'r1'"):
        run(cluster, main, "CREATE (:N {k: 2})")
    assert values(cluster, main) == [1]


def test_sync_replica_is_skipped_by_a_two_phase_commit_and_makes_the_next_commit_abort(
        cluster: Cluster) -> None:
    main, strict = strict_pair(cluster)
    sync = cluster.start("r2")
    make_replica(cluster, sync)
    register(cluster, main, "r2", "SYNC", sync)
    run(cluster, main, "CREATE (:N {k: 1})")
    assert values(cluster, strict) == [1] and count(cluster, sync) == 0
    row = replicas(cluster, main)["r2"]["data"]
    assert row == {"ts": 2, "behind": 0, "status": "replicating"}  # UpdateCommitTsInfo moved its ts anyway
    with pytest.raises(ClientError) as err:
        run(cluster, main, "CREATE (:N {k: 2})")
    assert err.value.message == STRICT_SYNC_ABORTED.replace("STRICT_SYNC replica 'r1'", "SYNC replica 'r2'")
    wait_until(lambda: status(cluster, main, "r2") == "ready", 10.0)
    assert values(cluster, sync) == [1] and values(cluster, main) == [1]


def test_every_commit_aborts_while_a_strict_sync_replica_recovers(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    run(cluster, main, "CREATE (:N {k: 0})")
    make_replica(cluster, rep)
    main.delay(1500)  # every replication request of the MAIN waits 1.5 s: recovery takes that long
    register(cluster, main, "r1", "STRICT_SYNC", rep)
    assert status(cluster, main, "r1") == "recovery"
    with pytest.raises(ClientError) as err:
        run(cluster, main, "CREATE (:N {k: 1})")
    assert err.value.message == STRICT_SYNC_ABORTED
    main.delay(0)
    wait_until(lambda: status(cluster, main, "r1") == "ready", 10.0)
    run(cluster, main, "CREATE (:N {k: 2})")
    assert values(cluster, rep) == [0, 2]


def test_a_frozen_strict_sync_replica_holds_a_commit_for_the_prepare_timeout_then_aborts_it(
        cluster: Cluster) -> None:
    # Memgraph waits 30 s for a vote; shortened to 1 s here so the test is quick
    main, rep = strict_pair(cluster, MemgraphTimings(check_frequency_s=0.2, prepare_timeout_s=1.0))
    rep.pause()
    try:
        with pytest.raises(ClientError) as err:
            run(cluster, main, "CREATE (:N {k: 1})")
    finally:
        rep.resume()
    assert err.value.message.startswith("Replication Exception: Failed to replicate to STRICT_SYNC replica "
                                        "'r1': RPC timeout while replicating. Replica will be recovered")
    assert "Main reached an RPC timeout while replicating to [r1]." in err.value.message
    assert count(cluster, main) == 0


def test_create_snapshot_during_a_two_phase_commit_waits_for_it_and_the_commit_is_kept(
        cluster: Cluster) -> None:
    # issue 17: the coordinator snapshots a promoted MAIN while writes arrive. A snapshot that finalized the
    # WAL file of a commit waiting for its votes broke the commit's flag flip and wedged the MAIN.
    main, rep = strict_pair(cluster)
    main.delay(1000)  # every replication RPC of the MAIN waits 1 s: the commit sits before its vote
    write = Background(main, "CREATE (:N {k: 1})")
    wait_until(lambda: wal_flags(main.data_dir) == {2: 0})  # in the WAL, commit=false, votes pending
    path = run(cluster, main, "CREATE SNAPSHOT")[0][0]
    main.delay(0)
    assert write.outcome() is None
    assert path.endswith("_timestamp_2")  # taken after the commit, so it holds it
    assert values(cluster, main) == [1]
    wait_until(lambda: values(cluster, rep) == [1])
    main.restart()  # what is on disk: the snapshot and the WAL
    forget(cluster, main)
    assert values(cluster, main) == [1]

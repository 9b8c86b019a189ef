"""Divergence as Memgraph sees it and the epoch's way to disk (reference memgraph-replication 7.2-7.3), driven
by the real neo4j driver: the diverged row, the v3.12 zombie entry, the silent divergence of a new MAIN
restarted before its first write, and CREATE SNAPSHOT as the way to put the epoch on disk.
"""

from __future__ import annotations

from sim.memgraph.control import MemgraphProcess

from .helpers import (
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


def old_main_with_one_extra_write(c: Cluster) -> tuple[MemgraphProcess, MemgraphProcess]:
    """A (MAIN) and B (ASYNC replica) share k=1; A then commits k=2 that B never gets; A is killed and B
    promoted (a failover). Returns (a, b)."""
    a, b = c.start("a"), c.start("b")
    make_replica(c, b)
    register(c, a, "b", "ASYNC", b)
    run(c, a, "CREATE (:N {k: 1})")
    wait_until(lambda: values(c, b) == [1], 5.0)
    a.cut(f"127.0.0.1:{b.replication_port}")
    run(c, a, "CREATE (:N {k: 2})")
    a.kill()
    run(c, b, "SET REPLICATION ROLE TO MAIN")
    return a, b


def demote_restarted(c: Cluster, p: MemgraphProcess) -> None:
    p.start()
    forget(c, p)
    make_replica(c, p)


def test_diverged_registration_leaves_a_zombie_with_empty_data_info_until_the_main_restarts(
        cluster: Cluster) -> None:
    a, b = old_main_with_one_extra_write(cluster)
    run(cluster, b, "CREATE (:N {k: 3})")  # the new MAIN's first write puts its epoch on disk
    demote_restarted(cluster, a)
    with client_error(r"^Couldn't register replica a\. Error: 3$"):
        register(cluster, b, "a", "STRICT_SYNC", a)
    assert replicas(cluster, b)["a"]["data"] is None  # v3.12: no per-database client, data_info {}
    run(cluster, b, "CREATE (:N {k: 4})")  # the zombie is not in the commit path
    with client_error(r"^Couldn't register replica a\. Error: 1$"):
        register(cluster, b, "a", "STRICT_SYNC", a)
    b.restart(kill=True)
    forget(cluster, b)
    data = replicas(cluster, b)["a"]["data"]
    main_ldt = b.state()["ldt"]
    assert data == {"ts": 0, "behind": -main_ldt, "status": "diverged"}  # ts never refreshed (7.3)
    assert values(cluster, a) == [1, 2]  # nothing deleted on the diverged instance


def test_new_main_restarted_before_its_first_write_comes_back_in_the_old_epoch_and_misses_the_divergence(
        cluster: Cluster) -> None:
    a, b = old_main_with_one_extra_write(cluster)
    old_epoch = b.state()["history"][-1][0]
    b.kill()  # crash-restart of the new MAIN before any write: its new epoch was never on disk
    b.start()
    forget(cluster, b)
    assert b.state()["epoch"] == old_epoch and run(cluster, b, "SHOW REPLICATION ROLE") == [["main"]]
    demote_restarted(cluster, a)
    register(cluster, b, "a", "SYNC", a)  # no Error 3: "ahead in the same epoch" looks caught up
    row = replicas(cluster, b)["a"]["data"]
    assert row["status"] == "ready" and row["behind"] > 0
    run(cluster, b, "CREATE (:N {k: 3})")  # accepted by a: prev_ldt is not ahead of a's
    assert values(cluster, a) == [1, 2, 3] and values(cluster, b) == [1, 3]  # silent divergence


def test_create_snapshot_puts_the_new_epoch_on_disk_so_the_old_main_is_seen_diverged(
        cluster: Cluster) -> None:
    a, b = old_main_with_one_extra_write(cluster)
    new_epoch = b.state()["epoch"]
    rows = run(cluster, b, "CREATE SNAPSHOT")
    assert rows[0][0].startswith(str(b.data_dir / "snapshots")) and "_timestamp_" in rows[0][0]
    b.kill()
    b.start()
    forget(cluster, b)
    assert b.state()["epoch"] == new_epoch
    demote_restarted(cluster, a)
    with client_error(r"^Couldn't register replica a\. Error: 3$"):
        register(cluster, b, "a", "SYNC", a)


def test_a_clean_stop_writes_a_snapshot_on_exit_and_keeps_the_new_epoch(cluster: Cluster) -> None:
    _, b = old_main_with_one_extra_write(cluster)
    new_epoch = b.state()["epoch"]
    b.restart()  # SIGTERM: --storage-snapshot-on-exit (the packaged default) writes the epoch
    forget(cluster, b)
    assert b.state()["epoch"] == new_epoch
    assert any((b.data_dir / "snapshots").glob("*_timestamp_*"))


def test_old_main_without_extra_writes_rejoins_the_promoted_replica_and_catches_up(cluster: Cluster) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    make_replica(cluster, b)
    register(cluster, a, "b", "STRICT_SYNC", b)
    run(cluster, a, "CREATE (:N {k: 1})")
    a.kill()
    run(cluster, b, "SET REPLICATION ROLE TO MAIN")
    run(cluster, b, "CREATE (:N {k: 2})")
    demote_restarted(cluster, a)
    register(cluster, b, "a", "ASYNC", a)
    wait_until(lambda: status(cluster, b, "a") == "ready", 10.0)
    assert values(cluster, a) == [1, 2] and count(cluster, b) == 2

"""The data directory as Memgraph lays it out (reference memgraph-replication 7.5, 4.3, 7.3), driven by the
real neo4j driver: `snapshots/`, `wal/`, `replication/`, `auth/`, `--data-recovery-on-startup=false` moving
old files to `.backup`, the restored role, and the by-hand re-seed that issue 17 automates.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import ClientError

from .helpers import (
    Cluster,
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


def entries(d: Path) -> set[str]:
    return {p.name for p in d.iterdir()} if d.exists() else set()


def test_data_directory_has_memgraphs_snapshots_wal_replication_and_auth(cluster: Cluster) -> None:
    p = cluster.start("a", user="admin", password="pw")
    with GraphDatabase.driver(p.bolt_uri, auth=("admin", "pw")) as d, d.session() as s:
        s.run("CREATE (:N {k: 1})").consume()
        path = s.run("CREATE SNAPSHOT").single(strict=True)[0]
    assert {"snapshots", "wal", "replication", "auth"} <= entries(p.data_dir)
    assert Path(path).parent == p.data_dir / "snapshots" and Path(path).name.endswith("_timestamp_2")
    assert "pw" not in (p.data_dir / "auth" / "users.json").read_text()


def test_data_recovery_off_moves_old_files_to_backup_and_keeps_the_restored_role(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    run(cluster, main, "CREATE (:N {k: 1})")
    wait_until(lambda: values(cluster, rep) == [1], 5.0)
    old = entries(rep.data_dir / "wal") | entries(rep.data_dir / "snapshots")
    rep.kill()
    rep.extra_args = ["--data-recovery-on-startup", "false"]
    rep.start()
    forget(cluster, rep)
    assert count(cluster, rep) == 0
    assert entries(rep.data_dir / ".backup" / "wal") | entries(rep.data_dir / ".backup" / "snapshots") == old
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["replica"]]  # replication/ is not touched
    # restarted within three check periods, the MAIN may still call it ready; its next commit finds the
    # replica behind (prev_ldt > ldt: refused), and the recovery brings everything back
    run(cluster, main, "CREATE (:N {k: 2})")
    wait_until(lambda: values(cluster, rep) == [1, 2], 10.0)
    wait_until(lambda: status(cluster, main, "r1") == "ready", 10.0)


def test_restored_main_keeps_its_registrations_and_restored_replica_its_owner(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    owner = rep.state()["uuid"]
    main.restart(kill=True)
    rep.restart(kill=True)
    forget(cluster, main)
    forget(cluster, rep)
    assert rep.state()["uuid"] == owner == main.state()["uuid"]
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["replica"]]
    assert set(replicas(cluster, main)) == {"r1"}
    wait_until(lambda: status(cluster, main, "r1") == "ready", 10.0)


def test_reseed_by_moving_snapshots_wal_and_replication_aside_keeps_the_users_and_recovers(
        cluster: Cluster, tmp_path: Path) -> None:
    creds = ("admin", "pw")
    main = cluster.start("main", user="admin", password="pw")
    rep = cluster.start("r1", user="admin", password="pw")
    for p in (main, rep):
        cluster.driver(p, auth=creds)  # cached: `run` below uses these credentials
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    run(cluster, main, "CREATE (:N {k: 1})")
    rep.stop()
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ("snapshots", "wal", "replication"):  # reference 7.3: keep auth/
        shutil.move(str(rep.data_dir / name), str(archive / name))
    rep.user = rep.password = None  # started without --user: the users come from auth/
    rep.start()
    forget(cluster, rep)
    cluster.driver(rep, auth=creds)
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["main"]] and count(cluster, rep) == 0
    with GraphDatabase.driver(rep.bolt_uri, auth=("admin", "bad")) as bad, pytest.raises(ClientError):
        bad.verify_connectivity()
    make_replica(cluster, rep)
    run(cluster, main, "DROP REPLICA r1")
    register(cluster, main, "r1", "ASYNC", rep)
    wait_until(lambda: values(cluster, rep) == [1], 10.0)

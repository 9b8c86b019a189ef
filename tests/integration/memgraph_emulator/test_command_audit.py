"""The emulator's replication-command audit (sim/memgraph/audit.py): every replication command a Bolt
client ran, with its arrival time, the client's address, and its answer; other queries are not recorded."""

from __future__ import annotations

import time
from pathlib import Path

from sim.memgraph import audit

from .helpers import Cluster, client_error, make_replica, register, run


def test_replication_commands_are_audited_with_client_address_and_answer(cluster: Cluster,
                                                                         tmp_path: Path) -> None:
    trail = tmp_path / "main.commands.jsonl"
    before = time.monotonic()
    main = cluster.start("main", audit_file=trail)
    replica = cluster.start("replica")
    make_replica(cluster, replica)
    run(cluster, main, "CREATE (:N {k: 1})")
    run(cluster, main, "SHOW REPLICAS")
    register(cluster, main, "r1", "ASYNC", replica)
    with client_error("Error: 1"):
        register(cluster, main, "r1", "ASYNC", replica)
    run(cluster, main, "DROP REPLICA r1")
    run(cluster, main, "CREATE SNAPSHOT")

    lines = audit.read(trail)
    assert [line.command for line in lines] == [
        f"REGISTER REPLICA r1 ASYNC TO 127.0.0.1:{replica.replication_port}",
        f"REGISTER REPLICA r1 ASYNC TO 127.0.0.1:{replica.replication_port}",
        "DROP REPLICA r1",
        "CREATE SNAPSHOT",
    ]
    assert [bool(line.error) for line in lines] == [False, True, False, False]
    assert {(line.peer, line.local) for line in lines} == {("127.0.0.1", "127.0.0.1")}
    assert before < lines[0].t <= lines[-1].t < time.monotonic()
    assert not audit.read(tmp_path / "replica.commands.jsonl"), "no file unless one is given"


def test_set_role_is_audited_and_the_audit_survives_a_kill_9(cluster: Cluster, tmp_path: Path) -> None:
    trail = tmp_path / "a.commands.jsonl"
    p = cluster.start("a", audit_file=trail)
    make_replica(cluster, p)
    p.kill()
    p.start()
    run(cluster, p, "SET REPLICATION ROLE TO MAIN")
    assert [line.command for line in audit.read(trail)] == [
        f"SET REPLICATION ROLE TO REPLICA WITH PORT {p.replication_port}", "SET REPLICATION ROLE TO MAIN"]

"""Process behaviour of the emulator: flags, start time, SIGTERM, kill -9 durability, restore on/off,
the hosts-file resolver, the default 1 s heartbeat, and the admin fault hooks (cut/heal/isolate).

Pins reference memgraph-replication 3.2 (3 missed checks -> invalid; restart of the main), 4.3-4.4
(what persists; --replication-restore-state-on-startup) and 1.1 (addresses kept as given, not resolved).
"""

from __future__ import annotations

import socket
import statistics
from pathlib import Path

import pytest
from neo4j import GraphDatabase
from neo4j.exceptions import ServiceUnavailable

from sim import proc
from sim.memgraph.control import MemgraphProcess
from sim.memgraph.timings import MemgraphTimings

from .helpers import FAST, Cluster, client_error, make_replica, register, replicas, run, status, wait_until


def test_bad_flags_exit_with_argparse_error_code_2(tmp_path: Path) -> None:
    base = ["--host", "127.0.0.1", "--replication-port", "1", "--data-dir", str(tmp_path)]
    for args in (["--host", "127.0.0.1"], [*base, "--bolt-port", "x"],
                 [*base, "--bolt-port", "0", "--replication-restore-state-on-startup", "maybe"]):
        p = proc.start_group(proc.python_module_args("sim.memgraph", *args), log_path=tmp_path / "log")
        try:
            assert p.wait(timeout=10) == 2
        finally:
            proc.kill_group(p)


def test_start_time_to_ready_is_well_under_a_second_and_sigterm_exits_cleanly(cluster: Cluster) -> None:
    times = []
    for i in range(3):
        p = cluster.start(f"s{i}")
        times.append(p.last_start_s)
        assert p.stop() == 0
        assert "INFO __main__ stopped" in p.log_path.read_text()
    print(f"emulator start to READY: median {statistics.median(times):.3f}s, max {max(times):.3f}s")
    assert statistics.median(times) < 1.0


def test_kill_9_right_after_acknowledged_commits_loses_nothing(cluster: Cluster) -> None:
    p = cluster.start("a")
    with cluster.driver(p).session() as s:
        for i in range(50):
            s.run("CREATE (:D {i: $i})", i=i).consume()
    p.kill()
    p.start()
    cluster.drivers.clear()  # old pooled connections are dead
    assert run(cluster, p, "MATCH (n:D) RETURN count(n)") == [[50]]
    run(cluster, p, "CREATE (:D {i: 50})")
    assert p.state()["ldt"] > 100


def test_restart_with_restore_keeps_replica_role_uuid_and_main_replicas(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    run(cluster, main, "CREATE (:N)")
    uuid_before = rep.state()["uuid"]
    rep.restart()
    main.restart(kill=True)
    cluster.drivers.clear()
    assert rep.state()["uuid"] == uuid_before
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["replica"]]
    assert run(cluster, main, "SHOW REPLICATION ROLE") == [["main"]]
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)
    run(cluster, main, "CREATE (:N)")
    wait_until(lambda: run(cluster, rep, "MATCH (n:N) RETURN count(n)") == [[2]], 5.0)


def test_restart_with_restore_off_comes_back_as_main_without_replicas_but_with_data(cluster: Cluster) -> None:
    off = ("--replication-restore-state-on-startup", "false")
    main, rep = cluster.start("main", extra_args=off), cluster.start("r1", extra_args=off)
    make_replica(cluster, rep)
    register(cluster, main, "r1", "SYNC", rep)
    run(cluster, main, "CREATE (:N)")
    main.restart()
    rep.restart()
    cluster.drivers.clear()
    assert run(cluster, main, "SHOW REPLICAS") == []
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["main"]]
    assert run(cluster, rep, "MATCH (n:N) RETURN count(n)") == [[1]]
    assert not (main.data_dir / "replication").exists()


def test_hosts_file_names_are_kept_as_given_and_re_resolved_on_every_connect(cluster: Cluster,
                                                                             tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.2 memgraph-1.memgraph-headless memgraph-1\n")
    main = cluster.start("main", hosts_file=hosts)
    port = proc.free_port("127.0.0.3")
    # two "pods" on one loopback: each binds its replication server to its own address (MemgraphProcess's
    # default, as in the emulated cluster), not Memgraph's 0.0.0.0, or the old address would still reach
    # the moved replica
    rep = cluster.start("r1", host="127.0.0.2", replication_port=port)
    make_replica(cluster, rep)
    run(cluster, main, f"REGISTER REPLICA memgraph_1 ASYNC TO 'memgraph-1.memgraph-headless:{port}'")
    assert replicas(cluster, main)["memgraph_1"]["address"] == f"memgraph-1.memgraph-headless:{port}"
    assert status(cluster, main, "memgraph_1") == "ready"
    rep.stop()  # the pod is rescheduled with a new IP; same volume
    moved = MemgraphProcess(rep.data_dir, host="127.0.0.3", replication_port=port, timings=FAST)
    cluster.procs.append(moved)
    moved.start()
    run(cluster, main, "CREATE (:N)")
    wait_until(lambda: status(cluster, main, "memgraph_1") == "invalid", 5.0)
    hosts.write_text("127.0.0.3 memgraph-1.memgraph-headless memgraph-1\n")
    wait_until(lambda: status(cluster, main, "memgraph_1") == "ready", 5.0)
    assert run(cluster, moved, "MATCH (n:N) RETURN count(n)") == [[1]]


def test_default_check_frequency_of_1s_marks_a_dead_replica_invalid_after_3_misses(cluster: Cluster) -> None:
    default = MemgraphTimings()
    main, rep = cluster.start("main", timings=default), cluster.start("r1", timings=default)
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    rep.kill()
    took = wait_until(lambda: status(cluster, main, "r1") == "invalid", 8.0, 0.1)
    print(f"default heartbeat: invalid {took:.2f}s after kill -9")
    assert 2.0 <= took <= 5.0


def test_admin_cut_fails_sync_writes_until_heal(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "SYNC", rep)
    address = f"127.0.0.1:{rep.replication_port}"
    main.cut(address)
    assert main.state()["faults"]["cut"] == [address]
    with client_error("^Replication Exception: Failed to replicate to SYNC replica 'r1'"):
        run(cluster, main, "CREATE (:N)")
    assert status(cluster, main, "r1") == "invalid"
    main.heal()
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)
    assert run(cluster, rep, "MATCH (n:N) RETURN count(n)") == [[1]]


def test_admin_cut_on_the_replica_refuses_its_main(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "SYNC", rep)
    rep.cut(f"127.0.0.1:{main.bolt_port}")  # incoming: the sender identity is host:bolt_port
    with client_error("SYNC replica 'r1'"):
        run(cluster, main, "CREATE (:N)")
    rep.heal(f"127.0.0.1:{main.bolt_port}")
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)


def test_admin_isolate_refuses_new_bolt_connections_and_replication(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    rep.isolate()
    fresh = GraphDatabase.driver(rep.bolt_uri, connection_timeout=1.0)
    try:
        with pytest.raises(ServiceUnavailable):
            fresh.verify_connectivity()
    finally:
        fresh.close()
    wait_until(lambda: status(cluster, main, "r1") == "invalid", 5.0)
    rep.unisolate()
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)


def test_admin_server_rejects_unknown_actions_and_bad_bodies(cluster: Cluster) -> None:
    p = cluster.start("a")
    with pytest.raises(Exception, match="404"):
        p.admin("explode")
    with pytest.raises(Exception, match="400"):
        p.admin("delay", {"ms": "soon"})
    assert p.state()["role"] == "main"


def test_replica_port_already_bound_makes_demotion_fail(cluster: Cluster) -> None:
    a = cluster.start("a")
    with client_error(r"^Couldn't set role to replica!$"):
        run(cluster, a, f"SET REPLICATION ROLE TO REPLICA WITH PORT {a.bolt_port}")
    assert run(cluster, a, "SHOW REPLICATION ROLE") == [["main"]]


def test_kill_reaps_the_emulator_process(cluster: Cluster) -> None:
    p = cluster.start("a")
    pid = p.proc.pid if p.proc else -1
    p.kill()
    assert not p.alive
    assert pid > 0 and not Path(f"/proc/{pid}/status").exists()


def test_garbage_on_the_replication_port_is_dropped_and_replication_goes_on(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "SYNC", rep)
    for junk in (b"\xff\xff\xff\xff", b"\x00\x00\x00\x05hello", b"\x00\x00\x00\x02[]"):
        with socket.create_connection(("127.0.0.1", rep.replication_port), timeout=3.0) as s:
            s.sendall(junk)
            s.shutdown(socket.SHUT_WR)
            assert s.recv(16) == b""
    run(cluster, main, "CREATE (:N)")
    assert run(cluster, rep, "MATCH (n:N) RETURN count(n)") == [[1]]

"""Replication scenarios with 2-3 emulator processes and the real driver.

Pins reference memgraph-replication 1.3-1.4 (texts, REGISTER), 2.2/2.4 (SHOW REPLICAS, ts arithmetic),
3.1-3.3 (states, heartbeats, main UUID ownership), 4.1 (divergence) and 5 (commit modes, v3.10-3.12).
"""

from __future__ import annotations

import time

import pytest
from neo4j.exceptions import ClientError

from sim.memgraph.control import MemgraphProcess

from .helpers import (
    Cluster,
    client_error,
    make_replica,
    register,
    replicas,
    run,
    status,
    wait_until,
)

SYNC_ERR = ("Replication Exception: Failed to replicate to SYNC replica 'r1': replica is not reachable or "
            "not in sync with the main. Replica will be recovered automatically. Transaction is still "
            "committed on the main instance and other alive replicas. Check the status of the replicas using "
            "'SHOW REPLICAS' query.")
STRICT_ERR = ("Replication Exception: Failed to replicate to STRICT_SYNC replica 'r1': replica is not "
              "reachable or not in sync with the main. Replica will be recovered automatically. Transaction "
              "was aborted on all instances. Check the status of the replicas using 'SHOW REPLICAS' query.")


def count(c: Cluster, p: MemgraphProcess, label: str = "N") -> int:
    return int(run(c, p, f"MATCH (n:{label}) RETURN count(n)")[0][0])


def pair(c: Cluster, mode: str) -> tuple[MemgraphProcess, MemgraphProcess]:
    main, rep = c.start("main"), c.start("r1")
    make_replica(c, rep)
    register(c, main, "r1", mode, rep)
    return main, rep


def test_registered_in_sync_replica_is_ready_at_once_and_first_write_shows_ts_2(cluster: Cluster) -> None:
    main, rep = pair(cluster, "SYNC")
    row = replicas(cluster, main)["r1"]
    assert row["address"] == f"127.0.0.1:{rep.replication_port}" and row["mode"] == "sync"
    assert row["system_info"] is None and row["data"] == {"ts": 0, "behind": 0, "status": "ready"}
    run(cluster, main, "CREATE (:N {k: 1})")
    assert replicas(cluster, main)["r1"]["data"] == {"ts": 2, "behind": 0, "status": "ready"}
    run(cluster, main, "MATCH (n:N) RETURN count(n)")
    run(cluster, main, "CREATE (:N {k: 2})")
    assert replicas(cluster, main)["r1"]["data"]["ts"] == 5  # reference 2.4: CREATE, MATCH, CREATE -> 5
    assert run(cluster, rep, "MATCH (n:N) RETURN n.k") == [[1], [2]]
    assert run(cluster, rep, "SHOW REPLICATION ROLE") == [["replica"]]


def test_replica_refuses_writes_and_show_replicas_with_v3_texts(cluster: Cluster) -> None:
    _, rep = pair(cluster, "ASYNC")
    with client_error("^Write queries are forbidden on the replica instance"):
        run(cluster, rep, "CREATE (:N)")
    with client_error("^Show replicas query should only be run on the main instance.$"):
        run(cluster, rep, "SHOW REPLICAS")
    with client_error("^Replica can't register another replica!$"):
        run(cluster, rep, "REGISTER REPLICA x ASYNC TO '127.0.0.1:1'")
    with client_error("^Couldn't set role to replica!$"):
        make_replica(cluster, rep)


def test_replication_grammar_semantic_errors_and_address_forms(cluster: Cluster) -> None:
    main = cluster.start("main")
    cases = {
        "SET REPLICATION ROLE TO MAIN WITH PORT 1": "Main can't set a port!",
        "SET REPLICATION ROLE TO REPLICA": "Replica must set a port!",
        "SET REPLICATION ROLE TO REPLICA WITH PORT '1'": "Port must be an integer literal!",
        "SET REPLICATION ROLE TO REPLICA WITH PORT 70000": "Port number invalid!",
        "REGISTER REPLICA a SYNC TO 10": "Socket address should be a string literal!",
        "REGISTER REPLICA a SYNC TO 'a:b:c'": "Invalid socket address. The socket address must be",
        "SET REPLICATION ROLE TO MAIN": "Couldn't set replication role to main!",
        "DROP REPLICA nobody": "Failed to unregister the replica nobody.",
    }
    for query, message in cases.items():
        with pytest.raises(ClientError) as err:
            run(cluster, main, query)
        assert err.value.message.startswith(message), query
    with client_error(r"^Couldn't register replica odd name\. Error: 5$"):  # unresolvable, stays registered
        run(cluster, main, "register replica `odd name` async to 'memgraph-9.svc'")
    with client_error(r"^Couldn't register replica odd name\. Error: 1$"):
        run(cluster, main, "REGISTER REPLICA `odd name` ASYNC TO '127.0.0.2:1'")
    with client_error(r"^Couldn't register replica other\. Error: 2$"):
        run(cluster, main, "REGISTER REPLICA other ASYNC TO 'memgraph-9.svc:10000'")
    assert replicas(cluster, main)["odd name"]["address"] == "memgraph-9.svc:10000"


def test_unreachable_replica_register_gives_error_5_and_stays_with_empty_data_info(cluster: Cluster) -> None:
    main = cluster.start("main")
    with client_error(r"^Couldn't register replica r1\. Error: 5$"):
        run(cluster, main, "REGISTER REPLICA r1 SYNC TO '127.0.0.1:1'")
    row = replicas(cluster, main)["r1"]
    assert row["data"] is None  # data_info == {}
    run(cluster, main, "CREATE (:N)")  # no per-database client: not in the commit path (reference 1.4)
    run(cluster, main, "DROP REPLICA r1")
    assert replicas(cluster, main) == {}


def test_killed_async_replica_goes_invalid_then_recovers_the_missing_data(cluster: Cluster) -> None:
    main, rep = pair(cluster, "ASYNC")
    run(cluster, main, "CREATE (:N {k: 1})")
    in_sync = {"ts": 2, "behind": 0, "status": "ready"}
    wait_until(lambda: replicas(cluster, main)["r1"]["data"] == in_sync, 5.0)
    rep.kill()
    took = wait_until(lambda: status(cluster, main, "r1") == "invalid", 5.0)
    assert took < 3 * 0.2 + 1.0  # about 3 missed heartbeats at 0.2 s
    run(cluster, main, "CREATE (:N {k: 2})")
    data = replicas(cluster, main)["r1"]["data"]
    assert data["status"] == "invalid" and data["ts"] == 2 and data["behind"] < 0
    rep.start()
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)
    assert run(cluster, rep, "MATCH (n:N) RETURN n.k") == [[1], [2]]
    assert replicas(cluster, main)["r1"]["data"]["behind"] == 0


def test_sync_replica_down_commits_on_main_and_raises_the_sync_error(cluster: Cluster) -> None:
    main, rep = pair(cluster, "SYNC")
    rep.kill()
    with pytest.raises(ClientError) as err:
        run(cluster, main, "CREATE (:N)")
    assert err.value.message == SYNC_ERR
    assert count(cluster, main) == 1


def test_strict_sync_replica_down_aborts_everywhere_and_recovers_later(cluster: Cluster) -> None:
    main, rep = pair(cluster, "STRICT_SYNC")
    other = cluster.start("r2")
    make_replica(cluster, other)
    register(cluster, main, "r2", "ASYNC", other)
    run(cluster, main, "CREATE (:N {k: 1})")
    rep.kill()
    with pytest.raises(ClientError) as err:
        run(cluster, main, "CREATE (:N {k: 2})")
    assert err.value.message == STRICT_ERR
    assert count(cluster, main) == 1
    time.sleep(0.3)
    assert count(cluster, other) == 1
    rep.start()
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)
    run(cluster, main, "CREATE (:N {k: 3})")
    assert run(cluster, rep, "MATCH (n:N) RETURN n.k") == [[1], [3]]
    wait_until(lambda: count(cluster, other) == 2, 5.0)


def test_strict_sync_commit_waits_for_the_replica_vote(cluster: Cluster) -> None:
    main, rep = pair(cluster, "STRICT_SYNC")
    main.delay(300)
    t0 = time.monotonic()
    run(cluster, main, "CREATE (:N)")
    assert time.monotonic() - t0 >= 0.3
    assert count(cluster, rep) == 1  # visible on the replica once the client has its answer


def test_swap_roles_demote_promote_reregister_is_ready(cluster: Cluster) -> None:
    a, b = pair(cluster, "SYNC")
    run(cluster, a, "CREATE (:N {k: 1})")
    make_replica(cluster, a)
    run(cluster, b, "SET REPLICATION ROLE TO MAIN")
    assert run(cluster, b, "SHOW REPLICAS") == []
    register(cluster, b, "a", "SYNC", a)
    assert status(cluster, b, "a") == "ready"
    run(cluster, b, "CREATE (:N {k: 2})")
    assert run(cluster, a, "MATCH (n:N) RETURN n.k") == [[1], [2]]


def test_old_main_with_unique_writes_is_diverged_error_3_and_stays_as_zombie(cluster: Cluster) -> None:
    a, b = pair(cluster, "ASYNC")
    run(cluster, a, "CREATE (:N {k: 1})")
    wait_until(lambda: count(cluster, b) == 1, 5.0)
    run(cluster, b, "SET REPLICATION ROLE TO MAIN")  # failover while a still runs
    run(cluster, a, "CREATE (:N {k: 'unique'})")
    run(cluster, b, "CREATE (:N {k: 2})")
    make_replica(cluster, a)
    with client_error(r"^Couldn't register replica a\. Error: 3$"):
        register(cluster, b, "a", "SYNC", a)
    assert replicas(cluster, b)["a"]["data"] is None  # v3.12 zombie entry: no per-database client
    assert count(cluster, a) == 2  # nothing deleted on the diverged instance
    run(cluster, b, "DROP REPLICA a")
    assert replicas(cluster, b) == {}


def test_two_independent_mains_with_data_diverge(cluster: Cluster) -> None:
    a, b = cluster.start("a"), cluster.start("b")
    run(cluster, a, "CREATE (:N)")
    run(cluster, b, "CREATE (:N)")
    make_replica(cluster, b)
    with client_error(r"Error: 3$"):
        register(cluster, a, "b", "ASYNC", b)


def test_fresh_empty_replica_registered_to_main_with_data_is_recovered(cluster: Cluster) -> None:
    main, rep = cluster.start("main"), cluster.start("r1")
    run(cluster, main, "CREATE (:N), (:N), (:N)")
    make_replica(cluster, rep)
    register(cluster, main, "r1", "ASYNC", rep)
    wait_until(lambda: status(cluster, main, "r1") == "ready", 5.0)
    assert count(cluster, rep) == 3


def test_demoted_main_cannot_commit_an_open_transaction(cluster: Cluster) -> None:
    main = cluster.start("main")
    with cluster.driver(main).session() as s:
        tx = s.begin_transaction()
        tx.run("CREATE (:N)").consume()
        make_replica(cluster, main)
        with client_error(r"^Cannot commit because instance is not main anymore\.$"):
            tx.commit()
    assert count(cluster, main) == 0


def test_restored_old_main_after_failover_does_not_win_its_replicas_back(cluster: Cluster) -> None:
    a = cluster.start("a")
    b, c = cluster.start("b"), cluster.start("c")
    for name, p in (("b", b), ("c", c)):
        make_replica(cluster, p)
        register(cluster, a, name, "SYNC", p)
    run(cluster, a, "CREATE (:N {k: 1})")
    a.kill()
    run(cluster, b, "SET REPLICATION ROLE TO MAIN")
    register(cluster, b, "c", "SYNC", c)
    a.start()  # restore on: MAIN again, with its persisted replicas, and no SwapMainUUID re-sent
    assert run(cluster, a, "SHOW REPLICATION ROLE") == [["main"]]
    time.sleep(1.0)  # several heartbeat periods
    rows = replicas(cluster, a)
    assert {n: r["data"]["status"] for n, r in rows.items()} == {"b": "invalid", "c": "invalid"}
    with client_error("SYNC replicas 'b' and 'c'"):
        run(cluster, a, "CREATE (:N {k: 'lost'})")
    run(cluster, b, "CREATE (:N {k: 2})")
    assert run(cluster, c, "MATCH (n:N) RETURN n.k") == [[1], [2]]
    assert status(cluster, b, "c") == "ready"

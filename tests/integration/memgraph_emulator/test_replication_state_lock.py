"""Memgraph's replication-state lock, driven by the real neo4j driver (sim/memgraph/rwlock.py): a commit holds
it shared for its whole replication, so REGISTER, DROP and role changes fail at once meanwhile; a REGISTER
holds it exclusively while it waits for its replica, so commits and SHOW REPLICATION ROLE wait with it.
"""

from __future__ import annotations

import pytest
from neo4j.exceptions import ClientError

from sim.memgraph.timings import MemgraphTimings

from .helpers import Background, Cluster, client_error, make_replica, register, run, wait_until

# a frozen replica answers nothing: Memgraph waits 30 s for a vote and 10 s for SwapMainUUID; shortened
# here so the in-flight windows last a couple of seconds
SHORT = MemgraphTimings(check_frequency_s=0.2, prepare_timeout_s=5.0, swap_uuid_timeout_s=5.0)


def test_replication_queries_fail_at_once_while_a_commit_is_in_flight(cluster: Cluster) -> None:
    main, rep = cluster.start("main", timings=SHORT), cluster.start("r1", timings=SHORT)
    make_replica(cluster, rep)
    register(cluster, main, "r1", "STRICT_SYNC", rep)
    rep.pause()
    try:
        write = Background(main, "CREATE (:N {k: 1})")  # waits for the frozen replica's vote
        wait_until(lambda: main.state()["replicas"]["r1"]["status"] == "replicating", 5.0)
        with client_error(r"^Failed to unregister replica due to lack of unique access over the cluster"):
            run(cluster, main, "DROP REPLICA r1")
        with client_error(r"^Couldn't register replica r2\. Error: 6$"):
            run(cluster, main, "REGISTER REPLICA r2 ASYNC TO '127.0.0.1:1'")
        with client_error(r"^Couldn't set role to replica!$"):
            run(cluster, main, f"SET REPLICATION ROLE TO REPLICA WITH PORT {main.replication_port}")
        assert run(cluster, main, "SHOW REPLICATION ROLE") == [["main"]]  # a reader, like the commit
        assert not write.done.is_set()
        assert isinstance(write.outcome(), ClientError)  # the vote timed out: aborted
    finally:
        rep.resume()
    run(cluster, main, "DROP REPLICA r1")


def test_commits_and_show_replication_role_wait_while_a_register_waits_for_its_replica(
        cluster: Cluster) -> None:
    main, rep = cluster.start("main", timings=SHORT), cluster.start("r1", timings=SHORT)
    make_replica(cluster, rep)
    rep.pause()
    try:
        reg = Background(main, f"REGISTER REPLICA r1 SYNC TO '127.0.0.1:{rep.replication_port}'")
        wait_until(lambda: "r1" in main.state()["replicas"], 5.0)  # persisted: now in SwapMainUUID
        role = Background(main, "SHOW REPLICATION ROLE")
        write = Background(main, "CREATE (:N {k: 1})")
        assert not role.done.wait(0.5) and not write.done.is_set()  # both wait for the REGISTER
        assert isinstance(reg.outcome(), ClientError)  # SwapMainUUID timed out: Error 5
        assert role.outcome() is None and write.outcome() is None  # then they ran
    finally:
        rep.resume()
    with pytest.raises(ClientError, match="Error: 1"):
        register(cluster, main, "r1", "SYNC", rep)  # the entry stayed (reference 1.4)

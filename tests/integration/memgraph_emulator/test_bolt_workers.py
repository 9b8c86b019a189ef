"""Memgraph's Bolt worker pool, driven by the real neo4j driver: `--bolt-num-workers` mixed workers plus one
high-priority worker (`src/memgraph.cpp:859-870`, `src/glue/SessionHL.cpp:231-266`; sim/memgraph/workers.py).
"""

from __future__ import annotations

import os
import time

from sim.memgraph.control import MemgraphProcess

from .helpers import Background, Cluster, client_error, run, wait_until


def workers(p: MemgraphProcess) -> dict[str, int]:
    return dict(p.state()["workers"])


def test_bolt_num_workers_defaults_to_the_number_of_cores(cluster: Cluster) -> None:
    p = cluster.start("a")
    assert workers(p) == {"workers": os.cpu_count(), "busy": 0, "high_priority_busy": False, "queued": 0,
                          "queued_low": 0}


def test_queries_queue_while_every_bolt_worker_is_busy_and_none_is_refused(cluster: Cluster) -> None:
    p = cluster.start("a", extra_args=("--bolt-num-workers", "2"))
    run(cluster, p, "RETURN 1")  # a pooled connection, so the query below needs no new handshake
    p.busy(1.5)
    wait_until(lambda: workers(p)["busy"] == 2, 5.0)
    t0 = time.monotonic()
    assert run(cluster, p, "MATCH (n) RETURN count(n)") == [[0]]
    waited = time.monotonic() - t0
    assert waited >= 1.0, f"the query ran after {waited:.2f}s while both workers were busy for 1.5s"
    # the worker that served the query marks itself idle just after sending the answer
    wait_until(lambda: workers(p)["busy"] == 0, 2.0)


def test_show_replication_role_is_answered_by_the_high_priority_worker_while_every_worker_is_busy(
        cluster: Cluster) -> None:
    p = cluster.start("a", extra_args=("--bolt-num-workers", "1"))
    run(cluster, p, "RETURN 1")
    p.busy(10.0)
    wait_until(lambda: workers(p)["busy"] == 1, 5.0)
    read = Background(p, "MATCH (n) RETURN count(n)")  # LOW: queued behind the busy worker
    wait_until(lambda: workers(p)["queued_low"] == 1, 5.0)  # its own thread: connected and queued only now
    assert run(cluster, p, "SHOW REPLICATION ROLE") == [["main"]]
    now = workers(p)
    assert now["busy"] == 1 and now["queued_low"] == 1  # answered while the LOW work still waits
    assert not read.done.is_set()
    assert read.outcome(20.0) is None


def test_a_long_query_holds_its_worker_for_its_whole_run(cluster: Cluster) -> None:
    p = cluster.start("a", extra_args=("--bolt-num-workers", "1"))
    run(cluster, p, "RETURN 1")
    sleeper = Background(p, "CALL sim.sleep(2)")
    wait_until(lambda: workers(p)["busy"] == 1, 5.0)
    second = Background(p, "RETURN 2")
    wait_until(lambda: workers(p)["queued"] == 1, 5.0)  # the second query waits for the only worker
    assert not sleeper.done.is_set()
    assert sleeper.outcome() is None and second.outcome() is None


def test_sim_sleep_is_a_read_query_and_unknown_procedures_fail_as_in_memgraph(cluster: Cluster) -> None:
    p = cluster.start("a")
    with cluster.driver(p).session() as s:
        summary = s.run("CALL sim.sleep(0)").consume()
    assert summary.query_type == "r"
    with client_error(r"^There is no procedure named 'mg\.nothing'\.$"):
        run(cluster, p, "CALL mg.nothing(1)")

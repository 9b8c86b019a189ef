"""Scenarios in the windows of Memgraph's two-phase commit (reference memgraph-replication 7.2), with the
emulator's commit control (`sim.faults.commit_fault`): a MAIN frozen at a chosen step of a write's commit.

These pin HA defects the emulator's honesty now exposes; each is a strict xfail naming the behaviour until
issue 16 ("HA defects") fixes it, so a fix turns it into a failure that asks for the marker's removal.
Only the final assertion is the defect (`raises=AssertionError`); a setup that does not reach the window
(no failover, no acknowledgement after the resume) fails as a plain failure, never as the expected one.
"""

from __future__ import annotations

import threading

import pytest
from neo4j import GraphDatabase

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 30.0


@pytest.mark.xfail(strict=True, raises=AssertionError, reason=(
    "HA defect for issue 16 (fence before promoting): a MAIN paused between the STRICT_SYNC votes and its "
    "local commit, for longer than a failover takes, commits on resume and acknowledges a write that the "
    "promoted replica aborted (reference 7.2); nothing stops its Memgraph before the promotion"))
def test_main_paused_between_votes_and_local_commit_acknowledges_no_write_the_new_main_lacks(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=12)
    assert sc.writer is not None
    sc.writer.stop()  # one client, so the frozen commit is ours and its late answer is seen
    old = sc.main()
    host, port = sc.cluster.runtime(old).ip, sc.cluster.ports["bolt"]
    faults.commit_fault(sc.cluster, old, "votes_in", "stop", flog=sc.flog)
    outcome: dict[str, object] = {}

    def write() -> None:
        with GraphDatabase.driver(f"bolt://{host}:{port}", auth=None, connection_timeout=3.0) as d:
            try:
                with d.session() as s:
                    s.run("CREATE (:Late {id: 'late-1'})").consume()
                outcome["acked"] = True
            except Exception as exc:  # the outcome is what the scenario judges
                outcome["error"] = repr(exc)

    client = threading.Thread(target=write, daemon=True)
    client.start()
    sc.cluster.runtime(old).memgraph.wait_stopped(10.0)
    new = sc.wait_main(lambda m: m != old, sc.cfg.failover_after_s + SLACK_S, "failover from the paused MAIN")
    faults.resume_memgraph(sc.cluster, old, flog=sc.flog)
    client.join(SLACK_S)
    if client.is_alive() or not outcome.get("acked"):  # the setup, not the defect: a plain failure
        pytest.fail(f"the paused write was not acknowledged after the resume: {outcome}")
    new_ip = sc.cluster.runtime(new).ip
    with GraphDatabase.driver(f"bolt://{new_ip}:{port}", auth=None, connection_timeout=3.0) as d, \
            d.session() as s:
        on_new = [r["id"] for r in s.run("MATCH (n:Late) RETURN n.id AS id")]
    assert on_new == ["late-1"], f"acknowledged write 'late-1' is not on the new MAIN {new}: {on_new}"

"""Scenarios in the windows of Memgraph's two-phase commit (reference memgraph-replication 7.2), with the
emulator's commit control (`sim.faults.commit_fault`): a MAIN frozen at a chosen step of a write's commit.

A MAIN paused between the STRICT_SYNC votes and its local commit, for longer than a failover takes, would
commit on resume, fail the finalize silently and acknowledge a write the promoted replica aborted. The
leader fences it first (issue 16 item 5): the old MAIN's agent SIGKILLs its Memgraph through the pod's
shared process namespace and confirms, and only then is the replica promoted. The killed commit is not
committed on disk (7.2: WAL `commit=false`, skipped at replay), so its client gets an error, never an
acknowledgement. A setup that does not reach the window (no freeze, no failover) fails plainly.
"""

from __future__ import annotations

import threading

from neo4j import GraphDatabase

from sim import faults
from tests.scenarios.conftest import MakeScenario

SLACK_S = 30.0


def test_main_paused_between_votes_and_local_commit_acknowledges_no_write_the_new_main_lacks(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=12)  # the agents fence each other with the generated HA_FENCE_TOKEN
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
    new = sc.wait_main(lambda m: m != old, sc.cluster.timings.failover_after_s + SLACK_S,
                       "failover from the paused MAIN")
    faults.resume_memgraph(sc.cluster, old, flog=sc.flog)  # a no-op on a fenced (killed) Memgraph
    client.join(SLACK_S)
    if client.is_alive():  # the setup, not the behaviour: a plain failure
        raise AssertionError(f"the paused write got no answer after the failover: {outcome}")
    text = (sc.cluster.status()["cluster"].get("last_failover") or {}).get("text", "")
    assert "fence: confirmed" in text, f"the failover did not confirm the fence of {old}: {text!r}"
    new_ip = sc.cluster.runtime(new).ip
    with GraphDatabase.driver(f"bolt://{new_ip}:{port}", auth=None, connection_timeout=3.0) as d, \
            d.session() as s:
        on_new = [r["id"] for r in s.run("MATCH (n:Late) RETURN n.id AS id")]
    if outcome.get("acked"):
        assert on_new == ["late-1"], f"acknowledged write 'late-1' is not on the new MAIN {new}: {on_new}"
    else:
        assert on_new == [], f"a write its client saw fail is on the new MAIN {new}: {on_new}"
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0

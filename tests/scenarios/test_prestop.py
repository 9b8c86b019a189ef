"""Scenarios around the MAIN pod's termination: its agent killed during the preStop hook, a hook that
never reaches the agent, and a replica `invalid` while the MAIN terminates (prior art 001 issues 5, 6).

Each runs a writer through the client Service and the I1-I7 checker (tests/scenarios/harness.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sim import faults, proc
from sim.memgraph.timings import MISSES_TO_INVALID, MemgraphTimings
from tests.scenarios.conftest import MakeScenario

SLACK_S = 30.0


def invalid_within_s(t: MemgraphTimings) -> float:
    """How long a MAIN may take to show a silently cut replica `invalid` (reference memgraph-replication
    7.4): a STRICT_SYNC commit in flight holds the replica's RPC lock up to its PrepareCommit timeout, then
    kFailureAfterN frequent checks each wait their own timeout, one check period apart; plus our slack."""
    return t.prepare_timeout_s + MISSES_TO_INVALID * (t.check_frequency_s + t.frequent_heartbeat_timeout_s) \
        + SLACK_S


def _hook_started(log_dir: Path) -> bool:
    return any("START" in p.read_text(errors="replace") for p in log_dir.glob("prestop-*.log"))


def test_kill_main_agent_during_its_prestop(scenario: MakeScenario) -> None:
    sc = scenario(seed=4, values={"haAgent": {"prestopBudgetSeconds": 40}})
    old = sc.main()
    log_dir = sc.cluster.workdir / "pvc" / old / "log"
    faults.delete_pod(sc.cluster, old, flog=sc.flog)
    sc.cluster.wait_for(lambda: _hook_started(log_dir), SLACK_S, f"preStop hook of {old} started")
    faults.kill_agent(sc.cluster, old, flog=sc.flog)  # a native sidecar is restarted until its SIGTERM
    new = sc.wait_main(lambda m: m != old, SLACK_S + 10.0, "a new MAIN")
    sc.flog.add(f"new MAIN {new}")
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(old), 60.0, f"{old} re-created and Ready")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert sc.main() != old
    assert any(r.end_wall is not None for r in ev.timeline.prestops if r.pod == old), "hook left its END"


def test_hook_that_never_reaches_the_agent_still_hands_over(scenario: MakeScenario) -> None:
    sc = scenario(seed=5, values={"haAgent": {"prestopBudgetSeconds": 48}})
    old = sc.main()
    rt = sc.cluster.runtime(old)
    # nothing listens there: a port free in the pod's own namespace, or on its loopback address
    closed = rt.ports["agent"] + 1 if rt.box.namespaced else proc.free_port(rt.ip)
    rt.hook_env_override = {"AGENT_URL": f"http://{rt.box.local_host}:{closed}"}
    sc.flog.add(f"preStop hook of {old} points at closed port {closed}")
    with sc.planned_change():
        faults.delete_pod(sc.cluster, old, flog=sc.flog)
        new = sc.wait_main(lambda m: m != old, SLACK_S, "switchover on deletionTimestamp")
    moved_at = time.monotonic()
    sc.flog.add(f"new MAIN {new}")
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(old), 60.0, f"{old} re-created and Ready")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    rec = next(r for r in sc.cluster.terminations if r.pod == old)
    assert rec.hook_exit not in (0, None), "the hook failed (it never reached the agent)"
    assert moved_at <= rec.started + rec.hook_s, "the MAIN moved while the old Memgraph still ran"
    hooks = [r for r in ev.timeline.prestops if r.pod == old]
    assert hooks and all(a.outcome != "SUCCESS" for r in hooks for a in r.attempts)


@pytest.mark.long  # with Memgraph's timeouts and a silent cut, `invalid` takes up to ~50 s
@pytest.mark.timeout(300)
def test_invalid_replica_is_not_promoted_when_the_main_terminates(scenario: MakeScenario) -> None:
    sc = scenario(seed=10)
    old, sync = sc.main(), sc.sync_replica()
    other = next(p for p in sc.cluster.pod_names() if p not in (old, sync))

    def shown_invalid() -> bool:
        for p in sc.cluster.status(timeout_s=1.0)["pods"]:
            if p["name"] == sync:
                return (p.get("replica") or {}).get("status") == "invalid"
        return False

    with faults.cut_replication(sc.cluster, old, sync, flog=sc.flog):
        sc.cluster.wait_for(shown_invalid, invalid_within_s(sc.cfg.template.memgraph_timings),
                            f"{sync} shown invalid")
        cut_at = time.monotonic()
        with sc.planned_change():
            uid = sc.cluster.pod_uid(old)
            faults.delete_pod(sc.cluster, old, flog=sc.flog)
            # Usually the preStop hands the MAIN over to `other`. On the namespaced bed the silent cut
            # keeps the old MAIN's Bolt workers in Memgraph's replication timeouts (the leader sees it
            # unreachable, its pod Ready: no failover), and its agent may find its Memgraph not answering
            # at the hook: then nothing is handed over and the re-created pod resumes as the record's MAIN
            # from its volume. Either way `sync` (invalid) must never become MAIN.
            def settled(m: str | None) -> bool:
                return m == other or (m == old and sc.cluster.pod_uid(old) not in (None, uid))

            new = sc.wait_main(settled, sc.cluster.timings.grace_s + SLACK_S, "a MAIN after the deletion")
        sc.flog.add(f"MAIN {new} after the deletion")
        healed_at = time.monotonic()
    promoted_invalid = [s for s in sc.timeline.samples
                        if s.pod == sync and s.role == "main" and cut_at <= s.t <= healed_at]
    assert not promoted_invalid, f"{sync} was MAIN while its replication link was cut"
    sc.cluster.wait_for(lambda: sc.cluster.pod_ready(old), 60.0, f"{old} re-created and Ready")
    sc.converge()
    ev = sc.finish()
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0

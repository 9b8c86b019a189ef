"""Scenarios of issue 16 item 6: in SYNC mode a failover is opt-in (allowAsyncFailover), and its loss is
reported, not hidden.

In SYNC mode nothing fences an isolated old MAIN: Memgraph commits locally whatever its SYNC replica says
(reference memgraph-replication.md section 5, "SYNC": "The local commit happens regardless"), so after a
failover it may keep committing -- two writers. Only STRICT_SYNC votes fence it. So:
(a) without allowAsyncFailover the MAIN cut from everything (a node partition) is NOT failed over: the
    record's MAIN never changes for a window well past failoverAfter, the leader's verdict and a
    `NoFailoverCandidate` Event say "allowAsyncFailover is off", and after the heal writes resume on the
    same MAIN with I1-I7 holding;
(b) with it, the failover happens, status and the `FailoverStarted` Event say it may lose writes, and the
    run declares the unfenced failover to the checker (`sim.timeline.DeclaredLoss`): every write the
    cut old MAIN acknowledged (or answered "still committed on the main instance") that the new MAIN
    lacks is counted and listed in the report (`sim.check_declared`), never excused silently; any other
    loss still fails I3.

Timings: the chart's, on the suite's time scale (`SimCluster.timings`); the emulated node controller
keeps the pod Ready for its node grace after the node goes silent, then marks it NotReady.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from sim import faults
from sim.readback import read_ids
from sim.timeline import DeclaredLoss
from tests.scenarios.conftest import MakeScenario, needs_partitions

pytestmark = needs_partitions

SLACK_S = 30.0  # generous: 2 shared cores, other suites running
RECONCILE_CYCLES = 10  # "a few reconcile cycles" past failoverAfter, with a leader change's lease on top
POLL_S = 0.2
IN_FLIGHT_S = 120.0  # TCP's retransmission backoff after a ~20 s cut, and Memgraph's replication timeouts


def _events(sc: Any, reason: str) -> list[str]:
    return [str(e.get("message", "")) for e in sc.cluster.kube.list("Event", sc.cfg.namespace)
            if e.get("reason") == reason]


def _record_main(sc: Any) -> str:
    lease = sc.cluster.kube.get("Lease", sc.cfg.namespace, f"{sc.cfg.name}-ha")
    return str((lease["metadata"].get("annotations") or {}).get("memgraph-ha.io/main", ""))


def _ids(sc: Any, pod: str) -> set[str]:
    user, password = sc.cfg.memgraph_auth or ("", "")
    return read_ids(sc.cluster.runtime(pod).ip, sc.cluster.ports["bolt"], user=user, password=password)


def _replicas_ids(sc: Any) -> set[str]:
    main = sc.main()
    return set().union(*(_ids(sc, p) for p in sc.cluster.pod_names() if p != main))


def _not_ready_s(sc: Any) -> float:
    """The node controller's grace and one monitor period: the lost node's pod is NotReady by then."""
    return float(sc.cluster.timings.node_grace_s + sc.cluster.timings.node_monitor_period_s)


def _verdict(sc: Any) -> str:
    try:
        return str(sc.cluster.status(timeout_s=1.0).get("cluster", {}).get("verdict") or "")
    except RuntimeError as exc:  # no agent answered this time (a leader change): ask again
        sc.flog.add(f"status: {exc}")
        return ""


@pytest.mark.long
@pytest.mark.timeout(300)
def test_sync_mode_main_cut_off_is_not_failed_over_without_allow_async_failover(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=61, sync_mode="SYNC", writer_threads=2)
    c, old = sc.cluster, sc.main()
    assert c.status()["cluster"]["sync_mode"] == "sync", "the cluster runs in SYNC mode"
    t = c.timings
    window_s = t.failover_after_s + RECONCILE_CYCLES * t.reconcile_interval_s + t.lease_duration_s
    with faults.partition(c, old, "all", node=True, flog=sc.flog):
        c.wait_for(lambda: not c.pod_ready(old), _not_ready_s(sc) + SLACK_S, f"{old} NotReady (node lost)")
        refused_at = time.monotonic()
        c.wait_for(lambda: "allowAsyncFailover is off" in _verdict(sc), window_s + SLACK_S,
                   "the leader's verdict says why it does not fail over")
        verdict = _verdict(sc)
        sc.flog.add(f"verdict: {verdict}")
        mains = set()
        end = refused_at + window_s
        while time.monotonic() < end:  # bounded: window_s
            mains.add(_record_main(sc))
            time.sleep(POLL_S)
        sc.flog.add(f"record MAIN over {window_s:.1f}s after NotReady: {sorted(mains)}")
        events = [m for m in _events(sc, "NoFailoverCandidate") if "allowAsyncFailover is off" in m]
    healed_at = time.monotonic()
    sc.converge(timeout_s=90)
    sc.wait_acks_after(healed_at, 20, SLACK_S)
    # A commit in flight at the cut reached the replicas (SYNC ships before the local commit becomes
    # visible, reference memgraph-replication.md 5/7.1) and ends on the MAIN only once its answer comes back
    # after the heal (TCP's retransmission backoff): wait for it, bounded, before the final read (I4).
    c.wait_for(lambda: _replicas_ids(sc) <= _ids(sc, old), IN_FLIGHT_S, "the commits in flight at the cut "
               f"visible on {old}")
    on_old = [a for a in sc.writer.attempts if a.acked and a.t_start >= healed_at] if sc.writer else []
    ev = sc.finish(extra={"verdict": verdict, "events": events[:3]})
    assert ev.report.ok, sc.failure_text(ev)
    assert ev.lost_acked_writes == 0
    assert mains == {old}, f"the record's MAIN changed while failover was not allowed: {sorted(mains)}"
    assert not ev.timeline.failovers, [f"{f.old_main}->{f.new_main}" for f in ev.timeline.failovers]
    assert "allowAsyncFailover is off" in verdict and "does not fence" in verdict, verdict
    assert events, "no NoFailoverCandidate Event naming allowAsyncFailover"
    assert sc.main() == old and on_old and all(a.backend_pod == old for a in on_old), (
        "writes after the heal did not resume on the same MAIN")


@pytest.mark.long
@pytest.mark.timeout(360)
def test_sync_mode_failover_with_allow_async_failover_reports_the_old_mains_writes(
        scenario: MakeScenario) -> None:
    sc = scenario(seed=62, sync_mode="SYNC", writer_threads=2,
                  extra_agent_env={"HA_ALLOW_ASYNC_FAILOVER": "true"})
    c, old = sc.cluster, sc.main()
    assert c.status()["cluster"]["sync_mode"] == "sync", "the cluster runs in SYNC mode"
    cut_at = time.monotonic()
    with faults.partition(c, old, "all", node=True, flog=sc.flog):
        bound = _not_ready_s(sc) + c.timings.lease_duration_s + c.timings.failover_after_s + SLACK_S
        new = sc.wait_main(lambda m: m != old, bound, "failover away from the cut MAIN")
        sc.flog.add(f"new MAIN {new}")
        sc.new_client()
        sc.wait_acks_after(time.monotonic(), 20, SLACK_S)
        last_failover = str(c.status()["cluster"].get("last_failover") or "")
        started = [m for m in _events(sc, "FailoverStarted") if "may lose writes" in m]
    sc.converge(timeout_s=150)
    why = "SYNC-mode failover with allowAsyncFailover: the cut old MAIN is unfenced"
    sc.timeline.declared_losses.append(DeclaredLoss(old, cut_at, time.monotonic(), why))
    ev = sc.finish(extra={"last_failover": last_failover, "failover_started": started[:3]})
    declared = ev.summary["declared_loss"]  # check_declared.summary, written to the scenario report
    assert ev.report.ok, sc.failure_text(ev)
    assert any(f.old_main == old for f in ev.timeline.failovers), "no failover away from the cut MAIN"
    assert "unfenced" in last_failover and "may lose writes" in last_failover, last_failover
    assert started, "no FailoverStarted Event saying the failover may lose writes"
    # Precise: every acknowledged write the final MAIN lacks is one the declared old MAIN acknowledged,
    # and each is counted in the summary and listed as DECLARED LOSS in I3's evidence (not hidden).
    assert ev.lost_acked_writes == len(declared["acked_lost"]), (ev.lost_acked_writes, declared)
    i3 = ev.report.result("I3")
    lines = [e for e in i3.evidence if e.startswith("DECLARED LOSS")]
    assert bool(lines) == bool(declared["acked_lost"] or declared["told_committed_lost"]), (lines, declared)

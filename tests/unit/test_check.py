"""The invariant checker (sim.check) on synthetic timelines: a passing and a failing case per invariant."""

from __future__ import annotations

import json
import threading

import pytest

from sim.check import (
    Bounds,
    Sampler,
    check,
    check_i1,
    check_i2,
    check_i3,
    check_i4,
    check_i5,
    check_i6,
    check_i7,
    write_report,
)
from sim.timeline import (
    DivergenceReport,
    FailoverMark,
    FinalData,
    OutageWindow,
    PodRole,
    RoleSample,
    Timeline,
    WriteAttempt,
    error_windows,
    parse_prestop_log,
    write_pauses,
)

PODS = ["mg-0", "mg-1", "mg-2"]
B = Bounds()
M, R = "main", "replica"
HEALTHY = {"mg-0": (M, M, True), "mg-1": (R, None, True), "mg-2": (R, None, True)}
SWITCHED = {"mg-0": (R, None, True), "mg-1": (M, M, True), "mg-2": (R, None, True)}


def timeline(*rounds: dict, period: float = 0.2, t0: float = 100.0) -> Timeline:
    """Rounds of {pod: (role, label, ready[, replicas])} sampled every `period` from `t0`."""
    tl = Timeline(pods=list(PODS), sample_period_s=period)
    for i, rnd in enumerate(rounds):
        for pod, v in rnd.items():
            reps = tuple(v[3]) if len(v) > 3 else ()
            tl.samples.append(RoleSample(t0 + i * period, i, pod, v[0], v[1], v[2], reps))
    return tl


def ack(seq: int, t: float, address: str = "127.0.1.1:7687") -> WriteAttempt:
    return WriteAttempt(f"w{seq}", seq, address, t - 0.005, t, 1e9 + t, 1e9 + t, "acked")


def err(seq: int, t: float, cls: str = "ServiceUnavailable", address: str = "127.0.1.1:7687") -> WriteAttempt:
    return WriteAttempt(f"w{seq}", seq, address, t - 0.005, t, 1e9 + t, 1e9 + t, "error", cls, "boom")


# ---- I1 -------------------------------------------------------------------------------------------


def test_i1_clean_switchover_sequence_passes():
    unlabelled = {"mg-0": (M, None, True), "mg-1": (R, None, True), "mg-2": (R, None, True)}
    promoted = {"mg-0": (R, None, True), "mg-1": (M, None, True), "mg-2": (R, None, True)}
    res = check_i1(timeline(HEALTHY, unlabelled, promoted, SWITCHED, SWITCHED), B)
    assert res.ok, res


def test_i1_two_labelled_mains_in_consecutive_rounds_fail_naming_pods_and_instant():
    both = {"mg-0": (M, M, True), "mg-1": (M, M, True), "mg-2": (R, None, True)}
    res = check_i1(timeline(HEALTHY, both, both, SWITCHED), B)
    assert not res.ok
    assert any("mg-0, mg-1" in e and "t=100.200" in e for e in res.evidence), res.evidence


def test_i1_single_round_of_sampling_skew_is_tolerated_but_two_are_not():
    skew = {"mg-0": (M, M, True), "mg-1": (M, M, True), "mg-2": (R, None, True)}
    assert check_i1(timeline(HEALTHY, skew, SWITCHED), B).ok
    assert not check_i1(timeline(HEALTHY, skew, skew, SWITCHED), B).ok
    assert check_i1(timeline(HEALTHY, skew, skew, SWITCHED), Bounds(lag_rounds=2)).ok


def test_i1_role_label_on_a_replica_fails_naming_the_pod():
    stale = {"mg-0": (R, M, True), "mg-1": (M, None, True), "mg-2": (R, None, True)}
    res = check_i1(timeline(HEALTHY, stale, stale, stale), B)
    assert not res.ok
    assert any("role=main on mg-0, which is a REPLICA" in e for e in res.evidence)


def test_i1_label_on_unreachable_pod_is_not_a_violation():
    crashed = {"mg-0": (None, M, False), "mg-1": (R, None, True), "mg-2": (R, None, True)}
    assert check_i1(timeline(HEALTHY, crashed, crashed, crashed), B).ok


# ---- I2 -------------------------------------------------------------------------------------------


def test_i2_fresh_unlabelled_main_next_to_the_labelled_main_passes():
    fresh = {"mg-0": (M, M, True), "mg-1": (R, None, True), "mg-2": (M, None, False)}
    assert check_i2(timeline(HEALTHY, fresh, fresh, fresh), B).ok


def test_i2_two_unfenced_mains_with_a_replica_fail():
    dual = {"mg-0": (M, M, True), "mg-1": (M, M, True), "mg-2": (R, None, True)}
    res = check_i2(timeline(HEALTHY, dual, dual), B)
    assert not res.ok
    assert any("unfenced MAINs mg-0, mg-1 while mg-2" in e for e in res.evidence), res.evidence


def test_i2_replica_listed_by_two_mains_fails_even_when_one_is_fenced():
    shared = {"mg-0": (M, M, True, ["mg_2"]), "mg-1": (M, None, True, ["mg_2"]), "mg-2": (R, None, True)}
    res = check_i2(timeline(HEALTHY, shared, shared), B)
    assert not res.ok
    assert any("replica mg_2 registered on MAINs mg-0, mg-1" in e for e in res.evidence)


# ---- I3 -------------------------------------------------------------------------------------------


def data_timeline(acked: list[int], on: dict[str, list[int]], main: str = "mg-1") -> Timeline:
    tl = timeline(HEALTHY)
    tl.attempts = [ack(i, 200.0 + i) for i in acked]
    ids = {pod: tuple(f"w{i}" for i in seqs) for pod, seqs in on.items()}
    tl.final = FinalData(ids, main, tuple(p for p in on if p != main))
    return tl


def test_i3_every_acked_id_on_main_and_ready_replicas_passes():
    tl = data_timeline([1, 2, 3], {"mg-1": [1, 2, 3, 4], "mg-0": [1, 2, 3, 4], "mg-2": [1, 2, 3, 4]})
    res = check_i3(tl, B)
    assert res.ok, res


def test_i3_lost_ids_are_named_with_the_pod_that_lacks_them():
    tl = data_timeline([1, 2, 3], {"mg-1": [1, 3], "mg-0": [1, 2, 3], "mg-2": [1]})
    res = check_i3(tl, B)
    assert not res.ok
    assert "mg-1 lacks 1 acked id(s): w2" in res.evidence
    assert "mg-2 lacks 2 acked id(s): w2, w3" in res.evidence


def test_i3_lossy_failover_excuses_only_ids_acked_before_it():
    tl = data_timeline([1, 2, 3], {"mg-1": [1], "mg-2": [1]})
    tl.failovers = [FailoverMark(202.5, "mg-0", "mg-1", False, target_mode="async")]
    res = check_i3(tl, B)
    assert not res.ok
    assert any(e.startswith("mg-1 lacks 1 acked id(s): w3") for e in res.evidence), res.evidence
    tl.final = FinalData({"mg-1": ("w1", "w3"), "mg-2": ("w1", "w3")}, "mg-1", ("mg-2",))
    res = check_i3(tl, B)
    assert res.ok and "lossy" in res.summary and any("w2" in e for e in res.evidence)


def test_i3_switchover_never_excuses_loss():
    tl = data_timeline([1, 2], {"mg-1": [1]})
    tl.failovers = [FailoverMark(205.0, "mg-0", "mg-1", True, False, "async")]
    assert not check_i3(tl, B).ok


def test_i3_without_a_final_main_fails():
    tl = timeline(HEALTHY)
    assert not check_i3(tl, B).ok


# ---- I4 -------------------------------------------------------------------------------------------


def test_i4_divergence_only_on_the_injected_pod_with_its_data_kept_passes():
    tl = data_timeline([1], {"mg-1": [1, 2], "mg-0": [1, 2, 9], "mg-2": [1, 2]})
    tl.injected_divergence = ["mg-0"]
    tl.diverged_ids_before = {"mg-0": ("w1", "w9")}
    tl.divergence_reports = [DivergenceReport(101.0, "mg-0", "event", "REGISTER error 3")]
    assert check_i4(tl, B).ok


def test_i4_divergence_reported_on_a_pod_not_injected_fails_naming_it():
    tl = data_timeline([1], {"mg-1": [1], "mg-2": [1]})
    tl.divergence_reports = [DivergenceReport(101.5, "mg-2", "status", "diverged")]
    res = check_i4(tl, B)
    assert not res.ok and "divergence reported on mg-2 at t=101.500 via status: diverged" in res.evidence


def test_i4_unique_history_on_a_replica_is_divergence_even_without_a_report():
    tl = data_timeline([1], {"mg-1": [1], "mg-0": [1, 7]})
    res = check_i4(tl, B)
    assert not res.ok and "mg-0 holds 1 id(s) the MAIN lacks: w7" in res.evidence


def test_i4_deleting_a_diverged_pods_ids_fails_unless_quarantined():
    tl = data_timeline([1], {"mg-1": [1], "mg-0": [1]})
    tl.injected_divergence = ["mg-0"]
    tl.diverged_ids_before = {"mg-0": ("w1", "w9")}
    res = check_i4(tl, B)
    assert not res.ok and "mg-0 lost 1 id(s) of its diverged history: w9" in res.evidence
    assert tl.final is not None
    tl.final = FinalData(tl.final.ids_by_pod, "mg-1", ("mg-0",), quarantined={"mg-0": ("w9",)})
    assert check_i4(tl, B).ok


def test_i4_a_crashed_mains_unacknowledged_inflight_commit_is_divergence_from_outside():
    # mg-0 was MAIN and died between its local commit of w7 and the replicas' finalize (STRICT_SYNC 2PC):
    # the client never got w7 back; mg-0 returns holding it. Detected and quarantined, not created by us.
    tl = data_timeline([1], {"mg-1": [1], "mg-0": [1, 7]})
    tl.attempts.append(err(7, 207.0))
    tl.failovers = [FailoverMark(205.0, "mg-0", "mg-1", planned=False)]
    res = check_i4(tl, B)
    assert res.ok, res
    assert any("mg-0: crashed MAIN kept unacknowledged in-flight commit(s) w7" in e for e in res.evidence)


def _reseeded_crashed_main(acked: list[int]) -> Timeline:
    """mg-0 crashed as MAIN holding w7, came back diverged and was re-seeded (issue 17): it now holds what
    the new MAIN has, and w7 lies in its archive (`quarantined`), as the status reported it diverged."""
    tl = data_timeline(acked, {"mg-1": [1], "mg-0": [1]})
    assert tl.final is not None
    tl.final = FinalData(tl.final.ids_by_pod, "mg-1", ("mg-0",), quarantined={"mg-0": ("w1", "w7")})
    tl.failovers = [FailoverMark(205.0, "mg-0", "mg-1", planned=False)]
    tl.divergence_reports = [DivergenceReport(210.0, "mg-0", "sampler", "status: diverged")]
    return tl


def test_i4_a_reseeded_crashed_mains_inflight_commit_in_its_archive_is_divergence_from_outside():
    tl = _reseeded_crashed_main([1])
    tl.attempts.append(err(7, 207.0))
    res = check_i4(tl, B)
    assert res.ok, res
    assert any("mg-0: crashed MAIN kept unacknowledged in-flight commit(s) w7" in e for e in res.evidence)


def test_i4_an_acknowledged_id_in_a_reseeded_crashed_mains_archive_is_not_excused():
    res = check_i4(_reseeded_crashed_main([1, 7]), B)
    assert not res.ok
    assert "divergence reported on mg-0 at t=210.000 via sampler: status: diverged" in res.evidence


def test_i4_an_acknowledged_id_only_on_a_crashed_main_is_not_excused():
    tl = data_timeline([1, 7], {"mg-1": [1], "mg-0": [1, 7]})
    tl.failovers = [FailoverMark(205.0, "mg-0", "mg-1", planned=False)]
    res = check_i4(tl, B)
    assert not res.ok and "mg-0 holds 1 id(s) the MAIN lacks: w7" in res.evidence


# ---- I5 -------------------------------------------------------------------------------------------


def test_i5_converged_within_bound_passes_and_reports_the_time():
    down = {"mg-0": (None, None, False), "mg-1": (R, None, True), "mg-2": (R, None, True)}
    tl = timeline(down, down, SWITCHED, SWITCHED)
    tl.fault_stop_t = 100.0
    res = check_i5(tl, Bounds(convergence_s=1.0))
    assert res.ok and "converged 0.40s" in res.summary


def test_i5_slower_than_bound_fails():
    down = {"mg-0": (None, None, False), "mg-1": (R, None, True), "mg-2": (R, None, True)}
    tl = timeline(down, down, SWITCHED, SWITCHED)
    tl.fault_stop_t = 100.0
    assert not check_i5(tl, Bounds(convergence_s=0.3)).ok


def test_i5_flapping_counts_from_the_last_stable_run_and_never_converged_fails():
    lagging = {"mg-0": (R, None, False), "mg-1": (M, M, True), "mg-2": (R, None, True)}
    tl = timeline(SWITCHED, lagging, SWITCHED, SWITCHED)
    tl.fault_stop_t = 100.0
    assert "converged 0.40s" in check_i5(tl, B).summary
    tl = timeline(SWITCHED, lagging, lagging)
    tl.fault_stop_t = 100.0
    res = check_i5(tl, B)
    assert not res.ok and "mg-0=replica/None/unready" in res.evidence[0]


# ---- I6 -------------------------------------------------------------------------------------------

GOOD_LOG = """[2025-10-19T12:34:56.789Z] START PreStop hook
[2025-10-19T12:34:56.790Z] Attempt 1/3: Calling http://127.0.0.1:8080/api/v1/prestop
[2025-10-19T12:34:56.800Z] Attempt 1/3: FAILED (error=ConnectionRefused, duration=0.010s)
[2025-10-19T12:34:59.800Z] Attempt 2/3: SUCCESS (status=200, duration=1.250s)
[2025-10-19T12:34:59.850Z] switchover mg-0 -> mg-1 step=demote
[2025-10-19T12:35:00.001Z] END PreStop hook (exit=0)
"""


def test_i6_prestop_log_is_parsed_into_runs_with_attempts():
    (run,) = parse_prestop_log(GOOD_LOG, "mg-0", "prestop-u_ip.log", budget_s=10.0)
    assert run.exit_code == 0 and run.other_lines == 1
    assert [(a.number, a.outcome, a.status) for a in run.attempts] == [
        (1, "Calling", None), (1, "FAILED", None), (2, "SUCCESS", 200)]
    assert run.attempts[2].duration_s == 1.25
    assert run.duration_s == pytest.approx(3.212, abs=1e-3)


HOOK_LOG = """[2025-10-19T12:34:56.789Z] START PreStop hook (pod=memgraph-1 budget=3s)
[2025-10-19T12:34:56.790Z] Attempt 1: POST http://127.0.0.1:8080/api/v1/prestop
[2025-10-19T12:34:56.795Z] Attempt 1: ERROR ConnectionRefusedError: [Errno 111] Connection refused
[2025-10-19T12:34:57.800Z] Attempt 2: HTTP 503 (duration=0.004s) {"error": "not ready"}
[2025-10-19T12:35:00.790Z] Attempt 3: TIMEOUT after 2.000s
[2025-10-19T12:35:00.791Z] END PreStop hook (exit=1)
"""


def test_i6_hook_log_without_attempt_totals_gives_pod_and_budget_from_start_line():
    (run,) = parse_prestop_log(HOOK_LOG, path="p.log")
    assert (run.pod, run.budget_s, run.exit_code) == ("memgraph-1", 3.0, 1)
    assert [(a.number, a.of, a.outcome) for a in run.attempts] == [
        (1, None, "POST"), (1, None, "ERROR"), (2, None, "HTTP"), (3, None, "TIMEOUT")]
    assert run.attempts[2].duration_s == 0.004
    tl = timeline(HEALTHY)
    tl.prestops = [run]
    assert check_i6(tl, B).ok
    (configured,) = parse_prestop_log(HOOK_LOG, "memgraph-1", "p.log", budget_s=1.0)
    tl.prestops = [configured]
    res = check_i6(tl, Bounds(prestop_slack_s=0.5))
    assert not res.ok and "memgraph-1: hook overran: 4.00s > budget 1.0s" in res.evidence[0]


def test_i6_hook_within_budget_passes():
    tl = timeline(HEALTHY)
    tl.prestops = parse_prestop_log(GOOD_LOG, "mg-0", "f.log", budget_s=10.0)
    assert check_i6(tl, B).ok


def test_i6_hook_that_overran_its_budget_fails_naming_the_pod():
    tl = timeline(HEALTHY)
    tl.prestops = parse_prestop_log(GOOD_LOG, "mg-0", "f.log", budget_s=1.0)
    res = check_i6(tl, Bounds(prestop_slack_s=0.5))
    assert not res.ok and res.evidence[0].startswith("mg-0: hook overran: 3.21s > budget 1.0s")


def test_i6_hook_without_end_fails_and_a_second_run_in_the_same_file_is_seen():
    text = GOOD_LOG + "[2025-10-19T13:00:00.000Z] START PreStop hook\n"
    tl = timeline(HEALTHY)
    tl.prestops = parse_prestop_log(text, "mg-0", "f.log", budget_s=10.0)
    res = check_i6(tl, B)
    assert len(tl.prestops) == 2 and not res.ok
    assert res.evidence == ("mg-0: hook started and never wrote END in f.log",)


# ---- I7 -------------------------------------------------------------------------------------------


def outage_timeline(ack_times: list[float], during: dict | None = None) -> Timeline:
    rounds = [HEALTHY] * 3 + [during or HEALTHY] * 3 + [HEALTHY] * 3  # 100.0 .. 101.6
    tl = timeline(*rounds)
    tl.attempts = [ack(i, t) for i, t in enumerate(ack_times)]
    tl.outages = [OutageWindow(100.5, 101.2, "api", main_healthy=True)]
    return tl


def test_i7_writes_going_on_through_the_outage_pass():
    assert check_i7(outage_timeline([100.0 + 0.1 * i for i in range(17)]), B).ok


def test_i7_pause_inside_the_outage_fails_with_the_ids_around_it():
    times = [100.1, 100.2, 100.3, 100.4, 101.5, 101.6]
    res = check_i7(outage_timeline(times), Bounds(outage_pause_s=0.5))
    assert not res.ok
    assert any("write pause 0.70s" in e and "w3" in e and "w4" in e for e in res.evidence), res.evidence


def test_i7_main_demoted_during_outage_fails_even_if_writes_continue():
    demoted = {"mg-0": (R, None, True), "mg-1": (M, M, True), "mg-2": (R, None, True)}
    res = check_i7(outage_timeline([100.0 + 0.1 * i for i in range(17)], demoted), B)
    assert not res.ok and "MAIN mg-0 at t=100.600 was role=replica" in res.evidence[0]


def test_i7_outage_with_faulted_main_is_not_judged():
    tl = outage_timeline([100.1, 101.6])
    tl.outages = [OutageWindow(100.5, 101.2, "api", main_healthy=False)]
    assert check_i7(tl, B).ok


# ---- derivations, report, JSON, sampler ---------------------------------------------------------


def test_write_pause_spans_last_ack_on_old_main_to_first_ack_on_new():
    attempts = [ack(1, 1.0, "a:1"), ack(2, 1.02, "a:1"), err(3, 1.1, address="a:1"),
                err(4, 1.5, "NoEndpoint", ""), ack(5, 2.52, "b:1"), ack(6, 2.54, "b:1")]
    (p,) = write_pauses(attempts, 0.5)
    assert (p.before, p.after, p.last_id, p.first_id) == ("a:1", "b:1", "w2", "w5")
    assert p.duration == pytest.approx(1.5)
    (w,) = error_windows(attempts)
    assert w.errors == 2 and w.error_classes == ("ServiceUnavailable", "NoEndpoint") and w.end == 2.52


def test_timeline_round_trips_through_json_and_report_file(tmp_path):
    tl = data_timeline([1, 2], {"mg-1": [1, 2], "mg-0": [1, 2]})
    tl.prestops = parse_prestop_log(GOOD_LOG, "mg-0", "f.log", 10.0)
    tl.failovers = [FailoverMark(1.0, "mg-0", "mg-1", True)]
    tl.outages = [OutageWindow(1.0, 2.0)]
    tl.divergence_reports = [DivergenceReport(1.0, "mg-2", "event", "x")]
    tl.diverged_ids_before = {"mg-2": ("w1",)}
    back = Timeline.from_json(tl.to_json())
    assert back == tl
    report = check(back)
    path = write_report(report, back, tmp_path, "run1")
    data = json.loads(path.read_text())
    names = [r["name"] for r in data["results"]]
    assert data["ok"] is False and names == [*(f"I{i}" for i in range(1, 8)), "reads"]
    assert Timeline.from_json((tmp_path / "run1.timeline.json").read_text()) == tl


def test_sampler_records_rounds_skips_failing_polls_and_reports_divergence_once():
    tl = Timeline(pods=PODS)
    calls = {"n": 0}
    done = threading.Event()

    def roles():
        calls["n"] += 1
        if calls["n"] == 2:
            raise ConnectionError("api down")
        if calls["n"] >= 5:
            done.set()
        return {"mg-0": PodRole(M, M, True, ("mg_1",)), "mg-1": PodRole(R, None, True)}

    sampler = Sampler(tl, roles, period_s=0.01, diverged=lambda: [("mg-1", "diverged")], max_rounds=4)
    sampler.start()
    try:
        assert done.wait(5.0)
    finally:
        sampler.stop()
    assert len(tl.rounds()) == 4 and calls["n"] == 5
    assert tl.samples[0].replicas == ("mg_1",) and tl.samples[1].replicas == ()
    assert [r.pod for r in tl.divergence_reports] == ["mg-1"]
    assert tl.sample_period_s == 0.01

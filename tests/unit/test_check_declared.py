"""Declared losses (sim.check_declared through sim.check): an unfenced failover a scenario declares is
counted and listed, never excused silently, and nothing outside the declaration is excused."""

from __future__ import annotations

from sim import check_declared
from sim.check import Bounds, check_i1, check_i3, check_i4
from sim.timeline import DeclaredLoss, FinalData, RecordSample, RoleSample, Timeline, WriteAttempt

B = Bounds()
COMMITTED = ("Replication Exception: Failed to replicate to SYNC replica 'mg_1': replica is not reachable or "
             "not in sync with the main. Replica will be recovered automatically. Transaction is still "
             "committed on the main instance and other alive replicas.")


def write(i: int, t: float, pod: str, outcome: str = "acked", message: str = "") -> WriteAttempt:
    return WriteAttempt(f"w{i}", i, "10.0.0.1:7687", t - 0.01, t, 1e9 + t, 1e9 + t, outcome,
                        "" if outcome == "acked" else "ClientError", message, f"{pod}/uid-{pod}")


def run(declared: DeclaredLoss | None = None) -> Timeline:
    """mg-0 is MAIN until t=110, cut off from t=105; mg-1 MAIN from t=110. mg-0 acks w3 at t=112 and
    answers w4 'still committed' at t=113: neither reaches mg-1, the final MAIN."""
    tl = Timeline(pods=["mg-0", "mg-1", "mg-2"])
    tl.attempts = [write(1, 101.0, "mg-0"), write(2, 111.0, "mg-1"), write(3, 112.0, "mg-0"),
                   write(4, 113.0, "mg-0", "unknown", COMMITTED)]
    tl.records = [RecordSample(100.0, "mg-0", 1), RecordSample(110.0, "mg-1", 2),
                  RecordSample(114.0, "mg-1", 2)]
    for i, t in enumerate(range(100, 116)):  # mg-0 unreachable (cut) from 105, mg-1 MAIN from 110
        old = ("main", "main") if t < 105 else (None, None)
        new = ("main", "main") if t >= 110 else ("replica", None)
        for pod, (role, label) in (("mg-0", old), ("mg-1", new), ("mg-2", ("replica", None))):
            tl.samples.append(RoleSample(float(t), i, pod, role, label, True))
    tl.final = FinalData({"mg-0": ("w1", "w3", "w4"), "mg-1": ("w1", "w2"), "mg-2": ("w1", "w2")},
                         "mg-1", ("mg-2",))
    if declared is not None:
        tl.declared_losses.append(declared)
    return tl


DECLARED = DeclaredLoss("mg-0", 105.0, 120.0, "SYNC failover with allowAsyncFailover")


def test_without_a_declaration_the_old_mains_ack_is_a_lost_write_and_a_second_writer() -> None:
    tl = run()
    assert not check_i3(tl, B).ok and "w3" in check_i3(tl, B).evidence[0]
    i1 = check_i1(tl, B)
    assert not i1.ok and any("w3" in e for e in i1.evidence), i1
    assert not check_i4(tl, B).ok  # mg-0 holds w3, acknowledged, that the MAIN lacks


def test_a_declared_unfenced_failover_counts_and_lists_the_old_mains_writes() -> None:
    tl = run(DECLARED)
    i3 = check_i3(tl, B)
    assert i3.ok, i3
    assert any(e.startswith("DECLARED LOSS") and "w3" in e for e in i3.evidence)
    assert any(e.startswith("DECLARED LOSS") and "still committed" in e and "w4" in e for e in i3.evidence)
    assert "DECLARED LOSS" in i3.summary
    i1 = check_i1(tl, B)
    assert i1.ok and "1 declared second-writer ack" in i1.summary, i1
    assert any("w3" in e for e in i1.evidence)
    i4 = check_i4(tl, B)
    assert i4.ok and any(e.startswith("DECLARED DIVERGENCE: mg-0") for e in i4.evidence), i4
    s = check_declared.summary(tl)
    assert s["acked_lost"] == ["w3"] and s["told_committed_lost"] == ["w4"] and s["acked_by_old_main"] == 1


def test_a_declaration_of_another_pod_or_window_excuses_nothing() -> None:
    for other in (DeclaredLoss("mg-2", 105.0, 120.0, "x"), DeclaredLoss("mg-0", 112.5, 120.0, "x")):
        tl = run(other)
        assert not check_i3(tl, B).ok, other
        assert check_declared.summary(tl)["acked_lost"] == []


def test_a_loss_on_the_new_main_is_never_declared_by_the_old_mains_declaration() -> None:
    tl = run(DECLARED)
    assert tl.final is not None
    tl.final = FinalData({**tl.final.ids_by_pod, "mg-1": ("w1",)}, "mg-1", ("mg-2",))  # w2 (by mg-1) gone
    i3 = check_i3(tl, B)
    assert not i3.ok and "w2" in i3.evidence[0]

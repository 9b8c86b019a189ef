"""The soak's and the scenarios' harness fixes for issue 16 item 11 (both soak failures were harness causes).

Seed 22272 (I5): the convergence wait ended on a reading taken before a fault's late effect (a killed
agent's pod turned NotReady moments later, in the last sample). Seed 278480 (I4): the soak recorded no
unplanned failover, so I4 could not tell a crashed MAIN's unacknowledged in-flight commit from divergence
the HA layer created. Fake clocks, synthetic timelines, fake clusters: no process is started.
"""

from __future__ import annotations

from sim.check import Bounds, check_i4
from sim.converge import converged, wait_stable
from sim.soak import wait_converged
from sim.timeline import FinalData, PodRole, RoleSample, Timeline, WriteAttempt, changes_of_main
from tests.support.clock import FakeClock

PODS = ["mg-0", "mg-1", "mg-2"]
MAIN = PodRole("main", "main", True)
REPLICA = PodRole("replica", None, True)
UNREADY_REPLICA = PodRole("replica", None, False)


class LateEffectCluster:
    """A cluster converged at once after a fault, whose pod turns NotReady `late_s` later for `down_s`."""

    def __init__(self, clock: FakeClock, late_s: float, down_s: float) -> None:
        self.clock, self.t0, self.late_s, self.down_s = clock, clock(), late_s, down_s

    def pod_names(self) -> list[str]:
        return list(PODS)

    def roles(self) -> dict[str, PodRole]:
        age = self.clock() - self.t0
        mg0 = UNREADY_REPLICA if self.late_s <= age < self.late_s + self.down_s else REPLICA
        return {"mg-0": mg0, "mg-1": MAIN, "mg-2": REPLICA}


def test_soak_convergence_wait_outlasts_a_fault_effect_seen_late():
    clock = FakeClock()
    cluster = LateEffectCluster(clock, late_s=0.5, down_s=4.0)
    took = wait_converged(cluster, 90, "converged", stable_s=3.0, clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
    assert took >= 4.5, "the wait ended on the reading taken before the pod turned NotReady"
    assert clock() - cluster.t0 >= took + 3.0, "and the convergence then held for the stable window"


def test_stable_wait_times_out_when_the_predicate_never_holds_long_enough():
    clock = FakeClock()
    flips = iter([True, False] * 1000)
    try:
        wait_stable(lambda: next(flips), 5.0, "flapping", stable_s=1.0, clock=clock, sleep=clock.sleep)
    except TimeoutError as exc:
        assert "held, but never for 1s without a break within 5s" in str(exc)
    else:
        raise AssertionError("a predicate that flaps at every poll is not converged")


def test_stable_wait_counts_a_raising_predicate_as_not_yet():
    clock = FakeClock()
    calls = {"n": 0}

    def pred() -> bool:
        calls["n"] += 1
        if calls["n"] < 5:
            raise ConnectionError("pod unreachable")
        return True

    assert wait_stable(pred, 10.0, "x", stable_s=1.0, poll_s=0.1, clock=clock, sleep=clock.sleep) >= 0.4


def test_converged_needs_one_labelled_ready_main_and_every_other_pod_a_ready_replica():
    assert converged({"mg-0": REPLICA, "mg-1": MAIN, "mg-2": REPLICA}, PODS)
    assert not converged({"mg-0": UNREADY_REPLICA, "mg-1": MAIN, "mg-2": REPLICA}, PODS)
    assert not converged({"mg-0": MAIN, "mg-1": MAIN, "mg-2": REPLICA}, PODS)
    assert not converged({"mg-1": MAIN, "mg-2": REPLICA}, PODS), "a missing pod is not converged"
    assert converged({"mg-0": UNREADY_REPLICA, "mg-1": MAIN, "mg-2": REPLICA}, ["mg-1", "mg-2"])


# ---- seed 278480: the crashed MAIN's in-flight commit --------------------------------------------


def _crash_timeline() -> Timeline:
    """mg-0 is MAIN, is killed with w3 in flight (never acked), mg-1 takes over; mg-0 returns holding w3."""
    tl = Timeline(pods=list(PODS))
    rounds = [
        {"mg-0": ("main", "main", True), "mg-1": ("replica", None, True), "mg-2": ("replica", None, True)},
        {"mg-0": (None, "main", False), "mg-1": ("replica", None, True), "mg-2": ("replica", None, True)},
        {"mg-0": (None, None, False), "mg-1": ("main", "main", True), "mg-2": ("replica", None, True)},
        {"mg-0": ("replica", None, True), "mg-1": ("main", "main", True), "mg-2": ("replica", None, True)},
    ]
    for i, rnd in enumerate(rounds):
        for pod, (role, label, ready) in rnd.items():
            tl.samples.append(RoleSample(100.0 + i, i, pod, role, label, ready))
    tl.attempts = [
        WriteAttempt("w1", 1, "a", 99.0, 99.1, 0, 0, "acked"),
        WriteAttempt("w2", 2, "a", 99.2, 99.3, 0, 0, "acked"),
        WriteAttempt("w3", 3, "a", 100.5, 100.9, 0, 0, "error", "ServiceUnavailable", "defunct connection"),
    ]
    tl.final = FinalData({"mg-0": ("w1", "w2", "w3"), "mg-1": ("w1", "w2"), "mg-2": ("w1", "w2")},
                         "mg-1", ("mg-2",))
    return tl


def test_unplanned_change_of_main_is_marked_from_the_samples_so_i4_excuses_the_inflight_commit():
    tl = _crash_timeline()
    assert not check_i4(tl, Bounds()).ok, "unmarked: judged as divergence"
    tl.failovers.extend(changes_of_main(tl, planned=[]))
    assert [(m.old_main, m.new_main, m.planned) for m in tl.failovers] == [("mg-0", "mg-1", False)]
    res = check_i4(tl, Bounds())
    assert res.ok, res
    assert any("crashed MAIN kept unacknowledged in-flight commit(s) w3" in e for e in res.evidence)


def test_a_change_of_main_inside_a_planned_window_is_a_switchover_and_excuses_nothing():
    tl = _crash_timeline()
    tl.failovers.extend(changes_of_main(tl, planned=[(101.5, 101.8)]))
    assert [m.planned for m in tl.failovers] == [True]
    assert not check_i4(tl, Bounds()).ok

"""The probe engine counts as the kubelet's prober worker does (sim/probes.py), on explicit times."""

from __future__ import annotations

import pytest

from sim.probes import ContainerProbes, ContainerView, ProbeSpec, ProbeType, ProbeWorker, Result, pod_ready
from sim.timescale import TimeScale

S, F, U = Result.SUCCESS, Result.FAILURE, Result.UNKNOWN


def running(cid: str = "c1", started_at: float = 0.0, started: bool = True) -> ContainerView:
    return ContainerView(cid, True, started_at, started)


class Script:
    """A probe action that answers from a list and counts its calls."""

    def __init__(self, *answers: Result) -> None:
        self.answers, self.calls = list(answers), 0

    def __call__(self) -> Result:
        self.calls += 1
        return self.answers.pop(0) if self.answers else S


def run(worker: ProbeWorker, times: list[float], view: ContainerView, probe: Script,
        deleting: bool = False) -> list[Result]:
    out = []
    for t in times:
        if worker.due(t):
            worker.tick(t, view, deleting, probe)
        out.append(worker.result)
    return out


def spec(**kw: float) -> ProbeSpec:
    return ProbeSpec("tcp", 7687, **kw)  # type: ignore[arg-type]


def test_manifest_defaults_are_kubernetes_defaults() -> None:
    p = ProbeSpec.from_manifest({"tcpSocket": {"port": 7687}}, {})
    assert (p.period_s, p.timeout_s, p.success_threshold, p.failure_threshold, p.initial_delay_s) == (
        10.0, 1.0, 1, 3, 0.0)


def test_manifest_named_port_is_resolved_from_the_container_ports() -> None:
    p = ProbeSpec.from_manifest({"httpGet": {"path": "/ready", "port": "agent-http"}, "periodSeconds": 5},
                                {"agent-http": 8080})
    assert (p.action, p.port, p.path, p.period_s) == ("http", 8080, "/ready", 5.0)
    with pytest.raises(ValueError, match="agent-http"):
        ProbeSpec.from_manifest({"httpGet": {"port": "agent-http"}}, {})


def test_scaled_probe_keeps_its_thresholds() -> None:
    p = spec(period_s=5, timeout_s=10, failure_threshold=20).scaled(TimeScale(0.25))
    assert (p.period_s, p.timeout_s, p.failure_threshold) == (1.25, 2.5, 20)


def test_port_mapping_moves_only_the_mapped_port() -> None:
    assert spec().with_port({7687: 40001}).port == 40001
    assert spec().with_port({8080: 1}).port == 7687


def test_readiness_starts_failed_and_turns_ready_at_the_first_success() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=5), admitted_at=0.0)
    assert w.result is F
    assert run(w, [0.0], running(), Script(S)) == [S]


def test_readiness_turns_not_ready_only_after_failure_threshold_failures_in_a_row() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=5, failure_threshold=3), 0.0)
    probe = Script(S, F, F, S, F, F, F)
    results = run(w, [0, 5, 10, 15, 20, 25, 30], running(), probe)
    assert results == [S, S, S, S, S, S, F]  # the success at 15 s breaks the run of failures


def test_success_threshold_needs_that_many_successes_in_a_row() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1, success_threshold=2), 0.0)
    assert run(w, [0, 1, 2, 3], running(), Script(S, F, S, S)) == [F, F, F, S]


def test_probes_tick_on_the_period_from_admission_not_on_every_call() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=5), 0.0)
    probe = Script()
    run(w, [0.0, 0.1, 1.0, 4.9, 5.0, 9.99, 10.0], running(), probe)
    assert probe.calls == 3  # at 0, 5 and 10


def test_ticks_missed_while_busy_are_dropped_not_replayed() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=5), 0.0)
    probe = Script()
    run(w, [0.0, 23.0, 24.0, 25.0], running(), probe)
    assert probe.calls == 3  # 0, 23 (the missed ticks collapse into one), 25


def test_readiness_and_liveness_wait_for_the_startup_probe() -> None:
    view = running(started=False)
    for kind in (ProbeType.READINESS, ProbeType.LIVENESS):
        w = ProbeWorker(kind, spec(period_s=1), 0.0)
        probe = Script()
        run(w, [0, 1, 2], view, probe)
        assert probe.calls == 0, kind


def test_startup_probe_stops_once_the_container_started() -> None:
    w = ProbeWorker(ProbeType.STARTUP, spec(period_s=1, failure_threshold=5), 0.0)
    probe = Script(F, S)
    assert run(w, [0, 1], running(started=False), probe) == [U, S]
    run(w, [2, 3], running(started=True), probe)
    assert probe.calls == 2


def test_nothing_is_probed_during_the_initial_delay_counted_in_whole_seconds() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1, initial_delay_s=3), 0.0)
    probe = Script()
    run(w, [0, 1, 2, 3], running(started_at=0.6), probe)
    assert probe.calls == 0  # 2.4 s since the start truncates to 2
    run(w, [4], running(started_at=0.6), probe)
    assert probe.calls == 1


def test_a_container_not_running_is_a_failure_without_running_the_probe() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1), 0.0)
    run(w, [0], running(), Script(S))
    probe = Script()
    assert run(w, [1], ContainerView("c1", False, 0.0, True), probe) == [F]
    assert probe.calls == 0


def test_no_container_yet_leaves_the_initial_value() -> None:
    w = ProbeWorker(ProbeType.LIVENESS, spec(period_s=1), 0.0)
    assert run(w, [0, 1], ContainerView(None, False, 0.0, False), Script()) == [S, S]


def test_liveness_failure_holds_the_worker_until_a_new_container_exists() -> None:
    w = ProbeWorker(ProbeType.LIVENESS, spec(period_s=1, failure_threshold=2), 0.0)
    probe = Script(F, F)
    assert run(w, [0, 1], running("c1"), probe) == [S, F]
    assert w.wants_restart()
    run(w, [2, 3], running("c1"), probe)
    assert probe.calls == 2, "on hold: no probe of the old container"
    assert run(w, [4], running("c2", started_at=4.0), Script(S)) == [S]
    assert not w.wants_restart()


def test_a_new_container_resets_readiness_to_failure() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1, success_threshold=1), 0.0)
    run(w, [0], running("c1"), Script(S))
    assert w.result is S
    w2 = Script(F)
    assert run(w, [1], ContainerView("c2", True, 1.0, False), w2) == [F]  # new container, not started


def test_result_run_is_kept_across_a_restart_as_the_kubelet_keeps_it() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1, failure_threshold=3), 0.0)
    run(w, [0, 1, 2], running("c1"), Script(S, F, F))
    assert w.result is S
    # the container restarts: the result resets, the run of failures does not
    assert run(w, [3], running("c2", started_at=3.0), Script(F)) == [F]
    assert w.run == 3


def test_pod_deletion_stops_liveness_and_startup_with_success_but_not_readiness() -> None:
    live = ProbeWorker(ProbeType.LIVENESS, spec(period_s=1), 0.0)
    ready = ProbeWorker(ProbeType.READINESS, spec(period_s=1, failure_threshold=1), 0.0)
    live_probe, ready_probe = Script(F, F, F), Script(S, F)
    run(live, [0, 1], running(), live_probe, deleting=True)
    assert live.result is S and live.stopped and live_probe.calls == 0
    assert run(ready, [0, 1], running(), ready_probe, deleting=True) == [S, F]


def test_an_unknown_result_is_thrown_away() -> None:
    w = ProbeWorker(ProbeType.READINESS, spec(period_s=1, failure_threshold=2), 0.0)
    assert run(w, [0, 1, 2, 3], running(), Script(S, F, U, F)) == [S, S, S, F]


def probes_of(**workers: ProbeWorker) -> ContainerProbes:
    return ContainerProbes("c", {ProbeType(k): w for k, w in workers.items()})


def test_container_without_probes_is_ready_when_it_runs() -> None:
    c = probes_of()
    assert c.ready(True, "c1") and not c.ready(False, "c1")


def test_container_is_not_ready_before_its_startup_probe_succeeded() -> None:
    start = ProbeWorker(ProbeType.STARTUP, spec(period_s=1), 0.0)
    c = probes_of(startup=start)
    assert not c.ready(True, "c1")
    run(start, [0], running(started=False), Script(S))
    assert c.ready(True, "c1")


def test_a_new_container_is_not_started_nor_ready_before_its_workers_saw_it() -> None:
    start = ProbeWorker(ProbeType.STARTUP, spec(period_s=1), 0.0)
    ready = ProbeWorker(ProbeType.READINESS, spec(period_s=1), 0.0)
    c = probes_of(startup=start, readiness=ready)
    run(start, [0], running("c1", started=False), Script(S))
    run(ready, [0], running("c1"), Script(S))
    assert c.ready(True, "c1")
    assert not c.started(True, "c2") and not c.ready(True, "c2"), "no result for c2 yet"


def test_failed_probe_names_the_liveness_or_startup_failure() -> None:
    live = ProbeWorker(ProbeType.LIVENESS, spec(period_s=1, failure_threshold=1), 0.0)
    c = probes_of(liveness=live)
    assert c.failed_probe("c1") is None
    run(live, [0], running(), Script(F))
    assert c.failed_probe("c1") is ProbeType.LIVENESS
    assert c.failed_probe("c2") is None, "a failure of the old container says nothing of the new one"


def test_pod_is_ready_only_when_every_container_is_the_sidecar_included() -> None:
    assert pod_ready({"memgraph": True, "agent": True})
    assert not pod_ready({"memgraph": True, "agent": False})
    assert not pod_ready({})

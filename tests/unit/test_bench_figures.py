"""The bench's figures from its samples (sim/bench_plan.py) and the outage measures over a writer's
records (sim/bench_measure.py): pure functions, explicit times."""

from __future__ import annotations

from sim.bench_measure import first_ack_after, outage_after
from sim.bench_phases import EPISODES, Episode
from sim.bench_plan import FIGURES, PHASES, compute, nearest_rank, unmeasured
from sim.clusterconfig import ClusterConfig
from sim.timeline import ACKED, ERROR, WriteAttempt
from sim.timescale import TimeScale

TIMINGS = ClusterConfig(time_scale=TimeScale(1.0)).timings()


def attempt(t_start: float, t_end: float, ok: bool = True) -> WriteAttempt:
    return WriteAttempt(f"w{t_start}", 0, "a:1", t_start, t_end, t_start, t_end, ACKED if ok else ERROR)


def ep(outage: float | None) -> Episode:
    return Episode("x", "memgraph-0", "memgraph-1", outage, outage, 10.0)


def test_outage_counts_from_the_fault_to_the_first_ack_after_it() -> None:
    writes = [attempt(0.0, 0.1), attempt(0.9, 1.0), attempt(1.5, 9.0, ok=False), attempt(9.0, 9.2),
              attempt(9.3, 9.4)]
    assert outage_after(writes, fault=1.2, end=9.5) == 9.2 - 1.2
    assert first_ack_after(writes, 1.2) == 9.2 - 1.2


def test_outage_catches_a_later_stop_of_the_writes() -> None:
    writes = [attempt(t, t + 0.05) for t in (1.0, 1.1, 1.2)] + [attempt(6.0, 6.05)]
    assert outage_after(writes, fault=0.95, end=6.5) == 6.05 - 1.25


def test_a_write_in_flight_at_the_fault_does_not_show_writes_resumed() -> None:
    writes = [attempt(0.9, 1.01), attempt(1.2, 40.0, ok=False)]
    assert outage_after(writes, fault=1.0, end=60.0) is None, "only the in-flight write was acknowledged"
    assert outage_after([*writes, attempt(41.0, 41.1)], fault=1.0, end=41.5) == 41.1 - 1.01


def test_writes_that_stopped_again_before_the_end_are_not_a_recovery() -> None:
    writes = [attempt(1.0, 1.1), attempt(1.2, 1.3)]
    assert outage_after(writes, fault=0.9, end=30.0) is None, "nothing acknowledged in the last second"
    assert outage_after(writes, fault=0.9, end=1.8) == 1.8 - 1.3, "the span up to the end counts"


def test_no_ack_after_the_fault_is_no_measure() -> None:
    assert outage_after([attempt(0.0, 0.1)], fault=1.0, end=5.0) is None
    assert first_ack_after([attempt(0.5, 1.5)], 1.0) is None, "a write sent before the fault does not count"


def test_p99_of_fewer_than_100_samples_is_the_maximum() -> None:
    assert nearest_rank([3.0, 1.0, 2.0], 99) == 3.0
    assert nearest_rank([3.0, 1.0, 2.0], 50) == 2.0
    assert nearest_rank([float(i) for i in range(1, 201)], 99) == 198.0
    assert nearest_rank([], 99) is None


def test_figures_and_targets_from_samples() -> None:
    samples = {"failover_kill": [ep(6.0), ep(7.5)], "switchover": [ep(0.2), ep(0.3)]}
    figures, judged = compute(samples, TIMINGS)
    assert figures["failover_kill_p50_s"] == 6.0 and figures["failover_kill_p99_s"] == 7.5
    assert figures["switchover_pause_p99_s"] == 0.3
    assert figures["main_hang_write_outage_p99_s"] is None, "no samples: not measured"
    kill = next(k for k in judged if k.startswith("failover_kill_p99_s"))
    assert judged[kill] is True  # 7.5 <= failoverAfter 5 + 4
    hang_target = [k for k in judged if k.startswith("agent_crash")]
    assert hang_target and judged[hang_target[0]] is False, "a figure not measured never meets its target"


def test_a_sample_that_never_recovered_leaves_its_figure_unmeasured() -> None:
    figures, _ = compute({"main_hang": [ep(11.0), ep(None)]}, TIMINGS)
    assert figures["main_hang_write_outage_p99_s"] is None


def test_an_unmeasured_figure_says_why() -> None:
    stuck = ep(None)
    stuck.notes["window_s"] = 70.0
    samples = {"main_hang": [ep(11.0), stuck]}
    figures, _ = compute(samples, TIMINGS)
    why = unmeasured(samples, figures)
    assert "1 of 2 samples: no write acknowledged" in why["main_hang_write_outage_p99_s"]
    assert "70.0 s" in why["main_hang_write_outage_p99_s"]
    assert why["failover_kill_p99_s"] == "no sample"
    assert "main_hang_write_outage_p99_s" not in unmeasured({"main_hang": [ep(11.0)]},
                                                            compute({"main_hang": [ep(11.0)]}, TIMINGS)[0])


def test_without_partitions_the_node_loss_figure_leaves_out_the_partition_variant() -> None:
    samples = {"failover_node_loss_freeze": [ep(40.0)], "failover_node_loss_partition": [ep(95.0)]}
    assert compute(samples, TIMINGS)[0]["failover_node_loss_p99_s"] == 95.0
    assert compute(samples, TIMINGS, partitions=False)[0]["failover_node_loss_p99_s"] == 40.0


def test_a_figure_resting_only_on_the_namespaced_bed_is_neither_measured_nor_judged_without_it() -> None:
    samples = {"switchover_hook_only": [ep(0.7)]}
    figures, judged = compute(samples, TIMINGS)
    assert figures["switchover_hook_only_pause_p99_s"] == 0.7
    assert any(k.startswith("switchover_hook_only_pause_p99_s") and ok for k, ok in judged.items())
    figures, judged = compute(samples, TIMINGS, partitions=False)
    assert figures["switchover_hook_only_pause_p99_s"] is None
    assert not any(k.startswith("switchover_hook_only_pause_p99_s") for k in judged), "not a missed target"
    why = unmeasured(samples, figures, partitions=False)["switchover_hook_only_pause_p99_s"]
    assert "namespaced bed" in why


def test_every_phase_and_figure_names_a_known_episode_once() -> None:
    assert all(p.name in EPISODES for p in PHASES)
    names = [f.name for f in FIGURES]
    assert len(names) == len(set(names))
    assert all(ph in EPISODES for f in FIGURES for ph in f.phases)

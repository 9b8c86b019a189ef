"""The invariant sampler: what the checker (`sim.check`) judges, recorded while a run goes on.

Role: a thread that, every `period_s`, records for every pod Memgraph's replication role (None when
unreachable), the pod's role label and Ready condition and the replicas a MAIN owns (`RoleSample`),
the pods the status document reports diverged, and the cluster record's MAIN (the Lease annotation),
into a `sim.timeline.Timeline`. What it can and cannot see is written in `sim.check`'s docstring.

Must never: judge the run, raise out of a round (a failing callable is logged and the round skipped),
or run unbounded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from sim.timeline import DivergenceReport, PodRole, RecordSample, RoleSample, Timeline

log = logging.getLogger(__name__)

RolesFn = Callable[[], dict[str, PodRole]]  # pod -> what the cluster shows of it now
DivergedFn = Callable[[], Iterable[tuple[str, str]]]  # -> (pod, detail) for every pod reported diverged
RecordFn = Callable[[], tuple[str, int] | None]  # -> (the cluster record's MAIN, its generation)


class Sampler:
    """Polls `roles()` (and `diverged()`, `record()`) every `period_s` on a thread into `timeline`,
    bounded by `max_rounds` and `max_duration_s`. A failing callable is logged and its round skipped."""

    def __init__(
        self,
        timeline: Timeline,
        roles: RolesFn,
        period_s: float = 0.2,
        diverged: DivergedFn | None = None,
        max_rounds: int = 100_000,
        max_duration_s: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
        record: RecordFn | None = None,
    ) -> None:
        self._tl = timeline
        self._tl.sample_period_s = period_s
        self._roles, self._diverged, self._record = roles, diverged, record
        self._period, self._max_rounds, self._max_s, self._clock = period_s, max_rounds, max_duration_s, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._round = 0
        self._reported: set[str] = set()

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("event=sampler_stop_timeout bound_s=%.1f", timeout_s)

    def sample_once(self) -> None:
        t = self._clock()
        try:
            seen = self._roles()
        except Exception as exc:
            log.warning("event=sample_failed error=%s detail=%s", type(exc).__name__, exc)
            return
        for pod, v in sorted(seen.items()):
            sample = RoleSample(t, self._round, pod, v.role, v.label, v.ready, tuple(v.replicas))
            self._tl.samples.append(sample)
        self._round += 1
        self._sample_divergence(t)
        self._sample_record(t)

    def _sample_record(self, t: float) -> None:
        if self._record is None:
            return
        try:
            rec = self._record()
        except Exception as exc:
            log.warning("event=record_poll_failed error=%s detail=%s", type(exc).__name__, exc)
            return
        if rec is not None:
            self._tl.records.append(RecordSample(t, rec[0], rec[1]))

    def _sample_divergence(self, t: float) -> None:
        if self._diverged is None:
            return
        try:
            reports = list(self._diverged())
        except Exception as exc:
            log.warning("event=divergence_poll_failed error=%s detail=%s", type(exc).__name__, exc)
            return
        for pod, detail in reports:
            if pod not in self._reported:
                self._reported.add(pod)
                self._tl.divergence_reports.append(DivergenceReport(t, pod, "sampler", detail))

    def _run(self) -> None:
        started = time.monotonic()
        next_t = started
        while not self._stop.is_set() and self._round < self._max_rounds:
            if time.monotonic() - started > self._max_s:
                log.warning("event=sampler_bound_reached max_duration_s=%.0f", self._max_s)
                return
            self.sample_once()
            next_t = max(next_t + self._period, time.monotonic())
            self._stop.wait(max(0.0, next_t - time.monotonic()))

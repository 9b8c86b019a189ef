"""CrashLoopBackOff: when the kubelet restarts a container that exited (restartPolicy Always).

Role: the kubelet's decision for one container, as a pure object with the time passed in. Kubernetes
(`kuberuntime_manager.go` `doBackOff`, client-go `flowcontrol.Backoff`, `pod_workers.go` `completeWork`;
docs "Pod Lifecycle": "exponential backoff delay (10s, 20s, 40s, ...), that is capped at 300 seconds";
"Once a container has executed for 10 minutes without any problems, the kubelet resets the restart backoff
timer"):
- the exit is seen at the next PLEG relist (every second), which syncs the pod;
- a sync finds the container's entry: none, or expired (its exit came more than 2 x 300 s after the last
  restart, i.e. it ran for 10 minutes) -> the container starts at once and the entry is set to 10 s;
  otherwise, if less than the entry's back-off has passed since the exit (`IsInBackOffSince`) -> no start
  ("Back-off restarting failed container"), and the pod worker requeues itself at the back-off's expiry
  (at most the resync interval, 1 min), jittered by up to +50 % (`wait.Jitter(d, 0.5)`); otherwise it
  starts and the back-off doubles (`Next`), capped at 300 s.
So the first restart is immediate, the second waits 10 s after the exit, then 20, 40, ... 300 s.

Must never: sleep, or restart a container earlier than the kubelet would.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sim.timescale import TimeScale

EPSILON_S = 1e-6  # below any clock's resolution here: float sums of the same instant compare equal


@dataclass(frozen=True)
class BackoffTimings:
    initial_s: float = 10.0  # kubelet backOffPeriod
    max_s: float = 300.0  # MaxContainerBackOff
    relist_s: float = 1.0  # PLEG relist period: an exit is seen this late at most
    resync_s: float = 60.0  # the pod worker's resync interval (syncFrequency), the longest requeue
    jitter: float = 0.5  # workerBackOffPeriodJitterFactor

    def scaled(self, scale: TimeScale) -> BackoffTimings:
        return scale.record(self)


class CrashLoopBackOff:
    """The back-off entry of one container (key: pod UID + container name) and the restart decision."""

    def __init__(self, timings: BackoffTimings, rng: random.Random | None = None) -> None:
        self.t = timings
        self.rng = rng or random.Random()
        self.backoff_s: float | None = None  # None: no entry
        self.last_update = 0.0  # when the entry was last moved (the last restart)

    def _expired(self, event_at: float) -> bool:
        return self.backoff_s is None or event_at - self.last_update > 2 * self.t.max_s

    def in_backoff_since(self, now: float, finished_at: float) -> bool:
        if self._expired(finished_at):
            return False
        assert self.backoff_s is not None
        return now - finished_at < self.backoff_s - EPSILON_S

    def next(self, now: float, finished_at: float) -> None:
        """Record a restart at `now` of a container that exited at `finished_at`."""
        if self._expired(finished_at):
            self.backoff_s = self.t.initial_s
        else:
            assert self.backoff_s is not None
            self.backoff_s = min(2 * self.backoff_s, self.t.max_s)
        self.last_update = now

    def sync(self, now: float, finished_at: float) -> float | None:
        """A pod sync at `now` for a container that exited at `finished_at`: None means start it now (the
        restart is recorded); otherwise the time of the next sync (the pod worker's requeue)."""
        if not self.in_backoff_since(now, finished_at):
            self.next(now, finished_at)
            return None
        assert self.backoff_s is not None
        left = min(max(0.0, finished_at + self.backoff_s - now), self.t.resync_s)
        return now + max(EPSILON_S, left * (1.0 + self.t.jitter * self.rng.random()))

    def current_s(self) -> float:
        """The back-off the next restart would wait after an exit (0 before the first restart)."""
        return 0.0 if self.backoff_s is None else self.backoff_s

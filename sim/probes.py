"""The kubelet's probe engine: one worker per container probe, with Kubernetes' exact counting.

Role: what `pkg/kubelet/prober/worker.go` (`doProbe`) and the status manager do, as a pure state machine
the emulated kubelet drives (`sim.podworker`), with the time passed in so unit tests need no sleeps:
- one worker per (container, probe type); it ticks every `periodSeconds` from the pod's admission (its
  first probe at once), not from the container's start;
- the cached result starts at the type's initial value: readiness Failure, liveness Success, startup
  Unknown (worker.go `newWorker`); a new container (restart) resets it to that value and resumes a worker
  that was on hold;
- a container that is not running is probed as Failure without running the probe;
- while the pod is being deleted, liveness and startup are set to Success and stop (graceful shutdown);
  readiness keeps probing;
- nothing is probed before `initialDelaySeconds` have passed since the container started (whole seconds,
  as the kubelet's int32 truncation), and readiness and liveness not before the container has started
  (its startup probe succeeded); the startup probe stops once it succeeded;
- a result counts only after `failureThreshold` failures or `successThreshold` successes in a row
  (`resultRun`, kept across a restart as worker.go keeps it); a liveness or startup Failure puts the
  worker on hold (`resultRun` = 0) until a new container exists: the kubelet restarts the container;
- Kubernetes' defaults for fields the manifest leaves out: periodSeconds 10, timeoutSeconds 1,
  successThreshold 1, failureThreshold 3, initialDelaySeconds 0 (core/v1 Probe).
Container readiness (status_manager / `generateAPIPodStatus`): a container is ready when it runs, has
started (no startup probe: as soon as it runs) and its readiness result is Success (no readiness probe:
Success). The pod is Ready when every container is, the native sidecars (restartable init containers)
included (reference kubernetes-and-helm.md B.1: "If a readinessProbe is specified for this init
container, its result will be used to determine the ready state of the Pod"); a container not running
is not ready.

Must never: do I/O itself (the probe action is passed in), or count a probe the kubelet would not run.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from sim.timescale import TimeScale


class ProbeType(enum.Enum):
    STARTUP = "startup"
    READINESS = "readiness"
    LIVENESS = "liveness"


class Result(enum.Enum):
    SUCCESS = "success"
    FAILURE = "failure"
    UNKNOWN = "unknown"


INITIAL = {ProbeType.READINESS: Result.FAILURE, ProbeType.LIVENESS: Result.SUCCESS,
           ProbeType.STARTUP: Result.UNKNOWN}
DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1,
            "failureThreshold": 3}


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of a container spec. `port` is resolved to a number (named ports looked up)."""

    action: str  # tcp | http | exec
    port: int | None = None
    path: str = "/"
    command: tuple[str, ...] = ()
    initial_delay_s: float = 0.0
    period_s: float = 10.0
    timeout_s: float = 1.0
    success_threshold: int = 1
    failure_threshold: int = 3

    @classmethod
    def from_manifest(cls, probe: Mapping[str, Any], ports: Mapping[str, int]) -> ProbeSpec:
        """A core/v1 Probe as the chart renders it; `ports` are the container's named ports."""
        f = {**DEFAULTS, **{k: v for k, v in probe.items() if k in DEFAULTS}}
        if "tcpSocket" in probe:
            action, port, path, command = "tcp", _port(probe["tcpSocket"]["port"], ports), "/", ()
        elif "httpGet" in probe:
            get = probe["httpGet"]
            action, port, path, command = "http", _port(get["port"], ports), str(get.get("path", "/")), ()
        elif "exec" in probe:
            action, port, path, command = "exec", None, "/", tuple(probe["exec"]["command"])
        else:
            raise ValueError(f"unsupported probe handler: {sorted(probe)}")
        return cls(action, port, path, command, initial_delay_s=float(f["initialDelaySeconds"]),
                   period_s=float(f["periodSeconds"]), timeout_s=float(f["timeoutSeconds"]),
                   success_threshold=int(f["successThreshold"]), failure_threshold=int(f["failureThreshold"]))

    def scaled(self, scale: TimeScale) -> ProbeSpec:
        return scale.record(self)

    def with_port(self, mapping: Mapping[int, int]) -> ProbeSpec:
        """The same probe on the emulated cluster's port for the chart's port (identity when absent)."""
        return self if self.port is None else replace(self, port=mapping.get(self.port, self.port))


def _port(value: int | str, ports: Mapping[str, int]) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    if value not in ports:
        raise ValueError(f"probe names port {value!r}, the container declares {sorted(ports)}")
    return ports[value]


@dataclass(frozen=True)
class ContainerView:
    """What a probe worker reads from the container's status (worker.go reads the status manager)."""

    container_id: str | None  # None: not created yet
    running: bool
    started_at: float  # when the current container started running (monotonic seconds)
    started: bool  # the kubelet's `Started`: startup probe succeeded, or running without one


class ProbeWorker:
    """The kubelet worker of one probe of one container (see the module docstring)."""

    def __init__(self, kind: ProbeType, spec: ProbeSpec, admitted_at: float) -> None:
        self.kind, self.spec = kind, spec
        self.next_at = admitted_at  # the first tick is at once
        self.container_id: str | None = None
        self.result: Result = INITIAL[kind]  # what the results manager holds for the container
        self.last: Result | None = None
        self.run = 0
        self.on_hold = False
        self.stopped = False
        self.probes_run = 0

    def due(self, now: float) -> bool:
        return not self.stopped and now >= self.next_at

    def tick(self, now: float, view: ContainerView, deleting: bool, probe: Callable[[], Result]) -> None:
        """One tick of the worker at `now` (call it when `due`): maybe run `probe`, update `result`."""
        period = self.spec.period_s
        if self.next_at <= now:  # a ticker from the admission; ticks missed while busy are dropped
            self.next_at += period * (math.floor((now - self.next_at) / period) + 1)
        self._do_probe(now, view, deleting, probe)

    def _do_probe(self, now: float, view: ContainerView, deleting: bool, probe: Callable[[], Result]) -> None:
        if view.container_id is None:
            return  # not created yet: wait for more information
        if view.container_id != self.container_id:
            self.container_id = view.container_id
            self.result = INITIAL[self.kind]
            self.on_hold = False  # a new container: resume probing
        if self.on_hold:
            return
        if not view.running:
            self.result = Result.FAILURE
            return
        if deleting and self.kind in (ProbeType.LIVENESS, ProbeType.STARTUP):
            self.result = Result.SUCCESS  # graceful shutdown: a quiet last result, then stop
            self.stopped = True
            return
        if int(now - view.started_at) < self.spec.initial_delay_s:
            return
        if view.started:
            if self.kind is ProbeType.STARTUP:
                return
        elif self.kind is not ProbeType.STARTUP:
            return
        outcome = probe()
        self.probes_run += 1
        if outcome is Result.UNKNOWN:
            return  # a prober error: the result is thrown away
        if outcome is self.last:
            self.run += 1
        else:
            self.last, self.run = outcome, 1
        threshold = self.spec.failure_threshold if outcome is Result.FAILURE else self.spec.success_threshold
        if self.run < threshold:
            return
        self.result = outcome
        if self.kind is not ProbeType.READINESS and outcome is Result.FAILURE:
            self.on_hold, self.run = True, 0  # the container will be restarted

    def wants_restart(self) -> bool:
        """A liveness or startup failure was recorded for the current container."""
        return self.kind is not ProbeType.READINESS and self.result is Result.FAILURE


@dataclass
class ContainerProbes:
    """The workers of one container and its readiness as the status manager computes it."""

    name: str
    workers: dict[ProbeType, ProbeWorker]

    def _result(self, kind: ProbeType, container_id: str | None) -> Result | None:
        """The cached result for this container (None: no worker; UNKNOWN: the worker has not seen this
        container yet, as the results manager has no entry for a new container ID)."""
        w = self.workers.get(kind)
        if w is None:
            return None
        return w.result if w.container_id == container_id and container_id is not None else Result.UNKNOWN

    def started(self, running: bool, container_id: str | None) -> bool:
        r = self._result(ProbeType.STARTUP, container_id)
        return running and r in (None, Result.SUCCESS)

    def ready(self, running: bool, container_id: str | None) -> bool:
        if not self.started(running, container_id):
            return False
        return self._result(ProbeType.READINESS, container_id) in (None, Result.SUCCESS)

    def failed_probe(self, container_id: str | None) -> ProbeType | None:
        """The liveness or startup probe whose failure asks for a restart of this container, if any."""
        for kind in (ProbeType.STARTUP, ProbeType.LIVENESS):
            w = self.workers.get(kind)
            if w is not None and w.container_id == container_id and w.wants_restart():
                return kind
        return None


def pod_ready(containers: Mapping[str, bool]) -> bool:
    """The pod's Ready condition from every container's readiness (sidecars included); False if empty."""
    return bool(containers) and all(containers.values())

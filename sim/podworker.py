"""The kubelet's pod worker for one pod incarnation: start order, probes, restarts, reported status.

Role: drive the containers of one pod (through a `Containers` runtime: `sim.kubelet.PodRuntime`) as the
kubelet does, with the rendered chart's probes (`sim.chart.ContainerSpec`, one `sim.probes.ProbeWorker`
per probe, each on its own thread as the kubelet runs one goroutine per worker) and CrashLoopBackOff
(`sim.backoff`):
- start order (reference kubernetes-and-helm.md B.1): native sidecars first; the regular containers start
  once every sidecar has *started* (its startup probe succeeded); afterwards each container restarts on
  its own;
- a sync every PLEG relist period: an exited container is seen, a container whose liveness or startup
  probe failed is killed (its preStop hook runs first, within the pod's grace period, as the kubelet's
  `killContainer` does), and a container that is not running is started again when its back-off allows
  (restartPolicy Always; the first restart of an incarnation is immediate);
- during pod termination the regular containers are not restarted, and a native sidecar that exits is
  restarted until it has been sent its SIGTERM (KEP-753: "Sidecars continue to be restarted until they
  enter the Terminated state which they are notified by a SIGTERM signal");
- a kubelet that cannot act (node frozen, kubelet dead: `acts()` False) neither probes nor restarts;
  `kubelet_restarted()` gives the probes fresh workers, as a restarted kubelet has (readiness starts at
  Failure again).
`status()` is what the kubelet would report: every container's state, readiness and restart count, and
the pod's Ready condition (all containers ready, sidecars included).

Must never: restart a container the kubelet would not (held containers, containers already sent their
SIGTERM), probe while the kubelet cannot act, or wait without a bound.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from sim.backoff import BackoffTimings, CrashLoopBackOff
from sim.chart import ContainerSpec
from sim.probes import ContainerProbes, ContainerView, ProbeSpec, ProbeType, ProbeWorker, Result, pod_ready

log = logging.getLogger(__name__)


class Containers(Protocol):
    """The container runtime of one pod, as the pod worker uses it."""

    def start_container(self, name: str) -> None: ...  # raises on a failed start

    def container_running(self, name: str) -> bool: ...

    def kill_container(self, name: str, reason: str) -> None: ...  # preStop, TERM, KILL at the grace

    def run_probe(self, spec: ProbeSpec) -> Result: ...

    def probe_failure(self, spec: ProbeSpec) -> str: ...  # why the probe last failed, '' when it never did

    def may_restart(self, name: str) -> bool: ...  # False while held by a fault or after its SIGTERM

    def deleting(self) -> bool: ...  # the pod is being terminated


@dataclass
class ContainerState:
    name: str
    sidecar: bool
    probes: ContainerProbes
    backoff: CrashLoopBackOff
    seq: int = 0  # container ID = name + seq; 0: never started
    running: bool = False
    started_at: float = 0.0
    finished_at: float | None = None
    next_sync: float = 0.0  # back-off: no start attempt before this
    restarts: int = 0
    last_reason: str = ""
    history: list[tuple[float, str]] = field(default_factory=list)  # (time, "start"/"exit: reason")

    @property
    def container_id(self) -> str | None:
        return f"{self.name}-{self.seq}" if self.seq else None

    def view(self) -> ContainerView:
        started = self.probes.started(self.running, self.container_id)
        return ContainerView(self.container_id, self.running, self.started_at, started)


@dataclass(frozen=True)
class ContainerStatus:
    name: str
    sidecar: bool
    running: bool
    started: bool
    ready: bool
    restarts: int
    waiting_reason: str  # "" running; CrashLoopBackOff / ContainerCreating otherwise
    last_reason: str


class PodWorker:
    """See the module docstring. `start()` runs it on threads; `sync(now)` is one relist pass."""

    def __init__(self, pod: str, specs: list[ContainerSpec], runtime: Containers, backoff: BackoffTimings,
                 acts: Callable[[], bool] = lambda: True, clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None) -> None:
        self.pod, self.rt, self.acts, self.clock = pod, runtime, acts, clock
        self.rng = rng or random.Random()
        self.timings = backoff
        ordered = sorted(specs, key=lambda s: not s.sidecar)  # sidecars first (init order)
        now = clock()
        self.containers = {s.name: ContainerState(s.name, s.sidecar, self._probes(s, now),
                                                  CrashLoopBackOff(backoff, self.rng)) for s in ordered}
        self.specs = {s.name: s for s in ordered}
        self.initialized = False  # every sidecar started once: regular containers may start
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _probes(self, spec: ContainerSpec, now: float) -> ContainerProbes:
        return ContainerProbes(spec.name, {k: ProbeWorker(k, p, now) for k, p in spec.probes.items()})

    # ---- threads ---------------------------------------------------------------------------------

    def start(self) -> None:
        targets: list[tuple[Callable[..., None], tuple[object, ...], str]] = [(self._sync_loop, (), "sync")]
        for c in self.containers.values():
            targets += [(self._probe_loop, (c.name, k), f"{c.name}-{k.value}") for k in c.probes.workers]
        for target, args, what in targets:
            t = threading.Thread(target=target, args=args, name=f"kubelet-{self.pod}-{what}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:  # a sync may be in a kill (hook, grace): the runtime refuses starts anyway
            t.join(timeout=2)

    def _sync_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync(self.clock())
            except Exception as exc:  # the kubelet keeps syncing whatever one pass did
                log.warning("kubelet: sync of %s failed: %s: %s", self.pod, type(exc).__name__, exc)
            self._stop.wait(self.timings.relist_s)

    def _probe_loop(self, container: str, kind: ProbeType) -> None:
        while not self._stop.is_set():
            with self._lock:
                worker = self.containers[container].probes.workers[kind]
                wait = max(0.0, worker.next_at - self.clock())
            if self._stop.wait(min(wait, 1.0)) or wait > 1.0:
                continue
            self.probe_once(container, kind, self.clock())

    # ---- one pass --------------------------------------------------------------------------------

    def probe_once(self, container: str, kind: ProbeType, now: float) -> None:
        """Tick one probe worker at `now` if it is due (the probe itself runs outside the lock)."""
        if not self.acts():
            return
        with self._lock:
            c = self.containers[container]
            worker = c.probes.workers[kind]
            if not worker.due(now):
                return
            view, deleting = c.view(), self.rt.deleting()
        spec = self.specs[container].probes[kind]
        result: list[Result] = []

        def probe() -> Result:
            result.append(self.rt.run_probe(spec))
            return result[-1]

        # tick outside the lock: a probe may take its whole timeout
        worker.tick(now, view, deleting, probe)

    def sync(self, now: float) -> None:
        """One relist: see exits, kill what failed its liveness/startup probe, (re)start what may."""
        if not self.acts():
            return
        for c in list(self.containers.values()):
            self._see_exit(c, now)
            failed = c.probes.failed_probe(c.container_id) if c.running else None
            if failed is not None:
                log.info("kubelet: %s container %s failed its %s probe: killing it (last failure: %s)",
                         self.pod, c.name, failed.value,
                         self.rt.probe_failure(self.specs[c.name].probes[failed]) or "-")
                self.rt.kill_container(c.name, f"failed {failed.value} probe")
                self._see_exit(c, self.clock(), reason=f"Unhealthy ({failed.value})")
        self._start_what_may(now)

    def _see_exit(self, c: ContainerState, now: float, reason: str = "Error") -> None:
        with self._lock:
            if c.running and not self.rt.container_running(c.name):
                c.running, c.finished_at, c.last_reason = False, now, reason
                c.history.append((now, f"exit: {reason}"))

    def _start_what_may(self, now: float) -> None:
        for c in self.containers.values():
            if self._stop.is_set():
                return
            if c.running or now < c.next_sync or not self.rt.may_restart(c.name):
                continue
            if not c.sidecar and (self.rt.deleting() or not self.initialized):
                continue
            if c.seq and c.finished_at is not None:
                again = c.backoff.sync(now, c.finished_at)
                if again is not None:
                    c.next_sync = again
                    continue
                c.restarts += 1
            self._start(c, now)
        if not self.initialized:
            self.initialized = all(s.probes.started(s.running, s.container_id)
                                   for s in self.containers.values() if s.sidecar)
            if self.initialized and any(not c.sidecar and not c.seq for c in self.containers.values()):
                self._start_what_may(self.clock())

    def _start(self, c: ContainerState, now: float) -> None:
        """Create and start the container: it shows in the status (a new container ID) once it runs."""
        log.info("kubelet: %s starting container %s (restart %d)", self.pod, c.name, c.restarts)
        try:
            self.rt.start_container(c.name)
        except Exception as exc:
            log.warning("kubelet: %s container %s failed to start: %s", self.pod, c.name, exc)
            with self._lock:
                c.seq += 1
                c.running, c.finished_at, c.last_reason = False, self.clock(), "StartError"
                c.history.append((now, "start failed"))
            return
        with self._lock:
            c.seq += 1
            c.running, c.started_at, c.finished_at = True, self.clock(), None
            c.history.append((now, "start"))

    def kubelet_restarted(self) -> None:
        """A restarted kubelet probes with new workers: readiness starts at Failure again."""
        now = self.clock()
        with self._lock:
            for c in self.containers.values():
                c.probes = self._probes(self.specs[c.name], now)

    # ---- what the kubelet reports ----------------------------------------------------------------

    def status(self) -> list[ContainerStatus]:
        with self._lock:
            out = []
            for c in self.containers.values():
                waiting = "" if c.running else ("CrashLoopBackOff" if c.restarts or c.finished_at
                                                else "ContainerCreating")
                cid = c.container_id
                started, ready = c.probes.started(c.running, cid), c.probes.ready(c.running, cid)
                out.append(ContainerStatus(c.name, c.sidecar, c.running, started, ready, c.restarts, waiting,
                                           c.last_reason))
            return out

    def ready(self) -> bool:
        return pod_ready({s.name: s.ready for s in self.status()})

    def restarts(self) -> dict[str, int]:
        with self._lock:
            return {n: c.restarts for n, c in self.containers.items()}

"""The kubelet's pod worker (sim/podworker.py) on a fake runtime and explicit times: start order,
restarts with CrashLoopBackOff, probe-driven kills, termination, a kubelet that cannot act."""

from __future__ import annotations

import random

from sim.backoff import BackoffTimings
from sim.chart import ContainerSpec
from sim.podworker import PodWorker
from sim.probes import ProbeSpec, ProbeType, Result

S, F = Result.SUCCESS, Result.FAILURE


def probe(port: int, path: str = "/", period: float = 1.0, failures: int = 3) -> ProbeSpec:
    action = "http" if port == 8080 else "tcp"
    return ProbeSpec(action, port, path, period_s=period, failure_threshold=failures)


AGENT = ContainerSpec("agent", True, {ProbeType.STARTUP: probe(8080, "/health", failures=30),
                                      ProbeType.LIVENESS: probe(8080, "/health", failures=2),
                                      ProbeType.READINESS: probe(8080, "/ready")})
MEMGRAPH = ContainerSpec("memgraph", False, {ProbeType.READINESS: probe(7687, failures=2),
                                             ProbeType.LIVENESS: probe(7687, failures=3)})


class FakeContainers:
    def __init__(self) -> None:
        self.running: dict[str, bool] = {"agent": False, "memgraph": False}
        self.answers: dict[tuple[int | None, str], Result] = {}
        self.started: list[str] = []
        self.killed: list[tuple[str, str]] = []
        self.blocked: set[str] = set()
        self.terminating = False

    def start_container(self, name: str) -> None:
        self.started.append(name)
        self.running[name] = True

    def container_running(self, name: str) -> bool:
        return self.running[name]

    def kill_container(self, name: str, reason: str) -> None:
        self.killed.append((name, reason))
        self.running[name] = False

    def run_probe(self, spec: ProbeSpec) -> Result:
        if spec.port == 8080 and not self.running["agent"]:
            return F
        if spec.port == 7687 and not self.running["memgraph"]:
            return F
        return self.answers.get((spec.port, spec.path), S)

    def probe_failure(self, spec: ProbeSpec) -> str:
        return ""

    def may_restart(self, name: str) -> bool:
        return name not in self.blocked

    def deleting(self) -> bool:
        return self.terminating


class Pod:
    def __init__(self, acts: bool = True) -> None:
        self.rt = FakeContainers()
        self.now = 0.0
        self.acts = acts
        self.w = PodWorker("p", [MEMGRAPH, AGENT], self.rt, BackoffTimings(jitter=0.0, relist_s=0.5),
                           acts=lambda: self.acts, clock=lambda: self.now, rng=random.Random(0))

    def run_until(self, end: float, step: float = 0.5) -> None:
        for _ in range(int((end - self.now) / step) + 1):  # bounded by the simulated span
            for c in self.w.containers.values():
                for kind in c.probes.workers:
                    self.w.probe_once(c.name, kind, self.now)
            self.w.sync(self.now)
            if self.now + step > end:
                break
            self.now += step


def test_a_sidecar_failing_its_startup_probe_is_restarted() -> None:
    pod = Pod()
    pod.rt.answers[(8080, "/health")] = F
    pod.run_until(40.0)
    assert ("agent", "failed startup probe") in pod.rt.killed
    assert "memgraph" not in pod.rt.started


def test_the_sidecar_starts_first_and_memgraph_only_after_its_startup_probe() -> None:
    pod = Pod()
    pod.rt.answers[(8080, "/health")] = F
    pod.run_until(5.0)
    assert pod.rt.started == ["agent"], "memgraph waits for the agent's startup probe"
    pod.rt.answers[(8080, "/health")] = S
    pod.run_until(7.0)
    assert pod.rt.started == ["agent", "memgraph"]


def test_pod_is_ready_only_when_memgraph_and_the_agent_are() -> None:
    pod = Pod()
    pod.run_until(5.0)
    assert pod.w.ready()
    pod.rt.answers[(8080, "/ready")] = F
    pod.run_until(10.0)
    assert not pod.w.ready(), "the sidecar's readiness counts toward the pod's"
    assert {s.name: s.ready for s in pod.w.status()} == {"agent": False, "memgraph": True}


def test_a_killed_container_is_not_ready_at_once_and_restarted_at_once_the_first_time() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.running["memgraph"] = False  # kill -9
    pod.w.sync(pod.now)
    assert not pod.w.ready(), "a container not running is not ready"
    assert pod.rt.started.count("memgraph") == 2 and pod.w.restarts()["memgraph"] == 1


def test_the_second_exit_waits_the_back_off() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.running["memgraph"] = False
    pod.run_until(6.0)
    pod.rt.running["memgraph"] = False  # crashes again 1 s later
    pod.run_until(15.5)
    assert pod.rt.started.count("memgraph") == 2, "10 s back-off after the second exit"
    assert [s.waiting_reason for s in pod.w.status() if s.name == "memgraph"] == ["CrashLoopBackOff"]
    pod.run_until(16.5)
    assert pod.rt.started.count("memgraph") == 3


def test_a_held_container_stays_down() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.blocked.add("memgraph")
    pod.rt.running["memgraph"] = False
    pod.run_until(60.0)
    assert pod.rt.started.count("memgraph") == 1


def test_liveness_failure_kills_and_restarts_the_container() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.answers[(7687, "/")] = F  # memgraph hangs: its probes fail (at 6, 7 and 8 s: threshold 3)
    pod.run_until(7.5)
    assert not pod.rt.killed
    pod.run_until(8.5)
    assert pod.rt.killed == [("memgraph", "failed liveness probe")]
    assert pod.rt.started.count("memgraph") == 2
    assert [s.last_reason for s in pod.w.status() if s.name == "memgraph"] == ["Unhealthy (liveness)"]


def test_readiness_failure_below_threshold_keeps_the_pod_ready() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.answers[(7687, "/")] = F
    pod.run_until(5.5)  # one failed readiness probe, threshold 2
    assert pod.w.ready()


def test_during_termination_memgraph_stays_down_and_the_sidecar_is_restarted() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.rt.terminating = True
    pod.rt.running["memgraph"] = False
    pod.rt.running["agent"] = False  # the agent crashes while Memgraph's preStop runs
    pod.run_until(6.0)
    assert pod.rt.started.count("memgraph") == 1
    assert pod.rt.started.count("agent") == 2, "a native sidecar is restarted until its SIGTERM"
    pod.rt.blocked.add("agent")  # sent its SIGTERM
    pod.rt.running["agent"] = False
    pod.run_until(30.0)
    assert pod.rt.started.count("agent") == 2


def test_a_kubelet_that_cannot_act_neither_probes_nor_restarts() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.acts = False
    pod.rt.running["memgraph"] = False
    pod.rt.answers[(8080, "/ready")] = F
    pod.run_until(30.0)
    assert pod.rt.started.count("memgraph") == 1 and not pod.rt.killed
    assert pod.w.ready(), "nothing probed, nothing seen: the last status stands"


def test_a_restarted_kubelet_starts_readiness_over() -> None:
    pod = Pod()
    pod.run_until(5.0)
    pod.w.kubelet_restarted()
    assert not pod.w.ready(), "new workers: readiness starts at Failure"
    pod.run_until(6.0)
    assert pod.w.ready()

"""One simulated pod incarnation: its containers as processes, probes, restarts, and termination.

Role: play kubelet for one pod (reference kubernetes-and-helm.md B.1 "native sidecars": the sidecar
starts first and its startup probe must pass before the main container starts; on termination the main
container's preStop runs, then it gets SIGTERM, and the sidecar is stopped only after the main container
has exited; B.2 "ordinary sidecars": every container's preStop runs in parallel and each gets SIGTERM
after its own hook). The memgraph container is a Memgraph emulator process, the agent container is the
real agent (`python -m agent`), the preStop hook is the real `hooks/prestop.py` run as a subprocess with
the chart's environment; every one of them is started through the pod's sandbox (`sim.sandbox`: inside
the pod's network namespace, with the run's marker). Probes come from the caller's (root) namespace to
the pod's IP, as a real kubelet's do. The grace period is enforced from the deletion: what is left at
its end is killed (SIGKILL), as Kubernetes does. Crashed containers are restarted in place (same IP),
with a short back-off.

Must never: let a container outlive `terminate()`, or run a hook past the grace period.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sim.memgraph.timings import MemgraphTimings
from sim.proc import kill_group, wait_for_port
from sim.sandbox import PodSandbox

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
HOOK = REPO / "hooks" / "prestop.py"


@dataclass
class PodTemplate:
    """What the chart puts in the pod spec, as far as the simulation needs it."""

    native_sidecar: bool = True
    with_hook: bool = True
    with_agent: bool = True
    grace_s: float = 60.0
    prestop_budget_s: float = 30.0
    restart_backoff_s: float = 0.3
    # readiness probe periodSeconds x failureThreshold: a Ready pod turns NotReady only after its probes
    # failed that long without a break (0: at the first failure, the historical behaviour of the sim)
    ready_failure_s: float = 0.0
    agent_env: dict[str, str] = field(default_factory=dict)  # settings shared by every pod
    # Memgraph's replication timeouts and check cadence (its own defaults unless a test shortens them)
    memgraph_timings: MemgraphTimings = field(default_factory=MemgraphTimings)
    # the chart's `reseed` init container (sim.init_containers) runs before the pod's other containers
    with_reseed_init: bool = False


@dataclass
class TerminationRecord:
    pod: str
    started: float
    hook_exit: int | None = None
    hook_s: float = 0.0
    total_s: float = 0.0
    killed: bool = False


def memgraph_data_dir(pvc: Path) -> Path:
    """`--data-directory`: the chart mounts the volume at /var/lib/memgraph and passes
    `--data-directory=/var/lib/memgraph/mg_data` (reference kubernetes-and-helm.md A.1)."""
    return pvc / "lib" / "mg_data"


class PodRuntime:
    def __init__(
        self,
        name: str,
        uid: str,
        box: PodSandbox,
        ports: Mapping[str, int],
        template: PodTemplate,
        pvc: Path,
        logs: Path,
        hosts_file: Path,
        memgraph_auth: tuple[str, str] | None = None,
    ) -> None:
        self.name, self.uid, self.box, self.ip = name, uid, box, box.ip
        self.ports = dict(ports)
        self.t = template
        self.lib_dir, self.log_dir = pvc / "lib", pvc / "log"
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.auth = memgraph_auth
        user, password = memgraph_auth or (None, None)
        self.memgraph = box.memgraph(memgraph_data_dir(pvc), self.ports["bolt"], self.ports["replication"],
                                     user, password, hosts_file, template.memgraph_timings)
        self.agent: subprocess.Popen[bytes] | None = None
        self.terminating = False
        self.frozen = False
        self.node_cut = False  # the pod's node is partitioned: its status cannot reach the API server
        self.frozen_at = 0.0
        self.not_ready_after_s = 0.0  # node loss: the node controller marks the pod NotReady this late
        self.failing_since: float | None = None  # first failed readiness probe of the current run
        self.held: set[str] = set()  # containers the kubelet must not restart for now (faults)
        self.hook_env_override: dict[str, str] = {}
        self.extra_env: dict[str, str] = {}  # this pod's own agent settings (its ServiceAccount kubeconfig)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._supervisor: threading.Thread | None = None
        self.restarts = {"memgraph": 0, "agent": 0}
        self.init_statuses: list[dict[str, object]] = []  # ordinary init containers that ran (terminated)

    # ---- start ----------------------------------------------------------------------------------

    def start(self, startup_timeout_s: float = 20.0) -> None:
        if self.t.with_agent and self.t.native_sidecar:
            self._start_agent()
            self._wait_agent_health(startup_timeout_s)
        self.memgraph.start()
        if self.t.with_agent and not self.t.native_sidecar:
            self._start_agent()
        self._supervisor = threading.Thread(target=self._supervise, name=f"kubelet-{self.name}", daemon=True)
        self._supervisor.start()

    def agent_env(self) -> dict[str, str]:
        env = dict(self.t.agent_env)
        env.update(
            POD_NAME=self.name,
            POD_UID=self.uid,
            POD_IP=self.ip,
            MEMGRAPH_HOST=self.box.local_host,
            MEMGRAPH_BOLT_PORT=str(self.ports["bolt"]),
            MEMGRAPH_REPLICATION_PORT=str(self.ports["replication"]),
            # the chart's value; the agent finds its Memgraph's process by it in /proc: the pod's sandbox
            # shares the host's PID namespace (`ip netns exec` changes only the network and mount views)
            MEMGRAPH_DATA_DIRECTORY=str(self.memgraph.data_dir),
            AGENT_BIND=self.box.bind_host,
            AGENT_PORT=str(self.ports["agent"]),
            HA_LOG_DIR=str(self.log_dir),
        )
        env.update(self.extra_env)
        return env

    def _start_agent(self) -> None:
        self.agent = self.box.start(
            [sys.executable, "-m", "agent"],
            env=self.agent_env(),
            log_path=self.logs / f"{self.name}.{self.uid[:8]}.agent.log",
            cwd=REPO,
        )

    def _wait_agent_health(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.agent is not None and self.agent.poll() is not None:
                raise RuntimeError(f"agent of {self.name} exited with {self.agent.returncode} at start")
            if self.http_ok("/health"):
                return
            time.sleep(0.05)
        raise TimeoutError(f"agent of {self.name} did not pass its startup probe in {timeout_s}s")

    # ---- probes -----------------------------------------------------------------------------------

    @property
    def agent_url(self) -> str:
        return f"http://{self.ip}:{self.ports['agent']}"

    def http_ok(self, path: str, timeout_s: float = 1.0) -> bool:
        try:
            with urllib.request.urlopen(self.agent_url + path, timeout=timeout_s) as resp:
                return 200 <= resp.status < 300
        except Exception:
            return False

    def containers_running(self) -> bool:
        """Every container of the pod runs. Kubernetes reports a container that is not running as not
        ready at once, without waiting for a probe's failureThreshold, and the pod's Ready condition is
        the AND of its containers', a native sidecar's included (reference kubernetes-and-helm; DESIGN
        "Start and termination order")."""
        agent_down = self.t.with_agent and (self.agent is None or self.agent.poll() is not None)
        return self.memgraph.alive and not agent_down

    def ready(self) -> bool:
        """The pod's Ready condition: every container running, and memgraph's readiness probe (TCP on
        Bolt). The agent has no readiness probe (the chart's, issue 16 item 1): it is ready while it runs."""
        ok = self._probe()
        if ok:
            self.failing_since = None
        elif self.failing_since is None:
            self.failing_since = time.monotonic()
        return ok

    def failing_for(self) -> float:
        """How long the readiness probes have failed without a break (0 when they pass)."""
        return 0.0 if self.failing_since is None else time.monotonic() - self.failing_since

    def _probe(self) -> bool:
        if self.terminating or self.frozen or self.node_cut or not self.containers_running():
            return False
        try:
            wait_for_port(self.ip, self.ports["bolt"], timeout_s=0.5)
        except (TimeoutError, RuntimeError):
            return False
        return True

    # ---- container restarts (restartPolicy Always) -----------------------------------------------

    def _supervise(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                if self.terminating or self.frozen:
                    continue
                if not self.memgraph.alive and "memgraph" not in self.held:
                    self._stop.wait(self.t.restart_backoff_s)
                    if not self.terminating and "memgraph" not in self.held:
                        self.restarts["memgraph"] += 1
                        log.info("kubelet: restarting memgraph container of %s", self.name)
                        with contextlib.suppress(Exception):
                            self.memgraph.start()
                agent_down = self.agent is not None and self.agent.poll() is not None
                if self.t.with_agent and agent_down and "agent" not in self.held:
                    self._stop.wait(self.t.restart_backoff_s)
                    if not self.terminating and "agent" not in self.held:
                        self.restarts["agent"] += 1
                        log.info("kubelet: restarting agent container of %s", self.name)
                        self._start_agent()

    # ---- faults -------------------------------------------------------------------------------------

    def kill_memgraph(self) -> None:
        self.memgraph.kill()

    def kill_agent(self) -> None:
        if self.agent is not None:
            kill_group(self.agent)

    def freeze(self, not_ready_after_s: float = 0.0) -> None:
        """Node loss: every process of the pod stops answering (SIGSTOP); the pod object stays. The pod's
        Ready condition turns False only `not_ready_after_s` later (the node controller's grace period)."""
        self.frozen_at = time.monotonic()
        self.not_ready_after_s = not_ready_after_s
        self.frozen = True
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGSTOP)

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
        self.frozen = False

    def status_stale(self) -> bool:
        """True while a lost node's pod keeps its last reported status (nobody can update it yet)."""
        lost = self.frozen or self.node_cut
        return lost and time.monotonic() - self.frozen_at < self.not_ready_after_s

    def cut_node(self, not_ready_after_s: float) -> None:
        """Node partition: the processes run on, but the pod's status stays as last reported until the
        node controller marks it NotReady `not_ready_after_s` later (see `status_stale`)."""
        self.frozen_at, self.not_ready_after_s, self.node_cut = time.monotonic(), not_ready_after_s, True

    def reconnect_node(self) -> None:
        self.node_cut = False

    def _pids(self) -> list[int]:
        mg = self.memgraph.proc
        pids = [mg.pid] if mg is not None and mg.poll() is None else []
        if self.agent is not None and self.agent.poll() is None:
            pids.append(self.agent.pid)
        return pids

    # ---- termination ----------------------------------------------------------------------------

    def terminate(
        self, grace_s: float, run_hook: bool = True, on_hook_done: Callable[[], None] | None = None
    ) -> TerminationRecord:
        """Kubernetes pod termination within `grace_s` (B.1/B.2); returns what happened."""
        start = time.monotonic()
        rec = TerminationRecord(self.name, start)
        deadline = start + grace_s
        with self._lock:
            self.terminating = True
        if self.frozen:
            self.thaw()
        if run_hook and self.t.with_hook:
            rec.hook_exit = self._run_hook(deadline)
            rec.hook_s = time.monotonic() - start
        if on_hook_done:
            on_hook_done()
        self._stop_memgraph(deadline)
        if self.agent is not None:
            remaining = max(0.0, deadline - time.monotonic())
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.agent.pid, signal.SIGTERM)
            try:
                self.agent.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                rec.killed = True
            kill_group(self.agent)
        self._stop.set()
        rec.total_s = time.monotonic() - start
        return rec

    def _run_hook(self, deadline: float) -> int | None:
        env = {
            "POD_NAME": self.name,
            "POD_UID": self.uid,
            "POD_IP": self.ip,
            "AGENT_URL": f"http://{self.box.local_host}:{self.ports['agent']}",
            "PRESTOP_TIMEOUT_SECONDS": str(int(self.t.prestop_budget_s)),
            "PRESTOP_LOG_DIR": str(self.log_dir),
            "PATH": os.environ.get("PATH", ""),
        }
        env.update(self.hook_env_override)
        hook = self.box.popen(
            [sys.executable, str(HOOK)],
            env,
            stdout=subprocess.DEVNULL,
            stderr=open(self.logs / f"{self.name}.{self.uid[:8]}.hook.log", "ab"),  # noqa: SIM115
        )
        try:
            return hook.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("kubelet: preStop hook of %s ran past the grace period: killed", self.name)
            return None
        finally:
            kill_group(hook)

    def _stop_memgraph(self, deadline: float) -> None:
        mg = self.memgraph.proc
        if mg is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(mg.pid, signal.SIGTERM)
        try:
            mg.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("kubelet: memgraph of %s outlived the grace period: killed", self.name)
        kill_group(mg)

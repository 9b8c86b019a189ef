"""One simulated pod incarnation: its containers as processes, its probes' network side, its termination.

Role: the container runtime of one pod, as the kubelet's pod worker (`sim.podworker`) drives it, and the
termination sequence (reference kubernetes-and-helm.md B.1 "native sidecars": the sidecar starts first
and the main container only once the sidecar's startup probe passed; on termination the main
container's preStop runs, then it gets SIGTERM, and the sidecar gets its SIGTERM only after the main
container has exited, with what is left of the grace period but at least 2 s; B.2: "The Pod's
termination grace period countdown begins before the PreStop hook is executed", and a hook still running
at the end of the grace period is given up on, the container then getting SIGTERM and SIGKILL 2 s
later). The memgraph container is a Memgraph emulator process, the agent container is the real agent
(`python -m agent`), the preStop hook is the real `hooks/prestop.py` with the chart's environment;
every one of them is started through the pod's sandbox (`sim.sandbox`: inside the pod's network
namespace, with the run's marker). Probes are run from the kubelet's (root) namespace to the pod's IP
and the port the chart names (mapped to the cluster's), as a real kubelet's are: a TCP connect, or an
HTTP GET (2xx/3xx is success), each within the probe's timeout.

Must never: let a container outlive `terminate()`, run a hook past the grace period, or decide a
restart itself (the pod worker does).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sim.chart import ChartPod
from sim.memgraph.timings import MemgraphTimings
from sim.probes import ProbeSpec, Result
from sim.proc import kill_group, signal_group, stop_group_and_wait
from sim.sandbox import PodSandbox

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
HOOK = REPO / "hooks" / "prestop.py"
MIN_GRACE_S = 2.0  # kubelet minimumGracePeriodInSeconds: the floor of a container's SIGTERM window
MIN_PROBE_TIMEOUT_S = 1.0  # a probe timeout is never shortened below this by a time scale (machine cost)


@dataclass
class PodTemplate:
    """The shape of the pod the chart renders, where the simulation needs to vary it (the timings are
    the chart's own: `ChartPod`)."""

    native_sidecar: bool = True
    with_hook: bool = True
    with_agent: bool = True
    agent_env: dict[str, str] = field(default_factory=dict)  # settings shared by every pod (the chart's)
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
    """The processes of one pod incarnation (see the module docstring)."""

    def __init__(
        self,
        name: str,
        uid: str,
        box: PodSandbox,
        ports: Mapping[str, int],
        template: PodTemplate,
        chart: ChartPod,
        pvc: Path,
        logs: Path,
        hosts_file: Path,
        memgraph_auth: tuple[str, str] | None = None,
    ) -> None:
        self.name, self.uid, self.box, self.ip = name, uid, box, box.ip
        self.ports = dict(ports)
        self.t = template
        self.chart = chart
        self.min_grace_s = chart.scale.s(MIN_GRACE_S)
        self.lib_dir, self.log_dir = pvc / "lib", pvc / "log"
        self.lib_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.logs = logs
        self.auth = memgraph_auth
        user, password = memgraph_auth or (None, None)
        self.memgraph = box.memgraph(memgraph_data_dir(pvc), self.ports["bolt"], self.ports["replication"],
                                     user, password, hosts_file, template.memgraph_timings)
        # every replication command this incarnation's Memgraph runs, with the client's address
        self.memgraph.audit_file = logs / f"{name}.{uid[:8]}.memgraph-commands.jsonl"
        self.agent: subprocess.Popen[bytes] | None = None
        self.terminating = False
        self.frozen = False
        self.held: set[str] = set()  # containers the kubelet must not restart for now (faults)
        self.sigtermed: set[str] = set()  # containers sent their termination SIGTERM: never restarted
        self.hung: set[str] = set()  # containers stopped by a fault (SIGSTOP): their process runs, silent
        self.hook_env_override: dict[str, str] = {}
        self.extra_env: dict[str, str] = {}  # this pod's own agent settings (its ServiceAccount kubeconfig)
        self.closed = False  # every container killed for good (kill_all): nothing starts any more
        self.init_statuses: list[dict[str, object]] = []  # ordinary init containers that ran (terminated)
        self._hook: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()
        self.probe_failures: dict[ProbeSpec, str] = {}  # each probe's last failure, for the kill's log line

    # ---- the Containers protocol of sim.podworker --------------------------------------------------

    def container_names(self) -> list[str]:
        return ["memgraph", "agent"] if self.t.with_agent else ["memgraph"]

    def start_container(self, name: str) -> None:
        with self._lock:
            if self.closed:
                raise RuntimeError(f"{self.name} ({self.uid[:8]}) is gone")
            if name in self.sigtermed:
                raise RuntimeError(f"{name} of {self.name} was sent its SIGTERM")
            if name == "memgraph":
                self.memgraph.start()
            else:
                self._start_agent()

    def container_running(self, name: str) -> bool:
        if name == "memgraph":
            return self.memgraph.alive
        return self.agent is not None and self.agent.poll() is None

    def kill_container(self, name: str, reason: str) -> None:
        """The kubelet's killContainer (a failed liveness/startup probe): the container's preStop hook,
        then SIGTERM, SIGKILL at the end of the pod's grace period."""
        deadline = time.monotonic() + self.chart.grace_s
        log.info("kubelet: killing %s of %s (%s)", name, self.name, reason)
        if name == "memgraph":
            if self.t.with_hook:
                self._run_hook(deadline)
            self._stop_memgraph(deadline)
        elif self.agent is not None:
            self._stop_agent(deadline, TerminationRecord(self.name, time.monotonic()))

    def run_probe(self, spec: ProbeSpec) -> Result:
        """One probe, from the node's address on the pod network (`PodSandbox.probe_source`): what a node
        partition leaves alone, as the kubelet reaches its own pods without the node's uplink."""
        timeout = max(spec.timeout_s, min(MIN_PROBE_TIMEOUT_S, self.chart.scale.real(spec.timeout_s)))
        port = self._port(spec.port)
        source = (self.box.probe_source, 0) if self.box.probe_source else None
        started = time.monotonic()
        if spec.action == "tcp":
            try:
                with socket.create_connection((self.ip, port), timeout=timeout, source_address=source):
                    return Result.SUCCESS
            except OSError as exc:
                return self._failed(spec, started, f"{type(exc).__name__}: {exc}")
        if spec.action == "http":
            conn = http.client.HTTPConnection(self.ip, port, timeout=timeout, source_address=source)
            try:
                conn.request("GET", spec.path or "/")
                response = conn.getresponse()
                status, body = response.status, response.read(200).decode(errors="replace")
            except (OSError, http.client.HTTPException) as exc:
                return self._failed(spec, started, f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()
            if 200 <= status < 400:
                return Result.SUCCESS
            return self._failed(spec, started, f"HTTP {status}: {body.strip()}")
        return Result.UNKNOWN  # exec probes: the chart renders none; a prober error is thrown away

    def _failed(self, spec: ProbeSpec, started: float, detail: str) -> Result:
        self.probe_failures[spec] = f"{detail} (after {time.monotonic() - started:.2f}s)"
        return Result.FAILURE

    def probe_failure(self, spec: ProbeSpec) -> str:
        """Why the probe last failed ('' when it never did): the detail a real kubelet puts in its
        Unhealthy Event ("Liveness probe failed: ...")."""
        return self.probe_failures.get(spec, "")

    def may_restart(self, name: str) -> bool:
        return name not in self.held and name not in self.sigtermed

    def deleting(self) -> bool:
        return self.terminating

    def _port(self, chart_port: int | None) -> int:
        """The cluster's port for a port the chart names (the chart's defaults: 7687, 10000, 8080)."""
        mapping = {7687: self.ports["bolt"], 10000: self.ports["replication"], 8080: self.ports["agent"]}
        return mapping.get(int(chart_port or 0), int(chart_port or 0))

    # ---- agent ----------------------------------------------------------------------------------

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

    @property
    def agent_url(self) -> str:
        return f"http://{self.ip}:{self.ports['agent']}"

    def http_ok(self, path: str, timeout_s: float = 1.0) -> bool:
        """GET `path` of the agent's API answers 2xx (what tests ask besides the kubelet's probes)."""
        try:
            with urllib.request.urlopen(self.agent_url + path, timeout=timeout_s) as resp:
                return 200 <= resp.status < 300
        except (OSError, ValueError):
            return False

    # ---- faults -------------------------------------------------------------------------------------

    def kill_memgraph(self) -> None:
        self.memgraph.kill()

    def kill_agent(self) -> None:
        if self.agent is not None:
            kill_group(self.agent)

    def freeze(self) -> None:
        """Every process of the pod stops (SIGSTOP): a paused node, or a hung process."""
        self.frozen = True
        stop_group_and_wait(self._pids())

    def thaw(self) -> None:
        for pid in self._pids():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)
        self.frozen = False

    def signal_container(self, name: str, sig: signal.Signals) -> None:
        """Send `sig` to one container's process group (SIGSTOP/SIGCONT: a hung process)."""
        proc = self.memgraph.proc if name == "memgraph" else self.agent
        if proc is not None and proc.poll() is None:
            signal_group(proc.pid, sig)
        if sig == signal.SIGSTOP:
            self.hung.add(name)
        elif sig == signal.SIGCONT:
            self.hung.discard(name)

    def _pids(self) -> list[int]:
        mg = self.memgraph.proc
        pids = [mg.pid] if mg is not None and mg.poll() is None else []
        if self.agent is not None and self.agent.poll() is None:
            pids.append(self.agent.pid)
        return pids

    def kill_all(self) -> None:
        """Everything of the pod, at once, no hook (force delete seen by the kubelet; volume lost)."""
        with self._lock:
            self.closed = True
            self.sigtermed.update(self.container_names())
        if self.frozen:
            self.thaw()
        for name in list(self.hung):
            self.signal_container(name, signal.SIGCONT)
        self.memgraph.kill()
        if self.agent is not None:
            kill_group(self.agent)
        if self._hook is not None:
            kill_group(self._hook)

    # ---- termination ----------------------------------------------------------------------------

    def terminate(self, grace_s: float, run_hook: bool = True) -> TerminationRecord:
        """Kubernetes pod termination within `grace_s` (B.1/B.2); returns what happened."""
        start = time.monotonic()
        rec = TerminationRecord(self.name, start)
        deadline = start + grace_s
        self.terminating = True
        if self.frozen:
            self.thaw()
        if run_hook and self.t.with_hook and grace_s > 0:
            rec.hook_exit = self._run_hook(deadline)
            rec.hook_s = time.monotonic() - start
        with self._lock:
            self.sigtermed.add("memgraph")
        self._stop_memgraph(deadline)
        with self._lock:  # the sidecar is restarted until it gets its SIGTERM, now
            self.sigtermed.add("agent")
        if self.agent is not None:
            self._stop_agent(deadline, rec)
        with self._lock:
            self.closed = True
        rec.total_s = time.monotonic() - start
        return rec

    def _stop_agent(self, deadline: float, rec: TerminationRecord) -> None:
        agent = self.agent
        if agent is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(agent.pid, signal.SIGTERM)
        try:
            agent.wait(timeout=max(self.min_grace_s, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            rec.killed = True
        kill_group(agent)

    def _run_hook(self, deadline: float) -> int | None:
        env = {
            "POD_NAME": self.name,
            "POD_UID": self.uid,
            "POD_IP": self.ip,
            "AGENT_URL": f"http://{self.box.local_host}:{self.ports['agent']}",
            "PRESTOP_TIMEOUT_SECONDS": str(self.chart.prestop_budget_s),
            "PRESTOP_LOG_DIR": str(self.log_dir),
            "PATH": os.environ.get("PATH", ""),
        }
        env.update(self.hook_env_override)
        with self._lock:
            if self.closed:
                return None
            hook = self._hook = self.box.popen(
                [sys.executable, str(HOOK)],
                env,
                stdout=subprocess.DEVNULL,
                stderr=open(self.logs / f"{self.name}.{self.uid[:8]}.hook.log", "ab"),  # noqa: SIM115
            )
        try:
            return hook.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("kubelet: preStop hook of %s not completed in the grace period: given up", self.name)
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
            mg.wait(timeout=max(self.min_grace_s, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.warning("kubelet: memgraph of %s outlived the grace period: killed", self.name)
        kill_group(mg)

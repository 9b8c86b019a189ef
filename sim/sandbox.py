"""The pod sandbox: where every process of one pod incarnation runs, and how it is tied to its run.

Role: what a container runtime's pod sandbox gives the containers of a pod, for the kubelet emulation
(`sim.kubelet`): the pod's address; with namespaces (`sim.netns`) its own network namespace, so every
process of the pod -- the Memgraph emulator, the agent, the preStop hook -- is started through
`ip netns exec <ns>` (which execs: the PID stays the one the kubelet signals) and sees its peers only
through the bridge, its own `localhost`, and its own `/etc/hosts`; without namespaces, a loopback address
of its own. Every command also carries the run's marker (`sim.reaper.MARKER`) in its environment, so
the run's reaper can find and kill it, and its children, whatever happens to the run.

Inside a namespace the processes bind and connect as in the chart: Memgraph listens on 0.0.0.0, the
agent binds 0.0.0.0 and reaches its Memgraph on 127.0.0.1, the hook calls the agent on 127.0.0.1. On
loopback they all use the pod's own 127.x address (a shared loopback has no per-pod localhost).

Must never: start a process of the pod outside its namespace, or without the run's marker.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sim import proc
from sim.memgraph.control import MemgraphProcess
from sim.memgraph.timings import MemgraphTimings
from sim.netns import PodNet
from sim.reaper import MARKER

ENV = shutil.which("env") or "/usr/bin/env"
ADMIN_PORT = 9999  # the Memgraph emulator's admin port inside a namespace (exempt from partitions)


class PodSandbox:
    """The network and process context of one pod incarnation."""

    def __init__(self, pod: str, ip: str, run_id: str, net: PodNet | None = None,
                 probe_source: str = "") -> None:
        self.pod, self.ip, self.run_id, self.net = pod, ip, run_id, net
        self.probe_source = probe_source  # the kubelet's probes come from this address ("" = any)

    @property
    def namespaced(self) -> bool:
        return self.net is not None

    @property
    def bind_host(self) -> str:
        """Where the pod's servers listen: every address of the namespace, or the pod's loopback IP."""
        return "0.0.0.0" if self.namespaced else self.ip

    @property
    def local_host(self) -> str:
        """How a process of the pod reaches another process of the same pod."""
        return "127.0.0.1" if self.namespaced else self.ip

    def command(self, argv: Sequence[str]) -> list[str]:
        """argv that runs inside the pod (same PID) with the run's marker in its environment."""
        prefix = self.net.exec_prefix() if self.net is not None else []
        return [ENV, f"{MARKER}={self.run_id}", *prefix, *argv]

    def env(self, env: Mapping[str, str]) -> dict[str, str]:
        return {**env, MARKER: self.run_id}

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None, log_path: Path | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """A container's main process, in its own process group (sim.proc.start_group)."""
        return proc.start_group(self.command(argv), env=self.env(env or {}), log_path=log_path, cwd=cwd)

    def popen(self, argv: Sequence[str], env: Mapping[str, str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """A hook: exactly `env` (plus the marker), its own session, inside the pod."""
        return subprocess.Popen(self.command(argv), env=self.env(env), start_new_session=True, **kwargs)

    def memgraph(self, data_dir: Path, bolt_port: int, replication_port: int, user: str | None = None,
                 password: str | None = None, hosts_file: Path | None = None,
                 timings: MemgraphTimings | None = None) -> MemgraphProcess:
        """The memgraph container: an emulator process inside the pod, reached at the pod's IP."""
        return PodMemgraph(self, data_dir, bolt_port, replication_port, user, password,
                           None if self.namespaced else hosts_file, timings)


class PodMemgraph(MemgraphProcess):
    """A Memgraph emulator started inside a pod sandbox (binds `bind_host`, reached at the pod IP). Its
    replication server binds `bind_host` too: 0.0.0.0 in a namespace, as Memgraph does; on the shared
    loopback the pod's own address, or a pod's old address would still reach it."""

    def __init__(self, box: PodSandbox, data_dir: Path, bolt_port: int, replication_port: int,
                 user: str | None, password: str | None, hosts_file: Path | None,
                 timings: MemgraphTimings | None = None) -> None:
        super().__init__(data_dir, box.ip, bolt_port=bolt_port, user=user, password=password,
                         hosts_file=hosts_file, replication_port=replication_port, timings=timings,
                         replication_bind=box.bind_host)
        self.box = box
        if box.namespaced:
            self.admin_port = ADMIN_PORT

    def args(self) -> list[str]:
        argv = super().args()
        i = argv.index("--host")
        argv[i + 1] = self.box.bind_host
        return self.box.command(argv)

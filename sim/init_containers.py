"""Ordinary init containers of an emulated pod: the chart's `reseed` container, run as the kubelet runs it.

Role: before any other container of a new pod incarnation starts (native sidecars included), run each
ordinary init container to completion, in order (reference kubernetes-and-helm.md B.1): here the
chart's `reseed` container, which is the real `python -m agent.reseed` with the agent's environment,
the pod's ServiceAccount, started through the pod's sandbox (`sim.sandbox`: inside the pod's network
namespace, with the run's marker, as every container of the pod), and the pod's data volume
(`<pvc>/lib`, mounted at /var/lib/memgraph, data in `mg_data`, archives beside it). A container that
exits non-zero is run again with a doubling back-off, as restartPolicy Always does, and the pod does not
start until it succeeds (here: until the start deadline, then the pod's start fails, as a pod stuck in
Init:CrashLoopBackOff). Its termination message (the file it writes, at most 4096 bytes) goes into the
container's status, which the kubelet then keeps in `status.initContainerStatuses` (`statuses()`).

Kept in one class with no knowledge of the rest of the kubelet so the kubelet of issue 14 takes it over
unchanged.

Must never: start a container after the start deadline, keep more than 4096 bytes of a message, or leave
a process running (each run is bounded and its whole process group killed on timeout).
"""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.proc import kill_group

# how a container's process starts inside its pod (sim.sandbox.PodSandbox.start): argv, env, log, cwd
Starter = Callable[[Sequence[str], Mapping[str, str], Path, Path], "subprocess.Popen[bytes]"]

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parent.parent
MESSAGE_LIMIT = 4096
RESEED = "reseed"  # coordinator.core.datadir.INIT_CONTAINER; sim does not import the product
MOUNT = "/var/lib/memgraph"


def reseed_spec() -> dict[str, Any]:
    """The container as the chart renders it (the parts the emulated API and kubectl show)."""
    return {"name": RESEED, "image": "memgraph-ha/agent:0.1.0", "command": ["python", "-m", "agent.reseed"],
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"}


@dataclass
class InitRun:
    name: str
    exit_code: int
    message: str
    started: str
    finished: str
    restarts: int


class InitContainers:
    """The ordinary init containers of one pod incarnation."""

    def __init__(self, pod: str, uid: str, env: Mapping[str, str], volume: Path, logs: Path,
                 start: Starter) -> None:
        self.pod, self.uid = pod, uid
        self.start = start
        self.env = dict(env)
        self.volume = volume  # the data volume's root: /var/lib/memgraph in the chart
        self.logs = logs
        self.runs: list[InitRun] = []

    def run(self, deadline: float, run_timeout_s: float = 30.0, backoff_s: float = 0.5) -> None:
        """Run every init container to success before `deadline` (monotonic); TimeoutError otherwise."""
        env = {**self.env,
               "HA_DATA_DIR": str(self.volume / "mg_data"), "HA_ARCHIVE_DIR": str(self.volume / "diverged")}
        message_file = self.logs / f"{self.pod}.{self.uid[:8]}.{RESEED}.termination-log"
        restarts = 0
        while True:
            started = _now()
            message_file.unlink(missing_ok=True)
            code = self._one(env, message_file, max(0.1, min(run_timeout_s, deadline - time.monotonic())))
            message = message_file.read_bytes()[:MESSAGE_LIMIT].decode(errors="replace") \
                if message_file.exists() else ""
            if code == 0:
                self.runs = [InitRun(RESEED, code, message, started, _now(), restarts)]
                return
            log.warning("init container %s of %s exited %s (restart %d)", RESEED, self.pod, code, restarts)
            if time.monotonic() + backoff_s >= deadline:
                raise TimeoutError(f"init container {RESEED} of {self.pod} did not succeed (exit {code})")
            time.sleep(backoff_s)
            backoff_s, restarts = min(backoff_s * 2, 10.0), restarts + 1

    def _one(self, env: Mapping[str, str], message_file: Path, timeout_s: float) -> int:
        args = [sys.executable, "-m", "agent.reseed", "--termination-log", str(message_file)]
        log_path = self.logs / f"{self.pod}.{self.uid[:8]}.{RESEED}.log"
        p = self.start(args, env, log_path, REPO)
        try:
            return p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(p)
            return 124

    def statuses(self) -> list[dict[str, Any]]:
        """`status.initContainerStatuses` entries of the containers that ran (terminated, with message)."""
        return [{
            "name": r.name, "image": reseed_spec()["image"], "imageID": "", "ready": False, "started": False,
            "restartCount": r.restarts,
            "state": {"terminated": {"exitCode": r.exit_code, "reason": "Completed" if r.exit_code == 0 else
                                     "Error", "message": r.message, "startedAt": r.started,
                                     "finishedAt": r.finished}},
        } for r in self.runs]


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

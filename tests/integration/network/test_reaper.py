"""A run killed outright leaves nothing behind (sim.reaper): a subprocess that builds an emulated
cluster is SIGKILLed (its whole process group, as a CI timeout does) at a random moment -- while its
namespaces are being made, or once its agents and emulators run -- and afterwards no process, namespace,
link, bridge, nftables table (they live in the namespaces) or hosts file of that run exists."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sim import netns
from sim.reaper import marked_pids
from sim.runlease import run_alive
from tests.integration.network.conftest import NETNS_REASON

CHILD = """
import logging, sys, time
from pathlib import Path
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(message)s")
from sim.cluster import ClusterConfig, SimCluster
from sim.kubelet import PodTemplate
c = SimCluster(Path(sys.argv[1]), ClusterConfig(seed=3, pod_management="Parallel",
               template=PodTemplate()))
c.start(wait_ready_s=90)
print("STARTED", flush=True)
time.sleep(120)
"""
RUN_ID = re.compile(r"event=run_open run=(\w+)")
RUN_OPEN_BOUND_S = 30.0


def wait_gone(run_id: str, bound_s: float = 30.0) -> dict[str, object]:
    deadline = time.monotonic() + bound_s
    while True:
        left = {"processes": marked_pids(run_id), "alive": run_alive(run_id), **netns.objects_of(run_id)}
        if not any(left.values()) or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


@pytest.mark.parametrize("window", [(0.0, 2.2), (3.7, 8.7)], ids=["while-starting", "while-running"])
def test_a_run_killed_with_sigkill_leaves_nothing(tmp_path: Path, window: tuple[float, float]) -> None:
    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(*window)
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path / "cluster")], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, cwd=Path(__file__).parents[3])
    found: list[str] = []
    opened = threading.Event()

    def read_stderr() -> None:
        assert child.stderr is not None
        for line in child.stderr:
            m = RUN_ID.search(line.decode(errors="replace"))
            if m:
                found.append(m.group(1))
                opened.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        # the window counts from the run's opening (the chart is rendered before it, which takes a
        # varying part of a second on a loaded machine): killed while namespaces are made, or once running
        opened.wait(RUN_OPEN_BOUND_S)
        time.sleep(delay)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    reader.join(5)
    assert found, f"the child logged no run id within {RUN_OPEN_BOUND_S:g}s (seed {seed})"
    run_id = found[0]
    left = wait_gone(run_id)
    assert not any(left.values()), f"left after SIGKILL at {delay:.2f}s (seed {seed}): {left}"
    if NETNS_REASON is None:
        assert not list(Path("/etc/netns").glob(f"mgh-{run_id}-*"))

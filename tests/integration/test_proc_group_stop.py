"""`sim.proc.stop_group_and_wait`: a frozen pod of the bed is frozen, every thread of every process in
its group, by the time the call returns (kill(2) alone only queues the stop; a test that acted at once
raced the threads still running -- a CI failure of the frozen-instance client test)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sim import proc

SPINNER = """
import os, subprocess, sys, threading, time
counter = sys.argv[1]
if len(sys.argv) > 2:  # a second process in the same group
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
def spin():
    while True:
        pass
for _ in range(3):
    threading.Thread(target=spin, daemon=True).start()
n = 0
while True:
    n += 1
    with open(counter, "w") as f:
        f.write(str(n))
    time.sleep(0.005)
"""


def _spinner(tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    counter = tmp_path / "counter"
    child = subprocess.Popen([sys.executable, "-c", SPINNER, str(counter), "fork"], start_new_session=True)
    for _ in range(500):  # bounded: until it writes
        if counter.exists() and counter.read_text():
            break
        time.sleep(0.01)
    return child, counter


def test_every_thread_of_the_group_is_stopped_on_return_and_runs_again_after_sigcont(tmp_path: Path) -> None:
    child, counter = _spinner(tmp_path)
    try:
        assert not proc.group_stopped(child.pid)
        proc.stop_group_and_wait([child.pid], timeout_s=10.0)
        assert proc.group_stopped(child.pid)
        members = proc._group_members(child.pid)
        assert len(members) == 2, members  # the spinner and its child
        frozen_at = counter.read_text()
        time.sleep(0.2)
        assert counter.read_text() == frozen_at, "a thread of the stopped group still ran"
        os.killpg(child.pid, signal.SIGCONT)
        for _ in range(500):  # bounded: until it writes again
            if counter.read_text() not in ("", frozen_at):
                break
            time.sleep(0.01)
        assert counter.read_text() not in ("", frozen_at)
        assert not proc.group_stopped(child.pid)
    finally:
        proc.kill_group(child)


def test_a_group_that_is_gone_counts_as_stopped(tmp_path: Path) -> None:
    child, _ = _spinner(tmp_path)
    proc.kill_group(child)
    for _ in range(500):  # bounded: the group's other process may outlive the leader for a moment
        if not proc._group_members(child.pid):
            break
        time.sleep(0.01)
    proc.stop_group_and_wait([child.pid], timeout_s=1.0)
    assert proc.group_stopped(child.pid)

"""charts/memgraph/files/agent_prestop_wait.py: the ordinary-container agent's bounded preStop wait."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pytest

from sim.proc import free_port, start_group, stop_group, wait_for_port
from tests.chart import render as r

SCRIPT = r.CHART_DIR / "files" / "agent_prestop_wait.py"


def _load() -> ModuleType:
    return r.load_chart_script("agent_prestop_wait")


FakeClock = r.FakeClock


def test_wait_ends_after_two_closed_probes_in_a_row() -> None:
    waiter, clock = _load(), FakeClock()
    answers = iter([True, False, True, False, False, True])
    stopped, waited = waiter.wait_until_closed(lambda: next(answers), 60, clock, clock.sleep)
    assert stopped and waited == pytest.approx(2.0)


def test_wait_gives_up_at_its_timeout_while_memgraph_stays_up() -> None:
    waiter, clock = _load(), FakeClock()
    stopped, waited = waiter.wait_until_closed(lambda: True, 7.2, clock, clock.sleep)
    assert not stopped and waited == pytest.approx(7.2)


def _listener(port: int) -> subprocess.Popen[bytes]:
    code = (
        f"import socket,time\ns=socket.socket();s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
        f"s.bind(('127.0.0.1',{port}));s.listen(16)\nwhile True: time.sleep(1)\n"
    )
    return start_group([sys.executable, "-c", code])


def test_script_waits_while_bolt_listens_and_records_when_it_stops(tmp_path: Path) -> None:
    port = free_port()
    bolt = _listener(port)
    waiter = None
    try:
        wait_for_port("127.0.0.1", port, timeout_s=10, proc=bolt)
        env = {
            "MEMGRAPH_HOST": "127.0.0.1",
            "MEMGRAPH_BOLT_PORT": str(port),
            "HA_LOG_DIR": str(tmp_path),
            "POD_UID": "uid-1",
            "POD_IP": "10.0.0.9",
        }
        waiter = start_group([sys.executable, str(SCRIPT), "--timeout", "30"], env=env)
        time.sleep(1.5)
        assert waiter.poll() is None, "the wait ended while Memgraph was still listening"
        stop_group(bolt)
        assert waiter.wait(timeout=10) == 0
        record = (tmp_path / "prestop-uid-1_10.0.0.9.log").read_text()
        assert "agent preStop wait: memgraph stopped after" in record
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            pass
    finally:
        stop_group(bolt)
        if waiter is not None:
            stop_group(waiter)


def test_script_exits_zero_at_its_timeout_and_records_it(tmp_path: Path) -> None:
    port = free_port()
    bolt = _listener(port)
    waiter = None
    try:
        wait_for_port("127.0.0.1", port, timeout_s=10, proc=bolt)
        env = {
            "MEMGRAPH_BOLT_PORT": str(port),
            "HA_LOG_DIR": str(tmp_path),
            "POD_UID": "u",
            "POD_IP": "1.2.3.4",
        }
        started = time.monotonic()
        waiter = start_group([sys.executable, str(SCRIPT), "--timeout", "1"], env=env)
        assert waiter.wait(timeout=20) == 0
        assert time.monotonic() - started < 10
        assert "timeout (1s), memgraph still up" in (tmp_path / "prestop-u_1.2.3.4.log").read_text()
    finally:
        stop_group(bolt)
        if waiter is not None:
            stop_group(waiter)

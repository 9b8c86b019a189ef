"""The agent as a process (`python -m agent`): settings errors, SIGTERM and the Lease, log formats.

Real pieces: the agent process under gunicorn, the Kubernetes API emulator over HTTP (the agent's real
`kubernetes` client). No Memgraph runs: the agent's election, API and shutdown must not need one
(DESIGN "Start and termination order"). Every process is started in its own group and killed on teardown.

Must never: leave a process behind, bind outside 127.0.0.0/8, or assert a speed target (the SIGTERM
bound is the agent's own graceful timeout, a functional bound).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sim.kube.server import KubeEmulator
from sim.proc import free_port, kill_group, start_group
from tests.support.wait import wait_until

REPO = Path(__file__).resolve().parents[2]
NS = "default"
PASSWORD = "pw-Zq7#process-secret"  # a test value that must never be printed
TOKEN = "tok-Kx9-process-token"
GRACEFUL_TIMEOUT_S = 15.0  # agent/__main__.py: max(15, HA_DRAIN_SECONDS + 10)
LOGFMT_LINE = re.compile(r'^ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=[a-z]+ logger=\S+ msg=".*"')


POD_UID = "0b0e6c1e-0000-4000-8000-000000000001"


def base_env(kubeconfig: Path | None, port: int, lease: str, log_dir: Path) -> dict[str, str]:
    """A complete, valid agent environment (no inherited HA_* or POD_* value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HA_", "POD_", "MEMGRAPH_", "AGENT_"))}
    env.pop("KUBECONFIG", None)
    env.update(
        POD_NAME="memgraph-0",
        POD_NAMESPACE=NS,
        POD_UID=POD_UID,
        POD_IP="127.0.0.1",
        HA_STATEFULSET="memgraph",
        HA_POD_SELECTOR="app.kubernetes.io/name=memgraph",
        HA_HEADLESS_SERVICE="memgraph-headless",
        HA_LEASE_NAME=lease,
        HA_LEASE_DURATION_SECONDS="4",
        HA_RENEW_DEADLINE_SECONDS="3",
        HA_RETRY_PERIOD_SECONDS="0.5",
        HA_RECONCILE_INTERVAL_SECONDS="0.5",
        HA_DRAIN_SECONDS="0",
        HA_LOG_DIR=str(log_dir),
        MEMGRAPH_HOST="127.0.0.1",
        MEMGRAPH_BOLT_PORT=str(free_port()),  # nothing listens there: no Memgraph in this module
        MEMGRAPH_USER="memgraph",
        MEMGRAPH_PASSWORD=PASSWORD,
        HA_API_TOKEN=TOKEN,
        AGENT_BIND="127.0.0.1",
        AGENT_PORT=str(port),
    )
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    return env


def run_agent_expecting_exit(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agent"], env=env, cwd=REPO, capture_output=True, text=True, timeout=30
    )


# ---- settings errors: exit 2 naming the variable -------------------------------------------------


@pytest.mark.parametrize(
    "change, variable",
    [
        ({"POD_NAME": None}, "POD_NAME"),
        ({"HA_STATEFULSET": ""}, "HA_STATEFULSET"),
        ({"HA_LEASE_DURATION_SECONDS": "soon"}, "HA_LEASE_DURATION_SECONDS"),
        ({"AGENT_PORT": "99999"}, "AGENT_PORT"),
        ({"POD_IP": "not-an-ip"}, "POD_IP"),
        ({"HA_LOG_FORMAT": "xml"}, "HA_LOG_FORMAT"),
        ({"HA_SYNC_MODE": "sometimes"}, "HA_SYNC_MODE"),
        ({"HA_RENEW_DEADLINE_SECONDS": "9"}, "HA_RENEW_DEADLINE_SECONDS"),  # >= lease duration 4
    ],
)
def test_bad_or_missing_setting_exits_2_naming_the_variable(
    tmp_path: Path, change: dict[str, str | None], variable: str
) -> None:
    env = base_env(None, free_port(), "memgraph-ha", tmp_path)
    for key, value in change.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    done = run_agent_expecting_exit(env)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert variable in done.stderr
    assert "config error" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout
    assert TOKEN not in done.stderr + done.stdout


# ---- a running agent -------------------------------------------------------------------------------


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[KubeEmulator, Path]]:
    emu = KubeEmulator(host="127.0.0.1", port=0).start()
    kubeconfig = emu.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield emu, kubeconfig
    finally:
        emu.stop()


class AgentProc:
    """One agent process with its log file; killed (whole group) by `kill()`."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.port = int(env["AGENT_PORT"])
        self.log_path = log_path
        self.proc = start_group([sys.executable, "-m", "agent"], env=env, log_path=log_path, cwd=REPO)

    def get(self, path: str, timeout_s: float = 1.0) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout_s) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def wait(self, predicate: Any, timeout_s: float, what: str) -> None:
        def alive_and(pred: Any) -> Any:
            assert self.proc.poll() is None, f"agent exited with {self.proc.returncode}: {self.log()[-2000:]}"
            return pred()

        try:
            wait_until(lambda: alive_and(predicate), timeout_s, what, interval_s=0.05, ignore=(OSError,))
        except AssertionError as exc:
            raise AssertionError(f"{exc}; log tail:\n{self.log()[-3000:]}") from None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        kill_group(self.proc)


@pytest.fixture
def agents() -> Iterator[list[AgentProc]]:
    started: list[AgentProc] = []
    try:
        yield started
    finally:
        for a in started:
            a.kill()


def lease_spec(emu: KubeEmulator, name: str) -> dict[str, Any]:
    return dict(emu.get("Lease", NS, name).get("spec") or {})


def test_sigterm_to_leading_agent_releases_the_lease_and_exits_in_time(
    tmp_path: Path, kube: tuple[KubeEmulator, Path], agents: list[AgentProc]
) -> None:
    emu, kubeconfig = kube
    env = base_env(kubeconfig, free_port(), "sigterm-ha", tmp_path)
    env.pop("HA_LOG_FORMAT", None)  # the default format is checked below
    agent = AgentProc(env, tmp_path / "agent.log")
    agents.append(agent)
    agent.wait(lambda: agent.get("/health")[0] == 200, 30, "agent /health")
    agent.wait(lambda: agent.get("/api/v1/local")[1].get("is_leader") is True, 20, "agent leads")
    assert lease_spec(emu, "sigterm-ha").get("holderIdentity") == f"memgraph-0_{POD_UID}"  # per incarnation

    # Kubernetes signals the container's PID 1 (the gunicorn arbiter), not the whole group.
    t0 = time.monotonic()
    os.kill(agent.proc.pid, signal.SIGTERM)
    released_after: float | None = None
    while agent.proc.poll() is None and time.monotonic() - t0 < GRACEFUL_TIMEOUT_S + 10:
        if released_after is None and not lease_spec(emu, "sigterm-ha").get("holderIdentity"):
            released_after = time.monotonic() - t0
        time.sleep(0.05)
    exited_after = time.monotonic() - t0
    code = agent.proc.poll()
    spec = lease_spec(emu, "sigterm-ha")
    print(f"\nSIGTERM: Lease released after {released_after}s, process exited after {exited_after:.2f}s")
    assert code is not None, "the agent outlived its graceful timeout"
    assert code == 0, agent.log()[-3000:]
    assert exited_after < GRACEFUL_TIMEOUT_S + 2.0, "exit must come within the graceful timeout"
    assert not spec.get("holderIdentity"), spec
    assert spec.get("leaseDurationSeconds") == 1, spec
    log = agent.log()
    assert 'msg="lease released"' in log

    # The default log format is logfmt: every line, gunicorn's included, one event per line.
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) > 5
    bad = [line for line in lines if not LOGFMT_LINE.match(line)]
    assert not bad, bad[:5]
    assert PASSWORD not in log and TOKEN not in log


def test_json_log_format_is_one_object_per_line(
    tmp_path: Path, kube: tuple[KubeEmulator, Path], agents: list[AgentProc]
) -> None:
    emu, kubeconfig = kube
    env = base_env(kubeconfig, free_port(), "json-ha", tmp_path)
    env["HA_LOG_FORMAT"] = "json"
    agent = AgentProc(env, tmp_path / "agent.json.log")
    agents.append(agent)
    agent.wait(lambda: agent.get("/api/v1/local")[1].get("is_leader") is True, 30, "agent leads")
    # an operator request with no token is refused (401) and must not break the log format
    switchover = f"http://127.0.0.1:{agent.port}/api/v1/switchover"
    req = urllib.request.Request(switchover, method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=2)
    assert err.value.code == 401
    os.kill(agent.proc.pid, signal.SIGTERM)
    agent.proc.wait(timeout=GRACEFUL_TIMEOUT_S + 5)
    lines = [line for line in agent.log().splitlines() if line.strip()]
    assert len(lines) > 5
    docs = []
    for line in lines:
        doc = json.loads(line)  # raises on any line that is not one JSON document
        assert isinstance(doc, dict), line
        assert {"ts", "level", "logger", "msg"} <= doc.keys(), line
        docs.append(doc)
    msgs = " ".join(d["msg"] for d in docs)
    assert "became leader" in msgs and "lease released" in msgs
    assert PASSWORD not in agent.log() and TOKEN not in agent.log()
    assert not lease_spec(emu, "json-ha").get("holderIdentity")

"""Fixtures for the preStop hook tests: a scripted agent (stdlib HTTP server on 127.0.0.1, port 0), a
trickling TCP server, and a runner that executes `python3 hooks/prestop.py` as its own process group."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sim.proc import kill_group, start_group

ROOT = Path(__file__).resolve().parents[3]
HOOK = ROOT / "hooks" / "prestop.py"
LINE_RE = r"^\[\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z\] (.*)$"


@dataclass
class Step:
    status: int
    body: Any = None  # dict -> JSON, bytes -> as is
    delay_s: float = 0.0


@dataclass
class ScriptedAgent:
    """Answers POSTs with `steps` in order (the last one repeats) and records every request body."""

    steps: list[Step]
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def next_step(self, body: dict[str, Any]) -> Step:
        with self.lock:
            self.requests.append(body)
            return self.steps[min(len(self.requests), len(self.steps)) - 1]


def _handler(agent: ScriptedAgent) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            step = agent.next_step({"path": self.path, **json.loads(raw or b"{}")})
            if step.delay_s:
                agent.release.wait(step.delay_s)  # bounded; teardown releases it
            data = step.body if isinstance(step.body, bytes) else json.dumps(step.body or {}).encode()
            try:
                self.send_response(step.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the hook gave up on this request already

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


@pytest.fixture
def scripted_agent() -> Iterator[Callable[..., ScriptedAgent]]:
    servers: list[tuple[ThreadingHTTPServer, threading.Thread, ScriptedAgent]] = []

    def make(*steps: Step) -> ScriptedAgent:
        agent = ScriptedAgent(list(steps))
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(agent))
        server.daemon_threads = True
        agent.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        servers.append((server, thread, agent))
        return agent

    try:
        yield make
    finally:
        for server, thread, agent in servers:
            agent.release.set()
            server.shutdown()
            server.server_close()
            thread.join(timeout=5)


@pytest.fixture
def trickle_server() -> Iterator[str]:
    """Accepts connections and sends a never-ending header one byte every 0.1 s (per-read timeouts never
    fire), so only the hook's budget guard can stop the hook."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)

    def serve() -> None:
        conns: list[socket.socket] = []
        try:
            while not stop.is_set():
                try:
                    conn, _ = listener.accept()
                    conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                    conns.append(conn)
                except TimeoutError:
                    pass
                for conn in list(conns):
                    try:
                        conn.sendall(b"a")
                    except OSError:
                        conns.remove(conn)
        finally:
            for conn in conns:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@dataclass
class HookRun:
    code: int
    elapsed_s: float
    output: str  # stderr (and stdout) of the hook process
    log_dir: Path

    def record_file(self, uid: str = "uid-1", ip: str = "10.1.2.3") -> Path:
        return self.log_dir / f"prestop-{uid}_{ip}.log"


@pytest.fixture(scope="session")
def python3() -> str:
    """The real `python3` interpreter (not the virtualenv's, and without a shim's start-up cost)."""
    out = subprocess.run(["python3", "-c", "import sys; print(sys.executable)"], capture_output=True,
                         text=True, timeout=30, check=True)
    return out.stdout.strip() or sys.executable


@pytest.fixture
def run_hook(tmp_path: Path, python3: str) -> Iterator[Callable[..., HookRun]]:
    procs: list[subprocess.Popen[bytes]] = []

    def run(url: str, budget: float, log_dir: Path | None = None, **extra: str) -> HookRun:
        log_dir = log_dir or tmp_path / "logs"
        out = tmp_path / f"hook-output-{len(procs)}.txt"
        env = {"POD_NAME": "memgraph-1", "POD_UID": "uid-1", "POD_IP": "10.1.2.3", "AGENT_URL": url,
               "PRESTOP_TIMEOUT_SECONDS": f"{budget:g}", "PRESTOP_LOG_DIR": str(log_dir), **extra}
        started = time.monotonic()
        proc = start_group([python3, str(HOOK)], env=env, log_path=out, cwd=tmp_path)
        procs.append(proc)
        code = proc.wait(timeout=budget + 10)
        elapsed = time.monotonic() - started
        return HookRun(code, elapsed, out.read_text(), log_dir)

    try:
        yield run
    finally:
        for proc in procs:
            kill_group(proc)

"""A fake AgentServices for the HTTP-layer tests (the unit under test is agent/api.py, not the agent)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import flask
import pytest

from agent.api import PrestopRequest, create_app
from agent.fence import FenceRequest
from agent.handover import HandoverRequest
from agent.metrics import AgentMetrics


@dataclass
class FakeServices:
    pod_name: str = "memgraph-1"
    leader: bool = True
    leader_base: str | None = "http://memgraph-0.memgraph-headless:8080"
    token: str | None = "s3cret-token"
    fencing_token: str | None = None  # HA_FENCE_TOKEN
    pods: set[str] = field(default_factory=lambda: {"memgraph-0", "memgraph-1", "memgraph-2"})
    healthy: tuple[bool, str] = (True, "loops ran 0.4s ago")
    is_ready: tuple[bool, str] = (True, "memgraph answers; role replica as recorded")
    prestop_results: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    prestop_gate: threading.Event | None = None
    prestop_entered: threading.Event = field(default_factory=threading.Event)
    prestop_calls: list[PrestopRequest] = field(default_factory=list)
    switchover_calls: list[str | None] = field(default_factory=list)
    paused: list[bool] = field(default_factory=list)
    local_raises: bool = False
    prestop_raises: Exception | None = None
    fence_calls: list[FenceRequest] = field(default_factory=list)
    handover_calls: list[HandoverRequest] = field(default_factory=list)

    def health(self) -> tuple[bool, str]:
        return self.healthy

    def ready(self) -> tuple[bool, str]:
        return self.is_ready

    def local_state(self) -> dict[str, Any]:
        if self.local_raises:
            raise RuntimeError("state not built yet")
        return {"role": "replica", "replica_status": "ready"}

    def is_leader(self) -> bool:
        return self.leader

    def leader_url(self) -> str | None:
        return self.leader_base

    def cluster_status(self) -> dict[str, Any]:
        return {"main": "memgraph-0", "generation": 4, "pods": sorted(self.pods)}

    def prestop(self, request: PrestopRequest) -> tuple[int, dict[str, Any]]:
        self.prestop_calls.append(request)
        self.prestop_entered.set()
        if self.prestop_raises is not None:
            raise self.prestop_raises
        if self.prestop_gate is not None:
            assert self.prestop_gate.wait(10), "test never released the prestop gate"
        if self.prestop_results:
            return self.prestop_results.pop(0)
        return 200, {"outcome": "switchover-done", "safe_to_stop": True, "new_main": "memgraph-2",
                     "detail": ""}

    def switchover(self, to: str | None) -> tuple[int, dict[str, Any]]:
        self.switchover_calls.append(to)
        return 200, {"old_main": "memgraph-0", "new_main": to or "memgraph-1"}

    def pause(self) -> tuple[int, dict[str, Any]]:
        self.paused.append(True)
        return 200, {"paused": True}

    def resume(self) -> tuple[int, dict[str, Any]]:
        self.paused.append(False)
        return 200, {"paused": False}

    def purge(self, pod: str, archive: str) -> tuple[int, dict[str, Any]]:
        return 202, {"pod": pod, "archive": archive, "pending": [f"{pod}/{archive}"]}

    def known_pods(self) -> set[str]:
        return self.pods

    def fence(self, request: FenceRequest) -> tuple[int, dict[str, Any]]:
        self.fence_calls.append(request)
        return 409, {"error": "main-healthy", "detail": "fake"}

    def handover(self, request: HandoverRequest) -> tuple[int, dict[str, Any]]:
        self.handover_calls.append(request)
        return 409, {"error": "not-terminating", "detail": "fake"}

    def api_token(self) -> str | None:
        return self.token

    def fence_token(self) -> str | None:
        return self.fencing_token


@pytest.fixture
def services() -> FakeServices:
    return FakeServices()


@pytest.fixture
def metrics() -> AgentMetrics:
    return AgentMetrics()


@pytest.fixture
def app(services: FakeServices, metrics: AgentMetrics) -> flask.Flask:
    application = create_app(services, metrics)
    application.testing = True
    return application


@pytest.fixture
def client(app: flask.Flask) -> Any:
    return app.test_client()


@pytest.fixture
def token_client(services: FakeServices, metrics: AgentMetrics) -> Any:
    """A client of an agent run with HA_STATUS_AUTH=token (the status and local routes need the token)."""
    application = create_app(services, metrics, status_auth=True)
    application.testing = True
    return application.test_client()


@pytest.fixture
def local_client(app: flask.Flask) -> Callable[[str], Any]:
    """A test client whose requests come from `remote_addr`."""

    def make(remote_addr: str) -> Any:
        c = app.test_client()
        c.environ_base["REMOTE_ADDR"] = remote_addr
        return c

    return make

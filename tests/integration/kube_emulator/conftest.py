"""Fixtures: an in-process KubeEmulator per test (stopped on teardown, also on failure) and typed APIs."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client, watch

from sim.kube.server import KubeEmulator
from tests.support.clock import FakeClock
from tests.support.wait import wait_until as wait_until  # re-exported for the tests here

NS = "default"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def emu(clock: FakeClock) -> Iterator[KubeEmulator]:
    e = KubeEmulator(history_size=50, clock=clock, admin_port=0)
    e.start()
    try:
        yield e
    finally:
        e.stop()


@pytest.fixture
def api(emu: KubeEmulator) -> Iterator[client.ApiClient]:
    a = emu.api_client(user_agent="kube-emulator-tests/1.0", retries=0)
    try:
        yield a
    finally:
        a.close()


@pytest.fixture
def core(api: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api)


@pytest.fixture
def coord(api: client.ApiClient) -> client.CoordinationV1Api:
    return client.CoordinationV1Api(api)


def pod_body(name: str, labels: dict[str, str] | None = None, grace: int | None = None) -> client.V1Pod:
    spec = client.V1PodSpec(
        containers=[client.V1Container(name="memgraph", image="memgraph/memgraph:3.5.0")],
        termination_grace_period_seconds=grace,
    )
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, labels=labels or {}), spec=spec)


class Collector:
    """Runs `Watch.stream` in a thread and collects (type, name-or-raw) events; joined on close()."""

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.events: list[dict[str, Any]] = []
        self.error: BaseException | None = None
        self.watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, args=(func, args, kwargs), daemon=True)
        self._thread.start()

    def _run(self, func: Callable[..., Any], args: Any, kwargs: Any) -> None:
        try:
            for ev in self.watch.stream(func, *args, **kwargs):
                self.events.append(ev)
        except BaseException as exc:  # recorded for the test to assert on
            self.error = exc

    def types(self) -> list[str]:
        return [e["type"] for e in self.events]

    def close(self, timeout_s: float = 10.0) -> None:
        self.watch.stop()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "watch thread did not end"


def status_of(exc_info: Any) -> dict[str, Any]:
    """The Status object an ApiException carried (from `pytest.raises(...) as exc`)."""
    body = json.loads(exc_info.value.body or "{}")
    assert isinstance(body, dict)
    return body


def http(
    emu: KubeEmulator,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = "admin",
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, Any]:
    """A raw HTTPS request to the emulator (what no typed client would send): (status, JSON body or raw
    bytes, headers). `token` "admin" is the admin's, None sends no Authorization header."""
    hdrs = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        hdrs["Authorization"] = f"Bearer {emu.token if token == 'admin' else token}"
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    req = urllib.request.Request(f"{emu.url}{path}", data=data, headers=hdrs, method=method)
    ctx = ssl.create_default_context(cafile=str(emu.tls.ca_file))
    try:
        with urllib.request.urlopen(req, timeout=10, context=ctx) as resp:
            code, raw, got = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as err:
        code, raw, got = err.code, err.read(), err.headers
    try:
        return code, json.loads(raw), got
    except ValueError:
        return code, raw, got

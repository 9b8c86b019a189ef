"""The leader's view of every pod's last preStop record, gathered from the pods' own agents.

Role: each agent summarises its own last record in `GET /api/v1/local` (`prestop_last`; the record lives
on that pod's log volume, which only that pod mounts). The leader asks every pod's agent for it, in
parallel, each call bounded by `timeout_s`, at most once per `ttl_s`, on a background thread started by
a status request: the status document never waits for a peer, it shows what the last round collected
and how old that is. A pod whose agent does not answer is listed with the error.

Must never: block a status request on a peer, run more than one round at a time, keep a round's thread
beyond its bound, or log or forward anything but the operator token it was given (HA_API_TOKEN, sent only
to the pods' own agents, and only because HA_STATUS_AUTH=token may require it).
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests

from coordinator.edge.logs import log_event

log = logging.getLogger(__name__)

Fetch = Callable[[str, float], dict[str, Any]]


class PeerPrestopRecords:
    """Last preStop record per pod, refreshed in the background (see the module docstring)."""

    def __init__(
        self,
        own_pod: str,
        own_record: Callable[[], dict[str, Any] | None],
        port: int,
        token: str | None,
        ttl_s: float = 5.0,
        timeout_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        fetch: Fetch | None = None,
    ) -> None:
        self.own_pod, self.own_record, self.port, self.token = own_pod, own_record, port, token
        self.ttl_s, self.timeout_s, self.clock = ttl_s, timeout_s, clock
        self._fetch = fetch or self._http_local
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []
        self._collected_at: float | None = None
        self._running = False

    def view(self, pods: Sequence[tuple[str, str]]) -> tuple[list[dict[str, Any]], float | None]:
        """(entries of the last round, its age in seconds or None before the first); starts a new round
        in the background when the last one is older than `ttl_s`. `pods`: (name, ip) of every pod."""
        now = self.clock()
        with self._lock:
            stale = self._collected_at is None or now - self._collected_at >= self.ttl_s
            start = stale and not self._running
            if start:
                self._running = True
            entries, at = list(self._entries), self._collected_at
        if start:
            threading.Thread(target=self._round, args=(list(pods),), daemon=True).start()
        return entries, (None if at is None else round(now - at, 3))

    def _round(self, pods: list[tuple[str, str]]) -> None:
        try:
            entries = self.collect(pods)
            with self._lock:
                self._entries, self._collected_at = entries, self.clock()
        except Exception as exc:
            log_event(log, "prestop records round failed; keeping the previous one", level=logging.WARNING,
                      error=f"{type(exc).__name__}: {exc}")
        finally:
            with self._lock:
                self._running = False

    def collect(self, pods: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """One round, in parallel, each call bounded by `timeout_s` (the round by twice that)."""
        out: dict[str, dict[str, Any]] = {}
        pool = cf.ThreadPoolExecutor(max_workers=max(1, min(8, len(pods))), thread_name_prefix="prestop-peer")
        try:
            futures = {name: pool.submit(self._one, name, ip) for name, ip in pods}
            deadline = self.clock() + 2 * self.timeout_s
            for name, fut in futures.items():
                try:
                    out[name] = fut.result(timeout=max(0.05, deadline - self.clock()))
                except cf.TimeoutError:
                    out[name] = {"pod": name, "record": None, "error": "no answer in time"}
        finally:
            pool.shutdown(wait=False, cancel_futures=True)  # a straggler ends with its own request timeout
        return [out[name] for name, _ in pods]

    def _one(self, name: str, ip: str) -> dict[str, Any]:
        if name == self.own_pod:
            return {"pod": name, "record": self.own_record(), "error": None}
        if not ip:
            return {"pod": name, "record": None, "error": "pod has no IP"}
        try:
            doc = self._fetch(f"http://{ip}:{self.port}/api/v1/local", self.timeout_s)
        except Exception as exc:
            log_event(log, "prestop record not collected", pod=name, error=type(exc).__name__)
            return {"pod": name, "record": None, "error": f"{type(exc).__name__} asking its agent"}
        record = doc.get("prestop_last") if isinstance(doc, dict) else None
        return {"pod": name, "record": record if isinstance(record, dict) else None, "error": None}

    def _http_local(self, url: str, timeout_s: float) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        resp = requests.get(url, headers=headers, timeout=timeout_s)
        resp.raise_for_status()
        doc = resp.json()
        return doc if isinstance(doc, dict) else {}

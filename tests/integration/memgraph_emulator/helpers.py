"""Helpers for the Memgraph emulator tests: emulator processes (always stopped) and driver helpers.

Every process is started through MemgraphProcess (sim.proc process groups) and stopped in a finally
block, also when the test fails; drivers are closed the same way.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import ClientError

from sim.memgraph.control import MemgraphProcess
from sim.memgraph.timings import MemgraphTimings
from tests.support.wait import waited

# The emulator tests check replicas every 0.2 s instead of Memgraph's 1 s, so states settle within a
# test's patience; every other timing stays Memgraph's (tests that need a shorter one say so).
FAST = MemgraphTimings(check_frequency_s=0.2)


class Cluster:
    """Creates emulator processes under one temporary directory and cleans them all up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[MemgraphProcess] = []
        self.drivers: dict[int, Driver] = {}

    def start(self, name: str, extra_args: tuple[str, ...] = (), timings: MemgraphTimings = FAST,
              **kw: Any) -> MemgraphProcess:
        p = MemgraphProcess(self.root / name, extra_args=extra_args, timings=timings, **kw)
        self.procs.append(p)
        return p.start()

    def driver(self, p: MemgraphProcess, auth: tuple[str, str] = ("", "")) -> Driver:
        key = id(p)
        if key not in self.drivers:
            self.drivers[key] = GraphDatabase.driver(p.bolt_uri, auth=auth, connection_timeout=3.0,
                                                     max_transaction_retry_time=0.5, initial_retry_delay=0.05)
        return self.drivers[key]

    def close(self) -> None:
        for d in self.drivers.values():
            try:
                d.close()
            except Exception as exc:
                print(f"closing a driver failed: {exc!r}")
        for p in self.procs:
            p.stop()


def run(c: Cluster, p: MemgraphProcess, text: str, **params: Any) -> list[list[Any]]:
    """Auto-commit query (replication queries must not run in explicit transactions); returns rows."""
    with c.driver(p).session() as s:
        return [list(r.values()) for r in s.run(text, params)]


def replicas(c: Cluster, p: MemgraphProcess) -> dict[str, dict[str, Any]]:
    """SHOW REPLICAS as name -> {address, mode, data_info}."""
    return {r[0]: {"address": r[1], "mode": r[2], "system_info": r[3], "data": r[4].get("memgraph")}
            for r in run(c, p, "SHOW REPLICAS")}


def status(c: Cluster, p: MemgraphProcess, name: str) -> str | None:
    data = replicas(c, p)[name]["data"]
    return None if data is None else str(data["status"])


def wait_until(fn: Callable[[], bool], timeout_s: float = 10.0, interval_s: float = 0.05) -> float:
    """Poll fn until true (bounded in time and count); returns the seconds it took, fails otherwise."""
    return waited(fn, timeout_s, "condition", interval_s).elapsed_s


def make_replica(c: Cluster, p: MemgraphProcess) -> None:
    run(c, p, f"SET REPLICATION ROLE TO REPLICA WITH PORT {p.replication_port}")


def register(c: Cluster, main: MemgraphProcess, name: str, mode: str, replica: MemgraphProcess) -> None:
    run(c, main, f"REGISTER REPLICA {name} {mode} TO '127.0.0.1:{replica.replication_port}'")


@contextlib.contextmanager
def client_error(pattern: str) -> Iterator[Any]:
    """Expect a neo4j ClientError whose Memgraph message (not the driver's decorated str) matches."""
    with pytest.raises(ClientError) as err:
        yield err
    assert re.search(pattern, err.value.message or ""), err.value.message


def count(c: Cluster, p: MemgraphProcess, label: str = "N") -> int:
    return int(run(c, p, f"MATCH (n:{label}) RETURN count(n)")[0][0])


def values(c: Cluster, p: MemgraphProcess, label: str = "N", key: str = "k") -> list[Any]:
    return [row[0] for row in run(c, p, f"MATCH (n:{label}) RETURN n.{key}")]


def forget(c: Cluster, p: MemgraphProcess) -> None:
    """Close the pooled driver of `p` (its connections died with the process)."""
    d = c.drivers.pop(id(p), None)
    if d is not None:
        d.close()


class Background:
    """One auto-commit query on its own thread and driver (a client waiting on a frozen or dying MAIN)."""

    def __init__(self, p: MemgraphProcess, text: str) -> None:
        self._driver = GraphDatabase.driver(p.bolt_uri, auth=("", ""), connection_timeout=3.0,
                                            max_transaction_retry_time=0.0)
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(text,), daemon=True)
        self._thread.start()

    def _run(self, text: str) -> None:
        try:
            with self._driver.session() as s:
                s.run(text).consume()
        except Exception as exc:  # the outcome is what the test inspects
            self.error = exc
        finally:
            self.done.set()

    def outcome(self, timeout_s: float = 30.0) -> BaseException | None:
        """Wait (bounded) for the answer; None means the client got success."""
        self._thread.join(timeout=timeout_s)
        self._driver.close()
        if not self.done.is_set():
            pytest.fail(f"no answer within {timeout_s}s")
        return self.error

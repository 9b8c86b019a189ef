"""Helpers for the Memgraph emulator tests: emulator processes (always stopped) and driver helpers.

Every process is started through MemgraphProcess (sim.proc process groups) and stopped in a finally
block, also when the test fails; drivers are closed the same way.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from neo4j import Driver, GraphDatabase
from neo4j.exceptions import ClientError

from sim.memgraph.control import MemgraphProcess
from tests.support.wait import waited

FAST = ("--replica-check-frequency-sec", "0.2")


class Cluster:
    """Creates emulator processes under one temporary directory and cleans them all up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[MemgraphProcess] = []
        self.drivers: dict[int, Driver] = {}

    def start(self, name: str, extra_args: tuple[str, ...] = FAST, **kw: Any) -> MemgraphProcess:
        p = MemgraphProcess(self.root / name, extra_args=extra_args, **kw)
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

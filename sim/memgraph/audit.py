"""The replication-command audit of one emulated Memgraph (a test instrument; Memgraph keeps none).

Role: append one JSON line per replication command a Bolt client ran -- `SET REPLICATION ROLE`,
`REGISTER REPLICA`, `DROP REPLICA`, `CREATE SNAPSHOT` (reference memgraph-replication.md 1.1: the
queries that change an instance's replication state or data files) -- to the file given with
`--sim-audit-file`: when it arrived (`t`, `time.monotonic()`: CLOCK_MONOTONIC, one clock for every
process of the machine, so the lines compare with the API emulator's audit log), the client's address
(`peer`) and the address it connected to (`local`: the pod's address, or 127.0.0.1 for a process of the
same pod), the command, and its answer (`error` empty when it succeeded). A command is recorded whether
it succeeded or not: one that failed may still have changed the instance (a REGISTER answered Error 5
keeps its entry, reference 1.4). Reading the lines back: `read(path)`.

Must never: record a query's parameters or any credential, fail a query because the file cannot be
written (it logs that instead), or keep the file open between lines (an instance killed with -9 loses
nothing already written).
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.memgraph import cypher as c

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """One audited command, as written."""

    t: float
    peer: str
    local: str
    command: str
    error: str = ""


def describe(q: Any) -> str | None:
    """The audit text of a replication command (None for any other query): no parameters, no secrets."""
    if isinstance(q, c.SetRole):
        return ("SET REPLICATION ROLE TO MAIN" if q.to_main
                else f"SET REPLICATION ROLE TO REPLICA WITH PORT {q.port}")
    if isinstance(q, c.RegisterReplica):
        return f"REGISTER REPLICA {q.name} {q.mode.upper()} TO {q.address}"
    if isinstance(q, c.DropReplica):
        return f"DROP REPLICA {q.name}"
    if isinstance(q, c.CreateSnapshot):
        return "CREATE SNAPSHOT"
    return None


class CommandAudit:
    """Appends Command lines to `path`; does nothing when `path` is None."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()

    def record(self, cmd: Command) -> None:
        if self.path is None:
            return
        line = json.dumps(cmd.__dict__, separators=(",", ":")) + "\n"
        try:
            with self._lock, open(self.path, "a", encoding="utf-8") as f:
                f.write(line)
        except OSError as exc:
            log.warning("audit: cannot append to %s: %s", self.path, exc)


def read(path: Path) -> list[Command]:
    """Every line of an audit file (none when it does not exist); a torn last line is skipped."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            out.append(Command(**json.loads(line)))
        except (ValueError, TypeError):
            continue
    return out

"""What the archives of diverged data on an emulated pod's volume hold (the I4 checker's evidence).

Role: for every archive a pod's volume keeps (`<volume>/diverged/*` written by the re-seed init container,
`<volume>/diverged-manual-*` by the runbook), read the ids of a label it holds: a copy of the archive is
opened by a standalone Memgraph emulator (an archive is a Memgraph data directory: snapshots/, wal/,
replication/), as an operator would inspect it. The check then knows whether a diverged pod's history was
kept (I4: archived, never deleted).

Must never: open or change an archive in place (the emulator works on a copy), or leave a process
running (each emulator is stopped in a `finally`).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from neo4j import GraphDatabase

from sim import proc
from sim.memgraph.control import MemgraphProcess


def archive_dirs(volume: Path) -> list[Path]:
    found = sorted((volume / "diverged").glob("*")) if (volume / "diverged").is_dir() else []
    return [d for d in [*found, *sorted(volume.glob("diverged-manual-*"))] if d.is_dir()]


def ids_in(archive: Path, label: str = "W", user: str = "", password: str = "") -> set[str]:
    """The ids of `label` a data directory holds, read from a copy by a standalone emulator."""
    with tempfile.TemporaryDirectory(prefix="archive-") as tmp:
        copy = Path(tmp) / "mg_data"
        shutil.copytree(archive, copy, ignore=shutil.ignore_patterns("manifest.json"))
        mg = MemgraphProcess(copy, host="127.0.0.1", bolt_port=proc.free_port("127.0.0.1"),
                             user=user or None, password=password or None,
                             extra_args=("--replication-restore-state-on-startup", "false"))
        mg.start()
        try:
            with GraphDatabase.driver(mg.bolt_uri, auth=(user, password) if user else None,
                                      connection_timeout=3.0) as driver, driver.session() as session:
                return {str(r["id"]) for r in session.run(f"MATCH (n:{label}) RETURN n.id AS id")}
        finally:
            mg.stop()


def archived_ids(volume: Path, label: str = "W", user: str = "", password: str = "") -> set[str]:
    out: set[str] = set()
    for archive in archive_dirs(volume):
        out |= ids_in(archive, label, user, password)
    return out

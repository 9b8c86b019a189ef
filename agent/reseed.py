"""`python -m agent.reseed`: the re-seed init container of a Memgraph pod (I4: archived, never deleted).

Role: runs before Memgraph starts, with the pod's data volume mounted (here only). When the cluster record
(the Lease's annotations) names this pod for a re-seed at step `archive`, it moves Memgraph's files out of
the data directory (`snapshots/`, `wal/`, `replication/`; `auth/` stays: users and roles are not
replicated data, reference 7.3 and 7.5) into a dated archive on the same volume, beside a manifest (what,
when, for which generation, the size), so Memgraph starts empty: last durable timestamp 0, no role and no
registrations of its own. Before that it checks the volume has room for the fresh copy the MAIN will
send (about the size of what it moves, plus `HA_RESEED_RESERVE_BYTES`): else it refuses and moves
nothing. At every start it reports (termination message, `coordinator.core.datadir`): what it did, how
many snapshot/WAL files Memgraph will find, and the archives on the volume.

An archive is removed only when an operator asked for it by name (`memgraph-ha diverged purge POD
ARCHIVE`, carried by the record): at this pod's next start.

Must never: delete anything else (it only renames inside the volume; a rename that fails, e.g. across
file systems, is reported, never replaced by a copy and a delete), start or touch Memgraph, write outside the
volume and its termination message, block the pod's start beyond its bounded record read, or exit
non-zero for a refusal (a pod that cannot start is worse than a quarantined one).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from coordinator.core import datadir
from coordinator.core.datadir import Archive, DataOutcome, DataReport
from coordinator.core.model import ReseedPolicy, ReseedStep
from coordinator.edge.logs import log_event, setup_logging
from coordinator.edge.settings import DataSettings, Settings, exit_on_error

log = logging.getLogger("agent.reseed")

MOVED = ("snapshots", "wal", "replication")  # Memgraph's files; auth/ stays
DURABLE = ("snapshots", "wal")  # what recovery replays: none of them means last durable timestamp 0
MANIFEST = "manifest.json"
RECORD_ATTEMPTS = 3
RECORD_TIMEOUT_S = 2.0  # at most ~8 s before Memgraph starts while the API server does not answer
RECORD_PAUSE_S = 1.0


class RecordUnreadable(RuntimeError):
    """The cluster record could not be read within the bounded attempts."""


@dataclass(frozen=True)
class Asked:
    """A re-seed of this pod the record asks for."""

    generation: int
    main: str
    incarnation: str  # the incarnation the leader deleted (`<uid>/<restarts>`)


# ---- the volume -------------------------------------------------------------------------------------


def tree_size(path: Path) -> tuple[int, int]:
    """(bytes, files) under `path` (a file counts itself); symlinks are not followed."""
    if not path.exists():
        return 0, 0
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size, 1
    total = files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            total += (Path(root) / name).lstat().st_size
            files += 1
    return total, files


def durable_files(data_dir: Path) -> int:
    return sum(tree_size(data_dir / entry)[1] for entry in DURABLE)


def list_archives(archive_dir: Path) -> tuple[Archive, ...]:
    """Every archive with a readable manifest, oldest first (by name: the name starts with the UTC time)."""
    out: list[Archive] = []
    if not archive_dir.is_dir():
        return ()
    for entry in sorted(archive_dir.iterdir()):
        try:
            manifest = json.loads((entry / MANIFEST).read_text())
            out.append(Archive(entry.name, int(manifest["bytes"]), int(manifest["generation"]),
                               str(manifest["created"]), tuple(m["entry"] for m in manifest["moved"])))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log_event(log, "archive without a readable manifest", level=logging.WARNING, archive=entry.name,
                      error=f"{type(exc).__name__}: {exc}")
    return tuple(out)


def _write_json(path: Path, doc: dict[str, object]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def archive(data_dir: Path, archive_dir: Path, asked: Asked, pod: str, uid: str, now: dt.datetime) -> Archive:
    """Move Memgraph's files into `<archive_dir>/<UTC>-g<generation>/` with its manifest (renames only)."""
    name = f"{now.strftime('%Y%m%dT%H%M%S.%fZ')}-g{asked.generation}"
    target = archive_dir / name
    target.mkdir(parents=True)
    moved = []
    for entry in MOVED:
        source = data_dir / entry
        if not source.exists():
            continue
        size, files = tree_size(source)
        os.rename(source, target / entry)  # same volume: atomic, no copy; across file systems it raises
        moved.append({"entry": entry, "bytes": size, "files": files})
        log_event(log, "moved aside", entry=entry, to=str(target / entry), bytes=size, files=files)
    total = sum(int(m["bytes"]) for m in moved)  # type: ignore[call-overload]
    _write_json(target / MANIFEST, {
        "pod": pod, "uid": uid, "generation": asked.generation, "main": asked.main,
        "deleted_incarnation": asked.incarnation, "created": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "bytes": total, "moved": moved, "data_directory": str(data_dir),
        "why": f"diverged from the MAIN {asked.main}: holds history it never had (reference 7.3)",
        # The transactions after the branching point are in the WAL files above; Memgraph's WAL format is
        # not read by this product, so what they hold beyond the MAIN is not summarised here.
        "beyond_main": None,
    })
    _fsync_dir(target)
    _fsync_dir(data_dir)
    return Archive(name, total, asked.generation, now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                   tuple(str(m["entry"]) for m in moved))


def purge(archive_dir: Path, names: tuple[str, ...]) -> None:
    """Remove the archives an operator named (a direct child of archive_dir with a manifest, nothing else)."""
    for name in names:
        target = archive_dir / name
        if "/" in name or name in ("", ".", "..") or not (target / MANIFEST).is_file():
            log_event(log, "purge refused: not an archive", level=logging.WARNING, archive=name)
            continue
        size, files = tree_size(target)
        shutil.rmtree(target)
        log_event(log, "archive purged at the operator's request", level=logging.WARNING, archive=name,
                  bytes=size, files=files)


def act(
    data: DataSettings,
    pod: str,
    uid: str,
    asked: Asked | RecordUnreadable | None,
    purged: tuple[str, ...] = (),
    free_bytes: Callable[[Path], int] = lambda p: shutil.disk_usage(p).free,
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> DataReport:
    """Do what the record asks of this pod's data directory, and say what Memgraph will find."""
    data_dir, archive_dir = Path(data.data_dir), Path(data.archive_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    purge(archive_dir, purged)
    free = free_bytes(data_dir)
    outcome, generation, reason = DataOutcome.KEPT, 0, ""
    if isinstance(asked, RecordUnreadable):
        outcome, reason = DataOutcome.FAILED, f"cluster record unreadable ({asked}); nothing moved"
    elif asked is not None:
        generation = asked.generation
        need = sum(tree_size(data_dir / e)[0] for e in MOVED)
        if free < need + data.reserve_bytes:
            outcome = DataOutcome.REFUSED
            reason = (f"volume has {free} bytes free, a fresh copy needs {need} (+{data.reserve_bytes} "
                      "reserve); nothing moved")
        else:
            try:
                if any((data_dir / e).exists() for e in MOVED):  # a second start of the same re-seed: done
                    archive(data_dir, archive_dir, asked, pod, uid, now())
                outcome = DataOutcome.ARCHIVED
            except OSError as exc:
                outcome, reason = DataOutcome.FAILED, f"archive failed: {type(exc).__name__}: {exc}"
    archives = list_archives(archive_dir)
    report = DataReport(outcome, generation, reason, durable_files(data_dir), free_bytes(data_dir), archives,
                        archived_bytes=sum(a.bytes for a in archives))
    log_event(log, "data directory", level=logging.WARNING if reason else logging.INFO, pod=pod,
              outcome=outcome.value, generation=generation, reason=reason, durable_files=report.durable_files,
              archives=len(archives))
    return report


# ---- the record -------------------------------------------------------------------------------------


def read_asked(
    settings: Settings, sleep: Callable[[float], None] = time.sleep
) -> tuple[Asked | None, tuple[str, ...]]:
    """(the re-seed the record asks of this pod or None, the archives an operator asked to purge here);
    RecordUnreadable after RECORD_ATTEMPTS."""
    from kubernetes import client as kclient
    from kubernetes.client.exceptions import ApiException

    from coordinator.core import record as record_codec
    from coordinator.runtime.wiring import api_client_for

    api = kclient.CoordinationV1Api(api_client_for(settings, "memgraph-ha-reseed"))
    last = ""
    for attempt in range(1, RECORD_ATTEMPTS + 1):
        try:
            lease = api.read_namespaced_lease(settings.election.lease_name, settings.identity.namespace,
                                              _request_timeout=RECORD_TIMEOUT_S)
            meta = lease.metadata
            record, _problems = record_codec.decode(meta.annotations if meta is not None else None)
            me = settings.identity.pod_name
            purged = tuple(e.partition("/")[2] for e in record.purge if e.partition("/")[0] == me)
            if record.reseed_pod != me or record.reseed_step != ReseedStep.ARCHIVE:
                return None, purged
            return Asked(record.reseed_generation, record.main, record.reseed_incarnation), purged
        except ApiException as exc:
            if exc.status == 404:
                return None, ()  # no Lease yet: a fresh cluster, nothing asked
            last = f"ApiException {exc.status}"
        except Exception as exc:  # the network: retried within the bound, then reported
            last = f"{type(exc).__name__}: {exc}"
        log_event(log, "cluster record read failed", level=logging.WARNING, attempt=attempt,
                  of=RECORD_ATTEMPTS, error=last)
        if attempt < RECORD_ATTEMPTS:
            sleep(RECORD_PAUSE_S)
    raise RecordUnreadable(last)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m agent.reseed", description=__doc__.splitlines()[0])
    parser.add_argument("--termination-log", default="/dev/termination-log",
                        help="where the kubelet reads the report (terminationMessagePath)")
    args = parser.parse_args(argv)
    settings = exit_on_error(os.environ)
    setup_logging(settings.log.format, settings.log.level)
    asked: Asked | RecordUnreadable | None = None
    purged: tuple[str, ...] = ()
    try:
        asked, purged = read_asked(settings)
    except RecordUnreadable as exc:
        asked = exc if settings.data.reseed is ReseedPolicy.AUTO else None
    if settings.data.reseed is ReseedPolicy.MANUAL and isinstance(asked, Asked):
        asked = None  # manual: never moves anything on its own
    report = act(settings.data, settings.identity.pod_name, settings.identity.uid, asked, purged)
    try:
        Path(args.termination_log).write_text(datadir.encode(report))
    except OSError as exc:
        log_event(log, "termination message not written", level=logging.WARNING, path=args.termination_log,
                  error=f"{type(exc).__name__}: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

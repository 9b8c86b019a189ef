"""The data-directory report: what the re-seed init container found and did at a pod's start.

Role: the vocabulary and the JSON codec of the report the init container (`agent.reseed`) writes as its
termination message, which the kubelet copies into the pod's status
(`status.initContainerStatuses[].state.terminated.message`, at most 4096 bytes) so the coordinator reads
it off the pod watch: whether Memgraph's durable files are there (no snapshot and no WAL file: the last
durable timestamp is 0, reference 7.3), whether a re-seed archived them or was refused and why, and the
archives kept on the volume (name, size, generation). The report of one pod is about its current
incarnation only: a re-created pod runs its init container again.

Must never: do I/O, or fail on a report written by another version (unknown keys are ignored, a report
that does not parse is `None`: "nothing known", never "empty").
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field, replace
from typing import Any

TERMINATION_MESSAGE_LIMIT = 4096  # bytes the kubelet keeps of a termination message
INIT_CONTAINER = "reseed"  # the init container's name in the chart and the emulated cluster
RESEED_ANNOTATION = "memgraph-ha.io/reseed-generation"  # stamped on a pod before its re-seed deletion


class DataOutcome(enum.StrEnum):
    """What the init container did to the data directory at this start."""

    KEPT = "kept"  # no re-seed asked for this pod: nothing moved
    ARCHIVED = "archived"  # Memgraph's files moved into a dated archive (or were already, same generation)
    REFUSED = "refused"  # a re-seed was asked but the volume lacks the space for a fresh copy
    FAILED = "failed"  # a re-seed was asked but could not be read or done; nothing was removed


@dataclass(frozen=True)
class Archive:
    """One archive directory on the pod's volume (never deleted by the product, I4)."""

    name: str
    bytes: int
    generation: int
    created: str  # ISO 8601 UTC
    holds: tuple[str, ...] = ()  # the moved entries, e.g. ("snapshots", "wal", "replication")


@dataclass(frozen=True)
class DataReport:
    """The init container's report for one pod incarnation; `durable_files` -1 means unknown."""

    outcome: DataOutcome
    generation: int = 0  # the record's generation the re-seed acted for (0 when none)
    reason: str = ""
    durable_files: int = -1  # snapshot and WAL files left in the data directory after this start
    free_bytes: int = -1
    archives: tuple[Archive, ...] = ()
    archives_omitted: int = 0  # archives left out of the report to fit the termination message
    archived_bytes: int = field(default=0)  # the sum over every archive, omitted ones included

    @property
    def clean(self) -> bool:
        """Memgraph starts with no durable file, so its last durable timestamp is 0 (reference 7.3)."""
        return self.durable_files == 0


def encode(report: DataReport) -> str:
    """Compact JSON that fits the termination message: the newest archives are kept, older ones counted."""
    archives = sorted(report.archives, key=lambda a: a.name)
    while True:
        kept = replace(report, archives=tuple(archives),
                       archives_omitted=report.archives_omitted + len(report.archives) - len(archives))
        text = json.dumps(_plain(kept), separators=(",", ":"), sort_keys=True)
        if len(text.encode()) <= TERMINATION_MESSAGE_LIMIT or not archives:
            return text
        archives = archives[1:]


def _plain(report: DataReport) -> dict[str, Any]:
    return {
        "v": 1, "outcome": report.outcome.value, "generation": report.generation, "reason": report.reason,
        "durable_files": report.durable_files, "free_bytes": report.free_bytes,
        "archives_omitted": report.archives_omitted, "archived_bytes": report.archived_bytes,
        "archives": [{"name": a.name, "bytes": a.bytes, "generation": a.generation, "created": a.created,
                      "holds": list(a.holds)} for a in report.archives],
    }


def decode(text: str | None) -> DataReport | None:
    """The report in `text`, or None when there is none or it does not parse."""
    if not text:
        return None
    try:
        raw = json.loads(text)
        archives = tuple(
            Archive(str(a["name"]), int(a.get("bytes", 0)), int(a.get("generation", 0)),
                    str(a.get("created", "")), tuple(str(h) for h in a.get("holds", ())))
            for a in raw.get("archives", ())
        )
        return DataReport(
            outcome=DataOutcome(raw["outcome"]),
            generation=int(raw.get("generation", 0)),
            reason=str(raw.get("reason", "")),
            durable_files=int(raw.get("durable_files", -1)),
            free_bytes=int(raw.get("free_bytes", -1)),
            archives=archives,
            archives_omitted=int(raw.get("archives_omitted", 0)),
            archived_bytes=int(raw.get("archived_bytes", sum(a.bytes for a in archives))),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return None

"""Reading Memgraph's answers and quoting what goes into replication queries.

Role: parse `SHOW REPLICATION ROLE`, `SHOW REPLICAS` (both column layouts: reference
memgraph-replication.md 2.2 and 2.3) and `SHOW STORAGE INFO` rows into the model's types; quote replica
names and socket addresses so nothing else can reach the query text.

Must never: do I/O, or accept a name or address that is not plainly what it should be.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from coordinator.core.model import ReplicaInfo, ReplicaMode, ReplicaStatus, Role, StorageInfo
from coordinator.edge.memgraph_errors import UnexpectedReply

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


_ADDRESS = re.compile(r"^[A-Za-z0-9_.\-]+(:[0-9]{1,5})?$")


def quote_name(name: str) -> str:
    """A replica name as a backtick-quoted identifier; ValueError unless it is a plain identifier."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(f"replica name must match {_NAME.pattern}, got {name!r}")
    return f"`{name}`"


def quote_address(address: str) -> str:
    """`host[:port]` as a Cypher string literal; ValueError for anything else (reference 1.1)."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise ValueError(f"replica address must be host or host:port, got {address!r}")
    port = address.partition(":")[2]
    if port and not 1 <= int(port) <= 65535:
        raise ValueError(f"replica address port must be 1-65535, got {address!r}")
    escaped = address.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def parse_role(rows: list[dict[str, Any]]) -> Role:
    """The single value of `SHOW REPLICATION ROLE` (column `replication role`, reference 2.1)."""
    value = next(iter(rows[0].values()), None) if rows else None
    try:
        return Role(str(value).lower())
    except ValueError:
        raise UnexpectedReply(f"SHOW REPLICATION ROLE returned {rows!r}") from None


def parse_replica_row(row: Mapping[str, Any]) -> ReplicaInfo:
    """One SHOW REPLICAS row: v2.15+ `data_info` layout (2.2) or v2.4-v2.14 `state` layout (2.3).

    `data_info` {} (unreachable at REGISTER, or bug #2235 on v2.15-v2.18) and the v2.0-v2.3 layout give
    status UNKNOWN; only the default database `memgraph` is read.
    """
    try:
        name, address = str(row["name"]), str(row["socket_address"])
        mode = ReplicaMode(str(row["sync_mode"]).lower())
    except (KeyError, ValueError) as exc:
        raise UnexpectedReply(f"SHOW REPLICAS row not understood: {dict(row)!r}") from exc
    if "data_info" in row:
        status, ts, behind = _data_info(row["data_info"])
    elif "state" in row:
        status = _status(row["state"])
        ts = _int(row.get("current_timestamp_of_replica"))
        behind = _int(row.get("number_of_timestamp_behind_master"))
    else:
        status, ts, behind = ReplicaStatus.UNKNOWN, 0, 0
    return ReplicaInfo(name=name, socket_address=address, mode=mode, status=status, ts=ts, behind=behind)


def _data_info(data: Any) -> tuple[ReplicaStatus, int, int]:
    db = data.get("memgraph") if isinstance(data, Mapping) else None
    if not isinstance(db, Mapping):
        return ReplicaStatus.UNKNOWN, 0, 0
    return _status(db.get("status")), _int(db.get("ts")), _int(db.get("behind"))


def _status(value: Any) -> ReplicaStatus:
    try:
        return ReplicaStatus(str(value).lower())
    except ValueError:
        return ReplicaStatus.UNKNOWN


def _int(value: Any) -> int:
    try:
        return int(value) if value is not None else 0
    except (TypeError, ValueError):
        return 0


def parse_storage_rows(rows: list[dict[str, Any]]) -> StorageInfo:
    """`SHOW STORAGE INFO` rows (`storage info`, `value`) -> vertex and edge counts (reference Appendix)."""
    info: dict[str, Any] = {}
    for row in rows:
        values = list(row.values())
        if len(values) >= 2:
            info[str(values[0])] = values[1]
    try:
        return StorageInfo(vertex_count=int(info["vertex_count"]), edge_count=int(info["edge_count"]))
    except (KeyError, TypeError, ValueError):
        raise UnexpectedReply(f"storage info without vertex/edge counts: {sorted(info)!r}") from None

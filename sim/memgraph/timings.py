"""Memgraph's replication timeouts and cadence, in one record: the emulator's defaults and its flags.

Role: name every timing of reference memgraph-replication 7.4 once, with Memgraph's value as the default,
and turn a record into the emulator's command-line flags (`args`) and back (`from_flags`). Sources, read at
memgraph/memgraph df0f636 (after v3.12.0):
- `src/rpc/client.hpp:130-150` `default_rpc_timeouts_ms`: HeartbeatReq 10 s, FrequentHeartbeatReq 5 s,
  SwapMainUUIDReq 10 s, PrepareCommitReq 30 s ("waiting 30'' on a progress/final response"),
  FinalizeCommitReq 10 s, WalFilesReq/CurrentWalReq 30 s, SnapshotReq 60 s;
- `src/rpc/client.hpp:200`: an RPC client connects with a 5 s timeout;
- `src/storage/v2/replication/replication_client.cpp:38-39`: an ASYNC replica's heartbeat tries the RPC
  lock for 5 s (`kHeartbeatRpcTimeout`), an ASYNC commit for 50 ms (`kCommitRpcTimeout`);
- `src/replication/include/replication/config.hpp:36`: `--replication-replica-check-frequency-sec` 1 s,
  and `replication_client.hpp:62` `kFailureAfterN = 3` missed checks make a replica invalid.
Only the check frequency is a Memgraph flag; the others are constants of its source, so their flags are
the emulator's own (`--sim-...`). Tests that need them shorter say so where they pass them (see
`sim/cluster.py`); the product must stay correct at these defaults.

Must never: change a default away from Memgraph's value, or accept a negative timeout.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

MISSES_TO_INVALID = 3  # kFailureAfterN (replication_client.hpp:62); not a timing, never configurable

# dataclass field -> (flag, help)
_FLAGS: dict[str, tuple[str, str]] = {
    "check_frequency_s": ("--replication-replica-check-frequency-sec",
                          "seconds between FrequentHeartbeats to each replica; <= 0 disables checks"),
    "connect_timeout_s": ("--sim-rpc-connect-timeout-sec", "replication RPC connect timeout (Memgraph: 5)"),
    "frequent_heartbeat_timeout_s": ("--sim-frequent-heartbeat-timeout-sec", "FrequentHeartbeat timeout (5)"),
    "heartbeat_timeout_s": ("--sim-heartbeat-timeout-sec", "Heartbeat timeout (10)"),
    "swap_uuid_timeout_s": ("--sim-swap-uuid-timeout-sec", "SwapMainUUID timeout (10)"),
    "prepare_timeout_s": ("--sim-prepare-timeout-sec", "PrepareCommit timeout (30)"),
    "finalize_timeout_s": ("--sim-finalize-timeout-sec", "FinalizeCommit timeout (10)"),
    "wal_timeout_s": ("--sim-wal-timeout-sec", "WalFiles (recovery) timeout (30)"),
    "snapshot_timeout_s": ("--sim-snapshot-timeout-sec", "Snapshot (recovery) timeout (60)"),
    "async_heartbeat_lock_s": ("--sim-async-heartbeat-lock-sec", "ASYNC heartbeat RPC-lock attempt (5)"),
    "async_commit_lock_s": ("--sim-async-commit-lock-sec", "ASYNC commit RPC-lock attempt (0.05)"),
}


@dataclass(frozen=True)
class MemgraphTimings:
    """Replication timings of one emulated Memgraph; every default is Memgraph's own."""

    check_frequency_s: float = 1.0
    connect_timeout_s: float = 5.0
    frequent_heartbeat_timeout_s: float = 5.0
    heartbeat_timeout_s: float = 10.0
    swap_uuid_timeout_s: float = 10.0
    prepare_timeout_s: float = 30.0
    finalize_timeout_s: float = 10.0
    wal_timeout_s: float = 30.0
    snapshot_timeout_s: float = 60.0
    async_heartbeat_lock_s: float = 5.0
    async_commit_lock_s: float = 0.05

    def __post_init__(self) -> None:
        for f in fields(self):
            if f.name != "check_frequency_s" and getattr(self, f.name) <= 0:
                raise ValueError(f"{f.name} must be positive")

    def args(self) -> list[str]:
        """The flags that reproduce this record (only those that differ from Memgraph's defaults)."""
        default = MemgraphTimings()
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != getattr(default, f.name):
                out += [_FLAGS[f.name][0], repr(float(value))]
        return out

    @staticmethod
    def add_flags(parser: argparse.ArgumentParser) -> None:
        default = MemgraphTimings()
        for name, (flag, text) in _FLAGS.items():
            extra = ("--replica-check-frequency-sec",) if name == "check_frequency_s" else ()
            parser.add_argument(flag, *extra, dest=name, type=float, default=getattr(default, name),
                                help=text)

    @staticmethod
    def from_flags(ns: argparse.Namespace) -> MemgraphTimings:
        return MemgraphTimings(**{name: float(getattr(ns, name)) for name in _FLAGS})

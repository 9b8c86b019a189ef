"""Derived views and small predicates the planner's rules are written in.

Role: turn one Snapshot + ClusterRecord + Policy into the questions the rules ask ("is this pod a
registrable replica?", "which pod keeps bootstrap waiting?", "what is this replica's desired address?"),
and hold the mutable plan a single `decide` call builds.

Must never: do I/O, read a clock (`snapshot.now` is the clock), or keep state between calls. Everything
here is pure and shared only with `coordinator.core.planner`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from coordinator.core.model import (
    Action,
    ClusterRecord,
    EmitEvent,
    InstanceState,
    PodView,
    Policy,
    ReplicaInfo,
    ReplicaMode,
    ReplicaStatus,
    Role,
    Snapshot,
    pod_ordinal,
    replica_name,
)
from coordinator.core.outcomes import BlockReason, DecisionKind

# REGISTER REPLICA answered `Error: 3` (CONNECTION_FAILED): the replica's history is not in the MAIN's
# (reference 1.3 and 4.1). The legacy log text is accepted too.
_DIVERGENCE_MARKERS = ("error: 3", "diverged", "acted as the main instance")

# A sync replica in one of these states is alive (maybe catching up) and keeps its designation.
ALIVE_STATUSES = (ReplicaStatus.READY, ReplicaStatus.REPLICATING, ReplicaStatus.RECOVERY)


def is_divergence_error(text: str) -> bool:
    """True when a REGISTER error text means the replica diverged from the MAIN (I4)."""
    low = text.lower()
    return any(marker in low for marker in _DIVERGENCE_MARKERS)


def replica_address(policy: Policy, pod: PodView | None) -> str:
    """Where the MAIN reaches a replica (docs/architecture.md "Replica addresses"): `<pod IP>:<port>`,
    or `<pod>.<headless-service>:<port>` when a headless governing Service is configured
    (HA_HEADLESS_SERVICE). "" when the pod has no address yet (nothing to register).

    The official chart's StatefulSet is governed by a ClusterIP Service and an upgrade cannot change that,
    so there is no per-pod DNS: the pod IP is the address, and every new incarnation has a new one. A
    registration whose address is not this one is replaced (DROP + REGISTER, replication.py) under the
    same I2 and sync-replica rules as a wrong mode.
    """
    if pod is None:
        return ""
    if policy.headless_service:
        return f"{pod.name}.{policy.headless_service}:{policy.replication_port}"
    return f"{pod.ip}:{policy.replication_port}" if pod.ip else ""


def statefulset_prefix(snapshot: Snapshot, record: ClusterRecord) -> str:
    """The StatefulSet name, read off any pod name (`memgraph-2` -> `memgraph`)."""
    for name in [record.main, *(p.name for p in snapshot.pods), *snapshot.instances]:
        head, _, tail = name.rpartition("-")
        if head and tail.isdigit():
            return head
    return ""


@dataclass(frozen=True)
class Verdict:
    """What one decision is (`kind`, for code) and says (`text`, for people: logs, status, tests)."""

    kind: DecisionKind
    detail: str

    @property
    def text(self) -> str:
        return f"{self.kind.value}: {self.detail}"


@dataclass(frozen=True)
class BootstrapBlock:
    """A pod bootstrap must wait for (it may hold the most data, or be a MAIN); `text` says why, in words."""

    pod: str
    reason: BlockReason
    text: str


@dataclass(frozen=True)
class View:
    """One cycle's facts, indexed for the rules. `diverged` already holds this cycle's findings."""

    snapshot: Snapshot
    record: ClusterRecord
    policy: Policy
    expected: tuple[str, ...]  # pod names of ordinals 0..expected_pods-1
    diverged: frozenset[str]
    main_rows: dict[str, ReplicaInfo]  # SHOW REPLICAS of the record's MAIN, by replica name

    @staticmethod
    def build(snapshot: Snapshot, record: ClusterRecord, policy: Policy) -> View:
        prefix = statefulset_prefix(snapshot, record)
        expected = tuple(f"{prefix}-{i}" for i in range(snapshot.expected_pods)) if prefix else ()
        main_obs = snapshot.instances.get(record.main)
        rows: dict[str, ReplicaInfo] = {}
        if record.main and main_obs is not None and main_obs.reachable and main_obs.role == Role.MAIN:
            rows = {r.name: r for r in main_obs.replicas}
        return View(snapshot, record, policy, expected, frozenset(record.diverged), rows)

    def with_diverged(self, diverged: frozenset[str]) -> View:
        return replace(self, diverged=diverged)

    # ---- per pod facts ---------------------------------------------------------------------
    def pod(self, name: str) -> PodView | None:
        return self.snapshot.pod(name)

    def obs(self, name: str) -> InstanceState | None:
        return self.snapshot.instances.get(name)

    def reachable(self, name: str) -> bool:
        obs = self.obs(name)
        return obs is not None and obs.reachable

    def role(self, name: str) -> Role | None:
        obs = self.obs(name)
        return obs.role if obs is not None and obs.reachable else None

    def terminating(self, name: str) -> bool:
        pod = self.pod(name)
        return pod is not None and pod.terminating

    def main_rows_of(self, name: str) -> tuple[ReplicaInfo, ...]:
        """SHOW REPLICAS of any pod observed as a MAIN (empty otherwise)."""
        obs = self.obs(name)
        return obs.replicas if obs is not None and obs.reachable and obs.role == Role.MAIN else ()

    def row(self, name: str) -> ReplicaInfo | None:
        return self.main_rows.get(replica_name(name))

    def current_row(self, name: str) -> ReplicaInfo | None:
        """The MAIN's row for this pod if it points at the pod's address now; a row at another address
        describes an older incarnation (pod IPs change on restart) and says nothing about this one."""
        row = self.row(name)
        addr = replica_address(self.policy, self.pod(name))
        return row if row is not None and (not addr or row.socket_address == addr) else None

    def main_ok(self) -> bool:
        """The record's MAIN is reachable and reports MAIN."""
        return bool(self.record.main) and self.role(self.record.main) == Role.MAIN

    def live_replica(self, name: str) -> bool:
        """A pod of the StatefulSet that is here, not leaving, reachable, a REPLICA and not diverged."""
        return (
            name in self.expected
            and self.pod(name) is not None
            and not self.terminating(name)
            and self.role(name) == Role.REPLICA
            and name not in self.diverged
        )

    def ready_replica(self, name: str) -> bool:
        """A live replica the MAIN shows ready (or shipping right now) at its current address."""
        row = self.current_row(name)
        return self.live_replica(name) and row is not None and row.healthy

    def replica_pods(self) -> list[str]:
        """Expected pods other than the record's MAIN, by ordinal."""
        return sorted((p for p in self.expected if p != self.record.main), key=pod_ordinal)

    def rogue_mains(self) -> list[str]:
        """Pods (any ordinal) that report MAIN while the record names another pod (I2)."""
        names = {p.name for p in self.snapshot.pods} | set(self.snapshot.instances)
        rogues = [n for n in names if n != self.record.main and self.role(n) == Role.MAIN]
        return sorted(rogues, key=pod_ordinal)

    def bootstrap_block(self) -> BootstrapBlock | None:
        """The pod that keeps bootstrap waiting: with no MAIN in the record, every expected pod must be
        observed (the MAIN is the one with the most data, and any pod may already be a MAIN with replicas).

        Only bootstrap waits for every pod. Once the record names a MAIN, an unreachable or missing pod is
        no reason to withhold a REGISTER by that MAIN (issue 16 item 2): the last MAIN that registers a
        replica owns it (reference memgraph-replication.md 3.3), so the REGISTER takes the replica away
        from any hidden MAIN -- which is what I2 asks for.
        """
        present = {p.name for p in self.snapshot.pods}
        for name in self.expected:
            if name not in present:
                seen = f"{len(self.snapshot.pods)}/{len(self.expected)} pods"
                return BootstrapBlock(name, BlockReason.MISSING, f"{name} missing from observation ({seen})")
        for name in self.expected:
            if not self.reachable(name):
                return BootstrapBlock(name, BlockReason.UNREACHABLE, f"{name} unreachable")
        return None

    def desired_mode(self, name: str, sync: str) -> ReplicaMode:
        return self.policy.sync_mode if name == sync else ReplicaMode.ASYNC


@dataclass
class Plan:
    """What one `decide` call has chosen so far. Local to the call; never shared between calls.

    The rules never put a WriteRecord in `actions`: `write_record` says what the record becomes and where,
    among the actions chosen so far, it must be written (e.g. before a promotion, after a registration);
    `coordinator.core.compose` then places every write of the cycle in one explicit step.
    """

    record: ClusterRecord
    actions: list[Action] = field(default_factory=list)
    record_at: int | None = None  # index in `actions` before which a rule asked for the record write
    # the record write may not come before this index: what it says must already be true (an epoch on disk)
    record_not_before: int = 0
    keyed_events: dict[str, EmitEvent] = field(default_factory=dict)  # emitted once while the key holds
    verdict: str = ""
    blocked_by: str = ""
    degraded: bool = False
    withhold_main_label: bool = False
    drop_main_label: bool = False  # failover decided: the old MAIN loses its role label first
    label_new_main: bool = False  # failover with its sync replica registered: label the new MAIN after it
    notes: list[str] = field(default_factory=list)  # findings a verdict should mention
    after: list[Action] = field(default_factory=list)  # events that must follow the record write

    def write_record(self, record: ClusterRecord) -> None:
        """The record becomes `record`, written after the actions chosen so far (once per cycle)."""
        if self.record_at is not None:
            raise RuntimeError("a rule asked for a second record write in one cycle")
        self.record = record
        self.record_at = len(self.actions)

    def event(self, reason: str, message: str, pod: str = "", warning: bool = False) -> None:
        self.actions.append(EmitEvent(reason, message, pod, warning))

    def key_event(self, key: str, reason: str, message: str, pod: str = "", warning: bool = True) -> None:
        self.keyed_events[key] = EmitEvent(reason, message, pod, warning)

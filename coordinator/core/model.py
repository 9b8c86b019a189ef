"""Plain data shared by the coordinator, the agent and the status document.

Role: the vocabulary of the system -- what a pod looks like to the coordinator, what a Memgraph
instance reports, the cluster record kept in the Lease, the policy, the snapshot one reconcile cycle
decides on, and the actions the planner returns.

Must never: do I/O, import a client library, or hold behaviour beyond small derived properties.
Snapshots are frozen dataclasses so one cycle cannot change what it decided on.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from coordinator.core import defaults
from coordinator.core.datadir import DataReport


class Role(enum.StrEnum):
    """Replication role as `SHOW REPLICATION ROLE` reports it (reference 2.1)."""

    MAIN = "main"
    REPLICA = "replica"


class ReplicaMode(enum.StrEnum):
    """`sync_mode` of a registered replica (reference 1.1, 2.2); values as SHOW REPLICAS prints them."""

    SYNC = "sync"
    ASYNC = "async"
    STRICT_SYNC = "strict_sync"

    @property
    def keyword(self) -> str:
        """The keyword used in `REGISTER REPLICA name <KEYWORD> TO ...`."""
        return self.value.upper()


class ReplicaStatus(enum.StrEnum):
    """Per-database replica state shown in `data_info.memgraph.status` (reference 3.1)."""

    READY = "ready"
    REPLICATING = "replicating"
    RECOVERY = "recovery"
    INVALID = "invalid"
    DIVERGED = "diverged"
    UNKNOWN = "unknown"  # data_info was {} (unreachable at REGISTER, reference 1.4) or unparsable


DEFAULT_SYNC_MODE = ReplicaMode(defaults.SYNC_MODE.lower())


class ReseedPolicy(enum.StrEnum):
    """`haAgent.divergence.reseed`: what happens to a diverged pod (I4)."""

    AUTO = "auto"  # fenced, its files archived on its volume, re-seeded from the MAIN
    MANUAL = "manual"  # quarantined until an operator repairs it (docs/operations.md)


class ReseedStep(enum.StrEnum):
    """Where the re-seed named by the record stands (`reseed_step`)."""

    ARCHIVE = "archive"  # pod stamped and deleted: its init container moves the files aside
    CATCHUP = "catchup"  # it came back clean: registered ASYNC, recovering from the MAIN
    HALTED = "halted"  # the init container refused or failed: not retried on this incarnation


DEFAULT_RESEED = ReseedPolicy(defaults.RESEED)


@dataclass(frozen=True)
class ReplicaInfo:
    """One row of `SHOW REPLICAS` on a MAIN (reference 2.2; legacy columns 2.3 map onto it)."""

    name: str
    socket_address: str
    mode: ReplicaMode
    status: ReplicaStatus
    ts: int = 0
    behind: int = 0

    @property
    def healthy(self) -> bool:
        """Ready or shipping right now: counts as an in-sync replica."""
        return self.status in (ReplicaStatus.READY, ReplicaStatus.REPLICATING)


@dataclass(frozen=True)
class StorageInfo:
    """Data volume used to order instances at bootstrap (reference Appendix)."""

    vertex_count: int = 0
    edge_count: int = 0


@dataclass(frozen=True)
class InstanceState:
    """What one pod's Memgraph told us this cycle. `reachable=False` is a fact, not an error."""

    reachable: bool
    role: Role | None = None
    replicas: tuple[ReplicaInfo, ...] = ()
    storage: StorageInfo | None = None
    error: str = ""
    # Text of the last failed `REGISTER REPLICA` of this pod on the MAIN (set by the executor through
    # observe; "" when none). `Error: 3` means the pod holds history the MAIN never had (reference 1.3).
    register_error: str = ""

    @property
    def empty(self) -> bool:
        """Observed with no data at all (SHOW STORAGE INFO: 0 vertices, 0 edges); unknown is not empty."""
        return self.storage is not None and self.storage.vertex_count + self.storage.edge_count == 0


@dataclass(frozen=True)
class PodView:
    """A pod of the StatefulSet as the API server shows it (watch cache)."""

    name: str
    ordinal: int
    ip: str = ""
    uid: str = ""
    ready: bool = False
    phase: str = ""
    terminating: bool = False  # metadata.deletionTimestamp is set
    labels: tuple[tuple[str, str], ...] = ()
    restarts: int = 0  # restartCount of the memgraph container (a crash-restart keeps the pod's uid)
    data: DataReport | None = None  # the re-seed init container's report for this incarnation

    @property
    def incarnation(self) -> str:
        """`<uid>/<restarts>`: changes whenever this pod's Memgraph process was started again."""
        return f"{self.uid}/{self.restarts}"

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


@dataclass(frozen=True)
class ClusterRecord:
    """The leader's decisions, kept as annotations of the Lease (DESIGN: the cluster record).

    `main` is the designated MAIN pod name ("" before bootstrap). `generation` is bumped on every change
    of MAIN. `diverged` lists pods known to hold history the MAIN never had (I4).
    """

    main: str = ""
    sync_replica: str = ""
    generation: int = 0
    paused: bool = False
    diverged: tuple[str, ...] = ()
    last_failover: str = ""  # free text "memgraph-0->memgraph-1 at <iso> in 5.2s"
    sync_mode: str = ""  # ReplicaMode value the sync replica is registered with ("" when none designated)
    last_failover_from: str = ""
    last_failover_to: str = ""
    last_failover_at: float = 0.0  # Snapshot.now of the cycle that decided the failover
    last_failover_duration_s: float = 0.0  # how long the old MAIN had been unreachable when promoting
    # The leader saw `sync_replica` ready on the MAIN in `sync_mode` (cleared, record first, before any
    # drop or re-mode of it). A new leader that never saw the MAIN itself decides failover on this fact.
    sync_confirmed: bool = False
    # The last switchovers and failovers, compact JSON (coordinator/core/history.py; at most 10 entries).
    history: str = ""
    # The re-seed in progress (I4; coordinator.core.reseed): the pod, its ReseedStep value, the generation
    # it acts for (a new MAIN abandons it) and the incarnation it concerns (`<uid>/<restarts>`).
    reseed_pod: str = ""
    reseed_step: str = ""
    reseed_generation: int = 0
    reseed_incarnation: str = ""
    # The last generation whose MAIN had its epoch put on disk (CREATE SNAPSHOT, reference 7.2), and the
    # incarnation of the MAIN a failover promoted: a restart in between loses the new epoch.
    epoch_generation: int = 0
    promoted_incarnation: str = ""
    # Archives an operator asked to purge (`memgraph-ha diverged purge`), "<pod>/<archive>": the pod's init
    # container removes them at its next start; cleared once the pod no longer reports them.
    purge: tuple[str, ...] = ()


@dataclass(frozen=True)
class Policy:
    """Knobs from settings that change decisions."""

    sync_mode: ReplicaMode = DEFAULT_SYNC_MODE
    failover_after_s: float = defaults.FAILOVER_AFTER_S
    allow_async_failover: bool = defaults.ALLOW_ASYNC_FAILOVER
    replication_port: int = defaults.REPLICATION_PORT
    headless_service: str = ""  # empty: replicas are addressed by pod IP
    reseed: ReseedPolicy = DEFAULT_RESEED


@dataclass(frozen=True)
class FenceMiss:
    """The old MAIN `pod` (incarnation `uid`, MAIN at record `generation`) could not be fenced: nothing
    of it answered, or its agent cannot fence (issue 16 item 5). Set by the executor through observe."""

    uid: str
    generation: int
    reason: str
    at: float = 0.0  # Snapshot.now clock of the attempt (a Ready pod's fence is asked again after a while)


# The fence round trip (issue 16 item 5, review defect a): what the old MAIN's agent may spend (a fresh
# local role query, then SIGKILL and its confirmation) and what the leader waits for. A failover of a pod
# of which nothing answers (node loss) costs at most FENCE_CONNECT_S or FENCE_READ_S more than unfenced.
FENCE_LOCAL_CONNECT_S = 0.25
FENCE_LOCAL_QUERY_S = 0.35
FENCE_KILL_CONFIRM_S = 0.25
FENCE_CONNECT_S = 0.5
FENCE_READ_S = 1.0  # >= the agent's worst case: 0.25 + 0.35 + 0.25 s and the HTTP exchange
# a Ready pod whose agent could not be reached is asked again only this long after (one try per 10 s)
FENCE_READY_RETRY_S = 10.0


@dataclass(frozen=True)
class Snapshot:
    """Everything one reconcile cycle decides on. Built by observe, consumed by the planner.

    `expected_pods` is the StatefulSet's desired replica count; `pods` holds the pods the watch shows;
    `instances` maps a pod name to its Memgraph state this cycle. `main_unreachable_s` maps a pod name to
    how long (monotonic seconds) it has been unreachable over Bolt, as tracked by observe.
    """

    now: float
    expected_pods: int
    pods: tuple[PodView, ...]
    instances: dict[str, InstanceState] = field(default_factory=dict)
    unreachable_for_s: dict[str, float] = field(default_factory=dict)
    last_ready_replicas: tuple[str, ...] = ()  # replicas READY at the previous observation of the MAIN
    leader: str = ""
    # pod name -> replica `ts` in the last SHOW REPLICAS of the record's MAIN (orders ASYNC candidates)
    last_replica_ts: dict[str, int] = field(default_factory=dict)
    # This leader's observer has seen the record's MAIN answer as MAIN (so last_* below are its own view)
    main_seen: bool = False
    # replicas ready (READY/REPLICATING) in SYNC or STRICT_SYNC mode at the last observation of the MAIN
    last_sync_ready: tuple[str, ...] = ()
    # "memgraph-0->memgraph-1" while a switchover procedure runs; the planner then leaves the cluster alone
    switchover_in_progress: str = ""
    wall: float = 0.0  # wall-clock epoch seconds of the observation (for the record's history only)
    # pod -> the last fence of that old MAIN that could not be confirmed (the failover then goes ahead)
    fence_unconfirmed: dict[str, FenceMiss] = field(default_factory=dict)
    # pod -> the last fence its agent refused (409 main-healthy: its Memgraph answers locally; 503): the
    # failover is withheld while it says so (issue 16 review defect c)
    fence_refused: dict[str, FenceMiss] = field(default_factory=dict)

    def pod(self, name: str) -> PodView | None:
        for p in self.pods:
            if p.name == name:
                return p
        return None


def replica_name(pod_name: str) -> str:
    """Replica name for a pod: `-` replaced by `_` (DESIGN: replication policy)."""
    return pod_name.replace("-", "_")


def pod_ordinal(pod_name: str) -> int:
    """Ordinal of a StatefulSet pod name (`memgraph-2` -> 2); -1 when it has none."""
    head, _, tail = pod_name.rpartition("-")
    return int(tail) if head and tail.isdigit() else -1


# ---- actions: what the planner asks the executor to do, in order -----------------------------


@dataclass(frozen=True)
class Promote:
    pod: str


@dataclass(frozen=True)
class Fence:
    """Make the old MAIN's Memgraph unable to resume (its agent SIGKILLs it and confirms) before a
    failover promotes another pod: `uid` is the pod incarnation, `generation` the record's generation
    in which it is MAIN (the agent refuses any other)."""

    pod: str
    uid: str
    generation: int


@dataclass(frozen=True)
class Demote:
    pod: str


@dataclass(frozen=True)
class RegisterReplica:
    main: str
    replica_pod: str
    mode: ReplicaMode
    address: str  # "<pod IP>:<port>" or "<pod>.<headless>:<port>" (rules.replica_address)

    @property
    def name(self) -> str:
        return replica_name(self.replica_pod)


@dataclass(frozen=True)
class DropReplica:
    main: str
    name: str


@dataclass(frozen=True)
class SetLabels:
    """Set (value str) or remove (value None) labels on a pod."""

    pod: str
    labels: tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class WriteRecord:
    record: ClusterRecord


@dataclass(frozen=True)
class EmitEvent:
    reason: str
    message: str
    pod: str = ""
    warning: bool = False


@dataclass(frozen=True)
class CreateSnapshot:
    """`CREATE SNAPSHOT` on a MAIN: its epoch reaches disk without a user write (reference 7.2)."""

    pod: str


@dataclass(frozen=True)
class ReseedPod:
    """Stamp the pod with the generation and delete it (only the incarnation `uid`): its init container
    then moves Memgraph's files into an archive on the volume before Memgraph starts (I4)."""

    pod: str
    uid: str
    generation: int


@dataclass(frozen=True)
class RequestSwitchover:
    """Ask the switchover procedure to hand the MAIN role away from `from_pod` (e.g. it is terminating)."""

    from_pod: str
    reason: str


Action = (
    Fence | Promote | Demote | RegisterReplica | DropReplica | SetLabels | WriteRecord | EmitEvent
    | RequestSwitchover | CreateSnapshot | ReseedPod
)

ROLE_LABEL = "memgraph-ha.io/role"
LEADER_LABEL = "memgraph-ha.io/leader"

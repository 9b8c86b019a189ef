"""Outcomes and reasons as enums: code branches on these; their text is for logs, verdicts and JSON.

Role: name every outcome one part of the product reports to another -- how a switchover ended, what kind
of decision a reconcile cycle made, how the local preStop ended, why a REGISTER is held back. The values
are the exact words the API answers, the verdicts start with and the metrics label, so they travel as
text unchanged (`StrEnum`), while code compares members, never strings.

Must never: do I/O, or carry behaviour beyond small classifying properties.
"""

from __future__ import annotations

import enum


class SwitchoverOutcome(enum.StrEnum):
    """How `coordinator.runtime.procedures.switchover` ended (the API's `outcome`)."""

    DONE = "switchover-done"
    NO_TARGET = "no-target"  # no ready replica to hand over to: the MAIN stays
    NOT_MAIN = "not-main"  # the pod named is not the designated, reporting MAIN
    TIMEOUT = "timeout"  # the target did not catch up within the bound (or the coordinator was busy)
    FAILED = "failed"  # lease lost, a command failed, or no coordinator to run it

    @property
    def refused(self) -> bool:
        """The cluster's state refused it (HTTP 409: asking again will not help) rather than it failing."""
        return self in (SwitchoverOutcome.NO_TARGET, SwitchoverOutcome.NOT_MAIN)


class TransitionKind(enum.StrEnum):
    """What changed the MAIN, as the record's history keeps it (coordinator.core.history)."""

    SWITCHOVER = "switchover"
    FAILOVER = "failover"


class PrestopOutcome(enum.StrEnum):
    """How the local side of a pod's termination ended (`agent.prestop`; the hook logs it verbatim)."""

    SWITCHOVER_DONE = "switchover-done"  # the MAIN role moved to another pod
    NO_TARGET = "no-target"  # single-pod cluster: nothing to hand over to
    TIMEOUT = "timeout"  # the budget ran out with the MAIN still here
    REPLICA_DRAINED = "replica-drained"
    MEMGRAPH_UNREACHABLE = "memgraph-unreachable"  # the local Memgraph did not answer: drained anyway
    DRAINED = "drained"
    NO_HANDOVER = "no-handover"  # no hand-over can happen (no ready replica, or no leader): ended early


class HandoverCheck(enum.StrEnum):
    """Whether a hand-over of the terminating MAIN can happen now (asked by the waiting local preStop)."""

    POSSIBLE = "possible"  # a ready replica exists and the leader answers
    NO_TARGET = "no-target"  # the leader sees no ready replica: no pod can become MAIN
    LEADER_UNREACHABLE = "leader-unreachable"  # no leader known or its API does not answer


class DecisionKind(enum.StrEnum):
    """What one reconcile decision is about; a verdict is `<kind>: <detail>`."""

    NO_ACTION = "no action"
    LABELS = "labels"  # only role/leader labels change
    WAITING = "waiting"
    BLOCKED = "blocked"
    BOOTSTRAP = "bootstrap"
    ADOPT = "adopt"
    SWITCHOVER = "switchover"
    RESTORE = "restore"
    FAILOVER = "failover"
    DEGRADED = "degraded"
    RESYNC = "resync"
    DESIGNATE = "designate"
    REPLICAS = "replicas"
    DIVERGED = "diverged"
    RESEED = "reseed"  # a step of re-seeding a diverged pod, or putting a new MAIN's epoch on disk
    PAUSED = "paused"


class BlockReason(enum.StrEnum):
    """Why bootstrap waits: an expected pod it has not observed (it may hold the most data, or be a MAIN)."""

    MISSING = "missing"  # an expected pod is absent from the observation
    UNREACHABLE = "unreachable"  # an expected pod's Memgraph did not answer


class ReseedHold(enum.StrEnum):
    """Why a diverged pod is not re-seeded right now (coordinator.core.reseed; status and Events say it)."""

    MANUAL = "manual"  # haAgent.divergence.reseed=manual: an operator repairs it
    BUSY = "busy"  # another pod is being re-seeded: one at a time
    NO_SPACE = "no-space"  # its init container found too little free space on the volume for a fresh copy
    FAILED = "failed"  # its init container could not do it on this incarnation (read its reason)
    NO_REPORT = "no-report"  # the pod carries no re-seed init container report (chart without it)
    WAITING = "waiting"  # the pod is absent or terminating


class ReseedEnd(enum.StrEnum):
    """How a re-seed named by the record ended (the Event's reason says the same)."""

    COMPLETED = "ReseedCompleted"  # ready with behind 0: a full replica again
    ABANDONED = "ReseedAbandoned"  # the MAIN changed meanwhile: decided again under the new MAIN
    HALTED = "ReseedHalted"  # refused or failed by the init container: not retried on this incarnation

"""Executes the planner's actions, in order, and stops at the first failure.

Role: turn Promote/Demote/RegisterReplica/DropReplica/SetLabels/WriteRecord/EmitEvent into Bolt
commands, label patches, Lease annotation writes and Events. Before every mutating action it checks that
the leader's lease is still valid on its own monotonic clock (DESIGN: one reconcile cycle); a REGISTER
answered with Error: 3 marks the pod diverged in the record (I4) instead of being retried.

Must never: act without a valid lease, continue after a failed mutation, or delete data (a re-seed deletes
a pod, never its volume: the pod's init container moves its files into an archive, I4).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from coordinator.core import defaults
from coordinator.core import record as record_codec
from coordinator.core.model import (
    Action,
    ClusterRecord,
    CreateSnapshot,
    Demote,
    DropReplica,
    EmitEvent,
    Fence,
    PodView,
    Promote,
    RegisterReplica,
    ReseedPod,
    SetLabels,
    WriteRecord,
)
from coordinator.edge.fence_client import FenceRefused, FenceUnconfirmable
from coordinator.edge.logs import log_event
from coordinator.edge.memgraph import ReplicaDiverged
from coordinator.ports import FencePort, KubePort, MemgraphFactory, MemgraphPort, RecordPort

log = logging.getLogger(__name__)


class LeaseLost(RuntimeError):
    """The lease is no longer valid: no mutation may run."""


@dataclass
class ActResult:
    done: int = 0
    failed: Action | None = None
    error: str = ""
    record: ClusterRecord | None = None  # the record as written, when a WriteRecord ran
    diverged: tuple[str, ...] = ()  # pods whose REGISTER answered Error: 3
    unfenced: Fence | None = None  # a Fence that could not be confirmed (nothing of the pod answered)
    fenced: str = ""  # what the Fence of this run did, when it was confirmed

    @property
    def ok(self) -> bool:
        return self.failed is None


class Executor:
    """Runs actions against the world. One instance per coordinator."""

    def __init__(
        self,
        kube: KubePort,
        memgraph: MemgraphFactory,
        lease: RecordPort,
        pods: Callable[[], dict[str, PodView]],
        replication_port: int = defaults.REPLICATION_PORT,
        min_lease_s: float = 0.5,
        fencer: FencePort | None = None,
    ) -> None:
        self.kube = kube
        self.memgraph = memgraph
        self.lease = lease
        self.pods = pods
        self.replication_port = replication_port
        self.min_lease_s = min_lease_s
        self.fencer = fencer

    def check_lease(self) -> None:
        """Raise LeaseLost unless we lead with at least `min_lease_s` before the renew deadline."""
        if not self.lease.is_leader() or self.lease.lease_valid_for() < self.min_lease_s:
            raise LeaseLost("lease not valid: refusing to act")

    def run(self, actions: Sequence[Action], current: ClusterRecord) -> ActResult:
        result = ActResult()
        for action in actions:
            try:
                if not isinstance(action, EmitEvent):
                    self.check_lease()
                current = self._one(action, current, result)
                result.done += 1
            except ReplicaDiverged as exc:
                assert isinstance(action, RegisterReplica)
                result.diverged += (action.replica_pod,)
                result.failed, result.error = action, f"{type(exc).__name__}: {exc}"
                log_event(log, "register refused: the replica diverged (I4)", level=logging.WARNING,
                          **action_fields(action), error=str(exc))
                break
            except FenceUnconfirmable as exc:
                assert isinstance(action, Fence)
                result.unfenced, result.failed, result.error = action, action, str(exc)
                log_event(log, "fence not confirmed: nothing of the old MAIN answered; deciding again now "
                          "(unconfirmed failover, or none while its pod is Ready)", level=logging.WARNING,
                          **action_fields(action), error=str(exc))
                break
            except FenceRefused as exc:  # the reconciler logs it once per change (review defect c)
                result.failed, result.error = action, str(exc)
                log_event(log, "fence refused", level=logging.DEBUG, **action_fields(action), error=str(exc))
                break
            except Exception as exc:
                result.failed, result.error = action, f"{type(exc).__name__}: {exc}"
                log_event(log, "action failed", level=logging.WARNING, **action_fields(action),
                          error=result.error)
                break
        return result

    def _one(self, action: Action, current: ClusterRecord, result: ActResult) -> ClusterRecord:
        log_event(log, "act", **action_fields(action))
        if isinstance(action, Fence):
            result.fenced = self._fence(action)
        elif isinstance(action, Promote):
            self._client(action.pod).promote()
        elif isinstance(action, Demote):
            self._client(action.pod).demote(self.replication_port)
        elif isinstance(action, RegisterReplica):
            self._client(action.main).register(action.name, action.mode, action.address)
        elif isinstance(action, DropReplica):
            self._client(action.main).drop(action.name)
        elif isinstance(action, SetLabels):
            self.kube.patch_labels(action.pod, dict(action.labels))
        elif isinstance(action, CreateSnapshot):
            self._client(action.pod).create_snapshot()
        elif isinstance(action, ReseedPod):
            self.kube.reseed_pod(action.pod, action.uid, action.generation)
        elif isinstance(action, WriteRecord):
            self.write_record(current, action.record)
            result.record = action.record
            return action.record
        elif isinstance(action, EmitEvent):
            self.emit(action)
        else:  # an action type the executor does not know is a programming error
            raise TypeError(f"unknown action {action!r}")
        return current

    def write_record(self, old: ClusterRecord, new: ClusterRecord) -> None:
        changes = record_codec.changes(old, new)
        if changes and not self.lease.update_annotations(changes):
            raise LeaseLost("cluster record write refused (lease lost or changed)")

    def emit(self, event: EmitEvent) -> None:
        """Events are best effort: a failure is logged, never stops the cycle."""
        try:
            self.kube.emit_event(event.reason, event.message, event.pod, event.warning)
        except Exception as exc:
            log_event(log, "event not emitted", level=logging.WARNING, reason=event.reason,
                      error=f"{type(exc).__name__}: {exc}")

    def _fence(self, action: Fence) -> str:
        view = self.pods().get(action.pod)
        if self.fencer is None:
            raise FenceUnconfirmable("this coordinator has no way to reach the agents")
        if view is None or not view.ip or view.uid != action.uid:
            raise FenceUnconfirmable(f"pod {action.pod} ({action.uid}) is gone or has no IP")
        done = self.fencer.fence(view, action.generation)
        log_event(log, "old MAIN fenced", pod=action.pod, generation=action.generation, detail=done)
        return done

    def _client(self, pod: str) -> MemgraphPort:
        view = self.pods().get(pod)
        if view is None or not view.ip:
            raise LookupError(f"pod {pod} is not known or has no IP")
        return self.memgraph(view)


def action_fields(action: Action) -> dict[str, Any]:
    """The log fields of one action: `action` names it, the rest says what it is done to."""
    if isinstance(action, Fence):
        return {"action": "fence", "pod": action.pod, "uid": action.uid, "generation": action.generation}
    if isinstance(action, Promote | Demote):
        return {"action": type(action).__name__.lower(), "pod": action.pod}
    if isinstance(action, CreateSnapshot):
        return {"action": "create_snapshot", "pod": action.pod}
    if isinstance(action, ReseedPod):
        return {"action": "reseed", "pod": action.pod, "uid": action.uid, "generation": action.generation}
    if isinstance(action, RegisterReplica):
        return {"action": "register", "replica": action.name, "mode": action.mode.keyword,
                "address": action.address, "main": action.main}
    if isinstance(action, DropReplica):
        return {"action": "drop", "replica": action.name, "main": action.main}
    if isinstance(action, SetLabels):
        return {"action": "label", "pod": action.pod, "labels": {k: v for k, v in action.labels}}
    if isinstance(action, WriteRecord):
        record = {f.name: getattr(action.record, f.name) for f in dataclasses.fields(action.record)}
        shown = {k: v for k, v in record.items() if v not in ("", (), False) and k != "history"}  # long JSON
        return {"action": "write_record", "record": shown}
    if isinstance(action, EmitEvent):
        return {"action": "event", "reason": action.reason, "pod": action.pod, "message": action.message}
    return {"action": "request_switchover", "pod": action.from_pod, "reason": action.reason}

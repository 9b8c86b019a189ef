"""The local side of pod termination, called by the hook through `POST /api/v1/prestop`.

Role (DESIGN "Switchover", issue "preStop path"): on the MAIN's pod, make sure the MAIN role has moved
before Memgraph stops -- run the switchover here when this agent leads, otherwise ask the leader for it
(`POST /api/v1/handover`, agent/handover.py: at once, then every `ask_every_s` until the leader moved
it or refused for good) while waiting for the role to move; the leader also starts it on its own when its
pod watch shows the deletionTimestamp, whichever comes first (issue 16 item 10); on a replica's pod,
take the role label off (the read Service stops sending new connections), wait `drainSeconds`, and hand
off leadership if this agent leads. Every step is appended to the pod's preStop record on the log volume.

Must never: block past the budget the hook gave, demote the local MAIN itself, or report "safe to stop"
for a MAIN that still is one while a replica could have taken over.

Bounded when no hand-over can happen (issue 16 item 8): while it waits, it asks about once a second
whether a hand-over is possible (`HandoverCheck`: the leader's view of ready replicas, or whether a leader
answers at all); once it has not been for `no_target_s` without a break (default 20 s), it answers the
terminal outcome `no-handover` (not safe to stop) with the reason, so the hook stops retrying, writes END,
and the pod restarts with its MAIN instead of holding a write outage for the whole budget.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from agent.handover import AskAnswer
from coordinator.core import defaults
from coordinator.core.model import ROLE_LABEL, ClusterRecord, Role
from coordinator.core.outcomes import HandoverCheck, PrestopOutcome, SwitchoverOutcome
from coordinator.runtime.procedures import SwitchoverResult
from hooks.prestop import append_line, record_path

log = logging.getLogger(__name__)
Result = tuple[int, dict[str, Any]]
ASK_REPLY_MARGIN_S = 5.0  # a request's budget ends this long before the hook's: the answer travels back


class PrestopHost(Protocol):
    """What the preStop handler needs from the agent."""

    pod_name: str

    def local_role(self) -> Role | None: ...
    def record(self) -> ClusterRecord | None: ...
    def refresh_record(self) -> ClusterRecord | None: ...
    def is_leader(self) -> bool: ...
    def expected_pods(self) -> int: ...
    def run_switchover(self, budget_s: float, step: Callable[[str], None]) -> SwitchoverResult: ...
    def patch_own_labels(self, labels: dict[str, str | None]) -> None: ...
    def hand_off_leadership(self) -> None: ...
    def handover_check(self) -> tuple[HandoverCheck, str]: ...
    def request_handover(self, budget_s: float) -> tuple[AskAnswer, str]: ...


@dataclass
class PrestopConfig:
    log_dir: str
    pod_uid: str
    pod_ip: str
    drain_s: float = defaults.DRAIN_S
    poll_s: float = 0.1
    no_target_s: float = defaults.PRESTOP_NO_TARGET_S
    check_every_s: float = 1.0
    ask_every_s: float = 2.0  # how often a non-leading MAIN's agent asks the leader again
    ask_budget_s: float = 30.0  # the switchover budget one request gives the leader (capped there too)


def handle(
    host: PrestopHost,
    cfg: PrestopConfig,
    budget_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Result:
    path = record_path(cfg.log_dir, cfg.pod_uid, cfg.pod_ip)

    def step(text: str) -> None:
        log.info("prestop: %s", text)
        try:
            append_line(path, f"agent: {text}")
        except OSError as exc:
            log.warning("prestop record not writable (%s): %s", path, exc)

    deadline = clock() + max(0.0, budget_s - 1.0)  # keep a second for the hook to write END
    role = host.local_role()
    record = host.record()
    step(
        f"prestop on {host.pod_name}: local role {role.value if role else 'unreachable'}, "
        f"record main {record.main if record and record.main else '-'}"
    )
    if role is not Role.MAIN:
        return _replica(host, cfg, step, deadline, clock, sleep, role)
    if record is not None and record.main not in ("", host.pod_name):
        # the record already names another pod: a hand-over is under way (the leader demotes us next)
        step(f"hand-over to {record.main} in progress")
        return _wait_moved(host, step, deadline, clock, sleep, cfg)
    if host.expected_pods() <= 1:
        step("single-pod cluster: nothing to hand over to; stopping the MAIN (no demotion)")
        return 200, {
            "outcome": PrestopOutcome.NO_TARGET,
            "safe_to_stop": True,
            "new_main": None,
            "detail": "single-pod cluster",
        }
    if host.is_leader():
        result = host.run_switchover(max(0.0, deadline - clock()), step)
        if not result.ok and result.outcome is not SwitchoverOutcome.NOT_MAIN:
            step(f"switchover did not complete: {result.outcome}: {result.detail}")
        return _wait_moved(host, step, deadline, clock, sleep, cfg)
    return _wait_moved(host, step, deadline, clock, sleep, cfg, _Asker(host, cfg, step, clock))


def _wait_moved(
    host: PrestopHost,
    step: Callable[[str], None],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    cfg: PrestopConfig,
    asker: _Asker | None = None,
) -> Result:
    """Safe once the local Memgraph is no longer MAIN and the record names another pod; ended early when
    no hand-over has been possible for `cfg.no_target_s` without a break. With `asker`, the leader is
    asked for the hand-over while one is possible."""
    announced = False
    stuck = _Stuck(host, cfg, step, clock)
    while True:
        role = host.local_role()
        record = host.refresh_record()
        if role is Role.REPLICA and record is not None and record.main and record.main != host.pod_name:
            step(f"MAIN moved to {record.main}; safe to stop")
            if host.is_leader():
                host.hand_off_leadership()
                step("leadership released")
            return 200, {
                "outcome": PrestopOutcome.SWITCHOVER_DONE,
                "safe_to_stop": True,
                "new_main": record.main,
                "detail": f"MAIN moved to {record.main}",
            }
        if clock() >= deadline:
            step("budget spent and the MAIN is still here: NOT safe to stop")
            return 200, {
                "outcome": PrestopOutcome.TIMEOUT,
                "safe_to_stop": False,
                "new_main": None,
                "detail": "no replica took over within the budget",
            }
        reason = stuck.reason()
        if reason:
            step(f"no hand-over possible for {cfg.no_target_s:g}s ({reason}): ending early, NOT safe to stop")
            return 200, {
                "outcome": PrestopOutcome.NO_HANDOVER,
                "safe_to_stop": False,
                "new_main": None,
                "detail": f"no hand-over possible for {cfg.no_target_s:g}s: {reason}",
            }
        if asker is not None and stuck.possible:
            asker.maybe_ask(deadline)
        if not announced:
            step("waiting for the leader to move the MAIN role")
            announced = True
        sleep(cfg.poll_s)


class _Asker:
    """Asks the leader to move the MAIN off this pod (`host.request_handover`): at once, then at most every
    `ask_every_s` until it answers that it moved it or refuses for good. Each new answer is a step."""

    MIN_BUDGET_S = 1.0  # no request with less left than this: the answer could not arrive in time

    def __init__(self, host: PrestopHost, cfg: PrestopConfig, step: Callable[[str], None],
                 clock: Callable[[], float]) -> None:
        self.host, self.cfg, self.step, self.clock = host, cfg, step, clock
        self.next_at = -1e18
        self.finished = False
        self.last = ""

    def maybe_ask(self, deadline: float) -> None:
        now = self.clock()
        budget = min(self.cfg.ask_budget_s, deadline - now - ASK_REPLY_MARGIN_S)
        if self.finished or now < self.next_at or budget < self.MIN_BUDGET_S:
            return
        try:
            answer, detail = self.host.request_handover(budget)
        except Exception as exc:  # a failed request is not an answer: the next one may get through
            log.warning("prestop: hand-over request failed: %s: %s", type(exc).__name__, exc)
            answer, detail = AskAnswer.ASK_AGAIN, f"request failed: {type(exc).__name__}"
        self.next_at = self.clock() + self.cfg.ask_every_s
        self.finished = answer is not AskAnswer.ASK_AGAIN
        if detail != self.last:
            self.step(f"asked the leader for the hand-over: {answer.value}: {detail}")
            self.last = detail


class _Stuck:
    """Asks `host.handover_check()` at most every `check_every_s`; `reason()` is the last reason once no
    hand-over has been possible for `no_target_s` without a break ("" until then). Each change is a step."""

    def __init__(self, host: PrestopHost, cfg: PrestopConfig, step: Callable[[str], None],
                 clock: Callable[[], float]) -> None:
        self.host, self.cfg, self.step, self.clock = host, cfg, step, clock
        self.since: float | None = None
        self.asked_at = -1e18
        self.last = (HandoverCheck.POSSIBLE, "")

    @property
    def possible(self) -> bool:
        """Whether the last check found a hand-over possible (True before the first check)."""
        return self.last[0] is HandoverCheck.POSSIBLE

    def reason(self) -> str:
        now = self.clock()
        if now - self.asked_at >= self.cfg.check_every_s:
            self.asked_at = now
            try:
                seen = self.host.handover_check()
            except Exception as exc:  # a failing check is not proof that no hand-over can happen
                log.warning("prestop: hand-over check failed: %s: %s", type(exc).__name__, exc)
                seen = (HandoverCheck.POSSIBLE, "")
            if seen[0] is not self.last[0]:
                self.step(f"hand-over check: {seen[0].value}" + (f" ({seen[1]})" if seen[1] else ""))
            self.last = seen
            if seen[0] is HandoverCheck.POSSIBLE:
                self.since = None
            elif self.since is None:
                self.since = now
        if self.since is not None and now - self.since >= self.cfg.no_target_s:
            return f"{self.last[0].value}: {self.last[1]}"
        return ""


def _replica(
    host: PrestopHost,
    cfg: PrestopConfig,
    step: Callable[[str], None],
    deadline: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    role: Role | None,
) -> Result:
    try:
        host.patch_own_labels({ROLE_LABEL: None})
        step(f"label {ROLE_LABEL} removed: no new connections from the read Service")
    except Exception as exc:
        step(f"could not remove the role label ({type(exc).__name__}); draining anyway")
    drain = min(cfg.drain_s, max(0.0, deadline - clock()))
    step(f"draining open reads for {drain:.1f}s")
    sleep(drain)
    if host.is_leader():
        host.hand_off_leadership()
        step("leadership released")
    outcome = (
        PrestopOutcome.REPLICA_DRAINED if role is Role.REPLICA
        else PrestopOutcome.MEMGRAPH_UNREACHABLE if role is None else PrestopOutcome.DRAINED
    )
    return 200, {"outcome": outcome, "safe_to_stop": True, "new_main": None, "detail": "replica drained"}

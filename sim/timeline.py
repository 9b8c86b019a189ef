"""The recorded facts of one emulated-cluster run, and pure derivations over them.

Role: plain records (role/label samples, writer attempts, final data per pod, divergence reports,
preStop records, API-outage windows, failover marks) gathered in a `Timeline` that round-trips through
JSON, plus the derivations the writer and the checker share: write pauses, error windows, and the
parser of the preStop hook's log file.

Times: `t*` fields are `time.monotonic()` seconds of the process that ran the scenario (the sampler
and the writer share it); `wall*` fields are `time.time()` seconds, kept for reading logs side by side.

Must never: do network I/O, sleep, or judge a run (judging is `sim.check`).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import types
import typing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

ACKED = "acked"
ERROR = "error"  # failed: a definite error before any commit (refused, no endpoint, a server FAILURE)
UNKNOWN = "unknown"  # the query may have been executed: connection lost or cut after it was sent


@dataclass(frozen=True)
class PodRole:
    """One pod as the cluster shows it now (SimCluster.roles(); what the Sampler polls).

    `role` is what the pod's Memgraph answers ("main" / "replica"; None when unreachable), `label` its
    `memgraph-ha.io/role` label, `ready` its Ready condition (and not terminating), `replicas` the replica
    names a MAIN owns (empty otherwise).
    """

    role: str | None
    label: str | None = None
    ready: bool = False
    replicas: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleSample:
    """One pod as the sampler saw it in one round.

    `role` is what `SHOW REPLICATION ROLE` answered ("main" / "replica"), None when unreachable;
    `label` is the pod's `memgraph-ha.io/role` label (None when absent); `ready` the pod's Ready
    condition; `replicas` the replica names listed by `SHOW REPLICAS` when the pod is a MAIN and the
    cluster reports them (empty otherwise).
    """

    t: float
    round: int
    pod: str
    role: str | None
    label: str | None
    ready: bool
    replicas: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteAttempt:
    """One write through the client Service. `outcome` is `acked`, `error` (failed: never committed) or
    `unknown` (committed or not: neither required nor forbidden). `backend` is the pod (`name/uid`) the
    connection reached through the Service ("" when unknown)."""

    id: str
    seq: int
    address: str  # "host:port" the write went to; "" when the Service had no endpoint
    t_start: float
    t_end: float
    wall_start: float
    wall_end: float
    outcome: str
    error_class: str = ""
    message: str = ""
    backend: str = ""

    @property
    def acked(self) -> bool:
        return self.outcome == ACKED

    @property
    def backend_pod(self) -> str:
        return self.backend.split("/", 1)[0]


@dataclass(frozen=True)
class ReadAttempt:
    """One read through the read Service: where it went (`name/uid`) and whether it was answered."""

    t_start: float
    t_end: float
    backend: str
    ok: bool
    error_class: str = ""

    @property
    def backend_pod(self) -> str:
        return self.backend.split("/", 1)[0]


@dataclass(frozen=True)
class RecordSample:
    """The cluster record's MAIN (the Lease annotation) as the sampler read it at `t`."""

    t: float
    main: str
    generation: int = 0


@dataclass(frozen=True)
class WritePause:
    """A gap between two consecutive acknowledged writes longer than a threshold.

    From the ack of `last_id` (on `before`) to the ack of `first_id` (on `after`): how CloudNativePG
    measures a switchover/failover write pause (reference ha-anchors.md 2.7: last write on the old
    primary to first write on the new one).
    """

    start: float
    end: float
    before: str
    after: str
    last_id: str
    first_id: str

    @property
    def duration(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class ErrorWindow:
    """From the first failed attempt after an ack (or the start) to the next ack (None: never)."""

    start: float
    end: float | None
    errors: int
    error_classes: tuple[str, ...]
    addresses: tuple[str, ...]


@dataclass(frozen=True)
class FinalData:
    """The data at the end of a run: ids on each instance, the final MAIN and the ready replicas."""

    ids_by_pod: dict[str, tuple[str, ...]]
    main: str
    ready_replicas: tuple[str, ...]
    quarantined: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ids kept aside per pod (I4)


@dataclass(frozen=True)
class DivergenceReport:
    """A status document or Event saying `pod` diverged, seen at `t`."""

    t: float
    pod: str
    source: str  # "status" | "event" | "sampler"
    detail: str = ""


@dataclass(frozen=True)
class PrestopAttempt:
    number: int
    of: int | None  # "Attempt 2/3" -> 3; "Attempt 2" -> None
    outcome: str  # first word after the colon as the hook wrote it: SUCCESS, ERROR, HTTP, TIMEOUT, POST
    wall: float
    status: int | None = None
    duration_s: float | None = None


@dataclass(frozen=True)
class PrestopRecord:
    """One run of the preStop hook, parsed from its log file (DESIGN: logging)."""

    pod: str
    path: str
    budget_s: float
    start_wall: float | None
    end_wall: float | None
    exit_code: int | None
    attempts: tuple[PrestopAttempt, ...] = ()
    other_lines: int = 0  # the agent's own switchover steps appended to the same file

    @property
    def duration_s(self) -> float | None:
        if self.start_wall is None or self.end_wall is None:
            return None
        return self.end_wall - self.start_wall


@dataclass(frozen=True)
class OutageWindow:
    """The API server (kind="api") or the leader (kind="leader") was unreachable in [start, end]."""

    start: float
    end: float
    kind: str = "api"
    main_healthy: bool = True  # the MAIN itself was not faulted during the window


@dataclass(frozen=True)
class FailoverMark:
    """A change of MAIN the scenario knows of; `lossy` when the target was not the ready sync replica."""

    t: float
    old_main: str
    new_main: str
    planned: bool  # switchover (preStop / API) rather than failover
    target_ready: bool = True
    target_mode: str = "strict_sync"

    @property
    def lossy(self) -> bool:
        """Loss is allowed (I3) only for a failover to a non-ready or non-(strict_)sync target."""
        return not self.planned and (not self.target_ready or self.target_mode == "async")


@dataclass(frozen=True)
class DeclaredLoss:
    """A scenario's declaration that it runs an UNFENCED failover on purpose (SYNC or ASYNC mode with
    allowAsyncFailover, issue 16 item 6): `old_main`, cut off in [start, end], may commit writes the new
    MAIN never gets. The checker counts and lists what that pod did in the window -- acknowledged writes
    the final MAIN lacks (I3), acknowledgements while the record named another MAIN (I1, a second
    writer), ids only it holds (I4, which must still be kept on it or in its archive) -- instead of
    failing on them; `sim.check_declared` says exactly what is counted. Never set by default."""

    old_main: str
    start: float
    end: float
    reason: str


@dataclass
class Timeline:
    """Everything one run recorded. Mutable while the run goes on; `to_json`/`from_json` round-trip."""

    pods: list[str] = field(default_factory=list)
    sample_period_s: float = 0.2
    samples: list[RoleSample] = field(default_factory=list)
    attempts: list[WriteAttempt] = field(default_factory=list)
    final: FinalData | None = None
    divergence_reports: list[DivergenceReport] = field(default_factory=list)
    injected_divergence: list[str] = field(default_factory=list)
    diverged_at_start: list[str] = field(default_factory=list)
    diverged_ids_before: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prestops: list[PrestopRecord] = field(default_factory=list)
    outages: list[OutageWindow] = field(default_factory=list)
    failovers: list[FailoverMark] = field(default_factory=list)
    declared_losses: list[DeclaredLoss] = field(default_factory=list)  # see DeclaredLoss; empty by default
    reads: list[ReadAttempt] = field(default_factory=list)
    records: list[RecordSample] = field(default_factory=list)
    endpoint_delay_s: float = 0.0  # EndpointSlice propagation of the run (kube-proxy routes this late)
    fault_stop_t: float | None = None
    converged_t: float | None = None  # as measured by the cluster, when samples cannot show it

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Timeline:
        built = _build(cls, json.loads(text))
        assert isinstance(built, Timeline)
        return built

    def rounds(self) -> list[list[RoleSample]]:
        """Samples grouped by round, in round order."""
        by_round: dict[int, list[RoleSample]] = {}
        for s in self.samples:
            by_round.setdefault(s.round, []).append(s)
        return [by_round[r] for r in sorted(by_round)]


def _build(tp: Any, data: Any) -> Any:
    """Rebuild a value of type `tp` (dataclass, list, tuple, dict, optional, scalar) from JSON data."""
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(tp) if a is not type(None)]
        return _build(inner[0], data)
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = typing.get_type_hints(tp)
        names = [f.name for f in dataclasses.fields(tp) if f.name in data]
        kwargs = {n: _build(hints[n], data[n]) for n in names}
        return tp(**kwargs)
    if origin is list:
        return [_build(typing.get_args(tp)[0], v) for v in data]
    if origin is tuple:
        return tuple(_build(typing.get_args(tp)[0], v) for v in data)
    if origin is dict:
        vt = typing.get_args(tp)[1]
        return {k: _build(vt, v) for k, v in data.items()}
    return data


# ---- derivations shared by the writer and the checker -------------------------------------------


def write_pauses(attempts: typing.Sequence[WriteAttempt], threshold_s: float) -> list[WritePause]:
    """Gaps between consecutive acks (by ack time) longer than `threshold_s`."""
    acks = sorted((a for a in attempts if a.acked), key=lambda a: a.t_end)
    pauses = []
    for prev, nxt in itertools.pairwise(acks):
        if nxt.t_end - prev.t_end > threshold_s:
            pauses.append(WritePause(prev.t_end, nxt.t_end, prev.address, nxt.address, prev.id, nxt.id))
    return pauses


def error_windows(attempts: typing.Sequence[WriteAttempt]) -> list[ErrorWindow]:
    """Windows of failed attempts: first error after an ack (or the start) .. the next ack."""
    windows: list[ErrorWindow] = []
    start: float | None = None
    classes: list[str] = []
    addresses: list[str] = []
    count = 0
    for a in sorted(attempts, key=lambda a: a.t_start):
        if a.acked:
            if start is not None:
                windows.append(ErrorWindow(start, a.t_end, count, tuple(classes), tuple(addresses)))
                start, classes, addresses, count = None, [], [], 0
            continue
        if start is None:
            start = a.t_start
        count += 1
        if a.error_class not in classes:
            classes.append(a.error_class)
        if a.address not in addresses:
            addresses.append(a.address)
    if start is not None:
        windows.append(ErrorWindow(start, None, count, tuple(classes), tuple(addresses)))
    return windows


# ---- the preStop hook's log file ------------------------------------------------------------------

_LINE = re.compile(r"^\[(?P<ts>[^\]]+)\]\s+(?P<msg>.*)$")
_ATTEMPT = re.compile(
    r"^Attempt (?P<n>\d+)(?:/(?P<of>\d+))?:\s*(?P<outcome>NOT SAFE|[A-Za-z_]+)(?P<rest>.*)$"
)
_START_POD = re.compile(r"pod=(\S+?)[\s)]")
_START_BUDGET = re.compile(r"budget=([0-9.]+)s")
_STATUS = re.compile(r"status=(\d+)")
_DURATION = re.compile(r"duration=([0-9.]+)s")
_EXIT = re.compile(r"exit=(-?\d+)")


def parse_iso(ts: str) -> float:
    """`2025-10-19T12:34:56.789Z` (or with an offset) -> epoch seconds."""
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


DEFAULT_PRESTOP_BUDGET_S = 600.0  # DESIGN: PRESTOP_TIMEOUT_SECONDS default


def parse_prestop_log(text: str, pod: str = "", path: str = "", budget_s: float | None = None
                      ) -> list[PrestopRecord]:
    """Parse the hook's log (lines `[<iso>] START PreStop hook (pod=P budget=Ns)`, `Attempt i[/n]: OUTCOME
    (status=.., duration=..s) ...`, `END PreStop hook (exit=N)`). `pod` and `budget_s`, when given, are
    authoritative (the configured budget); otherwise the `pod=`/`budget=` the hook wrote on START are used.

    Each START opens a run; a run without END is returned with `end_wall=None` (the hook was killed
    or hangs). Lines that are neither (the agent's switchover steps) are counted in `other_lines`.
    """
    runs: list[dict[str, Any]] = []
    for raw in text.splitlines():
        m = _LINE.match(raw.strip())
        if not m:
            continue
        try:
            wall = parse_iso(m["ts"])
        except ValueError:
            continue
        msg = m["msg"]
        if msg.startswith("START"):
            pm, bm = _START_POD.search(msg + " "), _START_BUDGET.search(msg)
            runs.append({"start": wall, "end": None, "exit": None, "attempts": [], "other": 0,
                         "pod": pod or (pm.group(1) if pm else ""),
                         "budget": budget_s if budget_s is not None else
                         (float(bm.group(1)) if bm else DEFAULT_PRESTOP_BUDGET_S)})
            continue
        if not runs:
            runs.append({"start": None, "end": None, "exit": None, "attempts": [], "other": 0,
                         "pod": pod, "budget": budget_s or DEFAULT_PRESTOP_BUDGET_S})
        run = runs[-1]
        if msg.startswith("END"):
            run["end"] = wall
            ex = _EXIT.search(msg)
            run["exit"] = int(ex.group(1)) if ex else None
        elif am := _ATTEMPT.match(msg):
            st, du = _STATUS.search(am["rest"]), _DURATION.search(am["rest"])
            run["attempts"].append(PrestopAttempt(
                int(am["n"]), int(am["of"]) if am["of"] else None, am["outcome"], wall,
                int(st.group(1)) if st else None, float(du.group(1)) if du else None,
            ))
        else:
            run["other"] += 1
    return [
        PrestopRecord(r["pod"], path, r["budget"], r["start"], r["end"], r["exit"], tuple(r["attempts"]),
                      r["other"])
        for r in runs
    ]


def read_prestop_logs(log_dir: Path, pod: str = "", budget_s: float | None = None) -> list[PrestopRecord]:
    """All runs in every `prestop-*.log` under `log_dir` (a pod's log volume)."""
    records: list[PrestopRecord] = []
    for p in sorted(log_dir.glob("prestop-*.log")):
        records.extend(parse_prestop_log(p.read_text(errors="replace"), pod, str(p), budget_s))
    return records


# ---- changes of MAIN seen in the samples ----------------------------------------------------------


def changes_of_main(tl: Timeline, planned: typing.Sequence[tuple[float, float]] = (),
                    slack_s: float = 5.0) -> list[FailoverMark]:
    """A FailoverMark for every change of the MAIN (answering MAIN, labelled, Ready) between the rounds
    that show exactly one, in order. A change inside a `planned` window (start, end + `slack_s`) is a
    switchover; any other is an unplanned failover. Marks are never lossy: the target is taken as the
    ready sync replica (a run that expects loss marks it itself)."""
    marks: list[FailoverMark] = []
    prev: str | None = None
    for rnd in tl.rounds():
        mains = [s.pod for s in rnd if s.role == "main" and s.label == "main" and s.ready]
        if len(mains) != 1:
            continue
        cur, t = mains[0], min(s.t for s in rnd)
        if prev is not None and cur != prev:
            marks.append(FailoverMark(t, prev, cur, any(a <= t <= b + slack_s for a, b in planned)))
        prev = cur
    return marks

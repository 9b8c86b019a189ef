"""One time scale for every duration of the emulated cluster.

Role: the single object every duration of `sim/` goes through -- the product's timings as the chart
renders them into the agent's environment (lease, renew, retry, reconcile, failoverAfter, preStop budget,
drain), the chart's probes and grace period, the kubelet's CrashLoopBackOff, the node controller's grace,
kube-proxy's endpoint propagation, the Memgraph emulator's timeouts, and the waits of the bench and the
scenarios. Scale 1.0 is the chart's defaults and Kubernetes' own timings: the published bench runs at 1.0.
A smaller factor shrinks every one of them by the same ratio, so the relations that decide an outcome
(probe thresholds against failoverAfter, node grace against the lease) stay those of a real cluster;
what does not shrink is the machine's own cost (process start, Python imports, a Bolt round trip), which
is why the test suite's factor is not lower than it is (tests/conftest.py).

The factor comes from the caller or from `MGHA_TIME_SCALE` in the environment (default 1.0).

Must never: scale a count (thresholds, replica numbers, ports), or be used by `agent/` or `coordinator/`
(the product reads its timings from its environment, which this object wrote).
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Mapping
from typing import Any, TypeVar

ENV = "MGHA_TIME_SCALE"
MIN_FACTOR, MAX_FACTOR = 0.05, 10.0
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class TimeScale:
    """Durations as `factor` x the real ones (1.0: the chart's defaults and Kubernetes' timings)."""

    factor: float = 1.0

    def __post_init__(self) -> None:
        if not MIN_FACTOR <= self.factor <= MAX_FACTOR:
            raise ValueError(f"time scale {self.factor} outside [{MIN_FACTOR}, {MAX_FACTOR}]")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TimeScale:
        raw = (os.environ if environ is None else environ).get(ENV, "").strip()
        if not raw:
            return cls()
        try:
            return cls(float(raw))
        except ValueError as exc:
            raise ValueError(f"{ENV}={raw!r}: {exc}") from exc

    def s(self, seconds: float) -> float:
        """A real duration in seconds, on this scale."""
        return seconds * self.factor

    def real(self, seconds: float) -> float:
        """The inverse: a duration measured on this scale, in real (scale 1.0) seconds."""
        return seconds / self.factor

    def env_seconds(self, value: str) -> str:
        """A `..._SECONDS` environment value of the chart ("15") on this scale ("3.75")."""
        return _fmt(self.s(float(value)))

    def scale_env(self, env: Mapping[str, str], suffix: str = "_SECONDS") -> dict[str, str]:
        """Every `*_SECONDS` entry of `env` on this scale; the other entries unchanged."""
        return {k: (self.env_seconds(v) if k.endswith(suffix) and v.strip() else v) for k, v in env.items()}

    def record(self, rec: T) -> T:
        """A copy of the dataclass `rec` with every float field named `*_s` on this scale."""
        if not dataclasses.is_dataclass(rec) or isinstance(rec, type):
            raise TypeError(f"not a dataclass instance: {rec!r}")
        changes: dict[str, Any] = {
            f.name: self.s(float(getattr(rec, f.name)))
            for f in dataclasses.fields(rec)
            if f.name.endswith("_s") and isinstance(getattr(rec, f.name), int | float)
            and not isinstance(getattr(rec, f.name), bool)
        }
        return dataclasses.replace(rec, **changes)  # type: ignore[type-var,unused-ignore]

    def sleep(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep a real duration on this scale; True when `stop` was set meanwhile."""
        return (stop or threading.Event()).wait(self.s(seconds))

    def describe(self) -> dict[str, Any]:
        return {"time_scale": self.factor}


def _fmt(x: float) -> str:
    """Seconds as the shortest exact-enough decimal ("3.75", "15", "0.4")."""
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return text or "0"

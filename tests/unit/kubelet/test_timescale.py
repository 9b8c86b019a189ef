"""One time scale for every duration of the emulated cluster (sim/timescale.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sim.timescale import TimeScale


@dataclass(frozen=True)
class Rec:
    grace_s: float = 40.0
    period_s: int = 5
    failure_threshold: int = 3
    name: str = "x"
    enabled_s: bool = True


def test_scale_one_changes_nothing() -> None:
    assert TimeScale().s(15.0) == 15.0


def test_record_scales_duration_fields_and_never_counts() -> None:
    r = TimeScale(0.25).record(Rec())
    assert (r.grace_s, r.period_s, r.failure_threshold, r.name, r.enabled_s) == (10.0, 1.25, 3, "x", True)


def test_env_scales_only_seconds_entries() -> None:
    env = {"HA_LEASE_DURATION_SECONDS": "15", "HA_SYNC_MODE": "STRICT_SYNC", "AGENT_PORT": "8080",
           "HA_DRAIN_SECONDS": "0"}
    assert TimeScale(0.25).scale_env(env) == {"HA_LEASE_DURATION_SECONDS": "3.75",
                                              "HA_SYNC_MODE": "STRICT_SYNC", "AGENT_PORT": "8080",
                                              "HA_DRAIN_SECONDS": "0"}


def test_from_env_reads_the_factor_and_rejects_nonsense() -> None:
    assert TimeScale.from_env({}).factor == 1.0
    assert TimeScale.from_env({"MGHA_TIME_SCALE": "0.5"}).factor == 0.5
    with pytest.raises(ValueError, match="MGHA_TIME_SCALE"):
        TimeScale.from_env({"MGHA_TIME_SCALE": "fast"})
    with pytest.raises(ValueError):
        TimeScale(0.0)


def test_real_is_the_inverse_of_s() -> None:
    ts = TimeScale(0.2)
    assert ts.real(ts.s(42.0)) == pytest.approx(42.0)

"""Fixtures of the chart tests: each named value set is rendered once per session (render.py caches)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chart import render as r


@pytest.fixture(scope="session", params=r.HA_SETS)
def ha_docs(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    """(value-set name, rendered objects) for every HA value set."""
    return request.param, r.render_set(request.param)


@pytest.fixture(scope="session")
def default_docs() -> list[dict[str, Any]]:
    return r.render_set("default")

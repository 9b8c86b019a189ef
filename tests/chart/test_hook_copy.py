"""The chart ships the project's preStop hook: one source of truth (hooks/prestop.py)."""

from __future__ import annotations

from tests.chart import render as r


def test_chart_copy_of_prestop_hook_is_identical_to_hooks_prestop() -> None:
    source = r.REPO / "hooks" / "prestop.py"
    copy = r.CHART_DIR / "files" / "prestop.py"
    assert source.exists(), "hooks/prestop.py is missing"
    assert copy.read_bytes() == source.read_bytes(), (
        "charts/memgraph/files/prestop.py differs from hooks/prestop.py: "
        "cp hooks/prestop.py charts/memgraph/files/prestop.py"
    )


def test_rendered_configmap_carries_the_hook_verbatim() -> None:
    cm = r.find(r.render_set("ha"), "ConfigMap")
    hook = (r.CHART_DIR / "files" / "prestop.py").read_text()
    assert cm["data"]["prestop.py"].strip() == hook.strip()
    waiter = (r.CHART_DIR / "files" / "agent_prestop_wait.py").read_text()
    assert cm["data"]["agent_prestop_wait.py"].strip() == waiter.strip()

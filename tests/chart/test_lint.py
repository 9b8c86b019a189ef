"""`helm lint` (real Helm library) on the chart: no errors for the default and the HA value sets."""

from __future__ import annotations

import helm_python as helm
import pytest

from tests.chart import render as r

ERROR = 3


def _errors(report: dict) -> list[str]:
    return [m["error"] for m in report["messages"] if m["severity"] >= ERROR] + list(report["errors"])


@pytest.mark.parametrize("kube", r.KUBE_VERSIONS)
@pytest.mark.parametrize("value_set", sorted(r.VALUE_SETS))
def test_lint_has_no_errors(value_set: str, kube: str) -> None:
    report = helm.lint(
        str(r.CHART_DIR), r.VALUE_SETS[value_set] or None, namespace=r.NAMESPACE, kube_version=f"v{kube}.0"
    )
    assert report["total_charts_linted"] == 1
    assert _errors(report) == []


@pytest.mark.parametrize("value_set", ["default", "ha", "official", "official-ha", "everything-on"])
def test_lint_has_no_warnings_in_strict_mode(value_set: str) -> None:
    """Strict lint also wants Chart.yaml's icon and kubeVersion right."""
    report = helm.lint(str(r.CHART_DIR), r.VALUE_SETS[value_set] or None, strict=True, namespace=r.NAMESPACE)
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_reports_a_schema_violation_as_an_error() -> None:
    report = helm.lint(str(r.CHART_DIR), {"haAgent": {"enabled": True, "syncMode": "QUORUM"}})
    assert any("syncMode" in e for e in _errors(report))


def test_ordinary_sidecar_mode_lints_clean_on_kubernetes_1_28() -> None:
    """Without native sidecars (1.28) the ordinary-container mode is the way; it must lint clean there.

    (The template's `fail` for nativeSidecar on < 1.29 cannot be asserted offline: Helm's lint turns
    `fail` into a log line, and Chart.render has no kube-version option.)
    """
    report = helm.lint(
        str(r.CHART_DIR), {"haAgent": {"enabled": True, "nativeSidecar": False}}, kube_version="v1.28.0"
    )
    assert _errors(report) == []

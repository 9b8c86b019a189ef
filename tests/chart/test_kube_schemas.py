"""Every rendered object validates (strict) against the Kubernetes 1.29-1.33 schemas (kubernetes-validate)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tests.chart import render as r

# Custom resources have no schema in kubernetes-validate (it ships only the built-in API).
CRD_GROUPS = ("monitoring.coreos.com/",)


def _docs(value_set: str) -> list[dict[str, Any]]:
    """The release's objects and its `helm test` hooks."""
    return r.render_set(value_set) + r.hooks(r.VALUE_SETS[value_set])


def _cases() -> list[Any]:
    cases = []
    for value_set in sorted(r.VALUE_SETS):
        for index, doc in enumerate(_docs(value_set)):
            ident = f"{value_set}-{doc['kind']}-{doc['metadata']['name']}"
            marks = []
            if doc["apiVersion"].startswith(CRD_GROUPS):
                marks.append(
                    pytest.mark.skip(reason=f"{doc['apiVersion']} is a CRD: no built-in schema to check")
                )
            cases.append(pytest.param(value_set, index, id=ident, marks=marks))
    return cases


@pytest.mark.parametrize("kube", r.KUBE_VERSIONS)
@pytest.mark.parametrize(("value_set", "index"), _cases())
def test_rendered_object_is_valid_for_kubernetes(value_set: str, index: int, kube: str) -> None:
    doc = _docs(value_set)[index]
    try:
        validated = kubernetes_validate.validate(doc, kube, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path)
        pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} invalid for {kube}: {path}: {exc.message}")
    assert validated == kube


def test_schema_check_rejects_an_unknown_field() -> None:
    """The validator really is strict: a typo in a container field is caught."""
    doc = r.render_set("ha")
    sts = r.find(doc, "StatefulSet")
    sts["spec"]["template"]["spec"]["containers"][0]["lifecylce"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, "1.33", strict=True)

"""Validation of the Kubernetes API emulator: the 422 `Invalid` answers a real apiserver gives on write.

Role: per-kind validation on create and update (names, labels, pod containers, StatefulSet selector,
Lease times, events (reference bolt-and-kube-emulation.md 3.6), RBAC Roles and RoleBindings, and
PodDisruptionBudgets, with the apiserver's field paths and wording from
`pkg/apis/{core,apps,rbac,policy}/validation`), and the update rules for immutable fields (pod spec,
StatefulSet spec, a RoleBinding's `roleRef`).

Must never: do I/O or keep state; it only reads the objects it is given (MicroTimes are normalized in
place, as the apiserver re-serializes them).
"""

from __future__ import annotations

import re
from typing import Any

from sim.kube import errors
from sim.kube.resources import RBAC_GROUP, ResourceType, normalize_micro

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
Cause = tuple[str, str, str]


def _check_labels(labels: Any, causes: list[Cause]) -> None:
    if labels is None:
        return
    if not isinstance(labels, dict):
        causes.append(("metadata.labels", "FieldValueInvalid", "Invalid value: must be a map"))
        return
    for k, v in labels.items():
        prefix, _, name = k.rpartition("/")
        if (prefix and not _SUBDOMAIN.match(prefix)) or len(name) > 63 or not _LABEL_NAME.match(name):
            causes.append(
                ("metadata.labels", "FieldValueInvalid", f'Invalid value: "{k}": name part must ...')
            )
        if not isinstance(v, str) or len(v) > 63 or not _LABEL_VALUE.match(v):
            causes.append(
                ("metadata.labels", "FieldValueInvalid", f'Invalid value: "{v}": a valid label must ...')
            )


def _check_pod_spec(spec: Any, path: str, causes: list[Cause]) -> None:
    containers = spec.get("containers") if isinstance(spec, dict) else None
    if not containers:
        causes.append((f"{path}.containers", "FieldValueRequired", "Required value"))
        return
    for i, c in enumerate(containers):
        if not isinstance(c, dict) or not c.get("name"):
            causes.append((f"{path}.containers[{i}].name", "FieldValueRequired", "Required value"))
        elif not c.get("image"):
            causes.append((f"{path}.containers[{i}].image", "FieldValueRequired", "Required value"))


def _check_statefulset(obj: dict[str, Any], causes: list[Cause]) -> None:
    spec = obj.get("spec") or {}
    selector = (spec.get("selector") or {}).get("matchLabels")
    template = spec.get("template") or {}
    if not selector:
        causes.append(("spec.selector", "FieldValueRequired", "Required value"))
    tlabels = (template.get("metadata") or {}).get("labels") or {}
    if selector and any(tlabels.get(k) != v for k, v in selector.items()):
        causes.append(
            (
                "spec.template.metadata.labels",
                "FieldValueInvalid",
                "Invalid value: `selector` does not match template `labels`",
            )
        )
    _check_pod_spec(template.get("spec"), "spec.template.spec", causes)


def _check_core_event(obj: dict[str, Any], namespace: str, causes: list[Cause]) -> None:
    """Reference 3.6: when eventTime is unset, involvedObject.namespace must equal the event namespace."""
    involved = obj.get("involvedObject")
    if not isinstance(involved, dict):
        causes.append(("involvedObject", "FieldValueRequired", "Required value"))
        return
    if not obj.get("eventTime"):
        inv_ns = involved.get("namespace") or ""
        if inv_ns and inv_ns != namespace and not (namespace == "default" and not inv_ns):
            causes.append(
                (
                    "involvedObject.namespace",
                    "FieldValueInvalid",
                    f'Invalid value: "{inv_ns}": does not match event.namespace',
                )
            )


def _check_events_v1(obj: dict[str, Any], causes: list[Cause]) -> None:
    """Reference 3.6, events.k8s.io/v1: eventTime, type, reportingController, reportingInstance, action,
    reason required; deprecated* fields unset; a series needs count >= 2 and lastObservedTime."""
    if not obj.get("eventTime"):
        causes.append(("eventTime", "FieldValueRequired", "Required value"))
    if obj.get("type") not in ("Normal", "Warning"):
        causes.append(("type", "FieldValueNotSupported", f'Unsupported value: "{obj.get("type")}"'))
    rc = obj.get("reportingController") or ""
    if not rc:
        causes.append(("reportingController", "FieldValueRequired", "Required value"))
    elif not re.match(r"^([a-z0-9][-a-z0-9.]*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", rc):
        causes.append(
            ("reportingController", "FieldValueInvalid", f'Invalid value: "{rc}": must be a qualified name')
        )
    for f in ("reportingInstance", "action", "reason"):
        v = obj.get(f) or ""
        if not v:
            causes.append((f, "FieldValueRequired", "Required value"))
        elif len(v) > 128:
            causes.append((f, "FieldValueTooLong", "Too long: may not be more than 128 bytes"))
    if len(obj.get("note") or "") > 1024:
        causes.append(("note", "FieldValueTooLong", "Too long: may not be more than 1024 bytes"))
    for f in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount", "deprecatedSource"):
        if obj.get(f):
            causes.append((f, "FieldValueInvalid", "Invalid value: needs to be unset"))
    series = obj.get("series")
    if series is not None and (int(series.get("count") or 0) < 2 or not series.get("lastObservedTime")):
        causes.append(
            ("series", "FieldValueInvalid", "Invalid value: count must be >= 2 and lastObservedTime set")
        )


def _required(field: str, detail: str = "") -> Cause:
    return (field, "FieldValueRequired", f"Required value: {detail}" if detail else "Required value")


def _not_supported(field: str, value: Any, supported: tuple[str, ...]) -> Cause:
    listed = ", ".join(f'"{s}"' for s in supported)
    return (field, "FieldValueNotSupported", f'Unsupported value: "{value}": supported values: {listed}')


def _check_role(obj: dict[str, Any], causes: list[Cause]) -> None:
    """rbac/validation ValidatePolicyRule for a namespaced Role."""
    for i, rule in enumerate(obj.get("rules") or []):
        path = f"rules[{i}]"
        rule = rule if isinstance(rule, dict) else {}
        if not rule.get("verbs"):
            causes.append(_required(f"{path}.verbs", "verbs must contain at least one value"))
        if rule.get("nonResourceURLs"):
            causes.append(
                (
                    f"{path}.nonResourceURLs",
                    "FieldValueInvalid",
                    f"Invalid value: {rule['nonResourceURLs']}: "
                    "namespaced rules cannot apply to non-resource URLs",
                )
            )
            continue
        if not rule.get("apiGroups"):
            causes.append(_required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
        if not rule.get("resources"):
            causes.append(_required(f"{path}.resources", "resource rules must supply at least one resource"))


def _check_role_binding(obj: dict[str, Any], causes: list[Cause]) -> None:
    """rbac/validation ValidateRoleBinding and ValidateRoleBindingSubject (namespaced)."""
    ref: dict[str, Any] = obj["roleRef"] if isinstance(obj.get("roleRef"), dict) else {}
    if ref.get("apiGroup") != RBAC_GROUP:
        causes.append(_not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", (RBAC_GROUP,)))
    if ref.get("kind") not in ("Role", "ClusterRole"):
        causes.append(_not_supported("roleRef.kind", ref.get("kind") or "", ("Role", "ClusterRole")))
    if not ref.get("name"):
        causes.append(_required("roleRef.name"))
    for i, subject in enumerate(obj.get("subjects") or []):
        path = f"subjects[{i}]"
        subject = subject if isinstance(subject, dict) else {}
        if not subject.get("name"):
            causes.append(_required(f"{path}.name"))
        kind, group = subject.get("kind"), subject.get("apiGroup") or ""
        if kind == "ServiceAccount" and group:
            causes.append(_not_supported(f"{path}.apiGroup", group, ("",)))
        elif kind in ("User", "Group") and group != RBAC_GROUP:
            causes.append(_not_supported(f"{path}.apiGroup", group, (RBAC_GROUP,)))
        elif kind not in ("ServiceAccount", "User", "Group"):
            causes.append(_not_supported(f"{path}.kind", kind or "", ("ServiceAccount", "User", "Group")))


def _check_int_or_percent(value: Any, field: str, causes: list[Cause]) -> None:
    if isinstance(value, str):
        if not re.match(r"^[0-9]+%$", value):
            msg = (
                f'Invalid value: "{value}": a valid percent string must be a numeric string '
                "followed by an ending '%'"
            )
            causes.append((field, "FieldValueInvalid", msg))
    elif isinstance(value, int) and value < 0:
        msg = f"Invalid value: {value}: must be greater than or equal to 0"
        causes.append((field, "FieldValueInvalid", msg))


def _check_pdb(obj: dict[str, Any], causes: list[Cause]) -> None:
    """policy/validation ValidatePodDisruptionBudgetSpec."""
    spec: dict[str, Any] = obj["spec"] if isinstance(obj.get("spec"), dict) else {}
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        causes.append(
            ("spec", "FieldValueInvalid", "Invalid value: minAvailable and maxUnavailable cannot be both set")
        )
    for field in ("minAvailable", "maxUnavailable"):
        if spec.get(field) is not None:
            _check_int_or_percent(spec[field], f"spec.{field}", causes)


def validate(rt: ResourceType, obj: dict[str, Any], namespace: str) -> None:
    """Raise 422 Invalid (or 400 for a bad MicroTime) where the apiserver would; normalizes MicroTimes."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") or ""
    causes: list[Cause] = []
    if len(name) > 253 or not _SUBDOMAIN.match(name):
        causes.append(
            (
                "metadata.name",
                "FieldValueInvalid",
                f'Invalid value: "{name}": a lowercase RFC 1123 subdomain ...',
            )
        )
    _check_labels(meta.get("labels"), causes)
    if rt.kind == "Pod":
        _check_pod_spec(obj.get("spec"), "spec", causes)
    elif rt.kind == "StatefulSet":
        _check_statefulset(obj, causes)
    elif rt.kind == "Lease":
        normalize_micro(obj, "Lease", "spec", ("acquireTime", "renewTime"))
        if (obj.get("spec") or {}).get("leaseDurationSeconds", 1) <= 0:
            causes.append(
                ("spec.leaseDurationSeconds", "FieldValueInvalid", "Invalid value: must be greater than 0")
            )
    elif rt.kind == "Role":
        _check_role(obj, causes)
    elif rt.kind == "RoleBinding":
        _check_role_binding(obj, causes)
    elif rt.kind == "PodDisruptionBudget":
        _check_pdb(obj, causes)
    elif rt.key == "/events":
        normalize_micro(obj, "Event", "", ("eventTime",))
        _check_core_event(obj, namespace, causes)
    elif rt.key == "events.k8s.io/events":
        normalize_micro(obj, "Event", "", ("eventTime",))
        normalize_micro(obj, "Event", "series", ("lastObservedTime",))
        _check_events_v1(obj, causes)
    if causes:
        raise errors.invalid(rt.kind, rt.group, name, causes)


_POD_MUTABLE = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")
_STS_MUTABLE = (
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
)


def _pod_spec_masked(spec: Any) -> Any:
    if not isinstance(spec, dict):
        return spec
    out = {k: v for k, v in spec.items() if k not in _POD_MUTABLE}
    for field in ("containers", "initContainers"):
        out[field] = [{k: v for k, v in c.items() if k != "image"} for c in spec.get(field) or []]
    return out


def check_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
    """422 for spec changes the apiserver forbids (pod spec is immutable but for images and a few fields;
    a StatefulSet allows only the fields in `_STS_MUTABLE`)."""
    name = (old.get("metadata") or {}).get("name", "")
    if rt.kind == "Pod" and _pod_spec_masked(old.get("spec")) != _pod_spec_masked(new.get("spec")):
        msg = (
            "Forbidden: pod updates may not change fields other than `spec.containers[*].image`, "
            "`spec.initContainers[*].image`, `spec.activeDeadlineSeconds`, `spec.tolerations` "
            "(only additions to existing tolerations), `spec.terminationGracePeriodSeconds`"
        )
        raise errors.invalid(rt.kind, rt.group, name, [("spec", "FieldValueForbidden", msg)])
    if rt.kind == "RoleBinding" and old.get("roleRef") != new.get("roleRef"):
        msg = f"Invalid value: {new.get('roleRef')}: cannot change roleRef"
        raise errors.invalid(rt.kind, rt.group, name, [("roleRef", "FieldValueInvalid", msg)])
    if rt.kind == "StatefulSet":
        strip = [
            {k: v for k, v in (o.get("spec") or {}).items() if k not in _STS_MUTABLE} for o in (old, new)
        ]
        if strip[0] != strip[1]:
            msg = (
                "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                "'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' "
                "are forbidden"
            )
            raise errors.invalid(rt.kind, rt.group, name, [("spec", "FieldValueForbidden", msg)])



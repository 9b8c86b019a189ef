"""Resource types the Kubernetes API emulator serves, and what the apiserver does to them on write.

Role: the table of served resources (group, version, plural, kind and their registry strategy flags),
defaults filled on create so that the pydantic models of kubernetes 37.x deserialize every served
object (reference bolt-and-kube-emulation.md 3.1: "the emulator must emit schema-valid objects, with
strings where the API has strings"), and the validation a real apiserver would answer with 400/422.

Must never: do I/O or keep state; the store owns objects and revisions.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sim.kube import errors


@dataclass(frozen=True)
class ResourceType:
    """One served resource. Flags follow the apiserver's registry strategies (reference 3.3)."""

    group: str
    version: str
    plural: str
    kind: str
    has_status: bool = False  # a /status subresource: main-resource writes keep the stored status
    unconditional_update: bool = True  # PUT without resourceVersion allowed (Lease: no -> 422)
    create_on_update: bool = False  # PUT of a missing object creates it (Lease: yes)
    graceful_delete: bool = False  # DELETE sets deletionTimestamp; removed after the grace period
    has_generation: bool = False

    @property
    def key(self) -> str:
        """Store key: `coordination.k8s.io/leases`, `/pods` for the core group."""
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "pods", "Pod", has_status=True, graceful_delete=True),
    ResourceType("", "v1", "services", "Service", has_status=True),
    ResourceType("", "v1", "endpoints", "Endpoints"),
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "Lease", unconditional_update=False, create_on_update=True
    ),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", has_status=True, has_generation=True),
)

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(kind_or_plural: str) -> ResourceType:
    """Resolve `Pod`, `pods`, `Lease`, `events.k8s.io/events` ... for the direct Python API."""
    for r in RESOURCES:
        if kind_or_plural in (r.key, f"{r.plural}.{r.group}"):
            return r
    for r in RESOURCES:  # core first, so "Event"/"events" mean core/v1 events
        if kind_or_plural in (r.kind, r.plural):
            return r
    raise KeyError(f"the emulator does not serve {kind_or_plural!r}")


# ---- time formats -----------------------------------------------------------------------------

_MICRO = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\.(\d{6})(Z|[+-]\d{2}:\d{2})$")


def rfc3339(ts: datetime) -> str:
    """metav1.Time: RFC 3339, whole seconds, `Z`."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_time(value: str, kind: str, field: str) -> str:
    """Parse a MicroTime the way the apiserver does and return its canonical `.ffffffZ` form.

    Reference 3.3: "The apiserver parses them with Go layout `2006-01-02T15:04:05.000000Z07:00` ... Go's
    parser requires exactly six fractional digits there, so a value without microseconds is rejected.
    It serializes them as `....ffffffZ`." A value already in that form is kept as given.
    """
    m = _MICRO.match(value) if isinstance(value, str) else None
    if not m:
        raise errors.bad_request(
            f'{kind} in version "v1" cannot be handled as a {kind}: parsing time "{value}" as '
            f'"2006-01-02T15:04:05.000000Z07:00": cannot parse {field} as MicroTime'
        )
    offset = "+00:00" if m.group(3) == "Z" else m.group(3)
    parsed = datetime.fromisoformat(f"{m.group(1)}.{m.group(2)}{offset}")
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _normalize_micro(obj: dict[str, Any], kind: str, section: str, fields: tuple[str, ...]) -> None:
    part = obj.get(section) if section else obj
    if not isinstance(part, dict):
        return
    for f in fields:
        if part.get(f) is not None:
            part[f] = micro_time(part[f], kind, f"{section}.{f}" if section else f)


# ---- validation -------------------------------------------------------------------------------

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
        _normalize_micro(obj, "Lease", "spec", ("acquireTime", "renewTime"))
        if (obj.get("spec") or {}).get("leaseDurationSeconds", 1) <= 0:
            causes.append(
                ("spec.leaseDurationSeconds", "FieldValueInvalid", "Invalid value: must be greater than 0")
            )
    elif rt.key == "/events":
        _normalize_micro(obj, "Event", "", ("eventTime",))
        _check_core_event(obj, namespace, causes)
    elif rt.key == "events.k8s.io/events":
        _normalize_micro(obj, "Event", "", ("eventTime",))
        _normalize_micro(obj, "Event", "series", ("lastObservedTime",))
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


# ---- defaults on create -------------------------------------------------------------------------


def _pod_spec_defaults(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for c in spec.get("containers") or []:
        image = str(c.get("image", ""))
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged else "Always")
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        c.setdefault("resources", {})


def prepare_create(rt: ResourceType, obj: dict[str, Any], keep_status: bool, cluster_ip: str) -> None:
    """Fill what the apiserver fills on create (status reset and defaults per kind)."""
    if rt.kind == "Pod":
        _pod_spec_defaults(obj.setdefault("spec", {}))
        if not keep_status or not obj.get("status"):
            obj["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
    elif rt.kind == "StatefulSet":
        spec = obj.setdefault("spec", {})
        spec.setdefault("replicas", 1)
        spec.setdefault("podManagementPolicy", "OrderedReady")
        spec.setdefault("updateStrategy", {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}})
        spec.setdefault("revisionHistoryLimit", 10)
        _pod_spec_defaults(spec.setdefault("template", {}).setdefault("spec", {}))
        if not keep_status or not obj.get("status"):
            obj["status"] = {"replicas": 0, "availableReplicas": 0}
    elif rt.kind == "Service":
        spec = obj.setdefault("spec", {})
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        if not spec.get("clusterIP"):
            spec["clusterIP"] = cluster_ip
        spec.setdefault("clusterIPs", [spec["clusterIP"]])
        for p in spec.get("ports") or []:
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))
        if not keep_status:
            obj["status"] = {"loadBalancer": {}}
    elif rt.kind == "Secret":
        obj.setdefault("type", "Opaque")
        _fold_string_data(obj)


def _fold_string_data(obj: dict[str, Any]) -> None:
    """Secret `stringData` is write-only: the apiserver merges it into base64 `data`."""
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {})
        for k, v in string_data.items():
            data[k] = base64.b64encode(str(v).encode()).decode()

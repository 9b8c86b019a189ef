"""Resource types the Kubernetes API emulator serves, and what the apiserver does to them on write.

Role: the table of served resources (group, version, plural, kind, their registry strategy flags and
their discovery names), MicroTime parsing, and the defaults filled on create so that the pydantic models
of kubernetes 37.x deserialize every served object (reference bolt-and-kube-emulation.md 3.1: "the
emulator must emit schema-valid objects, with strings where the API has strings"). The validation a
real apiserver answers with 422 lives in `validation.py`.

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
    """One served resource. Flags follow the apiserver's registry strategies (reference 3.3); the
    discovery fields (`short_names`, `categories`) are the real apiserver's for the same resource."""

    group: str
    version: str
    plural: str
    kind: str
    has_status: bool = False  # a /status subresource: main-resource writes keep the stored status
    unconditional_update: bool = True  # PUT without resourceVersion allowed (Lease: no -> 422)
    create_on_update: bool = False  # PUT of a missing object creates it (Lease: yes)
    graceful_delete: bool = False  # DELETE sets deletionTimestamp; removed after the grace period
    has_generation: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """Store key: `coordination.k8s.io/leases`, `/pods` for the core group."""
        return f"{self.group}/{self.plural}"

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        """Discovery's `singularName`: the lower-cased kind (`endpoints` for Endpoints)."""
        return self.kind.lower()


# Every served resource answers these verbs (discovery lists exactly them).
VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")
RBAC_GROUP = "rbac.authorization.k8s.io"
ALL = ("all",)  # the category `kubectl get all` lists

RESOURCES: tuple[ResourceType, ...] = (
    ResourceType(
        "", "v1", "pods", "Pod", has_status=True, graceful_delete=True, short_names=("po",), categories=ALL
    ),
    ResourceType("", "v1", "services", "Service", has_status=True, short_names=("svc",), categories=ALL),
    ResourceType("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    ResourceType("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "events", "Event", short_names=("ev",)),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",)),
    ResourceType("events.k8s.io", "v1", "events", "Event", short_names=("ev",)),
    ResourceType(
        "coordination.k8s.io", "v1", "leases", "Lease", unconditional_update=False, create_on_update=True
    ),
    ResourceType(
        "apps",
        "v1",
        "statefulsets",
        "StatefulSet",
        has_status=True,
        has_generation=True,
        short_names=("sts",),
        categories=ALL,
    ),
    ResourceType(
        "policy",
        "v1",
        "poddisruptionbudgets",
        "PodDisruptionBudget",
        has_status=True,
        has_generation=True,
        short_names=("pdb",),
    ),
    ResourceType(RBAC_GROUP, "v1", "roles", "Role"),
    ResourceType(RBAC_GROUP, "v1", "rolebindings", "RoleBinding"),
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


def normalize_micro(obj: dict[str, Any], kind: str, section: str, fields: tuple[str, ...]) -> None:
    part = obj.get(section) if section else obj
    if not isinstance(part, dict):
        return
    for f in fields:
        if part.get(f) is not None:
            part[f] = micro_time(part[f], kind, f"{section}.{f}" if section else f)


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
        for port in c.get("ports") or []:
            port.setdefault("protocol", "TCP")


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
    elif rt.kind == "PodDisruptionBudget":
        if not keep_status or not obj.get("status"):  # the v1 status fields without omitempty
            counts = ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods")
            obj["status"] = dict.fromkeys(counts, 0)
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

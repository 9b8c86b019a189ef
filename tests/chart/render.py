"""Render the chart with the real Helm library (helm-python-sdk) and look objects up in the result.

Role: one cached render per value set for the whole session (rendering is ~50 ms, so test collection
may call it too); small finders for objects, containers and env entries. `render()` gives the release's
objects, `hooks()` the `helm test` hooks (objects annotated helm.sh/hook), which Helm keeps apart.
Must never: touch a cluster (Chart.render is offline) or edit the chart.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import helm_python as helm
import yaml

from tests.support.clock import FakeClock as SharedFakeClock

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "charts" / "memgraph"
OFFICIAL_DIR = REPO.parent / "shared" / "reference" / "official-chart"
OFFICIAL_VALUES_FILE = OFFICIAL_DIR / "memgraph-1.0.5-values.yaml"
RELEASE = "memgraph"
NAMESPACE = "db"
KUBE_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")

# Named value sets rendered once per session.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "ha": {
        "replicaCount": 3,
        "haAgent": {"enabled": True, "apiToken": {"existingSecret": "mg-ha-token", "key": "token"}},
        "secrets": {"enabled": True},
    },
    "ha-ordinary-sidecar": {"replicaCount": 3, "haAgent": {"enabled": True, "nativeSidecar": False}},
    "ha-tuned": {
        "replicaCount": 5,
        "fullnameOverride": "graph",
        "container": {"terminationGracePeriodSeconds": 150},
        "haAgent": {
            "enabled": True,
            "port": 9090,
            "replicationPort": 10001,
            "leaseName": "graph-election",
            "leaseDurationSeconds": 20,
            "renewDeadlineSeconds": 12,
            "retryPeriodSeconds": 3,
            "reconcileIntervalSeconds": 4,
            "syncMode": "SYNC",
            "failoverAfterSeconds": 9,
            "allowAsyncFailover": True,
            "prestopBudgetSeconds": 120,
            "drainSeconds": 0,
            "logFormat": "json",
            "logLevel": "DEBUG",
            "serviceMonitor": {"enabled": True},
        },
        "service": {"boltPort": 7688},
        "memgraphConfig": ["--data-directory=/var/lib/memgraph/mg_data", "--storage-wal-enabled=true"],
    },
    "ha-no-log-storage": {
        "replicaCount": 2,
        "haAgent": {"enabled": True},
        "persistentVolumeClaim": {
            "createLogStorage": False,
            "createStorageClaim": False,
            "existingClaim": "",
        },
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}
                ]
            }
        },
        "podAnnotations": {"example.com/team": "graph"},
        "lifecycleHooks": {"postStart": {"exec": {"command": ["true"]}}},
    },
}
HA_SETS = tuple(name for name in VALUE_SETS if name.startswith("ha"))


def official_values() -> dict[str, Any]:
    """The official chart's values.yaml (1.0.5), as a user of that chart has it."""
    values: dict[str, Any] = yaml.safe_load(OFFICIAL_VALUES_FILE.read_text())
    return values


# Value sets that start from the official values file (module import reads the reference file once).
VALUE_SETS["official"] = official_values()
VALUE_SETS["official-ha"] = {**official_values(), "replicaCount": 3, "haAgent": {"enabled": True}}
VALUE_SETS["everything-on"] = {
    "replicaCount": 3,
    "haAgent": {
        "enabled": True,
        "statusAuth": "token",
        "apiToken": {"existingSecret": "mg-ha-token"},
        "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}},
        "grafanaDashboard": {"enabled": True},
    },
    "networkPolicy": {"enabled": True},
    "rolloutJob": {"enabled": True},
    "secrets": {"enabled": True},
    "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "ScheduleAnyway"}
    ],
    "resources": {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"memory": "4Gi"}},
}


@functools.lru_cache(maxsize=1)
def chart() -> helm.Chart:
    return helm.Chart.load(str(CHART_DIR))


def render_raw(values: dict[str, Any] | None, release: str = RELEASE) -> dict[str, str]:
    """Render with `values` (uncached); raises helm_python errors as Helm does."""
    return chart().render(copy.deepcopy(values) if values else None, name=release, namespace=NAMESPACE)


def is_hook(doc: dict[str, Any]) -> bool:
    return "helm.sh/hook" in (doc.get("metadata", {}).get("annotations") or {})


@functools.lru_cache(maxsize=64)
def _render_cached(
    values_json: str, release: str = RELEASE
) -> tuple[dict[str, str], tuple[dict[str, Any], ...]]:
    manifests = render_raw(json.loads(values_json), release)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return manifests, tuple(docs)


def render(values: dict[str, Any] | None = None, release: str = RELEASE) -> list[dict[str, Any]]:
    """The release's objects, hooks left out (deep copies, so a test cannot spoil the cache)."""
    docs = _render_cached(json.dumps(values or {}, sort_keys=True), release)[1]
    return copy.deepcopy([d for d in docs if not is_hook(d)])


def hooks(values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The `helm test` hooks (objects annotated helm.sh/hook)."""
    docs = _render_cached(json.dumps(values or {}, sort_keys=True))[1]
    return copy.deepcopy([d for d in docs if is_hook(d)])


def notes(values: dict[str, Any] | None = None) -> str:
    manifests = _render_cached(json.dumps(values or {}, sort_keys=True))[0]
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def render_set(name: str) -> list[dict[str, Any]]:
    return render(VALUE_SETS[name])


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, (
        f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in matches]}"
    )
    return matches[0]


def kinds(docs: list[dict[str, Any]]) -> list[str]:
    return sorted(d["kind"] for d in docs)


def pod_spec(docs: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = find(docs, "StatefulSet")["spec"]["template"]["spec"]
    return spec


def container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """The container `name` wherever it is (containers or initContainers)."""
    spec = pod_spec(docs)
    found = [c for c in spec.get("containers", []) + spec.get("initContainers", []) if c["name"] == name]
    assert len(found) == 1, f"container {name}: {len(found)} found"
    return found[0]


def env_entries(ctr: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries = ctr.get("env", [])
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"duplicate env names in {ctr['name']}: {names}"
    return {e["name"]: e for e in entries}


SAMPLE_FIELDS = {
    "metadata.name": "memgraph-1",
    "metadata.namespace": NAMESPACE,
    "metadata.uid": "0b8f0e4e-5c1a-4a9e-9d7e-2f0a3c4b5d6e",
    "status.podIP": "10.244.1.17",
}


def resolve_env(ctr: dict[str, Any], secrets: dict[tuple[str, str], str]) -> dict[str, str]:
    """The environment the kubelet would give `ctr`: fieldRefs from SAMPLE_FIELDS, secretKeyRefs from
    `secrets[(secret name, key)]`. An unknown reference fails the test."""
    env: dict[str, str] = {}
    for name, entry in env_entries(ctr).items():
        if "value" in entry:
            env[name] = str(entry["value"])
            continue
        ref = entry["valueFrom"]
        if "fieldRef" in ref:
            env[name] = SAMPLE_FIELDS[ref["fieldRef"]["fieldPath"]]
        elif "secretKeyRef" in ref:
            env[name] = secrets[(ref["secretKeyRef"]["name"], ref["secretKeyRef"]["key"])]
        else:
            raise AssertionError(f"{name}: unsupported valueFrom {ref}")
    return env


def load_chart_script(name: str) -> ModuleType:
    """Import one of the chart's standard-library scripts (charts/memgraph/files/<name>.py)."""
    spec = importlib.util.spec_from_file_location(name, CHART_DIR / "files" / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock(SharedFakeClock):
    """The shared fake clock (tests.support.clock), started at 0 for the chart scripts' bounded waits."""

    def __init__(self) -> None:
        super().__init__(start=0.0)


def role_rules(role: dict[str, Any]) -> list[tuple[tuple[str, ...], ...]]:
    """A Role's rules as sorted (apiGroups, resources, resourceNames, verbs) tuples, for comparison."""
    return sorted(
        (
            tuple(x["apiGroups"]),
            tuple(x["resources"]),
            tuple(x.get("resourceNames", ())),
            tuple(sorted(x["verbs"])),
        )
        for x in role["rules"]
    )

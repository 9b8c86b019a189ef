"""Helpers of the e2e test on a real cluster: install, wait, in-cluster writer/reader pods, rollout.

Role: everything that talks to the real API server for tests/e2e, bounded in time.
Must never: run without E2E_KUBECONFIG (the test module skips first), touch namespaces it did not create.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes import client

from tests.support.wait import wait_until

T = TypeVar("T")

WRITER = """
import sys, time
from neo4j import GraphDatabase
uri, seconds = sys.argv[1], float(sys.argv[2])
driver = GraphDatabase.driver(uri, connection_timeout=3, max_transaction_retry_time=0)
deadline, seq = time.monotonic() + seconds, 0
while time.monotonic() < deadline:
    seq += 1
    try:
        with driver.session() as s:
            s.run("CREATE (:E2E {seq: $seq})", seq=seq).consume()
        print(f"ACK {seq}", flush=True)
    except Exception as exc:
        print(f"FAIL {seq} {type(exc).__name__}", flush=True)
        time.sleep(0.2)
driver.close()
print("DONE", flush=True)
"""

READER = """
import sys
from neo4j import GraphDatabase
with GraphDatabase.driver(sys.argv[1], connection_timeout=5) as d, d.session() as s:
    for rec in s.run("MATCH (n:E2E) RETURN n.seq AS seq"):
        print(f"HAS {rec['seq']}")
print("DONE", flush=True)
"""


def wait_for(what: str, check: Callable[[], T | None], timeout_s: float, every_s: float = 3.0) -> T:
    """Poll `check` until it returns a truthy value; AssertionError naming `what` after `timeout_s`."""
    value = wait_until(check, timeout_s, what, interval_s=every_s, ignore=(client.ApiException,))
    assert value is not None
    return value


@dataclass(frozen=True)
class Topology:
    main: str
    ready_replicas: tuple[str, ...]


def topology_from_status(doc: dict[str, Any]) -> Topology | None:
    """MAIN and ready replicas from the status document (GET /api/v1/status, schema in docs/api.md):
    `cluster.main` and `cluster.ready_replicas`. None before bootstrap (no MAIN designated)."""
    cluster = doc.get("cluster") or {}
    main = cluster.get("main")
    replicas = tuple(sorted(str(p) for p in cluster.get("ready_replicas") or ()))
    return Topology(str(main), replicas) if main else None


def agent_status(core: client.CoreV1Api, namespace: str, service: str, port: int) -> dict[str, Any]:
    """GET /api/v1/status through the API server's service proxy (no port-forward needed)."""
    raw: Any = core.connect_get_namespaced_service_proxy_with_path(
        f"{service}:{port}", namespace, "api/v1/status", _preload_content=False, _request_timeout=10
    )
    doc: dict[str, Any] = json.loads(raw.data)
    return doc


def pod_roles(core: client.CoreV1Api, namespace: str, selector: str) -> dict[str, tuple[str | None, bool]]:
    """pod name -> (memgraph-ha.io/role label, Ready)."""
    out: dict[str, tuple[str | None, bool]] = {}
    pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=selector, _request_timeout=10).items
    for pod in pods:
        ready = any(c.type == "Ready" and c.status == "True" for c in (pod.status.conditions or []))
        out[pod.metadata.name] = ((pod.metadata.labels or {}).get("memgraph-ha.io/role"), ready)
    return out


def run_script_pod(
    core: client.CoreV1Api, namespace: str, name: str, image: str, script: str, args: list[str]
) -> None:
    """Start a one-shot pod running `python3 -c script args` (non-root, no privileges)."""
    body = client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "memgraph-ha-e2e"}),
        spec=client.V1PodSpec(
            restart_policy="Never",
            automount_service_account_token=False,
            containers=[
                client.V1Container(
                    name="main",
                    image=image,
                    image_pull_policy="IfNotPresent",
                    command=["python3", "-c", script, *args],
                    security_context=client.V1SecurityContext(
                        run_as_non_root=True,
                        run_as_user=101,
                        allow_privilege_escalation=False,
                        capabilities=client.V1Capabilities(drop=["ALL"]),
                        seccomp_profile=client.V1SeccompProfile(type="RuntimeDefault"),
                    ),
                )
            ],
        ),
    )
    core.create_namespaced_pod(namespace, body, _request_timeout=10)


def pod_output(core: client.CoreV1Api, namespace: str, name: str, timeout_s: float) -> str:
    """Wait for the pod to finish and return its log."""

    def finished() -> str | None:
        pod: Any = core.read_namespaced_pod(name, namespace, _request_timeout=10)
        phase = pod.status.phase
        return str(phase) if phase in ("Succeeded", "Failed") else None

    wait_for(f"pod {name} to finish", finished, timeout_s)
    log: str = core.read_namespaced_pod_log(name, namespace, container="main", _request_timeout=30)
    return log


def restart_statefulset(apps: client.AppsV1Api, namespace: str, name: str) -> None:
    """What `kubectl rollout restart` does: bump a pod-template annotation."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = {
        "spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": stamp}}}}
    }
    apps.patch_namespaced_stateful_set(name, namespace, patch, _request_timeout=10)


def rollout_done(apps: client.AppsV1Api, namespace: str, name: str) -> bool:
    sts: Any = apps.read_namespaced_stateful_set(name, namespace, _request_timeout=10)
    st = sts.status
    return bool(
        st.observed_generation
        and st.observed_generation >= sts.metadata.generation
        and st.update_revision == st.current_revision
        and (st.updated_replicas or 0) == sts.spec.replicas == (st.ready_replicas or 0)
    )

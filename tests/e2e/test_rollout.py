"""e2e on a real cluster: install with haAgent.enabled=true and 3 replicas, wait for 1 MAIN + 2 ready
replicas through the status Service, roll the StatefulSet while a writer runs, lose no acknowledged write.

Skipped unless E2E_KUBECONFIG is set. See tests/e2e/README.md.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("E2E_KUBECONFIG"), reason="E2E_KUBECONFIG not set (needs a real cluster)"
    ),
]

RELEASE = "memgraph"
SELECTOR = f"app.kubernetes.io/name=memgraph,app.kubernetes.io/instance={RELEASE}"
CHART = os.path.join(os.path.dirname(__file__), "..", "..", "charts", "memgraph")


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict]:
    import helm_python as helm
    from kubernetes import client, config

    from tests.e2e import cluster as c

    kubeconfig = os.environ["E2E_KUBECONFIG"]
    namespace = os.environ.get("E2E_NAMESPACE", f"memgraph-ha-e2e-{uuid.uuid4().hex[:6]}")
    image = os.environ.get("E2E_AGENT_IMAGE", "memgraph-ha-agent:e2e")
    repository, _, tag = image.rpartition(":")
    api = config.new_client_from_config(config_file=kubeconfig)
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)), _request_timeout=10
    )
    values = {
        "replicaCount": 3,
        "sysctlInitContainer": {"enabled": os.environ.get("E2E_SYSCTL", "false") == "true"},
        "container": {"terminationGracePeriodSeconds": 180},
        "haAgent": {
            "enabled": True,
            "prestopBudgetSeconds": 120,
            "image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"},
        },
    }
    helm_cfg = helm.Config(kubeconfig_path=kubeconfig, namespace=namespace)
    try:
        helm_cfg.install(CHART, RELEASE, values, namespace=namespace, timeout=900, wait="watcher")
        yield {"core": core, "apps": apps, "ns": namespace, "image": image, "c": c}
    finally:
        if not os.environ.get("E2E_KEEP"):
            try:
                helm_cfg.uninstall(RELEASE)
            finally:
                core.delete_namespace(namespace, _request_timeout=30)
        helm_cfg.close()


def _one_main_two_ready_replicas(env: dict) -> object:
    c, core, ns = env["c"], env["core"], env["ns"]
    topo = c.topology_from_status(c.agent_status(core, ns, f"{RELEASE}-agent", 8080))
    if topo is None or len(topo.ready_replicas) != 2 or topo.main in topo.ready_replicas:
        return None
    roles = c.pod_roles(core, ns, SELECTOR)
    mains = [p for p, (role, ready) in roles.items() if role == "main" and ready]
    return topo if mains == [topo.main] else None


def test_rolling_restart_under_writes_loses_no_acknowledged_write(cluster: dict) -> None:
    c, core, apps, ns = cluster["c"], cluster["core"], cluster["apps"], cluster["ns"]
    before = c.wait_for("1 MAIN + 2 ready replicas", lambda: _one_main_two_ready_replicas(cluster), 600)
    uri = f"bolt://{RELEASE}.{ns}.svc:7687"
    c.run_script_pod(core, ns, "e2e-writer", cluster["image"], c.WRITER, [uri, "240"])
    c.wait_for(
        "writer running", lambda: core.read_namespaced_pod("e2e-writer", ns).status.phase == "Running", 120
    )
    c.restart_statefulset(apps, ns, RELEASE)
    c.wait_for("rollout complete", lambda: c.rollout_done(apps, ns, RELEASE), 900, every_s=5)
    after = c.wait_for(
        "1 MAIN + 2 ready replicas after the roll", lambda: _one_main_two_ready_replicas(cluster), 600
    )
    log = c.pod_output(core, ns, "e2e-writer", 600)
    acked = {int(line.split()[1]) for line in log.splitlines() if line.startswith("ACK ")}
    assert "DONE" in log and acked, log[-2000:]
    c.run_script_pod(core, ns, "e2e-reader", cluster["image"], c.READER, [uri])
    found_log = c.pod_output(core, ns, "e2e-reader", 300)
    found = {int(line.split()[1]) for line in found_log.splitlines() if line.startswith("HAS ")}
    lost = sorted(acked - found)
    assert lost == [], (
        f"{len(lost)} acknowledged writes lost (MAIN {before.main} -> {after.main}): {lost[:20]}"
    )

"""The machine's own kubectl against the API emulator, as a user would type it.

Every test runs with each kubectl found: `kubectl` on PATH (on this machine a dispatcher that picks the
client matching the server's minor version) and, beside it, `kubectl.1.32` when present. Skipped with
the reason when no kubectl is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from sim.kube.server import KubeEmulator
from tests.chart import render
from tests.support.clock import FakeClock
from tests.support.wait import wait_until

NS = render.NAMESPACE  # the chart's RoleBinding names its ServiceAccount in the release namespace


def _binaries() -> list[str]:
    found = shutil.which("kubectl")
    if found is None:
        return []
    pinned = Path(os.path.realpath(found)).parent / "kubectl.1.32"
    return [found] + ([str(pinned)] if pinned.exists() else [])


BINARIES = _binaries()
pytestmark = pytest.mark.skipif(not BINARIES, reason="kubectl is not installed on this machine")
Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(params=BINARIES, ids=lambda b: Path(b).name)
def kubectl(request: pytest.FixtureRequest, emu: KubeEmulator, tmp_path: Path) -> Kubectl:
    """Run kubectl with a fresh HOME and cache, as the admin (or as the identity of `kubeconfig=`)."""
    admin = emu.write_kubeconfig(tmp_path / "admin.kubeconfig", NS)
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "KUBECACHEDIR": str(tmp_path / "cache")}

    def run(*args: str, kubeconfig: Path = admin, check: bool = True, stdin: str | None = None) -> Any:
        proc = subprocess.run(
            [request.param, "--kubeconfig", str(kubeconfig), *args],
            env=env, input=stdin, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if check:
            assert proc.returncode == 0, f"kubectl {' '.join(args)} failed:\n{proc.stderr}"
        return proc

    run.popen = lambda *args: subprocess.Popen(  # type: ignore[attr-defined]
        [request.param, "--kubeconfig", str(admin), *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    return run


def chart_file(tmp_path: Path, values: dict[str, Any] | None = None) -> Path:
    docs = render.render(values or {"haAgent": {"enabled": True}, "replicaCount": 3})
    path = tmp_path / "memgraph.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return path


def test_apply_of_the_rendered_chart_creates_every_object_then_changes_none(kubectl, emu, tmp_path):
    manifest = chart_file(tmp_path)
    first = kubectl("apply", "-f", str(manifest))
    kinds = {(d["kind"], d["metadata"]["name"]) for d in yaml.safe_load_all(manifest.read_text())}
    assert first.stdout.count(" created") == len(kinds) and "Warning" not in first.stderr
    for kind, name in kinds:
        assert emu.get(kind, NS, name)["metadata"]["name"] == name
    assert emu.get("StatefulSet", NS, "memgraph")["spec"]["replicas"] == 3
    before = {kind: emu.get(kind, NS, name)["metadata"]["resourceVersion"] for kind, name in kinds}
    second = kubectl("apply", "-f", str(manifest)).stdout.splitlines()
    # the PDB's selector has patchStrategy "replace": kubectl always sends it (so says "configured", as on
    # a real cluster); the server finds nothing changed
    assert [line for line in second if not line.endswith(" unchanged")] == [
        "poddisruptionbudget.policy/memgraph configured"
    ]
    assert {kind: emu.get(kind, NS, name)["metadata"]["resourceVersion"] for kind, name in kinds} == before


def test_apply_validates_on_the_server_a_field_the_schema_does_not_have_fails(kubectl, tmp_path):
    docs = render.render({"haAgent": {"enabled": True}})
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    sts["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"tcpSocket": {"port": 7687}}
    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(sts))
    proc = kubectl("apply", "-f", str(path), check=False)
    assert proc.returncode == 1
    typo = "spec.template.spec.containers[0].livenesProbe"
    assert f'strict decoding error: unknown field "{typo}"' in proc.stderr


def test_apply_of_a_changed_chart_patches_the_statefulset_by_the_schemas_strategies(kubectl, emu, tmp_path):
    kubectl("apply", "-f", str(chart_file(tmp_path)))
    docs = render.render({"haAgent": {"enabled": True}, "replicaCount": 5})
    sts = next(d for d in docs if d["kind"] == "StatefulSet")
    tmp = next(v for v in sts["spec"]["template"]["spec"]["volumes"] if v["name"] == "agent-tmp")
    del tmp["emptyDir"]
    tmp["configMap"] = {"name": "memgraph-ha-hooks"}  # a changed volume source: kubectl sends $retainKeys
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(sts))
    out = kubectl("apply", "-f", str(changed))
    assert out.stdout.strip() == "statefulset.apps/memgraph configured" and out.stderr == ""
    stored = emu.get("StatefulSet", NS, "memgraph")["spec"]
    assert stored["replicas"] == 5
    assert next(v for v in stored["template"]["spec"]["volumes"] if v["name"] == "agent-tmp") == tmp


def test_get_with_short_names_lists_statefulset_services_and_configmap(kubectl, tmp_path):
    kubectl("apply", "-f", str(chart_file(tmp_path)))
    out = kubectl("get", "statefulset,svc,cm").stdout
    for name in ("statefulset.apps/memgraph", "service/memgraph-pods", "service/memgraph-read",
                 "configmap/memgraph-ha-hooks"):  # fmt: skip
        assert name in out
    short = kubectl("get", "sts,svc,cm,pdb,sa", "-o", "name").stdout.split()
    assert "poddisruptionbudget.policy/memgraph" in short and "serviceaccount/memgraph" in short


def test_get_lease_as_yaml_shows_the_stored_lease(kubectl, api):
    renewed = "2026-01-01T00:00:00.123456Z"
    spec = {"holderIdentity": "memgraph-1", "leaseDurationSeconds": 15, "renewTime": renewed}
    lease_api = client.CoordinationV1Api(api)
    lease_api.create_namespaced_lease(NS, {"metadata": {"name": "memgraph-ha"}, "spec": spec})
    doc = yaml.safe_load(kubectl("get", "lease", "-o", "yaml").stdout)
    assert doc["kind"] == "List" and len(doc["items"]) == 1
    lease = doc["items"][0]
    assert lease["kind"] == "Lease" and lease["spec"]["holderIdentity"] == "memgraph-1"
    assert lease["spec"]["renewTime"] == renewed


def test_get_events_with_a_field_selector_is_filtered_by_the_server(kubectl, api):
    core = client.CoreV1Api(api)
    for pod, reason in (("memgraph-0", "Switchover"), ("memgraph-1", "Demoted")):
        core.create_namespaced_event(
            NS,
            {
                "metadata": {"name": f"{pod}.1"},
                "involvedObject": {"kind": "Pod", "name": pod, "namespace": NS},
                "reason": reason,
                "message": f"{reason} {pod}",
                "type": "Normal",
            },
        )
    out = kubectl("get", "events", "--field-selector", "involvedObject.name=memgraph-0").stdout
    assert "Switchover" in out and "pod/memgraph-0" in out and "Demoted" not in out


def test_delete_pod_with_a_grace_period_waits_for_the_pod_to_go(kubectl, emu, clock: FakeClock):
    emu.create(pod("memgraph-0"))
    proc = kubectl.popen("delete", "pod", "memgraph-0", "--grace-period=7")  # type: ignore[attr-defined]
    try:
        marked = wait_until(lambda: _terminating(emu), timeout_s=20, what="pod marked for deletion")
        assert marked["metadata"]["deletionGracePeriodSeconds"] == 7
        time.sleep(0.3)
        assert proc.poll() is None, "kubectl must wait for the pod to be gone"
        clock.advance(7)
        out, err = proc.communicate(timeout=20)
        assert proc.returncode == 0, err
        assert 'pod "memgraph-0" deleted' in out
        assert emu.list("Pod", NS) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait(5)


def test_get_pods_with_the_role_label_as_a_column(kubectl, emu):
    for i, role in enumerate(("main", "replica")):
        emu.create(pod(f"memgraph-{i}", {"memgraph-ha.io/role": role}))
    lines = kubectl("get", "pods", "-L", "memgraph-ha.io/role").stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "ROLE"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert rows["memgraph-0"][-1] == "main" and rows["memgraph-1"][-1] == "replica"
    assert rows["memgraph-0"][1:3] == ["0/1", "Pending"]


def test_service_account_without_the_verb_gets_the_403_in_kubectl(kubectl, emu, tmp_path):
    kubectl("apply", "-f", str(chart_file(tmp_path)))
    emu.create(pod("memgraph-0"))
    token = tmp_path / "token"
    token.write_text(emu.issue_token(NS, "memgraph"))
    agent = emu.write_kubeconfig(tmp_path / "agent.kubeconfig", NS, token_file=token)
    assert "memgraph-0" in kubectl("get", "pods", kubeconfig=agent).stdout
    # the agent may delete pods since issue 17 (the re-seed); it may only read its StatefulSet
    proc = kubectl("delete", "statefulset", "memgraph", kubeconfig=agent, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        'Error from server (Forbidden): statefulsets.apps "memgraph" is forbidden: User '
        f'"system:serviceaccount:{NS}:memgraph" cannot delete resource "statefulsets" in API group "apps" '
        f'in the namespace "{NS}"'
    )


def pod(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": labels or {}},
        "spec": {"containers": [{"name": "memgraph", "image": "memgraph/memgraph:3.12.0"}]},
    }


def _terminating(emu: KubeEmulator) -> dict[str, Any] | None:
    pods = emu.list("Pod", NS)
    return pods[0] if pods and pods[0]["metadata"].get("deletionTimestamp") else None

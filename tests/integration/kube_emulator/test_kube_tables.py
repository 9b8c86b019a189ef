"""Server-side printing: `meta.k8s.io/v1` Tables for kubectl's human-readable output."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sim.kube.resources import by_kind
from sim.kube.tables import human_duration, table

from .conftest import NS, http

TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (150, "2m30s"),
        (600, "10m"),
        (3 * 3600 - 1, "179m"),
        (3 * 3600, "3h"),
        (3 * 3600 + 60, "3h1m"),
        (8 * 3600, "8h"),
        (47 * 3600, "47h"),
        (48 * 3600, "2d"),
        (49 * 3600, "2d1h"),
        (8 * 86400, "8d"),
        (800 * 86400, "2y70d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_read_as_the_apiservers_human_duration(seconds, text):
    assert human_duration(seconds) == text


def container_status(name: str, restarts: int) -> dict:
    return {"name": name, "ready": True, "restartCount": restarts, "image": "i", "imageID": ""}


def test_pod_list_as_table_has_the_printer_columns_and_row_metadata(emu):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "memgraph-0", "labels": {"memgraph-ha.io/role": "main"}},
        "spec": {
            "containers": [{"name": "memgraph", "image": "m"}],
            "initContainers": [{"name": "agent", "image": "a", "restartPolicy": "Always"}],
        },
        "status": {
            "phase": "Running",
            "podIP": "198.18.0.5",
            "containerStatuses": [container_status("memgraph", 2)],
            "initContainerStatuses": [container_status("agent", 1)],
        },
    }
    emu.create(pod, keep_status=True)
    code, doc, headers = http(emu, "GET", f"/api/v1/namespaces/{NS}/pods", headers={"Accept": TABLE})
    assert code == 200 and headers["Content-Type"] == "application/json;as=Table;v=v1;g=meta.k8s.io"
    assert doc["kind"] == "Table" and doc["apiVersion"] == "meta.k8s.io/v1"
    names = [(c["name"], c["priority"]) for c in doc["columnDefinitions"]]
    assert names == [
        ("Name", 0),
        ("Ready", 0),
        ("Status", 0),
        ("Restarts", 0),
        ("Age", 0),
        ("IP", 1),
        ("Node", 1),
        ("Nominated Node", 1),
        ("Readiness Gates", 1),
    ]
    (row,) = doc["rows"]
    assert row["cells"][:4] == ["memgraph-0", "2/2", "Running", "3"]
    assert row["cells"][5:] == ["198.18.0.5", "<none>", "<none>", "<none>"]
    assert row["object"]["kind"] == "PartialObjectMetadata"
    assert row["object"]["metadata"]["labels"] == {"memgraph-ha.io/role": "main"}


def test_single_object_get_as_table_and_terminating_pod_status(emu):
    emu.create(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        }
    )
    emu.delete("Pod", NS, "p", grace=30)
    code, doc, _ = http(emu, "GET", f"/api/v1/namespaces/{NS}/pods/p", headers={"Accept": TABLE})
    assert code == 200 and doc["rows"][0]["cells"][2] == "Terminating"


def test_service_lease_event_and_rolebinding_cells():
    now = datetime(2026, 1, 1, tzinfo=UTC)
    created = (now - timedelta(seconds=90)).strftime("%Y-%m-%dT%H:%M:%SZ")
    svc = {
        "metadata": {"name": "memgraph", "creationTimestamp": created},
        "spec": {
            "type": "ClusterIP",
            "clusterIP": "None",
            "ports": [{"port": 7687, "protocol": "TCP"}, {"port": 10000, "protocol": "TCP"}],
        },
    }
    assert table(by_kind("Service"), [svc], "1", now)["rows"][0]["cells"][:6] == [
        "memgraph",
        "ClusterIP",
        "None",
        "<none>",
        "7687/TCP,10000/TCP",
        "90s",
    ]
    lease = {
        "metadata": {"name": "memgraph-ha", "creationTimestamp": created},
        "spec": {"holderIdentity": "memgraph-1"},
    }
    assert table(by_kind("Lease"), [lease], "1", now)["rows"][0]["cells"] == [
        "memgraph-ha",
        "memgraph-1",
        "90s",
    ]
    event = {
        "metadata": {"name": "e"},
        "type": "Normal",
        "reason": "Switchover",
        "message": "to memgraph-1",
        "involvedObject": {"kind": "Pod", "name": "memgraph-0"},
        "lastTimestamp": created,
    }
    cells = table(by_kind("Event"), [event], "1", now)["rows"][0]["cells"]
    assert [cells[i] for i in (0, 1, 2, 3, 6)] == [
        "90s",
        "Normal",
        "Switchover",
        "pod/memgraph-0",
        "to memgraph-1",
    ]
    binding = {
        "metadata": {"name": "b", "creationTimestamp": created},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "memgraph", "namespace": "db"}],
    }
    assert table(by_kind("RoleBinding"), [binding], "1", now)["rows"][0]["cells"] == [
        "b",
        "Role/r",
        "90s",
        "",
        "",
        "db/memgraph",
    ]

"""Lease compare-and-swap (reference bolt-and-kube-emulation.md 3.3), through the real client."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.leaderelection.leaderelectionrecord import LeaderElectionRecord
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

from .conftest import NS, status_of

MICRO = "2025-10-19T12:34:56.123456Z"


def lease(name: str = "memgraph-ha", holder: str = "memgraph-0", renew: Any = MICRO) -> client.V1Lease:
    spec = client.V1LeaseSpec(
        holder_identity=holder, lease_duration_seconds=15, acquire_time=renew, renew_time=renew
    )
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name, annotations={"memgraph-ha.io/main": ""}), spec=spec
    )


def test_replace_with_read_resource_version_succeeds(coord):
    coord.create_namespaced_lease(NS, lease())
    current = coord.read_namespaced_lease("memgraph-ha", NS)
    current.spec.holder_identity = "memgraph-1"
    updated = coord.replace_namespaced_lease("memgraph-ha", NS, current)
    assert updated.spec.holder_identity == "memgraph-1"
    assert updated.metadata.resource_version != current.metadata.resource_version


def test_replace_with_stale_resource_version_is_409_conflict_status(coord):
    coord.create_namespaced_lease(NS, lease())
    stale = coord.read_namespaced_lease("memgraph-ha", NS)
    fresh = coord.read_namespaced_lease("memgraph-ha", NS)
    fresh.spec.holder_identity = "memgraph-1"
    coord.replace_namespaced_lease("memgraph-ha", NS, fresh)
    stale.spec.holder_identity = "memgraph-2"
    with pytest.raises(client.ApiException) as exc:
        coord.replace_namespaced_lease("memgraph-ha", NS, stale)
    body = status_of(exc)
    assert exc.value.status == 409
    assert body["kind"] == "Status" and body["reason"] == "Conflict" and body["code"] == 409
    assert body["message"] == (
        'Operation cannot be fulfilled on leases.coordination.k8s.io "memgraph-ha": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert body["details"] == {"name": "memgraph-ha", "group": "coordination.k8s.io", "kind": "leases"}
    assert coord.read_namespaced_lease("memgraph-ha", NS).spec.holder_identity == "memgraph-1"


def test_replace_without_resource_version_is_422(coord):
    coord.create_namespaced_lease(NS, lease())
    with pytest.raises(client.ApiException) as exc:
        coord.replace_namespaced_lease("memgraph-ha", NS, lease(holder="memgraph-1"))
    body = status_of(exc)
    assert exc.value.status == 422 and body["reason"] == "Invalid"
    assert "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update" in body["message"]


def test_get_missing_lease_is_404_status_with_code(coord):
    with pytest.raises(client.ApiException) as exc:
        coord.read_namespaced_lease("nope", NS)
    body = status_of(exc)
    assert exc.value.status == 404 and body["code"] == 404 and body["reason"] == "NotFound"
    assert body["message"] == 'leases.coordination.k8s.io "nope" not found'
    assert body["details"]["name"] == "nope"


def test_put_of_missing_lease_creates_it(coord):
    created = coord.replace_namespaced_lease("memgraph-ha", NS, lease())
    assert created.spec.holder_identity == "memgraph-0"
    assert coord.read_namespaced_lease("memgraph-ha", NS).metadata.uid == created.metadata.uid


def test_concurrent_replaces_from_one_read_let_exactly_one_win(coord):
    coord.create_namespaced_lease(NS, lease())
    base = coord.read_namespaced_lease("memgraph-ha", NS)
    results: list[int] = []
    barrier = threading.Barrier(4)

    def contend(holder: str) -> None:
        body: Any = client.V1Lease.from_dict(base.to_dict())
        body.spec.holder_identity = holder
        barrier.wait(timeout=5)
        try:
            coord.replace_namespaced_lease("memgraph-ha", NS, body)
            results.append(200)
        except client.ApiException as exc:
            results.append(exc.status)

    # every contender writes a holder different from the stored one, so no write is a no-op (which would
    # succeed without a new resourceVersion, as on a real apiserver)
    threads = [threading.Thread(target=contend, args=(f"memgraph-{i}",)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == [200, 409, 409, 409]


def test_microtime_is_kept_in_z_form_and_a_timestamp_without_microseconds_is_rejected(coord):
    created = coord.create_namespaced_lease(NS, lease())
    auth = coord.api_client.configuration.api_key["BearerToken"]
    raw = coord.api_client.call_api(
        "GET",
        f"{coord.api_client.configuration.host}/apis/coordination.k8s.io/v1/namespaces/{NS}/leases/memgraph-ha",
        {"Accept": "application/json", "Authorization": auth},
    ).read()
    assert json.loads(raw)["spec"]["renewTime"] == MICRO
    assert created.spec.renew_time == datetime(2025, 10, 19, 12, 34, 56, 123456, tzinfo=UTC)
    offset_form = coord.create_namespaced_lease(NS, lease("b", renew="2025-10-19T14:34:56.000001+02:00"))
    assert offset_form.spec.renew_time == datetime(2025, 10, 19, 12, 34, 56, 1, tzinfo=UTC)
    with pytest.raises(client.ApiException) as exc:  # isoformat() drops the fraction when it is zero
        coord.create_namespaced_lease(NS, lease("c", renew=datetime(2025, 10, 19, 12, 0, 0, tzinfo=UTC)))
    assert exc.value.status == 400


def test_client_lease_lock_cannot_update_from_a_stale_read(api):
    a, b = LeaseLock("memgraph-ha", NS, "memgraph-0"), LeaseLock("memgraph-ha", NS, "memgraph-1")
    a.api_instance = b.api_instance = client.CoordinationV1Api(api)
    now = str(datetime.now().replace(microsecond=123456))  # leaderelection.py passes str(datetime)
    record_a = LeaderElectionRecord("memgraph-0", "15", now, now)
    assert a.create("memgraph-ha", NS, record_a) is True
    assert b.create("memgraph-ha", NS, LeaderElectionRecord("memgraph-1", "15", now, now)) is False
    assert a.get("memgraph-ha", NS)[0] and b.get("memgraph-ha", NS)[0]
    renewed = str(datetime.now().replace(microsecond=654321))
    assert a.update("memgraph-ha", NS, LeaderElectionRecord("memgraph-0", "15", now, renewed)) is True
    assert b.update("memgraph-ha", NS, LeaderElectionRecord("memgraph-1", "15", now, now)) is False
    ok, record = b.get("memgraph-ha", NS)
    assert ok and record.holder_identity == "memgraph-0"

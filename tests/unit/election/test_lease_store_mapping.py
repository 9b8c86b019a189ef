"""KubeLeaseStore's mapping: MicroTime on the wire and HTTP status -> typed error."""

from __future__ import annotations

import datetime as dt

import pytest
from kubernetes import client

from coordinator.edge.lease_store import (
    Conflict,
    KubeLeaseStore,
    LeaseRecord,
    MicroTime,
    NotFound,
    PermanentError,
    TransientError,
    _classify,
    format_micro_time,
)


def test_micro_time_keeps_six_digits_and_z_even_at_zero_microseconds():
    whole = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    assert format_micro_time(whole) == "2026-01-02T03:04:05.000000Z"
    assert MicroTime.of(whole).isoformat() == "2026-01-02T03:04:05.000000Z"
    cet = dt.datetime(2026, 1, 2, 4, 4, 5, 7, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert format_micro_time(cet) == "2026-01-02T03:04:05.000007Z"


@pytest.mark.parametrize(("status", "kind"), [
    (404, NotFound), (409, Conflict), (403, TransientError), (429, TransientError), (503, TransientError),
    (500, TransientError), (0, TransientError), (422, PermanentError), (400, PermanentError)])
def test_http_status_maps_to_typed_error(status, kind):
    err = _classify("replace", "memgraph-ha", status, "x")
    assert type(err) is kind and err.status == status


def test_replace_body_carries_resource_version_annotations_and_microtime():
    store = KubeLeaseStore(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")), "ns", "l", 0.2)
    try:
        t = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        rec = LeaseRecord(name="l", holder="memgraph-1", lease_duration_s=15, acquire_time=t, renew_time=t,
                          transitions=3, annotations={"a": "1"}, resource_version="42")
        body = store._client.sanitize_for_serialization(store._to_body(rec, with_rv=True))
        assert body["metadata"] == {"name": "l", "namespace": "ns", "annotations": {"a": "1"},
                                    "resourceVersion": "42"}
        assert body["spec"] == {"holderIdentity": "memgraph-1", "leaseDurationSeconds": 15,
                                "leaseTransitions": 3, "acquireTime": "2026-01-01T00:00:00.000000Z",
                                "renewTime": "2026-01-01T00:00:00.000000Z"}
        with pytest.raises(ValueError, match="resourceVersion"):
            store.replace(rec.evolve(resource_version=""))
    finally:
        store.close()


def test_connection_refused_is_a_transient_error():
    store = KubeLeaseStore(client.ApiClient(client.Configuration(host="http://127.0.0.1:1")), "ns", "l", 0.2)
    try:
        with pytest.raises(TransientError) as info:
            store.get()
        assert info.value.status == 0 and store.calls["read"] == 1
    finally:
        store.close()

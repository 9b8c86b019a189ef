"""Field validation of written objects (`fieldValidation` Strict/Warn/Ignore) and decode errors."""

from __future__ import annotations

import pytest

from .conftest import NS, http

CM = f"/api/v1/namespaces/{NS}/configmaps"


def configmap(name: str, **extra: object) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}, **extra}


def test_strict_rejects_unknown_fields_with_their_paths(emu):
    body = configmap("strict", extra=True)
    body["metadata"]["bogus"] = 1
    code, status, _ = http(emu, "POST", f"{CM}?fieldValidation=Strict", body)
    assert code == 400 and status["reason"] == "BadRequest"
    assert status["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
        'unknown field "metadata.bogus", unknown field "extra"'  # in the order of the document
    )
    assert http(emu, "GET", f"{CM}/strict")[0] == 404


def test_warn_is_the_default_drops_unknown_fields_and_says_so_in_warning_headers(emu):
    code, obj, headers = http(emu, "POST", CM, configmap("warned", extra=True))
    assert code == 201 and "extra" not in obj
    assert headers.get_all("Warning") == ['299 - "unknown field \\"extra\\""']
    assert "extra" not in http(emu, "GET", f"{CM}/warned")[1]


def test_ignore_drops_unknown_fields_silently(emu):
    code, obj, headers = http(emu, "POST", f"{CM}?fieldValidation=Ignore", configmap("quiet", extra=True))
    assert code == 201 and "extra" not in obj and headers.get_all("Warning") is None


def test_nested_unknown_field_in_a_list_item_is_named_with_its_index(emu):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "portz": [1]}]},
    }
    code, status, _ = http(emu, "POST", f"/api/v1/namespaces/{NS}/pods?fieldValidation=Strict", pod)
    assert code == 400 and status["message"].endswith('unknown field "spec.containers[0].portz"')


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore"])
def test_a_value_of_the_wrong_type_is_rejected_whatever_the_field_validation(emu, mode):
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": "7687"}]}]},
    }
    code, status, _ = http(emu, "POST", f"/api/v1/namespaces/{NS}/pods?fieldValidation={mode}", pod)
    assert code == 400
    assert status["message"] == (
        'Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal string into Go struct field '
        "ContainerPort.spec.containers.ports.containerPort of type int32"
    )


def test_int_or_string_and_quantity_take_both_forms(emu):
    svc = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"name": "b", "port": 81, "targetPort": 81}]},
    }
    services = f"/api/v1/namespaces/{NS}/services"
    assert http(emu, "POST", f"{services}?fieldValidation=Strict", svc)[0] == 201
    bad = {**svc, "metadata": {"name": "t"}, "spec": {"ports": [{"port": 1, "targetPort": True}]}}
    code, status, _ = http(emu, "POST", services, bad)
    assert code == 400 and "IntOrString" in status["message"]


def test_duplicate_fields_fail_strict_and_warn_otherwise(emu):
    raw = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"dup","name":"dup"},"data":{}}'
    code, status, _ = http(emu, "POST", f"{CM}?fieldValidation=Strict", raw)
    assert code == 400
    assert status["message"].endswith('strict decoding error: duplicate field "metadata.name"')
    code, _, headers = http(emu, "POST", CM, raw)
    assert code == 201 and headers.get_all("Warning") == ['299 - "duplicate field \\"metadata.name\\""']


def test_patch_introducing_an_unknown_field_follows_the_directive(emu):
    assert http(emu, "POST", CM, configmap("p"))[0] == 201
    merge = {"Content-Type": "application/merge-patch+json"}
    code, status, _ = http(emu, "PATCH", f"{CM}/p?fieldValidation=Strict", {"spec": {"x": 1}}, headers=merge)
    assert code == 400 and status["message"].endswith('unknown field "spec"')
    code, obj, headers = http(emu, "PATCH", f"{CM}/p", {"spec": {"x": 1}, "data": {"b": "2"}}, headers=merge)
    assert code == 200 and "spec" not in obj and obj["data"] == {"a": "1", "b": "2"}
    assert headers.get_all("Warning") == ['299 - "unknown field \\"spec\\""']


def test_unsupported_field_validation_value_is_422_on_the_options(emu):
    code, status, _ = http(emu, "POST", f"{CM}?fieldValidation=Loud", configmap("x"))
    assert code == 422 and status["details"]["kind"] == "CreateOptions"


def test_secret_data_must_be_base64_and_time_must_be_rfc3339(emu):
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"k": "not base64!"}}
    assert http(emu, "POST", f"/api/v1/namespaces/{NS}/secrets", secret)[0] == 400
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": "e"},
        "involvedObject": {"kind": "Pod", "name": "p", "namespace": NS},
        "lastTimestamp": "yesterday",
    }
    code, status, _ = http(emu, "POST", f"/api/v1/namespaces/{NS}/events", event)
    assert code == 400 and 'parsing time "yesterday"' in status["message"]

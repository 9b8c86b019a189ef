"""docs/openapi.yaml describes exactly the routes the app serves, and is internally consistent."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import yaml

from agent.api import create_app
from tests.unit.api.conftest import FakeServices

DOC = Path(__file__).resolve().parents[3] / "docs" / "openapi.yaml"
AUTOMATIC = {"HEAD", "OPTIONS"}


def load() -> dict:
    return yaml.safe_load(DOC.read_text())


def test_document_routes_equal_app_routes():
    app = create_app(FakeServices())
    served = {(rule.rule, m) for rule in app.url_map.iter_rules() if rule.endpoint != "static"
              for m in (rule.methods or set()) - AUTOMATIC}
    documented = {(path, method.upper()) for path, ops in load()["paths"].items() for method in ops}
    assert documented == served


def _refs(node, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                found.append(value)
            else:
                _refs(value, found)
    elif isinstance(node, list):
        for item in node:
            _refs(item, found)
    return found


def test_every_reference_resolves():
    doc = load()
    refs = _refs(doc, [])
    assert refs
    for ref in refs:
        node = doc
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, f"unresolved {ref}"
            node = node[part]


def test_every_operation_documents_responses_and_errors_use_the_error_schema():
    doc = load()
    assert doc["openapi"].startswith("3.1.")
    error_ref = "#/components/schemas/Error"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method} {path} has no responses"
            assert op.get("operationId"), f"{method} {path} has no operationId"
            for code, resp in op["responses"].items():
                if "$ref" in resp:
                    resp = doc["components"]["responses"][resp["$ref"].rsplit("/", 1)[1]]
                if code in {"400", "401", "403", "404", "405", "413", "500", "502"}:
                    assert _refs(resp, []) == [error_ref], f"{method} {path} {code}"


def test_operator_routes_declare_bearer_security():
    paths = load()["paths"]
    for path in ("/api/v1/switchover", "/api/v1/pause", "/api/v1/resume"):
        assert paths[path]["post"]["security"] == [{"bearerToken": []}]
    assert "security" not in paths["/api/v1/prestop"]["post"]


def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    doc = load()
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]})


def _leader_documents() -> list[dict]:
    from coordinator.core.planner import PlannerMemory, decide
    from coordinator.core.status import build_status
    from tests.unit.planner.builders import POLICY, down, healthy, main, rec, replica, row, snap

    docs = []
    for s, record in [
        (healthy(), rec()),
        (snap({0: main(row(1, "strict_sync", "invalid", behind=-3), row(2)), 1: down(), 2: replica()},
              unreachable={1: 3.0}), rec()),
        (snap({0: down(), 1: replica(), 2: replica()}, unreachable={0: 9.0}), rec()),
    ]:
        decision = decide(s, record, POLICY, PlannerMemory(leader="memgraph-0"))
        docs.append(build_status(s, record, decision, "memgraph-0"))
    from tests.unit.test_status import reseed_document

    docs.append(reseed_document())  # pods[].data with archives, cluster.reseed
    return docs


def test_the_status_documents_the_code_builds_match_the_documented_schema():
    validator = _validator("ClusterStatus")
    for doc in _leader_documents():
        errors = [e.message for e in validator.iter_errors({**doc, "answered_by": "memgraph-0"})]
        assert not errors, errors
    from tests.unit.test_status import _doc_example

    example = _doc_example()  # docs/api.md's example, with the fields the agent adds
    assert not [e.message for e in validator.iter_errors(example)]
    # a schema that cannot fail proves nothing: a wrong type is caught
    bad = {**_leader_documents()[0], "answered_by": "memgraph-0", "schema_version": "1"}
    assert list(validator.iter_errors(bad))


def test_the_archives_and_the_reseed_in_the_status_are_checked_by_the_schema():
    validator = _validator("ClusterStatus")
    doc = {**_leader_documents()[-1], "answered_by": "memgraph-0"}
    assert doc["pods"][2]["data"]["archives"] and doc["cluster"]["reseed"]
    assert not list(validator.iter_errors(doc))
    pods = [dict(p) for p in doc["pods"]]
    pods[2]["data"] = {**pods[2]["data"], "archives": [{"name": "a", "bytes": "4096"}]}
    assert list(validator.iter_errors({**doc, "pods": pods}))  # a size as a string, no generation
    step = {**doc["cluster"], "reseed": {**doc["cluster"]["reseed"], "step": "deleting"}}
    assert list(validator.iter_errors({**doc, "cluster": step}))  # not a ReseedStep

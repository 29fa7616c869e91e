"""The OpenAPI document (ingress/openapi.py) as a document: valid OpenAPI 3.1,
every reference resolves, every schema is valid JSON Schema, and the replies
built from the structs it is generated from match their components. Whether
the live server keeps to it is tests/fuzz/test_admin_api_schemathesis.py's job."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
import msgspec
import pytest
from schemathesis.specs.openapi.definitions import OPENAPI_31

from ingress.errors import error_body
from ingress.health import Alive, Readiness
from ingress.openapi import build_document

DOCUMENT: dict[str, Any] = msgspec.json.decode(msgspec.json.encode(build_document()))
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        if isinstance(value.get("$ref"), str):
            yield value["$ref"]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _resolve(pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = DOCUMENT
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator for one component: a root that holds the components, so
    their `#/components/...` references resolve as in the document."""
    root = {"$ref": f"#/components/schemas/{name}", "components": DOCUMENT["components"]}
    return jsonschema.Draft202012Validator(root)


def test_document_is_valid_openapi_3_1() -> None:
    errors = [
        error.message for error in jsonschema.Draft202012Validator(OPENAPI_31).iter_errors(DOCUMENT)
    ]
    assert DOCUMENT["openapi"].startswith("3.1")
    assert errors == []


def test_every_reference_resolves() -> None:
    refs = set(_refs(DOCUMENT))
    assert refs, "the document uses components"
    for ref in sorted(refs):
        assert _resolve(ref) is not None, ref


def test_every_component_schema_is_referenced() -> None:
    used = {ref.rsplit("/", 1)[1] for ref in _refs(DOCUMENT) if "/schemas/" in ref}
    assert set(SCHEMAS) == used, set(SCHEMAS) ^ used


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_every_component_is_valid_json_schema(name: str) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])


def test_every_operation_answers_with_documented_statuses() -> None:
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert statuses, f"{method} {path}"
            assert all(s == "default" or s.isdigit() for s in statuses), (path, statuses)
            assert {"414", "431", "501"} <= statuses, f"{method} {path}: server limits"


def test_error_bodies_match_the_error_envelope() -> None:
    validator = _validator("ErrorEnvelope")
    validator.validate(msgspec.json.decode(error_body("bad", "worse")))
    validator.validate(msgspec.json.decode(error_body("busy", cause="redis_memory")))
    assert msgspec.json.decode(error_body("bad")) == {"errors": [{"message": "bad"}]}
    assert msgspec.json.decode(error_body("busy", cause="backlog")) == {
        "errors": [{"message": "busy", "cause": "backlog"}]
    }
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({"errors": []})


def test_probe_replies_match_their_components() -> None:
    _validator("Alive").validate(msgspec.to_builtins(Alive(status="ok")))
    ready = msgspec.to_builtins(Readiness(redis=True, ray=False, history=True))
    assert ready == {"redis": True, "ray": False, "history": True}
    _validator("Readiness").validate(ready)
    with pytest.raises(jsonschema.ValidationError):
        _validator("Readiness").validate({"redis": True, "ray": True})

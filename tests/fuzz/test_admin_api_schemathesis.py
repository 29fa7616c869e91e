"""The HTTP API against its own OpenAPI document (`GET /api/openapi.json`), with
schemathesis over real HTTP (gunicorn, Ray, Redis): every operation gets
examples, coverage cases and fuzzed requests, valid and invalid, with the
bearer token, and every reply must

- not be a 5xx,
- have a status the document lists for the operation,
- match the document's schema for that status (the error envelope on errors),
- carry a Content-Type the document lists.

Then sequences of calls follow the document's links (create ->
get/update/revision/destroy/execute, execute -> executions), with the same
checks: 20 sequences, a campaign's share, or RAYHOOK_FUZZ_STATEFUL=N (more)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import falcon
import pytest
import schemathesis
from hypothesis import settings
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from engine.settings import Settings
from ingress.app import create_app
from ingress.openapi import OPENAPI_PATH, build_document
from tests.conftest import delete_namespace, kill_actors
from tests.e2e.conftest import Server, start_server
from tests.fuzz.conftest import examples

#: Stateful sequences asked for with RAYHOOK_FUZZ_STATEFUL=N (never fewer than 20).
STATEFUL_SEQUENCES = int(os.environ.get("RAYHOOK_FUZZ_STATEFUL") or 0)
#: Node types that reach other hosts. The fuzzer must never define or test one:
#: this machine's only allowed traffic is to itself.
REACHING_OUT = ('"request"', '"mailer"', '"sql"')


@pytest.fixture(scope="module")
def live(
    ray_address: str, ray_driver: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own (what `make_server` starts, for the whole
    module): the fuzzer destroys and edits whatever version ids it hits."""
    server = start_server(tmp_path_factory.mktemp("schemathesis"))
    yield server
    server.stop()
    kill_actors(server.namespace)
    delete_namespace(server.namespace)


def for_generation(document: dict[str, Any]) -> dict[str, Any]:
    """The document with the node recursion (`branches` -> nodes -> `branches`)
    cut after one level: schemathesis 4.32 fails on it while drawing invalid
    bodies ("Cannot generate an array with 1 demanded elements"). Deeper nodes
    are then drawn as any object, which the server must answer just as well."""
    node = document["components"]["schemas"]["NodeDefinition"]
    node["properties"]["branches"]["additionalProperties"]["items"] = {"type": "object"}
    return document


# Built in-process, so pytest can make one test per operation at collection
# (its lazy `from_fixture` loader does not run under pytest 9);
# `test_served_document_is_the_built_one` ties it to what the server serves.
schema = schemathesis.openapi.from_dict(for_generation(build_document()))


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    response_schema_conformance,
    content_type_conformance,
]


@schema.parametrize()
@settings(max_examples=examples(10, cost=300))
def test_every_operation_conforms_to_the_openapi_document(case: Case, live: Server) -> None:
    if reaches_out(case):
        return
    case.call_and_validate(
        base_url=live.url,
        headers={"Authorization": f"Bearer {live.token}"},
        checks=CHECKS,
        timeout=60,
    )


def reaches_out(case: Case) -> bool:
    body = json.dumps(case.body, default=str) if case.body is not None else ""
    return any(node_type in body for node_type in REACHING_OUT)


def test_served_document_is_the_built_one(live: Server) -> None:
    reply = live.http.get(OPENAPI_PATH)  # no token needed
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "application/json"
    assert reply.json() == build_document()


def test_stateful_sequences_follow_the_documents_links(live: Server) -> None:
    """Sequences along the links (create -> get/update/revision/execute/destroy,
    execute -> executions), with the same four checks."""
    auth = {"Authorization": f"Bearer {live.token}"}

    class Sequences(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": live.url, "headers": auth, "timeout": 60}

        def call(self, case: Case, **kwargs: Any) -> Response:
            if reaches_out(case):  # sent without the token: refused, never run
                kwargs["headers"] = {}
            return case.call(**kwargs)

        def validate_response(self, response: Response, case: Case, **kwargs: Any) -> None:
            case.validate_response(response, checks=CHECKS, headers=auth)

    sequences = max(examples(20, cost=300), STATEFUL_SEQUENCES)
    Sequences.run(settings=settings(max_examples=sequences, stateful_step_count=6))


def test_document_lists_every_route_the_app_serves() -> None:
    """A route added without documentation fails here (the app is only built,
    never started, so this needs no Redis or Ray)."""
    app = create_app(Settings(admin_token="x"))
    served = set(_templates(app._router._roots))  # falcon's compiled router tree
    assert served == set(build_document()["paths"]), served ^ set(build_document()["paths"])


def _templates(nodes: list[falcon.routing.compiled.CompiledRouterNode]) -> list[str]:
    found: list[str] = []
    for node in nodes:
        if node.resource is not None and node.uri_template is not None:
            found.append(node.uri_template)
        found.extend(_templates(node.children))
    return found

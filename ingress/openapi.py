"""The OpenAPI 3.1 document of rayhook's HTTP API, served at `GET /api/openapi.json`
(no token needed to read it).

It describes the admin API (SPEC §6), the webhook endpoint (SPEC §2) and the
probes. What is written here by hand: the paths, their parameters, statuses,
descriptions and links. The component schemas are generated from the msgspec
structs the HTTP edge decodes and encodes (`_STRUCTS`: definitions, versions,
executions, jobs, submissions, the error envelope, the probes' replies), so
they cannot drift from the code.

A few replies are still plain dicts built in `ingress/admin/` (`reply(resp,
{...})`) and keep a small hand schema here: `ListMeta` (ingress/admin/envelope.py
and executions.py), `ExecutionRef`/`ExecutionWithJobs` (workflows:execute,
executions:replay and executions:get) and the inline one-field replies
(`count`, `paths`, a node test's job). Giving them structs belongs with the
module that builds them.

Every status the resources can answer must be listed (tests/fuzz checks the
document against a live server with schemathesis; tests/ingress/test_openapi.py
checks it is a valid OpenAPI 3.1 document whose references all resolve)."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi
import msgspec

from engine.definition import VersionPatch, WorkflowDefinition, WorkflowVersion
from engine.records import Execution, Job
from engine.status import NAMES
from ingress.admin.executions import ExecutionSummary
from ingress.admin.jobs import NodeTest, Submission
from ingress.admin.supervisors import SupervisorView
from ingress.errors import ErrorEnvelope
from ingress.health import Alive, Readiness

OPENAPI_PATH = "/api/openapi.json"

_REF = "#/components/schemas/{name}"
_JSON = "application/json"
_YAML = "application/yaml"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _data(schema: dict[str, Any], *, meta: bool = False) -> dict[str, Any]:
    """The admin API's envelope: `{"data": ...}` (with `meta` on lists)."""
    properties: dict[str, Any] = {"data": schema}
    if meta:
        properties["meta"] = _ref("ListMeta")
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _with_warnings(schema: dict[str, Any]) -> dict[str, Any]:
    """An envelope that also carries `warnings`: what is allowed but risky."""
    properties = {
        **schema["properties"],
        "warnings": {"type": "array", "items": {"type": "string"}},
    }
    return {**schema, "properties": properties, "required": [*schema["required"], "warnings"]}


def _ok(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}, **extra}


# -- errors -------------------------------------------------------------------------

_ERROR_RESPONSES: dict[int, tuple[str, str]] = {
    # status: (component name, description)
    400: (
        "BadRequest",
        "Invalid input: a missing or malformed parameter or body; one "
        "`errors[]` entry per problem (definition errors name the node and field).",
    ),
    401: ("Unauthorized", "Missing or wrong credentials."),
    403: (
        "Forbidden",
        "The caller may not do this (a submission from someone who is not an "
        "assignee of the manual node).",
    ),
    404: ("NotFound", "No such resource (or, for a webhook, no enabled version)."),
    405: ("MethodNotAllowed", "Webhooks are POSTed."),
    408: (
        "RequestTimeout",
        "A sync workflow did not finish within `options.timeout`; "
        "its execution is ABORTED with reason `timeout`.",
    ),
    409: ("Conflict", "The workflow changed while the request ran; retry."),
    413: ("ContentTooLarge", "The body is larger than RAYHOOK_MAX_BODY_BYTES (1 MiB)."),
    415: (
        "UnsupportedMediaType",
        "A body with a Content-Type other than "
        "`application/json` or `application/*+json` (charset utf-8 if any).",
    ),
    500: (
        "WorkflowFailed",
        "A sync workflow ended in a status other than RESOLVED "
        "without a Response node; the message names the status, never a stack trace.",
    ),
    503: (
        "ServiceUnavailable",
        "Not served now; nothing was acknowledged. Retry after `Retry-After` seconds. The "
        "error names its `cause`: `redis_memory` (Redis above its high watermark), "
        "`backlog` (the workflow's backlog is full), `store_unavailable` (Redis does not "
        "answer), `executors_unavailable` (Ray), `workflow_changing`, "
        "`history_unavailable` (the history database does not answer).",
    ),
}


def _error_response(status: int) -> dict[str, Any]:
    _name, description = _ERROR_RESPONSES[status]
    response: dict[str, Any] = {
        "description": description,
        "content": {_JSON: {"schema": _ref("ErrorEnvelope")}},
    }
    if status == 400:  # malformed HTTP framing, refused by gunicorn before the app
        response["description"] += (
            " Malformed HTTP framing (an invalid Content-Length, a Transfer-Encoding that "
            "does not end with chunked) is refused by the HTTP server in plain text."
        )
        response["content"]["text/plain"] = {"schema": {"type": "string"}}
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {
                "description": 'The challenge: `Bearer realm="rayhook-admin"` (admin API), '
                '`Basic realm="rayhook"` or `Signature realm="rayhook"` (webhooks).',
                "schema": {"type": "string"},
            }
        }
    if status == 405:
        response["headers"] = {
            "Allow": {"description": "Always `POST`.", "schema": {"type": "string"}}
        }
    if status == 503:
        response["headers"] = {
            "Retry-After": {
                "description": "Seconds to wait before retrying.",
                "schema": {"type": "string"},
            }
        }
    return response


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(status): {"$ref": f"#/components/responses/{_ERROR_RESPONSES[status][0]}"}
        for status in statuses
    }


# -- parameters ---------------------------------------------------------------------


def _filter_by_tk(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "filterByTk",
        "in": "query",
        "required": True,
        "description": description,
        "schema": schema,
    }


_VERSION_ID = _filter_by_tk("The workflow version id.", {"type": "integer"})
_EXECUTION_ID = _filter_by_tk("The execution id.", {"type": "string", "minLength": 1})
_JOB_ID = _filter_by_tk("The job id (`<executionId>-<n>`).", {"type": "string", "minLength": 1})

_PAGE = {
    "name": "page",
    "in": "query",
    "description": "1-based page number.",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1},
}
_PAGE_SIZE = {
    "name": "pageSize",
    "in": "query",
    "description": "Rows per page.",
    "schema": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 20},
}


def _filter(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "filter",
        "in": "query",
        "style": "deepObject",
        "explode": True,
        "description": "`filter[field]=value`; unknown fields are ignored.",
        "schema": {"type": "object", "properties": properties},
    }


_STATUS_NUMBERS = [status for status in NAMES if status is not None]
_STATUS = {
    "anyOf": [
        {"type": "integer", "enum": _STATUS_NUMBERS},
        {"type": "string", "enum": ["null", "queueing"]},
    ]
}
_EXECUTION_FILTER = {
    "name": "filter",
    "in": "query",
    "style": "deepObject",
    "explode": True,
    "description": "SPEC §9: `filter[workflowKey]`, `filter[status]` (repeatable), "
    "`filter[createdAt][$gte]`/`[$lte]` (ISO 8601), `filter[exhausted]`, and any trigger "
    "context path, `filter[context.body.data.object.id]=pi_123` (the value's text form). "
    "An unknown filter is a 400 naming it.",
    "schema": {
        "type": "object",
        "properties": {
            "workflowKey": {"type": "string"},
            "key": {"type": "string", "description": "Same as workflowKey."},
            "status": {"anyOf": [_STATUS, {"type": "array", "items": _STATUS}]},
            "createdAt": {
                "type": "object",
                "properties": {
                    "$gte": {"type": "string", "format": "date-time"},
                    "$lte": {"type": "string", "format": "date-time"},
                },
                "additionalProperties": False,
            },
            "exhausted": {"type": "string", "enum": ["true", "false"]},
        },
        "patternProperties": {"^context\\.(headers|query|body)\\.[a-z]+$": {"type": "string"}},
        "additionalProperties": False,
    },
}
_CURSOR = {
    "name": "cursor",
    "in": "query",
    "description": "The `meta.nextCursor` of the previous page: the next page of older "
    "executions, stable while new ones arrive (instead of `page`).",
    "schema": {"type": "string", "pattern": "^[0-9a-z-]{1,64}$"},
}

# -- operations ---------------------------------------------------------------------


def _body(schema: dict[str, Any], *, yaml: bool = False, required: bool = False) -> dict[str, Any]:
    content = {_JSON: {"schema": schema}}
    if yaml:
        content[_YAML] = {"schema": schema}
    return {"required": required, "content": content}


def _version_links() -> dict[str, Any]:
    """Where a version reply leads (used by stateful testing; clients may ignore them)."""
    tk = {"filterByTk": "$response.body#/data/id"}
    return {
        name: {"operationId": operation, "parameters": tk}
        for name, operation in (
            ("GetVersion", "getWorkflow"),
            ("UpdateVersion", "updateWorkflow"),
            ("ReviseVersion", "reviseWorkflow"),
            ("ExecuteVersion", "executeWorkflow"),
            ("DestroyVersion", "destroyWorkflow"),
        )
    }


def _execution_links() -> dict[str, Any]:
    tk = {"filterByTk": "$response.body#/data/execution/id"}
    return {
        "GetExecution": {"operationId": "getExecution", "parameters": tk},
        "CancelExecution": {"operationId": "cancelExecution", "parameters": tk},
        "ReplayExecution": {"operationId": "replayExecution", "parameters": tk},
    }


def _version_reply(description: str, *, warnings: bool = False) -> dict[str, Any]:
    envelope = _data(_ref("WorkflowVersion"))
    return _ok(
        description, _with_warnings(envelope) if warnings else envelope, links=_version_links()
    )


def _workflow_paths() -> dict[str, Any]:
    version_list = _data({"type": "array", "items": _ref("WorkflowVersion")}, meta=True)
    return {
        "/api/workflows:create": {
            "post": {
                "operationId": "createWorkflow",
                "tags": ["workflows"],
                "summary": "Create a workflow version from a definition (SPEC §3).",
                "description": "A `key` that exists adds a version to it (same `sync` "
                "only). The version is enabled only if the definition says `enabled: true`. "
                "The body may be YAML when the Content-Type says so.",
                "requestBody": _body(_ref("WorkflowDefinition"), yaml=True),
                "responses": {
                    "200": _version_reply(
                        "The new version, and `warnings` (e.g. dedupe without auth).",
                        warnings=True,
                    ),
                    **_errors(400, 401, 413),
                },
            }
        },
        "/api/workflows:list": {
            "get": {
                "operationId": "listWorkflows",
                "tags": ["workflows"],
                "summary": "List workflow versions, newest first.",
                "parameters": [
                    _filter(
                        {
                            "key": {"type": "string"},
                            "current": {"type": "boolean"},
                            "enabled": {"type": "boolean"},
                        }
                    ),
                    _PAGE,
                    _PAGE_SIZE,
                    {
                        "name": "paginate",
                        "in": "query",
                        "description": "`false` returns every matching version in one page.",
                        "schema": {"type": "boolean", "default": True},
                    },
                ],
                "responses": {"200": _ok("A page of versions.", version_list), **_errors(400, 401)},
            }
        },
        "/api/workflows:get": {
            "get": {
                "operationId": "getWorkflow",
                "tags": ["workflows"],
                "summary": "One workflow version.",
                "parameters": [_VERSION_ID],
                "responses": {
                    "200": _version_reply("The version."),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/workflows:update": {
            "post": {
                "operationId": "updateWorkflow",
                "tags": ["workflows"],
                "summary": "Change a version's title, enabled, config, options or nodes.",
                "description": "Config and nodes are frozen once the version has run (400). "
                "`sync`, `key`, `type` and the read-only fields are accepted only unchanged.",
                "parameters": [_VERSION_ID],
                "requestBody": _body(_ref("VersionPatch"), yaml=True),
                "responses": {
                    "200": _version_reply(
                        "The updated version, and `warnings` (e.g. dedupe without auth).",
                        warnings=True,
                    ),
                    **_errors(400, 401, 404, 413),
                },
            }
        },
        "/api/workflows:revision": {
            "post": {
                "operationId": "reviseWorkflow",
                "tags": ["workflows"],
                "summary": "Copy a version into a new, disabled one (same key and node keys).",
                "parameters": [_VERSION_ID],
                "responses": {
                    "200": _version_reply("The new version."),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/workflows:destroy": {
            "post": {
                "operationId": "destroyWorkflow",
                "tags": ["workflows"],
                "summary": "Delete a version (its execution history is kept).",
                "parameters": [_VERSION_ID],
                "responses": {
                    "200": _ok("The deleted version.", _data(_ref("WorkflowVersion"))),
                    **_errors(400, 401, 404),
                },
            }
        },
        "/api/workflows:execute": {
            "post": {
                "operationId": "executeWorkflow",
                "tags": ["workflows"],
                "summary": "Run a version (even a disabled one) with `values` as `$context`.",
                "parameters": [_VERSION_ID],
                "requestBody": _body(
                    {
                        "type": "object",
                        "properties": {"values": {"type": "object"}},
                    }
                ),
                "responses": {
                    "200": _ok(
                        "The finished execution's id and status.",
                        _data(
                            {
                                "type": "object",
                                "properties": {"execution": _ref("ExecutionRef")},
                                "required": ["execution"],
                            }
                        ),
                        links=_execution_links(),
                    ),
                    **_errors(400, 401, 404, 413, 503),
                },
            }
        },
    }


def _execution_paths() -> dict[str, Any]:
    execution_list = _data({"type": "array", "items": _ref("ExecutionSummary")}, meta=True)
    replayed = _data(
        {
            "type": "object",
            "properties": {"execution": _ref("ExecutionRef"), "replayOf": {"type": "string"}},
            "required": ["execution", "replayOf"],
        }
    )
    return {
        "/api/executions:list": {
            "get": {
                "operationId": "listExecutions",
                "tags": ["executions"],
                "summary": "List executions, newest first, hot and in the history "
                "(without context and output; SPEC §9).",
                "parameters": [_EXECUTION_FILTER, _PAGE, _PAGE_SIZE, _CURSOR],
                "responses": {
                    "200": _ok("A page of executions.", execution_list),
                    **_errors(400, 401, 503),
                },
            }
        },
        "/api/executions:destroy": {
            "post": {
                "operationId": "destroyExecutions",
                "tags": ["executions"],
                "summary": "Delete final executions: one by id, or every final one the "
                "filters match (at least one filter).",
                "parameters": [
                    {**_EXECUTION_ID, "required": False},
                    _EXECUTION_FILTER,
                ],
                "responses": {
                    "200": _ok(
                        "How many were deleted.",
                        _data(
                            {
                                "type": "object",
                                "properties": {"count": {"type": "integer", "minimum": 0}},
                                "required": ["count"],
                                "additionalProperties": False,
                            }
                        ),
                    ),
                    **_errors(400, 401, 404, 503),
                },
            }
        },
        "/api/executions:get": {
            "get": {
                "operationId": "getExecution",
                "tags": ["executions"],
                "summary": "One execution with its jobs.",
                "parameters": [_EXECUTION_ID],
                "responses": {
                    "200": _ok("The execution.", _data(_ref("ExecutionWithJobs"))),
                    **_errors(400, 401, 404, 503),
                },
            }
        },
        "/api/executions:cancel": {
            "post": {
                "operationId": "cancelExecution",
                "tags": ["executions"],
                "summary": "Abort an unfinished execution (ABORTED, reason manual_cancel).",
                "parameters": [_EXECUTION_ID],
                "responses": {
                    "200": _ok("The aborted execution.", _data(_ref("ExecutionSummary"))),
                    **_errors(400, 401, 404, 503),
                },
            }
        },
        "/api/executions:replay": {
            "post": {
                "operationId": "replayExecution",
                "tags": ["executions"],
                "summary": "Run an execution's stored context again on the current version.",
                "parameters": [_EXECUTION_ID],
                "responses": {
                    "200": _ok("Sync workflow: the new execution has run.", replayed),
                    "202": _ok("Async workflow: the new execution is stored.", replayed),
                    **_errors(400, 401, 404, 409, 503),
                },
            }
        },
        "/api/supervisors:list": {
            "get": {
                "operationId": "listSupervisors",
                "tags": ["executions"],
                "summary": "The workflow supervisors awake in the execution actors, with "
                "their workflows' backlog.",
                "responses": {
                    "200": _ok(
                        "The supervisors awake.",
                        _data({"type": "array", "items": _ref("SupervisorView")}, meta=True),
                    ),
                    **_errors(401),
                },
            }
        },
        "/api/jobs:get": {
            "get": {
                "operationId": "getJob",
                "tags": ["executions"],
                "summary": "One job (one node run).",
                "parameters": [_JOB_ID],
                "responses": {
                    "200": _ok("The job.", _data(_ref("Job"))),
                    **_errors(400, 401, 404, 503),
                },
            }
        },
        "/api/jobs:resume": {
            "post": {
                "operationId": "resumeJob",
                "tags": ["executions"],
                "summary": "A person's submission to a waiting manual node.",
                "description": 'The submission may also be sent as `{"values": {...}}`. Once '
                "the node's mode is decided, its execution resumes (a durable inbox event); "
                "until then the submission is kept on the job.",
                "parameters": [_JOB_ID],
                "requestBody": _body(_ref("Submission"), required=True),
                "responses": {
                    "202": _ok("The job with the submission recorded.", _data(_ref("Job"))),
                    **_errors(400, 401, 403, 404, 409, 413, 503),
                },
            }
        },
        "/api/flow_nodes:test": {
            "post": {
                "operationId": "testNode",
                "tags": ["workflows"],
                "summary": "Run one node's config once with the given variables.",
                "description": "Only node types with a test run (NocoBase's list). The body "
                'may also be sent as `{"values": {...}}`.',
                "requestBody": _body(_ref("NodeTest"), required=True),
                "responses": {
                    "200": _ok(
                        "The node's job: status, result and log.",
                        _data(
                            {
                                "type": "object",
                                "properties": {
                                    "status": {"type": "integer"},
                                    "result": {},
                                    "log": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                                },
                                "required": ["status", "result", "log"],
                            }
                        ),
                    ),
                    **_errors(400, 401, 413, 503),
                },
            }
        },
        "/api/webhook:parse": {
            "post": {
                "operationId": "parseWebhookSample",
                "tags": ["workflows"],
                "summary": "The paths a sample URL or JSON body offers for request mapping.",
                "requestBody": _body(
                    {
                        "oneOf": [
                            {
                                "type": "object",
                                "properties": {"url": {"type": "string"}},
                                "required": ["url"],
                            },
                            {
                                "type": "object",
                                "properties": {"json": {}},
                                "required": ["json"],
                            },
                        ]
                    },
                    required=True,
                ),
                "responses": {
                    "200": _ok(
                        "The paths, e.g. `query`, `query[0]`, `query[0].a`.",
                        _data(
                            {
                                "type": "object",
                                "properties": {
                                    "paths": {"type": "array", "items": {"type": "string"}}
                                },
                                "required": ["paths"],
                                "additionalProperties": False,
                            }
                        ),
                    ),
                    **_errors(400, 401, 413),
                },
            }
        },
    }


def _webhook_paths() -> dict[str, Any]:
    execution_header = {
        "X-Rayhook-Execution": {
            "description": "The id of the execution the delivery started.",
            "schema": {"type": "string"},
        }
    }
    configured = {
        "description": "Async: the configured reply (`config.response`, default 200 `ok`), "
        "sent once the event is durably stored. Sync: the Response node's reply, or 200 "
        "`ok` when the workflow resolved without one. A text body is "
        "`text/plain; charset=utf-8`, any other JSON value `application/json`, unless a "
        "configured header sets the type.",
        "headers": execution_header,
        "content": {"*/*": {"schema": {}}},
    }
    return {
        "/api/webhook:trigger/{key}": {
            "post": {
                "operationId": "triggerWebhook",
                "tags": ["webhook"],
                "summary": "Deliver a webhook to a workflow (SPEC §2).",
                "description": "Checks run in this order: key (404), Basic auth (401), media "
                "type (415), size (413), signature (401), the body's parse (400). A body is "
                "JSON unless the workflow's `config.request.bodyTypes` adds `form` "
                "(`application/x-www-form-urlencoded`, parsed like the query) or `text` "
                "(`text/*`, `application/xml`). An empty body is `{}`. Methods other than "
                "POST get 405 with `Allow: POST`.",
                "security": [{}, {"basicAuth": []}],
                "parameters": [
                    {
                        "name": "key",
                        "in": "path",
                        "required": True,
                        "description": "The workflow key.",
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "requestBody": {
                    "required": False,
                    "content": {
                        _JSON: {"schema": {}},
                        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
                        "text/plain": {"schema": {"type": "string"}},
                        "application/xml": {"schema": {"type": "string"}},
                    },
                },
                "responses": {
                    "200": configured,
                    "default": {
                        **configured,
                        "description": "A status the workflow chose: a Response node's "
                        "`statusCode` (200-599) or the async `config.response.statusCode`.",
                    },
                    **_errors(400, 401, 404, 408, 413, 415, 500, 503),
                },
            }
        }
    }


def _probe_paths() -> dict[str, Any]:
    open_: dict[str, Any] = {"security": []}
    return {
        "/healthz": {
            "get": {
                "operationId": "health",
                "tags": ["probes"],
                "summary": "The process answers.",
                **open_,
                "responses": {
                    "200": _ok("Alive.", _data(_ref("Alive"))),
                },
            }
        },
        "/readyz": {
            "get": {
                "operationId": "ready",
                "tags": ["probes"],
                "summary": "Redis and Ray answer.",
                **open_,
                "responses": {
                    "200": _ok("Both reachable.", _data(_ref("Readiness"))),
                    "503": _ok("Redis or Ray unreachable.", _data(_ref("Readiness"))),
                },
            }
        },
        "/metrics": {
            "get": {
                "operationId": "metrics",
                "tags": ["probes"],
                "summary": "Prometheus metrics (SPEC §6).",
                **open_,
                "responses": {
                    "200": {
                        "description": "The Prometheus text exposition format.",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/console": {
            "get": {
                "operationId": "console",
                "tags": ["console"],
                "summary": "The execution console's page (SPEC §10; docs/console.md).",
                "description": "Static; it signs in with the admin token in the browser "
                "and calls this API with it. Served under a strict Content-Security-Policy.",
                **open_,
                "responses": {
                    "200": {
                        "description": "The console's HTML page.",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    },
                },
            }
        },
        "/console/{name}": {
            "get": {
                "operationId": "consoleFile",
                "tags": ["console"],
                "summary": "One of the console's static files (a script, a style sheet, an icon).",
                **open_,
                "parameters": [
                    {
                        "name": "name",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    }
                ],
                "responses": {
                    "200": {
                        "description": "The file.",
                        "content": {
                            media: {"schema": {"type": "string"}}
                            for media in ("text/javascript", "text/css", "image/svg+xml")
                        },
                    },
                    **_errors(404),
                },
            }
        },
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "tags": ["probes"],
                "summary": "This document.",
                **open_,
                "responses": {"200": _ok("The OpenAPI 3.1 document.", {"type": "object"})},
            }
        },
    }


# -- schemas ------------------------------------------------------------------------


#: The msgspec structs whose JSON Schema are the document's components (with
#: the structs they refer to, which msgspec adds).
_STRUCTS = (
    WorkflowDefinition,
    WorkflowVersion,
    VersionPatch,
    Execution,
    Job,
    ExecutionSummary,
    Submission,
    NodeTest,
    SupervisorView,
    ErrorEnvelope,
    Alive,
    Readiness,
)


def _schemas() -> dict[str, Any]:
    _, generated = msgspec.json.schema_components(_STRUCTS, ref_template=_REF)
    return {**generated, **_HAND_SCHEMAS}


#: Replies built as plain dicts in ingress/admin/ (see the module docstring).
_HAND_SCHEMAS: dict[str, Any] = {
    "ListMeta": {
        "type": "object",
        "description": "`count` is every matching row, not only this page's.",
        "properties": {
            "count": {"type": "integer", "minimum": 0},
            "page": {"type": "integer", "minimum": 1},
            "pageSize": {"type": "integer", "minimum": 1},
            "nextCursor": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "executions:list: the `cursor` of the next (older) page; "
                "null on the last one.",
            },
            "unavailable": {
                "type": "array",
                "items": {"type": "string"},
                "description": "supervisors:list: executors that did not answer.",
            },
        },
        "required": ["count", "page", "pageSize"],
        "additionalProperties": False,
    },
    "ExecutionRef": {
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        },
        "required": ["id", "status"],
        "additionalProperties": False,
    },
    "ExecutionWithJobs": {
        "allOf": [
            _ref("Execution"),
            {
                "type": "object",
                "properties": {"jobs": {"type": "array", "items": _ref("Job")}},
                "required": ["jobs"],
            },
        ]
    },
}


#: Requests the HTTP server (gunicorn) refuses before the app sees them; its
#: replies are short `text/plain`, not the JSON envelope.
_GUNICORN_TEXT = {"text/plain": {"schema": {"type": "string"}}}
_SERVER_LIMITS: dict[str, Any] = {
    "501": {
        "description": "Refused by the HTTP server: a Transfer-Encoding it does not "
        "implement. The body is gunicorn's plain text.",
        "content": _GUNICORN_TEXT,
    },
    "414": {
        "description": "Refused by the HTTP server: the request line (method, path and "
        "query) is longer than 4094 bytes. The body is gunicorn's plain text.",
        "content": _GUNICORN_TEXT,
    },
    "431": {
        "description": "Refused by the HTTP server: more than 100 headers, or one longer "
        "than 8190 bytes. The body is gunicorn's plain text.",
        "content": _GUNICORN_TEXT,
    },
}


def _with_server_limits(paths: dict[str, Any]) -> dict[str, Any]:
    for path in paths.values():
        for operation in path.values():
            for status, response in _SERVER_LIMITS.items():
                operation["responses"].setdefault(status, response)
    return paths


def build_document() -> dict[str, Any]:
    """The whole document as plain JSON values."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rayhook",
            "version": "0.1.0",
            "description": "Webhook workflow engine: the webhook endpoint and the admin API "
            "(NocoBase resource:action style). Every error body is "
            '`{"errors": [{"message": "..."}]}`.',
        },
        "security": [{"bearerAuth": []}],
        "tags": [
            {"name": "workflows"},
            {"name": "executions"},
            {"name": "webhook"},
            {"name": "probes"},
        ],
        "paths": _with_server_limits(
            {
                **_workflow_paths(),
                **_execution_paths(),
                **_webhook_paths(),
                **_probe_paths(),
            }
        ),
        "components": {
            "schemas": _schemas(),
            "responses": {
                name: _error_response(status) for status, (name, _) in _ERROR_RESPONSES.items()
            },
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "RAYHOOK_ADMIN_TOKEN (admin API only).",
                },
                "basicAuth": {
                    "type": "http",
                    "scheme": "basic",
                    "description": "Webhooks whose `config.basicAuthentication` is set.",
                },
            },
        },
    }


class OpenAPIResource:
    """`GET /api/openapi.json`: the document, built once per process."""

    def __init__(self) -> None:
        self.body = msgspec.json.encode(build_document())

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        resp.data = self.body
        resp.content_type = falcon.MEDIA_JSON

"""`json-query`: query a JSON value with JMESPath, JSONPath or JSONata.

NocoBase's `plugin-workflow-json-query`: `source` and `expression` are templated,
`engine` is `jmespath` (default), `jsonpathplus` or `jsonata`; with a `model`
(`[{path, alias?, label?}]`) an object result -- or each item of an array
result -- becomes `{alias or path with "." replaced by "_": value at path}`
(lodash `get`; a missing path leaves its key out, as JSON does with
`undefined`). Any error ends the job in ERROR with result null and the error
text in the job's `log`.

Expressions without `{{...}}` are compiled when the workflow is defined, so a
syntax error is a validation error; others are compiled when the node runs.

- `jmespath` is the `jmespath` package (the JMESPath spec, as jmespath.js).
- `jsonpathplus` is python-jsonpath read the way JSONPath-Plus answers with
  `wrap: false`: no match is null, one match of a path that can only match
  once is the value itself, anything else a list. Filters follow RFC 9535:
  `?(@.published)` tests that the key exists (JSONPath-Plus evaluates
  JavaScript, where it tests truthiness: write `?(@.published == true)`), and
  JavaScript-only filter syntax such as `===` is a syntax error.
- `jsonata` is jsonata-python, bounded to `JSONATA_TIMEOUT_MS` and
  `JSONATA_MAX_DEPTH` so a runaway expression ends in ERROR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from engine.jsvalues import iso_datetime
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.paths import parse_request_path
from engine.records import Job
from engine.status import Status

JSONATA_TIMEOUT_MS = 2000
JSONATA_MAX_DEPTH = 300
_COMPILED_CACHE_SIZE = 256

Query = Callable[[Any], Any]


class ModelField(NodeConfig):
    path: str
    alias: str | None = None
    label: str | None = None


class Config(NodeConfig):
    engine: Literal["jmespath", "jsonpathplus", "jsonata"] = "jmespath"
    source: Any = ""
    expression: str = ""
    model: list[ModelField] = []


class QueryError(ValueError):
    """An expression its engine cannot compile."""


def _jmespath(expression: str) -> Query:
    import jmespath
    from jmespath.exceptions import JMESPathError

    try:
        parsed = jmespath.compile(expression)
    except JMESPathError as exc:
        raise QueryError(str(exc)) from exc
    return parsed.search


def _jsonpath(expression: str) -> Query:
    import jsonpath

    try:
        path = jsonpath.compile(expression)
    except jsonpath.JSONPathError as exc:
        raise QueryError(str(exc).splitlines()[0]) from exc
    singular = isinstance(path, jsonpath.JSONPath) and path.singular_query()  # not a union

    def search(data: Any) -> Any:
        found = [match.obj for match in path.finditer(data)]
        if not found:
            return None
        if len(found) == 1 and singular:
            return found[0]
        return found

    return search


def _jsonata(expression: str) -> Query:
    import jsonata

    try:
        program = jsonata.Jsonata(expression, timeout=JSONATA_TIMEOUT_MS, stack=JSONATA_MAX_DEPTH)
    except jsonata.JException as exc:
        raise QueryError(str(exc)) from exc
    return program.evaluate


ENGINES: dict[str, Callable[[str], Query]] = {
    "jmespath": _jmespath,
    "jsonpathplus": _jsonpath,
    "jsonata": _jsonata,
}


def compile_query(engine: str, expression: str) -> Query:
    """`QueryError` for an expression the engine rejects."""
    if not isinstance(expression, str) or not expression.strip():
        raise QueryError("an expression is required")
    return ENGINES[engine](expression)


def plain_json(value: Any) -> Any:
    """Engine results as plain JSON (library list/dict types, no functions)."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return int(value) if value.is_integer() and abs(value) <= 2**53 else value
    if isinstance(value, dict):
        return {str(key): plain_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_json(item) for item in value]
    if isinstance(value, datetime):
        return iso_datetime(value)
    return None  # a function (a JSONata lambda) or another value JSON cannot hold


_MISSING = object()


def lodash_get(data: Any, path: str) -> Any:
    """lodash `get(data, path)`; `_MISSING` where it would be undefined."""
    if isinstance(data, dict) and path in data:
        return data[path]
    value = data
    for segment in parse_request_path(path):
        if isinstance(value, dict):
            value = value.get(str(segment), _MISSING)
        elif isinstance(value, list):
            try:
                index = int(segment)
            except ValueError:
                return len(value) if segment == "length" else _MISSING
            value = value[index] if 0 <= index < len(value) else _MISSING
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def map_model(data: Any, model: list[ModelField]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if isinstance(data, (dict, list)):
        for field in model:
            value = lodash_get(data, field.path)
            if value is not _MISSING:
                result[field.alias or field.path.replace(".", "_")] = value
    return result


class JsonQuery(Instruction):
    node_type = "json-query"
    config_type = Config
    raw_fields = frozenset({"engine", "model"})

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Query] = {}

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> Any:
        if "{{" in config.expression:
            return None  # compiled per run, once its placeholders are filled
        try:
            return compile_query(config.engine, config.expression)
        except QueryError as exc:
            raise NodeError("expression", f"{config.engine}: {exc}") from exc

    def _compiled(self, engine: str, expression: Any) -> Query:
        key = (engine, str(expression))
        query = self._cache.get(key)
        if query is None:
            query = compile_query(engine, expression)
            if len(self._cache) >= _COMPILED_CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = query
        return query

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config: Config = node.config
        rendered = run.render(node)
        source = rendered.get("source", "")
        try:
            query = node.prepared or self._compiled(config.engine, rendered.get("expression", ""))
            result = plain_json(query(source))
            if config.model and isinstance(result, (dict, list)):
                if isinstance(result, list):
                    result = [map_model(item, config.model) for item in result]
                else:
                    result = map_model(result, config.model)
        except Exception as exc:  # every engine error, and RecursionError from deep data
            job.status, job.result = Status.ERROR, None
            job.log = f"{type(exc).__name__}: {exc}"
            return
        job.status, job.result = Status.RESOLVED, result

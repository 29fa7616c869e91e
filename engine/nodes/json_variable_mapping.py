"""`json-variable-mapping`: pick values out of a JSON object into named variables.

NocoBase's `plugin-workflow-json-variable-mapping`, exactly: `dataSource`
(templated) must be an object or an array, otherwise the job is FAILED with
"The input data is not an object nor an array". Each variable
`{key, path, paths, alias?}` reads the value at `paths` (the segments of `path`)
and the result is `{<key>: value}`, so later nodes read
`{{$jobsMapByNodeKey.<node>.<key>}}`; a value that does not exist leaves its key
out. `alias` and `example` are for the editor only.

The segment `"___arr$___"` marks an array in the sample the paths were made
from. Without `parseArray` it maps over the array: every item's value at the
rest of the path, keeping only truthy values (NocoBase's `value && push`); two
markers in a row read arrays of arrays, where -- as in NocoBase -- the last
nested array's values replace what the earlier items gave. With `parseArray`
the paths hold indexes (`"0"`) instead and the marker is skipped.
"""

from __future__ import annotations

import re
from typing import Any

from engine.jsvalues import UNDEFINED, truthy
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import Status

ARRAY_MARKER = "___arr$___"
NOT_AN_OBJECT = "The input data is not an object nor an array"
_INDEX = re.compile(r"0|[1-9]\d*")


class Variable(NodeConfig):
    key: str
    paths: list[str]
    path: str = ""
    alias: str | None = None
    name: str | None = None
    title: str | None = None


class Config(NodeConfig):
    dataSource: Any = None
    variables: list[Variable] = []
    parseArray: bool = False
    example: Any = None


class MappingError(TypeError):
    """What JavaScript throws when a path reads a property of null."""


def _get(data: Any, key: str) -> Any:
    """`data[key]` in JavaScript, for JSON values."""
    if data is None or data is UNDEFINED:
        shown = "null" if data is None else "undefined"
        raise MappingError(f"Cannot read properties of {shown} (reading '{key}')")
    if isinstance(data, dict):
        return data.get(key, UNDEFINED)
    if isinstance(data, (list, str)):
        if key == "length":
            return len(data)
        if _INDEX.fullmatch(key) and int(key) < len(data):
            return data[int(key)]
    return UNDEFINED


def _array_values(data: Any, paths: list[str], parse_array: bool) -> Any:
    """NocoBase `getArrValue`."""
    if not isinstance(data, list):
        return []
    rest = list(paths)
    key = rest.pop(0) if rest else "undefined"
    result: list[Any] = []
    for item in data:
        if not rest:
            value = _get(item, key)
            if truthy(value):
                result.append(value)
        elif key == ARRAY_MARKER and isinstance(item, list):
            result = _array_values(item, rest, parse_array)
        else:
            value = value_at(_get(item, key), rest, parse_array)
            if truthy(value):
                result.append(value)
    return result


def value_at(data: Any, paths: list[str], parse_array: bool) -> Any:
    """NocoBase `getVaule`: the value at `paths`, UNDEFINED where there is none."""
    rest = list(paths)
    if not truthy(data):
        return data
    if rest and rest[0] == ARRAY_MARKER:
        rest.pop(0)
        if not parse_array:
            return _array_values(data, rest, parse_array)
    key = rest.pop(0) if rest else "undefined"
    value = _get(data, key)
    if not rest or not truthy(value):
        return value
    return value_at(value, rest, parse_array)


def map_variables(data: Any, variables: list[Variable], parse_array: bool) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for variable in variables:
        value = value_at(data, variable.paths, parse_array)
        if value is UNDEFINED:
            result.pop(variable.key, None)
        else:
            result[variable.key] = value
    return result


class JsonVariableMapping(Instruction):
    node_type = "json-variable-mapping"
    config_type = Config
    raw_fields = frozenset({"variables", "parseArray", "example"})

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> None:
        for index, variable in enumerate(config.variables):
            if not variable.key:
                raise NodeError(f"variables[{index}].key", "must not be empty")
            if not variable.paths:
                raise NodeError(f"variables[{index}].paths", "must list the path's segments")

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        config: Config = node.config
        data = run.render(node).get("dataSource")
        if not isinstance(data, (dict, list)):
            job.status, job.result = Status.FAILED, NOT_AN_OBJECT
            return
        try:
            result = map_variables(data, config.variables, config.parseArray)
        except MappingError as exc:
            job.status, job.result = Status.ERROR, {"message": f"TypeError: {exc}"}
            return
        job.status, job.result = Status.RESOLVED, _json(result)


def _json(value: Any) -> Any:
    if value is UNDEFINED:
        return None
    if isinstance(value, dict):
        return {key: _json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json(item) for item in value]
    return value

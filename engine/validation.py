"""Definition checks and compilation (SPEC §3): a definition either compiles
into the structure the interpreter walks, or fails with every problem found,
each message naming the node key and the config field."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgspec

from engine.definition import (
    DefinitionError,
    NodeDefinition,
    Options,
    WebhookConfig,
    describe_validation_error,
    new_key,
)
from engine.nodes import REGISTRY
from engine.nodes.base import CompiledNode, NodeError, WorkflowFacts
from engine.nodes.response import HEADER_NAME
from engine.retry import retry_problems
from engine.retry_on_fail import FIELD as RETRY_FIELD
from engine.retry_on_fail import compile_retry
from engine.scope import ROOTS, SYSTEM
from engine.status import Status
from engine.templates import Placeholder, TemplateError, compile_template
from engine.trigger import CompiledTrigger, body_problems, compile_trigger, security_problems

_STATUSES = frozenset(int(s) for s in Status)


@dataclass(frozen=True, slots=True)
class CompiledWorkflow:
    id: int | None
    key: str | None
    sync: bool
    options: Options
    nodes: tuple[CompiledNode, ...]
    trigger: CompiledTrigger
    by_key: dict[str, CompiledNode] = field(default_factory=dict)

    def node(self, key: str) -> CompiledNode:
        return self.by_key[key]


class _Source:
    """Anything shaped like a definition or a stored version."""

    id: int | None
    key: str | None
    sync: bool
    type: str
    config: WebhookConfig
    options: Options
    nodes: list[NodeDefinition]


def assign_node_keys(nodes: list[NodeDefinition]) -> None:
    """Give every node without a key a generated one (stable from then on)."""
    for node, _path, _ancestors in walk(nodes):
        if not node.key:
            node.key = new_key()


def walk(
    nodes: list[NodeDefinition], path: str = "nodes", ancestors: tuple[NodeDefinition, ...] = ()
) -> Iterator[tuple[NodeDefinition, str, tuple[NodeDefinition, ...]]]:
    for index, node in enumerate(nodes):
        here = f"{path}[{index}]"
        yield node, here, ancestors
        for branch, chain in node.branches.items():
            yield from walk(chain, f'{here}.branches["{branch}"]', (*ancestors, node))


def compile_workflow(source: Any) -> CompiledWorkflow:
    """Validate and compile; `DefinitionError` lists every problem."""
    errors: list[str] = []
    src: _Source = source
    node_types: dict[str, str] = {}
    seen_at: dict[str, str] = {}
    for node, path, _ in walk(src.nodes):
        label = _label(node, path)
        if not node.key:
            errors.append(f"{label}: a node key is required")
            continue
        if node.key in seen_at:
            errors.append(f"{label}: duplicate node key (also used at {seen_at[node.key]})")
            continue
        seen_at[node.key] = path
        node_types[node.key] = node.type
    errors.extend(_check_trigger(src))
    facts = WorkflowFacts(sync=src.sync, type=src.type, node_types=node_types)
    by_key: dict[str, CompiledNode] = {}
    chain = _compile_chain(src.nodes, "nodes", (), facts, by_key, errors)
    if errors:
        raise DefinitionError(errors)
    return CompiledWorkflow(
        id=getattr(src, "id", None),
        key=src.key,
        sync=src.sync,
        options=src.options,
        nodes=chain,
        trigger=compile_trigger(src.config, sync=src.sync),
        by_key=by_key,
    )


def compile_test_node(
    node_type: str, config: dict[str, Any], known_keys: Iterable[str]
) -> CompiledWorkflow:
    """A one-node workflow (`flow_nodes:test`): its placeholders may read the
    results of `known_keys`, which the caller supplies as variables."""
    node = NodeDefinition(type=node_type, key="test", config=config)
    node_types = {key: "variable" for key in known_keys}
    node_types["test"] = node_type
    facts = WorkflowFacts(sync=False, type="webhook", node_types=node_types)
    by_key: dict[str, CompiledNode] = {}
    errors: list[str] = []
    compiled = _compile_node(node, "node", (), facts, by_key, errors)
    if errors or compiled is None:
        raise DefinitionError(errors or ["the node could not be compiled"])
    compiled.retry = None  # a test runs the config once; retryOnFail is checked, not used
    return CompiledWorkflow(
        id=None,
        key=None,
        sync=False,
        options=Options(),
        nodes=(compiled,),
        trigger=compile_trigger(WebhookConfig()),
        by_key=by_key,
    )


def _compile_chain(
    nodes: list[NodeDefinition],
    path: str,
    ancestors: tuple[NodeDefinition, ...],
    facts: WorkflowFacts,
    by_key: dict[str, CompiledNode],
    errors: list[str],
) -> tuple[CompiledNode, ...]:
    out: list[CompiledNode] = []
    for index, node in enumerate(nodes):
        here = f"{path}[{index}]"
        compiled = _compile_node(node, here, ancestors, facts, by_key, errors)
        if compiled is not None:
            out.append(compiled)
    return tuple(out)


def _compile_node(
    node: NodeDefinition,
    path: str,
    ancestors: tuple[NodeDefinition, ...],
    facts: WorkflowFacts,
    by_key: dict[str, CompiledNode],
    errors: list[str],
) -> CompiledNode | None:
    label = _label(node, path)
    instruction = REGISTRY.get(node.type)
    branches: dict[str, tuple[CompiledNode, ...]] = {}
    for branch, chain in node.branches.items():
        branches[branch] = _compile_chain(
            chain, f'{path}.branches["{branch}"]', (*ancestors, node), facts, by_key, errors
        )
    if instruction is None:
        errors.append(
            f'{label}: unknown node type "{node.type}"; known types: {", ".join(REGISTRY.types())}'
        )
        return None
    label = f"{label} ({node.type})"
    if instruction.sync_only and not (facts.sync and facts.type == "webhook"):
        errors.append(f"{label}: a {node.type} node is only allowed in a sync webhook workflow")
        return None
    if instruction.waits and facts.sync:
        errors.append(
            f"{label}: a {node.type} node waits, which a sync workflow cannot do; "
            "make the workflow async (sync: false) or remove the node"
        )
        return None
    raw_config, retry = node.config, None
    if RETRY_FIELD in raw_config:  # the interpreter's, not the node type's
        raw_config = {k: v for k, v in raw_config.items() if k != RETRY_FIELD}
        if not instruction.retries_on_fail:
            retrying = ", ".join(t for t in REGISTRY.types() if REGISTRY[t].retries_on_fail)
            errors.append(f"{label}: config.{RETRY_FIELD}: only {retrying} nodes retry")
            return None
        try:
            retry = compile_retry(node.config[RETRY_FIELD])
        except NodeError as exc:
            errors.append(f"{label}: config.{exc.field}: {exc.message}")
            return None
    try:
        config = msgspec.convert(raw_config, instruction.config_type)
    except msgspec.ValidationError as exc:
        errors.append(f"{label}: {describe_validation_error(exc, 'config')}")
        return None
    allowed = instruction.branch_indexes(config)
    for branch in node.branches:
        if allowed is not None and branch not in allowed:
            hint = f"allowed: {', '.join(sorted(allowed))}" if allowed else "it has no branches"
            errors.append(f'{label}: branches: "{branch}" is not a branch of this node ({hint})')
    try:
        prepared = instruction.prepare(config, facts, frozenset(node.branches))
    except NodeError as exc:
        where = f"config.{exc.field}" if exc.field else "config"
        errors.append(f"{label}: {where}: {exc.message}")
        return None
    templated = {k: v for k, v in raw_config.items() if k not in instruction.raw_fields}
    try:
        template = compile_template(templated)
    except TemplateError as exc:
        errors.append(f"{label}: config: {exc}")
        return None
    scopes = {a.key for a in ancestors if (i := REGISTRY.get(a.type)) and i.provides_scope}
    # A scope-providing node's own expressions (the loop's condition) see its scope too.
    own = {node.key} if instruction.provides_scope else set()
    checks = [(ph, scopes) for ph in template.placeholders]
    checks += [(ph, scopes | own) for ph in instruction.placeholders(prepared)]
    for ph, visible in checks:
        problem = check_placeholder(ph, facts.node_types, visible, ROOTS)
        if problem:
            errors.append(f"{label}: config: {problem}")
    compiled = CompiledNode(
        key=node.key,
        type=node.type,
        title=node.title,
        instruction=instruction,
        config=config,
        template=template,
        prepared=prepared,
        branches=branches,
        retry=retry,
    )
    by_key[node.key] = compiled
    return compiled


def check_placeholder(
    ph: Placeholder, node_types: Mapping[str, str], scopes: set[str], roots: tuple[str, ...]
) -> str | None:
    """Why a placeholder cannot resolve in this place, or None when it can."""
    root, rest = ph.segments[0], ph.segments[1:]
    if root not in roots:
        return f'unknown variable "{root}" in "{ph.text}"; available: {", ".join(roots)}'
    if root == "$jobsMapByNodeKey":
        if not rest:
            return f'"{ph.text}" needs a node key: {{{{$jobsMapByNodeKey.<nodeKey>}}}}'
        if rest[0] not in node_types:
            return f'"{ph.text}" refers to node "{rest[0]}", which is not in this workflow'
    if root == "$scopes" and (not rest or rest[0] not in scopes):
        return f'"{ph.text}" refers to no enclosing loop node'
    if root == "$system":
        return _system_problem(ph, rest)
    if root == "$env" and not rest:
        return f'"{ph.text}" needs a variable name: {{{{$env.NAME}}}}'
    return None


def _system_problem(ph: Placeholder, rest: tuple[str, ...]) -> str | None:
    """`$system.<name>`, or `$system.<group>.<name>` for a group (`dateRange`)."""
    if not rest or rest[0] not in SYSTEM:
        return f'"{ph.text}": $system has {", ".join(SYSTEM)}'
    group = SYSTEM[rest[0]]
    if isinstance(group, Mapping) and (len(rest) < 2 or rest[1] not in group):
        return f'"{ph.text}": $system.{rest[0]} has {", ".join(group)}'
    return None


def _check_trigger(src: _Source) -> Iterator[str]:
    config = src.config
    auth = config.basicAuthentication
    if auth is True:
        yield "config.basicAuthentication: give {username, password} or false"
    elif auth and not isinstance(auth, bool) and not auth.username:
        yield "config.basicAuthentication.username: must not be empty"
    for part in ("query", "body"):
        names: set[str] = set()
        for i, item in enumerate(getattr(config.request, part)):
            if not item.key:
                yield f"config.request.{part}[{i}].key: must not be empty"
            if item.name in names:
                yield f'config.request.{part}[{i}]: "{item.name}" is mapped twice'
            names.add(item.name)
    # A sync workflow answers with its response node: NocoBase ignores a
    # config.response there, and an exported NocoBase workflow may carry one.
    if config.response is not None and not src.sync:
        if not 200 <= config.response.statusCode <= 599:
            # 1xx are interim answers: the caller would still wait for the reply.
            yield "config.response.statusCode: must be from 200 to 599"
        for i, header in enumerate(config.response.headers):
            if not HEADER_NAME.fullmatch(header.name):
                yield (
                    f"config.response.headers[{i}].name: {header.name!r} is not a valid "
                    "header name (letters, digits, - and _)"
                )
        try:
            renderer = compile_template(
                {
                    "headers": [h.value for h in config.response.headers],
                    "body": config.response.body,
                }
            )
        except TemplateError as exc:
            yield f"config.response: {exc}"
        else:
            for ph in renderer.placeholders:
                problem = check_placeholder(ph, {}, set(), ("$context", "$system", "$env"))
                if problem:
                    yield f"config.response: {problem} (no node has run before the async reply)"
    yield from body_problems(config)
    yield from security_problems(config)
    options = src.options
    if options.timeout < 0:
        yield "options.timeout: must be 0 (no limit) or a number of milliseconds"
    if options.stackLimit < 1:
        yield "options.stackLimit: must be at least 1"
    for status in options.deleteExecutionOnStatus:
        if status not in _STATUSES:
            yield f"options.deleteExecutionOnStatus: {status} is not an execution status"
    if options.retry is not None:
        yield from retry_problems(options.retry, sync=src.sync)


def _label(node: NodeDefinition, path: str) -> str:
    return f'node "{node.key}"' if node.key else path

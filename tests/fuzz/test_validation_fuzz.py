"""Definition decoding and validation on hostile documents: random JSON and
YAML, and valid definitions mutated at random (node types, config fields,
branches, templates, trigger config, options). `decode_definitions` followed
by `compile_workflow` (what `workflows:create` and `rayhook apply` do) either
succeeds or raises `DefinitionError` — never another exception, which the
admin API would turn into a 500."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.definition import DefinitionError, decode_definitions, load_document
from engine.nodes import REGISTRY
from engine.validation import assign_node_keys, compile_workflow
from tests.e2e.workflows import async_echo, seed_example
from tests.fuzz.conftest import examples

CPU_LIMIT = 2.0
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def definitions_of(document: bytes | str, *, filename: str = "") -> None:
    """What the admin API and `rayhook apply` do with a document."""
    started = time.process_time()
    try:
        for definition in decode_definitions(document, filename=filename):
            assign_node_keys(definition.nodes)
            compile_workflow(definition)
            msgspec.json.encode(definition)  # what the store then writes
    except DefinitionError:
        pass
    assert time.process_time() - started < CPU_LIMIT


# -- corpus: valid definitions to mutate ----------------------------------------------

_INLINE: list[dict[str, Any]] = [
    {
        "sync": True,
        "nodes": [
            {
                "key": "loop",
                "type": "loop",
                "config": {"target": "{{$context.body.items}}", "exit": 0},
                "branches": {
                    "0": [
                        {
                            "key": "each",
                            "type": "calculation",
                            "config": {
                                "engine": "formula.js",
                                "expression": "{{$scopes.loop.item}} * 2",
                            },
                        }
                    ]
                },
            },
            {
                "key": "fork",
                "type": "parallel",
                "config": {"mode": "all"},
                "branches": {
                    "1": [{"key": "v", "type": "variable", "config": {"value": 1}}],
                    "2": [
                        {
                            "key": "s",
                            "type": "calculation",
                            "config": {"engine": "string", "expression": "id {{$context.body.id}}"},
                        }
                    ],
                },
            },
            {
                "key": "pick",
                "type": "multi-conditions",
                "config": {
                    "conditions": [
                        {"engine": "math.js", "expression": "{{$context.body.n}} > 1"},
                    ],
                    "continueOnNoMatch": True,
                },
                "branches": {"1": [{"key": "e", "type": "end", "config": {"endStatus": 1}}]},
            },
            {
                "key": "q",
                "type": "json-query",
                "config": {
                    "engine": "jmespath",
                    "source": "{{$context.body}}",
                    "expression": "a.b",
                },
            },
            {
                "key": "d",
                "type": "dateCalculation",
                "config": {"input": "{{$system.now}}", "steps": []},
            },
            {
                "key": "r",
                "type": "response",
                "config": {
                    "statusCode": 201,
                    "headers": [{"name": "X-N", "value": "{{$jobsMapByNodeKey.q}}"}],
                    "body": {"ok": "{{$jobsMapByNodeKey.v:none}}"},
                },
            },
        ],
    },
]


def corpus() -> list[dict[str, Any]]:
    found = [seed_example(), async_echo(), *_INLINE]
    for path in sorted(EXAMPLES.glob("*.yaml")):
        document = load_document(path.read_text(), filename=path.name)
        found.extend(document if isinstance(document, list) else [document])
    return found


CORPUS = corpus()


def test_the_corpus_is_valid() -> None:
    for document in CORPUS:
        for definition in decode_definitions(json.dumps(document), filename="x.json"):
            assign_node_keys(definition.nodes)
            compile_workflow(definition)


# -- values a mutation writes -----------------------------------------------------------

#: Any text, lone surrogates included (YAML's `\u` escapes can make them: F9).
_CHARS = st.characters()


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_CHARS, max_size=max_size)


_NODE_TYPES = st.sampled_from([*REGISTRY.types(), "unknown", "", "Condition"])
_CONFIG_FIELDS = sorted(
    {
        f.encode_name
        for instruction in filter(None, map(REGISTRY.get, REGISTRY.types()))
        for f in msgspec.structs.fields(instruction.config_type)
    }
)
_PATHS = st.sampled_from(
    [
        "$context.body.a",
        "$context.query.q",
        "$jobsMapByNodeKey.check",
        "$jobsMapByNodeKey.nope",
        "$scopes.loop.item",
        "$scopes.nope.index",
        "$system.now",
        "$system.nope",
        "$env.SECRET",
        "$env",
        "$nope.a",
        "a.b",
        "$context.body.items.0",
        "$context.body.a:default",
        "",
    ]
)
_TEMPLATES = st.one_of(
    _PATHS.map(lambda p: "{{" + p + "}}"),
    st.tuples(_text(5), _PATHS, _text(5)).map(lambda t: t[0] + "{{" + t[1] + "}}" + t[2]),
    st.sampled_from(["{{", "}}", "{{ }}", "{{a b}}", "{{$context.a}", "{{{{x}}}}"]),
)
_WORDS = st.sampled_from(
    [
        "basic",
        "math.js",
        "formula.js",
        "string",
        "jmespath",
        "jsonpathplus",
        "jsonata",
        "and",
        "or",
        "equal",
        "gt",
        "includes",
        "all",
        "any",
        "race",
        "allSettled",
        "GET",
        "POST",
        "application/json",
        "number",
        "date",
        "add",
        "1",
        "0",
        "-1",
        "true",
    ]
)
_BIG = st.sampled_from([2**31, 2**63, 10**30, -(10**30), 10**308, 1e308, -1e-308])
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    _BIG,
    st.floats(allow_nan=False, allow_infinity=False),
    _text(12),
    _TEMPLATES,
    _WORDS,
)
json_values = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.one_of(st.sampled_from(_CONFIG_FIELDS), _text(6)), children, max_size=4
        )
    ),
    max_leaves=16,
)


def _nodes(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node dict of a definition (branches included)."""
    out: list[dict[str, Any]] = []
    stack = [document.get("nodes")]
    while stack:
        chain = stack.pop()
        if not isinstance(chain, list):
            continue
        for node in chain:
            if isinstance(node, dict):
                out.append(node)
                branches = node.get("branches")
                if isinstance(branches, dict):
                    stack.extend(branches.values())
    return out


@st.composite
def mutated_definitions(draw: st.DrawFn) -> dict[str, Any]:
    document = copy.deepcopy(draw(st.sampled_from(CORPUS)))
    for _ in range(draw(st.integers(1, 6))):
        nodes = _nodes(document)
        what = draw(
            st.sampled_from(
                [
                    "type",
                    "field",
                    "drop-field",
                    "branch",
                    "key",
                    "config-value",
                    "trigger",
                    "options",
                    "sync",
                    "top",
                    "node-field",
                ]
            )
        )
        node = draw(st.sampled_from(nodes)) if nodes else {}
        config = node.get("config") if isinstance(node.get("config"), dict) else None
        if what == "type" and nodes:
            node["type"] = draw(_NODE_TYPES)
        elif what == "field" and config is not None:
            config[draw(st.sampled_from(_CONFIG_FIELDS))] = draw(json_values)
        elif what == "drop-field" and config:
            config.pop(draw(st.sampled_from(sorted(config))))
        elif what == "config-value" and nodes:
            node["config"] = draw(json_values)
        elif what == "branch" and nodes:
            chain = copy.deepcopy(draw(st.lists(st.sampled_from(nodes), max_size=2)))
            index = draw(st.sampled_from(["0", "1", "2", "10", "-1", "a", ""]))
            node.setdefault("branches", {})
            if isinstance(node["branches"], dict):
                node["branches"][index] = chain
            else:
                node["branches"] = draw(json_values)
        elif what == "key" and nodes:
            node["key"] = draw(
                st.one_of(st.sampled_from([n.get("key") for n in nodes]), _text(6), json_values)
            )
        elif what == "node-field" and nodes:
            node[draw(st.sampled_from(["title", "extra", "branches", "type", "key"]))] = draw(
                json_values
            )
        elif what == "trigger":
            trigger = document.setdefault("config", {})
            part = draw(
                st.sampled_from(
                    ["basicAuthentication", "request", "response", "signature", "dedupe", "other"]
                )
            )
            trigger[part] = draw(st.one_of(json_values, trigger_parts(part)))
        elif what == "options":
            document["options"] = draw(
                st.one_of(
                    json_values,
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "timeout": _SCALARS,
                            "stackLimit": _SCALARS,
                            "deleteExecutionOnStatus": st.lists(_SCALARS, max_size=3),
                        },
                    ),
                )
            )
        elif what == "sync":
            document["sync"] = draw(st.one_of(st.booleans(), json_values))
        elif what == "top":
            document[draw(st.sampled_from(["key", "title", "type", "enabled", "nodes", "x"]))] = (
                draw(json_values)
            )
    return document


def trigger_parts(part: str) -> st.SearchStrategy[Any]:
    mapped = st.fixed_dictionaries(
        {
            "key": st.one_of(
                st.sampled_from(
                    ["a", "query[0].a", "a[1000000000000]", "a[", "]", "data['x'].y", ""]
                ),
                _text(8),
            )
        },
        optional={"alias": _text(4), "_var": _text(4)},
    )
    return {
        "basicAuthentication": st.one_of(
            st.booleans(),
            st.fixed_dictionaries({"username": _text(4), "password": _text(4)}),
        ),
        "request": st.fixed_dictionaries(
            {},
            optional={
                "query": st.lists(mapped, max_size=3),
                "body": st.lists(mapped, max_size=3),
                "headers": st.lists(st.fixed_dictionaries({"key": _text(5)})),
            },
        ),
        "response": st.fixed_dictionaries(
            {},
            optional={
                "statusCode": _SCALARS,
                "body": json_values,
                "headers": st.lists(st.fixed_dictionaries({"name": _text(5), "value": _SCALARS})),
            },
        ),
        "signature": st.fixed_dictionaries(
            {
                "scheme": st.sampled_from(
                    ["stripe", "github", "standard-webhooks", "hmac-sha256", "x"]
                ),
                "secret": st.one_of(_TEMPLATES, st.lists(_TEMPLATES, max_size=3)),
            },
            optional={
                "tolerance": _SCALARS,
                "header": _SCALARS,
                "encoding": _WORDS,
                "prefix": _SCALARS,
            },
        ),
        "dedupe": st.fixed_dictionaries({"id": _TEMPLATES}, optional={"window": _SCALARS}),
    }.get(part, json_values)


# -- the fuzzers ----------------------------------------------------------------------


@settings(max_examples=examples(300, cost=3))
@given(mutated_definitions())
def test_mutated_definitions_compile_or_raise_definition_error(document: dict[str, Any]) -> None:
    definitions_of(json.dumps(document), filename="x.json")


@settings(max_examples=examples(100, cost=3))
@given(mutated_definitions())
def test_mutated_definitions_as_yaml_compile_or_raise_definition_error(
    document: dict[str, Any],
) -> None:
    definitions_of(yaml.safe_dump(document), filename="x.yaml")


@settings(max_examples=examples(200))
@given(st.one_of(json_values, st.lists(json_values, max_size=3)))
def test_random_json_documents_compile_or_raise_definition_error(document: Any) -> None:
    definitions_of(json.dumps(document), filename="x.json")
    # Sniffed: JSON, else YAML; and as YAML proper, which reads a JSON
    # surrogate-pair escape as two lone surrogates (F9).
    definitions_of(json.dumps(document, ensure_ascii=False))
    definitions_of(json.dumps(document), filename="x.yaml")


@settings(max_examples=examples(200))
@given(_text(200))
def test_random_text_compiles_or_raises_definition_error(text: str) -> None:
    # Mostly YAML. Deep nesting, aliases and huge integers are pinned apart (below).
    definitions_of(text)


# -- fixed findings (docs/reliability.md, "Fuzzing") -----------------------------------


@pytest.mark.parametrize("filename", ["x.json", "x.yaml", ""])
def test_a_document_nested_deeper_than_the_parser_can_go_is_a_definition_error(
    filename: str,
) -> None:
    # F5 (JSON); YAML's parser recurses as well.
    with pytest.raises(DefinitionError, match="nested too deeply"):
        decode_definitions("[" * 100_000 + "]" * 100_000, filename=filename)


@pytest.mark.parametrize("document", ["&a [*a]", "a: &a 1\nb: *a", "<<: *x"])
def test_a_yaml_alias_is_a_definition_error(document: str) -> None:
    # F6: a self-referencing alias recursed forever.
    with pytest.raises(DefinitionError, match="aliases"):
        decode_definitions(document, filename="x.yaml")


def test_a_yaml_anchor_alone_is_accepted() -> None:
    [definition] = decode_definitions("title: &t hello", filename="x.yaml")
    assert definition.title == "hello"


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("options: {timeout: 1" + "0" * 5000 + "}", "more than 4,300 digits"),
        ("title: 2001-13-45", "month must be in 1..12"),
    ],
)
def test_a_yaml_scalar_python_cannot_read_is_a_definition_error(
    document: str, message: str
) -> None:
    # F7: PyYAML's int() and datetime() raise a bare ValueError.
    with pytest.raises(DefinitionError, match=message):
        decode_definitions(document, filename="x.yaml")


def test_a_yaml_alias_bomb_is_refused_quickly() -> None:
    # F8. 7 levels of 9 aliases: 4.8 million strings from 280 bytes (8 levels: 43 million).
    levels = ["a: &a [x,x,x,x,x,x,x,x,x]"] + [
        f"{b}: &{b} [{', '.join(['*' + a] * 9)}]" for a, b in zip("abcdef", "bcdefg", strict=True)
    ]
    started = time.process_time()
    with pytest.raises(DefinitionError, match="aliases"):
        decode_definitions("\n".join(levels), filename="x.yaml")
    assert time.process_time() - started < 0.05


@pytest.mark.parametrize(
    "document",
    ['"\\ud800": 1', 'title: "\\ud800"', 'title: "a\\udc00b"', 'title: "\\ude00\\ud83d"'],
)
def test_a_lone_surrogate_in_yaml_is_a_definition_error(document: str) -> None:
    # F9.
    with pytest.raises(DefinitionError, match="lone surrogate"):
        decode_definitions(document, filename="x.yaml")


def test_a_json_surrogate_pair_escape_in_yaml_is_the_character() -> None:
    # F9: YAML reads `\ud83d\ude00` as two lone surrogates; JSON (and JavaScript) as 😀.
    [definition] = decode_definitions('title: "\\ud83d\\ude00"', filename="x.yaml")
    assert definition.title == "😀"
    msgspec.json.encode(definition)


def test_a_lone_surrogate_in_text_is_a_definition_error() -> None:
    # Text read from UTF-8 bytes never holds one; a caller's str might.
    with pytest.raises(DefinitionError, match="lone surrogate"):
        decode_definitions('{"title": "\ud800"}')

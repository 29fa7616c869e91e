"""engine.validation.compile_workflow over engine.definition.decode_definitions
(SPEC §3): every problem is reported, each naming the node key and the field."""

from __future__ import annotations

import json

import msgspec
import pytest

from engine.definition import DefinitionError, decode_definitions, describe_validation_error
from engine.validation import CompiledWorkflow, compile_workflow


def compile_text(text: str) -> CompiledWorkflow:
    (definition,) = decode_definitions(text)
    return compile_workflow(definition)


def compile_doc(doc: dict) -> CompiledWorkflow:
    return compile_text(json.dumps(doc))


def errors_of(doc: dict | str) -> list[str]:
    with pytest.raises(DefinitionError) as info:
        if isinstance(doc, str):
            compile_text(doc)
        else:
            compile_doc(doc)
    return info.value.messages


def one_error(doc: dict | str) -> str:
    messages = errors_of(doc)
    assert len(messages) == 1, messages
    return messages[0]


def workflow(*nodes: dict, sync: bool = True, **extra) -> dict:
    return {"sync": sync, "nodes": list(nodes), **extra}


def response(key: str, status: int | str = 200, **config) -> dict:
    return {"key": key, "type": "response", "config": {"statusCode": status, **config}}


def output(key: str, value=None) -> dict:
    return {"key": key, "type": "output", "config": {"value": value}}


def condition(key: str, branches: dict | None = None, **config) -> dict:
    config.setdefault("rejectOnFalse", False)
    return {"key": key, "type": "condition", "config": config, "branches": branches or {}}


SEED_YAML = """
title: Payment callback
type: webhook
sync: true
config:
  basicAuthentication: false
options:
  timeout: 0
nodes:
  - key: check
    type: condition
    title: Paid?
    config:
      engine: basic
      rejectOnFalse: false
      calculation:
        group:
          type: and
          calculations:
            - calculator: equal
              operands: ["{{$context.body.status}}", "paid"]
    branches:
      "1":
        - key: ok
          type: response
          config: {statusCode: 200, body: {ok: true}}
      "0":
        - key: bad
          type: response
          config: {statusCode: 400, body: {ok: false}}
"""


# -- valid definitions ---------------------------------------------------------------


def test_seed_example_in_yaml_compiles():
    compiled = compile_text(SEED_YAML)
    assert compiled.sync is True
    assert [n.key for n in compiled.nodes] == ["check"]
    assert set(compiled.nodes[0].branches) == {"0", "1"}
    assert set(compiled.by_key) == {"check", "ok", "bad"}


def test_seed_example_in_json_compiles():
    doc = workflow(
        condition(
            "check",
            {"1": [response("ok", body={"ok": True})], "0": [response("bad", 400)]},
            calculation={"calculator": "equal", "operands": ["{{$context.body.s}}", "paid"]},
        )
    )
    assert compile_doc(doc).node("bad").type == "response"


def test_response_node_in_sync_workflow_is_fine():
    compiled = compile_doc(workflow(response("r")))
    assert compiled.node("r").type == "response"


def test_response_status_code_may_be_a_template():
    compile_doc(workflow(response("r", "{{$context.body.code}}")))


def test_delay_and_manual_in_async_workflow_are_valid():
    compiled = compile_workflow(
        decode_definitions(
            msgspec.json.encode(
                workflow(
                    {"key": "d", "type": "delay", "config": {"duration": 5, "unit": 60000}},
                    {"key": "m", "type": "manual", "config": {"assignees": ["ann"], "mode": 1}},
                    sync=False,
                )
            )
        )[0]
    )
    assert [n.key for n in compiled.nodes] == ["d", "m"]


def test_delay_with_a_negative_duration_is_rejected():
    messages = errors_of(
        workflow({"key": "d", "type": "delay", "config": {"duration": -1}}, sync=False)
    )
    assert any('node "d" (delay): config.duration' in m for m in messages)


def test_yaml_branch_keys_written_as_numbers_are_accepted():
    # In YAML, `1:` is the natural spelling of the SPEC's branch "1".
    text = SEED_YAML.replace('"1":', "1:").replace('"0":', "0:")
    compiled = compile_text(text)
    assert set(compiled.nodes[0].branches) == {"0", "1"}


def test_async_response_with_context_template_is_fine():
    compile_doc(
        workflow(
            sync=False,
            config={"response": {"statusCode": 202, "body": {"id": "{{$context.body.id}}"}}},
        )
    )


# -- node types and config fields ---------------------------------------------------


def test_unknown_node_type_names_node_and_lists_known_types():
    message = one_error(workflow({"key": "x1", "type": "bogus"}))
    assert 'node "x1"' in message
    assert '"bogus"' in message
    for known in ("condition", "multi-conditions", "calculation", "response", "output"):
        assert known in message


def test_unknown_config_field_names_node_and_field():
    message = one_error(workflow({"key": "o1", "type": "output", "config": {"nope": 1}}))
    assert 'node "o1"' in message
    assert "config" in message
    assert "nope" in message


def test_wrong_config_type_names_node_and_field_path():
    message = one_error(
        workflow({"key": "c1", "type": "condition", "config": {"rejectOnFalse": "yes"}})
    )
    assert 'node "c1"' in message
    assert "config.rejectOnFalse" in message


def test_invalid_end_status_names_field():
    message = one_error(workflow({"key": "e1", "type": "end", "config": {"endStatus": 3}}))
    assert 'node "e1"' in message
    assert "config.endStatus" in message


def test_wrong_nested_config_type_names_the_path():
    doc = workflow(response("r1", headers=[{"name": "X-A", "value": "1", "extra": True}]))
    message = one_error(doc)
    assert 'node "r1"' in message
    assert "config.headers[0]" in message
    assert "extra" in message


def test_response_status_code_out_of_range():
    message = one_error(workflow(response("r1", 700)))
    assert 'node "r1"' in message
    assert "config.statusCode" in message


def test_response_header_name_with_a_trailing_newline_is_rejected():
    message = one_error(workflow(response("r1", headers=[{"name": "X-A\n", "value": "x"}])))
    assert "config.headers[0].name" in message


def test_response_header_name_is_checked():
    message = one_error(workflow(response("r1", headers=[{"name": "1bad", "value": "x"}])))
    assert 'node "r1"' in message
    assert "config.headers[0].name" in message


def test_duplicate_node_keys_are_rejected():
    message = one_error(workflow(output("same"), output("same")))
    assert 'node "same"' in message
    assert "duplicate" in message


def test_duplicate_node_key_inside_a_branch_is_rejected():
    doc = workflow(condition("c", {"1": [output("same")]}), output("same"))
    message = one_error(doc)
    assert 'node "same"' in message
    assert "duplicate" in message


def test_variable_target_must_exist():
    message = one_error(
        workflow({"key": "v", "type": "variable", "config": {"target": "zz", "value": 1}})
    )
    assert 'node "v"' in message
    assert "config.target" in message


def test_variable_target_must_be_a_variable_node():
    message = one_error(
        workflow({"key": "v", "type": "variable", "config": {"target": "o"}}, output("o"))
    )
    assert "config.target" in message
    assert '"o"' in message


# -- templates -------------------------------------------------------------------------


def test_bad_template_names_node_and_config():
    message = one_error(workflow(output("o1", "{{$context.items[0]}}")))
    assert 'node "o1"' in message
    assert "config" in message
    assert "{{$context.items[0]}}" in message


def test_unknown_template_root_names_node_and_variable():
    message = one_error(workflow(output("o1", "{{$nope.a}}")))
    assert 'node "o1"' in message
    assert '"$nope"' in message


def test_unknown_template_root_in_a_dict_key_is_found():
    message = one_error(workflow(output("o1", {"k{{$foo}}": 1})))
    assert 'node "o1"' in message
    assert "$foo" in message


def test_jobs_map_reference_to_missing_node_is_rejected():
    message = one_error(workflow(output("o1", "{{$jobsMapByNodeKey.ghost.a}}")))
    assert 'node "o1"' in message
    assert '"ghost"' in message


def test_jobs_map_reference_to_existing_node_is_fine():
    compile_doc(workflow(output("a", 1), output("b", "{{$jobsMapByNodeKey.a}}")))


def test_jobs_map_without_node_key_is_rejected():
    message = one_error(workflow(output("o1", "{{$jobsMapByNodeKey}}")))
    assert 'node "o1"' in message


def test_scopes_outside_a_loop_is_rejected():
    message = one_error(workflow(output("o1", "{{$scopes.o1.item}}")))
    assert 'node "o1"' in message
    assert "loop" in message


def test_unknown_system_variable_is_rejected():
    message = one_error(workflow(output("o1", "{{$system.nope}}")))
    assert 'node "o1"' in message
    assert "now" in message


@pytest.mark.parametrize("text", ["{{$system.dateRange}}", "{{$system.dateRange.someday}}"])
def test_system_date_range_needs_one_of_its_names(text):
    message = one_error(workflow(output("o1", text)))
    assert message.startswith('node "o1" (output): config: ')
    assert "$system.dateRange has yesterday, today" in message


def test_nocobase_system_variables_are_accepted():
    compile_doc(
        workflow(
            output(
                "o1",
                [
                    "{{$system.dateRange.thisWeek}}",
                    "{{$system.genSnowflakeId}}",
                    "{{$system.epoch}}",
                    "{{$system.instanceId}}",
                ],
            )
        )
    )


def test_env_without_name_is_rejected():
    message = one_error(workflow(output("o1", "{{$env}}")))
    assert 'node "o1"' in message


def test_condition_operand_with_unknown_root_is_rejected():
    doc = workflow(
        condition("c1", calculation={"calculator": "equal", "operands": ["{{$nope.x}}", 1]})
    )
    message = one_error(doc)
    assert 'node "c1"' in message
    assert "$nope" in message


def test_condition_operand_with_bad_template_names_calculation():
    doc = workflow(
        condition("c1", calculation={"calculator": "equal", "operands": ["{{$a[0]}}", 1]})
    )
    message = one_error(doc)
    assert 'node "c1"' in message
    assert "config.calculation" in message


def test_unknown_calculator_names_the_calculation_path():
    doc = workflow(
        condition(
            "c1",
            calculation={"group": {"type": "and", "calculations": [{"calculator": "nope"}]}},
        )
    )
    message = one_error(doc)
    assert 'node "c1"' in message
    assert "config.calculation.group.calculations[0].calculator" in message


def test_multi_conditions_calculator_error_names_the_condition():
    doc = workflow(
        {
            "key": "m1",
            "type": "multi-conditions",
            "config": {"conditions": [{"calculation": {"calculator": "nope"}}]},
        }
    )
    message = one_error(doc)
    assert 'node "m1"' in message
    assert "config.conditions[0].calculation.calculator" in message


# -- where nodes may appear --------------------------------------------------------------


def test_response_node_in_async_workflow_is_rejected():
    message = one_error(workflow(response("r1"), sync=False))
    assert 'node "r1"' in message
    assert "sync" in message


def test_response_node_in_a_branch_of_async_workflow_is_rejected():
    message = one_error(workflow(condition("c", {"1": [response("r1")]}), sync=False))
    assert 'node "r1"' in message


@pytest.mark.parametrize("kind", ["delay", "manual"])
def test_waiting_node_in_sync_workflow_is_rejected(kind):
    message = one_error(workflow({"key": "w1", "type": kind}))
    assert 'node "w1"' in message
    assert "waits" in message


# -- branches --------------------------------------------------------------------------


def test_condition_branch_two_is_not_allowed():
    message = one_error(workflow(condition("c1", {"2": [output("o")]})))
    assert 'node "c1"' in message
    assert '"2"' in message
    assert "branches" in message


def test_branches_on_node_without_branches_are_rejected():
    doc = workflow({"key": "o1", "type": "output", "branches": {"1": [output("o2")]}})
    message = one_error(doc)
    assert 'node "o1"' in message
    assert "branches" in message


def test_multi_conditions_allows_one_branch_per_condition_plus_otherwise():
    cond = {"calculation": {"calculator": "equal", "operands": [1, 1]}}
    base = {"key": "m1", "type": "multi-conditions", "config": {"conditions": [cond, cond]}}
    compile_doc(workflow({**base, "branches": {"0": [], "1": [], "2": []}}))
    message = one_error(workflow({**base, "branches": {"3": []}}))
    assert 'node "m1"' in message
    assert '"3"' in message


def test_reject_on_false_with_false_branch_is_rejected():
    message = one_error(workflow(condition("c1", {"0": [output("o")]}, rejectOnFalse=True)))
    assert 'node "c1"' in message
    assert "rejectOnFalse" in message


def test_reject_on_false_defaults_to_true():
    doc = workflow(
        {"key": "c1", "type": "condition", "config": {}, "branches": {"0": [output("o")]}}
    )
    assert "rejectOnFalse" in one_error(doc)


def test_errors_inside_branches_name_the_inner_node():
    doc = workflow(condition("c1", {"1": [output("inner", "{{$nope}}")]}))
    message = one_error(doc)
    assert 'node "inner"' in message


# -- expressions ------------------------------------------------------------------------


def test_mathjs_syntax_error_is_a_config_expression_error():
    doc = workflow(
        {"key": "k1", "type": "calculation", "config": {"engine": "math.js", "expression": "1 +"}}
    )
    message = one_error(doc)
    assert 'node "k1"' in message
    assert "config.expression" in message


def test_mathjs_unknown_function_is_a_config_expression_error():
    doc = workflow(
        {
            "key": "k1",
            "type": "calculation",
            "config": {"engine": "math.js", "expression": "nosuchfn(1)"},
        }
    )
    message = one_error(doc)
    assert "config.expression" in message
    assert "nosuchfn" in message


def test_mathjs_syntax_error_in_condition_is_a_config_expression_error():
    doc = workflow(condition("c1", engine="math.js", expression="(1 + 2"))
    message = one_error(doc)
    assert 'node "c1"' in message
    assert "config.expression" in message


def test_mathjs_syntax_error_in_multi_conditions_names_the_condition():
    doc = workflow(
        {
            "key": "m1",
            "type": "multi-conditions",
            "config": {"conditions": [{"engine": "math.js", "expression": "1 +"}]},
        }
    )
    message = one_error(doc)
    assert "config.conditions[0].expression" in message


def test_expression_placeholder_to_missing_node_is_rejected():
    doc = workflow(
        {
            "key": "k1",
            "type": "calculation",
            "config": {"engine": "string", "expression": "{{$jobsMapByNodeKey.ghost}}!"},
        }
    )
    message = one_error(doc)
    assert 'node "k1"' in message
    assert '"ghost"' in message


def test_string_engine_expression_compiles():
    doc = workflow(
        {"key": "k1", "type": "calculation", "config": {"engine": "string", "expression": "a"}}
    )
    assert compile_doc(doc).node("k1").type == "calculation"


def test_unsupported_engine_is_rejected_with_field():
    doc = workflow(
        {"key": "k1", "type": "calculation", "config": {"engine": "excel", "expression": "1"}}
    )
    message = one_error(doc)
    assert "config.engine" in message


# -- trigger config and options -------------------------------------------------------


def test_async_response_using_jobs_map_is_rejected():
    doc = workflow(
        output("o1"),
        sync=False,
        config={"response": {"statusCode": 200, "body": "{{$jobsMapByNodeKey.o1}}"}},
    )
    message = one_error(doc)
    assert message.startswith("config.response")
    assert "$jobsMapByNodeKey" in message


def test_async_response_header_using_jobs_map_is_rejected():
    doc = workflow(
        output("o1"),
        sync=False,
        config={
            "response": {
                "statusCode": 200,
                "headers": [{"name": "X-A", "value": "{{$jobsMapByNodeKey.o1}}"}],
            }
        },
    )
    assert one_error(doc).startswith("config.response")


def test_async_response_bad_template_is_rejected():
    doc = workflow(sync=False, config={"response": {"body": "{{$context.a[0]}}"}})
    assert one_error(doc).startswith("config.response")


@pytest.mark.parametrize("name", ["X Bad", "X-A\n", "Ā", ""])
def test_async_response_header_name_is_checked(name):
    doc = workflow(sync=False, config={"response": {"headers": [{"name": name, "value": "x"}]}})
    assert one_error(doc).startswith("config.response.headers[0].name")


def test_config_response_on_a_sync_workflow_is_accepted_and_ignored_as_nocobase_does():
    # An exported NocoBase workflow carries config.response whatever its mode;
    # NocoBase only reads it for async workflows.
    response_config = {
        "statusCode": 150,
        "headers": [{"name": "bad name", "value": "{{$jobsMapByNodeKey.nope}}"}],
        "body": "{{$context.a[0]}}",
    }
    compiled = compile_doc(workflow(response("r"), config={"response": response_config}))
    assert compiled.trigger.reply == compile_doc(workflow(response("r"))).trigger.reply


@pytest.mark.parametrize("status", [100, 101, 103, 199, 600])
def test_async_reply_status_outside_200_to_599_is_refused(status):
    # A 1xx is an interim answer, never the final reply the provider waits for.
    message = one_error(workflow(sync=False, config={"response": {"statusCode": status}}))
    assert message == "config.response.statusCode: must be from 200 to 599"


@pytest.mark.parametrize("status", [200, 202, 204, 599])
def test_async_reply_status_from_200_to_599_is_accepted(status):
    compiled = compile_doc(workflow(sync=False, config={"response": {"statusCode": status}}))
    assert compiled.trigger.reply.status == status


def test_negative_timeout_is_rejected():
    message = one_error(workflow(options={"timeout": -1}))
    assert message.startswith("options.timeout")


def test_zero_and_positive_timeouts_are_fine():
    assert compile_doc(workflow(options={"timeout": 0})).options.timeout == 0
    assert compile_doc(workflow(options={"timeout": 5000})).options.timeout == 5000


def test_delete_execution_on_non_status_is_rejected():
    message = one_error(workflow(options={"deleteExecutionOnStatus": [1, 7]}))
    assert message.startswith("options.deleteExecutionOnStatus")
    assert "7" in message


def test_delete_execution_on_real_statuses_is_fine():
    compiled = compile_doc(workflow(options={"deleteExecutionOnStatus": [1, -1, -2, -6]}))
    assert compiled.options.deleteExecutionOnStatus == [1, -1, -2, -6]


def test_stack_limit_below_one_is_rejected():
    assert one_error(workflow(options={"stackLimit": 0})).startswith("options.stackLimit")


def test_duplicate_mapped_variable_is_rejected():
    doc = workflow(
        config={"request": {"body": [{"key": "a", "_var": "v"}, {"key": "b", "_var": "v"}]}}
    )
    assert one_error(doc).startswith("config.request.body[1]")


# -- several errors at once --------------------------------------------------------------


def test_all_errors_are_reported_at_once():
    doc = workflow(
        {"key": "x", "type": "bogus"},
        output("y", "{{$nope}}"),
        output("y"),
        {"key": "d", "type": "delay"},
        options={"timeout": -5},
        config={"basicAuthentication": True},
    )
    messages = errors_of(doc)
    joined = "\n".join(messages)
    assert len(messages) == 6, messages
    assert 'node "x"' in joined and "bogus" in joined
    assert 'node "y" (output)' in joined and "$nope" in joined
    assert "duplicate" in joined
    assert 'node "d"' in joined and "waits" in joined
    assert "options.timeout" in joined
    assert "config.basicAuthentication" in joined


def test_definition_error_text_joins_every_message():
    with pytest.raises(DefinitionError) as info:
        compile_doc(workflow(output("a", "{{$x}}"), output("b", "{{$y}}")))
    assert "$x" in str(info.value) and "$y" in str(info.value)


# -- the decode step ------------------------------------------------------------------


def test_decode_rejects_unknown_field_in_config_with_its_path():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps({"config": {"bogus": 1}}))
    (message,) = info.value.messages
    assert message.startswith("config: Object contains unknown field")
    assert "bogus" in message


def test_decode_rejects_unknown_top_level_field():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps({"bogus": 1}))
    assert "unknown field `bogus`" in info.value.messages[0]


def test_decode_rejects_unknown_field_on_a_node_with_its_path():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps({"nodes": [{"key": "a", "type": "output", "bogus": 1}]}))
    (message,) = info.value.messages
    assert message.startswith("nodes[0]")
    assert "bogus" in message


def test_decode_reports_wrong_option_type_with_its_path():
    with pytest.raises(DefinitionError) as info:
        decode_definitions("options:\n  timeout: soon\n")
    assert info.value.messages[0].startswith("options.timeout:")


def test_decode_rejects_unknown_field_in_request_mapping():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps({"config": {"request": {"query": [{"key": "a", "x": 1}]}}}))
    assert info.value.messages[0].startswith("config.request.query[0]")


class _KeyedDocument(msgspec.Struct):
    m: dict[str, int] = {}


def test_validation_error_for_a_mapping_key_names_a_clean_path():
    # msgspec reports key errors as "... - at `key` in `$.m`".
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert({"m": {1: 1}}, _KeyedDocument)
    assert describe_validation_error(info.value, "").startswith("m:")
    assert describe_validation_error(info.value, "config").startswith("config.m:")


def test_decode_of_a_list_names_the_document_index():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps([{"sync": True}, {"bogus": 1}]))
    assert info.value.messages[0].startswith("document[1]:")


def test_decode_of_a_list_returns_every_definition():
    defs = decode_definitions(json.dumps([{"title": "a"}, {"title": "b"}]))
    assert [d.title for d in defs] == ["a", "b"]


def test_decode_rejects_non_webhook_type():
    with pytest.raises(DefinitionError) as info:
        decode_definitions(json.dumps({"type": "collection"}))
    assert info.value.messages[0].startswith("type:")


def test_decode_rejects_invalid_json_file():
    with pytest.raises(DefinitionError) as info:
        decode_definitions('{"a": ', filename="wf.json")
    assert "invalid JSON" in info.value.messages[0]


def test_decode_rejects_invalid_yaml():
    with pytest.raises(DefinitionError) as info:
        decode_definitions("nodes: [unclosed\n")
    assert "invalid YAML" in info.value.messages[0]


def test_node_without_key_is_reported_by_path():
    message = one_error(workflow({"type": "output"}))
    assert message.startswith("nodes[0]")
    assert "key" in message

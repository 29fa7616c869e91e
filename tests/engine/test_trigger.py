"""engine.trigger: `$context` from a request (SPEC §2.2) and the async reply
(the sync reply rules: tests/engine/test_sync_replies.py)."""

from __future__ import annotations

import copy

import msgspec
import pytest

from engine.definition import WebhookConfig
from engine.trigger import REDACTED, body_problems, compile_trigger, over_server_limit


def trigger(config: dict | None = None):
    return compile_trigger(msgspec.convert(config or {}, WebhookConfig))


# -- headers -------------------------------------------------------------------------


def test_build_context_lower_cases_header_names():
    ctx = trigger().build_context(
        {"X-Request-Id": "r1", "Content-Type": "application/json"}, {}, {}
    )
    assert ctx["headers"] == {"x-request-id": "r1", "content-type": "application/json"}


@pytest.mark.parametrize("name", ["Authorization", "authorization", "Cookie", "COOKIE"])
def test_build_context_redacts_authorization_and_cookie(name):
    ctx = trigger().build_context({name: "Basic c2VjcmV0", "X-Other": "kept"}, {}, {})
    assert ctx["headers"][name.lower()] == REDACTED
    assert "c2VjcmV0" not in str(ctx)
    assert ctx["headers"]["x-other"] == "kept"


def test_build_context_has_headers_query_and_body():
    ctx = trigger().build_context({}, {"a": "1"}, {"b": 2})
    assert ctx == {"headers": {}, "query": {"a": "1"}, "body": {"b": 2}}


def test_raw_body_is_present_without_body_mapping():
    ctx = trigger().build_context({}, {}, {"data": {"id": 1}})
    assert ctx["body"] == {"data": {"id": 1}}


# -- mappings -------------------------------------------------------------------------


MAPPED = {
    "request": {
        "query": [
            {"key": "query[0].a", "alias": "First a", "_var": "query_$0"},
            {"key": "plain"},
            {"key": "gone[2].x", "_var": "query_$2"},
        ],
        "body": [
            {"key": "b.c", "alias": "C", "_var": "body_$0"},
            {"key": "data.items[1].sku"},
            {"key": "nope.deeper", "_var": "body_$2"},
        ],
    }
}


def test_query_mapping_uses_var_name_and_bracket_path():
    query = {"query": [{"a": "1"}], "plain": "p"}
    ctx = trigger(MAPPED).build_context({}, query, {})
    assert ctx["query"]["query_$0"] == "1"


def test_mapping_uses_key_when_no_var():
    query = {"query": [{"a": "1"}], "plain": "p"}
    body = {"data": {"items": [{"sku": "a"}, {"sku": "b"}]}}
    ctx = trigger(MAPPED).build_context({}, query, body)
    assert ctx["query"]["plain"] == "p"
    assert ctx["body"]["data.items[1].sku"] == "b"


def test_body_mapping_uses_var_name_and_dotted_path():
    ctx = trigger(MAPPED).build_context({}, {}, {"b": {"c": 3}})
    assert ctx["body"]["body_$0"] == 3


def test_mapping_keeps_the_raw_entries():
    query = {"query": [{"a": "1"}]}
    body = {"b": {"c": 3}}
    ctx = trigger(MAPPED).build_context({}, query, body)
    assert ctx["query"]["query"] == [{"a": "1"}]
    assert ctx["body"]["b"] == {"c": 3}


def test_mapping_of_missing_path_gives_none():
    ctx = trigger(MAPPED).build_context({}, {}, {})
    assert ctx["query"]["query_$0"] is None
    assert ctx["query"]["query_$2"] is None
    assert ctx["body"]["body_$2"] is None
    assert "body_$2" in ctx["body"]


def test_mapping_keeps_falsy_values():
    config = {"request": {"body": [{"key": "a", "_var": "z"}, {"key": "b", "_var": "f"}]}}
    ctx = trigger(config).build_context({}, {}, {"a": 0, "b": False})
    assert ctx["body"]["z"] == 0
    assert ctx["body"]["f"] is False


def test_mapping_reads_structured_values():
    config = {"request": {"body": [{"key": "data.object", "_var": "obj"}]}}
    ctx = trigger(config).build_context({}, {}, {"data": {"object": {"amount": 5}}})
    assert ctx["body"]["obj"] == {"amount": 5}


def test_inputs_are_not_mutated():
    headers = {"Authorization": "Basic abc", "X-A": "1"}
    query = {"query": [{"a": "1"}]}
    body = {"b": {"c": 3}}
    before = (dict(headers), copy.deepcopy(query), copy.deepcopy(body))
    trigger(MAPPED).build_context(headers, query, body)
    assert (headers, query, body) == before


def test_non_object_body_is_kept_as_is():
    ctx = trigger(MAPPED).build_context({}, {}, [1, 2])
    assert ctx["body"] == [1, 2]


# -- credentials --------------------------------------------------------------------------


def test_no_credentials_when_basic_auth_disabled():
    assert trigger().credentials is None
    assert trigger({"basicAuthentication": False}).credentials is None


def test_credentials_are_bytes_when_basic_auth_configured():
    compiled = trigger({"basicAuthentication": {"username": "u", "password": "p:w"}})
    assert compiled.credentials is not None
    assert compiled.credentials.username == b"u"
    assert compiled.credentials.password_value({}) == b"p:w"


def test_a_password_given_as_env_placeholder_is_read_per_request():
    auth = {"username": "u", "password": "{{$env.HOOK_PASSWORD}}"}
    credentials = trigger({"basicAuthentication": auth}).credentials
    assert credentials is not None
    assert credentials.password_value({"HOOK_PASSWORD": "s3cret"}) == b"s3cret"
    assert credentials.password_value({"HOOK_PASSWORD": ""}) is None
    assert credentials.password_value({}) is None


@pytest.mark.parametrize("password", ["{{$env}}", "{{$env.A}}x", "{{$context.a}}", "{{", "a{{b}}"])
def test_a_password_that_is_not_one_env_placeholder_is_literal(password):
    credentials = trigger({"basicAuthentication": {"username": "u", "password": password}})
    assert credentials.credentials is not None
    assert credentials.credentials.password_value({"A": "x"}) == password.encode()


# -- async reply ---------------------------------------------------------------------------


def test_async_reply_defaults_to_200_ok():
    reply = trigger().reply.render({"headers": {}, "query": {}, "body": {}}, {})
    assert reply.status == 200
    assert reply.body == "ok"
    assert reply.headers == []


def test_async_reply_renders_configured_status_headers_and_body():
    config = {
        "response": {
            "statusCode": 202,
            "headers": [
                {"name": "X-Received", "value": "{{$context.body.id}}"},
                {"name": "X-Count", "value": "{{$context.body.n}}"},
                {"name": "X-Static", "value": "yes"},
            ],
            "body": {"ok": True, "id": "{{$context.body.id}}", "q": "{{$context.query.q}}"},
        }
    }
    ctx = trigger(config).build_context({}, {"q": "x"}, {"id": "evt_1", "n": 3})
    reply = trigger(config).reply.render(ctx, {})
    assert reply.status == 202
    assert reply.headers == [("X-Received", "evt_1"), ("X-Count", "3"), ("X-Static", "yes")]
    assert reply.body == {"ok": True, "id": "evt_1", "q": "x"}


def test_async_reply_can_read_mapped_variables():
    config = {
        "request": {"body": [{"key": "data.id", "_var": "body_$0"}]},
        "response": {"body": {"id": "{{ $context.body.body_$0 }}"}},
    }
    compiled = trigger(config)
    ctx = compiled.build_context({}, {}, {"data": {"id": 42}})
    assert compiled.reply.render(ctx, {}).body == {"id": 42}


def test_async_reply_can_read_env():
    config = {"response": {"body": "token={{$env.NAME}}"}}
    assert trigger(config).reply.render({}, {"NAME": "v"}).body == "token=v"


def test_async_reply_missing_header_value_renders_empty_text():
    config = {"response": {"headers": [{"name": "X-Id", "value": "{{$context.body.id}}"}]}}
    reply = trigger(config).reply.render({"body": {}}, {})
    assert reply.headers == [("X-Id", "")]


def test_async_reply_configured_without_body_still_says_ok():
    reply = trigger({"response": {"statusCode": 201}}).reply.render({}, {})
    assert reply.status == 201
    assert reply.body == "ok"


# -- bodies (SPEC §12) ----------------------------------------------------------------


def test_body_types_default_to_json_only():
    assert trigger().body_types == {"json"}
    assert trigger({"request": {"bodyTypes": ["form", "text"]}}).body_types == {"form", "text"}


def test_raw_body_is_added_only_when_configured():
    raw = b"a=1&b=%C3%A9"
    assert "rawBody" not in trigger().build_context({}, {}, {"a": "1"}, raw)
    ctx = trigger({"request": {"rawBody": True}}).build_context({}, {}, {"a": "1"}, raw)
    assert ctx["rawBody"] == "a=1&b=%C3%A9"
    assert trigger({"request": {"rawBody": True}}).build_context({}, {}, {})["rawBody"] == ""


def test_body_mapping_reads_a_form_body_as_it_reads_json():
    compiled = trigger({"request": {"body": [{"key": "item[0].sku", "_var": "sku"}]}})
    ctx = compiled.build_context({}, {}, {"item": [{"sku": "A-1"}], "payer": "x"})
    assert ctx["body"]["sku"] == "A-1"


@pytest.mark.parametrize(
    ("own", "server", "limit"), [(None, 1000, 1000), (100, 1000, 100), (5000, 1000, 1000)]
)
def test_body_limit_is_the_workflows_never_above_the_servers(own, server, limit):
    assert trigger({"maxBodyBytes": own}).body_limit(server) == limit


@pytest.mark.parametrize(
    ("scheme", "headers"),
    [
        ("stripe", ["stripe-signature"]),
        ("github", ["x-hub-signature-256"]),
        ("standard-webhooks", ["webhook-signature", "svix-signature"]),
        ("slack", ["x-slack-signature"]),
        ("twilio", ["x-twilio-signature"]),
    ],
)
def test_the_schemes_signature_headers_are_redacted(scheme, headers):
    compiled = trigger({"signature": {"scheme": scheme, "secret": "{{$env.S}}"}})
    sent = {name: "sig-value" for name in headers} | {"X-Other": "kept"}
    ctx = compiled.build_context(sent, {}, {})
    assert all(ctx["headers"][name] == REDACTED for name in headers)
    assert ctx["headers"]["x-other"] == "kept"
    assert ctx["headers"].get("authorization", REDACTED) == REDACTED


def test_a_custom_signature_header_is_redacted_and_unsigned_workflows_keep_theirs():
    compiled = trigger(
        {"signature": {"scheme": "hmac-sha256", "secret": "{{$env.S}}", "header": "X-Shop-Hmac"}}
    )
    assert compiled.build_context({"X-Shop-Hmac": "abc"}, {}, {})["headers"]["x-shop-hmac"] == (
        REDACTED
    )
    # A workflow checking a signature itself (a script over rawBody) still sees it.
    plain = trigger().build_context({"X-Hub-Signature-256": "sha256=abc"}, {}, {})
    assert plain["headers"]["x-hub-signature-256"] == "sha256=abc"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"request": {"bodyTypes": []}}, "config.request.bodyTypes: give at least one"),
        ({"maxBodyBytes": 0}, "config.maxBodyBytes: must be a number of bytes above 0"),
        ({"maxBodyBytes": -5}, "config.maxBodyBytes: must be a number of bytes above 0"),
    ],
)
def test_bad_body_settings_are_definition_errors(config, message):
    problems = body_problems(msgspec.convert(config, WebhookConfig))
    assert len(problems) == 1 and problems[0].startswith(message)


def test_unknown_body_type_is_refused_when_decoding():
    with pytest.raises(msgspec.ValidationError, match="bodyTypes"):
        msgspec.convert({"request": {"bodyTypes": ["multipart"]}}, WebhookConfig)


def test_max_body_bytes_above_the_servers_is_named():
    config = msgspec.convert({"maxBodyBytes": 2048}, WebhookConfig)
    assert over_server_limit(config, 4096) is None
    problem = over_server_limit(config, 1024)
    assert problem is not None and "RAYHOOK_MAX_BODY_BYTES" in problem and "2048" in problem
    assert over_server_limit(WebhookConfig(), 1) is None

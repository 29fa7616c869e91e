"""Bodies beyond JSON (SPEC §12) over real HTTP through gunicorn: form and text
bodies, the raw body, per-workflow size limits, and the Slack and Twilio
signature schemes signed by those providers' own libraries."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk.signature import SignatureVerifier
from twilio.request_validator import RequestValidator

from tests.e2e.conftest import Server
from tests.e2e.workflows import async_echo

FORM = {"content-type": "application/x-www-form-urlencoded"}


def accepting(*types: str, **config: Any) -> dict[str, Any]:
    request = config.pop("request", {})
    return async_echo(config={"request": {"bodyTypes": list(types), **request}, **config})


def context_of(server: Server, reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    execution = server.wait_final(reply.headers["x-rayhook-execution"])
    assert execution["status"] == 1, execution
    return execution["context"]


def test_form_body_is_parsed_like_the_query_with_mapping_and_raw_body(server: Server) -> None:
    version = server.create(
        accepting(
            "json",
            "form",
            request={
                "body": [{"key": "item[0].sku", "_var": "sku"}, {"key": "mc_gross"}],
                "rawBody": True,
            },
        )
    )
    raw = (
        "mc_gross=19.95&amount=150&item[0][sku]=A-1&item[1][sku]=B-2"
        "&tag=a&tag=b&name=J+D%C3%A9&flag"
    )
    context = context_of(server, server.hook(version["key"], content=raw, headers=FORM))
    assert context["body"] == {
        "mc_gross": "19.95",
        "amount": "150",
        "item": [{"sku": "A-1"}, {"sku": "B-2"}],
        "tag": ["a", "b"],
        "name": "J Dé",
        "flag": None,
        "sku": "A-1",
    }
    assert context["rawBody"] == raw
    # The same workflow still takes JSON, and its raw body too.
    context = context_of(server, server.hook(version["key"], {"amount": 3}))
    assert context["body"] == {"amount": 3, "sku": None, "mc_gross": None}
    assert context["rawBody"] == '{"amount":3}'


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/plain; charset=utf-8", "status=ok, order A-1 ✓"),
        ("application/xml", '<?xml version="1.0"?><Notify><Id>42</Id></Notify>'),
        ("text/xml", "<Notify/>"),
    ],
)
def test_text_body_is_the_string(server: Server, content_type: str, text: str) -> None:
    version = server.create(accepting("text"))
    reply = server.hook(
        version["key"], content=text.encode(), headers={"content-type": content_type}
    )
    assert context_of(server, reply)["body"] == text


def test_body_types_refuse_what_they_do_not_list(server: Server) -> None:
    form_only = server.create(accepting("form"))
    reply = server.hook(form_only["key"], {"amount": 1})
    assert reply.status_code == 415
    assert reply.json() == {
        "errors": [{"message": "the body must be a form (application/x-www-form-urlencoded)"}]
    }
    for content_type in (
        "text/plain",
        "multipart/form-data; boundary=x",
        "application/octet-stream",
    ):
        reply = server.hook(
            form_only["key"], content=b"a=1", headers={"content-type": content_type}
        )
        assert reply.status_code == 415, content_type
    # An empty body needs no type, whatever the workflow takes, and is {}.
    assert context_of(server, server.hook(form_only["key"]))["body"] == {}


MALFORMED = {
    "bad percent escape": b"payer=a%zzb&amount=1",
    "lone percent": b"amount=50%",
    "10,000 keys": b"&".join(b"k%d=1" % i for i in range(10_000)),
    "deep nesting": b"a" + b"[b]" * 50 + b"=1",
    "not UTF-8": b"name=caf\xe9",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_form_bodies_are_400_with_a_json_error(server: Server, body: bytes) -> None:
    version = server.create(accepting("form", "json"))
    reply = server.hook(version["key"], content=body, headers=FORM)
    assert reply.status_code == 400
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["errors"][0]["message"].startswith("request body is not")
    # The worker that refused it serves the next delivery.
    assert server.hook(version["key"], content=b"amount=1", headers=FORM).status_code == 200


def test_text_body_that_is_not_utf8_is_400(server: Server) -> None:
    version = server.create(accepting("text"))
    reply = server.hook(version["key"], content=b"caf\xe9", headers={"content-type": "text/plain"})
    assert reply.status_code == 400
    assert reply.json() == {"errors": [{"message": "request body is not valid UTF-8"}]}


def test_workflow_body_limit_is_413_above_it(server: Server) -> None:
    version = server.create(async_echo(config={"maxBodyBytes": 100}))
    at_limit = b'{"amount": 1, "pad": "' + b"x" * 76 + b'"}'
    assert len(at_limit) == 100
    assert (
        server.hook(
            version["key"], content=at_limit, headers={"content-type": "application/json"}
        ).status_code
        == 200
    )
    reply = server.hook(
        version["key"], content=at_limit + b" ", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 413
    assert reply.json() == {
        "errors": [{"message": "request body is larger than the limit of 100 bytes"}]
    }

    def chunks():  # no Content-Length: the workflow's limit holds while streaming
        yield b'{"pad": "'
        for _ in range(10):
            yield b"x" * 20

    streamed = server.hook(
        version["key"], content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413


def test_workflow_body_limit_above_the_servers_is_refused_at_definition(server: Server) -> None:
    too_big = async_echo(config={"maxBodyBytes": 2 * 1024 * 1024})
    reply = server.admin.post("/api/workflows:create", json=too_big)
    assert reply.status_code == 400
    message = reply.json()["errors"][0]["message"]
    assert message.startswith("config.maxBodyBytes: 2097152 is above this server's limit")
    version = server.create(async_echo(config={"maxBodyBytes": 4096}))
    reply = server.admin.post(
        "/api/workflows:update",
        params={"filterByTk": version["id"]},
        json={"config": {"maxBodyBytes": 1024 * 1024 + 1}},
    )
    assert reply.status_code == 400
    assert "RAYHOOK_MAX_BODY_BYTES" in reply.json()["errors"][0]["message"]
    for bad in (0, -1):
        reply = server.admin.post(
            "/api/workflows:create", json=async_echo(config={"maxBodyBytes": bad})
        )
        assert reply.status_code == 400
        assert "config.maxBodyBytes" in reply.json()["errors"][0]["message"]


# -- signatures over real HTTP --------------------------------------------------------

SLACK_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TWILIO_TOKEN = "twilio-auth-token-0123456789abcd"
PUBLIC = "https://hooks.example.com"


def slack_signed(body: bytes, secret: str = SLACK_SECRET, at: int | None = None) -> dict[str, str]:
    timestamp = str(int(time.time()) if at is None else at)
    signed = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    assert signed is not None
    return {**FORM, "X-Slack-Signature": signed, "X-Slack-Request-Timestamp": timestamp}


def test_slack_signed_form_accepted_tampered_refused_signature_redacted(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(RAYHOOK_ENV_SLACK_SECRET=SLACK_SECRET)
    version = server.create(
        accepting("form", signature={"scheme": "slack", "secret": "{{$env.SLACK_SECRET}}"})
    )
    body = b"command=%2Forder&text=A-1&user_id=U1&amount=7"
    ok = server.hook(version["key"], content=body, headers=slack_signed(body))
    context = context_of(server, ok)
    assert context["body"]["text"] == "A-1"
    assert context["headers"]["x-slack-signature"] == "[redacted]"
    assert context["headers"]["x-slack-request-timestamp"].isdigit()
    for headers in (
        slack_signed(body, "wrong-secret"),
        slack_signed(body, at=int(time.time()) - 600),
        FORM,
    ):
        reply = server.hook(version["key"], content=body, headers=headers)
        assert reply.status_code == 401
        assert reply.json() == {"errors": [{"message": "invalid or missing signature"}]}
    tampered = server.hook(version["key"], content=body + b"0", headers=slack_signed(body))
    assert tampered.status_code == 401
    # The signature is nowhere in what was stored.
    stored = server.admin.get("/api/executions:get", params={"filterByTk": context_id(ok)}).text
    assert slack_signed(body)["X-Slack-Signature"][3:13] not in stored


def context_id(reply: Any) -> str:
    return str(reply.headers["x-rayhook-execution"])


PARAMS = {"MessageSid": "SM123", "From": "+15005550006", "Body": "PAY A-1", "amount": "2"}


def twilio_signed(url: str, params: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    return {**FORM, "X-Twilio-Signature": RequestValidator(token).compute_signature(url, params)}


def test_twilio_signed_over_the_requests_own_url(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(RAYHOOK_ENV_TWILIO=TWILIO_TOKEN)
    version = server.create(
        accepting("form", signature={"scheme": "twilio", "secret": "{{$env.TWILIO}}"})
    )
    path = f"/api/webhook:trigger/{version['key']}?channel=sms"
    body = urlencode(PARAMS).encode()
    url = server.url + path
    ok = server.http.post(path, content=body, headers=twilio_signed(url, PARAMS))
    context = context_of(server, ok)
    assert context["body"] == PARAMS and context["query"] == {"channel": "sms"}
    assert context["headers"]["x-twilio-signature"] == "[redacted]"
    tampered = urlencode({**PARAMS, "Body": "PAY Z-9"}).encode()
    assert (
        server.http.post(path, content=tampered, headers=twilio_signed(url, PARAMS)).status_code
        == 401
    )
    # Signed for another URL (another query) or with another token: refused.
    other = url.replace("sms", "voice")
    assert (
        server.http.post(path, content=body, headers=twilio_signed(other, PARAMS)).status_code
        == 401
    )
    wrong = twilio_signed(url, PARAMS, "another-token")
    assert server.http.post(path, content=body, headers=wrong).status_code == 401


def test_twilio_signed_over_the_public_url_when_set(make_server) -> None:  # type: ignore[no-untyped-def]
    server: Server = make_server(RAYHOOK_ENV_TWILIO=TWILIO_TOKEN, RAYHOOK_PUBLIC_URL=PUBLIC + "/")
    version = server.create(
        accepting("form", signature={"scheme": "twilio", "secret": "{{$env.TWILIO}}"})
    )
    path = f"/api/webhook:trigger/{version['key']}"
    body = urlencode(PARAMS).encode()
    public = server.http.post(path, content=body, headers=twilio_signed(PUBLIC + path, PARAMS))
    assert context_of(server, public)["body"] == PARAMS
    # Twilio signs https URLs with or without :443.
    with_port = twilio_signed("https://hooks.example.com:443" + path, PARAMS)
    assert server.http.post(path, content=body, headers=with_port).status_code == 200
    # What the server itself sees is not what the provider called.
    local = twilio_signed(server.url + path, PARAMS)
    assert server.http.post(path, content=body, headers=local).status_code == 401

"""Signature schemes, checked with vectors built by each provider's documented
algorithm (Stripe: HMAC-SHA256 of `t.body`; GitHub: `sha256=` HMAC of the body;
Standard Webhooks: `v1,` base64 HMAC of `id.timestamp.body` with a `whsec_` key)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from engine.definition import SignatureConfig, WebhookConfig
from engine.trigger import Signature, compile_trigger, security_problems
from ingress.signatures import verify

BODY = b'{"id":"evt_1","type":"payment_intent.succeeded"}'
ENV = {"SECRET": "whsec_test_secret", "OLD": "old-secret"}
NOW = 1_700_000_000


def signature(**fields: object) -> Signature:
    config = WebhookConfig(signature=SignatureConfig(**fields))  # type: ignore[arg-type]
    compiled = compile_trigger(config).signature
    assert compiled is not None
    return compiled


def hex_hmac(secret: str, data: bytes) -> str:
    return hmac.new(secret.encode(), data, hashlib.sha256).hexdigest()


def stripe_header(secret: str, body: bytes, t: int) -> str:
    return f"t={t},v1={hex_hmac(secret, f'{t}.'.encode() + body)},v0=ignored"


# -- stripe ---------------------------------------------------------------------------


def test_stripe_signature_accepted() -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}")
    headers = {"stripe-signature": stripe_header(ENV["SECRET"], BODY, NOW)}
    assert verify(sig, headers, BODY, ENV, now=NOW + 10)


def test_stripe_any_of_several_v1_signatures_matches() -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}")
    good = hex_hmac(ENV["SECRET"], f"{NOW}.".encode() + BODY)
    headers = {"stripe-signature": f"t={NOW},v1={'0' * 64},v1={good}"}
    assert verify(sig, headers, BODY, ENV, now=NOW)


@pytest.mark.parametrize("skew", [301, -301])
def test_stripe_timestamp_outside_tolerance_rejected(skew: int) -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}")
    headers = {"stripe-signature": stripe_header(ENV["SECRET"], BODY, NOW)}
    assert not verify(sig, headers, BODY, ENV, now=NOW + skew)


def test_stripe_custom_tolerance() -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}", tolerance=10)
    headers = {"stripe-signature": stripe_header(ENV["SECRET"], BODY, NOW)}
    assert not verify(sig, headers, BODY, ENV, now=NOW + 11)
    assert verify(sig, headers, BODY, ENV, now=NOW + 9)


@pytest.mark.parametrize(
    "header",
    ["", "t=abc,v1=00", f"v1={'a' * 64}", f"t={NOW}", "garbage", f"t={NOW},v1=zz"],
)
def test_stripe_malformed_or_missing_header_rejected(header: str) -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}")
    assert not verify(sig, {"stripe-signature": header}, BODY, ENV, now=NOW)


def test_stripe_tampered_body_rejected() -> None:
    sig = signature(scheme="stripe", secret="{{$env.SECRET}}")
    headers = {"stripe-signature": stripe_header(ENV["SECRET"], BODY, NOW)}
    assert not verify(sig, headers, BODY.replace(b"evt_1", b"evt_2"), ENV, now=NOW)


# -- github -------------------------------------------------------------------------


def test_github_signature_accepted_and_tamper_rejected() -> None:
    sig = signature(scheme="github", secret="{{$env.SECRET}}")
    headers = {"x-hub-signature-256": "sha256=" + hex_hmac(ENV["SECRET"], BODY)}
    assert verify(sig, headers, BODY, ENV)
    assert not verify(sig, headers, BODY + b" ", ENV)
    assert not verify(sig, {"x-hub-signature-256": hex_hmac(ENV["SECRET"], BODY)}, BODY, ENV)
    assert not verify(sig, {}, BODY, ENV)


def test_github_known_vector_from_its_docs() -> None:
    # docs.github.com "Validating webhook deliveries": secret "It's a Secret to
    # Everybody", payload "Hello, World!".
    sig = signature(scheme="github", secret="{{$env.GH}}")
    expected = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    headers = {"x-hub-signature-256": f"sha256={expected}"}
    assert verify(sig, headers, b"Hello, World!", {"GH": "It's a Secret to Everybody"})


# -- standard webhooks -----------------------------------------------------------------


def standard_headers(secret: str, msg_id: str, t: int, body: bytes) -> dict[str, str]:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{msg_id}.{t}.".encode() + body, hashlib.sha256).digest()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(t),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }


STANDARD_SECRET = "whsec_" + base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()


def test_standard_webhooks_accepted_with_rotation_and_tamper_rejected() -> None:
    env = {"NEW": STANDARD_SECRET, "OLD": "whsec_" + base64.b64encode(b"old-key-old-key!").decode()}
    sig = signature(scheme="standard-webhooks", secret=["{{$env.NEW}}", "{{$env.OLD}}"])
    now = int(time.time())
    signed_old = standard_headers(env["OLD"], "msg_1", now, BODY)
    assert verify(sig, signed_old, BODY, env)
    signed_new = standard_headers(env["NEW"], "msg_2", now, BODY)
    # several signatures in one header (the provider's rotation), one of them ours
    signed_new["webhook-signature"] = "v1,Zm9v " + signed_new["webhook-signature"]
    assert verify(sig, signed_new, BODY, env)
    assert not verify(sig, signed_new, BODY + b"x", env)
    stale = standard_headers(env["NEW"], "msg_3", now - 3600, BODY)
    assert not verify(sig, stale, BODY, env)
    assert not verify(sig, {"webhook-id": "x"}, BODY, env)


# -- generic hmac-sha256 -------------------------------------------------------------


def test_generic_hmac_hex_and_base64_with_prefix() -> None:
    hex_sig = signature(scheme="hmac-sha256", secret="{{$env.OLD}}", header="X-Shop-Signature")
    headers = {"x-shop-signature": hex_hmac(ENV["OLD"], BODY)}
    assert verify(hex_sig, headers, BODY, ENV)
    b64 = signature(
        scheme="hmac-sha256",
        secret="{{$env.OLD}}",
        header="X-Sig",
        encoding="base64",
        prefix="sha256=",
    )
    digest = base64.b64encode(hmac.new(b"old-secret", BODY, hashlib.sha256).digest()).decode()
    assert verify(b64, {"x-sig": f"sha256={digest}"}, BODY, ENV)
    assert not verify(b64, {"x-sig": digest}, BODY, ENV)
    assert not verify(b64, {"x-sig": "sha256="}, BODY, ENV)


def test_unset_secret_rejects_everything() -> None:
    sig = signature(scheme="github", secret="{{$env.MISSING}}")
    headers = {"x-hub-signature-256": "sha256=" + hex_hmac("", BODY)}
    assert not verify(sig, headers, BODY, {})


# -- definition checks ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"scheme": "github", "secret": "literal-secret"}, "$env"),
        ({"scheme": "github", "secret": "{{$context.body.x}}"}, "$env"),
        ({"scheme": "github", "secret": []}, "at least one"),
        ({"scheme": "hmac-sha256", "secret": "{{$env.X}}"}, "header"),
        ({"scheme": "stripe", "secret": "{{$env.X}}", "tolerance": 0}, "tolerance"),
    ],
)
def test_bad_signature_configs_are_definition_errors(fields: dict, message: str) -> None:
    problems = security_problems(WebhookConfig(signature=SignatureConfig(**fields)))
    assert problems and message in problems[0]


def test_svix_header_names_accepted_as_the_svix_library_signs_them() -> None:
    # Svix (and Clerk, Resend, ... built on it) sends svix-id/svix-timestamp/
    # svix-signature; its own library's verifier accepts such a request.
    from datetime import UTC, datetime

    from svix.webhooks import Webhook as SvixWebhook

    sig = signature(scheme="standard-webhooks", secret="{{$env.NEW}}")
    env = {"NEW": STANDARD_SECRET}
    sent = datetime.now(tz=UTC)
    signed = SvixWebhook(STANDARD_SECRET).sign("msg_svix_1", sent, BODY.decode())
    headers = {
        "svix-id": "msg_svix_1",
        "svix-timestamp": str(int(sent.timestamp())),
        "svix-signature": signed,
    }
    SvixWebhook(STANDARD_SECRET).verify(BODY, headers)  # the provider's own check passes
    assert verify(sig, headers, BODY, env)
    assert not verify(sig, headers, BODY + b" ", env)
    assert not verify(sig, {**headers, "svix-id": "msg_other"}, BODY, env)
    assert not verify(
        sig, {**headers, "svix-timestamp": str(int(sent.timestamp()) - 3600)}, BODY, env
    )


# -- slack: signed by slack_sdk's SignatureVerifier ---------------------------------------

SLACK_FORM = b"token=x&team_id=T1&command=%2Fpay&text=status+A-1&response_url=https%3A%2F%2Fh"


def slack_headers(secret: str, body: bytes, t: int) -> dict[str, str]:
    from slack_sdk.signature import SignatureVerifier

    signed = SignatureVerifier(secret).generate_signature(timestamp=str(t), body=body)
    assert signed is not None
    return {"x-slack-signature": signed, "x-slack-request-timestamp": str(t)}


def test_slack_signature_from_its_sdk_accepted_and_tamper_rejected() -> None:
    from slack_sdk.signature import SignatureVerifier

    sig = signature(scheme="slack", secret="{{$env.SLACK}}")
    env = {"SLACK": "8f742231b10e8888abcd99yyyzzz85a5"}
    now = int(time.time())
    headers = slack_headers(env["SLACK"], SLACK_FORM, now)
    assert SignatureVerifier(env["SLACK"]).is_valid_request(SLACK_FORM, headers)
    assert verify(sig, headers, SLACK_FORM, env)
    assert not verify(sig, headers, SLACK_FORM.replace(b"A-1", b"A-2"), env)
    assert not verify(sig, slack_headers("other-secret", SLACK_FORM, now), SLACK_FORM, env)
    forged_time = {**headers, "x-slack-request-timestamp": str(now + 1)}
    assert not verify(sig, forged_time, SLACK_FORM, env)
    no_prefix = {**headers, "x-slack-signature": headers["x-slack-signature"][3:]}
    assert not verify(sig, no_prefix, SLACK_FORM, env)
    assert not verify(sig, {"x-slack-signature": headers["x-slack-signature"]}, SLACK_FORM, env)


@pytest.mark.parametrize(
    ("skew", "accepted"), [(299, True), (-299, True), (301, False), (-301, False)]
)
def test_slack_timestamp_tolerance_is_five_minutes_as_its_sdk(skew: int, accepted: bool) -> None:
    sig = signature(scheme="slack", secret="{{$env.SLACK}}")
    headers = slack_headers("s3cret", SLACK_FORM, NOW)
    assert verify(sig, headers, SLACK_FORM, {"SLACK": "s3cret"}, now=NOW + skew) is accepted


def test_slack_malformed_timestamp_rejected() -> None:
    sig = signature(scheme="slack", secret="{{$env.SLACK}}")
    headers = {**slack_headers("s3cret", SLACK_FORM, NOW), "x-slack-request-timestamp": "soon"}
    assert not verify(sig, headers, SLACK_FORM, {"SLACK": "s3cret"}, now=NOW)


# -- twilio: signed by twilio's RequestValidator ----------------------------------------

TWILIO_TOKEN = "12345"
TWILIO_URL = "https://mycompany.com/api/webhook:trigger/sms?foo=1"
TWILIO_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
FORM = "application/x-www-form-urlencoded"


def twilio_form(params: dict[str, str] | list[tuple[str, str]]) -> bytes:
    from urllib.parse import urlencode

    return urlencode(params).encode()


def twilio_headers(url: str, params: object, token: str = TWILIO_TOKEN) -> dict[str, str]:
    from twilio.request_validator import RequestValidator

    signed = RequestValidator(token).compute_signature(url, params)
    return {"x-twilio-signature": signed, "content-type": FORM}


def test_twilio_signature_from_its_library_accepted_and_tamper_rejected() -> None:
    sig = signature(scheme="twilio", secret="{{$env.TWILIO}}")
    env = {"TWILIO": TWILIO_TOKEN}
    body = twilio_form(TWILIO_PARAMS)
    headers = twilio_headers(TWILIO_URL, TWILIO_PARAMS)
    assert verify(sig, headers, body, env, url=TWILIO_URL)
    tampered = twilio_form({**TWILIO_PARAMS, "Digits": "9999"})
    assert not verify(sig, headers, tampered, env, url=TWILIO_URL)
    extra = twilio_form({**TWILIO_PARAMS, "Extra": "1"})
    assert not verify(sig, headers, extra, env, url=TWILIO_URL)
    other_url = TWILIO_URL.replace("foo=1", "foo=2")
    assert not verify(sig, headers, body, env, url=other_url)
    assert not verify(
        sig, twilio_headers(TWILIO_URL, TWILIO_PARAMS, "nope"), body, env, url=TWILIO_URL
    )
    assert not verify(sig, {"content-type": FORM}, body, env, url=TWILIO_URL)
    assert not verify(sig, headers, body, env, url="")


def test_twilio_known_vector_from_its_docs() -> None:
    # twilio.com/docs/usage/security: auth token 12345, this URL and these
    # parameters sign to 0/KCTR6DLpKmkAf8muzZqo1nDgQ= (the documented value).
    sig = signature(scheme="twilio", secret="{{$env.TWILIO}}")
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    headers = {"x-twilio-signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ=", "content-type": FORM}
    assert twilio_headers(url, TWILIO_PARAMS)["x-twilio-signature"] == headers["x-twilio-signature"]
    assert verify(sig, headers, twilio_form(TWILIO_PARAMS), {"TWILIO": TWILIO_TOKEN}, url=url)


def test_twilio_repeated_and_unordered_parameters_are_sorted_as_its_library_does() -> None:
    class Repeated(dict):  # the shape of a multi-dict, as twilio reads one (`getall`)
        def getall(self, name: str) -> list[str]:
            return [value for key, value in pairs if key == name]

    pairs = [("To", "+1800"), ("Media", "b"), ("Media", "a"), ("Body", "hi there"), ("Media", "a")]
    sig = signature(scheme="twilio", secret="{{$env.TWILIO}}")
    headers = twilio_headers(TWILIO_URL, Repeated(pairs))
    assert verify(sig, headers, twilio_form(pairs), {"TWILIO": TWILIO_TOKEN}, url=TWILIO_URL)


@pytest.mark.parametrize(
    ("signed_url", "our_url"),
    [
        ("https://mycompany.com:443/hook", "https://mycompany.com/hook"),
        ("https://mycompany.com/hook", "https://mycompany.com:443/hook"),
        ("http://127.0.0.1:8080/hook", "http://127.0.0.1:8080/hook"),
    ],
)
def test_twilio_url_signed_with_or_without_the_port(signed_url: str, our_url: str) -> None:
    sig = signature(scheme="twilio", secret="{{$env.TWILIO}}")
    headers = twilio_headers(signed_url, TWILIO_PARAMS)
    assert verify(sig, headers, twilio_form(TWILIO_PARAMS), {"TWILIO": TWILIO_TOKEN}, url=our_url)


def test_twilio_json_body_signed_through_body_sha256() -> None:
    from twilio.request_validator import RequestValidator

    validator = RequestValidator(TWILIO_TOKEN)
    body = '{"property": "value", "boolean": true}'
    url = "https://mycompany.com/hook?bodySHA256=" + validator.compute_hash(body)
    headers = {
        "x-twilio-signature": validator.compute_signature(url, {}),
        "content-type": "application/json",
    }
    assert validator.validate(url, body, headers["x-twilio-signature"])
    sig = signature(scheme="twilio", secret="{{$env.TWILIO}}")
    env = {"TWILIO": TWILIO_TOKEN}
    assert verify(sig, headers, body.encode(), env, url=url)
    assert not verify(sig, headers, body.replace("true", "false").encode(), env, url=url)

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

"""Signature verification over the raw body, before it is parsed (beyond
NocoBase; the schemes of Stripe, GitHub, Standard Webhooks (and Svix), Slack,
Twilio, and a generic HMAC-SHA256). Every failure is the same 401 to the
caller: which check failed is logged here, never told to someone probing the URL."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, parse_qsl, urlsplit, urlunsplit

from standardwebhooks import Webhook

from engine.trigger import Signature

log = logging.getLogger("rayhook.signatures")


@dataclass(frozen=True, slots=True)
class Call:
    """What a scheme checks: the lower-cased `headers`, the raw `body`, the
    clock (`now`) and the public `url` the provider called."""

    headers: Mapping[str, str]
    body: bytes
    now: float
    url: str


Verifier = Callable[[Signature, list[str], Call], bool]


def verify(
    signature: Signature,
    headers: Mapping[str, str],
    body: bytes,
    env: Mapping[str, str],
    now: float | None = None,
    url: str = "",
) -> bool:
    """Whether the request is signed with one of the configured secrets.

    `headers` has lower-cased names; `url` is the public URL the provider
    called (only twilio signs it). Several secrets are tried in turn, so a
    provider's secret can rotate without a failed delivery."""
    secrets = signature.secret_values(env)
    if not secrets:
        log.error("signature secret is not configured (the $env variable is empty or unset)")
        return False
    check = _SCHEMES[signature.scheme]
    try:
        return check(
            signature, secrets, Call(headers, body, time.time() if now is None else now, url)
        )
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        log.info("signature rejected: malformed header (%s)", type(exc).__name__)
        return False


def _stripe(sig: Signature, secrets: list[str], call: Call) -> bool:
    """`Stripe-Signature: t=<unix>,v1=<hex>[,v1=...]`: HMAC-SHA256 of `t.body`."""
    header = call.headers.get(sig.header, "")
    timestamp, candidates = "", []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamp = value
        elif name == "v1":
            candidates.append(value)
    if not timestamp or not candidates:
        log.info("signature rejected: stripe header incomplete")
        return False
    if abs(call.now - int(timestamp)) > sig.tolerance:
        log.info("signature rejected: stripe timestamp outside the tolerance")
        return False
    signed = timestamp.encode() + b"." + call.body
    return _any_match(secrets, signed, candidates, "hex")


def _github(sig: Signature, secrets: list[str], call: Call) -> bool:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`."""
    header = call.headers.get(sig.header, "")
    if not header.startswith("sha256="):
        log.info("signature rejected: github header missing")
        return False
    return _any_match(secrets, call.body, [header[len("sha256=") :]], "hex")


def _standard_webhooks(sig: Signature, secrets: list[str], call: Call) -> bool:
    """`webhook-id`/`webhook-timestamp`/`webhook-signature` with `whsec_` secrets
    (the `standardwebhooks` library; its tolerance is five minutes). Svix, and
    the providers built on it, name them `svix-*`: each `svix-` header is taken
    before its `webhook-` twin, as the svix library does."""
    names = ("id", "timestamp", "signature")
    signed = {
        f"webhook-{n}": call.headers.get(f"svix-{n}") or call.headers.get(f"webhook-{n}", "")
        for n in names
    }
    for secret in secrets:
        try:
            Webhook(secret).verify(call.body, signed, json_parse=False)
            return True
        except Exception:  # the library raises several types; all mean "no"
            continue
    log.info("signature rejected: no standard-webhooks secret matched")
    return False


def _hmac_sha256(sig: Signature, secrets: list[str], call: Call) -> bool:
    """A digest of the body in a header of your choice, hex or base64, after an
    optional prefix (`sha256=`)."""
    header = call.headers.get(sig.header, "").strip()
    if not header.startswith(sig.prefix) or len(header) == len(sig.prefix):
        log.info("signature rejected: %s header missing", sig.header)
        return False
    return _any_match(secrets, call.body, [header[len(sig.prefix) :]], sig.encoding)


def _slack(sig: Signature, secrets: list[str], call: Call) -> bool:
    """`X-Slack-Signature: v0=<hex HMAC-SHA256 of v0:<timestamp>:<body>>`, the
    timestamp from `X-Slack-Request-Timestamp` (tolerance 300 s, as Slack's SDK)."""
    header = call.headers.get(sig.header, "").strip()
    timestamp = call.headers.get("x-slack-request-timestamp", "").strip()
    if not header.startswith("v0=") or not timestamp:
        log.info("signature rejected: slack headers missing")
        return False
    if abs(call.now - int(timestamp)) > sig.tolerance:
        log.info("signature rejected: slack timestamp outside the tolerance")
        return False
    signed = b"v0:" + timestamp.encode() + b":" + call.body
    return _any_match(secrets, signed, [header[len("v0=") :]], "hex")


def _twilio(sig: Signature, secrets: list[str], call: Call) -> bool:
    """`X-Twilio-Signature`: base64 HMAC-SHA1 of the URL followed by each form
    parameter's name and value, sorted, as twilio's `RequestValidator` computes it
    (a JSON body is signed through the URL's `bodySHA256`, its SHA-256). Twilio
    signs the URL sometimes with the port and sometimes without: both are tried."""
    header = call.headers.get(sig.header, "").strip()
    if not header or not call.url:
        log.info("signature rejected: twilio header missing")
        return False
    body_hash = parse_qs(urlsplit(call.url).query).get("bodySHA256")
    params = ""
    if body_hash is not None:
        if not hmac.compare_digest(hashlib.sha256(call.body).hexdigest(), body_hash[0]):
            log.info("signature rejected: twilio bodySHA256 does not match the body")
            return False
    elif (
        call.headers.get("content-type", "").lower().startswith("application/x-www-form-urlencoded")
    ):
        values: dict[str, set[str]] = {}
        for name, value in parse_qsl(call.body.decode(), keep_blank_values=True):
            values.setdefault(name, set()).add(value)
        params = "".join(name + v for name in sorted(values) for v in sorted(values[name]))
    for signed_url in _with_and_without_port(call.url):
        signed = (signed_url + params).encode()
        for secret in secrets:
            digest = hmac.new(secret.encode(), signed, hashlib.sha1).digest()
            if hmac.compare_digest(base64.b64encode(digest), header.encode()):
                return True
    log.info("signature rejected: digest mismatch")
    return False


def _with_and_without_port(url: str) -> tuple[str, str]:
    """`url` as given, and with its port removed (or the default port added)."""
    parts = urlsplit(url)
    if parts.port is not None:
        other = parts._replace(netloc=parts.netloc.rsplit(":", 1)[0])
    else:
        other = parts._replace(netloc=f"{parts.netloc}:{443 if parts.scheme == 'https' else 80}")
    return url, urlunsplit(other)


def _any_match(secrets: list[str], signed: bytes, candidates: list[str], encoding: str) -> bool:
    for secret in secrets:
        digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
        expected = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
        for candidate in candidates:
            if hmac.compare_digest(expected.encode(), candidate.strip().encode()):
                return True
    log.info("signature rejected: digest mismatch")
    return False


_SCHEMES: dict[str, Verifier] = {
    "stripe": _stripe,
    "github": _github,
    "standard-webhooks": _standard_webhooks,
    "hmac-sha256": _hmac_sha256,
    "slack": _slack,
    "twilio": _twilio,
}

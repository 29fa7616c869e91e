"""The webhook trigger's semantics (SPEC §2.1, §2.2), HTTP-free: how a request's
headers, query and body become `$context`, and what an async webhook answers.
Compiled once per workflow version; the ingress calls it per request."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any

from engine.definition import MappedField, WebhookConfig
from engine.jsvalues import to_display_string
from engine.paths import get_request_path, parse_request_path
from engine.records import Reply
from engine.scope import trigger_scope
from engine.templates import Renderer, Single, TemplateError, compile_template

REDACTED_HEADERS = frozenset({"authorization", "cookie"})
REDACTED = "[redacted]"


@dataclass(frozen=True, slots=True)
class FieldMapping:
    name: str
    path: tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class AsyncReply:
    status: int
    headers: tuple[tuple[str, Renderer], ...]
    body: Renderer

    def render(self, context: Mapping[str, Any], env: Mapping[str, str]) -> Reply:
        scope = trigger_scope(context, env)
        return Reply(
            status=self.status,
            headers=[
                (name, to_display_string(value.render(scope))) for name, value in self.headers
            ],
            body=self.body.render(scope),
        )


DEFAULT_ASYNC_REPLY = AsyncReply(200, (), compile_template("ok"))


@dataclass(frozen=True, slots=True)
class Signature:
    """How to check a request's signature; the secrets resolve from `$env`."""

    scheme: str
    secrets: tuple[Renderer, ...]
    tolerance: int
    header: str  # lower-cased
    encoding: str
    prefix: str

    def secret_values(self, env: Mapping[str, str]) -> list[str]:
        scope = trigger_scope({}, env)
        return [str(v) for r in self.secrets if (v := r.render(scope))]


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    """Webhook Basic auth. The password is literal text, or one `{{$env.NAME}}`
    placeholder read per request (like a signature secret), which keeps it out
    of the definition and the store."""

    username: bytes
    password: bytes | Renderer

    def password_value(self, env: Mapping[str, str]) -> bytes | None:
        """None when the `$env` variable is unset or empty: then nobody gets in."""
        if isinstance(self.password, bytes):
            return self.password
        value = self.password.render(trigger_scope({}, env))
        return None if value is None or value == "" else to_display_string(value).encode()


@dataclass(frozen=True, slots=True)
class Dedupe:
    id: Renderer
    window: int

    def event_id(self, context: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
        """The delivery's id, or None when the request carries none (no dedupe)."""
        value = self.id.render(trigger_scope(context, env))
        if value is None or value == "":
            return None
        return to_display_string(value)


_SIGNATURE_HEADERS = {
    "stripe": "stripe-signature",
    "github": "x-hub-signature-256",
    "standard-webhooks": "webhook-signature",
    "slack": "x-slack-signature",
    "twilio": "x-twilio-signature",
}
#: Headers a scheme reads its signature from besides `Signature.header`.
_OTHER_SIGNATURE_HEADERS = {"standard-webhooks": ("svix-signature",)}
DEFAULT_BODY_TYPES = frozenset({"json"})


@dataclass(frozen=True, slots=True)
class CompiledTrigger:
    """A webhook workflow's request handling: credentials, mappings, async reply,
    the body types it takes and its own body limit (0: the server's)."""

    credentials: BasicCredentials | None
    query: tuple[FieldMapping, ...]
    body: tuple[FieldMapping, ...]
    reply: AsyncReply
    signature: Signature | None = None
    dedupe: Dedupe | None = None
    body_types: frozenset[str] = DEFAULT_BODY_TYPES
    raw_body: bool = False
    max_body_bytes: int = 0
    redacted: frozenset[str] = REDACTED_HEADERS

    def body_limit(self, server_limit: int) -> int:
        """Bytes a body may have: the workflow's limit, never above the server's."""
        own = self.max_body_bytes
        return own if 0 < own < server_limit else server_limit

    def build_context(
        self,
        headers: Mapping[str, str],
        query: dict[str, Any],
        body: Any,
        raw: bytes = b"",
        also: AbstractSet[str] = frozenset(),
    ) -> dict[str, Any]:
        """`$context` for one request: headers lower-cased with secrets redacted
        (the SPEC's two, the workflow's signature headers and the operator's
        list, `also`), query and body plus one entry per configured item, and
        `rawBody` when configured."""
        redacted = self.redacted
        clean = {
            name: (REDACTED if name in redacted or name in also else value)
            for name, value in ((n.lower(), v) for n, v in headers.items())
        }
        if self.query:
            query = _with_mapped(query, self.query)
        if self.body and isinstance(body, dict):
            body = _with_mapped(body, self.body)
        context = {"headers": clean, "query": query, "body": body}
        if self.raw_body:
            # The ingress has checked the body is UTF-8; "replace" keeps this total.
            context["rawBody"] = raw.decode("utf-8", "replace")
        return context


def _with_mapped(source: dict[str, Any], mappings: tuple[FieldMapping, ...]) -> dict[str, Any]:
    """A shallow copy of `source` plus one entry per configured item."""
    out = dict(source)
    for m in mappings:
        out[m.name] = get_request_path(source, m.path)
    return out


def compile_trigger(config: WebhookConfig, *, sync: bool = False) -> CompiledTrigger:
    """The trigger's checks and async reply, ready per request. A sync
    workflow's `config.response` is ignored (its response node answers)."""
    auth = config.basicAuthentication
    credentials = None
    if auth and not isinstance(auth, bool):
        password = env_placeholder(auth.password) or auth.password.encode()
        credentials = BasicCredentials(auth.username.encode(), password)
    reply = DEFAULT_ASYNC_REPLY
    if config.response is not None and not sync:
        r = config.response
        reply = AsyncReply(
            r.statusCode,
            tuple((h.name, compile_template(h.value)) for h in r.headers),
            compile_template(r.body),
        )
    signature = None
    redacted = REDACTED_HEADERS
    if config.signature is not None:
        sig = config.signature
        secrets = [sig.secret] if isinstance(sig.secret, str) else sig.secret
        signature = Signature(
            scheme=sig.scheme,
            secrets=tuple(compile_template(s) for s in secrets),
            tolerance=sig.tolerance,
            header=(sig.header or _SIGNATURE_HEADERS.get(sig.scheme, "")).lower(),
            encoding=sig.encoding,
            prefix=sig.prefix,
        )
        # Stored in clear, a signature would let whoever reads executions replay
        # the delivery within the tolerance.
        redacted = redacted | {signature.header, *_OTHER_SIGNATURE_HEADERS.get(sig.scheme, ())}
    dedupe = None
    if config.dedupe is not None:
        dedupe = Dedupe(compile_template(config.dedupe.id), config.dedupe.window)
    request = config.request
    return CompiledTrigger(
        credentials,
        tuple(_mapping(f) for f in request.query),
        tuple(_mapping(f) for f in request.body),
        reply,
        signature,
        dedupe,
        body_types=frozenset(request.bodyTypes) or DEFAULT_BODY_TYPES,
        raw_body=request.rawBody,
        max_body_bytes=config.maxBodyBytes or 0,
        redacted=redacted,
    )


def body_problems(config: WebhookConfig) -> list[str]:
    """Definition errors of `config.request.bodyTypes` and `config.maxBodyBytes`."""
    problems: list[str] = []
    if not config.request.bodyTypes:
        problems.append('config.request.bodyTypes: give at least one of "json", "form", "text"')
    if config.maxBodyBytes is not None and config.maxBodyBytes <= 0:
        problems.append("config.maxBodyBytes: must be a number of bytes above 0")
    return problems


def over_server_limit(config: WebhookConfig, server_limit: int) -> str | None:
    """The definition error of a `config.maxBodyBytes` above the server's
    RAYHOOK_MAX_BODY_BYTES (which only the server knows), or None."""
    if config.maxBodyBytes is not None and config.maxBodyBytes > server_limit:
        return (
            f"config.maxBodyBytes: {config.maxBodyBytes} is above this server's limit of "
            f"{server_limit} bytes (RAYHOOK_MAX_BODY_BYTES)"
        )
    return None


def security_problems(config: WebhookConfig) -> list[str]:
    """Definition errors of `config.signature` and `config.dedupe`."""
    problems: list[str] = []
    sig = config.signature
    if sig is not None:
        secrets = [sig.secret] if isinstance(sig.secret, str) else sig.secret
        if not secrets:
            problems.append("config.signature.secret: give at least one secret")
        for i, secret in enumerate(secrets):
            where = "config.signature.secret" + (f"[{i}]" if isinstance(sig.secret, list) else "")
            if env_placeholder(secret) is None:
                problems.append(
                    f"{where}: must be one {{{{$env.NAME}}}} placeholder; keep the secret in "
                    "the environment (RAYHOOK_ENV_NAME), never in the definition"
                )
        if sig.scheme == "hmac-sha256" and not sig.header:
            problems.append("config.signature.header: hmac-sha256 needs the header name")
        if sig.tolerance <= 0:
            problems.append("config.signature.tolerance: must be a number of seconds above 0")
    dedupe = config.dedupe
    if dedupe is not None:
        try:
            renderer = compile_template(dedupe.id)
        except TemplateError as exc:
            problems.append(f"config.dedupe.id: {exc}")
        else:
            roots = {ph.segments[0] for ph in renderer.placeholders}
            if not renderer.placeholders or roots - {"$context"}:
                problems.append(
                    "config.dedupe.id: must be built from $context, e.g. {{$context.body.id}}"
                )
        if dedupe.window <= 0:
            problems.append("config.dedupe.window: must be a number of seconds above 0")
    return problems


def security_warnings(config: WebhookConfig) -> list[str]:
    """What is allowed but risky in a webhook's config (the admin API returns
    these with `workflows:create/update`, and `rayhook apply` prints them)."""
    warnings: list[str] = []
    if config.dedupe is not None and not config.basicAuthentication and config.signature is None:
        warnings.append(
            "config.dedupe without basicAuthentication or signature: whoever knows or "
            "guesses an event id can send it first, and the genuine delivery is then "
            "answered as a repeat and never runs; add config.signature (or Basic auth)"
        )
    return warnings


def env_placeholder(text: str) -> Single | None:
    """`text` compiled when it is exactly one `{{$env.NAME}}` placeholder: how
    secrets are given (signature secrets, a Basic-auth password)."""
    try:
        renderer = compile_template(text)
    except TemplateError:
        return None
    if (
        isinstance(renderer, Single)
        and renderer.placeholder.segments[0] == "$env"
        and len(renderer.placeholder.segments) == 2
    ):
        return renderer
    return None


def _mapping(field: MappedField) -> FieldMapping:
    return FieldMapping(field.name, parse_request_path(field.key))

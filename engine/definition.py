"""The workflow definition document (SPEC §3) and the stored version record.

Decoded straight from JSON or YAML into frozen msgspec structs that reject
unknown fields; node `config` stays a raw mapping here and is checked against
its node type's own struct by `engine.validation`.
"""

from __future__ import annotations

import re
import secrets
import string
from datetime import datetime
from typing import Any, Literal

import msgspec
import yaml

_BASE36 = string.digits + string.ascii_lowercase

#: What a workflow key given in a definition may look like (it is a URL segment).
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_key() -> str:
    """An 11-character lowercase base36 id, the format NocoBase uses for keys."""
    return "".join(secrets.choice(_BASE36) for _ in range(11))


class Strict(msgspec.Struct, forbid_unknown_fields=True):
    """Base for document structs: unknown fields are errors, not silence."""


class StrictFrozen(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """`Strict`, for the parts nobody edits after decoding."""


class BasicAuthentication(StrictFrozen, frozen=True):
    """Webhook Basic auth. Give `password` as one `{{$env.NAME}}` placeholder to
    keep the secret in the environment; one given in clear is stored, and the
    admin API shows it as `********` (sent back, it keeps the stored one)."""

    username: str
    password: str


class HeaderField(StrictFrozen, frozen=True):
    key: str


class MappedField(StrictFrozen, frozen=True):
    """One configured query/body item: the value at `key` becomes `<_var or key>`."""

    key: str
    alias: str | None = None
    var: str | None = msgspec.field(default=None, name="_var")

    @property
    def name(self) -> str:
        return self.var or self.key


BodyType = Literal["json", "form", "text"]


class RequestParsing(StrictFrozen, frozen=True):
    """What the trigger reads from a request. `bodyTypes` (beyond NocoBase, which
    takes JSON only): `json`, `form` (`application/x-www-form-urlencoded`, parsed
    like the query) and `text` (`text/*`, `application/xml`: a string); `rawBody`
    adds `$context.rawBody`, the body as received."""

    headers: list[HeaderField] = []
    query: list[MappedField] = []
    body: list[MappedField] = []
    bodyTypes: list[BodyType] = msgspec.field(default_factory=lambda: ["json"])
    rawBody: bool = False


class NameValue(StrictFrozen, frozen=True):
    name: str
    value: Any = ""


class AsyncResponse(StrictFrozen, frozen=True):
    """What an async webhook answers once its event is stored."""

    statusCode: int = 200
    headers: list[NameValue] = []
    body: Any = "ok"


class SignatureConfig(StrictFrozen, frozen=True):
    """Verify the provider's signature over the raw body (beyond NocoBase).

    `secret` is one `{{$env.NAME}}` placeholder, or a list of them while a
    secret rotates; the secret itself never appears in a definition."""

    scheme: Literal["stripe", "github", "standard-webhooks", "hmac-sha256", "slack", "twilio"]
    secret: str | list[str]
    tolerance: int = 300  # seconds a signed timestamp may be off (stripe, slack)
    header: str | None = None  # hmac-sha256: the header carrying the digest
    encoding: Literal["hex", "base64"] = "hex"  # hmac-sha256
    prefix: str = ""  # hmac-sha256: text before the digest, e.g. "sha256="


class DedupeConfig(StrictFrozen, frozen=True):
    """Answer a repeated delivery like the first and start no second execution."""

    id: str  # a template over $context naming the event, e.g. {{$context.body.id}}
    window: int = 86400  # seconds a delivery id is remembered


class WebhookConfig(StrictFrozen, frozen=True):
    basicAuthentication: BasicAuthentication | bool | None = False
    request: RequestParsing = RequestParsing()
    response: AsyncResponse | None = None
    signature: SignatureConfig | None = None
    dedupe: DedupeConfig | None = None
    maxBodyBytes: int | None = None  # at most the server's RAYHOOK_MAX_BODY_BYTES


class Backoff(StrictFrozen, frozen=True):
    """How long a retry waits: `initial` * `multiplier`**(attempt - 1), at most
    `max`; with `jitter`, a random share of it between half and all of it (so
    that executions failed together do not all retry at once)."""

    initial: str | float = "1s"
    multiplier: float = 2.0
    max: str | float = "10m"
    jitter: bool = True


class RetryPolicy(StrictFrozen, frozen=True):
    """`options.retry` (SPEC §11, async workflows): an execution ending in a
    status of `on` runs again on the same trigger context after the backoff, up
    to `maxAttempts` runs in all."""

    maxAttempts: int = 1
    backoff: Backoff = Backoff()
    on: list[int] = msgspec.field(default_factory=lambda: [-1, -2])


class Options(StrictFrozen, frozen=True):
    """`keep` says which final executions go to the history store (SPEC §9):
    `all`, `failed` (RESOLVED ones are not kept) or `none`;
    `deleteExecutionOnStatus` (NocoBase's) drops those ending in its statuses."""

    timeout: int = 0
    deleteExecutionOnStatus: list[int] = []
    stackLimit: int = 1
    keep: Literal["all", "failed", "none"] = "all"
    retry: RetryPolicy | None = None

    def keeps(self, status: int) -> bool:
        """Whether a final execution in `status` is kept in the history."""
        if self.keep == "none" or status in self.deleteExecutionOnStatus:
            return False
        return not (self.keep == "failed" and status == 1)


class NodeDefinition(Strict):
    type: str
    key: str = ""
    title: str = ""
    config: dict[str, Any] = {}
    branches: dict[str, list[NodeDefinition]] = {}


class WorkflowDefinition(Strict):
    """What `workflows:create` and `rayhook apply` accept."""

    key: str | None = None
    title: str = ""
    description: str = ""
    type: Literal["webhook"] = "webhook"
    sync: bool = False
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    config: WebhookConfig = WebhookConfig()
    options: Options = Options()
    nodes: list[NodeDefinition] = []


class WorkflowVersion(msgspec.Struct, kw_only=True, omit_defaults=False):
    """One stored version. `enabled`, `current` and `executed` are filled in from
    the store's indexes when read; they are not part of the stored document."""

    id: int
    key: str
    title: str = ""
    description: str = ""
    type: str = "webhook"
    sync: bool = False
    config: WebhookConfig = WebhookConfig()
    options: Options = Options()
    nodes: list[NodeDefinition] = []
    createdAt: datetime
    updatedAt: datetime
    enabled: bool = False
    current: bool = False
    executed: int = 0
    webhookUrl: str = ""


class VersionPatch(Strict):
    """Fields `workflows:update` may change (NocoBase's whitelist plus nodes)."""

    title: str | msgspec.UnsetType = msgspec.UNSET
    description: str | msgspec.UnsetType = msgspec.UNSET
    enabled: bool | msgspec.UnsetType = msgspec.UNSET
    config: WebhookConfig | msgspec.UnsetType = msgspec.UNSET
    options: Options | msgspec.UnsetType = msgspec.UNSET
    nodes: list[NodeDefinition] | msgspec.UnsetType = msgspec.UNSET
    # Accepted only when unchanged, so a client may send a whole version back.
    sync: bool | msgspec.UnsetType = msgspec.UNSET
    key: str | msgspec.UnsetType = msgspec.UNSET
    type: str | msgspec.UnsetType = msgspec.UNSET
    id: int | msgspec.UnsetType = msgspec.UNSET
    current: bool | msgspec.UnsetType | None = msgspec.UNSET
    executed: int | msgspec.UnsetType = msgspec.UNSET
    webhookUrl: str | msgspec.UnsetType = msgspec.UNSET
    createdAt: str | msgspec.UnsetType = msgspec.UNSET
    updatedAt: str | msgspec.UnsetType = msgspec.UNSET


class DefinitionError(ValueError):
    """A definition that cannot be stored; `messages` each name the node and field."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def decode_definitions(data: bytes | str, *, filename: str = "") -> list[WorkflowDefinition]:
    """Decode one definition or a list of them from JSON or YAML text."""
    raw = load_document(data, filename=filename)
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for index, item in enumerate(items):
        try:
            out.append(msgspec.convert(item, WorkflowDefinition))
        except msgspec.ValidationError as exc:
            where = f"document[{index}]: " if isinstance(raw, list) else ""
            raise DefinitionError([where + describe_validation_error(exc, "")]) from exc
    return out


def load_document(data: bytes | str, *, filename: str = "") -> Any:
    """Parse JSON (or YAML, a superset) into plain values."""
    text = data.decode() if isinstance(data, bytes) else data
    try:
        if filename.endswith(".json") or text.lstrip().startswith(("{", "[")):
            try:
                return msgspec.json.decode(text)
            except msgspec.DecodeError as exc:
                if filename.endswith(".json"):
                    raise DefinitionError([f"invalid JSON: {exc}"]) from exc
            except UnicodeEncodeError:  # only text never read from UTF-8 bytes holds one
                raise DefinitionError(["invalid JSON: a lone surrogate is no character"]) from None
        try:
            return _plain(yaml.load(text, Loader=_DefinitionLoader))  # a SafeLoader
        except yaml.YAMLError as exc:
            raise DefinitionError([f"invalid YAML: {exc}"]) from exc
    except RecursionError:
        raise DefinitionError(["the document is nested too deeply"]) from None


class _DefinitionLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases, and with its bare `ValueError`s
    reported as the YAML errors they are."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        # An alias repeats a node: repeats of repeats grow exponentially (280
        # bytes can make gigabytes), and one inside its own anchor never ends.
        if self.check_event(yaml.AliasEvent):
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not accepted in a workflow definition: write the value out",
                self.peek_event().start_mark,
            )
        return super().compose_node(parent, index)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # int() refuses more than 4,300 digits and datetime() a 13th month.
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:
            problem = (
                "an integer of more than 4,300 digits"
                if node.tag == "tag:yaml.org,2002:int"
                else f"{str(node.value)[:40]!r} cannot be read: {exc}"
            )
            raise yaml.constructor.ConstructorError(None, None, problem, node.start_mark) from exc


def _plain(value: Any) -> Any:
    """YAML is only another spelling of the JSON document: `1:` means `"1":`,
    and text is Unicode characters."""
    if isinstance(value, dict):
        return {_text(_key_text(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _text(value)
    return value


def _text(text: str) -> str:
    """YAML's `\\u` escapes are code points, so it reads JSON's escape of an emoji
    (`\\ud83d\\ude00`) as two lone surrogates: join them as JSON does. A lone
    one is no character, and nothing can store it."""
    try:
        text.encode()
    except UnicodeEncodeError:
        try:
            return text.encode("utf-16", "surrogatepass").decode("utf-16")
        except UnicodeDecodeError:
            raise DefinitionError(
                [f"invalid YAML: {text[:40]!r} holds a lone surrogate (a \\ud800-\\udfff escape)"]
            ) from None
    return text


def _key_text(key: Any) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    return "null" if key is None else str(key)


def describe_validation_error(exc: msgspec.ValidationError, prefix: str) -> str:
    """Turn msgspec's `... - at `$.a.b`` into `prefix.a.b: ...`."""
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        return f"{prefix}: {text}" if prefix else text
    if where.startswith("key` in `"):  # an invalid mapping key: msgspec names its map
        where = where[len("key` in `") :]
        message = f"invalid key: {message}"
    path = where.rstrip("`")
    path = path[1:] if path.startswith("$") else path
    path = (prefix + path) if prefix else path.lstrip(".")
    return f"{path}: {message}" if path else message

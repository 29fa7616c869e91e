"""Service settings, read once from the environment (SPEC §1) into one struct.

Pure data: every layer receives a `Settings` instead of reading `os.environ`,
and actors get theirs as a constructor argument so a restarted actor sees the
same values as the process that created it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import msgspec

from engine.durations import DurationError, parse_duration

ENV_PREFIX = "RAYHOOK_ENV_"
SQL_PREFIX = "RAYHOOK_SQL_"
MIB = 1024 * 1024
SCRIPT_SANDBOXES = ("process", "inline")
#: Request headers never stored nor shown to a workflow (RAYHOOK_REDACT_HEADERS
#: replaces the list; `authorization` and `cookie` stay redacted whatever it says,
#: SPEC §2.2): credentials, and every header a signature scheme sends its
#: signature in (stored, a signature lets its reader replay the delivery).
DEFAULT_REDACTED_HEADERS = (
    "authorization",
    "cookie",
    "set-cookie",
    "proxy-authorization",
    "x-api-key",
    "x-auth-token",
    "x-access-token",
    "stripe-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "webhook-signature",
    "svix-signature",
    "x-slack-signature",
    "x-twilio-signature",
    "x-shopify-hmac-sha256",
    "x-signature",
)
ALWAYS_REDACTED_HEADERS = ("authorization", "cookie")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes (environment variable in brackets):

    redis_url [REDIS_URL], namespace [RAYHOOK_NAMESPACE] (Ray namespace and Redis
    key prefix, so several deployments can share one Redis), admin_token
    [RAYHOOK_ADMIN_TOKEN], host/port [RAYHOOK_HOST/RAYHOOK_PORT], data_dir
    [RAYHOOK_DATA_DIR], ray_address [RAY_ADDRESS], ray_idle_seconds
    [RAYHOOK_RAY_IDLE_SECONDS] (an ingress process disconnects from Ray when it
    has not needed it this long; default 60), max_body_bytes
    [RAYHOOK_MAX_BODY_BYTES], max_json_depth [RAYHOOK_MAX_JSON_DEPTH], executors
    [RAYHOOK_EXECUTORS] (execution actors in the pool), inbox_batch
    [RAYHOOK_INBOX_BATCH], max_inflight [RAYHOOK_MAX_INFLIGHT] (executions a
    supervisor runs at once), actor_resource [RAYHOOK_ACTOR_RESOURCE] (a Ray
    custom resource every rayhook actor takes one unit of, which keeps actors on
    the nodes that offer it), public_url [RAYHOOK_PUBLIC_URL] (base of
    `webhookUrl`), env (`$env`: every RAYHOOK_ENV_<NAME>=value as NAME),
    request_allow [RAYHOOK_REQUEST_ALLOW] (hosts and CIDRs the request node may
    reach even when private, comma-separated), request_deny_private
    [RAYHOOK_REQUEST_DENY_PRIVATE] (refuse private and loopback addresses that
    are not allowed; default true), sql_sources (the sql node's data sources:
    every RAYHOOK_SQL_<NAME>=postgresql://... as the lower-cased name; `main` is
    the default).

    Caps on what one webhook or workflow may take (docs/reliability.md, "Blast
    radius"): script_sandbox [RAYHOOK_SCRIPT_SANDBOX] (`process`: scripts run in
    sandbox processes that can be lost without the executor; `inline`: on threads
    of the executor), script_sandboxes [RAYHOOK_SCRIPT_SANDBOXES] (scripts at once
    per executor), script_workflow_slots [RAYHOOK_SCRIPT_WORKFLOW_SLOTS] (of those,
    what one workflow may hold; 0: all but one), script_heap_bytes
    [RAYHOOK_SCRIPT_HEAP_BYTES], script_buffer_bytes [RAYHOOK_SCRIPT_BUFFER_BYTES]
    (ArrayBuffer memory, outside the heap), script_output_bytes
    [RAYHOOK_SCRIPT_OUTPUT_BYTES], script_cpu_per_execution
    [RAYHOOK_SCRIPT_CPU_PER_EXECUTION] (seconds of CPU all scripts of one execution
    may use; 0: none), max_result_bytes [RAYHOOK_MAX_RESULT_BYTES] (a job result,
    as JSON), max_reply_header_bytes / max_reply_body_bytes
    [RAYHOOK_MAX_REPLY_HEADER_BYTES / RAYHOOK_MAX_REPLY_BODY_BYTES] (what a
    workflow's templates put in a webhook reply), redact_headers
    [RAYHOOK_REDACT_HEADERS] (comma-separated), metrics_token
    [RAYHOOK_METRICS_TOKEN] (a bearer token that shows per-workflow series on
    /metrics; the admin token does too).

    History and backpressure (SPEC §9): history_url [RAYHOOK_HISTORY_URL]
    (`sqlite:///PATH` or `postgresql://...`; default `history.db` in the data
    folder, as an absolute path so every process opens the same file),
    history_max_age [RAYHOOK_HISTORY_MAX_AGE] (seconds a final execution is kept,
    from its creation; 0 = forever; written as `14d`, `12h`...),
    history_max_count [RAYHOOK_HISTORY_MAX_COUNT] (0 = no limit), history_writer
    (True: execution actor 0 runs the writer that moves final executions to
    the history; False only where executions must stay in Redis to be
    watched there: the actor tests, which run executors without the rest of
    the stack), redis_maxmemory
    [RAYHOOK_REDIS_MAXMEMORY] (the private Redis of `rayhook up`),
    redis_high_watermark [RAYHOOK_REDIS_HIGH_WATERMARK] (share of Redis's
    maxmemory above which async webhooks are refused with 503), max_backlog
    [RAYHOOK_MAX_BACKLOG] (inbox entries per workflow above which its async
    webhooks are refused with 503), pace_backlog [RAYHOOK_PACE_BACKLOG] (inbox
    entries per workflow above which its async webhooks are answered later, up
    to 250 ms, so that senders slow to what the executors keep; 0 = never,
    ingress/pacing.py).

    Consumption (the executors read the inboxes): supervisor_linger
    [RAYHOOK_SUPERVISOR_LINGER] (a workflow's supervisor retires after this long
    with nothing running), stale_ms [RAYHOOK_STALE_AFTER] (an inbox entry idle
    this long has no live consumer and is taken over), poison_deliveries
    [RAYHOOK_POISON_DELIVERIES] (an entry delivered more often than this without
    being settled crashed its executor each time: it is quarantined).
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "rayhook"
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 13000
    data_dir: str = ".rayhook"
    ray_address: str | None = None
    ray_idle_seconds: float = 60.0
    max_body_bytes: int = 1024 * 1024
    max_json_depth: int = 64
    executors: int = 2
    inbox_batch: int = 100
    max_inflight: int = 2000
    loop_limit: int = 10000  # RAYHOOK_LOOP_LIMIT: iterations a loop node may run; 0 = none
    public_url: str | None = None
    actor_resource: str | None = None
    env: dict[str, str] = {}
    request_allow: tuple[str, ...] = ()
    request_deny_private: bool = True
    sql_sources: dict[str, str] = {}
    script_sandbox: str = "process"
    script_sandboxes: int = 4
    script_workflow_slots: int = 0
    script_heap_bytes: int = 128 * MIB
    script_buffer_bytes: int = 128 * MIB
    script_output_bytes: int = 1 * MIB
    script_cpu_per_execution: float = 30.0
    max_result_bytes: int = 1 * MIB
    max_reply_header_bytes: int = 8 * 1024
    max_reply_body_bytes: int = 1 * MIB
    redact_headers: tuple[str, ...] = DEFAULT_REDACTED_HEADERS
    metrics_token: str | None = None

    @property
    def script_share(self) -> int:
        """Sandbox slots one workflow may hold at once in one executor."""
        if self.script_workflow_slots > 0:
            return min(self.script_workflow_slots, self.script_sandboxes)
        return max(1, self.script_sandboxes - 1)

    history_url: str = ""
    history_max_age: float = 14 * 86400.0
    history_max_count: int = 0
    history_writer: bool = True
    redis_maxmemory: str = "1gb"
    redis_high_watermark: float = 0.8
    max_backlog: int = 1_000_000
    pace_backlog: int = 2000
    supervisor_linger: float = 60.0
    stale_ms: int = 30_000
    poison_deliveries: int = 3

    @property
    def history_database(self) -> str:
        """The history store's URL (the data folder's SQLite file by default)."""
        return self.history_url or default_history_url(self.data_dir)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ
        d = cls()
        data_dir = e.get("RAYHOOK_DATA_DIR") or d.data_dir
        return cls(
            redis_url=e.get("REDIS_URL") or d.redis_url,
            namespace=e.get("RAYHOOK_NAMESPACE") or d.namespace,
            admin_token=e.get("RAYHOOK_ADMIN_TOKEN") or None,
            host=e.get("RAYHOOK_HOST") or d.host,
            port=int(e.get("RAYHOOK_PORT") or d.port),
            data_dir=data_dir,
            ray_address=e.get("RAY_ADDRESS") or None,
            ray_idle_seconds=float(e.get("RAYHOOK_RAY_IDLE_SECONDS") or d.ray_idle_seconds),
            max_body_bytes=int(e.get("RAYHOOK_MAX_BODY_BYTES") or d.max_body_bytes),
            max_json_depth=int(e.get("RAYHOOK_MAX_JSON_DEPTH") or d.max_json_depth),
            executors=max(1, int(e.get("RAYHOOK_EXECUTORS") or d.executors)),
            inbox_batch=max(1, int(e.get("RAYHOOK_INBOX_BATCH") or d.inbox_batch)),
            max_inflight=max(1, int(e.get("RAYHOOK_MAX_INFLIGHT") or d.max_inflight)),
            loop_limit=max(0, int(e.get("RAYHOOK_LOOP_LIMIT") or d.loop_limit)),
            public_url=e.get("RAYHOOK_PUBLIC_URL") or None,
            actor_resource=e.get("RAYHOOK_ACTOR_RESOURCE") or None,
            env={k[len(ENV_PREFIX) :]: v for k, v in e.items() if k.startswith(ENV_PREFIX)},
            request_allow=tuple(
                entry.strip().lower()
                for entry in (e.get("RAYHOOK_REQUEST_ALLOW") or "").split(",")
                if entry.strip()
            ),
            request_deny_private=_flag(e.get("RAYHOOK_REQUEST_DENY_PRIVATE"), default=True),
            sql_sources={
                k[len(SQL_PREFIX) :].lower(): v
                for k, v in e.items()
                if k.startswith(SQL_PREFIX) and len(k) > len(SQL_PREFIX) and v
            },
            script_sandbox=_choice(e, "RAYHOOK_SCRIPT_SANDBOX", SCRIPT_SANDBOXES),
            script_sandboxes=max(1, int(e.get("RAYHOOK_SCRIPT_SANDBOXES") or d.script_sandboxes)),
            script_workflow_slots=max(0, int(e.get("RAYHOOK_SCRIPT_WORKFLOW_SLOTS") or 0)),
            script_heap_bytes=_bytes(e, "RAYHOOK_SCRIPT_HEAP_BYTES", d.script_heap_bytes),
            script_buffer_bytes=_bytes(e, "RAYHOOK_SCRIPT_BUFFER_BYTES", d.script_buffer_bytes),
            script_output_bytes=_bytes(e, "RAYHOOK_SCRIPT_OUTPUT_BYTES", d.script_output_bytes),
            script_cpu_per_execution=_seconds(
                e, "RAYHOOK_SCRIPT_CPU_PER_EXECUTION", d.script_cpu_per_execution
            ),
            max_result_bytes=_bytes(e, "RAYHOOK_MAX_RESULT_BYTES", d.max_result_bytes),
            max_reply_header_bytes=_bytes(
                e, "RAYHOOK_MAX_REPLY_HEADER_BYTES", d.max_reply_header_bytes
            ),
            max_reply_body_bytes=_bytes(e, "RAYHOOK_MAX_REPLY_BODY_BYTES", d.max_reply_body_bytes),
            redact_headers=_header_names(e.get("RAYHOOK_REDACT_HEADERS")),
            metrics_token=e.get("RAYHOOK_METRICS_TOKEN") or None,
            history_url=e.get("RAYHOOK_HISTORY_URL") or default_history_url(data_dir),
            history_max_age=parse_duration(e.get("RAYHOOK_HISTORY_MAX_AGE") or "14d"),
            history_max_count=max(0, int(e.get("RAYHOOK_HISTORY_MAX_COUNT") or 0)),
            redis_maxmemory=e.get("RAYHOOK_REDIS_MAXMEMORY") or d.redis_maxmemory,
            redis_high_watermark=_share(
                e.get("RAYHOOK_REDIS_HIGH_WATERMARK"), d.redis_high_watermark
            ),
            max_backlog=max(1, int(e.get("RAYHOOK_MAX_BACKLOG") or d.max_backlog)),
            pace_backlog=max(0, int(e.get("RAYHOOK_PACE_BACKLOG") or d.pace_backlog)),
            supervisor_linger=parse_duration(e.get("RAYHOOK_SUPERVISOR_LINGER") or "60s"),
            stale_ms=int(1000 * parse_duration(e.get("RAYHOOK_STALE_AFTER") or "30s")),
            poison_deliveries=max(1, int(e.get("RAYHOOK_POISON_DELIVERIES") or 3)),
        )


def default_history_url(data_dir: str) -> str:
    """The embedded SQLite history of a data folder (absolute: actors run elsewhere)."""
    return f"sqlite:///{Path(data_dir).resolve() / 'history.db'}"


def _share(value: str | None, default: float) -> float:
    """A fraction in (0, 1]."""
    if value is None or not value.strip():
        return default
    share = float(value)
    if not 0 < share <= 1:
        raise ValueError(f"RAYHOOK_REDIS_HIGH_WATERMARK must be in (0, 1], not {value!r}")
    return share


def _flag(value: str | None, *, default: bool) -> bool:
    """An on/off environment variable: 0/false/no/off (any case) is off."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    value = (environ.get(name) or choices[0]).strip().lower()
    if value not in choices:
        raise ValueError(f"{name}={value!r}: give one of {', '.join(choices)}")
    return value


def _bytes(environ: Mapping[str, str], name: str, default: int) -> int:
    """A size in bytes (a whole number above 0)."""
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise ValueError(f"{name}={text!r}: give a number of bytes above 0")
    return int(text)


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    text = (environ.get(name) or "").strip()
    if not text:
        return default
    try:
        return parse_duration(text)
    except DurationError as exc:
        raise ValueError(f"{name}: {exc}") from None


def _header_names(value: str | None) -> tuple[str, ...]:
    """The redacted header names: the list given (or the default), always with
    the SPEC's two."""
    names = (
        DEFAULT_REDACTED_HEADERS
        if value is None or not value.strip()
        else tuple(n.strip().lower() for n in value.split(",") if n.strip())
    )
    return tuple(dict.fromkeys((*ALWAYS_REDACTED_HEADERS, *names)))

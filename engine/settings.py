"""Service settings, read once from the environment (SPEC §1) into one struct.

Pure data: every layer receives a `Settings` instead of reading `os.environ`,
and actors get theirs as a constructor argument so a restarted actor sees the
same values as the process that created it."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

ENV_PREFIX = "RAYHOOK_ENV_"
SQL_PREFIX = "RAYHOOK_SQL_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes (environment variable in brackets):

    redis_url [REDIS_URL], namespace [RAYHOOK_NAMESPACE] (Ray namespace and Redis
    key prefix, so several deployments can share one Redis), admin_token
    [RAYHOOK_ADMIN_TOKEN], host/port [RAYHOOK_HOST/RAYHOOK_PORT], data_dir
    [RAYHOOK_DATA_DIR], ray_address [RAY_ADDRESS], max_body_bytes
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
    """

    redis_url: str = "redis://127.0.0.1:6379/0"
    namespace: str = "rayhook"
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 13000
    data_dir: str = ".rayhook"
    ray_address: str | None = None
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if environ is None else environ
        d = cls()
        return cls(
            redis_url=e.get("REDIS_URL") or d.redis_url,
            namespace=e.get("RAYHOOK_NAMESPACE") or d.namespace,
            admin_token=e.get("RAYHOOK_ADMIN_TOKEN") or None,
            host=e.get("RAYHOOK_HOST") or d.host,
            port=int(e.get("RAYHOOK_PORT") or d.port),
            data_dir=e.get("RAYHOOK_DATA_DIR") or d.data_dir,
            ray_address=e.get("RAY_ADDRESS") or None,
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
        )


def _flag(value: str | None, *, default: bool) -> bool:
    """An on/off environment variable: 0/false/no/off (any case) is off."""
    if value is None or not value.strip():
        return default
    return value.strip().lower() not in {"0", "false", "no", "off"}

"""Service settings, read once from the environment (SPEC §1) into one struct.

Pure data: every layer receives a `Settings` instead of reading `os.environ`,
and actors get theirs as a constructor argument so a restarted actor sees the
same values as the process that created it."""

from __future__ import annotations

import os
from collections.abc import Mapping

import msgspec

ENV_PREFIX = "RAYHOOK_ENV_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes (environment variable in brackets):

    redis_url [REDIS_URL], namespace [RAYHOOK_NAMESPACE] (Ray namespace and Redis
    key prefix, so several deployments can share one Redis), admin_token
    [RAYHOOK_ADMIN_TOKEN], host/port [RAYHOOK_HOST/RAYHOOK_PORT], data_dir
    [RAYHOOK_DATA_DIR], ray_address [RAY_ADDRESS], max_body_bytes
    [RAYHOOK_MAX_BODY_BYTES], max_json_depth [RAYHOOK_MAX_JSON_DEPTH], executors
    [RAYHOOK_EXECUTORS] (execution actors in the pool), inbox_batch
    [RAYHOOK_INBOX_BATCH], max_inflight [RAYHOOK_MAX_INFLIGHT] (executions a
    supervisor runs at once), public_url [RAYHOOK_PUBLIC_URL] (base of
    `webhookUrl`), env (`$env`: every RAYHOOK_ENV_<NAME>=value as NAME).
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
    public_url: str | None = None
    env: dict[str, str] = {}

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
            public_url=e.get("RAYHOOK_PUBLIC_URL") or None,
            env={k[len(ENV_PREFIX) :]: v for k, v in e.items() if k.startswith(ENV_PREFIX)},
        )

"""One asyncio Redis client per process (`connect`, or a `Connection` that also
answers whether Redis is reachable and closes it), and the Lua scripts it runs
by SHA."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from hashlib import sha1
from importlib import resources

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError, NoScriptError, TimeoutError


def connect(url: str) -> aioredis.Redis:
    """A pooled client (hiredis parser when installed). Bytes in, bytes out.

    A command that meets a dead pooled connection (Redis restarted) is retried
    on a fresh one a few times; a Redis that stays down surfaces as an error
    within about a second, which the callers turn into a 503 or a later retry.
    When every pooled connection is busy (a burst), a command waits for one
    rather than failing."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        decode_responses=False,
        socket_connect_timeout=2.0,
        socket_timeout=10.0,
        health_check_interval=15,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 3),
        retry_on_error=[ConnectionError, TimeoutError],
        max_connections=256,
        timeout=10,
    )
    return aioredis.Redis.from_pool(pool)  # closing the client closes its pool


class Connection:
    """A process's Redis client: `client` is what the store objects are built on.

    Example::

        redis = Connection(settings.redis_url)
        workflows = WorkflowStore(redis.client, keys)
        ...
        await redis.close()
    """

    def __init__(self, url: str) -> None:
        self.client = connect(url)

    async def reachable(self, timeout: float = 2.0) -> bool:
        """Whether Redis answers a PING within `timeout` seconds."""
        try:
            return bool(await asyncio.wait_for(self.client.ping(), timeout))
        except Exception:
            return False

    async def load_scripts(self) -> None:
        await load_scripts(self.client)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script from `store/scripts/`, called by SHA (EVALSHA)."""

    name: str
    source: bytes
    sha: str

    @classmethod
    def load(cls, name: str) -> Script:
        source = resources.files("store").joinpath("scripts", f"{name}.lua").read_bytes()
        return cls(name, source, sha1(source).hexdigest())

    async def __call__(self, client: aioredis.Redis, keys: list[str], args: list[object]) -> object:
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await client.script_load(self.source)
            return await client.evalsha(self.sha, len(keys), *keys, *args)


INBOX_ADD = Script.load("inbox_add")
EXECUTION_SAVE = Script.load("execution_save")
VERSION_ENABLE = Script.load("version_enable")
VERSION_DISABLE = Script.load("version_disable")
TIMERS_FIRE = Script.load("timers_fire")
HISTORY_MOVED = Script.load("history_moved")
INBOX_PUSH = Script.load("inbox_push")
DRAIN_DONE = Script.load("drain_done")
CLAIM_IDLE = Script.load("claim_idle")
ALL_SCRIPTS = (
    INBOX_ADD,
    INBOX_PUSH,
    DRAIN_DONE,
    CLAIM_IDLE,
    EXECUTION_SAVE,
    VERSION_ENABLE,
    VERSION_DISABLE,
    TIMERS_FIRE,
    HISTORY_MOVED,
)


async def load_scripts(client: aioredis.Redis) -> None:
    for script in ALL_SCRIPTS:
        await client.script_load(script.source)

"""Store tests run against the machine's Redis (never flushed): every test gets a
fresh key namespace (the `namespace` fixture deletes its keys afterwards) and its
own asyncio client, created and closed inside the test's event loop."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from store.batching import PipelineBatcher
from store.connection import connect
from store.executions import ExecutionLog
from store.inbox import Inbox
from store.keys import Keys
from store.workflows import WorkflowStore
from tests.conftest import REDIS_URL


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    redis = connect(REDIS_URL)
    try:
        yield redis
    finally:
        await redis.aclose()


@pytest.fixture
def keys(namespace: str) -> Keys:
    return Keys(namespace)


@pytest.fixture
async def batcher(client: aioredis.Redis) -> AsyncIterator[PipelineBatcher]:
    batcher = PipelineBatcher(client)
    try:
        yield batcher
    finally:
        await batcher.drain()


@pytest.fixture
def workflows(client: aioredis.Redis, keys: Keys) -> WorkflowStore:
    return WorkflowStore(client, keys)


@pytest.fixture
def inbox(client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher) -> Inbox:
    return Inbox(client, keys, batcher)


@pytest.fixture
def log(client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher) -> ExecutionLog:
    return ExecutionLog(client, keys, batcher)

"""The sync calls' channels (store/sync_calls.py): readiness asks Redis which
executors listen, so a probe never needs Ray."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from store.keys import Keys
from store.sync_calls import SyncCalls


async def test_listeners_says_which_executors_listen_on_their_channel(
    client: aioredis.Redis, keys: Keys
) -> None:
    calls = SyncCalls(client, keys)
    assert await calls.listeners(2) == [False, False]
    subscribed = asyncio.Event()
    requests = calls.requests(1, subscribed)
    reading = asyncio.ensure_future(anext(requests))
    await asyncio.wait_for(subscribed.wait(), 5)
    try:
        assert await calls.listeners(2) == [False, True]
    finally:
        reading.cancel()
        await asyncio.gather(reading, return_exceptions=True)
        await requests.aclose()
    assert await calls.listeners(2) == [False, False]

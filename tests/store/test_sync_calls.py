"""The sync calls' channels (store/sync_calls.py): readiness asks Redis which
executors listen, so a probe never needs Ray."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from store.keys import Keys
from store.sync_calls import ReplyTo, SyncCalls


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


async def test_calls_and_replies_published_at_once_each_reach_their_own_listener(
    client: aioredis.Redis, keys: Keys
) -> None:
    """Publishes of one loop turn share a pipeline: each call still learns how
    many listened on its own channel, and each reply reaches its own caller."""
    calls = SyncCalls(client, keys)
    reply_to = keys.sync_replies("test")
    subscribed, answered = asyncio.Event(), asyncio.Event()
    requests, replies = calls.requests(0, subscribed), calls.replies(reply_to, answered)
    first_request = asyncio.ensure_future(anext(requests))
    first_reply = asyncio.ensure_future(anext(replies))
    await asyncio.wait_for(asyncio.gather(subscribed.wait(), answered.wait()), 5)
    try:
        heard = await asyncio.gather(
            *(calls.call(i % 2, reply_to, f"event-{i}".encode()) for i in range(40))
        )
        assert heard == [1, 0] * 20  # executor 1 does not listen
        got = [await first_request] + [await anext(requests) for _ in range(19)]
        assert [r.event for r in got] == [f"event-{i}".encode() for i in range(0, 40, 2)]
        await asyncio.gather(
            *(calls.answer(ReplyTo(reply_to, f"x{i}"), b"%d" % i) for i in range(20))
        )
        answers = [await first_reply] + [await anext(replies) for _ in range(19)]
        assert [(a.execution_id, a.reply) for a in answers] == [  # type: ignore[union-attr]
            (f"x{i}", b"%d" % i) for i in range(20)
        ]
    finally:
        for pending in (first_request, first_reply):
            pending.cancel()
        await asyncio.gather(first_request, first_reply, return_exceptions=True)
        await requests.aclose()
        await replies.aclose()

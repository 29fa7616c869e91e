"""The ingress's side of sync calls (actors/router.py `SyncCaller`) over the
machine's Redis, with plain listeners in place of the execution actors: no Ray
is needed to see where calls go."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from actors.router import SyncCaller
from store.keys import Keys
from store.sync_calls import ReplyTo, SyncCalls, SyncRequest


async def listen(calls: SyncCalls, index: int, got: list[SyncRequest]) -> None:
    subscribed = asyncio.Event()
    requests: AsyncIterator[SyncRequest] = calls.requests(index, subscribed)
    async for request in requests:
        got.append(request)


async def test_a_call_goes_to_the_executor_with_the_fewest_calls_waiting(
    client: aioredis.Redis, keys: Keys
) -> None:
    calls = SyncCalls(client, keys)
    got: list[list[SyncRequest]] = [[], []]
    listeners = [asyncio.ensure_future(listen(calls, i, got[i])) for i in range(2)]
    caller = SyncCaller(calls, 2)
    await caller.start()
    try:
        while await calls.listeners(2) != [True, True]:
            await asyncio.sleep(0.01)
        pending = [asyncio.ensure_future(caller.call(f"e{i}", b"%d" % i)) for i in range(6)]
        while sum(map(len, got)) < 6:
            await asyncio.sleep(0.01)
        assert [len(g) for g in got] == [3, 3]  # an even split, not the ids' hash

        # Executor 0 answers its three; executor 1 still holds its own.
        for request, _ in zip(got[0], range(3), strict=True):
            execution_id = f"e{int(request.event)}"
            await calls.answer(ReplyTo(request.reply_to, execution_id), b"done")
        replies = await asyncio.wait_for(
            asyncio.gather(*(pending[int(r.event)] for r in got[0])), 5
        )
        assert replies == [b"done"] * 3
        more = [asyncio.ensure_future(caller.call(f"m{i}", b"m")) for i in range(3)]
        while sum(map(len, got)) < 9:
            await asyncio.sleep(0.01)
        assert [len(g) for g in got] == [6, 3]  # all to the executor with none waiting
        for task in pending + more:
            task.cancel()
    finally:
        await caller.stop()
        for listener in listeners:
            listener.cancel()
        await asyncio.gather(*listeners, return_exceptions=True)

"""store.batching.PipelineBatcher against real Redis: group commit, one reply per
caller, errors confined to their own command."""

from __future__ import annotations

import asyncio
import logging
import secrets
from hashlib import sha1
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from store.batching import PipelineBatcher
from store.connection import Script, connect
from store.keys import Keys
from tests.conftest import REDIS_URL

CLOSED_PORT_URL = "redis://127.0.0.1:1/0"


def count_sends(batcher: PipelineBatcher) -> list[list[tuple[Any, ...]]]:
    """Record every pipeline the batcher sends (the commands of each)."""
    sent: list[list[tuple[Any, ...]]] = []
    send = batcher._send

    async def recording_send(commands: list[tuple[Any, ...]]) -> list[Any]:
        sent.append(list(commands))
        return await send(commands)

    batcher._send = recording_send  # type: ignore[method-assign]
    return sent


async def test_replies_go_to_the_right_callers_in_order(
    keys: Keys, batcher: PipelineBatcher
) -> None:
    sent = count_sends(batcher)
    k = f"{keys.ns}:n"
    futures = [
        batcher.submit("SET", k, "10"),
        batcher.submit("INCR", k),
        batcher.submit("GET", k),
        batcher.submit("ECHO", "hello"),
        batcher.submit("INCRBY", k, 5),
        batcher.submit("RPUSH", f"{keys.ns}:list", "a", "b", "c"),
        batcher.submit("LRANGE", f"{keys.ns}:list", 0, -1),
    ]
    replies = await asyncio.gather(*futures)
    assert replies == [b"OK", 11, b"11", b"hello", 16, 3, [b"a", b"b", b"c"]]  # raw replies
    assert len(sent) == 1 and len(sent[0]) == len(futures)


async def test_many_callers_each_get_their_own_reply(keys: Keys, batcher: PipelineBatcher) -> None:
    sent = count_sends(batcher)
    n = 500
    replies = await asyncio.gather(*(batcher.submit("ECHO", f"v{i}") for i in range(n)))
    assert replies == [f"v{i}".encode() for i in range(n)]
    assert len(sent) < n


async def test_an_error_reply_fails_only_its_own_future(
    client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher
) -> None:
    text = f"{keys.ns}:text"
    await client.set(text, "not a list")
    before = batcher.submit("ECHO", "before")
    wrong = batcher.submit("LPUSH", text, "x")
    unknown = batcher.submit("NO-SUCH-COMMAND")
    after = batcher.submit("GET", text)
    assert await before == b"before"
    with pytest.raises(ResponseError, match="WRONGTYPE"):
        await wrong
    with pytest.raises(ResponseError):
        await unknown
    assert await after == b"not a list"


async def test_fire_errors_are_logged_not_raised(
    client: aioredis.Redis,
    keys: Keys,
    batcher: PipelineBatcher,
    caplog: pytest.LogCaptureFixture,
) -> None:
    text = f"{keys.ns}:text"
    await client.set(text, "not a list")
    caplog.set_level(logging.WARNING, logger="store.batching")
    batcher.fire("LPUSH", text, "x")
    ok = batcher.submit("ECHO", "fine")
    assert await ok == b"fine"
    await batcher.drain()
    messages = [r.getMessage() for r in caplog.records if r.name == "store.batching"]
    assert any("WRONGTYPE" in m for m in messages), messages


async def test_fire_applies_its_command(
    client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher
) -> None:
    batcher.fire("SET", f"{keys.ns}:fired", "yes")
    await batcher.drain()
    assert await client.get(f"{keys.ns}:fired") == b"yes"


async def test_a_connection_failure_fails_every_future_in_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dead = connect(CLOSED_PORT_URL)
    try:
        batcher = PipelineBatcher(dead)
        caplog.set_level(logging.WARNING, logger="store.batching")
        futures = [batcher.submit("ECHO", f"v{i}") for i in range(5)]
        futures.append(batcher.submit_script(unique_script(), [], ["x"]))
        batcher.fire("SET", "never", "stored")
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 30)
        assert all(isinstance(r, ConnectionError) for r in results), results
        await asyncio.wait_for(batcher.drain(), 30)
        messages = [r.getMessage() for r in caplog.records if r.name == "store.batching"]
        assert any("failed" in m for m in messages), messages
    finally:
        await dead.aclose()


async def test_the_batcher_recovers_after_a_failed_batch(keys: Keys) -> None:
    """A failed flush must not wedge the batcher: the next command still runs."""
    dead = connect(CLOSED_PORT_URL)
    try:
        batcher = PipelineBatcher(dead)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(batcher.submit("ECHO", "x"), 30)
        with pytest.raises(ConnectionError):
            await asyncio.wait_for(batcher.submit("ECHO", "y"), 30)
        assert batcher._task is None or not batcher._task.done()
    finally:
        await dead.aclose()


async def test_a_batch_whose_replies_take_longer_than_the_socket_timeout_fails_as_a_whole(
    keys: Keys,
) -> None:
    """One timer bounds a batch's replies: a reply later than the socket timeout
    fails every caller of the batch with Redis's TimeoutError (not a hang), and
    the half-read connection is dropped: the next batch gets a fresh one."""
    slow = aioredis.Redis.from_url(REDIS_URL, socket_timeout=0.5)
    try:
        batcher = PipelineBatcher(slow)
        futures = [
            batcher.submit("ECHO", "before"),
            batcher.submit("BLPOP", f"{keys.ns}:never", 3),  # blocks past the timeout
            batcher.submit("ECHO", "after"),
        ]
        results = await asyncio.wait_for(asyncio.gather(*futures, return_exceptions=True), 10)
        assert all(isinstance(r, RedisTimeoutError) for r in results), results
        assert await asyncio.wait_for(batcher.submit("ECHO", "again"), 10) == b"again"
    finally:
        await slow.aclose()


async def test_drain_waits_for_queued_commands(
    client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher
) -> None:
    await batcher.drain()  # nothing queued: returns at once
    k = f"{keys.ns}:drained"
    futures = [batcher.submit("RPUSH", k, str(i)) for i in range(50)]
    for i in range(50, 100):
        batcher.fire("RPUSH", k, str(i))
    assert not any(f.done() for f in futures)
    await batcher.drain()
    assert all(f.done() for f in futures)
    assert [f.result() for f in futures] == list(range(1, 51))
    assert await client.lrange(k, 0, -1) == [str(i).encode() for i in range(100)]


async def test_drain_waits_for_commands_queued_during_a_flush(
    client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher
) -> None:
    k = f"{keys.ns}:late"
    late: list[asyncio.Future[Any]] = []
    sent = count_sends(batcher)
    inner = batcher._send

    async def send_and_queue_more(commands: list[tuple[Any, ...]]) -> list[Any]:
        if not late:  # first flush: more work arrives while it is in flight
            late.append(batcher.submit("RPUSH", k, "late"))
            batcher.fire("RPUSH", k, "fired late")
        return await inner(commands)

    batcher._send = send_and_queue_more  # type: ignore[method-assign]
    first = batcher.submit("RPUSH", k, "first")
    await batcher.drain()
    assert first.done() and late and late[0].done()
    assert await client.lrange(k, 0, -1) == [b"first", b"late", b"fired late"]
    assert [len(batch) for batch in sent] == [1, 2]


async def test_max_batch_splits_large_batches(keys: Keys, client: aioredis.Redis) -> None:
    batcher = PipelineBatcher(client, max_batch=3)
    sent = count_sends(batcher)
    replies = await asyncio.gather(*(batcher.submit("ECHO", str(i)) for i in range(10)))
    assert replies == [str(i).encode() for i in range(10)]
    assert [len(batch) for batch in sent] == [3, 3, 3, 1]


# -- scripts ---------------------------------------------------------------------------


def unique_script(body: str = "return ARGV[1]") -> Script:
    """A script Redis has never seen (a unique comment makes a unique SHA1)."""
    source = f"-- test {secrets.token_hex(16)}\n{body}\n".encode()
    return Script("test", source, sha1(source).hexdigest())


async def test_submit_script_loads_an_unknown_script_and_keeps_order(
    client: aioredis.Redis, batcher: PipelineBatcher
) -> None:
    script = unique_script("return KEYS[1] .. ':' .. ARGV[1]")
    other = unique_script()
    results = await asyncio.gather(
        batcher.submit("ECHO", "plain"),
        batcher.submit_script(script, ["k1"], ["a"]),
        batcher.submit_script(other, [], ["b"]),
        batcher.submit_script(script, ["k2"], ["c"]),
    )
    assert results == [b"plain", b"k1:a", b"b", b"k2:c"]
    assert await client.script_exists(script.sha, other.sha) == [True, True]


async def test_a_script_error_fails_only_its_own_future(batcher: PipelineBatcher) -> None:
    failing = unique_script("return redis.error_reply('boom')")
    bad, good = (
        batcher.submit_script(failing, [], []),
        batcher.submit("ECHO", "ok"),
    )
    with pytest.raises(ResponseError, match="boom"):
        await asyncio.wait_for(bad, 5)
    assert await good == b"ok"


async def test_an_unloadable_script_fails_its_future_instead_of_hanging(
    batcher: PipelineBatcher,
) -> None:
    """SCRIPT LOAD of a script that does not compile fails: its callers (and the
    rest of the batch) must get an error, not wait forever."""
    broken = unique_script("return (")
    bad = batcher.submit_script(broken, [], [])
    neighbour = batcher.submit("ECHO", "neighbour")
    assert await asyncio.wait_for(neighbour, 5) == b"neighbour"
    await asyncio.wait({bad}, timeout=5)
    assert bad.done(), "the caller of a script that cannot be loaded waits forever"
    assert isinstance(bad.exception(), ResponseError), bad.exception()
    after = batcher.submit("ECHO", "after")
    assert await asyncio.wait_for(after, 5) == b"after"

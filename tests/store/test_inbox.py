"""store.inbox.Inbox over a PipelineBatcher against real Redis: the async inbox
(one stream per workflow key, one consumer group)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from store.batching import PipelineBatcher
from store.inbox import Entry, Inbox, NotEnabled, StaleRoute
from store.keys import INBOX_GROUP, Keys
from tests.store.helpers import event

KEY = "hook"
BLOCK_MS = 200


async def enable(client: aioredis.Redis, keys: Keys, version_id: int, key: str = KEY) -> None:
    await client.hset(keys.enabled, key, str(version_id))


async def add_events(inbox: Inbox, n: int, version_id: int = 7) -> list[str]:
    return [await inbox.add(event(KEY, version_id, i)) for i in range(n)]


def ids(entries: list[Entry]) -> list[str]:
    return [entry.id for entry in entries]


async def read_new(
    inbox: Inbox, key: str, consumer: str, *, count: int, block_ms: int
) -> list[Entry]:
    """New entries of one inbox (`read_many` over one key)."""
    return (await inbox.read_many(consumer, [key], count, block_ms)).get(key, [])


async def read_pending(
    inbox: Inbox, key: str, consumer: str, *, count: int, after: str = "0"
) -> list[Entry]:
    """One consumer's own pending entries of one inbox (`read_own` over one key)."""
    return (await inbox.read_own(consumer, {key: after}, count)).get(key, [])


# -- add --------------------------------------------------------------------------------


async def test_add_without_an_enabled_version_raises_not_enabled(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    with pytest.raises(NotEnabled):
        await inbox.add(event(KEY, 7))
    assert await client.exists(keys.inbox(KEY)) == 0


async def test_add_for_another_enabled_version_raises_stale_route(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 8)
    with pytest.raises(StaleRoute) as info:
        await inbox.add(event(KEY, 7))
    assert info.value.version_id == 8
    assert isinstance(info.value.version_id, int)
    assert await client.exists(keys.inbox(KEY)) == 0


async def test_add_of_an_enabled_version_returns_the_stream_entry_id(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    entry_id = await inbox.add(event(KEY, 7))
    assert isinstance(entry_id, str)
    assert await client.xlen(keys.inbox(KEY)) == 1
    assert await inbox.backlog(KEY) == 1
    (stored_id, _fields), *_ = await client.xrange(keys.inbox(KEY))
    assert stored_id.decode() == entry_id


# -- reading ----------------------------------------------------------------------------


async def test_read_new_returns_events_added_before_the_group_existed(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    added = await add_events(inbox, 3)
    await inbox.ensure_group(KEY)
    entries = await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    assert ids(entries) == added
    for n, entry in enumerate(entries):
        assert entry.event is not None
        assert entry.event.id == f"exec-{KEY}-{n}"
        assert entry.event.key == KEY
        assert entry.event.workflowId == 7
        assert entry.event.context == {"body": {"n": n}}
        assert entry.event.entry == entry.id
    assert await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS) == []


async def test_read_new_returns_events_added_after_the_group_was_created(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await inbox.ensure_group(KEY)
    await inbox.ensure_group(KEY)  # idempotent (BUSYGROUP is swallowed)
    await enable(client, keys, 7)
    added = await add_events(inbox, 2)
    entries = await read_new(inbox, KEY, "c1", count=1, block_ms=BLOCK_MS)
    assert ids(entries) == added[:1]
    entries = await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    assert ids(entries) == added[1:]


async def test_read_new_blocks_until_an_event_arrives(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await inbox.ensure_group(KEY)
    await enable(client, keys, 7)
    reader = asyncio.create_task(read_new(inbox, KEY, "c1", count=10, block_ms=5000))
    await asyncio.sleep(0.1)
    assert not reader.done()
    entry_id = await inbox.add(event(KEY, 7))
    entries = await asyncio.wait_for(reader, 5)
    assert ids(entries) == [entry_id]


async def test_read_pending_returns_delivered_unacked_entries_again(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    added = await add_events(inbox, 3)
    await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    pending = await read_pending(inbox, KEY, "c1", count=10)
    assert ids(pending) == added
    assert all(entry.event is not None and entry.event.entry == entry.id for entry in pending)
    # again: still pending
    assert ids(await read_pending(inbox, KEY, "c1", count=10)) == added
    # another consumer's PEL is its own
    assert await read_pending(inbox, KEY, "c2", count=10) == []


async def test_read_pending_with_after_paginates(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    added = await add_events(inbox, 5)
    await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    seen: list[str] = []
    after = "0"
    while True:
        page = await read_pending(inbox, KEY, "c1", count=2, after=after)
        if not page:
            break
        assert len(page) <= 2
        seen.extend(ids(page))
        after = page[-1].id
    assert seen == added


async def test_ack_removes_entries(client: aioredis.Redis, keys: Keys, inbox: Inbox) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    added = await add_events(inbox, 3)
    await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    assert await inbox.backlog(KEY) == 3

    await inbox.ack(KEY, added[:2])
    assert await inbox.backlog(KEY) == 1
    assert ids(await read_pending(inbox, KEY, "c1", count=10)) == added[2:]
    summary = await client.xpending(keys.inbox(KEY), INBOX_GROUP)
    assert summary["pending"] == 1
    assert [eid.decode() for eid, _ in await client.xrange(keys.inbox(KEY))] == added[2:]

    await inbox.ack(KEY, [])  # nothing to do
    await inbox.ack(KEY, added[2:])
    assert await inbox.backlog(KEY) == 0
    assert await read_pending(inbox, KEY, "c1", count=10) == []


async def test_claim_idle_takes_over_entries_pending_for_another_consumer(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    added = await add_events(inbox, 3)
    await read_new(inbox, KEY, "dead", count=10, block_ms=BLOCK_MS)
    await asyncio.sleep(0.05)

    # not idle long enough: nothing moves
    assert await inbox.claim_idle(KEY, "alive", min_idle_ms=60_000, count=10) == []

    claimed = await inbox.claim_idle(KEY, "alive", min_idle_ms=10, count=10)
    assert ids(claimed) == added
    assert all(entry.event is not None and entry.event.entry == entry.id for entry in claimed)
    assert ids(await read_pending(inbox, KEY, "alive", count=10)) == added
    assert await read_pending(inbox, KEY, "dead", count=10) == []
    rows = await client.xpending_range(keys.inbox(KEY), INBOX_GROUP, "-", "+", 10)
    assert {row["consumer"] for row in rows} == {b"alive"}


async def test_read_many_reads_several_inboxes_in_one_call(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await enable(client, keys, 8, key="other")
    await inbox.ensure_groups([KEY, "other", "empty"])
    mine = await add_events(inbox, 3)
    theirs = [await inbox.add(event("other", 8, n)) for n in range(2)]
    found = await inbox.read_many("c1", [KEY, "other", "empty"], 2, BLOCK_MS)
    assert {k: ids(v) for k, v in found.items()} == {KEY: mine[:2], "other": theirs}
    assert await inbox.read_many("c1", [], 10, BLOCK_MS) == {}


async def test_keep_alive_resets_the_idle_time_without_counting_a_delivery(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    (entry_id,) = await add_events(inbox, 1)
    await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    await asyncio.sleep(0.3)
    await inbox.keep_alive(KEY, "c1", [entry_id])
    (row,) = await client.xpending_range(keys.inbox(KEY), INBOX_GROUP, "-", "+", 10)
    assert row["time_since_delivered"] < 200
    assert await inbox.deliveries(KEY, [entry_id]) == {entry_id: 1}
    assert await inbox.claim_idle(KEY, "c2", min_idle_ms=250, count=10) == []


async def test_deliveries_count_each_read_of_a_pending_entry(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    first, second = await add_events(inbox, 2)
    await read_new(inbox, KEY, "c1", count=1, block_ms=BLOCK_MS)
    await read_pending(inbox, KEY, "c1", count=10)  # a restarted consumer reads it again
    await read_pending(inbox, KEY, "c1", count=10)
    assert await inbox.deliveries(KEY, [first, second, "0-1"]) == {first: 3}


async def test_claim_idle_many_takes_over_several_inboxes_in_one_round_trip(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await enable(client, keys, 8, key="other")
    await inbox.ensure_groups([KEY, "other"])
    mine = await add_events(inbox, 2)
    theirs = [await inbox.add(event("other", 8, n)) for n in range(1)]
    await inbox.read_many("dead", [KEY, "other"], 10, BLOCK_MS)
    await asyncio.sleep(0.05)
    claimed = await inbox.claim_idle_many([KEY, "other", "gone"], "alive", 10, 10)
    assert {k: ids(v) for k, v in claimed.items()} == {KEY: mine, "other": theirs}


async def test_claim_idle_many_skips_an_inbox_without_the_group_and_keeps_the_events(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    (mine,) = await add_events(inbox, 1)
    await client.xadd(keys.inbox("groupless"), {"e": b"x"})  # no consumer group: NOGROUP
    await inbox.read_many("dead", [KEY], 10, BLOCK_MS)
    await asyncio.sleep(0.05)
    claimed = await inbox.claim_idle_many(["groupless", KEY], "alive", 10, 10)
    assert list(claimed) == [KEY]
    (entry,) = claimed[KEY]
    assert entry.id == mine
    assert entry.event is not None and entry.execution_id == entry.event.id


async def test_present_says_which_entries_are_not_settled(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    added = await add_events(inbox, 3)
    await inbox.ack(KEY, added[:1])
    assert await inbox.present(KEY, added) == set(added[1:])
    assert await inbox.present(KEY, []) == set()


async def test_push_queues_for_a_disabled_workflow_and_marks_it_draining(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    entry_id = await inbox.push(event(KEY, 7))
    assert [e.decode() for e, _ in await client.xrange(keys.inbox(KEY))] == [entry_id]
    assert await client.sismember(keys.draining, KEY)


async def test_an_unreadable_payload_yields_an_entry_without_event(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await inbox.ensure_group(KEY)
    stream = keys.inbox(KEY)
    garbage = (await client.xadd(stream, {"e": b"\xc1 not msgpack"})).decode()
    wrong_shape = (await client.xadd(stream, {"e": b"\x93\x01\x02\x03"})).decode()  # [1,2,3]
    no_field = (await client.xadd(stream, {"x": b"1"})).decode()
    entries = await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    assert entries == [
        Entry(garbage, None),
        Entry(wrong_shape, None),
        Entry(no_field, None),
    ]
    pending = await read_pending(inbox, KEY, "c1", count=10)
    assert [entry.event for entry in pending] == [None, None, None]


async def test_a_pending_entry_whose_payload_was_deleted_yields_no_event(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    await inbox.ensure_group(KEY)
    (entry_id,) = await add_events(inbox, 1)
    await read_new(inbox, KEY, "c1", count=10, block_ms=BLOCK_MS)
    await client.xdel(keys.inbox(KEY), entry_id)
    pending = await read_pending(inbox, KEY, "c1", count=10)
    assert pending == [Entry(entry_id, None)]


async def test_drop_deletes_the_stream(client: aioredis.Redis, keys: Keys, inbox: Inbox) -> None:
    await enable(client, keys, 7)
    await add_events(inbox, 2)
    await inbox.drop(KEY)
    assert await client.exists(keys.inbox(KEY)) == 0
    assert await inbox.backlog(KEY) == 0


# -- group commit -----------------------------------------------------------------------


async def test_concurrent_adds_in_one_loop_turn_share_pipelines(
    client: aioredis.Redis, keys: Keys, batcher: PipelineBatcher, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    sizes: list[int] = []
    send = batcher._send

    async def counting_send(commands: list[tuple[Any, ...]]) -> list[Any]:
        sizes.append(len(commands))
        return await send(commands)

    batcher._send = counting_send  # type: ignore[method-assign]
    n = 200
    added = await asyncio.gather(*(inbox.add(event(KEY, 7, i)) for i in range(n)))
    assert len(set(added)) == n
    assert len(sizes) < n, sizes
    assert max(sizes) > 1, sizes
    assert await inbox.backlog(KEY) == n

    # stream order is the order the adds were issued
    await inbox.ensure_group(KEY)
    entries = await read_new(inbox, KEY, "c1", count=n, block_ms=BLOCK_MS)
    assert ids(entries) == list(added)
    assert [entry.event.id for entry in entries if entry.event] == [
        f"exec-{KEY}-{i}" for i in range(n)
    ]


async def test_concurrent_adds_with_mixed_outcomes_each_get_their_own(
    client: aioredis.Redis, keys: Keys, inbox: Inbox
) -> None:
    await enable(client, keys, 7)
    results = await asyncio.gather(
        inbox.add(event(KEY, 7, 0)),
        inbox.add(event(KEY, 6, 1)),  # stale route
        inbox.add(event("other", 7, 2)),  # no enabled version
        inbox.add(event(KEY, 7, 3)),
        return_exceptions=True,
    )
    assert isinstance(results[0], str) and isinstance(results[3], str)
    assert isinstance(results[1], StaleRoute) and results[1].version_id == 7
    assert isinstance(results[2], NotEnabled)
    assert await inbox.backlog(KEY) == 2
    assert await inbox.backlog("other") == 0

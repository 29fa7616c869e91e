"""store.workflows.WorkflowStore against real Redis (SPEC §3 "Versions")."""

from __future__ import annotations

import re

import pytest
import redis.asyncio as aioredis

from engine.definition import DefinitionError
from store.executions import ExecutionLog
from store.keys import Keys
from store.workflows import Frozen, NotFound, WorkflowStore
from tests.store.helpers import definition, next_message, patch, subscribed

BASE36_KEY = re.compile(r"[0-9a-z]{11}")


def node_keys(version) -> list[str]:
    out: list[str] = []

    def walk(nodes):
        for node in nodes:
            out.append(node.key)
            for chain in node.branches.values():
                walk(chain)

    walk(version.nodes)
    return out


# -- create ---------------------------------------------------------------------------


async def test_create_assigns_integer_id_and_base36_key(workflows: WorkflowStore) -> None:
    first = await workflows.create(definition())
    second = await workflows.create(definition())
    assert isinstance(first.id, int) and isinstance(second.id, int)
    assert second.id > first.id
    assert BASE36_KEY.fullmatch(first.key), first.key
    assert BASE36_KEY.fullmatch(second.key), second.key
    assert first.key != second.key


async def test_create_keeps_a_given_key(workflows: WorkflowStore) -> None:
    version = await workflows.create(definition(key="payments"))
    assert version.key == "payments"
    assert (await workflows.get(version.id)).key == "payments"


async def test_create_assigns_node_keys_to_nodes_without_one(workflows: WorkflowStore) -> None:
    doc = definition(
        nodes=[
            {"type": "variable", "config": {"value": 1}},
            {
                "key": "check",
                "type": "condition",
                "config": {
                    "rejectOnFalse": False,
                    "calculation": {"calculator": "equal", "operands": [1, 1]},
                },
                "branches": {"1": [{"type": "output", "config": {"value": 2}}]},
            },
        ]
    )
    version = await workflows.create(doc)
    keys = node_keys(version)
    assert len(keys) == 3
    assert keys[1] == "check"
    assert BASE36_KEY.fullmatch(keys[0]) and BASE36_KEY.fullmatch(keys[2])
    assert len(set(keys)) == 3
    stored = await workflows.get(version.id)
    assert node_keys(stored) == keys


async def test_create_without_enabled_is_disabled_and_not_current(
    workflows: WorkflowStore,
) -> None:
    version = await workflows.create(definition())
    assert (version.enabled, version.current, version.executed) == (False, False, 0)
    assert await workflows.enabled_version(version.key) is None
    assert await workflows.enabled_ids() == {}


async def test_create_enabled_makes_it_current_and_enabled(workflows: WorkflowStore) -> None:
    version = await workflows.create(definition(enabled=True))
    assert version.enabled is True
    assert version.current is True
    assert version.executed == 0
    assert await workflows.enabled_ids() == {version.key: version.id}


async def test_invalid_definition_raises_and_stores_nothing(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore
) -> None:
    bad = definition(
        key="bad",
        enabled=True,
        sync=False,  # a Response node needs a sync workflow
        nodes=[
            {"key": "dup", "type": "output", "config": {"value": 1}},
            {"key": "dup", "type": "output", "config": {"value": 2}},
            {"key": "r", "type": "response", "config": {"statusCode": 200}},
        ],
    )
    with pytest.raises(DefinitionError) as info:
        await workflows.create(bad)
    text = " ".join(info.value.messages)
    assert "dup" in text and "r" in text
    assert await workflows.versions() == []
    assert await workflows.versions(key="bad") == []
    assert await workflows.enabled_ids() == {}
    assert [k async for k in client.scan_iter(match=keys.pattern())] == []


async def test_unknown_node_type_raises_definition_error(workflows: WorkflowStore) -> None:
    with pytest.raises(DefinitionError):
        await workflows.create(definition(nodes=[{"key": "x", "type": "no-such-node"}]))
    assert await workflows.versions() == []


# -- reads ------------------------------------------------------------------------------


async def test_list_and_get_fill_enabled_current_and_executed(
    workflows: WorkflowStore, log: ExecutionLog
) -> None:
    v1 = await workflows.create(definition(key="k1", enabled=True))
    v2 = await workflows.create(definition(key="k1"))
    other = await workflows.create(definition(key="k2"))
    await log.mark_executed(v1.id)
    await log.mark_executed(v1.id)

    got = await workflows.get(v1.id)
    assert (got.enabled, got.current, got.executed) == (True, True, 2)
    got2 = await workflows.get(v2.id)
    assert (got2.enabled, got2.current, got2.executed) == (False, False, 0)

    listed = await workflows.versions()
    assert [v.id for v in listed] == [v1.id, v2.id, other.id]
    by_id = {v.id: v for v in listed}
    assert (by_id[v1.id].enabled, by_id[v1.id].current, by_id[v1.id].executed) == (True, True, 2)
    assert (by_id[v2.id].enabled, by_id[v2.id].current, by_id[v2.id].executed) == (
        False,
        False,
        0,
    )

    assert [v.id for v in await workflows.versions(key="k1")] == [v1.id, v2.id]
    assert [v.id for v in await workflows.versions(key="k2")] == [other.id]
    assert [v.id for v in await workflows.versions(current=True)] == [v1.id]
    assert [v.id for v in await workflows.versions(key="k1", current=False)] == [v2.id]


async def test_get_of_unknown_id_raises_not_found(workflows: WorkflowStore) -> None:
    with pytest.raises(NotFound):
        await workflows.get(987654321)


async def test_enabled_ids_and_enabled_version(workflows: WorkflowStore) -> None:
    a = await workflows.create(definition(key="a", enabled=True))
    await workflows.create(definition(key="a"))
    b = await workflows.create(definition(key="b", enabled=True))
    await workflows.create(definition(key="c"))
    assert await workflows.enabled_ids() == {"a": a.id, "b": b.id}
    enabled_a = await workflows.enabled_version("a")
    assert enabled_a is not None and enabled_a.id == a.id and enabled_a.enabled
    assert await workflows.enabled_version("c") is None
    assert await workflows.enabled_version("nope") is None


# -- enable / disable -------------------------------------------------------------------


async def test_enabling_another_version_disables_the_previous_one(
    workflows: WorkflowStore,
) -> None:
    v1 = await workflows.create(definition(key="k", enabled=True))
    v2 = await workflows.create(definition(key="k"))
    await workflows.update(v2.id, patch(enabled=True))

    old, new = await workflows.get(v1.id), await workflows.get(v2.id)
    assert (old.enabled, old.current) == (False, False)
    assert (new.enabled, new.current) == (True, True)
    assert await workflows.enabled_ids() == {"k": v2.id}
    versions = await workflows.versions(key="k")
    assert sum(v.enabled for v in versions) == 1
    assert sum(v.current for v in versions) == 1


async def test_creating_an_enabled_version_of_a_key_disables_the_previous_one(
    workflows: WorkflowStore,
) -> None:
    v1 = await workflows.create(definition(key="k", enabled=True))
    v2 = await workflows.create(definition(key="k", enabled=True))
    assert (await workflows.get(v1.id)).enabled is False
    assert (await workflows.get(v1.id)).current is False
    assert await workflows.enabled_ids() == {"k": v2.id}


async def test_disabling_keeps_current(workflows: WorkflowStore) -> None:
    version = await workflows.create(definition(key="k", enabled=True))
    updated = await workflows.update(version.id, patch(enabled=False))
    assert (updated.enabled, updated.current) == (False, True)
    assert await workflows.enabled_ids() == {}
    assert await workflows.enabled_version("k") is None
    assert [v.id for v in await workflows.versions(current=True)] == [version.id]


async def test_disabling_a_version_that_is_not_enabled_leaves_the_enabled_one(
    workflows: WorkflowStore,
) -> None:
    v1 = await workflows.create(definition(key="k"))
    v2 = await workflows.create(definition(key="k", enabled=True))
    await workflows.disable(await workflows.get(v1.id))
    assert await workflows.enabled_ids() == {"k": v2.id}


# -- update -----------------------------------------------------------------------------


async def test_update_changes_title_and_options(workflows: WorkflowStore) -> None:
    version = await workflows.create(definition(enabled=True))
    updated = await workflows.update(
        version.id, patch(title="renamed", description="d", options={"timeout": 5000})
    )
    assert updated.title == "renamed"
    assert updated.description == "d"
    assert updated.options.timeout == 5000
    assert updated.updatedAt >= version.updatedAt
    assert (updated.enabled, updated.current) == (True, True)
    stored = await workflows.get(version.id)
    assert stored.title == "renamed" and stored.options.timeout == 5000


async def test_update_of_title_and_options_is_allowed_after_the_version_ran(
    workflows: WorkflowStore, log: ExecutionLog
) -> None:
    version = await workflows.create(definition())
    await log.mark_executed(version.id)
    updated = await workflows.update(
        version.id, patch(title="still editable", options={"stackLimit": 3})
    )
    assert updated.title == "still editable"
    assert updated.options.stackLimit == 3
    assert updated.executed == 1


async def test_update_of_nodes_and_config_is_allowed_before_the_version_ran(
    workflows: WorkflowStore,
) -> None:
    version = await workflows.create(definition())
    updated = await workflows.update(
        version.id,
        patch(
            config={"basicAuthentication": {"username": "u", "password": "p"}},
            nodes=[
                {"key": "only", "type": "output", "config": {"value": 7}},
                {"type": "output", "config": {"value": 8}},
            ],
        ),
    )
    assert node_keys(updated)[0] == "only"
    assert BASE36_KEY.fullmatch(node_keys(updated)[1])
    assert updated.config.basicAuthentication.username == "u"
    stored = await workflows.get(version.id)
    assert node_keys(stored) == node_keys(updated)


@pytest.mark.parametrize(
    "change",
    [
        {"nodes": [{"key": "only", "type": "output", "config": {"value": 7}}]},
        {"config": {"basicAuthentication": {"username": "u", "password": "p"}}},
        {"title": "with nodes", "nodes": []},
    ],
    ids=["nodes", "config", "title+nodes"],
)
async def test_update_of_config_or_nodes_is_frozen_once_executed(
    workflows: WorkflowStore, log: ExecutionLog, change: dict
) -> None:
    version = await workflows.create(definition())
    await log.mark_executed(version.id)
    with pytest.raises(Frozen):
        await workflows.update(version.id, patch(**change))
    stored = await workflows.get(version.id)
    assert stored.title == version.title
    assert node_keys(stored) == node_keys(version)
    assert stored.config == version.config
    assert stored.updatedAt == version.updatedAt


async def test_update_is_frozen_when_executed_counter_is_set_directly(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore
) -> None:
    version = await workflows.create(definition())
    await client.incr(keys.executed(version.id))
    with pytest.raises(Frozen):
        await workflows.update(version.id, patch(nodes=[]))


async def test_update_of_sync_to_a_different_value_raises_definition_error(
    workflows: WorkflowStore,
) -> None:
    version = await workflows.create(definition(sync=False))
    with pytest.raises(DefinitionError) as info:
        await workflows.update(version.id, patch(sync=True))
    assert "sync" in str(info.value)
    assert (await workflows.get(version.id)).sync is False
    # sending the unchanged value back (a whole version) is accepted
    same = await workflows.update(version.id, patch(sync=False, title="t2"))
    assert same.sync is False and same.title == "t2"


async def test_update_of_key_to_a_different_value_raises_definition_error(
    workflows: WorkflowStore,
) -> None:
    version = await workflows.create(definition(key="k"))
    with pytest.raises(DefinitionError):
        await workflows.update(version.id, patch(key="other"))
    assert (await workflows.get(version.id)).key == "k"


async def test_update_with_an_invalid_definition_stores_nothing(
    workflows: WorkflowStore,
) -> None:
    version = await workflows.create(definition())
    with pytest.raises(DefinitionError):
        await workflows.update(
            version.id,
            patch(title="x", nodes=[{"key": "r", "type": "response", "config": {}}]),
        )
    stored = await workflows.get(version.id)
    assert stored.title == version.title
    assert node_keys(stored) == node_keys(version)


async def test_update_of_unknown_id_raises_not_found(workflows: WorkflowStore) -> None:
    with pytest.raises(NotFound):
        await workflows.update(987654321, patch(title="x"))


# -- revision ---------------------------------------------------------------------------


async def test_revision_copies_config_and_nodes_with_the_same_node_keys(
    workflows: WorkflowStore, log: ExecutionLog
) -> None:
    source = await workflows.create(
        definition(
            key="k",
            enabled=True,
            config={"basicAuthentication": {"username": "u", "password": "p"}},
            nodes=[
                {"type": "variable", "config": {"value": 1}},
                {"type": "output", "config": {"value": 2}},
            ],
        )
    )
    await log.mark_executed(source.id)
    copy = await workflows.revision(source.id)

    assert copy.id != source.id and copy.id > source.id
    assert copy.key == "k"
    assert (copy.enabled, copy.current, copy.executed) == (False, False, 0)
    assert node_keys(copy) == node_keys(source)
    assert copy.nodes == source.nodes
    assert copy.config == source.config
    assert copy.options == source.options
    assert copy.sync == source.sync

    # the source is untouched and still the enabled one
    again = await workflows.get(source.id)
    assert (again.enabled, again.current, again.executed) == (True, True, 1)
    assert await workflows.enabled_ids() == {"k": source.id}
    assert [v.id for v in await workflows.versions(key="k")] == [source.id, copy.id]

    # the revision has not run, so it can be edited
    edited = await workflows.update(
        copy.id, patch(nodes=[{"key": "new", "type": "output", "config": {"value": 3}}])
    )
    assert node_keys(edited) == ["new"]
    assert node_keys(await workflows.get(source.id)) == node_keys(source)


# -- destroy ----------------------------------------------------------------------------


async def test_destroy_removes_the_version(workflows: WorkflowStore) -> None:
    keep = await workflows.create(definition(key="k"))
    gone = await workflows.create(definition(key="k"))
    destroyed = await workflows.destroy(gone.id)
    assert destroyed.id == gone.id
    with pytest.raises(NotFound):
        await workflows.get(gone.id)
    assert [v.id for v in await workflows.versions()] == [keep.id]
    assert [v.id for v in await workflows.versions(key="k")] == [keep.id]
    with pytest.raises(NotFound):
        await workflows.destroy(gone.id)


async def test_destroying_the_enabled_version_leaves_the_key_without_one(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore, log: ExecutionLog
) -> None:
    older = await workflows.create(definition(key="k"))
    enabled = await workflows.create(definition(key="k", enabled=True))
    await log.mark_executed(enabled.id)
    await workflows.destroy(enabled.id)
    assert await workflows.enabled_ids() == {}
    assert await workflows.enabled_version("k") is None
    assert await client.hget(keys.current, "k") is None
    assert await client.exists(keys.version(enabled.id), keys.executed(enabled.id)) == 0
    remaining = await workflows.versions(key="k")
    assert [v.id for v in remaining] == [older.id]
    assert (remaining[0].enabled, remaining[0].current) == (False, False)


# -- change announcements ------------------------------------------------------------


async def test_every_change_publishes_the_workflow_key(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore
) -> None:
    pubsub = await subscribed(client, keys.changed_channel)
    try:

        async def published() -> bytes:
            message = await next_message(pubsub)
            assert message is not None, "no change announced"
            assert message["channel"] == keys.changed_channel.encode()
            return message["data"]

        version = await workflows.create(definition(key="k", enabled=True))
        assert await published() == b"k"
        await workflows.update(version.id, patch(title="t"))
        assert await published() == b"k"
        await workflows.update(version.id, patch(enabled=False))
        assert await published() == b"k"
        await workflows.update(version.id, patch(enabled=True))
        assert await published() == b"k"
        copy = await workflows.revision(version.id)
        assert await published() == b"k"
        await workflows.update(copy.id, patch(nodes=[]))
        assert await published() == b"k"
        await workflows.destroy(copy.id)
        assert await published() == b"k"
        await workflows.destroy(version.id)  # enabled: disable + destroy
        assert await published() == b"k"
    finally:
        await pubsub.aclose()


async def test_creating_a_disabled_version_publishes_the_workflow_key(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore
) -> None:
    pubsub = await subscribed(client, keys.changed_channel)
    try:
        await workflows.create(definition(key="quiet"))
        message = await next_message(pubsub, timeout=1.0)
        assert message is not None, "creating a (disabled) version announced nothing"
        assert message["data"] == b"quiet"
    finally:
        await pubsub.aclose()


async def test_failed_changes_publish_nothing(
    client: aioredis.Redis, keys: Keys, workflows: WorkflowStore, log: ExecutionLog
) -> None:
    version = await workflows.create(definition(key="k"))
    await log.mark_executed(version.id)
    pubsub = await subscribed(client, keys.changed_channel)
    try:
        with pytest.raises(Frozen):
            await workflows.update(version.id, patch(nodes=[]))
        with pytest.raises(DefinitionError):
            await workflows.create(definition(key="k", nodes=[{"key": "x", "type": "nope"}]))
        assert await next_message(pubsub, timeout=0.5) is None
    finally:
        await pubsub.aclose()

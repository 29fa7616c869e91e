"""Workflow versions (SPEC §3 "Versions"): a key groups versions, at most one is
enabled, a version that has run is frozen, a revision copies one keeping node
keys. Every change is announced on the `changed` channel with the workflow key."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import msgspec
import redis.asyncio as aioredis
from redis.exceptions import WatchError

from engine.definition import (
    DefinitionError,
    VersionPatch,
    WorkflowDefinition,
    WorkflowVersion,
    new_key,
)
from engine.records import now
from engine.validation import assign_node_keys, compile_workflow
from store.connection import VERSION_DISABLE, VERSION_ENABLE
from store.errors import raises_store_error
from store.executions import encode
from store.keys import Keys

_decode_version = msgspec.json.Decoder(WorkflowVersion).decode

_IMMUTABLE = ("sync", "key", "type")


class NotFound(LookupError):
    pass


class Frozen(ValueError):
    """An edit of a version that has already run."""


@raises_store_error
class WorkflowStore:
    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    # -- reads --------------------------------------------------------------------

    async def get(self, version_id: int) -> WorkflowVersion:
        versions = await self._load([version_id])
        if not versions:
            raise NotFound(f"workflow version {version_id} not found")
        return versions[0]

    async def versions(
        self, *, key: str | None = None, current: bool | None = None
    ) -> list[WorkflowVersion]:
        index = self.keys.versions_of(key) if key else self.keys.all_versions
        ids = [int(i) for i in await self.client.zrange(index, 0, -1)]
        versions = await self._load(ids)
        if current is not None:
            versions = [v for v in versions if v.current == current]
        return versions

    async def enabled_ids(self) -> dict[str, int]:
        """Every workflow key with an enabled version → that version's id."""
        raw = await self.client.hgetall(self.keys.enabled)
        return {k.decode(): int(v) for k, v in raw.items()}

    async def enabled_version(self, key: str) -> WorkflowVersion | None:
        version_id = await self.client.hget(self.keys.enabled, key)
        if version_id is None:
            return None
        versions = await self._load([int(version_id)])
        return versions[0] if versions else None

    async def _load(self, ids: list[int]) -> list[WorkflowVersion]:
        if not ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        for version_id in ids:
            pipe.get(self.keys.version(version_id))
            pipe.get(self.keys.executed(version_id))
        pipe.hgetall(self.keys.current)
        pipe.hgetall(self.keys.enabled)
        replies = await pipe.execute()
        current = {k.decode(): int(v) for k, v in replies[-2].items()}
        enabled = {k.decode(): int(v) for k, v in replies[-1].items()}
        out = []
        for i in range(len(ids)):
            raw, executed = replies[2 * i], replies[2 * i + 1]
            if raw is None:
                continue
            version = _decode_version(raw)
            version.current = current.get(version.key) == version.id
            version.enabled = enabled.get(version.key) == version.id
            version.executed = int(executed or 0)
            out.append(version)
        return out

    # -- writes -------------------------------------------------------------------

    async def create(self, definition: WorkflowDefinition) -> WorkflowVersion:
        """Validate and store a new version (a new key unless one is given)."""
        assign_node_keys(definition.nodes)
        key = definition.key or new_key()
        compile_workflow(definition)
        version_id = int(await self.client.incr(self.keys.version_seq))
        stamp = now()
        version = WorkflowVersion(
            id=version_id,
            key=key,
            title=definition.title,
            description=definition.description,
            type=definition.type,
            sync=definition.sync,
            config=definition.config,
            options=definition.options,
            nodes=definition.nodes,
            createdAt=stamp,
            updatedAt=stamp,
        )
        await self._write(version)
        if definition.enabled is True:
            await self.enable(version)
        else:
            await self._announce(key)
        return await self.get(version_id)

    async def update(self, version_id: int, patch: VersionPatch) -> WorkflowVersion:
        """Apply a patch; config and nodes only while the version has never run."""
        version = await self.get(version_id)
        for name in _IMMUTABLE:
            value = getattr(patch, name)
            if value is not msgspec.UNSET and value != getattr(version, name):
                raise DefinitionError([f"{name}: cannot be changed after creation"])
        changes_graph = patch.config is not msgspec.UNSET or patch.nodes is not msgspec.UNSET
        for field in ("title", "description", "config", "options", "nodes"):
            value = getattr(patch, field)
            if value is not msgspec.UNSET:
                setattr(version, field, value)
        if changes_graph or patch.options is not msgspec.UNSET:
            assign_node_keys(version.nodes)
            compile_workflow(version)
        version.updatedAt = now()
        if changes_graph:
            await self._write_unless_executed(version)
        else:
            await self._write(version)
        if patch.enabled is True and not version.enabled:
            await self.enable(version)
        elif patch.enabled is False and version.enabled:
            await self.disable(version)
        else:
            await self._announce(version.key)
        return await self.get(version_id)

    async def revision(self, version_id: int) -> WorkflowVersion:
        """Copy a version into a new, disabled one with the same key and node keys."""
        source = await self.get(version_id)
        new_id = int(await self.client.incr(self.keys.version_seq))
        stamp = now()
        copy = msgspec.structs.replace(
            source,
            id=new_id,
            createdAt=stamp,
            updatedAt=stamp,
            enabled=False,
            current=False,
            executed=0,
        )
        await self._write(copy)
        await self._announce(copy.key)
        return await self.get(new_id)

    async def destroy(self, version_id: int) -> WorkflowVersion:
        version = await self.get(version_id)
        if version.enabled:
            await self.disable(version)
        pipe = self.client.pipeline(transaction=True)
        pipe.delete(self.keys.version(version_id), self.keys.executed(version_id))
        pipe.zrem(self.keys.versions_of(version.key), version_id)
        pipe.zrem(self.keys.all_versions, version_id)
        if version.current:
            pipe.hdel(self.keys.current, version.key)
        await pipe.execute()
        await self._announce(version.key)
        return version

    async def enable(self, version: WorkflowVersion) -> None:
        await VERSION_ENABLE(
            self.client,
            [self.keys.current, self.keys.enabled, self.keys.inboxes_changed],
            [version.key, version.id],
        )
        await self._announce(version.key)

    async def disable(self, version: WorkflowVersion) -> None:
        await VERSION_DISABLE(
            self.client,
            [self.keys.enabled, self.keys.draining, self.keys.inboxes_changed],
            [version.key, version.id],
        )
        await self._announce(version.key)

    async def _write(self, version: WorkflowVersion) -> None:
        pipe = self.client.pipeline(transaction=True)
        pipe.set(self.keys.version(version.id), encode(version))
        pipe.zadd(self.keys.versions_of(version.key), {str(version.id): version.id})
        pipe.zadd(self.keys.all_versions, {str(version.id): version.id})
        await pipe.execute()

    async def _write_unless_executed(self, version: WorkflowVersion) -> None:
        """Write only if no execution has started; an execution counts itself
        before reading the definition, so WATCH closes the race with a run."""
        counter = self.keys.executed(version.id)
        async with self.client.pipeline(transaction=True) as pipe:
            try:
                await pipe.watch(counter)
                if int(await pipe.get(counter) or 0) > 0:
                    raise Frozen(
                        f"workflow version {version.id} has run, so its config and nodes are "
                        "frozen; create a revision (workflows:revision) and edit that"
                    )
                pipe.multi()
                pipe.set(self.keys.version(version.id), encode(version))
                await pipe.execute()
            except WatchError:
                raise Frozen(
                    f"workflow version {version.id} started running during the edit; "
                    "create a revision and edit that"
                ) from None

    async def changes(self, quiet_seconds: float) -> AsyncGenerator[str | None, None]:
        """The keys of workflows as their changes are announced; None once
        subscribed (changes made before are not announced again) and after each
        `quiet_seconds` without one. Raises when Redis is lost."""
        async with self.client.pubsub() as pubsub:
            await pubsub.subscribe(self.keys.changed_channel)
            yield None
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=quiet_seconds
                )
                if message is None:
                    yield None
                elif message.get("type") == "message":
                    yield message["data"].decode()

    async def _announce(self, key: str) -> None:
        await self.client.publish(self.keys.changed_channel, key)

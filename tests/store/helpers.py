"""Builders and pub/sub helpers the store tests share."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import redis.asyncio as aioredis

from engine.definition import VersionPatch, WorkflowDefinition
from engine.records import TriggerEvent


def definition(**fields: Any) -> WorkflowDefinition:
    """A valid async definition (two nodes) unless `fields` say otherwise."""
    doc: dict[str, Any] = {
        "title": "test workflow",
        "sync": False,
        "nodes": [
            {"key": "amount", "type": "variable", "config": {"value": "{{$context.body.a}}"}},
            {"key": "out", "type": "output", "config": {"value": "{{$jobsMapByNodeKey.amount}}"}},
        ],
    }
    doc.update(fields)
    return msgspec.convert(doc, WorkflowDefinition)


def patch(**fields: Any) -> VersionPatch:
    return msgspec.convert(fields, VersionPatch)


def event(key: str, workflow_id: int, n: int = 0) -> TriggerEvent:
    return TriggerEvent(
        id=f"exec-{key}-{n}",
        key=key,
        workflowId=workflow_id,
        context={"body": {"n": n}},
        createdAt=1_700_000_000.0 + n,
    )


async def next_message(pubsub: aioredis.client.PubSub, timeout: float = 3.0) -> dict | None:
    """The next published message (subscribe confirmations skipped), or None."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message is not None:
            return message
    return None


async def subscribed(client: aioredis.Redis, channel: str) -> aioredis.client.PubSub:
    """A pubsub whose subscription Redis has confirmed (so no publish is missed)."""
    pubsub = client.pubsub()
    await pubsub.subscribe(channel)
    deadline = asyncio.get_running_loop().time() + 3.0
    while asyncio.get_running_loop().time() < deadline:
        message = await pubsub.get_message(timeout=0.1)
        if message is not None and message["type"] == "subscribe":
            return pubsub
    raise AssertionError(f"subscription to {channel} not confirmed")

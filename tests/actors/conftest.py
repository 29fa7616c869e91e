"""Fixtures of the actor tests: the session's Ray driver, a fresh namespace whose
actors are killed at teardown, and the namespace's store seen from the test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from engine.settings import Settings
from store.connection import connect
from tests.actors.support import Store
from tests.conftest import REDIS_URL, kill_actors


@pytest.fixture
def settings(ray_driver: None, namespace: str) -> Iterator[Settings]:
    """Settings of a fresh namespace; every named actor of it is killed afterwards
    (before the namespace's keys are deleted). No history writer: these tests
    watch final executions in Redis, where they stay without one."""
    yield Settings(redis_url=REDIS_URL, namespace=namespace, executors=2, history_writer=False)
    kill_actors(namespace)


@pytest.fixture
async def store(settings: Settings) -> AsyncIterator[Store]:
    client = connect(REDIS_URL)
    yield Store(settings, client)
    await client.aclose()

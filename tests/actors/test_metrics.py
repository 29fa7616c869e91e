"""actors/metrics.py against the session's real Ray and the machine's Redis:
what `rayhook_actor_restarts_total` counts (ingress/metrics.py exposes the
`actor_restarts` figures as they are)."""

from __future__ import annotations

import asyncio
import time

import ray

from actors import handles
from engine.settings import Settings
from tests.actors.support import Store

ACTOR = "ExecutionActor executor:0"


async def figure(store: Store, name: str, least: int, timeout: float = 30) -> int:
    """The actor's count in metrics hash `name`, once it is at least `least`
    (the actors add their figures up in Redis every ~2 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = int(await store.client.hget(store.keys.metrics(name), ACTOR) or 0)
        if value >= least or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.2)


async def test_a_new_actor_after_a_clean_stop_is_no_restart_and_a_crash_is_one(
    settings: Settings, store: Store
) -> None:
    first = handles.executor(settings, 0)
    await first.ready.remote()
    assert await figure(store, "actor_starts", 1) == 1
    # A clean stop (as when the stack stops): the actor is gone for good; the
    # next start makes a new one under the same name.
    ray.kill(first, no_restart=True)
    deadline = time.monotonic() + 30
    while True:
        try:
            ray.get_actor("executor:0", namespace=settings.namespace)
        except ValueError:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    second = handles.executor(settings, 0)
    await second.ready.remote()
    assert await figure(store, "actor_starts", 2) == 2  # "starts after the first" would be 1
    assert await figure(store, "actor_restarts", 1, timeout=3) == 0
    # A crash: Ray brings the same actor back, which is a restart.
    ray.kill(second, no_restart=False)
    deadline = time.monotonic() + 60
    while True:
        try:
            await asyncio.wait_for(second.ready.remote(), 10)
            break
        except (ray.exceptions.RayActorError, TimeoutError):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)
    assert await figure(store, "actor_restarts", 1) == 1
    assert await figure(store, "actor_starts", 3) == 3

"""Names and handles of rayhook's actors in its Ray namespace.

Actors are named and detached so any process of the deployment (gunicorn
workers, supervisors) finds the same ones, and `max_restarts=-1` so Ray brings
them back after a crash; their state is rebuilt from Redis."""

from __future__ import annotations

import hashlib
from typing import cast

from ray.actor import ActorHandle

from engine.settings import Settings

MAX_CONCURRENCY = 4096


def executor_name(index: int) -> str:
    return f"executor:{index}"


def executor_index(execution_id: str, pool_size: int) -> int:
    """The executor that owns an execution: stable, so a redelivered event lands
    where its first delivery may still be running (and joins it)."""
    digest = hashlib.blake2b(execution_id.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % pool_size


def placement(settings: Settings) -> dict[str, float]:
    """Actors take no CPU (they are I/O bound and many); with a custom resource
    set, one unit of it pins them to the nodes that offer it (never the head or
    the ingress pods; see docs/deploy.md). They are spread over those nodes
    (Ray would pack a node until it is half used): losing one node then stops
    only its share of the executors."""
    return {settings.actor_resource: 1} if settings.actor_resource else {}


def executor(settings: Settings, index: int) -> ActorHandle:
    from actors.executor import RemoteExecutionActor

    handle = RemoteExecutionActor.options(
        name=executor_name(index),
        namespace=settings.namespace,
        lifetime="detached",
        get_if_exists=True,
        max_restarts=-1,
        max_task_retries=0,
        max_concurrency=MAX_CONCURRENCY,
        num_cpus=0,
        resources=placement(settings),
        scheduling_strategy="SPREAD",
    ).remote(settings, index)
    return cast(ActorHandle, handle)


def executors(settings: Settings) -> list[ActorHandle]:
    return [executor(settings, i) for i in range(settings.executors)]

"""`StoreError`: what a store object raises when Redis is away or refuses a
command, so that nothing outside `store/` needs redis-py's exception types.

Store classes are decorated with `raises_store_error`: each public coroutine
method re-raises redis-py's errors as `StoreError` (the redis-py error is the
`__cause__`). Callers that meet Redis failures answer 503 or retry on it."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from redis.exceptions import RedisError

T = TypeVar("T")


class StoreError(Exception):
    """Redis could not be reached, timed out, or refused the command (above
    `maxmemory`, a wrong type, ...)."""


class GroupMissing(StoreError):
    """A stream read through a consumer group the stream no longer has
    (NOGROUP: the inbox was dropped and created again)."""


def store_error(exc: RedisError) -> StoreError:
    """The `StoreError` that stands for redis-py's `exc`."""
    if "NOGROUP" in str(exc):
        return GroupMissing(str(exc))
    return StoreError(str(exc) or type(exc).__name__)


def raises_store_error(cls: type[T]) -> type[T]:
    """Class decorator: the public coroutine methods defined on `cls` raise
    `StoreError` where redis-py raised its own error."""
    for name, method in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(method):
            setattr(cls, name, _translating(method))
    return cls


def _translating(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return await method(*args, **kwargs)
        except RedisError as exc:
            raise store_error(exc) from exc

    return call

"""Which executions a search wants (SPEC §9): the same filter applies to the hot
executions in Redis (checked here, in Python) and to the history in SQL
(`store.history` turns it into a WHERE clause), so both answer alike."""

from __future__ import annotations

from typing import Any

import msgspec

from engine.paths import get_request_path
from engine.records import Execution, id_bound

#: What `filter[status]` may name: a status number, or None for queued.
StatusChoice = int | None


class ContextMatch(msgspec.Struct, frozen=True):
    """The trigger context's value at `path` whose text form equals `value`."""

    path: tuple[str | int, ...]
    value: str


class ExecutionFilter(msgspec.Struct, frozen=True, kw_only=True):
    """Attributes: `key` (workflow key), `statuses` (any of them; empty: every
    status), `created_from` / `created_to` (epoch ms, both inclusive),
    `context` (every match must hold), `exhausted`, and `before` (a paging
    cursor: only ids below it, i.e. older executions)."""

    key: str | None = None
    statuses: tuple[StatusChoice, ...] = ()
    created_from: int | None = None
    created_to: int | None = None
    context: tuple[ContextMatch, ...] = ()
    exhausted: bool | None = None
    before: str | None = None

    @property
    def id_low(self) -> str | None:
        """Ids at or above this one (from `created_from`): ids start with their time."""
        return None if self.created_from is None else id_bound(self.created_from)

    @property
    def id_high(self) -> str | None:
        """Ids below this one (from `created_to` and the cursor)."""
        bounds = [b for b in (self.before,) if b]
        if self.created_to is not None:
            bounds.append(id_bound(self.created_to + 1))
        return min(bounds) if bounds else None

    @property
    def only_hot(self) -> bool:
        """Queued or running executions are never in the history store."""
        return bool(self.statuses) and all(s is None or s == 0 for s in self.statuses)

    def matches(self, execution: Execution) -> bool:
        if self.key is not None and execution.key != self.key:
            return False
        if self.statuses and execution.status not in self.statuses:
            return False
        if self.exhausted is not None and execution.exhausted != self.exhausted:
            return False
        if (low := self.id_low) is not None and execution.id < low:
            return False
        if (high := self.id_high) is not None and execution.id >= high:
            return False
        return all(
            text_form(get_request_path(execution.context, m.path)) == m.value for m in self.context
        )


def text_form(value: Any) -> str | None:
    """How a context value compares with a filter's text: strings as they are,
    numbers and booleans as JSON writes them; objects, arrays and null match
    nothing (None)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return msgspec.json.encode(value).decode()
    return None

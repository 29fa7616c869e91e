"""What integration nodes use to reach the outside world (HTTP, SQL, SMTP, a JS
sandbox): shared per process, created lazily inside the running event loop, and
owned by whoever runs executions (an ExecutionActor, or a test). Pure nodes
never touch it.

The nodes (`engine/nodes/request.py`, `sql.py`, `mailer.py`, `script.py`) say
what a config means; the ports below say what they ask of the outside world,
and the `integrations` package implements them with the client libraries
(httpx, psycopg, aiosmtplib, mini-racer). `engine` never imports those, so a
process that only validates definitions loads none of them until a node needs
one. Whoever runs or validates workflows installs the implementations once per
process (`integrations.wiring.install()`: the ingress and the executors do)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import msgspec

from engine.records import Execution, Job
from engine.settings import Settings

log = logging.getLogger("rayhook.effects")

T = TypeVar("T")


class SubflowOutcome(msgspec.Struct, kw_only=True):
    """A called workflow's end (`queued`: an async child, its end comes later)."""

    executionId: str
    queued: bool = False
    status: int | None = None
    output: Any = None


class SubflowRunner(Protocol):
    """What runs a called workflow: the ExecutionActor, which has the store."""

    async def call(
        self, *, key: str, context: Any, parent: Execution, job: Job
    ) -> SubflowOutcome: ...


class EffectFailed(Exception):
    """An effect that did not succeed; `result` is the job result (`{message,
    code?, ...}`), `timeout` whether it ran out of time."""

    def __init__(self, result: dict[str, Any], *, timeout: bool = False) -> None:
        super().__init__(result.get("message"))
        self.result = result
        self.timeout = timeout


class HttpRequests(Protocol):
    """The request node's HTTP, through the outbound policy."""

    def url_problem(self, url: str) -> str | None:
        """Why `url` (a definition's, untemplated) cannot be requested; None if it can."""
        ...

    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        """Send the request a rendered config describes; the success result
        `{status, statusText, headers, data}`, or `EffectFailed`."""
        ...


class SqlQueries(Protocol):
    """The sql node's databases (RAYHOOK_SQL_<NAME>)."""

    async def execute(
        self, effects: Effects, source: str, text: str, params: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Run `text` (psycopg placeholders) on a configured source: the last
        result's rows and `{command, rowCount, fields}`, or `EffectFailed`."""
        ...


class MailDelivery(Protocol):
    """The mailer node's SMTP, through the outbound policy."""

    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        """Send the email a rendered config describes: `{messageId, accepted,
        rejected}`, or `EffectFailed`."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptCall:
    """One script to run: its body (of an async function), the argument `names`
    and their values (`arguments`, JSON text of a list), and the wall timeout."""

    content: str
    names: list[str]
    arguments: str
    timeout_ms: int


class ScriptOutcome(Protocol):
    """What one script run gave: `value` (JSON text) or `error` (the job result
    of a failure), and its console lines."""

    @property
    def value(self) -> str | None: ...

    @property
    def error(self) -> dict[str, Any] | None: ...

    @property
    def log(self) -> list[str]: ...


class ScriptSandbox(Protocol):
    """The script node's JavaScript sandbox (V8)."""

    def syntax_problem(self, names: tuple[str, ...], content: str) -> str | None:
        """Why `content`, the body of an async function of `names`, does not compile."""
        ...

    async def run(self, effects: Effects, execution: Execution, call: ScriptCall) -> ScriptOutcome:
        """Run one script for `execution`, within its CPU allowance."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class Integrations:
    """The implementations of the ports, one per kind of effect."""

    http: HttpRequests
    sql: SqlQueries
    mail: MailDelivery
    scripts: ScriptSandbox


_installed: Integrations | None = None


def install(integrations: Integrations) -> None:
    """Make `integrations` the ones of this process: definition checks and every
    `Effects` built without its own use them."""
    global _installed
    _installed = integrations


def installed() -> Integrations:
    """This process's integrations (`install`)."""
    if _installed is None:
        raise RuntimeError(
            "no integrations are installed in this process: call "
            "integrations.wiring.install() before validating or running workflows"
        )
    return _installed


class Effects:
    """Attributes: `settings` (allow-lists, data sources, limits), `subflows`,
    `integrations` (the process's installed ones unless given). Clients (the
    request node's HTTP client, the sql node's pools, the script node's
    sandboxes) are opened on first use by `client`, inside the running event
    loop, and closed by `aclose`.

    Example, in a node's `run` and in the integration it calls::

        rows, meta = await run.effects.integrations.sql.execute(run.effects, "main", text, None)
        pool = await effects.client("sql:main", open_pool, close_pool)  # integrations/sql.py
    """

    def __init__(
        self,
        settings: Settings,
        subflows: SubflowRunner | None = None,
        *,
        integrations: Integrations | None = None,
    ) -> None:
        self.settings = settings
        self.subflows = subflows
        self._integrations = integrations
        self._clients: dict[str, asyncio.Future[Any]] = {}
        self._closers: dict[str, Callable[[Any], Awaitable[None]]] = {}

    @property
    def integrations(self) -> Integrations:
        return self._integrations or installed()

    async def client(
        self,
        name: str,
        open: Callable[[Settings], Awaitable[T]],
        close: Callable[[T], Awaitable[None]],
    ) -> T:
        """The client called `name`, opened by `open(settings)` on first use.

        Concurrent first uses share one opening; an opening that failed is
        forgotten, so that the next use tries again."""
        opening = self._clients.get(name)
        if opening is None:
            opening = asyncio.ensure_future(open(self.settings))
            self._clients[name] = opening
            self._closers[name] = close
        try:
            # Shielded: a caller that is canceled (a workflow timeout) must not
            # cancel an opening that other callers share.
            value: T = await asyncio.shield(opening)
        except BaseException:
            failed = opening.done() and (opening.cancelled() or opening.exception() is not None)
            if failed and self._clients.get(name) is opening:
                del self._clients[name], self._closers[name]
            raise
        return value

    async def aclose(self) -> None:
        """Close every client opened so far."""
        clients, closers = self._clients, self._closers
        self._clients, self._closers = {}, {}
        for name, opening in clients.items():
            if not opening.done():
                await asyncio.wait([opening])
            if opening.cancelled() or opening.exception() is not None:
                continue  # never opened: nothing to close
            try:
                await closers[name](opening.result())
            except Exception:
                log.warning("closing the %s client failed", name, exc_info=True)

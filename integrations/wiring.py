"""The `engine.effects.Integrations` of this package, and `install`, which
makes them the process's (the ingress and each executor call it at start).

Each client library is imported the first time its port is used, so that a
process that never meets a node of a kind does not load its client: a gunicorn
worker validating definitions loads httpx for a request node's URL and V8 for
a script node's syntax, never psycopg or aiosmtplib.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import engine.effects
from engine.effects import Effects, Integrations, ScriptCall, ScriptOutcome
from engine.records import Execution


class _Http:
    def url_problem(self, url: str) -> str | None:
        from integrations.http import HttpRequests

        return HttpRequests().url_problem(url)

    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        from integrations.http import HttpRequests

        return await HttpRequests().send(effects, config)


class _Sql:
    async def execute(
        self, effects: Effects, source: str, text: str, params: Mapping[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        from integrations.sql import SqlQueries

        return await SqlQueries().execute(effects, source, text, params)


class _Mail:
    async def send(self, effects: Effects, config: Mapping[str, Any]) -> dict[str, Any]:
        from integrations.mail import MailDelivery

        return await MailDelivery().send(effects, config)


class _Scripts:
    def syntax_problem(self, names: tuple[str, ...], content: str) -> str | None:
        from integrations.scripts import ScriptSandbox

        return ScriptSandbox().syntax_problem(names, content)

    async def run(self, effects: Effects, execution: Execution, call: ScriptCall) -> ScriptOutcome:
        from integrations.scripts import ScriptSandbox

        return await ScriptSandbox().run(effects, execution, call)


INTEGRATIONS = Integrations(http=_Http(), sql=_Sql(), mail=_Mail(), scripts=_Scripts())


def install() -> Integrations:
    """Install `INTEGRATIONS` in this process (idempotent); returns them."""
    engine.effects.install(INTEGRATIONS)
    return INTEGRATIONS

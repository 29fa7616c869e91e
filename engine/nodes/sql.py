"""`sql`: run SQL on a configured PostgreSQL data source; the rows are the job
result.

Config fields are NocoBase's (`plugin-workflow-sql`). Data sources are named
in the environment (`RAYHOOK_SQL_<NAME>=postgresql://...`, `main` the default);
the `SqlQueries` integration (`integrations/sql.py`) runs the queries on their
connection pools.

Values reach the database only as bound parameters: each `:name` in the SQL
becomes a parameter whose value is the templated `variables` entry `name`. The
SQL text itself is never templated, so `unsafeInjection` is refused. `:name` is
recognised outside string literals, quoted identifiers, dollar-quoted bodies
and comments, and `::type` casts are left alone.

Result: the rows as a list of objects; with `withMeta`, `[rows, meta]` where
meta is `{command, rowCount, fields: [{name, dataTypeID}]}`. Values are JSON:
numeric as text (as node-postgres gives it), timestamps as ISO 8601 text, bytea
as `\\x` hex. An empty SQL resolves with null; a database error is ERROR with
`{message, code}` (code: the SQLSTATE).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from engine.definition import NameValue
from engine.effects import EffectFailed
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    NodeError,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import Status

DEFAULT_SOURCE = "main"
SOURCE_NAME = re.compile(r"^[A-Za-z0-9_]+$")
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TEMPLATE = re.compile(r"\{\{\s*\$")
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Config(NodeConfig):
    dataSource: str = DEFAULT_SOURCE
    sql: str = ""
    variables: list[NameValue] = []
    withMeta: bool = False
    unsafeInjection: bool = False


@dataclass(frozen=True, slots=True)
class BoundQuery:
    """SQL with its `:name` placeholders rewritten for psycopg (`%(name)s`, and
    every literal `%` doubled); `names` in order of first use; `statements`,
    how many statements it holds (`;` outside literals and comments)."""

    text: str
    names: tuple[str, ...]
    statements: int = 1


class SqlSyntaxError(ValueError):
    """The SQL text cannot be scanned (an unterminated literal or comment)."""


def bind_named(sql: str) -> BoundQuery:
    """Rewrite `:name` placeholders into psycopg parameters; `SqlSyntaxError`
    for an unterminated literal, quoted identifier or comment."""
    out: list[str] = []
    names: list[str] = []
    statements, content = 0, False  # content: the current statement has some
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        content = content or not (c.isspace() or c == ";" or sql.startswith(("--", "/*"), i))
        if c == "'":
            escapes = i > 0 and sql[i - 1] in "eE" and (i < 2 or not _word_char(sql[i - 2]))
            end = _quoted_end(sql, i, "'", backslash=escapes)
        elif c == '"':
            end = _quoted_end(sql, i, '"', backslash=False)
        elif c == "-" and sql.startswith("--", i):
            newline = sql.find("\n", i)
            end = n if newline < 0 else newline
        elif c == "/" and sql.startswith("/*", i):
            end = _block_comment_end(sql, i)
        elif c == "$" and (i == 0 or not _word_char(sql[i - 1])) and _DOLLAR_TAG.match(sql, i):
            tag = _DOLLAR_TAG.match(sql, i)
            assert tag is not None
            close = sql.find(tag.group(0), tag.end())
            if close < 0:
                raise SqlSyntaxError(f"unterminated dollar-quoted string {tag.group(0)}")
            end = close + len(tag.group(0))
        elif c == ":" and sql.startswith("::", i):
            end = i + 2  # a cast: `::type` stays as it is
        elif c == ":" and (name := _NAME.match(sql, i + 1)) is not None:
            out.append(f"%({name.group(0)})s")
            if name.group(0) not in names:
                names.append(name.group(0))
            i = name.end()
            continue
        else:
            if c == ";":
                statements, content = statements + int(content), False
            end = i + 1
        out.append(sql[i:end])
        i = end
    statements += int(content)
    if not names:
        return BoundQuery(sql, (), statements)
    # With parameters psycopg reads `%` everywhere as its own marker.
    text = "".join(part if part.startswith("%(") else part.replace("%", "%%") for part in out)
    return BoundQuery(text, tuple(names), statements)


def _word_char(c: str) -> bool:
    return c.isalnum() or c in "_$"


def _quoted_end(sql: str, start: int, quote: str, *, backslash: bool) -> int:
    i = start + 1
    while i < len(sql):
        c = sql[i]
        if backslash and c == "\\":
            i += 2
            continue
        if c == quote:
            if sql.startswith(quote, i + 1):  # a doubled quote stands for itself
                i += 2
                continue
            return i + 1
        i += 1
    kind = "string literal" if quote == "'" else "quoted identifier"
    raise SqlSyntaxError(f"unterminated {kind} at character {start + 1}")


def _block_comment_end(sql: str, start: int) -> int:
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlSyntaxError(f"unterminated /* comment at character {start + 1}")


class Sql(Instruction):
    node_type = "sql"
    config_type = Config
    retries_on_fail = True
    # Never templated: values go in as parameters through `variables`.
    raw_fields = frozenset({"sql"})

    def prepare(self, config: Config, facts: WorkflowFacts, branches: frozenset[str]) -> BoundQuery:
        if config.unsafeInjection:
            raise NodeError(
                "unsafeInjection",
                "templating the SQL text is not supported: values are always bound as "
                "parameters; use :name in the SQL and a {name, value} entry in variables",
            )
        if not SOURCE_NAME.match(config.dataSource):
            raise NodeError(
                "dataSource",
                f"{config.dataSource!r} is not a data source name (letters, digits and _, "
                "configured as RAYHOOK_SQL_<NAME>)",
            )
        if _TEMPLATE.search(config.sql):
            raise NodeError(
                "sql",
                "templates are not rendered in SQL (values are never interpolated); write "
                ":name and add {name, value} to variables",
            )
        given: set[str] = set()
        for i, variable in enumerate(config.variables):
            if not VARIABLE_NAME.match(variable.name):
                raise NodeError(
                    f"variables[{i}].name",
                    f"{variable.name!r} is not a variable name (letters, digits and _)",
                )
            given.add(variable.name)
        try:
            bound = bind_named(config.sql)
        except SqlSyntaxError as exc:
            raise NodeError("sql", str(exc)) from exc
        if bound.names and bound.statements > 1:
            raise NodeError(
                "sql",
                "several statements cannot use variables: PostgreSQL binds parameters to "
                "one statement only; split them into several sql nodes, or drop the :names",
            )
        missing = [name for name in bound.names if name not in given]
        if missing:
            raise NodeError(
                "sql",
                f"{', '.join(':' + m for m in missing)} has no entry in variables "
                "(an array slice a[1:n] counts as :n too; write a[1 : n])",
            )
        return bound

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        bound: BoundQuery = node.prepared
        if not node.config.sql.strip():
            job.status, job.result = Status.RESOLVED, None
            return
        config = run.render(node)
        name = str(config.get("dataSource") or DEFAULT_SOURCE).lower()
        sources = run.effects.settings.sql_sources
        if name not in sources:
            known = ", ".join(sorted(sources)) or "none"
            job.status = Status.ERROR
            job.result = {
                "message": f'no data source "{name}": set RAYHOOK_SQL_{name.upper()}='
                f"postgresql://... (configured: {known})"
            }
            return
        values = {str(v.get("name")): v.get("value") for v in config.get("variables") or []}
        params = {n: values.get(n) for n in bound.names} if bound.names else None
        try:
            rows, meta = await run.effects.integrations.sql.execute(
                run.effects, name, bound.text, params
            )
        except EffectFailed as failed:
            job.status, job.result = Status.ERROR, failed.result
            return
        job.status = Status.RESOLVED
        job.result = [rows, meta] if config.get("withMeta") else rows

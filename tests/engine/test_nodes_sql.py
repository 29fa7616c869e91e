"""The `sql` node (SPEC §5, reference §5.15) against the machine's PostgreSQL
(RAYHOOK_TEST_PG_URL, default postgresql://postgres@127.0.0.1:5432/test): named
`:variables` bound as parameters, never interpolated; one table per test."""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from engine.effects import Effects
from engine.nodes.sql import BoundQuery, SqlSyntaxError, bind_named
from engine.settings import Settings
from engine.status import Status
from integrations import sql as sql_integration
from tests.engine.node_runs import compile_nodes, definition_error, run_node

PG_URL = os.environ.get("RAYHOOK_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
SETTINGS = Settings(sql_sources={"main": PG_URL, "reports": PG_URL})


@pytest.fixture
def table() -> Iterator[str]:
    """A fresh table `rh_<hex>` (id, name, amount numeric, doc jsonb), with two rows."""
    name = f"rh_{secrets.token_hex(6)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(
            f"create table {name} (id int primary key, name text, amount numeric(10,2), doc jsonb)"
        )
        conn.execute(f"insert into {name} values (1, 'ann', 10.50, null), (2, 'bob', 3, null)")
    yield name
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"drop table if exists {name}")


def count(table: str) -> int:
    with psycopg.connect(PG_URL) as conn:
        row = conn.execute(f"select count(*) from {table}").fetchone()
        assert row is not None
        return int(row[0])


async def sql(text: str, variables: dict[str, Any] | None = None, **config: Any) -> Any:
    settings = config.pop("settings", SETTINGS)
    context = config.pop("context", None)
    items = [{"name": k, "value": v} for k, v in (variables or {}).items()]
    return await run_node(
        "sql", {"sql": text, "variables": items, **config}, settings=settings, context=context
    )


# -- :name placeholders --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "query", "names"),
    [
        ("select :a, :b, :a", "select %(a)s, %(b)s, %(a)s", ("a", "b")),
        ("select :x::int, x::text", "select %(x)s::int, x::text", ("x",)),
        ("select ':no', :yes", "select ':no', %(yes)s", ("yes",)),
        ("select 'it''s :no', :y", "select 'it''s :no', %(y)s", ("y",)),
        ("select E'\\' :no', :y", "select E'\\' :no', %(y)s", ("y",)),
        ('select ":no" from t where a = :y', 'select ":no" from t where a = %(y)s', ("y",)),
        ("select $$ :no $$, $f$ :no $f$, :y", "select $$ :no $$, $f$ :no $f$, %(y)s", ("y",)),
        ("select :y -- :no\n", "select %(y)s -- :no\n", ("y",)),
        ("select /* :no /* :no */ */ :y", "select /* :no /* :no */ */ %(y)s", ("y",)),
        ("select '100%' like :p", "select '100%%' like %(p)s", ("p",)),
        ("select a[1:2] from t where b = :b", "select a[1:2] from t where b = %(b)s", ("b",)),
        ("select '100%', 1::int", "select '100%', 1::int", ()),  # no parameters: as is
        ("select $1, a$b, :c", "select $1, a$b, %(c)s", ("c",)),
    ],
)
def test_named_placeholders_become_parameters(
    text: str, query: str, names: tuple[str, ...]
) -> None:
    assert bind_named(text) == BoundQuery(query, names)


@pytest.mark.parametrize("text", ["select 'open", 'select "open', "select $a$ x", "/* open"])
def test_unterminated_literals_and_comments_are_errors(text: str) -> None:
    with pytest.raises(SqlSyntaxError):
        bind_named(text)


# -- running -------------------------------------------------------------------------


async def test_rows_are_a_list_of_objects_and_text_values_are_cast_by_the_server(
    table: str,
) -> None:
    run = await sql(
        f"select id, name, amount from {table} where id = :id",
        {"id": "{{$context.body.id}}"},
        context={"body": {"id": "1"}},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert run.job.result == [{"id": 1, "name": "ann", "amount": "10.50"}]


async def test_with_meta_gives_rows_and_meta(table: str) -> None:
    run = await sql(f"select id, name from {table} order by id", withMeta=True)
    rows, meta = run.job.result
    assert rows == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
    assert meta == {
        "command": "SELECT",
        "rowCount": 2,
        "fields": [{"name": "id", "dataTypeID": 23}, {"name": "name", "dataTypeID": 25}],
    }


async def test_writes_commit_and_report_their_row_count(table: str) -> None:
    run = await sql(
        f"update {table} set name = :name where id > :min",
        {"name": "z", "min": 0},
        withMeta=True,
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert run.job.result == [[], {"command": "UPDATE", "rowCount": 2, "fields": []}]
    plain = await sql(f"insert into {table} (id, name) values (:id, :name)", {"id": 3, "name": "c"})
    assert plain.job.result == []
    assert count(table) == 3


async def test_values_are_never_interpolated(table: str) -> None:
    evil = f"x'); drop table {table}; --"
    run = await sql(
        f"insert into {table} (id, name) values (9, :name) returning name", {"name": evil}
    )
    assert run.job.result == [{"name": evil}]
    assert count(table) == 3


async def test_percent_signs_work_beside_parameters(table: str) -> None:
    run = await sql(
        f"select name from {table} where name like '%' || :part || '%' and '%' = '%'",
        {"part": "nn"},
    )
    assert run.job.result == [{"name": "ann"}]


async def test_objects_bind_as_jsonb_and_lists_as_arrays(table: str) -> None:
    run = await sql(
        f"update {table} set doc = :doc where id = any(:ids) returning id, doc",
        {"doc": {"tags": ["a"], "n": 1}, "ids": [1, 2]},
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert sorted(run.job.result, key=lambda r: r["id"]) == [
        {"id": 1, "doc": {"tags": ["a"], "n": 1}},
        {"id": 2, "doc": {"tags": ["a"], "n": 1}},
    ]


async def test_database_values_become_json() -> None:
    run = await sql(
        "select 1.50::numeric as n, 2::bigint as b, true as t, null as z,"
        " '2024-05-06T07:08:09.123Z'::timestamptz as at, '2024-05-06'::date as d,"
        " '2024-05-06 07:08:09'::timestamp as local, '12:30'::time as tm,"
        " '1 day 02:00'::interval as i, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid as u,"
        " '\\x0102'::bytea as bin, array[1,2] as arr, '{\"k\": [1]}'::jsonb as j,"
        " '10.0.0.1'::inet as ip"
    )
    assert run.job.status == Status.RESOLVED, run.job.result
    assert run.job.result == [
        {
            "n": "1.50",
            "b": 2,
            "t": True,
            "z": None,
            "at": "2024-05-06T07:08:09.123Z",
            "d": "2024-05-06",
            "local": "2024-05-06T07:08:09",
            "tm": "12:30:00",
            "i": "1 day, 2:00:00",
            "u": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "bin": "\\x0102",
            "arr": [1, 2],
            "j": {"k": [1]},
            "ip": "10.0.0.1",
        }
    ]


async def test_several_statements_without_variables_give_the_last_result(table: str) -> None:
    run = await sql(f"insert into {table} (id) values (5); select count(*)::int as n from {table}")
    assert run.job.result == [{"n": 3}]


async def test_an_empty_sql_resolves_with_null() -> None:
    run = await sql("  ", settings=Settings())
    assert run.job.status == Status.RESOLVED
    assert run.job.result is None


async def test_the_data_source_is_chosen_by_name(table: str) -> None:
    run = await sql(f"select count(*)::int as n from {table}", dataSource="REPORTS")
    assert run.job.result == [{"n": 2}]


async def test_an_unknown_data_source_is_an_error_naming_the_setting() -> None:
    run = await sql("select 1", dataSource="crm")
    assert run.job.status == Status.ERROR
    assert "RAYHOOK_SQL_CRM" in run.job.result["message"]
    assert "main, reports" in run.job.result["message"]
    assert PG_URL not in run.job.result["message"]


async def test_a_database_error_is_an_error_with_its_sqlstate_and_rolls_back(table: str) -> None:
    run = await sql(f"insert into {table} (id) values (7); select * from no_such_table_here")
    assert run.status == Status.ERROR
    assert run.job.status == Status.ERROR
    assert run.job.result["code"] == "42P01"
    assert "no_such_table_here" in run.job.result["message"]
    assert count(table) == 2  # the insert went with the failed transaction


async def test_an_unreachable_database_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sql_integration, "POOL_TIMEOUT_S", 0.5)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(sql_sources={"main": f"postgresql://postgres@127.0.0.1:{port}/test"})
    run = await sql("select 1", settings=settings)
    assert run.job.status == Status.ERROR
    assert 'no connection to data source "main"' in run.job.result["message"]


async def test_one_pool_per_data_source_closed_by_aclose(table: str) -> None:
    effects = Effects(SETTINGS)
    for _ in range(3):
        run = await run_node(
            "sql", {"sql": f"select 1 as one from {table} limit 1"}, effects=effects
        )
        assert run.job.result == [{"one": 1}]
    pool = effects._clients["sql:main"].result()
    assert set(effects._clients) == {"sql:main"}
    await effects.aclose()
    assert pool.closed


# -- definition-time checks --------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "field", "words"),
    [
        ({"sql": "select 1", "unsafeInjection": True}, "config.unsafeInjection", "not supported"),
        ({"sql": "select {{$context.id}}"}, "config.sql", "never interpolated"),
        ({"sql": "select :id"}, "config.sql", ":id has no entry in variables"),
        ({"sql": "select 'open"}, "config.sql", "unterminated"),
        ({"sql": "select 1", "variables": [{"name": "a b"}]}, "variables[0].name", "variable name"),
        ({"sql": "select 1", "dataSource": "x;y"}, "config.dataSource", "data source name"),
        ({"sql": "select 1", "dataSource": "{{$env.DS}}"}, "config.dataSource", "name"),
        ({"sql": "select 1", "replacements": {}}, "replacements", "unknown field"),
    ],
)
def test_bad_configs_are_refused_at_definition_time(
    config: dict[str, Any], field: str, words: str
) -> None:
    message = definition_error("sql", config)
    assert field in message and words in message, message


@pytest.mark.parametrize(
    "text",
    [
        "insert into t (id) values (:id); select count(*) from t",
        "select :id;\nselect 2",
        "select :id; /* and */ select 2 -- more",
        "select :id;;select 2",
    ],
)
def test_several_statements_with_variables_are_refused_when_defined(text: str) -> None:
    # PostgreSQL takes bound parameters for one statement only: without this
    # check the workflow is accepted and every run fails.
    message = definition_error("sql", {"sql": text, "variables": [{"name": "id", "value": 1}]})
    assert message.startswith('node "n" (sql): config.sql: ')
    assert "several statements" in message and "variables" in message


@pytest.mark.parametrize(
    "text",
    [
        "select :id;",
        "select :id ;  -- the end\n",
        "select ';', :id",
        'select 1 as ";", :id',
        "select $$a; b$$, :id",
        "select :id /* ; */",
        "select :id -- ; select 2",
    ],
)
def test_one_statement_with_variables_and_a_quoted_semicolon_is_fine(text: str) -> None:
    compile_nodes(
        [{"key": "q", "type": "sql", "config": {"sql": text, "variables": [{"name": "id"}]}}]
    )


@pytest.mark.parametrize(
    ("text", "count"),
    [("", 0), ("select 1", 1), ("select 1;", 1), ("select 1; select 2", 2), (";;", 0)],
)
def test_statements_are_counted_outside_literals_and_comments(text: str, count: int) -> None:
    assert bind_named(text).statements == count


async def test_one_statement_with_variables_and_a_trailing_semicolon_runs(table: str) -> None:
    run = await sql(f"select name from {table} where id = :id;", {"id": 2})
    assert run.job.status == Status.RESOLVED and run.job.result == [{"name": "bob"}]


def test_templated_variables_compile() -> None:
    compile_nodes(
        [
            {
                "key": "q",
                "type": "sql",
                "config": {
                    "dataSource": "main",
                    "sql": "select * from t where id = :id and tag = :tag::text",
                    "variables": [
                        {"name": "id", "value": "{{$context.body.id}}"},
                        {"name": "tag", "value": "x"},
                    ],
                    "withMeta": True,
                },
            }
        ]
    )


def test_settings_read_data_sources_by_lower_cased_name() -> None:
    settings = Settings.from_env(
        {
            "RAYHOOK_SQL_MAIN": "postgresql://a/main",
            "RAYHOOK_SQL_Reports": "postgresql://b/reports",
            "RAYHOOK_SQL_EMPTY": "",
            "RAYHOOK_SQL_": "postgresql://nameless",
        }
    )
    assert settings.sql_sources == {
        "main": "postgresql://a/main",
        "reports": "postgresql://b/reports",
    }

"""The pure engine nodes end to end: one workflow per node type, created through
the admin API and run by a real webhook on the shared server (docs/nodes.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.e2e.conftest import Server


def sync_workflow(*nodes: dict[str, Any]) -> dict[str, Any]:
    return {"type": "webhook", "sync": True, "enabled": True, "nodes": list(nodes)}


def reply(body: Any) -> dict[str, Any]:
    return {"key": "reply", "type": "response", "config": {"statusCode": 200, "body": body}}


def jobs_by_key(execution: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    jobs: dict[str, list[dict[str, Any]]] = {}
    for job in execution["jobs"]:
        jobs.setdefault(job["nodeKey"], []).append(job)
    return jobs


def test_calculation_with_formula_js(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "total",
                "type": "calculation",
                "config": {
                    "engine": "formula.js",
                    "expression": (
                        'IF(SUM({{$context.body.items.price}}) > 10, "big", "small") + ":" + '
                        "ROUND(AVERAGE({{$context.body.items.price}}), 2)"
                    ),
                },
            },
            reply({"total": "{{$jobsMapByNodeKey.total}}"}),
        )
    )
    answer = server.hook(version["key"], {"items": [{"price": 4}, {"price": 7.5}]})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"total": "big:5.75"}


def test_formula_js_with_an_unsupported_function_is_rejected(server: Server) -> None:
    definition = sync_workflow(
        {
            "key": "bad",
            "type": "calculation",
            "config": {"engine": "formula.js", "expression": "VLOOKUP(1)"},
        }
    )
    answer = server.admin.post("/api/workflows:create", json=definition)
    assert answer.status_code == 400
    message = answer.json()["errors"][0]["message"]
    assert message.startswith('node "bad" (calculation): config.expression: unknown function')
    assert "VLOOKUP" in message


def test_loop(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "lines",
                "type": "loop",
                "config": {
                    "target": "{{$context.body.items}}",
                    "condition": {
                        "checkpoint": 0,
                        "continueOnFalse": True,
                        "engine": "formula.js",
                        "expression": "{{$scopes.lines.item.qty}} > 0",
                    },
                },
                "branches": {
                    "0": [
                        {
                            "key": "line",
                            "type": "calculation",
                            "config": {
                                "engine": "string",
                                "expression": "{{$scopes.lines.sequence}}/{{$scopes.lines.length}}:"
                                "{{$scopes.lines.item.sku}}",
                            },
                        }
                    ]
                },
            },
            reply({"loop": "{{$jobsMapByNodeKey.lines}}", "last": "{{$jobsMapByNodeKey.line}}"}),
        )
    )
    items = [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 0}, {"sku": "C", "qty": 2}]
    answer = server.hook(version["key"], {"items": items})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"loop": {"looped": 3, "done": 2}, "last": "3/3:C"}
    execution = server.wait_final(answer.headers["x-rayhook-execution"])
    assert [job["result"] for job in jobs_by_key(execution)["line"]] == ["1/3:A", "3/3:C"]


def test_loop_limit_comes_from_the_server_settings(make_server: Any) -> None:
    server = make_server(RAYHOOK_LOOP_LIMIT="2")
    version = server.create(
        {
            "sync": False,
            "enabled": True,
            "nodes": [
                {
                    "key": "spin",
                    "type": "loop",
                    "config": {"target": 5},
                    "branches": {"0": [{"key": "n", "type": "variable", "config": {"value": 1}}]},
                }
            ],
        }
    )
    answer = server.hook(version["key"], {})
    assert answer.status_code == 200
    execution = server.wait_final(answer.headers["x-rayhook-execution"])
    assert execution["status"] == -2
    spin = jobs_by_key(execution)["spin"][-1]
    assert spin["status"] == -2
    assert spin["result"] == {"looped": 2, "done": 2, "exceeded": True}


def test_parallel(server: Server) -> None:
    def branch(key: str, fail: bool) -> list[dict[str, Any]]:
        expression = "false" if fail else "true"
        return [
            {
                "key": key,
                "type": "condition",
                "config": {"engine": "formula.js", "rejectOnFalse": True, "expression": expression},
            }
        ]

    version = server.create(
        sync_workflow(
            {
                "key": "fan",
                "type": "parallel",
                "config": {"mode": "any"},
                "branches": {
                    "1": branch("first", True),
                    "2": branch("second", False),
                    "3": branch("third", False),
                },
            },
            reply({"statuses": "{{$jobsMapByNodeKey.fan}}"}),
        )
    )
    answer = server.hook(version["key"], {})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"statuses": [-1, 1, None]}
    execution = server.wait_final(answer.headers["x-rayhook-execution"])
    assert "third" not in jobs_by_key(execution)


def test_date_calculation(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "due",
                "type": "dateCalculation",
                "config": {
                    "input": "{{$context.body.created}}",
                    "inputType": "date",
                    "steps": [
                        {
                            "function": "add",
                            "arguments": {"number": "{{$context.body.days}}", "unit": "day"},
                        },
                        {"function": "changeTimezone", "arguments": {"timezone": "Asia/Shanghai"}},
                        {"function": "format", "arguments": {"format": "YYYY-MM-DD HH:mm Z"}},
                    ],
                },
            },
            {
                "key": "instant",
                "type": "dateCalculation",
                "config": {
                    "input": "{{$context.body.created}}",
                    "steps": [{"function": "endOfTime", "arguments": {"unit": "month"}}],
                },
            },
            reply({"due": "{{$jobsMapByNodeKey.due}}", "end": "{{$jobsMapByNodeKey.instant}}"}),
        )
    )
    answer = server.hook(version["key"], {"created": "2024-01-30T20:00:00Z", "days": 2})
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert data["due"] == "2024-02-02 04:00 +08:00"
    end = datetime.fromisoformat(data["end"].replace("Z", "+00:00"))
    assert end == datetime(2024, 1, 31, 23, 59, 59, 999000, tzinfo=UTC)


def test_json_query(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "paid",
                "type": "json-query",
                "config": {
                    "engine": "jmespath",
                    "source": "{{$context.body}}",
                    "expression": "orders[?status=='paid']",
                    "model": [{"path": "id", "alias": "orderId"}, {"path": "customer.name"}],
                },
            },
            {
                "key": "titles",
                "type": "json-query",
                "config": {
                    "engine": "jsonata",
                    "source": "{{$context.body}}",
                    "expression": "$join(orders.customer.name, ', ')",
                },
            },
            {
                "key": "first",
                "type": "json-query",
                "config": {
                    "engine": "jsonpathplus",
                    "source": "{{$context.body}}",
                    "expression": "$.orders[0].id",
                },
            },
            reply(
                {
                    "paid": "{{$jobsMapByNodeKey.paid}}",
                    "names": "{{$jobsMapByNodeKey.titles}}",
                    "first": "{{$jobsMapByNodeKey.first}}",
                }
            ),
        )
    )
    body = {
        "orders": [
            {"id": 1, "status": "paid", "customer": {"name": "Ann"}},
            {"id": 2, "status": "open", "customer": {"name": "Bob"}},
        ]
    }
    answer = server.hook(version["key"], body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "paid": [{"orderId": 1, "customer_name": "Ann"}],
        "names": "Ann, Bob",
        "first": 1,
    }


def test_json_variable_mapping(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "vars",
                "type": "json-variable-mapping",
                "config": {
                    "dataSource": "{{$context.body}}",
                    "variables": [
                        {"key": "amount", "path": "order.amount", "paths": ["order", "amount"]},
                        {
                            "key": "skus",
                            "path": "order.items._.sku",
                            "paths": ["order", "items", "___arr$___", "sku"],
                        },
                    ],
                },
            },
            reply(
                {
                    "amount": "{{$jobsMapByNodeKey.vars.amount}}",
                    "skus": "{{$jobsMapByNodeKey.vars.skus}}",
                }
            ),
        )
    )
    body = {"order": {"amount": 42, "items": [{"sku": "A"}, {"sku": "B"}]}}
    answer = server.hook(version["key"], body)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"amount": 42, "skus": ["A", "B"]}


def test_json_variable_mapping_on_text_fails_the_sync_call(server: Server) -> None:
    version = server.create(
        sync_workflow(
            {
                "key": "vars",
                "type": "json-variable-mapping",
                "config": {"dataSource": "{{$context.body.text}}", "variables": []},
            },
            reply({}),
        )
    )
    answer = server.hook(version["key"], {"text": "plain"})
    assert answer.status_code == 500
    execution = server.wait_final(answer.headers["x-rayhook-execution"])
    assert execution["status"] == -1

"""Nodes that make an execution wait (SPEC §5): delay (durable timers), manual
(people submit through jobs:resume, modes single/all/any) and subflow (a sync
child inline, an async child resumes its caller), plus flow_nodes:test."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.conftest import Server


def wait_status(
    server: Server, execution_id: str, status: int, timeout: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        execution = server.execution(execution_id)
        if execution is not None and execution["status"] == status:
            return execution
        assert time.monotonic() < deadline, f"{execution_id}: {execution}"
        time.sleep(0.05)


def pending_job(execution: dict[str, Any], key: str) -> dict[str, Any]:
    job = next(j for j in execution["jobs"] if j["nodeKey"] == key)
    assert job["status"] == 0, job
    return job


def delay_flow(duration: float, end_status: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "sync": False,
        "enabled": True,
        "nodes": [
            {"key": "before", "type": "variable", "config": {"value": "{{$context.body.n}}"}},
            {
                "key": "wait",
                "type": "delay",
                "config": {"duration": duration, "unit": 1000, "endStatus": end_status},
            },
            {
                "key": "out",
                "type": "output",
                "config": {
                    "value": {
                        "n": "{{$jobsMapByNodeKey.before}}",
                        "waited": "{{$jobsMapByNodeKey.wait}}",
                    }
                },
            },
        ],
        **extra,
    }


def test_delay_waits_then_resumes_once(server: Server) -> None:
    version = server.create(delay_flow(1))
    started = time.monotonic()
    execution_id = server.hook(version["key"], {"n": 7}).headers["x-rayhook-execution"]
    waiting = wait_status(server, execution_id, 0)
    assert pending_job(waiting, "wait")["result"] == 1000
    done = server.wait_final(execution_id, timeout=30)
    assert time.monotonic() - started >= 1.0
    assert done["status"] == 1
    assert done["output"] == {"n": 7, "waited": 1000}
    assert [(j["nodeKey"], j["status"]) for j in done["jobs"]] == [
        ("before", 1),
        ("wait", 1),
        ("out", 1),
    ]


def test_delay_with_end_status_failed_fails_the_execution(server: Server) -> None:
    version = server.create(delay_flow(0, end_status=-1))
    execution_id = server.hook(version["key"], {"n": 1}).headers["x-rayhook-execution"]
    done = server.wait_final(execution_id)
    assert done["status"] == -1
    assert [j["nodeKey"] for j in done["jobs"]] == ["before", "wait"]


def test_delays_inside_a_loop_resume_each_iteration(server: Server) -> None:
    version = server.create(
        {
            "sync": False,
            "enabled": True,
            "nodes": [
                {
                    "key": "each",
                    "type": "loop",
                    "config": {"target": "{{$context.body.items}}"},
                    "branches": {
                        "0": [
                            {
                                "key": "pause",
                                "type": "delay",
                                "config": {"duration": 0, "unit": 1000},
                            },
                            {
                                "key": "seen",
                                "type": "variable",
                                "config": {"value": "{{$scopes.each.item}}"},
                            },
                        ]
                    },
                },
                {"key": "out", "type": "output", "config": {"value": "{{$jobsMapByNodeKey.seen}}"}},
            ],
        }
    )
    execution_id = server.hook(version["key"], {"items": ["a", "b", "c"]}).headers[
        "x-rayhook-execution"
    ]
    done = server.wait_final(execution_id, timeout=30)
    assert done["status"] == 1
    assert done["output"] == "c"
    assert [j["result"] for j in done["jobs"] if j["nodeKey"] == "seen"] == ["a", "b", "c"]
    assert next(j for j in done["jobs"] if j["nodeKey"] == "each")["result"]["done"] == 3


def test_a_parallel_branch_that_waits_lets_the_next_run_and_resumes(server: Server) -> None:
    version = server.create(
        {
            "sync": False,
            "enabled": True,
            "nodes": [
                {
                    "key": "both",
                    "type": "parallel",
                    "config": {"mode": "all"},
                    "branches": {
                        "1": [
                            {"key": "pause", "type": "delay", "config": {"duration": 1}},
                            {"key": "late", "type": "variable", "config": {"value": "late"}},
                        ],
                        "2": [{"key": "early", "type": "variable", "config": {"value": "early"}}],
                    },
                },
                {
                    "key": "out",
                    "type": "output",
                    "config": {
                        "value": ["{{$jobsMapByNodeKey.late}}", "{{$jobsMapByNodeKey.early}}"]
                    },
                },
            ],
        }
    )
    execution_id = server.hook(version["key"], {}).headers["x-rayhook-execution"]
    deadline = time.monotonic() + 30
    while True:  # waiting: the second branch ran while the first one waits
        waiting = wait_status(server, execution_id, 0)
        if [j["nodeKey"] for j in waiting["jobs"]] == ["both", "pause", "early"]:
            break
        assert time.monotonic() < deadline, waiting
        time.sleep(0.05)
    assert pending_job(waiting, "both")["result"] == [0, 1]
    done = server.wait_final(execution_id, timeout=30)
    assert done["status"] == 1, done
    assert done["output"] == ["late", "early"]
    jobs = {j["nodeKey"]: j for j in done["jobs"]}
    assert jobs["both"]["status"] == 1 and jobs["both"]["result"] == [1, 1]
    assert len(done["jobs"]) == 5  # each node once: the branch run first is not run again


def manual_flow(mode: int) -> dict[str, Any]:
    return {
        "sync": False,
        "enabled": True,
        "nodes": [
            {
                "key": "approve",
                "type": "manual",
                "config": {
                    "assignees": ["ann", "{{$context.body.reviewer}}"],
                    "mode": mode,
                    "title": "Refund {{$context.body.amount}}?",
                },
            },
            {"key": "out", "type": "output", "config": {"value": "{{$jobsMapByNodeKey.approve}}"}},
        ],
    }


def submit(server: Server, job_id: str, **body: Any):  # type: ignore[no-untyped-def]
    return server.admin.post("/api/jobs:resume", params={"filterByTk": job_id}, json=body)


def test_manual_single_mode_first_submission_decides(server: Server) -> None:
    version = server.create(manual_flow(0))
    execution_id = server.hook(version["key"], {"reviewer": "bob", "amount": 40}).headers[
        "x-rayhook-execution"
    ]
    job = pending_job(wait_status(server, execution_id, 0), "approve")
    assert job["meta"]["assignees"] == ["ann", "bob"] and job["meta"]["title"] == "Refund 40?"
    assert submit(server, job["id"], assignee="carol").status_code == 403
    reply = submit(server, job["id"], assignee="bob", status=1, result={"ok": True})
    assert reply.status_code == 202
    done = server.wait_final(execution_id)
    assert done["status"] == 1 and done["output"] == {"ok": True}
    assert submit(server, job["id"], assignee="ann").status_code == 400  # decided already


def test_manual_all_mode_one_rejection_rejects(server: Server) -> None:
    version = server.create(manual_flow(1))
    execution_id = server.hook(version["key"], {"reviewer": "bob"}).headers["x-rayhook-execution"]
    job = pending_job(wait_status(server, execution_id, 0), "approve")
    assert submit(server, job["id"], assignee="ann", result="yes").status_code == 202
    assert submit(server, job["id"], assignee="ann").status_code == 409  # twice
    time.sleep(0.5)
    assert server.execution(execution_id)["status"] == 0  # type: ignore[index]  # bob pending
    assert submit(server, job["id"], values={"assignee": "bob", "status": -5}).status_code == 202
    done = server.wait_final(execution_id)
    assert done["status"] == -5


def test_manual_any_mode_one_resolution_resolves(server: Server) -> None:
    version = server.create(manual_flow(-1))
    execution_id = server.hook(version["key"], {"reviewer": "bob"}).headers["x-rayhook-execution"]
    job = pending_job(wait_status(server, execution_id, 0), "approve")
    assert submit(server, job["id"], assignee="ann", status=-5).status_code == 202
    time.sleep(0.3)
    assert server.execution(execution_id)["status"] == 0  # type: ignore[index]
    assert submit(server, job["id"], assignee="bob", result="fine").status_code == 202
    done = server.wait_final(execution_id)
    assert done["status"] == 1 and done["output"] == {"ann": None, "bob": "fine"}


def test_jobs_resume_errors(server: Server) -> None:
    assert submit(server, "nope-1", assignee="a").status_code == 404
    version = server.create(manual_flow(0))
    execution_id = server.hook(version["key"], {"reviewer": "bob"}).headers["x-rayhook-execution"]
    job = pending_job(wait_status(server, execution_id, 0), "approve")
    assert submit(server, job["id"], assignee="ann", status=7).status_code == 400
    assert submit(server, job["id"]).status_code == 400  # no assignee
    other = server.create(delay_flow(30))
    waiting = server.hook(other["key"], {"n": 1}).headers["x-rayhook-execution"]
    delay_job = pending_job(wait_status(server, waiting, 0), "wait")
    assert submit(server, delay_job["id"], assignee="x").status_code == 400  # not manual


def child_flow(sync: bool) -> dict[str, Any]:
    return {
        "sync": sync,
        "enabled": True,
        "nodes": [
            {
                "key": "double",
                "type": "calculation",
                "config": {"engine": "math.js", "expression": "{{$context.n}} * 2"},
            },
            {
                "key": "out",
                "type": "output",
                "config": {"value": {"doubled": "{{$jobsMapByNodeKey.double}}"}},
            },
        ],
    }


def test_sync_workflow_calls_a_sync_workflow_inline(server: Server) -> None:
    child = server.create(child_flow(sync=True))
    parent = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {
                    "key": "call",
                    "type": "subflow",
                    "config": {"workflow": child["key"], "context": {"n": "{{$context.body.n}}"}},
                },
                {
                    "key": "reply",
                    "type": "response",
                    "config": {"statusCode": 200, "body": "{{$jobsMapByNodeKey.call}}"},
                },
            ],
        }
    )
    reply = server.hook(parent["key"], {"n": 21})
    assert (reply.status_code, reply.json()) == (200, {"doubled": 42})
    parent_run = server.execution(reply.headers["x-rayhook-execution"])
    assert parent_run is not None
    child_id = parent_run["jobs"][0]["meta"]["childExecutionId"]
    child_run = server.execution(child_id)
    assert child_run is not None and child_run["parentExecutionId"] == parent_run["id"]
    assert child_run["stack"] == [parent["key"]] and child_run["workflowId"] == child["id"]


def test_async_workflow_waits_for_an_async_child(server: Server) -> None:
    child = server.create(child_flow(sync=False))
    parent = server.create(
        {
            "sync": False,
            "enabled": True,
            "nodes": [
                {
                    "key": "call",
                    "type": "subflow",
                    "config": {"workflow": child["key"], "context": {"n": 5}},
                },
                {
                    "key": "out",
                    "type": "output",
                    "config": {"value": "{{$jobsMapByNodeKey.call.doubled}}"},
                },
            ],
        }
    )
    execution_id = server.hook(parent["key"], {}).headers["x-rayhook-execution"]
    done = server.wait_final(execution_id, timeout=30)
    assert done["status"] == 1 and done["output"] == 10


def test_sync_workflow_cannot_call_an_async_one(server: Server) -> None:
    child = server.create(child_flow(sync=False))
    parent = server.create(
        {
            "sync": True,
            "enabled": True,
            "nodes": [
                {"key": "call", "type": "subflow", "config": {"workflow": child["key"]}},
            ],
        }
    )
    reply = server.hook(parent["key"], {})
    assert reply.status_code == 500
    execution = server.execution(reply.headers["x-rayhook-execution"])
    assert execution is not None
    assert "only call sync" in execution["jobs"][0]["result"]["message"]


def test_stack_limit_stops_a_workflow_calling_itself(server: Server) -> None:
    version = server.create(
        {
            "key": f"self{int(time.time() * 1000) % 10**8}",
            "sync": True,
            "enabled": True,
            "options": {"stackLimit": 2},
            "nodes": [],
        }
    )
    key = version["key"]
    nodes = [
        {"key": "again", "type": "subflow", "config": {"workflow": key}},
        {"key": "out", "type": "output", "config": {"value": "{{$jobsMapByNodeKey.again}}"}},
    ]
    updated = server.admin.post(
        "/api/workflows:update", params={"filterByTk": version["id"]}, json={"nodes": nodes}
    )
    assert updated.status_code == 200, updated.text
    reply = server.hook(key, {})
    execution = server.execution(reply.headers["x-rayhook-execution"])
    assert execution is not None
    # The first call runs (depth 2); its own call would be a third level.
    child = server.execution(execution["jobs"][0]["meta"]["childExecutionId"])
    assert child is not None and child["status"] == -2
    assert "stackLimit" in child["jobs"][0]["result"]["message"]
    assert execution["jobs"][0]["status"] == -2


def test_flow_nodes_test_runs_one_node(server: Server) -> None:
    reply = server.admin.post(
        "/api/flow_nodes:test",
        json={
            "type": "calculation",
            "config": {
                "engine": "math.js",
                "expression": "{{$context.body.a}} + {{$jobsMapByNodeKey.x}}",
            },
            "variables": {"$context": {"body": {"a": 2}}, "$jobsMapByNodeKey": {"x": 40}},
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["data"] == {"status": 1, "result": 42, "log": None}
    condition = server.admin.post(
        "/api/flow_nodes:test",
        json={
            "values": {
                "type": "condition",
                "config": {
                    "rejectOnFalse": False,
                    "calculation": {"calculator": "gt", "operands": ["{{$context.n}}", 10]},
                },
                "variables": {"$context": {"n": 3}},
            }
        },
    )
    assert condition.json()["data"]["result"] is False
    bad = server.admin.post(
        "/api/flow_nodes:test",
        json={"type": "calculation", "config": {"engine": "math.js", "expression": "nope(1)"}},
    )
    assert bad.status_code == 400 and "config.expression" in bad.json()["errors"][0]["message"]
    untestable = server.admin.post("/api/flow_nodes:test", json={"type": "end", "config": {}})
    assert untestable.status_code == 400

"""The search scenario's stored executions (benchmarks/search.py): payment
executions the way the executor stores them, each findable by its own
`data.object.id`."""

from __future__ import annotations

import msgspec

from benchmarks.search import payment_body, payment_executions, payment_run
from benchmarks.stack import BODY
from engine.records import Job
from engine.status import Status


def test_payment_body_numbers_every_seq_alike_and_draws_fresh_uuids() -> None:
    template = BODY.read_bytes()
    first = msgspec.json.decode(payment_body(template, 7))
    second = msgspec.json.decode(payment_body(template, 7))
    assert first["data"]["object"]["id"] == "pi_7"
    assert first["data"]["object"]["metadata"]["order_id"] == "7"
    assert first["request"]["id"] == "req_7"
    assert first["id"] != second["id"]  # evt_<uuid>
    assert first["id"].startswith("evt_") and "{{" not in first["id"]


async def test_payment_executions_are_final_runs_of_the_real_workflow_with_own_ids() -> None:
    status, jobs = await payment_run()
    assert status == Status.RESOLVED
    batches = list(payment_executions(7, status=status, jobs=jobs, batch=3))
    assert [len(b) for b in batches] == [3, 3, 1]
    records = [r for b in batches for r in b]
    assert len({r.id for r in records}) == 7
    assert [r.id for r in records] == sorted(r.id for r in records)  # created in order
    for n, record in enumerate(records, 1):
        context = msgspec.json.decode(bytes(record.context))
        assert context["body"]["data"]["object"]["id"] == f"pi_{n}"
        assert context["headers"]["content-length"] == str(
            len(msgspec.json.encode(context["body"]))
        )
        run = msgspec.json.decode(bytes(record.jobs), type=list[Job])
        assert [(j.nodeKey, j.status) for j in run] == [
            ("paid", Status.RESOLVED),
            ("fee", Status.RESOLVED),
        ]
        assert {j.executionId for j in run} == {record.id}
        assert all(j.id.startswith(record.id + "-") for j in run)

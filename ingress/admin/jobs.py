"""`/api/jobs:get`, `/api/jobs:resume` (a person's submission to a waiting
manual node) and `/api/flow_nodes:test` (run one node's config, as NocoBase's
node test does)."""

from __future__ import annotations

import time
from functools import partial
from typing import Any

import falcon
import falcon.asgi
import msgspec

from actors.router import Unavailable
from engine.nodes.manual import decide
from engine.records import Job, Resume, TriggerEvent, execution_id_of_job, now
from engine.status import PENDING, Status
from ingress.admin.body import json_body
from ingress.admin.envelope import reply
from ingress.admin.params import filter_by_tk
from ingress.admin.resource import AdminResource
from ingress.errors import HTTPErrors
from ingress.refusals import execution_service_unavailable, history_errors
from ingress.services import Services

#: Node types `flow_nodes:test` runs (NocoBase's list of nodes with a test()).
TESTABLE = frozenset(
    {"calculation", "condition", "request", "script", "sql", "json-query", "dateCalculation"}
)
_SUBMITTED = frozenset({Status.RESOLVED, Status.REJECTED, Status.FAILED})


class Submission(msgspec.Struct, forbid_unknown_fields=True):
    """What a person submits to a manual node."""

    assignee: str
    status: int = Status.RESOLVED
    result: Any = None


class NodeTest(msgspec.Struct, forbid_unknown_fields=True):
    type: str
    config: dict[str, Any] = {}
    variables: dict[str, Any] = {}  # $context, $jobsMapByNodeKey, $scopes, $env …


class JobGet(AdminResource):
    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        job_id = filter_by_tk(req)
        async with history_errors():
            job = await self.services.search.job(job_id)
        if job is None:
            raise falcon.HTTPNotFound(description=f"job {job_id!r} not found")
        reply(resp, job)


class JobResume(AdminResource):
    """A submission to a waiting manual job. When the node's mode is decided the
    execution resumes (an inbox event, durable), else the submission is kept."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        job_id = filter_by_tk(req)
        raw = await json_body(req, self.services.settings.max_body_bytes)
        if isinstance(raw, dict) and isinstance(raw.get("values"), dict):
            raw = {**raw["values"], **{k: v for k, v in raw.items() if k != "values"}}
        try:
            submission = msgspec.convert(raw, Submission)
        except msgspec.ValidationError as exc:
            raise falcon.HTTPBadRequest(description=f"submission: {exc}") from None
        if submission.status not in _SUBMITTED:
            raise falcon.HTTPBadRequest(description="status: 1 (resolve), -5 (reject) or -1 (fail)")
        async with history_errors():
            found = await self.services.search.get(execution_id_of_job(job_id))
        if found is None:
            raise falcon.HTTPNotFound(description=f"job {job_id!r} not found")
        execution = found[0]
        if execution.status != Status.STARTED:
            raise falcon.HTTPBadRequest(description="the execution is not waiting")
        for _attempt in range(5):  # None: another submission landed meanwhile; read again
            submitted = await self.services.executions.update_job(
                job_id, partial(_submitted, job_id, submission)
            )
            if submitted is not None:
                break
        else:
            raise falcon.HTTPConflict(description="too many simultaneous submissions; retry")
        meta: dict[str, Any] = submitted.meta if isinstance(submitted.meta, dict) else {}
        assignees = list(meta.get("assignees") or [])
        decided = decide(int(meta.get("mode", 0)), assignees, meta["submissions"])
        if decided is not None:
            await self._resume(
                execution.key, execution.workflowId, execution.id, submitted, decided
            )
        reply(resp, submitted, status=202)

    async def _resume(
        self, key: str, version_id: int, execution_id: str, job: Job, status: int
    ) -> None:
        meta = job.meta if isinstance(job.meta, dict) else {}
        submissions = meta.get("submissions", {})
        if int(meta.get("mode", 0)) == 0:
            result = next(iter(submissions.values()))["result"]
        else:
            result = {name: s["result"] for name, s in submissions.items()}
        event = TriggerEvent(
            id=execution_id,
            key=key,
            workflowId=version_id,
            context={},
            createdAt=time.time() * 1000,
            resume=Resume(jobId=job.id, status=status, result=result),
        )
        # A disabled workflow's inbox is read again until it has drained.
        await self.services.inbox.push(event)


class NodeTestResource(AdminResource):
    """Run one node's config with the given variables; its job (status, result,
    log). Runs in an execution actor, which has the integrations' clients."""

    async def on_post(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        raw = await json_body(req, self.services.settings.max_body_bytes)
        if isinstance(raw, dict) and isinstance(raw.get("values"), dict):
            raw = raw["values"]
        try:
            test = msgspec.convert(raw, NodeTest)
        except msgspec.ValidationError as exc:
            raise falcon.HTTPBadRequest(description=f"node test: {exc}") from None
        if test.type not in TESTABLE:
            raise falcon.HTTPBadRequest(
                description=f"node type {test.type!r} has no test; testable: "
                + ", ".join(sorted(TESTABLE))
            )
        try:
            outcome = await self.services.router.test_node(test.type, test.config, test.variables)
        except Unavailable:
            raise execution_service_unavailable() from None
        if "errors" in outcome:
            raise HTTPErrors(400, outcome["errors"])
        reply(resp, outcome)


def _submitted(job_id: str, submission: Submission, job: Job | None) -> Job:
    """`job` with `submission` added, or the HTTP error that refuses it."""
    if job is None:
        raise falcon.HTTPNotFound(description=f"job {job_id!r} not found")
    if job.nodeType != "manual":
        raise falcon.HTTPBadRequest(description="only manual nodes take submissions")
    if job.status != PENDING:
        raise falcon.HTTPBadRequest(description="this job has already been decided")
    meta: dict[str, Any] = job.meta if isinstance(job.meta, dict) else {}
    assignees = list(meta.get("assignees") or [])
    submissions = dict(meta.get("submissions") or {})
    if submission.assignee not in assignees:
        raise falcon.HTTPForbidden(
            description=f"{submission.assignee!r} is not an assignee of this job"
        )
    if submission.assignee in submissions:
        raise falcon.HTTPConflict(description="this assignee has already submitted")
    submissions[submission.assignee] = {
        "status": submission.status,
        "result": submission.result,
        "at": now().isoformat(),
    }
    job.meta = {**meta, "submissions": submissions}
    job.updatedAt = now()
    return job


def routes(services: Services) -> list[tuple[str, object]]:
    return [
        ("/api/jobs:get", JobGet(services)),
        ("/api/jobs:resume", JobResume(services)),
        ("/api/flow_nodes:test", NodeTestResource(services)),
    ]

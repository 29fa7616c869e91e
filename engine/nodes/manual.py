"""`manual`: the execution waits until people named in `assignees` submit
(`POST /api/jobs:resume`). Async workflows only.

`mode` decides when the job ends (NocoBase's three modes): 0 single — the first
submission decides; 1 all — every assignee must resolve, one rejection rejects;
-1 any — one resolution resolves, it rejects only when everyone rejected. With
no assignees the node resolves at once, as in NocoBase."""

from __future__ import annotations

from typing import Any, Literal

from engine.jsvalues import to_display_string
from engine.nodes.base import CompiledNode, Instruction, NodeConfig, RunContext
from engine.records import Job
from engine.status import Status

SINGLE, ALL, ANY = 0, 1, -1


class Config(NodeConfig):
    assignees: list[Any] = []
    title: str = ""
    mode: Literal[0, 1, -1] = 0  # SINGLE
    schema: Any = None
    forms: Any = None


class Manual(Instruction):
    node_type = "manual"
    config_type = Config
    waits = True

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        rendered = run.render(node)
        assignees = _names(rendered.get("assignees"))
        if not assignees:
            job.status, job.result = Status.RESOLVED, None
            return
        job.meta = {
            "title": to_display_string(rendered.get("title")),
            "assignees": assignees,
            "mode": node.config.mode,
            "submissions": {},
        }
        run.wait(job)


def _names(value: Any) -> list[str]:
    """Assignee ids: strings, flattened, empty ones and repeats dropped."""
    out: list[str] = []
    for item in value if isinstance(value, list) else [value]:
        for name in item if isinstance(item, list) else [item]:
            text = to_display_string(name).strip()
            if text and text not in out:
                out.append(text)
    return out


def decide(mode: int, assignees: list[str], submissions: dict[str, dict[str, Any]]) -> int | None:
    """The job's status once these submissions are in, or None: still waiting."""
    statuses = [submissions[a]["status"] for a in assignees if a in submissions]
    if not statuses:
        return None
    if mode == SINGLE:
        return int(statuses[0]) if len(submissions) else None
    resolved = [s for s in statuses if s == Status.RESOLVED]
    if mode == ALL:
        if len(resolved) < len(statuses):
            return Status.REJECTED
        return Status.RESOLVED if len(statuses) == len(assignees) else None
    # ANY
    if resolved:
        return Status.RESOLVED
    return Status.REJECTED if len(statuses) == len(assignees) else None

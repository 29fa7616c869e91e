"""`loop`: run branch "0" (the body) once per item of `target`.

NocoBase's `plugin-workflow-loop`, step for step:

- `target` (templated) sets the iterations: a number `n` runs `floor(n)` times
  with the index as item (a negative number is an ERROR); an array runs once per
  element; null runs zero times; anything else -- a string, an object, a
  boolean -- is one item (NocoBase's code, whatever its docs say about strings).
  The target is rendered again before every iteration, as NocoBase does, so a
  body that changes the variable it reads changes the loop.
- `$scopes.<loop key>` inside the body (and in the loop's own condition) is
  `{item, index (0-based), sequence (index + 1), length}`. Items come from the
  array without its null entries (NocoBase's `getScope` filters them while the
  length does not), so an array with nulls has trailing iterations without item.
- `condition` (`{checkpoint, continueOnFalse, engine, calculation, expression}`):
  with checkpoint 0 it is checked before the first iteration as well; after each
  iteration it is checked for the next index before that iteration runs. When
  it is false the loop ends RESOLVED with `broken: true`, or with
  `continueOnFalse` skips that item.
- `exit` decides what a body that ends in another status than RESOLVED does:
  0 ends the loop (and so the execution) with that status, 1 ends the loop
  RESOLVED with `broken: true`, 2 counts the iteration as done and goes on.
- The job result is `{looped, done}` plus `broken` or `exceeded`; more than
  `RAYHOOK_LOOP_LIMIT` (default 10,000) finished iterations end the job in ERROR
  with `exceeded: true` (NocoBase's `WORKFLOW_LOOP_LIMIT`; 0 means no limit).
"""

from __future__ import annotations

import math
from typing import Any, Literal

from engine.conditions import CompiledCondition, compile_condition
from engine.jsvalues import is_number
from engine.nodes.base import (
    CompiledNode,
    Instruction,
    NodeConfig,
    RunContext,
    WorkflowFacts,
)
from engine.records import Job
from engine.status import PENDING, Status

BODY = "0"


class LoopCondition(NodeConfig):
    checkpoint: Literal[0, 1] = 0
    continueOnFalse: bool = False
    engine: Literal["basic", "math.js", "formula.js"] = "basic"
    calculation: Any = None
    expression: str = ""


class Config(NodeConfig):
    target: Any = None
    condition: LoopCondition | bool | None = None
    exit: Literal[0, 1, 2] = 0


EXIT_RETURN, EXIT_BREAK, EXIT_CONTINUE = 0, 1, 2


class LoopTargetError(ValueError):
    """A target the loop cannot count (a negative number)."""


def target_length(target: Any) -> float:
    """How many iterations `target` asks for (NocoBase `getTargetLength`)."""
    if is_number(target):
        if target < 0:
            raise LoopTargetError("Loop target in number type must be greater than 0")
        if isinstance(target, float) and math.isnan(target):
            return 0
        return math.floor(target) if math.isfinite(target) else math.inf
    if isinstance(target, list):
        return len(target)
    return 0 if target is None else 1


def loop_items(target: Any) -> list[Any]:
    """The items an iteration's `item` comes from: the target without nulls."""
    return [t for t in (target if isinstance(target, list) else [target]) if t is not None]


def loop_scope(target: Any, index: int, items: list[Any] | None = None) -> dict[str, Any]:
    """`$scopes.<loop key>` for one iteration (NocoBase `getScope`)."""
    length = target_length(target)
    scope: dict[str, Any] = {
        "index": index,
        "sequence": index + 1,
        "length": length if math.isfinite(length) else None,
    }
    if is_number(target):
        scope["item"] = index
    else:
        items = loop_items(target) if items is None else items
        if index < len(items):
            scope["item"] = items[index]
    return scope


class Loop(Instruction):
    node_type = "loop"
    config_type = Config
    raw_fields = frozenset({"condition"})
    provides_scope = True

    def branch_indexes(self, config: Config) -> frozenset[str]:
        return frozenset({BODY})

    def prepare(
        self, config: Config, facts: WorkflowFacts, branches: frozenset[str]
    ) -> CompiledCondition | None:
        condition = config.condition
        if not isinstance(condition, LoopCondition):
            return None
        if not (condition.calculation or condition.expression):
            return None  # NocoBase checks nothing without a calculation or expression
        return compile_condition(
            condition.engine, condition.calculation, condition.expression, "condition."
        )

    def placeholders(self, prepared: CompiledCondition | None) -> list[Any]:
        return prepared.placeholders if prepared is not None else []

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        try:
            await _Iteration(node, job, run).run()
        finally:
            run.clear_scope(node.key)


class _Iteration:
    """One run of a loop node: its counters and the steps between iterations."""

    def __init__(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        self.node, self.job, self.run_context = node, job, run
        self.config: Config = node.config
        self.condition: CompiledCondition | None = node.prepared
        self.looped = 0
        self.done = 0
        # The last target and its items: a target read again is usually the same list.
        self._items: tuple[Any, list[Any]] | None = None

    def result(self, **flags: bool) -> dict[str, Any]:
        return {"looped": self.looped, "done": self.done, **flags}

    def finish(self, status: int, **flags: bool) -> None:
        self.job.status, self.job.result = status, self.result(**flags)

    def target(self) -> Any:
        return self.run_context.render(self.node).get("target")

    def enter(self, index: int) -> float:
        """Point `$scopes.<key>` at `index`; the target's current length."""
        target = self.target()
        if self._items is None or self._items[0] is not target:
            self._items = (target, loop_items(target))
        self.run_context.set_scope(self.node.key, loop_scope(target, index, self._items[1]))
        return target_length(target)

    def condition_holds(self) -> bool:
        assert self.condition is not None
        self.enter(self.looped)
        return self.condition.evaluate(self.run_context.scope)

    async def run(self) -> None:
        length = target_length(self.target())
        if BODY not in self.node.branches or not self.node.branches[BODY] or not length:
            self.finish(Status.RESOLVED)
            return
        self.job.status, self.job.result = PENDING, self.result()
        self.run_context.commit(self.job)
        condition = self.config.condition
        checked = self.condition is not None and isinstance(condition, LoopCondition)
        if checked and isinstance(condition, LoopCondition) and not condition.checkpoint:
            while self.looped < length:
                if self.condition_holds():
                    break
                self.looped += 1
                if not condition.continueOnFalse:
                    self.finish(Status.RESOLVED, broken=True)
                    return
                self.job.result = self.result()
                self.run_context.commit(self.job)
            if self.looped >= length:
                self.finish(Status.RESOLVED)
                return
        while True:
            self.enter(self.looped)
            status = await self.run_context.run_branch(self.node, BODY)
            if status == PENDING:  # a waiting node in the body: the loop waits too
                self.job.result = self.result()
                return
            self.looped += 1
            if status == Status.RESOLVED or (status < 0 and self.config.exit == EXIT_CONTINUE):
                self.done += 1
                if not self.advance():
                    return
                continue
            if self.config.exit:  # BREAK
                self.finish(Status.RESOLVED, broken=True)
            else:  # RETURN: the loop (and so the execution) ends with the body's status
                self.finish(status)
            return

    def advance(self) -> bool:
        """After a finished iteration: whether another one runs (else the job is final)."""
        length = target_length(self.target())
        condition = self.config.condition
        if self.condition is not None and isinstance(condition, LoopCondition):
            while self.looped < length:
                if self.condition_holds():
                    break
                if not condition.continueOnFalse:
                    self.finish(Status.RESOLVED, broken=True)
                    return False
                self.looped += 1
        self.job.result = self.result()
        self.run_context.commit(self.job)
        if self.looped < length:
            limit = self.run_context.loop_limit
            if not limit or self.done < limit:
                return True
            self.finish(Status.ERROR, exceeded=True)
            return False
        self.finish(Status.RESOLVED)
        return False

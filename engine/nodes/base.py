"""What every node type provides, and the compiled form the interpreter walks.

A node type is one module with a `Config` struct and an `Instruction` subclass
naming it (`node_type`, `config_type`):
`prepare` checks and precompiles what the config needs (expressions, targets)
at definition time; `run` performs the node for one execution, setting the job's
status and result. See `engine/nodes/calculation.py` for the smallest complete
example.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec

from engine.caps import Caps
from engine.effects import Effects
from engine.records import Execution, Job, Reply
from engine.templates import Placeholder, Renderer

if TYPE_CHECKING:
    from engine.retry_on_fail import RetryPolicy


class NodeConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Base of every node type's `config` struct."""


class NodeError(ValueError):
    """A config problem found at definition time; `field` is the path inside config."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class WorkflowFacts:
    """What a node may consult while it is prepared."""

    sync: bool
    type: str
    node_types: Mapping[str, str]  # every node key of the workflow → its type


@dataclass(slots=True)
class CompiledNode:
    key: str
    type: str
    title: str
    instruction: Instruction
    config: Any
    template: Renderer
    prepared: Any = None
    branches: dict[str, tuple[CompiledNode, ...]] = field(default_factory=dict)
    retry: RetryPolicy | None = None  # config.retryOnFail (engine/retry_on_fail.py)


class RunContext(Protocol):
    """What an instruction may ask of the execution it runs in (the interpreter)."""

    @property
    def scope(self) -> Mapping[str, Any]: ...

    @property
    def effects(self) -> Effects: ...

    def render(self, node: CompiledNode) -> dict[str, Any]: ...

    def commit(self, job: Job) -> None: ...

    async def run_branch(self, node: CompiledNode, index: str) -> int: ...

    def exit(self, status: int) -> Any: ...

    def bubble(self, status: int) -> Any:
        """End the chain this node is in with `status` (its branch's), leaving
        the node's own job as it is: the node above (a loop, a parallel) or the
        execution decides what it means."""

    def respond(self, reply: Reply) -> None: ...

    def set_output(self, value: Any) -> None: ...

    def assign(self, node_key: str, value: Any, by: str | None = None) -> None: ...

    def wait(self, job: Job, *, fire_at: float | None = None, status: int = ...) -> None: ...

    @property
    def execution_record(self) -> Execution: ...

    @property
    def caps(self) -> Caps:
        """What a job result and a reply may hold (RAYHOOK_MAX_*_BYTES)."""
        ...

    @property
    def loop_limit(self) -> int:
        """Iterations a loop node may run (RAYHOOK_LOOP_LIMIT); 0 means no limit."""
        ...

    def set_scope(self, node_key: str, values: Mapping[str, Any]) -> None:
        """Make `$scopes.<node_key>` read `values` (a loop around its body)."""

    def clear_scope(self, node_key: str) -> None:
        """Remove `$scopes.<node_key>` once the node's branches are done."""


class Instruction:
    """A node type. Subclasses set the class attributes and override `run`."""

    node_type: ClassVar[str]
    config_type: ClassVar[type[NodeConfig]]
    #: Pauses an execution (delay, manual): not allowed in sync workflows.
    waits: ClassVar[bool] = False
    #: Only allowed in sync webhook workflows (response).
    sync_only: ClassVar[bool] = False
    #: Config fields the generic template renderer leaves alone because the
    #: instruction compiles them itself (expressions with their own placeholders).
    raw_fields: ClassVar[frozenset[str]] = frozenset()
    #: Whether `$scopes.<this node key>` exists inside its branches (loop).
    provides_scope: ClassVar[bool] = False
    #: Whether `config.retryOnFail` may retry a failed run (nodes that reach
    #: outside), and the config field, if any, that makes a failure resolve
    #: (`ignoreFail`): it applies to the last try only.
    retries_on_fail: ClassVar[bool] = False
    ignore_fail_field: ClassVar[str | None] = None

    def branch_indexes(self, config: Any) -> frozenset[str] | None:
        """The branch keys this node accepts; None means any number-like key."""
        return frozenset()

    def prepare(self, config: Any, facts: WorkflowFacts, branches: frozenset[str]) -> Any:
        """Check the config beyond its schema and precompile it; raise NodeError.

        `branches` are the branch keys the node definition has."""
        return None

    def placeholders(self, prepared: Any) -> list[Placeholder]:
        """Placeholders hidden in raw fields (expressions), for validation."""
        return []

    async def run(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        raise NotImplementedError

    def replay(self, node: CompiledNode, job: Job, run: RunContext) -> None:
        """A resumed execution meets this (leaf) node's recorded job again: redo
        what it did to the run besides its job (the output node sets the
        execution's output). Its effects are not repeated."""

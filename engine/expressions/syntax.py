"""The syntax-tree nodes the math.js and formula.js evaluators share: leaves,
array and object literals, operator chains and conditionals, how a node says
where an evaluation error happened, and the depth check every compiled tree passes."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from engine.expressions import ExpressionError
from engine.jsvalues import truthy

Values = Mapping[str, Any]


class EvaluationError(Exception):
    """A value helper's complaint, still without a place: the node that called
    the helper adds where (`at`) and makes it an ExpressionError."""


@contextmanager
def at(column: int, where: str = "") -> Iterator[None]:
    """Turn an EvaluationError into an ExpressionError that says where it happened;
    `where` names the function (`"sqrt(): "`), empty for operators."""
    try:
        yield
    except EvaluationError as exc:
        raise ExpressionError(f"{where}{exc} at column {column}", column) from None


@dataclass(frozen=True, slots=True)
class Node:
    col: int

    def evaluate(self, values: Values) -> Any:
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Const(Node):
    value: Any

    def evaluate(self, values: Values) -> Any:
        return self.value


@dataclass(frozen=True, slots=True)
class Placeholder(Node):
    name: str

    def evaluate(self, values: Values) -> Any:
        return values[self.name]


@dataclass(frozen=True, slots=True)
class ArrayLit(Node):
    items: tuple[Node, ...]

    def evaluate(self, values: Values) -> Any:
        return [item.evaluate(values) for item in self.items]


@dataclass(frozen=True, slots=True)
class ObjectLit(Node):
    entries: tuple[tuple[str, Node], ...]

    def evaluate(self, values: Values) -> Any:
        return {key: node.evaluate(values) for key, node in self.entries}


@dataclass(frozen=True, slots=True)
class Chain(Node):
    """Left-associative binary operators of one precedence level, n-ary so that
    `a + b + c + ...` stays shallow. A language subclasses it with its operators."""

    first: Node
    rest: tuple[tuple[str, int, Node], ...]  # (operator, its column, right operand)
    operators: ClassVar[Mapping[str, Callable[[Any, Any], Any]]]

    def evaluate(self, values: Values) -> Any:
        result = self.first.evaluate(values)
        for op, col, node in self.rest:
            right = node.evaluate(values)
            with at(col):
                result = self.operators[op](result, right)
        return result


@dataclass(frozen=True, slots=True)
class Conditional(Node):
    """`test ? then : otherwise`, by JavaScript truthiness in both languages."""

    test: Node
    then: Node
    otherwise: Node

    def evaluate(self, values: Values) -> Any:
        branch = self.then if truthy(self.test.evaluate(values)) else self.otherwise
        return branch.evaluate(values)


def ast_depth(root: Node) -> int:
    """Levels of the tree, counted without recursion: the tree may be deeper
    than the limit being checked."""
    deepest, stack = 0, [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in _children(node))
    return deepest


def _children(node: Node) -> Iterator[Node]:
    for field in fields(node):
        value = getattr(node, field.name)
        for item in value if isinstance(value, tuple) else (value,):
            child = item[-1] if isinstance(item, tuple) else item  # (.., node) pairs keep it last
            if isinstance(child, Node):
                yield child

"""The syntax-tree nodes the math.js and formula.js evaluators share: leaves,
array and object literals, and the depth check every compiled tree passes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

Values = Mapping[str, Any]


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

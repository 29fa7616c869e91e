"""The node-type registry: adding a node is one module plus one line in
`engine/nodes/__init__.py`."""

from __future__ import annotations

from collections.abc import Iterator

from engine.nodes.base import Instruction


class NodeRegistry:
    def __init__(self) -> None:
        self._by_type: dict[str, Instruction] = {}

    def add(self, instruction: Instruction) -> None:
        if instruction.node_type in self._by_type:
            raise ValueError(f"node type {instruction.node_type!r} is registered twice")
        self._by_type[instruction.node_type] = instruction

    def get(self, node_type: str) -> Instruction | None:
        return self._by_type.get(node_type)

    def __getitem__(self, node_type: str) -> Instruction:
        return self._by_type[node_type]

    def types(self) -> list[str]:
        return sorted(self._by_type)

    def __iter__(self) -> Iterator[Instruction]:
        return iter(self._by_type.values())

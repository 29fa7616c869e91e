"""Every node type, registered once. A new node: one module, one line below."""

from engine.nodes import (
    calculation,
    condition,
    end,
    multi_conditions,
    output,
    response,
    variable,
    waiting,
)
from engine.nodes.registry import NodeRegistry

REGISTRY = NodeRegistry()
REGISTRY.add(condition.Condition())
REGISTRY.add(multi_conditions.MultiConditions())
REGISTRY.add(calculation.Calculation())
REGISTRY.add(variable.Variable())
REGISTRY.add(end.End())
REGISTRY.add(output.Output())
REGISTRY.add(response.Response())
REGISTRY.add(waiting.Delay())
REGISTRY.add(waiting.Manual())

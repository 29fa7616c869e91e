"""Every node type, registered once. A new node: one module, one line below."""

from engine.nodes import (
    calculation,
    condition,
    date_calculation,
    delay,
    end,
    json_query,
    json_variable_mapping,
    loop,
    mailer,
    manual,
    multi_conditions,
    output,
    parallel,
    request,
    response,
    script,
    sql,
    subflow,
    variable,
)
from engine.nodes.registry import NodeRegistry

REGISTRY = NodeRegistry()
REGISTRY.add(condition.Condition())
REGISTRY.add(multi_conditions.MultiConditions())
REGISTRY.add(calculation.Calculation())
REGISTRY.add(loop.Loop())
REGISTRY.add(parallel.Parallel())
REGISTRY.add(date_calculation.DateCalculation())
REGISTRY.add(json_query.JsonQuery())
REGISTRY.add(json_variable_mapping.JsonVariableMapping())
REGISTRY.add(variable.Variable())
REGISTRY.add(end.End())
REGISTRY.add(output.Output())
REGISTRY.add(response.Response())
REGISTRY.add(delay.Delay())
REGISTRY.add(manual.Manual())
REGISTRY.add(subflow.Subflow())
REGISTRY.add(request.Request())
REGISTRY.add(script.Script())
REGISTRY.add(sql.Sql())
REGISTRY.add(mailer.Mailer())

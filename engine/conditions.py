"""One condition as condition, multi-conditions (and later loop) nodes use it:
either a `basic` calculation tree or an expression for an expression engine."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from engine.calculators import (
    Calculation,
    CalculationError,
    calculation_placeholders,
    compile_calculation,
)
from engine.expressions import CompiledExpression, ExpressionError, compile_expression
from engine.jsvalues import truthy
from engine.nodes.base import NodeError
from engine.templates import Placeholder, TemplateError

CONDITION_ENGINES = ("basic", "math.js", "formula.js")


@dataclass(frozen=True, slots=True)
class CompiledCondition:
    calculation: Calculation | None
    expression: CompiledExpression | None

    def evaluate(self, scope: Mapping[str, Any]) -> bool:
        """True or false; raises on an evaluation error (the job becomes ERROR).

        An expression result counts by JS truthiness (NocoBase would only follow a
        branch for a strict boolean; `1` meaning "no" would surprise everyone)."""
        if self.calculation is not None:
            return self.calculation.evaluate(scope)
        assert self.expression is not None
        return truthy(self.expression.evaluate(scope))

    @property
    def placeholders(self) -> list[Placeholder]:
        if self.calculation is not None:
            return calculation_placeholders(self.calculation)
        return list(self.expression.placeholders) if self.expression else []


def compile_condition(
    engine: str, calculation: Any, expression: str, prefix: str = ""
) -> CompiledCondition:
    if engine == "basic":
        try:
            return CompiledCondition(compile_calculation(calculation, f"{prefix}calculation"), None)
        except CalculationError as exc:
            raise NodeError(exc.field, exc.message) from exc
        except TemplateError as exc:
            raise NodeError(f"{prefix}calculation", str(exc)) from exc
    if engine not in CONDITION_ENGINES:
        raise NodeError(
            f"{prefix}engine",
            f'engine "{engine}" is not supported; use one of: {", ".join(CONDITION_ENGINES)}',
        )
    if not (expression or "").strip():
        raise NodeError(f"{prefix}expression", f"an expression is required for engine {engine}")
    try:
        return CompiledCondition(None, compile_expression(engine, expression))
    except ExpressionError as exc:
        raise NodeError(f"{prefix}expression", str(exc)) from exc

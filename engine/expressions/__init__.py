"""Expression engines for condition/calculation nodes: `math.js`, `formula.js` and `string`.

Like NocoBase's evaluators, each `{{ path }}` in an expression is first replaced
by a placeholder (`$$0`, `$$1`, ...) bound to the value at that path; `string`
substitutes the values as text instead. Expressions compile once, at definition
time, so an unsupported function or bad syntax is a validation error there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from engine.jsvalues import to_display_string
from engine.templates import Placeholder

_EXPRESSION_PLACEHOLDER = re.compile(r"\{\{\s*([\w$.-]+)\s*\}\}")

ENGINE_NAMES = ("math.js", "formula.js", "string")


class ExpressionError(ValueError):
    """An expression that cannot be compiled or evaluated; the text is user-facing.
    `column` (1-based) says where, when the math.js or formula.js evaluator knows."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


class _Program(Protocol):
    def evaluate(self, values: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True, slots=True)
class CompiledExpression:
    engine: str
    placeholders: tuple[Placeholder, ...]
    names: tuple[str, ...]  # `$$n` bound to placeholders[n]
    program: _Program | None  # None for the string engine
    text: str  # the original expression (string engine) or the rewritten one

    def evaluate(self, scope: Mapping[str, Any]) -> Any:
        values = [ph.resolve(scope) for ph in self.placeholders]
        if self.program is None:
            return _substitute(self.text, self.placeholders, values)
        try:
            return self.program.evaluate(dict(zip(self.names, values, strict=True)))
        except ExpressionError:
            raise
        except ValueError as exc:  # a safety net: the evaluators raise ExpressionError
            raise ExpressionError(str(exc)) from exc


def compile_expression(engine: str, expression: str) -> CompiledExpression:
    """Compile `expression` for `engine`; `ExpressionError` names what is wrong."""
    if engine not in ENGINE_NAMES:
        raise ExpressionError(f'unknown engine "{engine}"; supported: {", ".join(ENGINE_NAMES)}')
    text = (expression or "").strip()
    if not text:  # NocoBase: no expression, no value
        return CompiledExpression(engine, (), (), _Null(), "")
    keys: dict[str, str] = {}
    placeholders: list[Placeholder] = []

    def bind(match: re.Match[str]) -> str:
        key = match.group(1)
        name = keys.get(key)
        if name is None:
            name = f"$${len(keys)}"
            keys[key] = name
            placeholders.append(Placeholder(match.group(0), key, tuple(key.split(".")), None))
        return name

    rewritten = _EXPRESSION_PLACEHOLDER.sub(bind, text)
    if "{{" in rewritten:
        raise ExpressionError(
            "invalid placeholder in expression: write {{$root.path}} with dots between segments"
        )
    names = tuple(keys.values())
    if engine == "string":
        return CompiledExpression(engine, tuple(placeholders), names, None, text)
    from engine.expressions.formulajs import compile_formulajs
    from engine.expressions.mathjs import compile_mathjs

    compile_program = compile_formulajs if engine == "formula.js" else compile_mathjs
    try:
        program: _Program = compile_program(rewritten)
    except ValueError as exc:
        raise ExpressionError(str(exc)) from exc
    return CompiledExpression(engine, tuple(placeholders), names, program, rewritten)


class _Null:
    """An empty expression evaluates to null (NocoBase's calculation node)."""

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        return None


def _substitute(text: str, placeholders: tuple[Placeholder, ...], values: list[Any]) -> str:
    """The string engine: each `{{path}}` replaced by its value's text, in one pass
    (a value containing placeholder-like text is not substituted again)."""
    by_key = {ph.key: value for ph, value in zip(placeholders, values, strict=True)}

    def text_of(match: re.Match[str]) -> str:
        value = by_key.get(match.group(1))
        if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
            return ""
        return to_display_string(value)

    return _EXPRESSION_PLACEHOLDER.sub(text_of, text)

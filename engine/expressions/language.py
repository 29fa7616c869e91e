"""What the math.js and formula.js evaluators are both built on, beside the
shared tree nodes of `syntax.py`: the limits on the work one expression may
ask for, compile errors that say where they happened, the token and the
parser's cursor, function signatures and their argument-count check, and the
compiled program (its compile-time checks and its evaluate).

Each language module keeps what is its own: its tokenizer, grammar, value
semantics and function table."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, NamedTuple, Self, TypeVar

from engine.expressions import ExpressionError
from engine.expressions.syntax import ArrayLit, Const, Node, ObjectLit, Placeholder, ast_depth

#: Longest expression source accepted, in characters.
MAX_SOURCE_LENGTH = 10_000
#: Deepest nesting accepted, while parsing and in the finished tree.
MAX_DEPTH = 100

_PLACEHOLDER = re.compile(r"\$\$[0-9]+")


def error_at(message: str, column: int, hint: str = "") -> ExpressionError:
    """A compile-time error at a 1-based column, with an optional hint after a `;`."""
    return ExpressionError(f"{message} at column {column}" + (f"; {hint}" if hint else ""), column)


def flatten(values: Iterable[Any]) -> list[Any]:
    """Items of nested lists, found iteratively so deep input cannot exhaust the stack."""
    flat: list[Any] = []
    stack = [iter(values)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


# --- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # "num" | "str" | "name" | "op" | "end"
    text: str  # source spelling: matched against operators and quoted in messages
    col: int
    value: Any = None

    def is_op(self, *texts: str) -> bool:
        return self.kind == "op" and self.text in texts

    def shown(self) -> str:
        return "end of expression" if self.kind == "end" else f'"{self.text}"'


class Function(NamedTuple):
    """A function an expression may call: what runs and how many arguments it takes."""

    run: Callable[..., Any]
    min_args: int = 1
    max_args: int | None = 1  # None: any number
    lazy: bool = False  # gets thunks, so it can catch its arguments' errors (formula.js)

    def takes(self, count: int) -> bool:
        return self.min_args <= count <= (count if self.max_args is None else self.max_args)

    def expected(self) -> str:
        """The argument count for an error message: "2", "at least 1", "1 to 3"."""
        if self.max_args is None:
            return f"at least {self.min_args}"
        if self.min_args == self.max_args:
            return str(self.min_args)
        return f"{self.min_args} to {self.max_args}"


_TokenT = TypeVar("_TokenT", bound=Token)
_T = TypeVar("_T")


class Parser(Generic[_TokenT]):
    """The cursor over a language's tokens, the nesting guard and the placeholders
    met; a language's parser adds its tokenizer and grammar (`_expression` and below)."""

    #: Whether `[1, 2,]`, `{a: 1,}` and `f(1,)` are allowed (JavaScript) or not (math.js).
    trailing_comma: ClassVar[bool] = False

    def __init__(self, source: str) -> None:
        self._tokens = self._tokenize(source)
        self._pos = 0
        self._depth = 0
        self.placeholders: set[str] = set()

    def parse(self) -> Node:
        if self._peek().kind == "end":
            raise ExpressionError("the expression is empty")
        node = self._expression()
        if (token := self._peek()).kind != "end":
            raise self._unexpected(token)
        return node

    def _tokenize(self, source: str) -> list[_TokenT]:
        raise NotImplementedError

    def _expression(self) -> Node:
        raise NotImplementedError

    def _name(self, token: _TokenT) -> Node:
        """What a name stands for: a call, a placeholder, a literal..."""
        raise NotImplementedError

    def _entry(self) -> tuple[str, Node]:
        """One `key: value` of an object literal."""
        raise NotImplementedError

    def _primary(self, token: _TokenT) -> Node:
        """The operand `token` starts: a literal, a name, `(...)`, `[...]` or `{...}`."""
        if token.kind in ("num", "str"):
            return Const(token.col, token.value)
        if token.kind == "name":
            return self._name(token)
        if token.is_op("("):
            return self._group(token)
        if token.is_op("["):
            return ArrayLit(token.col, self._sequence("]", self._expression))
        if token.is_op("{"):
            return ObjectLit(token.col, self._sequence("}", self._entry))
        raise self._unexpected(token)

    def _group(self, token: _TokenT) -> Node:
        """`( expression )`, the opening parenthesis read."""
        node = self._expression()
        self._expect(")")
        return node

    def _sequence(self, close: str, parse_item: Callable[[], _T]) -> tuple[_T, ...]:
        """Comma-separated items up to `close` (arguments, array items, entries)."""
        items: list[_T] = []
        if not self._peek().is_op(close):
            items.append(parse_item())
            while self._peek().is_op(","):
                self._advance()
                if self.trailing_comma and self._peek().is_op(close):
                    break
                items.append(parse_item())
        if not (token := self._advance()).is_op(close):
            raise self._unexpected(token, f'"," or "{close}"')
        return tuple(items)

    def _peek(self) -> _TokenT:
        return self._tokens[self._pos]

    def _advance(self) -> _TokenT:
        token = self._tokens[self._pos]
        self._pos += token.kind != "end"
        return token

    @contextmanager
    def _nested(self, col: int) -> Iterator[None]:
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise error_at(f"the expression is nested more than {MAX_DEPTH} levels deep", col)
        try:
            yield
        finally:
            self._depth -= 1

    def _unexpected(self, token: _TokenT, expected: str = "") -> ExpressionError:
        if expected:
            return error_at(f"expected {expected} but found {token.shown()}", token.col)
        return error_at(f"unexpected {token.shown()}", token.col)

    def _expect(self, text: str) -> _TokenT:
        token = self._advance()
        if not token.is_op(text):
            raise self._unexpected(token, f'"{text}"')
        return token

    def _placeholder(self, token: Token) -> Placeholder | None:
        """`$$n`, the value a `{{ path }}` was rewritten to; None for other names."""
        if not _PLACEHOLDER.fullmatch(token.text):
            return None
        self.placeholders.add(token.text)
        return Placeholder(token.col, token.text)


# --- compiled programs -------------------------------------------------------------------------


class CompiledProgram:
    """A parsed expression. Immutable, so one instance serves every execution;
    a language subclasses it with its parser and its result normalisation."""

    __slots__ = ("_root", "placeholders", "source")
    parser: ClassVar[type[Parser[Any]]]

    def __init__(self, source: str, root: Node, placeholders: frozenset[str]) -> None:
        self.source = source
        self.placeholders = placeholders
        self._root = root

    @classmethod
    def from_source(cls, source: str) -> Self:
        """Parse `source` once, rejecting anything outside the language's subset."""
        if len(source) > MAX_SOURCE_LENGTH:
            raise ExpressionError(
                f"the expression is too long ({len(source)} characters; "
                f"the limit is {MAX_SOURCE_LENGTH})"
            )
        parser = cls.parser(source)
        root = parser.parse()
        if ast_depth(root) > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep")
        return cls(source, root, frozenset(parser.placeholders))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source!r})"

    def __reduce__(self) -> tuple[Callable[[str], Self], tuple[str]]:
        # The tree holds plain functions and lambdas; parsing again is cheap and picklable.
        return type(self).from_source, (self.source,)

    def evaluate(self, values: Mapping[str, Any]) -> Any:
        if missing := sorted(self.placeholders.difference(values)):
            raise ExpressionError("no value was supplied for " + ", ".join(missing))
        try:
            return self._result(self._root.evaluate(values))
        except ExpressionError:
            raise
        except RecursionError:
            raise ExpressionError("a value is nested too deeply to evaluate") from None
        except (ArithmeticError, TypeError, ValueError) as exc:
            # Safety net: a case the helpers missed still reaches users as an ExpressionError
            raise ExpressionError(f"cannot evaluate the expression: {exc}") from exc

    def _result(self, value: Any) -> Any:
        """The evaluated value as the language's callers receive it."""
        raise NotImplementedError
